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
- the update step packaged for experiments: ``d_loss`` / ``g_loss`` (Eq. 2 split per player, with a
  ``label_mode`` that breaks the pairing on purpose), ``train_steps``;
- measuring conditioning with a classifier: ``balanced_labels``, ``sampler``, ``class_grid_inputs``,
  ``conditioning_report`` (agreement with y, class coverage, how much the *noise* decides the class);
- the explorers: ``render_class_samples`` / ``class_explorer`` (pick y and a seed) and ``render_class_grid`` /
  ``grid_explorer`` (rows: labels, columns: noise vectors).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ..losses import discriminator_loss, generator_loss_nonsaturating
from ..sampling import generate
from . import gan

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

    def __init__(self, z_dim: int = 100, num_classes: int = 20, out_shape: tuple[int, ...] = (1, 28, 28),
                 hidden: tuple[int, ...] = (128, 256, 512, 1024), batch_norm: bool = True, leak: float = 0.2):
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

    def __init__(self, in_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 20,
                 hidden: tuple[int, ...] = (512, 512, 512), unit: str = "leaky_relu", pieces: int = 5,
                 dropout: float = 0.4, input_dropout: float = 0.0):
        super().__init__()
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        self.input_dropout = gan.InputDropout(input_dropout)
        self.mlp = gan.Discriminator((math.prod(self.in_shape) + num_classes,), hidden, unit=unit, pieces=pieces,
                                     dropout=dropout, input_dropout=0.0)

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


# ============================================================================ measuring conditioning
def balanced_labels(n: int, num_classes: int, device=None) -> torch.Tensor:
    """0, 1, ..., K-1, 0, 1, ... (n labels, every class equally often when K divides n)."""
    return torch.arange(n, device=device) % num_classes


@torch.no_grad()
def sample(G: Generator, z: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """G(z | y) in eval mode, in batches, on the CPU (G's training mode is restored): ``sampling.generate``."""
    return generate(G, z, y, batch_size=batch_size)


def sampler(G: Generator, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """``n -> n samples`` with balanced labels (``balanced_labels``) and z ~ N(0, I) from a seeded generator: the
    form ``gan_course.metrics`` takes (FID, coverage...); p(y) is then the data's uniform class distribution."""
    def sample_fn(n: int) -> torch.Tensor:
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
        return sample(G, z, balanced_labels(n, G.num_classes))
    return sample_fn


def class_grid_inputs(z: torch.Tensor, labels: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs for a class-by-noise grid: row r has label ``labels[r]``, column c has noise ``z[c]``.

    Returns (z_grid, y_grid) of length len(labels) * len(z), row-major (all columns of row 0, then row 1, ...), so
    ``G(z_grid, y_grid)`` drawn with ``nrow=len(z)`` shows the label changing down a column and the noise changing
    along a row.
    """
    labels = torch.as_tensor(labels, dtype=torch.long, device=z.device)
    return z.repeat(len(labels), 1), labels.repeat_interleave(len(z))


@dataclass
class ConditioningReport:
    """How well G(z | y) obeys y, judged by a classifier on a grid of K labels x ``n_noise`` noise vectors.

    ``agreement``: fraction of samples classified as the label they were generated for (chance: 1/K).
    ``per_class``: the same for each label. ``coverage``: classes found among the samples (``ModeCoverage``).
    ``noise_share``: for each noise vector z, the largest fraction of the K labels whose samples fall in one
    predicted class, averaged over z: 1/K when the label decides the class (a working cGAN), 1 when z alone
    does (a G that ignores y). ``predictions``: (K, n_noise) predicted classes.
    """

    agreement: float
    per_class: torch.Tensor
    noise_share: float
    coverage: object
    predictions: torch.Tensor
    classes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.per_class)

    def __str__(self) -> str:
        return (f"agreement with y {self.agreement:.1%} (chance {1 / self.num_classes:.1%}); "
                f"noise decides the class for {self.noise_share:.1%} of labels (1/K = {1 / self.num_classes:.1%}: "
                f"the label decides; 100%: the noise does); {self.coverage}")


@torch.no_grad()
def conditioning_report(G: Generator, classifier, n_noise: int = 100, seed: int = 0) -> ConditioningReport:
    """Classify G(z | y) for every label y and ``n_noise`` shared noise vectors z (``class_grid_inputs``) with the
    course classifier, and summarise (see ``ConditioningReport``)."""
    from ..metrics import mode_coverage_from_predictions

    K = G.num_classes
    z = torch.randn(n_noise, G.z_dim, generator=torch.Generator().manual_seed(seed))
    z_grid, y_grid = class_grid_inputs(z, range(K))
    x = sample(G, z_grid, y_grid)
    dev = next(classifier.parameters()).device
    predicted = torch.cat([classifier.logits(x[i:i + 500].to(dev)).argmax(1).cpu() for i in range(0, len(x), 500)])
    hits = (predicted == y_grid).double()
    per_column = predicted.view(K, n_noise)
    share = torch.stack([torch.bincount(per_column[:, c], minlength=K).max() for c in range(n_noise)]).double() / K
    classes = list(getattr(classifier, "classes", [str(k) for k in range(K)]))
    coverage = mode_coverage_from_predictions(predicted, K, classes=classes)
    return ConditioningReport(float(hits.mean()), hits.view(K, n_noise).mean(1), float(share.mean()), coverage,
                              per_column, classes)


# ============================================================================ the update step, packaged
def train_steps(G: Generator, D: Discriminator, batches, steps: int, *, label_mode: str = "paired", lr: float = 2e-4,
                betas: tuple[float, float] = (0.5, 0.999), optimizers: tuple | None = None, classifier=None,
                eval_every: int = 0, n_noise: int = 25, first_step: int = 0, seed: int = 0) -> dict[str, list]:
    """``steps`` of the chapter's update step (one D step, one G step, Eq. 2), without checkpoints: for the
    experiments of "What goes wrong". ``batches`` is a ``gan_course.training.Batches`` of (x, y).

    ``optimizers``: ``(opt_G, opt_D)`` to continue with (e.g. loaded from a snapshot of the main run); default:
    fresh Adam(``lr``, ``betas``). With a ``classifier`` and ``eval_every``, the agreement with y is measured every
    ``eval_every`` steps (``conditioning_report`` on ``n_noise`` noise vectors per label); steps are counted from
    ``first_step`` in the record. ``seed`` seeds the label shuffling and the report's noise.
    """
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}, got {label_mode!r}")
    device = next(G.parameters()).device
    if optimizers is None:
        optimizers = (torch.optim.Adam(G.parameters(), lr=lr, betas=betas),
                      torch.optim.Adam(D.parameters(), lr=lr, betas=betas))
    opt_G, opt_D = optimizers
    rng = torch.Generator().manual_seed(seed)
    record: dict[str, list] = {"loss_D": [], "loss_G": [], "eval_step": [], "agreement": [], "noise_share": []}
    for step in range(first_step + 1, first_step + steps + 1):
        x, y = batches.next()
        z = torch.randn(len(x), G.z_dim, device=device)
        out = d_loss(D, G, x, y, z, label_mode, rng)
        opt_D.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt_D.step()

        z = torch.randn(len(x), G.z_dim, device=device)
        loss_G = g_loss(D, G, z, y, label_mode)
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        record["loss_D"].append(out["loss"].item())
        record["loss_G"].append(loss_G.item())
        if classifier is not None and eval_every and (step % eval_every == 0 or step == first_step + steps):
            report = conditioning_report(G, classifier, n_noise=n_noise, seed=seed)
            record["eval_step"].append(step)
            record["agreement"].append(report.agreement)
            record["noise_share"].append(report.noise_share)
    return record


# ============================================================================ explorers
def _class_names(G: Generator, classes: Sequence[str] | None) -> list[str]:
    return list(classes) if classes is not None else [str(k) for k in range(G.num_classes)]


@torch.no_grad()
def render_class_samples(G: Generator, label: int, seed: int, n: int = 16, classes: Sequence[str] | None = None,
                         classifier=None):
    """Figure: ``n`` samples G(z | y = ``label``) for z drawn with ``seed``, one class, many styles. With a
    ``classifier``, each sample is titled with its predicted class (red when it disagrees with the label)."""
    names = _class_names(G, classes)
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    x = sample(G, z, torch.full((n,), int(label), dtype=torch.long))
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.35 * rows + 0.5), squeeze=False)
    predicted = None
    if classifier is not None:
        predicted = classifier.logits(x.to(next(classifier.parameters()).device)).argmax(1).cpu()
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(((x[i, 0] + 1) / 2).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if predicted is not None:
            ok = int(predicted[i]) == int(label)
            ax.set_title(f"seen: {names[int(predicted[i])]}", fontsize=8, color="k" if ok else "tab:red")
    agree = "" if predicted is None else f"; classifier agrees on {float((predicted == label).double().mean()):.0%}"
    fig.suptitle(f"G(z | y = '{names[int(label)]}'), {n} noise vectors z from seed {seed}{agree}")
    fig.tight_layout()
    return fig


@torch.no_grad()
def render_class_grid(G: Generator, seed: int, n_noise: int = 10, labels: Sequence[int] | None = None,
                      classes: Sequence[str] | None = None):
    """Figure: a class-by-noise grid, row r = label ``labels[r]``, column c = noise z_c (drawn with ``seed``).

    Down a column z is fixed and only y changes: the *content* (which character) should follow y while the
    *style* (thickness, slant, font) stays. Along a row y is fixed and z changes: the style varies.
    """
    from ..viz import show_images

    names = _class_names(G, classes)
    labels = list(range(G.num_classes)) if labels is None else [int(k) for k in labels]
    z = torch.randn(n_noise, G.z_dim, generator=torch.Generator().manual_seed(seed))
    z_grid, y_grid = class_grid_inputs(z, labels)
    x = sample(G, z_grid, y_grid)
    fig, ax = plt.subplots(figsize=(0.55 * n_noise + 1.2, 0.55 * len(labels) + 0.8))
    show_images(x, nrow=n_noise, ax=ax)
    ax.set_axis_on()
    step = x.shape[-1] + 2                                        # image side + make_grid's padding
    ax.set_yticks([step * r + step / 2 for r in range(len(labels))], [names[k] for k in labels])
    ax.set_xticks([step * c + step / 2 for c in range(n_noise)], [str(c) for c in range(n_noise)])
    ax.tick_params(length=0, labelsize=8)
    ax.set_xlabel(f"noise vector z (seed {seed}): the style")
    ax.set_ylabel("label y: the content")
    ax.set_title("G(z | y): one row per label, one column per noise vector")
    fig.tight_layout()
    return fig


def class_explorer(G: Generator, classes: Sequence[str] | None = None, classifier=None, n: int = 16,
                   title: str = "Pick a class and a seed"):
    """Explorer: a class dropdown and a seed slider over ``render_class_samples``."""
    from ..widgets import choice, explorer, seed_slider

    names = _class_names(G, classes)
    return explorer(lambda label, seed: render_class_samples(G, label, seed, n, names, classifier), title=title,
                    label=choice([(name, k) for k, name in enumerate(names)], description="class y"),
                    seed=seed_slider())


def grid_explorer(G: Generator, classes: Sequence[str] | None = None, n_noise: int = 10,
                  title: str = "Label = content, noise = style"):
    """Explorer: a seed slider (which noise vectors) and a label-set choice over ``render_class_grid``."""
    import ipywidgets as widgets

    from ..widgets import choice, explorer, seed_slider

    names = _class_names(G, classes)
    sets = {"all classes": list(range(G.num_classes))}
    if G.num_classes > 10:
        sets |= {f"first {10}": list(range(10)), f"last {G.num_classes - 10}": list(range(10, G.num_classes))}
    columns = widgets.IntSlider(value=n_noise, min=2, max=16, description="columns")
    return explorer(lambda seed, rows, columns: render_class_grid(G, seed, columns, sets[rows], names), title=title,
                    seed=seed_slider(), rows=choice(list(sets), description="rows"), columns=columns)
