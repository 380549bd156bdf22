#!/usr/bin/python3
"""Reference images for the model families beyond SD 2.1-base, made by diffusers' OWN pipeline classes
(StableDiffusionPipeline, LatentConsistencyModelPipeline, LatentConsistencyModelImg2ImgPipeline; diffusers source, not
a re-implementation) run around the
TorchScript artifacts of the tiny family fixtures, CPU, float32, torch.set_num_threads(1), seeded CPU generators.

    git --git-dir=DIFFUSERS_GIT archive HEAD src | tar -x -C /tmp/diffusers
    /usr/bin/python3 tools/reference/make_family_references.py --diffusers-src /tmp/diffusers/src           # writes
    /usr/bin/python3 tools/reference/make_family_references.py --diffusers-src /tmp/diffusers/src --check   # compares

Models (tools/model/make_tiny_sd.py presets): tiny-sd15-fp32 (SD 1.5-shaped: pad <|endoftext|>, text encoder
tuple, bare unet tensor), tiny-sd2v-fp32 (768 v-prediction shaped, 96x96 default), tiny-lcm-fp32 (time_cond_proj_dim,
LCMScheduler), tiny-turbo-fp32 (trailing Euler ancestral). Output: src/all/test/resources/reference/families/
(cases.json, cases/<name>.rgb raw HWC uint8, cases/<name>.latents.f32 the final latents).

Stand-ins, as tools/reference/make_task_references.py's (its import stubs are reused), with what the families add:
- unet: unet.pt(sample, t, encoder_hidden_states[, timestep_cond]) with t = timestep.float().expand((B,)) (AWS's
  wrappers: SD 1.5's timestep.type(float32).repeat(B)); a 1-tuple or a bare tensor out; .config = unet/config.json
  (time_cond_proj_dim None unless the config names it);
- text encoder: text_encoder.pt per row; the first element of a dict/tuple output (last_hidden_state);
- tokenizer: make_task_references.Tokenizer with the added/special tokens and the pad token read from the model's
  tokenizer/special_tokens_map.json (SD 1.x: <|endoftext|> = 49407 pads and "!" is an ordinary token);
- vae: decode(z) = vae_decoder.pt(vae_post_quant_conv.pt(z)); encode(x) = DiagonalGaussianDistribution of
  vae_encoder.pt(x)["latent_parameters"] (LCM image-to-image: tiny-lcm-fp32 has the encoder);
- scheduler: diffusers' class .from_config(scheduler_config.json) (the model's own, or the class a case names).
"""
import argparse
import hashlib
import json
import os
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(REPO, "src", "all", "test", "resources", "models")
OUT = os.path.join(REPO, "src", "all", "test", "resources", "reference", "families")
INPUTS = os.path.join(REPO, "src", "all", "test", "resources", "reference", "tasks", "inputs")
sys.path.insert(0, HERE)
import make_task_references as mtr  # noqa: E402

DPM = "DPMSolverMultistepScheduler"
EULER = "EulerDiscreteScheduler"
EULER_A = "EulerAncestralDiscreteScheduler"
DDIM = "DDIMScheduler"
CONFIG = "config"  # the model's own scheduler_config.json class
P1 = "a photograph of an astronaut riding a horse"
P2 = "a bowl of fruit on a wooden table, oil painting!"
P3 = "a red circle on a blue background"

# name, pipeline, model, prompt, negative, steps, guidance, seed, scheduler, guidance_rescale, images, height/width
CASES = [
    ("sd15_dpm20_g7.5_s42", "sd", "tiny-sd15-fp32", P1, None, 20, 7.5, 42, DPM, 0.0, 1, None),
    ("sd15_neg_euler15_g6_s7", "sd", "tiny-sd15-fp32", P2, "blurry, low quality!", 15, 6.0, 7, EULER, 0.0, 1, None),
    ("sd15_rescale0.7_dpm15_g7.5_s3", "sd", "tiny-sd15-fp32", P3, None, 15, 7.5, 3, DPM, 0.7, 1, None),
    ("sd15_pndm12_g8_s5_n2", "sd", "tiny-sd15-fp32", P2, None, 12, 8.0, 5, CONFIG, 0.0, 2, None),
    ("v_dpm20_g7.5_s42", "sd", "tiny-sd2v-fp32", P1, None, 20, 7.5, 42, DPM, 0.0, 1, None),
    ("v_ddim15_g6_rescale0.7_s11", "sd", "tiny-sd2v-fp32", P2, "low quality", 15, 6.0, 11, CONFIG, 0.7, 1, None),
    ("v_euler_a12_g5_s8", "sd", "tiny-sd2v-fp32", P3, None, 12, 5.0, 8, EULER_A, 0.0, 1, None),
    ("v_64_dpm10_g7.5_rescale1_s2", "sd", "tiny-sd2v-fp32", P3, None, 10, 7.5, 2, DPM, 1.0, 1, 64),
    ("lcm4_g8.5_s42", "lcm", "tiny-lcm-fp32", P1, None, 4, 8.5, 42, CONFIG, 0.0, 1, None),
    ("lcm1_g1_s3", "lcm", "tiny-lcm-fp32", P3, None, 1, 1.0, 3, CONFIG, 0.0, 1, None),
    ("lcm6_g4_s7_n2", "lcm", "tiny-lcm-fp32", P2, None, 6, 4.0, 7, CONFIG, 0.0, 2, None),
    ("turbo1_g0_s42", "sd", "tiny-turbo-fp32", P1, None, 1, 0.0, 42, CONFIG, 0.0, 1, None),
    ("turbo4_g0_s5", "sd", "tiny-turbo-fp32", P2, None, 4, 0.0, 5, CONFIG, 0.0, 1, None),
    ("turbo2_g2_s9", "sd", "tiny-turbo-fp32", P3, None, 2, 2.0, 9, CONFIG, 0.0, 1, None),
]

# LatentConsistencyModelImg2ImgPipeline: the fields above, then strength (None = the pipeline's default, 0.8) and the
# start image (reference/tasks/inputs/)
LCM_IMG2IMG_CASES = [
    ("lcm_img2img4_g8.5_s42", "lcm-img2img", "tiny-lcm-fp32", P1, None, 4, 8.5, 42, CONFIG, 0.0, 1, None, None,
     "start_64.png"),
    ("lcm_img2img2_g4_str0.5_s7_n2", "lcm-img2img", "tiny-lcm-fp32", P2, None, 2, 4.0, 7, CONFIG, 0.0, 2, None, 0.5,
     "start_64.png"),
    ("lcm_img2img3_g1_str1_133x100_s3", "lcm-img2img", "tiny-lcm-fp32", P3, None, 3, 1.0, 3, CONFIG, 0.0, 1, None, 1.0,
     "start_133x100.png"),
]

TOLERANCES = {"image_max_abs": 2, "image_mean_abs": 0.05, "latents_max_abs_rel": 1e-4,
              "note": "float32. image: uint8 HWC, max |d| over all values and mean |d| over H*W*3. latents: max |d| "
                      "<= tol * max|ref| over the array."}


def read_json(path):
    with open(path) as f:
        return json.load(f)


class FamilyTokenizer(mtr.Tokenizer):
    """make_task_references.Tokenizer with the special tokens and the pad token of the model's own files."""

    def __init__(self, model_dir):
        super().__init__(model_dir)
        sp = read_json(os.path.join(model_dir, "tokenizer", "special_tokens_map.json"))
        names = {}
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            v = sp.get(key)
            names[key] = v["content"] if isinstance(v, dict) else v
        added = {names[k]: self.clip.encoder[names[k]] for k in names if names[k] is not None}
        self.clip.added = added  # transformers: the special tokens are the added tokens split out of the text
        self.added_tokens_encoder = dict(added)
        self.pad = added[names["pad_token"]]
        self.pad_token = names["pad_token"]


def make_stand_ins(model_dir):
    from diffusers.configuration_utils import FrozenDict
    cm = os.path.join(model_dir, "compiled_models")

    class Module(torch.nn.Module):
        @property
        def device(self):
            return torch.device("cpu")

        @property
        def dtype(self):
            return torch.float32

    calls = []

    class UNet(Module):
        def __init__(self):
            super().__init__()
            self.ts = torch.jit.load(os.path.join(cm, "unet.pt")).eval()
            cfg = {"time_cond_proj_dim": None}
            cfg.update(read_json(os.path.join(model_dir, "unet", "config.json")))
            self.config = FrozenDict(cfg)

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None, cross_attention_kwargs=None,
                    added_cond_kwargs=None, return_dict=True):
            assert cross_attention_kwargs is None and added_cond_kwargs is None
            assert (timestep_cond is not None) == (self.config.time_cond_proj_dim is not None)
            B = sample.shape[0]
            t = torch.as_tensor(timestep).float().expand((B,))
            args = (sample, t, encoder_hidden_states) + ((timestep_cond,) if timestep_cond is not None else ())
            out = self.ts(*args)
            eps = out[0] if isinstance(out, (tuple, list)) else out
            calls.append({"t": float(torch.as_tensor(timestep)), "batch": B,
                          "timestep_cond_first4": None if timestep_cond is None
                          else [float(v) for v in timestep_cond.flatten()[:4]]})
            return (eps,) if not return_dict else types.SimpleNamespace(sample=eps)

    class TextEncoder(Module):
        def __init__(self):
            super().__init__()
            self.ts = torch.jit.load(os.path.join(cm, "text_encoder.pt")).eval()
            self.config = FrozenDict(read_json(os.path.join(model_dir, "text_encoder", "config.json")))

        def forward(self, input_ids, attention_mask=None, output_hidden_states=None):
            assert attention_mask is None and not output_hidden_states
            rows = []
            for i in range(input_ids.shape[0]):
                out = self.ts(input_ids[i:i + 1])
                if isinstance(out, dict):
                    out = out["last_hidden_state"]
                elif isinstance(out, (tuple, list)):
                    out = out[0]
                rows.append(out.float())
            return (torch.cat(rows),)

    class Vae(Module):
        def __init__(self):
            super().__init__()
            self.pq = torch.jit.load(os.path.join(cm, "vae_post_quant_conv.pt")).eval()
            self.dec = torch.jit.load(os.path.join(cm, "vae_decoder.pt")).eval()
            self.config = FrozenDict(read_json(os.path.join(model_dir, "vae", "config.json")))

        def encode(self, x, return_dict=True):  # the VAE encoder + quant_conv artifact (image-to-image)
            from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
            from diffusers.models.modeling_outputs import AutoencoderKLOutput
            moments = torch.jit.load(os.path.join(cm, "vae_encoder.pt")).eval()(x)["latent_parameters"]
            out = AutoencoderKLOutput(latent_dist=DiagonalGaussianDistribution(moments))
            return out if return_dict else (out.latent_dist,)

        def decode(self, z, return_dict=True, generator=None):
            img = self.dec(self.pq(z))
            return (img,) if not return_dict else types.SimpleNamespace(sample=img)

    return UNet(), TextEncoder(), Vae(), calls


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def stats(a):
    a = np.asarray(a, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def run_case(case, models):
    import diffusers
    from diffusers import LatentConsistencyModelImg2ImgPipeline, LatentConsistencyModelPipeline, StableDiffusionPipeline
    from PIL import Image
    name, kind, model, prompt, neg, steps, g, seed, sched_name, rescale, n, size = case[:12]
    strength, start = case[12:] if len(case) > 12 else (None, None)
    d = os.path.join(MODELS, model)
    if model not in models:
        models[model] = (make_stand_ins(d), FamilyTokenizer(d),
                         read_json(os.path.join(d, "scheduler", "scheduler_config.json")))
    (unet, te, vae, calls), tok, sched_cfg = models[model]
    cls_name = sched_cfg["_class_name"] if sched_name == CONFIG else sched_name
    scheduler = getattr(diffusers, cls_name).from_config(sched_cfg)
    common = dict(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=scheduler, safety_checker=None,
                  feature_extractor=None, requires_safety_checker=False)
    pipe = {"lcm": LatentConsistencyModelPipeline, "lcm-img2img": LatentConsistencyModelImg2ImgPipeline,
            "sd": StableDiffusionPipeline}[kind](**common)
    pipe.set_progress_bar_config(disable=True)
    last = {}

    def cb(p, i, t, kw):
        last["latents"] = kw["latents"].clone()
        return kw
    del calls[:]
    kw = dict(prompt=prompt, num_inference_steps=steps, guidance_scale=g,
              generator=torch.Generator().manual_seed(seed), output_type="pil", num_images_per_prompt=n,
              callback_on_step_end=cb)
    if size is not None:
        kw.update(height=size, width=size)
    if kind == "sd":
        kw.update(negative_prompt=neg, guidance_rescale=rescale)
    else:
        assert neg is None and rescale == 0.0
    if kind == "lcm-img2img":
        kw["image"] = Image.open(os.path.join(INPUTS, start)).convert("RGB")
        if strength is not None:
            kw["strength"] = strength
    images = pipe(**kw).images
    u8 = np.stack([np.array(im.convert("RGB")) for im in images])
    lat = last["latents"]
    cfg = kind == "sd" and g > 1.0
    res = {
        "id": name, "pipeline": type(pipe).__name__, "model": model,
        "family_model_index_class": read_json(os.path.join(d, "model_index.json"))["_class_name"],
        "prompt": prompt, "negative_prompt": neg, "num_inference_steps": steps, "guidance_scale": g,
        "guidance_rescale": rescale, "do_classifier_free_guidance": cfg, "seed": seed,
        "num_images_per_prompt": n, "scheduler": sched_name, "scheduler_class": cls_name,
        "height": u8.shape[1], "width": u8.shape[2],
        "timesteps": [float(t) for t in scheduler.timesteps],
        "unet_calls": len(calls), "unet_batch": calls[0]["batch"],
        "timestep_cond_first4": calls[0]["timestep_cond_first4"],
        "pad_token": tok.pad_token, "pad_id": tok.pad,
        "ids_prompt": tok(prompt, padding="max_length", max_length=77, truncation=True).input_ids[0].tolist(),
        "ids_negative": tok(neg or "", padding="max_length", max_length=77, truncation=True).input_ids[0].tolist()
        if cfg else None,
        "files": {"rgb_u8": "cases/%s.rgb" % name, "latents_f32": "cases/%s.latents.f32" % name},
        "sha256_u8": sha256(u8.tobytes()),
        "image_stats": stats(u8), "latents_stats": stats(lat.numpy()),
        "_arrays": {"rgb_u8": u8.tobytes(), "latents_f32": lat.numpy().astype("<f4").tobytes()},
    }
    if kind == "lcm-img2img":
        res.update(task="img2img", image=start, strength_requested=strength,
                   strength=strength if strength is not None else 0.8)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusers-src", required=True)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    mtr.install_stubs(args.diffusers_src)
    import diffusers
    models = {}
    results = []
    with torch.no_grad():
        for case in CASES + LCM_IMG2IMG_CASES:
            r = run_case(case, models)
            results.append(r)
            print("%-32s %-32s %dx%d ts=%s image mean %.1f std %.1f latents std %.3f" % (
                r["id"], r["pipeline"], r["width"], r["height"], [int(t) for t in r["timesteps"]][:6],
                r["image_stats"]["mean"], r["image_stats"]["std"], r["latents_stats"]["std"]), flush=True)
    if args.check:
        old = read_json(os.path.join(args.out, "cases.json"))
        bad = 0
        for r, o in zip(results, old["cases"]):
            for key in ("rgb_u8", "latents_f32"):
                with open(os.path.join(args.out, o["files"][key]), "rb") as f:
                    same = f.read() == r["_arrays"][key]
                bad += not same
                print("%-32s %-12s %s" % (r["id"], key, "identical" if same else "DIFFERENT"))
        sys.exit(1 if bad or len(old["cases"]) != len(results) else 0)
    for r in results:
        for key, data in r["_arrays"].items():
            path = os.path.join(args.out, r["files"][key])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
    meta = {"generator": "tools/reference/make_family_references.py: diffusers %s pipelines (StableDiffusionPipeline, "
                         "LatentConsistencyModelPipeline, LatentConsistencyModelImg2ImgPipeline) around the fixtures' TorchScript artifacts, CPU, torch %s, "
                         "torch.set_num_threads(1), torch.no_grad()" % (diffusers.__version__, torch.__version__),
            "stubs": mtr.STUB_NOTES, "tolerances": TOLERANCES,
            "files": {"rgb_u8": "raw uint8 [n, height, width, 3] (n = num_images_per_prompt)",
                      "latents_f32": "raw little-endian float32 [n, 4, h/8, w/8]: the latents after the last step "
                                     "(LCM: the last step's denoised), before / scaling_factor"}}
    doc = {"meta": meta, "cases": [{k: v for k, v in r.items() if k != "_arrays"} for r in results]}
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", os.path.join(args.out, "cases.json"))


if __name__ == "__main__":
    main()
