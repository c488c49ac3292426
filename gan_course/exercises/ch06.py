"""Checks for chapter 06 (Arjovsky, Chintala & Bottou, 2017, "Wasserstein GAN", arXiv 1701.07875; Gulrajani et al.,
2017, "Improved Training of Wasserstein GANs", arXiv 1704.00028).

1. ``check_wasserstein_loss_pair``: the critic loss E[f(x_tilde)] - E[f(x)] and the generator loss -E[f(x_tilde)]
   (Arjovsky et al., Algorithm 1), from raw critic scores, returned as a pair by one function
   (``check_wasserstein_losses`` takes them as two functions).
2. ``check_gradient_penalty``: x_hat = eps x + (1 - eps) x_tilde and lambda E[(||grad f(x_hat)||_2 - 1)^2]
   (Gulrajani et al., Eq. 3 and Algorithm 1), checked on critics whose gradient is known in closed form.
3. ``check_parallel_lines``: W1, JS, KL and TV between P_0 and P_theta in Example 1 of Arjovsky et al.

Each check runs the learner's function on cases with known answers, recognises the usual mistakes and says what
to think about; it prints a success line or raises ``ExerciseError``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import ExerciseError, call, expect, expect_close, passed

__all__ = ["check_wasserstein_losses", "check_wasserstein_loss_pair", "check_gradient_penalty", "check_parallel_lines", "QuadraticCritic",
           "LinearCritic"]


_call = call


def _tensor(out, name: str) -> torch.Tensor:
    expect(torch.is_tensor(out) or isinstance(out, (int, float)),
           f"{name} should be a tensor (or a number), got {type(out).__name__}.")
    return torch.as_tensor(out)


# ============================================================================ exercise 1
def check_wasserstein_losses(critic_loss, generator_loss) -> bool:
    """``critic_loss(real_scores, fake_scores)`` = E[f(x_tilde)] - E[f(x)] and ``generator_loss(fake_scores)`` =
    -E[f(x_tilde)], where the scores are the critic's raw outputs f(x) (real) and f(x_tilde) (generated)."""
    real = torch.tensor([2.0, 0.5, -0.3, 3.0])
    fake = torch.tensor([-1.0, 0.2, -2.5, 1.5])
    want_c, want_g = fake.mean() - real.mean(), -fake.mean()

    out = _tensor(_call(critic_loss, real.clone(), fake.clone()), "The critic loss")
    expect(out.dim() == 0, f"The critic loss should be one number (a 0-d tensor), got shape {tuple(out.shape)}: "
                           "average each batch (the sample estimate of an expectation) and subtract.")
    if torch.allclose(out, -want_c, atol=1e-5):
        raise ExerciseError("Your critic loss is E[f(x)] - E[f(x_tilde)], the quantity the critic *maximises* (the "
                            "estimate of W1). An optimiser minimises, so the loss is its negative: "
                            "E[f(x_tilde)] - E[f(x)]. With your sign the critic would learn to score fakes higher.")
    bce = F.softplus(-real).mean() + F.softplus(fake).mean()
    if torch.allclose(out, bce, atol=1e-5) or torch.allclose(out, -bce, atol=1e-5):
        raise ExerciseError("This is the original GAN's cross-entropy on logits. The critic's scores are not "
                            "probabilities or logits: no sigmoid and no log, just the difference of the means "
                            "E[f(x_tilde)] - E[f(x)] (Kantorovich-Rubinstein duality, Eq. 2 of the paper).")
    if torch.allclose(out, len(real) * want_c, atol=1e-4):
        raise ExerciseError("Your loss is the batch size times too large: you summed. Expectations are estimated "
                            "by means (and a sum would scale the learning rate with the batch size).")
    expect_close(out, want_c, "the critic loss on the test scores",
                 hint="L_critic = fake_scores.mean() - real_scores.mean().")
    real_g = real.clone().requires_grad_(True)
    grad = torch.autograd.grad(critic_loss(real_g, fake.clone()), real_g, allow_unused=True)[0]
    expect(grad is not None and torch.allclose(grad, torch.full_like(real, -1 / len(real))),
           "The gradient of your critic loss with respect to each real score should be -1/batch (every real score "
           "pushed up equally). Use torch operations only, no .item() or float().")

    out = _tensor(_call(generator_loss, fake.clone()), "The generator loss")
    expect(out.dim() == 0, f"The generator loss should be one number, got shape {tuple(out.shape)}.")
    if torch.allclose(out, fake.mean(), atol=1e-5):
        raise ExerciseError("Your generator loss is +E[f(x_tilde)]: minimising it would push the generated samples' "
                            "scores *down*, towards what the critic calls fake. The generator wants high scores: "
                            "L_G = -E[f(x_tilde)].")
    if torch.allclose(out, F.softplus(-fake).mean(), atol=1e-5):
        raise ExerciseError("This is the non-saturating GAN loss -log sigmoid(f). The WGAN generator loss has no "
                            "log and no sigmoid: L_G = -E[f(x_tilde)].")
    expect_close(out, want_g, "the generator loss on the test scores", hint="L_G = -fake_scores.mean().")
    return passed("Wasserstein critic and generator losses")


def check_wasserstein_loss_pair(fn) -> bool:
    """``fn(real_scores, fake_scores) -> (loss_f, loss_G)``: the critic loss E[f(x_tilde)] - E[f(x)] and the
    generator loss -E[f(x_tilde)], both from the critic's raw scores f(x) (real, (B,)) and f(x_tilde) (fake, (B,))."""
    def pair(real_scores, fake_scores):
        out = _call(fn, real_scores, fake_scores)
        expect(isinstance(out, (tuple, list)) and len(out) == 2,
               f"Return the pair (loss_f, loss_G), two scalar tensors; got {type(out).__name__}"
               f"{f' of length {len(out)}' if isinstance(out, (tuple, list)) else ''}.")
        return out

    def critic_loss(real_scores, fake_scores):
        return pair(real_scores, fake_scores)[0]

    def generator_loss(fake_scores):
        # the generator's loss may not depend on the real scores: give it real scores that differ from the fakes
        return pair(fake_scores.detach() * 0.5 + 1.0, fake_scores)[1]

    real = torch.tensor([2.0, 0.5, -0.3, 3.0])
    fake = torch.tensor([-1.0, 0.2, -2.5, 1.5])
    loss_g = _tensor(pair(real.clone(), fake.clone())[1], "The generator loss")
    if loss_g.dim() == 0 and torch.allclose(loss_g.double(), (fake.mean() - real.mean()).double(), atol=1e-5):
        raise ExerciseError("Your second value is the critic loss E[f(x_tilde)] - E[f(x)]: return the pair in the "
                            "order (loss_f, loss_G), loss_G = -E[f(x_tilde)].")
    _RAW_CHECK(critic_loss, generator_loss)
    return True


_RAW_CHECK = check_wasserstein_losses       # the unwrapped check (the package wraps every public check_*)


# ============================================================================ exercise 2
class QuadraticCritic(nn.Module):
    """f(x) = a ||x||^2 / 2 per sample (the sum runs over C, H, W), so grad_x f(x) = a x and ||grad|| = |a| ||x||.

    ``a`` is a parameter, so a penalty built with ``create_graph=True`` has a gradient with respect to it."""

    def __init__(self, a: float = 1.0):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a), dtype=torch.float64))

    def forward(self, x):
        return 0.5 * self.a * x.flatten(1).pow(2).sum(1)


class LinearCritic(nn.Module):
    """f(x) = <w, x> with a fixed direction w of norm ``norm``: its gradient is w everywhere."""

    def __init__(self, shape, norm: float = 1.0, seed: int = 0):
        super().__init__()
        w = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.w = nn.Parameter(norm * w / w.norm())

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def _reference_penalty(critic, x, x_tilde, eps, lambda_gp):
    x_hat = (eps * x + (1 - eps) * x_tilde).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return lambda_gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def check_gradient_penalty(fn) -> bool:
    """``fn(critic, x, x_tilde, eps, lambda_gp)``: x_hat = eps x + (1 - eps) x_tilde (``eps`` has shape (B, 1, 1, 1))
    and the penalty lambda E[(||grad_{x_hat} f(x_hat)||_2 - 1)^2] (Gulrajani et al., Eq. 3), differentiable with
    respect to the critic's parameters."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(5, 1, 3, 3, generator=g, dtype=torch.float64) * 0.4
    x_tilde = torch.randn(5, 1, 3, 3, generator=g, dtype=torch.float64) * 0.4
    eps = torch.rand(5, 1, 1, 1, generator=g, dtype=torch.float64)
    lam = 10.0
    f = QuadraticCritic(1.0)
    x_hat = eps * x + (1 - eps) * x_tilde
    norms = x_hat.flatten(1).norm(dim=1)                    # ||grad f(x_hat)|| = ||x_hat|| for this critic
    want = lam * ((norms - 1) ** 2).mean()

    out = _tensor(_call(fn, f, x.clone(), x_tilde.clone(), eps.clone(), lam), "The penalty")
    expect(out.dim() == 0, f"The penalty should be one number, got shape {tuple(out.shape)}: one gradient norm per "
                           "sample, then the mean over the batch.")
    out = out.double()
    if torch.allclose(out, want, rtol=1e-5):
        pass
    elif torch.allclose(out, lam * ((norms ** 2 - 1) ** 2).mean(), rtol=1e-5):
        raise ExerciseError("You penalised the *squared* gradient norm: (||g||^2 - 1)^2. Eq. 3 uses the norm "
                            "itself: (||g||_2 - 1)^2, with ||g||_2 = g.flatten(1).norm(dim=1).")
    elif torch.allclose(out, lam * (F.relu(norms - 1) ** 2).mean(), rtol=1e-5):
        raise ExerciseError("This is a one-sided penalty, max(0, ||g|| - 1)^2, that only punishes gradients above 1. "
                            "WGAN-GP's is two-sided, (||g|| - 1)^2 (Sec. 4 and Appendix: the optimal critic has "
                            "gradient norm exactly 1 on these lines, and two-sided worked slightly better).")
    elif torch.allclose(out, lam * ((x_hat.norm() - 1) ** 2), rtol=1e-5):
        raise ExerciseError("You took one norm over the whole batch. The penalty is on each sample's gradient: "
                            "grad.flatten(1).norm(dim=1) gives one norm per x_hat, then average (norm - 1)^2.")
    elif torch.allclose(out, lam * ((x.flatten(1).norm(dim=1) - 1) ** 2).mean(), rtol=1e-5):
        raise ExerciseError("You penalised the gradient at the real samples x only. Gulrajani et al. penalise it "
                            "at x_hat = eps * x + (1 - eps) * x_tilde, random points on the lines between real and "
                            "generated samples (Sec. 4): the optimal critic has gradient norm 1 along those lines, "
                            "and the generator's samples move through that space, not only the data's.")
    elif torch.allclose(out, lam * ((x_tilde.flatten(1).norm(dim=1) - 1) ** 2).mean(), rtol=1e-5):
        raise ExerciseError("You penalised the gradient at the generated samples x_tilde only. The penalty is at "
                            "x_hat = eps * x + (1 - eps) * x_tilde, random points on the lines between real and "
                            "generated samples (Sec. 4).")
    elif torch.allclose(out, lam * ((norms / len(x) - 1) ** 2).mean(), rtol=1e-5):
        raise ExerciseError("Your gradients are the batch size times too small: you differentiated critic(x_hat)"
                            ".mean(). Each x_hat_i needs the gradient of its own score f(x_hat_i): differentiate "
                            "the *sum* of the scores (or pass grad_outputs=torch.ones_like(scores)).")
    elif torch.allclose(out, want / lam, rtol=1e-5):
        raise ExerciseError("You forgot lambda: multiply the mean of (||g|| - 1)^2 by lambda_gp.")
    elif torch.allclose(out, want * len(x), rtol=1e-5):
        raise ExerciseError("You summed over the batch; the expectation E_{x_hat} is a mean.")
    else:
        swapped = (1 - eps) * x + eps * x_tilde
        want_swapped = lam * ((swapped.flatten(1).norm(dim=1) - 1) ** 2).mean()
        if torch.allclose(out, want_swapped, rtol=1e-5):
            raise ExerciseError("Your x_hat is eps * x_tilde + (1 - eps) * x. With eps ~ U[0, 1] that is the same "
                                "distribution, but Algorithm 1 writes x_hat = eps * x + (1 - eps) * x_tilde (x real, "
                                "x_tilde generated); use it so we can compare with a given eps.")
        expect_close(out, want, "the penalty for f(x) = ||x||^2 / 2 (whose gradient at x_hat is x_hat)",
                     hint="x_hat = eps * x + (1 - eps) * x_tilde; x_hat.requires_grad_(True); "
                          "grad = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)[0]; "
                          "lambda_gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean().", rtol=1e-5)

    expect(out.requires_grad, "Your penalty does not depend on the critic's parameters any more, so it cannot train "
                              "the critic. Pass create_graph=True to torch.autograd.grad: the gradient itself must "
                              "be differentiable (a gradient of a gradient).")
    f.a.grad = None
    penalty = fn(f, x.clone(), x_tilde.clone(), eps.clone(), lam)
    penalty.backward()
    # d/da of lam * mean((|a| ||x_hat|| - 1)^2) at a = 1
    want_grad = lam * (2 * (norms - 1) * norms).mean()
    expect(f.a.grad is not None and torch.allclose(f.a.grad, want_grad, rtol=1e-5),
           "The penalty's gradient with respect to the critic's parameter is wrong. Do not detach the gradient, and "
           "use create_graph=True in torch.autograd.grad.")

    unit = LinearCritic((1, 3, 3), norm=1.0)
    zero = float(torch.as_tensor(_call(fn, unit, x.clone(), x_tilde.clone(), eps.clone(), lam)).detach())
    expect(abs(zero) < 1e-8, f"A linear critic f(x) = <w, x> with ||w|| = 1 is exactly 1-Lipschitz with gradient "
                             f"norm 1 everywhere: its penalty must be 0, yours is {zero:.4g}.")
    steep = float(torch.as_tensor(_call(fn, LinearCritic((1, 3, 3), norm=3.0), x.clone(), x_tilde.clone(), eps.clone(),
                                        lam)).detach())
    expect(abs(steep - lam * 4) < 1e-6, f"For f(x) = <w, x> with ||w|| = 3 every gradient norm is 3, so the penalty "
                                        f"is lambda (3 - 1)^2 = {lam * 4:g}; yours is {steep:.4g}.")
    return passed("gradient penalty")


# ============================================================================ exercise 3
def check_parallel_lines(divergences) -> bool:
    """``divergences(theta) -> dict(W1=..., JS=..., KL=..., TV=...)`` for a float theta: the distances between
    P_0 = (0, Z) and P_theta = (theta, Z), Z ~ U[0, 1] (Arjovsky et al., Example 1); JS in nats (natural log)."""
    for theta in (0.7, -0.3, 0.05, 0.0, -1.0):
        out = _call(divergences, theta)
        expect(isinstance(out, dict), f"Return a dict with keys W1, JS, KL, TV; got {type(out).__name__}.")
        missing = {"W1", "JS", "KL", "TV"} - set(out)
        expect(not missing, f"Your dict lacks {sorted(missing)}.")
        w1, js, kl, tv = (float(out[k]) for k in ("W1", "JS", "KL", "TV"))
        where = f"at theta = {theta}"
        if theta == 0.0:
            expect(w1 == 0 and js == 0 and kl == 0 and tv == 0,
                   f"{where} the two distributions are the same, so every distance is 0; you gave W1={w1:g}, "
                   f"JS={js:g}, KL={kl:g}, TV={tv:g}.")
            continue
        if abs(w1 + abs(theta)) < 1e-9 and theta < 0:
            raise ExerciseError(f"{where} your W1 is {w1:g}. A distance is never negative: the cheapest plan moves "
                                "every point (0, z) to (theta, z), a distance |theta| each.")
        expect(abs(w1 - abs(theta)) < 1e-9,
               f"{where} W1 should be {abs(theta):g}, got {w1:g}. The optimal plan moves every point (0, z) "
               "horizontally to (theta, z): each moves |theta|, so the expected cost is |theta|.")
        if abs(js - 1.0) < 1e-9:
            raise ExerciseError(f"{where} your JS is 1: that is log_2(2), JS in bits. The course (and the paper) use "
                                "natural logarithms: JS = log 2 ~ 0.693 nats.")
        expect(abs(js - math.log(2)) < 1e-9,
               f"{where} JS should be log 2 ~ 0.693, got {js:g}. With M = (P_0 + P_theta)/2, each of P_0, P_theta "
               "puts all its mass where the other has none, so dP/dM = 2 on its own line: KL(P || M) = log 2 for both "
               "and JS = (log 2 + log 2)/2, for every theta != 0, near or far.")
        expect(math.isinf(kl) and kl > 0,
               f"{where} KL should be +inf (math.inf), got {kl:g}: P_0 puts mass where P_theta has none, so the "
               "density ratio is infinite on a set of positive P_0-probability.")
        expect(abs(tv - 1) < 1e-9,
               f"{where} TV should be 1, got {tv:g}: the set A = {{(0, y)}} has P_0(A) = 1 and P_theta(A) = 0.")
    return passed("Example 1: W1 = |theta| while JS, KL and TV jump")
