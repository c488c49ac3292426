"""Chapter 08: Brock, Donahue & Simonyan (2018), "Large Scale GAN Training for High Fidelity Natural Image Synthesis"
(arXiv 1809.11096).

The networks' shapes and the paper's invariants (hierarchical latent, conditional BN from the shared embedding,
orthogonal init, spectral norm, projection D linear in the class embedding), orthogonal regularisation's value and
gradient, the training step's contract (log keys, both players updated, D unfrozen, determinism) and its Config,
the blocks shared with SAGAN, the truncation sampler and sweep tools (the lab), the spectra recorder, both explorers
headless, and the exercise checks.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_course.exercises import ExerciseError, ch08
from gan_course.lab import biggan as lab
from gan_course.lab import spectra
from gan_course.layers import ConditionalBatchNorm2d, SelfAttention2d
from gan_course.losses import orthogonal_regularization as library_orthogonal_regularization
from gan_course.models import biggan, sagan
from gan_course.training import EMA, Run
from gan_course.viz import readability


def small_pair(sn: bool = True, seed: int = 0, image_size: int = 16):
    """Tiny 16 x 16 networks (the chapter's are 32 x 32; the code paths are the same)."""
    torch.manual_seed(seed)
    attn = 16 if image_size == 32 else 8
    return (biggan.Generator(z_dim=60 if image_size == 16 else 80, ch=8, image_size=image_size, attn_res=attn, sn=sn),
            biggan.Discriminator(ch=8, image_size=image_size, attn_res=attn, sn=sn))


# ----------------------------------------------------------------------------------------- the networks
def test_generator_and_discriminator_shapes():
    G, D = small_pair(image_size=32)
    z, y = torch.randn(3, G.z_dim), torch.arange(3) % 10
    x = G(z, y)
    assert x.shape == (3, 3, 32, 32) and x.abs().max() <= 1
    assert D(x, y).shape == (3,)
    assert G.widths == [32, 32, 16, 8] and D.widths == [8, 16, 32, 32]
    with pytest.raises(ValueError, match="chunks"):
        biggan.Generator(z_dim=81)
    with pytest.raises(ValueError, match="attn_res"):
        biggan.Generator(attn_res=4)


def test_hierarchical_latent_feeds_every_block():
    G, _ = small_pair()
    G.eval()
    z, y = torch.randn(4, G.z_dim), torch.tensor([0, 1, 2, 3])
    z0, *cs = G.conditions(z, y)
    assert z0.shape == (4, G.chunk) and len(cs) == len(G.blocks) == 2
    for l, c in enumerate(cs, start=1):  # c_l = [e(y), z_l]
        assert torch.equal(c[:, :G.shared.embedding_dim], G.shared(y))
        assert torch.equal(c[:, G.shared.embedding_dim:], z[:, l * G.chunk:(l + 1) * G.chunk])
    with torch.no_grad():
        base = G(z, y)
        for l in range(len(cs) + 1):  # changing any one chunk changes the image
            z2 = z.clone()
            z2[:, l * G.chunk:(l + 1) * G.chunk] += 1.0
            assert (G(z2, y) - base).abs().max() > 1e-3, f"chunk {l} has no effect"


def test_conditional_bn_uses_the_shared_class_embedding():
    G, _ = small_pair()
    G.eval()  # running statistics: samples do not interact through batch statistics
    z, y = torch.randn(6, G.z_dim), torch.tensor([0, 1, 2, 3, 3, 5])
    with torch.no_grad():
        base = G(z, y)
        G.shared.weight[3] += 0.5
        moved = G(z, y)
    changed = (moved - base).flatten(1).abs().max(1).values > 1e-4
    assert changed.tolist() == [False, False, False, True, True, False]
    assert all(isinstance(b.bn1, ConditionalBatchNorm2d) for b in G.blocks)
    cond_dim = G.shared.embedding_dim + G.chunk
    assert all(spectra.raw_weight(b.bn1.gain).shape[1] == cond_dim for b in G.blocks)


def test_conditional_bn_is_one_plus_gain_times_bn_plus_bias():
    bn = biggan.conditional_bn(4, 3, sn=False).eval()
    x, c = torch.randn(2, 4, 5, 5), torch.randn(2, 3)
    plain = F.batch_norm(x, bn.bn.running_mean, bn.bn.running_var, training=False, eps=bn.bn.eps)
    gamma, beta = c @ bn.gain.weight.t(), c @ bn.bias.weight.t()
    want = (1 + gamma)[:, :, None, None] * plain + beta[:, :, None, None]
    assert torch.allclose(bn(x, c), want, atol=1e-5)


def test_one_biggan_style_attention_block_with_gate_zero():
    G, D = small_pair()
    blocks = [m for m in G.modules() if isinstance(m, SelfAttention2d)]
    assert len(blocks) == 1 and blocks[0].pool and float(blocks[0].gamma.detach()) == 0.0
    C = G.widths[1]  # at 8 x 8
    assert spectra.raw_weight(blocks[0].W_h).shape[0] == C // 2 and spectra.raw_weight(blocks[0].W_f).shape[0] == C // 8
    assert sum(isinstance(m, SelfAttention2d) for m in D.modules()) == 1


def test_orthogonal_initialisation_of_every_weight():
    G, D = small_pair()
    for net in (G, D):
        for name, layer in spectra.weight_layers(net):
            W = spectra.raw_weight(layer).detach().flatten(1).double()
            small = W @ W.t() if W.shape[0] <= W.shape[1] else W.t() @ W
            assert torch.allclose(small, torch.eye(small.shape[0], dtype=W.dtype), atol=1e-5), name


def test_spectral_norm_in_g_and_d_gives_top_singular_value_one():
    G, D = small_pair()
    z, y = torch.randn(4, G.z_dim), torch.arange(4)
    for _ in range(10):  # power iteration: one step per forward pass in training mode
        D(G(z, y), y)
    for net in (G, D):
        sn_layers = [(n, m) for n, m in spectra.weight_layers(net) if hasattr(m, "parametrizations")]
        names = [n for n, _ in spectra.weight_layers(net)]
        assert len(sn_layers) == len(names) - (1 if net is G else 0)  # all but G's shared embedding
        for name, layer in sn_layers:
            sigma = torch.linalg.svdvals(layer.weight.detach().flatten(1))[0]
            assert abs(float(sigma) - 1) < 2e-2, name


def test_projection_discriminator_is_linear_in_the_class_embedding():
    _, D = small_pair()
    D.eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        phi = D.phi(x)
        e1, e2 = torch.randn(3, phi.shape[1]), torch.randn(3, phi.shape[1])
        d = [D.projection(phi, e, D.psi) for e in (e1, e2, 2 * e1 - 3 * e2, torch.zeros_like(e1))]
        assert torch.allclose(d[2] - d[3], 2 * (d[0] - d[3]) - 3 * (d[1] - d[3]), atol=1e-4)
        y = torch.tensor([1, 4, 9])
        assert torch.allclose(D(x, y), D.psi(phi).squeeze(1) + (D.embed(y) * phi).sum(1), atol=1e-5)


# ----------------------------------------------------------------------------------------- orthogonal regularisation
def test_orthogonal_penalty_on_hand_computed_matrices():
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # W W^T = [[5, 11], [11, 25]]
    assert float(biggan.off_diagonal_orthogonal_penalty(W)) == pytest.approx(242.0)
    Q = torch.linalg.qr(torch.randn(4, 4))[0]
    assert float(biggan.off_diagonal_orthogonal_penalty(torch.diag(torch.tensor([1.0, 2, 3, 4])) @ Q)) < 1e-8
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(W)
    assert biggan.orthogonal_regularization(lin, beta=1e-4, exclude=()).item() == pytest.approx(242e-4)


def test_orthogonal_regularization_matches_the_library_without_sn_and_uses_raw_weights_with_sn():
    G, _ = small_pair(sn=False)
    ours = biggan.orthogonal_regularization(G, beta=1e-4)  # skips the shared embedding, as the library skips embeddings
    assert torch.allclose(ours, library_orthogonal_regularization(G, beta=1e-4))
    G_sn, _ = small_pair(sn=True)
    for _, layer in spectra.weight_layers(G_sn):
        with torch.no_grad():
            spectra.raw_weight(layer).mul_(3.0)  # raw W grows; W / sigma(W) does not
    expected = 1e-4 * sum(biggan.off_diagonal_orthogonal_penalty(spectra.raw_weight(m))
                          for n, m in spectra.weight_layers(G_sn) if not n.startswith("shared"))
    assert torch.allclose(biggan.orthogonal_regularization(G_sn, 1e-4), expected)


def test_orthogonal_regularization_gradient_is_twice_the_reference_codes():
    W = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    beta = 1e-4
    (grad,) = torch.autograd.grad(beta * biggan.off_diagonal_orthogonal_penalty(W), W)
    off = (W @ W.t()) * (1 - torch.eye(5, dtype=W.dtype))
    reference = 2 * beta * off @ W  # what BigGAN-PyTorch's utils.ortho writes into the gradient
    assert torch.allclose(grad, 2 * reference.detach())


# ----------------------------------------------------------------------------------------- training
class _Batches:
    def __init__(self, n_classes=10, B=4, seed=0):
        self.g, self.B, self.n = torch.Generator().manual_seed(seed), B, n_classes

    def next(self):
        return torch.rand(self.B, 3, 16, 16, generator=self.g) * 2 - 1, torch.randint(0, self.n, (self.B,),
                                                                                        generator=self.g)


def _train(tmp_path, seed, steps=2, beta=1e-4):
    G, D = small_pair(seed=seed)
    opt_G = torch.optim.Adam(G.parameters(), 5e-5, betas=(0.0, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.999))
    run = Run("t08", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, root=tmp_path, resume=False, progress=False,
              checkpoint_every=0, live=False)
    batches = _Batches(seed=seed)
    torch.manual_seed(seed)
    cfg = biggan.Config(beta_ortho=beta)
    logs = [biggan.train_step(run, G, D, batches, cfg) for _ in range(steps)]
    return G, D, logs


def test_train_step_updates_both_players_and_is_deterministic(tmp_path):
    G0, D0 = small_pair(seed=0)
    G1, D1, logs = _train(tmp_path / "a", seed=0)
    G2, _, _ = _train(tmp_path / "b", seed=0)
    assert set(logs[0]) == {"loss_D", "loss_G", "R_ortho", "D_real", "D_fake"}
    assert all(math.isfinite(float(v)) for log in logs for v in log.values())
    assert float(logs[0]["R_ortho"]) > 0
    for a, b in zip(G1.state_dict().values(), G2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(G0.parameters(), G1.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(D0.parameters(), D1.parameters(), strict=True))
    assert all(p.requires_grad for p in D1.parameters())
    assert all(not v.requires_grad and v.dim() == 0 for log in logs for v in log.values())


def test_train_step_without_orthogonal_regularisation_logs_zero(tmp_path):
    _, _, logs = _train(tmp_path, seed=1, steps=1, beta=0.0)
    assert float(logs[0]["R_ortho"]) == 0.0


def test_config_defaults_are_the_papers_and_bad_values_are_named():
    cfg = biggan.Config()
    assert (cfg.lr_G, cfg.lr_D, cfg.betas, cfg.adam_eps, cfg.d_steps) == (5e-5, 2e-4, (0.0, 0.999), 1e-6, 2)
    assert (cfg.beta_ortho, cfg.ema_decay) == (1e-4, 0.9999)
    opt_G, opt_D = biggan.optimizers(*small_pair(), cfg)
    assert opt_G.defaults["lr"] == 5e-5 and opt_D.defaults["eps"] == 1e-6 and opt_D.defaults["betas"] == (0.0, 0.999)
    for bad, name in ((dict(lr_G=-1.0), "lr_G"), (dict(d_steps=0), "d_steps"), (dict(beta_ortho=-1e-4), "beta_ortho"),
                      (dict(ema_decay=1.0), "ema_decay"), (dict(betas=(0.0,)), "betas")):
        with pytest.raises(ValueError, match=name):
            biggan.Config(**bad)


def test_constructors_are_keyword_only():
    with pytest.raises(TypeError):
        biggan.Generator(80, 10)
    with pytest.raises(TypeError):
        biggan.Discriminator(10)


def test_biggan_reuses_sagans_blocks():
    assert biggan.DBlock is sagan.DBlock  # Fig. 15 c is SAGAN's down-block
    assert issubclass(biggan.GBlock, sagan.GBlock) and biggan.GBlock.forward is sagan.GBlock.forward
    torch.manual_seed(0)
    block = biggan.GBlock(8, 4, cond_dim=6)
    assert isinstance(block.bn1, ConditionalBatchNorm2d) and hasattr(block.bn1.gain, "parametrizations")
    assert not hasattr(sagan.GBlock(8, 4, cond_dim=6).bn1.gain, "parametrizations")  # SAGAN's class tables: no SN


def test_ema_of_a_spectrally_normalised_generator_samples():
    G, _ = small_pair()
    ema = EMA(G, 0.99)
    G(torch.randn(4, G.z_dim), torch.arange(4))
    ema.update()
    ema.eval()
    x = biggan.sample(ema, 12, threshold=0.5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (12, 3, 16, 16)


def test_refresh_spectral_norm_restores_sigma_one_for_an_averaged_generator():
    G, _ = small_pair()
    ema = EMA(G, 0.5)
    z, y = torch.randn(4, G.z_dim), torch.arange(4)
    for _ in range(4):  # the source moves and its u vectors rotate; the EMA averages weights and u vectors
        with torch.no_grad():
            for p in G.parameters():
                p.add_(0.3 * torch.randn_like(p))
        G(z, y)
        ema.update()
    # power iteration converges at the rate (sigma_2 / sigma_1)^k; random layers can have close top values
    biggan.refresh_spectral_norm(ema, iterations=300)
    ema.eval()
    for name, layer in spectra.weight_layers(ema.module):
        if hasattr(layer, "parametrizations"):
            sigma = torch.linalg.svdvals(layer.weight.detach().flatten(1))[0]
            assert abs(float(sigma) - 1) < 1e-2, name


def test_sample_is_balanced_seeded_and_truncated(monkeypatch):
    G, _ = small_pair()
    G.eval()
    seen = {}

    def spy(z, y):
        seen["z"], seen["y"] = z, y
        return torch.zeros(len(z), 3, 16, 16)

    monkeypatch.setattr(G, "forward", spy)
    biggan.sample(G, 30, threshold=0.3, generator=torch.Generator().manual_seed(1))
    assert seen["z"].abs().max() <= 0.3 and torch.equal(seen["y"], torch.arange(30) % 10)
    z_a = seen["z"].clone()
    biggan.sample(G, 30, threshold=0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(z_a, seen["z"])
    biggan.sample(G, 30, threshold=None, generator=torch.Generator().manual_seed(1))
    assert seen["z"].abs().max() > 0.3


def test_standing_statistics_follow_the_truncation_and_leave_g_alone():
    G, _ = small_pair()
    G(torch.randn(16, G.z_dim), torch.arange(16) % 10)                # some running statistics from training
    before = {k: v.clone() for k, v in G.state_dict().items()}
    ema = EMA(G, 0.9)
    standing = lab.standing_statistics(ema, threshold=0.2, batches=3, batch_size=20, seed=0)
    again = lab.standing_statistics(G, threshold=0.2, batches=3, batch_size=20, seed=0)
    untruncated = lab.standing_statistics(G, threshold=None, batches=3, batch_size=20, seed=0)
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())        # the original is untouched
    assert not standing.training and standing is not G
    means = {name: [m.running_var for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
             for name, net in (("G", G), ("standing", again), ("untruncated", untruncated))}
    assert all(torch.equal(a, b) for a, b in zip(means["standing"], [m.running_var for m in standing.modules()
                                                                     if isinstance(m, nn.BatchNorm2d)], strict=True))
    # z squeezed into [-0.2, 0.2] moves the first block's features less: smaller variances than untruncated z
    assert means["standing"][0].mean() < means["untruncated"][0].mean()
    assert not torch.equal(means["G"][0], means["untruncated"][0])
    x = biggan.sample(standing, 10, threshold=0.2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (10, 3, 16, 16) and x.abs().max() <= 1


def test_saturated_fraction():
    x = torch.tensor([-1.0, -0.995, 0.0, 0.5, 0.999, 1.0, 0.2, 0.3])
    assert lab.saturated_fraction(x) == pytest.approx(4 / 8)


# ----------------------------------------------------------------------------------------- spectra
def test_spectra_recorder_records_raw_singular_values_and_round_trips():
    G, D = small_pair()
    rec = spectra.SpectraRecorder({"G": G, "D": D}, every=5)
    assert [rec.record(s) for s in range(11)].count(True) == 3  # steps 0, 5, 10
    assert rec.steps == [0, 5, 10] and not rec.record(10, force=True)
    assert "blocks.0.bn1.gain" in rec.layers("G")  # BigGAN's cBN maps are weights like any other
    layer = rec.layers("D")[0]
    steps, top = rec.top("D", layer, k=3, weight="raw")
    assert steps == [0, 5, 10] and top.shape == (3, 3) and bool((top[:, :-1] >= top[:, 1:]).all())
    m = dict(spectra.weight_layers(D))[layer]
    exact = torch.linalg.svdvals(spectra.raw_weight(m).detach().flatten(1))
    assert torch.allclose(rec.spectrum("D", layer, 10, "raw")[1], exact, atol=1e-5)
    assert torch.allclose(top[-1], spectra.top_singular_values(spectra.raw_weight(m), k=3), atol=1e-4)
    other = spectra.SpectraRecorder({"G": G, "D": D}, every=5)
    other.load_state_dict(rec.state_dict())
    assert other.steps == rec.steps and torch.equal(other.top("G", "linear")[1], rec.top("G", "linear")[1])


# ----------------------------------------------------------------------------------------- explorers, headless
def _fake_sweeps():
    rows = lambda shift: [dict(threshold=t, fid=10 + i + shift, precision=0.9 - 0.1 * i, recall=0.2 + 0.1 * i,  # noqa: E731
                               saturated=0.01 * i, inception_score=5 - i, agreement=0.9 - 0.1 * i,
                               images=torch.rand(20, 3, 8, 8) * 2 - 1)
                          for i, t in enumerate([0.25, 0.5, 1.0, None])]
    return {"ortho reg": rows(0), "no ortho reg": rows(3)}


def test_truncation_explorer_renders_headless():
    ex = lab.truncation_explorer(_fake_sweeps())
    assert ex.state["values"] == {"psi": "none", "model": "ortho reg"}
    assert ex.controls["psi"].options == ("0.25", "0.5", "1", "none")
    ex.controls["psi"].value = "0.25"
    ex.controls["model"].value = "no ortho reg"
    assert ex.state["renders"] == 3 and ex.state["values"]["psi"] == "0.25"
    fig = ex.state["figure"]
    assert "psi = 0.25" in fig.axes[0].get_title() and fig.axes[1].get_xlabel().startswith("recall")
    assert "Fig. 2" in fig.axes[2].get_title() and fig.axes[2].get_ylabel().startswith("IS")
    assert fig.axes[3].get_ylabel().startswith("classifier agrees") and len(fig.axes[3].lines) == 3   # 2 models + psi
    assert readability(fig)["readable"], readability(fig)        # two rows at JupyterLab's width, no overlaps
    ticks = [t.get_text() for t in fig.axes[3].get_xticklabels()]
    assert ticks == ["0.25", "0.5", "1", "none"] and list(fig.axes[3].get_xticks()) == [0, 1, 2, 3]   # evenly spaced
    with pytest.raises(ValueError, match="not in the sweep"):
        lab.render_truncation(_fake_sweeps(), 0.7)


def test_spectra_explorer_renders_headless():
    G, D = small_pair()
    rec = spectra.SpectraRecorder({"G": G, "D": D}, every=1)
    for s in range(3):
        rec.record(s)
    ex = spectra.spectra_explorer({"main": rec}, weight="raw", layer=f"D/{rec.layers('D')[0]}")
    assert ex.state["values"]["layer"].startswith("D/") and ex.state["values"]["weight"] == "raw"
    assert ex.controls["run"].options == ("main",)
    ex.controls["layer"].value = "G/linear"
    ex.controls["step"].value = 1
    ex.controls["weight"].value = "normalised"
    fig = ex.state["figure"]
    assert ex.state["renders"] == 4 and "G.linear" in fig.axes[0].get_title()
    assert "W / sigma_0(W)" in fig.axes[0].get_title()
    top_line = fig.axes[0].lines[0].get_ydata()
    assert all(abs(v - 1) < 1e-6 for v in top_line)  # normalised: sigma_0 / sigma_0
    assert readability(fig)["readable"], readability(fig)


# ----------------------------------------------------------------------------------------- exercises
def _truncated_by_resampling(size, threshold, generator):
    z = torch.randn(size, generator=generator)
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > threshold
    return z


def test_check_truncated_normal_accepts_resampling_and_rejects_clamping_and_uniform():
    assert ch08.check_truncated_normal(_truncated_by_resampling)
    with pytest.raises(ExerciseError, match="clamped"):
        ch08.check_truncated_normal(lambda size, t, g: torch.randn(size, generator=g).clamp(-t, t))
    with pytest.raises(ExerciseError, match="uniform"):
        ch08.check_truncated_normal(lambda size, t, g: (torch.rand(size, generator=g) * 2 - 1) * t)
    with pytest.raises(ExerciseError, match="rescale"):
        ch08.check_truncated_normal(lambda size, t, g: torch.tanh(torch.randn(size, generator=g)) * t)
    with pytest.raises(ExerciseError, match="outside"):
        ch08.check_truncated_normal(lambda size, t, g: torch.randn(size, generator=g))
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch08.check_truncated_normal(lambda size, t, g: (_ for _ in ()).throw(NotImplementedError))


def test_check_orthogonal_penalty_accepts_the_right_answer_and_explains_mistakes():
    def right(W, beta):
        W = W.flatten(1)
        gram = W @ W.t()
        return beta * (gram * (1 - torch.eye(gram.shape[0], dtype=W.dtype))).pow(2).sum()

    assert ch08.check_orthogonal_penalty(right)
    with pytest.raises(ExerciseError, match="full"):
        ch08.check_orthogonal_penalty(lambda W, b: b * (W @ W.t() - torch.eye(W.shape[0], dtype=W.dtype)).pow(2).sum())
    with pytest.raises(ExerciseError, match="square"):
        ch08.check_orthogonal_penalty(lambda W, b: b * (W @ W.t() * (1 - torch.eye(W.shape[0], dtype=W.dtype))).norm())
    with pytest.raises(ExerciseError, match="W\\^T W"):
        ch08.check_orthogonal_penalty(lambda W, b: right(W.t(), b) if W.dim() == 2 else right(W, b))
    with pytest.raises(ExerciseError, match="(?i)flatten|reshape"):
        ch08.check_orthogonal_penalty(lambda W, b: right(W, b) if W.dim() == 2 else (W @ W.transpose(-1, -2)).sum())


def test_check_projection_output_accepts_the_right_answer_and_explains_mistakes():
    assert ch08.check_projection_output(lambda phi, e, psi: psi(phi).squeeze(1) + (e * phi).sum(1))
    with pytest.raises(ExerciseError, match=r"\(B, B\)"):
        ch08.check_projection_output(lambda phi, e, psi: psi(phi) + phi @ e.t())
    with pytest.raises(ExerciseError, match="unconditional"):
        ch08.check_projection_output(lambda phi, e, psi: (e * phi).sum(1))
    with pytest.raises(ExerciseError, match="ignores the class"):
        ch08.check_projection_output(lambda phi, e, psi: psi(phi).squeeze(1))


def test_attention_explorer_on_biggans_generator():
    """Chapter 07's explorer, imported by 08's lab, reads BigGAN's pooled attention block (16 x 16 queries, 8 x 8
    keys) and a click picks the query."""
    G, _ = small_pair(image_size=32)
    G.eval()
    z, y = torch.randn(2, G.z_dim), torch.tensor([0, 1])
    with torch.no_grad():
        images, maps = lab.attention_maps(G, z, y)
        share = lab.residual_share(G, z, y)
    (block,) = maps
    assert maps[block].shape == (2, 16 * 16, 8 * 8) and torch.allclose(maps[block].sum(-1), torch.ones(2, 256))
    assert share[block]["share"] == 0.0                       # gamma = 0 at init: the block adds nothing yet
    ex = lab.attention_explorer(images, {"G": maps[block]}, residual={"G": share[block]})
    ex.click({"relativeX": 10, "relativeY": 170, "boundingRectWidth": 176, "boundingRectHeight": 176})
    assert ex.state["values"]["x"] == 1 and ex.state["values"]["y"] == 30
    fig = ex.state["figure"]
    assert "cell (0, 15) of 16x16" in fig.axes[1].get_title() and "gamma = +0.000" in fig.texts[0].get_text()
