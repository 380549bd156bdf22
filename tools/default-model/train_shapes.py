#!/usr/bin/python3
"""Train the embedded default model from scratch on the procedural shapes world (shapes_world.py), with the
real SD 2.x structure: KL autoencoder (stage 1), then CLIP-style text transformer + UNet with cross-attention
trained jointly on scaled latents (stage 2: epsilon prediction, scaled_linear 0.00085-0.012 over 1000 steps,
10% caption dropout for classifier-free guidance). CPU (2 threads by default), seeded; resumable from checkpoints.
Matmuls and convolutions run under CPU autocast to bfloat16 (float32 master weights, float32 loss): the
Debian torch build has a generic (slow) float32 BLAS but fast oneDNN bfloat16 kernels (avx512_bf16), ~10x.

    /usr/bin/python3 tools/default-model/train_shapes.py --work /tmp/shapes_train            # train (resumes if interrupted)
    /usr/bin/python3 tools/default-model/train_shapes.py --work /tmp/shapes_train --export src/main/resources/dev/sdjvm/default-model
    /usr/bin/python3 tools/default-model/train_shapes.py --bench                              # time a few steps

Determinism: the same command on the same torch build gives the same weights when run uninterrupted (a resume
restores the RNG states, but the data order after a resume is only reproduced if checkpoints fall on the same
steps, which they do with the default --ckpt-every).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model"))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import sd_arch  # noqa: E402
import shapes_world as W  # noqa: E402
from sd_sampler import ClipTokenizer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/<group>/x.py
TOKDIR = os.path.join(REPO, "src", "test", "resources", "reference", "tokenizer")


def configs(px):
    lat = px // 8
    text = sd_arch.text_config(hidden_size=32, layers=2, heads=4, act="gelu")
    unet = sd_arch.unet_config(block_out_channels=(64, 128), attention_head_dim=(4, 8), cross_attention_dim=32,
                               layers_per_block=1, norm_num_groups=16, sample_size=lat)
    vae = sd_arch.vae_config(block_out_channels=(32, 32, 64, 64), layers_per_block=1, norm_num_groups=16,
                             sample_size=px, scaling_factor=None)
    return text, unet, vae


def alphas_cumprod():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def lr_at(step, total, base, warmup=200):
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def log(fh, msg):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if fh:
        fh.write(line + "\n")
        fh.flush()


def to_tensor(imgs):
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous() * 2.0 - 1.0


# ------------------------------------------------------------------------------------------------ stage 1


def train_vae(args, vae_cfg, fh):
    """Phase 1: vae_steps at batch vae_batch, MSE + KL. Phase 2 (continues phase 1): vae_steps2 at batch
    vae_batch2, MSE + 0.5 L1 + KL (sharper edges). Each phase is saved (vae.pt, vae2.pt) and skipped if present."""
    torch.manual_seed(args.seed)
    vae = sd_arch.AutoencoderKL(vae_cfg)
    p1 = os.path.join(args.work, "vae.pt")
    p2 = os.path.join(args.work, "vae2.pt")
    for phase, path, steps, batch, lr, l1w, seed in (
            (1, p1, args.vae_steps, args.vae_batch, args.vae_lr, 0.0, args.seed),
            (2, p2, args.vae_steps2, args.vae_batch2, args.vae_lr, 0.5, args.seed + 10)):
        if os.path.exists(path):
            ck = torch.load(path)
            vae.load_state_dict(ck["state"])
            log(fh, "vae: loaded %s (final recon mse %.5f)" % (path, ck["final_mse"]))
            continue
        run = vae_phase(args, vae, phase, steps, batch, lr, l1w, seed, fh)
        torch.save({"state": vae.state_dict(), "final_mse": run}, path)
    return vae.eval()


def vae_phase(args, vae, phase, steps, batch, base_lr, l1w, seed, fh):
    if phase > 1:  # phase 1 continues the torch RNG stream of the (seeded) construction
        torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(vae.parameters(), lr=base_lr)
    combos = W.train_combos()
    t0 = time.time()
    run = None
    for step in range(steps):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, steps, base_lr, 100)
        x = to_tensor(W.render_batch(W.sample_attrs(rng, batch, combos), args.px))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mean, logvar = vae.encode(x)
            mean, logvar = mean.float(), logvar.float()
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            rec = vae.decode(z).float()
        mse = F.mse_loss(rec, x)
        kl = 0.5 * torch.mean(mean ** 2 + logvar.exp() - 1 - logvar)
        loss = mse + l1w * (rec - x).abs().mean() + args.kl_weight * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        run = mse.item() if run is None else 0.98 * run + 0.02 * mse.item()
        if step % 100 == 0 or step == steps - 1:
            log(fh, "vae%d step %d mse %.5f (avg %.5f) kl %.3f  %.1fs" % (phase, step, mse.item(), run, kl.item(),
                                                                         time.time() - t0))
    return run


@torch.no_grad()
def encode_dataset(args, vae, fh):
    path = os.path.join(args.work, "latents.pt")
    if os.path.exists(path):
        return torch.load(path)
    rng = np.random.default_rng(args.seed + 1)
    attrs = W.sample_attrs(rng, args.n_data, W.train_combos())
    means, stds = [], []
    for i in range(0, len(attrs), 256):
        x = to_tensor(W.render_batch(attrs[i:i + 256], args.px))
        m, lv = vae.encode(x)
        means.append(m)
        stds.append(torch.exp(0.5 * lv))
    mean = torch.cat(means)
    std = torch.cat(stds)
    g = torch.Generator().manual_seed(args.seed + 2)
    sample = mean + std * torch.randn(mean.shape, generator=g)
    # as SD's 0.18215: 1 / std of the (sampled) latents of the training data
    scaling = float(1.0 / sample.std())
    data = {"attrs": attrs, "mean": mean, "std": std, "scaling_factor": scaling,
            "latent_stats": {"mean": float(sample.mean()), "std": float(sample.std())}}
    torch.save(data, path)
    log(fh, "dataset: %d scenes, latent std %.4f -> scaling_factor %.5f" % (len(attrs), sample.std(), scaling))
    return data


# ------------------------------------------------------------------------------------------------ stage 2


class Trainer:
    def __init__(self, args, text_cfg, unet_cfg):
        torch.manual_seed(args.seed + 3)
        self.te = sd_arch.CLIPTextModel(text_cfg)
        with torch.no_grad():
            self.te.text_model.embeddings.token_embedding.weight.normal_(0.0, 0.02)
            self.te.text_model.embeddings.position_embedding.weight.normal_(0.0, 0.01)
        self.unet = sd_arch.UNet2DConditionModel(unet_cfg)
        self.params = list(self.te.parameters()) + list(self.unet.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=args.lr, weight_decay=0.0)
        self.ema_te = sd_arch.CLIPTextModel(text_cfg)
        self.ema_unet = sd_arch.UNet2DConditionModel(unet_cfg)
        self.ema_te.load_state_dict(self.te.state_dict())
        self.ema_unet.load_state_dict(self.unet.state_dict())
        for p in list(self.ema_te.parameters()) + list(self.ema_unet.parameters()):
            p.requires_grad_(False)
        self.step = 0
        self.caption_noise = args.caption_noise
        self.rng = np.random.default_rng(args.seed + 4)
        self.gen = torch.Generator().manual_seed(args.seed + 5)
        self.loss_avg = None

    def state(self):
        return {"te": self.te.state_dict(), "unet": self.unet.state_dict(), "opt": self.opt.state_dict(),
                "ema_te": self.ema_te.state_dict(), "ema_unet": self.ema_unet.state_dict(), "step": self.step, "caption_noise": self.caption_noise,
                "rng": self.rng.bit_generator.state, "gen": self.gen.get_state(), "loss_avg": self.loss_avg,
                "torch_rng": torch.get_rng_state()}

    def load(self, s):
        self.te.load_state_dict(s["te"])
        self.unet.load_state_dict(s["unet"])
        self.opt.load_state_dict(s["opt"])
        self.ema_te.load_state_dict(s["ema_te"])
        self.ema_unet.load_state_dict(s["ema_unet"])
        self.step = s["step"]
        self.rng.bit_generator.state = s["rng"]
        self.gen.set_state(s["gen"])
        self.loss_avg = s["loss_avg"]
        torch.set_rng_state(s["torch_rng"])

    @torch.no_grad()
    def update_ema(self, decay):
        for e, p in zip(list(self.ema_te.parameters()) + list(self.ema_unet.parameters()), self.params):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def train_unet(args, text_cfg, unet_cfg, data, fh):
    tok = ClipTokenizer(TOKDIR)
    id_cache = {}

    def ids_of(text):
        if text not in id_cache:
            id_cache[text] = tok.input_ids_77(text)
        return id_cache[text]

    tr = Trainer(args, text_cfg, unet_cfg)
    ck = os.path.join(args.work, "unet_ckpt.pt")
    if os.path.exists(ck):
        tr.load(torch.load(ck))
        log(fh, "unet: resumed at step %d" % tr.step)
    ac = alphas_cumprod()
    mean, std, attrs = data["mean"], data["std"], data["attrs"]
    scale = data["scaling_factor"]
    n = len(attrs)
    t0 = time.time()
    s0 = tr.step
    stop = args.stop_at if args.stop_at else args.steps
    while tr.step < stop:
        for gr in tr.opt.param_groups:
            gr["lr"] = lr_at(tr.step, args.steps, args.lr)
        idx = tr.rng.integers(n, size=args.batch)
        caps = []
        for i in idx:
            caps.append("" if tr.rng.random() < args.cond_drop else W.random_caption(tr.rng, attrs[i], noise=args.caption_noise))
        ids = torch.tensor([ids_of(c) for c in caps], dtype=torch.int64)
        it = torch.from_numpy(idx)
        z = (mean[it] + std[it] * torch.randn(mean[it].shape, generator=tr.gen)) * scale
        noise = torch.randn(z.shape, generator=tr.gen)
        t = torch.randint(0, 1000, (args.batch,), generator=tr.gen)
        a = ac[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * z + (1 - a).sqrt() * noise
        with torch.autocast("cpu", dtype=torch.bfloat16):
            emb, _ = tr.te(ids)
            pred = tr.unet(xt, t.float(), emb)[0].float()
        loss = F.mse_loss(pred, noise)
        tr.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tr.params, 1.0)
        tr.opt.step()
        tr.update_ema(min(args.ema, (1 + tr.step) / (10 + tr.step)))
        tr.loss_avg = loss.item() if tr.loss_avg is None else 0.99 * tr.loss_avg + 0.01 * loss.item()
        tr.step += 1
        if tr.step % 100 == 0 or tr.step == args.steps:
            el = time.time() - t0
            eta = el / (tr.step - s0) * (stop - tr.step)
            log(fh, "unet step %d loss %.4f (avg %.4f) lr %.2e  %.0fs, eta %.0fs" % (
                tr.step, loss.item(), tr.loss_avg, tr.opt.param_groups[0]["lr"], el, eta))
        if tr.step % args.ckpt_every == 0 or tr.step == stop:
            torch.save(tr.state(), ck + ".tmp")
            os.replace(ck + ".tmp", ck)
    return tr


# ------------------------------------------------------------------------------------------------ export


def model_card(args, data, final, vae_mse, out, step, vae_rates, noise):
    held = "\n".join("  - %s %s on %s" % h for h in W.HELD_OUT)
    pal = ", ".join("%s %s" % (k, v) for k, v in W.PALETTE.items())
    return f"""# sdjvm default model: "shapes world" (trained from scratch, tiny)

A tiny model with the real Stable Diffusion 2.1 structure and contracts, trained from scratch on CPU on a
procedural world of one flat-coloured shape on a flat background. It exists so that the library can be tried
and tested end to end without downloading 5 GB: `generate("a red circle on a blue background")` draws a red
circle on blue. It knows nothing else.

## What it knows
- Image {args.px}x{args.px} px, latents 4x{args.px // 8}x{args.px // 8}.
- Shapes: {", ".join(W.SHAPES)}. Colours (object and background): {", ".join(W.COLORS)}
  (sRGB: {pal}).
- Optional size words: small, large. Optional position phrases: in the center, on the left, on the right,
  at the top, at the bottom.
- Caption forms seen in training (size/position present with probability 0.6/0.5):
  "a [size] COLOR SHAPE [position] on a BG background", "[size] COLOR SHAPE [position] on BG",
  "a BG background with a [size] COLOR SHAPE [position]"; 10% of captions were dropped to "" (so CFG works);
  each colour word was wrong (another colour) with probability {noise}, like noisy web captions (with noise,
  guidance 1 draws the caption's colours much less often than guidance 4). Compare guidance 4 and 7.5 under "Scores".
- Held-out (colour, shape, background) combinations, never seen in training (a composition test):
{held}
- Words outside this world are ignored or give arbitrary shapes.

## Scores (tools/default-model/eval_shapes.py + tools/default-model/judge_images.py, Python reference sampler, DPM-Solver++ 20 steps)
Captions "a [large] COLOR SHAPE on a BG background", seeds 0-3; fraction judged right
(background / object colour / shape / all three). Chance: 1/8, 1/8, 1/3, 1/168.
SCORES_TABLE
The ceiling set by the autoencoder: on its reconstructions of {vae_rates['n']} rendered ground-truth scenes (all
combinations) the measure is right for background {vae_rates['background']:.2f}, colour {vae_rates['color']:.2f}, shape {vae_rates['shape']:.2f}.

## Parts (all the SD 2.1 parts, same contracts as the AWS Inferentia2 layout)
- tokenizer: the real SD 2.1 CLIP BPE tokenizer (pad "!" = id 0).
- dtypes (as AWS's deployment): text_encoder and unet bfloat16 (inputs/outputs bfloat16, timestep fed as
  bfloat16), VAE float32 - keeps the folder under 15 MB; `--export-dtype fp32` gives a 23 MB float32 export.
  Token-embedding rows of the {{n_tokens}} tokens the world uses (+ BOS/EOS/pad) are trained; all other rows
  (never seen, still at their random init) are zeroed so the archive compresses.
- text_encoder: CLIP-style causal transformer, H=32, 2 layers, 4 heads, gelu, final LayerNorm; dict output
  {{last_hidden_state, pooler_output}}.
- unet: UNet2DConditionModel layout: time_proj + time_embedding, ResnetBlock2D + Transformer2DModel
  (linear proj, self-attn, cross-attn to the text, GEGLU) down/mid/up blocks, block_out_channels (64, 128);
  epsilon prediction; scaled_linear betas 0.00085-0.012, 1000 steps. Returns (noise_pred,).
- vae: AutoencoderKL (block_out_channels (32, 32, 64, 64)), KL weight {args.kl_weight}; decoder and
  post_quant_conv exported. scaling_factor {data['scaling_factor']:.5f} = 1/std of the training latents
  (computed like SD's 0.18215), written in vae/config.json — the pipeline must use it (not 0.18215).
- scheduler: the published SD 2.1-base scheduler_config.json (use DPMSolverMultistep, as AWS does).

## How it was made
`/usr/bin/python3 tools/default-model/train_shapes.py --work /tmp/shapes_train` then
`/usr/bin/python3 tools/default-model/train_shapes.py --work /tmp/shapes_train --export {out}`
(torch {torch.__version__}, CPU, {args.threads} threads, seed {args.seed}). VAE: {args.vae_steps} steps of batch
{args.vae_batch} (MSE + KL), then {args.vae_steps2} steps of batch {args.vae_batch2} (MSE + 0.5 L1 + KL), final reconstruction MSE (in [-1,1] units) {vae_mse:.5f}. Text encoder + UNet: {step}
steps of batch {args.batch} (cosine schedule planned over {args.steps} steps), AdamW lr {args.lr}, EMA {args.ema} (the EMA weights are exported), final
training loss (running average) {final:.4f}. Training data: {args.n_data} rendered scenes (4x4 supersampled),
each with a freshly drawn caption per use. Log: `docs/default-model/train_shapes.log`. Scores: `docs/default-model/shapes_scores.json`
(see docs/tools.md for the measure, `tools/default-model/judge_images.py`).
"""


def scores_table():
    rows = ["| guidance | captions | n | background | colour | shape | all |", "|---|---|---|---|---|---|---|"]
    for g, fn in (("4", "shapes_scores_g4.json"), ("7.5", "shapes_scores.json")):
        p = os.path.join(REPO, "docs", "default-model", fn)
        if not os.path.exists(p):
            continue
        with open(p) as f:
            d = json.load(f)
        for key, name in (("held_out", "held-out"), ("held_out_large", "held-out, large"),
                          ("train_combos", "training combos"), ("train_combos_large", "training combos, large")):
            r = d[key]["rates"]
            rows.append("| %s | %s | %d | %.2f | %.2f | %.2f | %.2f |" % (g, name, d[key]["n"], r["background"],
                                                                       r["color"], r["shape"], r["all"]))
    return "\n".join(rows) if len(rows) > 2 else "(not evaluated yet)"


def export(args, text_cfg, unet_cfg, vae_cfg, fh):
    import make_tiny_sd
    vae, vck = load_vae(args, vae_cfg)
    data = torch.load(os.path.join(args.work, "latents.pt"))
    s = torch.load(os.path.join(args.work, "unet_ckpt.pt"))
    te = sd_arch.CLIPTextModel(text_cfg)
    te.load_state_dict(s["ema_te"])
    unet = sd_arch.UNet2DConditionModel(unet_cfg)
    unet.load_state_dict(s["ema_unet"])
    # Token rows never seen in training kept their random init (zero gradients); zero them so the archive
    # compresses (jar/git). Seen = every token of every caption the world can produce + BOS/EOS/pad.
    tok = ClipTokenizer(TOKDIR)
    seen = {tok.bos, tok.eos, tok.pad}
    for c, sh, b in W.all_combos():
        for size in [None] + list(W.SIZES):
            for pos in [None] + list(W.POSITIONS):
                for tpl in range(3):
                    seen.update(tok.encode(W.caption(c, sh, b, size, pos, tpl)))
    with torch.no_grad():
        emb = te.text_model.embeddings.token_embedding.weight
        keep = torch.zeros(emb.shape[0], dtype=torch.bool)
        keep[sorted(seen)] = True
        emb[~keep] = 0.0
    log(fh, "export: %d token rows kept, others zeroed" % len(seen))
    vae_cfg = dict(vae_cfg)
    vae_cfg["scaling_factor"] = round(data["scaling_factor"], 5)
    if os.path.exists(args.export):
        import shutil
        shutil.rmtree(args.export)
    note = ("sdjvm 'shapes world' default model trained by tools/default-model/train_shapes.py (see README.md); the TorchScript "
            "files in compiled_models/ are what counts")
    make_tiny_sd.export_model(args.export, te.eval(), unet.eval(), vae.eval(), text_cfg, unet_cfg, vae_cfg,
                              args.px, args.px, dtype=make_tiny_sd.DTYPES[args.export_dtype], note=note, created_by="tools/default-model/train_shapes.py",
                              readme=model_card(args, data, s["loss_avg"], vck["final_mse"], args.export, s["step"],
                                                vae_check(args, vae), s.get("caption_noise", args.caption_noise))
                              .replace("SCORES_TABLE", scores_table()).replace("{n_tokens}", str(len(seen) - 3)))
    log(fh, "exported to %s (step %d, loss avg %.4f, scaling %.5f)" % (args.export, s["step"], s["loss_avg"],
                                                                     vae_cfg["scaling_factor"]))


def load_vae(args, vae_cfg):
    """The trained autoencoder (phase 2 checkpoint, or phase 1 with --vae-steps2 0) and its checkpoint dict."""
    ck = torch.load(os.path.join(args.work, "vae2.pt" if args.vae_steps2 > 0 else "vae.pt"))
    vae = sd_arch.AutoencoderKL(vae_cfg)
    vae.load_state_dict(ck["state"])
    return vae.eval(), ck


@torch.no_grad()
def vae_check(args, vae, n=600):
    """The judge (judge_images.py) on the trained autoencoder's reconstructions (posterior mean) of rendered
    ground truth, all combinations: the ceiling the UNet can reach through this VAE."""
    import judge_images as J
    rng = np.random.default_rng(7)
    attrs = W.sample_attrs(rng, n, W.all_combos())
    ok = {"background": 0, "color": 0, "shape": 0, "all": 0}
    for i in range(0, n, 100):
        x = to_tensor(W.render_batch(attrs[i:i + 100], args.px))
        rec = vae.decode(vae.encode(x)[0])
        u8 = ((rec.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).to(torch.uint8).numpy()
        for a, im in zip(attrs[i:i + 100], u8):
            m = J.matches(J.judge(im), a["color"], a["shape"], a["bg"])
            for k in ok:
                ok[k] += m[k]
    rates = {k: round(v / n, 4) for k, v in ok.items()}
    rates["n"] = n
    return rates


def bench(args, text_cfg, unet_cfg, vae_cfg):
    rng = np.random.default_rng(0)
    t = time.time()
    imgs = W.render_batch(W.sample_attrs(rng, args.vae_batch, W.train_combos()), args.px)
    print("render %d: %.3fs" % (args.vae_batch, time.time() - t))
    vae = sd_arch.AutoencoderKL(vae_cfg)
    opt = torch.optim.Adam(vae.parameters())
    x = to_tensor(imgs)
    for i in range(3):
        t = time.time()
        with torch.autocast("cpu", dtype=torch.bfloat16):  # as in training
            m, lv = vae.encode(x)
            loss = F.mse_loss(vae.decode(m).float(), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print("vae step: %.3fs" % (time.time() - t))
    te = sd_arch.CLIPTextModel(text_cfg)
    unet = sd_arch.UNet2DConditionModel(unet_cfg)
    print("params te %d unet %d vae-dec %d" % (sum(p.numel() for p in te.parameters()),
                                               sum(p.numel() for p in unet.parameters()),
                                               sum(p.numel() for p in vae.decoder.parameters())))
    opt = torch.optim.AdamW(list(te.parameters()) + list(unet.parameters()))
    lat = args.px // 8
    for i in range(3):
        t = time.time()
        ids = torch.randint(0, 49408, (args.batch, 77))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            emb, _ = te(ids)
            pred = unet(torch.randn(args.batch, 4, lat, lat), torch.rand(args.batch) * 999, emb)[0].float()
        loss = pred.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print("unet step (batch %d): %.3fs" % (args.batch, time.time() - t))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/shapes_train")
    ap.add_argument("--export")
    ap.add_argument("--export-dtype", default="bf16", choices=["fp32", "bf16"],
                    help="dtype of the exported text encoder and unet (VAE always fp32); bf16 keeps the "
                         "directory under 15 MB (fp32: 23 MB)")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--vae-check", action="store_true",
                    help="judge the trained VAE's reconstructions of ground truth (the shape ceiling) and exit")
    ap.add_argument("--px", type=int, default=64)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--vae-steps", type=int, default=800)
    ap.add_argument("--vae-batch", type=int, default=32)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-steps2", type=int, default=2000)
    ap.add_argument("--vae-batch2", type=int, default=16)
    ap.add_argument("--kl-weight", type=float, default=1e-4)
    ap.add_argument("--n-data", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--stop-at", type=int, default=None,
                    help="end the UNet stage at this step (the LR schedule still spans --steps)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--cond-drop", type=float, default=0.1)
    ap.add_argument("--caption-noise", type=float, default=0.1,
                    help="probability that each colour word of a caption (object, background) names a wrong colour")
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads (bitwise reproducibility holds for the same thread count)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    text_cfg, unet_cfg, vae_cfg = configs(args.px)
    if args.bench:
        bench(args, text_cfg, unet_cfg, vae_cfg)
        return
    if args.vae_check:
        print(json.dumps({"vae_reconstructions": vae_check(args, load_vae(args, vae_cfg)[0])}))
        return
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.work, "args.json"), "w") as f:
        json.dump(vars(args), f, indent=1)
    fh = open(os.path.join(args.work, "train.log"), "a")
    if args.export:
        export(args, text_cfg, unet_cfg, vae_cfg, fh)
        return
    log(fh, "args " + json.dumps(vars(args)))
    vae = train_vae(args, vae_cfg, fh)
    data = encode_dataset(args, vae, fh)
    train_unet(args, text_cfg, unet_cfg, data, fh)
    log(fh, "done")


if __name__ == "__main__":
    main()
