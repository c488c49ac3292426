"""What chapter 08 does with BigGAN (``gan_course.models.biggan``): the truncation trick, measured and explored.

- ``saturated_fraction``: the share of pixels at the tanh rails (BigGAN's saturation artefacts at low psi);
- ``truncation_sweep``: the fidelity / variety trade-off of Sec. 3.1 (Fig. 2), measured with the course classifier
  at every threshold psi on the same latents;
- ``render_truncation`` / ``truncation_explorer``: the sample grid at psi beside the trade-off curves.

The singular values of every weight over training (Sec. 4) are recorded and explored with ``gan_course.lab.spectra``
(``SpectraRecorder``, ``spectra_explorer``), shared with chapter 07.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from ..metrics import classifier_agreement, course_classifier, evaluate
from ..models import biggan
from ..viz import show_images
from ..widgets import choice, explorer

__all__ = ["saturated_fraction", "truncation_sweep", "render_truncation", "truncation_explorer"]


# ============================================================================ the truncation trick (Sec. 3.1)
def saturated_fraction(images: torch.Tensor, level: float = 0.99) -> float:
    """Fraction of pixel values at the tanh rails (|x| > ``level``): BigGAN's saturation artefacts, measured."""
    return float((images.abs() > level).float().mean())


def truncation_sweep(G: nn.Module, thresholds, dataset: str = "shapes", n: int = 1000, seed: int = 0,
                     grid: int = 40, **evaluate_kwargs) -> list[dict]:
    """The fidelity / variety trade-off (BigGAN Sec. 3.1, Fig. 2): for each truncation threshold psi (None: no
    truncation), ``gan_course.metrics.evaluate`` on ``n`` class-balanced samples with the dataset's course classifier
    (FID, precision, recall, classes covered, class KL, IS), the classifier agreement with the class each sample was
    generated for, the saturated fraction, and the first ``grid`` samples (for the explorer).

    The same seed at every threshold: values of z inside [-psi, psi] are kept, the others redrawn, so the grids
    show the same latents pulled towards 0 as psi shrinks.
    """
    classifier = course_classifier(dataset)
    y = torch.arange(n) % getattr(G, "module", G).n_classes
    rows = []
    for psi in thresholds:
        images = biggan.sample(G, n, psi, y=y, generator=torch.Generator().manual_seed(seed))
        m = evaluate(images, dataset, n=n, seed=seed, **evaluate_kwargs)
        rows.append(dict(threshold=psi, fid=m["fid"], precision=m["precision"], recall=m["recall"],
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
    recall, and FID and saturated fraction against the threshold; the current threshold is marked."""
    model = model or next(iter(sweeps))
    rows = sweeps[model]
    i = next((j for j, r in enumerate(rows) if r["threshold"] == threshold), None)
    if i is None:
        raise ValueError(f"threshold {threshold} is not in the sweep: {[r['threshold'] for r in rows]}")
    finite = [r["threshold"] for r in rows if r["threshold"] is not None]
    inf_x = (max(finite) * 1.3) if finite else 1.0  # where "no truncation" is drawn on the threshold axis

    def x_of(r):
        return inf_x if r["threshold"] is None else r["threshold"]

    label = _threshold_label
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2), gridspec_kw={"width_ratios": [1.5, 1, 1, 1]})
    show_images(rows[i]["images"], nrow=nrow, ax=axes[0],
                title=f"{model}: psi = {label(threshold)}  (one class per column)")
    for name, rs in sweeps.items():
        line, = axes[1].plot([r["recall"] for r in rs], [r["precision"] for r in rs], "o-", label=name)
        axes[2].plot([x_of(r) for r in rs], [r["fid"] for r in rs], "o-", color=line.get_color(), label=name)
        axes[3].plot([x_of(r) for r in rs], [r["saturated"] for r in rs], "o-", color=line.get_color(), label=name)
    r = rows[i]
    axes[1].plot(r["recall"], r["precision"], "k*", markersize=16, label=f"psi = {label(threshold)}")
    axes[1].set(xlabel="recall (variety)", ylabel="precision (fidelity)", title="Fidelity vs variety over psi")
    for ax, ylabel, title in ((axes[2], "FID (course classifier)", "FID vs truncation"),
                                   (axes[3], "fraction of |x| > 0.99", "Saturated pixels")):
        ax.axvline(x_of(r), color="k", ls=":", lw=1)
        ax.set(xlabel="truncation threshold psi (right end: none)", ylabel=ylabel, title=title)
        ax.set_xticks([x_of(q) for q in rows])
        ax.set_xticklabels([label(q["threshold"]) for q in rows], fontsize="small")
    for ax in axes[1:]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
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
