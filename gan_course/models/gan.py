"""Generative Adversarial Nets (Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville & Bengio,
2014, arXiv 1406.2661): the original GAN, its theory, and multilayer-perceptron players.

A generator G(z; theta_g) maps noise z ~ p_z to data space; a discriminator D(x; theta_d) outputs the probability
that x came from the data rather than from G. They play the two-player minimax game (Sec. 3, Eq. 1)

    min_G max_D V(D, G) = E_{x ~ p_data}[log D(x)] + E_{z ~ p_z}[log(1 - D(G(z)))].

Sec. 4 shows that for a fixed G the best discriminator is D*_G(x) = p_data(x) / (p_data(x) + p_g(x)) (Prop. 1),
that the game then asks G to minimise C(G) = max_D V(D, G) = -log 4 + 2 JSD(p_data || p_g) (Thm. 1), whose only
minimum is p_g = p_data, where D* = 1/2 everywhere. Algorithm 1 alternates k steps of ascent on V for D with one
step of descent for G; Sec. 3 recommends that G maximise log D(G(z)) instead of minimising log(1 - D(G(z))),
because the latter saturates early in training.

This module, top to bottom:

- the players: ``Maxout`` (Goodfellow et al., 2013), ``Generator`` and ``Discriminator`` MLPs (Sec. 5), and the
  small 2-D versions used on the toy ring (``toy_generator``, ``toy_discriminator``);
- the theory, computed: ``optimal_discriminator`` (Prop. 1), ``js_divergence`` and ``virtual_training_criterion``
  (Thm. 1), ``generator_logit_gradients`` (Sec. 3, saturating vs non-saturating), ``fit_discriminator``
  (train D against a fixed p_g to check Prop. 1);
- Algorithm 1 on a 2-D mixture with snapshots for the training stepper: ``train_toy``, ``ToyRun``;
- the chapter's explorers: ``render_toy_snapshot`` / ``toy_stepper`` and ``render_samples`` / ``sample_explorer``.

The losses themselves (Eq. 1 split into the two players' objectives) live in ``gan_course.losses``:
``discriminator_loss``, ``generator_loss_saturating``, ``generator_loss_nonsaturating``.

Differences from the paper's MNIST experiment (its code: github.com/goodfeli/adversarial, ``mnist.yaml``), all
documented in the chapter: data in [-1, 1] so G ends in tanh rather than a sigmoid; z ~ N(0, I) rather than
uniform; Adam (lr 2e-4, beta_1 = 0.5, Radford et al., 2015) rather than SGD with momentum; k = 1 and the
non-saturating generator loss (as the paper itself used in practice). The discriminator keeps the paper's maxout
units and dropout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..losses import discriminator_loss, generator_loss_nonsaturating, generator_loss_saturating
from ..sampling import generate
from ..sampling import sampler as sampling_sampler

GENERATOR_LOSSES = {"nonsaturating": generator_loss_nonsaturating, "saturating": generator_loss_saturating}


# ============================================================================ the players (Sec. 5)
class Maxout(nn.Module):
    """A maxout layer (Goodfellow et al., 2013, arXiv 1302.4389), the paper's discriminator unit:

    h_i(x) = max_{j in 1..pieces} (x^T W_{.ij} + b_ij),

    i.e. a linear layer with ``units * pieces`` outputs followed by a max over each group of ``pieces``.
    It is a learned, piecewise-linear activation; with dropout it was the state of the art in 2013.
    """

    def __init__(self, in_features: int, units: int, pieces: int = 5):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(*x.shape[:-1], self.units, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"units={self.units}, pieces={self.pieces}"


class InputDropout(nn.Module):
    """Dropout on D's input image as the paper applied it, to pixels in [0, 1] (``mnist.yaml``: keep 0.8).

    The course's images live in [-1, 1], where plain ``nn.Dropout`` would set dropped pixels to 0, i.e. mid-grey:
    D would see real images sprinkled with grey dots, and G would learn to draw them. Here the image is mapped to
    [0, 1], dropped out (dropped pixels become 0 = black background, kept ones are scaled by 1 / (1 - p)), and
    mapped back.
    """

    def __init__(self, p: float = 0.2):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return 2 * F.dropout((x + 1) / 2, self.p, training=True) - 1

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Generator(nn.Module):
    """G(z; theta_g): a multilayer perceptron from noise z in R^{z_dim} to a sample of shape ``out_shape``.

    The paper's MNIST generator (Sec. 5; ``mnist.yaml``): two hidden layers of 1200 rectified linear units and a
    sigmoid output of 784 pixels. Here the output is ``tanh`` (the course's images live in [-1, 1]);
    ``out_activation=None`` gives an unbounded output (the 2-D toy).
    """

    def __init__(self, z_dim: int = 100, out_shape: tuple[int, ...] = (1, 28, 28), hidden: tuple[int, ...] = (1200, 1200),
                 out_activation: str | None = "tanh"):
        super().__init__()
        if out_activation not in ("tanh", None):
            raise ValueError(f"out_activation must be 'tanh' or None, got {out_activation!r}")
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        layers, width = [], z_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(self.out_shape)))
        if out_activation == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.out_shape)


class Discriminator(nn.Module):
    """D(x; theta_d) as a *logit*: ``D(x) = sigmoid(self(x))``, one number per sample, shape (B,).

    The paper's MNIST discriminator (Sec. 5; ``mnist.yaml``): two maxout layers of 240 units with 5 pieces each,
    dropout on the input (keep 0.8, ``InputDropout``) and on the hidden layers (keep 0.5), and a sigmoid output. Returning the logit
    rather than the probability lets the losses use the stable ``softplus`` forms of log D and log(1 - D).
    ``unit="leaky_relu"`` swaps maxout for LeakyReLU(0.2), the choice of most later MLP GANs.
    """

    def __init__(self, in_shape: tuple[int, ...] = (1, 28, 28), hidden: tuple[int, ...] = (240, 240),
                 unit: str = "maxout", pieces: int = 5, dropout: float = 0.5, input_dropout: float = 0.2):
        super().__init__()
        if unit not in ("maxout", "leaky_relu", "relu"):
            raise ValueError(f"unit must be 'maxout', 'leaky_relu' or 'relu', got {unit!r}")
        self.in_shape = tuple(in_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        if input_dropout:
            layers.append(InputDropout(input_dropout))
        width = math.prod(self.in_shape)
        for h in hidden:
            if unit == "maxout":
                layers.append(Maxout(width, h, pieces))
            else:
                layers += [nn.Linear(width, h), nn.LeakyReLU(0.2) if unit == "leaky_relu" else nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) in (0, 1): the probability that x came from the data."""
        return torch.sigmoid(self(x))


def toy_generator(z_dim: int = 16, hidden: int = 128, depth: int = 3) -> Generator:
    """G for the 2-D toy: ``depth`` ReLU layers of ``hidden`` units, an unbounded 2-D output."""
    return Generator(z_dim, out_shape=(2,), hidden=(hidden,) * depth, out_activation=None)


def toy_discriminator(hidden: int = 128, depth: int = 3) -> Discriminator:
    """D for the 2-D toy: ``depth`` ReLU layers of ``hidden`` units, no dropout, a logit out."""
    return Discriminator(in_shape=(2,), hidden=(hidden,) * depth, unit="relu", dropout=0.0, input_dropout=0.0)


# Drawing images for figures and metrics is plumbing shared by every chapter (gan_course.sampling):
# sample(G, z) = G(z) in eval mode, batched, on the CPU; sampler(G, seed) = n -> G(z) for the metrics.
sample, sampler = generate, sampling_sampler


# ============================================================================ the theory (Sec. 4)
def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """Prop. 1: for a fixed G, the discriminator that maximises V(D, G) is

    D*_G(x) = p_data(x) / (p_data(x) + p_g(x)).

    ``p_data`` and ``p_g`` are the two densities evaluated at the same points. Where both are 0, D* is
    undefined (nothing is ever seen there); we return 1/2, the value at equilibrium.
    """
    p_data, p_g = torch.as_tensor(p_data), torch.as_tensor(p_g)
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(torch.finfo(total.dtype).tiny), torch.full_like(total, 0.5))


def _kl(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """KL(p || q) = integral p log(p / q) dx on a grid of spacing dx (0 log 0 = 0)."""
    ratio = torch.where(p > 0, p / q.clamp_min(torch.finfo(p.dtype).tiny), torch.ones_like(p))
    return (torch.where(p > 0, p * torch.log(ratio), torch.zeros_like(p))).sum() * dx


def js_divergence(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """The Jensen-Shannon divergence JSD(p || q) = KL(p || m)/2 + KL(q || m)/2, m = (p + q)/2 (Sec. 4.1), of two
    densities given on a regular grid of spacing ``dx`` (in nats; between 0 and log 2)."""
    m = (p + q) / 2
    return _kl(p, m, dx) / 2 + _kl(q, m, dx) / 2


def virtual_training_criterion(p_data: torch.Tensor, p_g: torch.Tensor, dx: float) -> torch.Tensor:
    """C(G) = max_D V(D, G) = V(D*_G, G), by direct integration on a grid of spacing ``dx`` (Eq. 4):

    C(G) = integral p_data log D*_G + p_g log(1 - D*_G) dx.

    Thm. 1 says C(G) = -log 4 + 2 JSD(p_data || p_g) (Eq. 6): its minimum -log 4 is reached only at p_g = p_data.
    """
    d_star = optimal_discriminator(p_data, p_g)
    tiny = torch.finfo(d_star.dtype).tiny
    real_term = torch.where(p_data > 0, p_data * torch.log(d_star.clamp_min(tiny)), torch.zeros_like(p_data))
    fake_term = torch.where(p_g > 0, p_g * torch.log((1 - d_star).clamp_min(tiny)), torch.zeros_like(p_g))
    return (real_term + fake_term).sum() * dx


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
    for name, loss_fn in GENERATOR_LOSSES.items():
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
    """||grad theta||_2 over all of ``module``'s parameters (0 where no gradient was computed)."""
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return float(torch.cat(grads).norm()) if grads else 0.0


def train_steps(G: nn.Module, D: nn.Module, batches, steps: int, *, generator_loss: str = "nonsaturating", k: int = 1,
                lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999)) -> dict[str, list[float]]:
    """A short run of Algorithm 1 on image batches (the chapter's update step, without checkpoints), recording what
    Sec. 3 is about at every step: mean D(x) on real data, mean D(G(z)) and ||grad_theta_g L_G||.

    ``batches`` is a ``gan_course.training.Batches``; fresh Adam optimisers are made here.
    """
    if generator_loss not in GENERATOR_LOSSES:
        raise ValueError(f"generator_loss must be one of {', '.join(GENERATOR_LOSSES)}, got {generator_loss!r}")
    loss_G_fn = GENERATOR_LOSSES[generator_loss]
    device = next(G.parameters()).device
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    record: dict[str, list[float]] = {"d_real": [], "d_fake": [], "grad_G": [], "loss_D": [], "loss_G": []}
    for _ in range(steps):
        for _ in range(k):
            x = batches.next()[0]
            z = torch.randn(len(x), G.z_dim, device=device)
            real_logits, fake_logits = D(x), D(G(z).detach())
            loss_D = discriminator_loss(real_logits, fake_logits)
            opt_D.zero_grad(set_to_none=True)
            loss_D.backward()
            opt_D.step()
        z = torch.randn(len(x), G.z_dim, device=device)
        fake_logits = D(G(z))
        loss_G = loss_G_fn(fake_logits)
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        record["grad_G"].append(gradient_norm(G))
        opt_G.step()
        record["d_real"].append(torch.sigmoid(real_logits.detach()).mean().item())
        record["d_fake"].append(torch.sigmoid(fake_logits.detach()).mean().item())
        record["loss_D"].append(loss_D.item())
        record["loss_G"].append(loss_G.item())
    return record


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
def train_toy(data, steps: int = 3000, *, generator_loss: str = "nonsaturating", k: int = 1, lr_g: float = 1e-3,
              lr_d: float = 1e-3, betas: tuple[float, float] = (0.5, 0.999), batch_size: int = 256, z_dim: int = 16,
              hidden: int = 128, depth: int = 3, seed: int = 0, snapshot_every: int = 50, n_samples: int = 1000,
              extent: float = 3.0, resolution: int = 81) -> tuple[ToyRun, nn.Module, nn.Module]:
    """Algorithm 1 of the paper on a 2-D dataset ``data`` (e.g. ``gan_course.data.toy.ring()``), on the CPU.

    for each training iteration:
        for k steps:                                            (D: ascend V, i.e. descend the BCE loss)
            sample m noise z ~ p_z and m examples x ~ p_data
            theta_d <- theta_d - lr_d * grad [ -log D(x) - log(1 - D(G(z))) ]
        sample m noise z ~ p_z                                  (G: one step)
        theta_g <- theta_g - lr_g * grad L_G,   L_G = log(1 - D(G(z)))  ("saturating", the minimax game)
                                             or L_G = -log D(G(z))      ("nonsaturating", Sec. 3)

    with Adam in place of the paper's SGD + momentum. Returns the recorded ``ToyRun`` and the trained G and D.
    Runs on one CPU thread (the networks are tiny); deterministic for a given ``seed`` and torch version.
    """
    if generator_loss not in GENERATOR_LOSSES:
        raise ValueError(f"generator_loss must be one of {', '.join(GENERATOR_LOSSES)}, got {generator_loss!r}")
    loss_G_fn = GENERATOR_LOSSES[generator_loss]
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    G, D = toy_generator(z_dim, hidden, depth), toy_discriminator(hidden, depth)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas)
    config = dict(generator_loss=generator_loss, k=k, lr_g=lr_g, lr_d=lr_d, betas=betas, batch_size=batch_size,
                  z_dim=z_dim, hidden=hidden, depth=depth, seed=seed, steps=steps)
    run = ToyRun(data, config, extent=extent, resolution=resolution)
    z_fixed = torch.randn(n_samples, z_dim, generator=rng)
    x_probe = data.sample(n_samples, rng)

    run.record(0, G, D, z_fixed, x_probe)
    for step in range(1, steps + 1):
        for _ in range(k):                                          # k discriminator steps
            x = data.sample(batch_size, rng)
            z = torch.randn(batch_size, z_dim, generator=rng)
            loss_D = discriminator_loss(D(x), D(G(z).detach()))
            opt_D.zero_grad(set_to_none=True)
            loss_D.backward()
            opt_D.step()
        z = torch.randn(batch_size, z_dim, generator=rng)           # one generator step
        loss_G = loss_G_fn(D(G(z)))
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        run.loss_D.append(loss_D.item())
        run.loss_G.append(loss_G.item())
        if step % snapshot_every == 0 or step == steps:
            run.record(step, G, D, z_fixed, x_probe)
    return run, G, D


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
    import ipywidgets as widgets

    from ..widgets import explorer

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


@torch.no_grad()
def render_samples(G: nn.Module, seed: int, n: int = 32, dataset=None, device=None):
    """Figure: ``n`` samples G(z) for z drawn with ``seed``; with ``dataset``, each followed (paper, Fig. 2) by
    its nearest training image, so memorisation would show as identical pairs."""
    from ..sampling import normal
    from ..viz import show_images

    was = G.training
    G.eval()
    device = device or next(G.parameters()).device
    z = normal(n, G.z_dim, generator=torch.Generator().manual_seed(seed), device=device)
    x = G(z).cpu()
    G.train(was)
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
    import ipywidgets as widgets

    from ..widgets import explorer, seed_slider

    if dataset is None:
        return explorer(lambda seed: render_samples(G, seed, n), title=title, seed=seed_slider())
    neighbours = widgets.Checkbox(value=False, description="nearest training image")
    return explorer(lambda seed, neighbours: render_samples(G, seed, n, dataset if neighbours else None),
                    title=title, seed=seed_slider(), neighbours=neighbours)
