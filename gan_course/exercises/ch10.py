"""Checks for chapter 10 (Sauer, Schwarz & Geiger, 2022, "StyleGAN-XL: Scaling StyleGAN to Large Diverse Datasets",
arXiv 2202.00273; the StyleGAN2 layer: Karras et al., 2020, arXiv 1912.04958).

1. ``check_demodulation``: StyleGAN2's modulated and demodulated weights (Sec. 2.2, Eqs. 1 and 3):
   w'_{b,j,i,k} = s_{b,i} w_{j,i,k},  w''_{b,j,i,k} = w'_{b,j,i,k} / sqrt(sum_{i,k} w'^2_{b,j,i,k} + eps).
2. ``check_truncation``: the truncation trick in W toward the class's average: w' = w_avg + psi (w - w_avg).
3. ``check_class_average_update``: the running average of w per class that truncation aims at, updated from each
   batch as StyleGAN updates its one w_avg: w_avg_c[k] <- mean_k + beta (w_avg_c[k] - mean_k) for every class k in
   the batch (mean_k: the mean of the batch's w of class k); classes not in the batch keep theirs.

Each check runs the learner's function on cases with known answers, recognises the usual mistakes and says what to
think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import torch

from . import ExerciseError, call_tensor, expect, passed

__all__ = ["check_class_average_update", "check_demodulation", "check_truncation", "reference_class_average_update",
           "reference_demodulation"]


# ============================================================================ exercise 1
def reference_demodulation(weight: torch.Tensor, s: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(out, in, k, k) weight and (B, in) styles -> (B, out, in, k, k) modulated, demodulated weights."""
    w = weight.unsqueeze(0) * s[:, None, :, None, None]
    return w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)


def check_demodulation(fn) -> bool:
    """``fn(weight, s, eps) -> w''``: ``weight`` (out, in, k, k), styles ``s`` (B, in); return (B, out, in, k, k):
    each sample's weights with input channel i scaled by s[b, i] (modulation), then each output filter j of each
    sample divided by its L2 norm over (in, k, k) (demodulation, with ``eps`` inside the square root)."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    s = torch.rand(3, 4, generator=g, dtype=torch.float64) * 2 + 0.1
    s[1] = torch.tensor([5.0, 0.1, 1.0, 2.0], dtype=torch.float64)
    eps = 1e-8
    out = call_tensor(fn, weight, s, eps)
    want = reference_demodulation(weight, s, eps)
    expect(tuple(out.shape) == tuple(want.shape),
           f"Expected shape {tuple(want.shape)} = (B, out, in, k, k), got {tuple(out.shape)}. Give every sample its "
           "own copy of the weight: weight.unsqueeze(0) * s[:, None, :, None, None] has that shape.")
    out = out.detach().to(torch.float64)
    if torch.allclose(out, want, atol=1e-6, rtol=1e-5):
        ones = call_tensor(fn, weight, torch.ones(2, 4, dtype=torch.float64), eps).detach().double()
        expect(torch.allclose(ones[0], ones[1]) and torch.allclose(ones, reference_demodulation(
            weight, torch.ones(2, 4, dtype=torch.float64), eps), atol=1e-6),
            "Your function matches the reference for one set of styles but not for s = 1: does it depend on "
            "something other than weight, s and eps?")
        return passed("weight demodulation")
    norms = out.pow(2).sum(dim=(2, 3, 4)).sqrt()
    plain = weight.unsqueeze(0).expand_as(want)
    plain_demod = plain * torch.rsqrt(plain.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)
    if torch.allclose(out, plain_demod, atol=1e-6):
        raise ExerciseError("Your weights do not depend on the styles s: multiply input channel i of every filter by "
                            "s[b, i] (modulation) *before* demodulating.")
    modulated = weight.unsqueeze(0) * s[:, None, :, None, None]
    if torch.allclose(out, modulated, atol=1e-6):
        raise ExerciseError("You modulated but did not demodulate: divide each output filter (a slice w'[b, j]) by "
                            "sqrt(sum over in, k, k of w'^2 + eps).")
    if torch.allclose(norms, torch.ones_like(norms), atol=1e-4):
        raise ExerciseError("Every output filter has unit norm, as it should, but the values differ from the "
                            "reference: did you modulate with s along the input-channel dimension (weight dim 1)?")
    wrong_axis = modulated / modulated.pow(2).sum(dim=2, keepdim=True).add(eps).sqrt()
    if torch.allclose(out, wrong_axis, atol=1e-6):
        raise ExerciseError("You normalised over the input channels only, for each kernel position. The norm of an "
                            "output filter j runs over all its inputs *and* kernel positions: sum over dims (2, 3, 4) "
                            "of the (B, out, in, k, k) tensor.")
    raise ExerciseError(f"Your output filters have norms {[round(v, 3) for v in norms[0].tolist()]} for sample 0; "
                        "after demodulation each output filter of each sample should have L2 norm 1 (up to eps). "
                        "Divide by sqrt(sum over (in, k, k) of w'^2 + eps), keeping the dims for broadcasting.")


# ============================================================================ exercise 2
def check_truncation(fn) -> bool:
    """``fn(w, w_avg, psi) -> w'``: w (B, w_dim), w_avg broadcastable (one row per sample: the average w of each
    sample's class), psi a float; return w_avg + psi (w - w_avg)."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 8, generator=g, dtype=torch.float64)
    w_avg = torch.randn(6, 8, generator=g, dtype=torch.float64) + 2.0
    want = {psi: w_avg + psi * (w - w_avg) for psi in (0.0, 0.5, 1.0, 1.5)}
    got = {psi: call_tensor(fn, w.clone(), w_avg.clone(), psi).detach().double() for psi in want}
    for psi in want:
        expect(tuple(got[psi].shape) == tuple(w.shape), f"Expected shape {tuple(w.shape)} (like w), got "
                                                        f"{tuple(got[psi].shape)}.")
    if torch.allclose(got[0.5], 0.5 * w, atol=1e-6):
        raise ExerciseError("You scaled w toward 0 (psi * w). In W the centre is not 0: truncate toward the average "
                            "w_avg, w_avg + psi (w - w_avg). (Scaling z toward 0 was BigGAN's trick in Z.)")
    if torch.allclose(got[0.5], w_avg + 0.5 * (w_avg - w), atol=1e-6):
        raise ExerciseError("Your w moves away from w_avg: the difference is w - w_avg, not w_avg - w.")
    if torch.allclose(got[0.5], 0.5 * (w - w_avg), atol=1e-6):
        raise ExerciseError("You returned psi (w - w_avg): add w_avg back, so that psi = 1 gives w itself.")
    expect(torch.allclose(got[0.0], w_avg, atol=1e-6),
           "psi = 0 must give w_avg (every sample becomes its class's average w).")
    expect(torch.allclose(got[1.0], w, atol=1e-6), "psi = 1 must leave w unchanged.")
    for psi in (0.5, 1.5):
        expect(torch.allclose(got[psi], want[psi], atol=1e-6),
               f"psi = {psi}: expected w_avg + psi (w - w_avg); yours differs. The formula is linear in psi, and "
               "psi > 1 extrapolates away from the average.")
    shared = torch.randn(8, generator=g, dtype=torch.float64)
    out = call_tensor(fn, w.clone(), shared, 0.25).detach().double()
    expect(torch.allclose(out, shared + 0.25 * (w - shared), atol=1e-6),
           "With one w_avg of shape (w_dim,) for all samples (StyleGAN's unconditional average) the result should "
           "broadcast: avoid indexing or reshaping w_avg by the batch.")
    return passed("truncation in W")


# ============================================================================ exercise 3
def reference_class_average_update(w_avg_c: torch.Tensor, w: torch.Tensor, c: torch.Tensor,
                                   beta: float) -> torch.Tensor:
    """The new (K, w_dim) table: for each class k in ``c``, lerp(mean of w[c == k], w_avg_c[k], beta); the others
    unchanged (``MappingNetwork.update_w_avg``)."""
    new = w_avg_c.clone()
    for k in c.unique():
        mean = w[c == k].mean(0)
        new[k] = mean + beta * (w_avg_c[k] - mean)
    return new


def check_class_average_update(fn) -> bool:
    """``fn(w_avg_c (K, w_dim), w (B, w_dim), c (B,) int64, beta) -> new w_avg_c (K, w_dim)``, the input unchanged."""
    g = torch.Generator().manual_seed(3)
    K, B, d, beta = 5, 9, 4, 0.9
    table = torch.randn(K, d, generator=g, dtype=torch.float64)
    w = torch.randn(B, d, generator=g, dtype=torch.float64) + 3.0
    c = torch.tensor([0, 2, 2, 1, 0, 2, 1, 0, 2])          # classes 3 and 4 are not in this batch
    before = table.clone()
    out = call_tensor(fn, table, w.clone(), c.clone(), beta).detach().double()
    expect(torch.equal(table, before), "Your function changed the w_avg_c it was given: return a new table "
                                       "(start from w_avg_c.clone()), so the caller decides what to keep.")
    expect(tuple(out.shape) == (K, d), f"Return the whole (K, w_dim) = {(K, d)} table, got {tuple(out.shape)}.")
    want = reference_class_average_update(table, w, c, beta)
    if torch.allclose(out, want, atol=1e-6):
        return passed("running class averages of w")
    mean_all = w.mean(0)
    if torch.allclose(out[:3], (mean_all + beta * (table - mean_all))[:3], atol=1e-6):
        raise ExerciseError("Every class moved toward the mean of the whole batch: that is StyleGAN's single w_avg. "
                            "Each class k moves toward the mean of the w of ITS samples only, w[c == k].")
    moved = reference_class_average_update(table, w, c, 1 - beta)
    if torch.allclose(out, moved, atol=1e-6):
        raise ExerciseError(f"beta = {beta} weighs the batch: each step should keep {beta:.0%} of the old average and "
                            f"take only {1 - beta:.0%} of the batch's mean, w_avg_c[k] <- mean_k + beta "
                            "(w_avg_c[k] - mean_k).")
    if not torch.allclose(out[3:], table[3:], atol=1e-6):
        raise ExerciseError("Classes 3 and 4 have no sample in this batch, so there is nothing to average: their rows "
                            "must stay as they were (a mean over no samples is not 0).")
    sums = torch.zeros_like(table).index_add_(0, c, w)
    if torch.allclose(out[:3], (sums + beta * (table - sums))[:3], atol=1e-6):
        raise ExerciseError("You used the SUM of each class's w: divide by the number of samples of the class.")
    wrong_rows = [k for k in range(K) if not torch.allclose(out[k], want[k], atol=1e-6)]
    raise ExerciseError(f"The rows of classes {wrong_rows} differ from mean_k + beta (w_avg_c[k] - mean_k), mean_k "
                        "being the mean of the batch's w of class k.")
