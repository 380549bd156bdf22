#!/usr/bin/python3
"""LCM overlays for the simulated Neuron runtime's SD fixtures (native/nrt_sim.c): an LCM UNet, which takes the
guidance-scale embedding timestep_cond [B,D] as its fourth input (diffusers' UNet2DConditionModel with
time_cond_proj_dim, as tools/model/neuron_compile_sd21.py wraps it), and the configs that make an LCM model of a
copy of sim-neuron / sim-cpu.

    /usr/bin/python3 tools/reference/make_sim_lcm_model.py --kind neuron --out src/all/test/resources/models/sim-lcm-neuron
    /usr/bin/python3 tools/reference/make_sim_lcm_model.py --kind cpu --out src/all/test/resources/models/sim-lcm-cpu

An overlay holds only what differs from the SD fixture it is copied over (tests copy sim-neuron or sim-cpu, then the
overlay): compiled_models/unet.pt (neuron: a Neuron-style archive carrying the NEFF; cpu: the TorchScript twin that
computes the same function bit for bit, and the manifest naming its four inputs), unet/config.json
(time_cond_proj_dim D), model_index.json (LatentConsistencyModelPipeline) and scheduler/scheduler_config.json (the
LCMScheduler config of tools/model/make_tiny_sd.py's LCM presets).

Geometry: make_sim_model.py's tiny (latents 4x8x8, text hidden 16), D = 8, every UNet tensor bfloat16 as AWS's
deployment, static batch 1. The function (native/README.md): the SD unet's, then r = r + cond[b, p % D]*0.125.
"""
import argparse
import copy
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools", "model"))
import make_sim_model as msm  # noqa: E402
import make_tiny_sd  # noqa: E402

GEO = "tiny"
D = 8


def unet_signature():
    sig = list(msm.signatures(GEO)["unet"])
    out = sig.pop()  # the output stays last
    sig.append(("in", "input3", "bfloat16", [1, D], "timestep_cond"))
    return sig + [out]


class SimNeuronUNetLcm(msm.SimNeuronArtifact):
    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                timestep_cond: torch.Tensor):
        raise RuntimeError("nrt-sim artifact: run its NEFF with libnrt (native/nrt_sim.c), not with libtorch")


class TwinUNetLcm(torch.nn.Module):
    """make_sim_model.TwinUNet with the fourth input: the same float32 operations as nrt_sim.c, in its order."""

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond):
        s = sample.float()
        t = timestep.float()
        ehs = encoder_hidden_states.float()
        cond = timestep_cond.float()
        p = torch.arange(s.shape[1] * s.shape[2] * s.shape[3])
        e = ehs[:, p % ehs.shape[1], p % ehs.shape[2]].reshape(s.shape)
        a = s * 0.5 + e * 0.25
        r = a + (t * 0.0009765625).reshape(-1, 1, 1, 1)
        r = r + (cond[:, p % cond.shape[1]] * 0.125).reshape(s.shape)
        return (r.to(torch.bfloat16),)


def write_configs(out, kind):
    note = ("NRT-SIM FIXTURE overlay made by tools/reference/make_sim_lcm_model.py (--kind %s): the artifacts compute "
            "fixed test functions (native/README.md), not a diffusion model; this config records their dimensions"
            % kind)
    _, unet_cfg, _, _, _ = msm.sd_arch.preset(msm.GEOMETRIES[GEO]["preset"])
    msm.write_json(os.path.join(out, "unet", "config.json"), dict(unet_cfg, time_cond_proj_dim=D, _sdjvm_note=note))
    msm.write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "LatentConsistencyModelPipeline", "_diffusers_version": "0.22.0.dev0",
        "scheduler": ["diffusers", "LCMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"]})
    msm.write_json(os.path.join(out, "scheduler", "scheduler_config.json"), make_tiny_sd.SCHED_LCM)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=["neuron", "cpu"])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cm = os.path.join(a.out, "compiled_models")
    os.makedirs(cm, exist_ok=True)
    sig = unet_signature()
    if a.kind == "neuron":
        neff = msm.make_neff("unet", "unet", sig, GEO)
        module = torch.jit.script(SimNeuronUNetLcm(neff, "buffer"))
        msm.save_module(module, os.path.join(cm, "unet.pt"))
    else:
        gen = torch.Generator().manual_seed(0)
        example = (torch.randn(1, 4, 8, 8, generator=gen).to(torch.bfloat16), torch.tensor([999.0]).to(torch.bfloat16),
                   torch.randn(1, 77, 16, generator=gen).to(torch.bfloat16),
                   torch.randn(1, D, generator=gen).to(torch.bfloat16))
        with torch.no_grad():
            traced = torch.jit.trace(TwinUNetLcm().eval(), example, check_trace=False)
        msm.save_module(traced, os.path.join(cm, "unet.pt"))
        mf = copy.deepcopy(msm.manifest(GEO, "cpu"))
        mf["created_by"] = "tools/reference/make_sim_lcm_model.py over " + mf["created_by"]
        mf["artifacts"]["unet"]["inputs"] = [{"name": c, "dtype": d, "shape": s} for u, _, d, s, c in sig if u == "in"]
        msm.write_json(os.path.join(cm, "sdjvm-manifest.json"), mf)
    write_configs(a.out, a.kind)
    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write("# sim-lcm-%s: an LCM overlay for sim-%s (test fixture, not a model)\n\n"
                "Made by `/usr/bin/python3 tools/reference/make_sim_lcm_model.py --kind %s --out "
                "src/all/test/resources/models/sim-lcm-%s`. Tests copy `sim-%s`, then this directory over it: the "
                "UNet takes timestep_cond [1,%d] as its fourth input (native/README.md).\n"
                % (a.kind, a.kind, a.kind, a.kind, a.kind, D))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
