#!/usr/bin/python3
"""A simple, documented colour/shape measure for images of the shapes world (one shape on a flat background).

judge(rgb_u8 HxWx3) -> dict with background, object colour, shape, fill ratio, object fraction:
1. Background colour: the per-channel median of the border pixels (outermost ring, 1 px wide) ->
   the nearest palette colour (Euclidean distance in sRGB 0..255) = "background".
2. Object mask: pixels whose sRGB Euclidean distance to that median border colour exceeds 60
   (about 3/4 of the smallest distance between two palette colours, orange-yellow = 81); the object is the
   largest 8-connected component of that mask (the first one in row-major scan order on a tie), so that stray
   specks - e.g. an autoencoder's corner artefacts - do not stretch the bounding box.
   object_fraction = object pixels / all pixels. If object_fraction < 0.02 -> shape "none", colour None.
3. Object colour: the per-channel median of the object pixels -> the nearest palette colour.
4. Shape: fill ratio = object pixels / area of the object's bounding box (inclusive pixel box).
   Ideal values: circle pi/4 = 0.785, square 1.0, triangle 0.5. Thresholds: fill >= 0.89 -> "square"
   (midpoint of the circle and square ideals); 0.67 <= fill < 0.89 -> "circle"; fill < 0.67 -> "triangle"
   (0.67: in the gap between the ratios measured on rendered ground truth, triangle <= 0.644 and circle >= 0.70
   at 32x32; `--calibrate --px 64` prints the ranges at 64x64: circle 0.75-0.84, square 0.99-1.0,
   triangle 0.50-0.57).

A caption is "satisfied" when background, colour and shape all match it.

    /usr/bin/python3 tools/default-model/judge_images.py image.png [more.png ...]
    /usr/bin/python3 tools/default-model/judge_images.py --calibrate      # the measure on rendered ground truth
"""
import argparse
import json
import os
import sys
from collections import deque

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_world as W  # noqa: E402

NAMES = list(W.PALETTE)
PAL = np.array([W.PALETTE[n] for n in NAMES], dtype=np.float64)
OBJECT_THRESHOLD = 60.0
MIN_OBJECT_FRACTION = 0.02
SQUARE_MIN_FILL = 0.89
CIRCLE_MIN_FILL = 0.67


def nearest(rgb):
    d = np.sqrt(((PAL - np.asarray(rgb, dtype=np.float64)[None, :]) ** 2).sum(axis=1))
    return NAMES[int(d.argmin())]


def largest_component(mask):
    """The largest 8-connected component of a boolean HxW mask (first in row-major order on a tie)."""
    h, w = mask.shape
    label = np.zeros((h, w), dtype=np.int32)
    best, best_n, n_labels = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if label[y0, x0]:
            continue
        n_labels += 1
        label[y0, x0] = n_labels
        q, n = deque([(y0, x0)]), 0
        while q:
            y, x = q.popleft()
            n += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not label[yy, xx]:
                        label[yy, xx] = n_labels
                        q.append((yy, xx))
        if n > best_n:
            best, best_n = n_labels, n
    return label == best if best_n else mask


def judge(img):
    img = np.asarray(img, dtype=np.float64)
    h, w, _ = img.shape
    border = np.concatenate([img[0, :], img[-1, :], img[1:-1, 0], img[1:-1, -1]])
    bg_rgb = np.median(border, axis=0)
    dist = np.sqrt(((img - bg_rgb[None, None, :]) ** 2).sum(axis=2))
    mask = largest_component(dist > OBJECT_THRESHOLD)
    frac = float(mask.mean())
    res = {"background": nearest(bg_rgb), "object_fraction": round(frac, 4)}
    if frac < MIN_OBJECT_FRACTION:
        res.update({"color": None, "shape": "none", "fill": None})
        return res
    obj_rgb = np.median(img[mask], axis=0)
    ys, xs = np.nonzero(mask)
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    fill = float(mask.sum()) / float(box)
    shape = "square" if fill >= SQUARE_MIN_FILL else ("circle" if fill >= CIRCLE_MIN_FILL else "triangle")
    res.update({"color": nearest(obj_rgb), "shape": shape, "fill": round(fill, 4),
                "centroid": [round(float(xs.mean()) / w, 3), round(float(ys.mean()) / h, 3)]})
    return res


def matches(res, color, shape, bg):
    return {"background": res["background"] == bg, "color": res["color"] == color, "shape": res["shape"] == shape,
            "all": res["background"] == bg and res["color"] == color and res["shape"] == shape}


def calibrate(px=32, n=600, seed=0):
    rng = np.random.default_rng(seed)
    attrs = W.sample_attrs(rng, n, W.all_combos())
    ok = {"background": 0, "color": 0, "shape": 0, "all": 0}
    fills = {s: [] for s in W.SHAPES}
    for a in attrs:
        u8 = np.rint(W.render(a, px) * 255).astype(np.uint8)
        r = judge(u8)
        m = matches(r, a["color"], a["shape"], a["bg"])
        for k in ok:
            ok[k] += m[k]
        if r["fill"] is not None:
            fills[a["shape"]].append(r["fill"])
    out = {k: v / n for k, v in ok.items()}
    out["fill_range"] = {s: [round(min(v), 3), round(float(np.mean(v)), 3), round(max(v), 3)] for s, v in fills.items()}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--px", type=int, default=32)
    args = ap.parse_args()
    if args.calibrate:
        print(json.dumps(calibrate(args.px), indent=1))
        return
    from PIL import Image
    for p in args.images:
        print(p, json.dumps(judge(np.asarray(Image.open(p).convert("RGB")))))


if __name__ == "__main__":
    main()
