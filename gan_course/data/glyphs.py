"""Glyphs: an MNIST-like dataset the course generates itself, from the fonts that ship inside matplotlib.

Every sample is one character (10 digits and 10 capital letters) in one of 7 font families, regular, bold,
italic or bold italic, white on black like MNIST, with a small random distortion so that no two samples
are the same. Nothing is downloaded: the first ``load("glyphs")`` draws the images (a few seconds) and
caches them under ``gan_course.paths.cache_dir()``.

How an image is made:

1. Template. Each (character, font) is rasterised ONCE at high resolution with FreeType (matplotlib's
   ``ft2font``), cropped to its ink and scaled so its larger side fills ``GLYPH_BOX`` of a
   ``TEMPLATE`` x ``TEMPLATE`` canvas, centred on its bounding box (MNIST centres a 20-pixel box in 28).
   Styles a family lacks are synthesised: bold by dilating the strokes, italic by shearing.
2. Jitter. Each sample draws seven numbers (``JITTER_NAMES``): rotation, scale, aspect, shear, translation
   (dx, dy) and stroke. The template is warped by the affine map

        p_out = s_box * R(rotation) * [[1, shear], [0, 1]] * diag(scale * aspect, scale / aspect) * p_tpl + (dx, dy)

   using ``grid_sample`` on a grid ``SUPERSAMPLE`` times finer than the output, the strokes are thickened
   (``stroke > 0``, a 3x3 dilation blended in) or thinned (``stroke < 0``, erosion), and the fine image is
   averaged down to the output size (anti-aliasing).
3. Everything is drawn from a ``torch.Generator`` seeded per split, so a split is the same on every build.

``render(chars, family, bold, italic, size, jitter=...)`` draws any character in any style with a given
jitter: with a dataset's ``jitter`` rows it gives "the same glyph in another style" (StarGAN's ground truth,
pix2pix pairs).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import ft2font

from .base import PairedImageDataset, TensorImageDataset

__all__ = [
    "CHARACTERS", "DIGITS", "LETTERS", "FAMILIES", "FAMILY_NAMES", "STYLES", "JITTER_NAMES", "ATTRIBUTE_NAMES",
    "SIZES", "SPLIT_SIZES", "PAIR_SPLIT_SIZES", "PAIR_SIZES", "GlyphDataset", "GlyphPairDataset", "render", "sample_jitter",
    "identity_jitter", "parse_style", "style_name", "style_names", "build", "build_pairs", "template",
]

# --- what exists ----------------------------------------------------------------------------------------------
DIGITS = "0123456789"
# Ten capitals whose shapes differ from each other and from the digits at 28x28. Left out on purpose:
# O / Q / D (0), I / L (1), S (5), Z (2), B (8), G (6), T / J (7), V / Y (U), F (E), R (P), N (H).
# A small CNN separates all 20 classes with > 99.9 % test accuracy after two epochs.
LETTERS = "ACEHKMPXUW"
CHARACTERS = DIGITS + LETTERS

_TTF = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")

STYLES = ("regular", "bold", "italic", "bold-italic")
BINARY_ATTRIBUTES = ("bold", "italic")   # the binary part of ``attribute_vector``: [bold, italic, one-hot family]


@dataclass(frozen=True)
class Family:
    """A font family: its title and, per style, the TrueType file and any synthesised effect.

    ``files[style] = (file, faux)`` where faux is "" (the real face), "bold" (strokes dilated) and/or
    "italic" (sheared), e.g. Computer Modern has no bold italic face so it is cmti10 made bold.
    """

    title: str
    files: dict


FAMILIES: dict[str, Family] = {
    "sans": Family("DejaVu Sans", {
        "regular": ("DejaVuSans.ttf", ""), "bold": ("DejaVuSans-Bold.ttf", ""),
        "italic": ("DejaVuSans-Oblique.ttf", ""), "bold-italic": ("DejaVuSans-BoldOblique.ttf", "")}),
    "serif": Family("DejaVu Serif", {
        "regular": ("DejaVuSerif.ttf", ""), "bold": ("DejaVuSerif-Bold.ttf", ""),
        "italic": ("DejaVuSerif-Italic.ttf", ""), "bold-italic": ("DejaVuSerif-BoldItalic.ttf", "")}),
    "mono": Family("DejaVu Sans Mono", {
        "regular": ("DejaVuSansMono.ttf", ""), "bold": ("DejaVuSansMono-Bold.ttf", ""),
        "italic": ("DejaVuSansMono-Oblique.ttf", ""), "bold-italic": ("DejaVuSansMono-BoldOblique.ttf", "")}),
    "stix": Family("STIX General (Times-like)", {
        "regular": ("STIXGeneral.ttf", ""), "bold": ("STIXGeneralBol.ttf", ""),
        "italic": ("STIXGeneralItalic.ttf", ""), "bold-italic": ("STIXGeneralBolIta.ttf", "")}),
    "cm": Family("Computer Modern Roman", {
        "regular": ("cmr10.ttf", ""), "bold": ("cmb10.ttf", ""),
        "italic": ("cmti10.ttf", ""), "bold-italic": ("cmti10.ttf", "bold")}),
    "cm-sans": Family("Computer Modern Sans", {
        "regular": ("cmss10.ttf", ""), "bold": ("cmss10.ttf", "bold"),
        "italic": ("cmss10.ttf", "italic"), "bold-italic": ("cmss10.ttf", "bold italic")}),
    "cm-mono": Family("Computer Modern Typewriter", {
        "regular": ("cmtt10.ttf", ""), "bold": ("cmtt10.ttf", "bold"),
        "italic": ("cmtt10.ttf", "italic"), "bold-italic": ("cmtt10.ttf", "bold italic")}),
}
FAMILY_NAMES = tuple(FAMILIES)

ATTRIBUTE_NAMES = ("family", "bold", "italic")
JITTER_NAMES = ("rotation", "scale", "aspect", "shear", "dx", "dy", "stroke")
# Ranges of the jitter (uniform): degrees, factor, factor, x-shift per unit y, fraction of the half-width, ...
JITTER_RANGES = {
    "rotation": (-12.0, 12.0), "scale": (0.85, 1.05), "aspect": (0.9, 1.1), "shear": (-0.15, 0.15),
    "dx": (-0.08, 0.08), "dy": (-0.08, 0.08), "stroke": (-0.4, 0.8),
}

SIZES = (28, 32, 64)                 # output sizes; 28 is the default (MNIST's)
SUPERSAMPLE = {28: 3, 32: 3, 64: 2}  # grid points per output pixel per axis
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
PAIR_SIZES = (32, 64)
PAIR_SPLIT_SIZES = {"train": 20_000, "test": 2_000}
SEEDS = {"glyphs": {"train": 1_001, "test": 1_002}, "glyph-pairs": {"train": 2_001, "test": 2_002}}

TEMPLATE = 128        # template canvas side (pixels)
GLYPH_BOX = 0.75      # the glyph's larger side fills this fraction of the template canvas
OUT_BOX = 20 / 28     # ... and this fraction of an output image at scale 1 (MNIST's 20-pixel box in 28)
_RASTER_PX = 200      # em size (pixels) of the high-resolution rasterisation
_FAUX_SHEAR = 0.21    # synthesised italic: x += 0.21 * height (about 12 degrees, like DejaVu's oblique)
_FAUX_BOLD = 0.045    # synthesised bold: strokes grow by this fraction of the glyph's height on each side
VERSION = 1           # bump when the drawing changes: cache files carry it in their name


# --- styles -----------------------------------------------------------------------------------------------------
def style_name(family: str, bold: bool, italic: bool) -> str:
    """``("serif", True, True) -> "serif-bold-italic"``; the spelling ``parse_style`` reads."""
    return family + ("-bold" if bold else "") + ("-italic" if italic else "")


def style_names() -> list[str]:
    """Every valid style spelling: ``family[-bold][-italic]`` for the 7 families (28 in all)."""
    return [style_name(f, b, i) for f in FAMILY_NAMES for b in (False, True) for i in (False, True)]


def parse_style(style: str) -> tuple[str, bool, bool]:
    """``"stix-bold-italic" -> ("stix", True, True)``; ``"cm-sans" -> ("cm-sans", False, False)``."""
    for family in sorted(FAMILY_NAMES, key=len, reverse=True):
        if style == family or style.startswith(family + "-"):
            rest = style[len(family):]
            if rest in ("", "-bold", "-italic", "-bold-italic"):
                return family, "bold" in rest, "italic" in rest
    raise ValueError(
        f"Unknown glyph style {style!r}. Valid choices: {', '.join(style_names())} "
        f"(a family, optionally followed by -bold and/or -italic)."
    )


def _style_key(bold: bool, italic: bool) -> str:
    return "bold-italic" if bold and italic else "bold" if bold else "italic" if italic else "regular"


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"Unknown font family {family!r}. Valid choices: {', '.join(FAMILY_NAMES)}.")


# --- step 1: templates ---------------------------------------------------------------------------------------
def _rasterise(file: str, char: str) -> torch.Tensor:
    """The character as FreeType draws it at ``_RASTER_PX`` pixels per em: float (h, w) in [0, 1]."""
    font = ft2font.FT2Font(os.path.join(_TTF, file))
    if font.get_char_index(ord(char)) == 0:
        raise ValueError(f"font {file} has no glyph for {char!r}")
    font.set_size(_RASTER_PX, 72)          # 72 dpi: one point is one pixel
    font.set_text(char)
    font.draw_glyphs_to_bitmap(antialiased=True)
    return torch.from_numpy(np.asarray(font.get_image(), dtype=np.float32) / 255.0)


def _crop(img: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    rows = (img > threshold).any(1).nonzero()
    cols = (img > threshold).any(0).nonzero()
    return img[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]


def _faux(img: torch.Tensor, faux: str) -> torch.Tensor:
    """Synthesise bold (dilate) and/or italic (shear) on a cropped high-resolution glyph."""
    h = img.shape[0]
    pad = int(h * (_FAUX_SHEAR / 2 + _FAUX_BOLD)) + 4
    x = F.pad(img, (pad, pad, pad, pad))[None, None]
    if "italic" in faux:
        # grid_sample looks up, for each output point, where it comes from: x_in = x_out + shear * y_out
        # (normalised coordinates, y down), so the top of the glyph moves right.
        H, W = x.shape[-2:]
        k = _FAUX_SHEAR * (H / W)
        theta = torch.tensor([[[1.0, k, 0.0], [0.0, 1.0, 0.0]]])
        x = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False), align_corners=False)
    if "bold" in faux:
        r = max(1, round(_FAUX_BOLD * h))
        # a round brush: dilate with a disk of radius r (max over a disk-shaped neighbourhood)
        yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        disk = (yy**2 + xx**2 <= r * r + r).float()
        patches = F.unfold(x, 2 * r + 1, padding=r)                        # (1, k*k, H*W)
        x = (patches * disk.flatten()[None, :, None]).amax(1).view_as(x)
    return _crop(x[0, 0])


@functools.cache
def template(char: str, family: str, bold: bool = False, italic: bool = False) -> torch.Tensor:
    """The normalised template of ``char`` in a style: float (TEMPLATE, TEMPLATE) in [0, 1], white on black.

    The glyph's larger side is ``GLYPH_BOX * TEMPLATE`` pixels, centred on its bounding box.
    """
    _check_family(family)
    file, faux = FAMILIES[family].files[_style_key(bold, italic)]
    glyph = _crop(_rasterise(file, char))
    if faux:
        glyph = _faux(glyph, faux)
    h, w = glyph.shape
    f = GLYPH_BOX * TEMPLATE / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    small = F.interpolate(glyph[None, None], size=(nh, nw), mode="bilinear", antialias=True,
                          align_corners=False)[0, 0]
    canvas = torch.zeros(TEMPLATE, TEMPLATE)
    top, left = (TEMPLATE - nh) // 2, (TEMPLATE - nw) // 2
    canvas[top: top + nh, left: left + nw] = small.clamp(0, 1)
    return canvas


# --- step 2: jitter ----------------------------------------------------------------------------------------------
def sample_jitter(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` random jitters, float32 (n, 7) in the order of ``JITTER_NAMES``, uniform in ``JITTER_RANGES``."""
    u = torch.rand(n, len(JITTER_NAMES), generator=generator)
    lo = torch.tensor([JITTER_RANGES[k][0] for k in JITTER_NAMES])
    hi = torch.tensor([JITTER_RANGES[k][1] for k in JITTER_NAMES])
    return lo + u * (hi - lo)


def identity_jitter(n: int = 1) -> torch.Tensor:
    """``n`` jitters that change nothing: the upright, centred template at the standard size."""
    j = torch.zeros(n, len(JITTER_NAMES))
    j[:, JITTER_NAMES.index("scale")] = 1.0
    j[:, JITTER_NAMES.index("aspect")] = 1.0
    return j


def _inverse_affine(jitter: torch.Tensor) -> torch.Tensor:
    """``theta`` (n, 2, 3) for ``affine_grid``: output coordinates -> template coordinates.

    Forward: p_out = M p_tpl + t with M = s_box R(rotation) Shear(shear) diag(scale*aspect, scale/aspect);
    so p_tpl = M^-1 p_out - M^-1 t.
    """
    rot, scale, aspect, shear, dx, dy, _ = jitter.double().unbind(1)
    a = torch.deg2rad(rot)
    cos, sin = torch.cos(a), torch.sin(a)
    sx, sy = scale * aspect, scale / aspect
    # R @ Shear @ diag(sx, sy), with R = [[cos, -sin], [sin, cos]] and Shear = [[1, shear], [0, 1]]
    m00, m01 = cos * sx, (cos * shear - sin) * sy
    m10, m11 = sin * sx, (sin * shear + cos) * sy
    k = OUT_BOX / GLYPH_BOX
    m = torch.stack([m00, m01, m10, m11], 1).view(-1, 2, 2) * k
    inv = torch.linalg.inv(m)
    t = torch.stack([dx, dy], 1)[:, :, None]
    return torch.cat([inv, -inv @ t], 2).float()


def _filter3(x: torch.Tensor, op) -> torch.Tensor:
    """3x3 max (``torch.maximum``: dilation) or min (``torch.minimum``: erosion) filter, zero outside.

    Separable: three shifted slices along x, then along y. (Much faster on a CPU than a stride-1 max_pool2d.)
    """
    p = F.pad(x, (1, 1, 1, 1))
    h = op(op(p[..., :, :-2], p[..., :, 1:-1]), p[..., :, 2:])
    return op(op(h[..., :-2, :], h[..., 1:-1, :]), h[..., 2:, :])


def _draw(tpl: torch.Tensor, jitter: torch.Tensor, size: int) -> torch.Tensor:
    """Warp one template by ``n`` jitters: float (n, 1, size, size) in [0, 1]."""
    n, k = len(jitter), SUPERSAMPLE[size]
    fine = size * k
    theta = _inverse_affine(jitter)                                       # (n, 2, 3)
    # the sampling grid at the fine pixel centres (what affine_grid computes, as cheap broadcasting)
    c = (torch.arange(fine, dtype=torch.float32) * 2 + 1) / fine - 1
    X, Y = c.view(1, 1, fine), c.view(1, fine, 1)
    t = theta.view(n, 6, 1, 1).unbind(1)
    grid = torch.stack([t[0] * X + t[1] * Y + t[2], t[3] * X + t[4] * Y + t[5]], -1)   # (n, fine, fine, 2)
    x = F.grid_sample(tpl.expand(n, 1, *tpl.shape), grid, mode="bilinear", padding_mode="zeros",
                      align_corners=False)
    # stroke: blend towards a 3x3 dilation (thicker, stroke > 0) or erosion (thinner, stroke < 0)
    s = jitter[:, JITTER_NAMES.index("stroke")]
    for rows, op in (((s > 0).nonzero().squeeze(1), torch.maximum), ((s < 0).nonzero().squeeze(1), torch.minimum)):
        if len(rows):
            xr = x[rows]
            x[rows] = xr + s[rows].abs().view(-1, 1, 1, 1) * (_filter3(xr, op) - xr)
    return F.avg_pool2d(x, k).clamp_(0, 1)


def _render_groups(chars: torch.Tensor, fonts: torch.Tensor, jitter: torch.Tensor, size: int,
                   font_list: list[tuple[str, bool, bool]], characters: str) -> torch.Tensor:
    """Draw sample i as character ``characters[chars[i]]`` in style ``font_list[fonts[i]]``: uint8 (n,1,S,S).

    Samples are grouped by (character, font) so each template is warped once per group, in chunks.
    """
    n = len(chars)
    out = torch.empty(n, 1, size, size, dtype=torch.uint8)
    key = chars.long() * len(font_list) + fonts.long()
    order = torch.argsort(key, stable=True)
    uniq, counts = torch.unique_consecutive(key[order], return_counts=True)
    chunk = max(1, 4_000_000 // (size * SUPERSAMPLE[size]) ** 2)
    start = 0
    for k, c in zip(uniq.tolist(), counts.tolist(), strict=True):
        idx = order[start: start + c]
        start += c
        family, bold, italic = font_list[k % len(font_list)]
        tpl = template(characters[k // len(font_list)], family, bold, italic)
        for s in range(0, c, chunk):
            sub = idx[s: s + chunk]
            out[sub] = (_draw(tpl, jitter[sub], size) * 255).round_().to(torch.uint8)
    return out


def _all_fonts() -> list[tuple[str, bool, bool]]:
    return [(f, b, i) for f in FAMILY_NAMES for b in (False, True) for i in (False, True)]


def render(chars, family: str = "sans", bold: bool = False, italic: bool = False, size: int = 28,
           seed: int | None = None, jitter: torch.Tensor | None = None) -> torch.Tensor:
    """Draw ``chars`` (a string or list of characters) in one style: float32 (n, 1, size, size) in [-1, 1].

    The jitter is ``jitter`` when given (a (n, 7) tensor, e.g. ``dataset.jitter[idx]``, or one row for all),
    else random from ``seed`` when given, else none (upright and centred). ``family`` may also be a full
    style spelling such as ``"serif-bold-italic"``. With a dataset's chars and jitter rows this returns the
    same images as the dataset, in whatever style you ask for.
    """
    if family not in FAMILIES:
        family, b, i = parse_style(family)
        bold, italic = bold or b, italic or i
    if size not in SIZES:
        raise ValueError(f"Unsupported glyph size {size}. Valid choices: {', '.join(map(str, SIZES))}.")
    chars = list(chars)
    bad = [c for c in chars if c not in CHARACTERS]
    if bad:
        raise ValueError(f"No glyph for {bad[0]!r}. Valid choices: {' '.join(CHARACTERS)}.")
    n = len(chars)
    if jitter is None:
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        jitter = sample_jitter(n, g) if seed is not None else identity_jitter(n)
    jitter = torch.as_tensor(jitter, dtype=torch.float32).reshape(-1, len(JITTER_NAMES)).expand(n, -1)
    idx = torch.tensor([CHARACTERS.index(c) for c in chars], dtype=torch.int64)
    fonts = [(family, bool(bold), bool(italic))]
    u8 = _render_groups(idx, torch.zeros(n, dtype=torch.int64), jitter, size, fonts, CHARACTERS)
    return u8.float().div_(127.5).sub_(1.0)


# --- step 3: datasets -----------------------------------------------------------------------------------------
class GlyphDataset(TensorImageDataset):
    """A glyphs split: ``TensorImageDataset`` plus the ground truth of how each image was drawn.

    Attributes (beyond ``images``, ``targets``, ``classes``):
        attributes:      int64 (N, 3): family index (into ``families``), bold (0/1), italic (0/1).
        attribute_names: ``("family", "bold", "italic")``.
        families:        the family names, ``FAMILY_NAMES``.
        jitter:          float32 (N, 7) in the order of ``JITTER_NAMES``: redraw with ``render_as``.
    Targets: ``"label"`` (character index), ``"attributes"`` (float [bold, italic, one-hot family]),
    ``"family"`` (int64 family index).
    """

    per_sample = ("attributes", "jitter")

    def __init__(self, images, targets, attributes, jitter, classes=CHARACTERS, target="label", split=""):
        self.attributes = attributes
        self.jitter = jitter
        self.attribute_names = ATTRIBUTE_NAMES
        self.families = FAMILY_NAMES
        views = {"attributes": attribute_vector(attributes), "family": attributes[:, 0]}
        super().__init__(images, targets, list(classes), views=views, target=target, name="glyphs", split=split)

    @property
    def characters(self) -> str:
        return "".join(self.classes)

    def render_as(self, idx, family: str, bold: bool = False, italic: bool = False) -> torch.Tensor:
        """Samples ``idx`` redrawn in another style with their own character and jitter: float [-1, 1]."""
        idx = torch.as_tensor(idx, dtype=torch.int64).reshape(-1)
        chars = [CHARACTERS[t] for t in self.targets[idx].tolist()]
        return render(chars, family, bold, italic, size=self.images.shape[-1], jitter=self.jitter[idx])


class GlyphPairDataset(PairedImageDataset):
    """Glyph pairs ``(a, b)``: the same character with the same jitter in two styles.

    Attributes: ``images`` (a, source style), ``images_b`` (b, target style), ``targets`` (character
    index), ``classes`` (the characters), ``jitter`` (N, 7), ``source`` and ``target_style`` (spellings),
    ``target_choice`` (N,) (0: b is in ``target_style``, 1: in ``target_or``; all 0 without ``target_or``).
    """

    per_sample = ("jitter", "target_choice")

    def __init__(self, images_a, images_b, targets, jitter, source, target_style, classes=CHARACTERS, split="",
                 target_choice=None, target_or=None):
        self.jitter = jitter
        self.target_choice = (torch.zeros(len(targets), dtype=torch.int64) if target_choice is None
                              else target_choice)
        self.target_or = target_or
        self.source = source
        self.target_style = target_style
        super().__init__(images_a, images_b, targets, list(classes), name="glyph-pairs", split=split)


def attribute_vector(attributes: torch.Tensor) -> torch.Tensor:
    """(N, 3) int attributes -> float (N, 2 + 7): [bold, italic, one-hot family] (StarGAN's domain labels)."""
    onehot = F.one_hot(attributes[:, 0].long(), len(FAMILY_NAMES)).float()
    return torch.cat([attributes[:, 1:3].float(), onehot], 1)


def _design(n: int, seed: int):
    """What sample i is: character, family, bold, italic, jitter; classes exactly balanced."""
    g = torch.Generator().manual_seed(seed)
    chars = (torch.arange(n) % len(CHARACTERS))[torch.randperm(n, generator=g)]
    family = torch.randint(len(FAMILY_NAMES), (n,), generator=g)
    bold = torch.randint(2, (n,), generator=g)
    italic = torch.randint(2, (n,), generator=g)
    jitter = sample_jitter(n, g)
    return chars, torch.stack([family, bold, italic], 1), jitter


def build(split: str, size: int) -> dict:
    """Draw the glyphs split at ``size``: a dict of tensors (what the cache file holds)."""
    n = SPLIT_SIZES[split]
    chars, attributes, jitter = _design(n, SEEDS["glyphs"][split])
    fonts = attributes[:, 0] * 4 + attributes[:, 1] * 2 + attributes[:, 2]      # index into _all_fonts()
    images = _render_groups(chars, fonts, jitter, size, _all_fonts(), CHARACTERS)
    return {"images": images, "targets": chars, "attributes": attributes, "jitter": jitter,
            "classes": list(CHARACTERS), "version": VERSION}


def build_pairs(split: str, size: int, source: str, target: str, target_or: str | None = None) -> dict:
    """Draw glyph pairs: each character with ONE jitter in the ``source`` style (a) and ``target`` style (b).

    The characters and jitters depend on the split only, so pair i shows the same character whatever
    the styles chosen. With ``target_or``, each pair's b is drawn in ``target`` or in ``target_or`` at random
    (a fair coin per pair, seeded; ``target_choice`` says which: 0 or 1): a target with two right answers for the
    same input, which is what L1 alone averages into a blur (pix2pix, Sec. 3.1).
    """
    n = PAIR_SPLIT_SIZES[split]
    g = torch.Generator().manual_seed(SEEDS["glyph-pairs"][split])
    chars = (torch.arange(n) % len(CHARACTERS))[torch.randperm(n, generator=g)]
    jitter = sample_jitter(n, g)
    zero = torch.zeros(n, dtype=torch.int64)
    a = _render_groups(chars, zero, jitter, size, [parse_style(source)], CHARACTERS)
    targets = [parse_style(target)] + ([parse_style(target_or)] if target_or else [])
    choice = (torch.randint(2, (n,), generator=torch.Generator().manual_seed(SEEDS["glyph-pairs"][split] + 7))
              if target_or else zero)
    b = _render_groups(chars, choice, jitter, size, targets, CHARACTERS)
    return {"images": a, "images_b": b, "targets": chars, "jitter": jitter, "target_choice": choice,
            "classes": list(CHARACTERS), "version": VERSION}
