"""Chapter 02's lab: what the chapter does with Mirza & Osindero's conditional GAN (``gan_course.models.cgan``).

- ``CLAIMS``: what the chapter claims about its runs, checked by ``gan_course.claims``;
- measuring conditioning with a classifier: ``balanced_labels``, ``sampler``, ``class_grid_inputs``,
  ``conditioning_report`` (agreement with y, class coverage, how much the *noise* decides the class);
- ``train_arm``: a broken-label arm of "What goes wrong", chapter 01's arm trainer around ``cgan.train_step``
  with the agreement measured as it trains;
- the explorers: ``render_class_samples`` / ``class_explorer`` (pick y and a seed) and ``render_class_grid`` /
  ``grid_explorer`` (rows: labels, columns: noise vectors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from ..claims import Claim
from ..metrics import mode_coverage_from_predictions
from ..models import cgan
from ..sampling import sample
from ..training import Run
from ..viz import show_images
from ..widgets import choice, explorer, seed_slider
from . import gan as gan_lab

# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("D_needs_the_right_label", "Sec. 3 / Eq. 2: G obeys y only because D judges (x, y) pairs (classifier "
          "agreement with y, WRONG_STEPS steps after the same branch point: correct pairs vs D seeing shuffled "
          "labels)", "agreement_paired_at_branch_end", ">", "agreement_label_shuffled"),
    Claim("D_without_y_lets_G_ignore_it", "Sec. 3: with y dropped at D the game is chapter 01's (agreement: correct "
          "pairs vs D's label input all zeros)", "agreement_paired_at_branch_end", ">", "agreement_label_dropped"),
]

# ============================================================================ measuring conditioning
def balanced_labels(n: int, num_classes: int, device=None) -> torch.Tensor:
    """0, 1, ..., K-1, 0, 1, ... (n labels, every class equally often when K divides n)."""
    return torch.arange(n, device=device) % num_classes


def sampler(G: cgan.Generator, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """``n -> n samples`` with balanced labels (``balanced_labels``) and z ~ N(0, I) from a seeded generator: the
    form ``gan_course.metrics`` takes (FID, coverage...); p(y) is then the data's uniform class distribution."""
    def sample_fn(n: int) -> torch.Tensor:
        return sample(G, n, balanced_labels(n, G.num_classes), seed=seed)
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
def conditioning_report(G: cgan.Generator, classifier, n_noise: int = 100, seed: int = 0) -> ConditioningReport:
    """Classify G(z | y) for every label y and ``n_noise`` shared noise vectors z (``class_grid_inputs``) with the
    course classifier, and summarise (see ``ConditioningReport``)."""
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


# ============================================================================ experiment arms
def train_arm(name: str, G: cgan.Generator, D: cgan.Discriminator, dataset, steps: int, cfg: cgan.Config, *,
              batch_size: int, seed: int = 0, device: torch.device | str = "cpu", optimizers: tuple | None = None,
              classifier: nn.Module | None = None, eval_every: int = 0, n_noise: int = 25,
              report_seed: int = 0) -> Run:
    """``steps`` calls of ``cgan.train_step`` with ``cfg`` (its ``label_mode`` may break the pairing) in a ``Run``:
    ``gan_course.lab.gan.train_arm`` on ``Batches(dataset, batch_size, seed)`` of (x, y).

    ``optimizers``: ``(opt_G, opt_D)`` to continue with (e.g. loaded from a snapshot of the main run). With a
    ``classifier`` and ``eval_every``, the agreement with y and the noise share (``conditioning_report`` on
    ``n_noise`` noise vectors per label, drawn with ``report_seed``) are logged every ``eval_every`` steps of the
    arm and at its last. Returns the Run (``run.history``: ``loss_D``, ``loss_G``, ``agreement``, ...).
    """
    def measure(G):
        report = conditioning_report(G, classifier, n_noise=n_noise, seed=report_seed)
        return {"agreement": report.agreement, "noise_share": report.noise_share}

    return gan_lab.train_arm(name, G, D, dataset, steps, cfg, batch_size=batch_size, seed=seed, device=device,
                             train_step=cgan.train_step, optimizers=optimizers,
                             measure=measure if classifier is not None else None, measure_every=eval_every)


# ============================================================================ explorers
def _class_names(G: cgan.Generator, classes: Sequence[str] | None) -> list[str]:
    return list(classes) if classes is not None else [str(k) for k in range(G.num_classes)]


@torch.no_grad()
def render_class_samples(G: cgan.Generator, label: int, seed: int, n: int = 16, classes: Sequence[str] | None = None,
                         classifier=None):
    """Figure: ``n`` samples G(z | y = ``label``) for z drawn with ``seed``, one class, many styles. With a
    ``classifier``, each sample is titled with its predicted class (red when it disagrees with the label)."""
    names = _class_names(G, classes)
    x = sample(G, n, torch.full((n,), int(label), dtype=torch.long), seed=seed)
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
def render_class_grid(G: cgan.Generator, seed: int, n_noise: int = 10, labels: Sequence[int] | None = None,
                      classes: Sequence[str] | None = None):
    """Figure: a class-by-noise grid, row r = label ``labels[r]``, column c = noise z_c (drawn with ``seed``).

    Down a column z is fixed and only y changes: the *content* (which character) should follow y while the
    *style* (thickness, slant, font) stays. Along a row y is fixed and z changes: the style varies.
    """
    names = _class_names(G, classes)
    labels = list(range(G.num_classes)) if labels is None else [int(k) for k in labels]
    z = torch.randn(n_noise, G.z_dim, generator=torch.Generator().manual_seed(seed))
    x = sample(G, *class_grid_inputs(z, labels))
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


def class_explorer(G: cgan.Generator, classes: Sequence[str] | None = None, classifier=None, n: int = 16,
                   title: str = "Pick a class and a seed"):
    """Explorer: a class dropdown and a seed slider over ``render_class_samples``."""
    names = _class_names(G, classes)
    return explorer(lambda label, seed: render_class_samples(G, label, seed, n, names, classifier), title=title,
                    label=choice([(name, k) for k, name in enumerate(names)], description="class y"),
                    seed=seed_slider())


def grid_explorer(G: cgan.Generator, classes: Sequence[str] | None = None, n_noise: int = 10,
                  title: str = "Label = content, noise = style"):
    """Explorer: a seed slider (which noise vectors) and a label-set choice over ``render_class_grid``."""
    names = _class_names(G, classes)
    sets = {"all classes": list(range(G.num_classes))}
    if G.num_classes > 10:
        sets |= {f"first {10}": list(range(10)), f"last {G.num_classes - 10}": list(range(10, G.num_classes))}
    columns = widgets.IntSlider(value=n_noise, min=2, max=16, description="columns")
    return explorer(lambda seed, rows, columns: render_class_grid(G, seed, columns, sets[rows], names), title=title,
                    seed=seed_slider(), rows=choice(list(sets), description="rows"), columns=columns)
