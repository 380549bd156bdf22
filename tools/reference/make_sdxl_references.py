#!/usr/bin/python3
"""Reference outputs for SDXL text-to-image, image-to-image and inpainting, made by diffusers' OWN
StableDiffusionXLPipeline, StableDiffusionXLImg2ImgPipeline and StableDiffusionXLInpaintPipeline (diffusers source, not a
re-implementation) run around the TorchScript artifacts of the tiny SDXL fixture, on CPU, float32,
torch.set_num_threads(1), with a seeded CPU torch.Generator.

    git --git-dir=DIFFUSERS_GIT archive HEAD src | tar -x -C /tmp/diffusers
    /usr/bin/python3 tools/reference/make_sdxl_references.py --diffusers-src /tmp/diffusers/src           # writes
    /usr/bin/python3 tools/reference/make_sdxl_references.py --diffusers-src /tmp/diffusers/src --check   # compares

Model: src/all/test/resources/models/tiny-sdxl-fp32 (tools/model/make_tiny_sd.py --preset sdxl-tiny: AWS's SDXL sample
layout, <part>/model.pt). Output: src/all/test/resources/reference/sdxl/ (cases.json, cases/).

Stand-ins for what diffusers would load from transformers / the Hub (the import stubs are make_task_references.py's):
- text_encoder, text_encoder_2: AWS's TextEncoderOutputWrapper around <part>/model.pt (traced as AWS's
  TraceableTextEncoder): forward(ids, output_hidden_states=True) runs the TorchScript per row and returns an output
  whose [0] is the tuple's first element (text_encoder: last_hidden_state, 3-D; text_encoder_2: text_embeds, 2-D) and
  whose .hidden_states is the tuple's third; .config is the part's config.json, .dtype float32;
- unet: .config (unet/config.json + time_cond_proj_dim None), .add_embedding.linear_1.in_features
  (projection_class_embeddings_input_dim), called as AWS's NeuronUNet: unet.pt(sample, t.float().expand((B,)),
  encoder_hidden_states, text_embeds, time_ids)[0];
- vae: .config (vae/config.json), decode(z) = vae_decoder.pt(vae_post_quant_conv.pt(z));
- tokenizer, tokenizer_2: make_task_references.Tokenizer (transformers' slow CLIPTokenizer ids) with the pad token
  of each folder's special_tokens_map.json (tokenizer: <|endoftext|> = 49407; tokenizer_2: "!" = 0);
- scheduler: diffusers' EulerDiscreteScheduler / DPMSolverMultistepScheduler .from_config(scheduler_config.json).
force_zeros_for_empty_prompt is the pipeline's constructor argument (model_index.json, or the case's override).
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
MODEL = os.path.join(REPO, "src", "all", "test", "resources", "models", "tiny-sdxl-fp32")
OUT = os.path.join(REPO, "src", "all", "test", "resources", "reference", "sdxl")
MODEL9 = os.path.join(REPO, "src", "all", "test", "resources", "models", "tiny-sdxl-inpaint-fp32")
INPUTS = os.path.join(REPO, "src", "all", "test", "resources", "reference", "tasks", "inputs")
sys.path.insert(0, HERE)
import make_task_references as mtr  # noqa: E402

EULER = "EulerDiscreteScheduler"
DPM = "DPMSolverMultistepScheduler"
P1 = "a watercolor painting of a lighthouse at dusk"
P2 = "a red circle on a blue background"

# id, prompt, negative prompt (None = not given), steps, guidance, seed, scheduler (None = the model's), height,
# width, guidance_rescale, images per prompt, force_zeros_for_empty_prompt
CASES = [
    ("euler_g5_noneg_seed42", P1, None, 12, 5.0, 42, None, None, None, 0.0, 1, True),
    ("euler_g7.5_emptyneg_seed42", P1, "", 12, 7.5, 42, None, None, None, 0.0, 1, True),
    ("euler_g6_neg_seed7", P2, "blurry, low quality", 10, 6.0, 7, None, None, None, 0.0, 1, True),
    ("euler_g5_noneg_nozeros_seed42", P1, None, 12, 5.0, 42, None, None, None, 0.0, 1, False),
    ("euler_g5_64x128_seed3", P2, None, 10, 5.0, 3, None, 64, 128, 0.0, 1, True),
    ("euler_g7_rescale0.7_seed11", P1, "dark", 10, 7.0, 11, None, None, None, 0.7, 1, True),
    ("euler_g1_nocfg_seed5", P2, None, 8, 1.0, 5, None, None, None, 0.0, 1, True),
    ("dpm_g5_noneg_seed13", P1, None, 10, 5.0, 13, DPM, None, None, 0.0, 1, True),
    ("euler_g5_two_images_seed21", P2, "", 8, 5.0, 21, None, None, None, 0.0, 2, True),
]

# image-to-image (StableDiffusionXLImg2ImgPipeline, requires_aesthetics_score False as for the base model): id, prompt,
# negative prompt, steps, guidance, seed, scheduler, strength (None = the pipeline's default, 0.3), guidance_rescale,
# images per prompt, start image (reference/tasks/inputs/)
IMG2IMG_CASES = [
    ("img2img_euler_default_strength_seed42", P1, None, 20, 5.0, 42, None, None, 0.0, 1, "start_64.png"),
    ("img2img_euler_s0.6_neg_seed7", P2, "blurry", 10, 6.0, 7, None, 0.6, 0.0, 1, "start_64.png"),
    ("img2img_dpm_s1.0_nocfg_seed3", P2, None, 8, 1.0, 3, DPM, 1.0, 0.0, 1, "start_64.png"),
    ("img2img_euler_s0.5_two_images_seed21", P1, "", 10, 5.0, 21, None, 0.5, 0.0, 2, "start_64.png"),
    ("img2img_euler_s0.75_133x100_seed5", P2, None, 8, 5.0, 5, None, 0.75, 0.0, 1, "start_133x100.png"),
]

# inpainting (StableDiffusionXLInpaintPipeline, requires_aesthetics_score False, the model's 4-channel UNet): id,
# prompt, negative prompt, steps, guidance, seed, scheduler, strength (None = the pipeline's default, 0.9999),
# guidance_rescale, images per prompt, start image, mask (reference/tasks/inputs/)
INPAINT_CASES = [
    ("inpaint_euler_default_strength_seed42", P1, None, 12, 5.0, 42, None, None, 0.0, 1, "start_64.png", "mask_64.png"),
    ("inpaint_euler_s1.0_neg_seed7", P2, "blurry", 10, 6.0, 7, None, 1.0, 0.0, 1, "start_64.png", "mask_64.png"),
    ("inpaint_dpm_s0.6_nocfg_seed3", P2, None, 10, 1.0, 3, DPM, 0.6, 0.0, 1, "start_64.png", "mask_64.png"),
    ("inpaint_euler_s0.8_two_images_seed21", P1, "", 10, 5.0, 21, None, 0.8, 0.0, 2, "start_64.png", "mask_64.png"),
    # the same with models/tiny-sdxl-inpaint-fp32: a 9-channel inpainting UNet (latents, mask, masked-image latents);
    # at strength 1.0 the image is not encoded (pure noise), only the masked image
    ("inpaint9_euler_default_strength_seed42", P1, None, 12, 5.0, 42, None, None, 0.0, 1, "start_64.png", "mask_64.png",
     MODEL9),
    ("inpaint9_euler_s1.0_neg_seed7", P2, "blurry", 10, 6.0, 7, None, 1.0, 0.0, 1, "start_64.png", "mask_64.png",
     MODEL9),
    ("inpaint9_dpm_s0.6_nocfg_two_images_seed3", P2, None, 10, 1.0, 3, DPM, 0.6, 0.0, 2, "start_64.png",
     "mask_64.png", MODEL9),
]

TOLERANCES = {"image_max_abs": 2, "image_mean_abs": 0.05, "latents_max_abs_rel": 1e-4, "embeds_max_abs_rel": 1e-5,
              "note": "float32 everywhere. image: uint8 HWC per image, max |d| and mean |d| over H*W*3. *_rel: max "
                      "|d| <= tol * max|ref| over the array"}


def read_json(p):
    with open(p) as f:
        return json.load(f)


class Tok(mtr.Tokenizer):
    """make_task_references.Tokenizer with the pad token of the folder's special_tokens_map.json."""

    def __init__(self, model_dir, sub):
        super().__init__(model_dir)  # the same vocabulary and merges in both folders
        pad = read_json(os.path.join(model_dir, sub, "special_tokens_map.json"))["pad_token"]
        pad = pad["content"] if isinstance(pad, dict) else pad
        self.pad = self.clip.added[pad] if pad in self.clip.added else self.clip.encoder[pad]


CALLS = []


def stand_ins(d):
    from diffusers.configuration_utils import FrozenDict

    class Module(torch.nn.Module):
        @property
        def device(self):
            return torch.device("cpu")

        @property
        def dtype(self):
            return torch.float32

    class TextEncoder(Module):
        def __init__(self, part):
            super().__init__()
            self.part = part
            self.ts = torch.jit.load(os.path.join(d, part, "model.pt")).eval()
            self.config = FrozenDict(read_json(os.path.join(d, part, "config.json")))

        def forward(self, input_ids, output_hidden_states=None):
            assert output_hidden_states
            rows = [self.ts(input_ids[i:i + 1]) for i in range(input_ids.shape[0])]  # traced at batch 1, as AWS's
            first = torch.cat([r[0] for r in rows])
            hidden = tuple(torch.cat([r[2][k] for r in rows]) for k in range(len(rows[0][2])))
            CALLS.append({"part": self.part, "ids": input_ids.tolist()})
            out = types.SimpleNamespace(hidden_states=hidden)
            return _Indexable(first, out)

    class UNet(Module):
        def __init__(self):
            super().__init__()
            self.ts = torch.jit.load(os.path.join(d, "unet", "model.pt")).eval()
            cfg = {"time_cond_proj_dim": None}
            cfg.update(read_json(os.path.join(d, "unet", "config.json")))
            self.config = FrozenDict(cfg)
            self.add_embedding = types.SimpleNamespace(linear_1=types.SimpleNamespace(
                in_features=cfg["projection_class_embeddings_input_dim"]))

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None, cross_attention_kwargs=None,
                    added_cond_kwargs=None, return_dict=True):
            assert timestep_cond is None and cross_attention_kwargs is None
            b = sample.shape[0]
            t = torch.as_tensor(timestep).float().expand((b,))  # AWS's NeuronUNet
            te, ti = added_cond_kwargs["text_embeds"], added_cond_kwargs["time_ids"]
            CALLS.append({"part": "unet", "t": float(torch.as_tensor(timestep)), "ehs": encoder_hidden_states.clone(),
                          "text_embeds": te.clone(), "time_ids": ti.clone()})
            eps = self.ts(sample, t, encoder_hidden_states, te, ti)[0]
            return (eps,) if not return_dict else types.SimpleNamespace(sample=eps)

    class Vae(Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.jit.load(os.path.join(d, "vae_encoder", "model.pt")).eval()
            self.pq = torch.jit.load(os.path.join(d, "vae_post_quant_conv", "model.pt")).eval()
            self.dec = torch.jit.load(os.path.join(d, "vae_decoder", "model.pt")).eval()
            self.config = FrozenDict(read_json(os.path.join(d, "vae", "config.json")))

        def encode(self, x, return_dict=True):
            from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
            from diffusers.models.modeling_outputs import AutoencoderKLOutput
            moments = self.enc(x)["latent_parameters"]
            CALLS.append({"part": "vae_encoder", "moments": moments.clone()})
            out = AutoencoderKLOutput(latent_dist=DiagonalGaussianDistribution(moments))
            return out if return_dict else (out.latent_dist,)

        def decode(self, z, return_dict=True, generator=None):
            img = self.dec(self.pq(z))
            return (img,) if not return_dict else types.SimpleNamespace(sample=img)

    return TextEncoder("text_encoder"), TextEncoder("text_encoder_2"), UNet(), Vae()


class _Indexable:
    """CLIPTextModelOutput as AWS's TextEncoderOutputWrapper builds it: [0] = the traced tuple's first element."""

    def __init__(self, first, rest):
        self.first, self.hidden_states = first, rest.hidden_states

    def __getitem__(self, i):
        assert i == 0
        return self.first


def f32(t):
    return t.detach().cpu().numpy().astype("<f4").tobytes()


def run_case(case, parts):
    from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import StableDiffusionXLPipeline
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import \
        StableDiffusionXLImg2ImgPipeline
    from PIL import Image
    img2img = len(case) == 11
    inpaint = len(case) >= 12 and isinstance(case[11], str)
    model = case[12] if len(case) == 13 else MODEL
    if img2img:
        cid, prompt, neg, steps, g, seed, sched, strength, rescale, n, start = case
        h = w = None
        zeros = True
    elif inpaint:
        cid, prompt, neg, steps, g, seed, sched, strength, rescale, n, start, mask = case[:12]
        h = w = None
        zeros = True
    else:
        cid, prompt, neg, steps, g, seed, sched, h, w, rescale, n, zeros = case
    te1, te2, unet, vae = parts(model)
    cfg = read_json(os.path.join(model, "scheduler", "scheduler_config.json"))
    cls = {EULER: EulerDiscreteScheduler, DPM: DPMSolverMultistepScheduler}[sched or cfg["_class_name"]]
    common = dict(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=Tok(model, "tokenizer"),
                  tokenizer_2=Tok(model, "tokenizer_2"), unet=unet, scheduler=cls.from_config(cfg),
                  force_zeros_for_empty_prompt=zeros, add_watermarker=False)
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_inpaint import \
        StableDiffusionXLInpaintPipeline
    if img2img:
        pipe = StableDiffusionXLImg2ImgPipeline(requires_aesthetics_score=False, **common)
    elif inpaint:
        pipe = StableDiffusionXLInpaintPipeline(requires_aesthetics_score=False, **common)
    else:
        pipe = StableDiffusionXLPipeline(**common)
    pipe.set_progress_bar_config(disable=True)
    outs = {}
    for output_type in ("latent", "pil"):
        del CALLS[:]
        pipe.scheduler = cls.from_config(cfg)
        kw = dict(prompt=prompt, negative_prompt=neg, num_inference_steps=steps, guidance_scale=g,
                  generator=torch.Generator().manual_seed(seed), guidance_rescale=rescale, num_images_per_prompt=n,
                  output_type=output_type)
        if img2img or inpaint:
            kw["image"] = Image.open(os.path.join(INPUTS, start)).convert("RGB")
            if strength is not None:
                kw["strength"] = strength
            if inpaint:
                kw["mask_image"] = Image.open(os.path.join(INPUTS, mask))
        else:
            kw.update(height=h, width=w)
        res = pipe(**kw)
        outs[output_type] = (res.images, list(CALLS))
    lat = outs["latent"][0]
    images, calls = outs["pil"]
    u8 = np.stack([np.array(im.convert("RGB")) for im in images])
    unet_calls = [c for c in calls if c["part"] == "unet"]
    encodes = [c for c in calls if c["part"] == "vae_encoder"]
    first = unet_calls[0]
    arrays = {"rgb_u8": u8.tobytes(), "latents_f32": f32(lat), "ehs_f32": f32(first["ehs"]),
              "text_embeds_f32": f32(first["text_embeds"])}
    sch = pipe.scheduler
    res = {
        "id": cid, "prompt": prompt, "negative_prompt": neg, "num_inference_steps": steps, "guidance_scale": g,
        "seed": seed, "scheduler": cls.__name__, "scheduler_requested": sched, "height": u8.shape[1],
        "width": u8.shape[2], "height_requested": h, "width_requested": w, "guidance_rescale": rescale,
        "num_images_per_prompt": n, "force_zeros_for_empty_prompt": zeros,
        "do_classifier_free_guidance": g > 1.0,
        "timestep_spacing": dict(sch.config)["timestep_spacing"],
        "timesteps": [float(t) for t in sch.timesteps],
        "unet_calls": len(unet_calls), "unet_timesteps": [c["t"] for c in unet_calls],
        "time_ids": first["time_ids"].tolist(),
        "ehs_shape": list(first["ehs"].shape), "text_embeds_shape": list(first["text_embeds"].shape),
        "text_encoder_calls": [{"part": c["part"], "ids": c["ids"][0]} for c in calls
                               if c["part"].startswith("text_encoder")],
        "uncond_zeros": bool(g > 1.0 and float(first["ehs"][:n].abs().max()) == 0.0),
        "files": {k: "cases/%s.%s" % (cid, k.replace("_f32", ".f32").replace("_u8", "")) for k in arrays},
        "sha256_u8": hashlib.sha256(u8.tobytes()).hexdigest(),
    }
    if img2img or inpaint:
        res.update(task="img2img" if img2img else "inpaint", image=start, strength_requested=strength,
                   strength=strength if strength is not None else (0.3 if img2img else 0.9999),
                   vae_encoder_calls=len(encodes))
        arrays["moments_f32"] = f32(encodes[0]["moments"])
        res["files"]["moments_f32"] = "cases/%s.moments.f32" % cid
        if inpaint:
            res["mask"] = mask
            res["model"] = os.path.basename(model)
            res["unet_in_channels"] = int(unet.config["in_channels"])
    else:
        res["task"] = "txt2img"
    res["files"]["png"] = "cases/%s.png" % cid
    return res, arrays, u8


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusers-src", default=os.environ.get("DIFFUSERS_SRC", "/tmp/diffusers/src"))
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    mtr.install_stubs(args.diffusers_src)
    import diffusers
    from PIL import Image
    cache = {}

    def parts(model):
        if model not in cache:
            cache[model] = stand_ins(model)
        return cache[model]
    results, bad = [], 0
    with torch.no_grad():
        for c in CASES + IMG2IMG_CASES + INPAINT_CASES:
            r, arrays, u8 = run_case(c, parts)
            print("%-32s %dx%d x%d %s steps %d t0 %s zeros %s img mean %.1f" % (
                r["id"], r["width"], r["height"], r["num_images_per_prompt"], r["scheduler"][:5], r["unet_calls"], r["unet_timesteps"][0],
                r["uncond_zeros"], float(u8.mean())), flush=True)
            if args.check:
                for k, data in arrays.items():
                    with open(os.path.join(args.out, r["files"][k]), "rb") as f:
                        same = f.read() == data
                    bad += not same
                    print("  %-16s %s" % (k, "identical" if same else "DIFFERENT"))
            else:
                os.makedirs(os.path.join(args.out, "cases"), exist_ok=True)
                for k, data in arrays.items():
                    with open(os.path.join(args.out, r["files"][k]), "wb") as f:
                        f.write(data)
                Image.fromarray(np.concatenate(list(u8), axis=1)).save(os.path.join(args.out, r["files"]["png"]))
            results.append(r)
    meta = {"generator": "tools/reference/make_sdxl_references.py: diffusers' own StableDiffusionXLPipeline around the "
                         "TorchScript artifacts of models/tiny-sdxl-fp32 (stand-ins in the script), CPU, float32, "
                         "torch.set_num_threads(1)",
            "diffusers_version": diffusers.__version__, "torch": torch.__version__,
            "stubs": mtr.STUB_NOTES, "tolerances": TOLERANCES, "model": "src/all/test/resources/models/tiny-sdxl-fp32",
            "files": {"rgb": "raw uint8 [n,H,W,3] (the pil images); png: the same, side by side",
                      "latents.f32": "raw little-endian float32 [n,4,h/8,w/8]: output_type='latent'",
                      "ehs.f32": "the UNet's encoder_hidden_states at the first step [rows,77,H1+H2] (rows: uncond "
                                 "then cond under guidance)",
                      "text_embeds.f32": "the UNet's text_embeds at the first step [rows,P]",
                      "moments.f32": "img2img, inpaint: the first VAE encoder output, latent_parameters "
                                     "[1,8,h/8,w/8] (StableDiffusionXLImg2ImgPipeline / StableDiffusionXLInpaint"
                                     "Pipeline(requires_aesthetics_score=False), the start image and mask from "
                                     "reference/tasks/inputs/; inpainting encodes the image (unless strength is 1.0 "
                                     "with a 9-channel UNet), then the masked image)"}}
    doc = {"meta": meta, "cases": results}
    if args.check:
        same = json.loads(json.dumps(doc)) == read_json(os.path.join(args.out, "cases.json"))
        bad += not same
        print("cases.json", "identical" if same else "DIFFERENT")
        print("check: %d differences" % bad)
        sys.exit(1 if bad else 0)
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", os.path.join(args.out, "cases.json"))


if __name__ == "__main__":
    main()
