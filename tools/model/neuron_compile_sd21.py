#!/usr/bin/env python3
"""Compile Stable Diffusion 2.1-base (512x512) for AWS Inferentia2 / Trainium, in the layout stable-diffusion-jvm loads.

Reproduces the compile step of AWS's sample notebook
aws-neuron-samples/torch-neuronx/inference/hf_pretrained_sd2_512_inference.ipynb:

  * UNet in bfloat16, wrapped (UNetWrap: positional call, tuple output), with the notebook's attention-score patch
    (get_attention_scores: square matmuls transposed, bmm * 0.125, softmax) and NEURON_FUSE_SOFTMAX=1, traced with
    torch_neuronx.trace(..., compiler_args=["--model-type=unet-inference", "--enable-fast-loading-neuron-binaries"]),
    example inputs sample [B,4,64,64] bf16, timestep 999 bf16 expanded to [B], encoder_hidden_states [B,77,1024] bf16;
  * CLIP text encoder in bfloat16, traced on real token ids (the embedding is a lookup);
  * VAE decoder and VAE post_quant_conv in float32, input [1,4,64,64];
  * torch_neuronx.async_load / lazy_load as in the notebook (when this torch-neuronx has them).

Output (copy the whole directory to the inf2 host, then `bin/sd generate --model OUT ...`):

    OUT/compiled_models/{unet,text_encoder,vae_decoder,vae_post_quant_conv,vae_encoder}.pt
    OUT/compiled_models/{unet,text_encoder,vae_decoder,vae_post_quant_conv,vae_encoder}.neff
                                              each artifact's compiled NEFF, copied from the compiler work directory
                                              (torch-neuronx writes <workdir>/<part>/**/graph.neff); the JVM runs these
                                              through libnrt without libtorch (the .pt carries the same NEFF inside)
    OUT/compiled_models/sdjvm-manifest.json   "sdjvm-manifest/1", target "neuron", torch / torch-neuronx /
                                              neuronx-cc versions, static batch, dtypes and shapes of every artifact,
                                              and per artifact "neff" (file), "neff_source" (where it was copied from)
                                              and "neff_sha256"
    OUT/{tokenizer,scheduler,feature_extractor}/, OUT/{unet,vae,text_encoder}/config.json, OUT/model_index.json

Run on an inf2/trn1 instance with the Neuron DLAMI's PyTorch venv (/opt/aws_neuronx_venv_pytorch_*) plus
`pip install diffusers transformers accelerate`; compiling the UNet needs ~30 GB of host RAM (inf2.8xlarge or
larger, or swap). stable-diffusion-jvm then runs each part's NEFF through libnrt (docs/neuron.md): the instance
that serves the model needs neither this venv nor libtorch.

Imports torch / torch_neuronx / diffusers only after the arguments are parsed (--help works anywhere).
"""
import argparse
import json
import os
import sys

MANIFEST = "sdjvm-manifest.json"
FORMAT = "sdjvm-manifest/1"
PARTS = ("unet", "text_encoder", "vae_decoder", "vae_post_quant_conv", "vae_encoder")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model", default="stabilityai/stable-diffusion-2-1-base",
                   help="diffusers model id or local directory (default: %(default)s)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--height", type=int, default=None, help="default: the UNet's sample_size x 8 (512; 768 for the "
                   "768 v-prediction models)")
    p.add_argument("--width", type=int, default=None, help="default: as --height")
    p.add_argument("--unet-batch", type=int, default=1,
                   help="static UNet batch: 1 = AWS's layout (CFG pair as two calls / DataParallel on 2 cores), "
                        "2 = one call per step for the CFG pair")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="UNet and text encoder dtype")
    p.add_argument("--workdir", default=None, help="compiler work directory (default: OUT/compiler_workdir)")
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    p.add_argument("--no-fast-loading", action="store_true", help="omit --enable-fast-loading-neuron-binaries")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- manifest helpers
# (the same format as tools/model/trace_cpu_sd21.py writes; kept here so that each tool is a single file)

def dtype_name(torch, dt):
    return {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16",
            torch.int64: "int64", torch.int32: "int32"}.get(dt, str(dt).replace("torch.", ""))


def describe(torch, name, t):
    return {"name": name, "dtype": dtype_name(torch, t.dtype), "shape": list(t.shape)}


def describe_outputs(torch, out, names):
    if isinstance(out, torch.Tensor):
        return [describe(torch, names[0], out)]
    if isinstance(out, dict):
        return [describe(torch, k, v) for k, v in out.items() if isinstance(v, torch.Tensor)]
    if isinstance(out, (tuple, list)):
        return [describe(torch, names[i] if i < len(names) else "output_%d" % i, v)
                for i, v in enumerate(out) if isinstance(v, torch.Tensor)]
    raise TypeError("unexpected output type %r" % type(out))


NEFF_HEADER_SIZE = 1024


def neff_header_ok(head, size):
    """The documented neff_header_t: header_size 1024 at byte 8, data_size at 16 fitting the file."""
    import struct
    if len(head) < 24:
        return False
    header_size, data_size = struct.unpack_from("<QQ", head, 8)
    return header_size == NEFF_HEADER_SIZE and data_size > 0 and NEFF_HEADER_SIZE + data_size == size


def copy_neff(part, workdir, cm, out):
    """Copies the NEFF torch-neuronx compiled for `part` (<workdir>/<part>/**/*.neff, the newest when it compiled
    several times) to compiled_models/<part>.neff. Returns the manifest fields, or {} (with a warning) if none."""
    import glob
    import hashlib
    import shutil
    found = [f for f in glob.glob(os.path.join(workdir, part, "**", "*.neff"), recursive=True) if os.path.isfile(f)]
    if not found:
        print("warning: no NEFF under %s; the JVM will look for it inside %s.pt" % (os.path.join(workdir, part), part),
              file=sys.stderr)
        return {}
    src = max(found, key=os.path.getmtime)
    with open(src, "rb") as f:
        head = f.read(NEFF_HEADER_SIZE)
    if not neff_header_ok(head, os.path.getsize(src)):
        print("warning: %s does not start with a NEFF header; not copied" % src, file=sys.stderr)
        return {}
    dst = os.path.join(cm, part + ".neff")
    shutil.copyfile(src, dst)
    h = hashlib.sha256()
    with open(dst, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    try:
        where = os.path.relpath(src, out)
    except ValueError:
        where = src
    return {"neff": part + ".neff", "neff_source": where, "neff_sha256": h.hexdigest()}


def package_version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------- the notebook's code

def make_wrappers(torch, nn, dtype):
    class UNetWrap(nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None, cross_attention_kwargs=None):
            # an LCM unet (config time_cond_proj_dim) is traced with timestep_cond as its 4th input
            return self.unet(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond, return_dict=False)

    class NeuronUNet(nn.Module):
        """Only used at inference in Python (kept for parity with the notebook): casts and expands the timestep."""

        def __init__(self, unetwrap):
            super().__init__()
            self.unetwrap = unetwrap
            self.config = unetwrap.unet.config
            self.in_channels = unetwrap.unet.in_channels
            self.device = unetwrap.unet.device

        def forward(self, sample, timestep, encoder_hidden_states, cross_attention_kwargs=None):
            from diffusers.models.unet_2d_condition import UNet2DConditionOutput
            sample = self.unetwrap(sample, timestep.to(dtype=dtype).expand((sample.shape[0],)),
                                   encoder_hidden_states)[0]
            return UNet2DConditionOutput(sample=sample)

    class NeuronTextEncoder(nn.Module):
        def __init__(self, text_encoder):
            super().__init__()
            self.neuron_text_encoder = text_encoder
            self.config = text_encoder.config
            self.dtype = text_encoder.dtype
            self.device = text_encoder.device

        def forward(self, emb, attention_mask=None):
            return [self.neuron_text_encoder(emb)["last_hidden_state"]]

    return UNetWrap, NeuronUNet, NeuronTextEncoder


def custom_badbmm(torch, a, b):
    return torch.bmm(a, b) * 0.125  # 1/sqrt(head_dim 64), as in the notebook


def patch_attention(torch):
    """Replace Attention.get_attention_scores with the notebook's Neuron-friendly version and force the classic
    attention processor (the default scaled_dot_product_attention processor would bypass get_attention_scores)."""
    try:
        from diffusers.models.attention_processor import Attention as Attn
    except ImportError:  # diffusers < 0.16
        from diffusers.models.cross_attention import CrossAttention as Attn

    def get_attention_scores(self, query, key, attn_mask=None):
        dtype = query.dtype
        if self.upcast_attention:
            query = query.float()
            key = key.float()
        if query.size() == key.size():  # square matmul (self-attention): transposed product, softmax on dim 1
            scores = custom_badbmm(torch, key, query.transpose(-1, -2))
            if self.upcast_softmax:
                scores = scores.float()
            probs = scores.softmax(dim=1).permute(0, 2, 1)
        else:
            scores = custom_badbmm(torch, query, key.transpose(-1, -2))
            if self.upcast_softmax:
                scores = scores.float()
            probs = scores.softmax(dim=-1)
        return probs.to(dtype)

    Attn.get_attention_scores = get_attention_scores


def classic_processor(unet):
    try:
        from diffusers.models.attention_processor import AttnProcessor
        unet.set_attn_processor(AttnProcessor())
    except ImportError:
        pass  # old diffusers: CrossAttention always calls get_attention_scores


def main(argv=None):
    args = parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        print("unknown part(s) %s; choose from %s" % (bad, PARTS), file=sys.stderr)
        return 2
    os.environ.setdefault("NEURON_FUSE_SOFTMAX", "1")

    import copy
    import torch
    import torch.nn as nn
    import torch_neuronx
    import diffusers
    from diffusers import StableDiffusionPipeline

    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    out = os.path.abspath(args.out)
    cm = os.path.join(out, "compiled_models")
    work = os.path.abspath(args.workdir or os.path.join(out, "compiler_workdir"))
    os.makedirs(cm, exist_ok=True)
    fast = [] if args.no_fast_loading else ["--enable-fast-loading-neuron-binaries"]
    UNetWrap, _, NeuronTextEncoder = make_wrappers(torch, nn, dtype)
    b = args.unet_batch

    manifest_path = os.path.join(cm, MANIFEST)
    arts = {}
    if os.path.isfile(manifest_path):  # keep entries of parts compiled by an earlier run (--parts)
        with open(manifest_path) as f:
            arts = json.load(f).get("artifacts", {})

    def finish(model):
        for name in ("async_load", "lazy_load"):
            fn = getattr(torch_neuronx, name, None)
            if fn is not None:
                fn(model)

    # configs, tokenizer, scheduler (no weights) from a float32 load
    pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
    pipe.tokenizer.save_pretrained(os.path.join(out, "tokenizer"))
    pipe.scheduler.save_pretrained(os.path.join(out, "scheduler"))
    if getattr(pipe, "feature_extractor", None) is not None:
        pipe.feature_extractor.save_pretrained(os.path.join(out, "feature_extractor"))
    pipe.unet.save_config(os.path.join(out, "unet"))
    pipe.vae.save_config(os.path.join(out, "vae"))
    pipe.text_encoder.config.save_pretrained(os.path.join(out, "text_encoder"))
    pipe.save_config(out)
    hidden = pipe.text_encoder.config.hidden_size
    tcd = pipe.unet.config.get("time_cond_proj_dim")
    args.height = args.height or pipe.unet.config.sample_size * pipe.vae_scale_factor
    args.width = args.width or pipe.unet.config.sample_size * pipe.vae_scale_factor
    lh, lw = args.height // 8, args.width // 8
    del pipe

    if "unet" in parts:
        pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=dtype)
        patch_attention(torch)
        classic_processor(pipe.unet)
        unet = copy.deepcopy(UNetWrap(pipe.unet))  # keep only what is compiled in RAM
        del pipe
        sample = torch.randn([b, 4, lh, lw], dtype=dtype)
        timestep = torch.tensor(999, dtype=dtype).expand((b,))
        ehs = torch.randn([b, 77, hidden], dtype=dtype)
        example = (sample, timestep, ehs) + ((torch.randn([b, tcd], dtype=dtype),) if tcd else ())
        unet_neuron = torch_neuronx.trace(unet, example,
                                          compiler_workdir=os.path.join(work, "unet"),
                                          compiler_args=["--model-type=unet-inference"] + fast)
        finish(unet_neuron)
        torch.jit.save(unet_neuron, os.path.join(cm, "unet.pt"))
        arts["unet"] = {"file": "unet.pt", "batch": b,
                        "inputs": [describe(torch, "sample", sample), describe(torch, "timestep", timestep),
                                   describe(torch, "encoder_hidden_states", ehs)]
                                  + ([describe(torch, "timestep_cond", example[3])] if tcd else []),
                        "outputs": describe_outputs(torch, unet_neuron(*example), ["noise_pred"]),
                        **copy_neff("unet", work, cm, out)}
        del unet, unet_neuron

    if "text_encoder" in parts:
        pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=dtype)
        text_encoder = NeuronTextEncoder(copy.deepcopy(pipe.text_encoder))
        del pipe
        ids = torch.tensor([[49406, 18376, 525, 7496, 49407] + [0] * 72], dtype=torch.int64)
        te_neuron = torch_neuronx.trace(text_encoder.neuron_text_encoder, ids,
                                        compiler_workdir=os.path.join(work, "text_encoder"), compiler_args=fast)
        finish(te_neuron)
        torch.jit.save(te_neuron, os.path.join(cm, "text_encoder.pt"))
        arts["text_encoder"] = {"file": "text_encoder.pt", "batch": 1,
                                "inputs": [describe(torch, "input_ids", ids)],
                                "outputs": describe_outputs(torch, te_neuron(ids),
                                                            ["last_hidden_state", "pooler_output"]),
                                **copy_neff("text_encoder", work, cm, out)}
        del text_encoder, te_neuron

    if "vae_decoder" in parts or "vae_post_quant_conv" in parts:
        pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
        decoder = copy.deepcopy(pipe.vae.decoder)
        pqc = copy.deepcopy(pipe.vae.post_quant_conv)
        del pipe
        z = torch.randn([1, 4, lh, lw], dtype=torch.float32)
        if "vae_decoder" in parts:
            dec_neuron = torch_neuronx.trace(decoder, z, compiler_workdir=os.path.join(work, "vae_decoder"),
                                             compiler_args=fast)
            finish(dec_neuron)
            torch.jit.save(dec_neuron, os.path.join(cm, "vae_decoder.pt"))
            arts["vae_decoder"] = {"file": "vae_decoder.pt", "batch": 1, "inputs": [describe(torch, "latents", z)],
                                   "outputs": describe_outputs(torch, dec_neuron(z), ["image"]),
                                   **copy_neff("vae_decoder", work, cm, out)}
            del dec_neuron
        if "vae_post_quant_conv" in parts:
            pqc_neuron = torch_neuronx.trace(pqc, z, compiler_workdir=os.path.join(work, "vae_post_quant_conv"))
            finish(pqc_neuron)
            torch.jit.save(pqc_neuron, os.path.join(cm, "vae_post_quant_conv.pt"))
            arts["vae_post_quant_conv"] = {"file": "vae_post_quant_conv.pt", "batch": 1,
                                           "inputs": [describe(torch, "latents", z)],
                                           "outputs": describe_outputs(torch, pqc_neuron(z), ["latents"]),
                                           **copy_neff("vae_post_quant_conv", work, cm, out)}
            del pqc_neuron

    if "vae_encoder" in parts:
        # image-to-image and inpainting: encoder + quant_conv in float32 (like the decoder), the moments as a bare
        # tensor (the library also takes optimum-neuron's {"latent_parameters": ...} dict)
        pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32)

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from vae_encoder_wrap import vae_encoder_wrap
        enc = vae_encoder_wrap(torch, copy.deepcopy(pipe.vae), as_dict=False).eval()
        del pipe
        img = torch.rand([1, 3, args.height, args.width], dtype=torch.float32) * 2 - 1
        enc_neuron = torch_neuronx.trace(enc, img, compiler_workdir=os.path.join(work, "vae_encoder"),
                                         compiler_args=fast)
        finish(enc_neuron)
        torch.jit.save(enc_neuron, os.path.join(cm, "vae_encoder.pt"))
        arts["vae_encoder"] = {"file": "vae_encoder.pt", "batch": 1, "inputs": [describe(torch, "sample", img)],
                               "outputs": describe_outputs(torch, enc_neuron(img), ["latent_parameters"]),
                               **copy_neff("vae_encoder", work, cm, out)}
        del enc_neuron

    manifest = {"format": FORMAT, "target": "neuron", "created_by": "tools/model/neuron_compile_sd21.py",
                "torch": torch.__version__, "torch_neuronx": package_version("torch-neuronx"),
                "neuronx_cc": package_version("neuronx-cc"), "height": args.height, "width": args.width,
                "artifacts": arts, "source_model": args.model, "diffusers": diffusers.__version__}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(manifest, indent=2))
    missing = [p for p in PARTS if p not in arts]
    if missing:
        print("note: %s not compiled yet (run again with --parts %s)" % (missing, ",".join(missing)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
