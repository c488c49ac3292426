"""Chapter 01's lab: what the chapter does with Goodfellow et al.'s GAN (``gan_course.models.gan``).

- the 2-D toy players ``toy_generator`` / ``toy_discriminator`` and ``train_toy``, Algorithm 1 (the paper module's
  ``train_step``) on a 2-D mixture with snapshots (``ToyRun``) for the training stepper;
- measurements of the theory: ``generator_logit_gradients`` (Sec. 3, saturating vs non-saturating, by autograd),
  ``fit_discriminator`` (D trained against a fixed p_g, to check Prop. 1), ``gradient_norm``;
- ``train_arm``: an experiment arm on images, a ``Run`` + ``Batches`` loop around a paper module's ``train_step``
  (chapter 02 uses it too);
- the explorers: ``render_toy_snapshot`` / ``toy_stepper`` and ``render_samples`` / ``sample_explorer`` (with the
  nearest training image of each sample, the paper's Fig. 2 check, ``nearest_neighbours``);
- ``CLAIMS``: what the chapter claims about its runs, checked by ``gan_course.claims`` on the notebook's numbers
  (quantities recorded as one value per seed).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ..claims import Claim
from ..losses import discriminator_loss
from ..models import gan
from ..sampling import sample
from ..training import Batches, Run
from ..viz import show_images
from ..widgets import explorer, seed_slider

# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("theorem1_minimum", "Thm. 1: the global minimum of C(G) is -log 4, reached only at p_g = p_data "
          "(|min C(G) + log 4| on the 1-D grid)", "thm1_min_gap", "<=", 1e-6, deterministic=True),
    Claim("theorem1_argmin", "Thm. 1: ... reached at p_g = p_data (|shift| of the grid's minimiser)",
          "thm1_argmin_shift", "<=", 1e-6, deterministic=True),
    Claim("prop1_trained_d_is_dstar", "Prop. 1: for G fixed, the optimal D is p_data / (p_data + p_g) "
          "(max |D - D*| where p_data + p_g > 0.05, D trained alone)", "dstar_max_error", "<", 0.1),
    Claim("nonsaturating_gradient", "Sec. 3: -log D(G(z)) 'provides much stronger gradients early in learning' "
          "(gradient ratio, once D rejects G's samples; 'much': at least 10x)", "grad_ratio_nonsat_over_sat",
          ">=", 10),
    Claim("saturating_learns_slower", "Sec. 3: with log(1 - D(G(z))) G learns slowly early on, under the paper's "
          "momentum SGD (share of toy samples within 3 sigma of a mode after SATURATION_STEPS steps, the ground "
          "truth as judge: non-saturating vs saturating)", "toy_near_mode_sgd_nonsaturating", ">",
          "toy_near_mode_sgd_saturating"),
    Claim("adam_narrows_the_gap", "The course: Adam divides out the size of the gradient, so the saturating loss "
          "costs G less than under SGD (the non-saturating arm's lead in samples near a mode, Adam vs SGD)",
          "saturation_gap_adam", "<", "saturation_gap_sgd"),
    Claim("nonsaturating_drops_modes", "Arjovsky & Bottou 2017, Thm. 2.5: the non-saturating loss is mode-seeking "
          "(modes covered on the ring at the end, of 8)", "toy_modes_minimax", ">", "toy_modes_nonsaturating"),
    Claim("strong_d_drops_more_modes", "Algorithm 1's k: k = 5 D steps per G step vs k = 1, non-saturating loss "
          "(modes covered on the ring after TOY_STEPS // 2 G steps, of 8)", "toy_modes_nonsaturating_half", ">",
          "toy_modes_k5"),
]


# ============================================================================ the 2-D toy players
def toy_generator(z_dim: int = 16, hidden: int = 128, depth: int = 3) -> gan.Generator:
    """G for the 2-D toy: ``depth`` ReLU layers of ``hidden`` units, an unbounded 2-D output."""
    return gan.Generator(z_dim=z_dim, out_shape=(2,), hidden=(hidden,) * depth, out_activation=None)


def toy_discriminator(hidden: int = 128, depth: int = 3) -> gan.Discriminator:
    """D for the 2-D toy: ``depth`` ReLU layers of ``hidden`` units, no dropout, a logit out."""
    return gan.Discriminator(in_shape=(2,), hidden=(hidden,) * depth, unit="relu", dropout=0.0, input_dropout=0.0)


def toy_config(**overrides) -> gan.Config:
    """``gan.Config`` for the toy: Adam steps of 1e-3 for both players (small MLPs on 2-D data), else as given."""
    return gan.Config(**{"lr_G": 1e-3, "lr_D": 1e-3, **overrides})


# ============================================================================ measuring the theory
def generator_logit_gradients(d_fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """|dL_G / dl| for both generator losses, per sample, where l is D's logit and D(G(z)) = sigmoid(l) = ``d_fake``.

    Sec. 3: "Early in learning, when G is poor, D can reject samples with high confidence ... In this case,
    log(1 - D(G(z))) saturates." By the chain rule,

    - saturating,      L_G =  log(1 - D(G(z))):  |dL_G/dl| = D(G(z))       -> 0 as D(G(z)) -> 0;
    - non-saturating,  L_G = -log D(G(z)):       |dL_G/dl| = 1 - D(G(z))   -> 1 as D(G(z)) -> 0.

    Computed here by autograd through ``gan_course.losses`` (not by the formulas), so it checks them.
    """
    logit = torch.logit(torch.as_tensor(d_fake, dtype=torch.float64)).detach().requires_grad_(True)
    out = {}
    for name, loss_fn in gan.GENERATOR_LOSSES.items():
        (grad,) = torch.autograd.grad(loss_fn(logit) * logit.numel(), logit)   # undo the mean: per-sample grads
        out[name] = grad.abs()
    return out


def fit_discriminator(D: nn.Module, sample_data: Callable[[int], torch.Tensor], sample_g: Callable[[int], torch.Tensor],
                      steps: int = 2000, batch_size: int = 512, lr: float = 1e-3) -> list[float]:
    """Train D alone (G fixed) by ascending V(D, G), i.e. minimising ``discriminator_loss``; return its losses.

    With enough capacity and steps, D(x) approaches D*_G(x) (Prop. 1) wherever p_data + p_g has mass.
    ``sample_data(n)`` and ``sample_g(n)`` draw n points from each distribution.
    """
    optimizer = torch.optim.Adam(D.parameters(), lr=lr)
    losses = []
    D.train()
    for _ in range(steps):
        loss = discriminator_loss(D(sample_data(batch_size)), D(sample_g(batch_size)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    D.eval()
    return losses


def gradient_norm(module: nn.Module) -> float:
    """||grad theta||_2 over all of ``module``'s parameters (0 where no gradient was computed).

    After ``train_step`` (``run.update`` leaves each player's gradients in place until its next update), this is
    ||grad_theta_g L_G|| of the step just taken for G.
    """
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return float(torch.cat(grads).norm()) if grads else 0.0


# ============================================================================ experiment arms on images
def train_arm(name: str, G: nn.Module, D: nn.Module, dataset, steps: int, cfg, *, batch_size: int, seed: int = 0,
              device: torch.device | str = "cpu", train_step: Callable = gan.train_step,
              optimizers: tuple | None = None, measure: Callable[[nn.Module], dict] | None = None,
              measure_every: int = 0, config: dict | None = None, resume: bool = False) -> Run:
    """One arm of an experiment: ``steps`` calls of a paper module's ``train_step(run, G, D, batches, cfg)``
    (chapter 01's by default) in a ``Run`` named ``name``, on ``Batches(dataset, batch_size, seed)``.

    Logs what ``train_step`` returns and ``grad_G`` = ||grad_theta_g L_G|| at every step, and the numbers of
    ``measure(G)`` every ``measure_every`` steps (and at the last). ``optimizers``: ``(opt_G, opt_D)`` to continue
    with (e.g. loaded from a snapshot of the main run); default: ``gan.optimizers(G, D, cfg)``. The Run's config
    is ``cfg``'s fields, ``batch_size``, ``seed`` and ``config``; with ``resume=False`` (default) an arm always
    trains afresh. Returns the Run: ``run.history`` holds the curves.
    """
    opt_G, opt_D = optimizers if optimizers is not None else gan.optimizers(G, D, cfg)
    run = Run(name, {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, config=dict(asdict(cfg), batch_size=batch_size,
              seed=seed, **(config or {})), device=device, resume=resume, progress=False, live=False)
    batches = run.attach(batches=Batches(dataset, batch_size, seed=seed, device=device))
    for _ in run.steps(steps):
        run.log(**train_step(run, G, D, batches, cfg), grad_G=gradient_norm(G))
        if measure is not None and run.every(measure_every):
            run.log(**measure(G))
    return run


# ============================================================================ Algorithm 1 on a 2-D toy
@dataclass
class ToyRun:
    """What a toy run records: every ``snapshot_every`` steps, G's samples (from a fixed z), D(x) on a grid, and
    how many modes the samples cover; at every step, the losses.

    ``extent`` bounds the square [-extent, extent]^2 where D is evaluated on a ``resolution`` x ``resolution`` grid.
    """

    data: object
    config: dict
    extent: float = 3.0
    resolution: int = 81
    steps: list[int] = field(default_factory=list)
    fake: list[torch.Tensor] = field(default_factory=list)
    d_grid: list[torch.Tensor] = field(default_factory=list)
    coverage: list[int] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)
    d_fake: list[float] = field(default_factory=list)
    loss_D: list[float] = field(default_factory=list)
    loss_G: list[float] = field(default_factory=list)

    def grid_points(self) -> torch.Tensor:
        """The (resolution^2, 2) points where D is evaluated, row-major over (x2, x1)."""
        axis = torch.linspace(-self.extent, self.extent, self.resolution)
        x2, x1 = torch.meshgrid(axis, axis, indexing="ij")
        return torch.stack([x1.reshape(-1), x2.reshape(-1)], dim=1)

    @torch.no_grad()
    def record(self, step: int, G: nn.Module, D: nn.Module, z: torch.Tensor, x_real: torch.Tensor):
        """Store one snapshot (G and D in eval mode, restored afterwards)."""
        was = G.training, D.training
        G.eval(), D.eval()
        fake = G(z)
        grid = torch.sigmoid(D(self.grid_points())).view(self.resolution, self.resolution)
        self.steps.append(step)
        self.fake.append(fake.clone())
        self.d_grid.append(grid.to(torch.float16))
        self.coverage.append(self.data.coverage(fake))
        self.quality.append(self.data.high_quality_fraction(fake))
        self.d_real.append(float(torch.sigmoid(D(x_real)).mean()))
        self.d_fake.append(float(torch.sigmoid(D(fake)).mean()))
        G.train(was[0]), D.train(was[1])

    def snapshot_index(self, step: int) -> int:
        """Index of the last snapshot taken at or before ``step``."""
        return max(0, int(np.searchsorted(self.steps, step, side="right")) - 1)

    @property
    def final_coverage(self) -> int:
        return self.coverage[-1]


class ToyBatches:
    """The ``batches`` that ``gan.train_step`` takes, for a 2-D toy distribution: ``next()`` returns ``(x,)``, a
    fresh sample of ``batch_size`` points from ``data.sample`` (torch's global random generator)."""

    def __init__(self, data, batch_size: int):
        self.data, self.batch_size = data, batch_size

    def next(self) -> tuple[torch.Tensor]:
        return (self.data.sample(self.batch_size),)


@contextmanager
def _one_thread():
    """Run tiny networks on one CPU thread: faster than several for 128-wide layers, far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@_one_thread()
def train_toy(data, steps: int = 3000, cfg: gan.Config | None = None, *, batch_size: int = 256, z_dim: int = 16,
              hidden: int = 128, depth: int = 3, seed: int = 0, snapshot_every: int = 50, n_samples: int = 1000,
              extent: float = 3.0, resolution: int = 81) -> tuple[ToyRun, nn.Module, nn.Module]:
    """Algorithm 1 of the paper on a 2-D dataset ``data`` (e.g. ``gan_course.data.toy.ring()``), on the CPU:
    ``steps`` calls of ``gan.train_step`` (``cfg``: the generator loss, k, the Adam steps; default ``toy_config()``)
    on toy players of ``depth`` layers of ``hidden`` ReLU units, a snapshot every ``snapshot_every`` steps.

    The players are initialised from ``torch.manual_seed(seed)``; the data, the fixed z of the snapshots and every
    z of training then come from one stream seeded with ``seed``, drawn inside ``torch.random.fork_rng`` so the
    caller's random state is left as the initialisation left it. Runs on one CPU thread (the networks are tiny);
    deterministic for a given ``seed`` and torch version. Returns the recorded ``ToyRun`` and the trained G and D.
    """
    cfg = cfg if cfg is not None else toy_config()
    torch.manual_seed(seed)
    G, D = toy_generator(z_dim, hidden, depth), toy_discriminator(hidden, depth)
    opt_G, opt_D = gan.optimizers(G, D, cfg)
    record = ToyRun(data, dict(asdict(cfg), batch_size=batch_size, z_dim=z_dim, hidden=hidden, depth=depth,
                               seed=seed, steps=steps), extent=extent, resolution=resolution)
    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(seed)
        z_fixed, x_probe = torch.randn(n_samples, z_dim), data.sample(n_samples)
        run = Run(f"toy-{cfg.generator_loss}-k{cfg.k}-seed{seed}", {"G": G, "D": D}, {"G": opt_G, "D": opt_D},
                  config=record.config, root=tmp, resume=False, checkpoint_every=0, checkpoint_seconds=math.inf,
                  live=False, progress=False)
        batches = ToyBatches(data, batch_size)
        record.record(0, G, D, z_fixed, x_probe)
        for step in run.steps(steps):
            run.log(**gan.train_step(run, G, D, batches, cfg))
            if (step + 1) % snapshot_every == 0 or step + 1 == steps:
                record.record(step + 1, G, D, z_fixed, x_probe)
    record.loss_D, record.loss_G = run.history.values("loss_D"), run.history.values("loss_G")
    return record, G, D


# ============================================================================ explorers
def render_toy_snapshot(run: ToyRun, step: int, show_d: bool = True, n_real: int = 1000):
    """Figure: real points, G's points and the contour of D(x) at the snapshot nearest ``step`` (left); the mode
    coverage and the mean D on real / generated points over training, with the current step marked (right)."""
    i = run.snapshot_index(step)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.5, 4.4), gridspec_kw={"width_ratios": [1, 1.15]})
    if show_d:
        axis = np.linspace(-run.extent, run.extent, run.resolution)
        cs = ax.contourf(axis, axis, run.d_grid[i].float().numpy(), levels=np.linspace(0, 1, 11), cmap="RdBu_r",
                         alpha=0.55)
        fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.03, label="D(x)")
    real = run.data.points[:n_real]
    ax.scatter(real[:, 0], real[:, 1], s=4, c="k", alpha=0.5, label="real x ~ p_data")
    fake = run.fake[i]
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="tab:orange", alpha=0.6, label="generated G(z)")
    ax.set_xlim(-run.extent, run.extent)
    ax.set_ylim(-run.extent, run.extent)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(f"step {run.steps[i]}: {run.coverage[i]}/{run.data.num_modes} modes covered")
    ax.legend(loc="lower left", fontsize="x-small", markerscale=3)

    ax2.plot(run.steps, run.coverage, color="tab:green", label="modes covered")
    ax2.set_ylim(-0.3, run.data.num_modes + 0.3)
    ax2.set_xlabel("step")
    ax2.set_ylabel("modes covered (within 3 sigma)")
    ax2.axvline(run.steps[i], color="gray", ls="--", lw=1)
    ax3 = ax2.twinx()
    ax3.plot(run.steps, run.d_real, color="k", lw=1, alpha=0.7, label="mean D(x), real")
    ax3.plot(run.steps, run.d_fake, color="tab:orange", lw=1, alpha=0.8, label="mean D(G(z))")
    ax3.axhline(0.5, color="gray", lw=0.5, ls=":")
    ax3.set_ylim(0, 1)
    ax3.set_ylabel("mean D")
    lines = ax2.get_legend_handles_labels()[0] + ax3.get_legend_handles_labels()[0]
    ax2.legend(lines, [h.get_label() for h in lines], loc="lower right", fontsize="x-small")
    ax2.set_title(f"{run.config.get('generator_loss', '')} G loss: coverage and D over training")
    fig.tight_layout()
    return fig


def toy_stepper(run: ToyRun, title: str = "Training, step by step"):
    """Explorer: a step slider over ``run``'s snapshots and a toggle for D's contour (``render_toy_snapshot``)."""
    every = run.steps[1] - run.steps[0] if len(run.steps) > 1 else 1
    step = widgets.IntSlider(value=run.steps[-1], min=0, max=run.steps[-1], step=every, description="step")
    show_d = widgets.Checkbox(value=True, description="show D(x)")
    return explorer(lambda step, show_d: render_toy_snapshot(run, step, show_d), title=title, step=step,
                    show_d=show_d)


@torch.no_grad()
def nearest_neighbours(samples: torch.Tensor, images: torch.Tensor, chunk: int = 10_000) -> torch.Tensor:
    """Index of the nearest training image (Euclidean, in pixel space) of each sample: the paper's Fig. 2 check
    that G has not simply memorised the training set. ``images`` may be uint8 (0..255) or float in [-1, 1]."""
    flat = samples.flatten(1).float().cpu()
    best_d = torch.full((len(flat),), float("inf"))
    best_i = torch.zeros(len(flat), dtype=torch.long)
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].flatten(1).float()
        if images.dtype == torch.uint8:
            block = block / 127.5 - 1
        d, i = torch.cdist(flat, block).min(dim=1)
        better = d < best_d
        best_d[better], best_i[better] = d[better], i[better] + start
    return best_i


def render_samples(G: nn.Module, seed: int, n: int = 32, dataset=None):
    """Figure: ``n`` samples G(z) for z drawn with ``seed`` (``sampling.sample``); with ``dataset``, each followed
    (paper, Fig. 2) by its nearest training image, so memorisation would show as identical pairs."""
    x = sample(G, n, seed=seed)
    if dataset is None:
        fig, ax = plt.subplots(figsize=(6, 6 * math.ceil(n / 8) / 8))
        show_images(x, nrow=8, ax=ax, title=f"G(z), seed {seed}")
        return fig
    neighbours = dataset.images[nearest_neighbours(x, dataset.images)].float() / 127.5 - 1
    pairs = torch.stack([x, neighbours], dim=1).flatten(0, 1)                # sample, neighbour, sample, ...
    fig, ax = plt.subplots(figsize=(7, 7 * math.ceil(2 * n / 8) / 8))
    show_images(pairs, nrow=8, ax=ax,
                title=f"seed {seed}: G(z) (odd columns) beside its nearest training image (even columns)")
    return fig


def sample_explorer(G: nn.Module, dataset=None, n: int = 32, title: str = "Samples G(z) by seed"):
    """Explorer: a seed slider (and a nearest-neighbour toggle when ``dataset`` is given) over ``render_samples``."""
    if dataset is None:
        return explorer(lambda seed: render_samples(G, seed, n), title=title, seed=seed_slider())
    neighbours = widgets.Checkbox(value=False, description="nearest training image")
    return explorer(lambda seed, neighbours: render_samples(G, seed, n, dataset if neighbours else None),
                    title=title, seed=seed_slider(), neighbours=neighbours)
