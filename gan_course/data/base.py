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
import glob
import os
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .. import files

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
    """``torch.save`` to ``path`` atomically (``gan_course.files.atomic_save``: a unique temporary file beside it,
    then ``os.replace``; the temporary file is removed on any failure).

    Two processes building the same file at once (pytest -n 2) each write their own temporary file; the
    last rename wins and both results are identical, so a reader never sees a half-written file. A cache can be
    rebuilt, so it is not flushed to disk first (``fsync=False``): a power cut may cost a rebuild, never a wrong file.
    """
    files.atomic_save(tensors, path, fsync=False)


def load_tensors(path: Path) -> dict:
    """Load a cache file written by ``save_tensors``, memory-mapped (pages are read on first use).

    Raises ``gan_course.files.DamagedFileError`` when the file is empty, truncated or not a torch file.
    """
    path = Path(path)
    data = files.load(path, fix=_REBUILD_FIX.format(path=path), mmap=True)
    if not isinstance(data, dict):
        raise files.DamagedFileError(path, f"it holds a {type(data).__name__}, not the dict of tensors a dataset "
                                     "cache holds", _REBUILD_FIX.format(path=path))
    return data


_REBUILD_FIX = "Delete {path}: the course rebuilds it the next time the dataset is loaded."


def _read_cache(path: Path) -> dict | None:
    """The tensors in ``path``; None when there is no such file, or when it is damaged (said, then rebuilt)."""
    if not path.exists():
        return None
    try:
        return load_tensors(path)
    except files.DamagedFileError as e:
        size = path.stat().st_size if path.exists() else 0
        reason = e.reason if size == 0 else f"{size:,} bytes that torch cannot read back: truncated or overwritten"
        print(f"The dataset cache file {path} is damaged ({reason}), e.g. by a build that was killed or a full "
              "disk. Rebuilding it (nothing you trained depends on it).", file=sys.stderr)
        return None


@contextlib.contextmanager
def _build_lock(path: Path):
    """Hold an exclusive lock on ``path`` (POSIX ``flock``; no lock where fcntl is missing, e.g. Windows).

    Two processes asking for the same dataset at once (pytest -n 2, two notebooks) then build it once: the
    second waits and reads the first one's file. Yields False (no lock) where the lock file cannot be created
    (a read-only cache folder): the dataset is then built in memory only.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still keeps the file whole
        yield True
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 - closed below, after the lock is released
    except OSError:
        yield False
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _not_saved(path: Path, error: OSError) -> str:
    why = str(error) if isinstance(error, files.DiskFullError) else f"{type(error).__name__}: {error}"
    return (f"Could not save the dataset cache {path} ({why}). The dataset was built in memory and works now, but "
            f"it will be built again next time. To keep it, make {path.parent} writable, or set the environment "
            "variable GAN_COURSE_CACHE to a writable folder (or pass root= to gan_course.data.load).")


def _remove_legacy_temps(path: Path) -> None:
    """Delete ``.<name>.<pid>.<hex>.tmp`` files that builds killed before this version of the course left behind
    (its temporaries are now ``files.atomic_save``'s, cleaned by ``files.remove_stale_temps``)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)                         # the writer still runs: leave its file alone
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _identity(path: Path) -> tuple | None:
    """(inode, modification time, size) of ``path``, None if absent: tells whether another process replaced it."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def cached(path: Path, builder, *args) -> dict:
    """The tensors in cache file ``path`` (memory-mapped) if it exists, else ``builder(*args)``, saved there.

    Temporary files of earlier builds that died (a killed kernel mid-save; a 64x64 shapes cache is 740 MB) are
    removed first. A damaged cache file is rebuilt, with a message; a folder that cannot be written (read-only, or
    a full disk) gives a message naming it and ``GAN_COURSE_CACHE``, and the dataset built in memory.
    """
    path = Path(path)
    files.remove_stale_temps(path.parent, path.name)
    _remove_legacy_temps(path)
    seen = _identity(path)
    data = _read_cache(path)
    if data is not None:
        return data
    with _build_lock(path.with_name(f".{path.name}.lock")) as locked:
        if locked and _identity(path) not in (None, seen):     # built by another process while we waited
            data = _read_cache(path)
            if data is not None:
                return data
        data = builder(*args)
        try:
            save_tensors(path, data)
        except OSError as e:
            print(_not_saved(path, e), file=sys.stderr)
    return data
