"""What chapter 06 does with the Wasserstein GANs (``gan_course.models.wgan``): Example 1 computed, networks trained
against fixed samples, the critic's weights and gradients, whether a loss tracks quality, and the explorers.

- Example 1 of Arjovsky et al. (parallel lines): ``parallel_lines_divergences``, ``parallel_lines_sample``,
  ``empirical_w1``, and its explorer ``render_parallel_lines`` / ``parallel_lines_explorer``;
- networks trained against fixed samples: ``fit_fixed`` (Arjovsky et al.'s Fig. 2 in 1-D; Example 1 in 2-D),
  ``estimate_divergences`` (the JS a discriminator reports, the W1 a critic reports) and
  ``parallel_lines_gradients`` (the gradient each passes to theta);
- the critic's weights: ``critic_weights``, ``fraction_at_clip``;
- ``loss_tracks_quality`` (does -loss follow FID? Sec. 4.2);
- ``CLAIMS``: what the chapter claims about its runs, checked by ``gan_course.claims``;
- what the critic says about single images: ``render_critic_scores`` / ``critic_score_explorer``;
- Gulrajani et al.'s Fig. 1 in small: ``toy_critic`` trains a critic to optimality on 2-D data with clipping or
  the penalty, ``render_value_surface`` draws it (Fig. 1a), ``layer_gradient_norms`` measures Fig. 1b;
- the critic along the penalty's lines: ``critic_along_line``, ``render_critic_line`` / ``critic_line_explorer``.

The chapter's training arms (WGAN with clipping, the standard GAN baseline) run through
``gan_course.lab.dcgan.train_arm`` around the paper modules' ``train_step``.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr
from torch import nn

from ..claims import Claim
from ..losses import (
    clip_weights_,
    discriminator_loss,
    generator_loss_saturating,
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from ..models.wgan import BETAS_GP, CLIP_C, LAMBDA_GP, VARIANTS
from ..sampling import generate
from ..viz import show_images
from ..widgets import choice, explorer, seed_slider

# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("w1_estimate_tracks_quality", "WGAN Sec. 4.2 / Fig. 3: the critic's W estimate correlates with sample "
          "quality, the GAN discriminator's loss does not (Spearman r with FID over the same stretch of steps)",
          "corr_w1_fid_same_stretch", ">", "corr_gan_lossD_fid"),
    Claim("gradient_penalty_beats_clipping", "WGAN-GP Sec. 5 / Fig. 3: the gradient penalty trains faster than "
          "weight clipping (FID after COMPARE_STEPS generator steps, same networks and budget)", "fid_at_budget_clip",
          ">", "fid_at_budget_gp"),
    Claim("clipping_pins_weights", "WGAN-GP Sec. 3 / Fig. 1b: weight clipping pushes the critic's weights to the "
          "two extremes +-c (share of weights at +-c, more than half)", "clip_fraction_at_c", ">", 0.5),
]

# ============================================================================ Example 1: parallel lines
def parallel_lines_divergences(theta) -> dict[str, torch.Tensor]:
    """The four distances of Arjovsky et al., Example 1, between P_0 = (0, Z) and P_theta = (theta, Z), Z ~ U[0, 1]:

        W(P_0, P_theta) = |theta|,
        JS(P_0, P_theta) = log 2 if theta != 0 else 0,
        KL(P_theta || P_0) = KL(P_0 || P_theta) = +inf if theta != 0 else 0,
        delta(P_0, P_theta) (total variation) = 1 if theta != 0 else 0.

    For theta != 0 the two segments do not meet, so every density-ratio divergence sees "completely different"
    and stops there; only W measures how far apart they are. ``theta`` is a number or a tensor; returns tensors
    of its shape (float64), JS in nats.
    """
    theta = torch.as_tensor(theta, dtype=torch.float64)
    apart = theta != 0
    zero = torch.zeros_like(theta)
    return {"W1": theta.abs(),
            "JS": torch.where(apart, zero + math.log(2), zero),
            "KL": torch.where(apart, zero + math.inf, zero),
            "TV": torch.where(apart, zero + 1, zero)}


def parallel_lines_sample(n: int, theta: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points of P_theta = (theta, Z), Z ~ U[0, 1] (Example 1), shape (n, 2)."""
    z = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.stack([torch.full_like(z, float(theta)), z], dim=1)


def empirical_w1(a: torch.Tensor, b: torch.Tensor, return_plan: bool = False):
    """W1 between two point clouds of the same size n (uniform weights), exactly: the optimal coupling of two
    uniform empirical measures of equal size is a permutation (Birkhoff), found by the Hungarian algorithm on the
    n x n matrix of Euclidean distances (``scipy.optimize.linear_sum_assignment``). Cost O(n^3): keep n <= ~500.

    With independent samples of P_0 and P_theta it is a little above |theta| (the plan must also move points
    vertically, to pair up two different sets of z's) and tends to |theta| as n grows. ``return_plan=True`` also
    returns the permutation: a[i] is sent to b[plan[i]].
    """
    if a.shape != b.shape:
        raise ValueError(f"empirical_w1 needs clouds of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    cost = torch.cdist(a.double().flatten(1), b.double().flatten(1)).numpy()
    rows, cols = linear_sum_assignment(cost)
    w1 = float(cost[rows, cols].mean())
    return (w1, torch.as_tensor(cols)) if return_plan else w1


def render_parallel_lines(theta: float = 0.5, n: int = 64, seed: int = 0):
    """Example 1 at one theta: ``n`` samples of each segment with the optimal transport plan between them (left),
    and W1, JS, TV (KL = inf) against theta with the current value marked (right). The left title gives the exact
    W1 = |theta| and the empirical W1 of the samples (``empirical_w1``), slightly above it for small n."""
    g = torch.Generator().manual_seed(seed)
    p0, pt = parallel_lines_sample(n, 0.0, g), parallel_lines_sample(n, theta, g)
    w_hat, plan = empirical_w1(p0, pt, return_plan=True)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.5]})
    for i in range(n):
        j = int(plan[i])
        ax0.plot([0.0, theta], [float(p0[i, 1]), float(pt[j, 1])], color="grey", lw=0.5, alpha=0.7)
    ax0.scatter(p0[:, 0], p0[:, 1], s=10, zorder=3, label="$P_0 = (0, Z)$")
    ax0.scatter(pt[:, 0], pt[:, 1], s=10, zorder=3, label=r"$P_\theta = (\theta, Z)$")
    ax0.set(xlim=(-1.1, 1.1), ylim=(-0.1, 1.1), xlabel="$x_1$", ylabel="$x_2$",
            title=rf"$\theta$ = {theta:+.2f}: $W_1$ = {abs(theta):.3f}; from {n} samples: {w_hat:.3f}")
    ax0.legend(fontsize="small", loc="lower left")
    ts = torch.linspace(-1, 1, 401)
    d = parallel_lines_divergences(ts)
    ax1.plot(ts, d["W1"], label=r"$W_1 = |\theta|$")
    for key, label in (("JS", r"JS = log 2 ($\theta \neq 0$)"), ("TV", r"TV = 1 ($\theta \neq 0$)")):
        value = float(parallel_lines_divergences(1.0)[key])
        line, = ax1.plot(ts[ts < 0], torch.full_like(ts[ts < 0], value), label=label)
        ax1.plot(ts[ts > 0], torch.full_like(ts[ts > 0], value), color=line.get_color())
        ax1.plot([0], [value], "o", mfc="white", color=line.get_color(), ms=5)   # jumps to 0 at theta = 0
    ax1.plot([0], [0], "ko", ms=4)
    ax1.axvline(theta, color="k", lw=0.8, ls="--")
    ax1.text(0.02, 0.95, r"KL = $+\infty$ for every $\theta \neq 0$", transform=ax1.transAxes, va="top")
    ax1.set(xlabel=r"$\theta$", ylabel="distance", ylim=(-0.05, 1.25),
            title="Only $W_1$ says how far apart the lines are")
    ax1.legend(fontsize="small", loc="lower right")
    ax1.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def parallel_lines_explorer():
    """An explorer over ``render_parallel_lines``: move theta, watch W1 shrink while JS, TV and KL do not."""
    return explorer(render_parallel_lines, title="Example 1 (Arjovsky et al., 2017): parallel lines",
                    theta=widgets.FloatSlider(value=0.5, min=-1.0, max=1.0, step=0.05, description="theta"),
                    n=widgets.IntSlider(value=64, min=8, max=256, step=8, description="samples"),
                    seed=seed_slider(0))


def parallel_lines_gradients(D: nn.Module, f: nn.Module, theta: float, n: int = 1024,
                             seed: int = 0) -> dict[str, float]:
    """The gradient that reaches the generator's parameter theta in Example 1, through a trained network:

        JS: d/dtheta E_z[log(1 - D(theta, z))]  (the minimax generator loss, ``losses.generator_loss_saturating``;
            for the optimal D its value is 2 JS - log 4 up to the real-data term, so this is JS's gradient);
        W1: d/dtheta -E_z[f(theta, z)]          (the WGAN generator loss, ``losses.wasserstein_generator_loss``).
    ``D``, ``f``: networks on 2-D points, e.g. ``fit_fixed`` on samples of P_0 and P_theta. Returns floats."""
    out = {}
    for key, net, loss in (("JS", D, generator_loss_saturating), ("W1", f, wasserstein_generator_loss)):
        t = torch.tensor(float(theta), requires_grad=True)
        z = torch.rand(n, generator=torch.Generator().manual_seed(seed))
        x_tilde = torch.stack([t.expand(n), z], dim=1)          # g_theta(z) = (theta, z)
        (grad,) = torch.autograd.grad(loss(net(x_tilde).flatten()), t)
        out[key] = float(grad)
    return out


# ============================================================================ Fig. 2 of Arjovsky et al.
def _mlp(in_features: int = 1, hidden: int = 64, depth: int = 3) -> nn.Sequential:
    layers, d = [], in_features
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    return nn.Sequential(*layers, nn.Linear(d, 1))


def fit_fixed(real: torch.Tensor, fake: torch.Tensor, kind: str = "critic", steps: int = 500, lr: float = 1e-3,
              batch_size: int = 256, hidden: int = 64, seed: int = 0) -> nn.Module:
    """Train a small MLP (3 ReLU layers of ``hidden`` units) to tell two *fixed* sample sets apart, shapes (n, d):
    the setting of Arjovsky et al.'s Fig. 2 (1-D) and of Example 1 (2-D), where the "generator" does not move.

    ``kind="discriminator"``: the original GAN's D (a logit; ``losses.discriminator_loss``, binary cross-entropy).
    ``kind="critic"``: a WGAN critic, ``wasserstein_critic_loss`` + ``gradient_penalty`` (lambda = 10).
    Both with Adam(lr, betas = (0.5, 0.9)). Returns the trained module (scores of shape (n, 1)).
    """
    if kind not in ("critic", "discriminator"):
        raise ValueError(f"kind must be 'critic' or 'discriminator', got {kind!r}")
    real, fake = real.float(), fake.float()
    torch.manual_seed(seed)
    net = _mlp(real.shape[1], hidden)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.9))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = real[torch.randint(len(real), (batch_size,), generator=g)]
        x_tilde = fake[torch.randint(len(fake), (batch_size,), generator=g)]
        if kind == "discriminator":
            loss = discriminator_loss(net(x), net(x_tilde))
        else:
            loss = wasserstein_critic_loss(net(x), net(x_tilde)) + gradient_penalty(net, x, x_tilde, LAMBDA_GP,
                                                                                   generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


@torch.no_grad()
def estimate_divergences(real: torch.Tensor, fake: torch.Tensor, D: nn.Module, f: nn.Module) -> dict[str, float]:
    """What each network *says* about the distance between two sample sets, from the quantities it is trained on:

        JS estimate = (log 4 - L_D) / 2  with L_D = -E[log D(x)] - E[log(1 - D(x_tilde))]   (Goodfellow et al.,
                      Thm. 1: max_D -L_D = 2 JS - log 4, so an optimal D gives JS exactly);
        W1 estimate = E[f(x)] - E[f(x_tilde)]                                                  (Eq. 2: an optimal
                      1-Lipschitz critic gives W1 exactly).
    ``D``, ``f``: e.g. from ``fit_fixed(real, fake, "discriminator" / "critic")``. Returns floats, JS in nats."""
    L_D = discriminator_loss(D(real.float()), D(fake.float()))
    return {"JS": float((math.log(4) - L_D) / 2), "W1": float(-wasserstein_critic_loss(f(real.float()),
                                                                                      f(fake.float())))}


# ============================================================================ the critic's weights
def critic_weights(critic: nn.Module) -> torch.Tensor:
    """Every weight of the critic's convolutions / linear layers, flattened into one vector (for histograms)."""
    return torch.cat([m.weight.detach().flatten().cpu() for m in critic.modules()
                      if isinstance(m, (nn.Conv2d, nn.Linear))])


def fraction_at_clip(critic: nn.Module, c: float = CLIP_C, tol: float = 1e-3) -> float:
    """Fraction of the critic's conv / linear weights within ``tol * c`` of the clipping bounds +-c."""
    w = critic_weights(critic).abs()
    return float((w >= c * (1 - tol)).float().mean())



# ============================================================================ does the loss track quality?
def loss_tracks_quality(history, loss_key: str, metric_key: str = "fid", window: int = 50, sign: float = -1.0,
                        until: int | None = None):
    """Does a training loss track sample quality? (Arjovsky et al., Sec. 4.1 and Figs. 3-4.)

    For every step s at which ``metric_key`` (e.g. FID, lower is better) was logged, the mean of
    ``sign * loss_key`` over the ``window`` logged steps up to and including s (the per-step estimate is noisy;
    the paper median-filters it), paired with the metric. With ``sign = -1`` and the WGAN critic loss this is
    the W1 estimate E[f(x)] - E[f(x_tilde)]; with a standard GAN's L_D it is -L_D = 2 JS - log 4 (for the
    optimal D). ``history``: a ``training.History`` or ``{key: (steps, values)}``. ``until``: only the metric's
    checkpoints before this step (to compare two runs over the same stretch of training).

    Returns a dict: ``steps``, ``loss`` (the windowed ``sign * loss``), ``metric``, and the Pearson ``r`` and
    Spearman ``rho`` between them (NaN with fewer than 3 points or a constant series). A loss that tracks FID
    has r close to +1: both fall as the samples improve.
    """
    data = history.as_dict() if hasattr(history, "as_dict") else history
    loss_steps, loss_values = (np.asarray(v, dtype=float) for v in data[loss_key])
    metric_steps, metric_values = (np.asarray(v, dtype=float) for v in data[metric_key])
    if until is not None:
        metric_values, metric_steps = metric_values[metric_steps < until], metric_steps[metric_steps < until]
    smoothed = []
    for s in metric_steps:
        upto = loss_values[loss_steps <= s][-window:]
        smoothed.append(sign * upto.mean() if len(upto) else np.nan)
    smoothed = np.asarray(smoothed)
    keep = np.isfinite(smoothed) & np.isfinite(metric_values)
    a, b = smoothed[keep], metric_values[keep]
    if len(a) >= 3 and a.std() > 0 and b.std() > 0:
        r, rho = float(np.corrcoef(a, b)[0, 1]), float(spearmanr(a, b)[0])
    else:
        r = rho = float("nan")
    return dict(steps=metric_steps[keep], loss=a, metric=b, r=r, rho=rho)


@torch.no_grad()
def render_critic_scores(G: nn.Module, critic: nn.Module, real: torch.Tensor, seed: int = 0, n: int = 12,
                         pool: int = 512, label: str = ""):
    """What the critic thinks of single images: ``n`` samples G(z) (z from ``seed``) and ``n`` real images (chosen by
    ``seed``), each row ordered by the critic's score f from lowest to highest; below, the histograms of f on
    ``pool`` real and ``pool`` generated images, whose difference of means is the W1 estimate E[f(x)] - E[f(x_tilde)].
    The critic runs in eval mode (batch norm, if any, on its running statistics) so each score is one image's."""
    was_training = critic.training
    critic.eval()
    device = next(critic.parameters()).device
    g = torch.Generator().manual_seed(int(seed))
    fake = generate(G, torch.randn(pool, G.z_dim, generator=g))
    real = real[torch.randperm(len(real), generator=g)[:pool]].float()
    f_fake, f_real = critic(fake.to(device)).cpu(), critic(real.to(device)).cpu()
    critic.train(was_training)
    fig = plt.figure(figsize=(max(8.0, 0.9 * n), 6.2))
    gs = fig.add_gridspec(3, n, height_ratios=[1, 1, 2.2])
    for row, (images, scores, name) in enumerate(((fake, f_fake, "generated"), (real, f_real, "real"))):
        order = scores[:n].argsort()
        for j, i in enumerate(order.tolist()):
            ax = fig.add_subplot(gs[row, j])
            ax.imshow(((images[i, 0] + 1) / 2).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{float(scores[i]):.2f}", fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
    ax = fig.add_subplot(gs[2, :])
    bins = np.linspace(float(min(f_fake.min(), f_real.min())), float(max(f_fake.max(), f_real.max())), 40)
    ax.hist(f_real.numpy(), bins=bins, alpha=0.6, label=f"real (mean {float(f_real.mean()):.3f})")
    ax.hist(f_fake.numpy(), bins=bins, alpha=0.6, label=f"generated (mean {float(f_fake.mean()):.3f})")
    ax.set(xlabel="critic score f(x)", ylabel="images",
           title=f"{label}: W1 estimate E[f(x)] - E[f(G(z))] = {float(f_real.mean() - f_fake.mean()):.3f} "
                 f"on {pool} + {pool} images")
    ax.legend(fontsize="small")
    fig.suptitle(f"{label} critic scores, lowest to highest (seed {seed})".strip(), y=0.995)
    fig.tight_layout()
    return fig


def critic_score_explorer(models: dict[str, tuple[nn.Module, nn.Module]], real: torch.Tensor, n: int = 12):
    """An explorer over ``render_critic_scores``: pick the (G, critic) pair by name and the seed."""
    def render(model, seed):
        G, critic = models[model]
        return render_critic_scores(G, critic, real, seed=seed, n=n, label=model)

    return explorer(render, title="What the critic says about single images", model=choice(list(models),
                    description="model"), seed=seed_slider(0))


# ============================================================================ Gulrajani et al.'s Fig. 1, small
def toy_critic(real: torch.Tensor, variant: str = "gp", steps: int = 500, noise: float = 1.0, hidden: int = 128,
               depth: int = 3, batch_size: int = 256, lr: float = 1e-3, c: float = CLIP_C,
               lambda_gp: float = LAMBDA_GP, seed: int = 0) -> nn.Module:
    """A critic trained to (near) optimality on 2-D data against a fixed "generator": the real points plus
    Gaussian noise of standard deviation ``noise`` (Gulrajani et al., Fig. 1a: "the generator is held fixed at the
    real data plus Gaussian noise"). An MLP of ``depth`` ReLU layers of ``hidden`` units, trained with
    ``variant`` ``"clip"`` (RMSProp, weights clamped to [-c, c] after each step) or ``"gp"`` (Adam, betas (0, 0.9),
    lambda = 10). Both use learning rate ``lr`` (1e-3 by default, 20 and 10 times the papers' values) because the
    point is the critic *at its optimum* for a fixed generator, reached here in a few hundred steps.
    ``real``: (n, 2). Returns the critic (scores of shape (n, 1)).
    """
    torch.manual_seed(seed)
    f = _mlp(2, hidden, depth)
    if variant == "clip":
        opt = torch.optim.RMSprop(f.parameters(), lr=lr)
    elif variant == "gp":
        opt = torch.optim.Adam(f.parameters(), lr=lr, betas=BETAS_GP)
    else:
        raise ValueError(f"Unknown variant {variant!r}. Valid choices: {', '.join(VARIANTS)}")
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = real[torch.randint(len(real), (batch_size,), generator=g)]
        x_tilde = real[torch.randint(len(real), (batch_size,), generator=g)]
        x_tilde = x_tilde + noise * torch.randn(x_tilde.shape, generator=g)
        loss = wasserstein_critic_loss(f(x), f(x_tilde))
        if variant == "gp":
            loss = loss + gradient_penalty(f, x, x_tilde, lambda_gp, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if variant == "clip":
            clip_weights_(f, c)
    return f


def layer_gradient_norms(f: nn.Sequential, x: torch.Tensor, x_tilde: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al.'s Fig. 1b: for an MLP critic (``toy_critic``), the norm of the gradient of the critic loss
    L = E[f(x_tilde)] - E[f(x)] with respect to the output h_l of each linear layer l = 1 (next to the input) ...
    L (the score), over the batch. Back-propagation multiplies it by one weight matrix per layer, so with weights
    pinned at +-c it shrinks or grows geometrically as it travels towards the input ("either explode or vanish
    when using weight clipping", Sec. 3.1); the penalty keeps it level. Returns a tensor of L norms."""
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for m in f
             if isinstance(m, nn.Linear)]
    try:
        scores = f(torch.cat([x, x_tilde])).flatten()
    finally:
        for h in hooks:
            h.remove()
    loss = wasserstein_critic_loss(scores[:len(x)], scores[len(x):])
    grads = torch.autograd.grad(loss, outputs)
    return torch.stack([g.norm() for g in grads]).detach()


def render_value_surface(critics: dict[str, nn.Module], real: torch.Tensor, lim: float = 3.0, n: int = 121):
    """Gulrajani et al.'s Fig. 1a: the value surface f(x) of each critic over the plane (one panel each) with the
    real points on top. Each panel is normalised to its own range (clipped critics are tiny in absolute value)."""
    xs = torch.linspace(-lim, lim, n)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, len(critics), figsize=(4.2 * len(critics), 4), squeeze=False)
    for ax, (label, f) in zip(axes[0], critics.items(), strict=True):
        with torch.no_grad():
            v = f(grid).reshape(n, n)
        span = float(v.max() - v.min())
        im = ax.contourf(xs, xs, v, levels=20, cmap="viridis")
        ax.scatter(real[:500, 0], real[:500, 1], s=2, c="white", alpha=0.6)
        ax.set(title=f"{label}\nrange of f: {span:.3g}", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
        fig.colorbar(im, ax=ax, fraction=0.046, label="f(x)")
    fig.suptitle("Value surfaces of critics trained against a fixed generator (data + noise)")
    fig.tight_layout()
    return fig


# ============================================================================ the critic along x_hat
def critic_along_line(critic: nn.Module, x: torch.Tensor, x_tilde: torch.Tensor, n: int = 21):
    """f and ||grad f|| at x_hat = eps x + (1 - eps) x_tilde for ``n`` values of eps in [0, 1] (the lines on which
    Gulrajani et al. penalise the gradient; Prop. 1: for the optimal critic ||grad f|| = 1 along them).
    ``x``, ``x_tilde``: single images (C, H, W), on any device. The critic runs in eval mode (one image at a time).
    Returns (eps, f values, gradient norms, x_hat images), on the CPU."""
    device = next(critic.parameters()).device
    eps = torch.linspace(0, 1, n, device=device).view(n, 1, 1, 1)
    x_hat = (eps * x.to(device) + (1 - eps) * x_tilde.to(device)).requires_grad_(True)
    was_training = critic.training
    critic.eval()
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat)
    critic.train(was_training)
    return (eps.flatten().cpu(), scores.detach().cpu(), grad.flatten(1).norm(dim=1).cpu(), x_hat.detach().cpu())


def render_critic_line(critics: dict[str, nn.Module], real: torch.Tensor, fake: dict[str, torch.Tensor],
                       index: int = 0, n: int = 21):
    """For each critic: its score f(x_hat) (left, centred at the fake end so the curves compare) and its gradient
    norm (right) along x_hat = eps x + (1 - eps) x_tilde from a generated image x_tilde (eps = 0) to a real one x
    (eps = 1); the strip of images shows x_hat for the first critic's generator. ``fake[label]`` holds the
    generated images of the generator trained with critic ``label``."""
    fig = plt.figure(figsize=(11, 5))
    gs = fig.add_gridspec(2, 2, height_ratios=[3, 1])
    ax_f, ax_g, ax_img = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, :])
    strip = None
    for label, critic in critics.items():
        x, x_tilde = real[index % len(real)], fake[label][index % len(fake[label])]
        eps, f, g, x_hat = critic_along_line(critic, x, x_tilde, n)
        ax_f.plot(eps, f - f[0], marker=".", label=label)
        ax_g.plot(eps, g, marker=".", label=label)
        strip = x_hat[:: max(1, n // 10)] if strip is None else strip
    ax_g.axhline(1, color="k", lw=0.8, ls="--", label="||grad f|| = 1")
    ax_f.set(xlabel=r"$\epsilon$ ($\hat x = \epsilon x + (1-\epsilon)\tilde x$)", ylabel=r"$f(\hat x) - f(\tilde x)$",
             title="critic score along the line")
    ax_g.set(xlabel=r"$\epsilon$", ylabel=r"$\|\nabla_{\hat x} f(\hat x)\|_2$", title="gradient norm along the line",
             yscale="log")
    ax_f.legend(fontsize="small")
    ax_g.legend(fontsize="small")
    ax_f.grid(alpha=0.3)
    ax_g.grid(alpha=0.3)
    show_images(strip, nrow=len(strip), ax=ax_img,
                title=rf"$\hat x$ from generated ($\epsilon$=0, left) to real ($\epsilon$=1, right): "
                      f"{next(iter(critics))}'s generator")
    fig.tight_layout()
    return fig


def critic_line_explorer(critics: dict[str, nn.Module], real: torch.Tensor, fake: dict[str, torch.Tensor]):
    """An explorer over ``render_critic_line``: pick the pair (real, generated) by index."""
    def render(index, n):
        return render_critic_line(critics, real, fake, index=index, n=n)

    return explorer(render, title="The critics along the penalty's lines",
                    index=widgets.IntSlider(value=0, min=0, max=min(len(real), *(len(v) for v in fake.values())) - 1,
                                            description="pair"),
                    n=widgets.IntSlider(value=21, min=5, max=41, step=2, description="points"))
