"""Plain-torch Stable Diffusion 2.x architecture (text encoder, UNet, VAE) with diffusers/transformers
parameter names, so that state dicts line up with ``CLIPTextModel``, ``UNet2DConditionModel`` and
``AutoencoderKL``.

Written from the published architecture descriptions for this project (no diffusers/transformers code
copied, none needed at run time). Works on torch 1.13 (Debian python3-torch), CPU, float32 and bfloat16.

Config dicts use the same keys as the Hugging Face ``config.json`` files, so ``config.json`` can be written
straight from them (see ``make_tiny_sd.py``).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------------
# Presets (Hugging Face config keys)
# --------------------------------------------------------------------------------------------------


def text_config(hidden_size=32, layers=2, heads=4, intermediate=None, act="gelu", max_pos=77, vocab=49408,
                projection_dim=None):
    return {
        "architectures": ["CLIPTextModel"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": act,
        "hidden_size": hidden_size,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": intermediate if intermediate is not None else 4 * hidden_size,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": max_pos,
        "model_type": "clip_text_model",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 1,
        "projection_dim": projection_dim if projection_dim is not None else hidden_size,
        "torch_dtype": "float32",
        "vocab_size": vocab,
    }


def unet_config(block_out_channels=(32, 64), attention_head_dim=(2, 4), cross_attention_dim=32,
                layers_per_block=1, norm_num_groups=8, sample_size=8, down_block_types=None,
                up_block_types=None):
    n = len(block_out_channels)
    if down_block_types is None:
        down_block_types = ["CrossAttnDownBlock2D"] * (n - 1) + ["DownBlock2D"]
    if up_block_types is None:
        up_block_types = ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n - 1)
    return {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": list(attention_head_dim),
        "block_out_channels": list(block_out_channels),
        "center_input_sample": False,
        "cross_attention_dim": cross_attention_dim,
        "down_block_types": list(down_block_types),
        "downsample_padding": 1,
        "dual_cross_attention": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": layers_per_block,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": norm_num_groups,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": 4,
        "sample_size": sample_size,
        "up_block_types": list(up_block_types),
        "upcast_attention": False,
        "use_linear_projection": True,
    }


def vae_config(block_out_channels=(16, 32, 32, 32), layers_per_block=1, norm_num_groups=8, sample_size=64,
               scaling_factor=0.18215, latent_channels=4):
    n = len(block_out_channels)
    return {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": list(block_out_channels),
        "down_block_types": ["DownEncoderBlock2D"] * n,
        "in_channels": 3,
        "latent_channels": latent_channels,
        "layers_per_block": layers_per_block,
        "norm_num_groups": norm_num_groups,
        "out_channels": 3,
        "sample_size": sample_size,
        "scaling_factor": scaling_factor,
        "up_block_types": ["UpDecoderBlock2D"] * n,
    }


def preset(name):
    """Return (text_cfg, unet_cfg, vae_cfg, height, width) for a named preset."""
    if name == "tiny":
        # H=16 keeps the 49408xH token embedding (most of the bytes) small
        return (text_config(hidden_size=16, layers=2, heads=2, act="gelu"),
                unet_config(block_out_channels=(16, 32), attention_head_dim=(2, 4), cross_attention_dim=16,
                            layers_per_block=1, norm_num_groups=8, sample_size=8),
                vae_config(block_out_channels=(16, 16, 16, 16), layers_per_block=1, norm_num_groups=8,
                           sample_size=64),
                64, 64)
    if name == "sd21-base":
        # stabilityai/stable-diffusion-2-1-base dimensions (OpenCLIP ViT-H text tower: 23 layers used by SD2).
        return (text_config(hidden_size=1024, layers=23, heads=16, intermediate=4096, act="gelu",
                            projection_dim=512),
                unet_config(block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
                            cross_attention_dim=1024, layers_per_block=2, norm_num_groups=32, sample_size=64),
                vae_config(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32,
                           sample_size=512),
                512, 512)
    if name == "sd15":
        # runwayml/stable-diffusion-v1-5 dimensions (CLIP ViT-L/14 text tower, 12 layers; attention_head_dim 8 = 8
        # heads per block). The transformer blocks' proj_in/proj_out are linear here (SD 1.5 has 1x1 convolutions:
        # the same FLOPs, other state-dict shapes), which is fine for random-weight timing.
        return (text_config(hidden_size=768, layers=12, heads=12, intermediate=3072, act="quick_gelu",
                            projection_dim=768),
                unet_config(block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(8, 8, 8, 8),
                            cross_attention_dim=768, layers_per_block=2, norm_num_groups=32, sample_size=64),
                vae_config(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32,
                           sample_size=512),
                512, 512)
    raise ValueError("unknown preset " + name)


class GroupNorm(nn.GroupNorm):
    """nn.GroupNorm that also accepts an input whose dtype differs from its parameters (bf16 activations under
    CPU autocast during training): then it normalizes in float32. Same parameters and same traced graph as
    nn.GroupNorm when the dtypes agree (fp32 or all-bf16 exports)."""

    def forward(self, x):
        if x.dtype != self.weight.dtype:
            return F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps)
        return super().forward(x)


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm with the same mixed-dtype allowance as GroupNorm above."""

    def forward(self, x):
        if x.dtype != self.weight.dtype:
            return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return super().forward(x)


# --------------------------------------------------------------------------------------------------
# CLIP text model (transformers CLIPTextModel names: text_model.embeddings..., text_model.encoder.layers.N...)
# --------------------------------------------------------------------------------------------------


def _act(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return F.gelu
    raise ValueError(name)


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.position_embedding = nn.Embedding(cfg["max_position_embeddings"], cfg["hidden_size"])
        self.register_buffer("position_ids", torch.arange(cfg["max_position_embeddings"]).unsqueeze(0),
                             persistent=False)

    def forward(self, input_ids):
        seq = input_ids.shape[1]
        return self.token_embedding(input_ids) + self.position_embedding(self.position_ids[:, :seq])


class CLIPAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.head_dim = d // self.heads
        self.scale = self.head_dim ** -0.5
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x, mask):
        b, n, d = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2) * self.scale
        k = self.k_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        w = torch.matmul(q, k.transpose(-1, -2)) + mask
        w = torch.softmax(w, dim=-1)
        o = torch.matmul(w, v).transpose(1, 2).reshape(b, n, d)
        return self.out_proj(o)


class CLIPMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.act = _act(cfg["hidden_act"])
        self.fc1 = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])
        self.fc2 = nn.Linear(cfg["intermediate_size"], cfg["hidden_size"])

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = CLIPAttention(cfg)
        self.layer_norm1 = LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])
        self.mlp = CLIPMLP(cfg)
        self.layer_norm2 = LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class CLIPEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])

    def forward(self, x, mask):
        for layer in self.layers:
            x = layer(x, mask)
        return x


class CLIPTextTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = CLIPTextEmbeddings(cfg)
        self.encoder = CLIPEncoder(cfg)
        self.final_layer_norm = LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, input_ids):
        x = self.embeddings(input_ids)
        n = input_ids.shape[1]
        # causal mask: position i attends to j <= i (additive, dtype min above the diagonal)
        mask = torch.full((n, n), torch.finfo(x.dtype).min, dtype=x.dtype, device=x.device).triu(1)
        x = self.encoder(x, mask[None, None])
        x = self.final_layer_norm(x)
        # pooled output: the hidden state at the EOS token = argmax of the ids (49407 is the largest id)
        pooled = x[torch.arange(x.shape[0], device=x.device), input_ids.argmax(dim=-1)]
        return x, pooled


class CLIPTextModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.text_model = CLIPTextTransformer(cfg)

    def forward(self, input_ids):
        return self.text_model(input_ids)


# --------------------------------------------------------------------------------------------------
# UNet2DConditionModel (diffusers names)
# --------------------------------------------------------------------------------------------------


def timestep_embedding(timesteps, dim, flip_sin_to_cos=True, freq_shift=0.0, max_period=10000):
    """diffusers get_timestep_embedding (Timesteps module: flip_sin_to_cos, downscale_freq_shift)."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
    exponent = exponent / (half - freq_shift)
    emb = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return emb


class TimestepEmbedding(nn.Module):
    """linear_2(silu(linear_1(x))); with cond_proj_dim (an LCM unet's time_cond_proj_dim) the guidance embedding is
    projected (cond_proj, no bias) and added to x first, as diffusers' TimestepEmbedding(cond_proj_dim=...)."""

    def __init__(self, in_ch, dim, cond_proj_dim=None):
        super().__init__()
        self.linear_1 = nn.Linear(in_ch, dim)
        self.linear_2 = nn.Linear(dim, dim)
        self.cond_proj = nn.Linear(cond_proj_dim, in_ch, bias=False) if cond_proj_dim else None

    def forward(self, x, condition=None):
        if condition is not None:
            x = x + self.cond_proj(condition)
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    def __init__(self, in_ch, out_ch, temb_ch, groups, eps=1e-5):
        super().__init__()
        self.norm1 = GroupNorm(groups, in_ch, eps=eps)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_ch, out_ch) if temb_ch else None
        self.norm2 = GroupNorm(groups, out_ch, eps=eps)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None and temb is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


class Attention(nn.Module):
    """diffusers Attention (to_q/to_k/to_v without bias, to_out.0 with bias)."""

    def __init__(self, query_dim, heads, dim_head, cross_dim=None):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head ** -0.5
        kv = cross_dim if cross_dim is not None else query_dim
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(kv, inner, bias=False)
        self.to_v = nn.Linear(kv, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(0.0)])

    def forward(self, x, context=None):
        ctx = x if context is None else context
        b, n, _ = x.shape
        m = ctx.shape[1]
        q = self.to_q(x)
        k = self.to_k(ctx)
        v = self.to_v(ctx)
        dh = q.shape[-1] // self.heads
        q = q.view(b, n, self.heads, dh).transpose(1, 2)
        k = k.view(b, m, self.heads, dh).transpose(1, 2)
        v = v.view(b, m, self.heads, dh).transpose(1, 2)
        w = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        o = torch.matmul(w, v).transpose(1, 2).reshape(b, n, self.heads * dh)
        return self.to_out[0](o)


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, dim_head, cross_dim):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim_head)
        self.norm2 = LayerNorm(dim)
        self.attn2 = Attention(dim, heads, dim_head, cross_dim=cross_dim)
        self.norm3 = LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2DModel(nn.Module):
    """use_linear_projection=True (SD 2.x)."""

    def __init__(self, ch, heads, cross_dim, groups):
        super().__init__()
        self.norm = GroupNorm(groups, ch, eps=1e-6)
        self.proj_in = nn.Linear(ch, ch)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(ch, heads, ch // heads, cross_dim)])
        self.proj_out = nn.Linear(ch, ch)

    def forward(self, x, context):
        b, c, h, w = x.shape
        res = x
        x = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        x = self.proj_in(x)
        for blk in self.transformer_blocks:
            x = blk(x, context)
        x = self.proj_out(x)
        x = x.reshape(b, h, w, c).permute(0, 3, 1, 2)
        return x + res


class Downsample2D(nn.Module):
    def __init__(self, ch, padding=1):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=padding)

    def forward(self, x):
        if self.padding == 0:  # VAE encoder: asymmetric pad
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        dtype = x.dtype
        if dtype == torch.bfloat16:  # as diffusers: upsample_nearest2d lacks bf16 on some backends
            x = x.float()
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if dtype == torch.bfloat16:
            x = x.to(dtype)
        return self.conv(x)


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (attentions present) or DownBlock2D."""

    def __init__(self, in_ch, out_ch, temb_ch, layers, groups, cross, heads, cross_dim, add_down):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, temb_ch, groups) for i in range(layers)])
        self.attentions = nn.ModuleList(
            [Transformer2DModel(out_ch, heads, cross_dim, groups) for _ in range(layers)]) if cross else None
        self.downsamplers = nn.ModuleList([Downsample2D(out_ch)]) if add_down else None

    def forward(self, x, temb, context):
        states = []
        for i, r in enumerate(self.resnets):
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
            states.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            states.append(x)
        return x, states


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D (attentions present) or UpBlock2D."""

    def __init__(self, in_ch, prev_ch, out_ch, temb_ch, layers, groups, cross, heads, cross_dim, add_up):
        super().__init__()
        rs = []
        for i in range(layers + 1):
            skip = in_ch if i == layers else out_ch
            rin = prev_ch if i == 0 else out_ch
            rs.append(ResnetBlock2D(rin + skip, out_ch, temb_ch, groups))
        self.resnets = nn.ModuleList(rs)
        self.attentions = nn.ModuleList(
            [Transformer2DModel(out_ch, heads, cross_dim, groups) for _ in range(layers + 1)]) if cross else None
        self.upsamplers = nn.ModuleList([Upsample2D(out_ch)]) if add_up else None

    def forward(self, x, skips, temb, context):
        for i, r in enumerate(self.resnets):
            x = torch.cat([x, skips.pop()], dim=1)
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class UNetMidBlock2DCrossAttn(nn.Module):
    def __init__(self, ch, temb_ch, groups, heads, cross_dim):
        super().__init__()
        self.attentions = nn.ModuleList([Transformer2DModel(ch, heads, cross_dim, groups)])
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, temb_ch, groups), ResnetBlock2D(ch, ch, temb_ch, groups)])

    def forward(self, x, temb, context):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, context)
        return self.resnets[1](x, temb)


class UNet2DConditionModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        ch = cfg["block_out_channels"]
        heads = cfg["attention_head_dim"]  # SD 2.x: "attention_head_dim" is the number of heads
        if isinstance(heads, int):
            heads = [heads] * len(ch)
        groups = cfg["norm_num_groups"]
        cross_dim = cfg["cross_attention_dim"]
        lpb = cfg["layers_per_block"]
        temb = ch[0] * 4
        self.time_embedding = TimestepEmbedding(ch[0], temb, cfg.get("time_cond_proj_dim"))
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        out = ch[0]
        for i, t in enumerate(cfg["down_block_types"]):
            inp, out = out, ch[i]
            self.down_blocks.append(DownBlock(inp, out, temb, lpb, groups, t.startswith("CrossAttn"), heads[i],
                                              cross_dim, i < len(ch) - 1))
        self.mid_block = UNetMidBlock2DCrossAttn(ch[-1], temb, groups, heads[-1], cross_dim)
        self.up_blocks = nn.ModuleList()
        rch = list(reversed(ch))
        rheads = list(reversed(heads))
        out = rch[0]
        for i, t in enumerate(cfg["up_block_types"]):
            prev, out = out, rch[i]
            inp = rch[min(i + 1, len(ch) - 1)]
            self.up_blocks.append(UpBlock(inp, prev, out, temb, lpb, groups, t.startswith("CrossAttn"), rheads[i],
                                          cross_dim, i < len(ch) - 1))
        self.conv_norm_out = GroupNorm(groups, ch[0], eps=cfg["norm_eps"])
        self.conv_out = nn.Conv2d(ch[0], cfg["out_channels"], 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None):
        t = timestep.expand(sample.shape[0]) if timestep.dim() == 1 else timestep.reshape(1).expand(sample.shape[0])
        t_emb = timestep_embedding(t, self.config["block_out_channels"][0], self.config["flip_sin_to_cos"],
                                   self.config["freq_shift"]).to(sample.dtype)
        emb = self.time_embedding(t_emb, timestep_cond)
        x = self.conv_in(sample)
        skips = [x]
        for blk in self.down_blocks:
            x, s = blk(x, emb, encoder_hidden_states)
            skips.extend(s)
        x = self.mid_block(x, emb, encoder_hidden_states)
        for blk in self.up_blocks:
            n = len(blk.resnets)
            mine = skips[-n:]
            skips = skips[:-n]
            x = blk(x, mine, emb, encoder_hidden_states)
        x = self.conv_out(F.silu(self.conv_norm_out(x)))
        return (x,)


# --------------------------------------------------------------------------------------------------
# AutoencoderKL (diffusers names: encoder.*, decoder.*, quant_conv, post_quant_conv)
# --------------------------------------------------------------------------------------------------


class VAEAttention(nn.Module):
    """Single-head spatial self-attention of the VAE mid block (diffusers Attention with group_norm)."""

    def __init__(self, ch, groups):
        super().__init__()
        self.group_norm = GroupNorm(groups, ch, eps=1e-6)
        self.to_q = nn.Linear(ch, ch)
        self.to_k = nn.Linear(ch, ch)
        self.to_v = nn.Linear(ch, ch)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch), nn.Dropout(0.0)])

    def forward(self, x):
        b, c, h, w = x.shape
        res = x
        x = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        a = torch.softmax(torch.matmul(q, k.transpose(1, 2)) * (c ** -0.5), dim=-1)
        o = self.to_out[0](torch.matmul(a, v))
        return o.transpose(1, 2).reshape(b, c, h, w) + res


class UNetMidBlock2D(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.attentions = nn.ModuleList([VAEAttention(ch, groups)])
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, 0, groups, eps=1e-6),
                                      ResnetBlock2D(ch, ch, 0, groups, eps=1e-6)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class DownEncoderBlock2D(nn.Module):
    def __init__(self, in_ch, out_ch, layers, groups, add_down):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, 0, groups, eps=1e-6) for i in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(out_ch, padding=0)]) if add_down else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
        return x


class UpDecoderBlock2D(nn.Module):
    def __init__(self, in_ch, out_ch, layers, groups, add_up):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(in_ch if i == 0 else out_ch, out_ch, 0, groups, eps=1e-6) for i in range(layers + 1)])
        self.upsamplers = nn.ModuleList([Upsample2D(out_ch)]) if add_up else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch = cfg["block_out_channels"]
        g = cfg["norm_num_groups"]
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        out = ch[0]
        for i in range(len(ch)):
            inp, out = out, ch[i]
            self.down_blocks.append(DownEncoderBlock2D(inp, out, cfg["layers_per_block"], g, i < len(ch) - 1))
        self.mid_block = UNetMidBlock2D(ch[-1], g)
        self.conv_norm_out = GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch = list(reversed(cfg["block_out_channels"]))
        g = cfg["norm_num_groups"]
        self.conv_in = nn.Conv2d(cfg["latent_channels"], ch[0], 3, padding=1)
        self.mid_block = UNetMidBlock2D(ch[0], g)
        self.up_blocks = nn.ModuleList()
        out = ch[0]
        for i in range(len(ch)):
            prev, out = out, ch[i]
            self.up_blocks.append(UpDecoderBlock2D(prev, out, cfg["layers_per_block"], g, i < len(ch) - 1))
        self.conv_norm_out = GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[-1], cfg["out_channels"], 3, padding=1)

    def forward(self, z):
        x = self.conv_in(z)
        x = self.mid_block(x)
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        lc = cfg["latent_channels"]
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * lc, 2 * lc, 1)
        self.post_quant_conv = nn.Conv2d(lc, lc, 1)

    def encode(self, x):
        """Returns (mean, logvar) of the diagonal Gaussian posterior (logvar clamped to [-30, 20])."""
        m = self.quant_conv(self.encoder(x))
        mean, logvar = m.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


# --------------------------------------------------------------------------------------------------
# AWS-style wrappers (what the AWS Inferentia2 SD 2.1 sample traces)
# --------------------------------------------------------------------------------------------------


class TextEncoderWrap(nn.Module):
    """input_ids [1,77] int64 -> dict(last_hidden_state, pooler_output) (or a tuple / bare tensor)."""

    def __init__(self, text_model, output="dict"):
        super().__init__()
        self.neuron_text_encoder = text_model
        self.output = output

    def forward(self, input_ids):
        last, pooled = self.neuron_text_encoder(input_ids)
        if self.output == "dict":
            return {"last_hidden_state": last, "pooler_output": pooled}
        if self.output == "tuple":
            return (last, pooled)
        return last


class UNetWrap(nn.Module):
    """(sample, timestep, encoder_hidden_states) -> (noise_pred,) as AWS's UNetWrap (or a bare tensor, as AWS's SD 1.5
    sample traces it)."""

    def __init__(self, unet, output="tuple"):
        super().__init__()
        self.unet = unet
        self.output = output

    def forward(self, sample, timestep, encoder_hidden_states):
        out = self.unet(sample, timestep, encoder_hidden_states)
        if self.output == "tuple":
            return (out[0],)
        return out[0]


class LCMUNetWrap(nn.Module):
    """(sample, timestep, encoder_hidden_states, timestep_cond) -> (noise_pred,) (or a bare tensor): an LCM unet,
    whose time embedding also takes the guidance-scale embedding [B, time_cond_proj_dim]."""

    def __init__(self, unet, output="tuple"):
        super().__init__()
        self.unet = unet
        self.output = output

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond):
        out = self.unet(sample, timestep, encoder_hidden_states, timestep_cond)
        if self.output == "tuple":
            return (out[0],)
        return out[0]


class VAEDecoderWrap(nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, z):
        return self.decoder(z)


class VAEEncoderWrap(nn.Module):
    """image [B,3,H,W] in [-1,1] -> {"latent_parameters": moments [B,2*latent_channels,H/8,W/8]} as optimum-neuron's
    VAE encoder export: encoder + quant_conv; moments = mean (first half) and logvar (second half), the logvar
    already clamped to [-30, 20] (diffusers' DiagonalGaussianDistribution clamps again: idempotent)."""

    def __init__(self, encoder, quant_conv):
        super().__init__()
        self.encoder = encoder
        self.quant_conv = quant_conv

    def forward(self, sample):
        mean, logvar = self.quant_conv(self.encoder(sample)).chunk(2, dim=1)
        return {"latent_parameters": torch.cat([mean, logvar.clamp(-30.0, 20.0)], dim=1)}
