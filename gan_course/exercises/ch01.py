"""Checks for chapter 01 (Goodfellow et al., 2014, "Generative Adversarial Nets", arXiv 1406.2661).

1. ``check_nonsaturating_loss``: the generator loss of Sec. 3, L_G = -E_z[log D(G(z))], from D's logits.
2. ``check_optimal_discriminator``: D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Prop. 1) for two given Gaussians.
3. ``check_discriminator_loss``: D's side of Eq. 1 as a loss, L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))].

Each check runs the learner's function on cases with known answers, recognises the usual mistakes and says what
to think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import ExerciseError, call, expect, expect_close, passed

# The densities of exercise 2: p_data = N(0, 1) and p_g = N(1, 0.5^2) (standard deviation 0.5).
EX2_MEAN_DATA, EX2_STD_DATA = 0.0, 1.0
EX2_MEAN_G, EX2_STD_G = 1.0, 0.5
EX2_POINTS = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 1.5, 3.0])


def _normal_pdf(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def _call(fn, *args):
    return torch.as_tensor(call(fn, *args))


def _scalar(out: torch.Tensor, name: str):
    expect(out.dim() == 0, f"{name} should be one number (a 0-d tensor), got shape {tuple(out.shape)}: "
                           "take the mean over the batch, the sample estimate of the expectation E_z[...].")


# ============================================================================ exercise 1
def check_nonsaturating_loss(fn) -> bool:
    """``fn(fake_logits) -> loss``: the non-saturating generator loss -E_z[log D(G(z))], D(G(z)) = sigmoid(logit)."""
    logits = torch.tensor([-4.0, -1.5, 0.0, 0.7, 2.5, 5.0])
    expected = F.softplus(-logits).mean()
    out = _call(fn, logits.clone())
    _scalar(out, "The loss")
    value = float(out)
    expect(math.isfinite(value), f"Your loss is {value} on ordinary logits {logits.tolist()}. The input is D's "
                                 "logit l (any real number), not a probability: D(G(z)) = sigmoid(l).")

    low, high = float(_call(fn, torch.tensor([-3.0]))), float(_call(fn, torch.tensor([3.0])))
    if low < high:
        raise ExerciseError(
            "Your loss decreases when D(G(z)) decreases (it is lower for logit -3 than for logit +3): minimising it "
            "would help D. The generator wants D to believe its samples: minimise -log D(G(z)), i.e. maximise "
            "log D(G(z)).")
    saturating = -F.softplus(logits).mean()
    if torch.allclose(out.double(), saturating.double(), atol=1e-5):
        raise ExerciseError(
            "This is the saturating loss log(1 - D(G(z))) of the minimax game (Eq. 1). It points the right way but "
            "its gradient vanishes when D confidently rejects the samples (D(G(z)) -> 0), which is exactly the start "
            "of training. Sec. 3 replaces it by -log D(G(z)).")
    if torch.allclose(out.double(), len(logits) * expected.double(), atol=1e-4):
        raise ExerciseError("Your loss is the batch size times too large: you summed over the batch. "
                            "The expectation E_z is estimated by the mean.")
    expect_close(out, expected, "-E_z[log D(G(z))] on the logits " + str(logits.tolist()),
                 hint="Remember D(G(z)) = sigmoid(logit), so -log D(G(z)) = softplus(-logit).")

    extreme = torch.tensor([-200.0, 200.0])
    big = _call(fn, extreme)
    if abs(float(big) - 50.0) < 1e-3:
        raise ExerciseError(
            "For logits [-200, 200] your loss is 50, not 100: sigmoid(-200) underflows to 0 and "
            "F.binary_cross_entropy clamps log(0) to -100, so it hides the underflow instead of avoiding it. Work "
            "with the logit: F.logsigmoid(l), F.softplus(-l) or F.binary_cross_entropy_with_logits.")
    expect(bool(torch.isfinite(big)),
           f"For logits {extreme.tolist()} your loss is {float(big)}: sigmoid(-200) underflows to 0 and log(0) = -inf. "
           "Compute log D from the logit directly: F.logsigmoid(l) or -F.softplus(-l) (or "
           "F.binary_cross_entropy_with_logits with target 1).")
    expect_close(big, torch.tensor(100.0), "the loss for logits [-200, 200]",
                 hint="-log sigmoid(-200) = 200 and -log sigmoid(200) ~ 0, so the mean is 100.", atol=1e-3)

    logit = torch.tensor([-8.0], requires_grad=True)
    loss = fn(logit)
    expect(loss.requires_grad, "Your loss is detached from its input, so no gradient reaches G. "
                               "Use torch operations only (no .item(), .numpy() or float()).")
    (grad,) = torch.autograd.grad(loss, logit)
    expect(float(grad) < -0.99, f"dL/dlogit at logit -8 should be about -1 (a strong push up), got {float(grad):.4g}.")
    return passed("non-saturating generator loss")


# ============================================================================ exercise 2
def check_optimal_discriminator(fn) -> bool:
    """``fn(x) -> D*(x)`` for p_data = N(0, 1) and p_g = N(1, 0.5^2), at the points ``EX2_POINTS``."""
    x = EX2_POINTS.clone()
    p_data, p_g = _normal_pdf(x, EX2_MEAN_DATA, EX2_STD_DATA), _normal_pdf(x, EX2_MEAN_G, EX2_STD_G)
    expected = p_data / (p_data + p_g)
    out = _call(fn, x.clone())
    expect(out.shape == x.shape, f"Return one value per point: expected shape {tuple(x.shape)}, got {tuple(out.shape)}.")
    out = out.double()
    if torch.allclose(out, (p_g / (p_data + p_g)).double(), atol=1e-4):
        raise ExerciseError("You returned p_g / (p_data + p_g), the probability that x is *generated*. D(x) is the "
                            "probability that x came from the data: D*(x) = p_data(x) / (p_data(x) + p_g(x)).")
    if bool((out > 1 + 1e-6).any() | (out < -1e-6).any()):
        raise ExerciseError(f"Some of your values lie outside [0, 1] ({out.tolist()}); D is a probability. "
                            "Did you return the ratio p_data / p_g instead of p_data / (p_data + p_g)?")
    wrong_std = _normal_pdf(x, EX2_MEAN_G, EX2_STD_G ** 2)
    if torch.allclose(out, (p_data / (p_data + wrong_std)).double(), atol=1e-4):
        raise ExerciseError("p_g = N(1, 0.5^2) has variance 0.25 and standard deviation 0.5; you used 0.25 as the "
                            "standard deviation. torch.distributions.Normal(loc, scale) takes the standard deviation.")
    unnormalised = p_g * EX2_STD_G                       # p_g without its 1/std (what dropping both factors gives)
    if torch.allclose(out, (p_data / (p_data + unnormalised)).double(), atol=1e-4):
        raise ExerciseError("Your densities miss the normalising factor 1 / (std sqrt(2 pi)) (at least p_g's 1 / "
                            "std): it cancels in D* only when both Gaussians have the same std. N(1, 0.5^2), half as "
                            "wide, is twice as high at its mean as N(0, 1).")
    expect_close(out, expected, f"D*(x) at x = {x.tolist()}",
                 hint="Evaluate both densities at x (e.g. Normal(0, 1).log_prob(x).exp()), then p_data / (p_data + p_g).",
                 atol=1e-4)
    return passed("optimal discriminator D*")


# ============================================================================ exercise 3
def check_discriminator_loss(fn) -> bool:
    """``fn(real_logits, fake_logits) -> loss``: L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))] from logits."""
    real = torch.tensor([2.0, 0.5, -0.3, 3.0])
    fake = torch.tensor([-1.0, 0.2, -2.5, 1.5])
    expected = F.softplus(-real).mean() + F.softplus(fake).mean()
    out = _call(fn, real.clone(), fake.clone())
    _scalar(out, "The loss")
    expect(math.isfinite(float(out)), f"Your loss is {float(out)} on ordinary logits. The inputs are logits "
                                      "(any real number), not probabilities: D(x) = sigmoid(logit).")
    if torch.allclose(out.double(), -expected.double(), atol=1e-5):
        raise ExerciseError("Your loss is V(D, G) itself. D *maximises* V; an optimiser minimises, so the loss is -V "
                            "= -E_x[log D(x)] - E_z[log(1 - D(G(z)))].")
    swapped = F.softplus(real).mean() + F.softplus(-fake).mean()
    if torch.allclose(out.double(), swapped.double(), atol=1e-5):
        raise ExerciseError("You swapped the labels: D should say 1 (real) on data and 0 on generated samples, "
                            "so the real term is -log D(x) and the generated term is -log(1 - D(G(z))).")
    if torch.allclose(out.double(), len(real) * expected.double(), atol=1e-4):
        raise ExerciseError("Your loss is the batch size times too large: you summed over the batch. Each "
                            "expectation is estimated by the mean over its own batch.")
    if torch.allclose(out.double(), expected.double() / 2, atol=1e-5):
        raise ExerciseError("Your loss is half of L_D: one mean over the real and generated logits together (e.g. "
                            "binary cross-entropy on the concatenated batch) averages the two terms. L_D adds them: "
                            "each expectation is a mean over its own batch.")
    expect_close(out, expected, "L_D on the test logits",
                 hint="-log D(x) = softplus(-l_real) and -log(1 - D(G(z))) = softplus(l_fake); average each over its "
                      "batch and add them (this is binary cross-entropy: label 1 for real, 0 for generated).")
    big = _call(fn, torch.tensor([200.0, -200.0]), torch.tensor([-200.0, 200.0]))
    if abs(float(big) - 100.0) < 1e-3:
        raise ExerciseError(
            "For confident wrong logits (+-200) your loss is 100, not 200: sigmoid saturates to exactly 0 or 1 and "
            "F.binary_cross_entropy clamps log(0) to -100, which hides the problem instead of avoiding it. Work "
            "with logits: F.softplus, F.logsigmoid or F.binary_cross_entropy_with_logits.")
    expect(bool(torch.isfinite(big)),
           f"For logits of +-200 your loss is {float(big)}: sigmoid saturates to exactly 0 or 1 in float32 and the "
           "log becomes -inf. Work with logits: F.softplus, F.logsigmoid or F.binary_cross_entropy_with_logits.")
    expect_close(big, torch.tensor(200.0), "L_D for real logits [200, -200] and generated logits [-200, 200]",
                 hint="Each batch has one confident right and one confident wrong answer: (0 + 200)/2 + (0 + 200)/2.",
                 atol=1e-3)
    return passed("discriminator loss")
