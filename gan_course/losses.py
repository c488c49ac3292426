"""GAN objectives, written as the papers write them, computed in a numerically stable way.

The discriminator's raw output is a *logit* ``l`` with ``D(x) = sigmoid(l)``; then
``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)``, which never evaluates ``log(0)``.

Chapter map: minimax / non-saturating (01 GAN, 02 cGAN, 03 DCGAN, 04 InfoGAN, 05 pix2pix),
Wasserstein + weight clipping / gradient penalty (06 WGAN, 09 StarGAN), hinge (07 SAGAN, 08 BigGAN),
orthogonal regularisation (08 BigGAN).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------- Goodfellow et al. (2014)
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's side of the minimax game (Goodfellow et al., 2014, Eq. 1), as a loss to minimise:

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]

    i.e. binary cross-entropy with label 1 for real and 0 for generated samples.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side of the minimax game, L_G = E_z[log(1 - D(G(z)))] (minimised).

    Its gradient vanishes when D confidently rejects the samples (D(G(z)) -> 0), which is exactly the
    situation early in training: the "saturating" loss (Goodfellow et al., 2014, Sec. 3).
    """
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss, L_G = -E_z[log D(G(z))] (Goodfellow et al., 2014, Sec. 3).

    Same fixed point as the minimax loss, but strong gradients when D(G(z)) is small.
    """
    return F.softplus(-fake_logits).mean()


# --------------------------------------------------------------------------- Arjovsky et al. (2017)
def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The WGAN critic loss, L = E_z[f(G(z))] - E_x[f(x)] (Arjovsky et al., 2017, Algorithm 1).

    Minimising it maximises E_x[f(x)] - E_z[f(G(z))], which for a 1-Lipschitz f estimates W1(P_r, P_g)
    (Kantorovich-Rubinstein duality); ``-loss`` is the course's W1 estimate.
    """
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The WGAN generator loss, L_G = -E_z[f(G(z))]."""
    return -fake_scores.mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, c: float = 0.01) -> nn.Module:
    """WGAN's crude Lipschitz constraint: clamp every parameter of the critic to [-c, c] (in place)."""
    for p in module.parameters():
        p.clamp_(-c, c)
    return module


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     lambda_gp: float = 10.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's two-sided gradient penalty (Gulrajani et al., 2017, Eq. 3):

    lambda * E_{x_hat}[(||grad_{x_hat} f(x_hat)||_2 - 1)^2],  x_hat = eps * x + (1 - eps) * x_tilde,
    eps ~ U[0, 1] per sample, x real and x_tilde generated.

    ``critic`` is any callable from images to one score per image (wrap a multi-output or conditional critic
    in a lambda, e.g. ``lambda x: D(x, y)[0]``). The graph is kept (``create_graph=True``) so the penalty can
    be back-propagated into the critic's weights.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator, device="cpu" if generator is not None else real.device)
    eps = eps.to(device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    grad_norm = grad.flatten(1).norm(2, dim=1)
    return lambda_gp * ((grad_norm - 1) ** 2).mean()


# --------------------------------------------------------------------------- Lim & Ye (2017); Miyato et al. (2018)
def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss for D (used by SAGAN Eq. 3 and BigGAN): E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss for G: -E_z[D(G(z))]."""
    return -fake_logits.mean()


# --------------------------------------------------------------------------- Brock et al. (2018)
def orthogonal_regularization(module: nn.Module, beta: float = 1e-4) -> torch.Tensor:
    """BigGAN's off-diagonal orthogonal regularisation (Brock et al., 2018, Sec. 3.1, Eq. 3):

    R_beta(W) = beta * || W^T W (.) (1 - I) ||_F^2, summed over the module's conv and linear weights,
    each reshaped to (out_features, -1) so that W W^T compares filters with each other.

    This is the penalty as written; its autograd gradient is 4 * beta * (W W^T (.) (1 - I)) W, twice what the
    reference code writes directly into the gradient (2 * beta * ...). The course uses the penalty as
    written, so the same beta regularises twice as strongly as in the reference code.
    """
    total = None
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.ConvTranspose2d)):
            weight = getattr(m, "weight_orig", m.weight)  # the raw weight under torch's spectral_norm
            w = weight.flatten(1)
            gram = w @ w.t()
            off_diagonal = gram * (1 - torch.eye(gram.shape[0], device=w.device, dtype=w.dtype))
            term = off_diagonal.pow(2).sum()
            total = term if total is None else total + term
    if total is None:
        raise ValueError("orthogonal_regularization found no Conv/Linear weights in the module")
    return beta * total
