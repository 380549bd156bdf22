#!/usr/bin/python3
"""Score a shapes-world model directory with judge_images.py, sampling with the Python reference sampler
(sd_sampler.py: the reference algorithm of src/all/test/resources/reference/pipeline/README.md section 2,
DPM-Solver++ 2M, CFG).

    /usr/bin/python3 tools/default-model/eval_shapes.py --model src/all/main/resources/dev/sdjvm/default-model \
        --out docs/default-model/shapes_scores.json --sheet /tmp/shapes_samples.png

Captions: "a COLOR SHAPE on a BG background" and "a large COLOR SHAPE on a BG background" for every held-out
combination (shapes_world.HELD_OUT) and for 12 fixed training combinations (incl. red circle on blue),
seeds 0..S-1, 20 steps, guidance 7.5. The contact sheet has one row per caption (held-out, held-out large,
train, train large), one column per seed.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import judge_images as J  # noqa: E402
import shapes_world as W  # noqa: E402
from sd_sampler import Pipeline  # noqa: E402

TRAIN_EVAL = [("red", "circle", "blue"), ("blue", "square", "white"), ("yellow", "triangle", "black"),
              ("green", "circle", "white"), ("white", "square", "purple"), ("black", "triangle", "orange"),
              ("orange", "square", "blue"), ("purple", "circle", "yellow"), ("red", "triangle", "green"),
              ("blue", "circle", "red"), ("green", "square", "black"), ("yellow", "square", "red")]


def score(pipe, combos, seeds, steps, g, size=None):
    rows = []
    tot = {"background": 0, "color": 0, "shape": 0, "all": 0}
    imgs = []
    for c, s, b in combos:
        cap = W.caption(c, s, b, size)
        for seed in seeds:
            u8 = pipe(cap, None, steps, g, seed)
            r = J.judge(u8)
            m = J.matches(r, c, s, b)
            for k in tot:
                tot[k] += m[k]
            rows.append({"caption": cap, "seed": seed, "judged": r, "ok": m})
            imgs.append(u8)
    n = len(rows)
    return {"n": n, "rates": {k: round(v / n, 4) for k, v in tot.items()}, "rows": rows}, imgs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--out")
    ap.add_argument("--sheet")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe = Pipeline(args.model)
    t0 = time.time()
    seeds = list(range(args.seeds))
    held, himgs = score(pipe, W.HELD_OUT, seeds, args.steps, args.guidance)
    heldl, hlimgs = score(pipe, W.HELD_OUT, seeds, args.steps, args.guidance, "large")
    train, timgs = score(pipe, TRAIN_EVAL, seeds, args.steps, args.guidance)
    trainl, tlimgs = score(pipe, TRAIN_EVAL, seeds, args.steps, args.guidance, "large")
    res = {"model": args.model, "sampler": "tools/reference/sd_sampler.py DPM-Solver++ 2M (SD 2.1-base config), CFG",
           "steps": args.steps, "guidance_scale": args.guidance, "seeds": seeds,
           "measure": "tools/default-model/judge_images.py (background: median border -> palette; object: pixels > 60 from "
                      "it, median -> palette; shape: fill ratio of bounding box, square >= 0.89 > circle >= "
                      "0.67 > triangle)",
           "chance_rates": {"background": 1 / 8, "color": 1 / 8, "shape": 1 / 3, "all": 1 / 8 / 7 / 3},
           "held_out": {"n": held["n"], "rates": held["rates"]},
           "held_out_large": {"n": heldl["n"], "rates": heldl["rates"]},
           "train_combos": {"n": train["n"], "rates": train["rates"]},
           "train_combos_large": {"n": trainl["n"], "rates": trainl["rates"]},
           "rows_held_out": held["rows"], "rows_held_out_large": heldl["rows"], "rows_train": train["rows"],
           "rows_train_large": trainl["rows"], "seconds": round(time.time() - t0, 1)}
    print(json.dumps({"held_out": held["rates"], "held_out_large": heldl["rates"], "train": train["rates"],
                      "train_large": trainl["rates"]}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
    if args.sheet:
        from PIL import Image
        ims = himgs + hlimgs + timgs + tlimgs
        cols = args.seeds
        rows = len(ims) // cols
        h, w, _ = ims[0].shape
        sheet = np.full((rows * (h + 2), cols * (w + 2), 3), 128, np.uint8)
        for i, im in enumerate(ims):
            r, c = divmod(i, cols)
            sheet[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = im
        Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(args.sheet)


if __name__ == "__main__":
    main()
