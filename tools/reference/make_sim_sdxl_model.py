#!/usr/bin/python3
"""SDXL fixtures for the simulated Neuron runtime (native/nrt_sim.c): NEFFs for SDXL's five parts in AWS's SDXL
sample layout (<part>/model.pt carrying the NEFF, as torch_neuronx.trace + torch.jit.save write them), and CPU
TorchScript twins computing the same functions bit for bit (compiled_models/<part>.pt).

    /usr/bin/python3 tools/reference/make_sim_sdxl_model.py --kind neuron --out src/all/test/resources/models/sim-sdxl-neuron
    /usr/bin/python3 tools/reference/make_sim_sdxl_model.py --kind cpu --out src/all/test/resources/models/sim-sdxl-cpu

Geometry: 64x64 images, latents 4x8x8, 77 tokens; text_encoder hidden H1=8 with 2 layers, text_encoder_2 hidden
H2=12 with 3 layers and text_embeds P=6; the UNet takes encoder_hidden_states [B,77,20], text_embeds [B,6],
time_ids [B,6]. Everything float32 (AWS's SDXL sample traces in float32), static batch 1. Reuses make_sim_model.py's
NEFF writer and Neuron-style archives.

The text encoders are the simulator's text_encoder function with AWS's TraceableTextEncoder output structure
(transformers' output_hidden_states=True, return_dict=False, flattened):
  text_encoder    output0 last_hidden_state [1,77,8], output1 pooler_output [1,8], output2..4 hidden_states [1,77,8]
  text_encoder_2  output0 text_embeds [1,6], output1 last_hidden_state [1,77,12], output2..5 hidden_states [1,77,12]
(in the simulator every [B,S,H] output holds the same function of the ids; [B,P] the last position's first P).
The UNet is the simulator's unet with the SDXL inputs (native/README.md):
  r = (s*0.5 + e*0.25) + t*0.0009765625;  r = r + text_embeds[b, p % P]*0.125;  r = r + time_ids[b, p % T]*0.0009765625
No tokenizer files beyond the special-tokens maps: tests copy the embedded model's vocab.json/merges.txt into
tokenizer/ (pads with <|endoftext|>) and tokenizer_2/ (pads with "!").
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools", "model"))
import make_sim_model as msm  # noqa: E402
import sdxl_export  # noqa: E402

B, C, L, S, IMG = 1, 4, 8, 77, 64
H1, H2, P, T, LAYERS1, LAYERS2 = 8, 12, 6, 6, 2, 3
F32 = "float32"


def signatures():
    te1 = [("in", "input0", "int64", [B, S]), ("out", "output0", F32, [B, S, H1]), ("out", "output1", F32, [B, H1])]
    te1 += [("out", "output%d" % (2 + k), F32, [B, S, H1]) for k in range(LAYERS1 + 1)]
    te2 = [("in", "input0", "int64", [B, S]), ("out", "output0", F32, [B, P]), ("out", "output1", F32, [B, S, H2])]
    te2 += [("out", "output%d" % (2 + k), F32, [B, S, H2]) for k in range(LAYERS2 + 1)]
    return {
        "text_encoder": te1,
        "text_encoder_2": te2,
        "unet": [("in", "input0", F32, [B, C, L, L]), ("in", "input1", F32, [B]), ("in", "input2", F32, [B, S, H1 + H2]),
                 ("in", "input3", F32, [B, P]), ("in", "input4", F32, [B, T]), ("out", "output0", F32, [B, C, L, L])],
        "vae_post_quant_conv": [("in", "input0", F32, [B, C, L, L]), ("out", "output0", F32, [B, C, L, L])],
        "vae_decoder": [("in", "input0", F32, [B, C, L, L]), ("out", "output0", F32, [B, 3, IMG, IMG])],
        # image-to-image and inpainting: make_sim_model.py's vae_encoder function (float32, force_upcast)
        "vae_encoder": [("in", "input0", F32, [B, 3, IMG, IMG]), ("out", "output0", F32, [B, 2 * C, L, L])],
    }


FN = {"text_encoder": "text_encoder", "text_encoder_2": "text_encoder", "unet": "unet",
      "vae_post_quant_conv": "post_quant_conv", "vae_decoder": "vae_decoder", "vae_encoder": "vae_encoder"}


class TwinTextEncoderHS(torch.nn.Module):
    """The simulator's text_encoder function with AWS's TraceableTextEncoder structure."""

    def __init__(self, hidden, layers, projection):
        super().__init__()
        self.hidden, self.layers, self.projection = hidden, layers, projection

    def hidden_of(self, ids, width):
        j1 = torch.arange(1, width + 1, dtype=torch.int64)
        s7 = torch.arange(ids.shape[1], dtype=torch.int64) * 7
        v = torch.remainder(ids.unsqueeze(-1) * j1 + s7.unsqueeze(-1), 64)
        return v.to(torch.float32) * 0.03125 - 1.0

    def forward(self, input_ids):
        ids = input_ids.to(torch.int64)
        h = self.hidden_of(ids, self.hidden)
        states = tuple(h.clone() for _ in range(self.layers + 1))
        if self.projection > 0:
            return self.hidden_of(ids, self.projection)[:, -1, :], h, states
        return h, h[:, -1, :], states


class TwinUNetSdxl(torch.nn.Module):
    """AWS's UNetWrap-shaped twin: (sample, timestep, encoder_hidden_states, text_embeds, time_ids) -> (noise_pred,)."""

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        s = sample.float()
        n = s.shape[1] * s.shape[2] * s.shape[3]
        p = torch.arange(n)
        e = encoder_hidden_states[:, p % encoder_hidden_states.shape[1], p % encoder_hidden_states.shape[2]]
        a = s.reshape(s.shape[0], n) * 0.5 + e * 0.25
        r = a + (timestep.float() * 0.0009765625).reshape(-1, 1)
        r = r + text_embeds[:, p % text_embeds.shape[1]] * 0.125
        r = r + time_ids[:, p % time_ids.shape[1]] * 0.0009765625
        return (r.reshape(s.shape),)


def twins():
    return {"text_encoder": (TwinTextEncoderHS(H1, LAYERS1, 0), (torch.randint(0, 49408, (B, S)),)),
            "text_encoder_2": (TwinTextEncoderHS(H2, LAYERS2, P), (torch.randint(0, 49408, (B, S)),)),
            "unet": (TwinUNetSdxl(), (torch.randn(B, C, L, L), torch.tensor([999.0]), torch.randn(B, S, H1 + H2),
                                      torch.randn(B, P), torch.randn(B, T))),
            "vae_post_quant_conv": (msm.TwinPostQuantConv(), (torch.randn(B, C, L, L),)),
            "vae_decoder": (msm.TwinVaeDecoder(IMG // L), (torch.randn(B, C, L, L),)),
            "vae_encoder": (msm.TwinVaeEncoder(IMG // L, 2 * C), (torch.rand(B, 3, IMG, IMG) * 2 - 1,))}


def write_configs(out, kind):
    note = ("NRT-SIM FIXTURE made by tools/reference/make_sim_sdxl_model.py (--kind %s): the artifacts compute fixed "
            "test functions (native/README.md), not a diffusion model; this config records their dimensions" % kind)
    unet = {"_class_name": "UNet2DConditionModel", "sample_size": L, "in_channels": C, "out_channels": C,
            "block_out_channels": [16, 32], "cross_attention_dim": H1 + H2, "addition_embed_type": "text_time",
            "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": P + T * 8, "_sdjvm_note": note}
    vae = {"_class_name": "AutoencoderKL", "block_out_channels": [16, 16, 16, 16], "latent_channels": C,
           "scaling_factor": 0.13025, "force_upcast": True, "sample_size": IMG, "_sdjvm_note": note}
    w = sdxl_export.write_json
    w(os.path.join(out, "unet", "config.json"), unet)
    w(os.path.join(out, "vae", "config.json"), vae)
    w(os.path.join(out, "text_encoder", "config.json"), {"hidden_size": H1, "num_hidden_layers": LAYERS1,
                                                          "projection_dim": H1, "_sdjvm_note": note})
    w(os.path.join(out, "text_encoder_2", "config.json"), {"hidden_size": H2, "num_hidden_layers": LAYERS2,
                                                            "projection_dim": P, "_sdjvm_note": note})
    w(os.path.join(out, "scheduler", "scheduler_config.json"), sdxl_export.SCHEDULER)
    w(os.path.join(out, "model_index.json"), sdxl_export.model_index(True))
    specials = json.load(open(os.path.join(sdxl_export.TOKENIZER_SRC, "special_tokens_map.json")))
    for sub, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
        w(os.path.join(out, sub, "special_tokens_map.json"), dict(specials, pad_token=pad))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=["neuron", "cpu"])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    sig = signatures()
    if a.kind == "neuron":
        msm.NEURON_CLASSES["text_encoder_2"] = msm.SimNeuronTextEncoder
        for role, tensors in sig.items():
            neff = msm.make_neff(role, FN[role], tensors, "sdxl-tiny")
            path = os.path.join(a.out, role, "model.pt")  # AWS's SDXL sample: <part>/model.pt
            os.makedirs(os.path.dirname(path), exist_ok=True)
            msm.write_neuron_artifact(role, neff, "buffer", path)
    else:
        for role, (module, example) in twins().items():
            with torch.no_grad():
                traced = torch.jit.trace(module.eval(), example, check_trace=False, strict=role != "vae_encoder")
            path = os.path.join(a.out, "compiled_models", role + ".pt")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            msm.save_module(traced, path)
        # the twins have no parameters: the manifest says they compute in float32 (else the CPU backend would try
        # bfloat16 first, as for AWS's SD 2.1 UNet)
        names = {"text_encoder": ["input_ids"], "text_encoder_2": ["input_ids"],
                 "unet": ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"],
                 "vae_post_quant_conv": ["latents"], "vae_decoder": ["latents"], "vae_encoder": ["image"]}
        arts = {}
        for role, tensors in sig.items():
            ins = [{"name": n, "dtype": d, "shape": sh} for n, (u, _, d, sh) in zip(names[role], tensors) if u == "in"]
            outs = [{"name": nm, "dtype": d, "shape": sh} for u, nm, d, sh in tensors if u == "out"]
            arts[role] = {"file": role + ".pt", "batch": 1 if role.startswith("text_encoder") else None,
                          "inputs": ins, "outputs": outs}
        sdxl_export.write_json(os.path.join(a.out, "compiled_models", "sdjvm-manifest.json"), {
            "format": "sdjvm-manifest/1", "target": "cpu", "created_by": "tools/reference/make_sim_sdxl_model.py",
            "torch": torch.__version__, "torch_neuronx": None, "neuronx_cc": None, "height": IMG, "width": IMG,
            "artifacts": arts})
    write_configs(a.out, a.kind)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
