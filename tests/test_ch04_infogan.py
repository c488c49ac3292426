"""Chapter 04: InfoGAN (Chen et al., 2016, arXiv 1606.03657): the latent split, G and the D/Q pair sharing one body,
the variational bound L_I of Eq. 5 (a lower bound on I(c; G(z, c)), tight at the true posterior), the training step
(``ig.train_step``, the chapter contract) and the experiment arms, the measures of what the codes mean
(``gan_course.lab.infogan``), the explorers (headless) and the exercise checks."""

import math

import pytest
import torch
import torch.nn.functional as F
from contract import one_train_step

from gan_course.data.base import TensorImageDataset
from gan_course.exercises import ExerciseError, ch04
from gan_course.lab import dcgan as dcgan_lab
from gan_course.lab import infogan as ig_lab
from gan_course.models import infogan as ig

LATENT = ig.Latent(z_dim=8, categories=10, continuous=2)


def _pair(image_size=28, channels=1, **kw):
    torch.manual_seed(0)
    return (ig.Generator(latent=LATENT, channels=channels, image_size=image_size, width=8, hidden=32),
            ig.Discriminator(latent=LATENT, channels=channels, image_size=image_size, width=8, hidden=32, q_hidden=16,
                             **kw))


# ----------------------------------------------------------------------------------------- the latent split
def test_latent_prior_ranges_and_entropy():
    z, c_cat, c_cont = LATENT.sample(4000, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 8) and c_cat.shape == (4000,) and c_cont.shape == (4000, 2)
    assert c_cat.dtype == torch.int64 and set(c_cat.unique().tolist()) == set(range(10))
    assert c_cont.min() >= -1 and c_cont.max() <= 1 and abs(float(c_cont.mean())) < 0.05
    h = LATENT.entropy()
    assert math.isclose(h["cat"], math.log(10)) and math.isclose(h["cont"], 2 * math.log(2))


def test_paper_mnist_latent_is_74_numbers_laid_out_z_onehot_codes():
    latent = ig.Latent()                                            # Sec. 7.1: 62 + 10 + 2
    assert latent.dim == 74 and latent.q_dim == 10 + 2 * 2
    z, c_cat, c_cont = latent.sample(3)
    v = latent.join(z, c_cat, c_cont)
    assert torch.equal(v[:, :62], z) and torch.equal(v[:, 72:], c_cont)
    assert torch.equal(v[:, 62:72].argmax(1), c_cat) and torch.equal(v[:, 62:72].sum(1), torch.ones(3))


# ----------------------------------------------------------------------------------------- the players
@pytest.mark.parametrize("image_size,channels", [(28, 1), (32, 3)])
def test_shapes_of_G_D_and_Q(image_size, channels):
    G, D = _pair(image_size, channels)
    z, c_cat, c_cont = LATENT.sample(5)
    x = G(z, c_cat, c_cont)
    assert x.shape == (5, channels, image_size, image_size) and x.abs().max() <= 1
    logit, q = D(x)
    assert logit.shape == (5,)
    assert q.cat_logits.shape == (5, 10) and q.mu.shape == (5, 2) and q.log_sigma.shape == (5, 2)


def test_paper_sized_networks_follow_table_1():
    G, D = ig.Generator(), ig.Discriminator()
    convs_G = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs_G] == [(128, 64), (64, 1)]
    assert G.fc[0].in_features == 74 and G.fc[0].out_features == 1024 and G.fc[3].out_features == 128 * 7 * 7
    convs_D = [m for m in D.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs_D] == [(1, 64), (64, 128)]
    assert D.d_head.in_features == 1024 and D.q_head[0].out_features == 128
    with pytest.raises(ValueError, match="multiple of 4"):
        ig.Generator(image_size=30)


def test_Q_shares_D_body_and_adds_only_a_head():
    _, D = _pair()
    D.eval()
    x = torch.randn(4, 1, 28, 28)
    logit, q = D(x)
    h = D.body(x)
    assert torch.allclose(logit, D.d_head(h).view(4)) and torch.allclose(q.cat_logits, D.q(x).cat_logits)
    body = {id(p) for p in D.body.parameters()}
    assert body.isdisjoint(id(p) for p in D.q_head.parameters())
    # the info loss reaches the shared body and the Q head, not D's real/fake head
    z, c_cat, c_cont = LATENT.sample(6)
    D.train()
    _, q = D(torch.randn(6, 1, 28, 28))
    ig.info_loss(q, c_cat, c_cont, LATENT).backward()
    assert D.d_head.weight.grad is None
    assert D.q_head[0].weight.grad.abs().sum() > 0 and D.body[0].weight.grad.abs().sum() > 0


def test_fix_std_gives_unit_variance_gaussian():
    _, D = _pair(fix_std=True)
    assert torch.equal(D.q(torch.randn(3, 1, 28, 28)).log_sigma, torch.zeros(3, 2))


# ----------------------------------------------------------------------------------------- the bound (Sec. 5)
def test_gaussian_log_likelihood_matches_torch_distributions():
    c, mu, log_sigma = torch.rand(7, 3) * 2 - 1, torch.randn(7, 3), torch.randn(7, 3) * 0.3
    want = torch.distributions.Normal(mu, log_sigma.exp()).log_prob(c).sum(1).mean()
    assert torch.allclose(ig.gaussian_log_likelihood(c, mu, log_sigma), want, atol=1e-6)


def test_bound_is_log_K_for_a_perfect_Q_and_zero_for_a_Q_that_knows_nothing():
    c = torch.randint(0, 10, (100,))
    perfect = ig.QOutput(F.one_hot(c, 10).float() * 50, torch.zeros(100, 2), torch.zeros(100, 2))
    clueless = ig.QOutput(torch.zeros(100, 10), torch.zeros(100, 2), torch.zeros(100, 2))
    c_cont = torch.zeros(100, 2)
    assert math.isclose(float(ig.mutual_information_bound(perfect, c, c_cont, LATENT)["cat"]), math.log(10),
                        abs_tol=1e-4)
    assert abs(float(ig.mutual_information_bound(clueless, c, c_cont, LATENT)["cat"])) < 1e-6


def test_L_I_is_a_lower_bound_on_the_mutual_information_tight_at_the_true_posterior():
    # A noisy channel c -> x with known I(c; x): x = c with probability 0.7, otherwise one of the other K - 1.
    K, n, keep = 4, 400_000, 0.7
    g = torch.Generator().manual_seed(0)
    c = torch.randint(0, K, (n,), generator=g)
    flip = torch.rand(n, generator=g) > keep
    x = torch.where(flip, (c + torch.randint(1, K, (n,), generator=g)) % K, c)
    p_c_given_x = torch.full((K, K), (1 - keep) / (K - 1)) + torch.eye(K) * (keep - (1 - keep) / (K - 1))
    exact = math.log(K) + keep * math.log(keep) + (1 - keep) * math.log((1 - keep) / (K - 1))   # H(c) - H(c|x)
    latent = ig.Latent(z_dim=1, categories=K, continuous=0)
    zeros = torch.zeros(n, 0)
    true_posterior = ig.QOutput(p_c_given_x.log()[x], zeros, zeros)       # symmetric channel: P(c|x) = P(x|c)
    assert math.isclose(float(ig.mutual_information_bound(true_posterior, c, zeros, latent)["cat"]), exact,
                        abs_tol=5e-3)
    for seed in range(3):
        wrong_q = ig.QOutput(torch.randn(K, K, generator=torch.Generator().manual_seed(seed))[x], zeros, zeros)
        assert float(ig.mutual_information_bound(wrong_q, c, zeros, latent)["cat"]) < exact
    # and the plug-in mutual_information estimate agrees
    assert math.isclose(ig_lab.mutual_information(c, x), exact, abs_tol=5e-3)


def test_info_loss_is_minus_lambda_weighted_bound():
    q = ig.QOutput(torch.randn(5, 10), torch.randn(5, 2), torch.randn(5, 2))
    c, c_cont = torch.randint(0, 10, (5,)), torch.rand(5, 2) * 2 - 1
    L = ig.mutual_information_bound(q, c, c_cont, LATENT)
    assert torch.allclose(ig.info_loss(q, c, c_cont, LATENT, 1.0, 0.1), -(L["cat"] + 0.1 * L["cont"]))
    assert float(ig.info_loss(q, c, c_cont, LATENT, 0.0, 0.0)) == 0.0


# ----------------------------------------------------------------------------------------- training
def _data(n=64, size=28, channels=1):
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8)
    return TensorImageDataset(images, torch.zeros(n, dtype=torch.long), classes=["x"])


def test_train_is_deterministic_and_Q_learns_to_read_c(tmp_build):
    dataset = _data()
    runs = []
    for name in ("a", "b"):
        G, D = _pair()
        runs.append((dcgan_lab.train_arm(name, G, D, dataset, 40, ig.Config(batch_size=32), paper=ig, progress=False,
                                         live=False), G))
    (run_a, G_a), (run_b, G_b) = runs
    assert run_a.history.values("loss_D") == run_b.history.values("loss_D")
    assert all(torch.equal(p, q) for p, q in zip(G_a.parameters(), G_b.parameters(), strict=True))
    assert run_a.history.mean_last("L_I_cat", 5) > run_a.history.values("L_I_cat")[0] + 0.2   # Q finds c
    assert (tmp_build / "runs" / "a" / "checkpoint.pt").exists()


def test_lambda_zero_is_a_plain_gan_whose_G_gets_no_information_gradient(tmp_build):
    G, D = _pair()
    run = dcgan_lab.train_arm("plain", G, D, _data(), 5, ig.Config(batch_size=32, lambda_cat=0.0, lambda_cont=0.0),
                              paper=ig, progress=False, live=False)
    assert run.config["lambda_cat"] == 0.0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in D.q_head.parameters())


def test_train_step_logs_the_contract_keys_and_updates_G_D_and_Q(tmp_build):
    G, D = _pair()
    logs, batches, _ = one_train_step(ig, G, D, _data(), ig.Config(batch_size=16),
                                      {"loss_D", "loss_G", "D_real", "D_fake", "L_I_cat", "L_I_cont"})
    assert 0 < logs["D_real"] < 1 and 0 < logs["D_fake"] < 1 and logs["L_I_cat"] <= math.log(10) + 1e-6
    assert D.q_head[0].weight.grad.abs().sum() > 0                 # lambda > 0: Q is trained by D's step
    assert batches.position == 16


def test_config_defaults_are_the_papers_and_bad_values_are_clear_errors():
    cfg = ig.Config()
    assert (cfg.lambda_cat, cfg.lambda_cont, cfg.lr_G, cfg.lr_D) == (1.0, 0.1, 1e-3, 2e-4)
    with pytest.raises(ValueError, match="got lambda_cont = -0.1"):
        ig.Config(lambda_cont=-0.1)
    with pytest.raises(ValueError, match="got lr_G = 0.0"):
        ig.Config(lr_G=0.0)
    with pytest.raises(TypeError):
        ig.Generator(LATENT)                                        # keyword-only: Generator(latent=...)
    with pytest.raises(TypeError):
        ig.Latent(8, 10, 2)


def test_sample_with_codes_is_seeded_and_restores_mode():
    G, _ = _pair()
    a, c_a, k_a = ig_lab.sample_with_codes(G, 20, seed=3)
    b, c_b, k_b = ig_lab.sample_with_codes(G, 20, seed=3)
    assert torch.equal(a, b) and torch.equal(c_a, c_b) and torch.equal(k_a, k_b) and G.training
    assert ig_lab.sampler(G, seed=1)(7).shape == (7, 1, 28, 28)


# ----------------------------------------------------------------------------------------- measuring the codes
def test_code_agreement_purity_matching_and_nmi():
    labels = torch.arange(10).repeat(30)
    perm = torch.tensor([3, 7, 0, 1, 9, 2, 8, 4, 6, 5])
    out = ig_lab.code_agreement(perm[labels], labels, 10)
    assert out["purity"] == 1.0 and out["matched_accuracy"] == 1.0 and math.isclose(out["nmi"], 1.0, rel_tol=1e-9)
    assert all(perm[lab] == code for code, lab in [(c, out["mapping"][c]) for c in range(10)] for lab in [lab])
    merged = ig_lab.code_agreement(labels // 2, labels, 10)            # 5 codes, two labels each
    assert merged["purity"] == 0.5 and merged["matched_accuracy"] == 0.5
    assert math.isclose(merged["nmi"], math.log(5) / math.log(10), rel_tol=1e-9)
    noise = ig_lab.code_agreement(torch.randint(0, 10, (3000,), generator=torch.Generator().manual_seed(0)),
                              torch.arange(10).repeat(300), 10)
    assert noise["nmi"] < 0.02 and noise["matched_accuracy"] < 0.2


def test_quantize_makes_equal_frequency_bins():
    q = ig_lab.quantize(torch.randn(1000), bins=10)
    assert torch.equal(torch.bincount(q), torch.full((10,), 100))
    assert math.isclose(ig_lab.entropy(q), math.log(10), rel_tol=1e-9)


def test_glyph_moments_see_slant_width_and_thickness():
    img = -torch.ones(3, 1, 28, 28)
    img[0, 0, 4:24, 13:15] = 1                                      # upright bar
    for r in range(4, 24):                                          # bar leaning right: top further right
        col = 13 + (24 - r) // 3
        img[1, 0, r, col:col + 2] = 1
    img[2, 0, 4:24, 10:18] = 1                                      # wide, thick block
    m = ig_lab.glyph_moments(img)
    assert abs(float(m["slant"][0])) < 1e-5 and float(m["slant"][1]) > 0.2
    assert float(m["width"][2]) > 2 * float(m["width"][0]) and float(m["thickness"][2]) > float(m["thickness"][0])


def test_shape_factor_reader_recovers_real_factors():
    from gan_course.data import shapes

    g = torch.Generator().manual_seed(0)
    f = shapes.sample_factors(300, generator=g)
    images = shapes.render(f, 32).float() / 127.5 - 1                  # uint8 -> the course's [-1, 1]
    names = list(shapes.FACTOR_NAMES)
    reader = ig_lab.ShapeFactorReader().fit(images, f[:, 0], f[:, names.index("scale")])
    read = reader.read(images, shapes=f[:, 0].long())
    for j, name in enumerate(reader.names[2:], start=2):               # scale, x, y, background
        truth = f[:, names.index(name)]
        r = torch.corrcoef(torch.stack([read[:, j], truth]))[0, 1]
        assert r > 0.95, f"{name}: correlation {float(r):.3f}"
    hue_err = (read[:, 1] - f[:, names.index("hue")]).abs()
    assert float(torch.minimum(hue_err, 1 - hue_err).median()) < 0.02
    with pytest.raises(ValueError, match="fit"):
        ig_lab.ShapeFactorReader().read(images)


def test_code_factor_nmi_and_mig_recognise_a_disentangled_code():
    g = torch.Generator().manual_seed(0)
    n = 4000
    factors = torch.stack([torch.randint(0, 4, (n,), generator=g).float(), torch.rand(n, generator=g),
                           torch.rand(n, generator=g)], 1)
    disentangled = torch.stack([factors[:, 0], factors[:, 2] * 2 - 1, factors[:, 1] * 2 - 1], 1)
    nmi = ig_lab.code_factor_nmi(disentangled, factors)
    assert nmi.shape == (3, 3)
    assert nmi[0, 0] > 0.95 and nmi[1, 2] > 0.95 and nmi[2, 1] > 0.95
    assert nmi[1, 1] < 0.05 and ig_lab.mig(nmi) > 0.9
    mixed = torch.stack([torch.randint(0, 4, (n,), generator=g).float(), factors[:, 1] + factors[:, 2],
                         factors[:, 1] - factors[:, 2]], 1)
    assert ig_lab.mig(ig_lab.code_factor_nmi(mixed, factors)) < 0.1


def test_correlation_ratio_is_the_share_of_variance_explained_by_groups():
    g = torch.arange(4).repeat_interleave(250)
    assert math.isclose(ig_lab.correlation_ratio(g, g.double() * 3 + 1), 1.0, rel_tol=1e-12)     # constant per group
    noise = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert ig_lab.correlation_ratio(g, noise) < 0.01
    # f = group + noise of variance 1: Var(E[f|g]) = Var(g) = 1.25, Var(f) = 2.25
    mixed = g.double() + torch.randn(1000, generator=torch.Generator().manual_seed(1)).double()
    assert abs(ig_lab.correlation_ratio(g, mixed) - 1.25 / 2.25) < 0.05


def test_code_factor_r2_handles_categorical_and_circular_factors():
    g = torch.Generator().manual_seed(0)
    n = 5000
    hue = torch.rand(n, generator=g)
    shape = torch.randint(0, 5, (n,), generator=g).float()
    x = torch.rand(n, generator=g)
    factors = torch.stack([shape, hue, x], 1)
    # a code that wraps around the hue circle: hue 0.99 and 0.01 are neighbours, and the circle embedding knows it
    codes = torch.stack([shape, (hue + 0.5) % 1 * 2 - 1, x * 2 - 1], 1)
    R = ig_lab.code_factor_r2(codes, factors, ("shape", "hue", "x"))
    assert R[0, 0] > 0.99 and R[1, 1] > 0.9 and R[2, 2] > 0.95
    assert R[0, 1] < 0.01 and R[2, 0] < 0.01 and ig_lab.mig(R) > 0.85


# ----------------------------------------------------------------------------------------- explorers
def test_code_explorer_has_a_picker_and_a_slider_per_code_and_rerenders():
    G, _ = _pair()
    ex = ig_lab.code_explorer(G, n=8)
    assert set(ex.controls) == {"category", "c2", "c3", "seed"}
    assert ex.controls["c2"].min == -2.0 and ex.controls["c2"].max == 2.0
    first = ex.state["figure"].axes[0].images[0].get_array().copy()
    ex.controls["c2"].value = 1.5
    assert ex.state["values"]["c2"] == 1.5 and "c2=+1.50" in ex.state["figure"].axes[0].get_title()
    ex.controls["category"].value = 4
    second = ex.state["figure"].axes[0].images[0].get_array()
    assert ex.state["renders"] == 3 and not (first == second).all()


def test_traversal_varies_one_code_and_validates():
    G, _ = _pair()
    fig = ig_lab.render_traversal(G, 1, rows=3)
    assert fig.axes[0].get_xlabel() == "categorical code c1"
    fig = ig_lab.render_traversal(G, 3, values=[-1, 0, 1])
    assert fig.axes[0].get_xlabel() == "continuous code c3" and len(fig.axes[0].get_xticks()) == 3
    with pytest.raises(ValueError, match="code"):
        ig_lab.render_traversal(G, 4)


# ----------------------------------------------------------------------------------------- exercises
def test_exercise_categorical_bound():
    assert ch04.check_categorical_bound(lambda logits, c: -F.cross_entropy(logits, c) + math.log(logits.shape[1]))
    assert ch04.check_categorical_bound(
        lambda logits, c: F.log_softmax(logits, 1).gather(1, c[:, None]).mean() + math.log(logits.shape[1]))
    cases = {
        "entropy": (lambda l, c: -F.cross_entropy(l, c), "H\\(c\\)"),
        "sign": (lambda l, c: F.cross_entropy(l, c) - math.log(l.shape[1]), "negative of L_I"),
        "probability": (lambda l, c: F.softmax(l, 1).gather(1, c[:, None]).mean() + math.log(l.shape[1]),
                        "logarithm"),
        "sum": (lambda l, c: -F.cross_entropy(l, c, reduction="sum") + math.log(l.shape[1]), "mean"),
        "dim": (lambda l, c: -F.nll_loss(F.log_softmax(l, 0), c) + math.log(l.shape[1]), "dim=1"),
        "per-sample": (lambda l, c: -F.cross_entropy(l, c, reduction="none"), "average"),
        "none": (lambda l, c: None, "return"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch04.check_categorical_bound(fn)


def test_exercise_gaussian_log_likelihood():
    assert ch04.check_gaussian_log_likelihood(
        lambda c, mu, ls: torch.distributions.Normal(mu, ls.exp()).log_prob(c).sum(1).mean())
    assert ch04.check_gaussian_log_likelihood(ig.gaussian_log_likelihood)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    cases = {
        "no log sigma": (lambda c, mu, ls: (-0.5 * ((c - mu) / ls.exp()) ** 2 - half_log_2pi).sum(1).mean(),
                         "normaliser"),
        "variance": (lambda c, mu, ls: (-0.5 * (c - mu) ** 2 / ls.exp() - ls - half_log_2pi).sum(1).mean(),
                     "sigma\\^2"),
        "mean over codes": (lambda c, mu, ls: (-0.5 * ((c - mu) / ls.exp()) ** 2 - ls - half_log_2pi).mean(),
                            "product"),
        "sign": (lambda c, mu, ls: -torch.distributions.Normal(mu, ls.exp()).log_prob(c).sum(1).mean(),
                 "sign"),
    }
    for fn, phrase in cases.values():
        with pytest.raises(ExerciseError, match=phrase):
            ch04.check_gaussian_log_likelihood(fn)


def test_exercise_purity():
    assert ch04.check_purity(ch04.reference_purity)
    assert ch04.check_purity(lambda codes, labels: ig_lab.code_agreement(codes, labels, 10)["purity"])

    def per_value_loop(codes, labels):                             # a correct alternative: one code value at a time
        return sum(int(torch.bincount(labels[codes == v]).max()) for v in codes.unique()) / len(codes)

    assert ch04.check_purity(per_value_loop)
    with pytest.raises(ExerciseError, match="arbitrary names"):
        ch04.check_purity(lambda codes, labels: float((codes == labels).float().mean()))

    def by_label(codes, labels):
        n = ig_lab.contingency(codes, labels)
        return float(n.max(0).values.sum() / n.sum())

    with pytest.raises(ExerciseError, match="other way round"):
        ch04.check_purity(by_label)

    def hungarian(codes, labels):                                  # the best one-to-one matching, scipy directly
        from scipy.optimize import linear_sum_assignment
        n = ig_lab.contingency(codes, labels)
        rows, cols = linear_sum_assignment(-n.numpy())
        return float(n[rows, cols].sum() / n.sum())

    for matched in (hungarian, lambda codes, labels: ig_lab.code_agreement(codes, labels, 10)["matched_accuracy"]):
        with pytest.raises(ExerciseError, match="one to one.*both hold mostly label 1"):   # Hungarian is not purity
            ch04.check_purity(matched)

    def unweighted(codes, labels):                                 # every code value counts the same
        return float(torch.stack([(labels[codes == v] == labels[codes == v].mode().values).float().mean()
                                  for v in codes.unique()]).mean())

    with pytest.raises(ExerciseError, match="averaged the per-code purities equally"):
        ch04.check_purity(unweighted)


def test_purity_cases_include_code_values_that_share_a_label():
    """Hungarian accuracy and purity differ exactly when two code values share a majority label: the cases must
    have such a code, and one where the matching counts less than purity."""
    gaps = [ch04.reference_purity(c, lab) - ch04._matched_accuracy(c, lab) for _, c, lab in ch04._purity_cases()]
    assert max(gaps) > 0.1 and min(gaps) >= 0
    small = next((c, lab) for name, c, lab in ch04._purity_cases() if name.startswith("the 9 samples"))
    assert ch04.reference_purity(*small) == pytest.approx(7 / 9)
    assert ch04._matched_accuracy(*small) == pytest.approx(6 / 9)


def test_unanswered_exercise_says_so():
    def todo(*args):
        raise NotImplementedError()

    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch04.check_gaussian_log_likelihood(todo)


def test_what_code_encodes_finds_the_factor_the_code_copies():
    g = torch.Generator().manual_seed(0)
    family = torch.randint(0, 7, (4000,), generator=g)
    digit = torch.randint(0, 10, (4000,), generator=g)           # independent of the family
    code = family.clone()                                         # a c_1 that encodes the font, not the digit
    rows = ig_lab.what_code_encodes(code, {"digit": digit, "font family": family})
    assert rows["font family"]["share of H(factor)"] > 0.999
    assert rows["font family"]["share of H(c1)"] > 0.999
    assert rows["digit"]["share of H(factor)"] < 0.01             # plug-in MI of independent labels: small bias
    assert abs(rows["digit"]["H(factor)"] - math.log(10)) < 0.01


def test_style_readout_splits_glyph_attribute_labels():
    from gan_course.metrics import attributes
    labels = torch.tensor([[1.0, 0.0, 0, 0, 1, 0, 0, 0, 0], [0.0, 1.0, 1, 0, 0, 0, 0, 0, 0]])
    read = attributes.styles(labels)
    assert read["family"].tolist() == [2, 0] and read["bold"].tolist() == [1, 0]
    assert read["italic"].tolist() == [0, 1] and read["style"].tolist() == [2, 1]
