r"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models",
arXiv 2002.09797), and a data-copying check (Meehan et al. 2020, "A Non-Parametric Test to Detect Data-Copying in
Generative Models", arXiv 2002.05789).

Precision and recall (``precision_recall``) put a ball around every sample of *both* sets, so one outlier among the
generated samples can swallow a region of the real manifold. Density and coverage use only the real balls, of
radius NND_k(X_i), the distance of real X_i to its k-th nearest real neighbour (k = 5 in the paper), with N real
and M generated samples (Eq. 3 and 4):

.. math::

    \mathrm{density} = \frac{1}{kM} \sum_{j=1}^{M} \sum_{i=1}^{N} 1_{Y_j \in B(X_i, \mathrm{NND}_k(X_i))}, \qquad
    \mathrm{coverage} = \frac{1}{N} \sum_{i=1}^{N} 1_{\exists\, j:\ Y_j \in B(X_i, \mathrm{NND}_k(X_i))}.

Density counts how many real balls each generated sample falls in (about 1 for a generator that matches the data;
above 1 when samples crowd where the data is dense; not bounded by 1); coverage is the fraction of real samples
whose neighbourhood holds at least one generated sample (in [0, 1]). Naeem et al.'s *coverage* is not the course's
``classes_covered`` (how many classes the classifier finds among the samples, ``gan_course.metrics.coverage``).

None of these notices a generator that returns its **training images**: every sample sits on the real manifold, so a
memoriser scores as perfect. ``data_copying`` asks instead whether generated samples are closer to the training set
than new data from the same distribution is: with d(y) the distance of y to its nearest *training* feature, it
compares d over generated samples with d over held-out test samples (Meehan et al.'s test, on the whole space
rather than per cell): the Mann-Whitney U statistic as a z-score (about 0 for a generator as far from its training
data as fresh data is; strongly negative for one that copies; positive for one that is merely worse) and the ratio of
the two medians (0 for exact copies).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .precision_recall import knn_radii

__all__ = ["DensityCoverage", "density_coverage_from_features", "DataCopying", "nearest_distances", "data_copying"]


class DensityCoverage(NamedTuple):
    density: float
    coverage: float


def density_coverage_from_features(f_real: torch.Tensor, f_fake: torch.Tensor, k: int = 5,
                                   batch_size: int = 1024) -> DensityCoverage:
    """Naeem et al.'s density and coverage of generated features ``f_fake`` (M, D) against real ``f_real`` (N, D)."""
    real = torch.as_tensor(f_real).double().cpu()
    fake = torch.as_tensor(f_fake).double().cpu()
    radii = knn_radii(real, k)                                      # NND_k(X_i), (N,)
    balls_per_fake = torch.zeros(len(fake))                         # sum_i 1[Y_j in B(X_i)]
    covered = torch.zeros(len(real), dtype=torch.bool)              # exists j: Y_j in B(X_i)
    for start in range(0, len(fake), batch_size):
        inside = torch.cdist(fake[start:start + batch_size], real) <= radii.unsqueeze(0)   # (m, N)
        balls_per_fake[start:start + batch_size] = inside.sum(dim=1).double()
        covered |= inside.any(dim=0)
    return DensityCoverage(float(balls_per_fake.sum() / (k * len(fake))), float(covered.double().mean()))


class DataCopying(NamedTuple):
    z: float               # Mann-Whitney z-score of d(generated) against d(held-out); << 0: copying
    median_ratio: float    # median d(generated) / median d(held-out): 0 for exact copies, ~1 for fresh samples


def nearest_distances(query: torch.Tensor, reference: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Distance of every row of ``query`` to its nearest row of ``reference``."""
    q = torch.as_tensor(query).double().cpu()
    r = torch.as_tensor(reference).double().cpu()
    return torch.cat([torch.cdist(q[s:s + batch_size], r).min(dim=1).values for s in range(0, len(q), batch_size)])


def data_copying(f_train: torch.Tensor, f_test: torch.Tensor, f_fake: torch.Tensor) -> DataCopying:
    """Are generated samples closer to the training set than held-out data is? (Meehan et al. 2020, whole space.)

    ``f_train``: the features of the training images the generator learned from; ``f_test``: held-out images of
    the same distribution (never trained on); ``f_fake``: generated samples. The z-score follows the normal
    approximation of the U statistic, Z_U = (U - mn/2) / sqrt(mn(m+n+1)/12) with U counting the pairs where the
    generated sample is the farther one (ties counted as one half).
    """
    from scipy.stats import mannwhitneyu

    d_fake = nearest_distances(f_fake, f_train).numpy()
    d_test = nearest_distances(f_test, f_train).numpy()
    m, n = len(d_fake), len(d_test)
    u = mannwhitneyu(d_fake, d_test, alternative="two-sided", method="asymptotic").statistic   # U of d_fake
    z = (u - m * n / 2) / ((m * n * (m + n + 1) / 12) ** 0.5)
    median_test = float(torch.tensor(d_test).median())
    return DataCopying(float(z), float(torch.tensor(d_fake).median()) / median_test if median_test > 0 else
                       float("nan"))
