"""Training plumbing that every chapter reuses, so that each notebook can show only its GAN update step.

The pieces:

- ``Run``: progress bar, loss history, live plot, atomic checkpoints with resume (models, optimisers, gradient
  scalers, step, history, RNG states and any attached object such as the batch iterator), detection of
  diverged (NaN / inf) losses, optional mixed precision.
- ``Batches``: an endless, seeded, resumable stream of mini-batches.
- ``EMA``: an exponential moving average of a generator's weights (Karras et al., 2018; Brock et al., 2018),
  built on ``torch.optim.swa_utils.AveragedModel``.

A chapter's loop reads::

    run = Run("03_dcgan", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, config=config, device=device)
    batches = run.attach(batches=Batches(dataset, BATCH_SIZE, seed=SEED, device=device))
    for step in run.steps(STEPS):
        x, _ = batches.next()
        ...                                   # the paper's update, written out in the notebook
        run.update("D", loss_D)               # zero_grad -> backward -> step
        run.log(loss_D=loss_D, loss_G=loss_G)
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from . import paths
from .utils import amp_dtype, autocast

CHECKPOINT_FORMAT = 1


class TrainingDiverged(RuntimeError):
    """A logged loss became NaN or infinite. The last good checkpoint is kept."""


ADVICE = (
    "What to try: lower the learning rates (e.g. halve them); check that the data is scaled to [-1, 1]; "
    "make the discriminator weaker or use the chapter's stabiliser (gradient penalty, spectral norm); "
    "turn mixed precision off (AMP=False). Re-running the training cell resumes from the last good checkpoint."
)


class History:
    """Logged scalars over training: for each key, the steps at which it was logged and its values."""

    def __init__(self):
        self._data: dict[str, tuple[list[int], list[float]]] = {}

    def append(self, step: int, key: str, value: float):
        steps, values = self._data.setdefault(key, ([], []))
        steps.append(int(step))
        values.append(float(value))

    def keys(self):
        return list(self._data)

    def steps(self, key: str) -> list[int]:
        return self._data[key][0]

    def values(self, key: str) -> list[float]:
        return self._data[key][1]

    def last(self, key: str, default=None):
        return self._data[key][1][-1] if key in self._data and self._data[key][1] else default

    def mean_last(self, key: str, n: int = 50) -> float:
        """Mean of the last ``n`` values of ``key`` (a less noisy reading than the last value)."""
        values = self.values(key)[-n:]
        return sum(values) / len(values)

    def __contains__(self, key):
        return key in self._data

    def __len__(self):
        return len(self._data)

    def as_dict(self) -> dict[str, tuple[list[int], list[float]]]:
        return {k: (list(s), list(v)) for k, (s, v) in self._data.items()}

    def state_dict(self) -> dict:
        return {k: {"steps": list(s), "values": list(v)} for k, (s, v) in self._data.items()}

    def load_state_dict(self, state: dict):
        self._data = {k: (list(d["steps"]), list(d["values"])) for k, d in state.items()}


class Batches:
    """An endless stream of shuffled mini-batches, seeded and resumable.

    Epoch ``e`` visits the dataset in the order of a permutation drawn from ``torch.Generator(seed + e)``;
    the state (epoch, position) goes into the run's checkpoint, so a resumed run sees exactly the batches
    an uninterrupted one would have. Datasets with a vectorised ``get_batch(index)`` (the course's embedded
    datasets) are sliced in one go; any other dataset is read item by item and collated.
    """

    def __init__(self, dataset, batch_size: int, seed: int = 0, device: torch.device | str = "cpu"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(dataset) < batch_size:
            raise ValueError(f"batch_size={batch_size} is larger than the dataset ({len(dataset)} items)")
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.device = torch.device(device)
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed + epoch))

    def next(self):
        """The next batch, as the dataset's tuple (e.g. ``(images, labels)``) moved to ``device``."""
        if self.position + self.batch_size > len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        index = self._order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        if hasattr(self.dataset, "get_batch"):
            batch = self.dataset.get_batch(index)
        else:
            batch = torch.utils.data.default_collate([self.dataset[int(i)] for i in index])
        return tuple(t.to(self.device, non_blocking=True) if torch.is_tensor(t) else t for t in batch)

    __next__ = next

    def __iter__(self):
        return self

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict):
        self.seed, self.batch_size = state["seed"], state["batch_size"]
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._permutation(self.epoch)


class EMA(AveragedModel):
    """Exponential moving average of a model's weights: theta_ema <- decay * theta_ema + (1 - decay) * theta.

    Sampling from the averaged generator gives smoother, better samples than the raw weights (used by
    Karras et al. 2018 and BigGAN). Buffers (e.g. batch-norm statistics) are averaged too. Call ``update()``
    after each generator step; use the EMA itself (or ``.module``) to sample.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        super().__init__(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay = decay
        self._source = [model]  # a list, so the source is not registered (and saved) twice

    @torch.no_grad()
    def update(self):
        self.update_parameters(self._source[0])


def _rng_state() -> dict:
    numpy_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "pos": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict):
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj, path: Path):
    """``torch.save`` to a temporary file in the same directory, flush it to disk, then rename over ``path``.

    A crash or an interrupted kernel at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonable(config: dict | None) -> dict:
    return json.loads(json.dumps(config or {}, default=str, sort_keys=True))


class Run:
    """One training run: its directory, checkpoint, history, progress bar and live view.

    Args:
        name: directory name under ``gan_course.paths.runs_dir()`` (add ``-smoke`` for smoke runs).
        models: ``{"G": G, "D": D, ...}``: everything whose weights must be saved (an ``EMA`` too).
        optimizers: ``{"G": opt_G, "D": opt_D}``: the names used by ``update``.
        config: the hyper-parameters that define the run. A checkpoint made with another config is moved
            aside (kept, never deleted) and training starts afresh.
        device: where the models live (for loading checkpoints and mixed precision).
        amp: use mixed precision (bfloat16/float16 autocast, with a gradient scaler for float16) on GPUs.
        resume: load the checkpoint in the run directory if there is one.
        checkpoint_every: save every this many steps (and every ``checkpoint_seconds``, and at the end).
        live: show the live view (default: only inside a notebook).
        progress: show a tqdm progress bar.
    """

    def __init__(self, name: str, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 *, config: dict | None = None, device: torch.device | str = "cpu", amp: bool = False,
                 resume: bool = True, checkpoint_every: int = 500, checkpoint_seconds: float = 120.0,
                 root: str | Path | None = None, live: bool | None = None, progress: bool = True):
        from .viz import LiveView

        self.name = name
        self.models, self.optimizers = dict(models), dict(optimizers)
        self.config = _jsonable(config)
        self.device = torch.device(device)
        self.amp = bool(amp) and amp_dtype(self.device) is not None
        use_scaler = self.amp and amp_dtype(self.device) == torch.float16 and self.device.type == "cuda"
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=use_scaler) for k in self.optimizers}
        self.dir = Path(root) if root is not None else paths.runs_dir() / name
        self.checkpoint_path = self.dir / "checkpoint.pt"
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self.progress = progress
        self.step, self.total, self.elapsed = 0, None, 0.0
        self.history = History()
        self.view = LiveView(title=name, enabled=live)
        self._attached: dict = {}
        self._pending_attached: dict = {}
        self._pending_rng: dict | None = None
        self._in_body = False
        self.resumed = False
        if resume and self.checkpoint_path.exists():
            self._load()

    # ------------------------------------------------------------------ checkpoints
    def _load(self):
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        if state.get("config") != self.config or set(state["models"]) != set(self.models):
            moved = self.dir.with_name(f"{self.dir.name}.{time.strftime('%Y%m%d-%H%M%S')}")
            self.dir.rename(moved)
            print(f"[{self.name}] The checkpoint in {self.dir} was made with another configuration; "
                  f"it was moved to {moved} (nothing is lost) and training starts afresh.")
            return
        for key, module in self.models.items():
            module.load_state_dict(state["models"][key])
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
        for key, scaler in self.scalers.items():
            if key in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][key])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.history.load_state_dict(state["history"])
        self._pending_attached = state.get("attached", {})
        self._pending_rng = state["rng"]
        self.resumed = True
        print(f"[{self.name}] Resumed from {self.checkpoint_path} at step {self.step}.")

    def save(self):
        """Write the checkpoint atomically (see ``atomic_save``).

        Called inside the loop body (after the step's updates), the current step counts as done, so a resumed
        run continues with the next one.
        """
        state = {
            "format": CHECKPOINT_FORMAT,
            "name": self.name,
            "step": self.step + 1 if self._in_body else self.step,
            "elapsed": self.elapsed,
            "config": self.config,
            "models": {k: m.state_dict() for k, m in self.models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items() if s.is_enabled()},
            "history": self.history.state_dict(),
            "rng": _rng_state(),
            "attached": {k: obj.state_dict() for k, obj in self._attached.items()},
        }
        atomic_save(state, self.checkpoint_path)
        self._last_save = (self.step, time.monotonic())

    def attach(self, **objects):
        """Checkpoint these objects too (anything with ``state_dict``/``load_state_dict``, e.g. ``Batches``).

        Returns the object when one is given, so ``batches = run.attach(batches=Batches(...))`` reads well.
        """
        for key, obj in objects.items():
            self._attached[key] = obj
            if key in self._pending_attached:
                obj.load_state_dict(self._pending_attached.pop(key))
        return next(iter(objects.values())) if len(objects) == 1 else None

    # ------------------------------------------------------------------ the loop
    def steps(self, total: int):
        """Yield the step numbers from the current step up to ``total`` with a progress bar.

        Saves a checkpoint every ``checkpoint_every`` steps / ``checkpoint_seconds`` and when the loop ends.
        If a resumed run is already complete, says so and yields nothing.
        """
        if total < 0:
            raise ValueError(f"total steps must be >= 0, got {total}")
        self.total = total
        if self._pending_rng is not None:
            _set_rng_state(self._pending_rng)
            self._pending_rng = None
        if self.step >= total:
            if self.resumed:
                print(f"[{self.name}] Already trained for {self.step} steps (checkpoint in {self.dir}); "
                      f"nothing to do. Delete that directory or pass resume=False to train again.")
            return
        self._last_save = (self.step, time.monotonic())
        bar = tqdm(total=total, initial=self.step, desc=self.name, disable=not self.progress,
                   dynamic_ncols=True, mininterval=0.5)
        start = time.monotonic()
        try:
            while self.step < total:
                self._in_body = True
                yield self.step
                self._in_body = False
                self.step += 1
                now = time.monotonic()
                self.elapsed += now - start
                start = now
                bar.update(1)
                if self.step % 10 == 0 or self.step == total:
                    bar.set_postfix({k: f"{self.history.last(k):.3f}" for k in self.history.keys()[:4]},
                                    refresh=False)
                due = self.checkpoint_every and self.step % self.checkpoint_every == 0
                late = now - self._last_save[1] > self.checkpoint_seconds
                if self.step == total or due or late:
                    self.save()
        finally:
            self._in_body = False
            bar.close()

    def every(self, n: int) -> bool:
        """True on every ``n``-th step (counting from 1) and on the last step of the loop."""
        return bool(n) and ((self.step + 1) % n == 0 or (self.total is not None and self.step + 1 == self.total))

    def autocast(self):
        """Mixed-precision context for the forward passes (a no-op on the CPU or with ``amp=False``)."""
        return autocast(self.device, self.amp)

    def update(self, name: str, loss: torch.Tensor, retain_graph: bool = False):
        """One optimiser step on ``loss``: ``zero_grad()``, ``loss.backward()``, ``optimizer.step()``.

        Under float16 mixed precision the loss is scaled before ``backward`` and the step is skipped when
        gradients overflow (``torch.amp.GradScaler``); otherwise this is exactly the three plain lines.
        """
        if name not in self.optimizers:
            raise ValueError(f"No optimiser named {name!r}; this run has: {', '.join(self.optimizers)}")
        optimizer, scaler = self.optimizers[name], self.scalers[name]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward(retain_graph=retain_graph)
        scaler.step(optimizer)
        scaler.update()

    def log(self, **scalars):
        """Record scalars (numbers or 0-d tensors) at the current step; stop on NaN or infinity.

        Raises ``TrainingDiverged`` with what to try; the last checkpoint (before divergence) is kept.
        """
        for key, value in scalars.items():
            value = float(value.detach()) if torch.is_tensor(value) else float(value)
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"[{self.name}] {key} became {value} at step {self.step}: training diverged. {ADVICE} "
                    f"(last good checkpoint: {self.checkpoint_path if self.checkpoint_path.exists() else 'none yet'})"
                )
            self.history.append(self.step, key, value)

    def show(self, samples: torch.Tensor | None = None, keys=None):
        """Redraw the live view (loss curves and ``samples``) and save the sample grid to the run directory."""
        if samples is not None:
            from torchvision.utils import save_image

            from .viz import image_grid

            self.dir.mkdir(parents=True, exist_ok=True)
            save_image(image_grid(samples), self.dir / "samples.png")
        return self.view.update(self.history, samples, self.step, keys=keys)

    def images_per_second(self, batch_size: int) -> float:
        """Training throughput over the whole run so far (generator samples per second of training)."""
        return self.step * batch_size / self.elapsed if self.elapsed > 0 else float("nan")


def set_requires_grad(module: nn.Module, flag: bool):
    """Freeze (``False``) or unfreeze (``True``) every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(flag)
