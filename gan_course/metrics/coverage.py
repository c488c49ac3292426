r"""Mode coverage: the course's mode-collapse detector, and classifier agreement for conditional GANs.

On labelled data a classifier can tell *which* classes a generator produces. Classify n generated images,
count the predictions per class, and compare this histogram :math:`\hat p_g(c)` with the class distribution
of the data :math:`p_r(c)` (uniform for the course's balanced datasets):

- **classes covered**: class c counts as covered when it receives at least ``threshold`` (default 1/4) of its
  expected share, :math:`\hat p_g(c) \ge \tau\, p_r(c)`; for K balanced classes that is
  :math:`\ge \tau / K` of the samples (with n = 2,000 and K = 20, at least 25 images). A collapsed generator
  covers few classes; a few stray predictions (classifier errors on odd samples) do not count as coverage.
- **KL divergence** of the generated class histogram from the data's, in nats,

  .. math:: \mathrm{KL}(\hat p_g \,\Vert\, p_r) = \sum_c \hat p_g(c) \log \frac{\hat p_g(c)}{p_r(c)},

  0 for a perfectly balanced generator, :math:`\log K` when every sample falls in one class (the measure of
  Metz et al. 2017, "Unrolled GANs", arXiv 1611.02163, on stacked MNIST). Where the reference gives a class
  zero mass (e.g. glyph digits scored by the 20-class glyph classifier) it is smoothed with 1e-3 of a uniform
  share so the KL stays finite; such classes do not count in ``num_classes``.

``classifier_agreement(classifier, images, labels)`` is the fraction of images classified as the label they
were generated for: how well a conditional generator obeys its condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .embed import features_of
from .features import FeatureNet
from .registry import feature_network
from .sources import ImageSource

__all__ = ["ModeCoverage", "class_histogram", "reference_distribution", "mode_coverage_from_predictions",
           "mode_coverage", "classifier_agreement", "COVERAGE_THRESHOLD"]

COVERAGE_THRESHOLD = 0.25


@dataclass
class ModeCoverage:
    """Result of ``mode_coverage``: ``covered`` of ``num_classes`` classes, ``kl`` in nats, and the details."""

    covered: int
    num_classes: int
    kl: float
    histogram: torch.Tensor                    # fraction of generated samples predicted as each class
    reference: torch.Tensor                    # the data's class distribution it is compared with
    missing: list[str] = field(default_factory=list)
    threshold: float = COVERAGE_THRESHOLD
    classes: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """``covered / num_classes``."""
        return self.covered / self.num_classes

    def __str__(self) -> str:
        missing = f"; missing: {' '.join(self.missing)}" if self.missing else ""
        return (f"{self.covered}/{self.num_classes} classes covered (>= {self.threshold:g} of their share), "
                f"KL(generated || data) = {self.kl:.3f} nats{missing}")


def class_histogram(predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Fraction of ``predictions`` (class indices) in each of ``num_classes`` classes (float64)."""
    counts = torch.bincount(torch.as_tensor(predictions).long().cpu(), minlength=num_classes).double()
    return counts / counts.sum()


def reference_distribution(reference, num_classes: int) -> torch.Tensor:
    """The data's class distribution (float64, sums to 1) from ``reference``: None (uniform), a dataset with
    ``.targets``, an int tensor of labels, or a float tensor of K probabilities/counts."""
    if reference is None:
        return torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)
    if hasattr(reference, "targets"):
        reference = torch.as_tensor(reference.targets)
    reference = torch.as_tensor(reference)
    if reference.is_floating_point():
        if reference.shape != (num_classes,) or (reference < 0).any():
            raise ValueError(f"a reference distribution must be {num_classes} non-negative numbers")
        return reference.double() / reference.double().sum()
    return class_histogram(reference, num_classes)


def mode_coverage_from_predictions(predictions: torch.Tensor, num_classes: int, reference=None,
                                   threshold: float = COVERAGE_THRESHOLD,
                                   classes: list[str] | None = None) -> ModeCoverage:
    """``ModeCoverage`` of predicted class indices (see the module docstring for the rule)."""
    p_g = class_histogram(predictions, num_classes)
    p_r = reference_distribution(reference, num_classes)
    present = p_r > 0
    covered_mask = present & (p_g >= threshold * p_r)
    smooth = p_r if present.all() else (1 - 1e-3) * p_r + 1e-3 / num_classes
    nz = p_g > 0
    kl = float((p_g[nz] * (p_g[nz] / smooth[nz]).log()).sum())
    names = list(classes) if classes is not None else [str(c) for c in range(num_classes)]
    missing = [names[c] for c in range(num_classes) if present[c] and not covered_mask[c]]
    return ModeCoverage(int(covered_mask.sum()), int(present.sum()), max(kl, 0.0), p_g, p_r, missing,
                        threshold, names)


@torch.no_grad()
def mode_coverage(classifier: FeatureNet | str, images, n: int | None = None, reference=None,
                  threshold: float = COVERAGE_THRESHOLD, seed: int = 0, batch_size: int = 256,
                  progress: bool = False) -> ModeCoverage:
    """How many classes ``classifier`` finds among ``n`` generated ``images``, and the KL of their histogram.

    ``classifier``: a course classifier (or its name). ``images``: tensor, dataset, ``sample(n)`` callable,
    or (N, K) logits already computed. ``reference``: the data's class distribution (None = uniform; a
    dataset; labels; probabilities). A class is covered when it gets >= ``threshold`` of its reference share.
    """
    classifier = feature_network(classifier) if isinstance(classifier, str) else classifier
    logits = features_of(images, classifier, n, seed, batch_size, progress, what="logits")
    k = logits.shape[1]
    return mode_coverage_from_predictions(logits.argmax(1), k, reference, threshold,
                                          getattr(classifier, "classes", None))


@torch.no_grad()
def classifier_agreement(classifier: FeatureNet | str, images, labels: torch.Tensor,
                         batch_size: int = 256) -> float:
    """Fraction of ``images`` that ``classifier`` assigns to the class in ``labels`` (the class they were
    generated for). ``images``: tensor, dataset or ``sample(n)`` callable with n = len(labels), in order."""
    classifier = feature_network(classifier) if isinstance(classifier, str) else classifier
    labels = torch.as_tensor(labels).long().cpu()
    src = ImageSource(images, n=len(labels))
    if src.index is not None:
        raise ValueError("images and labels must have the same length")
    device = next(classifier.parameters()).device
    predicted = torch.cat([classifier.logits(x.to(device)).argmax(1).cpu() for x in src.batches(batch_size)])
    return float((predicted == labels).double().mean())

