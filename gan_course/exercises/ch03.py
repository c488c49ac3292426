"""Checks for chapter 03 (Radford, Metz & Chintala, 2015, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", arXiv 1511.06434).

1. ``check_conv_output_size``: the side of a convolution's output, floor((n + 2p - k) / s) + 1.
2. ``check_conv_transpose_output_size``: the side of a transposed convolution's output,
   (n - 1) s - 2p + k (+ output_padding). ``check_output_sizes`` checks both formulas at once.
3. ``check_init``: DCGAN's initialisation (Sec. 4): conv weights ~ N(0, 0.02^2), biases 0, BN gamma ~ N(1, 0.02^2),
   BN beta 0.
4. ``check_first_block``: G's first block, the "project and reshape" of z into a 4x4 map, with BN and ReLU
   (guidelines 2-4 of Sec. 3): the projection as one ``nn.Linear`` and a reshape ("just a matrix multiplication")
   or as a 4x4 transposed convolution of the 1x1 "image" z; never a fully connected hidden layer (guideline 3).

Each check runs the learner's code on cases with known answers, recognises the usual mistakes and says what to
think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.dcgan import Discriminator, Generator
from ..models.dcgan import check_guidelines as _guidelines
from . import ExerciseError, call, expect, passed

# (n, kernel, stride, padding) cases: DCGAN's layers and a few awkward ones (odd sizes, where floor matters)
CONV_CASES = [(32, 4, 2, 1), (16, 4, 2, 1), (4, 4, 1, 0), (28, 5, 2, 2), (7, 3, 2, 1), (64, 5, 2, 2), (9, 4, 2, 1),
              (6, 3, 1, 1)]
CONV_T_CASES = [(1, 4, 1, 0, 0), (4, 4, 2, 1, 0), (16, 4, 2, 1, 0), (4, 5, 2, 2, 1), (7, 3, 2, 1, 0),
                (7, 3, 2, 1, 1), (8, 5, 2, 2, 1), (3, 3, 1, 1, 0)]
# layers that only reshape (or drop out) between two linear layers: with only these between, they are one linear map
_RESHAPE_ONLY = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)


# ============================================================================ exercises 1 and 2
def _conv_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _conv_t_size(n, k, s, p, op=0):
    return (n - 1) * s - 2 * p + k + op


def _diagnose(fn, cases, correct, mistakes, what):
    """Run ``fn`` on every case; if any answer is wrong, raise the message of the first mistake that explains
    *all* of the learner's answers, or a general one naming the first wrong case."""
    answers = []
    for case in cases:
        got = call(fn, *case)
        expect(got is not None, f"{what} returned None. Did you forget `return`?")
        answers.append(got)
    wrong = [(case, got) for case, got in zip(cases, answers, strict=True) if got != correct(*case)]
    if not wrong:
        return
    for formula, message in mistakes:
        if all(abs(got - formula(*case)) < 1e-9 for case, got in zip(cases, answers, strict=True)):
            case, got = wrong[0]
            raise ExerciseError(f"{what}{case} = {got}, expected {correct(*case)}: {message}")
    case, got = wrong[0]
    raise ExerciseError(f"{what}{case} = {got}, expected {correct(*case)}. {mistakes[-1][1]}")


def _check_conv(conv_output_size):
    _diagnose(conv_output_size, CONV_CASES, _conv_size, [
        (lambda n, k, s, p: (n + 2 * p - k) / s + 1,
         "a fraction. The kernel only fits at whole positions, so round down: floor((n + 2p - k) / s) + 1 (use //)."),
        (lambda n, k, s, p: (n + 2 * p - k) // s,
         "one too few. Count the first position of the kernel too: there are floor((n + 2p - k) / s) positions "
         "after it, so + 1."),
        (lambda n, k, s, p: (n + p - k) // s + 1,
         "the padding is added on both sides of the image, so the padded side is n + 2p."),
        (lambda n, k, s, p: float("nan"),
         "Slide a window of side k over the padded input (side n + 2p) in steps of s and count the positions."),
    ], "conv_output_size")
    # and the formula agrees with torch itself on DCGAN's layers
    x = torch.zeros(1, 1, 32, 32)
    expect(nn.Conv2d(1, 1, 4, 2, 1)(x).shape[-1] == conv_output_size(32, 4, 2, 1),
           "Your conv_output_size disagrees with torch.nn.Conv2d(1, 1, 4, stride=2, padding=1) on a 32x32 image.")


def _check_conv_t(conv_transpose_output_size):
    _diagnose(conv_transpose_output_size, CONV_T_CASES, _conv_t_size, [
        (lambda n, k, s, p, op: _conv_size(n, k, s, p),
         "that is the size of an ordinary convolution, which shrinks the image. A transposed convolution runs the "
         "convolution backwards: solve n = floor((m + 2p - k) / s) + 1 for the output side m, giving "
         "(n - 1) s - 2p + k."),
        (lambda n, k, s, p, op: _conv_t_size(n, k, s, p),
         "add output_padding, which adds that many rows/columns on one side (it picks among the several output "
         "sizes that a strided convolution maps to the same input size)."),
        (lambda n, k, s, p, op: (n - 1) * s - p + k + op,
         "padding removes p rows/columns from both sides of the output, hence -2p."),
        (lambda n, k, s, p, op: n * s - 2 * p + k + op,
         "n input pixels stamp n kernels whose origins are s apart, so the last one starts (n - 1) s after the first."),
        (lambda n, k, s, p, op: float("nan"),
         "Each input pixel stamps a k x k kernel and the stamps are s apart: (n - 1) s + k, minus the padding 2p, "
         "plus output_padding."),
    ], "conv_transpose_output_size")
    default = call(conv_transpose_output_size, 16, 4, 2, 1)          # output_padding left to its default, 0
    expect(nn.ConvTranspose2d(1, 1, 4, 2, 1)(torch.zeros(1, 1, 16, 16)).shape[-1] == default,
           "Your conv_transpose_output_size disagrees with torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1).")


def check_conv_output_size(conv_output_size) -> bool:
    """``conv_output_size(n, kernel, stride, padding)``: the side of a convolution's output for an input of side n,
    floor((n + 2p - k) / s) + 1 (checked against torch too)."""
    _check_conv(conv_output_size)
    return passed("output size of a convolution")


def check_conv_transpose_output_size(conv_transpose_output_size) -> bool:
    """``conv_transpose_output_size(n, kernel, stride, padding, output_padding=0)``: the side of a transposed
    convolution's output for an input of side n, (n - 1) s - 2p + k + output_padding (checked against torch too)."""
    _check_conv_t(conv_transpose_output_size)
    return passed("output size of a transposed convolution")


def check_output_sizes(conv_output_size, conv_transpose_output_size) -> bool:
    """Both formulas at once: ``check_conv_output_size`` and ``check_conv_transpose_output_size``."""
    _check_conv(conv_output_size)
    _check_conv_t(conv_transpose_output_size)
    return passed("output sizes of (transposed) convolutions")


# ============================================================================ exercise 3
def _fresh_networks():
    torch.manual_seed(0)
    G, D = Generator(z_dim=100, width=32), Discriminator(width=32)
    with torch.no_grad():                     # scramble the library's own initialisation first
        for m in list(G.modules()) + list(D.modules()):
            for p in m.parameters(recurse=False):
                p.uniform_(-1, 1)
    return G, D


def check_init(init_fn) -> bool:
    """``init_fn(module)``: re-initialise ``module`` and all its sub-modules in place as DCGAN does (Sec. 4).

    May be written for ``module.apply(init_fn)`` (acts on the module it is given only) or to walk all
    sub-modules; both are accepted.
    """
    G, D = _fresh_networks()
    for net in (G, D):
        try:
            net.apply(init_fn)
        except NotImplementedError:
            raise ExerciseError("Your function still raises NotImplementedError: replace it with your answer.") \
                from None
    convs = [m for net in (G, D) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    bns = [m for net in (G, D) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    w = torch.cat([m.weight.detach().flatten() for m in convs])
    std, mean = w.std().item(), w.mean().item()
    if abs(std - 0.02) > 0.002 or abs(mean) > 0.002:
        hint = ""
        if abs(std - 1.0) < 0.1:
            hint = " That is N(0, 1): pass the standard deviation 0.02, e.g. nn.init.normal_(m.weight, 0.0, 0.02)."
        elif abs(std - 0.02 ** 2) < 0.0005:
            hint = " That is 0.0004 = 0.02^2: nn.init.normal_ takes the standard deviation, not the variance."
        elif std > 0.3:
            hint = (" The weights were not re-drawn (they still look like the scrambled values): did your function "
                    "skip nn.Conv2d or nn.ConvTranspose2d? Both are used (D and G).")
        raise ExerciseError(f"The convolution weights have mean {mean:.4f} and standard deviation {std:.4f}; "
                            f"Sec. 4 draws them from a zero-centred Normal with standard deviation 0.02.{hint}")
    for kind in (nn.Conv2d, nn.ConvTranspose2d):
        ws = torch.cat([m.weight.detach().flatten() for m in convs if type(m) is kind])
        expect(abs(ws.std().item() - 0.02) < 0.003,
               f"The {kind.__name__} weights have standard deviation {ws.std().item():.3f}, not 0.02: initialise "
               "both nn.Conv2d (D) and nn.ConvTranspose2d (G).")
    biases = [m.bias for m in convs if m.bias is not None]
    expect(all(bool((b == 0).all()) for b in biases),
           "Some convolution biases are not zero: set them to 0 (nn.init.zeros_(m.bias) when m.bias is not None).")
    gamma = torch.cat([m.weight.detach() for m in bns])
    beta = torch.cat([m.bias.detach() for m in bns])
    if abs(gamma.mean().item()) < 0.1:
        raise ExerciseError(
            f"The batch-norm scales gamma have mean {gamma.mean().item():.3f}: centred on 0 they multiply every "
            "normalised activation by ~0.02 and the signal nearly vanishes. Draw gamma ~ N(1, 0.02) (the weight of "
            "nn.BatchNorm2d) and set beta (its bias) to 0.")
    expect(abs(gamma.mean().item() - 1) < 0.01 and gamma.std().item() < 0.05,
           f"The batch-norm scales gamma have mean {gamma.mean().item():.3f} and std {gamma.std().item():.3f}; "
           "draw them from N(1, 0.02^2) (or set them to 1).")
    expect(bool((beta == 0).all()), "The batch-norm shifts beta (the bias of nn.BatchNorm2d) should be 0.")
    return passed("DCGAN weight initialisation")


# ============================================================================ exercise 4
def check_first_block(make_block) -> bool:
    """``make_block(z_dim, channels)``: a module taking z of shape (B, z_dim) to a (B, channels, 4, 4) map,
    followed by batch norm and ReLU (G's first block; Sec. 3, Fig. 1).

    The projection may be one ``nn.Linear(z_dim, channels * 16)`` and a reshape or a transposed convolution of the
    1x1 "image" z; batch norm either ``nn.BatchNorm2d(channels)`` on the map or, as the authors' code does before
    the reshape, ``nn.BatchNorm1d(channels * 16)``. A second linear layer is rejected: with a nonlinearity between
    them it is a fully connected hidden layer (guideline 3), without one the same matrix multiplication twice."""
    z_dim, channels = 16, 24
    try:
        block = make_block(z_dim, channels)
    except NotImplementedError:
        raise ExerciseError("Your function still raises NotImplementedError: replace it with your answer.") from None
    expect(isinstance(block, nn.Module), f"make_block should return an nn.Module, got {type(block).__name__}.")
    torch.manual_seed(0)
    z = torch.randn(32, z_dim)
    block.train()
    try:
        out = block(z)
    except RuntimeError as err:
        try:
            block(z.view(32, z_dim, 1, 1))
        except RuntimeError:
            raise ExerciseError(f"Your block fails on z of shape (32, {z_dim}): {err}") from None
        raise ExerciseError(f"Your block takes z of shape (32, {z_dim}, 1, 1) but not (32, {z_dim}), the shape G is "
                            f"given z in: start it with nn.Unflatten(1, ({z_dim}, 1, 1)) (or, for nn.Linear, "
                            "reshape after the projection).") from None
    if tuple(out.shape) == (32, channels, 1, 1) or tuple(out.shape[-2:]) == (2, 2):
        raise ExerciseError(
            f"The output has shape {tuple(out.shape)}: a transposed convolution of a 1x1 input with stride 1 and no "
            "padding outputs a kernel-sized map, so use kernel_size=4, stride=1, padding=0 to get 4x4.")
    expect(tuple(out.shape) == (32, channels, 4, 4),
           f"Expected an output of shape (32, {channels}, 4, 4) from z of shape (32, {z_dim}), got "
           f"{tuple(out.shape)}. The paper projects z and reshapes it to a 4x4 map of feature channels.")
    layers = [m for m in block.modules() if not list(m.children())]
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    if len(linears) > 1:
        between = layers[layers.index(linears[0]) + 1:layers.index(linears[1])]
        if any(not isinstance(m, _RESHAPE_ONLY) for m in between):
            raise ExerciseError(
                f"Your block has {len(linears)} linear layers with a nonlinearity (or normalisation) between them: "
                "the first makes a fully connected *hidden* layer, which guideline 3 removes. The paper's projection "
                "is one matrix multiplication of z, reshaped to the 4x4 map.")
        raise ExerciseError(
            f"Your block has {len(linears)} linear layers in a row: with nothing between them they multiply to one "
            "matrix, W2 W1, the same projection with extra weights (and a bottleneck if the middle is narrower than "
            f"z). The projection is one matrix multiplication, from z ({z_dim}) to channels x 4 x 4 = {channels * 16} "
            "numbers.")
    if linears:
        expect(linears[0].in_features == z_dim and linears[0].out_features == channels * 16,
               f"Your linear layer maps {linears[0].in_features} to {linears[0].out_features} numbers; the projection "
               f"maps z ({z_dim}) to channels x 4 x 4 = {channels * 16} numbers, then reshapes them to the 4x4 map.")
    bns = [m for m in layers if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    expect(bool(bns),
           "Your block has no nn.BatchNorm2d: guideline 2 puts batch norm on every generator layer but the output.")
    # batch norm after the projection: each channel normalised over the batch and the 4x4 positions (BatchNorm2d),
    # or, as the authors' code does before the reshape, each of the channels x 16 projected numbers (BatchNorm1d)
    pre = bns[0]
    if isinstance(pre, nn.BatchNorm2d):
        expect(pre.num_features == channels,
               f"Your BatchNorm2d normalises {pre.num_features} channels; the 4x4 map has {channels}.")
    else:
        expect(pre.num_features == channels * 16,
               f"Your BatchNorm1d normalises {pre.num_features} features; the projection makes channels x 4 x 4 = "
               f"{channels * 16} (or use nn.BatchNorm2d({channels}) on the 4x4 map, after the reshape).")
    expect(not any(isinstance(m, (nn.Tanh, nn.Sigmoid, nn.LeakyReLU)) for m in layers),
           "Guideline 4: the generator's hidden layers use ReLU; tanh is only for the output layer, LeakyReLU is D's.")
    expect(any(isinstance(m, nn.ReLU) for m in layers) and bool((out >= 0).all()),
           "The block's output should pass through a ReLU (guideline 4): all values >= 0.")
    expect(not any(isinstance(m, (nn.Upsample, nn.MaxPool2d, nn.AvgPool2d)) for m in layers),
           "No upsampling or pooling layers (guideline 1): the projection itself makes the 4x4 map.")
    frac_zero = (out == 0).float().mean().item()
    expect(0.2 < frac_zero < 0.8,
           f"{frac_zero:.0%} of the outputs are exactly 0. After batch norm, about half of a ReLU's inputs are "
           "negative: is the batch norm placed between the projection and the ReLU?")
    out.sum().backward()
    expect(all(p.grad is not None for p in block.parameters() if p.requires_grad),
           "Some parameters get no gradient: is every layer used in forward?")
    # and the library's guideline check agrees, on a DCGAN generator that starts with this block
    rest = Generator(z_dim=z_dim, width=channels // 4)
    broken = [k for k, ok in _guidelines(nn.Sequential(block, rest.blocks, rest.to_image),
                                         Discriminator(width=8)).items() if not ok]
    expect(not broken, f"dcgan.check_guidelines, on a generator that starts with your block, finds {broken} broken.")
    return passed("the generator's first block")
