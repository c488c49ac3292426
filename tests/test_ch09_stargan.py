"""Chapter 09: Choi et al. (2018), "StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image
Translation" (arXiv 1711.09020).

Label tiling, the generator (shape, range, instance norm with affine parameters, the label matters), the two-headed
PatchGAN discriminator without normalisation, the loss terms on hand-made inputs, the mask vector of Sec. 3.2, the
update step ``train_step(run, G, D, batches, cfg)`` (what it logs and updates, G every n_critic-th iteration, D
unfrozen afterwards, determinism under a seed) and its batches, the evaluation numbers (``gan_course.lab.stargan``),
the explorers headless and the exercise checks.
"""

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_course.data.base import TensorImageDataset
from gan_course.exercises import ExerciseError, ch09
from gan_course.lab import stargan as L
from gan_course.losses import gradient_penalty
from gan_course.models import stargan as S
from gan_course.training import Batches, Run
from gan_course.viz import readability

FAMILIES = ("sans", "serif")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: see conftest.one_thread


def _domains_dataset(n=24, size=16, seed=0):
    """A toy domain-labelled dataset shaped like ``load_domains`` (labels [bold, italic, sans, serif])."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
    domains = S.all_domains(FAMILIES)
    c = domains[torch.arange(n) % len(domains)]
    ds = TensorImageDataset(images, torch.arange(n) % 3, ["A", "B", "C"], views={"domain": c}, target="domain",
                            name="toy-domains")
    ds.domain_names, ds.families = S.domain_names(FAMILIES), FAMILIES
    return ds


class _ConstantContent(nn.Module):
    """A stand-in content classifier with the course classifier's ``logits`` method: always class 0."""

    def logits(self, x):
        out = torch.zeros(len(x), 3)
        out[:, 0] = 1
        return out


# ----------------------------------------------------------------------------------------- labels
def test_tile_labels_replicates_each_label_over_the_image():
    c = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, -1.0]])
    t = S.tile_labels(c, 4, 6)
    assert t.shape == (2, 3, 4, 6)
    assert torch.equal(t[:, :, 2, 5], c) and torch.equal(t[:, :, 0, 0], c)
    assert t.flatten(2).std(2).max() == 0
    x = torch.randn(2, 1, 4, 6)
    inp = S.concat_labels(x, c)
    assert inp.shape == (2, 4, 4, 6) and torch.equal(inp[:, :1], x) and torch.equal(inp[:, 1:], t)


def test_domain_labels_pick_bold_italic_and_the_families_from_the_attribute_vector():
    # [bold, italic, one-hot of sans, serif, mono, stix, cm, cm-sans, cm-mono]
    attributes = torch.tensor([[1, 0, 0, 1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0, 0]], dtype=torch.float32)
    assert L.domain_labels(attributes, ("sans", "serif")).tolist() == [[1, 0, 0, 1], [0, 1, 1, 0]]
    assert L.domain_labels(attributes, ("serif",)).tolist() == [[1, 0, 1], [0, 1, 0]]
    domains = S.all_domains(FAMILIES)
    assert domains.shape == (8, 4) and len({tuple(r) for r in domains.tolist()}) == 8
    assert (domains[:, 2:].sum(1) == 1).all()                                # exactly one family per domain
    assert L.describe(torch.tensor([1.0, 1, 0, 1]), S.domain_names(FAMILIES)) == "serif bold italic"
    assert L.cost_of_pairwise_models(5) == 20


def test_shuffled_labels_are_a_permutation_of_the_batch_labels_and_seeded():
    c = S.all_domains(FAMILIES)
    a = S.shuffled_labels(c, torch.Generator().manual_seed(1))
    b = S.shuffled_labels(c, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, c.tolist()))


# ----------------------------------------------------------------------------------------- networks
def test_generator_output_shape_range_and_it_reads_the_label():
    torch.manual_seed(0)
    G = S.Generator(c_dim=4, conv_dim=8, repeat_num=2)
    x = torch.randn(3, 1, 16, 16)
    c1, c2 = S.all_domains(FAMILIES)[:3], S.all_domains(FAMILIES)[5:8]
    y = G(x, c1)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert not torch.allclose(G(x, c1), G(x, c2))                      # a different target, a different output
    assert G.main[0].in_channels == 1 + 4                               # image + tiled labels
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(m.affine for m in norms)                      # instance norm with affine parameters
    assert sum(isinstance(m, S.ResidualBlock) for m in G.modules()) == 2
    with pytest.raises(ValueError, match="target_labels"):
        G(x, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="divisible by 4"):
        G(torch.randn(1, 1, 18, 18), torch.zeros(1, 4))


def test_generator_upsampling_choices():
    torch.manual_seed(0)
    x, c = torch.randn(2, 1, 16, 16), S.all_domains(FAMILIES)[:2]
    paper = S.Generator(c_dim=4, conv_dim=8, repeat_num=1)
    resize = S.Generator(c_dim=4, conv_dim=8, repeat_num=1, upsample="nearest")
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in paper.modules()) == 2            # Table 4
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in resize.modules())
    assert sum(isinstance(m, nn.Upsample) and m.mode == "nearest" for m in resize.modules()) == 2
    assert resize(x, c).shape == paper(x, c).shape == x.shape
    with pytest.raises(ValueError, match="upsample must be one of .*transposed.*nearest.*got 'bilinear'"):
        S.Generator(c_dim=4, upsample="bilinear")


def test_residual_generator_starts_as_the_identity_and_stays_in_range():
    torch.manual_seed(0)
    G = S.Generator(c_dim=4, conv_dim=8, repeat_num=1, residual=True)
    assert not any(isinstance(m, nn.Tanh) for m in G.modules())
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    c1, c2 = S.all_domains(FAMILIES)[:3], S.all_domains(FAMILIES)[5:8]
    assert torch.equal(G(x, c1), x)                                     # r = 0 at the start: G(x, c) = x
    with torch.no_grad():
        G.main[-1].weight.normal_(0, 1.0)                               # some learned change r(x, c)
    y = G(x, c1)
    assert y.min() >= -1 and y.max() <= 1 and not torch.equal(y, x)
    assert not torch.allclose(y, G(x, c2))


def test_discriminator_has_two_heads_on_one_body_and_no_normalisation():
    D = S.Discriminator(c_dim=5, image_size=32, conv_dim=8, repeat_num=3)
    out_src, out_cls = D(torch.randn(4, 1, 32, 32))
    assert out_src.shape == (4, 1, 4, 4)                                # a patch map (D_src)
    assert out_cls.shape == (4, 5)                                      # one logit per label (D_cls)
    assert D.conv_cls.kernel_size == (4, 4)                             # the kernel covers the whole last map
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.LayerNorm, nn.GroupNorm))
                   for m in D.modules())
    slopes = {m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.01}
    assert S.Discriminator(c_dim=3, image_size=28, conv_dim=8)(torch.randn(2, 1, 28, 28))[0].shape == (2, 1, 3, 3)


def test_discriminator_translation_shifts_inputs_in_training_only():
    torch.manual_seed(0)
    D = S.Discriminator(c_dim=4, channels=1, image_size=16, conv_dim=4, repeat_num=2, translation=0.25)
    plain = S.Discriminator(c_dim=4, channels=1, image_size=16, conv_dim=4, repeat_num=2)
    plain.load_state_dict(D.state_dict())                                # the same weights, no shifts
    x = (torch.rand(6, 1, 16, 16) * 2 - 1).requires_grad_()
    a, b = D(x)[1], D(x)[1]
    assert not torch.allclose(a, b)                                       # a fresh random shift per call
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0                  # differentiable: G learns through it
    D.eval()
    assert torch.equal(D(x)[1], plain(x)[1]) and torch.equal(D(x)[0], plain(x)[0])   # eval: the image as it is
    with pytest.raises(ValueError, match=r"translation must be .* \[0, 0.5\), got 0.6"):
        S.Discriminator(c_dim=4, translation=0.6)


def test_discriminator_scores_each_sample_independently():
    # no batch statistics: the gradient penalty is per sample, so D(x_i) must not depend on the other x_j
    torch.manual_seed(0)
    D = S.Discriminator(c_dim=4, image_size=16, conv_dim=8, repeat_num=2)
    x = torch.randn(5, 1, 16, 16)
    src, cls = D(x)
    src1, cls1 = D(x[:1])
    assert torch.allclose(src[:1], src1, atol=1e-6) and torch.allclose(cls[:1], cls1, atol=1e-6)


# ----------------------------------------------------------------------------------------- losses
def test_domain_classification_loss_is_bce_summed_over_labels_and_averaged_over_the_batch():
    logits = torch.tensor([[0.0, 0.0], [100.0, -100.0]])
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # row 1: two labels at p = 0.5 -> 2 log 2; row 2: confident and right -> 0
    assert torch.isclose(S.domain_classification_loss(logits, labels), torch.tensor(2 * 0.6931472 / 2))
    wrong = S.domain_classification_loss(torch.tensor([[-50.0]]), torch.tensor([[1.0]]))
    assert torch.isfinite(wrong) and torch.isclose(wrong, torch.tensor(50.0))


def test_reconstruction_loss_is_mean_absolute_error():
    x = torch.zeros(2, 1, 2, 2)
    x_rec = torch.tensor([1.0, -1.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0]).view(2, 1, 2, 2)
    assert S.reconstruction_loss(x, x_rec).item() == pytest.approx(3.0 / 8)
    assert S.reconstruction_loss(x, x).item() == 0


class _LinearD(nn.Module):
    """D_src(x) = <w, x> per image (gradient w everywhere) and D_cls(x) = fixed logits: every term is known."""

    def __init__(self, w_norm, logits):
        super().__init__()
        self.w = nn.Parameter(torch.full((1, 1, 2, 2), w_norm / 2.0))      # ||w|| = w_norm
        self.logits = logits

    def forward(self, x):
        return (x * self.w).sum((1, 2, 3)).view(-1, 1, 1, 1), self.logits.expand(len(x), -1)


def test_discriminator_loss_on_hand_made_inputs():
    x = torch.ones(2, 1, 2, 2)                  # D_src(x) = 2 * 3 = 6 for ||w|| = 3 (w = 1.5 per pixel)
    x_fake = -torch.ones(2, 1, 2, 2)            # D_src(x_fake) = -6
    c_prime = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    D = _LinearD(3.0, torch.tensor([[0.0, 0.0]]))
    loss, parts = S.discriminator_loss(D, x, x_fake, c_prime, lambda_cls=1.0, lambda_gp=10.0)
    assert parts["L_adv_D"] == pytest.approx(-6 - 6)                  # E[D(fake)] - E[D(real)]
    assert parts["L_gp"] == pytest.approx(10 * (3 - 1) ** 2)           # ||grad|| = 3 everywhere
    assert parts["L_cls_r"] == pytest.approx(2 * 0.6931472, rel=1e-5)  # logits 0: log 2 per label, 2 labels
    assert loss.item() == pytest.approx(-12 + 40 + 2 * 0.6931472, rel=1e-5)
    assert (parts["D_real"], parts["D_fake"]) == (pytest.approx(6.0), pytest.approx(-6.0))   # mean critic scores
    # the penalty is the library's (gan_course.losses.gradient_penalty) on D_src
    assert gradient_penalty(lambda h: D(h)[0], x, x_fake, 10.0).item() == pytest.approx(40.0)


def test_generator_loss_terms_and_the_ablation_switches():
    torch.manual_seed(0)
    G = ch09.ShiftGenerator((0.5, -0.5))                               # G(x, c) = x + <w, c>
    D = _LinearD(1.0, torch.tensor([[3.0, -3.0]]))
    x = torch.zeros(2, 1, 2, 2)
    c = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    c_prime = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    loss, parts = S.generator_loss(G, D, x, c, c_prime, lambda_cls=1.0, lambda_rec=10.0)
    # G(x, c) = 0.5 everywhere: D_src = 0.5 * 4 * 0.5 = 1; round trip 0.5 - 0.5 = 0 -> L_rec = 0
    assert parts["L_adv_G"] == pytest.approx(-1.0)
    assert parts["L_cls_f"] == pytest.approx(2 * F.softplus(torch.tensor(-3.0)).item(), rel=1e-5)
    assert parts["L_rec"] == pytest.approx(0.0)
    # back with the wrong label would not be a round trip: G(G(x, c), c) = 1 -> L1 = 1
    assert S.reconstruction_loss(x, G(G(x, c), c)).item() == pytest.approx(1.0)
    _, no_rec = S.generator_loss(G, D, x, c, c_prime, lambda_rec=0.0)
    assert "L_rec" not in no_rec
    loss_no_cls, _ = S.generator_loss(G, D, x, c, c_prime, lambda_cls=0.0, lambda_rec=0.0)
    assert loss_no_cls.item() == pytest.approx(-1.0)


# ----------------------------------------------------------------------------------------- the mask vector
def test_mask_vector_encodes_known_labels_zeros_and_the_mask():
    mask = S.MaskVector([S.LabelSet("styles", ("bold", "italic"), "bce"),
                         S.LabelSet("families", ("sans", "serif", "mono"), "ce")])
    assert (mask.n_cls, mask.dim) == (5, 7)
    assert mask.names() == ["bold", "italic", "sans", "serif", "mono", "m[styles]", "m[families]"]
    a = mask.encode(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), 0)
    b = mask.encode(torch.tensor([[0.0, 0.0, 1.0]]), 1)
    assert a.tolist() == [[1, 0, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 1, 0]]
    assert b.tolist() == [[0, 0, 0, 0, 1, 0, 1]]
    assert mask.known(torch.cat([a, b])) == [0, 0, 1]
    with pytest.raises(ValueError, match="has 2 labels"):
        mask.encode(torch.zeros(1, 3), 0)
    with pytest.raises(ValueError, match="at least two"):
        S.MaskVector([S.LabelSet("one", ("a",))])
    with pytest.raises(ValueError, match="kind"):
        S.LabelSet("x", ("a",), "mse")


def test_mask_vector_classification_loss_scores_only_the_known_labels():
    mask = S.MaskVector([S.LabelSet("styles", ("bold", "italic"), "bce"),
                         S.LabelSet("families", ("sans", "serif", "mono"), "ce")])
    logits = torch.tensor([[2.0, -1.0, 0.3, 4.0, -2.0]])
    a = mask.encode(torch.tensor([[1.0, 0.0]]), 0)
    b = mask.encode(torch.tensor([[0.0, 1.0, 0.0]]), 1)
    loss_a = mask.classification_loss(logits, a)
    loss_b = mask.classification_loss(logits, b)
    assert torch.isclose(loss_a, S.domain_classification_loss(logits[:, :2], torch.tensor([[1.0, 0.0]])))
    assert torch.isclose(loss_b, F.cross_entropy(logits[:, 2:], torch.tensor([1])))
    # the unknown labels' logits do not matter: change them, the loss stays
    other = logits.clone()
    other[:, 2:] = torch.tensor([-9.0, 9.0, 0.0])
    assert torch.equal(mask.classification_loss(other, a), loss_a)
    # a mixed batch: each row scored by its own dataset's loss, averaged over the images
    both = mask.classification_loss(logits.expand(2, -1), torch.cat([a, b]))
    assert torch.isclose(both, (loss_a + loss_b) / 2)
    # and G trained with the mask takes c_tilde: input channels = 1 + dim
    assert S.Generator(c_dim=mask.dim, conv_dim=4, repeat_num=1)(torch.zeros(2, 1, 8, 8), torch.cat([a, b])).shape == \
        (2, 1, 8, 8)


def _mask_sources(mask):
    ds = _domains_dataset(size=16)
    styles = TensorImageDataset(ds.images, ds.targets, ds.classes, views={"c": ds.views["domain"][:, :2]}, target="c")
    families = TensorImageDataset(ds.images, ds.targets, ds.classes, views={"c": ds.views["domain"][:, 2:]},
                                  target="c")
    return Batches(styles, 4), Batches(families, 4)


def test_domain_batches_alternate_datasets_write_the_mask_and_shuffle_the_targets():
    mask = S.MaskVector([S.LabelSet("styles", ("bold", "italic")), S.LabelSet("families", FAMILIES, "ce")])
    batches = S.DomainBatches(*_mask_sources(mask), seed=3, mask=mask)
    seen = []
    for _ in range(4):
        x, c_prime, c = batches.next()
        seen.append(mask.known(c_prime)[0])
        assert x.shape == (4, 1, 16, 16) and c_prime.shape == c.shape == (4, mask.dim)
        assert sorted(map(tuple, c.tolist())) == sorted(map(tuple, c_prime.tolist()))   # c = c' shuffled
    assert seen == [0, 1, 0, 1]                                       # iteration i: dataset i mod 2
    state = batches.state_dict()
    ahead = [batches.next() for _ in range(3)]
    again = S.DomainBatches(*_mask_sources(mask), seed=3, mask=mask)
    again.load_state_dict(state)                                      # resumable: the same batches and targets
    for a, b in zip(ahead, [again.next() for _ in range(3)], strict=True):
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="need a mask vector"):
        S.DomainBatches(*_mask_sources(mask))
    with pytest.raises(ValueError, match="joins 2 datasets, got 1"):
        S.DomainBatches(_mask_sources(mask)[0], mask=mask)


def test_masked_training_runs_through_train_step(tmp_build):
    mask = S.MaskVector([S.LabelSet("styles", ("bold", "italic")), S.LabelSet("families", FAMILIES, "ce")])
    torch.manual_seed(0)
    G = S.Generator(c_dim=mask.dim, conv_dim=4, repeat_num=1)
    D = S.Discriminator(c_dim=mask.n_cls, image_size=16, conv_dim=4, repeat_num=2)
    run = L.train_arm("mask", G, D, S.DomainBatches(*_mask_sources(mask), mask=mask), S.Config(n_critic=2),
                      steps=4, cls_loss=mask.classification_loss, config=dict(mask=mask.names()))
    assert run.history.steps("L_cls_r") == [0, 1, 2, 3] and run.history.steps("L_rec") == [1, 3]
    assert run.config["n_critic"] == 2 and run.config["mask"] == mask.names()


# ----------------------------------------------------------------------------------------- training
def _tiny(seed=0, c_dim=4):
    torch.manual_seed(seed)
    return (S.Generator(c_dim=c_dim, conv_dim=4, repeat_num=1),
            S.Discriminator(c_dim=c_dim, image_size=16, conv_dim=4, repeat_num=2))


def _run(G, D, cfg, root):
    return Run("toy", {"G": G, "D": D}, S.optimizers(G, D, cfg), root=root, progress=False, live=False)


def _weights(module):
    return [p.detach().clone() for p in module.parameters()]


def _train_once(seed, root, steps=4):
    G, D = _tiny(seed)
    cfg = S.Config(n_critic=2)
    run = _run(G, D, cfg, root)
    batches = S.DomainBatches(Batches(_domains_dataset(), 6, seed=seed), seed=seed)
    for _ in run.steps(steps):
        run.log(**S.train_step(run, G, D, batches, cfg))
    return run.history.as_dict(), _weights(G) + _weights(D)


def test_training_is_deterministic_under_a_seed_and_g_updates_every_n_critic(tmp_path):
    h1, p1 = _train_once(0, tmp_path / "a")
    h2, p2 = _train_once(0, tmp_path / "b")
    h3, _ = _train_once(1, tmp_path / "c")
    assert h1 == h2 and all(torch.equal(a, b) for a, b in zip(p1, p2, strict=True))
    assert h1 != h3
    assert h1["L_adv_D"][0] == [0, 1, 2, 3] and h1["L_rec"][0] == [1, 3]   # G once per n_critic = 2 D steps
    assert h1["loss_G"][0] == [1, 3] and {"loss_D", "D_real", "D_fake", "L_gp", "L_cls_r", "L_cls_f"} <= set(h1)


def test_train_step_updates_d_every_iteration_and_g_on_its_iterations(tmp_path):
    G, D = _tiny(0)
    cfg = S.Config(n_critic=2, lambda_rec=0.0)
    assert S.optimizers(G, D, cfg)["G"].defaults["betas"] == (0.5, 0.999)
    run = _run(G, D, cfg, tmp_path)
    batches = S.DomainBatches(Batches(_domains_dataset(), 4, seed=0))
    G0, D0 = _weights(G), _weights(D)
    out = S.train_step(run, G, D, batches, cfg)                          # run.step = 0: a D step only
    assert set(out) == {"loss_D", "D_real", "D_fake", "L_adv_D", "L_gp", "L_cls_r"}
    assert all(torch.equal(a, b) for a, b in zip(G0, G.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(D0, D.parameters(), strict=True))
    run.step = 1                                                         # the n_critic-th iteration: G too
    out = S.train_step(run, G, D, batches, cfg)
    assert {"loss_G", "L_adv_G", "L_cls_f"} <= set(out) and "L_rec" not in out    # lambda_rec = 0: no round trip
    assert not all(torch.equal(a, b) for a, b in zip(G0, G.parameters(), strict=True))
    assert all(p.requires_grad for p in D.parameters())                  # D unfrozen after G's step
    assert all(not torch.is_tensor(v) or not v.requires_grad for v in out.values())


def test_g_step_leaves_no_gradient_in_d_and_d_is_unfrozen_after_a_failure(tmp_path, monkeypatch):
    G, D = _tiny(1)
    cfg = S.Config(n_critic=1)
    run = _run(G, D, cfg, tmp_path)
    seen, update = {}, run.update

    def spy(name, loss, **kwargs):
        update(name, loss, **kwargs)
        seen[name] = [p.grad.clone() for p in D.parameters()]
        seen[name + "_frozen"] = not any(p.requires_grad for p in D.parameters())
    monkeypatch.setattr(run, "update", spy)
    S.train_step(run, G, D, S.DomainBatches(Batches(_domains_dataset(), 4)), cfg)
    assert seen["G_frozen"] and not seen["D_frozen"]
    assert all(torch.equal(a, b) for a, b in zip(seen["D"], seen["G"], strict=True))   # G's backward added nothing
    monkeypatch.undo()
    run.optimizers.pop("G")
    with pytest.raises(ValueError, match="No optimiser named 'G'"):
        S.train_step(run, G, D, S.DomainBatches(Batches(_domains_dataset(), 4)), cfg)
    assert all(p.requires_grad for p in D.parameters())


def test_config_defaults_are_the_papers_and_bad_values_are_named():
    cfg = S.Config()
    assert (cfg.lambda_cls, cfg.lambda_rec, cfg.lambda_gp, cfg.n_critic) == (1.0, 10.0, 10.0, 5)
    assert (cfg.lr, cfg.beta1, cfg.beta2) == (1e-4, 0.5, 0.999)
    assert (cfg.g_residual, cfg.g_upsample, cfg.d_translation) == (False, "transposed", 0.0)
    with pytest.raises(ValueError, match="n_critic"):
        S.Config(n_critic=0)
    with pytest.raises(ValueError, match="lambda_rec must be >= 0"):
        S.Config(lambda_rec=-1.0)
    with pytest.raises(ValueError, match="g_upsample must be one of .*got 'bilinear'"):
        S.Config(g_upsample="bilinear")
    with pytest.raises(ValueError, match="d_translation"):
        S.Config(d_translation=0.5)


def test_arms_resume_from_their_checkpoint(tmp_build):
    ds = _domains_dataset()
    G, D = _tiny(2)
    first = L.train_arm("arm", G, D, S.DomainBatches(Batches(ds, 4, seed=0)), S.Config(n_critic=2), steps=2)
    G2, D2 = _tiny(5)
    again = L.train_arm("arm", G2, D2, S.DomainBatches(Batches(ds, 4, seed=0)), S.Config(n_critic=2), steps=2)
    assert first.step == again.step == 2 and again.resumed
    assert all(torch.equal(a, b) for a, b in zip(G.parameters(), G2.parameters(), strict=True))


# ----------------------------------------------------------------------------------------- measuring
def test_label_accuracy_and_logits_to_labels():
    names = S.domain_names(FAMILIES)
    target = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1]])
    predicted = torch.tensor([[1.0, 1, 1, 0], [0, 1, 0, 1]])
    acc = L.label_accuracy(predicted, target, names)
    assert acc == {"all": 0.5, "bold": 1.0, "italic": 0.5, "family": 1.0}
    assert L.logits_to_labels(torch.tensor([[2.0, -1.0, 0.1, 0.3]])).tolist() == [[1, 0, 0, 1]]


def test_domain_classifier_reads_d_cls_labels_unshifted_and_keeps_d_in_training():
    torch.manual_seed(0)
    D = S.Discriminator(c_dim=4, channels=1, image_size=32, conv_dim=4, translation=0.25).train()
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    labels = L.DomainClassifier(D).predict(x, batch_size=2)
    assert D.training
    assert labels.shape == (5, 4) and set(labels.unique().tolist()) <= {0.0, 1.0}
    assert (labels[:, 2:].sum(1) == 1).all()                      # exactly one family per image
    D.eval()
    with torch.no_grad():
        assert torch.equal(labels, L.logits_to_labels(D(x)[1]))    # read in eval mode: no random shift


def test_evaluate_reports_accuracy_content_and_reconstruction():
    torch.manual_seed(0)
    ds = _domains_dataset()
    G = S.Generator(c_dim=4, conv_dim=4, repeat_num=1)
    net = L.train_attribute_classifier(ds, steps=3, batch_size=8)
    out = L.evaluate(G, ds, net, _ConstantContent(), n=6)
    assert set(out) >= {"attribute_accuracy", "attribute_accuracy_bold", "attribute_accuracy_italic",
                        "attribute_accuracy_family", "content_preserved", "reconstruction_l1",
                        "identity_attribute_accuracy"}
    assert out["content_preserved"] == pytest.approx(2 / 6)                  # characters 0, 1, 2, 0, 1, 2
    assert out["identity_attribute_accuracy"] == pytest.approx(1 / 8)      # each input is in one of 8 domains
    assert 0 <= out["attribute_accuracy"] <= 1 and out["reconstruction_l1"] > 0
    assert "d_cls_attribute_accuracy" not in out

    class SaysSansRegular(nn.Module):                   # a D_cls that reads every image as "sans, regular"
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x[:, :, :1, :1], torch.tensor([[-5.0, -5.0, 5.0, -5.0]]).expand(len(x), -1)

    judge = SaysSansRegular().train()
    out = L.evaluate(G, ds, net, _ConstantContent(), n=6, D=judge)
    assert out["d_cls_attribute_accuracy"] == pytest.approx(1 / 8)   # right only where the target is sans regular
    assert judge.training                                             # evaluated in eval mode, then restored


# ----------------------------------------------------------------------------------------- explorers (headless)
def test_translation_explorer_renders_headless_and_follows_its_controls():
    torch.manual_seed(0)
    ds = _domains_dataset()
    G = S.Generator(c_dim=4, conv_dim=4, repeat_num=1)
    net = L.AttributeClassifier(4)
    ex = L.translation_explorer(G, ds, attribute_net=net, n=10)
    assert ex.state["renders"] == 1
    ex.controls["italic"].value = True
    ex.controls["family"].value = "serif"
    ex.controls["index"].value = 3
    assert ex.state["renders"] == 4
    assert ex.state["values"] == {"index": 3, "bold": True, "italic": True, "family": "serif"}
    fig = L.render_translation(G, ds, 3, True, True, "serif", net)
    assert len(fig.axes) == 3 and "serif bold italic" in fig.axes[1].get_title()
    assert readability(fig)["readable"], readability(fig)      # the suptitle clear of the three-line panel titles
    plt.close(fig)


def test_domain_grid_shows_every_domain_for_each_input():
    torch.manual_seed(0)
    ds = _domains_dataset()
    G = S.Generator(c_dim=4, conv_dim=4, repeat_num=1)
    fig = L.render_domain_grid(G, ds, indices=[0, 5])
    assert len(fig.axes) == 2 * (8 + 1)
    assert readability(fig)["readable"], readability(fig)
    plt.close(fig)
    ex = L.domain_grid_explorer(G, ds, rows=2)
    ex.controls["page"].value = 2
    assert ex.state["values"] == {"page": 2} and ex.state["renders"] == 2


# ----------------------------------------------------------------------------------------- exercises
def test_check_label_tiling_accepts_the_answer_and_explains_mistakes():
    assert ch09.check_label_tiling(S.concat_labels)
    assert ch09.check_label_tiling(                                     # another correct formulation: repeat
        lambda x, c: torch.cat([x, c.view(*c.shape, 1, 1).repeat(1, 1, x.shape[2], x.shape[3])], dim=1))
    with pytest.raises(ExerciseError, match="labels come first"):
        ch09.check_label_tiling(lambda x, c: torch.cat([S.tile_labels(c, *x.shape[-2:]), x], 1))
    with pytest.raises(ExerciseError, match="wrong dimension"):
        ch09.check_label_tiling(lambda x, c: torch.cat([x, S.tile_labels(c, *x.shape[-2:])[:, :2]], 3))
    with pytest.raises(ExerciseError, match="swapped"):
        ch09.check_label_tiling(lambda x, c: torch.cat([x.transpose(2, 3), S.tile_labels(c, x.shape[3], x.shape[2])], 1))
    with pytest.raises(ExerciseError, match="constant"):
        ch09.check_label_tiling(lambda x, c: torch.cat([x, S.tile_labels(c, *x.shape[-2:]) * torch.rand(
            1, 1, *x.shape[-2:])], 1))
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch09.check_label_tiling(lambda x, c: (_ for _ in ()).throw(NotImplementedError()))


def test_check_classification_loss_accepts_the_answer_and_explains_mistakes():
    assert ch09.check_classification_loss(S.domain_classification_loss)
    assert ch09.check_classification_loss(                             # another correct formulation: softplus
        lambda logit, c: (c * F.softplus(-logit) + (1 - c) * F.softplus(logit)).sum(1).mean())
    with pytest.raises(ExerciseError, match="averaged over the labels"):
        ch09.check_classification_loss(F.binary_cross_entropy_with_logits)
    with pytest.raises(ExerciseError, match="summed over the batch"):
        ch09.check_classification_loss(lambda logit, c: F.binary_cross_entropy_with_logits(logit, c, reduction="sum"))
    with pytest.raises(ExerciseError, match="softmax"):
        ch09.check_classification_loss(lambda logit, c: F.cross_entropy(logit, c.argmax(1)))
    with pytest.raises(ExerciseError, match="not finite"):                 # log(sigmoid(.)) overflows
        ch09.check_classification_loss(lambda logit, c: -(c * torch.log(torch.sigmoid(logit)) + (1 - c) * torch.log(
            1 - torch.sigmoid(logit))).sum(1).mean())
    with pytest.raises(ExerciseError, match="returned None"):
        ch09.check_classification_loss(lambda logit, c: None)


def test_the_stand_in_generator_of_the_reconstruction_check_does_not_commute():
    G, x = ch09.AffineGenerator(), torch.randn(3, 2, 2, 2)
    c, cp = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 1.0]]), torch.tensor([[0, 0, 1.0], [1.0, 0, 0], [0, 1.0, 0]])
    with torch.no_grad():
        assert not torch.allclose(G(G(x, c), cp), G(G(x, cp), c), atol=1e-2)
        assert not torch.allclose(G(G(x, c), cp), x, atol=1e-2)
    S_ = ch09.ShiftGenerator((0.5, -0.5, 0.1))                          # a pure shift commutes: why it is not used
    assert torch.allclose(S_(S_(x, c), cp), S_(S_(x, cp), c))


@pytest.mark.parametrize("fn", [
    lambda G, x, c, cp: S.reconstruction_loss(x, G(G(x, c), cp)),                  # the library's
    lambda G, x, c, cp: F.l1_loss(G(G(x, c), cp), x),                              # F.l1_loss, arguments swapped
    lambda G, x, c, cp: (G(G(x, c), cp) - x).norm(p=1) / x.numel(),                # the L1 norm over the count
    lambda G, x, c, cp: (x - G(G(x, c), cp)).abs().flatten(1).mean(1).mean(),      # per image, then over the batch
])
def test_check_reconstruction_loss_accepts_correct_formulations(fn):
    assert ch09.check_reconstruction_loss(fn)


@pytest.mark.parametrize(("fn", "match"), [
    (lambda G, x, c, cp: S.reconstruction_loss(x, G(G(x, c), c)), "ORIGINAL domain"),      # back with c
    (lambda G, x, c, cp: S.reconstruction_loss(x, G(G(x, cp), c)), "wrong way"),           # the order swapped
    (lambda G, x, c, cp: S.reconstruction_loss(x, G(G(x, cp), cp)), "c' both ways"),
    (lambda G, x, c, cp: S.reconstruction_loss(x, G(x, c)), "one translation"),
    (lambda G, x, c, cp: ((x - G(G(x, c), cp)) ** 2).mean(), "L2"),
    (lambda G, x, c, cp: F.mse_loss(G(G(x, c), cp), x), "L2"),
    (lambda G, x, c, cp: (x - G(G(x, c), cp)).abs().sum(), "summed the absolute differences"),
    (lambda G, x, c, cp: (x - G(G(x, c), cp)).abs().flatten(1).sum(1).mean(), "C \\* H \\* W"),
    (lambda G, x, c, cp: (x - G(G(x, c), cp)).mean().abs(), "BEFORE averaging"),
    (lambda G, x, c, cp: S.reconstruction_loss(x, G(G(x, c), cp)).detach(), "does not depend"),
    (lambda G, x, c, cp: S.reconstruction_loss(x, G(G(x, c).detach(), cp)), "detach the first translation"),
])
def test_check_reconstruction_loss_names_each_mistake(fn, match):
    with pytest.raises(ExerciseError, match=match):
        ch09.check_reconstruction_loss(fn)
