r"""Fréchet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to
a Local Nash Equilibrium", arXiv 1706.08500).

Embed real and generated images with a feature network ``phi``, fit a Gaussian to each cloud of features,
and report the Fréchet (2-Wasserstein) distance between the two Gaussians:

.. math::

    \mathrm{FID} = \lVert \mu_r - \mu_g \rVert_2^2
                 + \operatorname{Tr}\!\big(\Sigma_r + \Sigma_g - 2 (\Sigma_r \Sigma_g)^{1/2}\big)

Lower is better; 0 means equal means and covariances (not equal distributions). FID is **biased**: with
finite samples the covariance estimates are noisy and the expected FID between two samples of the *same*
distribution is positive and shrinks like ~1/n (Chong & Forsyth 2020, arXiv 1911.07023). Only compare FIDs
computed with the same ``n``, the same feature network and the same reference set.

The matrix square root is computed in float64 through the symmetric form

.. math::

    \operatorname{Tr}(\Sigma_r \Sigma_g)^{1/2} = \operatorname{Tr}\big(\Sigma_r^{1/2} \Sigma_g \Sigma_r^{1/2}\big)^{1/2}
    = \sum_i \sqrt{\lambda_i\big(\Sigma_r^{1/2} \Sigma_g \Sigma_r^{1/2}\big)},

(the two products have the same eigenvalues), with ``eigh`` of symmetric positive semi-definite matrices, so
singular covariances (fewer samples than dimensions, dead ReLU units) stay finite and no complex parts appear.
Should the decomposition fail, ``eps * I`` is added to both covariances and it is retried, as pytorch-fid does.
``fid_from_features`` with fewer feature vectors than dimensions (rFID on a few hundred 2048-d vectors) skips the
D x D matrices altogether and takes the nuclear norm of the N1 x N2 cross-product of the centred features,
which has the same value (see its docstring).
"""

from __future__ import annotations

import numpy as np
import torch

from .embed import features_of
from .features import FeatureNet
from .registry import feature_network

__all__ = ["gaussian_stats", "frechet_distance", "fid_from_features", "fid"]


def _as64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu().double()


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``mu`` (D,) and unbiased covariance ``Sigma`` (D, D) of features (N, D), in float64."""
    f = _as64(features)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least 2 feature vectors (N, D), got shape {tuple(f.shape)}")
    mu = f.mean(0)
    d = f - mu
    return mu, d.T @ d / (len(f) - 1)


def _sqrt_psd(s: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix (negative rounding-error eigenvalues clipped to 0)."""
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    r"""Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):
    :math:`\lVert\mu_1-\mu_2\rVert^2 + \operatorname{Tr}(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2})`.

    Accepts tensors or arrays; computes in float64 (see the module docstring for the method). ``eps`` is the
    diagonal offset used only if the eigen-decomposition fails (near-singular, ill-conditioned inputs).
    """
    mu1, mu2, s1, s2 = _as64(mu1), _as64(mu2), _as64(sigma1), _as64(sigma2)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(f"shapes do not match: mu {tuple(mu1.shape)}, {tuple(mu2.shape)}; "
                         f"sigma {tuple(s1.shape)}, {tuple(s2.shape)}")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    try:
        root1 = _sqrt_psd(s1)
        m = root1 @ s2 @ root1
        tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
        if not torch.isfinite(tr_sqrt):
            raise torch.linalg.LinAlgError("non-finite trace")
    except torch.linalg.LinAlgError:
        offset = eps * torch.eye(len(s1), dtype=s1.dtype)
        root1 = _sqrt_psd(s1 + offset)
        m = root1 @ (s2 + offset) @ root1
        tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    value = float(diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt)
    return max(value, 0.0)      # a squared distance: tiny negative values are rounding error


def fid_from_features(f1: torch.Tensor, f2: torch.Tensor) -> float:
    r"""FID between two sets of feature vectors (N1, D) and (N2, D).

    With at least as many vectors as dimensions this is ``frechet_distance(*gaussian_stats(f1),
    *gaussian_stats(f2))``. With fewer (a few hundred 2048-d Inception features) the covariances are singular,
    of rank < N, and the D x D eigen-decompositions cost O(D^3) for nothing; the same value comes from the
    centred data matrices :math:`X_i` (N_i x D), :math:`\Sigma_i = X_i^\top X_i / (N_i - 1)`: the nonzero
    eigenvalues of :math:`\Sigma_1\Sigma_2` are the squared singular values of
    :math:`X_1 X_2^\top / \sqrt{(N_1 - 1)(N_2 - 1)}`, so

    .. math::

        \operatorname{Tr}(\Sigma_1\Sigma_2)^{1/2} = \frac{\lVert X_1 X_2^\top \rVert_*}{\sqrt{(N_1-1)(N_2-1)}},
        \qquad \operatorname{Tr}\Sigma_i = \frac{\lVert X_i \rVert_F^2}{N_i - 1}

    (nuclear and Frobenius norms), an N1 x N2 singular value problem.
    """
    x1, x2 = _as64(f1), _as64(f2)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1] or min(len(x1), len(x2)) < 2:
        raise ValueError(f"need two sets of at least 2 feature vectors (N, D) of one D, got shapes "
                         f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if min(len(x1), len(x2)) > x1.shape[1]:
        return frechet_distance(*gaussian_stats(x1), *gaussian_stats(x2))
    mu1, mu2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - mu1, x2 - mu2
    n1, n2 = len(x1) - 1, len(x2) - 1
    tr_sqrt = torch.linalg.svdvals(c1 @ c2.T).sum() / (n1 * n2) ** 0.5
    diff = mu1 - mu2
    value = float(diff @ diff + c1.pow(2).sum() / n1 + c2.pow(2).sum() / n2 - 2 * tr_sqrt)
    return max(value, 0.0)


def fid(real, fake, net: FeatureNet | str, n: int | None = None, seed: int = 0, batch_size: int = 256,
        progress: bool = False) -> float:
    """FID between ``real`` and ``fake`` in the feature space of ``net``.

    ``real`` / ``fake``: image tensors, datasets, ``sample(n)`` callables (see ``ImageSource``), or (N, D)
    feature tensors already computed with ``net``. ``n`` images of each (None: all of a tensor/dataset; a
    callable needs ``n``); ``seed`` picks the subset of a larger dataset. ``net``: a ``FeatureNet`` or a name for
    ``feature_network`` (``"glyphs"``, ``"random-inception"``, ...); batches run on its device.
    """
    net = feature_network(net) if isinstance(net, str) else net
    f_real = features_of(real, net, n, seed, batch_size, progress)
    f_fake = features_of(fake, net, n, seed + 1, batch_size, progress)
    return fid_from_features(f_real, f_fake)
