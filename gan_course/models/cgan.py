"""Conditional Generative Adversarial Nets (Mirza & Osindero, 2014, arXiv 1411.1784): both players see a label y.

Chapter 01's GAN samples from p_data(x) and nobody decides *what* it draws. Sec. 3.2 of the paper conditions both
networks on extra information y (here a class label): "We can perform the conditioning by feeding y into both the
discriminator and generator as additional input layer." The game is Goodfellow et al.'s with every D and G
conditioned on y (Eq. 2):

    min_G max_D V(D, G) = E_{x ~ p_data(x)}[log D(x | y)] + E_{z ~ p_z(z)}[log(1 - D(G(z | y)))],

where (x, y) are drawn together from the data and the fake pair is (G(z | y), y) with the *same* y given to G and D.
For a fixed G, the best D is D*(x | y) = p_data(x | y) / (p_data(x | y) + p_g(x | y)) (chapter 01's Prop. 1 for every
y), so at the optimum p_g(x | y) = p_data(x | y) for every label: G must draw the class it is asked for.

This module, top to bottom:

- the condition: ``one_hot`` (the paper's encoding of y, Sec. 4.1) and ``condition`` (the concatenation [v, y]);
- the players: ``Generator`` G(z | y), an MLP on [z, onehot(y)], and ``Discriminator`` D(x | y), chapter 01's
  ``gan.Discriminator`` on [x, onehot(y)];
- Eq. 2 per player: ``d_loss`` / ``g_loss``, with a ``label_mode`` that breaks the pairing on purpose (the
  chapter's "what goes wrong");
- the update step: ``Config``, ``optimizers`` (chapter 01's Adam pair) and ``train_step``.

What the chapter does with the model (measuring conditioning with a classifier, the class-by-noise grids, the
explorers, the broken-label arms) is in ``gan_course.lab.cgan``.

Differences from the paper's MNIST model (Sec. 4.1), all said in the chapter: there z (100-d, uniform) and y are
first mapped to separate ReLU layers of 200 and 1000 units, joined in a 1200-unit ReLU layer, and D maps x and y
to separate maxout layers (240 x 5 and 50 x 5 pieces) joined in a 240 x 4 maxout layer, with dropout 0.5. Here y
is concatenated to the *input* of both MLPs, the simplest form of "an additional input layer"; z ~ N(0, I). The
players are the MLPs of the widely used PyTorch cGAN example (eriklindernoren/PyTorch-GAN, ``cgan.py``), with a
one-hot y in place of a learned embedding: G has LeakyReLU layers of 128, 256, 512, 1024 units with batch norm, D
is chapter 01's ``gan.Discriminator`` with three LeakyReLU(0.2) layers of 512 units and dropout 0.4 (the paper:
"the precise architecture of the discriminator is not critical as long as it has sufficient power";
``unit="maxout"`` gives the paper's units). Adam (2e-4, beta_1 = 0.5) replaces SGD with momentum, and G is trained
on the non-saturating loss, as in chapter 01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import discriminator_loss, generator_loss_nonsaturating
from ..training import set_requires_grad
from . import gan

Z_DIM = 100                          # Sec. 4.1: "a noise prior z with dimensionality 100" (uniform there)
G_HIDDEN = (128, 256, 512, 1024)     # the course's G (PyTorch-GAN's cgan.py); the paper: 200 + 1000 -> 1200 ReLU
D_HIDDEN = (512, 512, 512)           # the course's D (PyTorch-GAN); the paper: maxout 240x5 + 50x5 -> 240x4
DROPOUT = 0.4                        # PyTorch-GAN's; the paper: "Dropout with probability of 0.5"
LEAK = 0.2                           # LeakyReLU slope of both players (PyTorch-GAN, after Radford et al., 2015)
LABEL_MODES = ("paired", "dropped", "shuffled")


# ============================================================================ the condition y (Sec. 3.2, 4.1)
def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The paper's encoding of a class label (Sec. 4.1: "class labels, encoded as one-hot vectors"): a float
    vector of length ``num_classes`` with a 1 at position y and 0 elsewhere, shape (B, num_classes)."""
    y = torch.as_tensor(y)
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"y must hold integer class indices, got dtype {y.dtype}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"class indices must lie in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}")
    return F.one_hot(y.long(), num_classes).float()


def condition(v: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[v, onehot(y)]: y fed in as "an additional input layer" (Sec. 3.2), concatenated to a player's input.

    ``v`` is z (B, z_dim) for G or an image x (B, C, H, W) for D (flattened to B x CHW, as an MLP sees it); the
    result has shape (B, len(v[0].flatten()) + num_classes) and the dtype and device of v.
    """
    v = v.flatten(1)
    return torch.cat([v, one_hot(y, num_classes).to(device=v.device, dtype=v.dtype)], dim=1)


# ============================================================================ the players
class Generator(nn.Module):
    """G(z | y): a multilayer perceptron from [z, onehot(y)] to an image of shape ``out_shape`` in [-1, 1].

    Hidden layers: Linear, batch norm (all but the first, Ioffe & Szegedy 2015, arXiv 1502.03167), LeakyReLU(0.2);
    output: Linear, tanh. The first linear layer computes W_z z + W_y onehot(y) + b = W_z z + w_y + b: the label
    adds a learned, class-specific bias w_y (column y of W_y) to the first hidden layer, and every later layer can
    build on it. ``batch_norm=False`` gives chapter 01's plain MLP (with LeakyReLU).
    """

    def __init__(self, *, z_dim: int = Z_DIM, num_classes: int = 20, out_shape: tuple[int, ...] = (1, 28, 28),
                 hidden: tuple[int, ...] = G_HIDDEN, batch_norm: bool = True, leak: float = LEAK):
        super().__init__()
        self.z_dim, self.num_classes, self.out_shape = z_dim, num_classes, tuple(out_shape)
        layers: list[nn.Module] = []
        width = z_dim + num_classes
        for i, h in enumerate(hidden):
            layers.append(nn.Linear(width, h))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.LeakyReLU(leak))
            width = h
        layers += [nn.Linear(width, math.prod(self.out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(condition(z, y, self.num_classes)).view(len(z), *self.out_shape)


class Discriminator(nn.Module):
    """D(x | y) as a logit (``D(x | y) = sigmoid(self(x, y))``): chapter 01's MLP discriminator
    (``gan.Discriminator``) on [x, onehot(y)], one number per (image, label) pair, shape (B,).

    ``unit="leaky_relu"`` (default) or ``"maxout"`` (the paper's unit, ``pieces`` per unit); ``dropout`` on the
    hidden layers (the paper: 0.5). ``input_dropout > 0`` also drops pixels of the input image as chapter 01 does
    (``gan.InputDropout``: dropped pixels turn black), applied to x only, never to the one-hot label.
    """

    def __init__(self, *, in_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 20,
                 hidden: tuple[int, ...] = D_HIDDEN, unit: str = "leaky_relu", pieces: int = 5,
                 dropout: float = DROPOUT, input_dropout: float = 0.0):
        super().__init__()
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        self.input_dropout = gan.InputDropout(input_dropout)
        self.mlp = gan.Discriminator(in_shape=(math.prod(self.in_shape) + num_classes,), hidden=hidden, unit=unit,
                                     pieces=pieces, dropout=dropout, input_dropout=0.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.mlp(condition(self.input_dropout(x), y, self.num_classes))

    def probability(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """D(x | y) in (0, 1): the probability that the pair (x, y) came from the data."""
        return torch.sigmoid(self(x, y))


# ============================================================================ Eq. 2, per player
def labels_for_D(y: torch.Tensor, label_mode: str = "paired", generator: torch.Generator | None = None) -> torch.Tensor:
    """The labels D is shown next to the *real* images x whose true labels are y.

    - ``"paired"``: y itself (Eq. 2: real pairs (x, y) come from p_data(x, y));
    - ``"shuffled"``: y in a random order, so real pairs carry a wrong label almost always (a data-loading bug);
    - ``"dropped"``: handled by the players' inputs, see ``d_loss``; y is returned unchanged.
    """
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}, got {label_mode!r}")
    if label_mode != "shuffled":
        return y
    perm = torch.randperm(len(y), generator=generator).to(y.device)
    return y[perm]


def _D(D: Discriminator, x: torch.Tensor, y: torch.Tensor, label_mode: str) -> torch.Tensor:
    """D's logits, with the label input zeroed (D told nothing about y) when ``label_mode == "dropped"``."""
    if label_mode == "dropped":
        x = D.input_dropout(x).flatten(1)
        return D.mlp(torch.cat([x, torch.zeros(len(x), D.num_classes, device=x.device, dtype=x.dtype)], 1))
    return D(x, y)


def d_loss(D: Discriminator, G: Generator, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
           label_mode: str = "paired", generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """D's side of Eq. 2 as a loss, L_D = -E_{x,y}[log D(x | y)] - E_{z,y}[log(1 - D(G(z | y) | y))].

    The fake pair uses the same y that G was asked for; G(z | y) is detached (this is D's step). ``label_mode``
    breaks the pairing on purpose (see ``labels_for_D``; ``"dropped"`` shows D zeros instead of onehot(y)).
    Returns the loss and both batches of logits.
    """
    x_fake = G(z, y).detach()
    real_logits = _D(D, x, labels_for_D(y, label_mode, generator), label_mode)
    fake_logits = _D(D, x_fake, y, label_mode)
    return {"loss": discriminator_loss(real_logits, fake_logits), "real_logits": real_logits,
            "fake_logits": fake_logits}


def g_loss(D: Discriminator, G: Generator, z: torch.Tensor, y: torch.Tensor, label_mode: str = "paired"
           ) -> torch.Tensor:
    """G's non-saturating loss (chapter 01, Sec. 3 of Goodfellow et al.), conditioned: L_G = -E_{z,y}[log D(G(z|y) | y)]."""
    return generator_loss_nonsaturating(_D(D, G(z, y), y, label_mode))


# ============================================================================ the update step
@dataclass
class Config:
    """The hyper-parameters of the update step. The optimiser is chapter 01's Adam: the paper's Sec. 4.1 used
    "stochastic gradient decent with mini-batches of size 100 and initial learning rate of 0.1 which was
    exponentially decreased down to .000001 with decay factor of 1.00004. Also momentum was used with initial
    value of .5 which was increased up to 0.7."

    ``label_mode`` is not the paper's: ``"paired"`` is Eq. 2; ``"dropped"`` and ``"shuffled"`` are the broken
    pairings of the chapter's Section 5 (``labels_for_D``). The shuffled labels are drawn from their own generator,
    seeded with ``shuffle_seed`` when the Config is made (``dataclasses.replace`` makes a fresh one), so they
    consume none of torch's global random numbers.
    """

    lr_G: float = 2e-4               # Adam, as in chapter 01 (Radford et al., 2015, Sec. 4)
    lr_D: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    label_mode: str = "paired"
    shuffle_seed: int = 0

    def __post_init__(self):
        if self.label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}, got {self.label_mode!r}")
        # not a field: dataclasses.asdict(cfg), the Run's config, holds only the hyper-parameters
        self.generator = torch.Generator().manual_seed(self.shuffle_seed)


# Chapter 01's Adam pair, Adam(lr_G) for G and Adam(lr_D) for D with betas (beta1, beta2): the fields are the same.
optimizers = gan.optimizers


def train_step(run, G: Generator, D: Discriminator, batches, cfg: Config) -> dict[str, torch.Tensor]:
    """One iteration of Algorithm 1 (k = 1) on Eq. 2: one step for D on a real batch (x, y) and the generated pairs
    (G(z | y), y) with the *same* labels, then one step for G on fresh z and the same y.

        theta_d <- descend  -log D(x | y) - log(1 - D(G(z | y) | y))     (G(z | y) detached; ``d_loss``)
        theta_g <- descend  -log D(G(z | y) | y)                          (non-saturating; ``g_loss``)

    ``cfg.label_mode`` breaks the pairing shown to D (Section 5 of the chapter). ``run`` is a
    ``gan_course.training.Run`` with optimisers "G" and "D"; ``batches.next()`` returns (x, y) on its device. D is
    frozen during G's step. Returns detached scalars: ``loss_D``, ``loss_G``, and ``D_real`` = mean D(x | y),
    ``D_fake`` = mean D(G(z | y) | y) in D's step.
    """
    x, y = batches.next()                                       # real pairs (x, y) ~ p_data
    z = torch.randn(len(x), G.z_dim, device=run.device)
    with run.autocast():
        out = d_loss(D, G, x, y, z, cfg.label_mode, cfg.generator)
    run.update("D", out["loss"])

    set_requires_grad(D, False)                                 # G: one step; D is only a function here
    z = torch.randn(len(x), G.z_dim, device=run.device)
    with run.autocast():
        loss_G = g_loss(D, G, z, y, cfg.label_mode)
    run.update("G", loss_G)
    set_requires_grad(D, True)
    return dict(loss_D=out["loss"].detach(), loss_G=loss_G.detach(),
                D_real=torch.sigmoid(out["real_logits"].detach()).mean(),
                D_fake=torch.sigmoid(out["fake_logits"].detach()).mean())
