"""Checks for chapter 08 (Brock, Donahue & Simonyan, 2018, "Large Scale GAN Training for High Fidelity Natural
Image Synthesis", arXiv 1809.11096).

1. ``check_truncated_normal``: z ~ N(0, 1) truncated to [-psi, psi] *by resampling* (Sec. 3.1, the truncation trick).
2. ``check_orthogonal_penalty``: R_beta(W) = beta || W W^T (.) (1 - I) ||_F^2 (Sec. 3.1, Eq. 3).
3. ``check_projection_output``: D(x, y) = psi(phi(x)) + e_y^T phi(x) (Miyato & Koyama, 2018, Eq. 3).

Each check runs the learner's function on cases with known answers, recognises the usual mistakes and says what to
think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import math

import torch
from scipy import stats
from torch import nn

from . import ExerciseError, call_tensor, expect, expect_close, passed

__all__ = ["check_truncated_normal", "check_orthogonal_penalty", "check_projection_output"]


# ============================================================================ exercise 1
def _truncnorm_moments(a: float) -> tuple[float, float]:
    """Variance and E|z| of N(0, 1) truncated to [-a, a]."""
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(a / math.sqrt(2))                    # P(|z| <= a)
    variance = 1 - 2 * a * phi / mass
    mean_abs = 2 * (1 / math.sqrt(2 * math.pi) - phi) / mass
    return variance, mean_abs


def check_truncated_normal(fn) -> bool:
    """``fn(size, threshold, generator) -> z``: a tensor of shape ``size`` (a tuple), N(0, 1) truncated to
    [-threshold, threshold] by redrawing every value outside it, drawn with ``torch.Generator`` ``generator``."""
    size, psi = (400, 50), 1.0
    z = call_tensor(fn, size, psi, torch.Generator().manual_seed(0))
    expect(tuple(z.shape) == size,
           f"Expected shape {size}, got {tuple(z.shape)}. Keep every position: redraw the values outside "
           "[-psi, psi] in place (z[outside] = new draws) instead of dropping them.")
    z = z.detach().double()
    expect(bool(torch.isfinite(z).all()), "Some of your values are not finite.")
    expect(float(z.abs().max()) <= psi + 1e-6,
           f"Values reach {float(z.abs().max()):.3f}, outside [-{psi}, {psi}]. Redraw until no value is outside: "
           "one round of resampling is not enough, since a redrawn value may land outside again (loop while any is).")
    at_edge = float((z.abs() > psi - 1e-6).double().mean())
    if at_edge > 0.01:
        raise ExerciseError(
            f"{at_edge:.0%} of your values sit exactly at +-{psi}: you clamped them. Clamping piles the whole tail "
            "mass onto the two edges (a very different law); BigGAN redraws each value outside [-psi, psi] until it "
            "falls inside, which gives the truncated normal.")
    pvalue = stats.kstest(z.flatten().numpy(), stats.truncnorm(-psi, psi).cdf).pvalue
    if pvalue < 1e-4:
        variance, _ = _truncnorm_moments(psi)
        got_var = float(z.var())
        if abs(got_var - psi ** 2 / 3) < 0.01:
            hint = ("That is the variance of a uniform distribution on [-psi, psi]: draw from N(0, 1) (torch.randn), "
                    "not torch.rand.")
        else:
            hint = ("Did you rescale z (e.g. z * psi / max|z|, or tanh) instead of redrawing the values outside? "
                    "Rescaling changes the shape of the distribution.")
        raise ExerciseError(f"Your samples do not follow N(0, 1) truncated to [-{psi}, {psi}] (Kolmogorov-Smirnov "
                            f"p = {pvalue:.1e}): their variance is {got_var:.4f}, the truncated normal's is "
                            f"{variance:.4f}. {hint}")
    a = call_tensor(fn, (3, 7), 1.0, torch.Generator().manual_seed(5))
    b = call_tensor(fn, (3, 7), 1.0, torch.Generator().manual_seed(5))
    expect(torch.equal(a, b), "Two calls with generators seeded alike gave different z: pass `generator=generator` "
                              "to every torch.randn call, including the redraws.")
    wide = call_tensor(fn, (1000,), 3.0, torch.Generator().manual_seed(1))
    expect(float(wide.abs().max()) > 2.0, "With threshold 3 almost nothing should change (only 0.3% of N(0, 1) lies "
                                          "beyond 3), but all your values are within 2.")
    return passed("truncated normal by resampling")


# ============================================================================ exercise 2
def _reference_penalty(W: torch.Tensor, beta: float) -> torch.Tensor:
    W = W.flatten(1)
    gram = W @ W.t()
    return beta * (gram * (1 - torch.eye(gram.shape[0], dtype=W.dtype))).pow(2).sum()


def check_orthogonal_penalty(fn) -> bool:
    """``fn(W, beta) -> R``: beta || W W^T (.) (1 - I) ||_F^2, W reshaped to (out, -1) (a conv weight is 4-D)."""
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    out = call_tensor(fn, W.clone(), 1.0)
    expect(out.dim() == 0, f"R is one number (a 0-d tensor), got shape {tuple(out.shape)}.")
    # W W^T = [[5, 11], [11, 25]]: the off-diagonal entries are 11 and 11
    if abs(float(out) - 242.0) > 1e-6:
        if abs(float(out) - (242.0 + 16 + 576)) < 1e-6:
            raise ExerciseError("Your R is || W W^T - I ||_F^2 = 834 on W = [[1, 2], [3, 4]]: the *full* orthogonal "
                                "penalty (Brock et al., 2017), which also pulls every filter's norm to 1. BigGAN "
                                "found that too limiting and masks the diagonal out: multiply W W^T by (1 - I) first.")
        if abs(float(out) - 22.0) < 1e-6:
            raise ExerciseError("Your R is 22 on W = [[1, 2], [3, 4]]: you summed the off-diagonal entries (11 + 11) "
                                "without squaring them. ||A||_F^2 is the sum of the *squared* entries.")
        if abs(float(out) - 392.0) < 1e-6:
            raise ExerciseError("Your R is 392 on W = [[1, 2], [3, 4]]: you formed W^T W = [[10, 14], [14, 20]], "
                                "comparing input coordinates. The course (and the reference code) compare the filters, "
                                "the rows of W reshaped to (out, -1): W W^T = [[5, 11], [11, 25]].")
        if abs(float(out) - math.sqrt(242.0)) < 1e-6:
            raise ExerciseError("You returned the Frobenius norm, not its square: Eq. 3 uses || . ||_F^2.")
        raise ExerciseError(f"On W = [[1, 2], [3, 4]] (W W^T = [[5, 11], [11, 25]]) with beta = 1, R should be "
                            f"11^2 + 11^2 = 242, got {float(out):.6g}.")
    expect_close(call_tensor(fn, W.clone(), 1e-4), 242e-4, "R with beta = 1e-4", hint="Multiply the penalty by beta.",
                 atol=1e-9, rtol=1e-6)
    Q = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    scaled = Q[:3] * torch.tensor([[3.0], [0.5], [2.0]], dtype=torch.float64)   # orthogonal rows, any norms
    r = float(call_tensor(fn, scaled, 1.0))
    if abs(r) > 1e-8:
        raise ExerciseError(f"Filters that are orthogonal to each other but have norms 3, 0.5 and 2 should cost "
                            f"nothing, got R = {r:.4g}. The off-diagonal version leaves the norms (the diagonal of "
                            "W W^T) free.")
    wide = torch.randn(3, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = call_tensor(fn, wide.clone(), 1.0).double()
    if not torch.allclose(got, _reference_penalty(wide, 1.0), rtol=1e-6):
        gram_t = wide.t() @ wide
        if torch.allclose(got, (gram_t * (1 - torch.eye(7, dtype=torch.float64))).pow(2).sum(), rtol=1e-6):
            raise ExerciseError("For a (3, 7) weight you computed W^T W (7 x 7), comparing input coordinates. The "
                                "course (and the reference code) compare the 3 filters, the rows: W W^T is 3 x 3.")
        expect_close(got, _reference_penalty(wide, 1.0), "R on a random (3, 7) matrix")
    conv_w = torch.randn(4, 2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    try:
        got = call_tensor(fn, conv_w.clone(), 1.0)
    except ExerciseError:
        raise
    except Exception as exc:  # noqa: BLE001 - report any failure on 4-D input helpfully
        raise ExerciseError(f"A conv weight of shape (4, 2, 3, 3) raised {type(exc).__name__}: {exc}. Reshape W to "
                            "(out_channels, -1) first, W.flatten(1), so each row is one filter.") from None
    expect(got.dim() == 0, f"For a 4-D conv weight R should still be one number, got shape {tuple(got.shape)}: "
                           "reshape W to (out_channels, -1) before forming W W^T.")
    expect_close(got, _reference_penalty(conv_w, 1.0), "R on a (4, 2, 3, 3) conv weight",
                 hint="Reshape W to (out_channels, -1) = (4, 18) so that each row is one filter.")
    leaf = W.clone().requires_grad_(True)
    expect(call_tensor(fn, leaf, 1.0).requires_grad, "R is detached from W, so it cannot regularise G: use torch "
                                               "operations only (no .item(), .numpy() or float()).")
    return passed("off-diagonal orthogonal regularisation")


# ============================================================================ exercise 3
def check_projection_output(fn) -> bool:
    """``fn(phi_x, e_y, psi) -> D``: phi_x (B, C) features, e_y (B, C) the embeddings of each sample's class, psi a
    ``nn.Linear(C, 1)``; returns D(x, y) = psi(phi(x)) + e_y^T phi(x), shape (B,)."""
    g = torch.Generator().manual_seed(3)
    B, C = 5, 4
    phi_x = torch.randn(B, C, generator=g)
    e_y = torch.randn(B, C, generator=g)
    psi = nn.Linear(C, 1)
    with torch.no_grad():
        psi.weight.copy_(torch.randn(1, C, generator=g))
        psi.bias.fill_(0.25)
    want = psi(phi_x).squeeze(1) + (e_y * phi_x).sum(1)
    out = call_tensor(fn, phi_x.clone(), e_y.clone(), psi)
    if tuple(out.shape) == (B, B):
        raise ExerciseError("Your output is (B, B): phi_x @ e_y.T pairs every sample with every other sample's class. "
                            "Each sample needs only its own inner product e_y^T phi(x): (e_y * phi_x).sum(1).")
    if tuple(out.shape) == (B, 1):
        raise ExerciseError("Your output has shape (B, 1); return one number per sample, shape (B,) (squeeze psi's "
                            "output).")
    expect(tuple(out.shape) == (B,), f"Expected one logit per sample, shape ({B},), got {tuple(out.shape)}.")
    out = out.detach()
    with torch.no_grad():
        if torch.allclose(out, (e_y * phi_x).sum(1), atol=1e-5):
            raise ExerciseError("You left out the unconditional term psi(phi(x)): D(x, y) = psi(phi(x)) + e_y^T phi(x), "
                                "'is x real?' plus 'does x look like class y?'.")
        if torch.allclose(out, psi(phi_x).squeeze(1), atol=1e-5):
            raise ExerciseError("Your D ignores the class: add the projection e_y^T phi(x), the inner product of the "
                                "class embedding with the features.")
        if torch.allclose(out, psi(phi_x + e_y).squeeze(1), atol=1e-5) or \
                torch.allclose(out, psi(phi_x * e_y).squeeze(1), atol=1e-5):
            raise ExerciseError("You mixed e_y into the features before psi. The projection discriminator keeps the "
                                "two terms separate and adds them: psi(phi_x) + (e_y * phi_x).sum(1).")
    expect_close(out, want, "D(x, y) on random features", hint="psi(phi_x).squeeze(1) + (e_y * phi_x).sum(1)")
    # linear in the class embedding: D(e1 + e2) - D(0) = (D(e1) - D(0)) + (D(e2) - D(0))
    e2 = torch.randn(B, C, generator=g)
    d = [call_tensor(fn, phi_x, e, psi).detach() for e in (e_y, e2, e_y + e2, torch.zeros(B, C))]
    expect(torch.allclose(d[2] - d[3], (d[0] - d[3]) + (d[1] - d[3]), atol=1e-5),
           "D should be linear (affine) in the class embedding e_y; yours is not.")
    return passed("projection discriminator output")
