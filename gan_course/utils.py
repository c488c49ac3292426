"""Device choice, seeding and mixed precision: the three things every chapter needs before it trains.

Nothing in the course hard-codes a device. ``get_device("auto")`` picks CUDA, then Apple's MPS, then the CPU;
every model and tensor is created on (or moved to) the device it returns.
"""

from __future__ import annotations

import os
import random
from contextlib import nullcontext

import numpy as np
import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def get_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device named by ``name``.

    ``"auto"`` (or None) picks ``cuda`` if available, else ``mps`` if available, else ``cpu``.
    Asking for an accelerator that is not there raises ``ValueError`` naming what is available.
    """
    if isinstance(name, torch.device):
        return name
    name = "auto" if name is None else str(name).strip().lower()
    available = ["cpu"]
    if torch.cuda.is_available():
        available += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        available.append("mps")
    if name == "auto":
        return torch.device("cuda" if "cuda" in available else "mps" if "mps" in available else "cpu")
    valid_form = name in ("cpu", "cuda", "mps") or (name.startswith("cuda:") and name[5:].isdigit())
    if not valid_form:
        raise ValueError(f"Unknown device {name!r}. Valid choices: {', '.join(DEVICE_CHOICES)}.")
    if name not in available:
        raise ValueError(
            f"Device {name!r} is not available on this machine. Available: {', '.join(available)} "
            f"(or 'auto' to pick the best of them)."
        )
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) so a run is reproducible; return a seeded CPU generator.

    Bit-exact reproducibility also needs the same device, library versions and thread count; on the CPU the
    course's smoke tests rely on it.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    return torch.Generator().manual_seed(seed)


AMP_CHOICES = (False, True, "bf16", "fp16")


def amp_dtype(device: torch.device, amp: bool | str | torch.dtype = True) -> torch.dtype | None:
    """The reduced precision of mixed precision ``amp`` on ``device``, or None for full precision.

    ``amp=True``: bfloat16 on GPUs that support it, else float16 (with a gradient scaler, see ``training.Run``);
    float16 on MPS; None on the CPU, where autocast rarely pays. ``"bf16"`` / ``"fp16"`` (or the dtypes) ask for that
    precision on any device, the CPU included: how the tests exercise the mixed-precision path without a GPU.
    ``False``: None.
    """
    if amp is False or amp is None:
        return None
    if amp in ("bf16", "bfloat16", torch.bfloat16):
        return torch.bfloat16
    if amp in ("fp16", "float16", torch.float16):
        return torch.float16
    if amp is not True:
        raise ValueError(f"Unknown mixed-precision setting {amp!r}. Valid choices: "
                         + ", ".join(map(repr, AMP_CHOICES)))
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


def autocast(device: torch.device, enabled: bool | str | torch.dtype = True):
    """``torch.autocast`` on ``device`` in the precision ``amp_dtype(device, enabled)``, or a no-op context when
    that is None (full precision)."""
    dtype = amp_dtype(device, enabled)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def count_parameters(module: torch.nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
