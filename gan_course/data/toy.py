"""Two-dimensional toy distributions: small enough to see everything a GAN does.

A ring of Gaussian modes is the standard 2-D test of a GAN (Metz et al., 2016, "Unrolled GANs",
arXiv 1611.02163; Srivastava et al., 2017, "VEEGAN"): ``K`` isotropic Gaussians of standard deviation
``sigma`` whose means sit evenly on a circle of radius ``r``,

    p_data(x) = (1/K) sum_k N(x; mu_k, sigma^2 I),   mu_k = r (cos 2 pi k / K, sin 2 pi k / K).

Because ``p_data`` is known in closed form we can evaluate the optimal discriminator
D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al., 2014, Prop. 1) and count which modes the
generator reaches (mode coverage), neither of which is possible for images.

    >>> from gan_course.data.toy import ring
    >>> data = ring()                        # 8 modes, radius 2, sigma 0.05; 20,000 points
    >>> x, k = data.get_batch(torch.arange(4))   # points (4, 2) and the index of the mode each came from
    >>> data.coverage(samples)               # how many of the 8 modes the samples reach

``GaussianMixture2d`` is a ``Dataset`` with the course's ``get_batch`` fast path, so
``gan_course.training.Batches`` streams it exactly like an image dataset.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

__all__ = ["GaussianMixture2d", "ring", "grid", "mixture_density_1d"]


class GaussianMixture2d(Dataset):
    """An equal-weight mixture of isotropic 2-D Gaussians, sampled once (seeded) and kept in memory.

    Args:
        centers: (K, 2) the modes' means mu_k.
        sigma: the common standard deviation of every mode.
        n: number of points drawn (the dataset's length).
        seed: seed of the draw (the same seed gives the same points).
        name: a short description for ``repr``.

    Items are ``(x, k)``: a point ``x`` (float32, shape (2,)) and the index ``k`` of the mode it was drawn from.
    """

    def __init__(self, centers: torch.Tensor, sigma: float, n: int = 20_000, seed: int = 0, name: str = "mixture"):
        centers = torch.as_tensor(centers, dtype=torch.float32)
        if centers.dim() != 2 or centers.shape[1] != 2:
            raise ValueError(f"centers must have shape (K, 2), got {tuple(centers.shape)}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.centers, self.sigma, self.name = centers, float(sigma), name
        generator = torch.Generator().manual_seed(seed)
        self.targets = torch.randint(len(centers), (n,), generator=generator)
        self.points = centers[self.targets] + self.sigma * torch.randn(n, 2, generator=generator)

    # --- Dataset ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int):
        return self.points[i], self.targets[i]

    def get_batch(self, index: torch.Tensor):
        """Points and mode indices for ``index`` in one slice (what ``training.Batches`` calls)."""
        return self.points[index], self.targets[index]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` fresh points from p_data (not from the stored draw)."""
        k = torch.randint(len(self.centers), (n,), generator=generator)
        return self.centers[k] + self.sigma * torch.randn(n, 2, generator=generator)

    @property
    def num_modes(self) -> int:
        return len(self.centers)

    def __repr__(self) -> str:
        return (f"GaussianMixture2d({self.name!r}: {self.num_modes} modes, sigma={self.sigma:g}, "
                f"{len(self)} points)")

    # --- the density, known in closed form --------------------------------------------------------------
    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log p_data(x) for points ``x`` of shape (..., 2): log (1/K) sum_k N(x; mu_k, sigma^2 I)."""
        x = torch.as_tensor(x, dtype=torch.float32)
        d2 = ((x.unsqueeze(-2) - self.centers) ** 2).sum(-1)              # (..., K) squared distances
        log_normal = -d2 / (2 * self.sigma ** 2) - math.log(2 * math.pi * self.sigma ** 2)
        return torch.logsumexp(log_normal, dim=-1) - math.log(self.num_modes)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """p_data(x) for points ``x`` of shape (..., 2)."""
        return self.log_density(x).exp()

    # --- which modes do samples reach? ----------------------------------------------------------------
    def nearest_mode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For each point: the index of the nearest mean mu_k and the distance to it, in units of sigma."""
        x = torch.as_tensor(x, dtype=torch.float32).detach().cpu()
        distance = torch.cdist(x.reshape(-1, 2), self.centers)           # (N, K)
        d, k = distance.min(dim=1)
        return k, d / self.sigma

    def mode_counts(self, x: torch.Tensor, within: float = 3.0) -> torch.Tensor:
        """How many of the points lie within ``within`` standard deviations of each mode: a (K,) tensor."""
        k, d = self.nearest_mode(x)
        return torch.bincount(k[d <= within], minlength=self.num_modes)

    def coverage(self, x: torch.Tensor, within: float = 3.0, min_fraction: float = 0.01) -> int:
        """The number of modes the samples reach (Metz et al., 2016; Srivastava et al., 2017).

        A mode counts as covered when at least ``min_fraction`` of the samples (and at least one) lie within
        ``within`` sigma of its mean. A generator that has collapsed onto a few modes scores few, however
        good its points look.
        """
        counts = self.mode_counts(x, within)
        needed = max(1, math.ceil(min_fraction * len(x)))
        return int((counts >= needed).sum())

    def high_quality_fraction(self, x: torch.Tensor, within: float = 3.0) -> float:
        """The fraction of points within ``within`` sigma of some mode ("high-quality samples", VEEGAN)."""
        _, d = self.nearest_mode(x)
        return float((d <= within).float().mean())


def ring(modes: int = 8, radius: float = 2.0, sigma: float = 0.05, n: int = 20_000, seed: int = 0) -> GaussianMixture2d:
    """``modes`` Gaussians of std ``sigma`` evenly spaced on a circle of radius ``radius`` (the 2-D GAN benchmark)."""
    if modes < 1:
        raise ValueError(f"modes must be >= 1, got {modes}")
    angle = 2 * math.pi * torch.arange(modes, dtype=torch.float32) / modes
    centers = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return GaussianMixture2d(centers, sigma, n=n, seed=seed, name=f"ring of {modes}")


def grid(side: int = 5, spacing: float = 1.0, sigma: float = 0.05, n: int = 20_000, seed: int = 0) -> GaussianMixture2d:
    """``side x side`` Gaussians on a square grid centred at the origin (the harder "25 Gaussians" benchmark)."""
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}")
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    centers = torch.cartesian_prod(axis, axis)
    return GaussianMixture2d(centers, sigma, n=n, seed=seed, name=f"{side}x{side} grid")


def mixture_density_1d(x: torch.Tensor, means, stds, weights=None) -> torch.Tensor:
    """A 1-D Gaussian mixture density sum_i w_i N(x; m_i, s_i^2), evaluated at ``x`` (any shape).

    Used to check the optimal discriminator (Prop. 1) against densities we know exactly.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    means = torch.as_tensor(means, dtype=torch.float64).reshape(-1)
    stds = torch.as_tensor(stds, dtype=torch.float64).reshape(-1).expand_as(means)
    weights = (torch.full_like(means, 1 / len(means)) if weights is None
               else torch.as_tensor(weights, dtype=torch.float64).reshape(-1))
    z = (x.unsqueeze(-1) - means) / stds
    return (weights * torch.exp(-0.5 * z ** 2) / (stds * math.sqrt(2 * math.pi))).sum(-1)
