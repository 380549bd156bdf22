#!/usr/bin/python3
"""Make the README's grid of embedded-default-model outputs (docs/images/default-model-grid.png) with the CLI:
one `bin/sd generate CAPTION --guidance 4 --steps 20 --seed 1 --threads 1` per caption, shown enlarged
(nearest neighbour) with the caption under each image.

    /usr/bin/python3 tools/default-model/make_readme_grid.py [--out docs/images/default-model-grid.png]
"""
import argparse
import os
import subprocess
import tempfile
import textwrap

from PIL import Image, ImageDraw, ImageFont

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/<group>/x.py
CAPTIONS = [
    "a red circle on a blue background",
    "a green triangle on a yellow background",   # held out of training
    "a large white square on a black background",
    "a yellow circle on a purple background",    # held out
    "a purple square on a orange background",    # held out
    "a small orange triangle on the left on a blue background",
    "a black circle at the top on a white background",
    "a blue square on a red background",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "images", "default-model-grid.png"))
    ap.add_argument("--cell", type=int, default=144, help="shown size of each image in pixels")
    args = ap.parse_args()
    font = ImageFont.load_default()
    cols, pad, text_h = 4, 16, 40
    rows = (len(CAPTIONS) + cols - 1) // cols
    grid = Image.new("RGB", (cols * (args.cell + pad) + pad, rows * (args.cell + text_h + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    with tempfile.TemporaryDirectory() as tmp:
        for i, cap in enumerate(CAPTIONS):
            png = os.path.join(tmp, "%d.png" % i)
            subprocess.run([os.path.join(REPO, "bin", "sd"), "generate", cap, "--guidance", "4", "--steps", "20",
                            "--seed", "1", "--threads", "1", "--output", png], check=True, cwd=REPO)
            im = Image.open(png).convert("RGB").resize((args.cell, args.cell), Image.NEAREST)
            r, c = divmod(i, cols)
            x = pad + c * (args.cell + pad)
            y = pad + r * (args.cell + text_h + pad)
            grid.paste(im, (x, y))
            for j, line in enumerate(textwrap.wrap(cap, 24)[:3]):
                draw.text((x, y + args.cell + 4 + 12 * j), line, fill="black", font=font)
    grid.save(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
