"""Real datasets: MNIST, Fashion-MNIST and CIFAR-10 (torchvision), a user's image folder, and image pairs.

Nothing here is shipped with the course. Real data is looked for in, in this order:

1. ``root=`` passed to ``load``,
2. the folder named by the environment variable ``GAN_COURSE_DATA``,
3. ``<cache_dir>/downloads`` (``data/downloads`` in a clone), where ``download=True`` puts what it fetches.

The layouts are torchvision's: ``<root>/MNIST/raw/``, ``<root>/FashionMNIST/raw/``,
``<root>/cifar-10-batches-py/``; the facades pairs are ``<root>/facades/facades_128.npz``.

``download=None`` (the default) downloads only when the environment variable ``GAN_COURSE_DOWNLOAD=1``;
``True`` always tries, ``False`` never. Whatever goes wrong (no copy, no network) ends in a
``DatasetNotFoundError`` that says where it looked, how to get the data, and which embedded dataset
stands in for it.

The small datasets are loaded whole into a ``TensorImageDataset`` (uint8 in memory, ``get_batch`` fast
path); a user's folder is read lazily, one file per item.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..files import DamagedFileError
from ..paths import cache_dir
from .base import DatasetNotFoundError, PairedImageDataset, TensorImageDataset

__all__ = ["data_root", "wants_download", "load_torchvision", "load_folder", "load_facades",
           "load_pix2pix_folder", "resize", "check_idx_file", "TORCHVISION", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# name -> (torchvision class name, folder torchvision reads under root, embedded alternative)
TORCHVISION = {
    "mnist": ("MNIST", "MNIST/raw", 'load("glyphs", classes="digits") (or all 20 classes with load("glyphs"))'),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw", 'load("glyphs") (20 classes, MNIST-sized)'),
    "cifar10": ("CIFAR10", "cifar-10-batches-py", 'load("shapes") (RGB, 32x32, 10 classes)'),
}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where real data is looked for: ``root``, else ``$GAN_COURSE_DATA``, else ``<cache_dir>/downloads``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GAN_COURSE_DATA")
    return Path(env).expanduser() if env else cache_dir() / "downloads"


def wants_download(download: bool | None) -> bool:
    """``download=None`` means: only when the environment variable ``GAN_COURSE_DOWNLOAD`` is ``1``."""
    return os.environ.get("GAN_COURSE_DOWNLOAD") == "1" if download is None else bool(download)


def _how_to_get(name: str, where: Path, alternative: str, reason: str = "") -> str:
    return (
        f"Dataset {name!r} was not found in {where.resolve()}"
        + (f" ({reason})" if reason else "")
        + ".\nTo use it: point the course at a folder holding a copy with the environment variable "
        f"GAN_COURSE_DATA=/that/folder or load({name!r}, root='/that/folder'); on a machine with network "
        f"access, load({name!r}, download=True) (or GAN_COURSE_DOWNLOAD=1) fetches it."
        + (f"\nNo copy at hand? The embedded stand-in needs no download: {alternative}." if alternative else "")
    )


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size) by anti-aliased bilinear resampling (no-op if equal)."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty(*images.shape[:2], size, size, dtype=torch.uint8)
    for s in range(0, len(images), 4096):
        x = images[s: s + 4096].float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[s: s + 4096] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


# --- checking the files before torchvision reads them --------------------------------------------------------
# The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian int32 magic number 0x0000 08 ND (type
# 0x08 = uint8, ND dimensions), then ND big-endian int32 sizes, then the bytes. Images: 2051 = 0x803, (N, 28, 28);
# labels: 2049 = 0x801, (N,).
_IDX = {"images": (2051, (28, 28)), "labels": (2049, ())}
_IDX_COUNT = {"train": 60_000, "t10k": 10_000}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def _fix_real(name: str, path: Path) -> str:
    return (f"Delete it and fetch a fresh copy: load({name!r}, download=True) (or GAN_COURSE_DOWNLOAD=1) on a machine "
            f"with network access; or, if {path.parent} is not yours to change, point the environment variable "
            f"GAN_COURSE_DATA (or root=) at another folder holding an intact copy.")


def check_idx_file(path: Path, name: str = "mnist") -> None:
    """Raise ``DamagedFileError`` unless ``path`` is a complete MNIST-layout IDX file (magic number, sizes, length).

    ``path`` is named as torchvision names the files: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``.
    """
    path = Path(path)
    prefix, kind = path.name.split("-")[:2]
    magic, dims = _IDX[kind]
    shape = (_IDX_COUNT[prefix], *dims)
    header = 4 * (1 + len(shape))
    expected = header + int(np.prod(shape))
    what = f"the {_TITLES.get(name, name)} {'test' if prefix == 't10k' else 'train'} {kind} file"
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(header)
    if size == 0:
        raise DamagedFileError(path, f"the file is empty; {what} has {expected:,} bytes", _fix_real(name, path))
    got_magic = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
    if got_magic != magic:
        raise DamagedFileError(path, f"its header starts with {head[:4].hex() or 'nothing'} (magic number "
                               f"{got_magic}); {what} starts with the IDX magic number {magic} (0x{magic:08x}); "
                               "a compressed .gz or an HTML error page saved under this name looks like this",
                               _fix_real(name, path))
    got_shape = tuple(int.from_bytes(head[4 * i: 4 * i + 4], "big") for i in range(1, 1 + len(shape)))
    if got_shape != shape:
        raise DamagedFileError(path, f"its header gives sizes {got_shape}, {what} holds {shape}", _fix_real(name, path))
    if size != expected:
        why = "truncated: an interrupted download or copy?" if size < expected else "extra bytes at the end"
        raise DamagedFileError(path, f"it has {size:,} bytes, {what} has {expected:,} ({why})", _fix_real(name, path))


def _idx_stems(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _check_idx_files(name: str, raw: Path, split: str) -> None:
    """Check the two IDX files ``split`` needs in ``raw`` (missing ones are left to the not-found message)."""
    for stem in _idx_stems(split):
        path = raw / stem
        if path.exists():
            check_idx_file(path, name)
        elif (raw / f"{stem}.gz").exists():
            raise DatasetNotFoundError(
                f"Dataset {name!r}: found {raw / stem}.gz but not the uncompressed {stem} that torchvision reads. "
                f"Decompress it (gunzip -k {raw / stem}.gz), or load({name!r}, download=True), which extracts it.")


def _damaged_cifar(where: Path) -> list[str]:
    """The CIFAR-10 batch files in ``where`` that are missing or whose MD5 differs from torchvision's record."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    folder = where / CIFAR10.base_folder
    return [f"{folder / f} ({'missing' if not (folder / f).exists() else 'MD5 differs: damaged'})"
            for f, md5 in CIFAR10.train_list + CIFAR10.test_list + [(CIFAR10.meta["filename"], CIFAR10.meta["md5"])]
            if not check_integrity(str(folder / f), md5)]


# --- MNIST, Fashion-MNIST, CIFAR-10 ------------------------------------------------------------------------
def load_torchvision(name: str, split: str, image_size: int, root=None, download=None) -> TensorImageDataset:
    """A torchvision dataset read whole into memory as a ``TensorImageDataset`` (resized to image_size)."""
    class_name, sub, alternative = TORCHVISION[name]
    where = data_root(root)
    if name != "cifar10":                      # torchvision neither re-downloads nor explains a damaged IDX file
        _check_idx_files(name, where / sub, split)
    import torchvision.datasets as tvd

    cls = getattr(tvd, class_name)
    train = split == "train"
    if wants_download(download):
        try:
            ds = cls(root=str(where), train=train, download=True)
        except Exception as exc:  # no network, a proxy, a changed mirror...: say so plainly, no traceback
            detail = " ".join(str(exc).split())
            reason = f"download failed: {type(exc).__name__}: {detail[:300]}"
            raise DatasetNotFoundError(_how_to_get(name, where, alternative, reason)) from None
    else:
        try:
            ds = cls(root=str(where), train=train, download=False)
        except RuntimeError:
            damaged = _damaged_cifar(where) if name == "cifar10" and (where / sub).is_dir() else []
            if damaged and not all(d.endswith("(missing)") for d in damaged):
                raise DamagedFileError(where / sub, "these files are missing or damaged: " + "; ".join(damaged),
                                       _fix_real(name, where / sub / "data_batch_1")) from None
            stems = [*_idx_stems("train"), *_idx_stems("test")] if name != "cifar10" else []   # torchvision needs all
            missing = [f for f in stems if not (where / sub / f).exists()]
            reason = (f"looked for torchvision's files in {where / sub}"
                      + (f", missing {', '.join(missing)}" if missing else "") + "; downloading is off")
            raise DatasetNotFoundError(_how_to_get(name, where, alternative, reason)) from None
    data = torch.as_tensor(np.asarray(ds.data))
    images = data[:, None] if data.ndim == 3 else data.permute(0, 3, 1, 2)        # (N, C, H, W)
    images = resize(images.contiguous(), image_size)
    return TensorImageDataset(images, torch.as_tensor(ds.targets), list(ds.classes), name=name, split=split)


# --- a user's folder ------------------------------------------------------------------------------------------
def _folder_split(root: Path, split: str) -> Path:
    """``<root>/<split>`` if root holds split folders (train/, test/...), else root itself for "train"."""
    if (root / "train").is_dir():
        present = [s for s in ("train", "val", "test") if (root / s).is_dir()]
        if split not in present:
            raise DatasetNotFoundError(
                f"Split {split!r} not found: {root.resolve()} has split folders {', '.join(present)}.")
        return root / split
    if split != "train":
        raise DatasetNotFoundError(
            f"Split {split!r} not found: {root.resolve()} has no split folders (train/, test/), so all of "
            f"it is the 'train' split. Make {root / split}/<class>/... to have a {split!r} split.")
    return root


def load_folder(split: str, image_size: int, root=None, download=None):
    """Your own images in torchvision's ImageFolder layout ``root/<class>/<image>``, read lazily.

    Each image is resized (shorter side) and centre-cropped to image_size, made RGB, scaled to [-1, 1].
    """
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    if root is None:
        raise ValueError('Dataset "folder" needs root=, the folder holding your images as '
                         "root/<class name>/<image files> (torchvision's ImageFolder layout).")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"Image folder {root.resolve()} does not exist. Pass root= a folder "
                                   f"holding <class name>/<image files>.")
    where = _folder_split(root, split)
    tf = transforms.Compose([
        transforms.Resize(image_size, antialias=True),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * 3, [0.5] * 3),
    ])
    try:
        ds = ImageFolder(str(where), transform=tf, loader=_read_rgb)
    except FileNotFoundError as exc:
        raise DatasetNotFoundError(
            f"No images found in {where.resolve()}: {exc}. Expected {where}/<class name>/<image files> "
            f"with extensions {', '.join(IMAGE_EXTENSIONS)}.") from None
    ds.name, ds.split = "folder", split
    return ds


def _read_rgb(path):
    """The image file ``path`` as an RGB PIL image; ``DamagedFileError`` naming the file if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError, SyntaxError) as e:         # PIL's errors for a truncated or non-image file
        raise DamagedFileError(path, f"{type(e).__name__}: {e}", "Replace it with an intact copy, or delete it "
                               "(or move it out of the folder) to train without it.") from e


# --- image pairs --------------------------------------------------------------------------------------------
def _nhwc(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous()


def load_facades(split: str, image_size: int, root=None, download=None, direction="label2photo"):
    """CMP Facades pairs from ``<root>/facades/facades_128.npz``: label map <-> photo, 128x128 RGB."""
    where = data_root(root)
    candidates = [where / "facades" / "facades_128.npz", where / "facades_128.npz"]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise DatasetNotFoundError(
            f"Dataset 'facades' was not found: looked for {candidates[0].resolve()}.\nTo use it: put "
            "facades_128.npz (keys photo_train, label_train, photo_test, label_test; uint8 NHWC 128x128) in "
            "<folder>/facades/ and set GAN_COURSE_DATA=<folder> or pass root=<folder>; or use your own pairs "
            "with load('pix2pix-folder', root=...).\nNo copy at hand? The embedded stand-in needs no "
            "download: load('glyph-pairs') (the same character in two font styles).")
    keys = (f"photo_{split}", f"label_{split}")
    try:
        with np.load(path) as z:
            photo, label = _nhwc(z[keys[0]]), _nhwc(z[keys[1]])
    except Exception as e:  # noqa: BLE001 - a truncated zip, a missing key, a garbled array: one clear message
        raise DamagedFileError(path, f"{type(e).__name__}: {e}; it should be a numpy .npz holding uint8 NHWC "
                               f"arrays {', '.join(keys)}", "Copy facades_128.npz there again, or point the "
                               "environment variable GAN_COURSE_DATA (or root=) at another folder holding an intact "
                               "copy.") from e
    photo, label = resize(photo, image_size), resize(label, image_size)
    a, b = (label, photo) if direction == "label2photo" else (photo, label)
    ds = PairedImageDataset(a, b, torch.zeros(len(a), dtype=torch.int64), ["facade"], name="facades", split=split)
    ds.direction = direction
    return ds


def load_pix2pix_folder(split: str, image_size: int, root=None, download=None, direction="AtoB"):
    """pix2pix's folder format: ``<root>/<split>/*.jpg|png``, each file A and B side by side (A left)."""
    if root is None:
        raise ValueError('Dataset "pix2pix-folder" needs root=, a folder holding <split>/<images>, each '
                         "image the pair A|B side by side (the format of the pix2pix datasets).")
    root = Path(root).expanduser()
    where = root / split
    if not where.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise DatasetNotFoundError(
            f"pix2pix folder split {where.resolve()} does not exist"
            + (f"; {root} has: {', '.join(present)}" if present else "") + ".")
    files = sorted(p for p in where.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DatasetNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {where.resolve()}.")
    a_list, b_list = [], []
    for f in files:
        x = torch.from_numpy(np.array(_read_rgb(f))).permute(2, 0, 1)                # (3, H, 2W)
        w = x.shape[-1] // 2
        a_list.append(resize(x[None, :, :, :w].contiguous(), image_size)[0])
        b_list.append(resize(x[None, :, :, w: 2 * w].contiguous(), image_size)[0])
    a, b = torch.stack(a_list), torch.stack(b_list)
    if direction == "BtoA":
        a, b = b, a
    ds = PairedImageDataset(a, b, torch.zeros(len(a), dtype=torch.int64), [root.name],
                            name="pix2pix-folder", split=split)
    ds.direction = direction
    ds.files = [str(f) for f in files]
    return ds
