#!/usr/bin/env python3
"""Compile SDXL base for Inferentia2 with torch_neuronx, as AWS's sample does it
(aws-neuron-samples/torch-neuronx/inference/hf_pretrained_sdxl_base_1024_inference.ipynb), and lay the result out as
a stable-diffusion-jvm model directory in the sample's own layout:

    OUT/text_encoder/model.pt         TraceableTextEncoder(text_encoder)   ids [1,77] (pad 49407)
    OUT/text_encoder_2/model.pt       TraceableTextEncoder(text_encoder_2) ids [1,77] (pad 0)
    OUT/unet/model.pt                 UNetWrap(unet): (sample [1,4,128,128], timestep [1], encoder_hidden_states
                                      [1,77,2048], text_embeds [1,1280], time_ids [1,6]) -> (noise_pred,);
                                      --model-type=unet-inference
    OUT/vae_decoder/model.pt          vae.decoder, --model-type=unet-inference
    OUT/vae_post_quant_conv/model.pt  vae.post_quant_conv
    OUT/vae_encoder/model.pt          only with --parts ...,vae_encoder (image-to-image): encoder + quant_conv,
                                      image [1,3,1024,1024] in [-1,1] -> moments [1,8,128,128]
    OUT/<part>/                       torch_neuronx's compiler work directory for the part (graph.neff, logs)
    OUT/{tokenizer,tokenizer_2,scheduler}/, OUT/{text_encoder,text_encoder_2,unet,vae}/config.json, model_index.json

Each .pt carries its NEFF; stable-diffusion-jvm finds it there and runs it through libnrt (no torch-neuronx on the
instance). Everything in float32, batch 1, as the sample (the JVM runs the two CFG halves on two NeuronCores, as the
sample's torch_neuronx.DataParallel(unet, [0, 1])). Like the sample, Attention.get_attention_scores is replaced by its
Neuron-friendly version (with diffusers' classic attention processor, which calls it); the sample's NKI
flash-attention processor (KernelizedAttnProcessor2_0) is not applied here, so the UNet may run slower than the
sample's.

Instance: inf2.8xlarge or larger (the sample's requirement; the compile needs the RAM: each part is compiled from a
fresh copy with the pipeline deleted, as the sample does). Time: expect an hour or more for the UNet.

NOT YET RUN on Inferentia2 or with the real checkpoint (written from the sample; its wrappers and shapes are tested
against the simulated runtime only, see SdxlNeffPipelineTest).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = ["text_encoder", "text_encoder_2", "vae_decoder", "unet", "vae_post_quant_conv"]
# not in AWS's sample, so not compiled unless --parts names it: image-to-image's VAE encoder (+ quant_conv)
OPTIONAL_PARTS = ["vae_encoder"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model", default="stabilityai/stable-diffusion-xl-base-1.0")
    p.add_argument("--out", required=True, help="output model directory (the sample's COMPILER_WORKDIR_ROOT)")
    p.add_argument("--height", type=int, default=1024)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--parts", default=",".join(PARTS),
                   help="comma-separated subset of %s, and %s for image-to-image" % (PARTS, OPTIONAL_PARTS))
    return p.parse_args(argv)


def patch_attention(torch):
    """The sample's get_attention_scores_neuron: bmm (scaled) + softmax, transposed for self-attention."""
    from diffusers.models.attention_processor import Attention

    def get_attention_scores(self, query, key, attn_mask=None):
        if query.size() == key.size():
            scores = torch.bmm(key, query.transpose(-1, -2)) * self.scale
            return scores.softmax(dim=1).permute(0, 2, 1)
        scores = torch.bmm(query, key.transpose(-1, -2)) * self.scale
        return scores.softmax(dim=-1)

    Attention.get_attention_scores = get_attention_scores


def main(argv=None):
    args = parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS + OPTIONAL_PARTS]
    if bad:
        print("unknown part(s) %s; choose from %s" % (bad, PARTS + OPTIONAL_PARTS), file=sys.stderr)
        return 2
    import copy
    import torch
    import torch.nn as nn
    import torch_neuronx
    from diffusers import DiffusionPipeline
    sys.path.insert(0, HERE)
    import trace_cpu_sdxl as cpu

    out = os.path.abspath(args.out)
    TraceableTextEncoder, UNetWrap = cpu.make_wrappers(torch, nn)
    lh, lw = args.height // 8, args.width // 8

    def load():
        return DiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float32, low_cpu_mem_usage=True)

    def save(part, traced):
        torch.jit.save(traced, os.path.join(out, part, "model.pt"))
        print("wrote", os.path.join(out, part, "model.pt"), flush=True)

    pipe = load()
    cpu.save_configs(pipe, out)
    unet_inputs = cpu.example_unet_inputs(torch, pipe, 1, lh, lw, torch.float32)
    del pipe
    for part in parts:
        pipe = load()
        work = os.path.join(out, part)
        if part in ("text_encoder", "text_encoder_2"):
            te = copy.deepcopy(TraceableTextEncoder(getattr(pipe, part)))
            del pipe
            ids = cpu.aws_example_ids(torch, 49407 if part == "text_encoder" else 0)
            save(part, torch_neuronx.trace(te, ids, compiler_workdir=work))
        elif part == "vae_decoder":
            decoder = copy.deepcopy(pipe.vae.decoder)
            del pipe
            save(part, torch_neuronx.trace(decoder, torch.randn([1, 4, lh, lw]), compiler_workdir=work,
                                           compiler_args=["--model-type=unet-inference"]))
        elif part == "vae_post_quant_conv":
            pqc = copy.deepcopy(pipe.vae.post_quant_conv)
            del pipe
            save(part, torch_neuronx.trace(pqc, torch.randn([1, 4, lh, lw]), compiler_workdir=work))
        elif part == "vae_encoder":
            from vae_encoder_wrap import vae_encoder_wrap  # HERE is on sys.path (above)
            enc = vae_encoder_wrap(torch, copy.deepcopy(pipe.vae), as_dict=False).eval()  # the moments, bare
            del pipe
            save(part, torch_neuronx.trace(enc, torch.rand([1, 3, lh * 8, lw * 8]) * 2 - 1, compiler_workdir=work))
        elif part == "unet":
            patch_attention(torch)
            from diffusers.models.attention_processor import AttnProcessor
            pipe.unet.set_attn_processor(AttnProcessor())  # the classic processor calls get_attention_scores
            unet = copy.deepcopy(UNetWrap(pipe.unet))
            del pipe
            save(part, torch_neuronx.trace(unet, unet_inputs, compiler_workdir=work,
                                           compiler_args=["--model-type=unet-inference"]))
    print("done: bin/sd info --model", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
