"""Image-to-Image Translation with Conditional Adversarial Networks (Isola, Zhu, Zhou & Efros, 2017,
arXiv 1611.07004), known as pix2pix: one recipe for any paired translation x -> y (labels -> photo, edges -> photo,
day -> night, one font -> another).

The generator G maps an input image x (and noise, which pix2pix gives only as dropout) to an output G(x). A
*conditional* discriminator D sees pairs: the input together with either the real output y or G's output.
The objectives (Sec. 3.1):

    L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_{x,z}[log(1 - D(x, G(x, z)))]                         (Eq. 1)
    L_L1(G)      = E_{x,y,z}[ ||y - G(x, z)||_1 ]                                                   (Eq. 3)
    G*           = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G),        lambda = 100               (Eq. 4)

L1 alone gives blurry outputs (the median of the plausible outputs); the cGAN term alone gives sharp but
sometimes wrong ones; together they are sharp and faithful (Sec. 4.2, Table 1, Fig. 4).

The two networks (Sec. 3.2 and Appendix 6.1):

- ``UNetGenerator``: an encoder-decoder whose layer i is concatenated to layer n - i of the decoder (skip
  connections, Sec. 3.2.1), so low-level information (edges, positions) reaches the output without passing
  through the bottleneck. Encoder C64-C128-C256-C512-C512-..., decoder CD512-CD1024-CD1024-C1024-... (widths
  after concatenation), 4x4 convolutions with stride 2, BatchNorm, LeakyReLU(0.2) in the encoder, ReLU in the
  decoder, dropout 0.5 in the first three decoder layers at training *and* test time (the noise z), tanh out.
  ``skip=False`` gives the paper's plain "encoder-decoder" baseline (Fig. 5, Table 2).
- ``PatchDiscriminator``: the PatchGAN (Sec. 3.2.2), a fully convolutional D that classifies every N x N patch
  of the pair as real or fake and is averaged over the image. The paper's 70 x 70 PatchGAN is C64-C128-C256-C512
  (4x4 convolutions, stride 2 except the last two layers) followed by a convolution to one channel;
  ``n_layers`` = 0, 1, 3, 5 give the paper's 1 x 1 (PixelGAN), 16 x 16, 70 x 70 and 286 x 286 discriminators
  (Table 3). The patch size N is the receptive field of one output unit: ``gan_course.analysis.receptive_field``.

Training follows Sec. 3.3: alternate one step on D and one on G; G minimises -log D(x, G(x)) (the
non-saturating form) plus lambda * L1; D's objective is divided by 2 "which slows down the rate at which D
learns relative to G"; Adam with lr 2e-4, beta_1 = 0.5. ``Config`` holds these hyper-parameters, ``optimizers``
builds the Adam pair and ``train_step(run, G, D, batches, cfg)`` is the one update the chapter runs (its main
loop, the facades run and every "what goes wrong" arm). What the chapter measures with the networks (test-time
translation, sharpness, the noise spread, patch maps, figures and the explorer) is in ``gan_course.lab.pix2pix``.

What differs from the paper at the course's sizes, all said in the chapter: images of 32x32 (glyphs) or 64x64
(facades) rather than 256x256, so the U-Net has 5 or 6 levels instead of 8 and the PatchGAN fewer layers; batch
size 32 rather than 1 (BatchNorm then uses batch statistics in training and running statistics at test; the
paper's batch-1 BatchNorm is instance normalisation); the bottleneck has no BatchNorm (as in the authors' code:
with batch size 1 and a 1x1 bottleneck it would zero the code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..analysis import ReceptiveField, receptive_field
from ..losses import discriminator_loss, generator_loss_nonsaturating
from ..training import set_requires_grad

LAMBDA_L1 = 100.0           # Sec. 4: "we use lambda = 100" (the weight of L_L1 in Eq. 4)
LR, BETA1 = 2e-4, 0.5       # Sec. 3.3: "Adam solver, with a learning rate of 0.0002, and momentum parameters
BETA2 = 0.999               #            beta_1 = 0.5, beta_2 = 0.999"


# ============================================================================ the noise: dropout (Sec. 2.1)
class DropoutNoise(nn.Module):
    """Dropout that stays on at test time: pix2pix's only source of noise z (Sec. 2.1, 3.2).

    "We provide noise only in the form of dropout, applied on several layers of our generator at both training
    and test time." ``active = False`` switches it off at test time (plain ``nn.Dropout`` behaviour), e.g. to
    get one deterministic output per input.
    """

    def __init__(self, p: float = 0.5, active: bool = True):
        super().__init__()
        self.p, self.active = p, active

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.dropout(h, self.p, training=self.training or self.active)

    def extra_repr(self) -> str:
        return f"p={self.p}, at_test={self.active}"


# ============================================================================ the generator (Sec. 3.2.1)
def _down(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    """Encoder block Ck: Convolution(4x4, stride 2) - BatchNorm - LeakyReLU(0.2); halves the resolution."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    """Decoder block CDk / Ck: ConvTranspose(4x4, stride 2) - BatchNorm - [Dropout 0.5] - ReLU; doubles it."""
    layers: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                               nn.BatchNorm2d(c_out)]
    if dropout:
        layers.append(DropoutNoise(dropout))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class UNetGenerator(nn.Module):
    """G(x): the U-Net of Sec. 3.2.1 (Fig. 3), or with ``skip=False`` the plain encoder-decoder baseline.

    ``num_downs`` stride-2 encoder blocks take an S x S input to S / 2^num_downs (1 x 1 when
    S = 2^num_downs: 8 for the paper's 256 x 256, 5 for 32 x 32). Encoder widths are ngf * (1, 2, 4, 8, 8, ...)
    (capped at ngf * ``max_mult``): C64-C128-C256-C512-C512-... for ngf = 64. The decoder mirrors them; with
    skips, decoder block i receives [d_{i-1}, e_{n-i}] concatenated along channels (the "U"), so its input is
    twice as wide. Dropout (p = ``dropout``) sits in the first ``n_dropout`` decoder blocks (3 in the paper)
    and stays on at test time (``DropoutNoise``). The output layer is a transposed convolution to
    ``out_channels`` followed by tanh. BatchNorm everywhere except the first encoder block (Appendix 6.1.1)
    and the 1x1 bottleneck (as in the authors' code).
    """

    def __init__(self, *, in_channels: int = 1, out_channels: int = 1, num_downs: int = 5, ngf: int = 64,
                 max_mult: int = 8, dropout: float = 0.5, n_dropout: int = 3, skip: bool = True):
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2 (an encoder and a decoder), got {num_downs}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_downs, self.skip = num_downs, skip
        widths = [ngf * min(2 ** i, max_mult) for i in range(num_downs)]           # e_1 .. e_n
        self.encoder = nn.ModuleList(
            [_down(in_channels if i == 0 else widths[i - 1], widths[i], norm=0 < i < num_downs - 1)
             for i in range(num_downs)])
        # decoder block i (i = 1 .. n-1) outputs the width of e_{n-i}; its input is d_{i-1} (+ e_{n-i+1} with skips)
        self.decoder = nn.ModuleList()
        for i in range(1, num_downs):
            c_prev = widths[num_downs - i]                                          # width of d_{i-1} (d_0 = e_n)
            c_in = c_prev * 2 if (skip and i > 1) else c_prev
            self.decoder.append(_up(c_in, widths[num_downs - i - 1], dropout if i <= n_dropout else 0.0))
        c_last = widths[0] * 2 if skip else widths[0]
        self.out = nn.Sequential(nn.ConvTranspose2d(c_last, out_channels, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 ** self.num_downs or x.shape[-2] % 2 ** self.num_downs:
            raise ValueError(f"input size {tuple(x.shape[-2:])} must be divisible by 2^num_downs = "
                             f"{2 ** self.num_downs}")
        e = []                                       # e_1 .. e_n, the encoder's activations
        h = x
        for block in self.encoder:
            h = block(h)
            e.append(h)
        for i, block in enumerate(self.decoder, start=1):
            if self.skip and i > 1:
                h = torch.cat([h, e[self.num_downs - i]], dim=1)       # skip: [d_{i-1}, e_{n-i+1}]
            h = block(h)
        if self.skip:
            h = torch.cat([h, e[0]], dim=1)
        return self.out(h)

    def set_noise(self, active: bool) -> UNetGenerator:
        """Keep dropout on at test time (``True``, the paper) or make eval-mode outputs deterministic."""
        for m in self.modules():
            if isinstance(m, DropoutNoise):
                m.active = active
        return self


def encoder_decoder(**kwargs) -> UNetGenerator:
    """The paper's "encoder-decoder" baseline (Sec. 4.3, Fig. 5): the U-Net with its skip connections removed."""
    return UNetGenerator(skip=False, **kwargs)


# ============================================================================ the discriminator (Sec. 3.2.2)
class PatchDiscriminator(nn.Module):
    """D(x, y): the PatchGAN, a logit for every N x N patch of the pair (x, y) stacked along channels.

    Appendix 6.1.2: the 70 x 70 discriminator is C64-C128-C256-C512 then a convolution to 1 channel (4x4
    filters; stride 2 in the first ``n_layers`` blocks, 1 in the last C block and the output; no BatchNorm in
    C64; LeakyReLU 0.2). ``n_layers`` sets the depth and so the patch size N: 1 -> 16, 2 -> 34, 3 -> 70,
    5 -> 286 (all with 4x4 filters). ``n_layers=0`` is the 1 x 1 "PixelGAN" (C64-C128 with 1x1 filters).
    Returns (B, 1, H', W') logits; ``sigmoid`` of one entry is D's belief that its patch is real.
    """

    def __init__(self, *, in_channels: int = 2, ndf: int = 64, n_layers: int = 3, max_mult: int = 8):
        super().__init__()
        self.in_channels, self.n_layers = in_channels, n_layers
        if n_layers == 0:                                           # PixelGAN: every pixel judged on its own
            self.net = nn.Sequential(
                nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(ndf, ndf * 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2),
                nn.Conv2d(ndf * 2, 1, 1))
            return
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = ndf
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1                       # the last C block keeps the resolution
            c_out = ndf * min(2 ** n, max_mult)
            layers += [nn.Conv2d(width, c_out, 4, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2)]
            width = c_out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))  # one logit per patch
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits of the patches of the pair: the input x and a candidate output y (real or G(x))."""
        return self.net(torch.cat([x, y], dim=1))

    def receptive_field(self) -> ReceptiveField:
        """The patch size N (``.size``) and the stride between patches (``.jump``), from the layers."""
        return receptive_field(self.net)


# ============================================================================ the objective (Sec. 3.1, 3.3)
def l1_loss(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_L1(G) = E_{x,y,z}[||y - G(x, z)||_1] (Eq. 3), as a mean absolute error per pixel."""
    return (target - fake).abs().mean()


def l2_loss(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_L2(G) = E_{x,y,z}[||y - G(x, z)||_2^2], per pixel: the "more traditional loss" of Sec. 3.1 that the paper
    replaces by L1, "as L1 encourages less blurring" (its minimiser is the mean of the possible targets, L1's a
    median)."""
    return (target - fake).pow(2).mean()


DISTANCES = {"l1": l1_loss, "l2": l2_loss}


def generator_loss(fake_logits: torch.Tensor, fake: torch.Tensor, target: torch.Tensor,
                   lambda_l1: float = LAMBDA_L1, use_gan: bool = True,
                   distance: str = "l1") -> tuple[torch.Tensor, dict[str, float]]:
    """G's side of Eq. 4: -log D(x, G(x)) averaged over all patches (non-saturating, Sec. 3.3) + lambda * L1.

    ``use_gan=False`` drops the adversarial term (the "L1 only" row of Table 1); ``lambda_l1 = 0`` gives
    "cGAN only"; ``distance="l2"`` puts the L2 loss Sec. 3.1 compares with in L1's place. Returns the loss and its
    two parts as floats (``gan`` and ``l1`` or ``l2``) for logging.
    """
    loss_rec = DISTANCES[distance](fake, target)
    loss_gan = generator_loss_nonsaturating(fake_logits) if use_gan else fake.new_zeros(())
    return loss_gan + lambda_l1 * loss_rec, {"gan": float(loss_gan.detach()), distance: float(loss_rec.detach())}


def discriminator_objective(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's side of Eq. 1 over all patches, divided by 2 (Sec. 3.3, "slows down the rate at which D learns"):

    L_D = 1/2 * ( -E[log D(x, y)] - E[log(1 - D(x, G(x)))] ).
    """
    return 0.5 * discriminator_loss(real_logits, fake_logits)


# ============================================================================ training (Sec. 3.3)
@dataclass
class Config:
    """The paper's training hyper-parameters (Sec. 3.3, Sec. 4); the defaults are the paper's values.

    ``use_gan=False`` is the "L1 only" row of Table 1 (no discriminator at all: ``D`` may be None and the run
    needs no "D" optimiser); ``lambda_l1 = 0`` is the "cGAN only" row.
    """

    lambda_l1: float = LAMBDA_L1   # Sec. 4: "we use lambda = 100"
    lr: float = LR                 # Sec. 3.3: "a learning rate of 0.0002"
    beta1: float = BETA1           # Sec. 3.3: "momentum parameters beta_1 = 0.5,
    beta2: float = BETA2           #            beta_2 = 0.999"
    use_gan: bool = True           # Table 1: "L1" (False) vs. "cGAN" / "L1+cGAN" (True)
    distance: str = "l1"           # Sec. 3.1: "using L1 distance rather than L2" ("l2": the one it replaces)

    def __post_init__(self):
        if self.distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got {self.distance!r}")
        if self.lambda_l1 < 0:
            raise ValueError(f"lambda_l1 must be >= 0 (0 is 'cGAN only'), got {self.lambda_l1}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam's betas must lie in [0, 1), got ({self.beta1}, {self.beta2})")
        if not self.use_gan and self.lambda_l1 == 0:
            raise ValueError("use_gan=False with lambda_l1=0 leaves G nothing to minimise: choose one of them")


def optimizers(G: nn.Module, D: nn.Module | None, cfg: Config) -> dict[str, torch.optim.Optimizer]:
    """Adam for G and D (Sec. 3.3), as the ``{"G": ..., "D": ...}`` a ``Run`` takes; no "D" when not ``use_gan``."""
    if cfg.use_gan and D is None:
        raise ValueError("Config(use_gan=True) needs a discriminator D; pass use_gan=False for the 'L1 only' arm")
    opts = {"G": torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}
    if cfg.use_gan:
        opts["D"] = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    return opts


def train_step(run, G: UNetGenerator, D: PatchDiscriminator | None, batches, cfg: Config) -> dict:
    """One iteration of Sec. 3.3 on the next pair batch (x, y): a step on D, then a step on G with D frozen.

        D step:  L_D = 1/2 (-E[log D(x, y)] - E[log(1 - D(x, G(x)))])          (Eq. 1, halved)
        G step:  L_G = -E[log D(x, G(x))] + lambda E[|y - G(x)|]               (Eq. 4, non-saturating)

    The noise z is G's dropout, drawn in the single forward pass G(x) that both steps share (D's step sees it
    detached). With ``cfg.use_gan = False`` ("L1 only") there is no D step and G minimises lambda * L1 alone;
    ``cfg.distance = "l2"`` puts Sec. 3.1's L2 in L1's place (logged as ``loss_G_l2``).
    ``run`` is a ``gan_course.training.Run`` with optimisers "G" (and "D"); ``batches`` yields (x, y) on its
    device. Returns the detached scalars to log: the losses, the mean patch logits D(x, y) and D(x, G(x)), and
    G's two terms.
    """
    if cfg.use_gan and D is None:
        raise ValueError("Config(use_gan=True) needs a discriminator D; pass use_gan=False for the 'L1 only' arm")
    x, y = batches.next()                                  # the input x and its target y
    with run.autocast():
        fake = G(x)                                        # G(x, z): z is the dropout inside G
    logs = {}
    if cfg.use_gan:                                        # D: max_D L_cGAN over all patches, halved
        with run.autocast():
            d_real, d_fake = D(x, y), D(x, fake.detach())
            loss_D = discriminator_objective(d_real, d_fake)
        run.update("D", loss_D)
        logs = dict(loss_D=loss_D.detach(), D_real=d_real.detach().mean(), D_fake=d_fake.detach().mean())
        set_requires_grad(D, False)                        # G's step leaves no gradients in D
    try:                                                   # G: min -log D(x, G(x)) + lambda ||y - G(x)||_1
        with run.autocast():
            fake_logits = D(x, fake) if cfg.use_gan else None
            loss_G, parts = generator_loss(fake_logits, fake, y, cfg.lambda_l1, use_gan=cfg.use_gan,
                                           distance=cfg.distance)
        run.update("G", loss_G)
    finally:                                               # D trainable again, even after an interruption
        if cfg.use_gan:
            set_requires_grad(D, True)
    return dict(logs, loss_G=loss_G.detach(), loss_G_gan=parts["gan"],
                **{f"loss_G_{cfg.distance}": parts[cfg.distance]})
