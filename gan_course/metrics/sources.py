"""Where the images a metric compares come from: one small normaliser, ``ImageSource``.

Every metric of the course compares two *sets* of images (or scores one set). They can come from

- a **tensor** ``(N, C, H, W)``, float in [-1, 1] (the course convention) or uint8 (0..255);
- a **dataset**: a ``TensorImageDataset`` (its vectorised ``get_batch`` is used) or any map-style
  ``torch.utils.data.Dataset`` whose items are ``(image, ...)`` or ``image``;
- a **generator callable** ``sample(n) -> images`` (e.g. ``gan_course.sampling.sampler(G)``).

``ImageSource(source, n, seed)`` turns any of them into an iterator of float batches in [-1, 1]::

    src = ImageSource(load("glyphs"), n=2000, seed=0)    # a seeded random subset of 2,000 images
    for x in src.batches(256):                           # float32 (<=256, C, H, W), on the CPU
        ...

Rules, so numbers are reproducible:

- a tensor or dataset larger than ``n`` contributes a random subset of ``n`` images, drawn without replacement
  with a generator seeded by ``seed`` (datasets may be stored in any order, e.g. sorted by class);
  ``n=None`` takes all of them; asking for more than there are raises ``ValueError``.
- a callable is called **once**, ``sample(n)``, and must return at least ``n`` images (the extra ones are
  dropped). Seed it yourself: the course's samplers take a ``seed`` and return the same images for the
  same ``(seed, n)``. Pass ``chunk=`` to call it repeatedly, ``sample(chunk)``, when ``n`` images do not fit
  in memory at once; the callable must then return *fresh* samples on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Dataset

__all__ = ["ImageSource", "as_float_images"]


def as_float_images(x: torch.Tensor) -> torch.Tensor:
    """Images as float32 in [-1, 1], shape (N, C, H, W): uint8 is mapped by ``u / 127.5 - 1``, float is kept.

    A single image (C, H, W) becomes a batch of one. Anything else raises ``ValueError``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor of images, got {type(x).__name__}")
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(127.5).sub_(1.0)
    if not x.is_floating_point():
        raise ValueError(f"images must be float in [-1, 1] or uint8, got {x.dtype}")
    return x.detach().to(torch.float32)


class ImageSource:
    """A reproducible set of ``n`` images from a tensor, a dataset or a ``sample(n)`` callable.

    Args:
        source: tensor (N, C, H, W) in [-1, 1] or uint8; a ``Dataset``; or a callable ``n -> images``;
            or another ``ImageSource`` (returned as is when ``n`` is None or equal).
        n: how many images; None = all of a tensor/dataset (required for a callable).
        seed: seeds the random subset of a tensor/dataset larger than ``n``.
        chunk: for a callable only: call ``sample(chunk)`` repeatedly instead of ``sample(n)`` once.
    """

    def __init__(self, source, n: int | None = None, seed: int = 0, chunk: int | None = None):
        if isinstance(source, ImageSource):
            source, n, seed, chunk = source.source, n if n is not None else source.n, source.seed, source.chunk
        self.source, self.seed, self.chunk = source, seed, chunk
        if isinstance(source, torch.Tensor) or isinstance(source, Dataset):
            total = len(source)
            if n is None:
                n = total
            if n > total:
                raise ValueError(f"asked for n={n} images but the source holds only {total}")
            self.kind = "tensor" if isinstance(source, torch.Tensor) else "dataset"
            if n < total:
                g = torch.Generator().manual_seed(seed)
                self.index = torch.randperm(total, generator=g)[:n].sort().values
            else:
                self.index = None
        elif callable(source):
            if n is None:
                raise ValueError("a generator callable needs n: how many images to draw")
            self.kind, self.index = "callable", None
        else:
            raise TypeError(
                f"cannot take images from {type(source).__name__}: pass a tensor (N, C, H, W), a Dataset, "
                "or a callable sample(n) -> images"
            )
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"ImageSource({self.kind}, n={self.n}, seed={self.seed})"

    def _rows(self, start: int, stop: int) -> torch.Tensor:
        if self.index is not None:
            return self.index[start:stop]
        return torch.arange(start, stop)

    def _from_dataset(self, rows: torch.Tensor) -> torch.Tensor:
        ds = self.source
        if hasattr(ds, "get_batch"):
            batch = ds.get_batch(rows)
            return as_float_images(batch[0] if isinstance(batch, tuple | list) else batch)
        items = [ds[int(i)] for i in rows]
        images = [item[0] if isinstance(item, tuple | list) else item for item in items]
        return as_float_images(torch.stack(images))

    def batches(self, batch_size: int = 256) -> Iterator[torch.Tensor]:
        """Float32 batches in [-1, 1] of at most ``batch_size`` images, ``n`` images in all (on the CPU or
        wherever a callable put them; extractors move them to their own device)."""
        if self.kind == "callable":
            yield from self._sampled(batch_size)
            return
        for start in range(0, self.n, batch_size):
            rows = self._rows(start, min(start + batch_size, self.n))
            if self.kind == "tensor":
                yield as_float_images(self.source[rows])
            else:
                yield self._from_dataset(rows)

    def _sampled(self, batch_size: int) -> Iterator[torch.Tensor]:
        sample: Callable = self.source
        remaining = self.n
        while remaining > 0:
            want = remaining if self.chunk is None else min(self.chunk, remaining)
            with torch.no_grad():
                images = as_float_images(sample(want))
            if len(images) < want:
                raise ValueError(f"sample({want}) returned only {len(images)} images")
            images = images[:want]
            for start in range(0, want, batch_size):
                yield images[start:start + batch_size]
            remaining -= want

    def tensor(self) -> torch.Tensor:
        """All ``n`` images as one float tensor (N, C, H, W) on the CPU."""
        return torch.cat([x.cpu() for x in self.batches(1024)])
