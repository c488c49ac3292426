"""Wasserstein GANs: weight clipping (Arjovsky, Chintala & Bottou, 2017, "Wasserstein GAN", arXiv 1701.07875) and
the gradient penalty (Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, 2017, "Improved Training of Wasserstein
GANs", arXiv 1704.00028).

**Why a new distance** (Arjovsky et al., Sec. 2). When the data and the model live on low-dimensional manifolds
that do not meet, the Jensen-Shannon divergence that the original GAN minimises is constant (log 2), KL is
infinite and total variation is 1, whatever the distance between the manifolds: none of them tells the generator
which way to move. The Earth-Mover (Wasserstein-1) distance

    W(P_r, P_g) = inf_{gamma in Pi(P_r, P_g)} E_{(x, y) ~ gamma}[ ||x - y|| ]                 (Eq. 1)

does: in Example 1 (two parallel segments P_0 = (0, Z), P_theta = (theta, Z), Z ~ U[0, 1]) it equals |theta|,
continuous and differentiable almost everywhere. ``parallel_lines_divergences`` computes all four.

**How to estimate it** (Sec. 3). By Kantorovich-Rubinstein duality

    W(P_r, P_theta) = sup_{||f||_L <= 1} E_{x ~ P_r}[f(x)] - E_{x ~ P_theta}[f(x)],            (Eq. 2)

so a network f_w (the *critic*: a real-valued score, no sigmoid) trained to maximise
E_x[f_w(x)] - E_z[f_w(g_theta(z))] under a Lipschitz constraint gives (K times) W, and the generator descends
-E_z[f_w(g_theta(z))]. The losses are ``gan_course.losses.wasserstein_critic_loss`` and
``wasserstein_generator_loss``. Two ways to keep f_w Lipschitz:

- **weight clipping** (Arjovsky et al., Algorithm 1): after every critic step clamp every weight to [-c, c],
  c = 0.01 (``gan_course.losses.clip_weights_``); RMSProp, lr 5e-5, n_critic = 5, batch 64;
- **gradient penalty** (Gulrajani et al., Algorithm 1, Eq. 3): add
  lambda E_{x_hat}[(||grad_{x_hat} f(x_hat)||_2 - 1)^2] on x_hat = eps x + (1 - eps) x_tilde, eps ~ U[0, 1]
  (``gan_course.losses.gradient_penalty``), lambda = 10; Adam(1e-4, beta_1 = 0, beta_2 = 0.9), n_critic = 5;
  **no batch norm in the critic** (Sec. 4: the penalty is per input, batch norm couples the inputs of a batch);
  layer norm is the suggested drop-in.

This module, top to bottom:

- the networks: ``Generator`` (chapter 03's DCGAN generator, batch-norm scales initialised to 1) and ``Critic``,
  DCGAN-like for 32x32 images, its normalisation configurable (``norm_layer``: ``"none"``, ``"layer"``,
  ``"batch"``);
- ``Config`` (each paper's Algorithm 1 hyper-parameters), ``optimizers`` (each paper's), ``critic_iterations``
  (n_critic, with the WGAN code's warm-up), ``critic_step`` (one critic update: clipping or penalty) and
  ``train_step`` (the critic updates, then one generator update), which the notebook's loop and every experiment
  arm call.

Example 1 computed, the small networks trained against fixed samples (Arjovsky et al.'s Fig. 2, Gulrajani et al.'s
Fig. 1), the critic's weights and gradients, ``loss_tracks_quality`` and the explorers are the chapter's lab:
``gan_course.lab.wgan``.

Choices that differ from the papers, and why: 4x4 kernels and a 32x32 DCGAN of width 16-32 (the papers' DCGAN
baselines are 64x64, width 64, z of 100 / 128) so that both algorithms train on a 2-core CPU in minutes;
z ~ N(0, I) (the papers' code samples z uniform or Gaussian depending on the experiment). Arjovsky et al.'s code
also runs 100 critic iterations for the first 25 generator steps and every 500th one (``critic_iterations``
implements it, off by default to keep budgets comparable).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..losses import clip_weights_, gradient_penalty, wasserstein_critic_loss, wasserstein_generator_loss
from ..training import set_requires_grad
from . import dcgan

# Arjovsky et al., Algorithm 1: "alpha = 0.00005, c = 0.01, m = 64, n_critic = 5" (RMSProp)
LR_CLIP = 5e-5
CLIP_C = 0.01
N_CRITIC = 5
# Gulrajani et al., Algorithm 1: "lambda = 10, n_critic = 5, alpha = 0.0001, beta_1 = 0, beta_2 = 0.9" (Adam)
LAMBDA_GP = 10.0
LR_GP = 1e-4
BETAS_GP = (0.0, 0.9)
BATCH_SIZE = 64     # both papers' Algorithm 1: "m = 64"
LEAK = dcgan.LEAK   # DCGAN's LeakyReLU slope, 0.2 (both papers' DCGAN critic)
NORMS = ("none", "layer", "batch")
VARIANTS = ("clip", "gp")


# ============================================================================ the networks
def norm_layer(kind: str, channels: int) -> list[nn.Module]:
    """The critic's normalisation after a convolution: ``"none"`` -> [], ``"batch"`` -> BatchNorm2d (WGAN's DCGAN
    critic), ``"layer"`` -> layer norm over (C, H, W) of each sample with a per-channel gain and bias
    (``GroupNorm(1, C)``), the drop-in Gulrajani et al. suggest (Sec. 4) because it never mixes samples."""
    if kind == "none":
        return []
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    if kind == "layer":
        return [nn.GroupNorm(1, channels)]
    raise ValueError(f"Unknown normalisation {kind!r}. Valid choices: {', '.join(NORMS)}")


class Generator(dcgan.Generator):
    """g_theta(z): z in R^{z_dim} -> image (channels, image_size, image_size) in [-1, 1]: chapter 03's DCGAN
    generator (both papers' DCGAN baseline), its batch-norm scales initialised to gamma = 1. For 32x32 and
    ``width`` = w:

        z -> ConvT 4x4 (project) -> 4w x 4 x 4, BN, ReLU
          -> ConvT 4x4, stride 2 -> 2w x 8 x 8, BN, ReLU -> ConvT 4x4, stride 2 -> w x 16 x 16, BN, ReLU
          -> ConvT 4x4, stride 2 -> C x 32 x 32, tanh

    Batch norm in G is fine for both algorithms: neither constrains G, and the penalty differentiates the critic
    with respect to its input, not G. ``batch_norm=False`` removes it (Arjovsky et al. Fig. 6).
    """

    def __init__(self, *, z_dim: int = 100, channels: int = 1, image_size: int = 32, width: int = 32,
                 batch_norm: bool = True):
        super().__init__(z_dim=z_dim, channels=channels, image_size=image_size, width=width, batch_norm=batch_norm,
                         gamma_std=0.0)


class Critic(nn.Module):
    """The critic f_w(x): one real score per image, shape (B,), **no sigmoid** (Arjovsky et al., Sec. 3: f_w
    estimates a difference of expectations, not a probability). DCGAN-style for 32x32 and ``width`` = w:

        x -> Conv 4x4, stride 2 -> w x 16 x 16, LeakyReLU(0.2)          (no normalisation on the input layer)
          -> Conv 4x4, stride 2 -> 2w x 8 x 8, [norm], LeakyReLU(0.2)
          -> Conv 4x4, stride 2 -> 4w x 4 x 4, [norm], LeakyReLU(0.2)
          -> Conv 4x4 (valid)   -> 1: the score f_w(x)

    ``norm`` in ``NORMS``: ``"batch"`` is Arjovsky et al.'s DCGAN critic; the gradient penalty needs ``"none"`` or
    ``"layer"`` (Gulrajani et al., Sec. 4). Without normalisation every layer is Lipschitz with a constant set by
    its weights (LeakyReLU is 1-Lipschitz), so clipping the weights bounds the whole critic's Lipschitz constant
    by some K(c). Batch / layer norm divide by a standard deviation, which clipping does not bound; in practice
    the paper's batch-norm critic still trains.
    """

    def __init__(self, *, channels: int = 1, image_size: int = 32, width: int = 32, norm: str = "layer"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"Unknown normalisation {norm!r}. Valid choices: {', '.join(NORMS)}")
        self.channels, self.image_size, self.width, self.norm = channels, image_size, width, norm
        n = dcgan.levels(image_size)
        blocks, c_in, c = [], channels, width
        for i in range(n):
            norms = norm_layer(norm, c) if i > 0 else []
            blocks.append(nn.Sequential(nn.Conv2d(c_in, c, 4, 2, 1, bias=not norms), *norms, nn.LeakyReLU(LEAK)))
            c_in, c = c, c * 2
        self.blocks = nn.Sequential(*blocks)
        self.to_score = nn.Conv2d(c_in, 1, 4, 1, 0)
        dcgan.init_weights_(self, gamma_std=0.0)   # weights ~ N(0, 0.02); norm scales 1, shifts 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_score(self.blocks(x)).view(len(x))


# ============================================================================ training (Algorithm 1 of each paper)
@dataclass
class Config:
    """The hyper-parameters of Algorithm 1 of either paper (``variant``); the defaults are WGAN-GP's.

    ``lr=None`` takes the variant's value (clip: 5e-5, gp: 1e-4). ``betas`` are WGAN-GP's Adam betas (clipping uses
    RMSProp). ``allow_batch_norm`` lets the penalty train a batch-norm critic, which Gulrajani et al. (Sec. 4) rule
    out; it exists for the chapter's experiment that shows why.
    """

    variant: str = "gp"                    # "clip": Arjovsky et al.'s Algorithm 1; "gp": Gulrajani et al.'s
    batch_size: int = BATCH_SIZE           # both: "m = 64"
    n_critic: int = N_CRITIC               # both: "n_critic = 5"
    lr: float | None = None                # clip: "alpha = 0.00005" (RMSProp); gp: "alpha = 0.0001" (Adam)
    betas: tuple[float, float] = BETAS_GP  # gp: "beta_1 = 0, beta_2 = 0.9"
    c: float = CLIP_C                      # clip: "c = 0.01", the clipping parameter
    lambda_gp: float = LAMBDA_GP           # gp: "lambda = 10"
    warmup: bool = False                   # the WGAN code's 100 critic steps early on (``critic_iterations``)
    allow_batch_norm: bool = False         # gp with a batch-norm critic: only to show what goes wrong

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"Unknown variant {self.variant!r}. Valid choices: {', '.join(VARIANTS)}")
        if self.lr is None:
            self.lr = LR_CLIP if self.variant == "clip" else LR_GP
        self.betas = tuple(self.betas)
        for name in ("batch_size", "n_critic"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"Config.{name} must be an int >= 1, got {getattr(self, name)!r}")
        if not (self.lr > 0 and self.c > 0 and self.lambda_gp >= 0):
            raise ValueError(f"Config needs lr > 0, c > 0 and lambda_gp >= 0, got lr={self.lr}, c={self.c}, "
                             f"lambda_gp={self.lambda_gp}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"Config.betas must be two numbers in [0, 1), got {self.betas}")


def optimizers(G: nn.Module, D: nn.Module, cfg: Config | None = None):
    """Each paper's optimiser for both players (Algorithm 1 of each), with ``cfg``'s learning rate:

    ``"clip"``: RMSProp(lr = 5e-5) ("momentum based methods such as Adam ... cause instability", Sec. 4);
    ``"gp"``: Adam(lr = 1e-4, betas = (0, 0.9)).
    """
    cfg = cfg or Config()
    if cfg.variant == "clip":
        return torch.optim.RMSprop(G.parameters(), lr=cfg.lr), torch.optim.RMSprop(D.parameters(), lr=cfg.lr)
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas),
            torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas))


def critic_iterations(step: int, n_critic: int = N_CRITIC, warmup: bool = False) -> int:
    """Critic steps before generator step ``step``: ``n_critic``, or, with ``warmup`` (Arjovsky et al.'s code),
    100 for the first 25 generator steps and every 500th, so the clipped critic starts near its optimum."""
    if warmup and (step < 25 or step % 500 == 0):
        return 100
    return n_critic


def critic_step(run, G: nn.Module, D: nn.Module, batches, cfg: Config) -> dict:
    """One critic update of Algorithm 1, on a fresh real batch x and x_tilde = G(z), z ~ N(0, I):

        clip: L = E[f(x_tilde)] - E[f(x)],                        then clamp every weight of f to [-c, c];
        gp:   L = E[f(x_tilde)] - E[f(x)] + lambda E[(||grad f(x_hat)|| - 1)^2],  x_hat = eps x + (1 - eps) x_tilde.

    ``D`` is the critic f (the run's optimiser "D"). The penalty refuses a batch-norm critic (Gulrajani et al.,
    Sec. 4) unless ``cfg.allow_batch_norm``. Returns the scalars to log: ``loss_D`` (L), ``D_real`` = E[f(x)],
    ``D_fake`` = E[f(x_tilde)], ``W1_estimate`` = E[f(x)] - E[f(x_tilde)] (the critic loss without the penalty,
    negated) and, for the penalty, ``gp``.
    """
    if cfg.variant == "gp" and getattr(D, "norm", None) == "batch" and not cfg.allow_batch_norm:
        raise ValueError("The gradient penalty needs a critic without batch norm (Gulrajani et al., Sec. 4): "
                         "the penalty is on each input's gradient, and batch norm makes every score depend on the "
                         "whole batch. Use Critic(norm='layer') or norm='none'.")
    x, _ = batches.next()
    z = torch.randn(len(x), G.z_dim, device=run.device)
    with torch.no_grad():
        x_tilde = G(z)
    with run.autocast():
        f_real, f_fake = D(x), D(x_tilde)
        loss_f = wasserstein_critic_loss(f_real, f_fake)              # E[f(x~)] - E[f(x)]
    logs = dict(W1_estimate=-loss_f.detach(), D_real=f_real.detach().mean(), D_fake=f_fake.detach().mean())
    if cfg.variant == "gp":
        gp = gradient_penalty(D, x, x_tilde, cfg.lambda_gp)           # lambda E[(||grad f(x^)|| - 1)^2], float32
        run.update("D", loss_f + gp)
        return dict(logs, loss_D=(loss_f + gp).detach(), gp=gp.detach())
    run.update("D", loss_f)
    clip_weights_(D, cfg.c)                                           # w <- clip(w, -c, c)
    return dict(logs, loss_D=loss_f.detach())


def train_step(run, G: nn.Module, D: nn.Module, batches, cfg: Config) -> dict:
    """One generator iteration of Algorithm 1 (either paper): ``critic_iterations`` critic updates
    (``critic_step``), then one generator update on L_G = -E[f(G(z))] with the critic frozen.

    ``run`` is a ``gan_course.training.Run`` with optimisers "G" and "D" (D: the critic f); ``batches`` yields
    (x, label) on its device. Returns the scalars of the last critic step and ``loss_G``.
    """
    for _ in range(critic_iterations(run.step, cfg.n_critic, cfg.warmup)):
        logs = critic_step(run, G, D, batches, cfg)
    set_requires_grad(D, False)                                       # f is only a function in G's step
    z = torch.randn(batches.batch_size, G.z_dim, device=run.device)
    with run.autocast():
        loss_G = wasserstein_generator_loss(D(G(z)))                  # -E[f(G(z))]
    run.update("G", loss_G)
    set_requires_grad(D, True)
    return dict(logs, loss_G=loss_G.detach())
