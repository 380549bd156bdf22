"""The procedural "shapes world" of the embedded default model: one flat-coloured shape (circle, square,
triangle) on a flat background, with captions. Deterministic given a numpy Generator.

Used by train_shapes.py (training data) and judge_images.py (palette, held-out combinations).
"""
import numpy as np

# name -> sRGB (chosen to be far apart; the closest pair, orange/yellow, is 81 apart in RGB)
PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 180),
    "orange": (245, 140, 20),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLORS = list(PALETTE)
SHAPES = ["circle", "square", "triangle"]
SIZES = {"small": 0.17, "large": 0.30}  # "radius" as a fraction of the image side
POSITIONS = {"center": (0.5, 0.5), "left": (0.3, 0.5), "right": (0.7, 0.5), "top": (0.5, 0.3),
             "bottom": (0.5, 0.7)}
POSITION_PHRASES = {"center": "in the center", "left": "on the left", "right": "on the right",
                    "top": "at the top", "bottom": "at the bottom"}

# (object colour, shape, background colour) never shown in training: tests of composition
HELD_OUT = [
    ("green", "triangle", "yellow"),
    ("yellow", "circle", "purple"),
    ("purple", "square", "orange"),
    ("orange", "circle", "green"),
    ("white", "triangle", "red"),
    ("blue", "square", "black"),
]


_HELD = frozenset(HELD_OUT)


def all_combos():
    return [(c, s, b) for c in COLORS for s in SHAPES for b in COLORS if b != c]


def train_combos():
    return [x for x in all_combos() if x not in _HELD]


def caption(color, shape, bg, size=None, position=None, template=0):
    """Caption text. size/position None = not mentioned."""
    sz = (size + " ") if size else ""
    pos = (" " + POSITION_PHRASES[position]) if position else ""
    if template == 0:
        return "a %s%s %s%s on a %s background" % (sz, color, shape, pos, bg)
    if template == 1:
        return "%s%s %s%s on %s" % (sz, color, shape, pos, bg)
    return "a %s background with a %s%s %s%s" % (bg, sz, color, shape, pos)


def sample_attrs(rng, n, combos):
    """n random scenes: dicts with color, shape, bg, size, position, jitter."""
    out = []
    for _ in range(n):
        c, s, b = combos[rng.integers(len(combos))]
        out.append({
            "color": c, "shape": s, "bg": b,
            "size": ["small", "large"][rng.integers(2)],
            "position": list(POSITIONS)[rng.integers(len(POSITIONS))],
            "jitter": rng.uniform(-1, 1, size=3).tolist(),  # dx, dy, dsize
        })
    return out


def random_caption(rng, a, p_size=0.6, p_pos=0.5, noise=0.0):
    """A caption for scene a. noise: probability that each colour word (object colour, background colour) names
    a wrong colour (a uniformly drawn other one), like mislabelled web alt-text; redrawn while the named
    combination is a held-out one or names the same colour twice, so held-out captions never occur in training.
    Shape words are always right."""
    size = a["size"] if rng.random() < p_size else None
    pos = a["position"] if rng.random() < p_pos else None
    c, s, b = a["color"], a["shape"], a["bg"]
    if noise > 0:
        c, b = mislabel_colors(rng, c, s, b, noise)
    return caption(c, s, b, size, pos, int(rng.integers(3)))


def mislabel_colors(rng, color, shape, bg, noise):
    while True:
        c = color if rng.random() >= noise else _other(rng, color)
        b = bg if rng.random() >= noise else _other(rng, bg)
        if (c, shape, b) not in _HELD and c != b:
            return c, b


def _other(rng, color):
    others = [x for x in COLORS if x != color]
    return others[rng.integers(len(others))]


def render(a, px, ss=4):
    """Render one scene to float32 HWC in [0,1], antialiased by ss x ss supersampling."""
    n = px * ss
    r = SIZES[a["size"]] * (1 + 0.08 * a["jitter"][2]) * n
    cx, cy = POSITIONS[a["position"]]
    cx = cx * n + 0.04 * n * a["jitter"][0]
    cy = cy * n + 0.04 * n * a["jitter"][1]
    m = 0.03 * n
    cx = float(np.clip(cx, r + m, n - r - m))
    cy = float(np.clip(cy, r + m, n - r - m))
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5
    if a["shape"] == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    elif a["shape"] == "square":
        h = r * 0.8862  # same area as the circle
        mask = (np.abs(xx - cx) <= h) & (np.abs(yy - cy) <= h)
    else:  # upward triangle: apex (cx, cy - r), base y = cy + r, half-width r
        t = (yy - (cy - r)) / (2 * r)  # 0 at apex, 1 at base
        mask = (t >= 0) & (t <= 1) & (np.abs(xx - cx) <= t * r)
    cov = mask.reshape(px, ss, px, ss).mean(axis=(1, 3))[..., None]
    fg = np.array(PALETTE[a["color"]], np.float32) / 255.0
    bg = np.array(PALETTE[a["bg"]], np.float32) / 255.0
    return (cov * fg + (1 - cov) * bg).astype(np.float32)


def render_batch(attrs, px):
    return np.stack([render(a, px) for a in attrs])
