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

This module holds the chapter's networks and tools, top to bottom:

- ``GBlock`` / ``DBlock``: the residual blocks of SN-GAN / SAGAN (up-sampling with class-conditional BN in G,
  down-sampling in D);
- ``Generator``: z, y -> image, one ``SelfAttention2d`` at ``attn_res`` (16 x 16 for 32 x 32 images);
- ``Discriminator``: x, y -> D(x, y) = psi(phi(x)) + embed(y)^T phi(x), one ``SelfAttention2d`` at ``attn_res``;
- training: ``optimizers`` (TTUR), ``sample`` / ``sampler`` (for ``gan_course.metrics``), ``Monitor`` (FID and
  class coverage with the course classifier, sample snapshots and singular-value spectra over training, all
  checkpointed with the run) and ``train`` (the chapter's update step, packaged for the stabilisation experiment);
- attention: ``attention_maps`` (beta from every attention block, by forward hooks), ``mean_attention_distance``,
  ``attention_beyond``, ``receptive_field``, ``conv_attention`` / ``uniform_attention`` (baselines),
  ``shape_mask`` / ``attention_on_region`` (does a query inside the shape look at the shape?);
- spectral normalisation, measured: ``effective_weight`` / ``raw_weight``, ``spectral_report`` (sigma of W and of
  W / sigma(W) by SVD), ``conv_operator_norm`` (the conv's true Lipschitz constant), ``SpectrumRecorder``;
- the explorers: ``render_attention`` / ``attention_explorer`` and ``render_spectra`` / ``spectrum_explorer``.

The building blocks (``SelfAttention2d``, ``spectral_norm``, ``ConditionalBatchNorm2d``) come from
``gan_course.layers``, the hinge loss from ``gan_course.losses``, the singular values from
``gan_course.analysis.top_singular_values``.

Differences from the paper, all small-scale choices said in the chapter: 32 x 32 images with widths ``ch = 16``
(the paper: 128 x 128, ch = 64), one attention block per network (the paper's ImageNet model has one at
feat32 of 128, i.e. a quarter of the image side; here it is G's 16 x 16 map, half the side, and D's 8 x 8), and
G's update reuses the batch generated for D's step (one G forward less per iteration, as in chapter 03).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ..analysis import top_singular_values
from ..layers import ConditionalBatchNorm2d, SelfAttention2d, spectral_norm
from ..losses import hinge_discriminator_loss, hinge_generator_loss

__all__ = ["Z_DIM", "LR_G", "LR_D", "BETAS", "GBlock", "DBlock", "Generator", "Discriminator", "optimizers",
           "sample", "sampler", "Monitor", "train", "attention_maps", "mean_attention_distance", "attention_beyond",
           "receptive_field", "conv_attention", "uniform_attention", "shape_mask", "attention_on_region",
           "effective_weight", "raw_weight", "weight_layers", "spectral_report", "conv_operator_norm",
           "SpectrumRecorder", "render_attention", "attention_explorer", "render_spectra", "spectrum_explorer"]

Z_DIM = 128          # Sec. 5 / the official code: z in R^128, N(0, I)
LR_G = 1e-4          # Sec. 4 (TTUR): "0.0001 for the generator"
LR_D = 4e-4          # Sec. 4 (TTUR): "0.0004 for the discriminator"
BETAS = (0.0, 0.9)   # Sec. 5: "Adam optimizer with beta_1 = 0 and beta_2 = 0.9"


def _conv(in_channels: int, out_channels: int, kernel_size: int, sn: bool) -> nn.Module:
    """A ``kernel_size`` conv ('same' padding), orthogonally initialised (as in BigGAN), spectrally normalised if ``sn``.

    The weight is initialised *before* spectral norm is applied, so that the power-iteration vector u that
    ``spectral_norm`` prepares belongs to the final initial weight.
    """
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    nn.init.orthogonal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return spectral_norm(conv) if sn else conv


def _linear(in_features: int, out_features: int, sn: bool, bias: bool = True) -> nn.Module:
    linear = nn.Linear(in_features, out_features, bias=bias)
    nn.init.orthogonal_(linear.weight)
    if bias:
        nn.init.zeros_(linear.bias)
    return spectral_norm(linear) if sn else linear


def _class_bn(channels: int, n_classes: int) -> ConditionalBatchNorm2d:
    """cBN(x, y) = (1 + gamma_y) BN(x) + beta_y with one (gamma_y, beta_y) per class, both starting at 0: a fresh
    layer is plain batch norm (the official code initialises the per-class scales to 1 and shifts to 0)."""
    bn = ConditionalBatchNorm2d(channels, n_classes, sn=False)
    nn.init.zeros_(bn.gain.weight)
    nn.init.zeros_(bn.bias.weight)
    return bn


# --------------------------------------------------------------------------- residual blocks (SN-GAN, SAGAN)
class GBlock(nn.Module):
    """Generator residual block with class-conditional batch norm, doubling the resolution.

        h = conv3x3(relu(cBN_2(conv3x3(up(relu(cBN_1(x, y)))), y)))
        out = h + conv1x1(up(x))

    cBN(x, y) = (1 + gamma_y) * BN(x) + beta_y: per-class gain and bias (de Vries et al., 2017), the
    conditional BN of SN-GAN and SAGAN. ``ConditionalBatchNorm2d`` predicts them from a condition vector; fed a
    one-hot y (``cond_dim = n_classes``), its linear maps are exactly one learned (gamma_y, beta_y) per class.
    Those class tables are not spectrally normalised (as in SAGAN's code); the convolutions are when ``sn``.
    """

    def __init__(self, in_channels: int, out_channels: int, n_classes: int, sn: bool = True):
        super().__init__()
        self.bn1 = _class_bn(in_channels, n_classes)
        self.conv1 = _conv(in_channels, out_channels, 3, sn)
        self.bn2 = _class_bn(out_channels, n_classes)
        self.conv2 = _conv(out_channels, out_channels, 3, sn)
        self.shortcut = _conv(in_channels, out_channels, 1, sn)

    def forward(self, x: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x, y_onehot))
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv1(h)
        h = self.conv2(F.relu(self.bn2(h, y_onehot)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """Discriminator residual block, halving the resolution when ``downsample`` (no batch norm in D).

        h = pool(conv3x3(relu(conv3x3(a(x)))))           a = relu, or the identity in the first block
        out = h + pool(conv1x1(x))                        (first block: conv1x1(pool(x)), SN-GAN's "optimised block")

    The first block takes the image itself, so it must not apply relu to it (that would discard the negative
    half of [-1, 1]).
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = True, first: bool = False,
                 sn: bool = True):
        super().__init__()
        self.conv1 = _conv(in_channels, out_channels, 3, sn)
        self.conv2 = _conv(out_channels, out_channels, 3, sn)
        self.learn_shortcut = downsample or in_channels != out_channels
        self.shortcut = _conv(in_channels, out_channels, 1, sn) if self.learn_shortcut else None
        self.downsample, self.first = downsample, first

    def _pool(self, x):
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
    generator ("SN on D only"). ``attention=False`` removes the block (for comparisons).
    """

    def __init__(self, z_dim: int = Z_DIM, n_classes: int = 10, ch: int = 16, image_size: int = 32,
                 attn_res: int = 16, out_channels: int = 3, sn: bool = True, attention: bool = True):
        super().__init__()
        n_blocks = int(math.log2(image_size // 4))
        if 4 * 2 ** n_blocks != image_size:
            raise ValueError(f"image_size must be 4 * 2^k (32, 64, 128), got {image_size}")
        mults = [4] * (n_blocks + 1 - 3) + [4, 2, 1] if n_blocks >= 3 else [4, 2, 1][-(n_blocks + 1):]
        widths = [ch * m for m in mults]  # widths[i]: channels at resolution 4 * 2^i
        self.z_dim, self.n_classes, self.image_size, self.attn_res, self.sn = z_dim, n_classes, image_size, attn_res, sn
        self.linear = _linear(z_dim, widths[0] * 4 * 4, sn)
        self.blocks = nn.ModuleList(GBlock(widths[i], widths[i + 1], n_classes, sn) for i in range(n_blocks))
        self.resolutions = [4 * 2 ** (i + 1) for i in range(n_blocks)]  # resolution after each block
        self.attention = None
        if attention:
            if attn_res not in self.resolutions:
                raise ValueError(f"attn_res must be one of {self.resolutions}, got {attn_res}")
            self.attention = SelfAttention2d(widths[self.resolutions.index(attn_res) + 1], sn=sn)
        self.bn = nn.BatchNorm2d(widths[-1])
        self.to_rgb = _conv(widths[-1], out_channels, 3, sn)

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
    """

    def __init__(self, n_classes: int = 10, ch: int = 16, image_size: int = 32, attn_res: int = 8,
                 in_channels: int = 3, sn: bool = True, attention: bool = True):
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
        self.attention = None
        if attention:
            if attn_res not in self.resolutions[:-1]:
                raise ValueError(f"attn_res must be one of {self.resolutions[:-1]}, got {attn_res}")
            self.attention = SelfAttention2d(widths[self.resolutions.index(attn_res)], sn=sn)
        self.features_dim = widths[n_down - 1]
        self.psi = _linear(self.features_dim, 1, sn)
        embed = nn.Embedding(n_classes, self.features_dim)
        nn.init.orthogonal_(embed.weight)
        self.embed = spectral_norm(embed) if sn else embed

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
def optimizers(G: nn.Module, D: nn.Module, lr_G: float = LR_G, lr_D: float = LR_D, betas=BETAS):
    """Adam for both players; TTUR (Sec. 4) is simply lr_D = 4 lr_G with one D step per G step."""
    betas = tuple(float(b) for b in betas)
    return (torch.optim.Adam(G.parameters(), lr=lr_G, betas=betas),
            torch.optim.Adam(D.parameters(), lr=lr_D, betas=betas))


@torch.no_grad()
def sample(G: Generator, z: torch.Tensor, y: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """G(z, y) in eval mode (batch norm's running statistics; spectral norm's u is not stepped), in batches, on
    the CPU; G's mode is restored afterwards."""
    was = G.training
    G.eval()
    device = next(G.parameters()).device
    try:
        return torch.cat([G(z[i:i + batch_size].to(device), y[i:i + batch_size].to(device)).cpu()
                          for i in range(0, len(z), batch_size)])
    finally:
        G.train(was)


def sampler(G: Generator, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """``n -> n samples`` with balanced labels 0, 1, ..., K-1, 0, ... and z ~ N(0, I) from a seeded generator: the
    form ``gan_course.metrics`` takes. The same ``(seed, n)`` gives the same z and y, so an FID curve over
    training follows one fixed set of latent vectors."""
    def sample_fn(n: int) -> torch.Tensor:
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
        return sample(G, z, torch.arange(n) % G.n_classes)
    return sample_fn


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class Monitor:
    """What the chapter measures during training, at the steps it is asked to (all of it checkpointed with the run).

    ``record(step)`` stores, after ``step`` generator updates:

    - ``fid`` and ``classes_covered``: ``gan_course.metrics.evaluate`` with the dataset's course classifier on
      ``n`` samples of ``sampler(G, seed)`` (a fixed set of z, balanced classes) against ``n`` training images
      (loaded with ``data_options``, e.g. ``{"layout": "centred"}``);
    - ``snapshots``: G(z_fixed, y_fixed) as uint8 images, to compare runs at equal budgets;
    - the singular values of every weight of G and D (``SpectrumRecorder``).

    Attach it to the ``Run`` (``run.attach(monitor=monitor)``) so a resumed run keeps its curves.
    """

    def __init__(self, G: Generator, D: Discriminator, dataset: str, z_fixed: torch.Tensor, y_fixed: torch.Tensor,
                 n: int = 500, seed: int = 1, spectra: bool = True, device="cpu", data_options: dict | None = None):
        self.G, self.D, self.dataset, self.n, self.seed, self.device = G, D, dataset, n, seed, device
        self.data_options = dict(data_options or {})
        self.z_fixed, self.y_fixed = z_fixed.cpu(), y_fixed.cpu()
        self.steps: list[int] = []
        self.fid: list[float] = []
        self.classes_covered: list[int] = []
        self.snapshots: list[torch.Tensor] = []
        self.spectra = {"G": SpectrumRecorder(G), "D": SpectrumRecorder(D)} if spectra else {}

    def record(self, step: int) -> dict:
        """Measure now (after ``step`` updates); returns ``{"fid": ..., "classes_covered": ...}`` for ``run.log``."""
        from ..metrics import evaluate

        m = evaluate(sampler(self.G, self.seed), self.dataset, n=self.n, kid_subset_size=min(1000, self.n),
                     kid_subsets=10, data_options=self.data_options, device=self.device)
        self.steps.append(int(step))
        self.fid.append(float(m["fid"]))
        self.classes_covered.append(int(m["classes_covered"]))
        self.snapshots.append(_to_uint8(sample(self.G, self.z_fixed, self.y_fixed)))
        for recorder in self.spectra.values():
            recorder.record(step)
        return {"fid": self.fid[-1], "classes_covered": self.classes_covered[-1]}

    def at(self, step: int) -> dict:
        """The measurements taken at ``step``: fid, classes_covered and the snapshot as float images in [-1, 1]."""
        i = self.steps.index(step)
        return {"fid": self.fid[i], "classes_covered": self.classes_covered[i],
                "samples": self.snapshots[i].float() / 127.5 - 1}

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "fid": list(self.fid), "classes_covered": list(self.classes_covered),
                "snapshots": list(self.snapshots), "spectra": {k: r.state_dict() for k, r in self.spectra.items()}}

    def load_state_dict(self, state: dict):
        self.steps, self.fid = list(state["steps"]), list(state["fid"])
        self.classes_covered, self.snapshots = list(state["classes_covered"]), list(state["snapshots"])
        for k, r in self.spectra.items():
            r.load_state_dict(state["spectra"][k])


def train(name: str, G: Generator, D: Discriminator, dataset, steps: int, *, batch_size: int = 32,
          lr_G: float = LR_G, lr_D: float = LR_D, betas=BETAS, n_dis: int = 1, seed: int = 0, device="cpu",
          monitor: Monitor | None = None, eval_every: int = 100, progress: bool = True, live: bool | None = None,
          config: dict | None = None):
    """Train (G, D) for ``steps`` iterations of SAGAN's update and return the ``Run``; the notebook's main loop is
    this step written out.

    One iteration: ``n_dis`` D steps on the hinge loss L_D (each on a real batch (x, y) and G(z, y) for the same
    labels y; SAGAN uses n_dis = 1), then one G step on L_G = -E[D(G(z), y)] through the updated D, on the last
    generated batch. Logs ``loss_D``,
    ``loss_G``, ``D_real`` = mean D(x, y), ``D_fake`` = mean D(G(z), y) and the attention gates ``gamma_G``,
    ``gamma_D``; with a ``monitor``, records it before
    training and every ``eval_every`` steps (and logs ``fid`` / ``classes_covered``). Runs through
    ``gan_course.training.Run`` (checkpoints under ``build/runs/<name>``, resumed if the configuration matches).
    """
    from ..training import Batches, Run, set_requires_grad

    device = torch.device(device)
    G.to(device).train()
    D.to(device).train()
    opt_G, opt_D = optimizers(G, D, lr_G, lr_D, betas)
    cfg = dict(batch_size=batch_size, lr_G=lr_G, lr_D=lr_D, betas=list(betas), n_dis=n_dis, seed=seed, sn_G=G.sn,
               sn_D=D.sn,
               eval_every=eval_every if monitor else 0, **(config or {}))
    run = Run(name, {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, config=cfg, device=device, progress=progress,
              live=live)
    batches = run.attach(batches=Batches(dataset, batch_size, seed=seed, device=device))
    if monitor is not None:
        run.attach(monitor=monitor)
        if not monitor.steps:
            monitor.record(0)
    for _ in run.steps(steps):
        for _ in range(n_dis):
            x, y = batches.next()
            z = torch.randn(batch_size, G.z_dim, device=device)
            x_fake = G(z, y)
            d_real, d_fake = D(x, y), D(x_fake.detach(), y)
            loss_D = hinge_discriminator_loss(d_real, d_fake)    # E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]
            run.update("D", loss_D)
        set_requires_grad(D, False)
        loss_G = hinge_generator_loss(D(x_fake, y))               # -E[D(G(z))]
        run.update("G", loss_G)
        set_requires_grad(D, True)
        run.log(loss_D=loss_D, loss_G=loss_G, D_real=d_real.mean(), D_fake=d_fake.mean(),
                **{f"gamma_{k}": m.attention.gamma for k, m in (("G", G), ("D", D)) if m.attention is not None})
        if monitor is not None and run.every(eval_every):
            run.log(**monitor.record(run.step + 1))
    return run


# --------------------------------------------------------------------------- looking at the attention
def attention_maps(model: nn.Module, *inputs, **kwargs):
    """Run ``model(*inputs, **kwargs)`` and collect beta from every ``SelfAttention2d`` inside it.

    Returns ``(output, maps)`` with ``maps[name] = beta`` of shape (B, N_queries, N_keys), rows summing to 1
    (beta[b, j, i] = beta_{j,i}, the weight query position j gives to position i, Sec. 3). A forward hook on
    each block recomputes the block on its own input with ``return_attention=True`` (with the block in eval
    mode, so spectral norm's power iteration is not stepped twice); the model's output is unchanged.
    """
    maps, handles = {}, []

    def hook(name):
        def fn(module, args, output):
            was_training = module.training
            module.eval()
            try:
                maps[name] = module.forward(args[0], return_attention=True)[1].detach()
            finally:
                module.train(was_training)
        return fn

    for name, module in model.named_modules():
        if isinstance(module, SelfAttention2d):
            handles.append(module.register_forward_hook(hook(name)))
    if not handles:
        raise ValueError(f"{type(model).__name__} has no SelfAttention2d block")
    try:
        output = model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return output, maps


def _grid(n: int, image_size: int) -> torch.Tensor:
    """Pixel coordinates (row, col) of the centres of an s x s grid (s = sqrt(n)) covering the image: (n, 2)."""
    s = math.isqrt(n)
    if s * s != n:
        raise ValueError(f"expected a square grid of positions, got {n}")
    step = image_size / s
    r, c = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    return torch.stack([(r.flatten() + 0.5) * step, (c.flatten() + 0.5) * step], dim=1).double()


def mean_attention_distance(beta: torch.Tensor, image_size: int, per_query: bool = False) -> torch.Tensor:
    """Expected distance, in image pixels, between a query and where it looks: mean_j sum_i beta_{j,i} |p_i - p_j|.

    ``beta``: (N_q, N_k) or (B, N_q, N_k), rows summing to 1, queries and keys on square grids laid over an
    ``image_size`` image (keys may be on a coarser grid, as with ``pool=True``); |.| is the Euclidean distance
    between grid-cell centres. Returns the mean over queries (and the batch), or the (B, N_q) map with
    ``per_query=True``.
    """
    squeeze = beta.dim() == 2
    b = beta.unsqueeze(0) if squeeze else beta
    q, k = _grid(b.shape[1], image_size), _grid(b.shape[2], image_size)
    dist = torch.cdist(q, k)  # (N_q, N_k)
    per = (b.double() * dist).sum(-1)  # (B, N_q)
    if per_query:
        return (per[0] if squeeze else per).float()
    return per.mean().float()


def attention_beyond(beta: torch.Tensor, image_size: int, window: float) -> float:
    """The share of attention that lands outside a ``window`` x ``window`` pixel square centred on each query:
    mean_j sum_{i : |p_i - p_j|_inf > window / 2} beta_{j,i}.

    With ``window`` the receptive field of the features the block receives (``receptive_field``), this is the
    part of what a query gathers that no convolution below it could have brought to that position.
    """
    b = beta.unsqueeze(0) if beta.dim() == 2 else beta
    q, k = _grid(b.shape[1], image_size), _grid(b.shape[2], image_size)
    outside = ((q[:, None, :] - k[None, :, :]).abs().amax(-1) > window / 2).to(b.dtype)  # (N_q, N_k)
    return float((b * outside).sum(-1).mean())


def receptive_field(features: Callable[[torch.Tensor], torch.Tensor], image_size: int = 32, channels: int = 3,
                    seed: int = 0) -> int:
    """The receptive field, in pixels, of the centre position of ``features(x)`` (a (1, C, h, w) map).

    Measured, not derived: the side of the square of input pixels with a non-zero gradient
    d features[:, :, h/2, w/2] / d x at a random input. For stacks of convolutions and pooling this is the
    theoretical receptive field (the effective one, where the gradient is large, is smaller).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, channels, image_size, image_size, generator=g, requires_grad=True)
    h = features(x)
    h[:, :, h.shape[-2] // 2, h.shape[-1] // 2].abs().sum().backward()
    support = x.grad[0].abs().sum(0) > 0
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    return int(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


def conv_attention(size: int, kernel_size: int = 3) -> torch.Tensor:
    """The "attention map" of a k x k convolution with equal weights: each query spreads 1/k^2 over its k x k
    neighbourhood (renormalised at the borders). (N, N) for an ``size`` x ``size`` grid: the baseline a
    convolution layer's receptive field gives."""
    n = size * size
    r, c = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r, c = r.flatten(), c.flatten()
    near = ((r[:, None] - r[None, :]).abs() <= kernel_size // 2) & ((c[:, None] - c[None, :]).abs() <= kernel_size // 2)
    beta = near.double()
    return (beta / beta.sum(1, keepdim=True)).float().reshape(n, n)


def uniform_attention(n_queries: int, n_keys: int | None = None) -> torch.Tensor:
    """Every query looks everywhere equally: beta_{j,i} = 1 / N_keys."""
    n_keys = n_keys or n_queries
    return torch.full((n_queries, n_keys), 1.0 / n_keys)


def shape_mask(images: torch.Tensor, size: int, threshold: float = 0.4) -> torch.Tensor:
    """Where the coloured shape is, on a ``size`` x ``size`` grid, for the ``shapes`` dataset: (B, size^2) bool.

    The backgrounds are grey (R = G = B) and the shapes saturated, so a cell belongs to the shape when the
    spread max(R, G, B) - min(R, G, B) of its average colour (in [-1, 1] units) exceeds ``threshold``.
    """
    pooled = F.adaptive_avg_pool2d(images.float(), size)
    spread = pooled.max(dim=1).values - pooled.min(dim=1).values
    return (spread > threshold).flatten(1)


def attention_on_region(beta: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """How much attention queries inside a region give to that region, against its area.

    ``beta`` (B, N, N), ``mask`` (B, N) bool. For queries j inside the mask: mean_j sum_{i in mask} beta_{j,i}
    ("inside_to_inside"); for queries outside: the mass they give to the outside ("outside_to_outside");
    with the area fractions that uniform attention would give ("inside_area", "outside_area").
    """
    m = mask.to(beta.dtype)
    mass_in = (beta * m[:, None, :]).sum(-1)  # (B, N): mass each query puts inside
    inside, outside = mask, ~mask
    out = {
        "inside_to_inside": float(mass_in[inside].mean()) if inside.any() else float("nan"),
        "outside_to_outside": float((1 - mass_in)[outside].mean()) if outside.any() else float("nan"),
        # what a query sees under uniform attention, averaged over the same queries
        "inside_area": float(m.mean(1, keepdim=True).expand_as(m)[inside].mean()) if inside.any() else float("nan"),
        "outside_area": float((1 - m.mean(1, keepdim=True)).expand_as(m)[outside].mean())
        if outside.any() else float("nan"),
    }
    return out


# --------------------------------------------------------------------------- spectral normalisation, measured
def _is_sn(module: nn.Module) -> bool:
    return hasattr(module, "parametrizations") and "weight" in module.parametrizations


def raw_weight(module: nn.Module) -> torch.Tensor:
    """The weight the optimiser updates: W itself, or the unnormalised W of a spectrally normalised layer."""
    return module.parametrizations.weight.original if _is_sn(module) else module.weight


@torch.no_grad()
def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the layer applies: W / sigma_hat(W) for a spectrally normalised layer, W otherwise.

    sigma_hat = u^T W v is spectral norm's running power-iteration estimate. Reading ``module.weight`` in training
    mode would step the power iteration (and change the layer); here the parametrisation is read in eval mode.
    """
    if not _is_sn(module):
        return module.weight.detach()
    sn = module.parametrizations.weight[0]
    was = sn.training
    sn.eval()
    try:
        return module.weight.detach().clone()
    finally:
        sn.train(was)


def weight_layers(model: nn.Module):
    """(name, module) for every conv, linear and embedding layer of ``model`` except the per-class tables of
    conditional batch norm: the layers spectral normalisation applies to in SAGAN."""
    skip = {f"{name}." for name, m in model.named_modules() if isinstance(m, ConditionalBatchNorm2d)}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)) and not any(name.startswith(s) for s in skip):
            yield name, module


def conv_operator_norm(conv: nn.Conv2d, size: int, iters: int = 50, seed: int = 0) -> float:
    """The true Lipschitz constant (spectral norm) of a conv layer acting on ``size`` x ``size`` inputs.

    Spectral normalisation divides by sigma of the weight reshaped to (out, in * k * k); the linear map the
    convolution applies to a whole feature map has a different norm (up to k times larger, Sedghi et al.,
    2019). Estimated by power iteration on x -> conv(x) (bias removed) and its adjoint.
    """
    weight = effective_weight(conv)
    padding = conv.padding
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, weight.shape[1], size, size, generator=g, dtype=weight.dtype)
    sigma = 0.0
    for _ in range(iters):
        x = x / x.norm()
        y = F.conv2d(x, weight, padding=padding)
        sigma = float(y.norm())
        x = F.conv_transpose2d(y, weight, padding=padding)
    return sigma


@torch.no_grad()
def spectral_report(model: nn.Module, conv_size: dict[str, int] | None = None) -> list[dict]:
    """For every spectrally normalised layer of ``model``, one dict:

    - ``sigma_raw``: sigma(W) of the raw weight, exact (``torch.linalg.svdvals`` of W reshaped to (out, -1));
    - ``sigma_hat``: spectral norm's power-iteration estimate u^T W v (one step per training forward);
    - ``sigma_sn``: sigma(W / sigma_hat(W)), exact: ~1 once u has converged;
    - ``conv_operator_norm`` for convs whose input size is given in ``conv_size[name]``.

    Nothing is changed (the power iteration is not stepped).
    """
    rows = []
    for name, module in weight_layers(model):
        if not _is_sn(module):
            continue
        W = raw_weight(module).detach()
        sn = module.parametrizations.weight[0]
        row = {"layer": name, "shape": tuple(W.shape),
               "sigma_raw": float(top_singular_values(W, k=1)[0]),
               "sigma_hat": float(sn._u @ (W.flatten(1) @ sn._v)),
               "sigma_sn": float(top_singular_values(effective_weight(module), k=1)[0])}
        if conv_size and name in conv_size and isinstance(module, nn.Conv2d):
            row["conv_operator_norm"] = conv_operator_norm(module, conv_size[name])
        rows.append(row)
    return rows


class SpectrumRecorder:
    """The singular values of every weight of a model over training (BigGAN Sec. 4 records sigma_0 the same way).

    ``record(step)`` stores, for each layer of ``weight_layers(model)``, the whole spectrum of the weight the layer
    applies (``effective``: W / sigma_hat for spectrally normalised layers, whose sigma_0 stays ~1) and, for those,
    of the raw weight the optimiser moves (``raw``). ``state_dict`` / ``load_state_dict`` make it checkpointable.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = [name for name, _ in weight_layers(model)]
        self.normalised = {name: _is_sn(m) for name, m in weight_layers(model)}
        self.steps: list[int] = []
        self.effective: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self.raw: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}

    @torch.no_grad()
    def record(self, step: int):
        self.steps.append(int(step))
        for name, module in weight_layers(self.model):
            self.effective[name].append(top_singular_values(effective_weight(module), k=None).cpu())
            if self.normalised[name]:
                self.raw[name].append(top_singular_values(raw_weight(module), k=None).cpu())

    def top(self, layer: str, k: int = 3, raw: bool = False) -> torch.Tensor:
        """sigma_0..sigma_{k-1} of ``layer`` at every recorded step: (T, k)."""
        values = (self.raw if raw else self.effective)[layer]
        return torch.stack([v[:k] for v in values]) if values else torch.empty(0, k)

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "effective": {k: list(v) for k, v in self.effective.items()},
                "raw": {k: list(v) for k, v in self.raw.items()}}

    def load_state_dict(self, state: dict):
        self.steps = list(state["steps"])
        self.effective = {k: list(v) for k, v in state["effective"].items()}
        self.raw = {k: list(v) for k, v in state["raw"].items()}


# --------------------------------------------------------------------------- the explorers
def _query_cell(x: int, y: int, size: int, grid: int) -> tuple[int, int]:
    """The (row, col) cell of a ``grid`` x ``grid`` map that contains pixel (x, y) of a ``size`` image."""
    if not (0 <= x < size and 0 <= y < size):
        raise ValueError(f"query pixel (x, y) must be inside the {size} x {size} image, got ({x}, {y})")
    return y * grid // size, x * grid // size


def render_attention(image: torch.Tensor, beta: torch.Tensor, x: int, y: int, title: str = "", alpha: float = 0.6,
                     window: float | None = None):
    """Three panels: the image with the query marked, the attention of that query over the image (overlay), and
    the attention map alone; with this query's mean attention distance.

    ``image`` (C, S, S) in [-1, 1]; ``beta`` (N_q, N_k) for one image (queries and keys on square grids); the
    query is the grid cell containing pixel (x, y). ``window``: draw a square of that many pixels around the
    query (e.g. the receptive field of the features the attention block receives). Returns the Figure.
    """
    from matplotlib.patches import Rectangle

    from ..viz import to_unit

    size = image.shape[-1]
    hq, hk = math.isqrt(beta.shape[0]), math.isqrt(beta.shape[1])
    row, col = _query_cell(x, y, size, hq)
    j = row * hq + col
    heat = beta[j].reshape(1, 1, hk, hk).float()
    heat_img = F.interpolate(heat, size=(size, size), mode="nearest")[0, 0]
    picture = to_unit(image).permute(1, 2, 0).squeeze(-1).numpy()
    cmap = "gray" if picture.ndim == 2 else None
    cell = size / hq
    centre = ((col + 0.5) * cell - 0.5, (row + 0.5) * cell - 0.5)  # (x, y) in imshow coordinates
    distance = float(mean_attention_distance(beta, size, per_query=True)[j])

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    axes[0].imshow(picture, cmap=cmap, interpolation="nearest")
    axes[0].set_title("sample and query")
    axes[1].imshow(picture, cmap=cmap, interpolation="nearest")
    axes[1].imshow(heat_img.numpy(), cmap="inferno", alpha=alpha, interpolation="nearest")
    axes[1].set_title("attention over the image")
    im = axes[2].imshow(beta[j].reshape(hk, hk).float().numpy(), cmap="inferno", interpolation="nearest",
                        extent=(-0.5, size - 0.5, size - 0.5, -0.5))
    axes[2].set_title(f"beta_(j,i), query cell ({row},{col}) of {hq}x{hq}")
    fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.04, label="attention weight")
    for ax in axes:
        ax.plot(*centre, marker="x", color="cyan", markersize=10, markeredgewidth=2.5)
        if window:
            ax.add_patch(Rectangle((centre[0] - window / 2, centre[1] - window / 2), window, window, fill=False,
                                   edgecolor="cyan", linestyle="--", linewidth=1))
        ax.set_xlim(-0.5, size - 0.5)
        ax.set_ylim(size - 0.5, -0.5)
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    fig.suptitle(f"{title}  mean attention distance of this query: {distance:.1f} px".strip())
    fig.tight_layout()
    return fig


def attention_explorer(images: torch.Tensor, maps: dict[str, torch.Tensor], labels: list[str] | None = None,
                       windows: dict[str, float] | None = None,
                       title: str = "Where does a query look? (SAGAN attention, Sec. 3)"):
    """Explorer over ``images`` (B, C, S, S) and their attention ``maps`` ({layer name: beta (B, N_q, N_k)}):
    choose a sample, a layer and a query pixel (x, y) and see where the query's cell looks. ``windows`` (pixels,
    per layer) draws the receptive field of that layer's input around the query."""
    import ipywidgets as widgets

    from ..widgets import choice, explorer

    size = images.shape[-1]
    windows = windows or {}

    def render(sample, layer, x, y):
        label = f"sample {sample}" + (f" ({labels[sample]})" if labels else "") + f", {layer}."
        return render_attention(images[sample], maps[layer][sample], x, y, title=label, window=windows.get(layer))

    return explorer(
        render, title=title,
        sample=widgets.IntSlider(value=0, min=0, max=images.shape[0] - 1, description="sample"),
        layer=choice(list(maps), description="layer"),
        x=widgets.IntSlider(value=size // 2, min=0, max=size - 1, description="query x"),
        y=widgets.IntSlider(value=size // 2, min=0, max=size - 1, description="query y"),
    )


def render_spectra(spectra: dict[str, SpectrumRecorder], layer: str, step: int, k: int = 3, title: str = ""):
    """Two panels for one layer in several runs (``spectra[run] = SpectrumRecorder``):

    left, sigma_0..sigma_{k-1} of the applied weight over training (solid; dotted: the raw weight of a spectrally
    normalised layer, sigma_0 only); right, the whole spectrum at the last recorded step <= ``step``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, (run, rec) in enumerate(spectra.items()):
        if layer not in rec.effective or not rec.steps:
            continue
        color = colors[c % len(colors)]
        sn = " (SN)" if rec.normalised[layer] else " (no SN)"
        top = rec.top(layer, k)
        for i in range(top.shape[1]):
            axes[0].plot(rec.steps, top[:, i].numpy(), color=color, alpha=1.0 - 0.3 * i,
                         lw=2 if i == 0 else 1, label=f"{run}{sn}: sigma_0..{k - 1}" if i == 0 else None)
        if rec.normalised[layer]:
            axes[0].plot(rec.steps, rec.top(layer, 1, raw=True)[:, 0].numpy(), color=color, ls=":",
                         label=f"{run}: sigma_0 of the raw W")
        past = [i for i, s in enumerate(rec.steps) if s <= step] or [0]
        i = past[-1]
        spectrum = rec.effective[layer][i].numpy()
        axes[1].plot(range(len(spectrum)), spectrum, "o-", ms=3, color=color, label=f"{run}{sn}, step {rec.steps[i]}")
    axes[0].axvline(step, color="gray", lw=0.8, ls="--")
    axes[0].set(xlabel="step", ylabel="singular value", yscale="log",
                title=f"top {k} singular values of {layer}")
    axes[1].set(xlabel="index i (sorted)", ylabel="sigma_i", yscale="log", title=f"whole spectrum at step <= {step}")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def spectrum_explorer(spectra: dict[str, dict[str, SpectrumRecorder]],
                      title: str = "Singular values of every weight, over training"):
    """Explorer over ``spectra[run][net]`` (net: "G" or "D"; e.g. ``{run: monitor.spectra}``): pick a layer
    ("G/blocks.0.conv1", ...) and a step; see ``render_spectra`` for that layer in every run."""
    import ipywidgets as widgets

    from ..widgets import choice, explorer

    layers = []
    for nets in spectra.values():
        for net, rec in nets.items():
            layers += [f"{net}/{name}" for name in rec.layers if f"{net}/{name}" not in layers]
    steps = sorted({s for nets in spectra.values() for rec in nets.values() for s in rec.steps})

    def render(layer, step):
        net, name = layer.split("/", 1)
        return render_spectra({run: nets[net] for run, nets in spectra.items() if net in nets}, name, step)

    return explorer(render, title=title, layer=choice(layers, description="layer"),
                    step=widgets.SelectionSlider(options=steps, value=steps[-1], description="step"))
