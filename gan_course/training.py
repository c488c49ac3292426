"""Training plumbing that every chapter reuses, so that each notebook can show only its GAN update step.

The pieces:

- ``Run``: progress bar, loss history, live plot, atomic checkpoints with resume (models, optimisers, gradient
  scalers, step, history, RNG states and any attached object such as the batch iterator), detection of
  diverged (NaN / inf) losses with a rollback to the last good checkpoint, optional mixed precision.
  Nothing a learner trained is deleted or overwritten: a checkpoint that does not fit the run (another config,
  other tensor shapes or optimiser settings, a damaged file) is moved aside with the reason, and found again
  when the learner switches back to its config.
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

import errno
import fnmatch
import itertools
import json
import math
import random
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from . import distributed, paths
from .files import DamagedFileError, atomic_save, load, remove_stale_temps
from .utils import amp_dtype, autocast

CHECKPOINT_FORMAT = 1


RESUMABLE = ("lr", "lr_*")
"""Config keys and optimiser hyper-parameters (``fnmatch`` patterns) that may change when an unfinished run resumes:
the learning rates, so that a diverging run can continue from its last good checkpoint with lower ones."""


class TrainingDiverged(RuntimeError):
    """A logged loss (or a weight) became NaN or infinite. The last good checkpoint was put back into the run."""


ADVICE = (
    "Other things to try: check that the data is scaled to [-1, 1]; make the discriminator weaker or use the "
    "chapter's stabiliser (gradient penalty, spectral norm); turn mixed precision off (AMP=False)."
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

    Under data-parallel training (``gan_course.distributed``) every rank draws the same permutation and takes its
    own shard of each global batch: with ``world_size`` N, step t's global batch is the next N x ``batch_size``
    indices, and rank r gets the r-th ``batch_size`` of them, so N ranks see exactly what one process with batch
    N x ``batch_size`` would. ``rank`` and ``world_size`` default to the process group's (0 and 1 outside one).
    """

    def __init__(self, dataset, batch_size: int, seed: int = 0, device: torch.device | str = "cpu",
                 rank: int | None = None, world_size: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.rank = distributed.rank() if rank is None else int(rank)
        self.world_size = distributed.world_size() if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in 0..{self.world_size - 1} for world_size={self.world_size}, got "
                             f"{self.rank}")
        if len(dataset) < batch_size * self.world_size:
            raise ValueError(f"batch_size={batch_size}" + (f" x {self.world_size} ranks" if self.world_size > 1
                                                           else "") + f" is larger than the dataset "
                             f"({len(dataset)} items)")
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.device = torch.device(device)
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed + epoch))

    def next(self):
        """The next batch, as the dataset's tuple (e.g. ``(images, labels)``) moved to ``device``."""
        step = self.batch_size * self.world_size                 # the global batch: every rank's shard
        if self.position + step > len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        start = self.position + self.rank * self.batch_size
        index = self._order[start:start + self.batch_size]
        self.position += step
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


def _jsonable(config: dict | None) -> dict:
    return json.loads(json.dumps(config or {}, default=str, sort_keys=True))


# ---------------------------------------------------------------------- does a checkpoint fit the live objects?
class _Absent:
    def __repr__(self):
        return "(absent)"


_ABSENT = _Absent()
_CHECKPOINT_KEYS = {"step", "elapsed", "models", "optimizers", "history", "rng"}


def _matches(key: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def _plain(value):
    """A hyper-parameter as a comparable, printable value (tuples and tensors become lists)."""
    if torch.is_tensor(value):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _shape(t: torch.Tensor) -> tuple:
    return tuple(t.shape)


def _config_differences(saved: dict, config: dict, resumable) -> tuple[list[str], list[tuple]]:
    """(problems, changes): differing config keys, those in ``resumable`` counted as changes."""
    problems, changes = [], []
    for key in sorted(set(saved) | set(config)):
        old, new = saved.get(key, _ABSENT), config.get(key, _ABSENT)
        if old == new:
            continue
        if _matches(key, resumable) and old is not _ABSENT and new is not _ABSENT:
            changes.append((f"config {key}", old, new))
        else:
            problems.append(f"config {key}: checkpoint {old!r} vs now {new!r}")
    return problems, changes


def _module_differences(saved: dict, models: dict[str, nn.Module]) -> list[str]:
    """Missing or extra state_dict entries and differing tensor shapes, e.g. ``G.fc.weight: (8, 4) vs (16, 4)``."""
    if set(saved) != set(models):
        return [f"models: checkpoint has {', '.join(sorted(saved))}, now {', '.join(sorted(models))}"]
    problems = []
    for name, module in models.items():
        live, old = module.state_dict(), saved[name]
        for key, t in live.items():
            if key in old and torch.is_tensor(t) and torch.is_tensor(old[key]) and _shape(t) != _shape(old[key]):
                problems.append(f"{name}.{key}: checkpoint {_shape(old[key])} vs now {_shape(t)}")
        problems += [f"{name}.{key}: in the checkpoint, not in the model now" for key in old if key not in live]
        problems += [f"{name}.{key}: in the model now, not in the checkpoint" for key in live if key not in old]
    return problems


def _optimizer_differences(saved: dict, optimizers: dict, types: dict | None, resumable) -> tuple[list, list]:
    """(problems, changes) between saved and live optimisers: class, parameter groups and counts, hyper-parameters
    (lr, betas, eps, weight_decay, ...; those in ``resumable`` count as changes) and the shapes of their state."""
    if set(saved) != set(optimizers):
        return [f"optimisers: checkpoint has {', '.join(sorted(saved))}, now {', '.join(sorted(optimizers))}"], []
    problems, changes = [], []
    for name, opt in optimizers.items():
        old_groups, kind = saved[name]["param_groups"], type(opt).__name__
        if types and types.get(name, kind) != kind:
            problems.append(f"opt {name}: checkpoint {types[name]} vs now {kind}")
            continue
        if len(old_groups) != len(opt.param_groups):
            problems.append(f"opt {name}: checkpoint {len(old_groups)} parameter groups vs now {len(opt.param_groups)}")
            continue
        for i, (old, new) in enumerate(zip(old_groups, opt.param_groups, strict=True)):
            where = f"opt {name}" + (f" group {i}" if len(old_groups) > 1 else "")
            old_keys, new_keys = set(old) - {"params"}, set(new) - {"params"}
            if len(old["params"]) != len(new["params"]):
                problems.append(f"{where}: checkpoint {len(old['params'])} parameters vs now {len(new['params'])}")
            elif not types and old_keys != new_keys:  # an older checkpoint, without the optimiser's class
                problems.append(f"{where}: checkpoint hyper-parameters {sorted(old_keys)} vs now {sorted(new_keys)}")
            for key in sorted(old_keys & new_keys):
                a, b = _plain(old[key]), _plain(new[key])
                if a != b:
                    (changes.append((f"{where} {key}", a, b)) if _matches(key, resumable)
                     else problems.append(f"{where} {key}: checkpoint {a!r} vs now {b!r}"))
        params = [p for group in opt.param_groups for p in group["params"]]
        for index, state in saved[name].get("state", {}).items():
            for key, t in state.items():
                if torch.is_tensor(t) and t.dim() > 0 and index < len(params) and _shape(t) != _shape(params[index]):
                    problems.append(f"opt {name} {key} of parameter {index}: checkpoint {_shape(t)} vs now "
                                    f"{_shape(params[index])}")
                    break
    return problems, changes


def _unfinished(state: dict) -> bool:
    return state.get("total") is not None and state["step"] < state["total"]


def _live_hyperparameters(optimizers: dict, patterns) -> dict:
    """The optimisers' current values of the resumable hyper-parameters, per parameter group."""
    return {name: [{k: v for k, v in group.items() if k != "params" and _matches(k, patterns)}
                   for group in opt.param_groups] for name, opt in optimizers.items()}


def _set_hyperparameters(optimizers: dict, values: dict):
    for name, groups in values.items():
        for group, kept in zip(optimizers[name].param_groups, groups, strict=True):
            group.update(kept)


def _nonfinite(models: dict[str, nn.Module]) -> list[str]:
    """Names of the floating-point weights and buffers holding a NaN or an infinity."""
    return [f"{name}.{key}" for name, module in models.items() for key, t in module.state_dict().items()
            if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all())]


def _first(problems: list[str], n: int = 5, sep: str = "; ") -> str:
    more = f"{sep}and {len(problems) - n} more" if len(problems) > n else ""
    return sep.join(problems[:n]) + more


def _and(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _changed(changes: list[tuple]) -> str:
    return "; ".join(f"{what} {old!r} -> {new!r}" for what, old, new in changes)


class Run:
    """One training run: its directory, checkpoint, history, progress bar and live view.

    What it promises about a learner's runs (``docs/DEVELOPING.md``, "What the course promises about your runs"):

    - Nothing trained is deleted or overwritten. A checkpoint that does not fit the run is moved aside to
      ``<name>.<date>-<time>`` with the reason printed (the first differences, e.g.
      ``G.fc.weight: checkpoint (8, 4) vs now (16, 4)``): another ``config``, other tensor shapes, another
      optimiser or other optimiser hyper-parameters. A damaged (empty, truncated, garbage) checkpoint is moved
      to ``<name>.<date>-<time>-damaged``. ``resume=False`` moves the existing run aside too. Opening a run
      whose config matches a run moved aside earlier brings that one back and resumes it.
    - Learning rates (``resumable``) may change while a run is unfinished: it resumes from its checkpoint with
      the optimisers' current values, and records the change in ``run.changes`` (saved in the checkpoint).
    - On a NaN or infinite loss (``log``) or weight (``save``), the last good checkpoint is put back into the
      models, optimisers, scalers and attached objects before ``TrainingDiverged`` is raised, so re-running the
      training loop continues from there; no checkpoint ever holds non-finite weights.
    - Checkpoints are written atomically; a full disk raises ``DiskFullError`` and leaves the previous one intact;
      temporary files left by a killed save are removed when the run is next opened.

    Args:
        name: directory name under ``gan_course.paths.runs_dir()`` (add ``-smoke`` for smoke runs).
        models: ``{"G": G, "D": D, ...}``: everything whose weights must be saved (an ``EMA`` too).
        optimizers: ``{"G": opt_G, "D": opt_D}``: the names used by ``update``.
        config: the hyper-parameters that define the run (everything that shapes the networks, the data and
            the objective). A checkpoint made with another config is moved aside and training starts afresh.
        device: where the models live (for loading checkpoints and mixed precision).
        amp: use mixed precision (bfloat16/float16 autocast, with a gradient scaler for float16) on GPUs;
            ``"bf16"`` or ``"fp16"`` force that precision on any device, the CPU included
            (``gan_course.utils.amp_dtype``).
        resume: load the checkpoint in the run directory if there is one; ``False`` moves it aside.
        resumable: config keys and optimiser hyper-parameters (``fnmatch`` patterns) that may differ from an
            unfinished run's checkpoint without starting a new run; default ``RESUMABLE`` (the learning rates).
        checkpoint_every: save every this many steps (and every ``checkpoint_seconds``, and at the end).
        live: show the live view (default: only inside a notebook).
        progress: show a tqdm progress bar.

    Under data-parallel training (``gan_course.distributed``, ``torchrun``) every rank opens the same run: rank 0
    alone writes (checkpoints, samples) and prints, the others resume from what it wrote; all start from rank 0's
    weights; ``update`` averages the gradients over the ranks before each optimiser step, ``log`` the logged
    values (so a NaN on any rank stops all of them), and each rank draws its own noise. A checkpoint does not
    depend on the number of ranks: one written by N processes resumes in one, and the other way round.
    """

    def __init__(self, name: str, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 *, config: dict | None = None, device: torch.device | str = "cpu", amp: bool = False,
                 resume: bool = True, resumable=RESUMABLE, checkpoint_every: int = 500,
                 checkpoint_seconds: float = 120.0, root: str | Path | None = None, live: bool | None = None,
                 progress: bool = True):
        from .viz import LiveView

        self.main = distributed.is_main()
        self._distributed = distributed.is_distributed()
        self.name = name
        self.models, self.optimizers = dict(models), dict(optimizers)
        self.config = _jsonable(config)
        self.resumable = (resumable,) if isinstance(resumable, str) else tuple(resumable)
        self.device = torch.device(device)
        self.amp_dtype = amp_dtype(self.device, amp)
        self.amp = self.amp_dtype is not None
        use_scaler = self.amp_dtype == torch.float16 and self.device.type == "cuda"
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=use_scaler) for k in self.optimizers}
        self.dir = Path(root) if root is not None else paths.runs_dir() / name
        self.checkpoint_path = self.dir / "checkpoint.pt"
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self.progress = progress and self.main
        self.step, self.total, self.elapsed = 0, None, 0.0
        self.history = History()
        self.changes: list[dict] = []  # resumable hyper-parameters changed on resume: {step, what, old, new}
        self.view = LiveView(title=name, enabled=live if self.main else False)
        self._attached: dict = {}
        self._pending_attached: dict = {}
        self._pending_rng: dict | None = None
        self._in_body = False
        self._loop = None
        self._saved_step: int | None = None  # the step of the checkpoint on disk
        self._poisoned: str | None = None  # set when a divergence left non-finite weights and nothing to restore
        self.resumed = False
        if distributed.is_distributed():
            if self.main:                           # rank 0 alone moves, restores or starts afresh ...
                self._open(resume)
            distributed.barrier()
            if not self.main:                       # ... the others load what it left, if it fits
                self._follow()
            distributed.broadcast_state(*self.models.values())   # every rank starts from rank 0's weights
        else:
            self._open(resume)

    def _follow(self):
        """(A rank other than 0.) Resume from the checkpoint rank 0 has just opened or kept, touching no file."""
        if self.checkpoint_path.exists():
            state = load(self.checkpoint_path, map_location=self.device, fix="")
            problems, changes = self._compare(state)
            if not problems:
                self._resume(state, changes)

    # ------------------------------------------------------------------ opening: resume, move aside, bring back
    def _say(self, message: str):
        if self.main:
            print(f"[{self.name}] {message}")

    def _open(self, resume: bool):
        removed = remove_stale_temps(self.dir)
        if removed:
            self._say(f"Removed {len(removed)} temporary file(s) left in {self.dir} by an interrupted save.")
        if not resume:
            if self.checkpoint_path.exists():
                moved = self._move_aside()
                self._say(f"resume=False: the earlier run in {self.dir} was moved to {moved} (nothing is lost); "
                          f"training starts afresh.")
            return
        found = self.checkpoint_path.exists()
        state = self._read_or_move_aside() if found else None
        if state is not None:
            problems, changes = self._compare(state)
            if not problems:
                return self._resume(state, changes)
            moved = self._move_aside()
            self._say(f"The checkpoint in {self.dir} does not fit this run ({_first(problems)}); it was moved to "
                      f"{moved} (nothing is lost).")
        aside = self._matching_moved_aside()
        if aside is None:
            if found:
                self._say("Training starts afresh.")
            return
        if self.dir.exists():  # a directory without a checkpoint (e.g. only samples.png)
            self._say(f"{self.dir} (no checkpoint) was moved to {self._move_aside()}.")
        aside.rename(self.dir)
        self._say(f"The run moved aside to {aside} matches this configuration: it was moved back to {self.dir}.")
        state = self._read_or_move_aside()
        if state is not None:
            self._resume(state, self._compare(state)[1])

    def _read_or_move_aside(self) -> dict | None:
        """The checkpoint, or None after moving a damaged one (and its directory) aside, kept as it is."""
        try:
            state = load(self.checkpoint_path, map_location=self.device, fix="")
            if not isinstance(state, dict) or not _CHECKPOINT_KEYS <= set(state):
                raise DamagedFileError(self.checkpoint_path, "not a checkpoint written by Run", "")
            return state
        except DamagedFileError as e:
            moved = self._move_aside(tag="-damaged")
            self._say(f"The checkpoint {e.path} cannot be read ({e.reason}). Its directory was moved to {moved} "
                      f"(kept unchanged).")
            return None

    def _compare(self, state: dict) -> tuple[list[str], list[tuple]]:
        """(problems, changes): why ``state`` cannot be resumed here, and the resumable hyper-parameters that
        differ (allowed only while the checkpoint's run is unfinished)."""
        problems, changes = _config_differences(state.get("config") or {}, self.config, self.resumable)
        problems += _module_differences(state["models"], self.models)
        opt_problems, opt_changes = _optimizer_differences(state["optimizers"], self.optimizers,
                                                           state.get("optimizer_types"), self.resumable)
        problems, changes = problems + opt_problems, changes + opt_changes
        if changes and not _unfinished(state):
            done = (f"finished its {state['step']} steps" if state.get("total") is not None
                    else "was written by an older version that does not record whether it finished")
            problems.append(f"{_changed(changes)}: learning rates may change only while a run is unfinished, and "
                            f"this one {done}")
        return problems, changes

    def _resume(self, state: dict, changes: list[tuple]):
        self._apply(state, keep=_live_hyperparameters(self.optimizers, self.resumable) if changes else None)
        self.changes = list(state.get("changes", []))
        self.changes += [dict(step=self.step, what=what, old=old, new=new) for what, old, new in changes]
        self.resumed = True
        note = (f" Continuing with the values you set now (learning rates may change on resume; recorded in "
                f"run.changes): {_changed(changes)}." if changes else "")
        self._say(f"Resumed from {self.checkpoint_path} at step {self.step}.{note}")

    def _apply(self, state: dict, keep: dict | None = None):
        """Load ``state`` into the models, optimisers, scalers, attached objects, step, history and (at the next
        ``steps``) RNGs; ``keep``: optimiser hyper-parameter values to set again afterwards."""
        for key, module in self.models.items():
            module.load_state_dict(state["models"][key])
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
        _set_hyperparameters(self.optimizers, keep or {})
        for key, scaler in self.scalers.items():
            if key in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][key])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.history.load_state_dict(state["history"])
        pending = dict(state.get("attached", {}))
        for key, obj in self._attached.items():
            if key in pending:
                obj.load_state_dict(pending.pop(key))
        self._pending_attached = pending
        self._pending_rng = state["rng"]
        self._saved_step = state["step"]

    def _move_aside(self, tag: str = "") -> Path:
        """Rename the run directory to ``<name>.<date>-<time>[-n]<tag>``, a name no other directory has."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in itertools.count(1):
            target = self.dir.with_name(f"{self.dir.name}.{stamp}{f'-{n}' if n > 1 else ''}{tag}")
            if target.exists():
                continue
            try:
                self.dir.rename(target)
                return target
            except OSError as e:  # another process took the name in between
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise

    def _matching_moved_aside(self) -> Path | None:
        """The newest run moved aside (not a damaged one) whose checkpoint fits this run, if any."""
        pattern = re.compile(re.escape(self.dir.name) + r"\.\d{8}-\d{6}(-\d+)?")
        if not self.dir.parent.is_dir():
            return None
        candidates = [d / "checkpoint.pt" for d in self.dir.parent.iterdir() if pattern.fullmatch(d.name)]
        candidates = sorted((c for c in candidates if c.is_file()), key=lambda c: c.stat().st_mtime, reverse=True)
        for checkpoint in candidates:
            try:
                state = load(checkpoint, map_location="cpu", mmap=True, fix="")
            except (DamagedFileError, RuntimeError, OSError):
                continue
            if isinstance(state, dict) and _CHECKPOINT_KEYS <= set(state) and not self._compare(state)[0]:
                remove_stale_temps(checkpoint.parent)
                return checkpoint.parent
        return None

    # ------------------------------------------------------------------ checkpoints
    def save(self):
        """Write the checkpoint atomically (see ``gan_course.files.atomic_save``).

        Called inside the loop body (after the step's updates), the current step counts as done, so a resumed
        run continues with the next one. Non-finite weights are never saved: the last good checkpoint is put
        back instead and ``TrainingDiverged`` raised. A full disk raises ``DiskFullError`` (previous checkpoint
        intact).
        """
        bad = _nonfinite(self.models)
        if bad:
            raise self._diverged(f"{_first(bad, 3, ', ')} became non-finite")
        if not self.main:                           # under data-parallel training rank 0 alone writes
            self._last_save, self._saved_step = (self.step, time.monotonic()), self.step + 1 if self._in_body else self.step
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "name": self.name,
            "step": self.step + 1 if self._in_body else self.step,
            "total": self.total,
            "elapsed": self.elapsed,
            "config": self.config,
            "models": {k: m.state_dict() for k, m in self.models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "optimizer_types": {k: type(o).__name__ for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items() if s.is_enabled()},
            "history": self.history.state_dict(),
            "changes": self.changes,
            "rng": _rng_state(),
            "attached": {k: obj.state_dict() for k, obj in self._attached.items()},
        }
        atomic_save(state, self.checkpoint_path)
        self._last_save, self._saved_step = (self.step, time.monotonic()), state["step"]

    def _diverged(self, what: str) -> TrainingDiverged:
        """Put the last good checkpoint back into everything the run trains, and say what was restored (or why
        nothing could be). Returns the ``TrainingDiverged`` to raise."""
        step, self._in_body = self.step, False
        head = f"[{self.name}] {what} at step {step}: training diverged."
        state, missing = self._last_good()
        if state is None:
            return self._nothing_restored(head, missing, step)
        self._apply(state, keep=_live_hyperparameters(self.optimizers, self.resumable))
        scalers = ["the gradient scalers"] if any(s.is_enabled() for s in self.scalers.values()) else []
        restored = _and([*self.models, "the optimisers", *scalers, *self._attached])
        if _matches("lr", self.resumable):
            lower = (f"lower the learning rates (e.g. halve them) and run the notebook again from its parameters "
                     f"cell: learning rates may change on resume, so the run continues from step {self.step} with "
                     f"the new ones (recorded in run.changes).")
        else:
            lower = "lower the learning rates (e.g. halve them); with resumable=() that starts a new run from step 0."
        return TrainingDiverged(
            f"{head} The last good checkpoint ({self.checkpoint_path}, step {self.step}) was restored into "
            f"{restored}, so nothing trained up to step {self.step} is lost, and re-running the training cell "
            f"continues from there. With unchanged settings it will most likely diverge again at step {step}: "
            f"first {lower} {ADVICE}")

    def _last_good(self) -> tuple[dict | None, str]:
        """(the checkpoint on disk, or None; why there is none)."""
        if not self.checkpoint_path.exists():
            every = f" (one is written every {self.checkpoint_every} steps)" if self.checkpoint_every else ""
            return None, f"no checkpoint had been written yet{every}"
        try:
            return load(self.checkpoint_path, map_location=self.device, fix=""), ""
        except DamagedFileError as e:
            return None, f"the last checkpoint, {e.path}, cannot be read ({e.reason})"

    def _nothing_restored(self, head: str, missing: str, step: int) -> TrainingDiverged:
        bad = _nonfinite(self.models)
        if not bad:
            return TrainingDiverged(
                f"{head} Nothing could be restored: {missing}. The weights are still finite, so re-running the "
                f"training cell continues from step {step}. To start again from step 0 with lower learning rates "
                f"(e.g. halved), run the notebook again from its parameters cell. {ADVICE}")
        self._poisoned = (
            f"{head} Nothing could be restored: {missing}, and {_first(bad, 3, ', ')} are no longer finite, so "
            f"this run cannot continue. Lower the learning rates (e.g. halve them) and run the notebook again from "
            f"its parameters cell (the cell that builds the networks): training restarts from step 0. {ADVICE}")
        return TrainingDiverged(self._poisoned)

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
        If a resumed run is already complete, says so and yields nothing. After a ``TrainingDiverged`` the loop
        continues from the restored checkpoint (or refuses, when the weights are non-finite and none existed).
        """
        if total < 0:
            raise ValueError(f"total steps must be >= 0, got {total}")
        if self._poisoned:
            raise TrainingDiverged(self._poisoned)
        self.total = total
        if self._pending_rng is not None:
            _set_rng_state(self._pending_rng)
            self._pending_rng = None
        if distributed.rank() > 0:                 # identical weights, but each rank its own noise
            torch.manual_seed(int(torch.randint(0, 2**62, (1,))) + distributed.rank())
        if self.step >= total:
            if 0 < self.step != self._saved_step:  # the last save failed (e.g. a full disk): retry it
                self.save()
            if self.resumed:
                self._say(f"Already trained for {self.step} steps (checkpoint in {self.dir}); nothing to do. "
                          f"Raise the number of steps to train on, or pass resume=False to train again from step 0 "
                          f"(this run is then moved aside, not deleted).")
            return
        self._last_save = (self.step, time.monotonic())
        bar = tqdm(total=total, initial=self.step, desc=self.name, disable=not self.progress,
                   dynamic_ncols=True, mininterval=0.5)
        start = time.monotonic()
        self._loop = loop = object()  # a loop abandoned by an exception must not touch a newer one's state
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
            if self._loop is loop:
                self._in_body = False
            bar.close()
        distributed.barrier()                        # the others wait for rank 0's last checkpoint

    def every(self, n: int) -> bool:
        """True on every ``n``-th step (counting from 1) and on the last step of the loop."""
        return bool(n) and ((self.step + 1) % n == 0 or (self.total is not None and self.step + 1 == self.total))

    def autocast(self):
        """Mixed-precision context for the forward passes (a no-op on the CPU or with ``amp=False``)."""
        return autocast(self.device, self.amp_dtype if self.amp else False)

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
        if self._distributed:                         # the mean gradient over the ranks' shards of the batch
            distributed.average_gradients(p for group in optimizer.param_groups for p in group["params"])
        scaler.step(optimizer)
        scaler.update()

    def log(self, **scalars):
        """Record scalars (numbers or 0-d tensors) at the current step; stop on NaN or infinity.

        The update that produced a NaN has already changed the weights (``update`` runs before ``log``), so the
        last good checkpoint is first put back into the run (see ``_diverged``); then ``TrainingDiverged`` is
        raised, saying what was restored and what to try.
        """
        scalars = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in scalars.items()}
        if self._distributed:                         # the whole batch's values; a NaN on one rank stops all
            scalars = distributed.all_mean(scalars)
        for key, value in scalars.items():
            if not math.isfinite(value):
                raise self._diverged(f"{key} became {value}")
            self.history.append(self.step, key, value)

    def log_local(self, **scalars):
        """Like ``log``, for numbers only this process measured (an evaluation on rank 0 under data-parallel
        training): no averaging over the ranks, so the other ranks need not call it."""
        distributed, self._distributed = self._distributed, False
        try:
            self.log(**scalars)
        finally:
            self._distributed = distributed

    def show(self, samples: torch.Tensor | None = None, keys=None):
        """Redraw the live view (loss curves and ``samples``) and save the sample grid to the run directory."""
        if not self.main:
            return None
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
