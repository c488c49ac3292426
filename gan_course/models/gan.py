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

- the players: ``Maxout`` (Goodfellow et al., 2013), ``InputDropout``, and the ``Generator`` and ``Discriminator``
  MLPs of Sec. 5;
- the theory of Sec. 4, computed: ``optimal_discriminator`` (Prop. 1), ``js_divergence`` and
  ``virtual_training_criterion`` (Thm. 1);
- Algorithm 1: ``Config`` (k, the generator loss of Sec. 3, the optimiser), ``optimizers`` and ``train_step``.

The losses themselves (Eq. 1 split into the two players' objectives) live in ``gan_course.losses``:
``discriminator_loss``, ``generator_loss_saturating``, ``generator_loss_nonsaturating``. What the chapter does with
the model (the 2-D toy runs, the gradient measurements, the explorers) is in ``gan_course.lab.gan``.

Differences from the paper's MNIST experiment (its code: github.com/goodfeli/adversarial, ``mnist.yaml``), all
documented in the chapter: data in [-1, 1] so G ends in tanh rather than a sigmoid; z ~ N(0, I) rather than
uniform; Adam (lr 2e-4, beta_1 = 0.5, Radford et al., 2015) rather than SGD with momentum; k = 1 and the
non-saturating generator loss (as the paper itself used in practice). The discriminator keeps the paper's maxout
units and dropout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import discriminator_loss, generator_loss_nonsaturating, generator_loss_saturating
from ..training import set_requires_grad

# The paper's MNIST model (Sec. 5 and mnist.yaml)
Z_DIM = 100                 # mnist.yaml: the generator's ``nvis: 100``
G_HIDDEN = (1200, 1200)     # mnist.yaml: two ``RectifiedLinear`` layers of ``dim: 1200``
D_HIDDEN = (240, 240)       # mnist.yaml: two ``Maxout`` layers of ``num_units: 240`` ...
MAXOUT_PIECES = 5           # ... with ``num_pieces: 5``
DROPOUT = 0.5               # mnist.yaml: ``discriminator_default_input_include_prob: .5``
INPUT_DROPOUT = 0.2         # mnist.yaml: ``discriminator_input_include_probs: {'h0': .8}``

# Sec. 3: the game as written (saturating) and the recommended non-saturating generator loss.
GENERATOR_LOSSES = {"nonsaturating": generator_loss_nonsaturating, "saturating": generator_loss_saturating}
OPTIMIZERS = ("adam", "sgd")


# ============================================================================ the players (Sec. 5)
class Maxout(nn.Module):
    """A maxout layer (Goodfellow et al., 2013, arXiv 1302.4389), the paper's discriminator unit:

    h_i(x) = max_{j in 1..pieces} (x^T W_{.ij} + b_ij),

    i.e. a linear layer with ``units * pieces`` outputs followed by a max over each group of ``pieces``.
    It is a learned, piecewise-linear activation; with dropout it was the state of the art in 2013.
    """

    def __init__(self, in_features: int, units: int, pieces: int = MAXOUT_PIECES):
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

    def __init__(self, p: float = INPUT_DROPOUT):
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

    def __init__(self, *, z_dim: int = Z_DIM, out_shape: tuple[int, ...] = (1, 28, 28),
                 hidden: tuple[int, ...] = G_HIDDEN, out_activation: str | None = "tanh"):
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
    dropout on the input (keep 0.8, ``InputDropout``) and on the hidden layers (keep 0.5), and a sigmoid output.
    Returning the logit rather than the probability lets the losses use the stable ``softplus`` forms of log D and
    log(1 - D). ``unit="leaky_relu"`` swaps maxout for LeakyReLU(0.2), the choice of most later MLP GANs.
    """

    UNITS = ("maxout", "leaky_relu", "relu")

    def __init__(self, *, in_shape: tuple[int, ...] = (1, 28, 28), hidden: tuple[int, ...] = D_HIDDEN,
                 unit: str = "maxout", pieces: int = MAXOUT_PIECES, dropout: float = DROPOUT,
                 input_dropout: float = INPUT_DROPOUT):
        super().__init__()
        if unit not in self.UNITS:
            raise ValueError(f"unit must be one of {', '.join(map(repr, self.UNITS))}, got {unit!r}")
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


# ============================================================================ Algorithm 1
@dataclass
class Config:
    """The hyper-parameters of Algorithm 1. ``k`` and ``generator_loss`` are the paper's; the optimiser is the
    course's Adam by default, because the paper's SGD with momentum (``mnist.yaml``: ``batch_size: 100``,
    ``learning_rate: .1`` decayed by 1.000004 per step, momentum .5 rising to .7) needs far more steps.
    ``optimizer="sgd"`` is the paper's kind (plain momentum ``momentum``, at ``lr_G`` / ``lr_D``, no decay): its
    step is proportional to the gradient, so a saturating loss's vanishing gradient is a vanishing step, where
    Adam divides the scale of the gradient out (chapter 01, Sec. 5.1, measures both)."""

    # Algorithm 1: "The number of steps to apply to the discriminator, k, is a hyperparameter. We used k = 1,
    # the least expensive option, in our experiments."
    k: int = 1
    # Sec. 3: "Rather than training G to minimize log(1 - D(G(z))) we can train G to maximize log D(G(z))."
    # "saturating" is the game exactly as Eq. 1 writes it.
    generator_loss: str = "nonsaturating"
    # Adam for both players, the DCGAN recipe (Radford et al., 2015, Sec. 4: "We found the suggested learning
    # rate of 0.001, to be too high, using 0.0002 instead", "leaving the momentum term beta_1 at the suggested
    # value of 0.9 resulted in training oscillation and instability while reducing it to 0.5 helped").
    lr_G: float = 2e-4
    lr_D: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # "adam" (the course) or "sgd" (the paper's kind: momentum SGD, mnist.yaml's initial momentum .5)
    optimizer: str = "adam"
    momentum: float = 0.5

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.generator_loss not in GENERATOR_LOSSES:
            raise ValueError(f"generator_loss must be one of {', '.join(GENERATOR_LOSSES)}, "
                             f"got {self.generator_loss!r}")
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k (discriminator steps per generator step) must be an int >= 1, got {self.k!r}")


def optimizers(G: nn.Module, D: nn.Module, cfg) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """(opt_G, opt_D): Adam with ``cfg.lr_G`` / ``cfg.lr_D`` and betas (``cfg.beta1``, ``cfg.beta2``), or, with
    ``cfg.optimizer == "sgd"``, SGD with momentum ``cfg.momentum`` at the same learning rates (the paper's kind)."""
    if getattr(cfg, "optimizer", "adam") == "sgd":
        return (torch.optim.SGD(G.parameters(), lr=cfg.lr_G, momentum=cfg.momentum),
                torch.optim.SGD(D.parameters(), lr=cfg.lr_D, momentum=cfg.momentum))
    betas = (cfg.beta1, cfg.beta2)
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr_G, betas=betas),
            torch.optim.Adam(D.parameters(), lr=cfg.lr_D, betas=betas))


def train_step(run, G: Generator, D: Discriminator, batches, cfg: Config) -> dict[str, torch.Tensor]:
    """One iteration of Algorithm 1: ``cfg.k`` steps of ascent on V for D, then one step for G.

    for k steps:   x ~ p_data (a minibatch of m examples), z ~ p_z (m noise samples)
                   theta_d <- descend  -log D(x) - log(1 - D(G(z)))           (= ascend V; G(z) detached)
    then:          z ~ p_z (m fresh noise samples)
                   theta_g <- descend  L_G = -log D(G(z))       ("nonsaturating", Sec. 3)
                                    or L_G = log(1 - D(G(z)))   ("saturating", the game as Eq. 1 writes it)

    ``run`` is a ``gan_course.training.Run`` with optimisers "G" and "D" (forward passes under ``run.autocast()``,
    updates through ``run.update``); ``batches.next()`` returns (x, labels) on the run's device. D's parameters are
    frozen during G's step (D is only a function there). Returns detached scalars: ``loss_D``, ``loss_G``,
    ``D_real`` = mean D(x) and ``D_fake`` = mean D(G(z)) in D's (last) step, and ``D_fake_G`` = mean D(G(z)) in G's
    step, after D's update: the value whose gradient Sec. 3 says saturates.
    """
    loss_G_fn = GENERATOR_LOSSES[cfg.generator_loss]
    for _ in range(cfg.k):                                          # D: ascend V(D, G)
        x = batches.next()[0]
        z = torch.randn(len(x), G.z_dim, device=run.device)
        with run.autocast():
            real_logits, fake_logits = D(x), D(G(z).detach())
            loss_D = discriminator_loss(real_logits, fake_logits)   # -log D(x) - log(1 - D(G(z)))
        run.update("D", loss_D)

    set_requires_grad(D, False)                                     # G: one step; D is only a function here
    z = torch.randn(len(x), G.z_dim, device=run.device)
    with run.autocast():
        g_logits = D(G(z))
        loss_G = loss_G_fn(g_logits)
    run.update("G", loss_G)
    set_requires_grad(D, True)
    return dict(loss_D=loss_D.detach(), loss_G=loss_G.detach(), D_real=torch.sigmoid(real_logits.detach()).mean(),
                D_fake=torch.sigmoid(fake_logits.detach()).mean(), D_fake_G=torch.sigmoid(g_logits.detach()).mean())
