"""Longer runs of the course's own notebooks, shipped as small generator checkpoints.

A chapter's full setting trains for the few minutes a laptop CPU affords. For the chapters whose models need far
more steps than that to draw every class (07 SAGAN, 08 BigGAN), the course ships the generator of *the same
notebook* trained longer: same code, same seed, same defaults, except the parameters listed in ``RECIPES``
(more steps, fewer evaluations, the comparison arms shortened because only the main run is kept). The notebook
trains its own run as usual and then loads this one beside it, so a learner sees what the same model becomes with
more compute, and the explorers have a model worth exploring.

Nothing is downloaded: the files are in ``gan_course/pretrained/weights/`` (about 0.5 MB each), and

    python -m gan_course.pretrained 07_sagan

reproduces one (it executes ``notebooks/07_sagan.ipynb`` with the recipe's parameters in a separate build
directory, then exports the run's generator; about an hour on one CPU thread). ``weights/README.md`` lists what
is shipped: steps, training time, threads, the exact command.

Each file holds ``{"state_dict": ..., "meta": {...}}``: the generator's weights in fp16 (with its spectral-norm
vectors; the notebooks measure the loaded model, so every number they print is of these weights) and the run's
metadata: the notebook's configuration, the recipe, steps, training seconds, torch version. ``weights/SHA256SUMS``
records each file's SHA-256 (written by ``export``, checked on load: ``gan_course.checksums``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn

from .. import checksums, files, paths

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

RECIPES: dict[str, dict] = {
    "07_sagan": {
        "model": "G",
        "parameters": {"STEPS": 24000, "THREADS": 1, "EVAL_EVERY": 2000, "EXPERIMENT_STEPS": 20},
    },
    "08_biggan": {
        "model": "G_ema",
        "parameters": {"STEPS": 12000, "EMA_START": 6000, "NO_ORTHO_STEPS": 20, "SPECTRA_EVERY": 200,
                       "COLLAPSE_STEPS": 10},
    },
}


def _recipe(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"No recipe for {name!r}. Valid names: {', '.join(sorted(RECIPES))}.")
    return RECIPES[name]


def available() -> list[str]:
    """Runs with a shipped checkpoint (a file in ``gan_course/pretrained/weights/``)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def weights_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.pt"


def _read(name: str) -> dict:
    """The shipped file ``name``, after checking its SHA-256 against ``weights/SHA256SUMS``."""
    if name not in available():
        raise ValueError(f"No shipped checkpoint {name!r}. Available: {', '.join(available()) or 'none'} "
                         f"(recipes: {', '.join(sorted(RECIPES))}).")
    path, recipe = weights_path(name), f"python -m gan_course.pretrained {name}"
    checksums.verify(path, recipe)
    return files.load(path, fix=checksums.restore_hint(path, recipe), map_location="cpu")


def meta(name: str) -> dict:
    """The metadata of a shipped checkpoint (configuration, recipe, steps, training time, command)."""
    return _read(name)["meta"]


def _mismatch(blob: dict, model: nn.Module, dataset: str, data_options: dict | None) -> str | None:
    """Why ``blob`` cannot be loaded into ``model`` for this data, or None when it can."""
    config = blob["meta"]["config"]
    wanted = {"dataset": dataset, **(data_options or {})}
    shipped = {k: config.get(k) for k in wanted}
    if shipped != wanted:
        return f"it was trained on {shipped}, this notebook uses {wanted}"
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in blob["state_dict"].items()}
    if mine != theirs:
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        return (f"its generator has another architecture ({len(differ)} tensors differ, e.g. {differ[0]}: shipped "
                f"{theirs.get(differ[0])}, here {mine.get(differ[0])}); the shipped run uses the notebook's default "
                f"widths and sizes")
    return None


def load(name: str, model: nn.Module, *, dataset: str, data_options: dict | None = None,
         required: bool = True) -> dict | None:
    """Load the shipped generator ``name`` (e.g. ``"07_sagan"``) into ``model``; return its metadata.

    The checkpoint is used only for the data it was trained on (``dataset`` and ``data_options``, e.g.
    ``{"layout": "centred"}``) and an identically shaped model. Otherwise: ``ValueError`` naming the difference
    when ``required``, else a printed explanation and ``None`` (a notebook whose settings were changed carries on
    without the comparison; so does one whose recipe has not been exported yet). A name that is neither shipped
    nor a recipe always raises ``ValueError`` listing the shipped ones.
    """
    if not required and name in RECIPES and name not in available():   # a recipe whose run is not exported yet
        print(f"No shipped longer run {name!r} (make it with: python -m gan_course.pretrained {name}). "
              f"Skipping the comparison with it.")
        return None
    blob = _read(name)
    reason = _mismatch(blob, model, dataset, data_options)
    if reason is not None:
        message = f"The shipped longer run {name!r} does not fit here: {reason}."
        if required:
            raise ValueError(message)
        print(message + " Skipping the comparison with it.")
        return None
    model.load_state_dict(blob["state_dict"])   # copied into the model's own dtype (fp16 -> fp32) and device
    return dict(blob["meta"])


def export(name: str, build: Path, directory: Path = WEIGHTS_DIR) -> Path:
    """Write ``<directory>/<name>.pt`` (default: the shipped ``weights/``) from the run in
    ``<build>/runs/<name>/checkpoint.pt``, record its SHA-256 in ``<directory>/SHA256SUMS`` and rewrite that
    directory's README table."""
    recipe = _recipe(name)
    checkpoint = Path(build) / "runs" / name / "checkpoint.pt"
    state = files.load(checkpoint, fix=f"Train the run again: python -m gan_course.pretrained {name} --build {build}",
                       map_location="cpu")
    weights = state["models"][recipe["model"]]
    prefix = "module."                       # an EMA (torch AveragedModel) keeps the averaged model as .module
    if any(k.startswith(prefix) for k in weights):
        weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    flags = " ".join(f"-p {k} {v}" for k, v in recipe["parameters"].items())
    meta = {"name": name, "model": recipe["model"], "steps": int(state["step"]),
            "train_seconds": round(float(state["elapsed"]), 1), "config": state["config"],
            "parameters": dict(recipe["parameters"]), "threads": 1, "torch_version": str(torch.__version__),
            "trained": time.strftime("%Y-%m-%d"), "command": f"python -m gan_course.pretrained {name}",
            "papermill": f"OMP_NUM_THREADS=1 papermill notebooks/{name}.ipynb OUT.ipynb {flags}"}
    path = Path(directory) / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_save({"state_dict": {k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
                       "meta": meta}, path)
    checksums.record(path)
    write_readme(directory)
    return path


def write_readme(directory: Path = WEIGHTS_DIR) -> Path:
    """Rewrite ``weights/README.md`` from the metadata of every shipped file."""
    rows = []
    for p in sorted(Path(directory).glob("*.pt")):
        m = torch.load(p, map_location="cpu", weights_only=True)["meta"]
        data = ", ".join(f"{k}={m['config'][k]}" for k in ("dataset", "layout") if k in m["config"])
        rows.append(f"| `{p.name}` | `{m['model']}` of `notebooks/{m['name']}.ipynb` | {data} | {m['steps']:,} | "
                    f"{m['train_seconds'] / 60:.0f} min on {m['threads']} thread | {p.stat().st_size / 1024:.0f} KB "
                    f"| `{m['command']}` |")
    text = "\n".join([
        "# Longer runs of the course's notebooks",
        "",
        "Generators trained by the course's own notebooks with more steps than a chapter's full setting affords",
        "(see `gan_course/pretrained/__init__.py`). Each notebook trains its own run and loads the file beside it.",
        "The command executes the notebook with the parameters recorded in the file's `meta` (and in `RECIPES`) in",
        "a separate build directory and exports the generator; runs are deterministic under their seed for a given",
        "machine and thread count. This table is written by that command, and so is `SHA256SUMS` (the SHA-256 of",
        "each file, checked when a notebook loads it).",
        "",
        "| file | generator | data | steps | training | size | command |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    path = Path(directory) / "README.md"
    path.write_text(text)
    return path


def reproduce(name: str, build: Path | None = None) -> Path:
    """Execute ``notebooks/<name>.ipynb`` with the recipe's parameters (one thread), then ``export`` its run."""
    from ..run_notebooks import execute

    root = paths.project_root()
    if root is None:
        raise RuntimeError("Reproducing a checkpoint needs the repository's notebooks/ (run it inside a clone).")
    build = Path(build or root / "build" / "pretrained")
    os.environ.update(GAN_COURSE_BUILD=str(build), OMP_NUM_THREADS="1")   # the kernel inherits both
    execute(root / "notebooks" / f"{name}.ipynb", build, smoke=False, html=False,
            parameters=_recipe(name)["parameters"])
    return export(name, build)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--build", type=Path, default=None,
                        help="build directory of the long run (default build/pretrained)")
    parser.add_argument("--export-only", action="store_true",
                        help="only export the finished run found in --build (do not train)")
    args = parser.parse_args(argv)
    if args.export_only:
        if args.build is None:
            parser.error("--export-only needs --build")
        path = export(args.name, args.build)
    else:
        path = reproduce(args.name, args.build)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0

