"""Chapter 06 (WGAN, WGAN-GP): Example 1, the networks, the penalty and clipping, the training step (the chapter
contract) and the experiment arms, the lab's measurements and explorers, exercises."""

import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from contract import one_train_step
from torch import nn

from gan_course import sampling
from gan_course.exercises import ExerciseError, ch06
from gan_course.lab import dcgan as dcgan_lab
from gan_course.lab import wgan as wgan_lab
from gan_course.losses import clip_weights_, gradient_penalty, wasserstein_critic_loss
from gan_course.models import dcgan, wgan
from gan_course.training import Batches, Run

matplotlib.use("Agg")


def _small(seed=0, norm="layer", image_size=32):
    torch.manual_seed(seed)
    return (wgan.Generator(z_dim=16, width=8, image_size=image_size),
            wgan.Critic(width=8, norm=norm, image_size=image_size))


class _Images(torch.utils.data.Dataset):
    """64 random 'images' with the embedded datasets' get_batch fast path (no dataset build in unit tests)."""

    def __init__(self, n=64, size=32):
        self.images = torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
        self.targets = torch.zeros(n, dtype=torch.long)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.targets[i]

    def get_batch(self, index):
        return self.images[index], self.targets[index]


# --------------------------------------------------------------------------- Example 1
def test_parallel_lines_divergences_match_example_1():
    d = wgan_lab.parallel_lines_divergences(torch.tensor([-0.5, 0.0, 0.25, 1.0]))
    assert torch.allclose(d["W1"], torch.tensor([0.5, 0.0, 0.25, 1.0], dtype=torch.float64))
    assert torch.allclose(d["JS"], torch.tensor([math.log(2), 0, math.log(2), math.log(2)], dtype=torch.float64))
    assert torch.equal(d["TV"], torch.tensor([1.0, 0, 1, 1], dtype=torch.float64))
    assert torch.isinf(d["KL"][[0, 2, 3]]).all() and d["KL"][1] == 0


def test_empirical_w1_of_parallel_lines_is_abs_theta():
    g = torch.Generator().manual_seed(0)
    p0 = wgan_lab.parallel_lines_sample(100, 0.0, g)
    pt = p0.clone()
    pt[:, 0] = -0.4                                     # the same z's: the coupling is exact
    assert wgan_lab.empirical_w1(p0, pt) == pytest.approx(0.4, abs=1e-9)
    pt = wgan_lab.parallel_lines_sample(100, -0.4, g)      # independent z's: close, never below |theta|
    assert 0.4 - 1e-9 <= wgan_lab.empirical_w1(p0, pt) < 0.45
    with pytest.raises(ValueError, match="same shape"):
        wgan_lab.empirical_w1(p0, pt[:10])


def test_parallel_lines_explorer_headless():
    ex = wgan_lab.parallel_lines_explorer()
    assert ex.state["renders"] == 1
    ex.controls["theta"].value = -0.25
    ex.controls["n"].value = 16
    assert ex.state["values"]["theta"] == -0.25 and ex.state["renders"] == 3
    title = ex.state["figure"].axes[0].get_title()
    assert "-0.25" in title and "$W_1$ = 0.250" in title


# --------------------------------------------------------------------------- networks against fixed samples
def test_critic_keeps_a_gradient_where_the_discriminator_saturates():
    """Arjovsky et al., Fig. 2, in 1-D."""
    g = torch.Generator().manual_seed(0)
    real = 2 + 0.3 * torch.randn(500, 1, generator=g)
    fake = -2 + 0.3 * torch.randn(500, 1, generator=g)
    x = fake[:100].clone().requires_grad_(True)
    D = wgan_lab.fit_fixed(real, fake, "discriminator", steps=150)
    (grad_D,) = torch.autograd.grad((-F.softplus(D(x))).sum(), x)      # d/dx log(1 - D(x)) at the fakes
    f = wgan_lab.fit_fixed(real, fake, "critic", steps=150)
    (grad_f,) = torch.autograd.grad(f(x).sum(), x)
    assert grad_D.abs().mean() < 1e-3
    assert 0.5 < grad_f.abs().mean() < 2.0
    with pytest.raises(ValueError, match="kind"):
        wgan_lab.fit_fixed(real, fake, "hinge", steps=1)


def test_trained_networks_report_log2_and_abs_theta_on_the_parallel_lines():
    """Example 1 through networks: D's JS estimate is log 2 and its gradient for theta vanishes; the critic's W1
    estimate is ~|theta| and it passes theta a gradient ~sign(theta) (descent moves the line towards 0)."""
    g = torch.Generator().manual_seed(0)
    p0 = wgan_lab.parallel_lines_sample(512, 0.0, g)
    pt = wgan_lab.parallel_lines_sample(512, 0.5, g)
    D = wgan_lab.fit_fixed(p0, pt, "discriminator", steps=150)
    f = wgan_lab.fit_fixed(p0, pt, "critic", steps=150)
    est = wgan_lab.estimate_divergences(p0, pt, D, f)
    assert est["JS"] == pytest.approx(math.log(2), abs=0.02)
    assert est["W1"] == pytest.approx(0.5, abs=0.1)
    grads = wgan_lab.parallel_lines_gradients(D, f, 0.5)
    assert abs(grads["JS"]) < 1e-2
    assert 0.7 < grads["W1"] < 1.3


# --------------------------------------------------------------------------- networks
def test_shapes_and_ranges():
    G, f = _small()
    z = torch.randn(4, 16)
    x = G(z)
    assert x.shape == (4, 1, 32, 32) and x.abs().max() <= 1
    assert f(x).shape == (4,)
    G64, f64 = _small(image_size=64)
    assert f64(G64(z)).shape == (4,)
    with pytest.raises(ValueError, match="power of two"):
        wgan.Critic(image_size=28)
    with pytest.raises(ValueError, match="Valid choices"):
        wgan.Critic(norm="instance")


def test_critic_has_no_sigmoid_and_its_scores_are_unbounded():
    _, f = _small()
    assert not any(isinstance(m, (nn.Sigmoid, nn.Tanh)) for m in f.modules())
    with torch.no_grad():
        f.to_score.weight.mul_(1000)
        scores = f(torch.randn(16, 1, 32, 32))
    assert scores.min() < 0 and scores.abs().max() > 1   # a real number, not a probability


def test_critic_normalisation_options():
    kinds = {norm: {type(m) for m in wgan.Critic(width=8, norm=norm).modules()} for norm in wgan.NORMS}
    assert nn.BatchNorm2d in kinds["batch"] and nn.GroupNorm not in kinds["batch"]
    assert nn.GroupNorm in kinds["layer"] and nn.BatchNorm2d not in kinds["layer"]
    assert not {nn.BatchNorm2d, nn.GroupNorm} & kinds["none"]
    # layer norm never mixes samples: a critic without batch norm scores each image independently of the batch
    _, f = _small(norm="layer")
    x = torch.randn(6, 1, 32, 32)
    assert torch.allclose(f(x)[:2], f(x[:2]), atol=1e-5)


def test_generator_is_dcgans_with_unit_batch_norm_scales_and_keyword_only():
    G = wgan.Generator(z_dim=16, width=8)
    assert isinstance(G, dcgan.Generator)
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in G.modules()
               if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(TypeError):
        wgan.Generator(16)
    with pytest.raises(TypeError):
        wgan.Critic(1, 32)


def test_generator_is_deterministic_under_a_seed():
    G1, _ = _small(seed=3)
    G2, _ = _small(seed=3)
    z = torch.randn(2, 16)
    G1.eval(), G2.eval()
    assert torch.equal(G1(z), G2(z))


# --------------------------------------------------------------------------- the penalty and clipping
def test_gradient_penalty_of_a_quadratic_critic_matches_the_analytic_gradient():
    """f(x) = ||x||^2 / 2 has grad f(x_hat) = x_hat, so the penalty is lambda * mean((||x_hat|| - 1)^2)."""
    f = ch06.QuadraticCritic(1.0)
    real = torch.randn(8, 1, 4, 4, dtype=torch.float64)
    fake = torch.randn(8, 1, 4, 4, dtype=torch.float64)
    penalty = gradient_penalty(f, real, fake, lambda_gp=10.0, generator=torch.Generator().manual_seed(5))
    eps = torch.rand((8, 1, 1, 1), generator=torch.Generator().manual_seed(5)).double()  # the same eps
    x_hat = eps * real + (1 - eps) * fake
    want = 10.0 * ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(penalty, want)
    penalty.backward()                                     # create_graph=True: the penalty trains the critic
    assert f.a.grad is not None and torch.isfinite(f.a.grad)


def test_gradient_penalty_is_zero_for_a_unit_linear_critic():
    f = ch06.LinearCritic((1, 4, 4), norm=1.0)
    real, fake = torch.randn(8, 1, 4, 4, dtype=torch.float64), torch.randn(8, 1, 4, 4, dtype=torch.float64)
    assert gradient_penalty(f, real, fake).abs() < 1e-12
    f3 = ch06.LinearCritic((1, 4, 4), norm=3.0)
    assert torch.allclose(gradient_penalty(f3, real, fake, lambda_gp=10.0), torch.tensor(40.0, dtype=torch.float64))


def _arm(name, G, f, steps, **cfg):
    return dcgan_lab.train_arm(name, G, f, _Images(), steps, wgan.Config(**cfg), paper=wgan, progress=False,
                               live=False)


def test_training_with_clipping_keeps_every_weight_in_bounds_and_piles_them_at_c(tmp_build):
    G, f = _small(norm="batch")
    run = _arm("t-clip", G, f, 2, variant="clip", batch_size=16, n_critic=2)
    assert all(p.abs().max() <= wgan.CLIP_C for p in f.parameters())
    assert wgan_lab.fraction_at_clip(f) > 0.3             # N(0, 0.02) init: most weights start beyond c = 0.01
    assert set(run.history.keys()) == {"loss_D", "loss_G", "D_real", "D_fake", "W1_estimate"}
    assert isinstance(run.optimizers["D"], torch.optim.RMSprop)


def test_train_step_logs_the_contract_keys_and_updates_both_players(tmp_build):
    G, f = _small(norm="none")
    logs, batches, (opt_G, opt_f) = one_train_step(wgan, G, f, _Images(), wgan.Config(batch_size=8, n_critic=3),
                                                   {"loss_D", "loss_G", "D_real", "D_fake", "W1_estimate", "gp"})
    assert logs["W1_estimate"] == pytest.approx(float(logs["D_real"] - logs["D_fake"]), abs=1e-6)
    assert logs["loss_D"] == pytest.approx(float(-logs["W1_estimate"] + logs["gp"]), abs=1e-6)
    assert batches.position == 3 * 8                             # n_critic = 3 real batches
    assert opt_f.state[next(iter(f.parameters()))]["step"] == 3 and opt_G.state[next(iter(G.parameters()))]["step"] == 1


def test_config_takes_each_papers_values_and_rejects_bad_ones():
    assert wgan.Config().lr == 1e-4 and wgan.Config(variant="clip").lr == 5e-5
    assert wgan.Config(variant="clip", lr=1e-3).lr == 1e-3
    assert wgan.Config().betas == (0.0, 0.9) and wgan.Config().n_critic == 5 and wgan.Config().lambda_gp == 10
    with pytest.raises(ValueError, match="Valid choices"):
        wgan.Config(variant="hinge")
    with pytest.raises(ValueError, match="n_critic"):
        wgan.Config(n_critic=0)
    with pytest.raises(ValueError, match="betas"):
        wgan.Config(betas=(0.0, 1.5))


def test_critic_step_alone_trains_only_the_critic(tmp_build):
    G, f = _small(norm="none")
    g_before = [p.detach().clone() for p in G.parameters()]
    opt = torch.optim.Adam(f.parameters(), lr=1e-4, betas=(0.0, 0.9))
    run = Run("alone", {"D": f}, {"D": opt}, progress=False, live=False)
    logs = wgan.critic_step(run, G, f, Batches(_Images(), 8, seed=0), wgan.Config(batch_size=8))
    assert {"loss_D", "gp", "W1_estimate"} <= set(logs)
    assert all(torch.equal(p, q) for p, q in zip(G.parameters(), g_before, strict=True))


def test_clip_weights_is_in_place():
    lin = nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.mul_(100)
    assert clip_weights_(lin, 0.05) is lin
    assert lin.weight.abs().max() <= 0.05 and (lin.weight.abs() == 0.05).any()


def test_penalty_variant_refuses_a_batch_norm_critic(tmp_build):
    G, f = _small(norm="batch")
    with pytest.raises(ValueError, match="batch norm"):
        _arm("t-gp-bn", G, f, 1, variant="gp")


def test_optimizers_are_the_papers():
    G, f = _small()
    opt_G, opt_f = wgan.optimizers(G, f, wgan.Config(variant="clip"))
    assert isinstance(opt_f, torch.optim.RMSprop) and opt_f.defaults["lr"] == 5e-5
    opt_G, opt_f = wgan.optimizers(G, f)
    assert isinstance(opt_f, torch.optim.Adam) and opt_f.defaults["lr"] == 1e-4
    assert opt_f.defaults["betas"] == (0.0, 0.9) and opt_G.defaults["betas"] == (0.0, 0.9)
    assert wgan.N_CRITIC == 5 and wgan.CLIP_C == 0.01 and wgan.LAMBDA_GP == 10
    assert wgan.critic_iterations(3) == 5
    assert [wgan.critic_iterations(s, warmup=True) for s in (0, 24, 25, 500, 501)] == [100, 100, 5, 100, 5]


def test_gp_training_is_deterministic_under_a_seed(tmp_build):
    weights = []
    for name in ("t-gp-a", "t-gp-b"):
        G, f = _small(seed=1)
        run = dcgan_lab.train_arm(name, G, f, _Images(), 2, wgan.Config(batch_size=8, n_critic=2), paper=wgan,
                                  seed=4, progress=False, live=False)
        weights.append(torch.cat([p.detach().flatten() for p in list(G.parameters()) + list(f.parameters())]))
        assert set(run.history.keys()) == {"loss_D", "loss_G", "D_real", "D_fake", "W1_estimate", "gp"}
    assert torch.equal(weights[0], weights[1])


def test_w1_estimate_is_the_negative_critic_loss():
    real, fake = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.0])
    assert -wasserstein_critic_loss(real, fake) == pytest.approx(2.0)


# --------------------------------------------------------------------------- Gulrajani et al. Fig. 1, critic lines
def test_toy_critics_clipping_is_tiny_and_the_penalty_holds_the_gradient_near_one():
    g = torch.Generator().manual_seed(0)
    angles = torch.randint(8, (512,), generator=g) * (2 * math.pi / 8)
    real = 2 * torch.stack([angles.cos(), angles.sin()], 1) + 0.05 * torch.randn(512, 2, generator=g)
    f_clip = wgan_lab.toy_critic(real, "clip", steps=30, hidden=32)
    f_gp = wgan_lab.toy_critic(real, "gp", steps=150, hidden=32)
    assert all(p.abs().max() <= wgan.CLIP_C for p in f_clip.parameters())
    x = torch.randn(256, 2, requires_grad=True)
    (g_clip,) = torch.autograd.grad(f_clip(x).sum(), x)
    assert g_clip.norm(dim=1).max() < 0.05                # clipping at 0.01 leaves a far-from-1-Lipschitz critic
    fig = wgan_lab.render_value_surface({"clip": f_clip, "gp": f_gp}, real, n=21)
    assert len(fig.axes) == 4 and fig.axes[0].get_xlabel() == "$x_1$"
    with pytest.raises(ValueError, match="Valid choices"):
        wgan_lab.toy_critic(real, "sn", steps=1)


def test_critic_along_line_and_its_explorer():
    G, f = _small()
    x, x_tilde = torch.rand(3, 1, 32, 32) * 2 - 1, G(torch.randn(3, 16)).detach()
    eps, scores, norms, x_hat = wgan_lab.critic_along_line(f, x[0], x_tilde[0], n=7)
    assert eps.shape == scores.shape == norms.shape == (7,) and x_hat.shape == (7, 1, 32, 32)
    assert torch.allclose(x_hat[0], x_tilde[0]) and torch.allclose(x_hat[-1], x[0])
    ex = wgan_lab.critic_line_explorer({"a": f, "b": f}, x, {"a": x_tilde, "b": x_tilde})
    ex.controls["index"].value = 2
    assert ex.state["values"]["index"] == 2 and ex.controls["index"].max == 2
    assert "gradient norm" in ex.state["figure"].axes[1].get_title()


def test_critic_weights_and_fraction_at_clip():
    _, f = _small(norm="none")
    clip_weights_(f, 0.01)
    w = wgan_lab.critic_weights(f)
    assert w.numel() == sum(m.weight.numel() for m in f.modules() if isinstance(m, nn.Conv2d))
    assert 0 < wgan_lab.fraction_at_clip(f) <= 1


def test_layer_gradient_norms_vanish_under_clipping_and_stay_level_with_the_penalty():
    """Gulrajani et al., Fig. 1b: a deep MLP critic with weights at +-0.01 shrinks the gradient at every layer."""
    g = torch.Generator().manual_seed(0)
    real = torch.randn(256, 2, generator=g)
    x, x_tilde = real[:64], real[64:128] + torch.randn(64, 2, generator=g)
    f_clip = wgan_lab.toy_critic(real, "clip", steps=3, depth=6, hidden=32, batch_size=64, c=0.01)
    norms = wgan_lab.layer_gradient_norms(f_clip, x, x_tilde)
    assert norms.shape == (7,)
    assert (norms[:-1] < norms[1:]).all() and norms[0] < 1e-6 * norms[-1]
    f_gp = wgan_lab.toy_critic(real, "gp", steps=40, depth=6, hidden=32, batch_size=64)
    norms = wgan_lab.layer_gradient_norms(f_gp, x, x_tilde)
    assert norms.max() / norms.min() < 100


def test_loss_tracks_quality_windows_the_loss_and_correlates_it_with_the_metric():
    loss_steps = list(range(10))
    history = {"W1_estimate": (loss_steps, [10.0 - s for s in loss_steps]),
               "loss_D": (loss_steps, [(-1.0) ** s for s in loss_steps]),
               "fid": ([3, 6, 9], [300.0, 200.0, 100.0])}
    tr = wgan_lab.loss_tracks_quality(history, "W1_estimate", "fid", window=2, sign=1.0)
    assert tr["steps"].tolist() == [3, 6, 9]
    assert tr["loss"].tolist() == [7.5, 4.5, 1.5]            # mean of the 2 values up to each checkpoint
    assert tr["r"] == pytest.approx(1.0) and tr["rho"] == pytest.approx(1.0)
    flat = wgan_lab.loss_tracks_quality(history, "loss_D", "fid", window=2)
    assert math.isnan(flat["r"])                               # a constant series has no correlation
    neg = wgan_lab.loss_tracks_quality(history, "W1_estimate", "fid", window=1, sign=-1.0)
    assert neg["r"] == pytest.approx(-1.0)
    cut = wgan_lab.loss_tracks_quality(history, "W1_estimate", "fid", window=2, sign=1.0, until=9)
    assert cut["steps"].tolist() == [3, 6] and cut["metric"].tolist() == [300.0, 200.0]   # only checkpoints < 9


def test_sampler_is_seeded_and_critic_score_explorer_renders_headless():
    G, f = _small()
    a, b = sampling.sampler(G, seed=3)(5), sampling.sampler(G, seed=3)(5)
    assert a.shape == (5, 1, 32, 32) and torch.equal(a, b)
    real = _Images().images
    ex = wgan_lab.critic_score_explorer({"one": (G, f), "two": (G, f)}, real, n=4)
    ex.controls["seed"].value = 2
    ex.controls["model"].value = "two"
    assert ex.state["values"] == {"model": "two", "seed": 2} and ex.state["renders"] == 3
    assert "W1 estimate" in ex.state["figure"].axes[-1].get_title()


def test_penalty_with_a_batch_norm_critic_runs_only_when_allowed(tmp_build):
    G, f = _small(norm="batch")
    run = _arm("t-gp-bn-ok", G, f, 1, variant="gp", batch_size=8, n_critic=1, allow_batch_norm=True)
    assert run.step == 1 and "gp" in run.history


# --------------------------------------------------------------------------- exercises
def test_exercise_losses_accept_the_solution_and_reject_typical_mistakes(capsys):
    assert ch06.check_wasserstein_losses(lambda r, f: f.mean() - r.mean(), lambda f: -f.mean())
    assert "passed" in capsys.readouterr().out
    assert ch06.check_wasserstein_losses(                                # another correct formulation
        lambda r, f: -(r - f).mean() if len(r) == len(f) else f.mean() - r.mean(), lambda f: f.neg().sum() / len(f))
    wrong = {
        "maximises": (lambda r, f: r.mean() - f.mean(), lambda f: -f.mean()),
        "cross-entropy": (lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(), lambda f: -f.mean()),
        "summed": (lambda r, f: f.sum() - r.sum(), lambda f: -f.mean()),
        "down": (lambda r, f: f.mean() - r.mean(), lambda f: f.mean()),
        "non-saturating": (lambda r, f: f.mean() - r.mean(), lambda f: F.softplus(-f).mean()),
        "None": (lambda r, f: None, lambda f: -f.mean()),
    }
    for message, (c, g) in wrong.items():
        with pytest.raises(ExerciseError, match=message):
            ch06.check_wasserstein_losses(c, g)


def test_exercise_loss_pair_accepts_the_solution_and_rejects_typical_mistakes():
    assert ch06.check_wasserstein_loss_pair(lambda r, f: (f.mean() - r.mean(), -f.mean()))
    assert ch06.check_wasserstein_loss_pair(lambda r, f: [wasserstein_critic_loss(r, f), -(f.sum() / f.numel())])
    wrong = {
        "order": lambda r, f: (-f.mean(), f.mean() - r.mean()),
        "maximises": lambda r, f: (r.mean() - f.mean(), -f.mean()),
        "down": lambda r, f: (f.mean() - r.mean(), f.mean()),
        "the pair": lambda r, f: f.mean() - r.mean(),
        "cross-entropy": lambda r, f: (F.softplus(-r).mean() + F.softplus(f).mean(), F.softplus(-f).mean()),
    }
    for message, fn in wrong.items():
        with pytest.raises(ExerciseError, match=message):
            ch06.check_wasserstein_loss_pair(fn)


def _gp_reference(critic, x, x_tilde, eps, lambda_gp):
    x_hat = (eps * x + (1 - eps) * x_tilde).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return lambda_gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _gp_variant(kind):
    def fn(critic, x, x_tilde, eps, lambda_gp):
        if kind == "swapped":
            x_hat = eps * x_tilde + (1 - eps) * x
        elif kind in ("real only", "fake only"):
            x_hat = (x if kind == "real only" else x_tilde).clone()
        else:
            x_hat = eps * x + (1 - eps) * x_tilde
        x_hat.requires_grad_(True)
        scores = critic(x_hat)
        (grad,) = torch.autograd.grad(scores.mean() if kind == "mean" else scores.sum(), x_hat,
                                      create_graph=kind != "detached")
        norm = grad.flatten(1).norm(dim=1)
        if kind == "squared":
            return lambda_gp * ((norm ** 2 - 1) ** 2).mean()
        if kind == "one-sided":
            return lambda_gp * (F.relu(norm - 1) ** 2).mean()
        if kind == "batch":
            return lambda_gp * (grad.norm() - 1) ** 2
        if kind == "no-lambda":
            return ((norm - 1) ** 2).mean()
        return lambda_gp * ((norm - 1) ** 2).mean()
    return fn


def test_exercise_gradient_penalty_accepts_the_solution_and_rejects_typical_mistakes():
    assert ch06.check_gradient_penalty(_gp_reference)

    def sqrt_of_squares(critic, x, x_tilde, eps, lambda_gp):     # the norm by hand, grad_outputs instead of .sum()
        x_hat = (eps * x + (1 - eps) * x_tilde).detach().requires_grad_(True)
        scores = critic(x_hat)
        (grad,) = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)
        return lambda_gp * ((torch.sqrt((grad ** 2).sum(dim=[1, 2, 3])) - 1) ** 2).mean()

    def norm_2(critic, x, x_tilde, eps, lambda_gp):               # .norm(2, dim=1) on a view
        x_hat = torch.lerp(x_tilde, x, eps).requires_grad_()
        grad = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)[0]
        return lambda_gp * (grad.view(grad.size(0), -1).norm(2, dim=1) - 1).pow(2).mean()

    assert ch06.check_gradient_penalty(sqrt_of_squares)
    assert ch06.check_gradient_penalty(norm_2)
    wrong = {"squared": "squared", "one-sided": "one-sided", "batch": "whole batch", "no-lambda": "lambda",
             "swapped": "eps \\* x_tilde", "detached": "create_graph", "real only": "real samples x only",
             "fake only": "generated samples x_tilde only", "mean": "differentiated critic\\(x_hat\\).mean"}
    for kind, message in wrong.items():
        with pytest.raises(ExerciseError, match=message):
            ch06.check_gradient_penalty(_gp_variant(kind))


def test_exercise_parallel_lines_accepts_the_solution_and_rejects_typical_mistakes():
    def solution(theta):
        apart = theta != 0
        return dict(W1=abs(theta), JS=math.log(2) if apart else 0.0, KL=math.inf if apart else 0.0,
                    TV=1.0 if apart else 0.0)

    assert ch06.check_parallel_lines(solution)
    assert ch06.check_parallel_lines(lambda t: {k: float(v) for k, v in wgan_lab.parallel_lines_divergences(t).items()})
    wrong = {
        "never negative": lambda t: {**solution(t), "W1": t},
        "bits": lambda t: {**solution(t), "JS": 1.0 if t else 0.0},
        "same": lambda t: {**solution(t), "JS": math.log(2)},
        "inf": lambda t: {**solution(t), "KL": 10.0 if t else 0.0},
        "lacks": lambda t: {"W1": abs(t)},
        "log 2": lambda t: {**solution(t), "JS": abs(t)},
    }
    for message, fn in wrong.items():
        with pytest.raises(ExerciseError, match=message):
            ch06.check_parallel_lines(fn)
