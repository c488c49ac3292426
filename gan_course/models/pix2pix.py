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
learns relative to G"; Adam with lr 2e-4, beta_1 = 0.5.

What differs from the paper at the course's sizes, all said in the chapter: images of 32x32 (glyphs) or 64x64
(facades) rather than 256x256, so the U-Net has 5 or 6 levels instead of 8 and the PatchGAN fewer layers; batch
size 32 rather than 1 (BatchNorm then uses batch statistics in training and running statistics at test; the
paper's batch-1 BatchNorm is instance normalisation); the bottleneck has no BatchNorm (as in the authors' code:
with batch size 1 and a 1x1 bottleneck it would zero the code).
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ..analysis import ReceptiveField, receptive_field
from ..losses import discriminator_loss, generator_loss_nonsaturating

LAMBDA_L1 = 100.0           # Eq. 4, Sec. 4 ("lambda = 100 in all experiments")
LR, BETA1 = 2e-4, 0.5       # Sec. 3.3, Adam


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

    def __init__(self, in_channels: int = 1, out_channels: int = 1, num_downs: int = 5, ngf: int = 64,
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


def encoder_decoder(in_channels: int = 1, out_channels: int = 1, num_downs: int = 5, ngf: int = 64,
                    **kwargs) -> UNetGenerator:
    """The paper's "encoder-decoder" baseline (Sec. 4.3, Fig. 5): the U-Net with its skip connections removed."""
    return UNetGenerator(in_channels, out_channels, num_downs, ngf, skip=False, **kwargs)


# ============================================================================ the discriminator (Sec. 3.2.2)
class PatchDiscriminator(nn.Module):
    """D(x, y): the PatchGAN, a logit for every N x N patch of the pair (x, y) stacked along channels.

    Appendix 6.1.2: the 70 x 70 discriminator is C64-C128-C256-C512 then a convolution to 1 channel (4x4
    filters; stride 2 in the first ``n_layers`` blocks, 1 in the last C block and the output; no BatchNorm in
    C64; LeakyReLU 0.2). ``n_layers`` sets the depth and so the patch size N: 1 -> 16, 2 -> 34, 3 -> 70,
    5 -> 286 (all with 4x4 filters). ``n_layers=0`` is the 1 x 1 "PixelGAN" (C64-C128 with 1x1 filters).
    Returns (B, 1, H', W') logits; ``sigmoid`` of one entry is D's belief that its patch is real.
    """

    def __init__(self, in_channels: int = 2, ndf: int = 64, n_layers: int = 3, max_mult: int = 8):
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


def generator_loss(fake_logits: torch.Tensor, fake: torch.Tensor, target: torch.Tensor,
                   lambda_l1: float = LAMBDA_L1, use_gan: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
    """G's side of Eq. 4: -log D(x, G(x)) averaged over all patches (non-saturating, Sec. 3.3) + lambda * L1.

    ``use_gan=False`` drops the adversarial term (the "L1 only" row of Table 1); ``lambda_l1 = 0`` gives
    "cGAN only". Returns the loss and its two parts as floats (``gan``, ``l1``) for logging.
    """
    loss_l1 = l1_loss(fake, target)
    loss_gan = generator_loss_nonsaturating(fake_logits) if use_gan else fake.new_zeros(())
    return loss_gan + lambda_l1 * loss_l1, {"gan": float(loss_gan.detach()), "l1": float(loss_l1.detach())}


def discriminator_objective(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's side of Eq. 1 over all patches, divided by 2 (Sec. 3.3, "slows down the rate at which D learns"):

    L_D = 1/2 * ( -E[log D(x, y)] - E[log(1 - D(x, G(x)))] ).
    """
    return 0.5 * discriminator_loss(real_logits, fake_logits)


def train_step(G: nn.Module, D: nn.Module | None, opt_G, opt_D, x: torch.Tensor, y: torch.Tensor,
               lambda_l1: float = LAMBDA_L1, use_gan: bool = True) -> dict[str, float]:
    """One iteration of Sec. 3.3: a step on D (if ``use_gan``), then a step on G, on the pair batch (x, y).

    The chapter's notebook writes the same two steps out inside ``Run``; this function is what the ablations
    ("L1 only", "cGAN only", encoder-decoder) call. Returns the losses as floats.
    """
    fake = G(x)
    out: dict[str, float] = {}
    if use_gan:
        loss_D = discriminator_objective(D(x, y), D(x, fake.detach()))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        out["loss_D"] = loss_D.detach().item()
        for p in D.parameters():
            p.requires_grad_(False)
        fake_logits = D(x, fake)
    else:
        fake_logits = None
    loss_G, parts = generator_loss(fake_logits, fake, y, lambda_l1, use_gan=use_gan)
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    if use_gan:
        for p in D.parameters():
            p.requires_grad_(True)
    out.update(loss_G=loss_G.detach().item(), loss_G_gan=parts["gan"], loss_G_l1=parts["l1"])
    return out


def train(G: nn.Module, D: nn.Module | None, batches, steps: int, lambda_l1: float = LAMBDA_L1,
          use_gan: bool = True, lr: float = LR, betas: tuple[float, float] = (BETA1, 0.999),
          callback: Callable[[int, dict], None] | None = None) -> dict[str, list[float]]:
    """``steps`` iterations of ``train_step`` with fresh Adam optimisers (Sec. 3.3); returns the loss history.

    ``batches`` is a ``gan_course.training.Batches`` over a paired dataset (``(x, y)`` batches). Used for the
    chapter's ablations, which need no checkpoints; the main run goes through ``gan_course.training.Run``.
    """
    if use_gan and D is None:
        raise ValueError("use_gan=True needs a discriminator D")
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas) if use_gan else None
    G.train()
    if D is not None:
        D.train()
    history: dict[str, list[float]] = {}
    for step in range(steps):
        x, y = batches.next()
        losses = train_step(G, D, opt_G, opt_D, x, y, lambda_l1, use_gan)
        for k, v in losses.items():
            history.setdefault(k, []).append(v)
        if callback is not None:
            callback(step, losses)
    return history


# ============================================================================ measuring outputs (Sec. 4)
@torch.no_grad()
def translate(G: nn.Module, x: torch.Tensor, noise_seed: int | None = 0, batch_size: int = 256) -> torch.Tensor:
    """G(x) at test time: eval mode (BatchNorm running statistics), dropout noise as set on G (on by default).

    ``noise_seed`` fixes the dropout masks so the same call gives the same output (None: unseeded). The
    global RNG is restored afterwards.
    """
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    outs = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if noise_seed is not None:
            torch.manual_seed(noise_seed)
        for i in range(0, len(x), batch_size):
            outs.append(G(x[i:i + batch_size].to(device)).cpu())
    G.train(was_training)
    return torch.cat(outs)


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """Per-image sharpness: the variance of the Laplacian (images mapped to [0, 1]), averaged over channels.

    A classic focus measure (Pech-Pacheco et al., 2000): blur removes high frequencies and so shrinks the
    Laplacian's variance. Compare outputs with their targets (a ratio of 1 = as sharp as the real images).
    """
    x = (images.detach().float().cpu() + 1) / 2
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    c = x.shape[1]
    lap = F.conv2d(x, kernel.repeat(c, 1, 1, 1), groups=c)         # valid convolution: no border effects
    return lap.flatten(2).var(dim=2).mean(dim=1)


@torch.no_grad()
def evaluate(G: nn.Module, dataset, n: int | None = None, noise_seed: int = 0) -> dict[str, float]:
    """Test-set numbers for a generator (Sec. 4.2's questions: is it right, and is it sharp?):

    - ``l1``: mean |G(x) - y| per pixel, images in [-1, 1] (Eq. 3's L1, on held-out pairs);
    - ``sharpness``: mean variance of the Laplacian of G(x) and ``sharpness_target`` that of y;
    - ``sharpness_ratio``: their ratio (1 = as sharp as the targets; well below 1 = blurry).
    """
    n = len(dataset) if n is None else min(n, len(dataset))
    x, y = dataset.get_batch(torch.arange(n))
    fake = translate(G, x, noise_seed=noise_seed)
    s_fake, s_real = float(sharpness(fake).mean()), float(sharpness(y).mean())
    return {"l1": float((fake - y).abs().mean()), "sharpness": s_fake, "sharpness_target": s_real,
            "sharpness_ratio": s_fake / s_real}


@torch.no_grad()
def noise_spread(G: nn.Module, x: torch.Tensor, samples: int = 8) -> float:
    """Mean per-pixel standard deviation of G(x) over ``samples`` dropout masks: how much the noise z matters.

    The paper observed "only minor stochasticity in the output of our nets" (Sec. 2.1).
    """
    outs = torch.stack([translate(G, x, noise_seed=s) for s in range(samples)])
    return float(outs.std(dim=0).mean())


# ============================================================================ pictures and explorers
def _show(ax, image: torch.Tensor, title: str | None = None):
    img = ((image.detach().float().cpu() + 1) / 2).clamp(0, 1)
    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="small")


def render_triplets(G: nn.Module, dataset, start: int = 0, n: int = 8, noise_seed: int = 0,
                    show_error: bool = False, title: str | None = None):
    """A figure with test pairs ``start .. start + n - 1``: input x, output G(x), target y (and |G(x) - y|).

    Each output is titled with its own L1 error to the target.
    """
    index = torch.arange(start, min(start + n, len(dataset)))
    x, y = dataset.get_batch(index)
    fake = translate(G, x, noise_seed=noise_seed)
    rows = [("input x", x), ("output G(x)", fake), ("target y", y)]
    if show_error:
        rows.append(("|G(x) - y|", (fake - y).abs().mean(1, keepdim=True) - 1))   # [0, 2] shown as [-1, 1]
    fig, axes = plt.subplots(len(rows), len(index), figsize=(1.35 * len(index) + 0.6, 1.6 * len(rows) + 0.6),
                             squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(len(index)):
            ax = axes[r, c]
            _show(ax, images[c])
            if r == 1:
                ax.set_title(f"L1 {float((fake[c] - y[c]).abs().mean()):.3f}", fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize="small")
    fig.suptitle(title or f"test pairs {int(index[0])}..{int(index[-1])} (dropout seed {noise_seed})")
    fig.supxlabel("test pair")
    fig.tight_layout()
    return fig


def triplet_explorer(G: nn.Module, dataset, n: int = 8, title: str = "Test inputs, outputs and targets"):
    """Explorer over ``render_triplets``: page through the test set, change the dropout noise, show errors."""
    import ipywidgets as widgets

    from ..widgets import explorer, seed_slider

    page = widgets.IntSlider(value=0, min=0, max=max(0, (len(dataset) - 1) // n), step=1, description="page")
    show_error = widgets.Checkbox(value=False, description="show |G(x) - y|")
    return explorer(lambda page, noise_seed, show_error: render_triplets(G, dataset, page * n, n, noise_seed,
                                                                         show_error),
                    title=title, page=page, noise_seed=seed_slider(description="dropout seed"),
                    show_error=show_error)


@torch.no_grad()
def patch_maps(D: nn.Module, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's patch maps, as probabilities sigmoid(D), for the real pairs (x, y) and the generated (x, G(x))."""
    was_training = D.training
    D.eval()
    real, gen = torch.sigmoid(D(x, y)), torch.sigmoid(D(x, fake))
    D.train(was_training)
    return real.cpu(), gen.cpu()


def render_patch_map(D: nn.Module, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor, unit: tuple[int, int] | None = None,
                     title: str | None = None):
    """One pair, what D outputs for it: x, y with the receptive field of one patch unit drawn on it, D's map on
    (x, y), G(x) with the same square, and D's map on (x, G(x)). ``x, y, fake`` are single images (C, H, W).
    """
    rf = receptive_field(D.net)
    real_map, fake_map = patch_maps(D, x[None], y[None], fake[None])
    real_map, fake_map = real_map[0, 0], fake_map[0, 0]
    h, w = real_map.shape
    i, j = unit if unit is not None else (h // 2, w // 2)
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.8))
    _show(axes[0], x, "input x")
    for ax, image, name in ((axes[1], y, "real y"), (axes[3], fake, "G(x)")):
        _show(ax, image, f"{name}\nred: the {rf.size}x{rf.size} field of unit ({i}, {j})")
        top, left = rf.start + i * rf.jump - rf.size / 2, rf.start + j * rf.jump - rf.size / 2
        ax.add_patch(plt.Rectangle((left, top), rf.size, rf.size, fill=False, color="red", lw=2,
                                   clip_on=True))
        ax.set_xlim(-0.5, image.shape[-1] - 0.5)
        ax.set_ylim(image.shape[-2] - 0.5, -0.5)
    for ax, m, name in ((axes[2], real_map, "D(x, y)"), (axes[4], fake_map, "D(x, G(x))")):
        im = ax.imshow(m.numpy(), cmap="RdBu", vmin=0, vmax=1, interpolation="nearest")
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, color="black", lw=2))
        ax.set_title(f"{name}\n{h}x{w} patches, mean {float(m.mean()):.2f}", fontsize="small")
        ax.set_xlabel("patch column")
        ax.set_ylabel("patch row")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.colorbar(im, ax=list(axes), fraction=0.02, label="D = P(patch is real)")
    fig.suptitle(title or f"PatchGAN: {rf.size}x{rf.size} patches, one every {rf.jump} pixels")
    return fig
