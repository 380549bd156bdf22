#!/usr/bin/python3
"""Writes the Pillow / diffusers reference fixtures for dev.sdjvm.image into src/core/test/resources/image/.

Run from the repository root with Debian's python (python3-pil, python3-numpy, python3-torch):

    /usr/bin/python3 tools/reference/make_image_fixtures.py

Everything is seeded; a re-run with the same Pillow (9.4.0 here) writes the same files. The inputs are PNGs this
script writes byte by byte (so the Java test also sees 1/2/4/16-bit and palette PNGs that Pillow cannot save); the
expected outputs are what Pillow (and, for the preprocessing, numpy + torch as diffusers calls them) computes.
See src/core/test/resources/image/README.md for the files and manifest formats.
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image

try:
    import torch
except ImportError:  # the preprocessing then runs in numpy only (same float32 operations)
    torch = None

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "core", "test", "resources", "image")
LANCZOS = Image.Resampling.LANCZOS if hasattr(Image, "Resampling") else Image.LANCZOS


# ------------------------------------------------------------------------------------------------- PNG writer

def png_bytes(width, height, bit_depth, color_type, rows, palette=None, trns=None):
    """A PNG from packed, unfiltered scanlines (bytes per row, already packed/big-endian)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def pack_bits(values, bits):
    """One row of 1/2/4-bit samples, MSB first, padded."""
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc = (acc << bits) | int(v)
        n += bits
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def png_from_array(a, bit_depth, color_type, **kw):
    """a: HxW or HxWxC uint8/uint16 array (big-endian packing for 16 bits, bit packing below 8)."""
    h, w = a.shape[:2]
    rows = []
    for y in range(h):
        r = a[y]
        if bit_depth < 8:
            rows.append(pack_bits(r.reshape(-1), bit_depth))
        elif bit_depth == 16:
            rows.append(r.astype(">u2").tobytes())
        else:
            rows.append(r.astype(np.uint8).tobytes())
    return png_bytes(w, h, bit_depth, color_type, rows, **kw)


# ------------------------------------------------------------------------------------------------- contents

def test_rgb(w, h, seed):
    """Smooth colour ramps + noise + a block of hard black/white stripes (overshoot, clipping) + a saturated patch."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    sx, sy = w // 2, h // 2
    stripes = ((np.arange(w - sx)[None, :] // 2 + np.arange(h - sy)[:, None] // 3) % 2) * 255
    img[sy:, sx:, :] = stripes[:, :, None]
    img[: h // 4, : w // 4] = [255, 0, 0]
    img[: h // 4, w // 4: w // 2] = [0, 0, 255]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_gray(w, h, seed):
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 127 + 90 * np.sin(x / 4.0 + y / 7.0) + rng.normal(0, 20, (h, w))
    img[h // 2:, w // 2:] = ((np.arange(w - w // 2)[None, :] + np.arange(h - h // 2)[:, None]) % 2) * 255
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_mask(w, h, seed):
    """A colourful mask: random saturated colours whose luma is near 128 and hard-edged blobs; resizing it in RGB then
    converting to L (diffusers' order) differs from converting first."""
    rng = np.random.RandomState(seed)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255],
                        [0, 0, 0], [255, 255, 255], [128, 128, 128], [200, 60, 90]], dtype=np.uint8)
    cells = rng.randint(0, len(palette), (h // 3 + 1, w // 3 + 1))
    img = palette[np.kron(cells, np.ones((3, 3), dtype=int))[:h, :w]]
    return img


# ------------------------------------------------------------------------------------------------- writers

def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def raw(im):
    return np.array(im).tobytes()


def preprocess_image(im, height=None, width=None):
    """diffusers VaeImageProcessor(vae_scale_factor=8).preprocess(im, height, width), PIL branch, default resize."""
    height = im.height if height is None else height
    width = im.width if width is None else width
    width, height = (x - x % 8 for x in (width, height))
    im = im.resize((width, height), resample=LANCZOS, reducing_gap=None)
    a = np.stack([np.array(im).astype(np.float32) / 255.0], axis=0)  # pil_to_numpy
    if torch is not None:
        t = torch.from_numpy(a.transpose(0, 3, 1, 2))                  # numpy_to_pt
        t = 2.0 * t - 1.0                                              # normalize
        out = t.numpy()
        assert np.array_equal(out.view(np.uint32), (2.0 * a.transpose(0, 3, 1, 2) - 1.0).view(np.uint32))
    else:
        out = 2.0 * a.transpose(0, 3, 1, 2) - 1.0
    assert out.dtype == np.float32
    return np.ascontiguousarray(out)


def preprocess_mask(im, height, width):
    """VaeImageProcessor(do_normalize=False, do_binarize=True, do_convert_grayscale=True).preprocess: resize first
    (in the mask's mode), then convert("L"), /255, binarize."""
    width, height = (x - x % 8 for x in (width, height))
    im = im.resize((width, height), resample=LANCZOS, reducing_gap=None)
    im = im.convert("L")
    a = np.stack([np.array(im).astype(np.float32) / 255.0], axis=0)[..., None]
    if torch is not None:
        t = torch.from_numpy(a.transpose(0, 3, 1, 2))
        t[t < 0.5] = 0
        t[t >= 0.5] = 1
        out = t.numpy()
    else:
        out = a.transpose(0, 3, 1, 2).copy()
        out[out < 0.5] = 0
        out[out >= 0.5] = 1
    assert out.dtype == np.float32
    return np.ascontiguousarray(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f != "README.md":
            os.remove(os.path.join(OUT, f))

    # ---- resize: inputs and Pillow's LANCZOS outputs
    inputs = {
        "rgb_133x100.png": Image.fromarray(test_rgb(133, 100, 1), "RGB"),
        "rgb_100x133.png": Image.fromarray(test_rgb(100, 133, 2), "RGB"),
        "rgb_64x64.png": Image.fromarray(test_rgb(64, 64, 3), "RGB"),
        "rgb_37x53.png": Image.fromarray(test_rgb(37, 53, 4), "RGB"),
        "rgb_7x1.png": Image.fromarray(test_rgb(7, 1, 5), "RGB"),
        "gray_133x100.png": Image.fromarray(test_gray(133, 100, 6), "L"),
        "gray_37x53.png": Image.fromarray(test_gray(37, 53, 7), "L"),
    }
    for name, im in inputs.items():
        buf = io.BytesIO()
        im.save(buf, "PNG", optimize=True)
        write(name, buf.getvalue())
    cases = [
        ("rgb_133x100.png", 128, 96),   # both axes down (the default-size floor of img2img)
        ("rgb_100x133.png", 96, 128),
        ("rgb_64x64.png", 40, 24),      # strong downscale, different factors per axis
        ("rgb_37x53.png", 128, 128),    # upscale both
        ("rgb_133x100.png", 133, 96),   # vertical pass only
        ("rgb_133x100.png", 128, 100),  # horizontal pass only
        ("rgb_64x64.png", 100, 30),     # up in x, down in y
        ("rgb_7x1.png", 3, 4),          # 1-row source, tiny output
        ("gray_133x100.png", 128, 96),
        ("gray_37x53.png", 128, 128),
        ("gray_37x53.png", 37, 24),     # L, vertical only
    ]
    lines = ["# input outWidth outHeight expected (Pillow %s: image.resize((w, h), Image.LANCZOS))" % PIL.__version__]
    for name, w, h in cases:
        out = inputs[name].resize((w, h), LANCZOS)
        exp = "resize_%s_%dx%d.png" % (name[:-4], w, h)
        buf = io.BytesIO()
        out.save(buf, "PNG", optimize=True)
        write(exp, buf.getvalue())
        lines.append("%s %d %d %s" % (name, w, h, exp))
    write("resize_cases.txt", ("\n".join(lines) + "\n").encode())
    # Pillow's RGB -> L (Convert.c rgb2l) on the colourful 64x64 input
    buf = io.BytesIO()
    inputs["rgb_64x64.png"].convert("L").save(buf, "PNG", optimize=True)
    write("convert_L_rgb_64x64.png", buf.getvalue())

    # ---- decode: PNG kinds and JPEGs, expected = Pillow's Image.open(...).convert("RGB") raw bytes
    rng = np.random.RandomState(11)
    w, h = 19, 13
    rgb8 = test_rgb(w, h, 12)
    g16 = rng.randint(0, 65536, (h, w)).astype(np.uint16)
    g16[0, :] = np.arange(w)                      # small values pass unchanged
    g16[1, :] = 250 + np.arange(w)                # around the 255 clamp
    rgb16 = rng.randint(0, 65536, (h, w, 3)).astype(np.uint16)
    rgba16 = rng.randint(0, 65536, (h, w, 4)).astype(np.uint16)
    la16 = rng.randint(0, 65536, (h, w, 2)).astype(np.uint16)
    pal = rng.randint(0, 256, (16 * 3,)).astype(np.uint8)
    idx4 = rng.randint(0, 16, (h, w))
    pal8 = rng.randint(0, 256, (200 * 3,)).astype(np.uint8)
    idx8 = rng.randint(0, 200, (h, w))
    pngs = {
        "png_rgb8.png": png_from_array(rgb8, 8, 2),
        "png_rgba8.png": png_from_array(np.dstack([rgb8, rng.randint(0, 256, (h, w))]).astype(np.uint8), 8, 6),
        "png_gray8.png": png_from_array(test_gray(w, h, 13), 8, 0),
        "png_gray8_trns.png": png_from_array(test_gray(w, h, 13), 8, 0, trns=b"\x00\x80"),
        "png_la8.png": png_from_array(np.dstack([test_gray(w, h, 14), rng.randint(0, 256, (h, w))]).astype(np.uint8),
                                      8, 4),
        "png_gray1.png": png_from_array(rng.randint(0, 2, (h, w)), 1, 0),
        "png_gray2.png": png_from_array(rng.randint(0, 4, (h, w)), 2, 0),
        "png_gray4.png": png_from_array(rng.randint(0, 16, (h, w)), 4, 0),
        "png_gray16.png": png_from_array(g16, 16, 0),
        "png_rgb16.png": png_from_array(rgb16, 16, 2),
        "png_rgba16.png": png_from_array(rgba16, 16, 6),
        "png_la16.png": png_from_array(la16, 16, 4),
        "png_palette4_trns.png": png_from_array(idx4, 4, 3, palette=pal, trns=bytes(range(0, 160, 10))),
        "png_palette8.png": png_from_array(idx8, 8, 3, palette=pal8),
    }
    jpeg_src = Image.fromarray(test_rgb(45, 37, 15), "RGB")
    jpegs = {}
    for name, kw in [("jpeg_444.jpg", dict(quality=90, subsampling=0)),
                     ("jpeg_420.jpg", dict(quality=75, subsampling=2)),
                     ("jpeg_422.jpg", dict(quality=85, subsampling=1)),
                     ("jpeg_420_progressive.jpg", dict(quality=80, subsampling=2, progressive=True))]:
        buf = io.BytesIO()
        jpeg_src.save(buf, "JPEG", **kw)
        jpegs[name] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(test_gray(45, 37, 16), "L").save(buf, "JPEG", quality=90)
    jpegs["jpeg_gray.jpg"] = buf.getvalue()
    lines = ["# input width height expected (raw RGB of Pillow %s: Image.open(input).convert('RGB')) mode"
             % PIL.__version__]
    for name, data in list(pngs.items()) + list(jpegs.items()):
        write(name, data)
        im = Image.open(io.BytesIO(data))
        mode = im.mode
        rgb = im.convert("RGB")
        exp = name.rsplit(".", 1)[0] + ".rgb"
        write(exp, raw(rgb))
        lines.append("%s %d %d %s %s" % (name, rgb.width, rgb.height, exp, mode))
    write("decode_cases.txt", ("\n".join(lines) + "\n").encode())

    # ---- preprocessing (diffusers VaeImageProcessor, PIL branch), expected little-endian float32 CHW
    img = Image.fromarray(test_rgb(45, 37, 17), "RGB")
    exact = Image.fromarray(test_rgb(40, 32, 18), "RGB")
    mask_rgb = Image.fromarray(test_mask(45, 37, 19), "RGB")
    mask_l = Image.fromarray(test_gray(45, 37, 20), "L")
    for name, im in [("pre_image_45x37.png", img), ("pre_image_40x32.png", exact), ("pre_mask_rgb_45x37.png", mask_rgb),
                     ("pre_mask_gray_45x37.png", mask_l)]:
        buf = io.BytesIO()
        im.save(buf, "PNG", optimize=True)
        write(name, buf.getvalue())
    # converting first then resizing would give another mask: the fixture tells the two orders apart
    other = preprocess_mask(mask_rgb.convert("L"), 37, 45)
    assert not np.array_equal(other, preprocess_mask(mask_rgb, 37, 45)), "the mask does not tell the orders apart"
    pre = [
        ("pre_image_45x37.png", "image", None, None),  # default size: 45x37 -> 40x32 (resized)
        ("pre_image_45x37.png", "image", 50, 27),      # explicit height/width floored: 48x24
        ("pre_image_40x32.png", "image", None, None),  # already a multiple of 8: no resize
        ("pre_mask_rgb_45x37.png", "mask", 37, 45),    # RGB mask: resized in RGB, then L, binarized: 32x40
        ("pre_mask_gray_45x37.png", "mask", 50, 27),   # L mask: 48x24
    ]
    lines = ["# input kind height width expected (float32 LE, CHW; '-' = None: the image's size)"]
    for name, kind, hh, ww in pre:
        src = {"pre_image_45x37.png": img, "pre_image_40x32.png": exact, "pre_mask_rgb_45x37.png": mask_rgb,
               "pre_mask_gray_45x37.png": mask_l}[name]
        out = preprocess_image(src, hh, ww) if kind == "image" else preprocess_mask(src, hh, ww)
        exp = "pre_%s_%s_%s.f32" % (name[4:-4], hh or "default", ww or "default")
        write(exp, out.astype("<f4").tobytes())
        lines.append("%s %s %s %s %s %d %d %d" % (name, kind, hh or "-", ww or "-", exp, out.shape[1], out.shape[2],
                                                 out.shape[3]))
    write("preprocess_cases.txt", ("\n".join(lines) + "\n").encode())
    print("Pillow", PIL.__version__, "numpy", np.__version__, "torch", torch.__version__ if torch else None,
          file=sys.stderr)


if __name__ == "__main__":
    main()
