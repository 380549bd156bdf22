#!/usr/bin/python3
"""Scheduler trajectories for the model families beyond SD 2.1-base, made by diffusers' OWN scheduler classes
(diffusers source, imported with the stubs of make_task_references.py), CPU, float32, torch.set_num_threads(1):

- LCMScheduler (published LCM configuration: original_inference_steps 50, timestep_scaling 10, set_alpha_to_one)
  at 1, 2, 4 and 8 steps, v_prediction, another original_inference_steps and timestep_scaling, strength < 1;
- EulerAncestralDiscreteScheduler and EulerDiscreteScheduler with timestep_spacing "trailing" (the few-step Turbo
  configuration) at 1, 2 and 4 steps;
- every scheduler this library implements (but LMS, whose diffusers class needs scipy) with the published SD 2.x 768 v-prediction configuration
  (stabilityai/stable-diffusion-2-1 scheduler_config.json, as in reference/scheduler_cases.json's meta).

    git --git-dir=DIFFUSERS_GIT archive HEAD src | tar -x -C /tmp/diffusers
    /usr/bin/python3 tools/reference/make_family_scheduler_references.py --diffusers-src /tmp/diffusers/src
    ... --check   # recompute and compare with the stored file

The loop is the one of reference/scheduler_cases.json (x = sin(0.37 i) * init_noise_sigma over a [2,4,8,8]
sample; per step m = scale_model_input(x, t); eps = cos(1.3 m + 0.001 t) + 0.1 sin(0.11 i); x = step(eps, t, x)),
with t the element of scheduler.timesteps as the pipelines pass it (a 0-dim tensor) and, for the stochastic
schedulers, generator = torch.Generator().manual_seed(seed) passed to every step (diffusers' randn_tensor draws).
Writes src/core/test/resources/reference/families/scheduler_cases.json.
"""
import argparse
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "src", "test", "resources", "reference", "families", "scheduler_cases.json")
sys.path.insert(0, HERE)

SD21_768 = {"_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012,
            "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
            "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
            "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None}
LCM = {"_class_name": "LCMScheduler", "_diffusers_version": "0.22.0.dev0", "beta_end": 0.012,
       "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "clip_sample_range": 1.0,
       "dynamic_thresholding_ratio": 0.995, "num_train_timesteps": 1000, "original_inference_steps": 50,
       "prediction_type": "epsilon", "rescale_betas_zero_snr": False, "sample_max_value": 1.0,
       "set_alpha_to_one": True, "steps_offset": 1, "thresholding": False, "timestep_scaling": 10.0,
       "timestep_spacing": "leading", "trained_betas": None}
TURBO = {"_class_name": "EulerAncestralDiscreteScheduler", "_diffusers_version": "0.24.0.dev0", "beta_end": 0.012,
         "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear",
         "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0,
         "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "trailing",
         "trained_betas": None, "use_karras_sigmas": False}
CONFIGS = {"sd21_768": SD21_768, "lcm": LCM, "turbo": TURBO}

# name, scheduler class, base config, overrides, steps, seed (stochastic ones), set_timesteps kwargs
CASES = [
    ("lcm_4", "LCMScheduler", "lcm", {}, 4, 7, {}),
    ("lcm_1", "LCMScheduler", "lcm", {}, 1, 8, {}),
    ("lcm_2", "LCMScheduler", "lcm", {}, 2, 9, {}),
    ("lcm_8", "LCMScheduler", "lcm", {}, 8, 10, {}),
    ("lcm_vpred_4", "LCMScheduler", "lcm", {"prediction_type": "v_prediction"}, 4, 11, {}),
    ("lcm_orig30_tscale5_6", "LCMScheduler", "lcm", {"original_inference_steps": 30, "timestep_scaling": 5.0}, 6,
     12, {}),
    ("lcm_clip_3", "LCMScheduler", "lcm", {"clip_sample": True, "clip_sample_range": 0.8}, 3, 13, {}),
    ("lcm_strength0.5_4", "LCMScheduler", "lcm", {}, 4, 14, {"strength": 0.5}),
    ("lcm_orig_arg20_5", "LCMScheduler", "lcm", {}, 5, 15, {"original_inference_steps": 20}),
    ("turbo_euler_a_1", "EulerAncestralDiscreteScheduler", "turbo", {}, 1, 21, {}),
    ("turbo_euler_a_2", "EulerAncestralDiscreteScheduler", "turbo", {}, 2, 22, {}),
    ("turbo_euler_a_4", "EulerAncestralDiscreteScheduler", "turbo", {}, 4, 23, {}),
    ("turbo_euler_1", "EulerDiscreteScheduler", "turbo", {}, 1, 24, {}),
    ("turbo_euler_4", "EulerDiscreteScheduler", "turbo", {}, 4, 25, {}),
    ("turbo_ddim_trailing_4", "DDIMScheduler", "turbo", {}, 4, 26, {}),
    ("vpred768_dpm_25", "DPMSolverMultistepScheduler", "sd21_768", {}, 25, 31, {}),
    ("vpred768_euler_25", "EulerDiscreteScheduler", "sd21_768", {}, 25, 32, {}),
    ("vpred768_euler_a_25", "EulerAncestralDiscreteScheduler", "sd21_768", {}, 25, 33, {}),
    ("vpred768_ddim_25", "DDIMScheduler", "sd21_768", {}, 25, 34, {}),
    ("vpred768_pndm_25", "PNDMScheduler", "sd21_768", {}, 25, 35, {}),
    ("vpred768_unipc_25", "UniPCMultistepScheduler", "sd21_768", {}, 25, 37, {}),
    ("vpred768_lcm_4", "LCMScheduler", "sd21_768", {}, 4, 38, {}),
]

N = 2 * 4 * 8 * 8


def run(cls, cfg, overrides, steps, seed, kwargs):
    s = cls.from_config(cfg, **overrides)
    s.set_timesteps(steps, **kwargs)
    ins = float(s.init_noise_sigma)
    i = torch.arange(N, dtype=torch.float64)
    x = (torch.sin(0.37 * i).float() * ins).reshape(2, 4, 8, 8)
    g = torch.Generator().manual_seed(seed)
    accepts_gen = "generator" in s.step.__code__.co_varnames
    traj = []
    for t in s.timesteps:
        m = s.scale_model_input(x, t)
        eps = (torch.cos(1.3 * m.double().flatten() + 0.001 * float(t)) + 0.1 * torch.sin(0.11 * i)).float()
        eps = eps.reshape(x.shape)
        kw = {"generator": g} if accepts_gen else {}
        x = s.step(eps, t, x, return_dict=False, **kw)[0]
        xd = x.double().flatten()
        traj.append({"t": float(t), "sum": float(xd.sum()), "sum_sq": float((xd * xd).sum()),
                     "first8": [float(v) for v in x.flatten()[:8]]})
    out = {"timesteps": [float(t) for t in s.timesteps], "init_noise_sigma": ins, "trajectory": traj,
           "final": [float(v) for v in x.flatten()], "final_dtype": str(x.dtype).replace("torch.", ""),
           "stochastic": accepts_gen}
    if hasattr(s, "sigmas") and s.sigmas is not None and not isinstance(s.sigmas, float):
        out["sigmas"] = [float(v) for v in torch.as_tensor(s.sigmas).flatten()]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusers-src", required=True)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import make_task_references as mtr
    mtr.install_stubs(args.diffusers_src)
    import diffusers
    cases = []
    for name, cls_name, base, overrides, steps, seed, kwargs in CASES:
        cls = getattr(diffusers, cls_name)
        r = run(cls, CONFIGS[base], overrides, steps, seed, kwargs)
        cases.append({"name": name, "scheduler": cls_name, "base_config": base, "config_overrides": overrides,
                      "num_inference_steps": steps, "seed": seed, "set_timesteps_kwargs": kwargs, "run": r})
        print("%-26s %-32s ts=%s final[0]=%.6f" % (name, cls_name, [int(t) for t in r["timesteps"]][:8],
                                                    r["final"][0]))
    doc = {"meta": {"generator": "tools/reference/make_family_scheduler_references.py: diffusers' scheduler classes "
                                 "(diffusers %s) run unmodified on CPU, torch %s" % (diffusers.__version__,
                                                                                     torch.__version__),
                    "loop": "x = sin(0.37 i) * init_noise_sigma, [2,4,8,8] float32; per step m = "
                            "scale_model_input(x, t); eps = cos(1.3 m + 0.001 t) + 0.1 sin(0.11 i) (float64, then "
                            "float32); x = step(eps, t, x, generator=Generator().manual_seed(seed))[0] (the generator "
                            "only where step takes one)",
                    "configs": CONFIGS},
           "cases": cases}
    if args.check:
        with open(args.out) as f:
            old = json.load(f)
        bad = 0
        for a, b in zip(old["cases"], cases):
            same = a["run"] == b["run"]
            bad += not same
            print("%-26s %s" % (a["name"], "identical" if same else "DIFFERENT"))
        sys.exit(1 if bad or len(old["cases"]) != len(cases) else 0)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
