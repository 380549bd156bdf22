#!/usr/bin/python3
"""Reference outputs for the project's own tiny fixtures (src/all/test/resources/models/tiny-sd21-{fp32,bf16}), made
with the Python reference sampler tools/reference/sd_sampler.py (the algorithm of
src/all/test/resources/reference/pipeline/README.md section 2), torch 1.13, CPU, torch.set_num_threads(1).

    /usr/bin/python3 tools/reference/sd_sampler.py --selftest            # first: the sampler against diffusers' data
    /usr/bin/python3 tools/reference/make_pipeline_references.py         # writes src/all/test/resources/models/cases/
    /usr/bin/python3 tools/reference/make_pipeline_references.py --check # recomputes and compares with the stored files

Writes cases.json (prompt, negative_prompt, steps, guidance_scale, seed, token ids, timesteps, file names, stats,
tolerances) and per case <variant>/<name>.rgb (raw HWC RGB uint8), .latents.f32 (final latents, before
/ scaling_factor) and .init.f32 (the seeded randn draw), raw little-endian float32 C-order.

bfloat16 fixture: sd_sampler.Pipeline feeds the unet x.to(D), t.float().expand((B,)).to(D), emb.to(D) with D
its dtype and casts its output with .float(); the text encoder output is cast with .float(). This script does
not trust that: it wraps the modules with recorders and asserts, for every call, the dtypes the modules
received and returned, that D equals the dtype of the unet's own parameters, and that the timestep fed is
float(t) rounded to D (999 -> 1000.0 in bfloat16). The recorded values are stored per case.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_sampler  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/<group>/x.py
MODELS = os.path.join(REPO, "src", "all", "test", "resources", "models")
OUT = os.path.join(MODELS, "cases")

# (variant, model dir under models/, name, prompt, negative prompt, steps, guidance, seed)
CASES = [
    ("fp32", "tiny-sd21-fp32", "astronaut_dpm20_g7.5_s42",
     "a photograph of an astronaut riding a horse", None, 20, 7.5, 42),
    ("fp32", "tiny-sd21-fp32", "fruit_neg_dpm15_g6_s4294967313",
     "a bowl of fruit on a wooden table, oil painting!", "blurry, low quality", 15, 6.0, 4294967313),
    ("fp32", "tiny-sd21-fp32", "circle_nocfg_g1_dpm10_s5",
     "a red circle on a blue background", "ignored without guidance", 10, 1.0, 5),
    ("bf16", "tiny-sd21-bf16", "lighthouse_dpm25_g7.5_s7",
     "a watercolor painting of a lighthouse at dusk", None, 25, 7.5, 7),
    ("bf16", "tiny-sd21-bf16", "cats_neg_dpm20_g5_s2024",
     "two cats sleeping on a sofa", "cartoon, text", 20, 5.0, 2024),
    ("bf16", "tiny-sd21-bf16", "robot_nocfg_g1_dpm12_s3",
     "a robot", None, 12, 1.0, 3),
]

# README section 5 of src/all/test/resources/reference/pipeline (meta.recommended_tolerances there)
TOLERANCES = {
    "fp32": {"image_max_abs": 2, "image_mean_abs": 0.05, "latents_max_abs_rel": 1e-4, "init_latents": "bitwise"},
    "bf16": {"image_mean_abs": 4.0, "image_psnr_db_min": 32.0, "image_frac_abs_gt16_max": 0.02,
             "latents_max_abs_rel": 0.15, "init_latents": "bitwise"},
}

DT = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.int64: "int64"}


class Recorder:
    """Wraps a TorchScript module; records input and output dtypes (and the unet's timesteps) of every call."""

    def __init__(self, module):
        self.module = module
        self.calls = []

    def __call__(self, *args):
        out = self.module(*args)
        prim = out
        if isinstance(out, dict):
            prim = out["last_hidden_state"]
        elif isinstance(out, (tuple, list)):
            prim = out[0]
        self.calls.append({"in": [DT[a.dtype] for a in args], "out": DT[prim.dtype],
                           "t": args[1].float().tolist() if len(args) == 3 else None})
        return out


def param_dtype(module):
    ds = {p.dtype for p in module.parameters() if p.is_floating_point()}
    assert len(ds) == 1, ds
    return ds.pop()


def stats(a):
    a = np.asarray(a, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def run_case(pipe, case):
    variant, model, name, prompt, neg, steps, g, seed = case
    cfg = g > 1.0
    te, unet = Recorder(pipe.te), Recorder(pipe.unet)
    pipe.te, pipe.unet = te, unet
    D = param_dtype(unet.module)
    assert pipe.unet_dtype == D, (pipe.unet_dtype, D)
    u8, lat = pipe(prompt, neg, steps, g, seed, return_latents=True)
    # the sampler's own draw, repeated here to store it
    init = torch.randn((1, 4, pipe.height // 8, pipe.width // 8), generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float32)
    sched = sd_sampler.DPMSolverPP2M(steps)
    ts = sched.timesteps.tolist()
    B = 2 if cfg else 1
    te_dt = DT[param_dtype(te.module)]
    # every module call saw the dtypes the reference algorithm prescribes
    assert len(te.calls) == (2 if cfg else 1), te.calls
    for c in te.calls:
        assert c["in"] == ["int64"] and c["out"] == te_dt, c
    assert len(unet.calls) == steps, len(unet.calls)
    for k, c in enumerate(unet.calls):
        assert c["in"] == [DT[D]] * 3 and c["out"] == DT[D], c
        want = torch.tensor(float(ts[k])).expand((B,)).to(D).float().tolist()
        assert c["t"] == want, (c["t"], want)
    tok = pipe.tok
    return {
        "id": "%s/%s" % (variant, name),
        "variant": variant,
        "model": model,
        "prompt": prompt,
        "negative_prompt": neg,
        "steps": steps,
        "guidance_scale": g,
        "do_classifier_free_guidance": cfg,
        "seed": seed,
        "scheduler": "DPMSolverMultistepScheduler",
        "scheduler_overrides": {},
        "timesteps": ts,
        "height": pipe.height,
        "width": pipe.width,
        "text_encoder_dtype": te_dt,
        "unet_dtype": DT[D],
        "t_unet_first": unet.calls[0]["t"][0],
        "ids_prompt": tok.input_ids_77(prompt),
        "ids_negative": tok.input_ids_77(neg or "") if cfg else None,
        "rgb_u8": "%s/%s.rgb" % (variant, name),
        "sha256_u8": hashlib.sha256(u8.tobytes()).hexdigest(),
        "latents_f32": "%s/%s.latents.f32" % (variant, name),
        "init_latents_f32": "%s/%s.init.f32" % (variant, name),
        "image_stats": stats(u8),
        "frac_u8_saturated": float(((u8 == 0) | (u8 == 255)).mean()),
        "latents_stats": stats(lat.numpy()),
        "latents_first8": [float(v) for v in lat.flatten()[:8]],
        "_arrays": {"rgb_u8": u8.tobytes(), "latents_f32": lat.numpy().astype("<f4").tobytes(),
                    "init_latents_f32": init.numpy().astype("<f4").tobytes()},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check", action="store_true", help="recompute and compare with the files in --out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipes = {}
    results = []
    with torch.no_grad():
        for case in CASES:
            model = case[1]
            if model not in pipes:
                pipes[model] = sd_sampler.Pipeline(os.path.join(MODELS, model))
            p = pipes[model]
            # fresh recorders per case
            if isinstance(p.te, Recorder):
                p.te, p.unet = p.te.module, p.unet.module
            r = run_case(p, case)
            results.append(r)
            print("%-40s %s t_unet[0]=%s image mean %.2f latents std %.3f max|.| %.3f" % (
                r["id"], r["unet_dtype"], r["t_unet_first"], r["image_stats"]["mean"], r["latents_stats"]["std"],
                max(abs(r["latents_stats"]["min"]), abs(r["latents_stats"]["max"]))), flush=True)
    meta = {
        "generator": "tools/reference/make_pipeline_references.py -> tools/reference/sd_sampler.py Pipeline (reference algorithm of "
                     "src/all/test/resources/reference/pipeline/README.md section 2), CPU, torch.set_num_threads(1), "
                     "torch.no_grad()",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sampler_selftest": "tools/reference/sd_sampler.py --selftest: tokenizer 125/125, scheduler dpm_eps_20 max |d| 0 vs "
                            "diffusers, tiny-sd21-dev cases u8 max |d| <= 1 vs diffusers",
        "tolerances": TOLERANCES,
        "tolerances_source": "src/all/test/resources/reference/pipeline/README.md section 5",
        "files": {
            "rgb_u8": "raw uint8, height*width*3 bytes, row-major HWC RGB; sha256_u8 is over these bytes",
            "latents_f32": "raw little-endian float32 [1,4,h/8,w/8] C-order: final latents before / scaling_factor",
            "init_latents_f32": "raw little-endian float32: torch.randn((1,4,h/8,w/8), "
                                "generator=torch.Generator().manual_seed(seed)) (init_noise_sigma is 1.0)",
        },
        "model_root": "src/all/test/resources/models/<model>",
    }
    doc = {"meta": meta, "cases": [{k: v for k, v in r.items() if k != "_arrays"} for r in results]}
    if args.check:
        old = json.load(open(os.path.join(args.out, "cases.json")))
        bad = 0
        for r, o in zip(results, old["cases"]):
            for key in ("rgb_u8", "latents_f32", "init_latents_f32"):
                with open(os.path.join(args.out, o[key]), "rb") as f:
                    same = f.read() == r["_arrays"][key]
                bad += not same
                print("%-40s %-16s %s" % (r["id"], key, "identical" if same else "DIFFERENT"))
        sys.exit(1 if bad else 0)
    for r in results:
        for key, data in r["_arrays"].items():
            path = os.path.join(args.out, r[key])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", os.path.join(args.out, "cases.json"))


if __name__ == "__main__":
    main()
