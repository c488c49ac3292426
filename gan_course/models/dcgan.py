"""Deep Convolutional GANs (Radford, Metz & Chintala, 2015, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", arXiv 1511.06434).

The objective is still Goodfellow et al.'s minimax game (chapter 01, Eq. 1 of arXiv 1406.2661), played with the
non-saturating generator loss:

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))],        L_G = -E_z[log D(G(z))].

What the paper adds is an *architecture* that makes convolutional GANs train reliably, found by "extensive model
exploration" (Sec. 3, "Architecture guidelines for stable Deep Convolutional GANs"):

1. replace pooling by strided convolutions in D and fractionally-strided (transposed) convolutions in G;
2. batch normalisation in both G and D, except on G's output layer and on D's input layer;
3. no fully connected hidden layers (G's first layer is a projection of z, D's last a single logit);
4. ReLU in G for every layer but the output, which is tanh;
5. LeakyReLU (slope 0.2) in D for every layer;

and the training details of Sec. 4: images scaled to [-1, 1], weights drawn from N(0, 0.02), Adam with
learning rate 2e-4 and beta_1 = 0.5, mini-batches of 128 (the course uses 64 on a CPU).

This module, top to bottom:

- ``init_weights_``: the N(0, 0.02) initialisation (Sec. 4);
- ``Generator`` and ``Discriminator`` (Fig. 1, sized for 32x32 or 64x64), configurable in width and with batch
  norm on or off, ``check_guidelines`` which verifies guidelines 1-5 on a pair of networks;
- ``Config`` (the training hyper-parameters of Sec. 4), ``optimizers`` (Adam, Sec. 4) and ``train_step``, one
  iteration of the chapter's update, which the notebook's loop and every experiment arm call.

The chapter's explorers (latent walks, Sec. 6.1; vector arithmetic, Sec. 6.3) and the helper that trains an
experiment arm live in ``gan_course.lab.dcgan``. The representation-learning experiment of Sec. 5.1 (a linear classifier on D's max-pooled features) uses
``Discriminator.features`` with ``gan_course.analysis.pooled_features`` and ``fit_linear_probe``.

Choices that differ from the paper, and why: 4x4 kernels (as in the authors' Torch code, soumith/dcgan.torch,
where each stride-2 layer exactly doubles or halves the size) rather than Fig. 1's 5x5; G's first layer is a 4x4
transposed convolution of the 1x1 "image" z, which is exactly the paper's "project and reshape" (a matrix
multiplication whose result is reshaped to 4x4 maps); z ~ N(0, I) (dcgan.torch's default, and what the course's
interpolation assumes) rather than uniform on [-1, 1]; batch-norm scales gamma ~ N(1, 0.02) as in dcgan.torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..losses import discriminator_loss, generator_loss_nonsaturating
from ..training import set_requires_grad

LEAK = 0.2          # Sec. 4: "In the LeakyReLU, the slope of the leak was set to 0.2 in all models."
INIT_STD = 0.02     # Sec. 4: "All weights were initialized from a zero-centered Normal distribution with std 0.02."
LR = 2e-4           # Sec. 4: "we used the Adam optimizer ... learning rate of 0.0002"
BETA1 = 0.5         # Sec. 4: "reducing [beta_1] to 0.5 helped stabilize training"
BETA2 = 0.999       # Adam's default (Kingma & Ba, 2014): Sec. 4 changes only beta_1
BATCH_SIZE = 128    # Sec. 4: "mini-batch stochastic gradient descent (SGD) with a mini-batch size of 128"


# ============================================================================ initialisation (Sec. 4)
@torch.no_grad()
def init_weights_(module: nn.Module, std: float = INIT_STD, gamma_std: float | None = None) -> nn.Module:
    """DCGAN's initialisation (Sec. 4), in place: every (transposed) convolution and linear weight ~ N(0, std^2),
    biases 0; batch-norm scales gamma ~ N(1, gamma_std^2) (``gamma_std`` defaults to ``std``, as in dcgan.torch;
    0 sets gamma = 1 exactly, PyTorch's default, without drawing) and shifts beta = 0.

    Use as ``G.apply(init_weights_)`` or ``init_weights_(G)`` (the latter walks all sub-modules). Returns ``module``.
    """
    gamma_std = std if gamma_std is None else gamma_std
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            if gamma_std:
                nn.init.normal_(m.weight, 1.0, gamma_std)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def levels(image_size: int) -> int:
    """Number of stride-2 layers between a 4x4 map and an image of side ``image_size`` (a power of two >= 8).

    DCGAN's layout (Fig. 1: 4 -> 8 -> 16 -> 32 -> 64), reused by every later chapter built on these networks."""
    n = int(round(math.log2(image_size))) - 2
    if image_size < 8 or 2 ** (n + 2) != image_size:
        raise ValueError(f"image_size must be a power of two >= 8 (e.g. 32 or 64), got {image_size}")
    return n


# ============================================================================ the generator (Fig. 1)
class Generator(nn.Module):
    """G(z): z in R^{z_dim} -> image (channels, image_size, image_size) in [-1, 1] (Fig. 1, Sec. 3).

    For 32x32 with ``width`` = w (the paper's Fig. 1 is the 64x64 version with w = 128 and 5x5 kernels):

        z (z_dim x 1 x 1) -> project: ConvT 4x4          -> 4w x 4 x 4,   BN, ReLU
                          -> blocks[0]: ConvT 4x4, stride 2 -> 2w x 8 x 8,   BN, ReLU
                          -> blocks[1]: ConvT 4x4, stride 2 ->  w x 16 x 16, BN, ReLU
                          -> to_image:  ConvT 4x4, stride 2 ->  C x 32 x 32, tanh   (no BN on the output)

    Each stride-2 transposed convolution ("fractionally-strided", guideline 1) doubles the side:
    out = (in - 1) * stride - 2 * padding + kernel = 2 * in. ``batch_norm=False`` removes every BN (the
    experiment of Sec. 3: without it, deep generators collapse or fail to start). ``init_std`` and ``gamma_std``
    go to ``init_weights_``.
    """

    def __init__(self, *, z_dim: int = 100, channels: int = 1, image_size: int = 32, width: int = 64,
                 batch_norm: bool = True, init_std: float = INIT_STD, gamma_std: float | None = None):
        super().__init__()
        self.z_dim, self.channels, self.image_size, self.width = z_dim, channels, image_size, width
        self.batch_norm = batch_norm
        n = levels(image_size)                       # 3 for 32x32: 4 -> 8 -> 16 -> 32
        c = width * 2 ** (n - 1)                      # channels of the 4x4 map: 4w for 32x32, 8w for 64x64

        def block(conv: nn.Module, out: int) -> nn.Sequential:
            bn = [nn.BatchNorm2d(out)] if batch_norm else []
            return nn.Sequential(conv, *bn, nn.ReLU())  # guideline 4: ReLU in every hidden layer

        # "project and reshape": a 4x4 transposed convolution of z seen as a 1x1 image = a linear map to c x 4 x 4
        self.project = block(nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=not batch_norm), c)
        blocks = []
        for _ in range(n - 1):                        # guideline 1: fractionally-strided convolutions, no upsampling
            blocks.append(block(nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=not batch_norm), c // 2))
            c //= 2
        self.blocks = nn.Sequential(*blocks)
        # guideline 2 and 4: no BN on the output layer, tanh output
        self.to_image = nn.Sequential(nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh())
        init_weights_(self, init_std, gamma_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z.view(len(z), self.z_dim, 1, 1))
        return self.to_image(self.blocks(h))


# ============================================================================ the discriminator (Sec. 3)
class Discriminator(nn.Module):
    """D(x) as a *logit* (``D(x) = sigmoid(self(x))``), shape (B,): G's mirror image (Sec. 3).

    For 32x32 with ``width`` = w:

        x (C x 32 x 32) -> blocks[0]: Conv 4x4, stride 2 ->  w x 16 x 16, LeakyReLU(0.2)   (no BN on the input layer)
                        -> blocks[1]: Conv 4x4, stride 2 -> 2w x 8 x 8,   BN, LeakyReLU(0.2)
                        -> blocks[2]: Conv 4x4, stride 2 -> 4w x 4 x 4,   BN, LeakyReLU(0.2)
                        -> to_logit:  Conv 4x4 (valid)   ->  1 x 1 x 1:   the logit

    Strided convolutions replace pooling (guideline 1); the last layer is the paper's "flattened and fed into a
    single sigmoid output", written as a 4x4 convolution (guideline 3: no hidden fully connected layer).
    ``features(x)`` returns the activation of every block, the representation probed in Sec. 5.1.
    """

    def __init__(self, *, channels: int = 1, image_size: int = 32, width: int = 64, batch_norm: bool = True,
                 leak: float = LEAK, init_std: float = INIT_STD):
        super().__init__()
        self.channels, self.image_size, self.width, self.batch_norm = channels, image_size, width, batch_norm
        n = levels(image_size)
        blocks, c_in, c = [], channels, width
        for i in range(n):
            use_bn = batch_norm and i > 0             # guideline 2: no BN on D's input layer
            bn = [nn.BatchNorm2d(c)] if use_bn else []
            blocks.append(nn.Sequential(nn.Conv2d(c_in, c, 4, 2, 1, bias=not use_bn), *bn,
                                        nn.LeakyReLU(leak)))  # guideline 5
            c_in, c = c, c * 2
        self.blocks = nn.Sequential(*blocks)
        self.to_logit = nn.Conv2d(c_in, 1, 4, 1, 0)
        init_weights_(self, init_std)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each block, from the first (w x 16 x 16 for 32x32) to the last (4w x 4 x 4)."""
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_logit(self.blocks(x)).view(len(x))

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) in (0, 1): the probability that x came from the data."""
        return torch.sigmoid(self(x))


_WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
_RESHAPE_ONLY = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _stages(leaves: list[nn.Module], net: nn.Module) -> list[list[nn.Module]]:
    """The weighted layers of ``net`` in order, grouped into linear stages: an ``nn.Linear`` that follows another
    in the same ``nn.Sequential`` with only reshaping (or dropout) between them joins its stage, since with no
    nonlinearity between, the two are one matrix multiplication written twice, not a hidden layer."""
    joins = set()
    for seq in (m for m in net.modules() if isinstance(m, nn.Sequential)):
        prev = None
        for child in seq.children():
            if isinstance(child, nn.Linear) and isinstance(prev, nn.Linear):
                joins.add(id(child))
            if isinstance(child, _WEIGHTED):
                prev = child
            elif not isinstance(child, _RESHAPE_ONLY):
                prev = None
    stages: list[list[nn.Module]] = []
    for m in leaves:
        if isinstance(m, _WEIGHTED):
            if stages and id(m) in joins:
                stages[-1].append(m)
            else:
                stages.append([m])
    return stages


def check_guidelines(G: nn.Module, D: nn.Module) -> dict[str, bool]:
    """Which of the Sec. 3 guidelines a (G, D) pair follows, read off the modules themselves.

    Keys: ``no_pooling`` (no pooling or upsampling layers; all resolution changes are stride-2 (transposed)
    convolutions), ``batch_norm`` (BN in both, after every layer but G's last and D's first and last),
    ``no_hidden_fc``, ``G_relu_tanh`` (ReLU hidden units, tanh output), ``D_leaky_relu`` (LeakyReLU(0.2) only).

    ``no_hidden_fc`` (guideline 3, "Remove fully connected hidden layers"): the paper keeps two fully connected
    layers, at the ends. G's first layer, the projection of z, "could be called fully connected as it is just a
    matrix multiplication", reshaped into the 4x4 maps; D's last takes the flattened features to "a single sigmoid
    output". Both are allowed as an ``nn.Linear`` or as a convolution (a 4x4 transposed convolution of the 1x1 "image"
    z, a 4x4 convolution to one logit, as here); D's last layer must then have a single output. Any other
    ``nn.Linear`` is flagged: in the middle of G or D, a Linear followed by more layers, with a nonlinearity between,
    makes a fully connected hidden layer, and as G's output layer or D's input layer it replaces the convolution of
    the all-convolutional net. Linear layers in a row with only reshaping between count as one matrix multiplication.
    """
    def layers(m):
        return [x for x in m.modules() if not list(x.children())]

    def followed_by_bn(seq, layer):
        i = seq.index(layer) + 1
        while i < len(seq) and isinstance(seq[i], _RESHAPE_ONLY):
            i += 1
        return i < len(seq) and isinstance(seq[i], _BATCH_NORMS)

    pool_types = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample)
    g, d = layers(G), layers(D)
    stages_g, stages_d = _stages(g, G), _stages(d, D)
    # resizing layers: all but G's projection of z and D's last layer (a valid convolution to the single output)
    inner_g = [m for st in stages_g[1:] for m in st if isinstance(m, nn.ConvTranspose2d)]
    inner_d = [m for st in stages_d[:-1] for m in st if isinstance(m, nn.Conv2d)]
    strided = all(m.stride == (2, 2) for m in inner_g + inner_d)

    bn_ok = (len(stages_g) > 1 and len(stages_d) > 1
             and all(followed_by_bn(g, st[-1]) for st in stages_g[:-1]) and not followed_by_bn(g, stages_g[-1][-1])
             and all(followed_by_bn(d, st[-1]) for st in stages_d[1:-1]) and not followed_by_bn(d, stages_d[0][-1]))
    last_d = stages_d[-1][-1] if stages_d else None
    hidden_fc = ([m for st in stages_g[1:] for m in st if isinstance(m, nn.Linear)]
                 + [m for st in stages_d[:-1] for m in st if isinstance(m, nn.Linear)]
                 + ([last_d] if isinstance(last_d, nn.Linear) and last_d.out_features != 1 else []))
    g_acts = [m for m in g if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU))]
    d_acts = [m for m in d if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU))]
    return {
        "no_pooling": not any(isinstance(m, pool_types) for m in g + d) and strided,
        "batch_norm": bn_ok,
        "no_hidden_fc": not hidden_fc,
        "G_relu_tanh": (len(g_acts) > 0 and all(type(a) is nn.ReLU for a in g_acts[:-1])
                        and isinstance(g_acts[-1], nn.Tanh)),
        "D_leaky_relu": (len(d_acts) > 0 and all(isinstance(a, nn.LeakyReLU) and a.negative_slope == LEAK
                                                 for a in d_acts)),
    }


# ============================================================================ training (Sec. 4)
@dataclass
class Config:
    """DCGAN's training hyper-parameters (Sec. 4); the notebook overrides what the course changes (batch 64)."""

    lr_G: float = LR                  # Sec. 4: "we used the Adam optimizer ... learning rate of 0.0002"
    lr_D: float = LR                  # the same for D ("0.001, was too high")
    beta1: float = BETA1              # Sec. 4: "reducing [beta_1] to 0.5 helped stabilize training"
    beta2: float = BETA2              # Adam's default; the paper does not change it
    batch_size: int = BATCH_SIZE      # Sec. 4: "a mini-batch size of 128"
    d_steps: int = 1                  # Goodfellow et al.'s k; DCGAN (and dcgan.torch) take one D step per G step

    def __post_init__(self):
        for name in ("lr_G", "lr_D"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Config.{name} must be > 0, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"Config.{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("batch_size", "d_steps"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"Config.{name} must be an int >= 1, got {getattr(self, name)!r}")


def optimizers(G: nn.Module, D: nn.Module, cfg: Config | None = None):
    """Adam for both players with the paper's settings (Sec. 4): lr 2e-4, betas (0.5, 0.999), or ``cfg``'s."""
    cfg = cfg or Config()
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr_G, betas=(cfg.beta1, cfg.beta2)),
            torch.optim.Adam(D.parameters(), lr=cfg.lr_D, betas=(cfg.beta1, cfg.beta2)))


def train_step(run, G: Generator, D: Discriminator, batches, cfg: Config) -> dict:
    """One DCGAN iteration: chapter 01's Algorithm 1 with k = ``cfg.d_steps``, as the authors' code does it.

    ``cfg.d_steps`` times, a discriminator step on a real batch x and a generated batch G(z), z ~ N(0, I), each
    batch through D on its own (so batch norm normalises real and generated images separately):

        L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]

    then one generator step on the non-saturating loss, on the last generated batch through the freshly updated D:

        L_G = -E_z[log D(G(z))]

    ``run`` is a ``gan_course.training.Run`` with optimisers "G" and "D" (forward passes under ``run.autocast()``,
    updates through ``run.update``); ``batches`` yields (x, label) on its device (labels unused). Returns the
    scalars to log: ``loss_D``, ``loss_G``, and the mean probabilities ``D_real`` = mean D(x) and ``D_fake`` =
    mean D(G(z)) of the last D step.
    """
    for _ in range(cfg.d_steps):
        x, _ = batches.next()
        z = torch.randn(len(x), G.z_dim, device=run.device)
        with run.autocast():
            fake = G(z)
            real_logits, fake_logits = D(x), D(fake.detach())       # detach: L_D does not train G
            loss_D = discriminator_loss(real_logits, fake_logits)    # -log D(x) - log(1 - D(G(z)))
        run.update("D", loss_D)

    set_requires_grad(D, False)                                      # G's step: D is only a function here
    with run.autocast():
        loss_G = generator_loss_nonsaturating(D(fake))               # -log D(G(z)), through the updated D
    run.update("G", loss_G)
    set_requires_grad(D, True)
    return dict(loss_D=loss_D.detach(), loss_G=loss_G.detach(), D_real=torch.sigmoid(real_logits.detach()).mean(),
                D_fake=torch.sigmoid(fake_logits.detach()).mean())
