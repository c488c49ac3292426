"""Drawing latent vectors: the prior, the truncation trick, and paths through latent space."""

from __future__ import annotations

import torch


def normal(n: int, dim: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """``n`` latent vectors z ~ N(0, I) of dimension ``dim``, drawn on the CPU (reproducible) then moved."""
    z = torch.randn(n, dim, generator=generator)
    return z.to(device) if device is not None else z


def truncated_normal(size, threshold: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, 1) samples truncated to [-threshold, threshold] by resampling (BigGAN's truncation trick, Sec. 3.1).

    Every value whose magnitude exceeds ``threshold`` is redrawn until it falls inside; the result follows the
    truncated normal law exactly. ``size`` is an int or a tuple.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    size = (size,) if isinstance(size, int) else tuple(size)
    z = torch.randn(size, generator=generator)
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > threshold
    return z


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Linear interpolation (1 - t) z0 + t z1."""
    return torch.lerp(z0, z1, torch.as_tensor(t, dtype=z0.dtype))


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation along the great circle between z0 and z1 (White, 2016, arXiv 1609.04468).

    In high dimension Gaussian samples concentrate on a sphere; slerp stays near it, lerp cuts through
    the low-density interior.
    """
    t = torch.as_tensor(t, dtype=z0.dtype)
    n0, n1 = z0 / z0.norm(dim=-1, keepdim=True), z1 / z1.norm(dim=-1, keepdim=True)
    omega = torch.acos((n0 * n1).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * z0 + torch.sin(t * omega) / so * z1


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """``steps`` latent vectors from z0 to z1 (inclusive) as a (steps, dim) tensor; method 'lerp' or 'slerp'."""
    methods = {"lerp": lerp, "slerp": slerp}
    if method not in methods:
        raise ValueError(f"Unknown interpolation {method!r}. Valid choices: {', '.join(methods)}")
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    return methods[method](z0.reshape(1, -1), z1.reshape(1, -1), t)


@torch.no_grad()
def generate(G: torch.nn.Module, *inputs: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``G(*inputs)`` in eval mode (batch norm on its running statistics, no dropout), in batches, on the CPU.

    Every input is split along its first dimension; G's training mode is restored afterwards. This is how the
    course draws images for figures and metrics from any generator, conditional or not.
    """
    if not inputs:
        raise ValueError("generate(G, *inputs) needs at least one input, e.g. a batch of z")
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    n = len(inputs[0])
    try:
        out = torch.cat([G(*(t[i:i + batch_size].to(device) for t in inputs)).float().cpu()
                         for i in range(0, n, batch_size)])
    finally:
        G.train(was_training)
    return out


class GeneratorView(torch.nn.Module):
    """``fn(*inputs)`` computed with G's modules, as a module of its own: what ``generate`` takes, so that a draw
    that is not plain ``G(z, c)`` (StyleGAN's truncated, style-mixed or given-w draws) runs in eval mode, in
    batches, and G's mode is restored afterwards. The view starts in G's mode, so restoring it restores G's."""

    def __init__(self, G: torch.nn.Module, fn):
        super().__init__()
        self.G, self.fn = G, fn
        self.training = G.training

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(*inputs)


def sampler(G: torch.nn.Module, seed: int = 0, z_dim: int | None = None):
    """``n -> n images G(z)`` with z ~ N(0, I) from a seeded generator: the form ``gan_course.metrics`` takes.

    ``z_dim`` defaults to ``G.z_dim``. The same ``seed`` gives the same z, so two generators (or one generator at
    two points in training) are compared on identical noise.
    """
    z_dim = z_dim if z_dim is not None else G.z_dim

    def sample_fn(n: int) -> torch.Tensor:
        return generate(G, normal(n, z_dim, generator=torch.Generator().manual_seed(seed)))
    return sample_fn


def sample(G: torch.nn.Module, z: torch.Tensor | int, *condition: torch.Tensor, seed: int = 0,
           batch_size: int = 500) -> torch.Tensor:
    """Images from ``G`` in eval mode: ``generate(G, z, *condition)``, the one way the course draws samples.

    ``z`` is a batch of latent vectors, or a count ``n``: then z ~ N(0, I) of dimension ``G.z_dim`` is drawn from
    ``torch.Generator().manual_seed(seed)`` (the same seed gives the same z). ``condition`` holds G's other
    inputs (class labels y, codes c, ...), each with one row per sample.
    """
    if isinstance(z, bool) or not (isinstance(z, int) or torch.is_tensor(z)):
        raise TypeError(f"sample(G, z, ...) takes a batch of z or a number of samples, got {type(z).__name__}")
    if isinstance(z, int):
        if z < 1:
            raise ValueError(f"the number of samples must be >= 1, got {z}")
        z = normal(z, G.z_dim, generator=torch.Generator().manual_seed(seed))
    return generate(G, z, *condition, batch_size=batch_size)
