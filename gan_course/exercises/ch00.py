"""Checks for chapter 00 (measuring GANs): the metrics the course reports, written by the learner.

1. ``check_frechet_distance``: the Fréchet distance between two Gaussians (Heusel et al. 2017, Eq. 6; FID).
2. ``check_kid``: the unbiased MMD^2 with the cubic polynomial kernel (Bińkowski et al. 2018, Eq. 2; KID).
3. ``check_inception_score``: IS = exp(E_x KL(p(y|x) || p(y))) from class probabilities (Salimans et al. 2016).
4. ``check_precision_recall``: k-NN precision and recall (Kynkäänniemi et al. 2019, Eq. 1-3).

Each check compares the learner's function with the library's reference (``gan_course.metrics``) on cases with
known answers, recognises the usual mistakes and says what to think about; it prints a success line or raises
``ExerciseError``.
"""

from __future__ import annotations

import math

import scipy.linalg
import torch

from ..metrics.fid import frechet_distance as _library_frechet_distance
from ..metrics.inception_score import inception_score_from_logits
from ..metrics.kid import mmd2_unbiased, polynomial_kernel
from ..metrics.precision_recall import knn_radii, manifold_fraction
from . import ExerciseError, call, expect, passed

__all__ = ["check_frechet_distance", "check_kid", "check_inception_score", "check_precision_recall"]


def _number(value, what: str) -> float:
    """``value`` (a Python or numpy number, a one-element tensor or array) as a float; the imaginary part of a
    complex result (scipy.linalg.sqrtm's round-off) is dropped when it is negligible."""
    try:
        t = torch.as_tensor(value.detach().cpu() if torch.is_tensor(value) else value)
    except (TypeError, ValueError, RuntimeError):
        raise ExerciseError(f"{what}: return a number (a float or a 0-d tensor), got {type(value).__name__}.") from None
    if t.numel() != 1:
        raise ExerciseError(f"{what}: return a single number, got a {type(value).__name__} of shape "
                            f"{tuple(t.shape)}. A trace, a sum or a mean reduces to one number.")
    if t.is_complex():
        re, im = float(t.real.reshape(())), float(t.imag.reshape(()))
        if abs(im) > 1e-6 * max(1.0, abs(re)):
            raise ExerciseError(f"{what}: your result is complex ({re:.4g} + {im:.4g}j). The eigenvalues of "
                                "Sigma_1 Sigma_2 are real and >= 0 (those of a product of two covariance matrices), "
                                "so only round-off makes them complex: keep their real part.")
        return re
    return float(t.double().reshape(()))


def _close(a: float, b: float, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= atol + rtol * abs(b)


def _spd(d: int, g: torch.Generator) -> torch.Tensor:
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def _sqrt_psd(s: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0).sqrt()) @ v.T


# ============================================================================ exercise 1: the Fréchet distance
def _fd_mistakes(mu1, s1, mu2, s2) -> list[tuple[float, str]]:
    """(value, what is wrong) for the Fréchet distances a learner plausibly writes instead of Eq. 6."""
    diff2 = float((mu1 - mu2) @ (mu1 - mu2))
    tr = float(torch.trace(s1) + torch.trace(s2))
    root = _sqrt_psd(s1) @ s2 @ _sqrt_psd(s1)
    tr_sqrt = float(torch.linalg.eigvalsh(root).clamp_min(0).sqrt().sum())
    sqrtm_sum = float(scipy.linalg.sqrtm((s1 @ s2).numpy()).real.sum())    # all entries of (S1 S2)^1/2
    product_diag = torch.diagonal(s1 @ s2)
    mistakes = [
        (diff2 + tr - tr_sqrt,
         "The trace term is Tr(Sigma_1 + Sigma_2 - 2 (Sigma_1 Sigma_2)^{1/2}): you left out the factor 2 in front of "
         "the square root (with it, two equal Gaussians are at distance 0)."),
        (diff2 + tr - 2 * float((s1 * s2).sqrt().diagonal().sum()),
         "You took the square root of the elementwise product Sigma_1 * Sigma_2. (Sigma_1 Sigma_2)^{1/2} is a matrix "
         "square root of the matrix product: the matrix M with M M = Sigma_1 Sigma_2. Its trace is the sum of the "
         "square roots of the eigenvalues of Sigma_1 Sigma_2, not of its entries."),
        (diff2 + tr - 2 * float(product_diag.sqrt().sum()) if bool((product_diag >= 0).all()) else float("nan"),
         "You took the elementwise square root of Sigma_1 Sigma_2. (Sigma_1 Sigma_2)^{1/2} is a matrix square root "
         "(M with M M = Sigma_1 Sigma_2); its trace is the sum of the square roots of the eigenvalues of "
         "Sigma_1 Sigma_2, not of its diagonal entries."),
        (diff2 + tr - 2 * float(torch.trace(_sqrt_psd(s1) @ _sqrt_psd(s2))),
         "You used Sigma_1^{1/2} Sigma_2^{1/2} for (Sigma_1 Sigma_2)^{1/2}. They are equal only when the two "
         "matrices commute (e.g. both diagonal); in general take the square root of the product, e.g. through the "
         "symmetric matrix Sigma_1^{1/2} Sigma_2 Sigma_1^{1/2}, which has the same eigenvalues as Sigma_1 Sigma_2."),
        (diff2 + tr - 2 * math.sqrt(max(float(torch.trace(s1 @ s2)), 0.0)),
         "You took sqrt(Tr(Sigma_1 Sigma_2)): the square root of the trace is not the trace of the square root. "
         "Tr((Sigma_1 Sigma_2)^{1/2}) is the sum of the square roots of the eigenvalues of Sigma_1 Sigma_2."),
        (math.sqrt(diff2) + tr - 2 * tr_sqrt,
         "The mean term must be the squared distance ||mu_1 - mu_2||_2^2, not the distance ||mu_1 - mu_2||: the "
         "Fréchet distance of Eq. 6 is a squared 2-Wasserstein distance, both of its terms are squares."),
        (tr - 2 * tr_sqrt,
         "Your value leaves out the mean term ||mu_1 - mu_2||^2: two Gaussians with the same covariance and "
         "different centres would be at distance 0."),
        (diff2 + float((s1 + s2).sum()) - 2 * sqrtm_sum,
         "You summed all entries of the matrices instead of taking the trace (the sum of the diagonal)."),
        (diff2 + tr - 2 * tr_sqrt + 1, "Your value is off by exactly 1."),
    ]
    return mistakes


def _fd_case(frechet_distance, mu1, s1, mu2, s2, what: str) -> None:
    want = _library_frechet_distance(mu1, s1, mu2, s2)
    got = _number(call(frechet_distance, mu1.clone(), s1.clone(), mu2.clone(), s2.clone()), what)
    if _close(got, want):
        return
    if math.isnan(got):
        raise ExerciseError(f"{what}: your function returned NaN. An elementwise square root (torch.sqrt, ** 0.5) of "
                            "a matrix with negative entries gives NaN; (Sigma_1 Sigma_2)^{1/2} is a matrix square "
                            "root, whose trace is the sum of the square roots of the eigenvalues of Sigma_1 Sigma_2 "
                            "(clip round-off negatives at 0 before the square root).")
    for value, message in _fd_mistakes(mu1, s1, mu2, s2):
        if _close(got, value):
            raise ExerciseError(f"{what}: {message}")
    raise ExerciseError(f"{what}: expected {want:.6g}, got {got:.6g}. FD = ||mu_1 - mu_2||^2 + Tr(Sigma_1) + "
                        "Tr(Sigma_2) - 2 Tr((Sigma_1 Sigma_2)^{1/2}), and Tr((Sigma_1 Sigma_2)^{1/2}) is the sum of "
                        "the square roots of the eigenvalues of Sigma_1 Sigma_2.")


def check_frechet_distance(frechet_distance) -> bool:
    """``frechet_distance(mu1, sigma1, mu2, sigma2) -> FD``: means (d,) and covariances (d, d), float64 tensors; FD
    = ||mu1 - mu2||^2 + Tr(Sigma1 + Sigma2 - 2 (Sigma1 Sigma2)^{1/2}), a number (Heusel et al. 2017, Eq. 6)."""
    g = torch.Generator().manual_seed(0)
    mu1, mu2 = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    s1, s2 = _spd(5, g), _spd(5, g)
    _fd_case(frechet_distance, mu1, s1, mu2, s2, "FD between two 5-d Gaussians")
    same = _number(call(frechet_distance, mu1.clone(), s1.clone(), mu1.clone(), s1.clone()), "FD of a Gaussian to itself")
    scale = float(torch.trace(2 * s1))       # the terms that cancel: a float32 answer is exact to ~1e-7 of them
    expect(abs(same) <= 1e-6 + 1e-5 * scale, f"FD of a Gaussian to itself: expected 0, got {same:.6g}. A distance is 0 between equal "
           "distributions: Tr(Sigma + Sigma - 2 (Sigma Sigma)^{1/2}) = Tr(2 Sigma - 2 Sigma) = 0.")
    one = lambda x: torch.tensor([x], dtype=torch.float64)                  # noqa: E731
    _fd_case(frechet_distance, one(1.0), one(4.0).reshape(1, 1), one(-2.0), one(9.0).reshape(1, 1),
             "FD between N(1, 4) and N(-2, 9) in 1-d (expected (1 - (-2))^2 + (2 - 3)^2 = 10)")
    g = torch.Generator().manual_seed(1)
    mu3, mu4 = 3 * torch.randn(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    _fd_case(frechet_distance, mu3, 4 * _spd(3, g), mu4, _spd(3, g), "FD between two 3-d Gaussians")
    return passed("Fréchet distance")


# ============================================================================ exercise 2: KID
def _gram(a, b, degree: int = 3, gamma: float | None = None):
    return polynomial_kernel(a, b, degree=degree, gamma=gamma)


def _kid_mistakes(x, y) -> list[tuple[float, str]]:
    m, n, d = len(x), len(y), x.shape[1]
    kxx, kxy, kyy = _gram(x, x), _gram(x, y), _gram(y, y)
    ref = lambda **kw: float(mmd2_unbiased(_gram(x, x, **kw), _gram(x, y, **kw), _gram(y, y, **kw)))  # noqa: E731
    within = float((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)))
    value = float(mmd2_unbiased(kxx, kxy, kyy))
    mistakes = [
        (float(kxx.mean() + kyy.mean() - 2 * kxy.mean()),
         "That is the biased estimator: its within-set means include the diagonal terms k(x_i, x_i), so even two "
         "samples of one distribution score > 0 (the bias of FID that KID avoids). Leave out i = j: sum over the "
         "m(m-1) pairs i != j and divide by m(m-1)."),
        (float(kxx.sum() / (m * (m - 1)) + kyy.sum() / (n * (n - 1)) - 2 * kxy.mean()),
         "You divide by m(m-1) but still sum the diagonal terms k(x_i, x_i) of the within-set Gram matrices: "
         "subtract their trace (sum over i != j only)."),
        (ref(degree=2), "Your kernel has degree 2. KID's kernel is cubic: k(a, b) = (a^T b / d + 1)^3."),
        (ref(degree=1), "Your kernel is linear. KID's kernel is cubic: k(a, b) = (a^T b / d + 1)^3."),
        (ref(gamma=1.0), "Your kernel leaves out the 1/d: k(a, b) = (a^T b / d + 1)^3, with d the feature dimension "
         "(features.shape[1]), which keeps a^T b / d of order 1 whatever the dimension."),
        (ref(gamma=1.0 / m), "You divided a^T b by the number of samples: d in k(a, b) = (a^T b / d + 1)^3 is the "
         f"feature dimension, x.shape[1] (here {d}), not x.shape[0]."),
        (within - float(kxy.mean()), "The cross term is -2/(mn) sum_{i,j} k(x_i, y_j): you left out its factor 2."),
        (within - 2 * float(kxy.sum() - kxy.diagonal().sum()) / (m * (n - 1)) if m == n else float("nan"),
         "You left out the diagonal of the cross term too. Only the within-set sums skip i = j (a sample paired with "
         "itself); x_i and y_j are independent for every i, j, so the cross term averages all m n pairs."),
        (math.sqrt(value) if value > 0 else float("nan"),
         "You returned the square root: KID is the squared MMD itself (the unbiased estimate of MMD^2, which can be "
         "slightly negative), not MMD."),
        (value + 1, "Your value is off by exactly 1."),
    ]
    return mistakes


def _kid_case(kid, x, y, what: str) -> float:
    want = float(mmd2_unbiased(_gram(x, x), _gram(x, y), _gram(y, y)))
    got = _number(call(kid, x.clone(), y.clone()), what)
    if _close(got, want):
        return got
    if want < 0 and got == 0:
        raise ExerciseError(f"{what}: expected {want:.6g}, got 0. Do not clip the estimate at 0: an unbiased "
                            "estimate of MMD^2 = 0 must be negative about as often as positive, or its average "
                            "would be biased upwards.")
    for value, message in _kid_mistakes(x, y):
        if _close(got, value):
            raise ExerciseError(f"{what}: {message}")
    raise ExerciseError(f"{what}: expected {want:.6g}, got {got:.6g}. KID = 1/(m(m-1)) sum_{{i!=j}} k(x_i, x_j) + "
                        "1/(n(n-1)) sum_{i!=j} k(y_i, y_j) - 2/(mn) sum_{i,j} k(x_i, y_j), with "
                        "k(a, b) = (a^T b / d + 1)^3.")


def check_kid(kid) -> bool:
    """``kid(x, y) -> KID``: real features x (m, d) and generated features y (n, d), float64 tensors; the unbiased
    MMD^2 with the kernel k(a, b) = (a^T b / d + 1)^3, a number (Bińkowski et al. 2018, Eq. 2)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = 1.3 * torch.randn(9, 4, generator=g, dtype=torch.float64) + 0.5
    _kid_case(kid, x, y, "KID between 6 real and 9 generated 4-d features")
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g, dtype=torch.float64)
    _kid_case(kid, x, y, "KID between two samples of 7 from the same distribution (its true MMD^2 is 0)")
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randn(8, 5, generator=g, dtype=torch.float64) + 1
    _kid_case(kid, x, y, "KID between 8 and 8 features of two distributions")
    return passed("KID (unbiased MMD^2, cubic kernel)")


# ============================================================================ exercise 3: the Inception Score
def _reference_is(p: torch.Tensor) -> float:
    return inception_score_from_logits(p.clamp_min(1e-300).log(), splits=1)[0]   # log p: its softmax is p


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return torch.special.xlogy(p, p).sum(1) - torch.special.xlogy(p, q.expand_as(p)).sum(1)


def _is_mistakes(p: torch.Tensor) -> list[tuple[float, str]]:
    py = p.mean(0, keepdim=True)
    kl = _kl_rows(p, py)
    uniform = torch.full_like(py, 1 / p.shape[1])
    entropy = lambda q: -torch.special.xlogy(q, q).sum(-1)                 # noqa: E731
    return [
        (float(kl.mean()), "You returned E_x KL(p(y|x) || p(y)), the log of the score: IS = exp(E_x KL(...)), "
         "which ranges from 1 (one class) to K (confident predictions spread evenly over K classes)."),
        (float(_kl_rows(py.expand_as(p), p).mean().exp()),
         "Your KL is reversed: IS uses KL(p(y|x) || p(y)) = sum_y p(y|x) log(p(y|x) / p(y)), the expectation under "
         "each image's own prediction p(y|x)."),
        (float(_kl_rows(p, uniform).mean().exp()),
         "You compared p(y|x) with the uniform distribution 1/K. p(y) is the marginal of the generated images, the "
         "mean of p(y|x) over them: IS rewards variety only through it."),
        (float(kl.exp().mean()),
         "You averaged exp(KL) over the images. IS takes the exponential of the mean: exp(E_x KL(p(y|x) || p(y)))."),
        (float(kl.sum().exp()), "You summed the KL over the images: E_x is a mean over them."),
        (float(entropy(py).exp()), "That is exp(H(p(y))), only the variety half: IS = exp(H(p(y)) - E_x H(p(y|x))) "
         "also subtracts the mean entropy of each image's prediction (confidence)."),
        (float(kl.mean().exp()) + 1, "Your value is off by exactly 1."),
    ]


def _is_case(inception_score, p: torch.Tensor, what: str) -> None:
    want = _reference_is(p)
    got = _number(call(inception_score, p.clone()), what)
    if _close(got, want):
        return
    if math.isnan(got):
        raise ExerciseError(f"{what}: your function returned NaN. A confident classifier gives probabilities that "
                            "are exactly 0, and 0 * log 0 is NaN in floating point; the KL uses the convention "
                            "0 log 0 = 0 (torch.special.xlogy(p, p) computes p log p with it, or clamp p inside the "
                            "log only).")
    for value, message in _is_mistakes(p):
        if _close(got, value):
            raise ExerciseError(f"{what}: {message}")
    raise ExerciseError(f"{what}: expected {want:.6g}, got {got:.6g}. IS = exp(mean over the N images of "
                        "KL(p(y|x) || p(y))), p(y) the mean of the rows p(y|x).")


def check_inception_score(inception_score) -> bool:
    """``inception_score(p_yx) -> IS``: class probabilities p(y|x) of N images (N, K), rows summing to 1, float64;
    IS = exp(E_x KL(p(y|x) || p(y))) with p(y) the mean of the rows, one number (Salimans et al. 2016)."""
    g = torch.Generator().manual_seed(0)
    p = (2 * torch.randn(12, 5, generator=g, dtype=torch.float64)).softmax(1)
    _is_case(inception_score, p, "IS of 12 random predictions over 5 classes")
    onehot = torch.eye(4, dtype=torch.float64).repeat(3, 1)
    _is_case(inception_score, onehot, "IS of confident predictions spread evenly over K = 4 classes (expected 4)")
    same = p[:1].repeat(6, 1)
    _is_case(inception_score, same, "IS of 6 images with the same prediction (expected 1: no variety)")
    return passed("Inception Score")


# ============================================================================ exercise 4: precision and recall
def _pr(f_real, f_fake, k):
    return (manifold_fraction(f_fake, f_real, knn_radii(f_real, k)),
            manifold_fraction(f_real, f_fake, knn_radii(f_fake, k)))


def _own_radius(query, reference, k):
    """f(q) = 1 if q's nearest reference point is within q's own k-NN radius in the query set (a mistake)."""
    return float((torch.cdist(query, reference).min(1).values <= knn_radii(query, k)).double().mean())


def _balls_hit(query, reference, k):
    """The fraction of reference balls holding at least one query point (a mistake: coverage, not precision)."""
    return float((torch.cdist(query, reference) <= knn_radii(reference, k)).any(0).double().mean())


def _pr_mistakes(f_real, f_fake, k) -> list[tuple[tuple[float, float], str]]:
    p, r = _pr(f_real, f_fake, k)
    mistakes = [
        ((r, p), "Precision and recall are swapped (returned in the wrong order, or the roles of the real and the "
         "generated features exchanged). Precision is the fraction of *generated* samples inside the real "
         "manifold (balls around the real features, with the real k-NN radii): fidelity. Recall is the fraction of "
         "*real* samples inside the generated manifold: variety. Return (precision, recall)."),
        ((_own_radius(f_fake, f_real, k), _own_radius(f_real, f_fake, k)),
         "You gave each query point its own k-NN radius. The balls belong to the reference set: phi_g is on the real "
         "manifold when ||phi_g - phi_r|| <= r_k(phi_r) for some real phi_r, r_k(phi_r) the distance of phi_r to its "
         "k-th nearest *real* neighbour."),
        ((_balls_hit(f_fake, f_real, k), _balls_hit(f_real, f_fake, k)),
         "You counted the reference balls that hold a query point (that is Naeem et al.'s coverage). Precision counts "
         "the generated points that lie in at least one real ball, divided by the number of generated points."),
    ]
    if k > 1:
        mistakes.insert(0, (_pr(f_real, f_fake, k - 1),
                            f"Your radius is the distance to the ({k - 1})-th other neighbour: the point itself, at "
                            "distance 0, was counted as the nearest one. In the distance matrix of a set with itself "
                            "the smallest entry of each row is 0; the k-th neighbour is the (k+1)-th smallest."))
    return mistakes


def _pair(out, what: str) -> tuple[float, float]:
    expect(isinstance(out, (tuple, list)) and len(out) == 2,
           f"{what}: return a pair (precision, recall), got {type(out).__name__}"
           f"{f' of length {len(out)}' if isinstance(out, (tuple, list)) else ''}.")
    return _number(out[0], f"{what}, precision"), _number(out[1], f"{what}, recall")


def _pr_case(precision_recall, f_real, f_fake, k, what: str) -> None:
    want = _pr(f_real, f_fake, k)
    got = _pair(call(precision_recall, f_real.clone(), f_fake.clone(), k), what)
    same = lambda a, b: _close(a[0], b[0], atol=1e-9) and _close(a[1], b[1], atol=1e-9)   # noqa: E731
    if same(got, want):
        return
    for value, message in _pr_mistakes(f_real, f_fake, k):
        if same(got, value):
            raise ExerciseError(f"{what}: {message}")
    raise ExerciseError(f"{what}: expected (precision, recall) = ({want[0]:.4g}, {want[1]:.4g}), got "
                        f"({got[0]:.4g}, {got[1]:.4g}). precision: the fraction of generated points within "
                        "r_k(phi_r) of some real phi_r; recall: the same with the sets exchanged; r_k(phi) is the "
                        "distance of phi to its k-th nearest other point of its own set.")


def check_precision_recall(precision_recall) -> bool:
    """``precision_recall(f_real, f_fake, k) -> (precision, recall)``: real features (m, d), generated features
    (n, d), float64, and the k of the k-NN balls; two fractions in [0, 1] (Kynkäänniemi et al. 2019, Eq. 1-3)."""
    g = torch.Generator().manual_seed(1)
    f_real = torch.randn(30, 3, generator=g, dtype=torch.float64)
    f_fake = 0.5 * torch.randn(25, 3, generator=g, dtype=torch.float64) + 0.7
    _pr_case(precision_recall, f_real, f_fake, 3, "30 real and 25 generated 3-d features, k = 3")
    got = _pair(call(precision_recall, f_real.clone(), f_real.clone(), 3), "generated features equal to the real ones")
    expect(got == (1.0, 1.0), f"Generated features equal to the real ones: expected (1, 1), got ({got[0]:.4g}, "
           f"{got[1]:.4g}). Each point lies at distance 0 from itself, inside its own ball (use <=).")
    g = torch.Generator().manual_seed(4)
    f_real = torch.randn(20, 2, generator=g, dtype=torch.float64)
    f_fake = 1.5 * torch.randn(15, 2, generator=g, dtype=torch.float64) - 0.5
    _pr_case(precision_recall, f_real, f_fake, 1, "20 real and 15 generated 2-d features, k = 1")
    _pr_case(precision_recall, f_real, f_fake, 5, "the same features, k = 5")
    return passed("k-NN precision and recall")
