"""Checks for chapter 04 (Chen et al., 2016, "InfoGAN: Interpretable Representation Learning by Information
Maximizing Generative Adversarial Nets", arXiv 1606.03657).

1. ``check_categorical_bound``: L_I for the categorical code, E[log Q(c_1 | x)] + H(c_1) (Eq. 5), from Q's logits.
2. ``check_gaussian_log_likelihood``: log Q(c | x) for continuous codes under a factored Gaussian Q (Sec. 6).
3. ``check_purity``: the purity of the categorical code against a classifier's labels.

Each check runs the learner's code on cases with known answers, recognises the usual mistakes and says what to
think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import ExerciseError, call, expect, passed


def _scalar(value, what: str) -> float:
    expect(value is not None, f"{what} returned None. Did you forget `return`?")
    expect(torch.is_tensor(value) or isinstance(value, (int, float)),
           f"{what} should return a number (a 0-d tensor), got {type(value).__name__}.")
    value = torch.as_tensor(value)
    expect(value.numel() == 1, f"{what} returned a tensor of shape {tuple(value.shape)}: average over the batch "
                               "(.mean()) to get one number, an expectation over (z, c).")
    return float(value)


# ============================================================================ exercise 1
def reference_categorical_bound(cat_logits: torch.Tensor, c_cat: torch.Tensor) -> torch.Tensor:
    k = cat_logits.shape[1]
    return -F.cross_entropy(cat_logits, c_cat) + math.log(k)


def _cat_cases():
    g = torch.Generator().manual_seed(4)
    k = 10
    c = torch.randint(0, k, (64,), generator=g)
    return [
        ("random logits", torch.randn(64, k, generator=g) * 2, c),
        ("a confident, correct Q", F.one_hot(c, k).float() * 30.0, c),
        ("a Q that knows nothing (equal logits)", torch.zeros(64, k), c),
        ("K = 4 categories", torch.randn(32, 4, generator=g), torch.randint(0, 4, (32,), generator=g)),
    ]


def check_categorical_bound(fn) -> bool:
    """``fn(cat_logits (B, K), c_cat (B,) int64) -> L_I`` for the categorical code, in nats."""
    for name, logits, c in _cat_cases():
        got = _scalar(call(fn, logits.clone(), c.clone()), "your bound")
        want = float(reference_categorical_bound(logits, c))
        if abs(got - want) < 1e-4:
            continue
        k = logits.shape[1]
        ce = float(F.cross_entropy(logits, c))
        if abs(got - (-ce)) < 1e-4:
            raise ExerciseError(f"For {name} you returned E[log Q(c|x)] = {got:.4f}, but L_I adds the entropy of the "
                                f"prior: H(c) = log K = {math.log(k):.4f} for a uniform code over K = {k} values. "
                                "(It does not change the gradient, but it makes L_I a bound on I(c; G(z, c)) in nats.)")
        if abs(got - (ce - math.log(k))) < 1e-4 or abs(got - ce) < 1e-4:
            raise ExerciseError(f"For {name} you returned {got:.4f}, the negative of L_I (a loss to minimise). L_I "
                                "itself is E[log Q(c|x)] + H(c): it grows as Q recovers c, up to log K.")
        if abs(got - math.log(k)) < 1e-4 and abs(want - math.log(k)) > 1e-3:
            raise ExerciseError(f"For {name} you returned log K = {got:.4f} whatever Q says: the first term, the mean "
                                "of log Q(c_i | x_i) at the *true* code c_i of each sample, is missing.")
        probs = F.softmax(logits, 1).gather(1, c.view(-1, 1)).mean()
        if abs(got - (float(probs) + math.log(k))) < 1e-4:
            raise ExerciseError(f"For {name} you used the probability Q(c|x) where its logarithm belongs: "
                                "E[log Q(c|x)], e.g. F.log_softmax(logits, dim=1) at the true code.")
        per_sample_sum = -F.cross_entropy(logits, c, reduction="sum") + math.log(k)
        if abs(got - float(per_sample_sum)) < 1e-3:
            raise ExerciseError(f"For {name} you summed log Q(c|x) over the batch: L_I is an expectation, "
                                "so take the mean.")
        wrong_dim = -F.nll_loss(F.log_softmax(logits, 0), c) + math.log(k)
        if abs(got - float(wrong_dim)) < 1e-4:
            raise ExerciseError("The softmax must normalise over the K categories (dim=1), not over the batch (dim=0).")
        raise ExerciseError(f"For {name}: expected L_I = {want:.4f} nats, got {got:.4f}. L_I = mean over the batch "
                            "of log Q(c_i | x_i) (log-softmax of the logits at the true code) + log K.")
    perfect = _scalar(call(fn, *_cat_cases()[1][1:]), "your bound")
    expect(abs(perfect - math.log(10)) < 1e-3, "A Q that recovers c perfectly should give L_I = log 10 = H(c).")
    return passed("the categorical information bound L_I")


# ============================================================================ exercise 2
def reference_gaussian_log_likelihood(c, mu, log_sigma):
    return torch.distributions.Normal(mu, log_sigma.exp()).log_prob(c).sum(1).mean()


def _gauss_cases():
    g = torch.Generator().manual_seed(5)
    c = torch.rand(50, 2, generator=g) * 2 - 1
    return [
        ("unit variance", c, torch.randn(50, 2, generator=g) * 0.3, torch.zeros(50, 2)),
        ("learned sigma", c, torch.randn(50, 2, generator=g) * 0.3, torch.randn(50, 2, generator=g) * 0.5 - 0.5),
        ("three codes", torch.rand(20, 3, generator=g) * 2 - 1, torch.zeros(20, 3), torch.full((20, 3), -1.0)),
    ]


def check_gaussian_log_likelihood(fn) -> bool:
    """``fn(c (B, L), mu (B, L), log_sigma (B, L)) -> E[log Q(c | x)]``: the factored Gaussian's log-density at the
    true codes, summed over the L codes and averaged over the batch."""
    for name, c, mu, log_sigma in _gauss_cases():
        got = _scalar(call(fn, c.clone(), mu.clone(), log_sigma.clone()), "your log-likelihood")
        want = float(reference_gaussian_log_likelihood(c, mu, log_sigma))
        if abs(got - want) < 1e-4:
            continue
        sigma = log_sigma.exp()
        sq = ((c - mu) / sigma) ** 2
        L = c.shape[1]
        const = 0.5 * math.log(2 * math.pi)
        alternatives = {
            "no_log_sigma": (-0.5 * sq - const).sum(1).mean(),
            "no_const": (-0.5 * sq - log_sigma).sum(1).mean(),
            "variance": (-0.5 * (c - mu) ** 2 / sigma - log_sigma - const).sum(1).mean(),
            "mean_codes": (-0.5 * sq - log_sigma - const).mean(),
            "sign": -(torch.tensor(want)),
            "no_half": (-sq - log_sigma - const).sum(1).mean(),
        }
        messages = {
            "no_log_sigma": "the normaliser -log sigma_j is missing. Without it Q could make every code look likely "
                            "by inflating sigma: log N(c; mu, sigma^2) = -(c - mu)^2 / (2 sigma^2) - log sigma "
                            "- log(2 pi) / 2.",
            "no_const": "the constant -log(2 pi) / 2 per code is missing. It has no gradient, but without it the number "
                        "is not a log-density (and L_I is not a bound in nats).",
            "variance": "you divided (c - mu)^2 by sigma instead of sigma^2 (sigma = exp(log_sigma) is a standard "
                        "deviation).",
            "mean_codes": f"you averaged over the L = {L} codes too: Q is a *product* of Gaussians, so the log-densities "
                          "add up over codes (sum over dim 1), then average over the batch.",
            "sign": "the sign is flipped: you returned the negative log-likelihood (a loss). Return log Q(c|x) itself.",
            "no_half": "the quadratic term is -(c - mu)^2 / (2 sigma^2): the 1/2 is missing.",
        }
        for key, value in alternatives.items():
            if abs(got - float(value)) < 1e-4:
                raise ExerciseError(f"For {name}: {messages[key]}")
        raise ExerciseError(f"For {name}: expected E[log Q(c|x)] = {want:.4f}, got {got:.4f}. Sum over codes of "
                            "-(c - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2, averaged over the batch.")
    return passed("the Gaussian log-likelihood log Q(c | x)")


# ============================================================================ exercise 3
def reference_purity(codes: torch.Tensor, labels: torch.Tensor) -> float:
    k, m = int(codes.max()) + 1, int(labels.max()) + 1
    n = torch.bincount(codes * m + labels, minlength=k * m).view(k, m)
    return float(n.max(1).values.sum() / n.sum())


def _purity_cases():
    g = torch.Generator().manual_seed(6)
    labels = torch.randint(0, 10, (500,), generator=g)
    permuted = torch.randperm(10, generator=g)[labels]           # a perfect code with other names: purity 1
    noisy = torch.where(torch.rand(500, generator=g) < 0.7, permuted, torch.randint(0, 10, (500,), generator=g))
    merged = permuted // 2                                       # 5 code values, each holding two classes
    # two code values share a majority label: label 0 split over codes 0 and 1, labels 1 and 2 merged in code 2
    first_half = torch.rand(500, generator=g) < 0.5
    split = torch.where(labels == 0, torch.where(first_half, 0, 1), torch.where(labels == 1, 2, labels))
    # K = 20 code values for 10 labels (InfoGAN's K need not be the number of classes): each label is held mostly by
    # two code values, so a one-to-one matching leaves half of them without a label
    twenty = noisy * 2 + (torch.rand(500, generator=g) < 0.5).long()
    # a small case to read by hand: code 0 and code 1 both hold mostly label 1; purity = (3 + 2 + 2) / 9 = 7/9,
    # the best one-to-one matching only (3 + 1 + 2) / 9 = 6/9
    small_codes = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2])
    small_labels = torch.tensor([1, 1, 1, 2, 1, 1, 0, 3, 3])
    return [("a perfect code with its own numbering", permuted, labels),
            ("a code that is right 70% of the time", noisy, labels),
            ("a code with 5 values, each holding two classes", merged, labels),
            ("the 9 samples codes = [0, 0, 0, 0, 1, 1, 1, 2, 2], labels = [1, 1, 1, 2, 1, 1, 0, 3, 3]",
             small_codes, small_labels),
            ("a code that splits one label over two values", split, labels),
            ("a code with K = 20 values for 10 labels", twenty, labels)]


def _matched_accuracy(codes: torch.Tensor, labels: torch.Tensor) -> float:
    """The best one-to-one assignment of code values to labels (Hungarian): what purity is *not*."""
    from scipy.optimize import linear_sum_assignment

    k = max(int(codes.max()), int(labels.max())) + 1
    n = torch.bincount(codes * k + labels, minlength=k * k).view(k, k)
    rows, cols = linear_sum_assignment(-n.numpy())
    return float(n[rows, cols].sum() / n.sum())


def _shared_majority(n: torch.Tensor) -> str:
    """'code values a and b both hold mostly label l' for contingency table ``n`` (codes x labels), or ''."""
    used = n.sum(1) > 0
    majority = n.argmax(1)
    for label in majority[used].unique():
        values = [int(v) for v in torch.nonzero(used & (majority == label)).flatten()]
        if len(values) > 1:
            return f"code values {values[0]} and {values[1]} both hold mostly label {int(label)}"
    return ""


def check_purity(fn) -> bool:
    """``fn(codes (N,) int64, labels (N,) int64) -> purity`` in [0, 1]."""
    for name, codes, labels in _purity_cases():
        got = _scalar(call(fn, codes.clone(), labels.clone()), "your purity")
        want = reference_purity(codes, labels)
        if abs(got - want) < 1e-6:
            continue
        k, m = int(codes.max()) + 1, int(labels.max()) + 1
        n = torch.bincount(codes * m + labels, minlength=k * m).view(k, m)
        if abs(got - float((codes == labels).float().mean())) < 1e-6:
            raise ExerciseError(f"For {name} you compared the code values with the labels directly ({got:.3f}). The "
                                "code's values are arbitrary names: code 3 may mean the digit 7. Let each code value "
                                "vote for its most frequent label first.")
        if abs(got - _matched_accuracy(codes, labels)) < 1e-6:
            shared = _shared_majority(n)
            raise ExerciseError(f"For {name} you matched code values to labels one to one ({got:.3f}, the Hungarian "
                                f"matched accuracy; purity is {want:.3f}). Here {shared}: a one-to-one matching can give "
                                "that label to only one of them, so it counts fewer samples. Purity lets "
                                "several code values vote for the same label: each code value counts its own most "
                                "frequent label, whatever the others chose.")
        if abs(got - float(n.max(0).values.sum() / n.sum())) < 1e-6:
            raise ExerciseError(f"For {name} you let each *label* pick its most frequent code value ({got:.3f}); purity "
                                "asks the other way round: for each code value, the most frequent label.")
        per_code = n.max(1).values.float() / n.sum(1).clamp_min(1)
        if any(abs(got - float(v)) < 1e-6 for v in (per_code[n.sum(1) > 0].mean(), per_code.mean())):
            raise ExerciseError(f"For {name} you averaged the per-code purities equally ({got:.3f}); weight each code "
                                "value by how many samples it has: sum of the maxima / N.")
        raise ExerciseError(f"For {name}: expected purity {want:.3f}, got {got:.3f}. Count n[code, label], take the "
                            "maximum of each row, sum them and divide by N.")
    return passed("purity of the categorical code")
