"""BigGAN: Large Scale GAN Training for High Fidelity Natural Image Synthesis
(Brock, Donahue & Simonyan, 2018, arXiv 1809.11096).

BigGAN takes SAGAN (chapter 07: residual blocks, self-attention, spectral norm in G and D, hinge loss, a
projection discriminator) and scales it up, adding a handful of changes that make the large model train and
sample well:

- **Shared class embedding and hierarchical latent** (Sec. 3, Appendix B). Every conditional batch norm in G
  takes its gain and bias from c_l = [e(y), z_l]: one class embedding e(y) shared by all layers, concatenated
  with the l-th chunk of z ("skip-z"). The first chunk z_0 feeds the linear layer that makes the 4 x 4 map.
- **Orthogonal initialisation** of every weight (Saxe et al., 2014), and **orthogonal regularisation** of G
  (Sec. 3.1, Eq. 3), off-diagonal version: R_beta(W) = beta || W W^T (.) (1 - I) ||_F^2.
- **Truncation trick** (Sec. 3.1): sample z from a normal truncated to [-psi, psi] (resampling values outside);
  smaller psi trades variety for fidelity.
- **EMA of G's weights** for sampling, **2 D steps per G step**, lr_D = 2e-4 and lr_G = 5e-5, Adam betas (0, 0.999).

The objective is SAGAN's hinge loss, with R_beta added to G's:

    L_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z, y), y))],      L_G = -E[D(G(z, y), y)] + R_beta(G)

This module holds what the paper defines, top to bottom: ``conditional_bn`` and ``attention`` (BigGAN's variants
of the layers), ``GBlock`` (SAGAN's block with this conditional BN) and ``DBlock`` (SAGAN's, imported),
``Generator`` / ``Discriminator``; ``orthogonal_regularization``; ``Config``, ``optimizers`` and ``train_step``
(one BigGAN iteration); ``refresh_spectral_norm`` (for the EMA of G) and ``sample`` (the truncation trick). The
layers (``ConditionalBatchNorm2d``, ``SelfAttention2d``, the orthogonally initialised spectrally normalised
``ortho_conv2d`` / ``ortho_linear``) come from ``gan_course.layers``, the hinge loss from ``gan_course.losses``, the
truncated sampler from ``gan_course.sampling``. The truncation sweep and its explorer are in
``gan_course.lab.biggan``; the spectral analysis of Sec. 4 (the singular values of every weight over training) in
``gan_course.lab.spectra``, shared with chapter 07.

Choices that differ from the paper are the notebook's (widths, learning rates, one D step, the EMA's decay) and
say why there; the one in this module: R_beta is differentiated by autograd, which doubles the reference code's
gradient (see ``orthogonal_regularization``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import (
    ConditionalBatchNorm2d,
    SelfAttention2d,
    is_spectrally_normalised,
    ortho_conv2d,
    ortho_linear,
    orthogonal_sn,
    raw_weight,
    weight_layers,
)
from ..losses import hinge_discriminator_loss, hinge_generator_loss
from ..sampling import generate, truncated_normal
from ..training import set_requires_grad
from . import sagan
from .sagan import DBlock

__all__ = ["LR_G", "LR_D", "BETAS", "ADAM_EPS", "D_STEPS", "BETA_ORTHO", "EMA_DECAY", "EMA_START", "conditional_bn",
           "attention", "GBlock", "DBlock", "Generator", "Discriminator", "off_diagonal_orthogonal_penalty",
           "orthogonal_regularization", "Config", "optimizers", "train_step", "refresh_spectral_norm", "sample"]

LR_G = 5e-5          # Appendix C: "learning rates of 5e-5 in G and 2e-4 in D" (for the 128 x 128 model, 2 D steps)
LR_D = 2e-4
BETAS = (0.0, 0.999)  # Appendix C: "Adam (Kingma & Ba, 2014) with beta_1 = 0 and beta_2 = 0.999"
ADAM_EPS = 1e-6      # the reference code (BigGAN-PyTorch): Adam's epsilon 1e-6 (the paper does not say)
D_STEPS = 2          # Appendix C: "2 D steps per G step"
BETA_ORTHO = 1e-4    # Sec. 3.1: "we find beta = 10^-4 to be sufficient"
EMA_DECAY = 0.9999   # Appendix C: "an exponential moving average of the weights of G ... with a decay of 0.9999"
EMA_START = 20_000   # the reference code starts the EMA after 20k iterations


# --------------------------------------------------------------------------- BigGAN's layers (Appendix B)
def conditional_bn(num_features: int, cond_dim: int, sn: bool = True) -> ConditionalBatchNorm2d:
    """BigGAN's conditional BN: y = (1 + gamma(c)) * BN(x) + beta(c), gamma and beta linear (no bias) in c.

    ``gan_course.layers.ConditionalBatchNorm2d`` with its two linear maps orthogonally initialised and
    spectrally normalised (as in the reference code, where they are ``SNLinear``).
    """
    bn = ConditionalBatchNorm2d(num_features, cond_dim, sn=False)
    orthogonal_sn(bn.gain, sn)
    orthogonal_sn(bn.bias, sn)
    return bn


def attention(channels: int, sn: bool = True, pool: str = "before") -> SelfAttention2d:
    """BigGAN's self-attention variant (the reference ``Attention`` layer): keys f and queries g with C/8 channels,
    values h with C/2 channels, keys and values max-pooled 2 x 2, a 1 x 1 output conv back to C, gate gamma = 0 at
    init; every conv orthogonally initialised and spectrally normalised.

    ``pool``: the reference convolves, then pools (``"after"``); the course's default pools x first (``"before"``,
    4x cheaper f and h), the order the shipped run of ``gan_course/pretrained/08_biggan`` was trained with (a
    deviation chapter 08 states)."""
    block = SelfAttention2d(channels, value_channels=channels // 2, pool=pool, sn=False)
    for name in ("W_f", "W_g", "W_h", "W_v"):
        setattr(block, name, orthogonal_sn(getattr(block, name), sn))
    return block


# --------------------------------------------------------------------------- residual blocks (Appendix B, Fig. 15)
class GBlock(sagan.GBlock):
    """BigGAN's generator residual block (Fig. 15 b), doubling the resolution: SAGAN's ``GBlock`` (the same layers,
    the same forward) with BigGAN's ``conditional_bn``:

        h   = conv3x3( relu( cBN_2( conv3x3( up( relu( cBN_1(x, c) ) ) ), c ) ) )
        out = h + conv1x1( up(x) )

    c = [e(y), z_l]: the shared class embedding concatenated with this block's chunk of z. Each cBN predicts its
    per-channel gain 1 + gamma(c) and bias beta(c) with its own (spectrally normalised) linear maps of c.
    ``DBlock`` (Fig. 15 c) is SAGAN's without any change, imported from ``gan_course.models.sagan``.
    """

    conditional_bn = staticmethod(conditional_bn)


# --------------------------------------------------------------------------- the networks
class Generator(nn.Module):
    """BigGAN's generator (Appendix B, Table 4), with a small channel multiplier ``ch``.

        z = [z_0, z_1, ..., z_L]                      (hierarchical latent: L + 1 chunks of ``z_dim / (L + 1)``)
        e = E y                                       (shared class embedding, ``shared_dim``)
        h_0 = reshape(W z_0)  (4 x 4 x widths[0])
        h_l = GBlock_l(h_{l-1}, c_l),  c_l = [e, z_l]  (one self-attention block after the block reaching ``attn_res``)
        x = tanh(conv3x3(relu(BN(h_L))))

    With ``image_size=32``: L = 3 up-blocks, 4 -> 8 -> 16 -> 32. The widths are ``ch * multipliers``, by default
    tapering as in BigGAN's 128 x 128 architecture (16ch ... ch), here (4, 4, 2, 1) * ch; the paper's 32 x 32
    (CIFAR) architecture keeps 4ch everywhere (``multipliers=(4, 4, 4, 4)``), four times the work at 32 x 32.
    Every weight is orthogonally initialised and (``sn=True``) spectrally normalised; the shared embedding is not
    (as in the reference code, which also excludes it from orthogonal regularisation).
    """

    def __init__(self, *, z_dim: int = 80, n_classes: int = 10, ch: int = 16, shared_dim: int = 32,
                 image_size: int = 32, attn_res: int | None = 16, out_channels: int = 3, sn: bool = True,
                 multipliers: tuple[int, ...] | None = None):
        super().__init__()
        n_blocks = int(round(math.log2(image_size / 4)))
        if 4 * 2 ** n_blocks != image_size:
            raise ValueError(f"image_size must be 4 * 2^k (16, 32, 64, ...), got {image_size}")
        if z_dim % (n_blocks + 1):
            raise ValueError(f"z_dim must split into {n_blocks + 1} equal chunks (one per block plus the input "
                             f"layer), got z_dim={z_dim}")
        self.z_dim, self.n_classes, self.image_size, self.attn_res = z_dim, n_classes, image_size, attn_res
        self.chunk = z_dim // (n_blocks + 1)
        multipliers = tuple(multipliers or (2 ** min(n_blocks - 1 - i, 2) for i in range(-1, n_blocks)))
        if len(multipliers) != n_blocks + 1:
            raise ValueError(f"need {n_blocks + 1} channel multipliers (4 x 4 input, then one per block), "
                             f"got {multipliers}")
        self.widths = [ch * m for m in multipliers]            # widths[i]: channels at resolution 4 * 2^i
        cond_dim = shared_dim + self.chunk
        self.shared = orthogonal_sn(nn.Embedding(n_classes, shared_dim), sn=False)  # E: the shared class embedding
        self.linear = ortho_linear(self.chunk, self.widths[0] * 4 * 4, sn=sn)          # W z_0 -> 4 x 4 map
        self.blocks = nn.ModuleList(GBlock(self.widths[i], self.widths[i + 1], cond_dim, sn)
                                    for i in range(n_blocks))
        self.resolutions = [4 * 2 ** (i + 1) for i in range(n_blocks)]
        if attn_res is not None and attn_res not in self.resolutions:
            raise ValueError(f"attn_res must be one of {self.resolutions} or None, got {attn_res}")
        self.attention = (attention(self.widths[self.resolutions.index(attn_res) + 1], sn)
                          if attn_res is not None else None)
        self.bn = nn.BatchNorm2d(self.widths[-1], eps=1e-4)
        self.to_rgb = ortho_conv2d(self.widths[-1], out_channels, 3, sn=sn)

    def conditions(self, z: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """The hierarchical latent: [z_0, c_1, ..., c_L] with c_l = [e(y), z_l] (z_0 feeds the linear layer)."""
        if z.shape[1] != self.z_dim:
            raise ValueError(f"expected z of dimension {self.z_dim}, got {z.shape[1]}")
        zs = z.split(self.chunk, dim=1)
        e = self.shared(y)
        return [zs[0]] + [torch.cat([e, z_l], dim=1) for z_l in zs[1:]]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z_0, *cs = self.conditions(z, y)
        h = self.linear(z_0).view(z.shape[0], -1, 4, 4)
        for block, c, res in zip(self.blocks, cs, self.resolutions, strict=True):
            h = block(h, c)
            if self.attention is not None and res == self.attn_res:
                h = self.attention(h)
        return torch.tanh(self.to_rgb(F.relu(self.bn(h))))


class Discriminator(nn.Module):
    """BigGAN's projection discriminator (Miyato & Koyama, 2018, arXiv 1802.05637, Eq. 3; BigGAN Table 4):

        D(x, y) = psi(phi(x)) + embed(y)^T phi(x)

    phi(x) in R^C: residual down-blocks 32 -> 16 -> 8 -> 8 -> 8 (one self-attention block after the block reaching
    ``attn_res``), relu, and a sum over positions; widths ``ch * multipliers``, by default (1, 2, 4, 4) * ch,
    tapering like BigGAN's 128 x 128 discriminator (the 32 x 32 one keeps 4ch); psi: a linear map to one number;
    embed(y): one learned vector per class. The blocks are SAGAN's ``DBlock`` (Fig. 15 c is the same block). The
    output is a logit for the hinge loss, linear in the class embedding. Every layer, the embedding included, is
    orthogonally initialised and spectrally normalised (``sn=True``).
    """

    def __init__(self, *, n_classes: int = 10, ch: int = 16, image_size: int = 32, attn_res: int | None = 16,
                 in_channels: int = 3, sn: bool = True, multipliers: tuple[int, ...] | None = None):
        super().__init__()
        n_down = int(round(math.log2(image_size / 8)))
        if 8 * 2 ** n_down != image_size:
            raise ValueError(f"image_size must be 8 * 2^k (16, 32, 64, ...), got {image_size}")
        multipliers = tuple(multipliers or [min(2 ** i, 4) for i in range(n_down)] + [4, 4])
        if len(multipliers) != n_down + 2:
            raise ValueError(f"need {n_down + 2} channel multipliers (one per block), got {multipliers}")
        self.widths = [ch * m for m in multipliers]          # after each block
        self.n_classes, self.image_size, self.attn_res = n_classes, image_size, attn_res
        w = [in_channels] + self.widths
        blocks = [DBlock(w[0], w[1], first=True, sn=sn)]
        blocks += [DBlock(w[i], w[i + 1], sn=sn) for i in range(1, n_down)]
        blocks += [DBlock(w[i], w[i + 1], downsample=False, sn=sn) for i in range(n_down, n_down + 2)]
        self.blocks = nn.ModuleList(blocks)
        self.resolutions = [image_size // 2 ** (i + 1) for i in range(n_down)] + [8, 8]
        if attn_res is not None and attn_res not in self.resolutions[:n_down]:
            raise ValueError(f"attn_res must be one of {self.resolutions[:n_down]} or None, got {attn_res}")
        self._attn_after = self.resolutions.index(attn_res) if attn_res is not None else -1
        self.attention = attention(self.widths[self._attn_after], sn) if attn_res is not None else None
        self.features_dim = self.widths[-1]
        self.psi = ortho_linear(self.features_dim, 1, sn=sn)
        self.embed = orthogonal_sn(nn.Embedding(n_classes, self.features_dim), sn)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) in R^C: the blocks (with attention), relu, sum over positions (global sum pooling)."""
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self._attn_after:
                h = self.attention(h)
        return F.relu(h).sum(dim=(2, 3))

    @staticmethod
    def projection(phi_x: torch.Tensor, e_y: torch.Tensor, psi: nn.Module) -> torch.Tensor:
        """Miyato & Koyama's Eq. 3: psi(phi(x)) + <e_y, phi(x)>, one number per sample ((B, C), (B, C) -> (B,))."""
        return psi(phi_x).squeeze(1) + (e_y * phi_x).sum(dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.projection(self.phi(x), self.embed(y), self.psi)


# --------------------------------------------------------------------------- orthogonal regularisation (Sec. 3.1)
def off_diagonal_orthogonal_penalty(W: torch.Tensor) -> torch.Tensor:
    """|| W W^T (.) (1 - I) ||_F^2 for W reshaped to (out, -1): the squared cosines-times-norms between different
    filters, with their norms (the diagonal) left free (BigGAN Eq. 3 without beta)."""
    W = W.flatten(1)
    gram = W @ W.t()
    return (gram * (1 - torch.eye(gram.shape[0], dtype=W.dtype, device=W.device))).pow(2).sum()


def orthogonal_regularization(model: nn.Module, beta: float = 1e-4, exclude: tuple[str, ...] = ("shared",)
                              ) -> torch.Tensor:
    """BigGAN's orthogonal regularisation (Sec. 3.1, Eq. 3), summed over ``model``'s weights:

        R_beta(W) = beta || W W^T (.) (1 - I) ||_F^2,      W the raw weight reshaped to (out, -1)

    It equals ``gan_course.losses.orthogonal_regularization`` on layers without spectral norm; on spectrally
    normalised layers it penalises the raw weight W (as the reference code does), not W / sigma(W). Layers whose
    name starts with one of ``exclude`` are skipped (the reference code skips G's shared class embedding).
    The course adds R to G's loss and lets autograd differentiate it: the gradient is 4 beta (W W^T (.) (1 - I)) W,
    twice the 2 beta (W W^T (.) (1 - I)) W that the reference code writes into the gradient, so beta = 1e-4 here
    acts like beta = 2e-4 there.
    """
    terms = [off_diagonal_orthogonal_penalty(raw_weight(m)) for name, m in weight_layers(model)
             if not any(name.startswith(prefix) for prefix in exclude)]
    if not terms:
        raise ValueError("orthogonal_regularization found no weights to regularise")
    return beta * torch.stack(terms).sum()


# --------------------------------------------------------------------------- training (Appendix C)
@dataclass
class Config:
    """BigGAN's training hyper-parameters (Sec. 3, Appendix C); the notebook overrides what the course changes."""

    lr_G: float = LR_G              # Appendix C: "5e-5 in G"
    lr_D: float = LR_D              # Appendix C: "2e-4 in D"
    betas: tuple[float, float] = BETAS   # Appendix C: "beta_1 = 0 and beta_2 = 0.999"
    adam_eps: float = ADAM_EPS      # the reference code's Adam epsilon
    d_steps: int = D_STEPS          # Appendix C: "2 D steps per G step"
    beta_ortho: float = BETA_ORTHO  # Sec. 3.1: R_beta with beta = 1e-4 (0: no orthogonal regularisation)
    ema_decay: float = EMA_DECAY    # Appendix C: EMA of G's weights, decay 0.9999
    ema_start: int = EMA_START      # the step from which the EMA averages (before it: a copy of G)

    def __post_init__(self):
        sagan.check_config(self, positive=("lr_G", "lr_D", "adam_eps"), counts=("d_steps",))
        if self.beta_ortho < 0:
            raise ValueError(f"Config.beta_ortho must be >= 0, got {self.beta_ortho}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"Config.ema_decay must be in [0, 1), got {self.ema_decay}")


def optimizers(G: nn.Module, D: nn.Module, cfg: Config | None = None):
    """Adam for both players (Appendix C): lr_G, lr_D, betas and epsilon from ``cfg`` (default: the paper's)."""
    cfg = cfg or Config()
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr_G, betas=cfg.betas, eps=cfg.adam_eps),
            torch.optim.Adam(D.parameters(), lr=cfg.lr_D, betas=cfg.betas, eps=cfg.adam_eps))


def train_step(run, G: Generator, D: Discriminator, batches, cfg: Config) -> dict:
    """One BigGAN iteration (Appendix C): ``cfg.d_steps`` discriminator updates, then one generator update.

    D step, on a real batch (x, y) and fresh z ~ N(0, I), y_fake uniform over the classes:
        L_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z, y_fake), y_fake))]            (hinge loss)
    G step, on fresh z and y_fake:
        L_G = -E[D(G(z, y_fake), y_fake)] + R_beta(G)                                      (Eq. 3 added to G's loss)

    ``run`` is a ``gan_course.training.Run`` with optimisers "G" and "D"; ``batches`` yields (x, y) on its
    device. Returns the scalars to log (losses, R_beta, mean D outputs). The EMA of G is the loop's (it starts
    at ``cfg.ema_start``).
    """
    device = run.device
    for _ in range(cfg.d_steps):
        x, y = batches.next()
        B = x.shape[0]
        z = torch.randn(B, G.z_dim, device=device)
        y_fake = torch.randint(0, G.n_classes, (B,), device=device)
        with torch.no_grad():
            x_fake = G(z, y_fake)
        with run.autocast():
            d_real, d_fake = D(x, y), D(x_fake, y_fake)
            loss_D = hinge_discriminator_loss(d_real, d_fake)
        run.update("D", loss_D)

    set_requires_grad(D, False)
    z = torch.randn(B, G.z_dim, device=device)
    y_fake = torch.randint(0, G.n_classes, (B,), device=device)
    with run.autocast():
        loss_G_adv = hinge_generator_loss(D(G(z, y_fake), y_fake))
    R = orthogonal_regularization(G, cfg.beta_ortho) if cfg.beta_ortho > 0 else torch.zeros((), device=device)
    run.update("G", loss_G_adv + R)
    set_requires_grad(D, True)
    return dict(loss_D=loss_D.detach(), loss_G=loss_G_adv.detach(), R_ortho=R.detach(),
                D_real=d_real.detach().mean(), D_fake=d_fake.detach().mean())


# --------------------------------------------------------------------------- the EMA generator
@torch.no_grad()
def refresh_spectral_norm(model: nn.Module, iterations: int = 1) -> nn.Module:
    """Run ``iterations`` power-iteration steps (Miyato et al., 2018, Algorithm 1) on every spectrally normalised
    weight of ``model``, in place, whatever its train/eval mode:

        v <- W^T u / ||W^T u||,   u <- W v / ||W v||,          sigma(W) ~ u^T W v

    Needed for an EMA of a spectrally normalised G: ``gan_course.training.EMA`` averages buffers too, and an average
    of unit vectors u is shorter than 1, so u^T W v underestimates sigma and the EMA's weights W / sigma come out too
    large (saturated, near-black samples). Calling this after each ``ema.update()`` re-normalises u and v for the
    averaged weights (the reference code averages its stored sigma instead).
    """
    for module in model.modules():
        if is_spectrally_normalised(module):
            sn = module.parametrizations.weight[0]
            if not hasattr(sn, "_u"):
                continue
            W = module.parametrizations.weight.original.flatten(1)
            u, v = sn._u, sn._v
            for _ in range(iterations):
                v = F.normalize(W.t() @ u, dim=0, eps=sn.eps)
                u = F.normalize(W @ v, dim=0, eps=sn.eps)
            sn._u.copy_(u)
            sn._v.copy_(v)
    return model


# --------------------------------------------------------------------------- the truncation trick (Sec. 3.1)
def sample(G: nn.Module, n: int, threshold: float | None = None, y: torch.Tensor | None = None,
           generator: torch.Generator | None = None, batch_size: int = 500) -> torch.Tensor:
    """n class-conditional samples G(z, y) in eval mode (``gan_course.sampling.generate``), z from N(0, I) truncated
    to [-threshold, threshold] by resampling (the truncation trick, Sec. 3.1; ``threshold=None``: no truncation,
    psi = infinity). ``y`` defaults to the classes in turn (0, 1, ..., K-1, 0, ...), balanced. ``G`` may be an
    ``EMA`` of the generator. Returns CPU images in [-1, 1]."""
    net = getattr(G, "module", G)  # an EMA wraps the generator
    if y is None:
        y = torch.arange(n) % net.n_classes
    if threshold is None:
        z = torch.randn(n, net.z_dim, generator=generator)
    else:
        z = truncated_normal((n, net.z_dim), threshold, generator=generator)
    return generate(G, z, y, batch_size=batch_size)
