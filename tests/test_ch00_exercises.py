"""Chapter 00 (measuring GANs): the exercise checks accept the reference answers and other correct formulations,
and reject the usual mistakes with a message that names them."""

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_course.exercises import ExerciseError, ch00
from gan_course.metrics import (
    frechet_distance,
    inception_score_from_logits,
    kid_from_features,
    precision_recall_from_features,
)


def _sqrt_psd(s):
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0).sqrt()) @ v.T


# --------------------------------------------------------------------------- exercise 1: the Fréchet distance
def fd_reference(mu1, s1, mu2, s2):          # the notebook's solution: eigenvalues of S1^1/2 S2 S1^1/2
    root = _sqrt_psd(s1)
    tr_sqrt = torch.linalg.eigvalsh(root @ s2 @ root).clamp_min(0).sqrt().sum()
    return (mu1 - mu2) @ (mu1 - mu2) + torch.trace(s1 + s2) - 2 * tr_sqrt


def fd_scipy(mu1, s1, mu2, s2):              # numpy + scipy.linalg.sqrtm, as in Section 3 (complex round-off kept)
    mu1, s1, mu2, s2 = (np.asarray(a) for a in (mu1, s1, mu2, s2))
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2))


def fd_eigvals(mu1, s1, mu2, s2):            # eigenvalues of the non-symmetric product, in float32
    mu1, s1, mu2, s2 = (a.float() for a in (mu1, s1, mu2, s2))
    tr_sqrt = torch.linalg.eigvals(s1 @ s2).real.clamp_min(0).sqrt().sum()
    return float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2 * tr_sqrt)


def test_check_frechet_distance_accepts_correct_formulations(capsys):
    for fn in (fd_reference, fd_scipy, fd_eigvals, frechet_distance):
        assert ch00.check_frechet_distance(fn)
    assert "Fréchet distance: all checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda m1, s1, m2, s2: (m1 - m2) @ (m1 - m2) + torch.trace(s1 + s2) - torch.linalg.eigvalsh(
        _sqrt_psd(s1) @ s2 @ _sqrt_psd(s1)).clamp_min(0).sqrt().sum(), "factor 2"),
    (lambda m1, s1, m2, s2: (m1 - m2) @ (m1 - m2) + torch.trace(s1 + s2 - 2 * (s1 * s2).sqrt()), "elementwise product"),
    (lambda m1, s1, m2, s2: (m1 - m2) @ (m1 - m2) + torch.trace(s1 + s2 - 2 * (s1 @ s2).sqrt()),
     "elementwise square root of Sigma_1 Sigma_2"),
    (lambda m1, s1, m2, s2: torch.tensor(float("nan")), "NaN"),
    (lambda m1, s1, m2, s2: (m1 - m2) @ (m1 - m2) + torch.trace(s1 + s2 - 2 * _sqrt_psd(s1) @ _sqrt_psd(s2)),
     "commute"),
    (lambda m1, s1, m2, s2: (m1 - m2) @ (m1 - m2) + torch.trace(s1 + s2) - 2 * torch.trace(s1 @ s2).sqrt(),
     "square root of the trace"),
    (lambda m1, s1, m2, s2: (m1 - m2).norm() + fd_reference(m1, s1, m1, s2), "squared distance"),
    (lambda m1, s1, m2, s2: fd_reference(m1, s1, m1, s2), "mean term"),
    (lambda m1, s1, m2, s2: fd_reference(m1, s1, m2, s2) + 1, "off by exactly 1"),
    (lambda m1, s1, m2, s2: (m1 - m2) @ (m1 - m2), "expected"),
    (lambda m1, s1, m2, s2: torch.ones(3), "single number"),
])
def test_check_frechet_distance_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch00.check_frechet_distance(wrong)


def test_check_frechet_distance_reports_a_complex_result_and_the_stub():
    with pytest.raises(ExerciseError, match="complex"):
        ch00.check_frechet_distance(lambda m1, s1, m2, s2: fd_scipy(m1, s1, m2, s2) + 0.5j)

    def stub(mu1, sigma1, mu2, sigma2):
        raise NotImplementedError()
    with pytest.raises(ExerciseError, match="NotImplementedError"):
        ch00.check_frechet_distance(stub)


# --------------------------------------------------------------------------- exercise 2: KID
def kid_reference(x, y):
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3                        # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - kxx.trace()) / (m * (m - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1))
            - 2 * k(x, y).mean())


def kid_masked(x, y):                          # off-diagonal means through masks, float32
    x, y = x.float(), y.float()
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1).pow(3)                               # noqa: E731
    off = lambda g: g[~torch.eye(len(g), dtype=torch.bool)].mean()           # noqa: E731
    return off(k(x, x)) + off(k(y, y)) - 2 * k(x, y).mean()


def kid_library(x, y):                          # the library's estimator on one subset of all rows (m == n only)
    from gan_course.metrics.kid import mmd2_unbiased, polynomial_kernel
    return mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y))


def test_check_kid_accepts_correct_formulations(capsys):
    for fn in (kid_reference, kid_masked, kid_library):
        assert ch00.check_kid(fn)
    assert "KID (unbiased MMD^2, cubic kernel): all checks passed" in capsys.readouterr().out
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(9, 4, generator=g, dtype=torch.float64), torch.randn(9, 4, generator=g, dtype=torch.float64)
    assert abs(float(kid_reference(x, y)) - kid_from_features(x, y, subsets=1, subset_size=9)[0]) < 1e-10


def _k(a, b, degree=3, gamma=None):
    return (a @ b.T * (1 / a.shape[1] if gamma is None else gamma) + 1) ** degree


@pytest.mark.parametrize("wrong, message", [
    (lambda x, y: _k(x, x).mean() + _k(y, y).mean() - 2 * _k(x, y).mean(), "biased estimator"),
    (lambda x, y: _k(x, x).sum() / (len(x) * (len(x) - 1)) + _k(y, y).sum() / (len(y) * (len(y) - 1))
     - 2 * _k(x, y).mean(), "subtract their trace"),
    (lambda x, y: (lambda kxx, kyy, kxy: (kxx.sum() - kxx.trace()) / (len(x) * (len(x) - 1))
                   + (kyy.sum() - kyy.trace()) / (len(y) * (len(y) - 1)) - 2 * kxy.mean())(
        _k(x, x, 2), _k(y, y, 2), _k(x, y, 2)), "degree 2"),
    (lambda x, y: (lambda kxx, kyy, kxy: (kxx.sum() - kxx.trace()) / (len(x) * (len(x) - 1))
                   + (kyy.sum() - kyy.trace()) / (len(y) * (len(y) - 1)) - 2 * kxy.mean())(
        _k(x, x, gamma=1.0), _k(y, y, gamma=1.0), _k(x, y, gamma=1.0)), "1/d"),
    (lambda x, y: kid_reference(x, y) + _k(x, y).mean(), "factor 2"),
    (lambda x, y: kid_reference(x, y).clamp_min(0), "clip"),
    (lambda x, y: kid_reference(x, y).abs().sqrt(), "square root"),
    (lambda x, y: kid_reference(x, y) + 1, "off by exactly 1"),
])
def test_check_kid_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch00.check_kid(wrong)


def test_check_kid_recognises_the_sample_count_for_d():
    def kid_wrong_d(x, y):
        k = lambda a, b: (a @ b.T / len(x) + 1) ** 3                        # noqa: E731
        m, n = len(x), len(y)
        kxx, kyy = k(x, x), k(y, y)
        return ((kxx.sum() - kxx.trace()) / (m * (m - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1))
                - 2 * k(x, y).mean())
    with pytest.raises(ExerciseError, match="feature dimension, x.shape"):
        ch00.check_kid(kid_wrong_d)


# --------------------------------------------------------------------------- exercise 3: the Inception Score
def is_reference(p):
    p_y = p.mean(0, keepdim=True)
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, p_y)).sum(1)
    return kl.mean().exp()


def is_clamped(p):                            # entropies, log of clamped probabilities, float32
    p = p.float()
    h = lambda q: -(q * q.clamp_min(1e-12).log()).sum(-1)                    # noqa: E731
    return float(np.exp(float(h(p.mean(0)) - h(p).mean())))


def test_check_inception_score_accepts_correct_formulations(capsys):
    for fn in (is_reference, is_clamped, lambda p: inception_score_from_logits(p.clamp_min(1e-30).log(), 1)[0]):
        assert ch00.check_inception_score(fn)
    assert "Inception Score: all checks passed" in capsys.readouterr().out


def _kl(p, q):
    return (p * (p / q).log()).sum(1)


@pytest.mark.parametrize("wrong, message", [
    (lambda p: is_reference(p).log(), "log of the score"),
    (lambda p: _kl(p.mean(0, keepdim=True).expand_as(p), p).mean().exp(), "reversed"),
    (lambda p: (p * (p * p.shape[1]).log()).sum(1).mean().exp(), "uniform"),
    (lambda p: _kl(p, p.mean(0, keepdim=True)).exp().mean(), "exponential of the mean"),
    (lambda p: _kl(p, p.mean(0, keepdim=True)).mean().exp(), "NaN"),     # 0 log 0 on the one-hot case
    (lambda p: is_reference(p) + 1, "off by exactly 1"),
])
def test_check_inception_score_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch00.check_inception_score(wrong)


# --------------------------------------------------------------------------- exercise 4: precision and recall
def pr_reference(f_real, f_fake, k):
    r_real = torch.cdist(f_real, f_real).kthvalue(k + 1, dim=1).values
    r_fake = torch.cdist(f_fake, f_fake).kthvalue(k + 1, dim=1).values
    precision = (torch.cdist(f_fake, f_real) <= r_real).any(1).double().mean()
    recall = (torch.cdist(f_real, f_fake) <= r_fake).any(1).double().mean()
    return precision, recall


def pr_loops(f_real, f_fake, k):               # sorted distances, squared, Python floats
    def radii(f):
        d2 = ((f[:, None] - f[None]) ** 2).sum(-1)
        return d2.sort(1).values[:, k]
    def inside(q, ref, r2):
        return float(sum(bool((((ref - x) ** 2).sum(1) <= r2).any()) for x in q) / len(q))
    return inside(f_fake, f_real, radii(f_real)), inside(f_real, f_fake, radii(f_fake))


def test_check_precision_recall_accepts_correct_formulations(capsys):
    for fn in (pr_reference, pr_loops, precision_recall_from_features):
        assert ch00.check_precision_recall(fn)
    assert "k-NN precision and recall: all checks passed" in capsys.readouterr().out


def _radii(f, k):
    return torch.cdist(f, f).kthvalue(k + 1, dim=1).values


@pytest.mark.parametrize("wrong, message", [
    (lambda r, f, k: pr_reference(r, f, k)[::-1], "swapped"),
    (lambda r, f, k: pr_reference(f, r, k), "roles of the real and the generated features exchanged"),
    (lambda r, f, k: pr_reference(r, f, k - 1) if k > 1 else pr_reference(r, f, k), "point itself"),
    (lambda r, f, k: (float((torch.cdist(f, r).min(1).values <= _radii(f, k)).double().mean()),
                      float((torch.cdist(r, f).min(1).values <= _radii(r, k)).double().mean())), "its own k-NN radius"),
    (lambda r, f, k: (float((torch.cdist(f, r) <= _radii(r, k)).any(0).double().mean()),
                      float((torch.cdist(r, f) <= _radii(f, k)).any(0).double().mean())), "coverage"),
    (lambda r, f, k: (pr_reference(r, f, k)[0],), "pair"),
])
def test_check_precision_recall_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch00.check_precision_recall(wrong)


def test_check_precision_recall_names_a_point_that_counts_itself_with_the_library_k():
    """kthvalue(k) instead of kthvalue(k + 1): the radius of the (k-1)-th other neighbour."""
    def counts_itself(f_real, f_fake, k):
        r_real = torch.cdist(f_real, f_real).kthvalue(k, dim=1).values
        r_fake = torch.cdist(f_fake, f_fake).kthvalue(k, dim=1).values
        return ((torch.cdist(f_fake, f_real) <= r_real).any(1).double().mean(),
                (torch.cdist(f_real, f_fake) <= r_fake).any(1).double().mean())
    with pytest.raises(ExerciseError, match="point itself"):
        ch00.check_precision_recall(counts_itself)
