"""What chapter 08 does with BigGAN (``gan_course.models.biggan``): the truncation trick, measured and explored.

- ``saturated_fraction``: the share of pixels at the tanh rails (BigGAN's saturation artefacts at low psi);
- ``truncation_sweep``: the fidelity / variety trade-off of Sec. 3.1 (Fig. 2), measured with the course classifier
  at every threshold psi on the same latents;
- ``standing_statistics``: a copy of G whose batch-norm statistics are re-estimated on the z it will be sampled
  with (truncated or not), BigGAN-PyTorch's "standing statistics"; by default the course samples in eval mode with
  the running statistics gathered in training, i.e. on untruncated z;
- ``render_truncation`` / ``truncation_explorer``: the sample grid at psi beside the trade-off curves.

The singular values of every weight over training (Sec. 4) are recorded and explored with ``gan_course.lab.spectra``
(``SpectraRecorder``, ``spectra_explorer``), shared with chapter 07; so is the attention explorer
(``attention_maps``, ``residual_share``, ``attention_explorer`` of ``gan_course.lab.sagan``, imported here).
"""

from __future__ import annotations

import copy

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from ..claims import Claim
from ..metrics import classifier_agreement, course_classifier, evaluate
from ..models import biggan
from ..sampling import truncated_normal
from ..viz import show_images
from ..widgets import choice, explorer
from .sagan import attention_explorer, attention_maps, residual_share

__all__ = ["CLAIMS", "saturated_fraction", "standing_statistics", "truncation_sweep", "render_truncation",
           "truncation_explorer", "attention_maps", "residual_share", "attention_explorer"]


# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("truncation_raises_agreement", "Sec. 3.1 / Fig. 2: truncating z trades variety for fidelity, so each "
          "sample is more clearly its class (the longer run, class agreement at psi = PSI_REPORTED against "
          "untruncated, the same latents)", "agreement_pretrained_truncated", ">", "agreement_pretrained_untruncated"),
    Claim("truncation_costs_variety", "Sec. 3.1: ... at the cost of variety (the longer run, recall at psi = "
          "PSI_REPORTED against untruncated)", "recall_pretrained_truncated", "<", "recall_pretrained_untruncated"),
    Claim("ortho_reg_helps_at_low_psi", "Sec. 3.1: orthogonal regularisation makes G amenable to truncation (the "
          "two equal-budget runs, FID at the lowest threshold of the sweep, beta = BETA_ORTHO vs beta = 0)",
          "fid_lowest_psi", "<", "fid_no_ortho_lowest_psi"),
    Claim("collapse_hurts", "Sec. 4.1: a collapsed G is worse than the checkpoint before (FID untruncated after "
          "the continued run at COLLAPSE_LR_SCALE x the learning rates, against the main run's last G)",
          "fid_after_collapse", ">", "fid_before_collapse"),
]


# ============================================================================ the truncation trick (Sec. 3.1)
def saturated_fraction(images: torch.Tensor, level: float = 0.99) -> float:
    """Fraction of pixel values at the tanh rails (|x| > ``level``): BigGAN's saturation artefacts, measured."""
    return float((images.abs() > level).float().mean())


@torch.no_grad()
def standing_statistics(G: nn.Module, threshold: float | None = None, batches: int = 16, batch_size: int = 256,
                        seed: int = 0) -> nn.Module:
    """A copy of G (or of an ``EMA``'s generator) whose batch norms use *standing statistics*: their running means
    and variances reset, then re-estimated as plain averages over ``batches`` forward passes in train mode on z
    truncated at ``threshold`` (None: untruncated) and classes in turn. BigGAN-PyTorch computes them this way before
    sampling; here they can follow the truncation, so that a truncated z is normalised with the statistics of
    truncated z. Returns the copy in eval mode; ``G`` is unchanged."""
    net = copy.deepcopy(getattr(G, "module", G))
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None                                   # a cumulative average over the passes
    net.train()
    g = torch.Generator().manual_seed(seed)
    device = next(net.parameters()).device
    for _ in range(batches):
        z = (torch.randn(batch_size, net.z_dim, generator=g) if threshold is None
             else truncated_normal((batch_size, net.z_dim), threshold, generator=g))
        y = torch.arange(batch_size) % net.n_classes
        net(z.to(device), y.to(device))
    return net.eval()


def truncation_sweep(G: nn.Module, thresholds, dataset: str = "shapes", n: int = 1000, seed: int = 0,
                     grid: int = 40, standing: bool = False, **evaluate_kwargs) -> list[dict]:
    """The fidelity / variety trade-off (BigGAN Sec. 3.1, Fig. 2): for each truncation threshold psi (None: no
    truncation), ``gan_course.metrics.evaluate`` on ``n`` class-balanced samples with the dataset's course classifier
    (FID, precision, recall, classes covered, class KL, IS), the classifier agreement with the class each sample was
    generated for, the saturated fraction, and the first ``grid`` samples (for the explorer).

    The same seed at every threshold: values of z inside [-psi, psi] are kept, the others redrawn, so the grids
    show the same latents pulled towards 0 as psi shrinks. ``standing=True`` samples each threshold from
    ``standing_statistics(G, psi)`` (batch norm re-estimated on that truncation) instead of G's running statistics.
    """
    classifier = course_classifier(dataset)
    y = torch.arange(n) % getattr(G, "module", G).n_classes
    rows = []
    for psi in thresholds:
        G_psi = standing_statistics(G, psi, seed=seed + 1) if standing else G
        images = biggan.sample(G_psi, n, psi, y=y, generator=torch.Generator().manual_seed(seed))
        m = evaluate(images, dataset, n=n, seed=seed, **evaluate_kwargs)
        rows.append(dict(threshold=psi, standing=standing, fid=m["fid"], precision=m["precision"], recall=m["recall"],
                         classes_covered=m["classes_covered"], class_kl=m["class_kl"],
                         inception_score=m["inception_score"], agreement=classifier_agreement(classifier, images, y),
                         saturated=saturated_fraction(images), images=images[:grid]))
    return rows


# ============================================================================ the truncation explorer
def _threshold_label(threshold) -> str:
    return "none" if threshold is None else f"{threshold:g}"


def render_truncation(sweeps: dict[str, list[dict]], threshold, model: str | None = None, nrow: int = 10):
    """The truncation explorer's figure: the sample grid of ``model`` at truncation ``threshold`` beside the
    fidelity / variety curves of every model of ``sweeps`` ({model name: ``truncation_sweep`` rows}): precision vs
    recall; IS against FID, the axes of the paper's Fig. 2 (both with the course classifier); the classifier's
    agreement with the class each sample was drawn for, and the saturated fraction, against the threshold. The
    current threshold is marked on every curve."""
    model = model or next(iter(sweeps))
    rows = sweeps[model]
    i = next((j for j, r in enumerate(rows) if r["threshold"] == threshold), None)
    if i is None:
        raise ValueError(f"threshold {threshold} is not in the sweep: {[r['threshold'] for r in rows]}")
    position = {_threshold_label(q["threshold"]): j for j, q in enumerate(rows)}   # thresholds evenly spaced

    def x_of(r):
        return position[_threshold_label(r["threshold"])]

    label = _threshold_label
    fig = plt.figure(figsize=(8.5, 10.5))   # JupyterLab's output width at 100 %: text keeps its size
    grid = fig.add_gridspec(3, 2, height_ratios=[1.05, 1, 1])
    image_ax = fig.add_subplot(grid[0, :])
    pr_ax, fig2_ax, agree_ax, sat_ax = (fig.add_subplot(grid[r, c]) for r, c in ((1, 0), (1, 1), (2, 0), (2, 1)))
    show_images(rows[i]["images"], nrow=nrow, ax=image_ax,
                title=f"{model}: samples at psi = {label(threshold)} (one class per column)")
    r = rows[i]
    for name, rs in sweeps.items():
        line, = pr_ax.plot([q["recall"] for q in rs], [q["precision"] for q in rs], "o-", label=name)
        color = line.get_color()
        if all("inception_score" in q for q in rs):
            fig2_ax.plot([q["fid"] for q in rs], [q["inception_score"] for q in rs], "o-", color=color, label=name)
        if all("agreement" in q for q in rs):
            agree_ax.plot([x_of(q) for q in rs], [q["agreement"] for q in rs], "o-", color=color, label=name)
        sat_ax.plot([x_of(q) for q in rs], [q["saturated"] for q in rs], "o-", color=color, label=name)
    pr_ax.plot(r["recall"], r["precision"], "k*", markersize=14, label=f"psi = {label(threshold)}")
    pr_ax.set(xlabel="recall (variety)", ylabel="precision (fidelity)", title="Precision vs recall over psi")
    if "inception_score" in r:
        fig2_ax.plot(r["fid"], r["inception_score"], "k*", markersize=14, label=f"psi = {label(threshold)}")
    fig2_ax.set(xlabel="FID (course classifier; lower is better)", ylabel="IS (course classifier)",
                title="IS against FID (the paper's Fig. 2 axes)")
    for ax, ylabel, title in ((agree_ax, "classifier agrees with the class", "Class agreement vs psi"),
                              (sat_ax, "fraction of |x| > 0.99", "Saturated pixels vs psi")):
        ax.axvline(x_of(r), color="k", ls=":", lw=1)
        ax.set(xlabel="threshold psi (none: untruncated)", ylabel=ylabel, title=title)
        ax.set_xticks([x_of(q) for q in rows])
        ax.set_xticklabels([label(q["threshold"]) for q in rows])
    for ax in (pr_ax, fig2_ax, agree_ax, sat_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def truncation_explorer(sweeps: dict[str, list[dict]]):
    """Threshold slider (and model choice) over precomputed ``truncation_sweep`` results: ``render_truncation``.

    The slider shows the thresholds as text ("none" for no truncation) and passes the number (or None) on."""
    models = list(sweeps)
    thresholds = {_threshold_label(r["threshold"]): r["threshold"] for r in sweeps[models[0]]}
    labels = list(thresholds)
    return explorer(lambda psi, model: render_truncation(sweeps, thresholds[psi], model),
                    title="The truncation trick: fidelity against variety",
                    psi=widgets.SelectionSlider(options=labels, value=labels[-1], description="psi"),
                    model=choice(models, description="model"))
