"""StyleGAN-XL: Scaling StyleGAN to Large Diverse Datasets (Sauer, Schwarz & Geiger, 2022, arXiv 2202.00273).

StyleGAN-XL keeps the *style-based generator* of the StyleGAN family and changes how it is trained, so that it
works on large, diverse, class-conditional data:

The StyleGAN core (Karras et al. 2019, 2020, 2021):

- a **mapping network** f: (z, c) -> w (StyleGAN3: two layers), an intermediate latent space W;
- a **synthesis network** from a learned **constant** 4 x 4 input, every layer a **modulated convolution** whose
  input channels are scaled by an affine map of w and whose filters are **demodulated** (StyleGAN2, Sec. 2.2;
  ``gan_course.layers.ModulatedConv2d``), plus per-pixel **noise inputs** scaled by learned strengths;
- the **truncation trick in W**: w' = w_avg + psi (w - w_avg), toward the (class-conditional) average w.

What StyleGAN-XL adds (Sec. 3), each switchable in ``Config``:

- a **low-dimensional z** (64 instead of 512) and **pretrained class embeddings**: the class enters the mapping
  network through an embedding initialised from a pretrained classifier's per-class mean features (here: the
  course classifier, ``class_embeddings_from_classifier``);
- the **Projected GAN discriminator** (Sauer et al. 2021, arXiv 2111.01007): frozen pretrained feature networks
  F_l at several scales, fixed random **cross-channel mixing** (1 x 1 convs) and **cross-scale mixing** (a
  top-down feature pyramid), and one small trainable discriminator D_l per scale (``ProjectedDiscriminator``);
- **progressive growing**: train at low resolution, then add layers for the next resolution and **freeze** the
  ones before (``Generator.set_stage``, ``stage_at``);
- **classifier guidance**: the cross-entropy of a pretrained classifier on G's samples, added to G's loss.

The objective (hinge loss, as Projected GAN), with C a frozen pretrained classifier:

    L_D = sum_l E[max(0, 1 - D_l(x, c))] + E[max(0, 1 + D_l(G(z, c'), c'))]
    L_G = -sum_l E[D_l(G(z, c'), c')] + lambda_cg * E[CE(C(G(z, c')), c')]

Simplified from StyleGAN3, and why: StyleGAN3's *alias-free* synthesis (Fourier-feature input, every nonlinearity
applied at 2x the resolution between windowed-sinc up- and down-sampling filters, rotation-equivariant 1 x 1
layers) makes the generator equivariant to translation and rotation, which matters for animation and video, not
for the quality of 32 x 32 stills, and costs an up- and down-sampling per layer, which a CPU cannot afford. The
course uses StyleGAN2's synthesis layers (bilinear 2x up-sampling, 3 x 3 modulated convolutions, noise inputs),
which StyleGAN3 itself reports as of equal FID. There is no EMA of G, no path-length or style-mixing
regularisation, no blurring of D's inputs, no mixed precision by default. DiffAugment is translation only (Projected
GAN: colour, translation and cutout). No pretrained weights can be downloaded, so the two feature networks are the
course's CNN classifier (for EfficientNet) and ``gan_course.metrics.tiny_vit.TinyViT``, a small vision transformer
trained on the chapter's data (for DeiT). The paper's values are the defaults of ``Config`` (from the official code,
autonomousvision/stylegan-xl ``train.py``); the notebook overrides the sizes a CPU can afford and says why.

The module, top to bottom: ``normalize_2nd_moment``, ``EqualLinear``, ``truncate``, ``MappingNetwork``,
``SynthesisLayer``, ``ToImage``, ``SynthesisNetwork``, ``Generator``; ``class_embeddings_from_classifier``;
``ClassifierPyramid``, ``ViTPyramid``, ``ScaleHead``, ``ProjectedDiscriminator``; ``Config``, ``optimizers``,
``stage_at``, ``classifier_logits``, ``downsample_to``, ``train_step``; ``sample`` (the truncated sampler).
Measurements, sweeps, style mixing, explorers and the baseline D of "what goes wrong" (``StandardDiscriminator``)
are in ``gan_course.lab.stylegan_xl``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ModulatedConv2d, SNConv2d, diff_augment
from ..losses import hinge_discriminator_loss, hinge_generator_loss
from ..metrics.features import adapt
from ..sampling import GeneratorView, generate, normal
from ..training import set_requires_grad

if TYPE_CHECKING:
    from ..metrics.tiny_vit import TinyViT

__all__ = ["normalize_2nd_moment", "EqualLinear", "MappingNetwork", "truncate", "SynthesisLayer", "ToImage",
           "SynthesisNetwork", "Generator", "class_embeddings_from_classifier", "ClassifierPyramid", "ViTPyramid",
           "ScaleHead", "ProjectedDiscriminator", "Config", "optimizers", "stage_at",
           "classifier_logits", "downsample_to", "latents", "train_step", "sample"]

# The paper's hyper-parameters, as the official code (autonomousvision/stylegan-xl, train.py) sets them.
Z_DIM = 64                # train.py: "c.G_kwargs.z_dim = 64" (natural images have a low intrinsic dimension)
W_DIM = 512               # train.py: "c.G_kwargs.w_dim = 512"
MAPPING_LAYERS = 2        # train.py: "c.G_kwargs.mapping_kwargs.num_layers = 2" (StyleGAN, StyleGAN2: 8)
LR_G = 2.5e-3             # train.py: "(0.002 if opts.cfg == 'stylegan2' else 0.0025)"
LR_D = 2e-3               # train.py: "--dlr ... default=0.002"
BETAS = (0.0, 0.99)       # train.py: "betas=[0, 0.99], eps=1e-8" for both optimisers
ADAM_EPS = 1e-8
MIX_CHANNELS = 64         # train.py: "backbone_kwargs.cout = 64", the width of the cross-channel mixing
AUGMENT = 0.125           # DiffAugment's translation ratio (Zhao et al. 2020), as Projected GAN's D uses it
LAMBDA_CG = 0.0           # train.py: "cls_weight = 0.0  # use classifier guidance only for superresolution
#                           training"; from 32 x 32 on, the weight is a command-line choice (--cls_weight)
GUIDANCE_FROM = 32        # so guidance starts at the first super-resolution stage, 32 x 32 (the stem is 16 x 16);
#                           the paper: guidance at low resolution "leads to mode collapse"
FEATURE_NETS = ("cnn", "vit")   # train.py: "backbones=['deit_base_distilled_patch16_224', 'tf_efficientnet_lite0']";
#                                 the course's stand-ins: its CNN classifier and a TinyViT


# --------------------------------------------------------------------------- the mapping network
def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x^2)): every vector rescaled to unit second moment (StyleGAN's "pixel norm" of z and e_c)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """Linear layer with the equalised learning rate (Karras et al. 2018, Sec. 4.1): weights stored ~ N(0, 1/lr_mul^2),
    multiplied by lr_mul / sqrt(fan_in) at run time, so Adam's step is the same for every layer. ``lr_mul`` = 0.01
    in StyleGAN's mapping network slows it down 100x relative to the synthesis network."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0, bias_init: float = 0.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain, self.bias_gain = lr_mul / math.sqrt(in_features), lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.activation else x


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float | torch.Tensor) -> torch.Tensor:
    """The truncation trick in W (StyleGAN, Sec. 3.1 of arXiv 1812.04948; StyleGAN-XL: toward the class's average):

        w' = w_avg + psi (w - w_avg)

    psi = 1 leaves w unchanged, psi = 0 gives w_avg (the "average" image of the class), 0 < psi < 1 moves w toward
    it: fidelity up, variety down. ``w_avg`` broadcasts against ``w`` ((w_dim,) or one row per sample).
    ``torch.lerp`` computes exactly this, and returns w_avg at psi = 0 and w at psi = 1 without rounding."""
    return torch.lerp(w_avg.expand_as(w), w, psi)


class MappingNetwork(nn.Module):
    """f: (z, c) -> w. z in R^{z_dim} (StyleGAN-XL: z_dim = 64) and the class embedding e_c, each normalised to unit
    second moment, are concatenated and passed through ``n_layers`` equalised-lr linear layers with leaky ReLU
    (StyleGAN3 / -XL: 2 layers, lr_mul 0.01).

    The embedding is a table E in R^{K x d_e} followed by a learned linear projection to ``embed_dim``. With
    ``class_features`` (K, d_e) the table is *initialised* from them (StyleGAN-XL's pretrained class embeddings,
    Sec. 3.2: per-class mean features of a pretrained classifier) and fine-tuned with G; without, E ~ N(0, 1).

    Buffers: ``w_avg_c`` (K, w_dim), the running mean of w per class (updated by ``update_w_avg`` during training,
    StyleGAN's ``w_avg`` tracking made class-conditional), and ``w_avg`` (w_dim,), their mean over classes.
    """

    def __init__(self, *, z_dim: int = Z_DIM, n_classes: int = 20, w_dim: int = 128, embed_dim: int = 128,
                 n_layers: int = MAPPING_LAYERS, class_features: torch.Tensor | None = None, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.n_classes, self.w_dim, self.w_avg_beta = z_dim, n_classes, w_dim, w_avg_beta
        if class_features is not None:
            class_features = torch.as_tensor(class_features, dtype=torch.float32)
            if class_features.shape[0] != n_classes:
                raise ValueError(f"class_features has {class_features.shape[0]} rows, expected one per class "
                                 f"({n_classes})")
            self.embed = nn.Embedding.from_pretrained(class_features.clone(), freeze=False)
        else:
            self.embed = nn.Embedding(n_classes, embed_dim)
        self.pretrained_embeddings = class_features is not None
        self.project = EqualLinear(self.embed.embedding_dim, embed_dim)
        dims = [z_dim + embed_dim] + [w_dim] * n_layers
        self.layers = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                                      for a, b in zip(dims[:-1], dims[1:], strict=True)])
        self.register_buffer("w_avg_c", torch.zeros(n_classes, w_dim))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """w = f(z, c); with ``psi`` != 1, truncated toward the class average ``w_avg_c[c]``."""
        e_c = normalize_2nd_moment(self.project(normalize_2nd_moment(self.embed(c))))
        w = self.layers(torch.cat([normalize_2nd_moment(z), e_c], dim=1))
        return w if psi == 1 else truncate(w, self.w_avg_c[c], psi)

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor, c: torch.Tensor):
        """w_avg_c[k] <- mean of this batch's w of class k + beta (w_avg_c[k] - that mean), for the classes present
        (StyleGAN tracks one w_avg this way; StyleGAN-XL truncates toward the class's own average)."""
        w = w.detach().float()
        sums = torch.zeros_like(self.w_avg_c).index_add_(0, c, w)
        counts = torch.bincount(c, minlength=self.n_classes)
        present = counts > 0
        means = sums[present] / counts[present].unsqueeze(1)
        self.w_avg_c[present] = torch.lerp(means, self.w_avg_c[present], self.w_avg_beta)
        self.w_avg.copy_(self.w_avg_c.mean(0))


# --------------------------------------------------------------------------- the synthesis network
class SynthesisLayer(nn.Module):
    """One StyleGAN2 layer (arXiv 1912.04958, Fig. 2 d): modulated/demodulated 3 x 3 conv with style A(w), then noise
    and bias, then leaky ReLU (gain sqrt 2):

        x <- lrelu( conv(x, w''(A(w))) + strength * n + b ),   n ~ N(0, 1) per pixel, one map shared by channels

    ``strength`` starts at 0 (StyleGAN2), so noise enters only as far as training finds it useful.
    ``noise_mode``: "random" (training), "const" (a fixed map stored in the layer: reproducible images), "none".
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True)
        self.resolution = resolution
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            x = x + self.noise_strength * torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device)
        elif noise_mode == "const":
            x = x + self.noise_strength * self.noise_const
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


class ToImage(nn.Module):
    """toRGB: a modulated 1 x 1 convolution *without* demodulation to the image channels, plus bias (StyleGAN2)."""

    def __init__(self, in_channels: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1)


class SynthesisNetwork(nn.Module):
    """g: w -> image. A learned constant 4 x 4 input, then stages; stage s ends at resolution 8 * 2^s:

        stage 0:  const (4 x 4)  -> layer @4 -> up x2 -> layer @8, layer @8          -> toRGB @8
        stage s:  up x2 -> layer @R, layer @R                                     -> toRGB @R   (R = 8 * 2^s)

    Only the first ``stage + 1`` stages run (buffer ``stage``); the output is the toRGB of the last one, so the
    image is 8 x 8 at stage 0, 16 x 16 at stage 1, 32 x 32 at stage 2 (progressive growing, see ``Generator``).
    Each conv layer and each toRGB takes its own w: ``ws`` is (B, num_ws, w_dim), ``num_ws`` = all layers of all
    stages (an index per layer, whether active or not), which is what style mixing exchanges.
    """

    def __init__(self, *, w_dim: int = 128, channels: int = 1, widths=(128, 128, 64, 32), image_size: int = 32):
        super().__init__()
        n_stages = int(math.log2(image_size // 8)) + 1
        if 8 * 2 ** (n_stages - 1) != image_size or len(widths) != n_stages + 1:
            raise ValueError(f"image_size must be 8 * 2^k with len(widths) = k + 2 (4 x 4 and each stage); got "
                             f"image_size={image_size}, widths={widths}")
        self.w_dim, self.channels, self.widths, self.n_stages = w_dim, channels, tuple(widths), n_stages
        self.const = nn.Parameter(torch.randn(widths[0], 4, 4))
        self.stages = nn.ModuleList()
        self.to_images = nn.ModuleList()
        for s in range(n_stages):
            R, c_in, c_out = 8 * 2 ** s, widths[s], widths[s + 1]
            layers = [SynthesisLayer(c_in, c_in, w_dim, 4)] if s == 0 else []
            layers += [SynthesisLayer(c_in, c_out, w_dim, R), SynthesisLayer(c_out, c_out, w_dim, R)]
            self.stages.append(nn.ModuleList(layers))
            self.to_images.append(ToImage(c_out, channels, w_dim))
        # index of each layer's w in ws: conv layers of stage s, then its toRGB
        self.w_index, i = [], 0
        for s in range(n_stages):
            self.w_index.append((list(range(i, i + len(self.stages[s]))), i + len(self.stages[s])))
            i += len(self.stages[s]) + 1
        self.num_ws = i
        self.register_buffer("stage", torch.tensor(n_stages - 1))

    @property
    def resolution(self) -> int:
        return 8 * 2 ** int(self.stage)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if ws.ndim == 2:                       # one w for every layer
            ws = ws.unsqueeze(1).expand(-1, self.num_ws, -1)
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        for s in range(int(self.stage) + 1):
            conv_index, rgb_index = self.w_index[s]
            for j, (layer, k) in enumerate(zip(self.stages[s], conv_index, strict=True)):
                if (s == 0 and j == 1) or (s > 0 and j == 0):
                    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                x = layer(x, ws[:, k], noise_mode)
        return self.to_images[int(self.stage)](x, ws[:, rgb_index])


class Generator(nn.Module):
    """G(z, c) = g(f(z, c)): ``MappingNetwork`` then ``SynthesisNetwork``.

    Progressive growing (StyleGAN-XL Sec. 3.1): ``set_stage(s, freeze=True)`` makes stage s the output stage and,
    with ``freeze``, sets ``requires_grad=False`` on the constant input and every layer of the earlier stages (the
    toRGB of an earlier stage is no longer used); the mapping network keeps training. StyleGAN-XL starts at 16 x 16
    and adds 7 layers per doubling (removing the last 2); the course starts at 8 x 8 and adds 2 layers + a toRGB.
    ``freeze=False`` is plain training of all active layers (``PROGRESSIVE = False`` trains stage 2 from step 0).
    """

    def __init__(self, *, z_dim: int = Z_DIM, n_classes: int = 20, w_dim: int = 128, channels: int = 1,
                 image_size: int = 32, widths=(128, 128, 64, 32), mapping_layers: int = MAPPING_LAYERS,
                 class_features: torch.Tensor | None = None, embed_dim: int = 128):
        super().__init__()
        self.z_dim, self.n_classes, self.w_dim, self.image_size = z_dim, n_classes, w_dim, image_size
        self.mapping = MappingNetwork(z_dim=z_dim, n_classes=n_classes, w_dim=w_dim, embed_dim=embed_dim,
                                      n_layers=mapping_layers, class_features=class_features)
        self.synthesis = SynthesisNetwork(w_dim=w_dim, channels=channels, widths=widths, image_size=image_size)
        self.num_ws = self.synthesis.num_ws

    @property
    def stage(self) -> int:
        return int(self.synthesis.stage)

    @property
    def resolution(self) -> int:
        return self.synthesis.resolution

    def set_stage(self, stage: int, freeze: bool = True) -> Generator:
        """Output at stage ``stage`` (resolution 8 * 2^stage); with ``freeze``, earlier stages stop training."""
        if not 0 <= stage < self.synthesis.n_stages:
            raise ValueError(f"stage must be in 0..{self.synthesis.n_stages - 1}, got {stage}")
        self.synthesis.stage.fill_(stage)
        self.synthesis.const.requires_grad_(not freeze or stage == 0)
        for s, (layers, to_image) in enumerate(zip(self.synthesis.stages, self.synthesis.to_images, strict=True)):
            layers.requires_grad_(s == stage or (not freeze and s < stage))
            to_image.requires_grad_(s == stage)
        return self

    def grow(self) -> Generator:
        """Add the next stage (doubling the resolution) and freeze everything before it."""
        return self.set_stage(self.stage + 1, freeze=True)

    def forward(self, z: torch.Tensor, c: torch.Tensor, psi: float = 1.0, noise_mode: str = "random"):
        return self.synthesis(self.mapping(z, c, psi), noise_mode)


@torch.no_grad()
def class_embeddings_from_classifier(net, dataset, n_per_class: int = 100, seed: int = 0) -> torch.Tensor:
    """StyleGAN-XL's pretrained class embeddings (Sec. 3.2): for each class k, the mean of a pretrained classifier's
    pooled features phi(x) over (up to) ``n_per_class`` training images of class k. Returns (K, d) with K =
    ``len(dataset.classes)``; the course uses its own classifier (``gan_course.metrics.course_classifier``), the paper
    an ImageNet EfficientNet-lite0."""
    targets = torch.as_tensor(dataset.targets)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for k in range(len(dataset.classes)):
        idx = torch.nonzero(targets == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)[:n_per_class]]
        x = dataset.get_batch(idx)[0] if hasattr(dataset, "get_batch") else torch.stack([dataset[int(i)][0]
                                                                                        for i in idx])
        rows.append(net.features(x).mean(0).cpu())
    return torch.stack(rows)


# --------------------------------------------------------------------------- the projected discriminator
class ClassifierPyramid(nn.Module):
    """A frozen pretrained network as a feature pyramid F_1..F_L: the outputs of the course classifier's three conv
    blocks (32 ch at 14 x 14, 64 at 7 x 7, 128 at 3 x 3 for its 28 x 28 input). Inputs are adapted (channels,
    bilinear resize to the size it was trained at) with gradients, so G learns through it; its own weights never
    change (``requires_grad=False``, batch norm always in eval mode)."""

    def __init__(self, net):
        super().__init__()
        self.blocks = nn.ModuleList(list(net.body.children())[:-2])     # drop the global pool and the flatten
        self.channels_in, self.image_size = net.channels, net.image_size
        with torch.no_grad():
            shapes = [f.shape for f in self(torch.zeros(1, net.channels, net.image_size, net.image_size))]
        self.out_channels = [s[1] for s in shapes]
        self.out_sizes = [s[-1] for s in shapes]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)     # frozen: batch norm on its running statistics

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = adapt(x, self.channels_in, self.image_size)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class ViTPyramid(nn.Module):
    """A frozen ``TinyViT`` as feature maps F_1..F_L for ``ProjectedDiscriminator``: its patch tokens after blocks
    ``layers``, each (B, dim, 8, 8) for 32 x 32 inputs (Projected GAN hooks DeiT's blocks the same way). Frozen like
    ``ClassifierPyramid``: ``requires_grad=False``, always eval mode, differentiable with respect to its input."""

    def __init__(self, vit: TinyViT, layers=(2, 4)):
        super().__init__()
        if not all(1 <= b <= len(vit.blocks) for b in layers):
            raise ValueError(f"layers must be in 1..{len(vit.blocks)}, got {layers}")
        self.vit, self.layers = vit, tuple(layers)
        self.out_channels = [vit.dim] * len(self.layers)
        self.out_sizes = [vit.grid] * len(self.layers)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.vit.token_maps(x, self.layers)


class ScaleHead(nn.Module):
    """D_l: a small conditional discriminator on one scale, Projected GAN's "DownBlock"s (4 x 4 stride-2 SN conv, batch
    norm, leaky ReLU) down to <= 4 x 4, then logits per position, conditioned by projection (Miyato & Koyama 2018):
    D_l = out(h) + <e_c, h> / sqrt(C). Batch norm keeps the features at unit scale under spectral norm.

    The class embedding e_c: with ``class_features`` (K, d_e), StyleGAN-XL's conditioning of the heads (official
    ``pg_modules/discriminator.py``, ``SingleDiscCond``): a table initialised from the pretrained classifier's class
    means (the same ones as G's mapping network, Sec. 3.2) and trained, then a learned projection with leaky ReLU
    to C channels, e_c = lrelu(P E[c]). With ``embed_dim`` instead, the same two layers from a random table of that
    width (the paper's "rand_embedding" arm). With neither, a random table of width C and no projection (an
    ordinary projection discriminator)."""

    def __init__(self, channels: int, size: int, n_classes: int, width: int = 64,
                 class_features: torch.Tensor | None = None, embed_dim: int | None = None):
        super().__init__()
        layers, c = [], channels
        while size > 4:
            layers += [SNConv2d(c, width, 4, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
            c, size = width, size // 2
        if not layers:
            layers = [SNConv2d(c, width, 3, 1, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
            c = width
        self.body = nn.Sequential(*layers)
        self.out = SNConv2d(c, 1, 1)
        if class_features is not None:
            class_features = torch.as_tensor(class_features, dtype=torch.float32)
            if class_features.shape[0] != n_classes:
                raise ValueError(f"class_features has {class_features.shape[0]} rows, expected one per class "
                                 f"({n_classes})")
            self.embed = nn.Embedding.from_pretrained(class_features.clone(), freeze=False)
        else:
            self.embed = nn.Embedding(n_classes, embed_dim or c)
        self.embed_proj = nn.Sequential(nn.Linear(self.embed.embedding_dim, c), nn.LeakyReLU(0.2)) \
            if class_features is not None or embed_dim is not None else nn.Identity()
        self.pretrained_embeddings = class_features is not None
        self.width = c

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.body(h)
        e_c = self.embed_proj(self.embed(c))
        projection = (e_c[:, :, None, None] * h).sum(1, keepdim=True) / math.sqrt(self.width)
        return (self.out(h) + projection).flatten(1)


class ProjectedDiscriminator(nn.Module):
    """The Projected GAN discriminator (Sauer et al. 2021, Sec. 3; StyleGAN-XL Sec. 3.2), for each feature network:

        features F_l(x), l = 1..L                                  frozen, pretrained
        CCM:  P_l = W_l * F_l          (fixed random 1 x 1 conv)   cross-channel mixing
        CSM:  Q_L = P_L,  Q_l = conv3x3(P_l + up(Q_{l+1}))         cross-scale mixing (fixed, random), top-down
        D(x, c) = [D_1(Q_1, c), ..., D_L(Q_L, c)]                 one small trained discriminator per scale

    The CCM and CSM weights are drawn once (N(0, 1/fan_in), seeded) and never trained: random projections spread the
    pretrained features over all channels and scales so that each head sees all of them, without letting D learn
    to ignore parts of the features. Only the heads D_l are trained (``trainable_parameters``). The logits of all
    heads and positions are concatenated: (B, N); the hinge loss averages them.

    ``feature_networks``: a list of ``ClassifierPyramid``-like modules (StyleGAN-XL: EfficientNet-lite0 and DeiT-M;
    the course: its CNN classifier and a ``TinyViT``, through ``ViTPyramid``), each with its own mixing and heads. ``augment``: DiffAugment translation on every input (``diff_augment``).
    ``class_features`` / ``embed_dim``: how every head embeds the class (``ScaleHead``): StyleGAN-XL conditions
    them on the pretrained class embeddings that G's mapping network starts from.
    """

    def __init__(self, *, feature_networks, n_classes: int, mix_channels: int = MIX_CHANNELS, head_width: int = 64,
                 augment: float = AUGMENT, seed: int = 0, class_features: torch.Tensor | None = None,
                 embed_dim: int | None = None):
        super().__init__()
        self.features = nn.ModuleList(feature_networks)
        self.augment = augment
        g = torch.Generator().manual_seed(seed)
        self.ccm, self.csm, self.heads = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for net in self.features:
            ccm = nn.ModuleList([nn.Conv2d(c, mix_channels, 1, bias=False) for c in net.out_channels])
            csm = nn.ModuleList([nn.Conv2d(mix_channels, mix_channels, 3, padding=1, bias=False)
                                 for _ in net.out_channels[:-1]])
            for conv in list(ccm) + list(csm):
                fan_in = conv.weight[0].numel()
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * math.sqrt(1.0 / fan_in))
            self.ccm.append(ccm.requires_grad_(False))
            self.csm.append(csm.requires_grad_(False))
            self.heads.append(nn.ModuleList([ScaleHead(mix_channels, size, n_classes, head_width,
                                                       class_features=class_features, embed_dim=embed_dim)
                                             for size in net.out_sizes]))

    @property
    def trainable(self) -> nn.Module:
        """The part of D that trains: the heads (``set_requires_grad(D.trainable, False)`` during G's step)."""
        return self.heads

    def trainable_parameters(self):
        """The heads' parameters: the only ones D's optimiser updates."""
        return list(self.trainable.parameters())

    def mixed_features(self, x: torch.Tensor, i: int = 0) -> list[torch.Tensor]:
        """Q_1..Q_L of feature network ``i`` for images x (CCM then top-down CSM)."""
        P = [ccm(f) for ccm, f in zip(self.ccm[i], self.features[i](x), strict=True)]
        Q = [P[-1]]
        for l in range(len(P) - 2, -1, -1):
            up = F.interpolate(Q[0], size=P[l].shape[-2:], mode="bilinear", align_corners=False)
            Q.insert(0, self.csm[i][l](P[l] + up))
        return Q

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.training and self.augment > 0:
            x = diff_augment(x, self.augment)
        logits = []
        for i in range(len(self.features)):
            for head, q in zip(self.heads[i], self.mixed_features(x, i), strict=True):
                logits.append(head(q, c))
        return torch.cat(logits, dim=1)


# --------------------------------------------------------------------------- the paper's hyper-parameters
@dataclass
class Config:
    """StyleGAN-XL's hyper-parameters; the defaults are the paper's (official ``train.py``) values, and the
    notebook overrides what the course changes (sizes a CPU can afford, the guidance weight) and says why.
    Every XL addition is a switch here, so that an experiment arm is ``dataclasses.replace(cfg, projected=False)``.
    """

    z_dim: int = Z_DIM                     # train.py: z in R^64 (StyleGAN: 512)
    w_dim: int = W_DIM                     # train.py: 512
    mapping_layers: int = MAPPING_LAYERS   # train.py: 2 (StyleGAN3's)
    pretrained_embeddings: bool = True     # train.py: "rand_embedding = False": classifier class means (G and D)
    projected: bool = True                 # the Projected GAN discriminator (False: an ordinary one on pixels)
    feature_nets: tuple = FEATURE_NETS     # two feature networks, a CNN and a vision transformer
    mix_channels: int = MIX_CHANNELS       # train.py: cross-channel mixing to 64 channels
    augment: float = AUGMENT               # DiffAugment translation before D (Projected GAN: "diffaug=True")
    progressive: bool = True               # progressive growing, earlier layers frozen
    stage_steps: tuple = (150, 250)        # the course's schedule: steps at 8x8, then 16x16 (the paper counts
    #                                        images seen on ImageNet; no step count carries over)
    lambda_cg: float = LAMBDA_CG           # classifier guidance weight (train.py: 0 for the stem)
    guidance_from: int = GUIDANCE_FROM     # guidance only while G's resolution is at least this (train.py: 32)
    lr_G: float = LR_G                     # train.py: 0.0025
    lr_D: float = LR_D                     # train.py: 0.002
    betas: tuple = BETAS                   # train.py: Adam betas (0, 0.99)
    eps: float = ADAM_EPS                  # train.py: Adam eps 1e-8

    def __post_init__(self):
        for name in ("z_dim", "w_dim", "mapping_layers", "mix_channels"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"Config.{name} must be an int >= 1, got {getattr(self, name)!r}")
        for name in ("lr_G", "lr_D", "eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Config.{name} must be > 0, got {getattr(self, name)}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"Config.betas must be two numbers in [0, 1), got {self.betas}")
        if not 0 <= self.augment < 0.5:
            raise ValueError(f"Config.augment (a translation ratio) must be in [0, 0.5), got {self.augment}")
        if self.lambda_cg < 0:
            raise ValueError(f"Config.lambda_cg must be >= 0 (0: no classifier guidance), got {self.lambda_cg}")
        if not (isinstance(self.guidance_from, int) and self.guidance_from >= 1):
            raise ValueError(f"Config.guidance_from must be a resolution (an int >= 1), got {self.guidance_from!r}")
        unknown = [n for n in self.feature_nets if n not in FEATURE_NETS]
        if unknown or not self.feature_nets:
            raise ValueError(f"Config.feature_nets must be a non-empty selection of {FEATURE_NETS}, got "
                             f"{self.feature_nets!r}")
        if not all(isinstance(s, int) and s >= 0 for s in self.stage_steps):
            raise ValueError(f"Config.stage_steps must be step counts (ints >= 0), got {self.stage_steps!r}")


def optimizers(G: Generator, D: nn.Module, cfg: Config) -> dict[str, torch.optim.Optimizer]:
    """Adam for G (all its parameters; frozen stages receive no gradient) and for D's trainable part only (the
    heads of a projected D), with the paper's settings: the ``{"G": ..., "D": ...}`` a ``Run`` takes."""
    return {"G": torch.optim.Adam(G.parameters(), lr=cfg.lr_G, betas=cfg.betas, eps=cfg.eps),
            "D": torch.optim.Adam(D.trainable_parameters(), lr=cfg.lr_D, betas=cfg.betas, eps=cfg.eps)}


def stage_at(step: int, cfg: Config, n_stages: int) -> int:
    """Progressive growing's schedule: the output stage at ``step``. ``cfg.stage_steps[0]`` steps at stage 0,
    then ``cfg.stage_steps[1]`` at stage 1, ..., the rest at the last; without ``cfg.progressive`` the last stage
    from step 0."""
    if not cfg.progressive:
        return n_stages - 1
    bounds = [sum(cfg.stage_steps[:i + 1]) for i in range(len(cfg.stage_steps))]
    return sum(step >= b for b in bounds)


# --------------------------------------------------------------------------- classifier guidance and the update step
def classifier_logits(net, x: torch.Tensor) -> torch.Tensor:
    """A frozen course classifier's logits *with gradients to x* (``net.logits`` runs under ``no_grad``)."""
    return net.head(net.body(adapt(x, net.channels, net.image_size)))


def downsample_to(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Real images at G's current resolution (area average), so D compares like with like while G grows."""
    return x if x.shape[-1] == resolution else F.adaptive_avg_pool2d(x, resolution)


def latents(G: Generator, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """G's inputs for a training step: z ~ N(0, I) (drawn first) and classes c' uniform over G's classes."""
    return torch.randn(n, G.z_dim, device=device), torch.randint(0, G.n_classes, (n,), device=device)


def train_step(run, G: Generator, D: nn.Module, batches, cfg: Config, *, classifier=None) -> dict:
    """One StyleGAN-XL iteration: a D update, then a G update, both on the hinge loss (as Projected GAN).

    G's stage follows the step (``stage_at``: progressive growing). Then:
    D step, real (x, c) at G's current resolution, z ~ N(0, I), c' uniform:
        L_D = E[max(0, 1 - D(x, c))] + E[max(0, 1 + D(G(z, c'), c'))]
    G step, fresh z, c', D's trainable part frozen:
        L_G = -E[D(G(z, c'), c')] + lambda_cg * CE(C(G(z, c')), c')        (classifier guidance, Sec. 3.2)

    where C is ``classifier``, a frozen pretrained classifier (needed when ``cfg.lambda_cg > 0``); the guidance
    term is applied only while G's resolution is at least ``cfg.guidance_from`` (the official code guides only the
    super-resolution stages, from 32 x 32: at low resolution guidance "leads to mode collapse"). w's running
    class averages are updated from the G step's w. ``run`` has optimisers "G" and "D" (``optimizers``).
    Returns the detached losses (``loss_G`` is the adversarial term), the mean D outputs and G's resolution.
    """
    if cfg.lambda_cg > 0 and classifier is None:
        raise ValueError(f"cfg.lambda_cg = {cfg.lambda_cg} needs the frozen classifier C: pass "
                         "train_step(..., classifier=course_classifier(dataset)), or set lambda_cg = 0")
    G.set_stage(stage_at(run.step, cfg, G.synthesis.n_stages), freeze=cfg.progressive)  # requires_grad is not
    device = run.device                                                                   # checkpointed: every step
    x, c = batches.next()
    x = downsample_to(x, G.resolution)
    z, c_fake = latents(G, x.shape[0], device)
    with torch.no_grad():
        x_fake = G(z, c_fake)
    with run.autocast():
        d_real, d_fake = D(x, c), D(x_fake, c_fake)
        loss_D = hinge_discriminator_loss(d_real, d_fake)
    run.update("D", loss_D)

    set_requires_grad(D.trainable, False)
    z, c_fake = latents(G, x.shape[0], device)
    guided = cfg.lambda_cg > 0 and G.resolution >= cfg.guidance_from
    with run.autocast():
        w = G.mapping(z, c_fake)
        x_fake = G.synthesis(w)
        loss_adv = hinge_generator_loss(D(x_fake, c_fake))
        loss_cg = (F.cross_entropy(classifier_logits(classifier, x_fake), c_fake)
                   if guided else torch.zeros((), device=device))
    run.update("G", loss_adv + cfg.lambda_cg * loss_cg)
    set_requires_grad(D.trainable, True)
    G.mapping.update_w_avg(w, c_fake)
    return dict(loss_D=loss_D.detach(), loss_G=loss_adv.detach(), loss_cg=loss_cg.detach(),
                D_real=d_real.detach().mean(), D_fake=d_fake.detach().mean(), resolution=G.resolution)


# --------------------------------------------------------------------------- sampling
def sample(G: Generator, c: torch.Tensor, psi: float = 1.0, seed: int = 0, z: torch.Tensor | None = None,
           batch_size: int = 500) -> torch.Tensor:
    """Images G(z, c) with truncation ``psi`` toward each class's average w, z ~ N(0, I) seeded by ``seed`` (or
    given), constant noise, eval mode (``sampling.generate``); CPU, clamped to [-1, 1] (StyleGAN has no tanh)."""
    z = normal(len(c), G.z_dim, generator=torch.Generator().manual_seed(seed)) if z is None else z
    view = GeneratorView(G, lambda z, c: G(z, c, psi, "const"))
    return generate(view, z, c, batch_size=batch_size).clamp(-1, 1)
