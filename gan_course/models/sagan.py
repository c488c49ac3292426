"""SAGAN: Self-Attention Generative Adversarial Networks (Zhang, Goodfellow, Metaxas & Odena, 2018, arXiv 1805.08318).

Convolutions only mix a k x k neighbourhood per layer, so a GAN built from them relates distant parts of an image
(the two ends of a shape, the legs of a dog) only through many layers. SAGAN inserts a self-attention block
(Sec. 3) into both the generator and the discriminator: every position of a feature map looks at every other,
weighted by learned similarity, and the block's output is added back through a gate gamma that starts at 0.
Two stabilisers come with it (Sec. 4): spectral normalisation in G as well as D (Miyato et al., 2018), and the
two-timescale update rule (TTUR, Heusel et al., 2017): lr_D = 4e-4, lr_G = 1e-4, one D step per G step, Adam
betas (0, 0.9). The objective is the hinge loss (Eq. 3):

    L_D = E_{(x, y) ~ p_data}[max(0, 1 - D(x, y))] + E_{z ~ p_z, y ~ p_data}[max(0, 1 + D(G(z), y))]
    L_G = -E_{z ~ p_z, y ~ p_data}[D(G(z), y)]

The model is class-conditional: conditional batch norm in G and a projection discriminator (Miyato & Koyama,
2018) in D, as in the paper's ImageNet model.

This module holds what the paper defines, top to bottom:

- ``GBlock`` / ``DBlock``: the residual blocks of SN-GAN / SAGAN (up-sampling with class-conditional BN in G,
  down-sampling in D);
- ``Generator``: z, y -> image, one ``SelfAttention2d`` at ``attn_res`` (16 x 16 for 32 x 32 images);
- ``Discriminator``: x, y -> D(x, y) = psi(phi(x)) + embed(y)^T phi(x), one ``SelfAttention2d`` at ``attn_res``;
- ``Config`` (the hyper-parameters of Sec. 4 and 5), ``optimizers`` (TTUR) and ``train_step``, one iteration of
  the update, which the notebook's loop and every arm of the stabilisation experiment call;
- ``sample`` / ``sampler``: eval-mode draws (for figures and ``gan_course.metrics``).

The building blocks (``SelfAttention2d``, ``ConditionalBatchNorm2d``, the orthogonally initialised spectrally
normalised ``ortho_conv2d`` / ``ortho_linear``) come from ``gan_course.layers``, the hinge loss from
``gan_course.losses``. What the chapter measures with the model lives in ``gan_course.lab.sagan`` (the monitor,
the arm trainer, the attention measurements and explorer) and ``gan_course.lab.spectra`` (spectral norm and
singular values, measured).

Differences from the paper, all small-scale choices said in the chapter: 32 x 32 images with widths ``ch = 16``
(the paper: 128 x 128, ch = 64), one attention block per network (the paper's ImageNet model has one at
feat32 of 128, i.e. a quarter of the image side; here it is G's 16 x 16 map, half the side, and D's 8 x 8), and
G's update reuses the batch generated for D's step (one G forward less per iteration, as in chapter 03).
Every weight is orthogonally initialised, as in BigGAN (the paper does not say).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConditionalBatchNorm2d, SelfAttention2d, ortho_conv2d, ortho_linear, orthogonal_sn
from ..losses import hinge_discriminator_loss, hinge_generator_loss
from ..sampling import generate
from ..sampling import sample as sample_images
from ..training import set_requires_grad

__all__ = ["Z_DIM", "LR_G", "LR_D", "BETAS", "N_DIS", "ATTENTION", "attention_block", "GBlock", "DBlock", "Generator",
           "Discriminator", "Config",
           "check_config", "optimizers", "train_step", "sample", "sampler"]

Z_DIM = 128          # Sec. 5 / the official code: z in R^128, N(0, I)
LR_G = 1e-4          # Sec. 4 (TTUR): "0.0001 for the generator"
LR_D = 4e-4          # Sec. 4 (TTUR): "0.0004 for the discriminator"
BETAS = (0.0, 0.9)   # Sec. 5: "Adam optimizer with beta_1 = 0 and beta_2 = 0.9"
N_DIS = 1            # Sec. 4: TTUR lets SAGAN use "1:1 balanced updates for the generator and discriminator"
ATTENTION = ("paper", "official")   # Sec. 3's equations, or the official code's layer (see attention_block)


def attention_block(channels: int, variant: str = "paper", sn: bool = True) -> SelfAttention2d:
    """The self-attention block of Sec. 3 (``gan_course.layers.SelfAttention2d``), in one of two variants:

    - ``"paper"``: the equations as written, f, g and h with C_bar = C/8 channels, every position a key;
    - ``"official"``: the authors' TensorFlow code (``sn_non_local_block_sim``): h with C/2 channels, keys and values
      max-pooled 2x2 after their 1x1 convolutions (N/4 keys).
    """
    if variant not in ATTENTION:
        raise ValueError(f"attention variant must be one of {ATTENTION}, got {variant!r}")
    if variant == "official":
        return SelfAttention2d(channels, value_channels=channels // 2, pool="after", sn=sn)
    return SelfAttention2d(channels, sn=sn)


def _attention_variant(attention: bool | str) -> str | None:
    """``attention`` as G and D take it: True (= "paper"), "paper", "official", or False (no block)."""
    if attention is False:
        return None
    if attention is True:
        return "paper"
    if attention in ATTENTION:
        return attention
    raise ValueError(f"attention must be True, False or one of {ATTENTION}, got {attention!r}")


# --------------------------------------------------------------------------- residual blocks (SN-GAN, SAGAN)
class GBlock(nn.Module):
    """Generator residual block with conditional batch norm, doubling the resolution.

        h = conv3x3(relu(cBN_2(conv3x3(up(relu(cBN_1(x, c)))), c)))
        out = h + conv1x1(up(x))

    In SAGAN, c is the one-hot class y (``cond_dim = n_classes``) and cBN(x, y) = (1 + gamma_y) * BN(x) + beta_y:
    per-class gain and bias (de Vries et al., 2017), the conditional BN of SN-GAN and SAGAN.
    ``ConditionalBatchNorm2d`` predicts them from a condition vector; fed a one-hot y, its linear maps are exactly
    one learned (gamma_y, beta_y) per class. Those class tables are not spectrally normalised (as in SAGAN's code);
    the convolutions are when ``sn``. BigGAN's block (``gan_course.models.biggan.GBlock``) is this one with
    another ``conditional_bn``.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, sn: bool = True):
        super().__init__()
        self.bn1 = self.conditional_bn(in_channels, cond_dim, sn)
        self.conv1 = ortho_conv2d(in_channels, out_channels, 3, sn=sn)
        self.bn2 = self.conditional_bn(out_channels, cond_dim, sn)
        self.conv2 = ortho_conv2d(out_channels, out_channels, 3, sn=sn)
        self.shortcut = ortho_conv2d(in_channels, out_channels, 1, sn=sn)

    @staticmethod
    def conditional_bn(channels: int, n_classes: int, sn: bool) -> ConditionalBatchNorm2d:
        """cBN(x, y) = (1 + gamma_y) BN(x) + beta_y with one (gamma_y, beta_y) per class, both starting at 0: a fresh
        layer is plain batch norm (the official code initialises the per-class scales to 1 and shifts to 0). The
        class tables are never spectrally normalised, whatever ``sn`` says for the convolutions."""
        bn = ConditionalBatchNorm2d(channels, n_classes, sn=False)
        nn.init.zeros_(bn.gain.weight)
        nn.init.zeros_(bn.bias.weight)
        return bn

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x, c))
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv1(h)
        h = self.conv2(F.relu(self.bn2(h, c)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """Discriminator residual block, halving the resolution when ``downsample`` (no batch norm in D).

        h = pool(conv3x3(relu(conv3x3(a(x)))))           a = relu, or the identity in the first block
        out = h + pool(conv1x1(x))                        (first block: conv1x1(pool(x)), SN-GAN's "optimised block")

    The first block takes the image itself, so it must not apply relu to it (that would discard the negative
    half of [-1, 1]). BigGAN's discriminator block (Fig. 15 c) is this one (``gan_course.models.biggan`` imports it).
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = True, first: bool = False,
                 sn: bool = True):
        super().__init__()
        self.conv1 = ortho_conv2d(in_channels, out_channels, 3, sn=sn)
        self.conv2 = ortho_conv2d(out_channels, out_channels, 3, sn=sn)
        self.learn_shortcut = downsample or in_channels != out_channels
        self.shortcut = ortho_conv2d(in_channels, out_channels, 1, sn=sn) if self.learn_shortcut else None
        self.downsample, self.first = downsample, first

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if not self.learn_shortcut:
            return h + x
        s = self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x))
        return h + s


# --------------------------------------------------------------------------- the networks
class Generator(nn.Module):
    """SAGAN's class-conditional generator, small: z (128) -> 4 x 4 -> residual up-blocks -> image.

        x = tanh(conv3x3(relu(BN(h))))      h = GBlock^L(reshape(W z), y), attention after the block reaching attn_res

    With ``image_size=32``: 4 -> 8 -> 16 -> attention at 16 x 16 -> 32. Widths are ``ch * mult`` with
    ``mult = (4, 4, 2, 1)`` (an extra leading 4 per extra doubling: 64 x 64 has four blocks). ``sn=True`` puts
    spectral norm on every conv and linear layer of G (SAGAN Sec. 4); ``sn=False`` is the SN-GAN baseline
    generator ("SN on D only"). ``attention``: ``True`` or ``"paper"`` (Sec. 3's block), ``"official"`` (the
    authors' code, ``attention_block``), ``False`` (no block: the paper's Table 1 baseline).
    """

    def __init__(self, *, z_dim: int = Z_DIM, n_classes: int = 10, ch: int = 16, image_size: int = 32,
                 attn_res: int = 16, out_channels: int = 3, sn: bool = True, attention: bool | str = True):
        super().__init__()
        n_blocks = int(math.log2(image_size // 4))
        if 4 * 2 ** n_blocks != image_size:
            raise ValueError(f"image_size must be 4 * 2^k (32, 64, 128), got {image_size}")
        mults = [4] * (n_blocks + 1 - 3) + [4, 2, 1] if n_blocks >= 3 else [4, 2, 1][-(n_blocks + 1):]
        widths = [ch * m for m in mults]  # widths[i]: channels at resolution 4 * 2^i
        self.z_dim, self.n_classes, self.image_size, self.attn_res, self.sn = z_dim, n_classes, image_size, attn_res, sn
        self.linear = ortho_linear(z_dim, widths[0] * 4 * 4, sn=sn)
        self.blocks = nn.ModuleList(GBlock(widths[i], widths[i + 1], n_classes, sn) for i in range(n_blocks))
        self.resolutions = [4 * 2 ** (i + 1) for i in range(n_blocks)]  # resolution after each block
        self.attention, variant = None, _attention_variant(attention)
        if variant is not None:
            if attn_res not in self.resolutions:
                raise ValueError(f"attn_res must be one of {self.resolutions}, got {attn_res}")
            self.attention = attention_block(widths[self.resolutions.index(attn_res) + 1], variant, sn)
        self.bn = nn.BatchNorm2d(widths[-1])
        self.to_rgb = ortho_conv2d(widths[-1], out_channels, 3, sn=sn)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_onehot = F.one_hot(y, self.n_classes).to(z.dtype)
        h = self.linear(z).view(z.shape[0], -1, 4, 4)
        for block, res in zip(self.blocks, self.resolutions, strict=True):
            h = block(h, y_onehot)
            if self.attention is not None and res == self.attn_res:
                h = self.attention(h)
        return torch.tanh(self.to_rgb(F.relu(self.bn(h))))


class Discriminator(nn.Module):
    """SAGAN's projection discriminator (Miyato & Koyama, 2018, arXiv 1802.05637, Eq. 3):

        D(x, y) = psi(phi(x)) + embed(y)^T phi(x)

    phi(x) in R^C: residual down-blocks (attention after the block that reaches ``attn_res``), relu, and a sum
    over positions; psi: a linear map to a scalar; embed: one learned vector per class. D is a logit for the
    hinge loss (no sigmoid), linear in the class embedding. Every layer is spectrally normalised (``sn=True``,
    as in SN-GAN and SAGAN), the class embedding too. For 32 x 32: 32 -> 16 -> 8 (attention) -> 4 -> 4.
    ``attention`` as in ``Generator``.
    """

    def __init__(self, *, n_classes: int = 10, ch: int = 16, image_size: int = 32, attn_res: int = 8,
                 in_channels: int = 3, sn: bool = True, attention: bool | str = True):
        super().__init__()
        n_down = int(math.log2(image_size // 4))
        if 4 * 2 ** n_down != image_size:
            raise ValueError(f"image_size must be 4 * 2^k (32, 64, 128), got {image_size}")
        widths = [ch * m for m in ([1, 2] + [4] * (n_down - 1))]  # after each down-block
        self.n_classes, self.image_size, self.attn_res, self.sn = n_classes, image_size, attn_res, sn
        blocks = [DBlock(in_channels, widths[0], first=True, sn=sn)]
        blocks += [DBlock(widths[i - 1], widths[i], sn=sn) for i in range(1, n_down)]
        blocks += [DBlock(widths[n_down - 1], widths[n_down - 1], downsample=False, sn=sn)]
        self.blocks = nn.ModuleList(blocks)
        self.resolutions = [image_size // 2 ** (i + 1) for i in range(n_down)] + [4]
        self.attention, variant = None, _attention_variant(attention)
        if variant is not None:
            if attn_res not in self.resolutions[:-1]:
                raise ValueError(f"attn_res must be one of {self.resolutions[:-1]}, got {attn_res}")
            self.attention = attention_block(widths[self.resolutions.index(attn_res)], variant, sn)
        self.features_dim = widths[n_down - 1]
        self.psi = ortho_linear(self.features_dim, 1, sn=sn)
        self.embed = orthogonal_sn(nn.Embedding(n_classes, self.features_dim), sn)

    def before_attention(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map the attention block receives (the blocks up to ``attn_res``): for receptive fields."""
        h = x
        for block, res in zip(self.blocks, self.resolutions, strict=True):
            h = block(h)
            if res == self.attn_res:
                return h
        raise ValueError(f"no block reaches attn_res={self.attn_res}")

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """The feature vector phi(x) in R^C: blocks (with attention), relu, sum over positions."""
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if self.attention is not None and i < len(self.blocks) - 1 and self.resolutions[i] == self.attn_res:
                h = self.attention(h)
        return F.relu(h).sum(dim=(2, 3))

    def head(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """psi(h) + e^T h for features h (B, C) and class embeddings e (B, C): linear in e."""
        return self.psi(h).squeeze(1) + (e * h).sum(dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.phi(x), self.embed(y))


# --------------------------------------------------------------------------- training (Sec. 4, Sec. 5)
@dataclass
class Config:
    """SAGAN's training hyper-parameters (Sec. 4 and 5); the notebook overrides what the course changes."""

    lr_G: float = LR_G              # Sec. 4: "0.0001 for the generator"
    lr_D: float = LR_D              # Sec. 4: "0.0004 for the discriminator"
    betas: tuple[float, float] = BETAS   # Sec. 5: "beta_1 = 0 and beta_2 = 0.9"
    n_dis: int = N_DIS              # Sec. 4: one D step per G step (TTUR instead of 5 D steps)

    def __post_init__(self):
        check_config(self, positive=("lr_G", "lr_D"), counts=("n_dis",))


def check_config(cfg, *, positive: tuple[str, ...], counts: tuple[str, ...]):
    """Check a GAN config trained with Adam (SAGAN's, BigGAN's): the ``positive`` fields > 0, ``betas`` two numbers
    in [0, 1) (stored as a tuple of floats), the ``counts`` ints >= 1; a ValueError names the field otherwise."""
    for name in positive:
        if not getattr(cfg, name) > 0:
            raise ValueError(f"Config.{name} must be > 0, got {getattr(cfg, name)}")
    cfg.betas = tuple(float(b) for b in cfg.betas)
    if len(cfg.betas) != 2 or not all(0 <= b < 1 for b in cfg.betas):
        raise ValueError(f"Config.betas must be two numbers in [0, 1), got {cfg.betas}")
    for name in counts:
        if not (isinstance(getattr(cfg, name), int) and getattr(cfg, name) >= 1):
            raise ValueError(f"Config.{name} must be an int >= 1, got {getattr(cfg, name)!r}")


def optimizers(G: nn.Module, D: nn.Module, cfg: Config | None = None):
    """Adam for both players; TTUR (Sec. 4) is simply lr_D = 4 lr_G with one D step per G step."""
    cfg = cfg or Config()
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr_G, betas=cfg.betas),
            torch.optim.Adam(D.parameters(), lr=cfg.lr_D, betas=cfg.betas))


def train_step(run, G: Generator, D: Discriminator, batches, cfg: Config) -> dict:
    """One SAGAN iteration (Sec. 4): ``cfg.n_dis`` discriminator updates (1 in the paper), then one generator update.

    D step, on a real batch (x, y) and fakes G(z, y) of the same classes, z ~ N(0, I):
        L_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z), y))]                 (hinge loss, Eq. 3)
    G step, through the freshly updated D, on the last batch of fakes:
        L_G = -E[D(G(z), y)]

    ``run`` is a ``gan_course.training.Run`` with optimisers "G" (lr_G) and "D" (lr_D); ``batches`` yields (x, y)
    on its device. Returns the scalars to log: the losses, the mean scores ``D_real`` = mean D(x, y) and
    ``D_fake`` = mean D(G(z), y) of the last D step, and the attention gates ``gamma_G`` / ``gamma_D``.
    """
    for _ in range(cfg.n_dis):
        x, y = batches.next()                                   # real images and their classes
        z = torch.randn(len(x), G.z_dim, device=run.device)
        with run.autocast():
            x_fake = G(z, y)                                    # fakes of the same classes
            d_real, d_fake = D(x, y), D(x_fake.detach(), y)     # detach: L_D does not train G
            loss_D = hinge_discriminator_loss(d_real, d_fake)   # E[max(0, 1 - D(x,y))] + E[max(0, 1 + D(G(z),y))]
        run.update("D", loss_D)

    set_requires_grad(D, False)                                 # G's step: D is only a function here
    with run.autocast():
        loss_G = hinge_generator_loss(D(x_fake, y))             # -E[D(G(z), y)], on the same fakes
    run.update("G", loss_G)
    set_requires_grad(D, True)
    gates = {f"gamma_{k}": m.attention.gamma.detach().reshape(())             # the attention gates (Sec. 3)
             for k, m in (("G", G), ("D", D)) if m.attention is not None}
    return dict(loss_D=loss_D.detach(), loss_G=loss_G.detach(), D_real=d_real.detach().mean(),
                D_fake=d_fake.detach().mean(), **gates)


def sample(G: Generator, z: torch.Tensor, y: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """G(z, y) in eval mode (batch norm's running statistics; spectral norm's u is not stepped), in batches, on
    the CPU; G's mode is restored afterwards (``gan_course.sampling.generate``)."""
    return generate(G, z, y, batch_size=batch_size)


def sampler(G: Generator, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """``n -> n samples`` with balanced labels 0, 1, ..., K-1, 0, ... and z ~ N(0, I) from a seeded generator: the
    form ``gan_course.metrics`` takes. The same ``(seed, n)`` gives the same z and y, so an FID curve over
    training follows one fixed set of latent vectors."""
    def sample_fn(n: int) -> torch.Tensor:
        return sample_images(G, n, torch.arange(n) % G.n_classes, seed=seed, batch_size=250)
    return sample_fn
