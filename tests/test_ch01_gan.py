"""Chapter 01: Goodfellow et al. (2014), "Generative Adversarial Nets" (arXiv 1406.2661).

Shapes of the players, the paper's statements (Prop. 1, Thm. 1, Sec. 3's saturation), the toy data and its mode
coverage, the chapter contract of Algorithm 1 (``gan.train_step``: its logs, both players updated, D unfrozen
afterwards, k discriminator steps, determinism under a seed), the exercise checks and the explorers, headless.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from gan_course.data import toy
from gan_course.data.base import TensorImageDataset
from gan_course.exercises import ExerciseError, ch01
from gan_course.lab import gan as gan_lab
from gan_course.losses import discriminator_loss, generator_loss_nonsaturating, generator_loss_saturating
from gan_course.models import gan
from gan_course.training import Batches, Run


# ----------------------------------------------------------------------------------------- the players
def test_generator_maps_z_to_images_in_tanh_range():
    G = gan.Generator(z_dim=100, out_shape=(1, 28, 28))
    x = G(torch.randn(5, 100))
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1


def test_discriminator_returns_one_logit_per_sample():
    D = gan.Discriminator(in_shape=(1, 28, 28))
    logits = D(torch.randn(7, 1, 28, 28))
    assert logits.shape == (7,)
    p = D.probability(torch.randn(3, 1, 28, 28))
    assert ((p > 0) & (p < 1)).all()


def test_paper_sized_players_have_the_papers_layer_widths():
    G, D = gan.Generator(), gan.Discriminator()
    # mnist.yaml: G = 100 -> 1200 -> 1200 -> 784; D = 784 -> maxout(240 x 5) -> maxout(240 x 5) -> 1
    assert sum(p.numel() for p in G.parameters()) == (100 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 784 + 784)
    assert sum(p.numel() for p in D.parameters()) == (784 * 1200 + 1200) + (240 * 1200 + 1200) + (240 + 1)
    assert "Maxout" in repr(D) and "Dropout" in repr(D)


def test_maxout_is_the_max_over_pieces():
    m = gan.Maxout(3, units=2, pieces=4)
    x = torch.randn(5, 3)
    pre = m.linear(x).view(5, 2, 4)
    assert torch.equal(m(x), pre.max(dim=-1).values)


def test_input_dropout_drops_pixels_to_black_not_grey():
    drop = gan.InputDropout(0.5).train()
    background = -torch.ones(1000)
    assert torch.equal(drop(background), background)                 # black stays black
    white = drop(torch.ones(1000))
    assert set(white.unique().tolist()) <= {-1.0, 3.0}                # dropped -> black; kept: 2 * (1 / 0.5) - 1
    assert torch.equal(drop.eval()(white), white)


def test_toy_players_shapes_and_leaky_relu_option():
    assert gan_lab.toy_generator(z_dim=4)(torch.randn(6, 4)).shape == (6, 2)
    assert gan_lab.toy_discriminator()(torch.randn(6, 2)).shape == (6,)
    D = gan.Discriminator(in_shape=(1, 28, 28), hidden=(64,), unit="leaky_relu")
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in D.modules())
    with pytest.raises(ValueError, match="unit must be one of 'maxout', 'leaky_relu', 'relu'"):
        gan.Discriminator(unit="sigmoid")


def test_players_take_keyword_arguments_only():
    with pytest.raises(TypeError):
        gan.Generator(100, (1, 28, 28))
    with pytest.raises(TypeError):
        gan.Discriminator((1, 28, 28))


# ----------------------------------------------------------------------------------------- the theory
def _grid_1d():
    x = torch.linspace(-20, 20, 16001, dtype=torch.float64)
    return x, float(x[1] - x[0])


def test_optimal_discriminator_is_half_where_densities_agree_and_in_unit_interval():
    p = torch.tensor([0.1, 0.3, 0.0, 2.0])
    q = torch.tensor([0.1, 0.1, 0.0, 0.0])
    d = gan.optimal_discriminator(p, q)
    assert torch.allclose(d, torch.tensor([0.5, 0.75, 0.5, 1.0]))
    assert torch.equal(gan.optimal_discriminator(q, q), torch.full_like(q, 0.5))


def test_optimal_discriminator_maximises_V_pointwise():
    # Prop. 1: a log(y) + b log(1 - y) has its maximum at y = a / (a + b).
    a, b = torch.tensor(0.3), torch.tensor(0.7)
    y = torch.linspace(0.01, 0.99, 981)
    best = y[torch.argmax(a * torch.log(y) + b * torch.log(1 - y))]
    assert abs(float(best) - float(gan.optimal_discriminator(a, b))) < 1e-3


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.0, 1.0), (2.0, 0.5), (-3.0, 2.0)])
def test_theorem_1_C_of_G_equals_minus_log4_plus_2_jsd(mu, sigma):
    x, dx = _grid_1d()
    p_data = toy.mixture_density_1d(x, [-1.0, 1.5], [0.4, 0.6], [0.4, 0.6])
    p_g = toy.mixture_density_1d(x, [mu], [sigma])
    c = gan.virtual_training_criterion(p_data, p_g, dx)
    assert math.isclose(float(c), -math.log(4) + 2 * float(gan.js_divergence(p_data, p_g, dx)), abs_tol=1e-6)
    assert float(c) >= -math.log(4) - 1e-6


def test_theorem_1_global_minimum_is_minus_log4_at_p_g_equal_p_data():
    x, dx = _grid_1d()
    p = toy.mixture_density_1d(x, [0.0], [1.0])
    assert math.isclose(float(gan.virtual_training_criterion(p, p, dx)), -math.log(4), abs_tol=1e-6)
    assert math.isclose(float(gan.js_divergence(p, p, dx)), 0.0, abs_tol=1e-9)
    far = toy.mixture_density_1d(x, [8.0], [0.3])           # disjoint supports: JSD -> log 2, C -> 0
    assert math.isclose(float(gan.js_divergence(p, far, dx)), math.log(2), abs_tol=1e-4)


def test_trained_discriminator_approaches_the_optimal_one():
    torch.manual_seed(0)
    rng = torch.Generator().manual_seed(0)
    D = gan.Discriminator(in_shape=(1,), hidden=(32, 32), unit="relu", dropout=0.0, input_dropout=0.0)
    sample_data = lambda n: (torch.randn(n, 1, generator=rng) * 0.5 - 1.0)    # N(-1, 0.5^2)
    sample_g = lambda n: (torch.randn(n, 1, generator=rng) + 0.5)             # N(0.5, 1)
    gan_lab.fit_discriminator(D, sample_data, sample_g, steps=500, batch_size=256, lr=3e-3)
    x = torch.linspace(-2.0, 1.5, 15)
    d_star = gan.optimal_discriminator(toy.mixture_density_1d(x, [-1.0], [0.5]), toy.mixture_density_1d(x, [0.5], [1.0]))
    with torch.no_grad():
        d = torch.sigmoid(D(x.unsqueeze(1))).double()
    assert (d - d_star).abs().max() < 0.08


def test_saturating_gradient_vanishes_when_D_rejects_and_nonsaturating_does_not():
    d_fake = torch.tensor([1e-4, 0.01, 0.5, 0.99])
    g = gan_lab.generator_logit_gradients(d_fake)
    assert torch.allclose(g["saturating"], d_fake.double(), rtol=1e-6)               # |dL/dl| = D(G(z))
    assert torch.allclose(g["nonsaturating"], 1 - d_fake.double(), rtol=1e-6)        # |dL/dl| = 1 - D(G(z))
    assert g["nonsaturating"][0] / g["saturating"][0] > 1e3


def test_both_generator_losses_share_the_fixed_point_direction():
    # Both decrease as D(G(z)) increases: they push G the same way, with different strength.
    logits = torch.linspace(-5, 5, 11)
    for loss in (generator_loss_saturating, generator_loss_nonsaturating):
        values = torch.stack([loss(l.view(1)) for l in logits])
        assert (values[1:] < values[:-1]).all()


def test_discriminator_loss_at_equilibrium_is_log_4():
    zeros = torch.zeros(10)                                   # D = 1/2 everywhere
    assert math.isclose(float(discriminator_loss(zeros, zeros)), math.log(4), rel_tol=1e-6)


# ----------------------------------------------------------------------------------------- toy data
def test_ring_has_modes_on_the_circle_and_a_normalised_density():
    data = toy.ring(modes=8, radius=2.0, sigma=0.05, n=4000)
    assert data.centers.shape == (8, 2)
    assert torch.allclose(data.centers.norm(dim=1), torch.full((8,), 2.0), atol=1e-5)
    x, k = data.get_batch(torch.arange(10))
    assert x.shape == (10, 2) and k.shape == (10,)
    axis = torch.linspace(-3, 3, 301)
    mass = data.density(torch.cartesian_prod(axis, axis)).sum() * (axis[1] - axis[0]) ** 2
    assert abs(float(mass) - 1) < 1e-3


def test_mode_coverage_counts_modes_reached():
    data = toy.ring(n=4000, seed=1)
    assert data.coverage(data.points) == 8
    assert data.high_quality_fraction(data.points) > 0.98
    collapsed = data.centers[3] + 0.02 * torch.randn(500, 2)
    assert data.coverage(collapsed) == 1
    assert data.coverage(torch.zeros(100, 2)) == 0                       # the centre of the ring is no mode
    two = torch.cat([data.centers[0] + 0.01 * torch.randn(300, 2), data.centers[5] + 0.01 * torch.randn(300, 2)])
    assert data.mode_counts(two).tolist() == [300, 0, 0, 0, 0, 300, 0, 0]


def test_toy_data_is_seeded_and_validated():
    assert torch.equal(toy.ring(n=100, seed=3).points, toy.ring(n=100, seed=3).points)
    assert not torch.equal(toy.ring(n=100, seed=3).points, toy.ring(n=100, seed=4).points)
    assert toy.grid(side=5).num_modes == 25
    with pytest.raises(ValueError, match="sigma"):
        toy.ring(sigma=0)


def test_batches_stream_the_toy_dataset():
    x, k = Batches(toy.ring(n=1000), 64, seed=0).next()
    assert x.shape == (64, 2) and k.dtype == torch.int64


# ----------------------------------------------------------------------------------------- Algorithm 1
def _players(seed=0):
    torch.manual_seed(seed)
    G = gan.Generator(z_dim=4, out_shape=(1, 4, 4), hidden=(16,))
    D = gan.Discriminator(in_shape=(1, 4, 4), hidden=(8,), pieces=2)
    return G, D


def _images(n=64):
    images = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return TensorImageDataset(images, torch.zeros(n, dtype=torch.long), classes=["x"])


def _run(G, D, cfg, root):
    opt_G, opt_D = gan.optimizers(G, D, cfg)
    return Run("test", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, root=root, progress=False, live=False)


def test_config_defaults_are_the_papers_k_and_sec3_loss_and_validate():
    cfg = gan.Config()
    assert cfg.k == 1 and cfg.generator_loss == "nonsaturating"
    with pytest.raises(ValueError, match="generator_loss must be one of nonsaturating, saturating"):
        gan.Config(generator_loss="hinge")
    with pytest.raises(ValueError, match="k"):
        gan.Config(k=0)
    with pytest.raises(ValueError, match="optimizer must be one of adam, sgd"):
        gan.Config(optimizer="rmsprop")


def test_sgd_steps_scale_with_the_gradient_adam_steps_do_not():
    """Sec. 5.1's point: a gradient 100x smaller is a step 100x smaller for the paper's momentum SGD, and about the
    same step for Adam (which divides each parameter's gradient by its running size)."""
    steps = {}
    for optimizer in ("sgd", "adam"):
        for scale in (1.0, 0.01):
            G, D = _players()
            opt_G, _ = gan.optimizers(G, D, gan.Config(optimizer=optimizer, lr_G=1e-3, momentum=0.5))
            assert isinstance(opt_G, torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)
            before = torch.cat([p.detach().flatten().clone() for p in G.parameters()])
            (G(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(1))).sum() * scale).backward()
            opt_G.step()
            steps[optimizer, scale] = float((torch.cat([p.detach().flatten() for p in G.parameters()]) - before).norm())
    assert steps["sgd", 0.01] == pytest.approx(0.01 * steps["sgd", 1.0], rel=1e-3)
    assert steps["adam", 0.01] == pytest.approx(steps["adam", 1.0], rel=1e-2)


def test_optimizers_are_adam_with_the_configs_steps():
    G, D = _players()
    opt_G, opt_D = gan.optimizers(G, D, gan.Config(lr_G=1e-3, lr_D=3e-4, beta1=0.0, beta2=0.9))
    assert opt_G.defaults["lr"] == 1e-3 and opt_D.defaults["lr"] == 3e-4
    assert opt_G.defaults["betas"] == opt_D.defaults["betas"] == (0.0, 0.9)


def test_train_step_updates_both_players_and_returns_detached_logs(tmp_path):
    G, D = _players()
    cfg = gan.Config()
    run = _run(G, D, cfg, tmp_path)
    before_G, before_D = [p.clone() for p in G.parameters()], [p.clone() for p in D.parameters()]
    logs = gan.train_step(run, G, D, Batches(_images(), 16), cfg)
    assert set(logs) == {"loss_D", "loss_G", "D_real", "D_fake", "D_fake_G"}
    assert all(v.ndim == 0 and not v.requires_grad for v in logs.values())
    assert all(0 < float(logs[k]) < 1 for k in ("D_real", "D_fake", "D_fake_G"))
    assert all(not torch.equal(a, b) for a, b in zip(before_G, G.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(before_D, D.parameters(), strict=True))
    assert all(p.requires_grad for p in D.parameters())                # D is unfrozen after G's step


def test_train_step_takes_k_discriminator_steps_and_the_configured_generator_loss(tmp_path):
    G, D = _players()
    cfg = gan.Config(k=3, generator_loss="saturating")
    run = _run(G, D, cfg, tmp_path)
    batches = Batches(_images(), 16)
    logs = gan.train_step(run, G, D, batches, cfg)
    assert run.optimizers["D"].state_dict()["state"][0]["step"] == 3
    assert run.optimizers["G"].state_dict()["state"][0]["step"] == 1
    assert batches.position == 3 * 16                                 # a fresh real minibatch for each D step
    assert float(logs["loss_G"]) <= 0                                  # log(1 - D(G(z))) <= 0
    assert math.isclose(float(logs["loss_G"]), math.log(1 - float(logs["D_fake_G"])), abs_tol=0.05)


def test_train_arm_is_deterministic_under_a_seed_and_logs_the_gradient_reaching_G(tmp_build):
    def arm(seed):
        G, D = _players(seed)
        torch.manual_seed(seed)
        run = gan_lab.train_arm("arm", G, D, _images(), 5, gan.Config(), batch_size=16, seed=seed)
        return run.history, G

    (a, Ga), (b, Gb) = arm(3), arm(3)
    assert a.values("loss_D") == b.values("loss_D") and a.values("grad_G") == b.values("grad_G")
    assert len(a.values("loss_G")) == 5 and all(g > 0 for g in a.values("grad_G"))
    assert all(torch.equal(p, q) for p, q in zip(Ga.parameters(), Gb.parameters(), strict=True))
    assert arm(4)[0].values("loss_D") != a.values("loss_D")


def _tiny_run(**kw):
    cfg = gan_lab.toy_config(**{k: kw.pop(k) for k in ("generator_loss", "k") if k in kw})
    return gan_lab.train_toy(toy.ring(n=2000), 30, cfg, batch_size=64, hidden=32, depth=2, snapshot_every=10,
                             n_samples=200, resolution=21, **kw)


def test_train_toy_records_snapshots_and_is_deterministic():
    run_a, G, D = _tiny_run(seed=5)
    run_b, _, _ = _tiny_run(seed=5)
    assert run_a.steps == [0, 10, 20, 30]
    assert len(run_a.loss_D) == 30 and len(run_a.fake) == 4
    assert run_a.d_grid[0].shape == (21, 21)
    assert all(0 <= c <= 8 for c in run_a.coverage)
    for a, b in zip(run_a.fake, run_b.fake, strict=True):
        assert torch.equal(a, b)
    assert run_a.loss_G == run_b.loss_G
    run_c, _, _ = _tiny_run(seed=6)
    assert not torch.equal(run_a.fake[-1], run_c.fake[-1])


def test_train_toy_k_steps_and_loss_choice():
    run, _, _ = _tiny_run(generator_loss="saturating", k=2)
    assert run.config["k"] == 2 and run.config["generator_loss"] == "saturating"
    assert all(v <= 0 for v in run.loss_G)                          # log(1 - D) <= 0
    with pytest.raises(ValueError, match="generator_loss"):
        _tiny_run(generator_loss="hinge")


def test_train_toy_leaves_the_global_random_state_as_initialisation_left_it():
    _tiny_run(seed=2)
    after = torch.get_rng_state()
    torch.manual_seed(2)
    gan_lab.toy_generator(16, 32, 2), gan_lab.toy_discriminator(32, 2)
    assert torch.equal(after, torch.get_rng_state())


# ----------------------------------------------------------------------------------------- exercises
def test_exercise_1_accepts_reference_and_rejects_typical_mistakes():
    assert ch01.check_nonsaturating_loss(lambda l: F.softplus(-l).mean())
    assert ch01.check_nonsaturating_loss(lambda l: F.binary_cross_entropy_with_logits(l, torch.ones_like(l)))
    wrong = {
        "saturating": lambda l: -F.softplus(l).mean(),
        "sign": lambda l: F.logsigmoid(l).mean(),
        "sum": lambda l: F.softplus(-l).sum(),
        "unstable": lambda l: -torch.log(torch.sigmoid(l)).mean(),
        "per-sample": lambda l: F.softplus(-l),
        "probabilities": lambda l: -torch.log(l).mean(),
        "clamped": lambda l: F.binary_cross_entropy(torch.sigmoid(l), torch.ones_like(l)),
        "none": lambda l: None,
    }
    messages = {}
    for name, fn in wrong.items():
        with pytest.raises(ExerciseError) as err:
            ch01.check_nonsaturating_loss(fn)
        messages[name] = str(err.value)
    assert "saturating" in messages["saturating"]
    assert "believe" in messages["sign"]
    assert "summed" in messages["sum"]
    assert "underflows" in messages["unstable"]
    assert "mean" in messages["per-sample"]
    assert "clamps" in messages["clamped"]
    assert "return" in messages["none"]


def test_exercise_2_accepts_reference_and_rejects_typical_mistakes():
    from torch.distributions import Normal

    p_data = lambda x: Normal(0.0, 1.0).log_prob(x).exp()
    p_g = lambda x: Normal(1.0, 0.5).log_prob(x).exp()
    assert ch01.check_optimal_discriminator(lambda x: p_data(x) / (p_data(x) + p_g(x)))
    # the same in log space: D* = sigmoid(log p_data - log p_g)
    assert ch01.check_optimal_discriminator(
        lambda x: torch.sigmoid(Normal(0.0, 1.0).log_prob(x) - Normal(1.0, 0.5).log_prob(x)))
    wrong_std = lambda x: Normal(1.0, 0.25).log_prob(x).exp()
    bell = lambda x, m, s: torch.exp(-((x - m) ** 2) / (2 * s ** 2))      # a Gaussian without 1 / (s sqrt(2 pi))
    cases = {
        "swapped": (lambda x: p_g(x) / (p_data(x) + p_g(x)), "generated"),
        "ratio": (lambda x: p_data(x) / p_g(x), "ratio"),
        "variance": (lambda x: p_data(x) / (p_data(x) + wrong_std(x)), "standard deviation"),
        "half": (lambda x: torch.full_like(x, 0.5), "D*(x)"),
        "unnormalised": (lambda x: bell(x, 0, 1) / (bell(x, 0, 1) + bell(x, 1, 0.5)), "normalising factor"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch01.check_optimal_discriminator(fn)


def test_exercise_3_accepts_reference_and_rejects_typical_mistakes():
    assert ch01.check_discriminator_loss(discriminator_loss)
    bce = lambda r, f: (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                        + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
    assert ch01.check_discriminator_loss(bce)
    assert ch01.check_discriminator_loss(lambda r, f: -(F.logsigmoid(r).mean() + F.logsigmoid(-f).mean()))
    cases = {
        "V itself": (lambda r, f: -discriminator_loss(r, f), "maximises"),
        "swapped": (lambda r, f: F.softplus(r).mean() + F.softplus(-f).mean(), "swapped"),
        "unstable": (lambda r, f: -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean()),
                     "saturates"),
        "summed": (lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(), "summed"),
        "one mean": (lambda r, f: F.binary_cross_entropy_with_logits(
            torch.cat([r, f]), torch.cat([torch.ones_like(r), torch.zeros_like(f)])), "half of L_D"),
        "clamped": (lambda r, f: F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
                    + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f)), "clamps"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch01.check_discriminator_loss(fn)


def test_unanswered_exercise_says_so():
    def todo(*args):
        raise NotImplementedError()

    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch01.check_nonsaturating_loss(todo)


# ----------------------------------------------------------------------------------------- explorers
def test_toy_stepper_renders_each_snapshot_headless():
    run, _, _ = _tiny_run(seed=0)
    ex = gan_lab.toy_stepper(run)
    assert ex.state["values"]["step"] == 30 and ex.state["renders"] == 1
    ex.controls["step"].value = 10
    assert ex.state["values"]["step"] == 10
    ax = ex.state["figure"].axes[0]
    assert ax.get_title().startswith("step 10:") and ax.get_xlabel() == "$x_1$"
    ex.controls["show_d"].value = False
    assert ex.state["renders"] == 3 and ex.state["values"]["show_d"] is False


def test_sample_explorer_changes_with_seed_and_shows_neighbours():
    torch.manual_seed(0)
    G = gan.Generator(z_dim=8, out_shape=(1, 8, 8), hidden=(16,))
    images = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8)
    dataset = TensorImageDataset(images, torch.zeros(50, dtype=torch.long), classes=["x"])
    ex = gan_lab.sample_explorer(G, dataset=dataset, n=8)
    first = ex.state["figure"].axes[0].images[0].get_array().copy()
    ex.controls["seed"].value = 7
    second = ex.state["figure"].axes[0].images[0].get_array()
    assert ex.state["values"]["seed"] == 7 and not (first == second).all()
    ex.controls["neighbours"].value = True
    assert "nearest training image" in ex.state["figure"].axes[0].get_title()


def test_nearest_neighbours_finds_the_training_image_itself():
    images = torch.randint(0, 256, (40, 1, 6, 6), dtype=torch.uint8)
    samples = images[[3, 17, 39]].float() / 127.5 - 1
    assert gan_lab.nearest_neighbours(samples, images, chunk=16).tolist() == [3, 17, 39]
