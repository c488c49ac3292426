"""Chapter 03: DCGAN (Radford, Metz & Chintala, 2015, arXiv 1511.06434): the networks, the guidelines of Sec. 3,
the initialisation of Sec. 4, the training step (``dcgan.train_step``, the chapter contract) and the experiment arms,
the latent-space explorers of Sec. 6 (``gan_course.lab.dcgan``), the linear probe of Sec. 5.1 and the exercise
checks."""

import dataclasses
import math

import pytest
import torch
from contract import one_train_step
from torch import nn

from gan_course import analysis, sampling
from gan_course.exercises import ExerciseError, ch03
from gan_course.lab import dcgan as dcgan_lab
from gan_course.models import dcgan
from gan_course.training import Batches, Run


# ---------------------------------------------------------------------------- shapes and architecture
@pytest.mark.parametrize("image_size,channels", [(32, 1), (64, 3), (8, 1)])
def test_generator_and_discriminator_shapes(image_size, channels):
    G = dcgan.Generator(z_dim=10, channels=channels, image_size=image_size, width=8)
    D = dcgan.Discriminator(channels=channels, image_size=image_size, width=8)
    x = G(torch.randn(5, 10))
    assert x.shape == (5, channels, image_size, image_size)
    assert x.abs().max() <= 1                                   # tanh output: images live in [-1, 1]
    assert D(x).shape == (5,)
    features = D.features(x)
    assert len(features) == int(math.log2(image_size)) - 2
    assert features[-1].shape[-1] == 4                          # the last block is a 4x4 map
    assert [f.shape[1] for f in features] == [8 * 2 ** i for i in range(len(features))]


def test_generator_accepts_z_as_a_1x1_image():
    G = dcgan.Generator(z_dim=10, width=8)
    z = torch.randn(3, 10)
    G.eval()
    assert torch.equal(G(z), G(z.view(3, 10, 1, 1)))


def test_constructors_take_keyword_arguments_only():
    with pytest.raises(TypeError):
        dcgan.Generator(100, 1, 32)
    with pytest.raises(TypeError):
        dcgan.Discriminator(1, 32)


def test_levels_counts_the_stride_2_layers():
    assert [dcgan.levels(s) for s in (8, 32, 64)] == [1, 3, 4]
    with pytest.raises(ValueError, match="power of two"):
        dcgan.levels(4)


def test_bad_image_size_is_a_clear_error():
    with pytest.raises(ValueError, match="power of two"):
        dcgan.Generator(image_size=28)
    with pytest.raises(ValueError, match="power of two"):
        dcgan.Discriminator(image_size=48)


def test_paper_width_64x64_channel_counts():
    """Fig. 1: z (100) -> 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3 (width 128 at 64x64)."""
    G = dcgan.Generator(z_dim=100, channels=3, image_size=64, width=128)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(100, 1024), (1024, 512), (512, 256), (256, 128),
                                                                (128, 3)]


def test_dcgan_follows_the_guidelines():
    G, D = dcgan.Generator(width=8), dcgan.Discriminator(width=8)
    assert dcgan.check_guidelines(G, D) == {k: True for k in
                                            ("no_pooling", "batch_norm", "no_hidden_fc", "G_relu_tanh", "D_leaky_relu")}


def test_guideline_check_notices_violations():
    G, D = dcgan.Generator(width=8, batch_norm=False), dcgan.Discriminator(width=8, batch_norm=False)
    result = dcgan.check_guidelines(G, D)
    assert not result["batch_norm"] and result["no_pooling"] and result["G_relu_tanh"]
    mlp = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.MaxPool2d(2), nn.Tanh())
    result = dcgan.check_guidelines(mlp, dcgan.Discriminator(width=8))
    assert not result["no_hidden_fc"] and not result["no_pooling"]


def test_guideline_3_allows_the_projection_and_the_single_output_but_no_hidden_layer():
    G, D = dcgan.Generator(width=8), dcgan.Discriminator(width=8)
    projected = nn.Sequential(nn.Linear(100, 64 * 16), nn.Unflatten(1, (64, 4, 4)), *list(G.children())[1:])
    flat_out = nn.Sequential(*list(D.children())[:-1], nn.Flatten(), nn.LazyLinear(1))
    hidden = nn.Sequential(*list(D.children())[:-1], nn.Flatten(), nn.LazyLinear(32), nn.LeakyReLU(0.2),
                           nn.Linear(32, 1))
    assert dcgan.check_guidelines(projected, D)["no_hidden_fc"]           # "just a matrix multiplication" of z
    assert dcgan.check_guidelines(G, flat_out)["no_hidden_fc"]            # flattened into a single output
    assert not dcgan.check_guidelines(G, hidden)["no_hidden_fc"]          # a fully connected hidden layer
    # the whole dict, not only no_hidden_fc: a Linear at either end (with its batch norm) breaks no other guideline
    projected_bn = nn.Sequential(nn.Linear(100, 32 * 16), nn.Unflatten(1, (32, 4, 4)), nn.BatchNorm2d(32), nn.ReLU(),
                                 *list(G.children())[1:])
    assert all(dcgan.check_guidelines(projected_bn, D).values()) and all(dcgan.check_guidelines(G, flat_out).values())
    # the authors' code: batch norm on the flat projection (BatchNorm1d), then the reshape
    bn1d = nn.Sequential(nn.Linear(100, 32 * 16), nn.BatchNorm1d(32 * 16), nn.ReLU(), nn.Unflatten(1, (32, 4, 4)),
                         *list(G.children())[1:])
    assert all(dcgan.check_guidelines(bn1d, D).values())
    # a hidden layer in G: z -> Linear -> ReLU -> Linear -> the 4x4 map
    g_hidden = nn.Sequential(nn.Linear(100, 32), nn.ReLU(), nn.Linear(32, 32 * 16), nn.Unflatten(1, (32, 4, 4)),
                             nn.BatchNorm2d(32), nn.ReLU(), *list(G.children())[1:])
    assert not dcgan.check_guidelines(g_hidden, D)["no_hidden_fc"]
    # two Linears with no nonlinearity between are one matrix multiplication, not a hidden layer
    factored = nn.Sequential(*list(D.children())[:-1], nn.Flatten(), nn.LazyLinear(32), nn.Linear(32, 1))
    assert dcgan.check_guidelines(G, factored)["no_hidden_fc"]
    # D's last layer must be the single output; a Linear as G's output layer is no end the paper keeps
    two_out = nn.Sequential(*list(D.children())[:-1], nn.Flatten(), nn.LazyLinear(2))
    assert not dcgan.check_guidelines(G, two_out)["no_hidden_fc"]
    fc_image = nn.Sequential(*list(G.children())[:-1], nn.Flatten(), nn.Linear(8 * 16 * 16, 32 * 32),
                             nn.Unflatten(1, (1, 32, 32)), nn.Tanh())
    assert not dcgan.check_guidelines(fc_image, D)["no_hidden_fc"]


def test_no_batch_norm_on_g_output_or_d_input():
    G, D = dcgan.Generator(width=8), dcgan.Discriminator(width=8)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.to_image.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.blocks[0].modules())
    assert all(any(isinstance(m, nn.BatchNorm2d) for m in b.modules()) for b in D.blocks[1:])
    assert all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in D.modules()
               if isinstance(m, (nn.ReLU, nn.LeakyReLU)))


def test_initialisation_is_normal_0_002():
    torch.manual_seed(0)
    G, D = dcgan.Generator(width=32), dcgan.Discriminator(width=32)
    w = torch.cat([m.weight.flatten() for m in list(G.modules()) + list(D.modules())
                   if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    gamma = torch.cat([m.weight for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(gamma.mean().item() - 1) < 0.01


def test_networks_are_deterministic_under_a_seed():
    torch.manual_seed(3)
    a = dcgan.Generator(width=8)(torch.ones(2, 100))
    torch.manual_seed(3)
    b = dcgan.Generator(width=8)(torch.ones(2, 100))
    assert torch.equal(a, b)
    assert torch.equal(dcgan_lab.latent(7), dcgan_lab.latent(7))
    assert not torch.equal(dcgan_lab.latent(7), dcgan_lab.latent(8))


def test_optimizers_use_the_papers_adam_settings():
    opt_G, opt_D = dcgan.optimizers(dcgan.Generator(width=8), dcgan.Discriminator(width=8))
    for opt in (opt_G, opt_D):
        assert opt.param_groups[0]["lr"] == 2e-4 and opt.param_groups[0]["betas"] == (0.5, 0.999)
    opt_G, opt_D = dcgan.optimizers(dcgan.Generator(width=8), dcgan.Discriminator(width=8),
                                    dcgan.Config(lr_D=1e-3, beta1=0.9))
    assert opt_G.param_groups[0]["lr"] == 2e-4 and opt_D.param_groups[0]["lr"] == 1e-3
    assert opt_D.param_groups[0]["betas"] == (0.9, 0.999)


def test_config_defaults_are_the_papers_and_bad_values_are_clear_errors():
    cfg = dcgan.Config()
    assert (cfg.lr_G, cfg.lr_D, cfg.beta1, cfg.batch_size, cfg.d_steps) == (2e-4, 2e-4, 0.5, 128, 1)
    with pytest.raises(ValueError, match="d_steps"):
        dcgan.Config(d_steps=0)
    with pytest.raises(ValueError, match="lr_D"):
        dcgan.Config(lr_D=-1.0)
    with pytest.raises(ValueError, match="beta1"):
        dcgan.Config(beta1=1.0)


# ---------------------------------------------------------------------------- training
class _TinyImages(torch.utils.data.Dataset):
    def __init__(self, n=64, size=8):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 1, size, size, generator=g) * 2 - 1
        self.targets = torch.arange(n) % 2

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.targets[i]


def _tiny_networks():
    torch.manual_seed(0)
    return dcgan.Generator(z_dim=8, image_size=8, width=4), dcgan.Discriminator(image_size=8, width=4)


def test_train_step_logs_the_contract_keys_and_updates_both_players(tmp_build):
    G, D = _tiny_networks()
    logs, batches, _ = one_train_step(dcgan, G, D, _TinyImages(), dcgan.Config(batch_size=16),
                                      {"loss_D", "loss_G", "D_real", "D_fake"})
    assert 0 < logs["D_real"] < 1 and 0 < logs["D_fake"] < 1
    assert batches.position == 16                                # d_steps = 1: one real batch


def test_train_step_takes_d_steps_discriminator_steps(tmp_build):
    G, D = _tiny_networks()
    cfg = dcgan.Config(batch_size=16, d_steps=3)
    opt_G, opt_D = dcgan.optimizers(G, D, cfg)
    run = Run("k", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, progress=False, live=False)
    batches = Batches(_TinyImages(), cfg.batch_size, seed=0)
    dcgan.train_step(run, G, D, batches, cfg)
    assert batches.position == 48 and opt_D.state[next(iter(D.parameters()))]["step"] == 3


def _tiny_arm(name, **kw):
    G, D = _tiny_networks()
    run = dcgan_lab.train_arm(name, G, D, _TinyImages(), 2, dcgan.Config(batch_size=16, d_steps=2), progress=False,
                              live=False, **kw)
    return G, run


def test_train_arm_logs_and_is_deterministic(tmp_build):
    G1, run1 = _tiny_arm("a")
    G2, run2 = _tiny_arm("b")
    assert set(run1.history.keys()) == {"loss_D", "loss_G", "D_real", "D_fake"}
    assert run1.step == 2 and run1.config["d_steps"] == 2 and run1.config["seed"] == 0
    assert run1.history.values("loss_D") == run2.history.values("loss_D")
    for p, q in zip(G1.parameters(), G2.parameters(), strict=True):
        assert torch.equal(p, q)
    assert all(0 < v < 1 for v in run1.history.values("D_fake"))


def test_train_arm_runs_the_notebooks_loop(tmp_build):
    """An arm is the notebook's loop: the same seed and Config give the same weights as the loop written out."""
    G1, run1 = _tiny_arm("arm")
    G2, D2 = _tiny_networks()
    cfg = dcgan.Config(batch_size=16, d_steps=2)
    opt_G, opt_D = dcgan.optimizers(G2, D2, cfg)
    torch.manual_seed(0)
    run2 = Run("loop", {"G": G2, "D": D2}, {"G": opt_G, "D": opt_D}, progress=False, live=False)
    batches = Batches(_TinyImages(), cfg.batch_size, seed=0)
    for _ in run2.steps(2):
        run2.log(**dcgan.train_step(run2, G2, D2, batches, cfg))
    assert run1.history.values("loss_G") == run2.history.values("loss_G")
    assert all(torch.equal(p, q) for p, q in zip(G1.parameters(), G2.parameters(), strict=True))


def test_train_arm_logs_eval_fn_every_eval_every_steps_and_at_the_end(tmp_build):
    calls = []

    def eval_fn(G):
        calls.append(G.training)
        return {"fid": float(len(calls))}

    G, D = _tiny_networks()
    run = dcgan_lab.train_arm("e", G, D, _TinyImages(), 5, dataclasses.replace(dcgan.Config(), batch_size=16),
                              progress=False, live=False, eval_fn=eval_fn, eval_every=2)
    assert run.history.steps("fid") == [1, 3, 4] and run.history.values("fid") == [1.0, 2.0, 3.0]
    assert G.training                                          # evaluation does not leave G in eval mode


def test_sample_restores_training_mode_and_sampler_is_seeded():
    G = dcgan.Generator(z_dim=8, image_size=8, width=4)
    G.train()
    out = sampling.sample(G, torch.randn(3, 8))
    assert out.shape == (3, 1, 8, 8) and G.training
    fn = sampling.sampler(G, seed=1)
    assert torch.equal(fn(4), fn(4))


# ---------------------------------------------------------------------------- explorers (Sec. 6)
def test_latent_arithmetic_averages_then_adds_bounded_noise():
    z_a, z_b, z_c = torch.ones(3, 5), torch.zeros(3, 5), 2 * torch.ones(3, 5)
    out = dcgan_lab.latent_arithmetic(z_a, z_b, z_c, n=6, noise=0.25)
    assert out.shape == (6, 5)
    assert torch.equal(out[0], 3 * torch.ones(5))
    assert (out[1:] - 3).abs().max() <= 0.25


def test_interpolation_explorer_headless():
    G = dcgan.Generator(z_dim=8, image_size=8, width=4)
    ex = dcgan_lab.interpolation_explorer(G)
    assert ex.state["renders"] == 1
    ex.controls["method"].value = "lerp"
    ex.controls["steps"].value = 5
    assert ex.state["values"]["method"] == "lerp" and ex.state["renders"] == 3
    assert "lerp" in ex.state["figure"].axes[0].get_title()


def _judge(images):
    brightness = images.mean((1, 2, 3))
    return {"label": (brightness > brightness.median()).long(), "bold": (images[:, 0, 0, 0] > 0).long()}


def test_latent_pool_selects_by_judged_labels():
    G = dcgan.Generator(z_dim=8, image_size=8, width=4)
    pool = dcgan_lab.LatentPool(G, _judge, n=64)
    index = pool.select(label=1, bold=0)
    assert all(pool.labels["label"][i] == 1 and pool.labels["bold"][i] == 0 for i in index)
    assert pool.concept(2, label=1).shape == (2, 8)
    with pytest.raises(ValueError, match="match"):
        pool.concept(1000, label=1)


def test_arithmetic_explorer_headless():
    G = dcgan.Generator(z_dim=8, image_size=8, width=4)
    pool = dcgan_lab.LatentPool(G, _judge, n=200)
    ex = dcgan_lab.arithmetic_explorer(G, pool, classes=["dark", "bright"], judge=_judge, attribute="bold")
    ex.controls["k"].value = 2
    ex.controls["char_x"].value = 1
    assert ex.state["values"]["k"] == 2 and ex.state["renders"] == 3
    assert "judge sees" in ex.state["figure"].axes[0].get_title()
    assert ex.state["figure"].axes[0].get_yticklabels()[0].get_text() == "a: label bright, bold 1"


def test_render_arithmetic_says_when_the_pool_lacks_a_concept():
    G = dcgan.Generator(z_dim=8, image_size=8, width=4)
    pool = dcgan_lab.LatentPool(G, _judge, n=20)
    fig = dcgan_lab.render_arithmetic(G, pool, a=dict(label=1), b=dict(label=0), c=dict(label=7), k=3)
    assert "not enough samples" in fig.axes[0].get_title()
    assert "match" in fig.axes[0].texts[0].get_text()


def test_arithmetic_scores_count_successes_against_the_judge():
    G = dcgan.Generator(z_dim=8, image_size=8, width=4).eval()
    pool = dcgan_lab.LatentPool(G, _judge, n=400)

    def judge(images):                         # sees everything as character 1, bold iff the first pixel is bright
        return {"label": torch.ones(len(images), dtype=torch.long), "bold": (images[:, 0, 0, 0] > 0).long()}

    scores = dcgan_lab.arithmetic_scores(G, pool, judge, [(0, 1), (1, 0), (0, 1)], attribute="bold", k=2)
    assert scores["pairs_used"] == 3
    assert scores["label"] == pytest.approx(2 / 3)             # judged "1" is right for the pairs (0, 1) only
    assert 0 <= scores["success"] <= min(scores["label"], scores["bold"])
    assert 0 <= scores["baseline_bold"] <= 1
    assert scores["images"].shape == scores["baseline_images"].shape == (3, 1, 8, 8) and scores["targets"] == [1, 0, 1]
    empty = dcgan_lab.arithmetic_scores(G, pool, judge, [(5, 6)], attribute="bold")   # no sample has label 5
    assert empty["pairs_used"] == 0 and math.isnan(empty["success"])


# ---------------------------------------------------------------------------- the linear probe (Sec. 5.1)
def test_pooled_features_shape_and_max_pooling():
    D = dcgan.Discriminator(image_size=32, width=4).eval()
    f = analysis.pooled_features(D.features, torch.randn(6, 1, 32, 32), batch_size=4)
    assert f.shape == (6, (4 + 8 + 16) * 16)
    maps = torch.arange(64.0).view(1, 1, 8, 8)
    pooled = analysis.pooled_features(lambda x: [x], maps, grid=4)
    assert pooled.flatten().tolist() == [9.0, 11, 13, 15, 25, 27, 29, 31, 41, 43, 45, 47, 57, 59, 61, 63]


def test_linear_probe_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 20, generator=g) * 3
    y = torch.arange(300) % 3
    x = centres[y] + torch.randn(300, 20, generator=g)
    probe = analysis.fit_linear_probe(x[:200], y[:200])
    assert probe.accuracy(x[200:], y[200:]) > 0.95
    chance = analysis.fit_linear_probe(torch.randn(200, 20, generator=g), y[:200])
    assert chance.accuracy(torch.randn(100, 20, generator=g), y[200:]) < 0.6


def test_linear_probe_is_deterministic_and_balanced_subset():
    idx = analysis.balanced_subset(torch.arange(100) % 4, 5, seed=1)
    assert len(idx) == 20 and torch.equal(idx, analysis.balanced_subset(torch.arange(100) % 4, 5, seed=1))
    assert torch.bincount((torch.arange(100) % 4)[idx]).tolist() == [5, 5, 5, 5]
    x, y = torch.randn(40, 6, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2
    a, b = analysis.fit_linear_probe(x, y), analysis.fit_linear_probe(x, y)
    assert torch.equal(a.weight, b.weight)
    out = analysis.linear_probe(lambda t: t, x, y, x, y)
    assert set(out) == {"train_accuracy", "test_accuracy", "probe", "dim"} and out["dim"] == 6


# ---------------------------------------------------------------------------- exercises
def _conv(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _conv_t(n, k, s, p, op=0):
    return (n - 1) * s - 2 * p + k + op


def test_output_sizes_exercise():
    assert ch03.check_output_sizes(_conv, _conv_t)
    with pytest.raises(ExerciseError, match="floor"):
        ch03.check_output_sizes(lambda n, k, s, p: (n + 2 * p - k) / s + 1, _conv_t)
    with pytest.raises(ExerciseError, match="both sides"):
        ch03.check_output_sizes(lambda n, k, s, p: (n + p - k) // s + 1, _conv_t)
    with pytest.raises(ExerciseError, match="ordinary convolution"):
        ch03.check_output_sizes(_conv, lambda n, k, s, p, op=0: _conv(n, k, s, p))
    with pytest.raises(ExerciseError, match="output_padding"):
        ch03.check_output_sizes(_conv, lambda n, k, s, p, op=0: _conv_t(n, k, s, p))
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch03.check_output_sizes(lambda *a: (_ for _ in ()).throw(NotImplementedError()), _conv_t)


def test_conv_output_size_exercise():
    assert ch03.check_conv_output_size(_conv)
    assert ch03.check_conv_output_size(lambda n, k, s, p: math.floor((n + 2 * p - k) / s) + 1)
    with pytest.raises(ExerciseError, match="floor"):
        ch03.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) / s + 1)
    with pytest.raises(ExerciseError, match="both sides"):
        ch03.check_conv_output_size(lambda n, k, s, p: (n + p - k) // s + 1)
    with pytest.raises(ExerciseError, match="one too few"):
        ch03.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) // s)


def test_conv_transpose_output_size_exercise():
    assert ch03.check_conv_transpose_output_size(_conv_t)
    assert ch03.check_conv_transpose_output_size(lambda n, k, s, p, op=0: s * (n - 1) + k - 2 * p + op)
    with pytest.raises(ExerciseError, match="ordinary convolution"):
        ch03.check_conv_transpose_output_size(lambda n, k, s, p, op=0: _conv(n, k, s, p))
    with pytest.raises(ExerciseError, match="output_padding"):
        ch03.check_conv_transpose_output_size(lambda n, k, s, p, op=0: _conv_t(n, k, s, p))
    with pytest.raises(ExerciseError, match="-2p"):
        ch03.check_conv_transpose_output_size(lambda n, k, s, p, op=0: (n - 1) * s - p + k + op)
    with pytest.raises(ExerciseError, match="output_padding=0"):                 # no default for output_padding
        ch03.check_conv_transpose_output_size(lambda n, k, s, p, op: _conv_t(n, k, s, p, op))


def test_init_exercise():
    assert ch03.check_init(dcgan.init_weights_)

    def unit_std(m):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 1.0)

    def bn_at_zero(m):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def only_conv2d(m):
        dcgan.init_weights_(m) if isinstance(m, nn.Conv2d) else None

    with pytest.raises(ExerciseError, match="N\\(0, 1\\)"):
        ch03.check_init(unit_std)
    with pytest.raises(ExerciseError, match="gamma"):
        ch03.check_init(bn_at_zero)
    with pytest.raises(ExerciseError, match="ConvTranspose2d"):
        ch03.check_init(only_conv2d)


def _first_block(z_dim, channels):
    return nn.Sequential(nn.Unflatten(1, (z_dim, 1, 1)), nn.ConvTranspose2d(z_dim, channels, 4, 1, 0, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU())


def test_first_block_exercise():
    assert ch03.check_first_block(_first_block)
    assert ch03.check_first_block(lambda z, c: nn.Sequential(nn.Unflatten(1, (z, 1, 1)),
                                                             dcgan.Generator(z_dim=z, width=c // 4).project))
    with pytest.raises(ExerciseError, match="nn.Unflatten"):                  # takes (B, z_dim, 1, 1) only
        ch03.check_first_block(lambda z, c: dcgan.Generator(z_dim=z, width=c // 4).project)
    assert ch03.check_first_block(lambda z, c: nn.Sequential(nn.Linear(z, c * 16), nn.Unflatten(1, (c, 4, 4)),
                                                             nn.BatchNorm2d(c), nn.ReLU()))   # the paper's matmul
    assert ch03.check_first_block(lambda z, c: nn.Sequential(nn.Linear(z, c * 16), nn.BatchNorm1d(c * 16), nn.ReLU(),
                                                             nn.Unflatten(1, (c, 4, 4))))   # the authors' code
    with pytest.raises(ExerciseError, match="hidden"):
        ch03.check_first_block(lambda z, c: nn.Sequential(nn.Linear(z, 64), nn.ReLU(), nn.Linear(64, c * 16),
                                                          nn.Unflatten(1, (c, 4, 4)), nn.BatchNorm2d(c), nn.ReLU()))
    with pytest.raises(ExerciseError, match="W2 W1"):
        ch03.check_first_block(lambda z, c: nn.Sequential(nn.Linear(z, 64), nn.Linear(64, c * 16),
                                                          nn.Unflatten(1, (c, 4, 4)), nn.BatchNorm2d(c), nn.ReLU()))
    with pytest.raises(ExerciseError, match="no nn.BatchNorm2d"):
        ch03.check_first_block(lambda z, c: nn.Sequential(nn.Linear(z, c * 16), nn.Unflatten(1, (c, 4, 4)), nn.ReLU()))
    with pytest.raises(ExerciseError, match="kernel_size=4"):
        ch03.check_first_block(lambda z, c: nn.Sequential(nn.Unflatten(1, (z, 1, 1)), nn.ConvTranspose2d(z, c, 1),
                                                          nn.BatchNorm2d(c), nn.ReLU()))
    with pytest.raises(ExerciseError, match="BatchNorm2d"):
        ch03.check_first_block(lambda z, c: nn.Sequential(nn.Unflatten(1, (z, 1, 1)), nn.ConvTranspose2d(z, c, 4),
                                                          nn.ReLU()))
    with pytest.raises(ExerciseError, match="ReLU"):
        ch03.check_first_block(lambda z, c: nn.Sequential(nn.Unflatten(1, (z, 1, 1)), nn.ConvTranspose2d(z, c, 4),
                                                          nn.BatchNorm2d(c), nn.LeakyReLU(0.2)))


def test_he_init_keeps_the_signal_that_the_papers_init_shrinks_without_batch_norm():
    # Section 5's mechanism: without batch norm, N(0, 0.02^2) weights make every z give nearly the same image
    torch.manual_seed(0)
    paper = dcgan.Generator(width=32, batch_norm=False)
    torch.manual_seed(0)
    he = dcgan_lab.he_init_(dcgan.Generator(width=32, batch_norm=False))
    torch.manual_seed(0)
    with_bn = dcgan.Generator(width=32)
    spread = {name: dcgan_lab.output_spread(G) for name, G in (("paper", paper), ("he", he), ("bn", with_bn))}
    assert spread["paper"] < 0.05 * spread["he"] and spread["paper"] < 0.05 * spread["bn"]
    assert spread["he"] > 0.05 and spread["bn"] > 0.05


def test_he_init_variance_is_two_over_fan_in():
    torch.manual_seed(0)
    conv, convt = nn.Conv2d(64, 64, 4, 2, 1), nn.ConvTranspose2d(64, 64, 4, 2, 1)
    project, linear = nn.ConvTranspose2d(100, 64, 4, 1, 0), nn.Linear(256, 64)
    for m, fan_in in ((conv, 64 * 16), (convt, 64 * 16 / 4), (project, 100), (linear, 256)):
        dcgan_lab.he_init_(m)
        assert abs(m.weight.std().item() / (2 / fan_in) ** 0.5 - 1) < 0.05, m
        assert torch.count_nonzero(m.bias) == 0
    dcgan_lab.he_init_(conv, negative_slope=0.2)
    assert abs(conv.weight.std().item() / (2 / (1.04 * 64 * 16)) ** 0.5 - 1) < 0.05
    bn = nn.BatchNorm2d(4)
    nn.init.normal_(bn.weight)
    dcgan_lab.he_init_(bn)
    assert torch.equal(bn.weight, torch.ones(4)) and torch.equal(bn.bias, torch.zeros(4))


def test_output_spread_is_zero_for_a_constant_generator_and_restores_the_mode():
    G = dcgan.Generator(width=8)
    G.eval()
    assert dcgan_lab.output_spread(G, n=16) > 0 and not G.training
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, nn.ConvTranspose2d):
                m.weight.zero_()
    assert dcgan_lab.output_spread(G, n=16) == 0.0


def test_section_5_claims_compare_the_notebooks_arms():
    from gan_course import claims
    keys = {q for c in dcgan_lab.CLAIMS for q in c.quantities()}
    assert keys == {"fid_bn_normal", "fid_no_bn_normal", "fid_no_bn_he", "fid_bn_he", "fid_lr_D_high",
                    "probe_trained_D_fewest", "probe_random_D_fewest"}
    good = {"fid_bn_normal": [20, 22, 21], "fid_no_bn_normal": [200, 180, 150], "fid_no_bn_he": [40, 45, 50],
            "fid_bn_he": [51, 60, 55], "fid_lr_D_high": [30, 35, 28], "probe_trained_D_fewest": [0.8, 0.7, 0.9],
            "probe_random_D_fewest": [0.5, 0.6, 0.55]}
    assert all(o.held for o in claims.check(dcgan_lab.CLAIMS, good))
    swapped = dict(good, fid_no_bn_he=[300, 310, 290])      # He init without BN no better than the paper's init
    held = {o.claim.name: o.held for o in claims.check(dcgan_lab.CLAIMS, swapped)}
    assert not held["no_bn_failure_is_the_init"] and held["batch_norm_helps_at_paper_init"]
    with_bn_better = {o.claim.name: o.held for o in claims.check(dcgan_lab.CLAIMS, dict(good, fid_bn_he=[30, 31, 32]))}
    assert not with_bn_better["he_init_trains_without_batch_norm"]
