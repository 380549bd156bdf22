#!/usr/bin/python3
"""Python reference sampler for a model directory in the AWS layout, following the reference algorithm of
src/all/test/resources/reference/pipeline/README.md section 2 (diffusers StableDiffusionPipeline + AWS wrappers +
DPMSolverMultistepScheduler with the SD 2.1-base config defaults: dpmsolver++, order 2, linspace spacing,
final step first order to sigma 0).

diffusers is not available here, so the scheduler (DPM-Solver++ 2M, epsilon prediction) and the CLIP BPE
tokenizer are implemented in this file; ``--selftest`` checks both against the reference data
(tokenizer_cases.json, scheduler_cases.json dpm_eps_20, and the 3 end-to-end cases of tiny-sd21-dev).

    /usr/bin/python3 tools/reference/sd_sampler.py --selftest
    /usr/bin/python3 tools/reference/sd_sampler.py --model DIR --prompt "a red circle on a blue background" --out img.png
"""
import argparse
import functools
import json
import os
import re
import sys
import unicodedata

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/<group>/x.py
REF = os.path.join(REPO, "src", "core", "test", "resources", "reference")  # tokenizer, schedulers
REF_ALL = os.path.join(REPO, "src", "all", "test", "resources", "reference")  # pipeline

# --------------------------------------------------------------------------------------------------
# CLIP tokenizer (transformers' slow CLIPTokenizer without ftfy, as SD 2.1 loads it: "!" = pad id 0, special)
# --------------------------------------------------------------------------------------------------


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class ClipTokenizer:
    SPECIAL = ["<|startoftext|>", "<|endoftext|>", "!"]

    def __init__(self, tokenizer_dir):
        with open(os.path.join(tokenizer_dir, "vocab.json"), encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(os.path.join(tokenizer_dir, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")[1:]
        merges = [tuple(m.split()) for m in lines if m.strip()]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = _bytes_to_unicode()
        self.bos = self.encoder["<|startoftext|>"]
        self.eos = self.encoder["<|endoftext|>"]
        self.pad = self.encoder["!"]
        # \p{L} / \p{N} emulated with unicodedata categories in _split
        self._cache = {}

    @staticmethod
    def _clean(text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD:
                continue
            cat = unicodedata.category(ch)
            if ch in "\t\n\r":
                out.append(" ")
                continue
            if cat.startswith("C"):
                continue
            if ch.isspace() or cat == "Zs":
                out.append(" ")
                continue
            if _is_cjk(cp):
                out.append(" " + ch + " ")
                continue
            out.append(ch)
        text = "".join(out)
        text = unicodedata.normalize("NFC", text)
        return " ".join(text.split()).lower()

    def _split(self, text):
        """Pattern: <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^\\s\\p{L}\\p{N}]+"""
        toks = []
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            matched = False
            for sp in ("<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
                if text.startswith(sp, i):
                    toks.append(sp)
                    i += len(sp)
                    matched = True
                    break
            if matched:
                continue
            if _is_letter(ch):
                j = i
                while j < n and _is_letter(text[j]):
                    j += 1
                toks.append(text[i:j])
                i = j
            elif _is_number(ch):
                toks.append(ch)
                i += 1
            elif ch.isspace():
                i += 1
            else:
                j = i
                while j < n and not (text[j].isspace() or _is_letter(text[j]) or _is_number(text[j])):
                    j += 1
                toks.append(text[i:j])
                i = j
        return toks

    def _bpe(self, token):
        if token in self._cache:
            return self._cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(word[k], word[k + 1]) for k in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            a, b = best
            new = []
            k = 0
            while k < len(word):
                if k < len(word) - 1 and word[k] == a and word[k + 1] == b:
                    new.append(a + b)
                    k += 2
                else:
                    new.append(word[k])
                    k += 1
            word = new
        self._cache[token] = word
        return word

    def encode(self, text):
        """BPE ids without specials. Special tokens (incl. "!") are split out first, as transformers does."""
        ids = []
        parts = re.split(r"(<\|startoftext\|>|<\|endoftext\|>|!)", text)
        for part in parts:
            if part in self.SPECIAL:
                ids.append(self.encoder[part])
                continue
            clean = self._clean(part)
            for tok in self._split(clean):
                if tok in ("<|startoftext|>", "<|endoftext|>"):
                    ids.append(self.encoder[tok])
                    continue
                u = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
                ids.extend(self.encoder[w] for w in self._bpe(u))
        return ids

    def input_ids_77(self, text):
        ids = [self.bos] + self.encode(text)[:75] + [self.eos]
        return ids + [self.pad] * (77 - len(ids))


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def _is_letter(ch):
    return unicodedata.category(ch).startswith("L")


def _is_number(ch):
    return unicodedata.category(ch).startswith("N")


# --------------------------------------------------------------------------------------------------
# DPM-Solver++ 2M (diffusers DPMSolverMultistepScheduler defaults for the SD 2.1-base config)
# --------------------------------------------------------------------------------------------------


class DPMSolverPP2M:
    def __init__(self, steps, beta_start=0.00085, beta_end=0.012, n_train=1000):
        betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, n_train, dtype=torch.float32) ** 2
        ac = torch.cumprod(1.0 - betas, dim=0)
        sig_all = ((1 - ac) / ac) ** 0.5
        ts = np.linspace(0, n_train - 1, steps + 1).round()[::-1][:-1].copy().astype(np.int64)
        sig = np.interp(ts, np.arange(len(sig_all)), sig_all.numpy())
        self.sigmas = torch.from_numpy(np.concatenate([sig, [0.0]]).astype(np.float32))
        self.timesteps = torch.from_numpy(ts)
        self.init_noise_sigma = 1.0
        self.reset()

    def reset(self):
        self.prev_x0 = None
        self.i = 0

    def _al_si(self, sigma):
        alpha = 1.0 / torch.sqrt(sigma ** 2 + 1)
        return alpha, sigma * alpha

    def step(self, eps, sample):
        i = self.i
        s0 = self.sigmas[i]
        st = self.sigmas[i + 1]
        a0, si0 = self._al_si(s0)
        at, sit = self._al_si(st)
        x0 = (sample - si0 * eps) / a0
        lam_t = torch.log(at) - torch.log(sit)
        lam_0 = torch.log(a0) - torch.log(si0)
        h = lam_t - lam_0
        last = i == len(self.timesteps) - 1
        if self.prev_x0 is None or last:
            out = (sit / si0) * sample - at * (torch.exp(-h) - 1.0) * x0
        else:
            s1 = self.sigmas[i - 1]
            a1, si1 = self._al_si(s1)
            lam_1 = torch.log(a1) - torch.log(si1)
            r0 = (lam_0 - lam_1) / h
            d0 = x0
            d1 = (1.0 / r0) * (x0 - self.prev_x0)
            out = (sit / si0) * sample - at * (torch.exp(-h) - 1.0) * d0 - 0.5 * at * (torch.exp(-h) - 1.0) * d1
        self.prev_x0 = x0
        self.i += 1
        return out


# --------------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------------


class Pipeline:
    def __init__(self, model_dir):
        cm = os.path.join(model_dir, "compiled_models")
        self.te = torch.jit.load(os.path.join(cm, "text_encoder.pt")).eval()
        self.unet = torch.jit.load(os.path.join(cm, "unet.pt")).eval()
        self.pq = torch.jit.load(os.path.join(cm, "vae_post_quant_conv.pt")).eval()
        self.dec = torch.jit.load(os.path.join(cm, "vae_decoder.pt")).eval()
        self.tok = ClipTokenizer(os.path.join(model_dir, "tokenizer"))
        with open(os.path.join(model_dir, "vae", "config.json")) as f:
            vc = json.load(f)
        self.scaling = vc.get("scaling_factor", 0.18215)
        self.height = vc.get("sample_size", 64)
        man = os.path.join(cm, "sdjvm-manifest.json")
        self.unet_dtype = torch.float32
        if os.path.exists(man):
            with open(man) as f:
                m = json.load(f)
            self.height, self.width = m["height"], m["width"]
            if m["artifacts"]["unet"]["inputs"][0]["dtype"] == "bfloat16":
                self.unet_dtype = torch.bfloat16
        else:
            self.width = self.height

    def embed(self, text):
        ids = torch.tensor([self.tok.input_ids_77(text)], dtype=torch.int64)
        out = self.te(ids)
        if isinstance(out, dict):
            out = out["last_hidden_state"]
        elif isinstance(out, (tuple, list)):
            out = out[0]
        return out.float()

    @torch.no_grad()
    def __call__(self, prompt, negative_prompt=None, steps=20, guidance_scale=7.5, seed=0, return_latents=False):
        cfg = guidance_scale > 1.0
        emb = self.embed(prompt)
        if cfg:
            emb = torch.cat([self.embed(negative_prompt or ""), emb])
        sched = DPMSolverPP2M(steps)
        g = torch.Generator().manual_seed(seed)
        lat = torch.randn((1, 4, self.height // 8, self.width // 8), generator=g, dtype=torch.float32)
        lat = lat * sched.init_noise_sigma
        D = self.unet_dtype
        for t in sched.timesteps:
            x = torch.cat([lat] * 2) if cfg else lat
            B = x.shape[0]
            out = self.unet(x.to(D), t.float().expand((B,)).to(D), emb.to(D))
            eps = (out[0] if isinstance(out, (tuple, list)) else out).float()
            if cfg:
                u, c = eps.chunk(2)
                eps = u + guidance_scale * (c - u)
            lat = sched.step(eps, lat)
        img = self.dec(self.pq(lat / self.scaling))
        img = (img * 0.5 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy().astype(np.float32)
        u8 = np.rint(img * 255).astype(np.uint8)
        return (u8, lat) if return_latents else u8


# --------------------------------------------------------------------------------------------------


def selftest():
    tok = ClipTokenizer(os.path.join(REF, "tokenizer"))
    cases = json.load(open(os.path.join(REF, "tokenizer_cases.json"), encoding="utf-8"))
    bad = 0
    for c in cases:
        if tok.input_ids_77(c["prompt"]) != c["input_ids_77"]:
            bad += 1
            print("tokenizer MISMATCH", c["category"], repr(c["prompt"])[:80])
    print("tokenizer: %d/%d cases equal" % (len(cases) - bad, len(cases)))
    # scheduler, against diffusers' trajectory (meta.formulas)
    sc = json.load(open(os.path.join(REF, "scheduler_cases.json")))
    case = [c for c in sc["cases"] if c["name"] == "dpm_eps_20"][0]
    run = [r for r in case["runs"] if r.get("dtype", "float32") == "float32"][0] if isinstance(case["runs"], list) \
        else case["runs"]["float32"]
    s = DPMSolverPP2M(20)
    assert s.timesteps.tolist() == run["timesteps"], (s.timesteps.tolist(), run["timesteps"])
    i = torch.arange(2 * 4 * 8 * 8, dtype=torch.float64).reshape(2, 4, 8, 8)
    x = (torch.sin(0.37 * i) * s.init_noise_sigma).float()
    for t in s.timesteps:
        eps = (torch.cos(1.3 * x.double() + 0.001 * float(t)) + 0.1 * torch.sin(0.11 * i)).float()
        x = s.step(eps, x)
    final = torch.tensor(run["final"], dtype=torch.float32).reshape(x.shape)
    print("scheduler dpm_eps_20: max |d| vs diffusers %.3g" % (x - final).abs().max().item())
    # end to end, tiny-sd21-dev
    p = Pipeline(os.path.join(REF_ALL, "pipeline", "tiny-sd21-dev"))
    p.height = p.width = 128
    pc = json.load(open(os.path.join(REF_ALL, "pipeline", "cases.json")))
    for c in pc["cases"]:
        u8 = p(c["prompt"], c["negative_prompt"], c["steps"], c["guidance_scale"], c["seed"])
        ref = np.fromfile(os.path.join(REF_ALL, "pipeline", c["rgb_u8"]), dtype=np.uint8).reshape(u8.shape)
        d = np.abs(u8.astype(int) - ref.astype(int))
        print("pipeline %s: u8 max |d| %d mean %.4g" % (c["id"], d.max(), d.mean()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--prompt", default="a red circle on a blue background")
    ap.add_argument("--negative", default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/sample.png")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.selftest:
        selftest()
        return
    from PIL import Image
    p = Pipeline(args.model)
    u8 = p(args.prompt, args.negative, args.steps, args.guidance, args.seed)
    Image.fromarray(u8).save(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
