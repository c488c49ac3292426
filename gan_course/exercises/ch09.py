"""Checks for chapter 09 (Choi et al., 2018, "StarGAN: Unified Generative Adversarial Networks for Multi-Domain
Image-to-Image Translation", arXiv 1711.09020).

1. ``check_label_tiling``: G's input, the image x with the target label c replicated over H x W and concatenated
   along the channels (Sec. 3.1, Fig. 3 (b)).
2. ``check_classification_loss``: -log D_cls(c|x) for multi-label domains, the binary cross-entropy of each label
   summed over the labels and averaged over the batch (Eq. 2 and 3, the authors' code for CelebA).
3. ``check_reconstruction_loss``: L_rec = E[||x - G(G(x, c), c')||_1] (Eq. 4), the cycle back to the ORIGINAL
   domain c'.

Each check runs the learner's function on cases with known answers, recognises the usual mistakes and says what
to think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import ExerciseError, call, expect, expect_close, passed

__all__ = ["check_label_tiling", "check_classification_loss", "check_reconstruction_loss", "ShiftGenerator",
           "AffineGenerator"]


def _tensor(out, what: str) -> torch.Tensor:
    expect(torch.is_tensor(out), f"{what} should be a tensor, got {type(out).__name__}.")
    return out


# ============================================================================ exercise 1
def check_label_tiling(fn) -> bool:
    """``fn(x, c) -> (B, C + n, H, W)``: the image channels first, then one constant channel per label."""
    g = torch.Generator().manual_seed(9)
    x = torch.rand(3, 2, 5, 7, generator=g) * 2 - 1                     # non-square, two channels: no lucky shapes
    c = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    try:
        out = _tensor(call(fn, x.clone(), c.clone()), "G's input")
    except RuntimeError as err:
        raise ExerciseError(f"Your function raised RuntimeError: {err}. Tile c to (B, n, H, W) first "
                            "(c[:, :, None, None].expand(-1, -1, H, W)), then concatenate along dim=1.") from None
    want = torch.cat([x, c[:, :, None, None].expand(-1, -1, 5, 7)], dim=1)
    if out.shape == (3, 2 + 4, 7, 5):
        raise ExerciseError("Height and width are swapped: tile c to x's (H, W) = (x.shape[-2], x.shape[-1]).")
    if out.dim() == 4 and out.shape[1:] == (2 + 4, 5, 7) and torch.allclose(out[:, :4], want[:, 2:]):
        raise ExerciseError("The labels come first. The course (and the authors' code) puts the image channels first, "
                            "torch.cat([x, c_tiled], dim=1), so G's first layer sees [x, c] in that order.")
    if out.dim() == 4 and out.shape[1] == 2 and tuple(out.shape) != (3, 2, 5, 7):
        raise ExerciseError(f"Got shape {tuple(out.shape)}: you concatenated along the wrong dimension. The labels "
                            "become extra *channels*: dim=1 of (B, C, H, W).")
    expect(out.shape == want.shape, f"G's input should have shape (B, C + n, H, W) = {tuple(want.shape)} for x of "
                                    f"shape {tuple(x.shape)} and c of shape {tuple(c.shape)}; got {tuple(out.shape)}.")
    expect(torch.allclose(out[:, :2], x), "The first C channels should be the image x itself, unchanged.")
    labels = out[:, 2:]
    if torch.allclose(labels, c[:, :, None, None].expand(-1, -1, 5, 7)[[1, 2, 0]]):
        raise ExerciseError("Each image got another image's label: tile c row by row, image b gets c[b].")
    spread = labels.flatten(2).std(2).max()
    expect(spread < 1e-6, "Every label channel must be constant over the image (the label value replicated at each "
                          "pixel); yours varies across pixels. c[:, :, None, None].expand(-1, -1, H, W) does it.")
    expect_close(labels[:, :, 0, 0], c, "the label channels' values",
                 hint="channel C + i of image b should be c[b, i] everywhere.")
    expect(out.dtype == x.dtype, f"The result should keep x's dtype ({x.dtype}); got {out.dtype}.")
    return passed("label tiling (G's input [x, c])")


# ============================================================================ exercise 2
def check_classification_loss(fn) -> bool:
    """``fn(logits, labels) -> loss``: BCE of each label from its logit, summed over labels, mean over the batch."""
    g = torch.Generator().manual_seed(10)
    logits = torch.randn(6, 4, generator=g) * 3
    labels = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 1], [0, 1, 1, 0]],
                          dtype=torch.float32)
    out = _tensor(call(fn, logits.clone(), labels.clone()), "The classification loss")
    expect(out.dim() == 0, f"The loss should be one number, got shape {tuple(out.shape)}: sum over the labels, then "
                           "average over the batch.")
    per_label = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    want = per_label.sum(1).mean()
    if torch.allclose(out, per_label.mean(), atol=1e-5):
        raise ExerciseError("You averaged over the labels too (F.binary_cross_entropy_with_logits's default "
                            "reduction='mean'): that is the right loss divided by the number of labels (4 here), "
                            "which would weaken lambda_cls. The authors' code sums over the labels and divides by "
                            "the batch size: reduction='sum' / batch.")
    if torch.allclose(out, per_label.sum(), atol=1e-4):
        raise ExerciseError("You summed over the batch as well; divide by the batch size (an expectation over x).")
    if torch.allclose(out, F.cross_entropy(logits, labels.argmax(1)), atol=1e-5) or \
            torch.allclose(out, -(labels * F.log_softmax(logits, 1)).sum(1).mean(), atol=1e-5):
        raise ExerciseError("This is a softmax cross-entropy: it assumes exactly one label is true. The glyph (and "
                            "CelebA) labels are several independent attributes (bold AND italic can both be 1), so "
                            "each label gets its own sigmoid: binary cross-entropy per label.")
    probs = torch.sigmoid(logits)
    if torch.allclose(out, F.binary_cross_entropy(torch.sigmoid(probs), labels, reduction="sum") / 6, atol=1e-4):
        raise ExerciseError("You applied the sigmoid twice. binary_cross_entropy_with_logits takes the raw logits.")
    expect(torch.isfinite(call(fn, torch.tensor([[80.0, -80.0]]), torch.tensor([[0.0, 1.0]]))).all(),
           "Your loss is not finite for confident wrong logits (+-80): compute it from the logits "
           "(F.binary_cross_entropy_with_logits, or softplus), not as log(sigmoid(.)).")
    expect_close(out, want, "the loss on the test logits",
                 hint="F.binary_cross_entropy_with_logits(logits, labels, reduction='sum') / logits.shape[0].")
    return passed("domain classification loss -log D_cls(c|x)")


# ============================================================================ exercise 3
class ShiftGenerator(nn.Module):
    """A stand-in G(x, c) = x + <w, c> (a label-dependent brightness shift) whose outputs are known in closed form:
    G(G(x, c), c') = x + <w, c> + <w, c'>, so every way of writing the cycle gives a different number."""

    def __init__(self, w=(0.3, -0.2, 0.05)):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x, c):
        return x + (c @ self.w)[:, None, None, None]


class AffineGenerator(nn.Module):
    """The stand-in of ``check_reconstruction_loss``: G(x, c) = (1 + <u, c>) x + <w, c>, a label-dependent contrast and
    brightness change. Unlike a pure shift it does not commute, G(G(x, c), c') != G(G(x, c'), c), so a cycle written
    in the wrong order gives another number."""

    def __init__(self, u=(0.5, -0.3, 0.2), w=(0.3, -0.2, 0.05)):
        super().__init__()
        self.u, self.w = nn.Parameter(torch.tensor(u)), nn.Parameter(torch.tensor(w))

    def forward(self, x, c):
        return (1 + c @ self.u)[:, None, None, None] * x + (c @ self.w)[:, None, None, None]


def check_reconstruction_loss(fn) -> bool:
    """``fn(G, x, c, c_prime) -> loss``: mean |x - G(G(x, c), c')| (Eq. 4), differentiable with respect to G."""
    G = AffineGenerator()
    g = torch.Generator().manual_seed(11)
    x = torch.rand(4, 1, 3, 3, generator=g) * 2 - 1
    c = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    c_prime = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    out = _tensor(call(fn, G, x.clone(), c.clone(), c_prime.clone()), "The reconstruction loss")
    expect(out.dim() == 0, f"The loss should be one number, got shape {tuple(out.shape)}.")

    def l1(a, b):
        return (a - b).abs().mean()

    want = l1(x, G(G(x, c), c_prime))
    if torch.allclose(out, l1(x, G(G(x, c), c)), atol=1e-6):
        raise ExerciseError("You translated back with the TARGET label c: G(G(x, c), c) stays in domain c. The cycle "
                            "returns to the ORIGINAL domain: G(G(x, c), c'), then compare with x.")
    if torch.allclose(out, l1(x, G(G(x, c_prime), c)), atol=1e-6):
        raise ExerciseError("Your cycle runs the wrong way: G(G(x, c'), c) first 'translates' x to the domain it is "
                            "already in, then to c. L_rec translates to the TARGET c first, then back to the original "
                            "c': G(G(x, c), c').")
    if torch.allclose(out, l1(x, G(x, c)), atol=1e-6):
        raise ExerciseError("You compared x with the translation G(x, c): that would forbid any change at all. L_rec "
                            "translates there AND back, x -> G(x, c) -> G(G(x, c), c'), and compares the round trip "
                            "with x.")
    if torch.allclose(out, ((x - G(G(x, c), c_prime)) ** 2).mean(), atol=1e-6):
        raise ExerciseError("This is a squared (L2) error. Eq. 4 uses the L1 norm, |x - G(G(x, c), c')|, which "
                            "blurs less.")
    if torch.allclose(out, (x - G(G(x, c), c_prime)).mean().abs(), atol=1e-6) or \
            torch.allclose(out, (x - G(G(x, c), c_prime)).mean(), atol=1e-6):
        raise ExerciseError("Take the absolute value of each pixel's difference BEFORE averaging; otherwise positive "
                            "and negative errors cancel.")
    expect_close(out, want, "L_rec for G(x, c) = (1 + <u, c>) x + <w, c>",
                 hint="(x - G(G(x, c), c_prime)).abs().mean().")
    G.w.grad = G.u.grad = None
    out.backward() if out.requires_grad else None
    expect(G.w.grad is not None and G.u.grad is not None, "Your loss does not depend on G's parameters (no gradient reached G): do not detach "
                                 "or wrap the translations in torch.no_grad(); G learns from this loss.")
    return passed("reconstruction loss L_rec")
