"""Chapter 02: Mirza & Osindero (2014), "Conditional Generative Adversarial Nets" (arXiv 1411.1784).

The condition [v, onehot(y)], the conditional players' shapes and their dependence on y, Eq. 2 per player (and the
label modes that break it), the chapter contract of the update step (``cgan.train_step``: its logs, both players
updated, D unfrozen afterwards, the broken-label arms reproducible under a seed), the classifier-based
conditioning report, the exercise checks and the explorers, headless.
"""

import math
from dataclasses import asdict, replace

import pytest
import torch
import torch.nn.functional as F

from gan_course.data.base import TensorImageDataset
from gan_course.exercises import ExerciseError, ch02
from gan_course.lab import cgan as cgan_lab
from gan_course.losses import discriminator_loss
from gan_course.models import cgan, gan
from gan_course.training import Batches, Run


def _small(seed=0, K=4, side=6):
    torch.manual_seed(seed)
    G = cgan.Generator(z_dim=5, num_classes=K, out_shape=(1, side, side), hidden=(16,))
    D = cgan.Discriminator(in_shape=(1, side, side), num_classes=K, hidden=(16,), dropout=0.0, input_dropout=0.0)
    return G, D


# ----------------------------------------------------------------------------------------- the condition
def test_one_hot_is_the_papers_label_encoding_and_validates():
    out = cgan.one_hot(torch.tensor([2, 0]), 4)
    assert out.dtype == torch.float32
    assert out.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match="0..3"):
        cgan.one_hot(torch.tensor([4]), 4)
    with pytest.raises(TypeError, match="integer"):
        cgan.one_hot(torch.tensor([1.0]), 4)


def test_condition_concatenates_flattened_input_and_one_hot():
    x = torch.randn(3, 1, 2, 2, requires_grad=True)
    y = torch.tensor([1, 0, 2])
    out = cgan.condition(x, y, 3)
    assert out.shape == (3, 4 + 3)
    assert torch.equal(out[:, :4], x.flatten(1))
    assert torch.equal(out[:, 4:], torch.eye(3)[y])
    assert out.requires_grad                                   # gradients reach v (G's output, for D)


# ----------------------------------------------------------------------------------------- the players
def test_players_shapes_and_tanh_range():
    G, D = _small()
    z, y = torch.randn(7, 5), torch.tensor([0, 1, 2, 3, 0, 1, 2])
    x = G(z, y)
    assert x.shape == (7, 1, 6, 6) and x.min() >= -1 and x.max() <= 1
    assert D(x, y).shape == (7,)
    p = D.probability(x, y)
    assert ((p > 0) & (p < 1)).all()


def test_players_are_mlps_with_K_extra_inputs():
    G = cgan.Generator(z_dim=100, num_classes=20, out_shape=(1, 28, 28), hidden=(1200, 1200), batch_norm=False)
    plain = gan.Generator(z_dim=100, out_shape=(1, 28, 28), hidden=(1200, 1200))
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(G) - n(plain) == 20 * 1200                          # only the first layer grows: K columns of W_y
    G_bn = cgan.Generator(z_dim=100, num_classes=20, hidden=(128, 256, 512, 1024))
    bn = [m for m in G_bn.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [m.num_features for m in bn] == [256, 512, 1024]      # batch norm on every hidden layer but the first
    D = cgan.Discriminator(in_shape=(1, 28, 28), num_classes=20, hidden=(240, 240), unit="maxout", pieces=5,
                           dropout=0.5)
    assert n(D) == (804 * 1200 + 1200) + (240 * 1200 + 1200) + (240 + 1)
    assert "Maxout" in repr(D)


def test_input_dropout_touches_the_image_never_the_label():
    D = cgan.Discriminator(in_shape=(1, 4, 4), num_classes=3, hidden=(8,), dropout=0.0, input_dropout=0.5).train()
    seen = []
    D.mlp.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach().clone()))
    D(torch.ones(200, 1, 4, 4), torch.arange(200) % 3)
    pixels, label = seen[0][:, :16], seen[0][:, 16:]
    assert set(pixels.unique().tolist()) == {-1.0, 3.0}        # dropped -> black, kept -> scaled (chapter 01)
    assert torch.equal(label, torch.eye(3)[torch.arange(200) % 3])


def test_label_changes_G_output_and_D_verdict():
    G, D = _small()
    z = torch.randn(1, 5).repeat(4, 1)
    x = G(z, torch.arange(4))
    assert not torch.allclose(x[0], x[1])                      # same z, different y -> different image
    logits = D(x[:1].repeat(4, 1, 1, 1), torch.arange(4))
    assert logits.unique().numel() == 4                        # same image, different y -> different verdict


def test_first_layer_adds_a_class_specific_bias():
    G, _ = _small()
    first = G.net[0]
    z = torch.randn(3, 5)
    for k in range(4):
        pre = first(cgan.condition(z, torch.full((3,), k), 4))
        assert torch.allclose(pre, z @ first.weight[:, :5].T + first.bias + first.weight[:, 5 + k])


# ----------------------------------------------------------------------------------------- Eq. 2
def test_d_loss_is_eq2_with_the_same_label_on_both_pairs():
    G, D = _small()
    x, y, z = torch.rand(8, 1, 6, 6) * 2 - 1, torch.arange(8) % 4, torch.randn(8, 5)
    out = cgan.d_loss(D, G, x, y, z)
    expected = discriminator_loss(D(x, y), D(G(z, y), y))
    assert torch.allclose(out["loss"], expected)
    out["loss"].backward()
    assert all(p.grad is None for p in G.parameters())         # G(z | y) detached in D's step


def test_g_loss_is_nonsaturating_on_the_conditioned_pair():
    G, D = _small()
    z, y = torch.randn(8, 5), torch.arange(8) % 4
    assert torch.allclose(cgan.g_loss(D, G, z, y), F.softplus(-D(G(z, y), y)).mean())


def test_label_modes_break_the_pairing_as_documented():
    y = torch.arange(40) % 4
    assert torch.equal(cgan.labels_for_D(y, "paired"), y)
    shuffled = cgan.labels_for_D(y, "shuffled", torch.Generator().manual_seed(0))
    assert sorted(shuffled.tolist()) == sorted(y.tolist()) and not torch.equal(shuffled, y)
    G, D = _small()
    x, z = torch.rand(40, 1, 6, 6) * 2 - 1, torch.randn(40, 5)
    dropped = cgan.d_loss(D, G, x, y, z, "dropped")
    assert torch.allclose(dropped["real_logits"], D.mlp(torch.cat([x.flatten(1), torch.zeros(40, 4)], 1)))
    assert torch.allclose(dropped["real_logits"], cgan.d_loss(D, G, x, (y + 1) % 4, z, "dropped")["real_logits"])
    with pytest.raises(ValueError, match="label_mode"):
        cgan.labels_for_D(y, "random")


# ----------------------------------------------------------------------------------------- the update step
def _pairs(n=64, K=4):
    images = torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return TensorImageDataset(images, torch.arange(n) % K, classes=list("abcd"[:K]))


def test_config_validates_the_label_mode_and_keeps_its_generator_out_of_the_fields():
    with pytest.raises(ValueError, match="label_mode must be one of paired, dropped, shuffled"):
        cgan.Config(label_mode="random")
    cfg = cgan.Config(label_mode="shuffled", shuffle_seed=3)
    assert set(asdict(cfg)) == {"lr_G", "lr_D", "beta1", "beta2", "label_mode", "shuffle_seed"}
    fresh = replace(cfg)                                       # a fresh generator, in the state of its seed
    cfg.generator.manual_seed(99)
    assert torch.equal(torch.randperm(8, generator=fresh.generator),
                       torch.randperm(8, generator=torch.Generator().manual_seed(3)))


def test_train_step_updates_both_players_and_returns_detached_logs(tmp_path):
    G, D = _small()
    cfg = cgan.Config()
    opt_G, opt_D = cgan.optimizers(G, D, cfg)
    run = Run("test", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, root=tmp_path, progress=False, live=False)
    before_G, before_D = [p.clone() for p in G.parameters()], [p.clone() for p in D.parameters()]
    logs = cgan.train_step(run, G, D, Batches(_pairs(), 16), cfg)
    assert set(logs) == {"loss_D", "loss_G", "D_real", "D_fake"}
    assert all(v.ndim == 0 and not v.requires_grad for v in logs.values())
    assert all(0 < float(logs[k]) < 1 for k in ("D_real", "D_fake"))
    assert all(not torch.equal(a, b) for a, b in zip(before_G, G.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(before_D, D.parameters(), strict=True))
    assert all(p.requires_grad for p in D.parameters())        # D is unfrozen after G's step
    assert opt_D.state_dict()["state"][0]["step"] == opt_G.state_dict()["state"][0]["step"] == 1


def test_train_arm_is_deterministic_under_a_seed(tmp_build):
    def arm(seed):
        G, D = _small(seed)
        torch.manual_seed(seed)
        cfg = cgan.Config(label_mode="shuffled", shuffle_seed=seed)
        return cgan_lab.train_arm("arm", G, D, _pairs(), 5, cfg, batch_size=16, seed=seed).history, G

    (a, Ga), (b, Gb) = arm(3), arm(3)
    assert a.values("loss_D") == b.values("loss_D") and a.values("loss_G") == b.values("loss_G")
    assert len(a.values("loss_D")) == 5
    assert all(torch.equal(p, q) for p, q in zip(Ga.parameters(), Gb.parameters(), strict=True))
    assert arm(4)[0].values("loss_D") != a.values("loss_D")


def test_train_arm_continues_given_optimizers_and_measures_agreement(tmp_build):
    G, D = _small()
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    run = cgan_lab.train_arm("arm", G, D, _pairs(), 4, cgan.Config(label_mode="dropped"), batch_size=16,
                             optimizers=(opt_G, opt_D), classifier=_Oracle(), eval_every=2, n_noise=3)
    assert run.history.steps("agreement") == [1, 3]             # every 2nd step of the arm (counted from 0)
    assert all(0 <= a <= 1 for a in run.history.values("agreement"))
    assert all(0.25 <= s <= 1 for s in run.history.values("noise_share"))
    assert opt_G.state_dict()["state"][0]["step"] == 4          # the optimisers given were the ones stepped


# ----------------------------------------------------------------------------------------- measuring conditioning
class _Oracle(torch.nn.Module):
    """A 'classifier' reading the class back from a test image: class k lights up pixel k of the first row."""

    classes = list("abcd")

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def logits(self, x):
        return x[:, 0, 0, :4]


class _FixedG(torch.nn.Module):
    """G that draws class y (obeys_y) or class (z > 0 count) % 4 (ignores y) as a one-pixel image."""

    def __init__(self, obeys_y: bool):
        super().__init__()
        self.z_dim, self.num_classes, self.obeys_y = 5, 4, obeys_y
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z, y):
        k = y if self.obeys_y else (z > 0).sum(1) % 4
        x = -torch.ones(len(z), 1, 4, 4)
        x[torch.arange(len(z)), 0, 0, k] = 1.0
        return x


def test_conditioning_report_separates_obeying_and_ignoring_generators():
    good = cgan_lab.conditioning_report(_FixedG(True), _Oracle(), n_noise=40)
    assert good.agreement == 1.0 and good.noise_share == pytest.approx(1 / 4)
    assert good.coverage.covered == 4 and good.per_class.tolist() == [1.0] * 4
    bad = cgan_lab.conditioning_report(_FixedG(False), _Oracle(), n_noise=40)
    assert bad.noise_share == 1.0                              # z alone decides the class
    assert bad.agreement == pytest.approx(1 / 4)               # each z hits its own class for exactly one label
    assert "chance 25.0%" in str(bad)


def test_class_grid_inputs_are_row_major_label_by_noise():
    z = torch.randn(3, 2)
    z_grid, y_grid = cgan_lab.class_grid_inputs(z, [5, 1])
    assert y_grid.tolist() == [5, 5, 5, 1, 1, 1]
    assert torch.equal(z_grid[:3], z) and torch.equal(z_grid[3:], z)


def test_sampler_draws_balanced_labels_reproducibly():
    G, _ = _small()
    draw = cgan_lab.sampler(G, seed=2)
    assert draw(8).shape == (8, 1, 6, 6) and torch.equal(draw(8), draw(8))
    assert cgan_lab.balanced_labels(10, 4).tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


# ----------------------------------------------------------------------------------------- exercises
def test_exercise_1_condition_accepts_reference_and_rejects_typical_mistakes():
    assert ch02.check_condition(cgan.condition)
    assert ch02.check_condition(lambda v, y, K: torch.cat([v.flatten(1), F.one_hot(y, K).float()], dim=1))
    cases = {
        "raw label": (lambda v, y, K: torch.cat([v.flatten(1), y.float().unsqueeze(1)], 1), "one-hot"),
        "no num_classes": (lambda v, y, K: torch.cat([v.flatten(1), F.one_hot(y).float()], 1), "num_classes"),
        "order": (lambda v, y, K: torch.cat([F.one_hot(y, K).float(), v.flatten(1)], 1), "first"),
        "dim 0": (lambda v, y, K: torch.cat([v.flatten(1), F.one_hot(y, K).float()], 0), "dim=1"),
        "no flatten": (lambda v, y, K: torch.cat([v, F.one_hot(y, K).float()], 1), "flatten"),
        "detached": (lambda v, y, K: torch.cat([v.flatten(1), F.one_hot(y, K).float()], 1).detach(), "detached"),
        "integer": (lambda v, y, K: torch.cat([v.flatten(1).long(), F.one_hot(y, K)], 1), "float"),
        "none": (lambda v, y, K: None, "return"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch02.check_condition(fn)


def _ref_d_loss(D, G, x, y, z):
    return discriminator_loss(D(x, y), D(G(z, y).detach(), y))


def test_exercise_2_conditional_d_loss_accepts_reference_and_rejects_typical_mistakes():
    assert ch02.check_conditional_d_loss(_ref_d_loss)

    def concatenated(D, G, x, y, z):                           # one D call on both batches is fine too
        logits = D(torch.cat([x, G(z, y).detach()]), torch.cat([y, y]))
        return F.binary_cross_entropy_with_logits(logits[:len(x)], torch.ones(len(x))) + \
            F.binary_cross_entropy_with_logits(logits[len(x):], torch.zeros(len(x)))

    assert ch02.check_conditional_d_loss(concatenated)

    def labels_from_p_y(D, G, x, y, z):                        # standard practice: y' ~ p(y) for the fakes
        y_fake = torch.randint(0, 4, (len(x),), generator=torch.Generator().manual_seed(5))
        return discriminator_loss(D(x, y), D(G(z, y_fake).detach(), y_fake))

    def fresh_noise(D, G, x, y, z):                            # and fresh z of its own
        y_fake = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(2))]
        return discriminator_loss(D(x, y), D(G(torch.randn_like(z), y_fake).detach(), y_fake))

    assert ch02.check_conditional_d_loss(labels_from_p_y) and ch02.check_conditional_d_loss(fresh_noise)

    def p_y_from_the_players(D, G, x, y, z):                   # G.num_classes and G.z_dim read through the check
        y_fake = torch.randint(0, G.num_classes, (len(x),))
        x_fake = G(torch.randn(len(x), G.z_dim), y_fake).detach()
        return F.softplus(-D(x, y)).mean() + F.softplus(D(x_fake, y_fake)).mean()

    assert ch02.check_conditional_d_loss(p_y_from_the_players)

    def p_y_but_D_sees_y(D, G, x, y, z):                       # G drew for y' ~ p(y), D judges with the batch's y
        y_fake = (y + 1 + torch.arange(len(y)) % 3) % 4
        return discriminator_loss(D(x, y), D(G(z, y_fake).detach(), y))

    with pytest.raises(ExerciseError, match="label G drew it for"):
        ch02.check_conditional_d_loss(p_y_but_D_sees_y)
    cases = {
        "fake with other labels": (lambda D, G, x, y, z: discriminator_loss(D(x, y), D(G(z, y).detach(), y.flip(0))),
                                   "G drew them for"),
        "real with other labels": (lambda D, G, x, y, z: discriminator_loss(D(x, (y + 1) % 4), D(G(z, y).detach(), y)),
                                   "true label"),
        "G with other labels": (lambda D, G, x, y, z: discriminator_loss(D(x, y), D(G(z, y.flip(0)).detach(), y)),
                                "G drew them for"),
        "not detached": (lambda D, G, x, y, z: discriminator_loss(D(x, y), D(G(z, y), y)), "detach"),
        "V itself": (lambda D, G, x, y, z: -_ref_d_loss(D, G, x, y, z), "maximises"),
        "swapped": (lambda D, G, x, y, z: F.softplus(D(x, y)).mean() + F.softplus(-D(G(z, y).detach(), y)).mean(),
                    "swapped"),
        "summed": (lambda D, G, x, y, z: F.softplus(-D(x, y)).sum() + F.softplus(D(G(z, y).detach(), y)).sum(),
                   "batch size"),
        "no fake": (lambda D, G, x, y, z: F.softplus(-D(x, y)).mean() + 0 * G(z, y).sum(), "generated"),
        "no labels for D": (lambda D, G, x, y, z: discriminator_loss(D(x, torch.zeros_like(y)),
                                                                     D(G(z, y).detach(), torch.zeros_like(y))),
                            "true label"),
        "one mean": (lambda D, G, x, y, z: F.binary_cross_entropy_with_logits(
            D(torch.cat([x, G(z, y).detach()]), torch.cat([y, y])),
            torch.cat([torch.ones(len(x)), torch.zeros(len(x))])), "half of L_D"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch02.check_conditional_d_loss(fn)


def test_exercise_3_grid_inputs_accepts_reference_and_rejects_typical_mistakes():
    assert ch02.check_class_grid_inputs(cgan_lab.class_grid_inputs)
    assert ch02.check_class_grid_inputs(                                 # another correct formulation: a loop
        lambda z, l: (torch.cat([z for _ in l]), torch.tensor([y for y in l for _ in range(len(z))])))
    cases = {
        "transposed": (lambda z, l: (z.repeat_interleave(len(l), 0), torch.tensor(l).repeat(len(z))), "transposed"),
        "float labels": (lambda z, l: (z.repeat(len(l), 1), torch.tensor(l).float().repeat_interleave(len(z))),
                         "torch.long"),
        "wrong z": (lambda z, l: (z.repeat_interleave(len(l), 0), torch.tensor(l).repeat_interleave(len(z))),
                    "column c"),
        "too few": (lambda z, l: (z, torch.tensor(l)), "shape"),
        "one tensor": (lambda z, l: z, "two tensors"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch02.check_class_grid_inputs(fn)


def test_unanswered_exercise_says_so():
    def todo(*args):
        raise NotImplementedError()

    for check in (ch02.check_condition, ch02.check_conditional_d_loss, ch02.check_class_grid_inputs):
        with pytest.raises(ExerciseError, match="NotImplementedError"):
            check(todo)


# ----------------------------------------------------------------------------------------- explorers
def test_class_explorer_renders_the_chosen_class_headless():
    G, _ = _small()
    ex = cgan_lab.class_explorer(G, classes=list("abcd"), classifier=_Oracle(), n=8)
    assert ex.state["renders"] == 1 and ex.state["values"] == {"label": 0, "seed": 0}
    first = ex.state["figure"].axes[0].images[0].get_array().copy()
    ex.controls["label"].value = 2
    fig = ex.state["figure"]
    assert "y = 'c'" in fig._suptitle.get_text() and "classifier agrees" in fig._suptitle.get_text()
    assert all(ax.get_title().startswith("seen: ") for ax in fig.axes)
    assert not (fig.axes[0].images[0].get_array() == first).all()
    ex.controls["seed"].value = 5
    assert ex.state["values"] == {"label": 2, "seed": 5} and ex.state["renders"] == 3


def test_grid_explorer_puts_labels_on_rows_and_noise_on_columns():
    G, _ = _small(K=12)
    ex = cgan_lab.grid_explorer(G, n_noise=4)
    ax = ex.state["figure"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(k) for k in range(12)]
    assert len(ax.get_xticklabels()) == 4 and "label y" in ax.get_ylabel() and "noise" in ax.get_xlabel()
    height = ax.images[0].get_array().shape[0]
    ex.controls["rows"].value = "last 2"
    ax = ex.state["figure"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["10", "11"]
    assert ax.images[0].get_array().shape[0] < height
    ex.controls["columns"].value = 6
    assert len(ex.state["figure"].axes[0].get_xticklabels()) == 6


def test_class_grid_rows_show_the_label_and_columns_the_noise():
    G = _FixedG(True)
    fig = cgan_lab.render_class_grid(G, seed=0, n_noise=3, classes=list("abcd"))
    grid = fig.axes[0].images[0].get_array()                   # (H, W, 3) in [0, 1]
    side = 4 + 2                                               # image side + padding
    for r in range(4):                                         # row r lights pixel r of its first image row
        lit = [c for c in range(4) if grid[2 + r * side, 2 + c, 0] > 0.9]
        assert lit == [r]
    assert math.isclose(float(grid[2, 2 + side, 0]), 1.0)      # same in every column
