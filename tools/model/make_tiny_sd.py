#!/usr/bin/python3
"""Write a Stable Diffusion 2.1 model directory in the AWS Inferentia2 layout ("sd2_512_root") with
random (seeded) weights, traced to TorchScript with torch.jit.trace on CPU.

    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny --dtype fp32 --out src/test/resources/models/tiny-sd21-fp32
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset tiny --dtype bf16 --out src/test/resources/models/tiny-sd21-bf16
    /usr/bin/python3 tools/model/make_tiny_sd.py --preset sd21-base --out /tmp/sd21-base-random   # ~5 GB, benchmarks

Layout written:
    compiled_models/{text_encoder.pt,unet.pt,vae_decoder.pt,vae_post_quant_conv.pt,sdjvm-manifest.json}
    model_index.json scheduler/scheduler_config.json tokenizer/* feature_extractor/preprocessor_config.json
    text_encoder/config.json unet/config.json vae/config.json README.md
The module wrappers follow AWS's sample (see sd_arch.TextEncoderWrap / UNetWrap). ``export_model`` is also used
by train_shapes.py to export trained weights.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_arch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/<group>/x.py
REF = os.path.join(REPO, "src", "test", "resources", "reference", "pipeline", "tiny-sd21-dev")
SCALED_LINEAR = (0.00085, 0.012, 1000)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.int64: "int64"}


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
        pred = unet(xt, t.float(), ctx)[0]
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
                 created_by="tools/model/make_tiny_sd.py"):
    """Trace the four AWS-style modules and write the whole model directory. Returns the manifest dict."""
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

        sample = torch.randn(1, 4, lh, lw, generator=torch.Generator().manual_seed(0)).to(dtype)
        timestep = torch.tensor(999.0).expand((1,)).to(dtype)
        ehs = torch.randn(1, 77, H, generator=torch.Generator().manual_seed(1)).to(dtype)
        t0 = time.time()
        uw = sd_arch.UNetWrap(unet_d, unet_output).eval()
        trace_save(uw, (sample, timestep, ehs), os.path.join(cm, "unet.pt"))
        u_out = torch.empty(1, 4, lh, lw, dtype=dtype)
        times["unet"] = time.time() - t0

        z = torch.randn(1, 4, lh, lw, generator=torch.Generator().manual_seed(2))
        t0 = time.time()
        trace_save(vae.post_quant_conv, (z,), os.path.join(cm, "vae_post_quant_conv.pt"))
        pq = torch.empty(1, 4, lh, lw)
        dw = sd_arch.VAEDecoderWrap(vae.decoder).eval()
        trace_save(dw, (z,), os.path.join(cm, "vae_decoder.pt"))
        img = torch.empty(1, 3, height, width)
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
                     "inputs": [io("sample", sample), io("timestep", timestep), io("encoder_hidden_states", ehs)],
                     "outputs": [io("noise_pred", u_out)]},
            "vae_post_quant_conv": {"file": "vae_post_quant_conv.pt", "batch": None,
                                    "inputs": [io("latent", z)], "outputs": [io("latent", pq)]},
            "vae_decoder": {"file": "vae_decoder.pt", "batch": None,
                            "inputs": [io("latent", z)], "outputs": [io("image", img)]},
        },
    }
    if manifest:
        write_json(os.path.join(cm, "sdjvm-manifest.json"), man)

    # static files from the reference layout
    for rel in ["model_index.json", "scheduler/scheduler_config.json", "feature_extractor/preprocessor_config.json",
                "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
                "tokenizer/tokenizer_config.json"]:
        dst = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(REF, rel), dst)
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
    rows = []
    for root, _, files in os.walk(out):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            rows.append((os.path.relpath(p, out), os.path.getsize(p)))
    return sorted(rows)


def tiny_readme(args, man, out):
    rows = dir_listing(out)
    total = sum(s for _, s in rows)
    listing = "\n".join("  %-45s %10d" % (r, s) for r, s in rows if r != "README.md")
    a = man["artifacts"]
    dt = a["unet"]["inputs"][0]["dtype"]
    return f"""# {os.path.basename(os.path.normpath(out))}: tiny SD 2.1-layout model with RANDOM weights (test fixture)

Not a real model: it draws nothing. It has the real Stable Diffusion 2.x module structure at tiny width
(CLIP text transformer H={a['text_encoder']['outputs'][0]['shape'][-1]}, UNet with ResNet + cross-attention
blocks, KL-VAE decoder) in the AWS Inferentia2 layout, so the library's loading, contracts and numerics can be
tested without a 5 GB download.

- Made by `tools/model/make_tiny_sd.py` (seed {args.seed}), command:
  `/usr/bin/python3 tools/model/make_tiny_sd.py {' '.join(sys.argv[1:])}`
  on torch {torch.__version__} (CPU). A rerun writes byte-identical `.pt` files (checked with sha256).
- Weights: PyTorch default init (token embedding N(0, 0.5), position embedding N(0, 0.1), so prompts matter), seeded; then the unet was fitted for
  {args.fit_steps} Adam steps to N(0,1) data so that it behaves like a noise predictor (output std ~1; latents
  stay bounded over a 20-step DPM-Solver++ run), and the VAE decoder's conv_out was rescaled to output std
  ~0.5 for latents/0.18215 inputs.
- Image {man['height']}x{man['width']}, latents 4x{man['height'] // 8}x{man['width'] // 8}; unet/text encoder dtype
  {dt}; VAE float32. unet traced at batch 1 on CPU: accepts any batch (manifest `"batch": null`).
- Contracts (as AWS's wrappers): text_encoder(input_ids int64 [1,77]) -> {a['text_encoder']['output_kind']}
  {{last_hidden_state, pooler_output}}; unet(sample, timestep [B], encoder_hidden_states) -> 1-tuple
  (noise_pred,); vae_post_quant_conv [1,4,h,w] -> [1,4,h,w]; vae_decoder [1,4,h,w] -> [1,3,8h,8w].
  Exact dtypes/shapes: `compiled_models/sdjvm-manifest.json`.
- Tokenizer, scheduler (published SD 2.1-base PNDMScheduler config; pipelines swap in DPMSolverMultistep),
  model_index.json and feature_extractor are the published SD 2.1-base files.

Files (bytes), {total} in all:
```
{listing}
```
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny", choices=["tiny", "sd21-base"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                    help="dtype of text_encoder and unet (VAE is always float32, as AWS)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--height", type=int)
    ap.add_argument("--width", type=int)
    ap.add_argument("--fit-steps", type=int, default=None,
                    help="Adam steps fitting the unet to Gaussian data (default 300 for tiny, 0 for sd21-base)")
    ap.add_argument("--text-encoder-output", default="dict", choices=["dict", "tuple", "tensor"])
    ap.add_argument("--unet-output", default="tuple", choices=["tuple", "tensor"])
    ap.add_argument("--no-manifest", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    text_cfg, unet_cfg, vae_cfg, h, w = sd_arch.preset(args.preset)
    h = args.height or h
    w = args.width or w
    if h % 8 or w % 8:
        sys.exit("height and width must be multiples of 8")
    unet_cfg["sample_size"] = h // 8
    vae_cfg["sample_size"] = h
    if args.fit_steps is None:
        args.fit_steps = 300 if args.preset == "tiny" else 0
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
            scale_output(unet.conv_out, lambda: unet(x, torch.tensor([500.0]), ctx)[0], 1.0)
    note = ("RANDOM-WEIGHT MODEL made by tools/model/make_tiny_sd.py (preset %s, seed %d): the TorchScript files in "
            "compiled_models/ are what counts; this config records their dimensions" % (args.preset, args.seed))
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    man, times = export_model(args.out, te, unet, vae, text_cfg, unet_cfg, vae_cfg, h, w, DTYPES[args.dtype],
                              args.text_encoder_output, args.unet_output, not args.no_manifest, note)
    if args.preset == "tiny":
        with open(os.path.join(args.out, "README.md"), "w") as f:
            f.write(tiny_readme(args, man, args.out))
    rows = dir_listing(args.out)
    for r, s in rows:
        if r.startswith("compiled_models"):
            print("%-45s %12d  sha256 %s" % (r, s, sha256(os.path.join(args.out, r))[:16]))
    print("total bytes", sum(s for _, s in rows), "trace/save seconds", {k: round(v, 1) for k, v in times.items()},
          "wall %.1fs" % (time.time() - t0))


if __name__ == "__main__":
    main()
