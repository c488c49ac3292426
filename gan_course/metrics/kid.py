r"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", arXiv 1801.01401).

KID is the squared maximum mean discrepancy between the feature distributions of real (``x``) and generated
(``y``) images, with the cubic polynomial kernel on d-dimensional features

.. math::

    k(a, b) = \Big(\frac{a^\top b}{d} + 1\Big)^3 ,

estimated without bias from m real and n generated feature vectors:

.. math::

    \widehat{\mathrm{MMD}}^2_u = \frac{1}{m(m-1)} \sum_{i \ne j} k(x_i, x_j)
                               + \frac{1}{n(n-1)} \sum_{i \ne j} k(y_i, y_j)
                               - \frac{2}{mn} \sum_{i, j} k(x_i, y_j) .

Unlike FID, its expectation is exactly the population MMD^2, so two samples of the same distribution give
KID ~ 0 on average (it can be slightly negative) whatever ``n``: the better metric for small sample sizes.
As in the paper, the estimate is averaged over ``subsets`` random subsets of ``subset_size`` images each; the
spread across subsets (``std``) says how much to trust the mean. Lower is better.
"""

from __future__ import annotations

import torch

from .embed import features_of
from .features import FeatureNet
from .registry import feature_network

__all__ = ["polynomial_kernel", "mmd2_unbiased", "kid_from_features", "kid"]


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor, degree: int = 3, gamma: float | None = None,
                      coef: float = 1.0) -> torch.Tensor:
    r"""Gram matrix :math:`k(a_i, b_j) = (\gamma\, a_i^\top b_j + c)^{p}`, with ``gamma = 1/d`` by default."""
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return (a @ b.T * gamma + coef) ** degree


def mmd2_unbiased(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 from the three Gram matrices (m x m, m x n, n x n): the diagonals of k_xx and k_yy are
    left out; every pair of k_xy counts (x and y are independent)."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2 * k_xy.sum() / (m * n)


def kid_from_features(f_real: torch.Tensor, f_fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
                      degree: int = 3, gamma: float | None = None, coef: float = 1.0,
                      seed: int = 0) -> tuple[float, float]:
    """KID between two feature sets: ``(mean, std)`` of the unbiased MMD^2 over ``subsets`` random subsets.

    Each subset draws ``min(subset_size, N_real, N_fake)`` rows from each set without replacement (a generator
    seeded by ``seed``); computations in float64. ``std`` is the standard deviation across subsets.
    """
    x, y = torch.as_tensor(f_real).double().cpu(), torch.as_tensor(f_fake).double().cpu()
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError(f"KID needs at least 2 feature vectors in each set, got {len(x)} and {len(y)}")
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        a = x[torch.randperm(len(x), generator=g)[:size]]
        b = y[torch.randperm(len(y), generator=g)[:size]]
        k = lambda u, v: polynomial_kernel(u, v, degree, gamma, coef)
        values.append(mmd2_unbiased(k(a, a), k(a, b), k(b, b)))
    values = torch.stack(values)
    return float(values.mean()), float(values.std(unbiased=False))


def kid(real, fake, net: FeatureNet | str, n: int | None = None, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0, batch_size: int = 256, progress: bool = False) -> tuple[float, float]:
    """KID ``(mean, std)`` between ``real`` and ``fake`` in the feature space of ``net``.

    Sources as for ``fid`` (tensors, datasets, ``sample(n)`` callables, or (N, D) features); subsets of
    ``min(subset_size, n)`` images, ``subsets`` times.
    """
    net = feature_network(net) if isinstance(net, str) else net
    f_real = features_of(real, net, n, seed, batch_size, progress)
    f_fake = features_of(fake, net, n, seed + 1, batch_size, progress)
    return kid_from_features(f_real, f_fake, subsets=subsets, subset_size=subset_size, seed=seed)
