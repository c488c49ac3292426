import pytest
import torch

from gan_course.sampling import interpolate, slerp, truncated_normal


def test_truncated_normal_bounds_shape_and_law():
    scipy_stats = pytest.importorskip("scipy.stats")
    z = truncated_normal((20000,), 0.5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (20000,) and z.abs().max() <= 0.5
    law = scipy_stats.truncnorm(-0.5, 0.5)
    assert scipy_stats.kstest(z.numpy(), law.cdf).pvalue > 1e-3
    assert truncated_normal(3, 1.0).shape == (3,)
    with pytest.raises(ValueError):
        truncated_normal(3, 0.0)


def test_truncated_normal_is_seeded():
    a = truncated_normal((4, 8), 1.0, generator=torch.Generator().manual_seed(1))
    b = truncated_normal((4, 8), 1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_interpolation_endpoints_and_norm():
    z0, z1 = torch.randn(64), torch.randn(64)
    path = interpolate(z0, z1, 5)
    assert path.shape == (5, 64)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    u, v = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert torch.allclose(slerp(u, v, 0.5).norm(), torch.tensor(1.0), atol=1e-6)  # stays on the circle
    with pytest.raises(ValueError, match="lerp, slerp"):
        interpolate(z0, z1, 3, method="cubic")


def test_generate_batches_in_eval_mode_and_restores_training_mode():
    from gan_course.sampling import generate

    G = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    G.train()
    z = torch.randn(10, 4)
    out = generate(G, z, batch_size=3)                     # batches of 3, 3, 3, 1: needs eval-mode batch norm
    assert out.shape == (10, 3) and G.training
    G.eval()
    assert torch.allclose(out, G(z), atol=1e-6)


def test_sampler_is_seeded_and_matches_generate():
    from gan_course.sampling import generate, normal, sampler

    G = torch.nn.Linear(5, 2)
    G.z_dim = 5
    a, b = sampler(G, seed=3)(8), sampler(G, seed=3)(8)
    assert torch.equal(a, b) and not torch.equal(a, sampler(G, seed=4)(8))
    assert torch.allclose(a, generate(G, normal(8, 5, generator=torch.Generator().manual_seed(3))))
