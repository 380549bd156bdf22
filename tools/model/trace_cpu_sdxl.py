#!/usr/bin/env python3
"""Trace SDXL base for CPU libtorch, wrapped as AWS's SDXL sample wraps each part for torch_neuronx.trace.

Sibling of tools/model/neuron_compile_sdxl.py (same wrappers, same signatures, torch.jit.trace instead of
torch_neuronx.trace), so that stable-diffusion-jvm runs the same model on a machine without NeuronCores:

    OUT/compiled_models/text_encoder.pt        input_ids int64 [1,77] -> (last_hidden_state [1,77,768],
                                               pooler_output [1,768], hidden_states: 13 x [1,77,768])
    OUT/compiled_models/text_encoder_2.pt      input_ids int64 [1,77] -> (text_embeds [1,1280],
                                               last_hidden_state [1,77,1280], hidden_states: 33 x [1,77,1280])
    OUT/compiled_models/unet.pt                (sample [B,4,h,w], timestep [B], encoder_hidden_states [B,77,2048],
                                               text_embeds [B,1280], time_ids [B,6]) -> (noise_pred,)
    OUT/compiled_models/vae_post_quant_conv.pt [1,4,h,w] -> [1,4,h,w]          (float32: SDXL's VAE force_upcast)
    OUT/compiled_models/vae_decoder.pt         [1,4,h,w] -> [1,3,8h,8w]
    OUT/compiled_models/vae_encoder.pt         [1,3,8h,8w] in [-1,1] -> {"latent_parameters": [1,8,h,w]} (encoder +
                                               quant_conv, float32: image-to-image)
    OUT/{tokenizer,tokenizer_2,scheduler}/, OUT/{text_encoder,text_encoder_2,unet,vae}/config.json, model_index.json

The text encoders are AWS's TraceableTextEncoder: transformers' model called with output_hidden_states=True,
return_dict=False; stable-diffusion-jvm reads that tuple by its structure (ranks and shapes). --dtype applies to the
UNet (the text encoders and the VAE stay float32, as the sample compiles them). The traced graphs take any batch and
any latent size that is a multiple of the UNet's downsampling.

NOT YET RUN on the real stabilityai/stable-diffusion-xl-base-1.0 checkpoint (written and checked against the tiny
SDXL fixture's shapes only). Needs torch >= 2.0, diffusers and transformers (imported after argument parsing).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model", default="stabilityai/stable-diffusion-xl-base-1.0",
                   help="diffusers model id or local directory (default: %(default)s)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="fp32", help="UNet dtype (default: %(default)s)")
    p.add_argument("--height", type=int, default=None, help="example height (default: unet sample_size * 8 = 1024)")
    p.add_argument("--width", type=int, default=None, help="example width (default: unet sample_size * 8)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch default)")
    return p.parse_args(argv)


def aws_example_ids(torch, pad):
    """AWS's sample ids for "a cat": bos, two tokens, eos, then the tokenizer's pad (49407 or 0)."""
    return torch.tensor([[49406, 736, 1615, 49407] + [pad] * 73])


def make_wrappers(torch, nn):
    class TraceableTextEncoder(nn.Module):  # AWS's: the tuple transformers returns
        def __init__(self, text_encoder):
            super().__init__()
            self.text_encoder = text_encoder

        def forward(self, text_input_ids):
            return self.text_encoder(text_input_ids, output_hidden_states=True, return_dict=False)

    class UNetWrap(nn.Module):  # AWS's: positional added_cond_kwargs, tuple output
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states, text_embeds=None, time_ids=None):
            return self.unet(sample, timestep, encoder_hidden_states,
                             added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}, return_dict=False)

    return TraceableTextEncoder, UNetWrap


def save_configs(pipe, out):
    """Both tokenizers, the scheduler, the four model configs and model_index.json (no weights)."""
    pipe.tokenizer.save_pretrained(os.path.join(out, "tokenizer"))
    pipe.tokenizer_2.save_pretrained(os.path.join(out, "tokenizer_2"))
    pipe.scheduler.save_pretrained(os.path.join(out, "scheduler"))
    pipe.unet.save_config(os.path.join(out, "unet"))
    pipe.vae.save_config(os.path.join(out, "vae"))
    pipe.text_encoder.config.save_pretrained(os.path.join(out, "text_encoder"))
    pipe.text_encoder_2.config.save_pretrained(os.path.join(out, "text_encoder_2"))
    pipe.save_config(out)  # model_index.json with force_zeros_for_empty_prompt


def example_unet_inputs(torch, pipe, b, lh, lw, dtype):
    gen = torch.Generator().manual_seed(0)
    return (torch.randn([b, 4, lh, lw], generator=gen).to(dtype),
            torch.tensor(999.0).float().expand((b,)).to(dtype),
            torch.randn([b, 77, pipe.unet.config.cross_attention_dim], generator=gen).to(dtype),
            torch.randn([b, pipe.text_encoder_2.config.projection_dim], generator=gen).to(dtype),
            torch.randn([b, 6], generator=gen).to(dtype))


def main(argv=None):
    args = parse_args(argv)
    import copy
    import torch
    import torch.nn as nn
    from diffusers import StableDiffusionXLPipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    dt = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    cm = os.path.join(args.out, "compiled_models")
    os.makedirs(cm, exist_ok=True)
    TraceableTextEncoder, UNetWrap = make_wrappers(torch, nn)
    pipe = StableDiffusionXLPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
    save_configs(pipe, args.out)
    scale = pipe.vae_scale_factor
    lh = (args.height or pipe.unet.config.sample_size * scale) // scale
    lw = (args.width or pipe.unet.config.sample_size * scale) // scale
    with torch.no_grad():
        for part, te, pad in (("text_encoder", pipe.text_encoder, 49407), ("text_encoder_2", pipe.text_encoder_2, 0)):
            ts = torch.jit.trace(TraceableTextEncoder(copy.deepcopy(te)).eval(), aws_example_ids(torch, pad),
                                 strict=False)
            torch.jit.save(ts, os.path.join(cm, part + ".pt"))
            del ts
        unet = UNetWrap(copy.deepcopy(pipe.unet).to(dt)).eval()
        ts = torch.jit.trace(unet, example_unet_inputs(torch, pipe, 1, lh, lw, dt))
        torch.jit.save(ts, os.path.join(cm, "unet.pt"))
        del unet, ts
        z = torch.randn([1, 4, lh, lw])
        for part, m in (("vae_post_quant_conv", pipe.vae.post_quant_conv), ("vae_decoder", pipe.vae.decoder)):
            ts = torch.jit.trace(copy.deepcopy(m).float().eval(), z)
            torch.jit.save(ts, os.path.join(cm, part + ".pt"))

        sys.path.insert(0, HERE)
        from vae_encoder_wrap import vae_encoder_wrap  # optimum-neuron's {"latent_parameters"} contract
        img = torch.rand([1, 3, lh * scale, lw * scale]) * 2 - 1
        ts = torch.jit.trace(vae_encoder_wrap(torch, copy.deepcopy(pipe.vae).float(), as_dict=True).eval(), img,
                             strict=False)
        torch.jit.save(ts, os.path.join(cm, "vae_encoder.pt"))
    print(json.dumps({"out": args.out, "latents": [4, lh, lw], "unet_dtype": args.dtype}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
