r"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
Assessing Generative Models", arXiv 1904.06991).

FID folds two failures into one number: generated images that look wrong (low *fidelity*) and generated
images that miss parts of the data (low *variety*). Precision and recall separate them. Each set of feature
vectors approximates its manifold by a union of balls, one around every sample, whose radius is the distance
to its k-th nearest neighbour within the same set (k = 3 in the paper):

.. math::

    f(\phi, \Phi) = \begin{cases} 1 & \text{if } \lVert \phi - \phi' \rVert_2 \le
        \lVert \phi' - \mathrm{NN}_k(\phi', \Phi) \rVert_2 \text{ for some } \phi' \in \Phi \\
        0 & \text{otherwise} \end{cases}

.. math::

    \mathrm{precision} = \frac{1}{|\Phi_g|} \sum_{\phi_g \in \Phi_g} f(\phi_g, \Phi_r), \qquad
    \mathrm{recall}    = \frac{1}{|\Phi_r|} \sum_{\phi_r \in \Phi_r} f(\phi_r, \Phi_g).

Precision: the fraction of generated samples that fall on the real manifold (are they realistic?).
Recall: the fraction of real samples that fall on the generated manifold (is all of the data produced?).
A truncated / mode-dropping generator has high precision and low recall; a blurry, noisy one the reverse.
Both lie in [0, 1]; higher is better. They depend on k and n (use the same for every comparison).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .embed import features_of
from .features import FeatureNet
from .registry import feature_network

__all__ = ["PrecisionRecall", "knn_radii", "manifold_fraction", "precision_recall_from_features",
           "precision_recall"]


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b)           # float64 inputs: the matrix-product form is accurate enough


def knn_radii(features: torch.Tensor, k: int = 3, batch_size: int = 1024) -> torch.Tensor:
    """Distance of every row of ``features`` (N, D) to its k-th nearest *other* row: the ball radii (N,)."""
    f = torch.as_tensor(features).double().cpu()
    if len(f) <= k:
        raise ValueError(f"need more than k={k} samples, got {len(f)}")
    radii = []
    for start in range(0, len(f), batch_size):
        d = _distances(f[start:start + batch_size], f)
        radii.append(d.kthvalue(k + 1, dim=1).values)       # the 1st smallest is the point itself (0)
    return torch.cat(radii)


def manifold_fraction(query: torch.Tensor, reference: torch.Tensor, radii: torch.Tensor,
                      batch_size: int = 1024) -> float:
    """Fraction of ``query`` rows inside at least one ball ``||q - reference_j|| <= radii_j``."""
    q, r = torch.as_tensor(query).double().cpu(), torch.as_tensor(reference).double().cpu()
    inside = 0
    for start in range(0, len(q), batch_size):
        d = _distances(q[start:start + batch_size], r)
        inside += (d <= radii.unsqueeze(0)).any(dim=1).sum().item()
    return inside / len(q)


def precision_recall_from_features(f_real: torch.Tensor, f_fake: torch.Tensor, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall of generated features ``f_fake`` against real features ``f_real``."""
    precision = manifold_fraction(f_fake, f_real, knn_radii(f_real, k))
    recall = manifold_fraction(f_real, f_fake, knn_radii(f_fake, k))
    return PrecisionRecall(precision, recall)


def precision_recall(real, fake, net: FeatureNet | str, n: int | None = None, k: int = 3, seed: int = 0,
                     batch_size: int = 256, progress: bool = False) -> PrecisionRecall:
    """``PrecisionRecall(precision, recall)`` of ``fake`` against ``real`` in the feature space of ``net``.

    Sources as for ``fid`` (tensors, datasets, ``sample(n)`` callables, or (N, D) features). The paper uses
    n = 50,000 and k = 3; on a CPU a few thousand is the practical range (both numbers drift with n).
    """
    net = feature_network(net) if isinstance(net, str) else net
    f_real = features_of(real, net, n, seed, batch_size, progress)
    f_fake = features_of(fake, net, n, seed + 1, batch_size, progress)
    return precision_recall_from_features(f_real, f_fake, k)
