"""gan_course.metrics against independent references (scipy, torchmetrics, closed forms) and the behaviour
the papers describe: FID's bias, KID's unbiasedness, precision vs recall, IS bounds, mode collapse."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_course.data import load
from gan_course.metrics import (
    FeatureNet,
    ImageNetInception,
    ImageSource,
    Protocol,
    RandomInception,
    adapt,
    available_classifiers,
    classifier_agreement,
    course_classifier,
    data_copying,
    density_coverage_from_features,
    evaluate,
    extract,
    feature_network,
    fid,
    fid_from_features,
    frechet_distance,
    gaussian_stats,
    inception_score,
    inception_score_from_logits,
    kid,
    kid_from_features,
    mode_coverage,
    mode_coverage_from_predictions,
    nearest_distances,
    precision_recall,
    precision_recall_from_features,
)
from gan_course.metrics.classifier import WEIGHTS_DIR


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _random_spd(d, seed, rank=None):
    a = torch.randn(d, rank or d, generator=_gen(seed), dtype=torch.float64)
    return a @ a.T + (1e-3 * torch.eye(d, dtype=torch.float64) if rank is None else 0)


def _scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    return float(((mu1 - mu2) ** 2).sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * covmean))


@pytest.fixture(scope="module")
def glyphs_test():
    return load("glyphs", split="test")


@pytest.fixture(scope="module")
def glyphs_net():
    return course_classifier("glyphs")


# --- Fréchet distance / FID -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_scipy_sqrtm_on_random_spd_matrices(seed):
    d = 24
    mu1, mu2 = torch.randn(d, generator=_gen(seed), dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    s1, s2 = _random_spd(d, seed + 10), _random_spd(d, seed + 20)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_scipy_fid(mu1, s1, mu2, s2), rel=1e-8)


def test_frechet_distance_is_finite_for_singular_covariances():
    d = 40
    s1, s2 = _random_spd(d, 1, rank=5), _random_spd(d, 2, rank=7)     # fewer samples than dimensions
    mu = torch.zeros(d, dtype=torch.float64)
    value = frechet_distance(mu, s1, mu, s2)
    assert math.isfinite(value) and value >= 0
    assert value == pytest.approx(_scipy_fid(mu, s1, mu, s2), rel=1e-5)
    assert frechet_distance(mu, s1, mu, s1) == pytest.approx(0.0, abs=1e-6 * float(torch.trace(s1)))


@pytest.mark.parametrize("n1, n2, d", [(30, 40, 64), (40, 40, 40), (12, 9, 300)])
def test_fid_from_fewer_features_than_dimensions_matches_the_covariance_route_and_scipy(n1, n2, d):
    """min(N) <= D takes the N1 x N2 singular-value route (rank-deficient covariances, e.g. rFID on a few
    hundred 2048-d vectors); it must give the same number as the D x D route and as scipy's sqrtm."""
    f1 = torch.randn(n1, d, generator=_gen(n1), dtype=torch.float64)
    f2 = 0.3 + 1.5 * torch.randn(n2, d, generator=_gen(n2 + 1), dtype=torch.float64)
    (mu1, s1), (mu2, s2) = gaussian_stats(f1), gaussian_stats(f2)
    value = fid_from_features(f1, f2)
    assert value == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-7)
    assert value == pytest.approx(_scipy_fid(mu1, s1, mu2, s2), rel=1e-5)
    assert fid_from_features(f1, f1) == pytest.approx(0.0, abs=1e-9 * float(torch.trace(s1)))


def test_fid_of_a_set_with_itself_is_zero():
    f = torch.randn(300, 16, generator=_gen(0))
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_two_gaussians_has_the_closed_form():
    """Diagonal covariances commute: FID = |mu1 - mu2|^2 + sum_i (sigma1_i - sigma2_i)^2 (std devs)."""
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0, 0.5]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    sd1, sd2 = torch.tensor([1.0, 2.0, 0.5, 1.0]), torch.tensor([1.5, 1.0, 0.5, 3.0])
    exact = float(((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum())
    assert frechet_distance(mu1, torch.diag(sd1**2), mu2, torch.diag(sd2**2)) == pytest.approx(exact, rel=1e-10)
    n = 40_000   # and from samples, up to the estimation error
    x = mu1 + sd1 * torch.randn(n, 4, generator=_gen(1), dtype=torch.float64)
    y = mu2 + sd2 * torch.randn(n, 4, generator=_gen(2), dtype=torch.float64)
    assert fid_from_features(x, y) == pytest.approx(exact, rel=0.03)


def test_fid_is_biased_upwards_with_few_samples():
    """Two samples of one distribution: FID > 0 on average, shrinking as n grows (~1/n)."""
    d = 16
    small = np.mean([fid_from_features(torch.randn(100, d, generator=_gen(s)),
                                       torch.randn(100, d, generator=_gen(100 + s))) for s in range(5)])
    large = np.mean([fid_from_features(torch.randn(1000, d, generator=_gen(s)),
                                       torch.randn(1000, d, generator=_gen(100 + s))) for s in range(5)])
    assert small > 5 * large > 0


def test_fid_matches_torchmetrics_with_the_same_feature_network(glyphs_test, glyphs_net):
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, _ = glyphs_test.get_batch(torch.arange(0, 300))
    fake, _ = glyphs_test.get_batch(torch.arange(300, 600))
    fake = (fake + 0.3 * torch.randn(fake.shape, generator=_gen(0))).clamp(-1, 1)
    reference = FrechetInceptionDistance(feature=glyphs_net)        # torchmetrics accepts a custom nn.Module
    reference.update(real, real=True)
    reference.update(fake, real=False)
    ours = fid(real, fake, glyphs_net)
    assert ours > 1.0
    assert ours == pytest.approx(float(reference.compute()), rel=1e-4)


# --- KID ------------------------------------------------------------------------------------------------------
def test_kid_matches_torchmetrics_with_the_same_feature_network(glyphs_test, glyphs_net):
    from torchmetrics.image.kid import KernelInceptionDistance

    real, _ = glyphs_test.get_batch(torch.arange(0, 200))
    fake, _ = glyphs_test.get_batch(torch.arange(200, 400))
    fake = (fake + 0.3 * torch.randn(fake.shape, generator=_gen(0))).clamp(-1, 1)
    # one subset of all 200 images: the estimate does not depend on the random permutation
    reference = KernelInceptionDistance(feature=glyphs_net, subsets=1, subset_size=200)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    ref_mean, _ = reference.compute()
    ours, std = kid(real, fake, glyphs_net, subsets=1, subset_size=200)
    assert ours == pytest.approx(float(ref_mean), rel=1e-4)
    assert std == 0.0


def test_kid_is_unbiased_for_two_samples_of_one_distribution():
    """Mean over seeds ~ 0 (within 3 standard errors), while FID on the same pairs is clearly positive."""
    kids, fids = [], []
    for s in range(20):
        a, b = torch.randn(200, 16, generator=_gen(s)), torch.randn(200, 16, generator=_gen(1000 + s))
        kids.append(kid_from_features(a, b, subsets=1, subset_size=200)[0])
        fids.append(fid_from_features(a, b))
    kids = torch.tensor(kids)
    assert abs(kids.mean()) < 3 * kids.std() / math.sqrt(len(kids))
    assert np.mean(fids) > 0.5


def test_kid_is_near_zero_for_identical_distributions_and_positive_for_different_ones():
    a, b = torch.randn(600, 8, generator=_gen(0)), torch.randn(600, 8, generator=_gen(1))
    same, same_std = kid_from_features(a, b, subsets=20, subset_size=300)
    shifted, _ = kid_from_features(a, b + 0.5, subsets=20, subset_size=300)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * abs(same)


def test_kid_subsets_are_seeded():
    a, b = torch.randn(300, 8, generator=_gen(0)), torch.randn(300, 8, generator=_gen(1))
    assert kid_from_features(a, b, subsets=5, subset_size=100, seed=3) == \
        kid_from_features(a, b, subsets=5, subset_size=100, seed=3)


# --- Inception Score ------------------------------------------------------------------------------------------
def test_inception_score_of_confident_uniform_predictions_is_the_number_of_classes():
    k = 10
    logits = 30 * torch.eye(k).repeat(50, 1)                          # every class equally often, confidently
    mean, std = inception_score_from_logits(logits, splits=5)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_of_a_constant_prediction_is_one():
    logits = torch.zeros(500, 10)
    logits[:, 3] = 30                                                  # every image: class 3
    assert inception_score_from_logits(logits)[0] == pytest.approx(1.0, abs=1e-6)
    assert inception_score_from_logits(torch.zeros(500, 10))[0] == pytest.approx(1.0)  # unsure predictions


def test_inception_score_matches_torchmetrics_with_the_same_classifier(glyphs_test, glyphs_net):
    from torchmetrics.image.inception import InceptionScore

    class Logits(torch.nn.Module):                      # torchmetrics' IS takes a module that returns logits
        def forward(self, x):
            return glyphs_net.logits(x)

    x, _ = glyphs_test.get_batch(torch.arange(300))
    x = (x + 0.3 * torch.randn(x.shape, generator=_gen(0))).clamp(-1, 1)   # less confident predictions
    with torch.random.fork_rng(devices=[]):             # compute() permutes with the global RNG
        reference = InceptionScore(feature=Logits(), splits=1)
        reference.update(x)
        ref_mean, _ = reference.compute()
    ours, std = inception_score(x, glyphs_net, splits=1)
    assert 2 < ours < 18                                # neither of the trivial values 1 and K
    assert ours == pytest.approx(float(ref_mean), rel=1e-4) and std == 0.0


def test_inception_score_of_real_glyphs_is_close_to_the_number_of_classes(glyphs_test, glyphs_net):
    mean, _ = inception_score(glyphs_test, glyphs_net, n=1000, splits=5)
    assert 15 < mean <= 20


# --- precision / recall ---------------------------------------------------------------------------------------
def test_precision_recall_separate_fidelity_from_variety():
    d, n = 16, 1000
    real = torch.randn(n, d, generator=_gen(0))
    full = torch.randn(n, d, generator=_gen(1))
    z = torch.randn(4 * n, d, generator=_gen(2))
    truncated = z[z.norm(dim=1) < z.norm(dim=1).quantile(0.2)]       # only the typical core: no variety
    p_full, r_full = precision_recall_from_features(real, full, k=3)
    p_trunc, r_trunc = precision_recall_from_features(real, truncated, k=3)
    assert p_full > 0.7 and r_full > 0.7
    assert p_trunc > 0.95 and r_trunc < 0.5
    p_wide, r_wide = precision_recall_from_features(real, 2 * full, k=3)   # too much spread: low fidelity
    assert p_wide < 0.2 and r_wide > 0.95


def test_precision_recall_match_a_brute_force_reading_of_the_paper():
    """Kynkäänniemi et al. Eq. 1-3 with explicit loops: phi is on the manifold of Phi when it lies within the
    k-NN radius of at least one phi' in Phi (the k-th nearest *other* point of Phi)."""
    real = np.random.default_rng(0).normal(size=(60, 5))
    fake = np.random.default_rng(1).normal(loc=0.4, scale=1.3, size=(50, 5))

    def radii(points, k):
        return [sorted(np.linalg.norm(points - p, axis=1))[k] for p in points]    # [0] is p itself

    def fraction(queries, points, k):
        r = radii(points, k)
        return np.mean([any(np.linalg.norm(q - p) <= r_j for p, r_j in zip(points, r, strict=True))
                        for q in queries])

    for k in (1, 3, 5):
        p, r = precision_recall_from_features(torch.from_numpy(real), torch.from_numpy(fake), k=k)
        assert p == pytest.approx(fraction(fake, real, k)) and r == pytest.approx(fraction(real, fake, k))
    assert 0 < p < 1 and 0 < r < 1


def test_precision_recall_on_images_with_the_course_classifier(glyphs_test, glyphs_net):
    real = glyphs_test.subset(torch.arange(0, 400))
    same = glyphs_test.subset(torch.arange(400, 800))
    digits_only = glyphs_test.subset((glyphs_test.targets < 10).nonzero().squeeze(1)[:400])
    p, r = precision_recall(real, same, glyphs_net)
    assert p > 0.7 and r > 0.7
    p_d, r_d = precision_recall(real, digits_only, glyphs_net)             # half the classes dropped
    assert p_d > 0.7 and r_d < 0.65


# --- mode coverage and classifier agreement ------------------------------------------------------------------
def test_mode_coverage_detects_a_collapsed_generator(glyphs_test, glyphs_net):
    full = mode_coverage(glyphs_net, glyphs_test, n=1000)
    assert full.covered == full.num_classes == 20 and full.kl < 0.05 and not full.missing
    two = glyphs_test.subset((glyphs_test.targets == 3) | (glyphs_test.targets == 12))
    collapsed = mode_coverage(glyphs_net, two, n=400)
    assert collapsed.covered == 2 and collapsed.num_classes == 20
    assert collapsed.kl == pytest.approx(math.log(10), abs=0.05)
    assert set(collapsed.missing) == set(glyphs_net.classes) - {"3", "E"}
    assert "2/20 classes covered" in str(collapsed)


def test_mode_coverage_rule_uses_a_quarter_of_the_uniform_share():
    k = 4                     # 1000 predictions: shares 0.5, 0.44, 0.05, 0.01 against 0.25 each
    predictions = torch.tensor([0] * 500 + [1] * 440 + [2] * 50 + [3] * 10)
    cov = mode_coverage_from_predictions(predictions, k)
    assert cov.covered == 2 and cov.missing == ["2", "3"]                 # 0.05 and 0.01 < 0.25 / 4
    assert mode_coverage_from_predictions(predictions, k, threshold=0.15).covered == 3
    p = torch.tensor([0.5, 0.44, 0.05, 0.01], dtype=torch.float64)
    assert cov.kl == pytest.approx(float((p * (p / 0.25).log()).sum()), rel=1e-9)


def test_mode_coverage_against_a_reference_with_missing_classes():
    predictions = torch.tensor([0, 1] * 50)
    cov = mode_coverage_from_predictions(predictions, 4, reference=torch.tensor([0, 1, 0, 1]))
    assert cov.num_classes == 2 and cov.covered == 2 and cov.kl == pytest.approx(0.0, abs=1e-3)


def test_classifier_agreement(glyphs_test, glyphs_net):
    x, y = glyphs_test.get_batch(torch.arange(500))
    assert classifier_agreement(glyphs_net, x, y) > 0.98
    assert classifier_agreement(glyphs_net, x, (y + 1) % 20) < 0.05
    assert classifier_agreement("glyphs", lambda n: x[:n], y) > 0.98          # a sample(n) callable


# --- sources and feature networks -----------------------------------------------------------------------------
def test_image_source_takes_tensors_datasets_and_callables(glyphs_test):
    u8 = glyphs_test.images[:50]
    src = ImageSource(u8, n=20, seed=1)
    x = src.tensor()
    assert x.shape == (20, 1, 28, 28) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, ImageSource(u8, n=20, seed=1).tensor())          # seeded subset
    assert not torch.equal(x, ImageSource(u8, n=20, seed=2).tensor())
    from_ds = ImageSource(glyphs_test, n=20, seed=1).tensor()
    assert torch.equal(from_ds, glyphs_test.get_batch(ImageSource(glyphs_test, n=20, seed=1).index)[0])

    class Plain(torch.utils.data.Dataset):                                 # any map-style dataset
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.full((3, 8, 8), i / 10), i

    assert ImageSource(Plain()).tensor().shape == (10, 3, 8, 8)
    calls = []

    def sample(n):
        calls.append(n)
        return torch.zeros(n, 1, 8, 8)

    assert sum(len(b) for b in ImageSource(sample, n=70).batches(32)) == 70 and calls == [70]
    calls.clear()
    assert len(ImageSource(sample, n=70, chunk=30).tensor()) == 70 and calls == [30, 30, 10]
    with pytest.raises(ValueError, match="needs n"):
        ImageSource(sample)
    with pytest.raises(ValueError, match="only 50"):
        ImageSource(u8, n=51)
    with pytest.raises(TypeError):
        ImageSource("glyphs", n=5)


def test_adapt_converts_channels_and_size():
    grey = torch.rand(2, 1, 28, 28) * 2 - 1
    rgb = adapt(grey, 3, 32)
    assert rgb.shape == (2, 3, 32, 32) and torch.allclose(rgb[:, 0], rgb[:, 2])
    back = adapt(adapt(grey, 3, None), 1, None)
    assert torch.allclose(back, grey, atol=1e-6)                            # luma weights sum to 1
    with pytest.raises(ValueError, match="channels"):
        adapt(torch.zeros(1, 2, 8, 8), 3, 8)


def test_course_classifier_accepts_other_sizes_and_channels(glyphs_net):
    for shape in [(4, 1, 28, 28), (4, 1, 64, 64), (4, 3, 32, 32)]:
        x = torch.rand(shape) * 2 - 1
        assert glyphs_net.features(x).shape == (4, 128)
        assert glyphs_net.logits(x).shape == (4, 20)


def test_extract_batches_on_the_network_device_and_shows_progress(glyphs_test, glyphs_net):
    f1 = extract(glyphs_net, glyphs_test, n=300, batch_size=128, progress=True)
    f2 = extract(glyphs_net, glyphs_test, n=300, batch_size=300)
    assert f1.shape == (300, 128) and f1.device.type == "cpu"
    assert torch.allclose(f1, f2, atol=1e-4)


def test_metrics_accept_precomputed_features():
    a, b = torch.randn(100, 8, generator=_gen(0)), torch.randn(100, 8, generator=_gen(1))
    assert fid(a, b, None) == pytest.approx(fid_from_features(a, b))
    assert kid(a, b, None, subsets=3, subset_size=50) == kid_from_features(a, b, subsets=3, subset_size=50)
    assert precision_recall(a, b, None) == precision_recall_from_features(a, b)
    mu, sigma = gaussian_stats(a)
    assert torch.allclose(sigma, torch.from_numpy(np.cov(a.double().numpy(), rowvar=False)))


# --- the shipped classifiers ----------------------------------------------------------------------------------
def test_shipped_classifiers_load_are_small_and_documented():
    names = available_classifiers()
    assert {"glyphs", "shapes"} <= set(names)
    readme = (WEIGHTS_DIR / "README.md").read_text()
    for name in names:
        path = WEIGHTS_DIR / f"{name}.pt"
        assert path.stat().st_size < 1_000_000
        net = course_classifier(name)
        meta = net.meta
        for key in ("classes", "image_size", "channels", "test_accuracy", "command"):
            assert key in meta, f"{name}: meta lacks {key}"
        assert f"--dataset {name}" in meta["command"] and f"`{name}.pt`" in readme
        assert not net.training and not any(p.requires_grad for p in net.parameters())
        x = torch.zeros(2, meta["channels"], meta["image_size"], meta["image_size"])
        assert net.features(x).shape == (2, net.num_features) and net.logits(x).shape == (2, len(meta["classes"]))


def test_unknown_classifier_raises_a_value_error_listing_the_available_ones():
    with pytest.raises(ValueError, match="glyphs") as info:
        course_classifier("cifar10")
    assert "train_classifier" in str(info.value)
    with pytest.raises(ValueError, match="random-inception"):
        feature_network("nope")


@pytest.mark.parametrize("dataset, minimum", [("glyphs", 0.95), ("shapes", 0.95)])
def test_embedded_classifiers_reach_their_recorded_accuracy(dataset, minimum):
    net = course_classifier(dataset)
    test_set = load(dataset, split="test")
    idx = torch.randperm(len(test_set), generator=_gen(0))[:2000]
    x, y = test_set.get_batch(idx)
    accuracy = float((net.logits(x).argmax(1) == y).float().mean())
    assert net.meta["test_accuracy"] >= minimum
    assert accuracy >= net.meta["test_accuracy"] - 0.01                  # a 2,000-image subset


@pytest.mark.realdata
def test_mnist_classifier_reaches_its_recorded_accuracy(shared_data):
    if "mnist" not in available_classifiers():
        pytest.skip("no MNIST classifier shipped")
    from gan_course.metrics.train_classifier import accuracy

    net = course_classifier("mnist")
    measured = accuracy(net, load("mnist", split="test", root=shared_data))
    assert net.meta["test_accuracy"] >= 0.98
    assert measured == pytest.approx(net.meta["test_accuracy"], abs=0.002)


def test_train_classifier_is_deterministic_under_a_seed(tmp_path):
    from gan_course.metrics.train_classifier import main

    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    threads = torch.get_num_threads()
    try:
        for path in paths:
            main(["--dataset", "glyphs", "--limit", "512", "--batch-size", "64", "--test-limit", "500",
                  "--out", str(path)])
    finally:
        torch.set_num_threads(threads)
    a, b = (torch.load(p, weights_only=True) for p in paths)
    assert a["meta"]["command"].endswith("--batch-size 64 --limit 512 --test-limit 500") and a["meta"]["test_images"] == 500
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert not (WEIGHTS_DIR / "a.pt").exists()


# --- Inception networks ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_random_inception_is_deterministic_across_constructions():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = RandomInception(seed=0)
    assert torch.equal(state, torch.random.get_rng_state())               # the global RNG is untouched
    torch.manual_seed(456)                                                 # ... and not used
    b = RandomInception(seed=0)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    w = a.net.Mixed_7c.branch3x3dbl_1.conv.weight                          # He init: var = 2 / fan_in
    assert w.var().item() == pytest.approx(2 / w[0].numel(), rel=0.02)
    x = torch.rand(2, 1, 28, 28, generator=_gen(0)) * 2 - 1                # grey 28x28 -> RGB 299x299
    fa = a.features(x)
    assert fa.shape == (2, 2048) and torch.isfinite(fa).all()
    assert 0.01 < fa.pow(2).mean().sqrt() < 10                              # no overflow, no vanishing
    assert (fa[0] - fa[1]).norm() > 1e-3 * fa.norm()                       # different images, different features
    c = RandomInception(seed=1, image_size=75)
    assert not torch.equal(c.net.Conv2d_1a_3x3.conv.weight, a.net.Conv2d_1a_3x3.conv.weight)
    assert "75x75" in c.description and c.name != a.name
    with pytest.raises(ValueError, match="75x75"):
        RandomInception(image_size=64)


@pytest.mark.slow
def test_random_inception_features_rank_damaged_images_below_held_out_ones(glyphs_test):
    """rFID at 75x75 on 32 images per set: held-out glyphs are closer to the reference than blurred ones, and
    KID (unbiased at this tiny n) sees the additive noise too."""
    import torchvision.transforms.functional as TF

    net = RandomInception(image_size=75)
    idx = torch.randperm(len(glyphs_test), generator=_gen(0))[:128]
    real, other, noisy, blurred = (glyphs_test.get_batch(idx[i:i + 32])[0] for i in range(0, 128, 32))
    noisy = (noisy + 0.5 * torch.randn(noisy.shape, generator=_gen(1))).clamp(-1, 1)
    blurred = TF.gaussian_blur(blurred, kernel_size=7, sigma=1.5)
    f = {name: extract(net, x) for name, x in dict(real=real, other=other, noisy=noisy, blurred=blurred).items()}
    assert all(torch.isfinite(v).all() for v in f.values())
    assert 10 * fid_from_features(f["real"], f["other"]) < fid_from_features(f["real"], f["blurred"])
    kid_other = kid_from_features(f["real"], f["other"], subsets=1, subset_size=32)[0]
    kid_noisy = kid_from_features(f["real"], f["noisy"], subsets=1, subset_size=32)[0]
    assert kid_other < kid_noisy


def test_imagenet_inception_explains_what_is_missing(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="No Inception-v3 weights at"):
        ImageNetInception(weights=tmp_path / "missing.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))          # nothing cached there
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(RuntimeError, match="weights='/path/to/"):
        ImageNetInception()


# --- evaluate -------------------------------------------------------------------------------------------------
SMALL = Protocol(kid_subsets=5, kid_subset_size=200)


def test_evaluate_scores_real_data_well_and_a_collapsed_generator_badly(glyphs_test):
    good = lambda n: glyphs_test.get_batch(torch.arange(n))[0]
    one_class = glyphs_test.subset(glyphs_test.targets == 7)
    collapsed = lambda n: one_class.get_batch(torch.arange(n) % len(one_class))[0]
    m_good = evaluate(good, "glyphs", n=400, protocol=SMALL, device="cpu")
    m_bad = evaluate(collapsed, "glyphs", n=400, protocol=SMALL, device="cpu")
    assert m_good["classes_covered"] == 20 and m_bad["classes_covered"] == 1
    assert m_good["fid"] < m_bad["fid"] / 10 and m_good["kid"] < m_bad["kid"] / 10
    assert m_good["precision"] > 0.7 and m_good["recall"] > 0.7 and m_bad["recall"] < 0.2
    assert m_good["inception_score"] > 15 and m_bad["inception_score"] < 1.5
    assert m_bad["class_kl"] == pytest.approx(math.log(20), abs=0.05)
    assert "course classifier 'glyphs'" in m_good["feature_network"] and m_good["n"] == 400
    tagged = evaluate(good, "glyphs", n=400, protocol=SMALL, device="cpu", tag=True)
    assert tagged["fid_glyphs_classifier"] == pytest.approx(m_good["fid"])
    assert {"kid_glyphs_classifier", "recall_glyphs_classifier", "num_classes"} <= set(tagged)


def test_evaluate_reads_split_from_data_options_and_rejects_a_bad_protocol(glyphs_test):
    good = lambda n: glyphs_test.get_batch(torch.arange(n))[0]
    on_train = evaluate(good, "glyphs", n=200, protocol=SMALL, device="cpu")
    on_test = evaluate(good, "glyphs", n=200, protocol=SMALL, device="cpu", data_options={"split": "test"})
    assert on_test["fid"] < on_train["fid"]        # the same test images score closer to the test split
    with pytest.raises(ValueError, match="kid_subsets"):
        Protocol(kid_subsets=0)
    with pytest.raises(ValueError, match="rfid_n"):
        Protocol(rfid_n=-1)
    with pytest.raises(TypeError, match="Protocol"):
        evaluate(good, "glyphs", n=20, protocol={"k": 3})
    with pytest.raises(TypeError):
        evaluate(good, "glyphs", n=20, kid_subsets=5)          # the old keywords are gone, not silently ignored


@pytest.mark.slow
def test_evaluate_adds_rfid_with_its_network_named(glyphs_test):
    good = lambda n: glyphs_test.get_batch(torch.arange(n))[0]
    m = evaluate(good, "glyphs", n=40, protocol=Protocol(kid_subsets=2, kid_subset_size=20, rfid_n=16, rfid_size=75),
                 device="cpu", tag=True)
    assert math.isfinite(m["fid_random_inception75"]) and m["fid_random_inception75"] > 0
    assert "random Inception-v3" in m["rfid_network"] and "75x75" in m["rfid_network"] and "n=16" in m["rfid_network"]


def test_feature_net_works_as_a_torchmetrics_feature_module(glyphs_net):
    assert isinstance(glyphs_net, FeatureNet) and glyphs_net.num_features == 128
    assert torch.equal(glyphs_net(torch.zeros(1, 1, 28, 28)), glyphs_net.features(torch.zeros(1, 1, 28, 28)))


def test_weights_dir_is_package_data():
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert "metrics/weights/*.pt" in text
    assert os.path.isdir(WEIGHTS_DIR)


# --- density / coverage (Naeem et al. 2020) and the data-copying check (Meehan et al. 2020) -------------------------
def test_density_coverage_match_their_definition_on_a_small_set():
    g = torch.Generator().manual_seed(3)
    real, fake, k = torch.randn(30, 4, generator=g), torch.randn(20, 4, generator=g) * 1.3, 3
    d = torch.cdist(real.double(), real.double())
    radii = d.sort(dim=1).values[:, k]                              # k-th neighbour, the point itself excluded
    inside = torch.cdist(fake.double(), real.double()) <= radii     # (M, N): Y_j in B(X_i, NND_k(X_i))
    density = inside.sum().item() / (k * len(fake))
    coverage = inside.any(dim=0).double().mean().item()
    got = density_coverage_from_features(real, fake, k=k)
    assert got.density == pytest.approx(density) and got.coverage == pytest.approx(coverage)


def test_density_coverage_tell_crowding_from_missing_support():
    g = torch.Generator().manual_seed(0)
    real, same = torch.randn(600, 8, generator=g), torch.randn(600, 8, generator=g)
    matched = density_coverage_from_features(real, same)
    crowded = density_coverage_from_features(real, real[:60].repeat(10, 1))    # ten copies of 60 real points
    away = density_coverage_from_features(real, torch.randn(600, 8, generator=g) + 4)
    assert 0.7 < matched.density < 1.3 and matched.coverage > 0.9
    assert crowded.coverage < 0.6 * matched.coverage                             # most real balls hold no sample
    assert away.density == 0 and away.coverage == 0


def test_data_copying_flags_copies_and_passes_fresh_samples():
    g = torch.Generator().manual_seed(1)
    train, test, fresh = (torch.randn(800, 8, generator=g) for _ in range(3))
    copied = data_copying(train, test, train[:400] + 0.01 * torch.randn(400, 8, generator=g))
    new = data_copying(train, test, fresh)
    worse = data_copying(train, test, 2 * fresh)
    assert copied.z < -10 and copied.median_ratio < 0.1
    assert abs(new.z) < 3 and 0.8 < new.median_ratio < 1.2
    assert worse.z > 10 and worse.median_ratio > 1.5
    assert torch.allclose(nearest_distances(train[:5], train), torch.zeros(5, dtype=torch.float64), atol=1e-6)
