"""Chapter 05: Isola et al. (2017), "Image-to-Image Translation with Conditional Adversarial Networks" (pix2pix,
arXiv 1611.07004).

The U-Net and its skip connections, the PatchGAN and its receptive field (computed and measured), the objective of
Eq. 4, the update step ``train_step(run, G, D, batches, cfg)`` (what it logs and updates, D unfrozen afterwards,
determinism under a seed, the "L1 only" arm without D), the evaluation numbers (``gan_course.lab.pix2pix``), the
exercise checks and the explorer, headless; a couple of training steps on the real facades pairs (realdata).
"""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_course.analysis import empirical_receptive_field, receptive_field
from gan_course.data.base import PairedImageDataset
from gan_course.exercises import ExerciseError, ch05
from gan_course.lab import pix2pix as L
from gan_course.models import pix2pix as P
from gan_course.training import Batches, Run
from gan_course.viz import readability

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: see conftest.one_thread


def _pairs(n=12, size=16, channels=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    b = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return PairedImageDataset(a, b, torch.zeros(n, dtype=torch.int64), ["pair"], name="toy")


# ----------------------------------------------------------------------------------------- the generator
def test_unet_maps_an_image_to_an_image_of_the_same_size_in_tanh_range():
    G = P.UNetGenerator(in_channels=1, out_channels=3, num_downs=4, ngf=8)
    y = G(torch.randn(5, 1, 16, 16))
    assert y.shape == (5, 3, 16, 16)
    assert y.min() >= -1 and y.max() <= 1
    with pytest.raises(ValueError, match="divisible"):
        G(torch.randn(1, 1, 20, 20))


def test_paper_unet_has_the_appendix_widths():
    # Appendix 6.1.1 (256x256): encoder C64-C128-C256-C512-C512-C512-C512-C512,
    # U-Net decoder CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 (widths after concatenation).
    with torch.device("meta"):
        G = P.UNetGenerator(in_channels=3, out_channels=3, num_downs=8, ngf=64)
    assert [blk[0].out_channels for blk in G.encoder] == [64, 128, 256, 512, 512, 512, 512, 512]
    inputs = [blk[0].in_channels for blk in G.decoder] + [G.out[0].in_channels]
    assert inputs == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    dropout = [any(isinstance(m, P.DropoutNoise) for m in blk) for blk in G.decoder]
    assert dropout == [True, True, True, False, False, False, False]       # CD in the first three only
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.encoder[0])     # no BatchNorm in the first C64
    assert sum(p.numel() for p in G.parameters()) == 54_414_531            # the authors' 54.4M-parameter U-Net


def test_skip_connections_carry_the_input_around_the_bottleneck():
    torch.manual_seed(0)
    x1, x2 = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16)
    for skip in (True, False):
        G = P.UNetGenerator(in_channels=1, out_channels=1, num_downs=4, ngf=8, skip=skip).eval().set_noise(False)
        G.encoder[-1].register_forward_hook(lambda m, i, out: torch.zeros_like(out))   # cut the bottleneck
        with torch.no_grad():
            differ = not torch.allclose(G(x1), G(x2))
        assert differ == skip            # only the U-Net still sees the input once the bottleneck is cut
    plain = P.encoder_decoder(in_channels=1, out_channels=1, num_downs=4, ngf=8)
    assert [blk[0].in_channels for blk in plain.decoder] == [64, 32, 16] and plain.out[0].in_channels == 8


def test_dropout_is_the_noise_and_stays_on_at_test_time():
    G = P.UNetGenerator(in_channels=1, out_channels=1, num_downs=4, ngf=8)
    x = torch.randn(3, 1, 16, 16)
    G.eval()
    with torch.no_grad():
        assert not torch.allclose(G(x), G(x))                                  # Sec. 2.1: noise at test time
    assert torch.equal(L.translate(G, x, noise_seed=3), L.translate(G, x, noise_seed=3))
    assert not torch.equal(L.translate(G, x, noise_seed=3), L.translate(G, x, noise_seed=4))
    assert L.noise_spread(G, x, samples=4) > 0
    G.set_noise(False)
    assert torch.equal(L.translate(G, x, noise_seed=3), L.translate(G, x, noise_seed=4))
    assert L.noise_spread(G, x, samples=3) == 0


def test_translate_restores_mode_and_global_rng():
    G = P.UNetGenerator(in_channels=1, out_channels=1, num_downs=4, ngf=8).train()
    x = torch.randn(2, 1, 16, 16)
    state = torch.get_rng_state()
    L.translate(G, x, noise_seed=0)
    assert torch.equal(torch.get_rng_state(), state)                   # seeding the noise leaves the RNG alone
    assert G.training                                                  # and the mode is restored


# ----------------------------------------------------------------------------------------- the discriminator
@pytest.mark.parametrize("n_layers, size, jump", [(0, 1, 1), (1, 16, 2), (2, 34, 4), (3, 70, 8), (5, 286, 32)])
def test_patchgan_receptive_fields_are_the_papers(n_layers, size, jump):
    D = P.PatchDiscriminator(in_channels=6, ndf=8, n_layers=n_layers)
    rf = D.receptive_field()
    assert (rf.size, rf.jump) == (size, jump)


def test_70x70_patchgan_on_256_gives_a_30x30_map_and_the_measured_field_is_70():
    D = P.PatchDiscriminator(in_channels=6, ndf=4, n_layers=3).eval()
    x = torch.randn(1, 3, 256, 256)
    assert D(x, x).shape == (1, 1, 30, 30)
    assert empirical_receptive_field(D.net, (6, 256, 256)) == (70, 70)
    rf = receptive_field(D.net)
    # the centre of unit (i, j)'s field is start + i * jump; the measured box is centred there
    i = j = 15
    x = torch.randn(1, 6, 256, 256, requires_grad=True)
    (grad,) = torch.autograd.grad(D.net(x)[0, 0, i, j], x)
    rows = grad[0].abs().sum(0).sum(1).nonzero().flatten()
    assert math.isclose((rows.min() + rows.max()).item() / 2, rf.start + i * rf.jump)


def test_discriminator_judges_the_pair_not_the_output_alone():
    torch.manual_seed(0)
    D = P.PatchDiscriminator(in_channels=2, ndf=8, n_layers=1).eval()
    x, x2, y = torch.randn(3, 2, 1, 32, 32).unbind(0)
    assert D(x, y).shape == (2, 1, 14, 14)
    assert not torch.allclose(D(x, y), D(x2, y))                        # the input x is part of what D sees


# ----------------------------------------------------------------------------------------- receptive fields
def test_receptive_field_formula_on_specs_pooling_and_dilation():
    assert receptive_field([(3, 1)] * 3).size == 7
    assert receptive_field([(2, 2)] * 3).size == 8
    assert receptive_field([(3, 1, 2, 2)]).size == 5                        # dilation 2: a 3x3 kernel spans 5
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, dilation=2))
    rf = receptive_field(net)
    assert (rf.size, rf.jump) == (1 + 2 + 1 + 2 * 2 * 2, 2)
    assert [lay["size"] for lay in rf.layers] == [3, 4, 12]
    assert empirical_receptive_field(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2),
                                                   nn.Conv2d(2, 1, 3, padding=1)), (1, 24, 24)) == (8, 8)
    assert "70 x 70" in str(receptive_field(ch05.PATCHGANS["70x70 PatchGAN"][0]))


def test_receptive_field_rejects_what_it_cannot_follow():
    with pytest.raises(ValueError, match="up-samples"):
        receptive_field(nn.Sequential(nn.ConvTranspose2d(1, 1, 4, 2, 1)))
    with pytest.raises(ValueError, match="differs between axes"):
        receptive_field(nn.Conv2d(1, 1, (3, 5)))
    with pytest.raises(ValueError, match="no convolution"):
        receptive_field(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="kernel"):
        receptive_field([(0, 1)])


# ----------------------------------------------------------------------------------------- the objective
def test_generator_loss_is_nonsaturating_gan_plus_lambda_l1():
    torch.manual_seed(0)
    logits, fake, target = torch.randn(2, 1, 5, 5), torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    loss, parts = P.generator_loss(logits, fake, target, lambda_l1=100.0)
    expected_gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    expected_l1 = F.l1_loss(fake, target)
    assert torch.allclose(loss, expected_gan + 100 * expected_l1)
    assert math.isclose(parts["gan"], float(expected_gan), rel_tol=1e-6)
    assert math.isclose(parts["l1"], float(expected_l1), rel_tol=1e-6)
    l1_only, parts = P.generator_loss(None, fake, target, lambda_l1=100.0, use_gan=False)
    assert torch.allclose(l1_only, 100 * expected_l1) and parts["gan"] == 0.0
    assert P.LAMBDA_L1 == 100 and (P.LR, P.BETA1, P.BETA2) == (2e-4, 0.5, 0.999)
    assert dataclasses.asdict(P.Config()) == dict(lambda_l1=100.0, lr=2e-4, beta1=0.5, beta2=0.999, use_gan=True,
                                                  distance="l1")
    l2_only, parts = P.generator_loss(None, fake, target, lambda_l1=100.0, use_gan=False, distance="l2")
    assert torch.allclose(l2_only, 100 * F.mse_loss(fake, target)) and set(parts) == {"gan", "l2"}


def test_l2_is_minimised_by_the_mean_of_two_answers_l1_by_anything_between():
    """Sec. 3.1's reason for L1: with two equally likely targets, L2's minimiser is their average (a blur where
    they differ), while L1's expected loss is the same anywhere between them, the answers included."""
    a, b = -torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)

    def expected(distance, out):
        return 0.5 * float(P.DISTANCES[distance](out, a) + P.DISTANCES[distance](out, b))

    average = (a + b) / 2
    assert expected("l2", average) < expected("l2", a) and expected("l2", average) < expected("l2", 0.5 * b)
    assert expected("l1", average) == pytest.approx(expected("l1", a)) == pytest.approx(expected("l1", 0.3 * b))


def test_discriminator_objective_is_half_the_cross_entropy():
    zeros = torch.zeros(3, 1, 4, 4)                                        # D = 1/2 on every patch
    assert math.isclose(float(P.discriminator_objective(zeros, zeros)), math.log(4) / 2, rel_tol=1e-6)
    real, fake = torch.full((1, 1, 2, 2), 5.0), torch.full((1, 1, 2, 2), -5.0)
    assert float(P.discriminator_objective(real, fake)) < 0.01             # a confident, correct D


def _tiny(seed, skip=True):
    torch.manual_seed(seed)
    return (P.UNetGenerator(in_channels=1, out_channels=1, num_downs=4, ngf=8, skip=skip),
            P.PatchDiscriminator(in_channels=2, ndf=8, n_layers=1))


def _run(G, D, cfg, root):
    models = {"G": G} if D is None else {"G": G, "D": D}
    return Run("toy", models, P.optimizers(G, D, cfg), root=root, progress=False, live=False)


def _weights(module):
    return [p.detach().clone() for p in module.parameters()]


def test_train_step_logs_the_losses_and_updates_both_players(tmp_path):
    G, D = _tiny(3)
    cfg = P.Config()
    run, batches = _run(G, D, cfg, tmp_path), Batches(_pairs(16), 4, seed=0)
    G0, D0 = _weights(G), _weights(D)
    logs = P.train_step(run, G, D, batches, cfg)
    assert set(logs) == {"loss_D", "loss_G", "D_real", "D_fake", "loss_G_gan", "loss_G_l1"}
    assert all(math.isfinite(float(v)) for v in logs.values())
    assert all(not torch.is_tensor(v) or (v.dim() == 0 and not v.requires_grad) for v in logs.values())
    assert math.isclose(float(logs["loss_G"]), logs["loss_G_gan"] + 100 * logs["loss_G_l1"], rel_tol=1e-5)
    assert not any(torch.equal(a, b) for a, b in zip(G0, G.parameters(), strict=True))     # both players moved
    assert not all(torch.equal(a, b) for a, b in zip(D0, D.parameters(), strict=True))
    assert all(p.requires_grad for p in D.parameters())                                     # D unfrozen again


def test_d_is_unfrozen_even_when_g_step_fails(tmp_path):
    G, D = _tiny(0)
    cfg = P.Config()
    run = _run(G, D, cfg, tmp_path)
    run.optimizers.pop("G")                                         # G's update raises (no optimiser named "G")
    with pytest.raises(ValueError, match="No optimiser named 'G'"):
        P.train_step(run, G, D, Batches(_pairs(8), 4, seed=0), cfg)
    assert all(p.requires_grad for p in D.parameters())


def test_g_step_leaves_no_gradient_in_d(tmp_path, monkeypatch):
    G, D = _tiny(1)
    cfg = P.Config()
    run = _run(G, D, cfg, tmp_path)
    seen = {}
    update = run.update

    def spy(name, loss, **kwargs):
        update(name, loss, **kwargs)
        seen[name] = [p.grad.clone() for p in D.parameters()]                  # D's gradients after each update
        seen[name + "_frozen"] = not any(p.requires_grad for p in D.parameters())
    monkeypatch.setattr(run, "update", spy)
    P.train_step(run, G, D, Batches(_pairs(8), 4, seed=0), cfg)
    assert seen["G_frozen"] and not seen["D_frozen"]
    assert all(torch.equal(a, b) for a, b in zip(seen["D"], seen["G"], strict=True))   # G's backward added nothing


def test_training_is_deterministic_under_a_seed(tmp_path):
    results = []
    for k in range(2):
        G, D = _tiny(3)
        cfg = P.Config()
        run, batches = _run(G, D, cfg, tmp_path / str(k)), Batches(_pairs(16), 4, seed=0)
        torch.manual_seed(3)
        logs = [P.train_step(run, G, D, batches, cfg) for _ in range(3)]
        results.append(([{k: float(v) for k, v in d.items()} for d in logs], _weights(G), _weights(D)))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1] + results[0][2], results[1][1] + results[1][2], strict=True):
        assert torch.equal(a, b)


def test_l1_only_arm_needs_no_discriminator(tmp_path):
    G, D = _tiny(4)
    cfg = P.Config(use_gan=False)
    assert set(P.optimizers(G, None, cfg)) == {"G"}
    run = _run(G, None, cfg, tmp_path)
    G0 = _weights(G)
    logs = P.train_step(run, G, None, Batches(_pairs(16), 4, seed=0), cfg)
    assert set(logs) == {"loss_G", "loss_G_gan", "loss_G_l1"} and logs["loss_G_gan"] == 0
    assert not all(torch.equal(a, b) for a, b in zip(G0, G.parameters(), strict=True))
    with pytest.raises(ValueError, match="needs a discriminator D"):
        P.train_step(run, G, None, Batches(_pairs(16), 4), P.Config())
    with pytest.raises(ValueError, match="needs a discriminator D"):
        P.optimizers(G, None, P.Config())


def test_config_rejects_what_the_paper_cannot_mean():
    with pytest.raises(ValueError, match="lambda_l1"):
        P.Config(lambda_l1=-1)
    with pytest.raises(ValueError, match="lr"):
        P.Config(lr=0)
    with pytest.raises(ValueError, match="betas"):
        P.Config(beta1=1.0)
    with pytest.raises(ValueError, match="nothing to minimise"):
        P.Config(use_gan=False, lambda_l1=0)
    with pytest.raises(ValueError, match="distance must be one of l1, l2"):
        P.Config(distance="huber")


def test_train_arm_trains_through_train_step_and_resumes(tmp_build):
    ds = _pairs(16)
    G, _ = _tiny(4)
    D0 = P.PatchDiscriminator(in_channels=2, ndf=8, n_layers=1)
    D_before = _weights(D0)
    run = L.train_arm("arm", G, None, ds, P.Config(use_gan=False), steps=2, batch_size=4, config=dict(ngf=8))
    assert run.step == 2 and "loss_D" not in run.history and all(v == 0 for v in run.history.values("loss_G_gan"))
    assert all(torch.equal(a, b) for a, b in zip(D_before, D0.parameters(), strict=True))   # no D in this arm
    assert run.config["use_gan"] is False and run.config["ngf"] == 8 and run.config["batch_size"] == 4
    G2, _ = _tiny(4)
    again = L.train_arm("arm", G2, None, ds, P.Config(use_gan=False), steps=2, batch_size=4, config=dict(ngf=8))
    assert again.resumed and all(torch.equal(a, b) for a, b in zip(G.parameters(), G2.parameters(), strict=True))


def test_l1_training_reduces_the_l1_error_on_a_learnable_pair(tmp_build):
    a = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ds = PairedImageDataset(a, 255 - a, torch.zeros(64, dtype=torch.int64), ["invert"])   # y = -x
    G, _ = _tiny(0)
    before = L.evaluate(G.set_noise(False), ds)["l1"]
    L.train_arm("l1", G, None, ds, P.Config(use_gan=False, lr=2e-3), steps=40, batch_size=16)
    after = L.evaluate(G, ds)["l1"]
    assert after < 0.75 * before


# ----------------------------------------------------------------------------------------- measuring
def test_sharpness_drops_with_blur_and_is_zero_for_flat_images():
    torch.manual_seed(0)
    sharp = (torch.rand(4, 1, 32, 32) > 0.5).float() * 2 - 1
    blurred = F.avg_pool2d(sharp, 3, stride=1, padding=1)
    assert (L.sharpness(blurred) < 0.5 * L.sharpness(sharp)).all()
    assert torch.equal(L.sharpness(torch.zeros(2, 3, 8, 8)), torch.zeros(2))


def test_evaluate_scores_a_perfect_translator():
    a = torch.randint(0, 256, (10, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    ds = PairedImageDataset(a, a.clone(), torch.zeros(10, dtype=torch.int64), ["same"])
    identity = nn.Conv2d(1, 1, 1, bias=False)
    nn.init.ones_(identity.weight)
    out = L.evaluate(identity, ds)
    assert out["l1"] < 1e-6 and math.isclose(out["sharpness_ratio"], 1.0, rel_tol=1e-5)


# ----------------------------------------------------------------------------------------- exercises
def test_exercise_1_accepts_reference_and_rejects_typical_mistakes():
    assert ch05.check_generator_loss(lambda l, f, t, lam: P.generator_loss(l, f, t, lam)[0])
    assert ch05.check_generator_loss(
        lambda l, f, t, lam: F.binary_cross_entropy_with_logits(l, torch.ones_like(l)) + lam * F.l1_loss(f, t))
    gan = lambda l: F.softplus(-l).mean()
    l1 = lambda f, t: (t - f).abs().mean()
    cases = {
        "l1 only": (lambda l, f, t, lam: lam * l1(f, t), "adversarial term"),
        "no lambda": (lambda l, f, t, lam: gan(l) + l1(f, t), "without its weight"),
        "lambda on gan": (lambda l, f, t, lam: lam * gan(l) + l1(f, t), "not the adversarial"),
        "saturating": (lambda l, f, t, lam: -F.softplus(l).mean() + lam * l1(f, t), "saturating"),
        "sign": (lambda l, f, t, lam: F.softplus(l).mean() + lam * l1(f, t), "wrong sign"),
        "L2": (lambda l, f, t, lam: gan(l) + lam * ((t - f) ** 2).mean(), "L2"),
        "sum patches": (lambda l, f, t, lam: F.softplus(-l).sum() + lam * l1(f, t), "averages"),
        "sum pixels": (lambda l, f, t, lam: gan(l) + lam * (t - f).abs().sum(), "summed the absolute"),
        "unstable": (lambda l, f, t, lam: -torch.log(torch.sigmoid(l)).mean() + lam * l1(f, t), "underflows"),
        "detached": (lambda l, f, t, lam: torch.tensor((gan(l) + lam * l1(f, t)).detach().item()), "detached"),
        "per patch": (lambda l, f, t, lam: F.softplus(-l) + lam * l1(f, t), "one number"),
        "none": (lambda l, f, t, lam: None, "return"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch05.check_generator_loss(fn)


def _rf_reference(layers):
    r, j = 1, 1
    for k, s in layers:
        r, j = r + (k - 1) * j, j * s
    return r


def _rf_backward(layers):
    r = 1
    for k, s in reversed(layers):
        r = s * r + (k - s)
    return r


def test_exercise_2_accepts_both_recursions_and_rejects_typical_mistakes():
    assert ch05.check_receptive_field(_rf_reference)
    assert ch05.check_receptive_field(_rf_backward)
    assert ch05.check_receptive_field(lambda layers: receptive_field(layers).size)

    def stride_first(layers):
        r, j = 1, 1
        for k, s in layers:
            j *= s
            r += (k - 1) * j
        return r

    cases = {
        "sum of kernels": (lambda layers: sum(k for k, _ in layers), "jump"),
        "no jump": (lambda layers: 1 + sum(k - 1 for k, _ in layers), "jump"),
        "reversed": (lambda layers: _rf_reference(list(reversed(layers))), "from the output"),
        "stride first": (stride_first, "own stride"),
        "product of strides": (lambda layers: math.prod(s for _, s in layers), "product of the strides"),
        "text": (lambda layers: "seventy", "one integer"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch05.check_receptive_field(fn)


def _d_reference(D, x, y, fake):
    return 0.5 * (F.softplus(-D(torch.cat([x, y], 1))).mean() + F.softplus(D(torch.cat([x, fake.detach()], 1))).mean())


def test_exercise_3_accepts_formulations_of_the_conditional_d_loss():
    assert ch05.check_discriminator_loss(_d_reference)

    def with_bce(D, x, y, fake):                            # BCE on logits with 1/0 targets
        real, gen = D(torch.cat([x, y], dim=1)), D(torch.cat([x, fake.detach()], dim=1))
        return 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                      + F.binary_cross_entropy_with_logits(gen, torch.zeros_like(gen)))

    def one_batch(D, x, y, fake):                           # both pairs in one forward pass (no batch norm in D)
        logits = D(torch.cat([torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1)], 0))
        return 0.5 * (F.softplus(-logits[:len(x)]).mean() + F.softplus(logits[len(x):]).mean())

    def library(D, x, y, fake):
        return P.discriminator_objective(D(torch.cat([x, y], 1)), D(torch.cat([x, fake.detach()], 1)))

    for fn in (with_bce, one_batch, library):
        assert ch05.check_discriminator_loss(fn)


def test_exercise_3_rejects_typical_mistakes():
    sp = F.softplus
    cases = {
        "D not given x": (lambda D, x, y, f: 0.5 * (sp(-D(y)).mean() + sp(D(f.detach())).mean()), "judges the \\*pair"),
        "fake paired with y": (lambda D, x, y, f: 0.5 * (sp(-D(torch.cat([x, y], 1))).mean()
                                                        + sp(D(torch.cat([y, f.detach()], 1))).mean()), "6 channels"),
        "not halved": (lambda D, x, y, f: 2 * _d_reference(D, x, y, f), "divides D's objective by 2"),
        "not detached": (lambda D, x, y, f: 0.5 * (sp(-D(torch.cat([x, y], 1))).mean()
                                                  + sp(D(torch.cat([x, f], 1))).mean()), "gradient into G"),
        "labels swapped": (lambda D, x, y, f: 0.5 * (sp(D(torch.cat([x, y], 1))).mean()
                                                    + sp(-D(torch.cat([x, f.detach()], 1))).mean()), "swapped"),
        "order [y, x]": (lambda D, x, y, f: 0.5 * (sp(-D(torch.cat([y, x], 1))).mean()
                                                  + sp(D(torch.cat([f.detach(), x], 1))).mean()), "as \\[y, x\\]"),
        "L_cGAN itself": (lambda D, x, y, f: -_d_reference(D, x, y, f), "wrong sign"),
        "real term only": (lambda D, x, y, f: 0.5 * sp(-D(torch.cat([x, y], 1))).mean(), "only one of its two"),
        "log of sigmoid": (lambda D, x, y, f: -0.5 * (torch.log(torch.sigmoid(D(torch.cat([x, y], 1)))).mean()
                           + torch.log(1 - torch.sigmoid(D(torch.cat([x, f.detach()], 1)))).mean()), "softplus"),
        "a float": (lambda D, x, y, f: float(_d_reference(D, x, y, f).detach()), "as a tensor"),
    }
    for name, (fn, phrase) in cases.items():
        with pytest.raises(ExerciseError, match=phrase):
            ch05.check_discriminator_loss(fn)
            pytest.fail(name)


def test_unanswered_exercise_says_so():
    def todo(*args):
        raise NotImplementedError()

    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch05.check_receptive_field(todo)
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch05.check_generator_loss(todo)
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch05.check_discriminator_loss(todo)


# ----------------------------------------------------------------------------------------- pictures, explorer
def test_triplet_explorer_renders_pages_noise_and_errors_headless():
    ds = _pairs(20)
    G, _ = _tiny(0)
    ex = L.triplet_explorer(G, ds, n=6)
    assert ex.state["renders"] == 1 and ex.controls["page"].max == 3
    fig = ex.state["figure"]
    assert len(fig.axes) == 3 * 6 and fig.axes[0].get_ylabel() == "input x"
    first = fig.axes[6].images[0].get_array().copy()                    # row 2: G(x) of pair 0
    ex.controls["page"].value = 2
    assert ex.state["values"]["page"] == 2 and "test pairs 12..17" in ex.state["figure"]._suptitle.get_text()
    ex.controls["page"].value = 0
    ex.controls["noise_seed"].value = 5
    assert not (ex.state["figure"].axes[6].images[0].get_array() == first).all()   # another dropout mask
    ex.controls["show_error"].value = True
    assert len(ex.state["figure"].axes) == 4 * 6 and ex.state["figure"].axes[18].get_ylabel() == "|G(x) - y|"
    assert ex.state["figure"].axes[6].get_title().startswith("L1 ")
    assert readability(ex.state["figure"])["readable"], readability(ex.state["figure"])   # 8 pairs at JupyterLab's width


def test_render_patch_map_shows_maps_and_the_receptive_field():
    G, D = _tiny(0)
    x, y = _pairs(2, size=32).get_batch(torch.arange(2))
    fake = L.translate(G, x)
    real_map, fake_map = L.patch_maps(D, x, y, fake)
    assert real_map.shape == fake_map.shape == (2, 1, 14, 14)
    assert ((real_map > 0) & (real_map < 1)).all()
    fig = L.render_patch_map(D, x[0], y[0], fake[0])
    titles = [ax.get_title() for ax in fig.axes]
    assert any("16x16 field" in t for t in titles) and any("D(x, G(x))\n14x14 patches" in t for t in titles)
    assert len(fig.axes[1].patches) == 1 and fig.axes[2].get_xlabel() == "patch column"
    assert readability(fig)["readable"], readability(fig)      # two rows (real pair, generated pair), not five panels
    # the red square covers exactly the pixels that reach the outlined unit (7, 7)
    box = fig.axes[1].patches[0]
    inp = torch.randn(1, 2, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(D.eval().net(inp)[0, 0, 7, 7], inp)
    rows, cols = grad[0].abs().sum(0).nonzero(as_tuple=True)
    assert (box.get_x(), box.get_y()) == (cols.min().item() - 0.5, rows.min().item() - 0.5)
    assert box.get_width() == cols.max().item() - cols.min().item() + 1


# ----------------------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_a_few_training_steps_on_the_real_facades(shared_data, tmp_path):
    from gan_course import data

    train = data.load("facades", split="train", image_size=64, root=shared_data)
    test = data.load("facades", split="test", image_size=64, root=shared_data)
    assert (len(train), len(test)) == (400, 106)
    x, y = train.get_batch(torch.arange(4))
    assert x.shape == y.shape == (4, 3, 64, 64)                         # label map -> photo, RGB
    torch.manual_seed(0)
    G = P.UNetGenerator(in_channels=3, out_channels=3, num_downs=6, ngf=8)
    D = P.PatchDiscriminator(in_channels=6, ndf=8, n_layers=2)
    run = Run("facades", {"G": G, "D": D}, P.optimizers(G, D, P.Config()), root=tmp_path, progress=False)
    batches = Batches(train, 4, seed=0)
    logs = [P.train_step(run, G, D, batches, P.Config()) for _ in range(2)]
    assert all(math.isfinite(float(v)) for step in logs for v in step.values())
    out = L.evaluate(G, test, n=8)
    assert 0 < out["l1"] < 2 and out["sharpness_target"] > 0



class _Fixed(nn.Module):
    """A stand-in judge: the same logits for every image."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("out", torch.as_tensor(logits, dtype=torch.float32))
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.out.expand(x.shape[0], -1) + 0 * self.anchor


def _content_net(logits):
    from gan_course.metrics.features import FeatureNet

    class Fixed(FeatureNet):
        channels, num_features = 1, 2

        def __init__(self):
            super().__init__()
            self.net = _Fixed(logits)

        def _features(self, x):
            return self.net(x)

        _logits = _features

    return Fixed()


def test_two_answer_scores_reward_committing_to_one_answer_not_the_average():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    b = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    chars = torch.zeros(6, dtype=torch.long)
    content = _content_net([[5.0, -5.0]])                          # reads class 0: the right character
    style = _Fixed([[3.0, -3.0, 5.0, -5.0]])                       # bold, not italic, family 0
    valid = [torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0, 1.0])]
    picked = L.two_answer_scores(torch.where(torch.arange(6)[:, None, None, None] < 3, a, b), [a, b], chars,
                                 content, style, valid)
    average = L.two_answer_scores((a + b) / 2, [a, b], chars, content, style, valid)
    assert picked["l1_nearer"] < 1e-6 and abs(picked["nearer_is_first"] - 0.5) < 1e-6
    assert average["l1_nearer"] > 0.1
    assert picked["content"] == 1.0 and picked["style"] == 1.0 and picked["realism"] == 1.0
    wrong_style = L.two_answer_scores(a, [a, b], chars, content, _Fixed([[3.0, 3.0, 5.0, -5.0]]), valid)
    assert wrong_style["style"] == 0.0 and wrong_style["realism"] == 0.0
    wrong_char = L.two_answer_scores(a, [a, b], chars, _content_net([[-5.0, 5.0]]), style, valid)
    assert wrong_char["content"] == 0.0 and wrong_char["realism"] == 0.0 and wrong_char["style"] == 1.0
