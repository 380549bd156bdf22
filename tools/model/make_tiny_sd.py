#!/usr/bin/python3
"""Write a Stable Diffusion 2.1 model directory in the AWS Inferentia2 layout ("sd2_512_root") with
random (seeded) weights, traced to TorchScript with torch.jit.trace on CPU.

    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny --dtype fp32 --out src/all/test/resources/models/tiny-sd21-fp32
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny --dtype bf16 --out src/all/test/resources/models/tiny-sd21-bf16
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset sd21-base --out /tmp/sd21-base-random   # ~5 GB, benchmarks

img2img / inpainting fixtures (the VAE encoder as a fifth artifact; a 9-channel inpainting unet):
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny --dtype fp32 --with-vae-encoder \
        --out src/all/test/resources/models/tiny-sd21-fp32 --update
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny --dtype fp32 --with-vae-encoder --unet-in-channels 9 \
        --link-identical src/all/test/resources/models/tiny-sd21-fp32 --out src/all/test/resources/models/tiny-sd21-inpaint-fp32
Add --check to any command to compare a fresh run with the --out directory instead of writing it.

Other model families (tiny, float32, each in the layout of AWS's sample for that family; see FAMILIES):
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny-sd15 --out src/all/test/resources/models/tiny-sd15-fp32
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny-sd2v --link-identical src/all/test/resources/models/tiny-sd21-fp32 \
        --out src/all/test/resources/models/tiny-sd2v-fp32
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny-lcm --link-identical src/all/test/resources/models/tiny-sd15-fp32 \
        --out src/all/test/resources/models/tiny-lcm-fp32
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny-turbo --link-identical src/all/test/resources/models/tiny-sd21-fp32 \
        --out src/all/test/resources/models/tiny-turbo-fp32
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset sd15 --out /tmp/sd15-random   # full-size SD 1.5, ~4 GB fp32
SDXL (diffusers' UNet2DConditionModel/AutoencoderKL from a diffusers source tree, two CLIP encoders; AWS's SDXL sample
layout <part>/model.pt; see sdxl_export.py):
    git --git-dir=DIFFUSERS_GIT archive HEAD src | tar -x -C /tmp/diffusers
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset sdxl-tiny --diffusers-src /tmp/diffusers/src \
        --out src/all/test/resources/models/tiny-sdxl-fp32   # tokenizer files copied: git stores them once
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset sdxl-base --diffusers-src /tmp/diffusers/src \
        --out /tmp/sdxl-base-random   # full size, ~14 GB float32 (2.6 B UNet parameters), for a full-size step
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset sdxl-tiny --unet-in-channels 9 --diffusers-src /tmp/diffusers/src \
        --link-tokenizer --out src/all/test/resources/models/tiny-sdxl-inpaint-fp32   # an SDXL inpainting UNet
    (add --dtype bf16 for a bfloat16 UNet, 5 GB, and --height 512 --width 512 to trace at 512x512: the trace at 1024
    runs a 1024x1024 fp32 UNet forward, over 13 minutes on 2 cores)

Layout written:
    compiled_models/{text_encoder.pt,unet.pt,vae_decoder.pt,vae_post_quant_conv.pt,sdjvm-manifest.json}
    [compiled_models/vae_encoder.pt with --with-vae-encoder]
    model_index.json scheduler/scheduler_config.json tokenizer/* feature_extractor/preprocessor_config.json
    text_encoder/config.json unet/config.json vae/config.json README.md
The module wrappers follow AWS's sample (see sd_arch.TextEncoderWrap / UNetWrap). ``export_model`` is also used
by train_shapes.py to export trained weights.
"""
import argparse
import copy
import hashlib
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_arch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/<group>/x.py
REF = os.path.join(REPO, "src", "all", "test", "resources", "reference", "pipeline", "tiny-sd21-dev")
SCALED_LINEAR = (0.00085, 0.012, 1000)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.int64: "int64"}


# published scheduler configs (diffusers keys), as the model repositories ship them
SCHED_SD15 = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
              "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
              "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
              "clip_sample": False}
SCHED_SD21_768 = {"_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
                  "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
                  "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None}
SCHED_LCM = {"_class_name": "LCMScheduler", "_diffusers_version": "0.22.0.dev0", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "clip_sample_range": 1.0,
             "dynamic_thresholding_ratio": 0.995, "num_train_timesteps": 1000, "original_inference_steps": 50,
             "prediction_type": "epsilon", "rescale_betas_zero_snr": False, "sample_max_value": 1.0,
             "set_alpha_to_one": True, "steps_offset": 1, "thresholding": False, "timestep_scaling": 10.0,
             "timestep_spacing": "leading", "trained_betas": None}
SCHED_TURBO = {"_class_name": "EulerAncestralDiscreteScheduler", "_diffusers_version": "0.24.0.dev0",
               "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
               "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
               "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
               "timestep_spacing": "trailing", "trained_betas": None, "use_karras_sigmas": False}

# Per preset: what makes the family (on top of sd_arch.preset's dimensions). text_act: the text encoder's activation
# (SD 1.x's CLIP ViT-L: quick_gelu); pad: the tokenizer's pad token (SD 1.x: <|endoftext|>, SD 2.x: "!"); outputs:
# the text encoder / unet output kinds of AWS's sample for the family (SD 1.5: a (last_hidden_state, pooler_output)
# tuple and a bare noise tensor); sample_size: latent side; time_cond_proj_dim: the LCM guidance embedding's width.
FAMILIES = {
    "tiny": {"base": "tiny"},
    "sd21-base": {"base": "sd21-base"},
    "tiny-sd15": {"base": "tiny", "text_act": "quick_gelu", "pad": "<|endoftext|>", "text_output": "tuple",
                  "unet_output": "tensor", "scheduler": SCHED_SD15},
    "sd15": {"base": "sd15", "text_act": "quick_gelu", "pad": "<|endoftext|>", "text_output": "tuple",
             "unet_output": "tensor", "scheduler": SCHED_SD15},
    "tiny-sd2v": {"base": "tiny", "sample_size": 12, "scheduler": SCHED_SD21_768},
    "tiny-lcm": {"base": "tiny", "text_act": "quick_gelu", "pad": "<|endoftext|>", "text_output": "tuple",
                 "unet_output": "tuple", "scheduler": SCHED_LCM, "time_cond_proj_dim": 32,
                 "pipeline_class": "LatentConsistencyModelPipeline"},
    "tiny-turbo": {"base": "tiny", "scheduler": SCHED_TURBO},
}


FAMILY_NOTES = {
    "tiny-sd15": "\nPreset `tiny-sd15`: **SD 1.5-shaped** in the layout of AWS's SD 1.5 sample: text encoder activation "
                 "quick_gelu (CLIP ViT-L), tokenizer pad token `<|endoftext|>` (49407), text_encoder.pt returns a "
                 "(last_hidden_state, pooler_output) tuple, unet.pt a bare noise tensor; SD 1.5's published "
                 "PNDMScheduler config.\n",
    "tiny-sd2v": "\nPreset `tiny-sd2v`: **SD 2.x 768 v-prediction shaped**: the published stable-diffusion-2-1 "
                 "(768) scheduler config (DDIMScheduler, prediction_type v_prediction); unet sample_size 12, so the "
                 "default image is 96x96 (sample_size x VAE scale 8, as 96 x 8 = 768 for the real model).\n",
    "tiny-lcm": "\nPreset `tiny-lcm`: **LCM-shaped**: unet/config.json time_cond_proj_dim 32, unet.pt takes a fourth "
                "input timestep_cond [B,32] (the guidance-scale embedding; fitted with random w in 0..14), "
                "LCMScheduler config (original_inference_steps 50, timestep_scaling 10), model_index.json "
                "LatentConsistencyModelPipeline; SD 1.5-style text encoder and tokenizer.\n",
    "tiny-turbo": "\nPreset `tiny-turbo`: **Turbo-shaped** (few-step): the SD 2.1 tiny weights with an "
                  "EulerAncestralDiscreteScheduler config whose timestep_spacing is trailing.\n",
}


def guidance_embedding(w, dim):
    """diffusers' LatentConsistencyModelPipeline.get_guidance_scale_embedding (w = guidance_scale - 1)."""
    w = w * 1000.0
    half = dim // 2
    emb = torch.log(torch.tensor(10000.0)) / (half - 1)
    emb = torch.exp(torch.arange(half, dtype=torch.float32) * -emb)
    emb = w.to(torch.float32)[:, None] * emb[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    if dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def alphas_cumprod():
    b0, b1, n = SCALED_LINEAR
    betas = torch.linspace(b0 ** 0.5, b1 ** 0.5, n, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def build(text_cfg, unet_cfg, vae_cfg, seed):
    """Seeded construction; init = PyTorch defaults plus larger embedding init (prompts visibly matter)."""
    torch.manual_seed(seed)
    te = sd_arch.CLIPTextModel(text_cfg)
    nn_init_embeddings(te)
    unet = sd_arch.UNet2DConditionModel(unet_cfg)
    vae = sd_arch.AutoencoderKL(vae_cfg)
    return te.eval(), unet.eval(), vae.eval()


def nn_init_embeddings(te):
    with torch.no_grad():
        te.text_model.embeddings.token_embedding.weight.normal_(0.0, 0.5)
        te.text_model.embeddings.position_embedding.weight.normal_(0.0, 0.1)


def fit_unet_gaussian(unet, text_dim, latent_hw, steps, seed):
    """Make a random unet a plausible noise predictor: a short Adam fit to x0 ~ N(0, 1) data, where the optimal
    prediction is eps* = sqrt(1 - abar_t) * x_t. Keeps sampled latents at std ~1 over a DPM-Solver run."""
    if steps <= 0:
        return
    g = torch.Generator().manual_seed(seed + 1)
    ac = alphas_cumprod()
    opt = torch.optim.Adam(unet.parameters(), lr=1e-3)
    unet.train()
    h, w = latent_hw
    for _ in range(steps):
        x0 = torch.randn(8, 4, h, w, generator=g)
        eps = torch.randn(8, 4, h, w, generator=g)
        t = torch.randint(0, 1000, (8,), generator=g)
        a = ac[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        ctx = torch.randn(8, 77, text_dim, generator=g)
        tcd = unet.config.get("time_cond_proj_dim")
        # an LCM unet also sees guidance embeddings of w = guidance_scale - 1 in 0..14 (so that w matters)
        cond = guidance_embedding(torch.rand(8, generator=g) * 14, tcd) if tcd else None
        pred = unet(xt, t.float(), ctx, cond)[0]
        loss = torch.mean((pred - eps) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    unet.eval()


def scale_output(conv, module_fn, target_std):
    """Rescale a final conv so the module output has the given std on its probe input."""
    with torch.no_grad():
        s = module_fn().float().std().item()
        f = target_std / max(s, 1e-8)
        conv.weight.mul_(f)
        conv.bias.mul_(f)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def io(name, t):
    return {"name": name, "dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape)}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def trace_save(module, inputs, path, strict=True):
    traced = torch.jit.trace(module, inputs, strict=strict, check_trace=False)
    tmpdir = path + ".d"
    os.makedirs(tmpdir, exist_ok=True)
    tmp = os.path.join(tmpdir, os.path.basename(path))
    torch.jit.save(traced, tmp)
    strip_debug_records(tmp, path)
    shutil.rmtree(tmpdir)
    return traced


def strip_debug_records(src, dst):
    """Rewrite a TorchScript archive without its *.debug_pkl records (Python source ranges with absolute paths):
    smaller files, byte-reproducible from any checkout directory. Uses torch's own zip writer (aligned records).
    The archive's top folder is named after dst's file name, as torch.jit.save does."""
    r = torch._C.PyTorchFileReader(src)
    w = torch._C.PyTorchFileWriter(dst)
    for name in sorted(r.get_all_records()):
        if name.endswith(".debug_pkl") or name in ("version", ".data/version"):
            continue
        b = r.get_record(name)
        w.write_record(name, b, len(b))
    w.write_end_of_file()
    del w


def export_model(out, te, unet, vae, text_cfg, unet_cfg, vae_cfg, height, width, dtype=torch.float32,
                 text_output="dict", unet_output="tuple", manifest=True, note=None, readme=None,
                 created_by="tools/model/make_tiny_sd.py", vae_encoder=False, pipeline_class=None, scheduler=None,
                 pad=None):
    """Trace the four AWS-style modules (and, with vae_encoder, the VAE encoder as a fifth) and write the whole
    model directory. The unet's sample has unet_cfg["in_channels"] channels (9 for an inpainting unet).
    pipeline_class overrides model_index.json's _class_name. Returns the manifest dict."""
    os.makedirs(os.path.join(out, "compiled_models"), exist_ok=True)
    cm = os.path.join(out, "compiled_models")
    lh, lw = height // 8, width // 8
    H = text_cfg["hidden_size"]
    times = {}
    with torch.no_grad():
        te_d = te.to(dtype)
        unet_d = unet.to(dtype)
        ids = torch.zeros(1, 77, dtype=torch.int64)
        ids[0, 0] = 49406
        ids[0, 1] = 320
        ids[0, 2] = 49407
        t0 = time.time()
        tw = sd_arch.TextEncoderWrap(te_d, text_output).eval()
        trace_save(tw, (ids,), os.path.join(cm, "text_encoder.pt"), strict=(text_output == "tensor"))
        times["text_encoder"] = time.time() - t0
        # output metadata from the known contracts (no second forward: matters for the full-size preset)
        last = torch.empty(1, 77, H, dtype=dtype)
        pooled = torch.empty(1, H, dtype=dtype)
        te_outs = [io("last_hidden_state", last)] + ([io("pooler_output", pooled)] if text_output != "tensor" else [])

        cin = unet_cfg.get("in_channels", 4)
        sample = torch.randn(1, cin, lh, lw, generator=torch.Generator().manual_seed(0)).to(dtype)
        timestep = torch.tensor(999.0).expand((1,)).to(dtype)
        ehs = torch.randn(1, 77, H, generator=torch.Generator().manual_seed(1)).to(dtype)
        t0 = time.time()
        tcd = unet_cfg.get("time_cond_proj_dim")
        if tcd:
            tcond = guidance_embedding(torch.tensor([7.5]), tcd).to(dtype)
            uw = sd_arch.LCMUNetWrap(unet_d, unet_output).eval()
            trace_save(uw, (sample, timestep, ehs, tcond), os.path.join(cm, "unet.pt"))
        else:
            uw = sd_arch.UNetWrap(unet_d, unet_output).eval()
            trace_save(uw, (sample, timestep, ehs), os.path.join(cm, "unet.pt"))
        u_out = torch.empty(1, unet_cfg.get("out_channels", 4), lh, lw, dtype=dtype)
        times["unet"] = time.time() - t0

        z = torch.randn(1, 4, lh, lw, generator=torch.Generator().manual_seed(2))
        t0 = time.time()
        trace_save(vae.post_quant_conv, (z,), os.path.join(cm, "vae_post_quant_conv.pt"))
        pq = torch.empty(1, 4, lh, lw)
        dw = sd_arch.VAEDecoderWrap(vae.decoder).eval()
        trace_save(dw, (z,), os.path.join(cm, "vae_decoder.pt"))
        img = torch.empty(1, 3, height, width)
        if vae_encoder:
            # image in [-1, 1]; traced non-strict for the dict output, as optimum-neuron exports the encoder
            x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(3)) * 2 - 1
            ew = sd_arch.VAEEncoderWrap(vae.encoder, vae.quant_conv).eval()
            trace_save(ew, (x,), os.path.join(cm, "vae_encoder.pt"), strict=False)
            moments = torch.empty(1, 2 * vae_cfg["latent_channels"], lh, lw)
        times["vae"] = time.time() - t0
        te.float()
        unet.float()

    man = {
        "format": "sdjvm-manifest/1", "target": "cpu", "created_by": created_by,
        "torch": torch.__version__, "torch_neuronx": None, "neuronx_cc": None,
        "height": height, "width": width,
        "artifacts": {
            "text_encoder": {"file": "text_encoder.pt", "batch": 1, "output_kind": text_output,
                             "inputs": [io("input_ids", ids)], "outputs": te_outs},
            "unet": {"file": "unet.pt", "batch": None, "output_kind": unet_output,
                     "inputs": [io("sample", sample), io("timestep", timestep), io("encoder_hidden_states", ehs)]
                               + ([io("timestep_cond", tcond)] if tcd else []),
                     "outputs": [io("noise_pred", u_out)]},
            "vae_post_quant_conv": {"file": "vae_post_quant_conv.pt", "batch": None,
                                    "inputs": [io("latent", z)], "outputs": [io("latent", pq)]},
            "vae_decoder": {"file": "vae_decoder.pt", "batch": None,
                            "inputs": [io("latent", z)], "outputs": [io("image", img)]},
        },
    }
    if vae_encoder:
        man["artifacts"]["vae_encoder"] = {"file": "vae_encoder.pt", "batch": None, "output_kind": "dict",
                                           "inputs": [io("sample", x)],
                                           "outputs": [io("latent_parameters", moments)]}
    if manifest:
        write_json(os.path.join(cm, "sdjvm-manifest.json"), man)

    # static files from the reference layout
    for rel in ["model_index.json", "scheduler/scheduler_config.json", "feature_extractor/preprocessor_config.json",
                "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
                "tokenizer/tokenizer_config.json"]:
        dst = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(REF, rel), dst)
    if pipeline_class or scheduler:
        mi = os.path.join(out, "model_index.json")
        with open(mi) as f:
            idx = json.load(f)
        if pipeline_class:
            idx["_class_name"] = pipeline_class
        if scheduler:
            idx["scheduler"] = ["diffusers", scheduler["_class_name"]]
            write_json(os.path.join(out, "scheduler", "scheduler_config.json"), scheduler)
        write_json(mi, idx)
    if pad:
        # the tokenizer's pad token as the family's tokenizer files name it (SD 1.x: <|endoftext|> = 49407)
        for fn in ("special_tokens_map.json", "tokenizer_config.json"):
            path = os.path.join(out, "tokenizer", fn)
            with open(path) as f:
                tok = json.load(f)
            tok["pad_token"] = pad
            write_json(path, tok)
    dname = "bfloat16" if dtype == torch.bfloat16 else "float32"
    tc = dict(text_cfg)
    tc["torch_dtype"] = dname
    uc = dict(unet_cfg)
    vc = dict(vae_cfg)
    if note:
        for c in (tc, uc, vc):
            c["_sdjvm_note"] = note
    write_json(os.path.join(out, "text_encoder", "config.json"), tc)
    write_json(os.path.join(out, "unet", "config.json"), uc)
    write_json(os.path.join(out, "vae", "config.json"), vc)
    if readme is not None:
        with open(os.path.join(out, "README.md"), "w") as f:
            f.write(readme)
    return man, times


def dir_listing(out):
    """(relative path, bytes, link) for every file under out, through directory links; link is the target of a
    file that is a symbolic link, else None."""
    rows = []
    for root, _, files in os.walk(out, followlinks=True):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            rows.append((os.path.relpath(p, out), os.path.getsize(p), os.readlink(p) if os.path.islink(p) else None))
    return sorted(rows)


def dir_links(out):
    """Top-level directories of out that are symbolic links: {name: target}."""
    return {d: os.readlink(os.path.join(out, d)) for d in sorted(os.listdir(out))
            if os.path.islink(os.path.join(out, d)) and os.path.isdir(os.path.join(out, d))}


def calibrate_vae_encoder(vae, seed, h, w):
    """Rescale quant_conv (used by the encoder artifact only: the other artifacts stay byte-identical) so that on
    a probe image in [-1, 1] the posterior mean times scaling_factor has std ~1 (the latent scale the unet was
    fitted to) and logvar is ~N(-1, 0.5^2), i.e. a posterior std of ~0.6 in unscaled units (~0.11 after
    scaling_factor): big enough that the random draw of DiagonalGaussianDistribution.sample visibly matters."""
    lc = vae.config["latent_channels"]
    sf = vae.config["scaling_factor"]
    g = torch.Generator().manual_seed(seed + 3)
    x = torch.rand(1, 3, min(h, 64), min(w, 64), generator=g) * 2 - 1
    qc = vae.quant_conv
    with torch.no_grad():
        m = qc(vae.encoder(x))
        f = (1.0 / sf) / m[:, :lc].std().item()
        qc.weight[:lc] *= f
        qc.bias[:lc] *= f
        f = 0.5 / m[:, lc:].std().item()
        qc.weight[lc:] *= f
        qc.bias[lc:] *= f
        m = qc(vae.encoder(x))
        qc.bias[lc:] += -1.0 - m[:, lc:].mean()


def inpaint_unet(unet, unet_cfg, seed):
    """The 9-channel unet of SD inpainting checkpoints (input = cat([latents, mask, masked-image latents], dim=1)),
    made from the fitted 4-channel unet: the same weights, and conv_in gets 5 more input channels with seeded
    N(0, std(conv_in.weight)^2) weights, so the mask and the masked image's latents change the noise prediction
    about as much as the latents do. Uses no global RNG (the other artifacts stay byte-identical)."""
    lc = unet_cfg["out_channels"]
    cfg = dict(unet_cfg, in_channels=2 * lc + 1)
    u = copy.deepcopy(unet)
    old = unet.conv_in
    with torch.random.fork_rng(devices=[]):
        conv = nn.Conv2d(cfg["in_channels"], old.out_channels, 3, padding=1)
    g = torch.Generator().manual_seed(seed + 4)
    with torch.no_grad():
        extra = torch.randn(old.out_channels, lc + 1, 3, 3, generator=g) * old.weight.std()
        conv.weight.copy_(torch.cat([old.weight, extra], dim=1))
        conv.bias.copy_(old.bias)
    u.conv_in = conv
    u.config = cfg
    return u.eval(), cfg


def link_identical(out, share):
    """Replace every compiled_models/*.pt of out that is byte-identical to share's file of the same name by a
    relative symbolic link to it; make tokenizer/ the same link as share's if share's is one and the files agree.
    Returns the names linked."""
    linked = []
    cm = os.path.join(out, "compiled_models")
    for fn in sorted(os.listdir(cm)):
        mine, theirs = os.path.join(cm, fn), os.path.join(share, "compiled_models", fn)
        if fn.endswith(".pt") and os.path.isfile(theirs) and sha256(mine) == sha256(theirs):
            os.remove(mine)
            os.symlink(os.path.relpath(theirs, cm), mine)
            linked.append("compiled_models/" + fn)
    tok, their_tok = os.path.join(out, "tokenizer"), os.path.join(share, "tokenizer")
    if os.path.islink(their_tok) and os.path.isdir(tok):
        same = all(os.path.isfile(os.path.join(their_tok, f)) and sha256(os.path.join(tok, f)) ==
                   sha256(os.path.join(their_tok, f)) for f in os.listdir(tok))
        if same:
            shutil.rmtree(tok)
            os.symlink(os.path.relpath(os.path.realpath(their_tok), out), tok)
            linked.append("tokenizer/")
    return linked


COMMENTARY_KEYS = ("_sdjvm_note", "created_by")  # JSON keys that only say which script wrote a file


def same_model_file(a, b):
    """Byte equality, except JSON files, which are compared as parsed JSON without COMMENTARY_KEYS."""
    if a.endswith(".json"):
        def load(p):
            with open(p) as f:
                d = json.load(f)
            return {k: v for k, v in d.items() if k not in COMMENTARY_KEYS} if isinstance(d, dict) else d
        return load(a) == load(b)
    return sha256(a) == sha256(b)


def compare_dirs(made, out, only=None):
    """Compare the files of a fresh run (made) with out, following links; README.md is not compared (it holds
    the command line). Returns the list of (path, status)."""
    rows = []
    mine = {r for r, _, _ in dir_listing(made)}
    theirs = {r for r, _, _ in dir_listing(out)} if os.path.isdir(out) else set()
    for r in sorted(mine | theirs):
        if r == "README.md" or (only is not None and not only(r)):
            continue
        if r not in theirs:
            rows.append((r, "missing in " + out))
        elif r not in mine:
            rows.append((r, "not made by this run"))
        else:
            rows.append((r, "identical" if same_model_file(os.path.join(made, r), os.path.join(out, r))
                         else "DIFFERENT"))
    return rows


def wrap(text, indent="  ", width=114):
    """A sentence appended to a README paragraph or bullet: on lines of its own, indented like the bullet's."""
    if not text:
        return text
    return "\n" + textwrap.fill(text.strip(), width=width, initial_indent=indent, subsequent_indent=indent,
                                break_long_words=False, break_on_hyphens=False)


def tiny_readme(args, man, out, command, update_note=""):
    rows = dir_listing(out)
    links = dir_links(out)
    total = sum(s for r, s, _ in rows if r != "README.md")
    lines = []
    for r, s, link in rows:
        if r == "README.md":
            continue
        extra = ""
        if r.endswith(".pt"):
            extra = "  sha256 " + sha256(os.path.join(out, r))[:16]
        if link:
            extra += "  (link: " + link + ")"
        lines.append("  %-45s %10d%s" % (r, s, extra))
    for d, target in links.items():
        real = os.path.relpath(os.path.realpath(os.path.join(out, d)), REPO)
        lines.append("  (%s/ is a symbolic link to %s: the same files)" % (d, real))
    listing = "\n".join(lines)
    a = man["artifacts"]
    dt = a["unet"]["inputs"][0]["dtype"]
    cin = a["unet"]["inputs"][0]["shape"][1]
    lh, lw = man["height"] // 8, man["width"] // 8
    kind = ""
    if cin != 4:
        kind = (" Its unet is an **inpainting unet**: {cin} input channels = cat([latents (4), mask (1), masked-image "
                "latents (4)], dim=1), as stable-diffusion-2-inpainting; model_index.json names "
                "StableDiffusionInpaintPipeline.").format(cin=cin)
    enc = ""
    if "vae_encoder" in a:
        enc = ("vae_encoder(sample [B,3,H,W] float32 in [-1,1]) -> dict {latent_parameters: [B,8,H/8,W/8]} "
               "(the VAE encoder + quant_conv, traced with strict=False as optimum-neuron exports it: diffusers' "
               "DiagonalGaussianDistribution parameters, mean = channels 0-3, logvar = channels 4-7, unclamped).")
    enc_w = ""
    if "vae_encoder" in a:
        enc_w = (" The VAE encoder's quant_conv was rescaled so that the posterior mean x 0.18215 has std ~1 and "
                 "logvar ~N(-1, 0.5^2) on a probe image (posterior std ~0.6: the encoder's random draw matters).")
    if cin != 4:
        enc_w += (" The inpainting unet is the fitted 4-channel unet with 5 more conv_in input channels "
                  "(seeded N(0, std(conv_in.weight)^2) weights); everything else is the same weights.")
    kind = wrap(kind, indent="")
    update_note, enc, enc_w = (wrap(x) for x in (update_note, enc, enc_w))
    fam = FAMILY_NOTES.get(args.preset, "")
    return f"""# {os.path.basename(os.path.normpath(out))}: tiny SD 2.1-layout model with RANDOM weights (test fixture)
{fam}

Not a real model: it draws nothing. It has the real Stable Diffusion 2.x module structure at tiny width
(CLIP text transformer H={a['text_encoder']['outputs'][0]['shape'][-1]}, UNet with ResNet + cross-attention
blocks, KL-VAE) in the AWS Inferentia2 layout, so the library's loading, contracts and numerics can be
tested without a 5 GB download.{kind}

- Made by `tools/model/make_tiny_sd.py` (seed {args.seed}), command:
  `{command}`
  on torch {torch.__version__} (CPU). A rerun writes byte-identical `.pt` files (checked with sha256; add `--check`
  to the command to compare a fresh run with this directory).{update_note}
- Weights: PyTorch default init (token embedding N(0, 0.5), position embedding N(0, 0.1), so prompts matter), seeded; then the unet was fitted for
  {args.fit_steps} Adam steps to N(0,1) data so that it behaves like a noise predictor (output std ~1; latents
  stay bounded over a 20-step DPM-Solver++ run), and the VAE decoder's conv_out was rescaled to output std
  ~0.5 for latents/0.18215 inputs.{enc_w}
- Image {man['height']}x{man['width']}, latents 4x{lh}x{lw}; unet/text encoder dtype
  {dt}; VAE float32. unet traced at batch 1 on CPU: accepts any batch (manifest `"batch": null`).
- Contracts (as AWS's wrappers): text_encoder(input_ids int64 [1,77]) -> {a['text_encoder']['output_kind']}
  {{last_hidden_state, pooler_output}}; unet(sample [B,{cin},h,w], timestep [B], encoder_hidden_states) -> 1-tuple
  (noise_pred [B,4,h,w],); vae_post_quant_conv [1,4,h,w] -> [1,4,h,w]; vae_decoder [1,4,h,w] -> [1,3,8h,8w].{enc}
  Exact dtypes/shapes: `compiled_models/sdjvm-manifest.json`.
- Tokenizer, scheduler (published SD 2.1-base PNDMScheduler config; pipelines swap in DPMSolverMultistep),
  model_index.json and feature_extractor are the published SD 2.1-base files.

Files (bytes), {total} in all:
```
{listing}
```
"""


def build_all(args):
    """Seeded weights for the preset, fitted and calibrated. Returns (te, unet, vae, text_cfg, unet_cfg, vae_cfg, h, w)."""
    fam = FAMILIES[args.preset]
    text_cfg, unet_cfg, vae_cfg, h, w = sd_arch.preset(fam["base"])
    if "text_act" in fam:
        text_cfg["hidden_act"] = fam["text_act"]
    if "sample_size" in fam:
        h = w = fam["sample_size"] * 8
    if fam.get("time_cond_proj_dim"):
        unet_cfg["time_cond_proj_dim"] = fam["time_cond_proj_dim"]
    h = args.height or h
    w = args.width or w
    if h % 8 or w % 8:
        sys.exit("height and width must be multiples of 8")
    unet_cfg["sample_size"] = h // 8
    vae_cfg["sample_size"] = h
    t0 = time.time()
    te, unet, vae = build(text_cfg, unet_cfg, vae_cfg, args.seed)
    t_build = time.time() - t0
    n = {k: sum(p.numel() for p in m.parameters()) for k, m in
         [("text_encoder", te), ("unet", unet), ("vae_decoder", vae.decoder)]}
    print("parameters:", n, "build %.1fs" % t_build, flush=True)
    fit_unet_gaussian(unet, text_cfg["hidden_size"], (h // 8, w // 8), args.fit_steps, args.seed)
    with torch.no_grad():
        g = torch.Generator().manual_seed(args.seed + 2)
        ph, pw = min(h // 8, 8), min(w // 8, 8)  # probe size (the modules are convolutional)
        z = torch.randn(1, 4, ph, pw, generator=g) / 0.18215
        scale_output(vae.decoder.conv_out, lambda: vae.decoder(vae.post_quant_conv(z)), 0.5)
        if args.fit_steps == 0:
            x = torch.randn(1, 4, ph, pw, generator=g)
            ctx = torch.randn(1, 77, text_cfg["hidden_size"], generator=g)
            tcd = unet_cfg.get("time_cond_proj_dim")
            cond = guidance_embedding(torch.tensor([7.5]), tcd) if tcd else None
            scale_output(unet.conv_out, lambda: unet(x, torch.tensor([500.0]), ctx, cond)[0], 1.0)
    if args.with_vae_encoder:
        calibrate_vae_encoder(vae, args.seed, h, w)
    if args.unet_in_channels != 4:
        unet, unet_cfg = inpaint_unet(unet, unet_cfg, args.seed)
    return te, unet, vae, text_cfg, unet_cfg, vae_cfg, h, w


def write_model(args, out, weights):
    te, unet, vae, text_cfg, unet_cfg, vae_cfg, h, w = weights
    note = ("RANDOM-WEIGHT MODEL made by tools/model/make_tiny_sd.py (preset %s, seed %d): the TorchScript files in "
            "compiled_models/ are what counts; this config records their dimensions" % (args.preset, args.seed))
    fam = FAMILIES[args.preset]
    pipeline_class = "StableDiffusionInpaintPipeline" if args.unet_in_channels != 4 else fam.get("pipeline_class")
    return export_model(out, te, unet, vae, text_cfg, unet_cfg, vae_cfg, h, w, DTYPES[args.dtype],
                        args.text_encoder_output or fam.get("text_output", "dict"),
                        args.unet_output or fam.get("unet_output", "tuple"), not args.no_manifest, note,
                        vae_encoder=args.with_vae_encoder, pipeline_class=pipeline_class,
                        scheduler=fam.get("scheduler"), pad=fam.get("pad"))


def command_line(drop=("--update", "--check")):
    return "/usr/bin/python3 tools/model/make_tiny_sd.py " + " ".join(a for a in sys.argv[1:] if a not in drop)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny", choices=list(FAMILIES) + ["sdxl-tiny", "sdxl-base"],
                    help="tiny / sd21-base: SD 2.1-base shaped (tiny or full size); tiny-sd15 / sd15: SD 1.5 (CLIP "
                         "quick_gelu text encoder, pad <|endoftext|>, AWS's SD 1.5 output kinds); tiny-sd2v: SD 2.x "
                         "768 v-prediction shaped (published 768 scheduler config, 96x96 tiny); tiny-lcm: an LCM "
                         "unet (time_cond_proj_dim 32, LCMScheduler, LatentConsistencyModelPipeline); tiny-turbo: SD "
                         "2.1 weights with the few-step trailing Euler ancestral config; sdxl-tiny / sdxl-base: SDXL "
                         "(see sdxl_export.py)")
    ap.add_argument("--diffusers-src", help="SDXL presets: a diffusers source tree's src/ (git archive HEAD src)")
    ap.add_argument("--layout", default="sample", choices=["sample", "compiled"],
                    help="SDXL presets: <part>/model.pt as AWS's SDXL sample (default) or compiled_models/<part>.pt")
    ap.add_argument("--link-tokenizer", action="store_true",
                    help="SDXL presets: symlink tokenizer*/vocab.json and merges.txt to the embedded model's")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                    help="dtype of text_encoder and unet (VAE is always float32, as AWS); SDXL presets: the unet's "
                         "only (both text encoders stay float32, as trace_cpu_sdxl.py)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--height", type=int, help="image height (SDXL presets: the trace's example size only)")
    ap.add_argument("--width", type=int)
    ap.add_argument("--fit-steps", type=int, default=None,
                    help="Adam steps fitting the unet to Gaussian data (default 300 for tiny, 0 for sd21-base)")
    ap.add_argument("--text-encoder-output", default=None, choices=["dict", "tuple", "tensor"],
                    help="default: the preset's (dict; tuple for SD 1.5 and LCM)")
    ap.add_argument("--unet-output", default=None, choices=["tuple", "tensor"],
                    help="default: the preset's (tuple; a bare tensor for SD 1.5)")
    ap.add_argument("--no-manifest", action="store_true")
    ap.add_argument("--with-vae-encoder", action="store_true",
                    help="also write compiled_models/vae_encoder.pt (VAE encoder + quant_conv -> "
                         "{latent_parameters: moments}, for img2img and inpainting) and list it in the manifest")
    ap.add_argument("--unet-in-channels", type=int, default=4, choices=[4, 9],
                    help="9: an inpainting unet (latents + mask + masked-image latents); model_index.json then "
                         "names StableDiffusionInpaintPipeline")
    ap.add_argument("--link-identical", metavar="DIR",
                    help="share files with model directory DIR: every compiled_models/*.pt byte-identical to DIR's "
                         "becomes a relative symbolic link to it, tokenizer/ the same link as DIR's")
    ap.add_argument("--update", action="store_true",
                    help="add to the existing --out: make the model in a temporary directory, require every file of "
                         "--out's compiled_models/ to be the same (.pt byte-identical, manifest equal but for the new "
                         "entries), then copy in the new artifacts, the manifest and the README; all other files of "
                         "--out stay untouched")
    ap.add_argument("--check", action="store_true",
                    help="make the model in a temporary directory and compare it with --out (files through links; "
                         "JSON without the keys naming the writing script; README.md not compared); exit 1 on any "
                         "difference")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.preset.startswith("sdxl"):
        if not args.diffusers_src:
            ap.error("--preset %s needs --diffusers-src" % args.preset)
        import sdxl_export
        if args.height != args.width:
            ap.error("--preset %s traces square examples: give --height and --width equal (or neither)" % args.preset)
        sdxl_export.export(args.out, args.preset, args.seed, args.diffusers_src, args.layout, args.link_tokenizer,
                           dtype=DTYPES[args.dtype], trace_size=args.height, unet_in_channels=args.unet_in_channels)
        print("wrote", args.out)
        return
    if args.fit_steps is None:
        args.fit_steps = 300 if args.preset.startswith("tiny") else 0
    t0 = time.time()
    weights = build_all(args)
    if args.check or args.update:
        tmp = tempfile.mkdtemp(prefix="make_tiny_sd-")
        try:
            made = os.path.join(tmp, os.path.basename(os.path.normpath(args.out)))
            man, times = write_model(args, made, weights)
            if args.check:
                rows = compare_dirs(made, args.out)
                for r, st in rows:
                    print("%-45s %s" % (r, st))
                bad = [r for r, st in rows if st != "identical"]
                print("%d files compared, %d differ" % (len(rows), len(bad)))
                sys.exit(1 if bad else 0)
            # --update: what --out already has in compiled_models/ must be what this run makes
            rows = compare_dirs(made, args.out, only=lambda r: os.path.exists(os.path.join(args.out, r))
                                and r != "compiled_models/sdjvm-manifest.json")
            old_man = os.path.join(args.out, "compiled_models", "sdjvm-manifest.json")
            with open(old_man) as f:
                old = json.load(f)
            new = json.load(open(os.path.join(made, "compiled_models", "sdjvm-manifest.json")))
            for role, spec in old["artifacts"].items():
                rows.append(("manifest artifacts." + role,
                             "identical" if new["artifacts"].get(role) == spec else "DIFFERENT"))
            for r, st in rows:
                print("%-45s %s" % (r, st))
            if any(st != "identical" for _, st in rows):
                sys.exit("--update: %s differs from this run; write a new directory instead" % args.out)
            added = []
            for fn in sorted(os.listdir(os.path.join(made, "compiled_models"))):
                dst = os.path.join(args.out, "compiled_models", fn)
                if not os.path.exists(dst):
                    shutil.copyfile(os.path.join(made, "compiled_models", fn), dst)
                    added.append(fn)
            shutil.copyfile(os.path.join(made, "compiled_models", "sdjvm-manifest.json"), old_man)
            print("added", added, "and rewrote compiled_models/sdjvm-manifest.json and README.md")
            note = ("\n  Written into the existing directory with `--update`: its four original `.pt` files and "
                    "other files were already what this command makes (`.pt` compared byte for byte, JSON as "
                    "parsed JSON without the `_sdjvm_note`/`created_by` strings naming the writing script), so only "
                    + "".join("`compiled_models/%s`, " % a for a in added)
                    + "the manifest and this README were written.")
        finally:
            shutil.rmtree(tmp)
    else:
        if os.path.exists(args.out):
            shutil.rmtree(args.out)
        man, times = write_model(args, args.out, weights)
        note = ""
        if args.link_identical:
            linked = link_identical(args.out, args.link_identical)
            print("linked to", args.link_identical + ":", linked)
    if args.preset.startswith("tiny"):
        with open(os.path.join(args.out, "README.md"), "w") as f:
            f.write(tiny_readme(args, man, args.out, command_line(), note))
    rows = dir_listing(args.out)
    for r, s, _ in rows:
        if r.startswith("compiled_models"):
            print("%-45s %12d  sha256 %s" % (r, s, sha256(os.path.join(args.out, r))[:16]))
    print("total bytes", sum(s for _, s, _ in rows), "trace/save seconds", {k: round(v, 1) for k, v in times.items()},
          "wall %.1fs" % (time.time() - t0))


if __name__ == "__main__":
    main()
