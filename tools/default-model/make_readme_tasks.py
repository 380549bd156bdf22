#!/usr/bin/python3
"""The README's image-to-image and inpainting picture, made by the embedded default model through bin/sd:

    /usr/bin/python3 tools/default-model/make_readme_tasks.py        # writes docs/images/default-model-tasks.png

1. text-to-image: "a red circle on a blue background" (the start image);
2. image-to-image of it: "a yellow square on a blue background", strength 0.5;
3. the mask (white = repaint): a disc over the circle;
4. / 5. inpainting of the start image under that mask: "a green triangle on a blue background" and "a yellow circle
   on a blue background" (strength 1.0, the default).
All with --guidance 4 --steps 20 --seed 1 --threads 1 (DPM-Solver++, 64x64 pixels, shown enlarged 3x).
"""
import os
import subprocess
import sys
import tempfile

from PIL import Image, ImageDraw

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SD = os.path.join(REPO, "bin", "sd")
COMMON = ["--guidance", "4", "--steps", "20", "--seed", "1", "--threads", "1"]


def sd(*args):
    subprocess.run([SD, "generate", *args, *COMMON], check=True, stdout=subprocess.DEVNULL)


def main():
    out = os.path.join(REPO, "docs", "images", "default-model-tasks.png")
    with tempfile.TemporaryDirectory() as t:
        p = lambda n: os.path.join(t, n)  # noqa: E731
        sd("a red circle on a blue background", "--output", p("start.png"))
        sd("a yellow square on a blue background", "--init-image", p("start.png"), "--strength", "0.5",
           "--output", p("i2i.png"))
        m = Image.new("L", (64, 64), 0)
        ImageDraw.Draw(m).ellipse([14, 10, 58, 54], fill=255)
        m.save(p("mask.png"))
        for name, prompt in [("inp1.png", "a green triangle on a blue background"),
                             ("inp2.png", "a yellow circle on a blue background")]:
            sd(prompt, "--init-image", p("start.png"), "--mask", p("mask.png"), "--output", p(name))
        files = ["start.png", "i2i.png", "mask.png", "inp1.png", "inp2.png"]
        ims = [Image.open(p(f)).convert("RGB").resize((192, 192), Image.NEAREST) for f in files]
    sheet = Image.new("RGB", (len(ims) * 200 - 8, 192), "white")
    for i, im in enumerate(ims):
        sheet.paste(im, (i * 200, 0))
    sheet.save(out, optimize=True)
    print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    main()
