#!/usr/bin/env python3
"""Trace Stable Diffusion 2.1 for CPU libtorch, in the AWS Inferentia2 deployment layout.

Other families by --model (the default size follows the UNet's sample_size): runwayml/stable-diffusion-v1-5 (SD 1.5),
stabilityai/stable-diffusion-2-1 (768 v-prediction), stabilityai/sd-turbo, and LCM models (SimianLuo/LCM_Dreamshaper_v7:
the UNet is traced with its guidance embedding as a fourth input, timestep_cond [B, time_cond_proj_dim]). Written for
those checkpoints' configs; only SD 2.1-base was traced with this script so far.

Sibling of tools/model/neuron_compile_sd21.py: the same four modules with the same signatures, traced with
torch.jit.trace instead of torch_neuronx.trace, so that stable-diffusion-jvm runs the same model directory on a
machine without NeuronCores:

    OUT/compiled_models/text_encoder.pt        input_ids int64 [1,77] -> {'last_hidden_state', 'pooler_output'}
    OUT/compiled_models/unet.pt                (sample [B,4,h,w], timestep [B], encoder_hidden_states [B,77,H]) -> (noise_pred,)
    OUT/compiled_models/vae_post_quant_conv.pt [1,4,h,w] -> [1,4,h,w]
    OUT/compiled_models/vae_decoder.pt         [1,4,h,w] -> [1,3,8h,8w]
    OUT/compiled_models/vae_encoder.pt         [1,3,8h,8w] in [-1,1] -> {"latent_parameters": [1,8,h,w]} (encoder +
                                               quant_conv, for image-to-image and inpainting)
    OUT/compiled_models/sdjvm-manifest.json    format "sdjvm-manifest/1": versions, dtypes and shapes
    OUT/{tokenizer,scheduler,feature_extractor}/, OUT/{unet,vae,text_encoder}/config.json, OUT/model_index.json

--dtype applies to the UNet and the text encoder (as AWS: bf16); the VAE stays float32 unless --vae-dtype says
otherwise. The UNet timestep is passed in the UNet dtype, like the AWS wrapper does.

--manifest-only DIR writes DIR/compiled_models/sdjvm-manifest.json for an existing directory: it loads each .pt with
torch.jit.load, runs it on inputs built from DIR's config files and records the real output dtypes and shapes.

Needs torch, diffusers and transformers (imported only after the arguments are parsed; --help works without them).
"""
import argparse
import json
import os
import sys

MANIFEST = "sdjvm-manifest.json"
FORMAT = "sdjvm-manifest/1"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model", default="stabilityai/stable-diffusion-2-1-base",
                   help="diffusers model id or local directory (default: %(default)s)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="UNet and text encoder dtype")
    p.add_argument("--vae-dtype", choices=["bf16", "fp32"], default="fp32", help="VAE decoder/post_quant_conv dtype")
    p.add_argument("--height", type=int, default=None, help="image height (default: the UNet's sample_size * 8)")
    p.add_argument("--width", type=int, default=None, help="image width (default: the UNet's sample_size * 8)")
    p.add_argument("--unet-batch", type=int, default=1,
                   help="batch the UNet is traced with (the graph follows the input batch on CPU; 2 = CFG pair)")
    p.add_argument("--classic-attention", action="store_true",
                   help="use diffusers' AttnProcessor (bmm + softmax) instead of scaled_dot_product_attention")
    p.add_argument("--manifest-only", action="store_true",
                   help="do not trace: (re)write the manifest of the existing directory --out")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch default)")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- manifest helpers

def dtype_name(torch, dt):
    return {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16",
            torch.int64: "int64", torch.int32: "int32"}.get(dt, str(dt).replace("torch.", ""))


def torch_dtype(torch, name):
    return {"bf16": torch.bfloat16, "fp32": torch.float32, "bfloat16": torch.bfloat16,
            "float32": torch.float32}[name]


def describe(torch, name, t):
    return {"name": name, "dtype": dtype_name(torch, t.dtype), "shape": list(t.shape)}


def describe_outputs(torch, out, names):
    """Outputs of a traced module: a tensor, a tuple/list of tensors or a dict of tensors."""
    if isinstance(out, torch.Tensor):
        return [describe(torch, names[0], out)]
    if isinstance(out, dict):
        return [describe(torch, k, v) for k, v in out.items() if isinstance(v, torch.Tensor)]
    if isinstance(out, (tuple, list)):
        return [describe(torch, names[i] if i < len(names) else "output_%d" % i, v)
                for i, v in enumerate(out) if isinstance(v, torch.Tensor)]
    raise TypeError("unexpected output type %r" % type(out))


def artifact(torch, file, batch, inputs, outputs, out_names):
    return {"file": file, "batch": batch,
            "inputs": [describe(torch, n, t) for n, t in inputs],
            "outputs": describe_outputs(torch, outputs, out_names)}


def package_version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # not installed
        return None


def write_manifest(path, target, created_by, torch, height, width, artifacts, extra=None):
    m = {"format": FORMAT, "target": target, "created_by": created_by, "torch": torch.__version__,
         "torch_neuronx": package_version("torch-neuronx"), "neuronx_cc": package_version("neuronx-cc"),
         "height": height, "width": width, "artifacts": artifacts}
    if extra:
        m.update(extra)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    return m


# ---------------------------------------------------------------------------------------------- example inputs

def example_ids(torch):
    # "a photo" style ids (BOS, 3 tokens, EOS, pad 0) as in the AWS notebook: real ids, the embedding is a lookup
    ids = [49406, 18376, 525, 7496, 49407] + [0] * 72
    return torch.tensor([ids], dtype=torch.int64)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def dims_from_configs(model_dir, height=None, width=None):
    unet = read_json(os.path.join(model_dir, "unet", "config.json"))
    vae = read_json(os.path.join(model_dir, "vae", "config.json"))
    te = read_json(os.path.join(model_dir, "text_encoder", "config.json"))
    scale = 2 ** (len(vae["block_out_channels"]) - 1)
    height = height or unet["sample_size"] * scale
    width = width or unet["sample_size"] * scale
    return {"scale": scale, "height": height, "width": width, "lh": height // scale, "lw": width // scale,
            "latent": unet.get("in_channels", 4), "hidden": te["hidden_size"],
            "seq": te.get("max_position_embeddings", 77)}


# ---------------------------------------------------------------------------------------------- manifest-only

def manifest_only(args):
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    d = dims_from_configs(args.out, args.height, args.width)
    cm = os.path.join(args.out, "compiled_models")
    dt = torch_dtype(torch, args.dtype)
    vdt = torch_dtype(torch, args.vae_dtype)
    gen = torch.Generator().manual_seed(0)
    arts = {}
    with torch.no_grad():
        te = torch.jit.load(os.path.join(cm, "text_encoder.pt"))
        ids = example_ids(torch)
        arts["text_encoder"] = artifact(torch, "text_encoder.pt", 1, [("input_ids", ids)], te(ids),
                                        ["last_hidden_state", "pooler_output"])
        unet = torch.jit.load(os.path.join(cm, "unet.pt"))
        b = args.unet_batch
        sample = torch.randn([b, d["latent"], d["lh"], d["lw"]], generator=gen).to(dt)
        t = torch.tensor(999.0).expand((b,)).to(dt)
        ehs = torch.randn([b, d["seq"], d["hidden"]], generator=gen).to(dt)
        arts["unet"] = artifact(torch, "unet.pt", None, [("sample", sample), ("timestep", t),
                                                         ("encoder_hidden_states", ehs)],
                                unet(sample, t, ehs), ["noise_pred"])
        z = torch.randn([1, d["latent"], d["lh"], d["lw"]], generator=gen).to(vdt)
        pq = torch.jit.load(os.path.join(cm, "vae_post_quant_conv.pt"))
        arts["vae_post_quant_conv"] = artifact(torch, "vae_post_quant_conv.pt", 1, [("latents", z)], pq(z),
                                               ["latents"])
        dec = torch.jit.load(os.path.join(cm, "vae_decoder.pt"))
        arts["vae_decoder"] = artifact(torch, "vae_decoder.pt", 1, [("latents", z)], dec(z), ["image"])
    m = write_manifest(os.path.join(cm, MANIFEST), "cpu", "tools/model/trace_cpu_sd21.py --manifest-only", torch,
                       d["height"], d["width"], arts)
    print(json.dumps(m, indent=2))


# ---------------------------------------------------------------------------------------------- tracing

def save_configs(pipe, out):
    """Tokenizer, scheduler, feature extractor, the three model configs and model_index.json (no weights)."""
    pipe.tokenizer.save_pretrained(os.path.join(out, "tokenizer"))
    pipe.scheduler.save_pretrained(os.path.join(out, "scheduler"))
    if getattr(pipe, "feature_extractor", None) is not None:
        pipe.feature_extractor.save_pretrained(os.path.join(out, "feature_extractor"))
    pipe.unet.save_config(os.path.join(out, "unet"))
    pipe.vae.save_config(os.path.join(out, "vae"))
    pipe.text_encoder.config.save_pretrained(os.path.join(out, "text_encoder"))
    pipe.save_config(out)  # model_index.json


def trace(args):
    import copy
    import torch
    import torch.nn as nn
    from diffusers import StableDiffusionPipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    dt = torch_dtype(torch, args.dtype)
    vdt = torch_dtype(torch, args.vae_dtype)
    cm = os.path.join(args.out, "compiled_models")
    os.makedirs(cm, exist_ok=True)

    class UNetWrap(nn.Module):  # the AWS wrapper: positional call, tuple output
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states):
            return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)

    class LCMUNetWrap(nn.Module):  # an LCM unet (config time_cond_proj_dim): the guidance embedding as 4th input
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond):
            return self.unet(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond, return_dict=False)

    class TextEncoderWrap(nn.Module):  # dict output as torch_neuronx.trace of CLIPTextModel gives it
        def __init__(self, te):
            super().__init__()
            self.te = te

        def forward(self, input_ids):
            o = self.te(input_ids, return_dict=True)
            return {"last_hidden_state": o.last_hidden_state, "pooler_output": o.pooler_output}

    pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
    save_configs(pipe, args.out)
    scale = pipe.vae_scale_factor
    height = args.height or pipe.unet.config.sample_size * scale
    width = args.width or pipe.unet.config.sample_size * scale
    lh, lw = height // scale, width // scale
    hidden = pipe.text_encoder.config.hidden_size
    if args.classic_attention:
        from diffusers.models.attention_processor import AttnProcessor
        pipe.unet.set_attn_processor(AttnProcessor())
    gen = torch.Generator().manual_seed(0)
    arts = {}
    with torch.no_grad():
        te = TextEncoderWrap(copy.deepcopy(pipe.text_encoder).to(dt)).eval()
        ids = example_ids(torch)
        te_ts = torch.jit.trace(te, ids, strict=False)
        torch.jit.save(te_ts, os.path.join(cm, "text_encoder.pt"))
        arts["text_encoder"] = artifact(torch, "text_encoder.pt", 1, [("input_ids", ids)], te_ts(ids),
                                        ["last_hidden_state", "pooler_output"])
        del te, te_ts

        b = args.unet_batch
        tcd = pipe.unet.config.get("time_cond_proj_dim")
        unet = (LCMUNetWrap if tcd else UNetWrap)(copy.deepcopy(pipe.unet).to(dt)).eval()
        sample = torch.randn([b, pipe.unet.config.in_channels, lh, lw], generator=gen).to(dt)
        t = torch.tensor(999.0).expand((b,)).to(dt)
        ehs = torch.randn([b, 77, hidden], generator=gen).to(dt)
        example = (sample, t, ehs) + ((torch.randn([b, tcd], generator=gen).to(dt),) if tcd else ())
        unet_ts = torch.jit.trace(unet, example)
        torch.jit.save(unet_ts, os.path.join(cm, "unet.pt"))
        names = ["sample", "timestep", "encoder_hidden_states", "timestep_cond"][:len(example)]
        arts["unet"] = artifact(torch, "unet.pt", None, list(zip(names, example)), unet_ts(*example), ["noise_pred"])
        del unet, unet_ts

        z = torch.randn([1, 4, lh, lw], generator=gen).to(vdt)
        pq = copy.deepcopy(pipe.vae.post_quant_conv).to(vdt).eval()
        pq_ts = torch.jit.trace(pq, z)
        torch.jit.save(pq_ts, os.path.join(cm, "vae_post_quant_conv.pt"))
        arts["vae_post_quant_conv"] = artifact(torch, "vae_post_quant_conv.pt", 1, [("latents", z)], pq_ts(z),
                                               ["latents"])
        dec = copy.deepcopy(pipe.vae.decoder).to(vdt).eval()
        dec_ts = torch.jit.trace(dec, z)
        torch.jit.save(dec_ts, os.path.join(cm, "vae_decoder.pt"))
        arts["vae_decoder"] = artifact(torch, "vae_decoder.pt", 1, [("latents", z)], dec_ts(z), ["image"])

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from vae_encoder_wrap import vae_encoder_wrap  # optimum-neuron's {"latent_parameters"} contract

        img = (torch.rand([1, 3, 8 * lh, 8 * lw], generator=gen) * 2 - 1).to(vdt)
        enc = vae_encoder_wrap(torch, copy.deepcopy(pipe.vae), as_dict=True).to(vdt).eval()
        enc_ts = torch.jit.trace(enc, img, strict=False)
        torch.jit.save(enc_ts, os.path.join(cm, "vae_encoder.pt"))
        arts["vae_encoder"] = artifact(torch, "vae_encoder.pt", 1, [("sample", img)], enc_ts(img),
                                       ["latent_parameters"])
    import diffusers
    m = write_manifest(os.path.join(cm, MANIFEST), "cpu", "tools/model/trace_cpu_sd21.py", torch, height, width, arts,
                       {"source_model": args.model, "diffusers": diffusers.__version__})
    print(json.dumps(m, indent=2))


def main(argv=None):
    args = parse_args(argv)
    if args.manifest_only:
        manifest_only(args)
    else:
        trace(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
