#!/usr/bin/python3
"""Train the embedded default model from scratch on the procedural shapes world (shapes_world.py), with the
real SD 2.x structure: KL autoencoder (stage 1), then CLIP-style text transformer + UNet with cross-attention
trained jointly on scaled latents (stage 2: epsilon prediction, scaled_linear 0.00085-0.012 over 1000 steps,
10% caption dropout for classifier-free guidance). CPU (2 threads by default), seeded; resumable from checkpoints.
Matmuls and convolutions run under CPU autocast to bfloat16 (float32 master weights, float32 loss): the
Debian torch build has a generic (slow) float32 BLAS but fast oneDNN bfloat16 kernels (avx512_bf16), ~10x.

    /usr/bin/python3 tools/default-model/train_shapes.py --work /tmp/shapes_train            # train (resumes if interrupted)
    /usr/bin/python3 tools/default-model/train_shapes.py --work /tmp/shapes_train --export src/all/main/resources/dev/sdjvm/default-model
    /usr/bin/python3 tools/default-model/train_shapes.py --bench                              # time a few steps
    /usr/bin/python3 tools/default-model/train_shapes.py --train-encoder --work /tmp/shapes_enc --threads 1
    /usr/bin/python3 tools/default-model/train_shapes.py --check-encoder --threads 1 --out docs/default-model/encoder_check.json

--train-encoder adds a VAE encoder (compiled_models/vae_encoder.pt) to an exported model (--model, default the
embedded one), trained against its frozen exported decoder (the autoencoder's own encoder was not kept); see
train_encoder(). --check-encoder judges it: reconstructions, latent statistics, img2img (see check_encoder()).

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
from sd_sampler import ClipTokenizer, DPMSolverPP2M  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/<group>/x.py
TOKDIR = os.path.join(REPO, "src", "core", "test", "resources", "reference", "tokenizer")


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
  bfloat16), VAE float32 - keeps the folder under 16 MB; `--export-dtype fp32` gives a 25 MB float32 export.
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
  The encoder + quant_conv (`vae_encoder.pt`, for image-to-image and inpainting) were trained later against the
  frozen exported decoder: see the last section.
- scheduler: the published SD 2.1-base scheduler_config.json (use DPMSolverMultistep, as AWS does).

## How it was made
`/usr/bin/python3 tools/default-model/train_shapes.py --work /tmp/shapes_train` then
`/usr/bin/python3 tools/default-model/train_shapes.py --work /tmp/shapes_train --export {out}`
(torch {torch.__version__}, CPU, {args.threads} threads, seed {args.seed}). VAE: {args.vae_steps} steps of batch
{args.vae_batch} (MSE + KL), then {args.vae_steps2} steps of batch {args.vae_batch2} (MSE + 0.5 L1 + KL), final reconstruction MSE (in [-1,1] units) {vae_mse:.5f}. Text encoder + UNet: {step}
steps of batch {args.batch} (cosine schedule planned over {args.steps} steps), AdamW lr {args.lr}, EMA {args.ema} (the EMA weights are exported), final
training loss (running average) {final:.4f}. Training data: {args.n_data} rendered scenes (4x4 supersampled),
each with a freshly drawn caption per use. Logs: `docs/default-model/train_shapes_vae.log` (the autoencoder run) and `docs/default-model/train_shapes_unet.log` (the text encoder + UNet run, which loaded that run's autoencoder checkpoints and exported the model). Scores: `docs/default-model/shapes_scores.json`
(see docs/tools.md for the measure, `tools/default-model/judge_images.py`).
ENCODER_SECTION"""


def encoder_section(args):
    """The model card's encoder section, from the encoder checkpoints in --work and docs/default-model/encoder_check.json
    (written by --check-encoder --out); empty without them."""
    ck1p, ck2p = os.path.join(args.work, "encoder_ckpt.pt"), os.path.join(args.work, "encoder2_ckpt.pt")
    jp = os.path.join(REPO, "docs", "default-model", "encoder_check.json")
    if not (os.path.exists(ck1p) and os.path.exists(jp)):
        return ""
    ck1 = torch.load(ck1p)
    ck2 = torch.load(ck2p) if args.enc_steps2 > 0 and os.path.exists(ck2p) else None
    with open(jp) as f:
        d = json.load(f)
    r, lt, ii = d["reconstruction"], d["latents"], d["img2img"]
    rr = r["rates"]
    f = d["model_files"]["vae_encoder.pt"]
    names = {"same": "none", "colour": "object colour", "shape": "shape", "background": "background"}
    cg, ct = ii["control_generated_source"]["by_prompt"], ii["control_txt2img"]["by_prompt"]
    rows = "\n".join("| %s | \"%s\" | %d | %.2f / %.2f / %.2f | %.2f | %.3f | %.2f / %.2f / %.2f | %.2f | %.2f |" % (
        names[k], next(x["prompt"] for x in ii["rows"] if x["change"] == k), v["n"], v["background"], v["color"],
        v["shape"], v["all"], v["mean_centroid_shift"], cg[k]["background"], cg[k]["color"], cg[k]["shape"],
        cg[k]["all"], ct[k]["all"]) for k, v in ii["by_prompt"].items())
    p2 = ""
    if ck2 is not None:
        p2 = f"""then {ck2['step']} steps (Adam lr {args.enc_lr2}, warmup 50, cosine) with
{args.enc_prior_weight} x the frozen UNet's epsilon loss on the scaled sampled latents (its training loss, with
the scenes' true captions, uniform t) added: without it the encoder reconstructed as well but put its latents where
the decoder reads them right and the UNet does not expect them (the decoder is many-to-one; UNet loss 0.28 on them);
final running averages: reconstruction MSE {ck2['run']:.5f}, UNet loss {ck2['prior_run']:.4f}. Wall time
{ck1['seconds'] / 60:.0f} + {ck2['seconds'] / 60:.0f} min on 1 thread (the 2 vCPUs were shared with other jobs). Log:
`docs/default-model/train_shapes_encoder.log` (phase 1, then phase 2 resuming its checkpoint)."""
    else:
        p2 = "final reconstruction MSE (running average) %.5f." % ck1["run"]
    return f"""
## VAE encoder (image-to-image, inpainting)
`compiled_models/vae_encoder.pt` (float32, {f['bytes']} bytes): image [B,3,{args.px},{args.px}] in [-1,1] ->
{{"latent_parameters": moments [B,8,{args.px // 8},{args.px // 8}]}}, mean = channels 0-3, logvar = channels 4-7 (already
clamped to [-30, 20]), as optimum-neuron exports a VAE encoder (encoder + quant_conv); traced at batch 1, accepts any
batch (manifest `"batch": null`). UNet latents = (mean + exp(logvar / 2) * noise) * scaling_factor (or mean * scaling_factor).
The original autoencoder's encoder was not kept, so this one was trained afterwards, from a seeded init, against the
frozen exported decoder + post_quant_conv, on the training scenes, batch {args.enc_batch}: {ck1['step']} steps (Adam lr
{args.enc_lr}, warmup 100, cosine) of MSE + 0.5 L1 of the decoded posterior sample + {args.kl_weight} KL +
{args.enc_stat_weight} (std over the batch of the scaled sampled latents - 1)^2 (the UNet was trained on unit-std
latents), {p2}
`/usr/bin/python3 tools/default-model/train_shapes.py --train-encoder --work /tmp/shapes_enc --threads {args.threads}`
(seed {args.seed}; writes vae_encoder.pt into --model, default this folder, and adds it to sdjvm-manifest.json).
Measured by `train_shapes.py --check-encoder` on the exported files (`docs/default-model/encoder_check.json`):
- Reconstructions (posterior mean -> decoder) of the same {r['n']} ground-truth scenes as the ceiling above:
  background {rr['background']:.2f}, colour {rr['color']:.2f}, shape {rr['shape']:.2f} (the original autoencoder:
  1.00 / 1.00 / 0.97); MSE {r['mse']:.5f} (in [-1,1] units).
- Latents of {lt['n']} training scenes (sampled, scaled): std {lt['std_scaled']:.3f} (target 1), per channel mean
  {lt['channel_mean']}, std {lt['channel_std']}; the UNet's epsilon MSE on them (true captions, uniform t):
  {lt['unet_eps_mse']:.4f} (its final training loss: {lt['unet_final_training_loss']}).
- Image-to-image by hand (diffusers' img2img algorithm: DPM-Solver++ {ii['steps']} steps, strength {ii['strength']} = the
  last {int(ii['steps'] * ii['strength'])} steps, CFG {ii['guidance_scale']:g}) of a rendered red circle on a blue
  background (2 large, 2 small), one prompt per change, 4 seeds; fractions judged as the prompt says (background /
  colour / shape, all), the object's mean centroid shift from the source (fraction of the image side); controls:
  the same img2img from the UNet's own txt2img latent of the source caption (no encoder involved), and txt2img of
  the prompt alone. At strength 0.6 the UNet keeps the layout and the large background, changes the object's
  colour or shape about half the time, and the encoder's latents serve it about as well as its own (n is small).
  The shape misses with the unchanged caption are the two small circles, redrawn as 4-pointed blobs that the judge
  calls triangles (txt2img of that caption: shape {ct['same']['shape']:.2f}).

| change | prompt | n | bg / colour / shape | all | centroid shift | control: own-latent source bg / colour / shape | all | control: txt2img all |
|---|---|---|---|---|---|---|---|---|
{rows}
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
                              .replace("SCORES_TABLE", scores_table()).replace("{n_tokens}", str(len(seen) - 3))
                              .replace("ENCODER_SECTION", encoder_section(args)))
    log(fh, "exported to %s (step %d, loss avg %.4f, scaling %.5f)" % (args.export, s["step"], s["loss_avg"],
                                                                     vae_cfg["scaling_factor"]))
    if os.path.exists(os.path.join(args.work, "encoder_ckpt.pt")):  # the encoder trained afterwards (--train-encoder)
        args.model = args.export
        export_encoder(args, load_encoder(args, configs(args.px)[2]), fh)
    else:
        log(fh, "export: no encoder_ckpt.pt in the work directory: run --train-encoder to add vae_encoder.pt")


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


# ------------------------------------------------------------------------------------------------ VAE encoder
# The autoencoder's training checkpoints were not kept (only its decoder and post_quant_conv were exported), so the
# encoder (+ quant_conv) of an exported model is trained afterwards against the FROZEN exported decoder.

MODEL_DIR = os.path.join(REPO, "src", "all", "main", "resources", "dev", "sdjvm", "default-model")


def exported_vae(model_dir, vae_cfg):
    """sd_arch.AutoencoderKL(vae_cfg) with the decoder and post_quant_conv weights of model_dir's TorchScript
    artifacts (traces of sd_arch.VAEDecoderWrap(decoder) and of post_quant_conv: same parameter names), frozen;
    the encoder and quant_conv keep their fresh (seeded) init. Checked against the artifacts on random latents.
    Returns (vae, scaling_factor from model_dir/vae/config.json)."""
    with open(os.path.join(model_dir, "vae", "config.json")) as f:
        vc = json.load(f)
    for k, v in vae_cfg.items():
        if k != "scaling_factor" and vc.get(k) != v:
            raise SystemExit("vae config mismatch on %s: %r (model) vs %r (configs())" % (k, vc.get(k), v))
    cm = os.path.join(model_dir, "compiled_models")
    dec = torch.jit.load(os.path.join(cm, "vae_decoder.pt")).eval()
    pq = torch.jit.load(os.path.join(cm, "vae_post_quant_conv.pt")).eval()
    vae = sd_arch.AutoencoderKL(vae_cfg)
    vae.decoder.load_state_dict({k[len("decoder."):]: v for k, v in dec.state_dict().items()})
    vae.post_quant_conv.load_state_dict(pq.state_dict())
    for p in list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters()):
        p.requires_grad_(False)
    with torch.no_grad():
        z = torch.randn(2, vae_cfg["latent_channels"], 8, 8, generator=torch.Generator().manual_seed(0)) * 2.5
        d = float((vae.decode(z) - dec(pq(z))).abs().max())
    if d > 1e-4:
        raise SystemExit("rebuilt decoder differs from the TorchScript artifact: max |d| %.3g" % d)
    return vae, float(vc["scaling_factor"])


class UNetPrior:
    """The exported text encoder + UNet (TorchScript, frozen) as a prior on latents: the UNet's epsilon-prediction
    loss (its training loss, i.e. the diffusion bound on -log p(z | caption) up to weighting) on scaled latents z with
    the scenes' true captions, at uniformly drawn t; differentiable with respect to z."""

    def __init__(self, model_dir):
        cm = os.path.join(model_dir, "compiled_models")
        self.te = torch.jit.load(os.path.join(cm, "text_encoder.pt")).eval()
        self.unet = torch.jit.load(os.path.join(cm, "unet.pt")).eval()
        for p in list(self.te.parameters()) + list(self.unet.parameters()):
            p.requires_grad_(False)
        self.dtype = next(self.unet.parameters()).dtype
        self.tok = ClipTokenizer(os.path.join(model_dir, "tokenizer"))
        self.ac = alphas_cumprod()
        self.cache = {}

    @torch.no_grad()
    def embed(self, text):
        if text not in self.cache:
            ids = torch.tensor([self.tok.input_ids_77(text)], dtype=torch.int64)
            self.cache[text] = self.te(ids)["last_hidden_state"].to(self.dtype)
        return self.cache[text]

    def loss(self, z, captions):
        emb = torch.cat([self.embed(c) for c in captions])
        t = torch.randint(0, 1000, (z.shape[0],))
        noise = torch.randn_like(z)
        a = self.ac[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * z + (1 - a).sqrt() * noise
        pred = self.unet(xt.to(self.dtype), t.to(self.dtype), emb)[0].float()
        return F.mse_loss(pred, noise)


def train_encoder(args, vae_cfg, fh):
    """Encoder + quant_conv of the exported model in args.model, trained from a seeded init through its frozen
    exported decoder on the training scenes (train combinations), in two phases (as the autoencoder was):
    posterior sample z = mean + exp(logvar/2) * eps (logvar clamped to [-30, 20]), s = scaling_factor;
    phase 1 (--enc-steps, lr --enc-lr): loss = MSE + 0.5 L1 (as VAE phase 2) + kl_weight * KL
        + enc_stat_weight * (std(z * s) - 1)^2 over the batch (the UNet was trained on latents of unit std);
    phase 2 (--enc-steps2, lr --enc-lr2, continues phase 1): the same + enc_prior_weight * the frozen UNet's
        epsilon loss on z * s with the scenes' true captions (UNetPrior). Phase 1 alone reconstructs as well as the
        original autoencoder but puts the latents where the decoder reads them right and the UNet does not expect
        them (its loss on them was 0.28 against 0.025 in training): the decoder is many-to-one.
    Adam, warmup + cosine per phase. Each phase is resumable (checkpoint every --ckpt-every steps: weights,
    optimizer, RNG states; encoder_ckpt.pt, encoder2_ckpt.pt). Returns the vae with its trained encoder."""
    torch.manual_seed(args.seed + 20)
    vae, scale = exported_vae(args.model, vae_cfg)
    vae.decoder.eval()
    prior = UNetPrior(args.model) if args.enc_steps2 > 0 else None
    combos = W.train_combos()
    for phase, name, steps, lr, warm, pw, seed in (
            (1, "encoder_ckpt.pt", args.enc_steps, args.enc_lr, 100, 0.0, args.seed + 21),
            (2, "encoder2_ckpt.pt", args.enc_steps2, args.enc_lr2, 50, args.enc_prior_weight, args.seed + 22)):
        if steps <= 0:
            continue
        if phase > 1:  # phase 1 continues the torch RNG stream of the (seeded) construction
            torch.manual_seed(seed)
        params = list(vae.encoder.parameters()) + list(vae.quant_conv.parameters())
        opt = torch.optim.Adam(params, lr=lr)
        rng = np.random.default_rng(seed)
        ck = os.path.join(args.work, name)
        step, run, prun, t_used, cpu_used = 0, None, None, 0.0, 0.0
        if os.path.exists(ck):
            s = torch.load(ck)
            vae.encoder.load_state_dict(s["encoder"])
            vae.quant_conv.load_state_dict(s["quant_conv"])
            opt.load_state_dict(s["opt"])
            rng.bit_generator.state = s["rng"]
            torch.set_rng_state(s["torch_rng"])
            step, run, prun = s["step"], s["run"], s.get("prior_run")
            t_used, cpu_used = s["seconds"], s.get("cpu_seconds", 0.0)
            log(fh, "encoder phase %d: %s at step %d" % (phase, "done" if step >= steps else "resumed", step))
        t0, c0 = time.time() - t_used, time.process_time() - cpu_used
        while step < steps:
            for gr in opt.param_groups:
                gr["lr"] = lr_at(step, steps, lr, warm)
            attrs = W.sample_attrs(rng, args.enc_batch, combos)
            x = to_tensor(W.render_batch(attrs, args.px))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                mean, logvar = vae.encode(x)
                mean, logvar = mean.float(), logvar.float()
                z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
                rec = vae.decode(z).float()
            mse = F.mse_loss(rec, x)
            kl = 0.5 * torch.mean(mean ** 2 + logvar.exp() - 1 - logvar)
            zstd = (z * scale).std()
            loss = mse + 0.5 * (rec - x).abs().mean() + args.kl_weight * kl + args.enc_stat_weight * (zstd - 1) ** 2
            if pw > 0:
                caps = [W.caption(a["color"], a["shape"], a["bg"], a["size"], a["position"], int(rng.integers(3)))
                        for a in attrs]
                pl = prior.loss(z * scale, caps)
                loss = loss + pw * pl
                prun = pl.item() if prun is None else 0.98 * prun + 0.02 * pl.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            run = mse.item() if run is None else 0.98 * run + 0.02 * mse.item()
            step += 1
            if step % 100 == 0 or step == steps or step == 1:
                log(fh, "enc%d step %d mse %.5f (avg %.5f) kl %.3f std(z*s) %.3f%s lr %.2e  %.0fs (cpu %.0fs)" % (
                    phase, step, mse.item(), run, kl.item(), zstd.item(),
                    " unet-loss %.4f (avg %.4f)" % (pl.item(), prun) if pw > 0 else "", opt.param_groups[0]["lr"],
                    time.time() - t0, time.process_time() - c0))
            if step % args.ckpt_every == 0 or step == steps:
                torch.save({"encoder": vae.encoder.state_dict(), "quant_conv": vae.quant_conv.state_dict(),
                            "opt": opt.state_dict(), "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                            "step": step, "run": run, "prior_run": prun, "seconds": time.time() - t0,
                            "cpu_seconds": time.process_time() - c0}, ck + ".tmp")
                os.replace(ck + ".tmp", ck)
                if step == steps:
                    log(fh, "encoder phase %d: %d steps, final recon mse (running avg) %.5f%s, %.0f s of training "
                            "(wall; cpu %.0f s)" % (phase, step, run, ", unet loss (running avg) %.4f" % prun
                                                    if prun is not None else "", time.time() - t0,
                                                    time.process_time() - c0))
    return vae.eval()


def sha256_of(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def export_encoder(args, vae, fh):
    """compiled_models/vae_encoder.pt: torch.jit.trace (strict=False, fp32, batch 1; any batch works) of
    sd_arch.VAEEncoderWrap: image [B,3,px,px] in [-1,1] -> {"latent_parameters": moments [B,8,px/8,px/8]}
    (optimum-neuron's VAE encoder contract). Adds it to sdjvm-manifest.json and records the sha256 of every
    artifact there. Leaves the other artifacts alone."""
    import make_tiny_sd
    cm = os.path.join(args.model, "compiled_models")
    wrap = sd_arch.VAEEncoderWrap(vae.encoder, vae.quant_conv).float().eval()
    x = torch.rand(1, 3, args.px, args.px, generator=torch.Generator().manual_seed(3)) * 2 - 1
    path = os.path.join(cm, "vae_encoder.pt")
    with torch.no_grad():
        make_tiny_sd.trace_save(wrap, (x,), path, strict=False)
        ref = wrap(torch.cat([x, -x, x * 0.5]))["latent_parameters"]
        got = torch.jit.load(path)(torch.cat([x, -x, x * 0.5]))["latent_parameters"]
    if tuple(got.shape) != (3, 8, args.px // 8, args.px // 8) or float((got - ref).abs().max()) > 1e-5:
        raise SystemExit("traced encoder disagrees with the module at batch 3: %s" % (tuple(got.shape),))
    mp = os.path.join(cm, "sdjvm-manifest.json")
    with open(mp) as f:
        man = json.load(f)
    lat = args.px // 8
    man["artifacts"]["vae_encoder"] = {
        "file": "vae_encoder.pt", "batch": None, "output_kind": "dict",
        "inputs": [{"name": "sample", "dtype": "float32", "shape": [1, 3, args.px, args.px]}],
        "outputs": [{"name": "latent_parameters", "dtype": "float32", "shape": [1, 2 * 4, lat, lat]}]}
    for a in man["artifacts"].values():
        a["sha256"] = sha256_of(os.path.join(cm, a["file"]))
    make_tiny_sd.write_json(mp, man)
    log(fh, "exported %s (%d bytes, sha256 %s)" % (os.path.relpath(path, args.model), os.path.getsize(path),
                                                   man["artifacts"]["vae_encoder"]["sha256"]))


def load_encoder(args, vae_cfg):
    vae, _ = exported_vae(args.model, vae_cfg)
    last, steps = ("encoder2_ckpt.pt", args.enc_steps2) if args.enc_steps2 > 0 else ("encoder_ckpt.pt", args.enc_steps)
    s = torch.load(os.path.join(args.work, last))
    if s["step"] < steps:
        raise SystemExit("%s at step %d < %d: train first (--train-encoder)" % (last, s["step"], steps))
    vae.encoder.load_state_dict(s["encoder"])
    vae.quant_conv.load_state_dict(s["quant_conv"])
    return vae.eval()


class ExportedModel:
    """The TorchScript artifacts of a model directory (incl. vae_encoder.pt) + its tokenizer and scaling factor."""

    def __init__(self, model_dir):
        cm = os.path.join(model_dir, "compiled_models")
        ld = lambda n: torch.jit.load(os.path.join(cm, n)).eval()  # noqa: E731
        self.te, self.unet, self.pq, self.dec, self.enc = (ld("text_encoder.pt"), ld("unet.pt"),
                                                          ld("vae_post_quant_conv.pt"), ld("vae_decoder.pt"),
                                                          ld("vae_encoder.pt"))
        self.tok = ClipTokenizer(os.path.join(model_dir, "tokenizer"))
        with open(os.path.join(model_dir, "vae", "config.json")) as f:
            self.scale = json.load(f)["scaling_factor"]
        with open(os.path.join(cm, "sdjvm-manifest.json")) as f:
            self.udtype = torch.bfloat16 if json.load(f)["artifacts"]["unet"]["inputs"][0]["dtype"] == "bfloat16" \
                else torch.float32

    def moments(self, x):
        m = self.enc(x)["latent_parameters"]
        mean, logvar = m.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, lat_unscaled):
        return self.dec(self.pq(lat_unscaled))

    def embed(self, texts):
        ids = torch.tensor([self.tok.input_ids_77(t) for t in texts], dtype=torch.int64)
        return torch.cat([self.te(ids[i:i + 1])["last_hidden_state"] for i in range(len(texts))]).float()

    def eps(self, x, t, emb):
        D = self.udtype
        return self.unet(x.to(D), t.to(D), emb.to(D))[0].float()


def to_u8(img):
    return ((img.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).to(torch.uint8).numpy()


@torch.no_grad()
def check_encoder(args):
    """Checks of the exported encoder, with the TorchScript artifacts only:
    1. reconstructions: judge (judge_images.py) on decode(posterior mean) of the same 600 ground-truth scenes as
       --vae-check (all combinations), as the original autoencoder's ceiling was measured; also MSE.
    2. latents: std of the sampled scaled latents (target 1, the UNet's training distribution) over 2000 training
       scenes, per channel mean/std; the UNet's epsilon MSE on those latents with their true captions at uniformly
       drawn t (compare: the UNet's final training loss, 0.0247 with 10% mislabelled colours and 10% dropped captions).
    3. img2img by hand as diffusers' StableDiffusionImg2ImgPipeline with DPMSolverMultistep (SD 2.1-base config,
       20 steps, strength 0.6 -> the last 12 steps, noise added at the 9th timestep), CFG 4: the source is a
       rendered "red circle on blue" (4 seeds: scene jitter, posterior sample and noise), prompts: the same caption,
       another object colour, another shape, another background. Judged against the prompt; the object's centroid
       shift from the source's shows whether the layout was kept. Controls: the same img2img from the UNet's own
       txt2img latent of the source caption (no encoder), and txt2img of the prompt alone."""
    import judge_images as J
    m = ExportedModel(args.model)
    res = {"model_files": {n: {"bytes": os.path.getsize(os.path.join(args.model, "compiled_models", n)),
                               "sha256": sha256_of(os.path.join(args.model, "compiled_models", n))}
                           for n in ("vae_encoder.pt",)}}
    # 1. reconstructions
    rng = np.random.default_rng(7)
    attrs = W.sample_attrs(rng, 600, W.all_combos())
    ok = {"background": 0, "color": 0, "shape": 0, "all": 0}
    se = 0.0
    for i in range(0, 600, 100):
        x = to_tensor(W.render_batch(attrs[i:i + 100], args.px))
        rec = m.decode(m.moments(x)[0])
        se += float(((rec.clamp(-1, 1) - x) ** 2).mean()) * len(x)
        for a, im in zip(attrs[i:i + 100], to_u8(rec)):
            r = J.matches(J.judge(im), a["color"], a["shape"], a["bg"])
            for k in ok:
                ok[k] += r[k]
    res["reconstruction"] = {"n": 600, "rates": {k: round(v / 600, 4) for k, v in ok.items()},
                             "mse": round(se / 600, 5),
                             "ceiling_original_autoencoder": {"background": 1.0, "color": 1.0, "shape": 0.97}}
    print(json.dumps({"reconstruction": res["reconstruction"]}), flush=True)
    # 2. latent statistics and the UNet's loss on them
    rng = np.random.default_rng(args.seed + 1)
    attrs = W.sample_attrs(rng, 2000, W.train_combos())
    g = torch.Generator().manual_seed(args.seed + 2)
    zs = []
    for i in range(0, 2000, 250):
        mean, logvar = m.moments(to_tensor(W.render_batch(attrs[i:i + 250], args.px)))
        zs.append((mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)) * m.scale)
    z = torch.cat(zs)
    ac = alphas_cumprod()
    losses = []
    n_unet = 512
    for i in range(0, n_unet, 64):
        emb = m.embed([W.caption(a["color"], a["shape"], a["bg"]) for a in attrs[i:i + 64]])
        t = torch.randint(0, 1000, (64,), generator=g)
        noise = torch.randn(64, 4, args.px // 8, args.px // 8, generator=g)
        a_ = ac[t].view(-1, 1, 1, 1)
        xt = a_.sqrt() * z[i:i + 64] + (1 - a_).sqrt() * noise
        losses.append(float(((m.eps(xt, t.float(), emb) - noise) ** 2).mean()))
    res["latents"] = {"n": 2000, "std_scaled": round(float(z.std()), 4), "mean_scaled": round(float(z.mean()), 4),
                      "implied_scaling_factor": round(float(m.scale / z.std()), 5),
                      "channel_mean": [round(float(v), 3) for v in z.mean(dim=(0, 2, 3))],
                      "channel_std": [round(float(v), 3) for v in z.std(dim=(0, 2, 3))],
                      "unet_eps_mse": round(float(np.mean(losses)), 4), "unet_eps_mse_n": n_unet,
                      "unet_final_training_loss": 0.0247}
    print(json.dumps({"latents": res["latents"]}), flush=True)
    # 3. img2img
    steps, strength, gs = 20, 0.6, 4.0
    src = ("red", "circle", "blue")
    prompts = [("same", src), ("colour", ("green", "circle", "blue")), ("shape", ("red", "square", "blue")),
               ("background", ("red", "circle", "yellow"))]
    t_start = steps - min(int(steps * strength), steps)
    uncond = m.embed([""])

    def denoise(init, first, text, g):
        """diffusers-style: noise the scaled latent init to timestep index `first` (DPM-Solver++'s add_noise:
        alpha_t * x0 + sigma_t * noise at that sigma; for first = 0 this is a txt2img start), then denoise from there."""
        sched = DPMSolverPP2M(steps)
        sched.i = first
        sig = sched.sigmas[first]
        al = 1.0 / torch.sqrt(sig ** 2 + 1)
        lat = al * init + sig * al * torch.randn(init.shape, generator=g)
        emb = torch.cat([uncond, m.embed([text])])
        for t in sched.timesteps[first:]:
            u, cnd = m.eps(torch.cat([lat, lat]), t.float().expand(2), emb).chunk(2)
            lat = sched.step(u + gs * (cnd - u), lat)
        return lat

    def judged(lat, c, s, b, ref):
        im = to_u8(m.decode(lat / m.scale))[0]
        j = J.judge(im)
        shift = None
        if j.get("centroid") and ref.get("centroid"):
            shift = round(float(np.hypot(j["centroid"][0] - ref["centroid"][0], j["centroid"][1] - ref["centroid"][1])), 3)
        return im, {"judged": j, "ok": J.matches(j, c, s, b), "centroid_shift": shift}

    rows, sheet, gsheet = [], [], []
    lat_shape = (1, 4, args.px // 8, args.px // 8)
    for seed in range(4):
        a = W.sample_attrs(np.random.default_rng(100 + seed), 1, [src])[0]
        x = to_tensor(W.render_batch([a], args.px))
        src_j = J.judge(to_u8(x)[0])
        mean, logvar = m.moments(x)
        # control source: the UNet's own txt2img latent for the source's caption (with its size word)
        gsrc = denoise(torch.zeros(lat_shape), 0, W.caption(*src, size=a["size"]), torch.Generator().manual_seed(1000 + seed))
        gim, gj = judged(gsrc, *src, src_j)
        row, grow = [to_u8(x)[0]], [gim]
        for kind, (c, s, b) in prompts:
            cap = W.caption(c, s, b)
            g = torch.Generator().manual_seed(seed)
            init = (mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)) * m.scale
            im, r = judged(denoise(init, t_start, cap, g), c, s, b, src_j)
            g = torch.Generator().manual_seed(seed)
            torch.randn(mean.shape, generator=g)  # same forward noise as the encoder case
            gim2, rg = judged(denoise(gsrc, t_start, cap, g), c, s, b, gj["judged"])
            _, rt = judged(denoise(torch.zeros(lat_shape), 0, cap, torch.Generator().manual_seed(seed)), c, s, b, src_j)
            rows.append(dict(seed=seed, change=kind, prompt=cap, source=a, **r,
                             control_generated_source={"source_judged": gj["judged"], **rg},
                             control_txt2img={"judged": rt["judged"], "ok": rt["ok"]}))
            row.append(im)
            grow.append(gim2)
        sheet.append(np.concatenate(row, axis=1))
        gsheet.append(np.concatenate(grow, axis=1))
    keys = ("background", "color", "shape", "all")

    def rates(rr, get):
        out = {k: round(sum(get(r)["ok"][k] for r in rr) / len(rr), 3) for k in keys}
        sh = [get(r)["centroid_shift"] for r in rr if get(r).get("centroid_shift") is not None]
        if sh or "centroid_shift" in get(rr[0]):
            out["mean_centroid_shift"] = round(float(np.mean(sh)), 3) if sh else None
        out["n"] = len(rr)
        return out

    summ, ctl_gen, ctl_t2i = {}, {}, {}
    for kind, _ in prompts:
        rr = [r for r in rows if r["change"] == kind]
        summ[kind] = rates(rr, lambda r: r)
        ctl_gen[kind] = rates(rr, lambda r: r["control_generated_source"])
        ctl_t2i[kind] = rates(rr, lambda r: r["control_txt2img"])
    tot = rates(rows, lambda r: r)
    res["img2img"] = {"steps": steps, "strength": strength, "guidance_scale": gs,
                      "scheduler": "DPM-Solver++ 2M (tools/reference/sd_sampler.py), SD 2.1-base config",
                      "source": "rendered red circle on blue (shapes_world, seeds 100-103), encoded by vae_encoder.pt",
                      "by_prompt": summ, "all": tot,
                      "control_generated_source": {
                          "what": "the same img2img from the UNet's own txt2img latent of the source caption (with "
                                  "its size word; seed 1000+i) instead of the encoder's latent: no encoder involved",
                          "by_prompt": ctl_gen, "all": rates(rows, lambda r: r["control_generated_source"])},
                      "control_txt2img": {"what": "txt2img of the prompt alone (same seed)", "by_prompt": ctl_t2i,
                                          "all": rates(rows, lambda r: r["control_txt2img"])},
                      "n": len(rows), "rows": rows}
    print(json.dumps({"img2img": {k: res["img2img"][k] for k in ("by_prompt", "all")},
                      "control_generated_source": res["img2img"]["control_generated_source"]["all"],
                      "control_txt2img": res["img2img"]["control_txt2img"]["all"]}), flush=True)
    if args.sheet:
        from PIL import Image
        im = np.concatenate(sheet + gsheet, axis=0)
        Image.fromarray(im).resize((im.shape[1] * 2, im.shape[0] * 2), Image.NEAREST).save(args.sheet)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
    return res


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
                         "directory under 16 MB (fp32: 25 MB)")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--vae-check", action="store_true",
                    help="judge the trained VAE's reconstructions of ground truth (the shape ceiling) and exit")
    ap.add_argument("--train-encoder", action="store_true",
                    help="train the VAE encoder (+ quant_conv) of the exported model in --model against its frozen "
                         "exported decoder (resumable in --work), then write compiled_models/vae_encoder.pt there")
    ap.add_argument("--check-encoder", action="store_true",
                    help="judge --model's vae_encoder.pt: reconstructions, latent statistics, img2img (see check_encoder)")
    ap.add_argument("--model", default=MODEL_DIR, help="exported model directory for --train-encoder/--check-encoder")
    ap.add_argument("--out", help="--check-encoder: write the results (JSON) here")
    ap.add_argument("--sheet", help="--check-encoder: img2img contact sheet (PNG; per seed: source, results of the 4 "
                                    "prompts; then the same from the UNet's own txt2img source)")
    ap.add_argument("--enc-steps", type=int, default=2500)
    ap.add_argument("--enc-batch", type=int, default=16)
    ap.add_argument("--enc-lr", type=float, default=1e-3)
    ap.add_argument("--enc-stat-weight", type=float, default=0.1,
                    help="weight of (std of the scaled latents of a batch - 1)^2 in the encoder loss")
    ap.add_argument("--enc-steps2", type=int, default=800, help="encoder phase 2 (with the UNet prior); 0 = none")
    ap.add_argument("--enc-lr2", type=float, default=3e-4)
    ap.add_argument("--enc-prior-weight", type=float, default=0.03,
                    help="weight of the frozen UNet's epsilon loss on the encoder's latents in phase 2")
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
    if args.check_encoder:
        check_encoder(args)
        return
    os.makedirs(args.work, exist_ok=True)
    if args.train_encoder:
        fh = open(os.path.join(args.work, "train_encoder.log"), "a")
        log(fh, "encoder args " + json.dumps({k: v for k, v in vars(args).items() if k not in ("model", "work")}))
        vae = train_encoder(args, vae_cfg, fh)
        export_encoder(args, vae, fh)
        return
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
