"""Checks for chapter 09 (Choi et al., 2018, "StarGAN: Unified Generative Adversarial Networks for Multi-Domain
Image-to-Image Translation", arXiv 1711.09020).

1. ``check_label_tiling``: G's input, the image x with the target label c replicated over H x W and concatenated
   along the channels (Sec. 3.1, Fig. 3 (b)).
2. ``check_classification_loss``: -log D_cls(c|x) for multi-label domains, the binary cross-entropy of each label
   summed over the labels and averaged over the batch (Eq. 2 and 3, the authors' code for CelebA).
3. ``check_reconstruction_loss``: L_rec = E[||x - G(G(x, c), c')||_1] (Eq. 4), the cycle back to the ORIGINAL
   domain c', as the mean absolute difference per element (the authors' code), on a stand-in generator that does
   not commute in its label argument (``AffineGenerator``), so a cycle in the wrong order or with the wrong labels
   gives another number.

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
    G(G(x, c), c') = x + <w, c> + <w, c'>. It commutes in its label argument, so it cannot tell the order of a cycle
    apart: the check of Exercise 3 uses ``AffineGenerator``."""

    def __init__(self, w=(0.3, -0.2, 0.05)):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x, c):
        return x + (c @ self.w)[:, None, None, None]


class AffineGenerator(nn.Module):
    """The stand-in of ``check_reconstruction_loss``: per channel k, G(x, c)_k = x_k (1 + (W c)_k) + tanh((V c)_k),
    a label-dependent contrast change and a brightness shift that is not linear in c, with W != V (both
    (channels, n)). It does not commute in its label argument: G(G(x, c), c') != G(G(x, c'), c), and
    G(G(x, c), c') != x, so every wrong way of writing the cycle gives another number."""

    def __init__(self, W=((-0.5, -0.4, -0.6), (-0.1, -0.5, -0.3)), V=((-0.6, 0.9, -0.9), (-0.6, 0.9, -0.4))):
        super().__init__()
        self.W, self.V = nn.Parameter(torch.tensor(W)), nn.Parameter(torch.tensor(V))

    def forward(self, x, c):
        c = c.to(self.W.dtype)
        scale, shift = 1 + c @ self.W.t(), torch.tanh(c @ self.V.t())
        return x * scale[:, :, None, None] + shift[:, :, None, None]


def check_reconstruction_loss(fn) -> bool:
    """``fn(G, x, c, c_prime) -> loss``: mean |x - G(G(x, c), c')| (Eq. 4), differentiable with respect to G."""
    G = AffineGenerator()
    g = torch.Generator().manual_seed(11)
    x = torch.rand(4, 2, 3, 5, generator=g) * 2 - 1
    c = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    c_prime = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    out = _tensor(call(fn, G, x.clone(), c.clone(), c_prime.clone()), "The reconstruction loss")
    expect(out.dim() == 0, f"The loss should be one number, got shape {tuple(out.shape)}: average over every "
                           "image and pixel.")
    with torch.no_grad():
        value = out.detach().double()

        def same(other):
            return torch.allclose(value, other.double(), rtol=1e-4, atol=1e-6)

        rec = G(G(x, c), c_prime)
        if same((x - G(G(x, c), c)).abs().mean()):
            raise ExerciseError("You translated back with the TARGET label c: G(G(x, c), c) stays in domain c. The "
                                "cycle returns to the ORIGINAL domain: the second call gets c', G(G(x, c), c').")
        if same((x - G(G(x, c_prime), c)).abs().mean()):
            raise ExerciseError("Your cycle runs the wrong way: G(G(x, c'), c) first 'translates' x to the domain it "
                                "is already in, then to c, and ends in the target domain, not where x started. L_rec "
                                "translates to the TARGET c first, then back to the original c': G(G(x, c), c').")
        if same((x - G(G(x, c_prime), c_prime)).abs().mean()):
            raise ExerciseError("You used the original labels c' both ways, G(G(x, c'), c'): that never leaves x's "
                                "domain. The first translation goes to the target c: G(G(x, c), c').")
        if same((x - G(x, c)).abs().mean()) or same((x - G(x, c_prime)).abs().mean()):
            raise ExerciseError("You compared x with one translation: that would forbid any change at all. L_rec "
                                "translates there AND back, x -> G(x, c) -> G(G(x, c), c'), and compares the round "
                                "trip with x.")
        if same(((x - rec) ** 2).mean()) or same(((x - rec) ** 2).mean().sqrt()):
            raise ExerciseError("This is a squared (L2) error. Eq. 4 uses the L1 norm: the absolute difference "
                                "|x - G(G(x, c), c')|, which penalises large errors less and blurs less.")
        if same((x - rec).abs().sum()):
            raise ExerciseError("You summed the absolute differences over the whole batch and every pixel. L_rec is an "
                                "expectation: take the mean (the authors' code: torch.mean(torch.abs(...))), so that "
                                "it does not grow with the batch or the image size and lambda_rec = 10 keeps its "
                                "meaning.")
        if same((x - rec).abs().flatten(1).sum(1).mean()):
            raise ExerciseError("You summed over each image's pixels (its L1 norm) and averaged over the batch only: "
                                "that is the course's loss times C * H * W, which would change what lambda_rec = 10 "
                                "means. Average over the pixels too, as the authors' code does: the mean of "
                                "|x - G(G(x, c), c')| over every element.")
        if same((x - rec).mean().abs()) or same((x - rec).mean()):
            raise ExerciseError("Take the absolute value of each pixel's difference BEFORE averaging; otherwise "
                                "positive and negative errors cancel.")
        if same((x - rec).abs().flatten(1).mean(1).sum()):
            raise ExerciseError("You averaged over each image's pixels but summed over the batch: L_rec is a mean "
                                "over the batch as well.")
    want = (x - G(G(x, c), c_prime)).abs().mean()
    expect_close(out, want, "L_rec for a stand-in G(x, c) = x (1 + W c) + tanh(V c)",
                 hint="The mean over every element of |x - G(G(x, c), c')|.")
    expect(out.requires_grad, "Your loss does not depend on G's parameters (no gradient reaches G): do not detach "
                              "or wrap the translations in torch.no_grad(); G learns from this loss.")
    got_grads = torch.autograd.grad(out, [G.W, G.V], allow_unused=True)
    want_grads = torch.autograd.grad(want, [G.W, G.V])
    expect(all(a is not None and torch.allclose(a, b, atol=1e-6) for a, b in zip(got_grads, want_grads, strict=True)),
           "Your loss has the right value but not the right gradient with respect to G: did you detach the first "
           "translation G(x, c) (or compute it under torch.no_grad())? G learns from both of its calls in the round "
           "trip: the first must produce an image from which the second can return.")
    return passed("reconstruction loss L_rec")
