r"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs", arXiv 1606.03498).

Classify every generated image with a fixed classifier, giving :math:`p(y \mid x)`. Good samples should be
classified confidently (low-entropy :math:`p(y \mid x)`) and, all together, cover every class (high-entropy
marginal :math:`p(y) = \mathbb{E}_x\, p(y \mid x)`). The score rewards both:

.. math::

    \mathrm{IS} = \exp\Big(\mathbb{E}_{x \sim p_g}\, \mathrm{KL}\big(p(y \mid x) \,\Vert\, p(y)\big)\Big)
               = \exp\big(H(y) - \mathbb{E}_x H(y \mid x)\big) \in [1, K].

It is K for confident predictions spread uniformly over K classes and 1 when every image gets the same
prediction (or every prediction is uniform). Higher is better. Its blind spots: it never looks at real data
(a generator producing one perfect image per class scores the maximum: no intra-class diversity is
measured) and it depends entirely on the classifier (the course's classifiers have K = 20 glyph classes,
10 shapes or 10 digits; ImageNet's K = 1000 numbers are a different scale). As in the paper, the samples are
split into ``splits`` groups and the mean and standard deviation of the per-group scores are reported.
"""

from __future__ import annotations

import math

import torch

from .embed import features_of
from .features import FeatureNet
from .registry import feature_network

__all__ = ["inception_score_from_logits", "inception_score"]


def inception_score_from_logits(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """IS ``(mean, std)`` over ``splits`` consecutive groups of the (N, K) class logits (float64)."""
    log_p = torch.log_softmax(torch.as_tensor(logits).double().cpu(), dim=1)   # log p(y|x)
    if len(log_p) < splits:
        raise ValueError(f"need at least splits={splits} samples, got {len(log_p)}")
    scores = []
    for part in torch.tensor_split(log_p, splits):
        log_py = torch.logsumexp(part, 0) - math.log(len(part))                  # log p(y) of this split
        kl = (part.exp() * (part - log_py)).sum(1)                                # KL(p(y|x) || p(y))
        scores.append(kl.mean().exp())
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


def inception_score(images, classifier: FeatureNet | str, n: int | None = None, splits: int = 10, seed: int = 0,
                    batch_size: int = 256, progress: bool = False) -> tuple[float, float]:
    """IS ``(mean, std)`` of ``images`` (tensor, dataset, ``sample(n)`` callable) under ``classifier``'s
    ``logits`` (a course classifier or its name; an (N, K) tensor is taken as logits already computed)."""
    classifier = feature_network(classifier) if isinstance(classifier, str) else classifier
    logits = features_of(images, classifier, n, seed, batch_size, progress, what="logits")
    return inception_score_from_logits(logits, splits)
