"""The in-memory dataset every embedded (and small real) dataset of the course is: uint8 images, float out.

A GAN on a CPU spends a surprising share of its time in the ``DataLoader`` (one Python call per image, then
collation). The course's datasets are small enough to live in memory as a single uint8 tensor, so training
takes a whole batch with one indexing operation instead::

    x, y = dataset.get_batch(torch.randint(len(dataset), (64,)))     # x: float32 in [-1, 1], (64, C, H, W)

Images are stored as uint8 (0..255) and mapped to the range a ``tanh`` generator produces,

    x = u / 127.5 - 1        so 0 -> -1 (black) and 255 -> +1 (white).

The second element of an item is chosen by ``target``: ``"label"`` (the class index, int64) by default, or
any of the named per-sample ``views`` a dataset carries (glyph attributes, shape factors, the other image of a
pair). ``dataset.with_target(name)`` returns a view of the same tensors with another target.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import torch
from torch.utils.data import Dataset

__all__ = ["TensorImageDataset", "PairedImageDataset", "DatasetNotFoundError", "to_float", "to_uint8",
           "save_tensors", "load_tensors", "cached"]


class DatasetNotFoundError(FileNotFoundError):
    """A real dataset is not on disk (and was not, or could not be, downloaded).

    The message names the directory searched, how to get the data and the embedded dataset to use instead.
    """


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) -> float32 in [-1, 1]: ``u / 127.5 - 1``."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float images in [-1, 1] -> uint8 (0..255), rounding to the nearest level (values outside are clipped)."""
    return images.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class TensorImageDataset(Dataset):
    """Images held in memory as uint8, served as float32 in [-1, 1].

    Attributes:
        images:  uint8 tensor (N, C, H, W).
        targets: int64 tensor (N,), the class index of each image.
        classes: list of the N_classes class names, ``classes[targets[i]]`` names image i.
        views:   dict of other per-sample tensors (first dimension N) that ``target`` may select.
        target:  which of ``"label"`` or ``views`` the second element of an item is.

    ``__getitem__`` and ``get_batch`` return the same values; ``get_batch`` is the vectorised fast path
    (one indexing operation per batch, no per-item Python loop). A selected view that is itself a uint8
    image tensor (a paired dataset's second image) is converted to [-1, 1] like ``images``; other views are
    returned as float32, labels as int64.
    """

    per_sample: tuple[str, ...] = ()  # names of further per-sample tensor attributes that subset() slices

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        classes: list[str],
        views: dict[str, torch.Tensor] | None = None,
        target: str = "label",
        name: str = "",
        split: str = "",
    ):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        targets = torch.as_tensor(targets, dtype=torch.int64)
        if targets.shape != (len(images),):
            raise ValueError(f"targets must have shape ({len(images)},), got {tuple(targets.shape)}")
        views = dict(views or {})
        for key, value in views.items():
            if len(value) != len(images):
                raise ValueError(f"view {key!r} has {len(value)} rows for {len(images)} images")
        self.images = images
        self.targets = targets
        self.classes = list(classes)
        self.views = views
        self.name = name
        self.split = split
        self.target = target
        self._target_tensor = self._select(target)

    # --- the second element -------------------------------------------------------------------------------
    @property
    def target_choices(self) -> list[str]:
        return ["label", *self.views]

    def _select(self, target: str) -> torch.Tensor:
        if target == "label":
            return self.targets
        if target not in self.views:
            raise ValueError(
                f"Unknown target {target!r} for dataset {self.name or type(self).__name__!r}. "
                f"Valid choices: {', '.join(map(repr, self.target_choices))}."
            )
        return self.views[target]

    def _convert_target(self, value: torch.Tensor) -> torch.Tensor:
        if value.dtype == torch.uint8:
            return to_float(value)
        if value.dtype == torch.int64:
            return value.clone() if value.ndim == 0 else value
        return value.to(torch.float32)

    def with_target(self, target: str) -> TensorImageDataset:
        """The same images (no copy) whose items carry ``target`` as their second element."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.target = target
        new._target_tensor = new._select(target)
        return new

    # --- Dataset protocol -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return to_float(self.images[i]), self._convert_target(self._target_tensor[i])

    def get_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``idx`` as float32 in [-1, 1] (B, C, H, W) and their targets: the training fast path."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        return to_float(self.images[idx]), self._convert_target(self._target_tensor[idx])

    def subset(self, keep: torch.Tensor) -> TensorImageDataset:
        """A dataset of the rows selected by ``keep`` (a bool mask or an index tensor); same classes."""
        keep = torch.as_tensor(keep)
        if keep.dtype == torch.bool:
            keep = keep.nonzero().squeeze(1)
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.images = self.images[keep]
        new.targets = self.targets[keep]
        new.views = {k: v[keep] for k, v in self.views.items()}
        for attr in self.per_sample:
            setattr(new, attr, getattr(self, attr)[keep])
        new._target_tensor = new._select(new.target)
        return new

    # --- readable ---------------------------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        what = f"{self.name!r} " if self.name else ""
        split = f"{self.split} split, " if self.split else ""
        return (
            f"{type(self).__name__}({what}{split}{len(self)} images {c}x{h}x{w}, "
            f"{len(self.classes)} classes, target={self.target!r})"
        )


class PairedImageDataset(TensorImageDataset):
    """Aligned image pairs ``(a, b)`` for image-to-image translation (pix2pix): ``b`` is ``views["b"]``.

    ``images`` holds the inputs a (uint8, N x C x H x W) and ``images_b`` the outputs b; ``targets`` and
    ``classes`` still name what each pair shows (the character of a glyph pair, or a single class).
    ``get_batch(idx)`` returns ``(a_batch, b_batch)``, both float32 in [-1, 1].
    """

    def __init__(self, images_a, images_b, targets, classes, views=None, name="", split=""):
        if images_b.dtype != torch.uint8 or images_b.shape[0] != images_a.shape[0]:
            raise ValueError("images_b must be a uint8 tensor with as many rows as images_a")
        super().__init__(images_a, targets, classes, views={"b": images_b, **(views or {})}, target="b",
                         name=name, split=split)

    @property
    def images_b(self) -> torch.Tensor:
        return self.views["b"]

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        cb = self.images_b.shape[1]
        what = f"{self.name!r} " if self.name else ""
        split = f"{self.split} split, " if self.split else ""
        return f"{type(self).__name__}({what}{split}{len(self)} pairs {c}x{h}x{w} -> {cb}x{h}x{w})"


# --- cache files --------------------------------------------------------------------------------------------
def save_tensors(path: Path, tensors: dict) -> None:
    """``torch.save`` to ``path`` atomically: write a unique temporary file beside it, then ``os.replace``.

    Two processes building the same file at once (pytest -n 2) each write their own temporary file; the
    last rename wins and both results are identical, so a reader never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save(tensors, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_tensors(path: Path) -> dict:
    """Load a cache file written by ``save_tensors``, memory-mapped (pages are read on first use)."""
    return torch.load(path, mmap=True, weights_only=True)


@contextlib.contextmanager
def _build_lock(path: Path):
    """Hold an exclusive lock on ``path`` (POSIX ``flock``; no lock where fcntl is missing, e.g. Windows).

    Two processes asking for the same dataset at once (pytest -n 2, two notebooks) then build it once: the
    second waits and reads the first one's file.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still keeps the file whole
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(path: Path, builder, *args) -> dict:
    """The tensors in cache file ``path`` (memory-mapped) if it exists, else ``builder(*args)``, saved there."""
    path = Path(path)
    if path.exists():
        return load_tensors(path)
    with _build_lock(path.with_name(f".{path.name}.lock")):
        if path.exists():                                # built by another process while we waited
            return load_tensors(path)
        data = builder(*args)
        save_tensors(path, data)
    return data
