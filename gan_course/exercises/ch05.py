"""Checks for chapter 05 (Isola, Zhu, Zhou & Efros, 2017, "Image-to-Image Translation with Conditional Adversarial
Networks", arXiv 1611.07004).

1. ``check_generator_loss``: G's objective of Eq. 4, -log D(x, G(x)) averaged over D's patch map (the
   non-saturating form, Sec. 3.3) plus lambda * L1(y, G(x)) (Eq. 3).
2. ``check_receptive_field``: the patch size N of a PatchGAN (Sec. 3.2.2) from its layers' kernel sizes and
   strides: 1, 16, 70 and 286 for the paper's discriminators.
3. ``check_discriminator_loss``: the conditional D's side of Eq. 1, halved (Sec. 3.3): D judges the real pair
   (x, y) and the generated pair (x, G(x)), each stacked along channels, G(x) detached.

Each check runs the learner's function on cases with known answers, recognises the usual mistakes and says what
to think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import ExerciseError, call, expect, expect_close, passed

__all__ = ["check_generator_loss", "check_receptive_field", "check_discriminator_loss", "PairDiscriminator",
           "PATCHGANS"]

# The paper's discriminators (Appendix 6.1.2) as (kernel, stride) per convolution, and their patch sizes N.
PATCHGANS = {
    "1x1 PixelGAN": ([(1, 1), (1, 1), (1, 1)], 1),
    "16x16 PatchGAN": ([(4, 2), (4, 1), (4, 1)], 16),
    "70x70 PatchGAN": ([(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)], 70),
    "286x286 ImageGAN": ([(4, 2)] * 5 + [(4, 1)] * 2, 286),
}


_call = call


# ============================================================================ exercise 1
def _reference_generator_loss(fake_logits, fake, target, lambda_l1):
    return F.softplus(-fake_logits).mean() + lambda_l1 * (target - fake).abs().mean()


def check_generator_loss(fn) -> bool:
    """``fn(fake_logits, fake, target, lambda_l1) -> loss``: -E[log D(x, G(x))] over all patches + lambda * L1.

    ``fake_logits`` is D's patch map on (x, G(x)), shape (B, 1, H', W'); ``fake`` = G(x) and ``target`` = y are
    images (B, C, H, W) in [-1, 1].
    """
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 1, 6, 6, generator=g) * 2
    fake = torch.rand(4, 1, 16, 16, generator=g) * 2 - 1
    target = torch.rand(4, 1, 16, 16, generator=g) * 2 - 1
    lam = 100.0
    out = _call(fn, logits.clone(), fake.clone(), target.clone(), lam)
    out = torch.as_tensor(out)
    expect(out.dim() == 0, f"The loss should be one number (a 0-d tensor), got shape {tuple(out.shape)}: average the "
                           "adversarial term over every patch of every image and the L1 term over every pixel.")
    value = out.double()
    expected = _reference_generator_loss(logits, fake, target, lam).double()
    gan = F.softplus(-logits).mean().double()
    l1 = (target - fake).abs().mean().double()

    def same(v) -> bool:
        return bool(torch.allclose(value, torch.as_tensor(v).double(), atol=1e-4, rtol=1e-5))

    if same(lam * l1):
        raise ExerciseError("Your loss is lambda * L1 only: the adversarial term -log D(x, G(x)) is missing, and "
                            "without it the outputs are blurry (the 'L1 only' row of Table 1).")
    if same(gan):
        raise ExerciseError("Your loss is the adversarial term only: add lambda * L1(y, G(x)) (Eq. 4).")
    if same(gan + l1):
        raise ExerciseError("You added the L1 term without its weight: Eq. 4 multiplies L_L1 by lambda (100).")
    if same(lam * gan + l1):
        raise ExerciseError("lambda weighs the L1 term, not the adversarial one: L_cGAN + lambda * L_L1.")
    if same(-F.softplus(logits).mean() + lam * l1):
        raise ExerciseError("This uses the saturating log(1 - D(x, G(x))). pix2pix (Sec. 3.3) follows Goodfellow et "
                            "al.: train G to maximise log D(x, G(x)), i.e. minimise -log D = softplus(-logit).")
    if same(F.softplus(logits).mean() + lam * l1):
        raise ExerciseError("The adversarial term has the wrong sign: G wants D to say 'real' (1) on (x, G(x)), so "
                            "its loss is -log D(x, G(x)) = softplus(-logit), not softplus(logit).")
    if same(gan + lam * ((target - fake) ** 2).mean()):
        raise ExerciseError("That is an L2 (squared) distance. pix2pix uses L1, |y - G(x)|, 'as L1 encourages less "
                            "blurring' (Sec. 3.1).")
    if same(F.softplus(-logits).sum() + lam * l1) or same(F.softplus(-logits).flatten(1).sum(1).mean() + lam * l1):
        raise ExerciseError("You summed D's patch map: the PatchGAN 'averages all responses' (Sec. 3.2.2). Take "
                            "the mean over patches, so the loss does not grow with the image size.")
    if same(gan + lam * (target - fake).abs().sum()) or same(gan + lam * (target - fake).abs().flatten(1).sum(1).mean()):
        raise ExerciseError("You summed the absolute errors: use their mean per pixel, so lambda = 100 has the "
                            "paper's meaning whatever the image size.")
    if same(gan + lam * (target - fake).mean().abs()):
        raise ExerciseError("Take the absolute value per pixel before averaging: |mean(y - G(x))| lets positive "
                            "and negative errors cancel.")
    expect_close(value, expected, "G's loss on a test case",
                 hint="-log D(x, G(x)) = softplus(-logit), averaged over the patch map, plus "
                      "lambda * mean |y - G(x)|.", atol=1e-4)

    big = torch.as_tensor(_call(fn, torch.tensor([-200.0, 200.0]).view(1, 1, 1, 2), fake[:1], fake[:1], lam))
    expect(bool(torch.isfinite(big)), f"For logits [-200, 200] your loss is {float(big)}: sigmoid(-200) underflows "
                                      "to 0 and log(0) = -inf. Compute -log D from the logit: F.softplus(-logit).")
    expect_close(big, torch.tensor(100.0), "the loss for patch logits [-200, 200] and G(x) = y", atol=1e-3,
                 hint="softplus(200) = 200 and softplus(-200) ~ 0 average to 100; the L1 term is 0.")

    f = fake.clone().requires_grad_(True)
    loss = torch.as_tensor(_call(fn, logits.clone(), f, target.clone(), lam))
    expect(loss.requires_grad, "Your loss is detached from G(x), so no gradient reaches G. Use torch operations "
                               "only (no .item(), .numpy() or float()).")
    (grad,) = torch.autograd.grad(loss, f)
    expect_close(grad, lam * torch.sign(f.detach() - target) / f.numel(), "dLoss/dG(x) of the L1 term", atol=1e-5,
                 hint="The gradient of lambda * mean|y - G(x)| is lambda * sign(G(x) - y) / (number of pixels).")
    return passed("pix2pix generator objective (Eq. 4)")


# ============================================================================ exercise 2
def _reference_receptive_field(layers) -> int:
    r, j = 1, 1
    for k, s in layers:
        r, j = r + (k - 1) * j, j * s
    return r


def check_receptive_field(fn) -> bool:
    """``fn(layers) -> int``: the receptive field (patch size N) of a stack of convolutions, ``layers`` a list of
    ``(kernel_size, stride)`` from the input to the output (padding does not change the size)."""
    cases = {"70x70 PatchGAN": PATCHGANS["70x70 PatchGAN"], **PATCHGANS}      # the most telling case first
    cases.update({"three 3x3 convolutions, stride 1": ([(3, 1)] * 3, 7),
                  "three 2x2 convolutions, stride 2": ([(2, 2)] * 3, 8),
                  "no layer at all": ([], 1)})
    for name, (layers, answer) in cases.items():
        assert _reference_receptive_field(layers) == answer, name
        out = _call(fn, list(layers))
        try:
            got = int(out)
        except (TypeError, ValueError):
            raise ExerciseError(f"Return one integer (the patch size N), got {out!r}.") from None
        if got == answer:
            continue
        where = f"For the {name} {layers} you returned {got}; the answer is {answer}."
        if got == sum(k for k, _ in layers) or got == 1 + sum(k - 1 for k, _ in layers):
            raise ExerciseError(f"{where} Each layer adds (k - 1) pixels *of its own input*, and after a stride-2 "
                                "layer one step in its output is 2 input pixels: track the jump "
                                "j_l = j_{l-1} * s_l and grow r_l = r_{l-1} + (k_l - 1) * j_{l-1}.")
        if got == _reference_receptive_field(list(reversed(layers))):
            raise ExerciseError(f"{where} You ran the forward recursion from the output layer. Either go from the "
                                "input (r += (k - 1) * j; then j *= s), or from the output with r = s * r + (k - s).")
        r, j = 1, 1
        for k, s in layers:
            j *= s
            r += (k - 1) * j
        if got == r:
            raise ExerciseError(f"{where} You multiplied in a layer's own stride before adding its kernel: a layer's "
                                "kernel is spread by the jump of the layers *before* it (r += (k - 1) * j, then j *= s).")
        if math.prod(s for _, s in layers) == got:
            raise ExerciseError(f"{where} That is the jump (the product of the strides: how far apart neighbouring "
                                "patches are), not the patch size.")
        raise ExerciseError(f"{where} Start from r = 1 (one output unit sees one pixel of its own layer) and j = 1, "
                            "then for each layer from the input: r = r + (k - 1) * j, j = j * s.")
    return passed("PatchGAN receptive field")


# ============================================================================ exercise 3
class PairDiscriminator(nn.Module):
    """A small conditional D for the check: a 3x3 convolution, leaky ReLU and a 1x1 convolution from the pair
    [x, y] stacked along channels, ``x_channels + y_channels`` of them, to a map of patch logits (B, 1, H, W).

    It refuses, with an ``ExerciseError`` that says why, an input with another number of channels (D given only
    the output, or a pair stacked along the batch), so a learner's mistake is named where it happens."""

    def __init__(self, x_channels: int = 1, y_channels: int = 3, scale: float = 1.0, seed: int = 0):
        super().__init__()
        self.x_channels, self.y_channels = x_channels, y_channels
        g = torch.Generator().manual_seed(seed)
        c = x_channels + y_channels
        self.conv = nn.Conv2d(c, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 1, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * scale / max(1, p[0].numel()) ** 0.5)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        cx, cy = self.x_channels, self.y_channels
        expect(torch.is_tensor(pair) and pair.dim() == 4,
               f"D takes one (B, {cx + cy}, H, W) tensor, the pair [x, y] stacked along channels; it was given "
               f"{tuple(pair.shape) if torch.is_tensor(pair) else type(pair).__name__}.")
        c = pair.shape[1]
        if c == cy:
            raise ExerciseError(f"D was given a tensor with {c} channels, an output y or G(x) alone. The conditional "
                                f"D of Eq. 1 judges the *pair*: torch.cat([x, y], dim=1), {cx} + {cy} = {cx + cy} "
                                "channels. A D that does not see x only checks that the output looks real, not that "
                                "it belongs with its input (Eq. 2, the unconditional variant).")
        if c == cx:
            raise ExerciseError(f"D was given a tensor with {c} channels, the input x alone: stack it with the "
                                f"candidate output, torch.cat([x, y], dim=1) ({cx + cy} channels).")
        if c != cx + cy:
            raise ExerciseError(f"D was given a tensor with {c} channels; the pair [x, y] has {cx} + {cy} = "
                                f"{cx + cy}. Stack x and the candidate output along the channels (dim=1), not along "
                                "the batch or the image.")
        return self.out(torch.nn.functional.leaky_relu(self.conv(pair), 0.2))


def _reference_discriminator_loss(D, x, y, fake):
    real_logits = D(torch.cat([x, y], dim=1))
    fake_logits = D(torch.cat([x, fake.detach()], dim=1))
    return 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())


def check_discriminator_loss(fn) -> bool:
    """``fn(D, x, y, fake) -> loss_D``: L_D = 1/2 (-E[log D(x, y)] - E[log(1 - D(x, G(x)))]), each expectation a
    mean over every patch of D's logit map, where ``D`` maps the pair stacked along channels,
    ``torch.cat([x, y], dim=1)`` (B, C_x + C_y, H, W), to logits (B, 1, H', W'); ``x`` (B, C_x, H, W) is the input,
    ``y`` (B, C_y, H, W) its target and ``fake`` = G(x) (B, C_y, H, W), still attached to G's graph."""
    g = torch.Generator().manual_seed(55)
    D = PairDiscriminator(1, 3, scale=2.0, seed=5)
    x = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    y = torch.rand(3, 3, 8, 8, generator=g) * 2 - 1
    fake_leaf = (torch.rand(3, 3, 8, 8, generator=g) * 2 - 1).requires_grad_(True)
    fake = fake_leaf * 1.0                                  # G(x): a non-leaf tensor with a graph behind it

    out = call(fn, D, x.clone(), y.clone(), fake)
    expect(torch.is_tensor(out), f"Return L_D as a tensor (0-d), got {type(out).__name__}: it is what D's optimiser "
                                 "steps on, so keep it a tensor (no .item() or float()).")
    expect(out.dim() == 0, f"L_D should be one number (a 0-d tensor), got shape {tuple(out.shape)}: average each "
                           "term over every patch of every image.")
    value = out.detach().double()
    with torch.no_grad():
        real_logits = D(torch.cat([x, y], 1)).double()
        fake_logits = D(torch.cat([x, fake], 1)).double()
        ce_real, ce_fake = F.softplus(-real_logits).mean(), F.softplus(fake_logits).mean()
        want = 0.5 * (ce_real + ce_fake)

    def same(v) -> bool:
        return bool(torch.allclose(value, torch.as_tensor(v).double(), atol=1e-5, rtol=1e-5))

    if not same(want):
        with torch.no_grad():
            swapped_real = F.softplus(-D(torch.cat([y, x], 1))).mean().double()
            swapped_fake = F.softplus(D(torch.cat([fake, x], 1))).mean().double()
        if same(ce_real + ce_fake):
            raise ExerciseError("Your L_D is twice the answer: pix2pix divides D's objective by 2 (Sec. 3.3, "
                                "\"which slows down the rate at which D learns relative to G\").")
        if same(0.5 * (F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean())):
            raise ExerciseError("Real and generated are swapped: D should say 'real' (1) on (x, y) and 'fake' (0) on "
                                "(x, G(x)), so its loss is -log D(x, y) = softplus(-logit) on the real pair and "
                                "-log(1 - D(x, G(x))) = softplus(logit) on the generated one.")
        if same(-0.5 * (ce_real + ce_fake)) or same(-(ce_real + ce_fake)):
            raise ExerciseError("Your L_D has the wrong sign: you returned L_cGAN, the value D maximises. D's "
                                "optimiser minimises, so return its negative, 1/2 (-E[log D(x, y)] - "
                                "E[log(1 - D(x, G(x)))]).")
        if same(0.5 * (swapped_real + swapped_fake)):
            raise ExerciseError("You stacked the pair as [y, x]. Keep the order D was built for, input first: "
                                "torch.cat([x, y], dim=1) and torch.cat([x, G(x)], dim=1).")
        if same(0.5 * (F.softplus(-real_logits).flatten(1).sum(1).mean() + F.softplus(fake_logits).flatten(1).sum(1)
                       .mean())) or same(0.5 * (F.softplus(-real_logits).sum() + F.softplus(fake_logits).sum())):
            raise ExerciseError("You summed over D's patch map: the PatchGAN averages all its responses (Sec. 3.2.2), "
                                "so take the mean over patches and images.")
        if same(0.5 * (F.softplus(-real_logits.mean()) + F.softplus(fake_logits.mean()))):
            raise ExerciseError("You averaged the logits over the patches before the log-loss: each patch gives its "
                                "own verdict, so apply -log D to every patch logit, then average the losses.")
        if same(ce_real) or same(ce_fake) or same(0.5 * ce_real) or same(0.5 * ce_fake):
            raise ExerciseError("Your L_D has only one of its two terms: D must call the real pair (x, y) real *and* "
                                "the generated pair (x, G(x)) fake.")
        raise ExerciseError(f"L_D on a test case: expected {float(want):.5f}, got {float(value):.5f}. L_D = 1/2 "
                            "(mean softplus(-D([x, y])) + mean softplus(D([x, G(x)]))), the pairs stacked along "
                            "channels.")

    expect(out.requires_grad and any(p.requires_grad for p in D.parameters()),
           "Your L_D has no gradient with respect to D's weights, so D cannot learn from it: compute it with torch "
           "operations on D's outputs (not under torch.no_grad(), no .item() or .detach() of the logits).")
    grads = torch.autograd.grad(out, [fake_leaf, *D.parameters()], allow_unused=True)
    to_fake = grads[0]
    expect(to_fake is None or float(to_fake.abs().max()) == 0.0,
           "Your L_D sends a gradient into G(x), and so into G: D's step would also move G, the wrong way (towards "
           "outputs D calls fake). Detach the generated output in D's loss: D(torch.cat([x, fake.detach()], dim=1)).")
    expect(all(gr is not None for gr in grads[1:]), "Some of D's weights get no gradient from your L_D: compute it "
                                                     "from D's outputs on both pairs.")

    gx = torch.Generator().manual_seed(56)
    x2 = torch.rand(2, 1, 4, 6, generator=gx) * 2 - 1
    y2 = torch.rand(2, 3, 4, 6, generator=gx) * 2 - 1
    big = PairDiscriminator(1, 3, scale=400.0, seed=6)
    out = torch.as_tensor(call(fn, big, x2, y2, -y2)).detach()
    expect(bool(torch.isfinite(out)), f"With a confident D (patch logits in the hundreds) your L_D is {float(out)}: "
                                      "sigmoid under- or overflows and log(0) = -inf. Compute -log D from the logit, "
                                      "F.softplus(-logit), or use F.binary_cross_entropy_with_logits.")
    return passed("pix2pix conditional discriminator objective (Eq. 1, halved)")
