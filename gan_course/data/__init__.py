"""The course's datasets behind one function: ``load(name, split, image_size, root, download, **options)``.

    >>> from gan_course.data import load, names, info
    >>> names()
    ['glyphs', 'glyph-pairs', 'shapes', 'mnist', 'fashion-mnist', 'cifar10', 'folder', 'facades', 'pix2pix-folder']
    >>> print(info("glyphs"))                    # sizes, splits, classes, options, targets, provenance
    >>> train = load("glyphs")                   # 60,000 images 1x28x28, float32 in [-1, 1], labels 0..19
    >>> x, y = train.get_batch(torch.arange(64)) # the fast path training uses

Embedded datasets (``glyphs``, ``glyph-pairs``, ``shapes``) are drawn by the course itself, deterministically,
the first time they are asked for, and cached under ``gan_course.paths.cache_dir()`` (``data/`` in a clone;
``root=`` overrides it). Real datasets are read from ``root=`` / ``$GAN_COURSE_DATA`` (see
``gan_course.data.real``).

Every mistake in the arguments raises ``ValueError`` naming what was wrong and listing the valid choices;
a real dataset that is not on disk raises ``DatasetNotFoundError`` (a ``FileNotFoundError``) saying where it
looked, how to get it and which embedded dataset stands in for it.
"""

from __future__ import annotations

import numbers
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import cache_dir
from . import glyphs, real, shapes
from .base import (
    DatasetNotFoundError,
    PairedImageDataset,
    TensorImageDataset,
    cached,
    to_float,
    to_uint8,
)

DatasetNotFoundError.__module__ = __name__          # shown as gan_course.data.DatasetNotFoundError

__all__ = ["load", "names", "info", "DatasetInfo", "DatasetNotFoundError", "TensorImageDataset",
           "PairedImageDataset", "cache_file", "to_float", "to_uint8", "glyphs", "shapes", "real"]


# --- descriptions -----------------------------------------------------------------------------------------
@dataclass
class DatasetInfo:
    """What a dataset is, and every valid argument of ``load`` for it. ``print(info(name))`` reads well.

    ``default_size`` and ``defaults`` (per option) default to the first size / choice. ``splits`` maps split -> number of items
    (None where it depends on your files). ``targets`` names what the second element of an item can be
    (option ``target``); ``attributes`` describes the per-sample ground truth (glyph attributes, shape
    factors) in the order of its vector.
    """

    name: str
    title: str
    kind: str                                   # "embedded" (generated here) or "real" (read from disk)
    channels: int
    sizes: tuple[int, ...]
    splits: dict[str, int | None]
    classes: list[str]
    options: dict[str, tuple] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    item: str = "(image, target)"
    source: str = ""
    notes: str = ""
    default_size: int = 0
    defaults: dict[str, str] = field(default_factory=dict)
    option_help: dict[str, str] = field(default_factory=dict)    # a short spelling of a long list of choices

    def __post_init__(self):
        self.default_size = self.default_size or self.sizes[0]
        self.defaults = {key: self.defaults.get(key, choices[0]) for key, choices in self.options.items()}

    def __str__(self) -> str:
        def wrap(label: str, text: str) -> str:
            return textwrap.fill(text, 108, initial_indent=f"  {label:<11} ", subsequent_indent=" " * 14,
                                 break_on_hyphens=False)

        splits = ", ".join(f"{s} {n:,}" if n is not None else f"{s} (your files)" for s, n in self.splits.items())
        sizes = ", ".join(str(s) for s in self.sizes)
        lines = [f"{self.name}: {self.title} [{self.kind}]",
                 wrap("items", f"{self.item}, images float32 in [-1, 1] of shape {self.channels} x S x S"),
                 wrap("sizes", f"S = {sizes} (default {self.default_size}; image_size=)"),
                 wrap("splits", splits)]
        if self.classes:
            lines.append(wrap("classes", f"{len(self.classes)}: " + " ".join(self.classes)))
        for i, (opt, choices) in enumerate(self.options.items()):
            spelled = self.option_help.get(opt) or " | ".join(map(str, choices))
            lines.append(wrap("options" if i == 0 else "", f"{opt} = {spelled}   (default {self.defaults[opt]})"))
        for i, (key, text) in enumerate(self.targets.items()):
            lines.append(wrap("targets" if i == 0 else "", f"{key}: {text}"))
        for i, (key, text) in enumerate(self.attributes.items()):
            lines.append(wrap("attributes" if i == 0 else "", f"{key}: {text}"))
        if self.source:
            lines.append(wrap("source", self.source))
        if self.notes:
            lines.append(wrap("notes", self.notes))
        return "\n".join(lines)


@dataclass
class _Entry:
    info: DatasetInfo
    loader: Callable


_REGISTRY: dict[str, _Entry] = {}


def _register(info: DatasetInfo):
    def deco(fn):
        _REGISTRY[info.name] = _Entry(info, fn)
        return fn
    return deco


def cache_file(name: str, split: str, size: int, root=None, extra: str = "") -> Path:
    """The cache file of an embedded dataset: ``<cache_dir>/<name>-<split>-<size>[-extra]-v<version>.pt``."""
    version = {"glyphs": glyphs.VERSION, "glyph-pairs": glyphs.VERSION, "shapes": shapes.VERSION}[name]
    base = Path(root).expanduser() if root is not None else cache_dir()
    return base / f"{name}-{split}-{size}{'-' + extra if extra else ''}-v{version}.pt"


# --- embedded ---------------------------------------------------------------------------------------------
_FONTS = "; ".join(f"{k} = {f.title}" for k, f in glyphs.FAMILIES.items())


@_register(DatasetInfo(
    name="glyphs",
    title="digits and capital letters drawn from matplotlib's fonts, white on black (MNIST-like)",
    kind="embedded", channels=1, sizes=glyphs.SIZES, splits=dict(glyphs.SPLIT_SIZES),
    classes=list(glyphs.CHARACTERS),
    options={"classes": ("all", "digits"), "target": ("label", "attributes", "family")},
    targets={
        "label": "class index (int64): the character's position in classes (0..9 are the digits)",
        "attributes": "float32 vector of 9 = [bold, italic, one-hot family (7)] for StarGAN-style domains",
        "family": "font family index (int64) into .families",
    },
    attributes={
        "family": f"index into .families: {_FONTS} (sans, serif, mono, stix: real faces for every style; "
                  "cm: bold italic synthesised; cm-sans, cm-mono: bold and italic synthesised)",
        "bold": "0/1", "italic": "0/1",
        "jitter": "(.jitter, N x 7, not a target) rotation (deg, +-12), scale (0.85..1.05), aspect (0.9..1.1), "
                  "shear (+-0.15), dx, dy (+-0.08 of the half-width), stroke (-0.4..0.8)",
    },
    source="generated by gan_course.data.glyphs from the TrueType fonts shipped inside matplotlib (DejaVu: "
           "Bitstream Vera licence; STIX: SIL OFL; Computer Modern: BaKoMa), seeded per split; "
           "cached on first use (~6 s for 60,000 at 28x28 on 2 CPU cores).",
    notes='classes="digits" keeps the 10 digits (30,000 train / 5,000 test, labels 0..9); classes are '
          "exactly balanced. gan_course.data.glyphs.render(chars, family, bold, italic, size, jitter=) redraws "
          "any glyph in any style; dataset.render_as(idx, family, bold, italic) redraws samples idx.",
))
def _load_glyphs(split, image_size, root, download, classes, target):
    path = cache_file("glyphs", split, image_size, root)
    data = cached(path, glyphs.build, split, image_size)
    ds = glyphs.GlyphDataset(data["images"], data["targets"], data["attributes"], data["jitter"], split=split)
    if classes == "digits":
        ds = ds.subset(ds.targets < len(glyphs.DIGITS))
        ds.classes = list(glyphs.DIGITS)
    return ds.with_target(target)


@_register(DatasetInfo(
    name="glyph-pairs",
    title="the same character with the same jitter in two font styles (pix2pix / style translation)",
    kind="embedded", channels=1, sizes=glyphs.PAIR_SIZES, splits=dict(glyphs.PAIR_SPLIT_SIZES),
    classes=list(glyphs.CHARACTERS), item="(a, b): a in the source style, b in the target style",
    options={"source": tuple(glyphs.style_names()), "target": tuple(glyphs.style_names()),
             "target_or": ("none", *glyphs.style_names()), "classes": ("all", "digits")},
    defaults={"source": "sans", "target": "stix-bold-italic", "target_or": "none"},
    option_help={**{key: "family[-bold][-italic], family = " + " | ".join(glyphs.FAMILY_NAMES)
                    + " (28 styles, e.g. serif-bold-italic)" for key in ("source", "target")},
                 "target_or": "a second target style: each pair's b is in target or target_or at random (a target "
                              "with two right answers; .target_choice says which); none: always target"},
    targets={"(fixed)": "b, the image in the target style; .targets holds the character index"},
    attributes={"jitter": "(.jitter, N x 7) as in glyphs; style spelling: family[-bold][-italic]"},
    source="generated by gan_course.data.glyphs (see info('glyphs')); one cache file per "
           "(split, size, source, target).",
    notes="Pair i shows the same character with the same jitter whatever the styles chosen.",
))
def _load_glyph_pairs(split, image_size, root, download, source, target, target_or, classes):
    second = None if target_or == "none" else target_or
    extra = f"{source}-to-{target}" + (f"-or-{second}" if second else "")
    path = cache_file("glyph-pairs", split, image_size, root, extra=extra)
    data = cached(path, glyphs.build_pairs, split, image_size, source, target, second)
    ds = glyphs.GlyphPairDataset(data["images"], data["images_b"], data["targets"], data["jitter"],
                                 source, target, split=split, target_choice=data.get("target_choice"),
                                 target_or=second)
    if classes == "digits":
        ds = ds.subset(ds.targets < len(glyphs.DIGITS))
        ds.classes = list(glyphs.DIGITS)
    return ds


_SHAPE_SYMMETRY = ", ".join(f"{s} +-{shapes.max_rotation(s):g}" for s in shapes.SHAPES)


@_register(DatasetInfo(
    name="shapes",
    title="coloured shapes on grey backgrounds with ground-truth factors (RGB, disentanglement)",
    kind="embedded", channels=3, sizes=shapes.SIZES, splits=dict(shapes.SPLIT_SIZES),
    classes=list(shapes.SHAPES),
    options={"target": ("label", "factors"), "layout": shapes.LAYOUTS},
    targets={"label": "shape class (int64)",
             "factors": "float32 vector of 7 = [" + ", ".join(shapes.FACTOR_NAMES) + "] (.factor_names)"},
    attributes={
        "shape": "class index as a float (0..9)",
        "hue": "colour hue in [0, 1) (saturation 0.85, value 0.95)",
        "scale": "0.6..1.0; outer radius = 0.6 * scale of the half-width",
        "rotation": f"degrees, counter-clockwise, within the shape's own symmetry: {_SHAPE_SYMMETRY}",
        "x": "centre, -0.35..0.35 (image coordinates, -1 = left edge)",
        "y": "centre, -0.35..0.35 (-1 = top edge)",
        "background": "grey level 0..0.5",
    },
    source="generated by gan_course.data.shapes (signed distance functions, vectorised in torch), seeded "
           "per split; cached on first use (~3 s at 32x32, ~7 s at 64x64 for 60,000; 64x64 train is a 740 MB file).",
    notes="Factors are independent and uniform; classes exactly balanced. shapes.render(factors, size) "
          'draws any factor vector. layout="centred": every shape at the centre at scale 0.9 (hue, rotation, '
          "background as in the random layout): the variant chapters 07-08 train on.",
))
def _load_shapes(split, image_size, root, download, target, layout):
    path = cache_file("shapes", split, image_size, root, extra="" if layout == "random" else layout)
    data = cached(path, shapes.build, split, image_size, layout)
    return shapes.ShapesDataset(data["images"], data["targets"], data["factors"], target=target, split=split)


# --- real -------------------------------------------------------------------------------------------------
_WHERE = ("read from root=, else $GAN_COURSE_DATA, else data/downloads; download=True (or "
          "GAN_COURSE_DOWNLOAD=1) fetches it with torchvision.")
_MNIST_CLASSES = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
                  "7 - seven", "8 - eight", "9 - nine"]


def _torchvision_loader(name):
    def loader(split, image_size, root, download):
        return real.load_torchvision(name, split, image_size, root, download)
    return loader


for _info in (
    DatasetInfo(name="mnist", title="handwritten digits (LeCun, Cortes and Burges), 28x28 grayscale",
                kind="real", channels=1, sizes=(28, 32, 64), splits={"train": 60_000, "test": 10_000},
                classes=_MNIST_CLASSES, targets={"label": "digit (int64)"},
                source="torchvision layout <root>/MNIST/raw/; " + _WHERE + " CC BY-SA 3.0.",
                notes='Embedded stand-in: load("glyphs", classes="digits").'),
    DatasetInfo(name="fashion-mnist", title="Zalando's clothing images (Xiao et al. 2017), 28x28 grayscale",
                kind="real", channels=1, sizes=(28, 32, 64), splits={"train": 60_000, "test": 10_000},
                classes=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"], targets={"label": "class (int64)"},
                source="torchvision layout <root>/FashionMNIST/raw/; " + _WHERE + " MIT licence.",
                notes='Embedded stand-in: load("glyphs").'),
    DatasetInfo(name="cifar10", title="small natural images (Krizhevsky 2009), 32x32 RGB",
                kind="real", channels=3, sizes=(32, 64), splits={"train": 50_000, "test": 10_000},
                classes=["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                         "truck"], targets={"label": "class (int64)"},
                source="torchvision layout <root>/cifar-10-batches-py/; " + _WHERE,
                notes='Embedded stand-in: load("shapes").'),
):
    _register(_info)(_torchvision_loader(_info.name))


_register(DatasetInfo(
    name="folder", title="your own images, torchvision ImageFolder layout root/<class>/<image>",
    kind="real", channels=3, sizes=(32, 64, 128, 256), default_size=64, splits={"train": None, "val": None, "test": None},
    classes=[], targets={"label": "class index (int64), classes = the sub-folder names"},
    source="root= (required). If root has train/ (val/, test/) sub-folders they are the splits; otherwise "
           "the whole folder is split 'train'.",
    notes="Read lazily (a torchvision ImageFolder): resize the shorter side, centre-crop, RGB, [-1, 1].",
))(lambda split, image_size, root, download: real.load_folder(split, image_size, root, download))

_register(DatasetInfo(
    name="facades", title="CMP Facades: architectural label maps <-> photos (Tylecek and Sara 2013), RGB pairs",
    kind="real", channels=3, sizes=(64, 128), default_size=128, splits={"train": 400, "test": 106}, classes=["facade"],
    item="(a, b) image pairs", options={"direction": ("label2photo", "photo2label")},
    targets={"(fixed)": "b: the photo for label2photo (pix2pix's direction), the label map for photo2label"},
    source="<root or $GAN_COURSE_DATA>/facades/facades_128.npz (keys photo_train, label_train, photo_test, "
           "label_test; uint8 NHWC 128x128). Research/teaching use with citation.",
    notes='Embedded stand-in: load("glyph-pairs").',
))(lambda split, image_size, root, download, direction: real.load_facades(
    split, image_size, root, download, direction))

_register(DatasetInfo(
    name="pix2pix-folder", title="image pairs in pix2pix's format: <root>/<split>/*.jpg, each file A|B side by side",
    kind="real", channels=3, sizes=(32, 64, 128, 256), default_size=128, splits={"train": None, "val": None, "test": None},
    classes=[], item="(a, b) image pairs", options={"direction": ("AtoB", "BtoA")},
    targets={"(fixed)": "b: the right half for AtoB, the left half for BtoA"},
    source="root= (required): the folder of a pix2pix dataset (facades, maps, edges2shoes, ...).",
    notes="Loaded whole into memory (uint8), each half resized to image_size.",
))(lambda split, image_size, root, download, direction: real.load_pix2pix_folder(
    split, image_size, root, download, direction))


# --- the API ----------------------------------------------------------------------------------------------
_ROOT_MEANS = {"embedded": "the folder of the dataset cache (default $GAN_COURSE_CACHE, else data/)",
               "real": "the folder holding the data (default $GAN_COURSE_DATA)"}


def names() -> list[str]:
    """The names ``load`` accepts: embedded datasets first, then the real ones."""
    return list(_REGISTRY)


def _entry(name: str) -> _Entry:
    if not isinstance(name, str):
        raise ValueError(f"The dataset name must be a string, got {type(name).__name__} {name!r}. Load one dataset "
                        f"at a time; valid choices: {', '.join(names())}.")
    if name not in _REGISTRY:
        raise ValueError(f"Unknown dataset {name!r}. Valid choices: {', '.join(names())}.")
    return _REGISTRY[name]


def info(name: str) -> DatasetInfo:
    """A readable description of dataset ``name``: sizes, splits, classes, options, targets, provenance."""
    return _entry(name).info


def load(name: str, split: str = "train", image_size: int | None = None, root=None, download: bool | None = None,
         **options):
    """Dataset ``name`` as a ``torch.utils.data.Dataset`` of ``(image, target)``, images float32 in [-1, 1].

    Args:
        name: one of ``names()``.
        split: ``"train"`` or ``"test"`` (see ``info(name).splits``).
        image_size: the side S of the (C, S, S) images; None for the dataset's default (``info(name).sizes``).
        root: real datasets: the folder to read from (default ``$GAN_COURSE_DATA``); embedded datasets:
            the cache folder (default ``gan_course.paths.cache_dir()``).
        download: real datasets only: True tries to download, False never, None only if
            ``GAN_COURSE_DOWNLOAD=1``.
        **options: per dataset, see ``info(name).options``, e.g. ``target="attributes"``,
            ``classes="digits"``, ``direction="photo2label"``.
    """
    entry = _entry(name)
    spec = entry.info
    if not isinstance(split, str) or split not in spec.splits:
        raise ValueError(f"Unknown split {split!r} for dataset {name!r}. Valid choices: {', '.join(spec.splits)}.")
    size = spec.default_size if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size not in spec.sizes:
        kind = "" if isinstance(size, numbers.Integral) and not isinstance(size, bool) else \
            f" (a {type(size).__name__}; image_size is a whole number of pixels)"
        raise ValueError(f"Unsupported image_size {image_size!r}{kind} for dataset {name!r}. Valid choices: "
                         f"{', '.join(map(str, spec.sizes))}.")
    size = int(size)
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root must be a folder path (a str or pathlib.Path), got {type(root).__name__} {root!r}. "
                        f"For {name!r} it is {_ROOT_MEANS[spec.kind]}.")
    if download is not None and not isinstance(download, bool):
        raise ValueError(f"download must be True, False or None (download only if GAN_COURSE_DOWNLOAD=1), got "
                        f"{type(download).__name__} {download!r}.")
    for key, value in options.items():
        if key not in spec.options:
            valid = ", ".join(spec.options) if spec.options else f"none ({name!r} takes no options)"
            raise ValueError(f"Unknown option {key}={value!r} for dataset {name!r}. Valid options: {valid}.")
        if not isinstance(value, str) or value not in spec.options[key]:
            raise ValueError(f"Unknown value {key}={value!r} for dataset {name!r}. Valid choices: "
                             f"{', '.join(map(str, spec.options[key]))}.")
    chosen = spec.defaults | options
    return entry.loader(split=split, image_size=size, root=root, download=download, **chosen)
