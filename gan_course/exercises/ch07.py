"""Checks for chapter 07 (SAGAN): the attention softmax, the hinge loss, and sigma(W) by power iteration.

The notebook's Exercise 2 is one function returning both hinge losses (``check_hinge_loss_pair``);
``check_hinge_losses`` checks the same two losses written as two functions.
"""

from __future__ import annotations

import math

import torch

from ..layers import SelfAttention2d
from . import ExerciseError, call, expect, expect_close, passed

__all__ = ["check_attention_weights", "check_hinge_losses", "check_hinge_loss_pair", "check_power_iteration"]


# --------------------------------------------------------------------------- exercise 1: beta_{j,i}
def _reference_beta(f_x: torch.Tensor, g_x: torch.Tensor) -> torch.Tensor:
    s = g_x.transpose(1, 2) @ f_x  # s[b, j, i] = g(x_j)^T f(x_i) = f(x_i)^T g(x_j) = s_ij
    return s.softmax(dim=-1)


def check_attention_weights(attention_weights) -> bool:
    """``attention_weights(f_x, g_x)``: f_x = f(x), g_x = g(x), each (B, C_bar, N); returns beta (B, N, N) with
    ``beta[b, j, i]`` = beta_{j,i} = exp(s_ij) / sum_i exp(s_ij), s_ij = f(x_i)^T g(x_j) (SAGAN Eq. 1)."""
    g = torch.Generator().manual_seed(7)
    f_x = torch.randn(2, 4, 6, generator=g, dtype=torch.float64)
    g_x = torch.randn(2, 4, 6, generator=g, dtype=torch.float64)
    beta = attention_weights(f_x.clone(), g_x.clone())
    expect(beta is not None, "attention_weights returned None. Did you forget `return`?")
    expect(torch.is_tensor(beta) and tuple(beta.shape) == (2, 6, 6),
           f"beta should be a tensor of shape (B, N, N) = (2, 6, 6), got "
           f"{tuple(beta.shape) if torch.is_tensor(beta) else type(beta).__name__}. s_ij compares every "
           "position i with every position j: a batched matrix product of the (N, C_bar) and (C_bar, N) views.")
    beta = beta.detach().double()
    want = _reference_beta(f_x, g_x)
    if torch.allclose(beta, want, atol=1e-6):
        return _check_against_layer(attention_weights)
    rows, cols = beta.sum(-1), beta.sum(-2)
    ones = torch.ones_like(rows)
    if not torch.allclose(rows, ones, atol=1e-5) and torch.allclose(cols, ones, atol=1e-5):
        if torch.allclose(beta, want.transpose(1, 2), atol=1e-6):
            raise ExerciseError("Your beta is the transpose of SAGAN's: beta[b, j, i] must hold beta_{j,i}, "
                                "the weight query j gives to position i, so that o_j = sum_i beta_{j,i} h(x_i) "
                                "is `beta @ h`. Rows (the last axis, i) must sum to 1.")
        raise ExerciseError("Your columns sum to 1, not your rows: you normalised over the queries j. For each "
                            "query j the weights beta_{j,i} are a distribution over the positions i it looks at, "
                            "so the softmax runs over i: the last axis of s[b, j, i].")
    if not torch.allclose(rows, ones, atol=1e-5):
        raise ExerciseError("The rows of beta do not sum to 1. beta_{j,i} = exp(s_ij) / sum_i exp(s_ij) is a "
                            "softmax over the positions i (the last axis); did you apply it?")
    if torch.allclose(beta, _reference_beta(f_x / math.sqrt(4), g_x), atol=1e-6):
        raise ExerciseError("You scaled s_ij by 1/sqrt(C_bar), as the Transformer does. SAGAN's Eq. 1 uses "
                            "s_ij = f(x_i)^T g(x_j) unscaled (the course's layer passes scale=1.0 too).")
    if torch.allclose(beta, _reference_beta(g_x, f_x), atol=1e-6):
        raise ExerciseError("You swapped f and g: in the paper s_ij = f(x_i)^T g(x_j), so f gives the keys "
                            "(positions i being looked at) and g the queries j. s[b, j, i] = g(x_j)^T f(x_i).")
    expect_close(beta, want, "beta", hint="Build s[b, j, i] = f(x_i)^T g(x_j) = (g_x^T @ f_x)[b, j, i], then "
                 "softmax over the last axis.", atol=1e-6)
    return True


def _check_against_layer(attention_weights) -> bool:
    torch.manual_seed(0)
    block = SelfAttention2d(16, sn=False).eval()
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        _, beta_layer = block(x, return_attention=True)
        mine = attention_weights(block.W_f(x).flatten(2), block.W_g(x).flatten(2))
    expect_close(mine, beta_layer, "beta on gan_course.layers.SelfAttention2d's f(x), g(x)",
                 hint="Your function matched the small case but not the layer's own map.", atol=1e-5)
    return passed("attention weights beta_{j,i}")


# --------------------------------------------------------------------------- exercise 2: hinge loss
def check_hinge_losses(d_loss, g_loss) -> bool:
    """``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``: SAGAN's hinge loss (Sec. 3)."""
    _check_hinge(d_loss, g_loss)
    return passed("hinge losses L_D and L_G")


def check_hinge_loss_pair(fn) -> bool:
    """``fn(real_scores, fake_scores) -> (L_D, L_G)``: SAGAN's hinge losses (Sec. 3, Eq. 3) from D's scores (B,) of a
    real and a fake batch, L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] and L_G = -E[D(G(z))]."""
    real = torch.tensor([2.0, -1.0, 0.25, 0.0], dtype=torch.float64)
    fake = torch.tensor([-2.0, 1.0, 0.5, -0.75], dtype=torch.float64)
    out = call(fn, real.clone(), fake.clone())
    expect(isinstance(out, (tuple, list)) and len(out) == 2,
           f"Return the pair (L_D, L_G), got {type(out).__name__ if not torch.is_tensor(out) else 'one tensor'}: "
           "return loss_D, loss_G.")
    expect(out[0] is not None and out[1] is not None, "One of your two losses is None: return loss_D, loss_G.")
    other = fn(real.flip(0) * 3, fake.clone())[1]
    expect(other is not None and torch.allclose(torch.as_tensor(other).double(), torch.as_tensor(out[1]).double()),
           "Your L_G changes when only the real scores change: G never sees the real batch, L_G = -E[D(G(z))] uses "
           "the fake scores alone.")
    _check_hinge(lambda real_scores, fake_scores: fn(real_scores, fake_scores)[0],
                 lambda fake_scores: fn(real.clone(), fake_scores)[1], "Your L_D", "Your L_G")
    return passed("hinge losses L_D and L_G")


def _check_hinge(d_loss, g_loss, d_name: str = "d_loss", g_name: str = "g_loss") -> None:
    real = torch.tensor([3.0, 0.5, -0.5, 1.0], dtype=torch.float64)
    fake = torch.tensor([-3.0, -0.25, 0.5, -1.5], dtype=torch.float64)
    want_d = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()  # = 0.5 + 0.5625
    got_d = d_loss(real.clone(), fake.clone())
    expect(got_d is not None, f"{d_name} returned None. Did you forget `return`?")
    got_d = torch.as_tensor(got_d).double()
    expect(got_d.dim() == 0, f"{d_name} should be a scalar (a mean over the batch), got shape {tuple(got_d.shape)}.")
    if not torch.allclose(got_d, want_d, atol=1e-6):
        if torch.allclose(got_d, (1 - real).mean() + (1 + fake).mean(), atol=1e-6):
            raise ExerciseError("Your D loss has no hinge: with max(0, .) missing, D is rewarded for pushing "
                                "D(x) to +infinity on reals it already gets right (here a real with D(x) = 3 "
                                "should cost 0). L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))].")
        if torch.allclose(got_d, torch.relu(1 + real).mean() + torch.relu(1 - fake).mean(), atol=1e-6):
            raise ExerciseError("Your D loss has the signs swapped: D should score reals high (above +1) and fakes "
                                "low (below -1). L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))].")
        if torch.allclose(got_d, torch.relu(-real).mean() + torch.relu(fake).mean(), atol=1e-6):
            raise ExerciseError("Your hinge has no margin: max(0, -D(x)) stops at 0, so D is content with a real "
                                "scored 0.01. SAGAN's hinge asks for a margin of 1 on each side: "
                                "L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))].")
        if torch.allclose(got_d, torch.relu(1 - real).sum() + torch.relu(1 + fake).sum(), atol=1e-6):
            raise ExerciseError("You summed over the batch: each E[.] is a mean over the batch, so that the loss (and "
                                "the learning rate's effect) does not grow with the batch size.")
        expect_close(got_d, want_d, "L_D", hint="L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))], "
                     "each term a mean over the batch.", atol=1e-6)
    want_g = -fake.mean()
    got_g = g_loss(fake.clone())
    expect(got_g is not None, f"{g_name} returned None. Did you forget `return`?")
    got_g = torch.as_tensor(got_g).double()
    expect(got_g.dim() == 0, f"{g_name} should be a scalar, got shape {tuple(got_g.shape)}.")
    if not torch.allclose(got_g, want_g, atol=1e-6):
        if torch.allclose(got_g, torch.relu(1 - fake).mean(), atol=1e-6):
            raise ExerciseError("Your G loss is a hinge too. In SAGAN only D uses the hinge; G minimises "
                                "L_G = -E[D(G(z))], so it keeps improving its samples even where D already "
                                "scores them above the margin.")
        if torch.allclose(got_g, fake.mean(), atol=1e-6):
            raise ExerciseError("Your G loss decreases when D(G(z)) decreases: the generator wants D to "
                                "believe its samples, L_G = -E[D(G(z))].")
        if torch.allclose(got_g, torch.nn.functional.softplus(-fake).mean(), atol=1e-6):
            raise ExerciseError("That is the non-saturating loss -E[log sigmoid(D(G(z)))] of chapter 01. SAGAN's D "
                                "outputs an unbounded score, not a logit of a probability, and G minimises "
                                "L_G = -E[D(G(z))] directly.")
        if torch.allclose(got_g, -fake.sum(), atol=1e-6):
            raise ExerciseError("You summed over the batch: L_G = -E[D(G(z))] is a mean over the batch.")
        expect_close(got_g, want_g, "L_G", hint="L_G = -E[D(G(z))].", atol=1e-6)


# --------------------------------------------------------------------------- exercise 3: sigma(W)
def _reference_step(W, u):
    v = W.t() @ u
    v = v / v.norm()
    u = W @ v
    u = u / u.norm()
    return u @ W @ v, u


def check_power_iteration(power_iteration) -> bool:
    """``power_iteration(W, u, n_iterations) -> (sigma, u)``: Miyato et al.'s Algorithm 1,
    v <- W^T u / |W^T u|, u <- W v / |W v| (repeated), sigma = u^T W v."""
    g = torch.Generator().manual_seed(3)
    W = torch.randn(6, 9, generator=g, dtype=torch.float64)
    u0 = torch.randn(6, generator=g, dtype=torch.float64)
    u0 = u0 / u0.norm()
    out = power_iteration(W.clone(), u0.clone(), 1)
    expect(isinstance(out, (tuple, list)) and len(out) == 2,
           "power_iteration should return a pair (sigma, u): the estimate and the updated vector u, which "
           "spectral norm keeps between training steps (that is why one step per forward is enough).")
    sigma1, u1 = out
    sigma1 = torch.as_tensor(sigma1).double()
    want1, want_u1 = _reference_step(W, u0)
    frob = W.norm()
    if torch.allclose(sigma1, frob, atol=1e-6):
        raise ExerciseError("That is the Frobenius norm sqrt(sum W_ij^2): an upper bound on sigma(W), equal only "
                            "for rank-1 matrices. Power iteration estimates the largest singular value.")
    if torch.allclose(sigma1, want1 ** 2, atol=1e-6):
        raise ExerciseError("You returned sigma^2 (e.g. u^T W W^T u). sigma(W) = u^T W v with u, v unit vectors.")
    u1_norm = float(torch.as_tensor(u1).double().norm())
    if not math.isclose(u1_norm, 1.0, rel_tol=1e-4):
        raise ExerciseError(f"The u you returned has length {u1_norm:.4g}, not 1: normalise v = W^T u / |W^T u| and "
                            "u = W v / |W v| at every iteration. Without it the vectors grow like sigma^n and "
                            "u^T W v is no longer sigma(W) but sigma^(2n+1)-ish.")
    expect_close(sigma1, want1, "sigma after one iteration from the given u",
                 hint="One iteration: v = W^T u / |W^T u|, u = W v / |W v|, then sigma = u^T W v.", atol=1e-6)
    expect_close(torch.as_tensor(u1).double(), want_u1, "u after one iteration",
                 hint="Return the normalised u = W v / |W v| so the next call can continue from it.", atol=1e-6)
    sigma, _ = power_iteration(W.clone(), u0.clone(), 200)
    expect_close(torch.as_tensor(sigma).double(), torch.linalg.svdvals(W)[0], "sigma after 200 iterations",
                 hint="Repeated, power iteration converges to the top singular value (torch.linalg.svdvals(W)[0]).",
                 atol=1e-6)
    sigma3, _ = power_iteration(3 * W, u0.clone(), 200)
    expect_close(torch.as_tensor(sigma3).double(), 3 * torch.linalg.svdvals(W)[0], "sigma(3 W)",
                 hint="sigma is homogeneous: sigma(3 W) = 3 sigma(W). Normalise u and v, not W.", atol=1e-6)
    return passed("sigma(W) by power iteration")
