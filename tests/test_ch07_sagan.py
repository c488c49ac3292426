"""Chapter 07 (SAGAN): networks, the paper's invariants, the training step, attention and spectral tools (the lab),
explorers, exercise checks."""

import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from gan_course import data
from gan_course.analysis import top_singular_values
from gan_course.exercises import ExerciseError, ch07
from gan_course.lab import sagan as lab
from gan_course.lab import spectra
from gan_course.layers import SelfAttention2d
from gan_course.losses import hinge_discriminator_loss, hinge_generator_loss
from gan_course.models import sagan
from gan_course.training import Run
from gan_course.viz import readability

matplotlib.use("Agg")


def _small(seed=0, **kw):
    torch.manual_seed(seed)
    return sagan.Generator(ch=8, **kw), sagan.Discriminator(ch=8)


def _sn(module):
    return module.parametrizations.weight[0]


# --------------------------------------------------------------------------- shapes
def test_generator_and_discriminator_shapes():
    G, D = _small()
    z, y = torch.randn(4, 128), torch.tensor([0, 3, 7, 9])
    x = G(z, y)
    assert x.shape == (4, 3, 32, 32)
    assert x.abs().max() <= 1
    assert D(x, y).shape == (4,)
    assert D.phi(x).shape == (4, D.features_dim)
    # attention at 16 x 16 in G and 8 x 8 in D (the defaults for 32 x 32 images)
    _, maps = lab.attention_maps(G, z, y)
    assert maps["attention"].shape == (4, 256, 256)
    _, maps = lab.attention_maps(D, x, y)
    assert maps["attention"].shape == (4, 64, 64)
    assert D.before_attention(x).shape == (4, 16, 8, 8)


def test_64px_and_one_channel_variants():
    torch.manual_seed(0)
    G = sagan.Generator(ch=8, image_size=64, attn_res=32, out_channels=1)
    D = sagan.Discriminator(ch=8, image_size=64, attn_res=32, in_channels=1)
    x = G(torch.randn(2, 128), torch.tensor([1, 2]))
    assert x.shape == (2, 1, 64, 64) and D(x, torch.tensor([1, 2])).shape == (2,)
    with pytest.raises(ValueError, match="attn_res"):
        sagan.Generator(ch=8, attn_res=5)
    with pytest.raises(ValueError, match="image_size"):
        sagan.Discriminator(ch=8, image_size=48)


def test_generator_is_deterministic_under_a_seed():
    G1, _ = _small(seed=3)
    G2, _ = _small(seed=3)
    torch.manual_seed(1)
    z, y = torch.randn(2, 128), torch.tensor([1, 2])
    G1.eval(), G2.eval()
    assert torch.equal(G1(z, y), G2(z, y))


def test_sampler_is_seeded_and_class_balanced():
    G, _ = _small()
    a, b = sagan.sampler(G, seed=4)(20), sagan.sampler(G, seed=4)(20)
    assert a.shape == (20, 3, 32, 32) and torch.equal(a, b)
    assert G.training  # restored after sampling in eval mode
    assert not torch.equal(a, sagan.sampler(G, seed=5)(20))


# --------------------------------------------------------------------------- paper invariants
def test_gamma_starts_at_zero_so_attention_starts_as_identity():
    G, D = _small()
    assert G.attention.gamma.item() == 0 and D.attention.gamma.item() == 0
    h = torch.randn(2, G.attention.W_f.in_channels, 16, 16)
    assert torch.equal(G.attention(h), h)


def test_conditional_batch_norm_starts_as_plain_batch_norm_and_uses_the_class():
    G, _ = _small()
    block = G.blocks[0]
    x = torch.randn(6, block.bn1.bn.num_features, 4, 4)
    y = F.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 10).float()
    assert torch.allclose(block.bn1(x, y), F.batch_norm(x, None, None, training=True, eps=block.bn1.bn.eps))
    with torch.no_grad():
        block.bn1.gain.weight[:, 1] = 1.0  # class 1: gain 1 + 1 = 2
    out = block.bn1(x, y)
    plain = F.batch_norm(x, None, None, training=True, eps=block.bn1.bn.eps)
    assert torch.allclose(out[1], 2 * plain[1], atol=1e-5) and torch.allclose(out[0], plain[0], atol=1e-5)


def test_projection_discriminator_is_linear_in_the_class_embedding():
    _, D = _small()
    D.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        h = D.phi(x)
        e1, e2 = torch.randn(3, D.features_dim), torch.randn(3, D.features_dim)
        base = D.head(h, torch.zeros_like(e1))  # psi(phi(x))
        lhs = D.head(h, 2.0 * e1 - 0.5 * e2) - base
        rhs = 2.0 * (D.head(h, e1) - base) - 0.5 * (D.head(h, e2) - base)
        assert torch.allclose(lhs, rhs, atol=1e-4)
        # and D(x, y) = psi(phi(x)) + embed(y)^T phi(x)
        y = torch.tensor([0, 4, 9])
        assert torch.allclose(D(x, y), base + (D.embed(y) * h).sum(1), atol=1e-4)


def test_spectral_norm_divides_by_its_estimate_and_the_estimate_converges_to_sigma():
    G, D = _small()
    for model in (G, D):
        rows = spectra.spectral_report(model)
        assert len(rows) > 10
        for row in rows:  # W / sigma_hat has top singular value sigma / sigma_hat, checked against an exact SVD
            exact = torch.linalg.svdvals(spectra.effective_weight(dict(model.named_modules())[row["layer"]]).flatten(1))
            assert math.isclose(row["sigma_sn"], exact[0].item(), rel_tol=1e-4)
            assert math.isclose(row["sigma_sn"], row["sigma_raw"] / row["sigma_hat"], rel_tol=1e-3), row
    before = {row["layer"]: row for row in spectra.spectral_report(D)}
    with torch.no_grad():  # W -> 7 W: same singular vectors, so sigma_hat scales with W and W / sigma_hat is unchanged
        for _, m in spectra.weight_layers(D, conditional_bn=False):
            spectra.raw_weight(m).mul_(7.0)
    for row in spectra.spectral_report(D):
        assert math.isclose(row["sigma_raw"], 7 * before[row["layer"]]["sigma_raw"], rel_tol=1e-4)
        assert math.isclose(row["sigma_sn"], before[row["layer"]]["sigma_sn"], rel_tol=1e-4)
    # a change of direction needs the power iteration: one step per training-mode forward
    torch.manual_seed(1)
    with torch.no_grad():
        for _, m in spectra.weight_layers(D, conditional_bn=False):
            spectra.raw_weight(m).add_(torch.randn_like(spectra.raw_weight(m)))
    error_before = max(abs(row["sigma_sn"] - 1) for row in spectra.spectral_report(D))
    x, y = torch.randn(1, 3, 32, 32), torch.tensor([0])
    for _ in range(30):
        D(x, y)
    errors = [abs(row["sigma_sn"] - 1) for row in spectra.spectral_report(D)]
    assert max(errors) < 0.05 and max(errors) < error_before / 4, (error_before, errors)
    # the SN-on-D-only baseline has no SN layer in G
    assert spectra.spectral_report(sagan.Generator(ch=8, sn=False)) == []


def test_reading_the_weights_does_not_step_the_power_iteration():
    G, _ = _small()
    G.train()
    layer = G.blocks[0].conv1
    with torch.no_grad():
        spectra.raw_weight(layer).add_(0.3 * torch.randn_like(spectra.raw_weight(layer)))  # u is no longer converged
    u = _sn(layer)._u.clone()
    spectra.effective_weight(layer)
    spectra.spectral_report(G)
    spectra.SpectraRecorder({"G": G}).record(0)
    assert torch.equal(_sn(layer)._u, u) and _sn(layer).training
    layer(torch.randn(1, layer.in_channels, 4, 4))  # a training forward does step it
    assert not torch.equal(_sn(layer)._u, u)


def test_conv_operator_norm_can_exceed_the_reshaped_matrix_norm():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 4, 3, padding=1, bias=False)
    w = conv.weight.detach()
    with torch.no_grad():
        conv.weight.copy_(w / torch.linalg.svdvals(w.flatten(1))[0])
    norm = spectra.conv_operator_norm(conv, 8, iters=100)
    assert 1.0 <= norm <= 3.0 + 1e-4  # sigma(reshaped W) = 1 <= ||conv|| <= k * sigma


def test_hinge_losses_used_by_the_chapter():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    assert math.isclose(hinge_discriminator_loss(real, fake).item(), 0.5 + 0.75)
    assert math.isclose(hinge_generator_loss(fake).item(), 0.75)


def test_optimizers_are_ttur_adam():
    G, D = _small()
    opt_G, opt_D = sagan.optimizers(G, D)
    assert opt_G.defaults["lr"] == 1e-4 and opt_D.defaults["lr"] == 4e-4
    assert opt_G.defaults["betas"] == (0.0, 0.9) == opt_D.defaults["betas"]


# --------------------------------------------------------------------------- singular values
def test_top_singular_values_exact_and_by_power_iteration():
    torch.manual_seed(0)
    W = torch.randn(12, 5, 3, 3)
    want = torch.linalg.svdvals(W.flatten(1).double()).float()
    assert torch.allclose(top_singular_values(W), want[:3], atol=1e-5)
    assert torch.allclose(top_singular_values(W, k=3, method="power", n_iterations=300), want[:3], rtol=1e-3)
    assert top_singular_values(W, k=None).shape == (12,)
    assert torch.allclose(top_singular_values(2 * W, k=1), 2 * want[:1], atol=1e-5)
    with pytest.raises(ValueError, match="method"):
        top_singular_values(W, method="svd")


def test_spectra_recorder_records_applied_and_raw_spectra_and_round_trips():
    G, _ = _small()
    rec = spectra.SpectraRecorder({"G": G}, conditional_bn=False)
    rec.record(0)
    with torch.no_grad():
        spectra.raw_weight(G.linear).mul_(3.0)
    assert rec.record(10) and not rec.record(10, force=True)  # never twice at one step
    layers = rec.layers("G")
    assert rec.steps == [0, 10] and "linear" in layers and "blocks.0.bn1.gain" not in layers
    steps, raw = rec.top("G", "linear", 1, "raw")
    assert steps == [0, 10] and torch.allclose(raw[1, 0], 3 * raw[0, 0], rtol=1e-4)
    _, applied = rec.top("G", "linear", 3)  # W / sigma_hat: the scale of W is divided out
    assert applied.shape == (2, 3) and torch.allclose(applied[1], applied[0], rtol=1e-4)
    assert abs(float(rec.top("G", "linear", 1, "normalised")[1][1, 0]) - 1) < 1e-6
    assert rec.spectrum("G", "linear", 7)[0] == 0 and rec.spectrum("G", "linear", 99)[0] == 10
    other = spectra.SpectraRecorder({"G": G}, conditional_bn=False)
    other.load_state_dict(rec.state_dict())
    assert other.steps == rec.steps and torch.equal(other.top("G", "linear", 3)[1], rec.top("G", "linear", 3)[1])
    with pytest.raises(ValueError, match="weight must be one of"):
        rec.top("G", "linear", weight="sn")
    with pytest.raises(ValueError, match="no recorded layer"):
        rec.top("G", "blocks.0.bn1.gain")
    with pytest.raises(ValueError, match="no network"):
        rec.layers("D")


def test_weight_layers_includes_conditional_bn_maps_only_when_asked():
    G, _ = _small()
    with_bn = [n for n, _ in spectra.weight_layers(G)]
    without = [n for n, _ in spectra.weight_layers(G, conditional_bn=False)]
    assert "blocks.0.bn1.gain" in with_bn and "blocks.0.bn1.gain" not in without
    assert set(without) < set(with_bn) and all(".bn" not in n for n in without)


# --------------------------------------------------------------------------- training + monitor
class _Batches:
    def __init__(self, B=4, seed=0):
        self.g, self.B = torch.Generator().manual_seed(seed), B

    def next(self):
        return (torch.rand(self.B, 3, 32, 32, generator=self.g) * 2 - 1,
                torch.randint(0, 10, (self.B,), generator=self.g))


def _steps(tmp_path, seed=0, steps=2, cfg=None):
    G, D = _small(seed)
    cfg = cfg or sagan.Config()
    opt_G, opt_D = sagan.optimizers(G, D, cfg)
    run = Run("t07", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, root=tmp_path, resume=False, progress=False,
              checkpoint_every=0, live=False)
    batches = _Batches(seed=seed)
    torch.manual_seed(seed)
    return G, D, [sagan.train_step(run, G, D, batches, cfg) for _ in range(steps)]


def test_train_step_updates_both_players_logs_the_contract_keys_and_is_deterministic(tmp_path):
    G0, D0 = _small(0)
    G1, D1, logs = _steps(tmp_path / "a")
    G2, D2, logs2 = _steps(tmp_path / "b")
    assert set(logs[0]) == {"loss_D", "loss_G", "D_real", "D_fake", "gamma_G", "gamma_D"}
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in logs[0].values())
    assert all(torch.equal(a, b) for a, b in zip(G1.state_dict().values(), G2.state_dict().values(), strict=True))
    assert all(torch.equal(logs[-1][k], logs2[-1][k]) for k in logs[-1])
    for before, after in ((G0, G1), (D0, D1)):
        assert any(not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters(), strict=True))
    assert all(p.requires_grad for p in D1.parameters())  # frozen only during G's step


def test_train_step_takes_n_dis_discriminator_steps(tmp_path):
    G, D = _small()
    cfg = sagan.Config(n_dis=3)
    opt_G, opt_D = sagan.optimizers(G, D, cfg)
    run = Run("t07n", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, root=tmp_path, resume=False, progress=False,
              checkpoint_every=0, live=False)
    sagan.train_step(run, G, D, _Batches(), cfg)
    step_of = lambda opt: int(next(iter(opt.state.values()))["step"])  # noqa: E731
    assert step_of(opt_D) == 3 and step_of(opt_G) == 1


def test_config_defaults_are_the_papers_and_bad_values_are_named():
    cfg = sagan.Config()
    assert (cfg.lr_G, cfg.lr_D, cfg.betas, cfg.n_dis) == (1e-4, 4e-4, (0.0, 0.9), 1)
    with pytest.raises(ValueError, match="lr_D"):
        sagan.Config(lr_D=0)
    with pytest.raises(ValueError, match="betas"):
        sagan.Config(betas=(0.5, 1.5))
    with pytest.raises(ValueError, match="n_dis"):
        sagan.Config(n_dis=0)


def test_constructors_are_keyword_only():
    with pytest.raises(TypeError):
        sagan.Generator(128, 10)
    with pytest.raises(TypeError):
        sagan.Discriminator(10)


def test_train_arm_with_monitor_logs_fid_and_resumes(tmp_build):
    dataset = data.load("shapes", image_size=32)
    z, y = torch.randn(4, 128), torch.arange(4)

    def fresh():
        G, D = _small()
        return G, D, lab.Monitor(G, D, "shapes", z, y, n=20, spectra=False)

    G, D, monitor = fresh()
    run = lab.train_arm("t07", G, D, dataset, 3, sagan.Config(), batch_size=4, monitor=monitor, eval_every=2,
                        progress=False, live=False)
    assert monitor.steps == [0, 2, 3] and len(monitor.fid) == 3 and all(f > 0 for f in monitor.fid)
    assert run.history.steps("fid") == [1, 2] and len(run.history.values("loss_D")) == 3
    assert run.config["lr_D"] == 4e-4 and run.config["batch_size"] == 4
    assert monitor.at(2)["samples"].shape == (4, 3, 32, 32)
    G2, D2, monitor2 = fresh()  # a resumed run restores the monitor with the weights
    run2 = lab.train_arm("t07", G2, D2, dataset, 3, sagan.Config(), batch_size=4, monitor=monitor2, eval_every=2,
                         progress=False, live=False)
    assert run2.resumed and monitor2.steps == [0, 2, 3] and monitor2.fid == monitor.fid
    assert torch.equal(monitor2.snapshots[-1], monitor.snapshots[-1])
    assert torch.equal(G2.linear.parametrizations.weight.original, G.linear.parametrizations.weight.original)


def test_monitor_records_spectra_of_both_networks():
    G, D = _small()
    monitor = lab.Monitor(G, D, "shapes", torch.randn(2, 128), torch.arange(2), n=20)
    monitor.record(0)
    assert monitor.spectra.steps == [0] and set(monitor.spectra.normalised) == {"G", "D"}
    state = monitor.state_dict()
    other = lab.Monitor(G, D, "shapes", torch.randn(2, 128), torch.arange(2), n=20)
    other.load_state_dict(state)
    assert other.spectra.steps == [0] and other.fid == monitor.fid


def test_monitor_tracks_spectra_between_fids_in_train_arm(tmp_build):
    G, D = _small()
    monitor = lab.Monitor(G, D, "shapes", torch.randn(2, 128), torch.arange(2), n=20, spectra_every=2)
    lab.train_arm("t07-track", G, D, data.load("shapes", image_size=32), 5, sagan.Config(), batch_size=4,
                  monitor=monitor, eval_every=4, progress=False, live=False)
    assert monitor.steps == [0, 4, 5]                       # FIDs: before, every eval_every, the end
    assert monitor.spectra.steps == [0, 2, 4, 5]            # spectra also at every multiple of spectra_every
    D_free = sagan.Discriminator(ch=8, sn=False)
    free = lab.Monitor(G, D_free, "shapes", torch.randn(2, 128), torch.arange(2), n=20, spectra_every=1)
    free.track(1)
    layer = free.spectra.layers("D")[0]
    applied, raw = free.spectra.top("D", layer, 1)[1], free.spectra.top("D", layer, 1, weight="raw")[1]
    assert torch.equal(applied, raw)                        # without SN the applied weight is the raw one
    with pytest.raises(ValueError, match="spectra_every"):
        lab.Monitor(G, D, "shapes", torch.randn(2, 128), torch.arange(2), spectra_every=-1)


# --------------------------------------------------------------------------- attention tools
def test_attention_maps_rows_sum_to_one_and_output_is_unchanged():
    G, D = _small()
    with torch.no_grad():
        G.attention.gamma.fill_(0.5)
    G.eval()
    z, y = torch.randn(3, 128), torch.tensor([1, 2, 3])
    with torch.no_grad():
        out, maps = lab.attention_maps(G, z, y)
        assert torch.allclose(out, G(z, y), atol=1e-6)
    beta = maps["attention"]
    assert torch.allclose(beta.sum(-1), torch.ones(3, 256), atol=1e-5)
    assert (beta >= 0).all()
    with pytest.raises(ValueError, match="no SelfAttention2d"):
        lab.attention_maps(torch.nn.Linear(2, 2), torch.randn(1, 2))


def test_residual_share_is_zero_at_init_and_reads_gamma():
    G, _ = _small()
    G.eval()
    z, y = torch.randn(3, 128), torch.tensor([1, 2, 3])
    at_init = lab.residual_share(G, z, y)
    assert at_init == {"attention": {"gamma": 0.0, "share": 0.0}}            # gamma = 0: the block is the identity
    with torch.no_grad():
        G.attention.gamma.fill_(0.5)
    later = lab.residual_share(G, z, y)["attention"]
    assert later["gamma"] == 0.5 and later["share"] > 0
    with pytest.raises(ValueError, match="no SelfAttention2d"):
        lab.residual_share(torch.nn.Linear(2, 2), torch.randn(1, 2))


def test_attention_entropy_is_one_for_uniform_and_zero_for_one_key():
    assert lab.attention_entropy(lab.uniform_attention(16)) == pytest.approx(1.0)
    assert lab.attention_entropy(torch.eye(16)) == pytest.approx(0.0, abs=1e-9)
    two_keys = torch.zeros(4, 16)
    two_keys[:, :2] = 0.5
    assert lab.attention_entropy(two_keys) == pytest.approx(math.log(2) / math.log(16))
    assert 0 < lab.attention_entropy(lab.conv_attention(4, 3)) < 1


def test_attention_maps_does_not_step_power_iteration_twice():
    G, _ = _small()
    u = _sn(G.attention.W_f)._u.clone()
    G.train()
    ref = _sn(G.attention.W_f)
    z, y = torch.randn(2, 128), torch.tensor([1, 2])
    G(z, y)
    u_once = ref._u.clone()
    ref._u.copy_(u)
    lab.attention_maps(G, z, y)
    assert torch.allclose(ref._u, u_once)


def test_mean_attention_distance_on_hand_made_maps():
    # 2 x 2 grid on a 4-pixel image: cells 2 px apart; every query looks only at its right/left neighbour
    beta = torch.tensor([[0.0, 1.0, 0.0, 0.0],
                         [1.0, 0.0, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 1.0],
                         [0.0, 0.0, 1.0, 0.0]])
    assert math.isclose(lab.mean_attention_distance(beta, 4).item(), 2.0, rel_tol=1e-6)
    # looking at yourself: distance 0; half diagonal: 0.5 * 2 * sqrt(2)
    assert lab.mean_attention_distance(torch.eye(4), 4).item() == 0
    diag = torch.tensor([[0.5, 0, 0, 0.5], [0, 0.5, 0.5, 0], [0, 0.5, 0.5, 0], [0.5, 0, 0, 0.5]])
    assert math.isclose(lab.mean_attention_distance(diag, 4).item(), math.sqrt(2), rel_tol=1e-6)
    per = lab.mean_attention_distance(beta.unsqueeze(0).repeat(2, 1, 1), 4, per_query=True)
    assert per.shape == (2, 4)
    # share beyond a window: neighbours 2 px away are outside a 3 px window, inside a 5 px one
    assert math.isclose(lab.attention_beyond(beta, 4, window=3), 1.0)
    assert lab.attention_beyond(beta, 4, window=5) == 0.0
    assert math.isclose(lab.attention_beyond(diag, 4, window=3), 0.5)


def test_conv_and_uniform_baselines():
    conv = lab.conv_attention(16, 3)
    assert torch.allclose(conv.sum(1), torch.ones(256))
    # interior query of a 3 x 3 conv on a 16 x 16 grid of a 32 px image: (4 * 2 + 4 * 2 sqrt 2) / 9 px
    per = lab.mean_attention_distance(conv, 32, per_query=True)
    assert math.isclose(per[8 * 16 + 8].item(), (8 + 8 * math.sqrt(2)) / 9, rel_tol=1e-5)
    assert lab.attention_beyond(conv, 32, window=6) == 0.0  # a 3 x 3 conv never looks beyond its window
    uniform = lab.mean_attention_distance(lab.uniform_attention(256), 32).item()
    assert 15 < uniform < 18  # ~0.52 of the side for a uniform pair of points in a square
    # keys on a pooled (8 x 8) grid
    assert lab.uniform_attention(256, 64).shape == (256, 64)
    assert lab.mean_attention_distance(lab.uniform_attention(256, 64), 32).item() > 10


def test_receptive_field_is_measured_from_gradients():
    two_convs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 3, padding=1))
    assert lab.receptive_field(two_convs) == 5
    pooled = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.AvgPool2d(2),
                                 torch.nn.Conv2d(4, 4, 3, padding=1))
    assert lab.receptive_field(pooled) == 8  # 3, pool: 4, then a 3x3 at stride 2: + 4
    _, D = _small()
    assert lab.receptive_field(D.before_attention) == 16  # D's 8 x 8 features see 16 x 16 pixels


def test_shape_mask_and_attention_on_region():
    img = torch.zeros(1, 3, 32, 32)
    img[:, 0, :16, :16] = 1.0  # a red square in the top-left corner on a grey (0) background
    mask = lab.shape_mask(img, 16)
    assert mask.shape == (1, 256) and mask.sum() == 64
    beta = mask.float().repeat(256, 1).unsqueeze(0)
    beta = beta / beta.sum(-1, keepdim=True)  # every query looks only at the square
    stats = lab.attention_on_region(beta, mask)
    assert math.isclose(stats["inside_to_inside"], 1.0, rel_tol=1e-6)
    assert math.isclose(stats["outside_to_outside"], 0.0, abs_tol=1e-6)
    assert math.isclose(stats["inside_area"], 0.25, rel_tol=1e-6)


# --------------------------------------------------------------------------- explorers
def test_attention_explorer_renders_headless():
    G, D = _small()
    with torch.no_grad():
        G.attention.gamma.fill_(1.0)
    G.eval(), D.eval()
    with torch.no_grad():
        images, maps_G = lab.attention_maps(G, torch.randn(3, 128), torch.tensor([0, 1, 2]))
        _, maps_D = lab.attention_maps(D, images, torch.tensor([0, 1, 2]))
    maps = {"G": maps_G["attention"], "D": maps_D["attention"]}
    ex = lab.attention_explorer(images, maps, labels=["circle", "square", "triangle"], windows={"D": 16})
    assert ex.state["renders"] == 1
    ex.controls["sample"].value = 2
    ex.controls["layer"].value = "D"
    ex.controls["x"].value = 31
    assert ex.state["values"] == {"sample": 2, "layer": "D", "x": 31, "y": 16}
    assert ex.state["renders"] == 4
    assert "cell (7, 4) of 8x8" in ex.state["figure"].axes[1].get_title()   # pixel (x=31, y=16): column 7, row 4
    # a click on the pad (ipyevents' message, the pad shown at 384 px on screen) moves the query, in one render
    pad_before = ex.pad.value
    ex.click({"relativeX": 96.0, "relativeY": 300.0, "boundingRectWidth": 384.0, "boundingRectHeight": 384.0})
    assert ex.state["values"] == {"sample": 2, "layer": "D", "x": 8, "y": 25} and ex.state["renders"] == 5
    fig = ex.state["figure"]
    assert fig.axes[0].get_title() == "query pixel (8, 25): attention" and "cell (2, 6) of 8x8" in fig.axes[1].get_title()
    assert ex.pad.value != pad_before                                        # the pad outlines the new cell
    assert lab.click_to_pixel({"relativeX": 500, "relativeY": -3, "boundingRectWidth": 192,
                               "boundingRectHeight": 192}, 32) == (31, 0)   # a click on the border stays inside
    # the query against uniform attention, and the block's gamma, under the maps
    footer = " ".join(t.get_text() for t in fig.texts)
    assert "row entropy" in footer and "uniform attention from this cell" in footer and "gamma" not in footer
    share = {"G": lab.residual_share(G, torch.randn(3, 128), torch.tensor([0, 1, 2]))["attention"]}
    fig = lab.render_attention(images[0], maps["G"][0], x=24, y=6, title="t", residual=share["G"])
    assert len(fig.axes) == 3 and fig._suptitle.get_text() == "t"                 # overlay, map, colour bar
    assert "cell (12, 3) of 16x16" in fig.axes[1].get_title()   # pixel (x=24, y=6): column 12, row 3
    footer = " ".join(t.get_text() for t in fig.texts)
    assert f"gamma = {share['G']['gamma']:+.3f}" in footer and "||gamma o|| / ||x||" in footer
    assert readability(fig)["readable"], readability(fig)
    j = 3 * 16 + 12
    stats = lab.query_statistics(maps["G"][0], j, 32)
    assert stats["distance"] == pytest.approx(float(lab.mean_attention_distance(maps["G"][0], 32, per_query=True)[j]))
    uniform = lab.query_statistics(lab.uniform_attention(256), j, 32)
    assert uniform["entropy"] == pytest.approx(1.0) and uniform["distance"] == pytest.approx(uniform["uniform_distance"])
    assert lab.query_statistics(torch.eye(256), j, 32)["entropy"] < 1e-6      # looks at one cell
    with pytest.raises(ValueError, match="inside"):
        lab.render_attention(images[0], maps["G"][0], 32, 0)


def test_spectra_explorer_renders_headless():
    G1, D1 = _small()
    G0 = sagan.Generator(ch=8, sn=False)
    recorders = {"SN": spectra.SpectraRecorder({"G": G1, "D": D1}, conditional_bn=False),
                 "no SN in G": spectra.SpectraRecorder({"G": G0}, conditional_bn=False)}
    for step in (0, 10):
        for rec in recorders.values():
            rec.record(step)
    ex = spectra.spectra_explorer(recorders)
    assert ex.controls["layer"].options[0] == "G/linear" and "D/embed" in ex.controls["layer"].options
    assert ex.controls["run"].options == ("all", "SN", "no SN in G") and ex.controls["step"].value == 10
    ex.controls["step"].value = 0
    ex.controls["layer"].value = "D/psi"
    assert ex.state["values"] == {"run": "all", "layer": "D/psi", "step": 0, "weight": "applied"}
    assert ex.state["renders"] == 3
    fig = spectra.render_spectra(recorders, "G", "linear", 5)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("(SN)" in t for t in labels) and any("(no SN)" in t for t in labels)
    assert any("raw W" in t for t in labels)  # the raw weight's sigma_0, dotted, for the normalised layer
    with pytest.raises(ValueError, match="no run has recorded"):
        spectra.render_spectra(recorders, "G", "nothing", 0)
    with pytest.raises(ValueError, match="layer must be one of"):
        spectra.spectra_explorer(recorders, layer="G/nothing")


def test_spectra_explorer_step_follows_the_chosen_run():
    """A run recorded only late (a continued run) re-ranges the step slider, and every title names the step that
    is drawn, not the slider's value; the sigma_0 / sigma_1 panel is the raw spectrum's ratio."""
    G1, D1 = _small()
    early = spectra.SpectraRecorder({"G": G1}, conditional_bn=False)
    late = spectra.SpectraRecorder({"G": G1}, conditional_bn=False)
    for step in (0, 100, 200):
        early.record(step)
    for step in (1200, 1350):
        late.record(step)
    ex = spectra.spectra_explorer({"early": early, "late": late})
    assert ex.controls["step"].options == (0, 100, 200, 1200, 1350)          # "all": every run's steps
    ex.controls["step"].value = 100
    fig = ex.state["figure"]
    assert "steps 100, 1200 (per run)" in fig.axes[1].get_title()           # late is drawn at its first step
    renders = ex.state["renders"]
    ex.controls["run"].value = "late"
    assert ex.controls["step"].options == (1200, 1350) and ex.controls["step"].value == 1200
    assert ex.state["renders"] == renders + 1                               # one render for the run change
    fig = ex.state["figure"]
    assert fig.axes[1].get_title() == "whole spectrum at step 1200"
    assert fig.axes[1].get_legend().get_texts()[0].get_text() == "late, step 1200"
    ex.controls["run"].value = "early"
    assert ex.controls["step"].options == (0, 100, 200) and ex.controls["step"].value == 200   # nearest below 1200
    ex.controls["step"].value = 100
    fig = ex.state["figure"]
    assert fig.axes[1].get_title() == "whole spectrum at step 100"
    _, top = early.top("G", "linear", 2, "raw")
    ratio = fig.axes[2].lines[0].get_ydata()
    assert "sigma_0 / sigma_1" in fig.axes[2].get_ylabel()
    assert torch.allclose(torch.as_tensor(ratio, dtype=top.dtype), top[:, 0] / top[:, 1])
    labels = [label for label, _ in ex.controls["weight"].options]
    assert any(label.startswith("normalised: W / sigma_0(W)") for label in labels)
    assert ex.controls["weight"].layout.width == "auto"                     # labels are not cut


def test_readable_log_axis_labels_a_narrow_range():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0.95, 1.08])
    ax.set_yscale("log")
    fig.canvas.draw()
    spectra.readable_log_axis(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 3 and all("10^" not in t and "$" not in t for t in labels)
    ax.set_ylim(1.0, 1.012)                                   # a very narrow range: the digits still differ
    fig.canvas.draw()
    spectra.readable_log_axis(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    plt.close(fig)


# --------------------------------------------------------------------------- exercises
def _beta_ok(f_x, g_x):
    return (g_x.transpose(1, 2) @ f_x).softmax(dim=-1)


def test_check_attention_weights_accepts_the_solution(capsys):
    assert ch07.check_attention_weights(_beta_ok)
    assert "passed" in capsys.readouterr().out
    # correct alternatives: s by einsum, or bmm of the permuted queries, and the softmax over dim 2
    assert ch07.check_attention_weights(lambda f, g: torch.einsum("bci,bcj->bji", f, g).softmax(-1))
    assert ch07.check_attention_weights(lambda f, g: F.softmax(torch.bmm(g.permute(0, 2, 1), f), dim=2))


@pytest.mark.parametrize("wrong, message", [
    (lambda f, g: (g.transpose(1, 2) @ f).softmax(dim=1), "over the queries"),
    (lambda f, g: (g.transpose(1, 2) @ f).softmax(dim=-1).transpose(1, 2), "transpose"),
    (lambda f, g: (f.transpose(1, 2) @ g).softmax(dim=-1), "swapped f and g"),
    (lambda f, g: (g.transpose(1, 2) @ f / 2.0).softmax(dim=-1), "sqrt"),
    (lambda f, g: g.transpose(1, 2) @ f, "softmax"),
    (lambda f, g: None, "None"),
])
def test_check_attention_weights_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch07.check_attention_weights(wrong)


def test_check_hinge_losses(capsys):
    good_d = lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean()  # noqa: E731
    assert ch07.check_hinge_losses(good_d, lambda f: -f.mean())
    with pytest.raises(ExerciseError, match="no hinge"):
        ch07.check_hinge_losses(lambda r, f: (1 - r).mean() + (1 + f).mean(), lambda f: -f.mean())
    with pytest.raises(ExerciseError, match="signs swapped"):
        ch07.check_hinge_losses(lambda r, f: F.relu(1 + r).mean() + F.relu(1 - f).mean(), lambda f: -f.mean())
    with pytest.raises(ExerciseError, match="hinge too"):
        ch07.check_hinge_losses(good_d, lambda f: F.relu(1 - f).mean())
    with pytest.raises(ExerciseError, match="believe its samples"):
        ch07.check_hinge_losses(good_d, lambda f: f.mean())
    with pytest.raises(ExerciseError, match="no margin"):
        ch07.check_hinge_losses(lambda r, f: F.relu(-r).mean() + F.relu(f).mean(), lambda f: -f.mean())
    with pytest.raises(ExerciseError, match="summed over the batch"):
        ch07.check_hinge_losses(lambda r, f: F.relu(1 - r).sum() + F.relu(1 + f).sum(), lambda f: -f.mean())
    with pytest.raises(ExerciseError, match="non-saturating"):
        ch07.check_hinge_losses(good_d, lambda f: F.softplus(-f).mean())


def test_check_hinge_loss_pair(capsys):
    """Exercise 2 of the notebook: one function returning (L_D, L_G)."""
    def reference(real_scores, fake_scores):
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean(), -fake_scores.mean()

    assert ch07.check_hinge_loss_pair(reference)
    assert "hinge losses L_D and L_G: all checks passed" in capsys.readouterr().out
    # correct alternatives: the library's losses, clamp and one mean over both terms (equal batch sizes), a list
    assert ch07.check_hinge_loss_pair(lambda r, f: (hinge_discriminator_loss(r, f), hinge_generator_loss(f)))
    assert ch07.check_hinge_loss_pair(lambda r, f: [(torch.clamp(1 - r, min=0) + torch.clamp(1 + f, min=0)).mean(),
                                                    torch.mean(-f)])
    for wrong, message in [
        (lambda r, f: ((1 - r).mean() + (1 + f).mean(), -f.mean()), "no hinge"),
        (lambda r, f: (F.relu(1 + r).mean() + F.relu(1 - f).mean(), -f.mean()), "signs swapped"),
        (lambda r, f: (F.relu(-r).mean() + F.relu(f).mean(), -f.mean()), "no margin"),
        (lambda r, f: (reference(r, f)[0], F.relu(1 - f).mean()), "hinge too"),
        (lambda r, f: (reference(r, f)[0], F.softplus(-f).mean()), "non-saturating"),
        (lambda r, f: (reference(r, f)[0], r.mean() - f.mean()), "only the real scores change"),
        (lambda r, f: reference(r, f)[0], "Return the pair"),
        (lambda r, f: None, "returned None"),
    ]:
        with pytest.raises(ExerciseError, match=message):
            ch07.check_hinge_loss_pair(wrong)


def _power_ok(W, u, n):
    for _ in range(n):
        v = W.t() @ u
        v = v / v.norm()
        u = W @ v
        u = u / u.norm()
    return u @ W @ v, u


def test_check_power_iteration(capsys):
    assert ch07.check_power_iteration(_power_ok)

    def normalize_and_norm(W, u, n):                    # a correct alternative: F.normalize, sigma = |W v|
        for _ in range(n):
            v = F.normalize(torch.mv(W.t(), u), dim=0)
            u = F.normalize(torch.mv(W, v), dim=0)
        return (W @ v).norm(), u

    assert ch07.check_power_iteration(normalize_and_norm)
    with pytest.raises(ExerciseError, match="Frobenius"):
        ch07.check_power_iteration(lambda W, u, n: (W.norm(), u))
    with pytest.raises(ExerciseError, match="sigma\\^2"):
        ch07.check_power_iteration(lambda W, u, n: (_power_ok(W, u, n)[0] ** 2, _power_ok(W, u, n)[1]))
    with pytest.raises(ExerciseError, match="pair"):
        ch07.check_power_iteration(lambda W, u, n: _power_ok(W, u, n)[0])

    def unnormalised(W, u, n):
        for _ in range(n):
            v = W.t() @ u
            u = W @ v
        return u @ W @ v, u
    with pytest.raises(ExerciseError, match="normalise"):
        ch07.check_power_iteration(unnormalised)


def test_layers_attention_is_the_exercise_formula():
    torch.manual_seed(0)
    block = SelfAttention2d(16, sn=False)
    x = torch.randn(1, 16, 4, 4)
    _, beta = block(x, return_attention=True)
    assert torch.allclose(_beta_ok(block.W_f(x).flatten(2), block.W_g(x).flatten(2)), beta, atol=1e-6)


def test_attention_variants_paper_official_and_none():
    G = sagan.Generator(ch=8, attention="official")
    D = sagan.Discriminator(ch=8, attention="official")
    for block, c in ((G.attention, 16), (D.attention, 16)):
        assert block.pool == "after" and block.W_h.out_channels == c // 2
    paper = sagan.Generator(ch=8)
    assert paper.attention.pool is False and paper.attention.W_h.out_channels == 16 // 8
    assert sagan.Generator(ch=8, attention=False).attention is None
    assert sagan.Discriminator(ch=8, attention=False).attention is None
    z, y = torch.randn(2, sagan.Z_DIM), torch.tensor([0, 1])
    assert G(z, y).shape == (2, 3, 32, 32) and D(G(z, y), y).shape == (2,)
    with pytest.raises(ValueError, match="attention must be True, False or one of"):
        sagan.Generator(ch=8, attention="tf")
