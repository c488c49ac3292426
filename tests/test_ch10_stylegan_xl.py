"""Chapter 10: Sauer, Schwarz & Geiger (2022), "StyleGAN-XL: Scaling StyleGAN to Large Diverse Datasets"
(arXiv 2202.00273).

The modulated convolution (grouped-conv implementation, demodulation keeps unit variance), truncation in W, the
mapping network's class embeddings and class-average w, progressive growing (layers added, old ones frozen), the
projected discriminator (frozen feature networks, the course CNN and a TinyViT, random mixing, trained heads), the
TinyViT's token maps and its cached training, classifier guidance, shapes, the chapter contract (``train_step(run,
G, D, batches, cfg)`` logs, updates both players, restores D's requires_grad, grows G with the step; the experiment
arms' loop is deterministic under a seed), the explorers headless, and the exercise checks.
"""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from gan_course import data
from gan_course.exercises import ExerciseError, ch10
from gan_course.lab import stylegan_xl as lab
from gan_course.layers import ModulatedConv2d, diff_augment
from gan_course.metrics import course_classifier, extract, train_classifier
from gan_course.metrics.tiny_vit import TinyViT, train_tiny_vit
from gan_course.models import stylegan_xl as xl
from gan_course.training import Batches, Run
from gan_course.viz import readability

CLASSES = [str(k) for k in range(20)]


def small_generator(seed: int = 0, **kwargs) -> xl.Generator:
    torch.manual_seed(seed)
    return xl.Generator(z_dim=16, n_classes=20, w_dim=32, widths=(32, 32, 16, 8), embed_dim=16, **kwargs)


@pytest.fixture(scope="module")
def classifier():
    return course_classifier("glyphs")


@pytest.fixture(scope="module")
def projected_D(classifier):
    torch.manual_seed(0)
    return xl.ProjectedDiscriminator(feature_networks=[xl.ClassifierPyramid(course_classifier("glyphs"))],
                                     n_classes=20, mix_channels=16, head_width=16)


# ----------------------------------------------------------------------------------------- modulated convolution
def test_modulated_conv_keeps_unit_variance_for_unit_input():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, style_dim=16)
    x, style = torch.randn(8, 64, 16, 16), torch.randn(8, 16) * 3
    y = conv(x, style).detach()[..., 1:-1, 1:-1]      # away from the zero padding
    assert abs(float(y.var()) - 1) < 0.1
    undemod = ModulatedConv2d(64, 32, 3, style_dim=16, demodulate=False)
    undemod.load_state_dict(conv.state_dict())
    assert abs(float(undemod(x, style).detach()[..., 1:-1, 1:-1].var()) - 1) > 0.5  # without demodulation: no such guarantee


def test_modulated_conv_equals_per_sample_conv_with_demodulated_weights():
    torch.manual_seed(1)
    conv = ModulatedConv2d(6, 5, 3, style_dim=4)
    x, style = torch.randn(3, 6, 7, 7), torch.randn(3, 4)
    s = conv.affine(style)
    w = ch10.reference_demodulation(conv.weight * conv.weight_gain, s, conv.eps)
    want = torch.cat([F.conv2d(x[b:b + 1], w[b], padding=1) for b in range(3)])
    assert torch.allclose(conv(x, style), want, atol=1e-5)
    assert torch.allclose(conv.affine.bias, torch.ones(6))   # affine bias initialised to 1
    norms = w.pow(2).sum(dim=(2, 3, 4))                       # each output filter: unit L2 norm
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


# ----------------------------------------------------------------------------------------- generator
def test_generator_shapes_and_stages():
    G = small_generator()
    z, c = torch.randn(3, 16), torch.tensor([0, 5, 19])
    assert G(z, c).shape == (3, 1, 32, 32) and G.num_ws == 10
    for stage, res in ((0, 8), (1, 16), (2, 32)):
        G.set_stage(stage)
        assert G(z, c).shape == (3, 1, res, res) and G.resolution == res
    with pytest.raises(ValueError, match="stage"):
        G.set_stage(3)
    with pytest.raises(ValueError, match="image_size"):
        xl.Generator(image_size=24)


def test_progressive_growing_adds_layers_and_freezes_old_ones():
    G = small_generator().set_stage(0)
    z, c = torch.randn(4, 16), torch.arange(4)
    used = {}
    for stage in range(3):
        if stage:
            G.grow()
        assert G.stage == stage
        for p in G.parameters():
            p.grad = None
        G(z, c).square().mean().backward()
        with_grad = {n for n, p in G.named_parameters() if p.grad is not None}
        used[stage] = {n for n in with_grad if n.startswith("synthesis.stages")}
        # the current stage and its toRGB train; earlier stages, the constant and earlier toRGBs are frozen
        for n, p in G.named_parameters():
            current = (f"synthesis.stages.{stage}.", f"synthesis.to_images.{stage}.") + (("synthesis.const",)
                                                                                          if stage == 0 else ())
            if n.startswith(current):
                assert p.requires_grad and p.grad is not None, n
            elif n.startswith("synthesis."):
                assert not p.requires_grad and p.grad is None, n
        assert any(n.startswith("mapping.") for n in with_grad)   # the mapping network keeps training
    assert len(used[1]) > 0 and len(used[2]) > 0 and used[1].isdisjoint(used[2])
    G.set_stage(2, freeze=False)  # no progressive growing: everything trains
    assert all(p.requires_grad for n, p in G.named_parameters()
               if not n.startswith(("synthesis.to_images.0", "synthesis.to_images.1")))


def test_frozen_stage_is_unchanged_by_training():
    G = small_generator().set_stage(1)
    before = {n: p.detach().clone() for n, p in G.synthesis.stages[0].named_parameters()}
    opt = torch.optim.Adam(G.parameters(), lr=1e-2)
    G(torch.randn(4, 16), torch.arange(4)).mean().backward()
    opt.step()
    assert all(torch.equal(before[n], p) for n, p in G.synthesis.stages[0].named_parameters())


def test_truncation_toward_class_average():
    w, w_avg = torch.randn(5, 8), torch.randn(5, 8)
    assert torch.equal(xl.truncate(w, w_avg, 0.0), w_avg)
    assert torch.equal(xl.truncate(w, w_avg, 1.0), w)
    assert torch.allclose(xl.truncate(w, w_avg, 0.5), (w + w_avg) / 2)
    G = small_generator()
    G.mapping.w_avg_c.copy_(torch.randn(20, 32))
    z, c = torch.randn(4, 16), torch.tensor([1, 1, 7, 3])
    w0 = G.mapping(z, c, psi=0.0)
    assert torch.allclose(w0, G.mapping.w_avg_c[c])
    assert torch.equal(G.mapping(z, c, psi=1.0), G.mapping(z, c))


def test_w_avg_tracks_the_class_means():
    G = small_generator()
    m = G.mapping
    m.w_avg_beta = 0.0   # no memory: w_avg_c becomes this batch's class means
    w, c = torch.randn(6, 32), torch.tensor([0, 0, 3, 3, 3, 9])
    m.update_w_avg(w, c)
    assert torch.allclose(m.w_avg_c[0], w[:2].mean(0)) and torch.allclose(m.w_avg_c[3], w[2:5].mean(0))
    assert torch.equal(m.w_avg_c[1], torch.zeros(32))          # absent classes are left alone
    assert torch.allclose(m.w_avg, m.w_avg_c.mean(0))


def test_pretrained_class_embeddings_initialise_the_table(classifier):
    ds = data.load("glyphs", split="test", image_size=32)
    feats = xl.class_embeddings_from_classifier(classifier, ds, n_per_class=8)
    assert feats.shape == (20, 128)
    k = 13
    idx = torch.nonzero(torch.as_tensor(ds.targets) == k).flatten()
    # the classifier's own features separate the classes: each class's mean is nearest to its own images
    dist = torch.cdist(classifier.features(ds.get_batch(idx[:20])[0]), feats)
    assert (dist.argmin(1) == k).float().mean() > 0.8
    G = small_generator(class_features=feats)
    assert torch.equal(G.mapping.embed.weight.detach(), feats) and G.mapping.embed.weight.requires_grad
    with pytest.raises(ValueError, match="one per class"):
        small_generator(class_features=feats[:5])


def test_noise_inputs_and_determinism():
    G = small_generator()
    for layer in G.modules():
        if isinstance(layer, xl.SynthesisLayer):
            layer.noise_strength.data.fill_(0.5)
    z, c = torch.randn(2, 16), torch.tensor([2, 4])
    with torch.no_grad():
        assert torch.equal(G(z, c, noise_mode="const"), G(z, c, noise_mode="const"))
        assert not torch.equal(G(z, c, noise_mode="random"), G(z, c, noise_mode="random"))
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, c, noise_mode="other")
    a = xl.sample(small_generator(seed=3), torch.arange(4), psi=0.7, seed=5)
    b = xl.sample(small_generator(seed=3), torch.arange(4), psi=0.7, seed=5)
    assert torch.equal(a, b) and a.abs().max() <= 1


def test_style_mixing_crossover_ends():
    G = small_generator()
    z_a, z_b, c = torch.randn(2, 16), torch.randn(2, 16), torch.tensor([0, 1])
    assert torch.allclose(lab.mix_styles(G, z_a, z_b, c, 0), xl.sample(G, c, z=z_b))
    assert torch.allclose(lab.mix_styles(G, z_a, z_b, c, G.num_ws), xl.sample(G, c, z=z_a))
    mid = lab.mix_styles(G, z_a, z_b, c, 4)
    assert not torch.allclose(mid, xl.sample(G, c, z=z_a)) and not torch.allclose(mid, xl.sample(G, c, z=z_b))


# ----------------------------------------------------------------------------------------- discriminators
def test_projected_discriminator_feature_networks_are_frozen_heads_train(projected_D):
    D = projected_D.train()
    x, c = torch.randn(4, 1, 32, 32, requires_grad=True), torch.arange(4)
    logits = D(x, c)
    assert logits.ndim == 2 and logits.shape[0] == 4
    logits.mean().backward()
    frozen = list(D.features.parameters()) + list(D.ccm.parameters()) + list(D.csm.parameters())
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen)
    heads = D.trainable_parameters()
    assert heads and all(p.requires_grad and p.grad is not None for p in heads)
    assert {id(p) for p in heads} == {id(p) for p in D.parameters() if p.requires_grad}
    assert x.grad is not None and x.grad.abs().sum() > 0          # G still learns through the frozen network
    assert all(not m.training for net in D.features for m in net.modules())        # frozen batch norm stays in eval mode
    for p in D.parameters():
        p.grad = None


def test_projected_discriminator_feature_pyramid(projected_D, classifier):
    D = projected_D.eval()
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    pyramid = D.features[0]
    assert pyramid.out_channels == [32, 64, 128] and pyramid.out_sizes == [14, 7, 3]
    with torch.no_grad():
        feats = pyramid(x)
        pooled = feats[-1].mean(dim=(2, 3))
        assert torch.allclose(pooled, classifier.features(x), atol=1e-4)   # the same network as the metrics
        Q = D.mixed_features(x)
    assert [q.shape[1:] for q in Q] == [(16, 14, 14), (16, 7, 7), (16, 3, 3)]
    with torch.no_grad():    # cross-scale mixing: the finest scale depends on the coarsest features
        P_top = D.ccm[0][2](feats[2])
        assert not torch.allclose(Q[0], D.ccm[0][0](feats[0]))
        assert torch.equal(Q[2], P_top)


def small_vit(seed: int = 0) -> TinyViT:
    torch.manual_seed(seed)
    return TinyViT(channels=1, n_classes=20, dim=16, depth=3, heads=2)


def test_tiny_vit_logits_and_token_maps():
    vit = small_vit().eval()
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    assert vit(x).shape == (3, 20) and vit.grid == 8
    maps = vit.token_maps(x, (1, 3))
    assert [tuple(m.shape) for m in maps] == [(3, 16, 8, 8), (3, 16, 8, 8)]
    # the map is the patch tokens in raster order: token 1 + (row * 8 + col) is pixel (row, col) of the map
    tokens = vit._tokens(x, 3)[-1]
    assert torch.equal(maps[1][:, :, 2, 5], tokens[:, 1 + 2 * 8 + 5])
    assert vit(torch.rand(2, 1, 16, 16)).shape == (2, 20)       # other sizes are resized to 32 x 32
    # features: the head's input, so the logits are the head of the features; extract() embeds with them
    f = vit.features(x)
    assert f.shape == (3, 16) and not f.requires_grad
    assert torch.allclose(vit.head(f), vit(x), atol=1e-6)
    assert torch.allclose(extract(vit, x, batch_size=2), f, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of the patch"):
        TinyViT(image_size=30)
    with pytest.raises(ValueError, match="layers"):
        xl.ViTPyramid(vit, (0, 4))


def test_heads_are_conditioned_on_the_pretrained_class_embeddings_when_given():
    torch.manual_seed(0)
    features = torch.randn(20, 12)
    pyramid = lambda: [xl.ClassifierPyramid(course_classifier("glyphs"))]  # noqa: E731
    D = xl.ProjectedDiscriminator(feature_networks=pyramid(), n_classes=20, mix_channels=8, head_width=8,
                                  class_features=features)
    for head in D.heads[0]:                  # every head starts from its own trainable copy of the table
        assert head.pretrained_embeddings and torch.equal(head.embed.weight, features)
        assert head.embed.weight.requires_grad and head.embed.weight.data_ptr() != features.data_ptr()
        assert head.embed_proj[0].in_features == 12 and head.embed_proj[0].out_features == head.width
    rand = xl.ProjectedDiscriminator(feature_networks=pyramid(), n_classes=20, mix_channels=8, head_width=8,
                                     embed_dim=12)                   # the random arm: same widths, random table
    assert [p.shape for p in D.trainable_parameters()] == [p.shape for p in rand.trainable_parameters()]
    assert not any(h.pretrained_embeddings for h in rand.heads[0])
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    D.eval()
    assert not torch.allclose(D(x, torch.tensor([0, 0, 0])), D(x, torch.tensor([1, 2, 3])))   # the class matters
    with pytest.raises(ValueError, match="one per class"):
        xl.ProjectedDiscriminator(feature_networks=pyramid(), n_classes=20, class_features=torch.randn(19, 12))


def test_projected_discriminator_with_vit_features_frozen_heads_train():
    vit = small_vit()
    pyramid = xl.ViTPyramid(vit, (1, 3))
    assert pyramid.out_channels == [16, 16] and pyramid.out_sizes == [8, 8]
    torch.manual_seed(0)
    D = xl.ProjectedDiscriminator(feature_networks=[xl.ClassifierPyramid(course_classifier("glyphs")), pyramid],
                                  n_classes=20, mix_channels=8, head_width=8).train()
    assert len(D.heads[0]) == 3 and len(D.heads[1]) == 2
    opt = torch.optim.Adam(D.trainable_parameters(), lr=1e-2)
    held = {id(p) for group in opt.param_groups for p in group["params"]}
    vit_params = list(vit.parameters())
    assert vit_params and all(not p.requires_grad for p in vit_params) and held.isdisjoint(map(id, vit_params))
    before = [p.detach().clone() for p in vit_params]
    heads_before = [p.detach().clone() for p in D.heads[1].parameters()]
    x, c = torch.rand(4, 1, 32, 32, requires_grad=True), torch.arange(4)
    D(x * 2 - 1, c).mean().backward()
    assert all(p.grad is None for p in vit_params)
    assert all(p.grad is not None for p in D.heads[1].parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0           # G learns through the frozen ViT
    opt.step()
    assert all(torch.equal(a, p) for a, p in zip(before, vit_params, strict=True))
    assert any(not torch.equal(a, p) for a, p in zip(heads_before, D.heads[1].parameters(), strict=True))
    assert not vit.training and all(not m.training for m in pyramid.modules())   # frozen: eval mode under D.train()
    with torch.no_grad():       # the ViT's maps go through their own mixing: Q of network 1 has two 8 x 8 maps
        assert [tuple(q.shape[1:]) for q in D.mixed_features(x, 1)] == [(8, 8, 8), (8, 8, 8)]


def test_train_tiny_vit_learns_and_is_cached(tmp_build):
    ds = data.load("glyphs", split="test", image_size=32)
    kwargs = dict(steps=30, batch_size=32, lr=3e-3, name="vit-test", n_test=200, dim=16, depth=1, heads=2)
    vit, accuracy, run = train_tiny_vit(ds, ds, **kwargs)
    losses = run.history.values("loss")
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < sum(losses[:5]) / 5     # it learns
    assert 0.0 <= accuracy <= 1.0 and accuracy == train_classifier.accuracy(vit, ds, limit=200)
    assert not vit.training and not any(p.requires_grad for p in vit.parameters())
    assert (tmp_build / "runs" / "vit-test" / "checkpoint.pt").exists()
    again, accuracy_again, run_again = train_tiny_vit(ds, ds, **kwargs)      # a re-run loads, does not train
    assert run_again.resumed and run_again.step == 30 and accuracy_again == accuracy
    assert all(torch.equal(a, b) for a, b in zip(vit.state_dict().values(), again.state_dict().values(), strict=True))


def test_standard_discriminator_shapes():
    D = lab.StandardDiscriminator(n_classes=20, width=16)
    assert D(torch.randn(3, 1, 16, 16), torch.arange(3)).shape[0] == 3


def small_cfg(**kwargs) -> xl.Config:
    """The paper's Config at the tests' sizes: stage 1 (16 x 16) from step 0, lr 1e-3."""
    return xl.Config(**{**dict(z_dim=16, w_dim=32, mix_channels=8, stage_steps=(0,), lr_G=1e-3, lr_D=1e-3),
                        **kwargs})


def small_projected_D(cfg: xl.Config) -> xl.ProjectedDiscriminator:
    return xl.ProjectedDiscriminator(feature_networks=[xl.ClassifierPyramid(course_classifier("glyphs"))],
                                     n_classes=20, mix_channels=cfg.mix_channels, head_width=8, augment=cfg.augment)


def test_train_step_with_guidance_is_deterministic(tmp_build, classifier):
    ds = data.load("glyphs", split="test", image_size=32)
    cfg = small_cfg(lambda_cg=0.5, guidance_from=16)                  # guide at the tests' 16 x 16

    def one_run():
        torch.manual_seed(0)
        G = small_generator()
        D = small_projected_D(cfg)
        run = Run("t", {"G": G, "D": D}, xl.optimizers(G, D, cfg), root=tmp_build / "t", resume=False,
                  progress=False)
        b = Batches(ds, 8, seed=0)
        frozen = [p.detach().clone() for p in D.features.parameters()]
        torch.manual_seed(1)
        logs = [xl.train_step(run, G, D, b, cfg, classifier=classifier) for _ in range(2)]
        assert all(torch.equal(a, p) for a, p in zip(frozen, D.features.parameters(), strict=True))
        assert all(p.requires_grad for p in D.trainable_parameters())
        return logs, G
    (logs_a, G_a), (logs_b, _) = one_run(), one_run()
    assert all(float(la[k]) == float(lb[k]) for la, lb in zip(logs_a, logs_b, strict=True) for k in la)
    assert float(logs_a[-1]["loss_cg"]) > 0
    assert G_a.mapping.w_avg_c.abs().sum() > 0    # w's class averages are tracked
    assert G_a.stage == 1 and logs_a[-1]["resolution"] == 16      # stage_steps=(0,): stage 1 from step 0


def test_guidance_waits_for_the_super_resolution_stages(tmp_build):
    ds = data.load("glyphs", split="test", image_size=32)
    cfg = small_cfg(lambda_cg=0.5)                                      # the paper's gate: from 32 x 32
    assert cfg.guidance_from == xl.GUIDANCE_FROM == 32
    torch.manual_seed(0)
    G, D = small_generator(), small_projected_D(cfg)
    run = Run("t", {"G": G, "D": D}, xl.optimizers(G, D, cfg), root=tmp_build / "t", resume=False, progress=False)

    class Untouchable:                                                  # a classifier that must not be called
        def __getattr__(self, name):
            raise AssertionError(f"classifier.{name} used at {G.resolution} x {G.resolution}")
    logs = xl.train_step(run, G, D, Batches(ds, 8, seed=0), cfg, classifier=Untouchable())
    assert logs["resolution"] == 16 and float(logs["loss_cg"]) == 0


def test_train_step_logs_updates_both_players_and_restores_requires_grad(tmp_build):
    ds = data.load("glyphs", split="test", image_size=32)
    cfg = small_cfg(lambda_cg=0.0)
    torch.manual_seed(0)
    G, D = small_generator(), small_projected_D(small_cfg())
    run = Run("t", {"G": G, "D": D}, xl.optimizers(G, D, cfg), root=tmp_build / "t", resume=False, progress=False)
    G_before = {n: p.detach().clone() for n, p in G.named_parameters()}
    heads_before = [p.detach().clone() for p in D.trainable_parameters()]
    features_before = [p.detach().clone() for p in D.features.parameters()]
    logs = xl.train_step(run, G, D, Batches(ds, 8, seed=0), cfg)    # no classifier needed without guidance
    assert list(logs) == ["loss_D", "loss_G", "loss_cg", "D_real", "D_fake", "resolution"]
    assert all(not v.requires_grad for k, v in logs.items() if torch.is_tensor(v)) and float(logs["loss_cg"]) == 0
    assert float(logs["loss_D"]) >= 0                                  # a hinge loss
    # G's mapping and its active stage moved; D's heads moved; the frozen feature network did not
    assert any(not torch.equal(G_before[n], p) for n, p in G.named_parameters() if n.startswith("mapping."))
    assert any(not torch.equal(G_before[n], p) for n, p in G.named_parameters()
               if n.startswith("synthesis.stages.1."))
    assert all(torch.equal(G_before[n], p) for n, p in G.named_parameters() if n.startswith("synthesis.stages.2."))
    assert any(not torch.equal(a, p) for a, p in zip(heads_before, D.trainable_parameters(), strict=True))
    assert all(torch.equal(a, p) for a, p in zip(features_before, D.features.parameters(), strict=True))
    # D's requires_grad after G's step: the heads train again, the feature network and the mixing stay frozen
    assert all(p.requires_grad for p in D.trainable_parameters())
    assert not any(p.requires_grad for p in list(D.features.parameters()) + list(D.ccm.parameters()))
    with pytest.raises(ValueError, match="classifier"):
        xl.train_step(run, G, D, Batches(ds, 8, seed=0), small_cfg(lambda_cg=0.3))


def test_stage_follows_the_step_and_config_checks_its_values():
    cfg = small_cfg(stage_steps=(2, 3))
    assert [xl.stage_at(s, cfg, 3) for s in (0, 1, 2, 4, 5, 100)] == [0, 0, 1, 1, 2, 2]
    assert xl.stage_at(0, dataclasses.replace(cfg, progressive=False), 3) == 2
    assert xl.Config().z_dim == 64 and xl.Config().mapping_layers == 2 and xl.Config().betas == (0.0, 0.99)
    for bad, match in ((dict(lr_G=0), "lr_G"), (dict(betas=(0.5, 1.0)), "betas"), (dict(feature_nets=("dino",)),
                       "feature_nets"), (dict(lambda_cg=-1), "lambda_cg"), (dict(augment=0.6), "augment"),
                       (dict(z_dim=0), "z_dim"), (dict(stage_steps=(-1,)), "stage_steps"),
                       (dict(guidance_from=0), "guidance_from")):
        with pytest.raises(ValueError, match=match):
            xl.Config(**bad)


def test_train_arm_grows_g_and_is_deterministic_under_a_seed(tmp_build, classifier):
    ds = data.load("glyphs", split="test", image_size=32)
    cfg = small_cfg(stage_steps=(1, 1), lambda_cg=0.2)

    def make_generator(cfg):
        return xl.Generator(z_dim=cfg.z_dim, n_classes=20, w_dim=cfg.w_dim, widths=(16, 16, 8, 8), embed_dim=16,
                            mapping_layers=cfg.mapping_layers)

    def arm(name):
        return lab.train_arm(name, cfg, make_generator, small_projected_D, ds, steps=3, batch_size=8, seed=0,
                             device="cpu", classifier=classifier, config=dataclasses.asdict(cfg), keep_at=2)
    G_a, _, run_a = arm("arm-a")
    G_b, _, run_b = arm("arm-b")
    assert run_a.history.values("resolution") == [8, 16, 32]           # progressive growing, step by step
    assert run_a.history.as_dict() == run_b.history.as_dict()          # the same seed: the same run, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(G_a.state_dict().values(), G_b.state_dict().values(), strict=True))
    assert lab.snapshot_path(run_a, 2).exists()
    _, _, again = arm("arm-a")                                         # a re-run resumes: nothing left to train
    assert again.resumed and again.step == 3


def test_sample_is_eval_mode_through_generate_and_restores_the_mode():
    G = small_generator()
    z, c = torch.randn(3, 16), torch.tensor([0, 4, 9])
    with torch.no_grad():
        want = G(z, c, 0.5, "const").clamp(-1, 1)
    assert torch.equal(xl.sample(G, c, psi=0.5, z=z), want) and G.training
    G.eval()
    batched = xl.sample(G, c, psi=0.5, z=z, batch_size=2)      # in batches of 2 (grouped convs: rounding differs)
    assert torch.allclose(batched, want, atol=1e-5) and not G.training
    assert torch.equal(lab.sampler(G, psi=0.5, seed=3)(4), xl.sample(G, torch.arange(4), 0.5, 3))


def test_classifier_logits_have_gradients(classifier):
    x = torch.zeros(2, 1, 32, 32, requires_grad=True)
    logits = xl.classifier_logits(classifier, x)
    assert torch.allclose(logits.detach(), classifier.logits(x.detach()), atol=1e-5)
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is None for p in classifier.parameters())


def test_diff_augment_translates_within_bounds():
    x = torch.full((4, 1, 8, 8), -1.0)
    x[:, :, 3:5, 3:5] = 1.0
    y = diff_augment(x, 0.25, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.equal((y == 1).sum(dim=(1, 2, 3)), torch.full((4,), 4))
    assert torch.equal(diff_augment(x, 0.0), x)


def test_within_class_spread_and_truncation_to_zero(classifier):
    G = small_generator()
    c = torch.arange(40) % 20
    assert lab.within_class_spread(classifier, xl.sample(G, c, psi=0.0, seed=1), c) < 1e-6   # psi = 0: one image
    untruncated = lab.within_class_spread(classifier, xl.sample(G, c, psi=1.0, seed=1), c)
    assert untruncated > 0
    images = torch.rand(40, 1, 32, 32) * 2 - 1
    assert lab.within_class_spread(classifier, images, torch.zeros(40, dtype=torch.long)) > 0


def test_recognised_spread_counts_only_recognised_variety(classifier):
    real = data.load("glyphs", split="test", image_size=32)
    x, y = real.get_batch(torch.arange(400))[:2]
    y = torch.as_tensor(y)
    spread = lab.recognised_spread(classifier, x, y, 20)
    assert spread > 0 and spread == pytest.approx(lab.within_class_spread(classifier, x, y), rel=0.1)
    noise = torch.rand(400, 1, 32, 32) * 2 - 1          # far apart in any feature space, recognised as nothing
    assert lab.recognised_spread(classifier, noise, y, 20) < 0.2 * spread < lab.within_class_spread(classifier, noise, y)
    first = torch.tensor([int(torch.nonzero(y == k)[0]) for k in range(20)])
    copies = x[first[y]]                                 # every image of a class the same glyph: collapse
    assert lab.recognised_spread(classifier, copies, y, 20) < 1e-6
    half = y < 10                                        # ten classes never drawn add nothing
    assert lab.recognised_spread(classifier, x[half], y[half], 20) == pytest.approx(
        lab.recognised_spread(classifier, x[half], y[half], 10) / 2, rel=1e-5)
    assert lab.recognised_spread(classifier, x, (y + 1) % 20, 20) < 0.2 * spread    # the wrong classes


# ----------------------------------------------------------------------------------------- explorers
def fake_sweep(judge):
    return [dict(psi=p, fid=10 - 5 * p, precision=1 - 0.3 * p, recall=0.2 + 0.5 * p, classes_covered=20,
                 agreement=1.0, variety=0.8 * p, agreement_by_class=[0.9 - 0.01 * k - 0.2 * p for k in range(20)],
                 variety_by_class=[0.5 * p + 0.01 * k for k in range(20)], real_spread_by_class=[2.0] * 20,
                 judge=judge.description, dataset="glyphs", per_class_n=10) for p in (0.0, 0.5, 1.0)]


def test_class_truncation_explorer_shows_the_exact_psi_and_the_class_curve(classifier):
    G = small_generator()
    sweep = fake_sweep(classifier)
    ex = lab.class_truncation_explorer(G, sweep, CLASSES, n=4, judge=classifier)
    assert ex.state["renders"] == 1 and ex.state["figure"] is not None
    ex.controls["c"].value = 7
    ex.controls["psi"].value = 0.65                      # between the swept 0.5 and 1.0: not snapped
    assert ex.state["values"]["c"] == 7 and ex.state["values"]["psi"] == 0.65 and ex.state["renders"] == 3
    fig = ex.state["figure"]
    image_ax, curve_ax, fid_ax = fig.axes
    assert "class '7', psi = 0.65" in image_ax.get_title()
    lines = {line.get_label(): line for line in curve_ax.lines}
    assert list(lines["class '7'"].get_ydata()) == [r["agreement_by_class"][7] for r in sweep]   # its own curve
    assert list(lines["class '7'"].get_xdata()) == [r["variety_by_class"][7] for r in sweep]
    star = lines["psi = 0.65, 10 samples now"]
    images = xl.sample(G, torch.full((10,), 7), 0.65, 0)
    agreement, spread = lab.class_scores(classifier, images, torch.full((10,), 7), 20)
    assert star.get_ydata()[0] == pytest.approx(agreement[7]) and star.get_xdata()[0] == pytest.approx(spread[7] / 2)
    marker, = [line for line in fid_ax.lines if line.get_label() == "psi = 0.65"]
    assert list(marker.get_xdata()) == [0.65, 0.65]                     # the exact psi, not the nearest swept
    assert readability(fig)["readable"], readability(fig)
    with pytest.raises(ValueError, match="pass that network"):
        lab.render_class_truncation(G, sweep, CLASSES, 0, 0.5, judge=TinyViT())
    with pytest.raises(ValueError, match="truncation_sweep"):
        lab.render_class_truncation(G, [dict(psi=0.5, fid=1.0)], CLASSES, 0, 0.5)


def test_class_scores_per_class(classifier):
    glyphs = data.load("glyphs")
    x, y = glyphs.get_batch(torch.arange(400))[:2]
    agreement, spread = lab.class_scores(classifier, x, y, 20)
    assert len(agreement) == len(spread) == 20 and min(agreement) > 0.8      # real glyphs: recognised
    copies = x[torch.tensor([int(torch.nonzero(y == k)[0]) for k in range(20)])[y]]
    assert max(lab.class_scores(classifier, copies, y, 20)[1]) < 1e-6        # one image per class: no spread
    assert math.isnan(lab.class_scores(classifier, x[y < 10], y[y < 10], 20)[0][15])   # a class never drawn


def test_style_mixing_and_interpolation_explorers_render_headless():
    G = small_generator()
    mix = lab.style_mixing_explorer(G, CLASSES, n=3)
    mix.controls["crossover"].value = 2
    assert mix.state["renders"] == 2 and "layers < 2" in mix.state["figure"].axes[0].get_title()
    interp = lab.interpolation_explorer(G, CLASSES, steps=4)
    interp.controls["space"].value = "Z"
    assert interp.state["renders"] == 2 and "linear in Z" in interp.state["figure"].axes[0].get_title()
    with pytest.raises(ValueError, match="space"):
        lab.render_interpolation(G, CLASSES, 0, 1, 0, 1, space="X")


# ----------------------------------------------------------------------------------------- exercises
def test_check_demodulation_accepts_the_answer_and_explains_mistakes(capsys):
    assert ch10.check_demodulation(ch10.reference_demodulation)
    assert "passed" in capsys.readouterr().out

    def einsum_norm(weight, s, eps):                                   # another correct formulation
        w = torch.einsum("oikl,bi->boikl", weight, s)
        return w / (w.flatten(2).norm(dim=2)[:, :, None, None, None] ** 2 + eps).sqrt()

    assert ch10.check_demodulation(einsum_norm)

    def no_demod(weight, s, eps):
        return weight.unsqueeze(0) * s[:, None, :, None, None]

    def no_mod(weight, s, eps):
        return ch10.reference_demodulation(weight, torch.ones_like(s), eps)

    def wrong_axis(weight, s, eps):
        w = weight.unsqueeze(0) * s[:, None, :, None, None]
        return w / (w.pow(2).sum(dim=2, keepdim=True) + eps).sqrt()

    def stub(weight, s, eps):
        raise NotImplementedError

    for fn, match in ((no_demod, "did not demodulate"), (no_mod, "do not depend on the styles"),
                      (wrong_axis, "input channels only"), (stub, "NotImplementedError")):
        with pytest.raises(ExerciseError, match=match):
            ch10.check_demodulation(fn)


def test_check_truncation_accepts_the_answer_and_explains_mistakes():
    assert ch10.check_truncation(lambda w, w_avg, psi: w_avg + psi * (w - w_avg))
    assert ch10.check_truncation(xl.truncate)
    for fn, match in ((lambda w, w_avg, psi: psi * w, "toward 0"),
                      (lambda w, w_avg, psi: w_avg + psi * (w_avg - w), "away from w_avg"),
                      (lambda w, w_avg, psi: psi * (w - w_avg), "add w_avg back"),
                      (lambda w, w_avg, psi: None, "None")):
        with pytest.raises(ExerciseError, match=match):
            ch10.check_truncation(fn)


def test_check_class_average_update_accepts_the_answer_and_explains_mistakes():
    from gan_course.models.stylegan_xl import MappingNetwork

    def like_the_library(w_avg_c, w, c, beta):       # the mapping network's own update, on a copy
        f = MappingNetwork(n_classes=w_avg_c.shape[0], w_dim=w_avg_c.shape[1], w_avg_beta=beta)
        f.w_avg_c.copy_(w_avg_c)
        f.update_w_avg(w.float(), c)
        return f.w_avg_c.clone().double()

    def by_torch_lerp(w_avg_c, w, c, beta):
        new = w_avg_c.clone()
        for k in c.unique():
            new[k] = torch.lerp(w[c == k].mean(0), w_avg_c[k], beta)
        return new

    assert ch10.check_class_average_update(ch10.reference_class_average_update)
    assert ch10.check_class_average_update(by_torch_lerp)
    assert ch10.check_class_average_update(lambda a, w, c, beta: like_the_library(a, w, c, beta))

    def global_mean(w_avg_c, w, c, beta):
        return w.mean(0) + beta * (w_avg_c - w.mean(0))

    def beta_swapped(w_avg_c, w, c, beta):
        return ch10.reference_class_average_update(w_avg_c, w, c, 1 - beta)

    def absent_to_zero(w_avg_c, w, c, beta):
        new = w_avg_c.clone()
        for k in range(w_avg_c.shape[0]):
            mean = w[c == k].mean(0) if (c == k).any() else torch.zeros_like(w_avg_c[k])
            new[k] = mean + beta * (w_avg_c[k] - mean)
        return new

    def in_place(w_avg_c, w, c, beta):
        w_avg_c.copy_(ch10.reference_class_average_update(w_avg_c, w, c, beta))
        return w_avg_c

    for wrong, message in [(global_mean, "whole batch"), (beta_swapped, "keep 90%"), (absent_to_zero, "no sample"),
                           (in_place, "changed the w_avg_c")]:
        with pytest.raises(ExerciseError, match=message):
            ch10.check_class_average_update(wrong)
