"""Shapes: RGB sprites with known ground-truth factors, for the colour and disentanglement chapters.

Each image is one coloured shape (10 classes) on a grey background. Seven factors are drawn independently
per image and stored with it (``FACTOR_NAMES``):

    shape       class index (circle, square, ...), as a float
    hue         colour of the shape, hue in [0, 1) (saturation 0.85, value 0.95)
    scale       size in [0.6, 1.0]: the shape's outer radius is 0.6 * scale of the half-width
    rotation    degrees, counter-clockwise on screen, in +-min(45, 180 / k) for a shape with k-fold symmetry
                (so every rotation looks different); 0 for the circle and the ring
    x, y        centre in [-0.35, 0.35] (image coordinates: -1 is the left / top edge, +1 the right / bottom)
    background  grey level of the background in [0, 0.5]

``layout="centred"`` draws the same images with every shape at the centre and at one size (``CENTRED``: x = y = 0,
scale 0.9); hue, rotation and background still vary. A small class-conditional GAN learns the classes of the
centred variant within a CPU budget; with position and size free it first has to learn translation and scale
invariance (chapters 07 and 08 measure this).

Rendering is vectorised in torch: every shape is a signed distance function sd(p) (negative inside,
Inigo Quilez's formulas), evaluated at the pixel centres of a whole batch at once, and anti-aliased by
turning the distance into pixel coverage,

    coverage = clamp(1/2 - sd / pixel, 0, 1),        image = background + coverage * (colour - background).
"""

from __future__ import annotations

import math

import torch

from .base import TensorImageDataset

__all__ = ["ShapesDataset", "SHAPES", "FACTOR_NAMES", "FACTOR_RANGES", "SIZES", "SPLIT_SIZES", "SYMMETRY", "render", "build",
           "sample_factors", "sdf", "LAYOUTS", "CENTRED"]

SHAPES = ("circle", "square", "triangle", "star", "heart", "hexagon", "cross", "ellipse", "ring", "crescent")
SYMMETRY = {"circle": 0, "square": 4, "triangle": 3, "star": 5, "heart": 1, "hexagon": 6, "cross": 4,
            "ellipse": 2, "ring": 0, "crescent": 1}            # k-fold rotational symmetry; 0: any rotation
FACTOR_NAMES = ("shape", "hue", "scale", "rotation", "x", "y", "background")
FACTOR_RANGES = {"shape": (0, len(SHAPES) - 1), "hue": (0.0, 1.0), "scale": (0.6, 1.0),
                 "rotation": (-45.0, 45.0), "x": (-0.35, 0.35), "y": (-0.35, 0.35), "background": (0.0, 0.5)}
RADIUS = 0.6             # outer radius at scale 1, as a fraction of the half-width
SATURATION, VALUE = 0.85, 0.95
SIZES = (32, 64)
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
SEEDS = {"train": 3_001, "test": 3_002}
VERSION = 1
LAYOUTS = ("random", "centred")
CENTRED = {"scale": 0.9, "x": 0.0, "y": 0.0}     # the factors "centred" fixes


class ShapesDataset(TensorImageDataset):
    """A shapes split: ``TensorImageDataset`` plus ``factors`` (float32 (N, 7), order ``factor_names``).

    Targets: ``"label"`` (shape class, int64) or ``"factors"`` (the whole float vector).
    """

    per_sample = ("factors",)

    def __init__(self, images, targets, factors, target="label", split=""):
        self.factors = factors
        self.factor_names = FACTOR_NAMES
        super().__init__(images, targets, list(SHAPES), views={"factors": factors}, target=target,
                         name="shapes", split=split)


# --- signed distances, in the shape's own frame: (x, u) with u pointing up, outer radius about 1 -------------
def _length(x, y):
    return torch.sqrt(x * x + y * y)


def _box(x, y, bx, by):
    qx, qy = x.abs() - bx, y.abs() - by
    return _length(qx.clamp(min=0), qy.clamp(min=0)) + torch.maximum(qx, qy).clamp(max=0)


def _star(x, u, n, r_outer, r_inner):
    """A regular n-pointed star (a polygon when r_inner = r_outer cos(pi/n)), one point straight up.

    Fold the plane into the sector [0, pi/n] next to the top point; there the boundary is the segment from
    the point A = (r_outer, 0) to the inner corner B = r_inner (cos pi/n, sin pi/n).
    """
    sector = 2 * math.pi / n
    a = torch.remainder(torch.atan2(x, u), sector)
    a = torch.minimum(a, sector - a)
    rho = _length(x, u)
    qx, qy = rho * torch.cos(a), rho * torch.sin(a)
    ex, ey = r_inner * math.cos(math.pi / n) - r_outer, r_inner * math.sin(math.pi / n)
    wx, wy = qx - r_outer, qy
    h = ((wx * ex + wy * ey) / (ex * ex + ey * ey)).clamp(0, 1)
    d = _length(wx - ex * h, wy - ey * h)
    inside = (ex * wy - ey * wx) > 0
    return torch.where(inside, -d, d)


def _heart(x, u):
    # Quilez's sdHeart spans x in [-0.6, 0.6], u in [0, 1.05]: centre and scale it to radius about 1.
    px, py = x.abs() / 1.55, u / 1.55 + 0.5
    top = _length(px - 0.25, py - 0.75) - math.sqrt(2) / 4
    s = (px + py).clamp(min=0) * 0.5
    bottom = torch.sqrt(torch.minimum((px**2 + (py - 1) ** 2), ((px - s) ** 2 + (py - s) ** 2)))
    bottom = bottom * torch.sign(px - py)
    return torch.where(px + py > 1, top, bottom) * 1.55


def _ellipse(x, u, a=1.0, b=0.55):
    # first-order approximation: k0 (k0 - 1) / k1 with k0 = |p / r|, k1 = |p / r^2|
    k0 = _length(x / a, u / b)
    k1 = _length(x / (a * a), u / (b * b)).clamp(min=1e-6)
    return k0 * (k0 - 1) / k1


def sdf(shape: str, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Signed distance to ``shape`` at points (x, u) of its frame (u up), negative inside."""
    if shape == "circle":
        return _length(x, u) - 0.85
    if shape == "square":
        return _box(x, u, 0.7, 0.7)
    if shape == "triangle":
        return _star(x, u - 0.15, 3, 1.05, 1.05 * math.cos(math.pi / 3))
    if shape == "star":
        return _star(x, u, 5, 1.0, 0.45)
    if shape == "heart":
        return _heart(x, u)
    if shape == "hexagon":
        return _star(x, u, 6, 0.92, 0.92 * math.cos(math.pi / 6))
    if shape == "cross":
        return torch.minimum(_box(x, u, 0.9, 0.3), _box(x, u, 0.3, 0.9))
    if shape == "ellipse":
        return _ellipse(x, u)
    if shape == "ring":
        return (_length(x, u) - 0.68).abs() - 0.22
    if shape == "crescent":
        return torch.maximum(_length(x, u) - 0.85, -(_length(x - 0.42, u - 0.28) - 0.72))
    raise ValueError(f"Unknown shape {shape!r}. Valid choices: {', '.join(SHAPES)}.")


# --- colour ----------------------------------------------------------------------------------------------------
def _hsv_to_rgb(h, s, v):
    """Vectorised HSV -> RGB: (n,) each -> (n, 3)."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)
    return v[:, None] - (v * s)[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


# --- factors ---------------------------------------------------------------------------------------------------
def max_rotation(shape: str) -> float:
    """Half the range of rotations that all look different: min(45, 180 / k) degrees; 0 if round."""
    k = SYMMETRY[shape]
    return 0.0 if k == 0 else min(45.0, 180.0 / k)


def sample_factors(n: int, generator: torch.Generator | None = None, layout: str = "random") -> torch.Tensor:
    """``n`` factor rows (float32, (n, 7), order ``FACTOR_NAMES``); classes exactly balanced. ``layout="centred"``
    overwrites position and scale with ``CENTRED`` (the other factors are the same draws as for "random")."""
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown shapes layout {layout!r}. Valid choices: {', '.join(LAYOUTS)}.")
    g = generator
    shape = (torch.arange(n) % len(SHAPES))[torch.randperm(n, generator=g)].float()
    u = torch.rand(n, 6, generator=g)
    lo = torch.tensor([FACTOR_RANGES[k][0] for k in FACTOR_NAMES[1:]])
    hi = torch.tensor([FACTOR_RANGES[k][1] for k in FACTOR_NAMES[1:]])
    f = lo + u * (hi - lo)
    limit = torch.tensor([max_rotation(s) for s in SHAPES])[shape.long()]
    f[:, 2] = (u[:, 2] * 2 - 1) * limit                          # rotation within the shape's own range
    f = torch.cat([shape[:, None], f], 1)
    if layout == "centred":
        for name, value in CENTRED.items():
            f[:, FACTOR_NAMES.index(name)] = value
    return f


def render(factors: torch.Tensor, size: int = 32) -> torch.Tensor:
    """Draw one image per factor row: uint8 (n, 3, size, size). Deterministic: same factors, same pixels."""
    if size not in SIZES:
        raise ValueError(f"Unsupported shapes size {size}. Valid choices: {', '.join(map(str, SIZES))}.")
    factors = torch.as_tensor(factors, dtype=torch.float32).reshape(-1, len(FACTOR_NAMES))
    n = len(factors)
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    centres = (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1       # pixel centres in [-1, 1]
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    pixel = 2.0 / size
    chunk = max(1, 2_000_000 // (size * size))
    shape_ids = factors[:, 0].round().long()
    for k, name in enumerate(SHAPES):
        rows = (shape_ids == k).nonzero().squeeze(1)
        for s in range(0, len(rows), chunk):
            idx = rows[s: s + chunk]
            _, hue, scale, rot, cx, cy, bg = factors[idx].unbind(1)
            r = (RADIUS * scale)[:, None, None]
            a = torch.deg2rad(rot)[:, None, None]
            dx, dy = gx - cx[:, None, None], gy - cy[:, None, None]
            # into the shape's frame: undo the counter-clockwise (on screen, y down) rotation, flip y to up
            x = (torch.cos(a) * dx - torch.sin(a) * dy) / r
            u = -(torch.sin(a) * dx + torch.cos(a) * dy) / r
            coverage = (0.5 - sdf(name, x, u) * r / pixel).clamp_(0, 1)[:, None]     # (m, 1, S, S)
            colour = _hsv_to_rgb(hue, torch.full_like(hue, SATURATION), torch.full_like(hue, VALUE))
            back = bg[:, None, None, None]
            img = back + coverage * (colour[:, :, None, None] - back)
            out[idx] = (img * 255).round_().clamp_(0, 255).to(torch.uint8)
    return out


def build(split: str, size: int, layout: str = "random") -> dict:
    """Draw the shapes split at ``size`` in ``layout``: a dict of tensors (what the cache file holds)."""
    g = torch.Generator().manual_seed(SEEDS[split])
    factors = sample_factors(SPLIT_SIZES[split], g, layout)
    return {"images": render(factors, size), "targets": factors[:, 0].round().long(), "factors": factors,
            "classes": list(SHAPES), "version": VERSION}
