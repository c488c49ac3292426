"""Where the course keeps things: the dataset cache, training runs and measured results.

Inside a clone of the repository everything lives beside the notebooks (``data/`` and ``build/``); an installed
copy without the repository falls back to ``~/.cache/gan_course``. Environment variables override both:

- ``GAN_COURSE_CACHE``: the cache of the embedded datasets (default ``<repo>/data``),
- ``GAN_COURSE_BUILD``: runs (checkpoints) and results (default ``<repo>/build``),
- ``GAN_COURSE_DATA``: where real datasets (MNIST, CIFAR-10, ...) are looked for (see ``gan_course.data``).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path | None:
    """The repository clone this package was imported from, or None for an installed copy."""
    root = _PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").exists() and (root / "notebooks").is_dir() else None


def _default(sub: str) -> Path:
    root = project_root()
    return root / sub if root is not None else Path.home() / ".cache" / "gan_course" / sub


def cache_dir() -> Path:
    """Directory where the embedded datasets are cached after their first build."""
    return Path(os.environ.get("GAN_COURSE_CACHE") or _default("data"))


def build_dir() -> Path:
    """Directory for everything the course produces: executed notebooks, runs, results."""
    return Path(os.environ.get("GAN_COURSE_BUILD") or _default("build"))


def runs_dir() -> Path:
    """Directory holding one sub-directory (checkpoint + history) per training run."""
    return build_dir() / "runs"


def results_dir() -> Path:
    """Directory holding one JSON file of measured numbers per chapter (collected by benchmarks/run.py)."""
    return build_dir() / "results"


def git_commit() -> str | None:
    """The short commit of the clone this package runs from, with ``+changes`` when tracked files differ from it;
    None outside a git clone (an installed copy) or without git."""
    import subprocess

    root = project_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+changes" if dirty else "")


def record_result(chapter: str, **numbers) -> Path:
    """Write the measured numbers of a chapter's run to ``build/results/<chapter>.json`` (atomically).

    Values may be Python numbers, strings or 0-d tensors. The machine, torch version, 1-minute load average, time
    and the commit of the code (``git_commit``) are added, so a results table can say where, under what load and
    with which code each number was measured.
    """
    clean = {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in numbers.items()}
    commit = git_commit()
    if commit is not None:
        clean["_commit"] = commit
    clean["_machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores" + (
        f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    )
    clean["_torch"] = torch.__version__
    if hasattr(os, "getloadavg"):
        clean["_load"] = round(os.getloadavg()[0], 2)
    clean["_recorded"] = time.strftime("%Y-%m-%d %H:%M")
    path = results_dir() / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(clean, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path


def real_data_root(explicit: str | os.PathLike | None = None) -> str | None:
    """Where real datasets (e.g. facades pairs) are read from: ``explicit`` (a notebook's ``DATA_ROOT``), else
    ``$GAN_COURSE_DATA``, else the course's shared copies beside the project (``../shared/datasets``), else None."""
    if explicit:
        return str(explicit)
    if os.environ.get("GAN_COURSE_DATA"):
        return os.environ["GAN_COURSE_DATA"]
    root = project_root()
    shared = root.parent / "shared" / "datasets" if root is not None else None
    return str(shared) if shared is not None and shared.is_dir() else None
