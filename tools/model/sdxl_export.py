"""SDXL-shaped random-weight models in the layout of AWS's SDXL sample (used by make_tiny_sd.py --preset sdxl-*).

The UNet and the VAE are diffusers' own UNet2DConditionModel (addition_embed_type "text_time") and AutoencoderKL,
imported from a diffusers source tree on Debian's torch 1.13 with the import stubs of
tools/reference/make_task_references.py; the two CLIP text encoders are sd_arch's CLIP layers (transformers' parameter
names) returning what transformers' CLIPTextModel / CLIPTextModelWithProjection return for
``output_hidden_states=True, return_dict=False``:

    text_encoder    (last_hidden_state [1,77,H1], pooler_output [1,H1], hidden_states: (layers+1) x [1,77,H1])
    text_encoder_2  (text_embeds [1,P], last_hidden_state [1,77,H2], hidden_states: (layers+1) x [1,77,H2])

Each part is traced (CPU TorchScript, float32) as AWS's sample wraps it for torch_neuronx.trace:
TraceableTextEncoder (the tuples above), UNetWrap (sample, timestep, encoder_hidden_states, text_embeds, time_ids)
-> (noise_pred,), vae.decoder, vae.post_quant_conv, and the VAE encoder + quant_conv (sd_arch.VAEEncoderWrap, for
image-to-image); and saved as the sample saves them, ``<part>/model.pt``, beside
the Hugging Face configs (model_index.json StableDiffusionXLPipeline, tokenizer/, tokenizer_2/, scheduler/,
text_encoder*/config.json, unet/config.json, vae/config.json). ``layout="compiled"`` writes
``compiled_models/<part>.pt`` instead.
"""
import json
import math
import os
import shutil
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools", "reference"))
import make_sim_model  # noqa: E402
import sd_arch  # noqa: E402

TOKENIZER_SRC = os.path.join(REPO, "src", "all", "main", "resources", "dev", "sdjvm", "default-model", "tokenizer")

# stabilityai/stable-diffusion-xl-base-1.0's published scheduler config
SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


def model_index(force_zeros=True, class_name="StableDiffusionXLPipeline"):
    return {
        "_class_name": class_name,
        "_diffusers_version": "0.19.0.dev0",
        "force_zeros_for_empty_prompt": force_zeros,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def preset(name, unet_in_channels=4):
    """(text_cfg, text2_cfg, unet_cfg, vae_cfg) with Hugging Face config keys."""
    if name == "sdxl-tiny":
        # H1=8, H2=12 (different, so a swapped concatenation cannot pass), P=6; 64x64 images
        t1 = sd_arch.text_config(hidden_size=8, layers=2, heads=2, act="quick_gelu")
        t2 = sd_arch.text_config(hidden_size=12, layers=3, heads=2, act="gelu", projection_dim=6)
        unet = dict(sample_size=8, block_out_channels=[16, 32], down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                    up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], layers_per_block=1, attention_head_dim=[2, 4],
                    transformer_layers_per_block=[1, 2], cross_attention_dim=20, norm_num_groups=8,
                    addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 + 6 * 8)
        vae = dict(block_out_channels=[16, 16, 16, 16], layers_per_block=1, norm_num_groups=8, sample_size=64)
    elif name == "sdxl-base":
        # stabilityai/stable-diffusion-xl-base-1.0 dimensions: CLIP ViT-L (12 layers) + OpenCLIP bigG (32 layers)
        t1 = sd_arch.text_config(hidden_size=768, layers=12, heads=12, intermediate=3072, act="quick_gelu",
                                 projection_dim=768)
        t2 = sd_arch.text_config(hidden_size=1280, layers=32, heads=20, intermediate=5120, act="gelu",
                                 projection_dim=1280)
        unet = dict(sample_size=128, block_out_channels=[320, 640, 1280],
                    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], layers_per_block=2,
                    attention_head_dim=[5, 10, 20], transformer_layers_per_block=[1, 2, 10], cross_attention_dim=2048,
                    norm_num_groups=32, addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
        vae = dict(block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32, sample_size=1024)
    else:
        raise ValueError("unknown SDXL preset " + name)
    t2["architectures"] = ["CLIPTextModelWithProjection"]
    unet.update(in_channels=unet_in_channels, out_channels=4, addition_embed_type="text_time", use_linear_projection=True,
                act_fn="silu", flip_sin_to_cos=True, freq_shift=0, center_input_sample=False, upcast_attention=False)
    vae.update(in_channels=3, out_channels=3, latent_channels=4, act_fn="silu", scaling_factor=0.13025,
               force_upcast=True, down_block_types=["DownEncoderBlock2D"] * len(vae["block_out_channels"]),
               up_block_types=["UpDecoderBlock2D"] * len(vae["block_out_channels"]))
    return t1, t2, unet, vae


class ClipTextWithHiddenStates(nn.Module):
    """transformers' CLIPTextModel (projection_dim None) or CLIPTextModelWithProjection with
    output_hidden_states=True, return_dict=False: the tuples of the module docstring."""

    def __init__(self, cfg, projection):
        super().__init__()
        self.text_model = sd_arch.CLIPTextTransformer(cfg)
        self.projection = projection
        if projection:
            self.text_projection = nn.Linear(cfg["hidden_size"], cfg["projection_dim"], bias=False)

    def forward(self, input_ids):
        tm = self.text_model
        x = tm.embeddings(input_ids)
        n = input_ids.shape[1]
        mask = torch.full((n, n), torch.finfo(x.dtype).min, dtype=x.dtype, device=x.device).triu(1)[None, None]
        hidden = [x]
        for layer in tm.encoder.layers:
            x = layer(x, mask)
            hidden.append(x)
        last = tm.final_layer_norm(x)
        # eos_token_id 2 in the configs: transformers' legacy pooling at argmax(ids) (the first <|endoftext|>)
        pooled = last[torch.arange(last.shape[0], device=last.device), input_ids.argmax(dim=-1)]
        if self.projection:
            return self.text_projection(pooled), last, tuple(hidden)
        return last, pooled, tuple(hidden)


# AWS's UNetWrap (positional added_cond_kwargs, return_dict=False -> (noise_pred,)): the one trace_cpu_sdxl.py and
# neuron_compile_sdxl.py trace the real checkpoint with
import trace_cpu_sdxl  # noqa: E402
_, UNetWrap = trace_cpu_sdxl.make_wrappers(torch, nn)


def build(name, seed, diffusers_src, unet_in_channels=4):
    """Seeded random weights; the tiny preset's output layers are scaled so that eps and the image are O(1)."""
    import make_task_references
    make_task_references.install_stubs(diffusers_src)
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
    t1, t2, ucfg, vcfg = preset(name, unet_in_channels)
    torch.manual_seed(seed)
    te1 = ClipTextWithHiddenStates(t1, False).eval()
    te2 = ClipTextWithHiddenStates(t2, True).eval()
    for te in (te1, te2):
        nn.init.normal_(te.text_model.embeddings.token_embedding.weight, std=0.5)
        nn.init.normal_(te.text_model.embeddings.position_embedding.weight, std=0.2)
    unet = UNet2DConditionModel(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in ucfg.items()}).eval()
    vae = AutoencoderKL(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in vcfg.items()
                           if k not in ("scaling_factor", "force_upcast")},
                        scaling_factor=vcfg["scaling_factor"], force_upcast=vcfg["force_upcast"]).eval()
    if name == "sdxl-tiny":
        calibrate(te1, te2, unet, vae, t1, t2, ucfg, vcfg, seed)
    return te1, te2, unet, vae, t1, t2, ucfg, vcfg


@torch.no_grad()
def calibrate(te1, te2, unet, vae, t1, t2, ucfg, vcfg, seed):
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, 49406, (1, 77), generator=g)
    e1 = te1(ids)[2][-2]
    out2 = te2(ids)
    ehs = torch.cat([e1, out2[2][-2]], dim=-1)
    h = ucfg["sample_size"]
    x = torch.randn(2, ucfg["in_channels"], h, h, generator=g)
    t = torch.tensor([500.0, 500.0])
    tid = torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2)
    eps = unet(x, t, ehs.repeat(2, 1, 1), added_cond_kwargs={"text_embeds": out2[0].repeat(2, 1), "time_ids": tid},
               return_dict=False)[0]
    unet.conv_out.weight.mul_(1.0 / float(eps.std()))
    unet.conv_out.bias.mul_(1.0 / float(eps.std()))
    z = torch.randn(1, 4, h, h, generator=g)
    img = vae.decoder(vae.post_quant_conv(z))
    s = 0.5 / float(img.std())
    vae.decoder.conv_out.weight.mul_(s)
    vae.decoder.conv_out.bias.mul_(s)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def tokenizers(out, link):
    """tokenizer/ (CLIP ViT-L's: pads with <|endoftext|>, 49407) and tokenizer_2/ (OpenCLIP's: pads with "!", 0):
    the same vocabulary and merges, their own special_tokens_map.json."""
    specials = json.load(open(os.path.join(TOKENIZER_SRC, "special_tokens_map.json")))
    config = json.load(open(os.path.join(TOKENIZER_SRC, "tokenizer_config.json")))
    for sub, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        for f in ("vocab.json", "merges.txt"):
            dst = os.path.join(d, f)
            if os.path.lexists(dst):
                os.remove(dst)
            if link:
                os.symlink(os.path.relpath(os.path.join(TOKENIZER_SRC, f), d), dst)
            else:
                shutil.copyfile(os.path.join(TOKENIZER_SRC, f), dst)
        write_json(os.path.join(d, "special_tokens_map.json"), dict(specials, pad_token=pad))
        write_json(os.path.join(d, "tokenizer_config.json"), dict(config, pad_token=pad, name_or_path=sub))


@torch.no_grad()
def export(out, name, seed, diffusers_src, layout="sample", link_tokenizer=False, force_zeros=True,
           dtype=torch.float32, trace_size=None, unet_in_channels=4):
    """dtype: the UNet's (the text encoders and the VAE stay float32, as trace_cpu_sdxl.py and AWS's sample do);
    trace_size: the image side of the UNet's and the VAE's example inputs (default: the UNet's sample_size x 8; the
    traced graphs take any multiple of 8 x the UNet's downsampling, so a smaller trace only makes the export faster)."""
    te1, te2, unet, vae, t1, t2, ucfg, vcfg = build(name, seed, diffusers_src, unet_in_channels)
    unet = unet.to(dtype)
    h = trace_size // 8 if trace_size else ucfg["sample_size"]
    ids1 = torch.tensor([[49406, 320, 1929, 49407] + [49407] * 73])  # AWS's example ids: tokenizer pads with eos
    ids2 = torch.tensor([[49406, 320, 1929, 49407] + [0] * 73])  # tokenizer_2 pads with "!"
    parts = {
        "text_encoder": (te1, (ids1,)),
        "text_encoder_2": (te2, (ids2,)),
        "unet": (UNetWrap(unet).eval(), tuple(x.to(dtype) for x in (
            torch.randn(1, unet_in_channels, h, h), torch.tensor(999.0).float().expand((1,)),
            torch.randn(1, 77, ucfg["cross_attention_dim"]), torch.randn(1, t2["projection_dim"]), torch.randn(1, 6)))),
        "vae_decoder": (vae.decoder, (torch.randn(1, 4, h, h),)),
        "vae_post_quant_conv": (vae.post_quant_conv, (torch.randn(1, 4, h, h),)),
        # image-to-image: encoder + quant_conv -> {"latent_parameters": moments}, as make_tiny_sd.py and optimum-neuron
        # export it (traced non-strict for the dict), in float32 (force_upcast)
        "vae_encoder": (sd_arch.VAEEncoderWrap(vae.encoder, vae.quant_conv).eval(),
                        (torch.rand(1, 3, 8 * h, 8 * h, generator=torch.Generator().manual_seed(3)) * 2 - 1,)),
    }
    for part, (module, example) in parts.items():
        t0 = time.time()
        traced = torch.jit.trace(module, example, check_trace=False, strict=part != "vae_encoder")
        path = os.path.join(out, part, "model.pt") if layout == "sample" else \
            os.path.join(out, "compiled_models", part + ".pt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # torch.jit.save without the *.debug_pkl records (they hold absolute paths): rerunning rewrites the same bytes
        make_sim_model.save_module(traced, path)
        del traced
        print(part, "traced and saved in %.0f s" % (time.time() - t0), flush=True)
    t1 = dict(t1, architectures=["CLIPTextModel"])
    write_json(os.path.join(out, "text_encoder", "config.json"), t1)
    write_json(os.path.join(out, "text_encoder_2", "config.json"), t2)
    write_json(os.path.join(out, "unet", "config.json"), dict(ucfg, _class_name="UNet2DConditionModel"))
    write_json(os.path.join(out, "vae", "config.json"), dict(vcfg, _class_name="AutoencoderKL"))
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), SCHEDULER)
    # an inpainting UNet (9 input channels) is published with the inpainting pipeline's class, as
    # diffusers/stable-diffusion-xl-1.0-inpainting-0.1
    write_json(os.path.join(out, "model_index.json"), model_index(
        force_zeros, "StableDiffusionXLInpaintPipeline" if unet_in_channels == 9 else "StableDiffusionXLPipeline"))
    tokenizers(out, link_tokenizer)
    return out


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="sdxl-tiny", choices=["sdxl-tiny", "sdxl-base"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--diffusers-src", required=True, help="a diffusers source tree's src/ (git archive HEAD src)")
    ap.add_argument("--layout", default="sample", choices=["sample", "compiled"])
    ap.add_argument("--link-tokenizer", action="store_true", help="symlink vocab.json/merges.txt (test fixtures)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="the UNet's dtype")
    ap.add_argument("--trace-size", type=int, default=None,
                    help="image side of the trace's example inputs (default: the UNet's sample_size x 8)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    export(a.out, a.preset, a.seed, a.diffusers_src, a.layout, a.link_tokenizer,
           dtype={"fp32": torch.float32, "bf16": torch.bfloat16}[a.dtype], trace_size=a.trace_size)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
