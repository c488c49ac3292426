"""StyleGAN-XL: Scaling StyleGAN to Large Diverse Datasets (Sauer, Schwarz & Geiger, 2022, arXiv 2202.00273).

StyleGAN-XL keeps the *style-based generator* of the StyleGAN family and changes how it is trained, so that it
works on large, diverse, class-conditional data:

The StyleGAN core (Karras et al. 2019, 2020, 2021):

- a **mapping network** f: (z, c) -> w (StyleGAN3: two layers), an intermediate latent space W;
- a **synthesis network** from a learned **constant** 4 x 4 input, every layer a **modulated convolution** whose
  input channels are scaled by an affine map of w and whose filters are **demodulated** (StyleGAN2, Sec. 2.2;
  ``gan_course.layers.ModulatedConv2d``), plus per-pixel **noise inputs** scaled by learned strengths;
- the **truncation trick in W**: w' = w_avg + psi (w - w_avg), toward the (class-conditional) average w.

What StyleGAN-XL adds (Sec. 3), each switchable here:

- a **low-dimensional z** (64 instead of 512) and **pretrained class embeddings**: the class enters the mapping
  network through an embedding initialised from a pretrained classifier's per-class mean features (here: the
  course classifier, ``class_embeddings_from_classifier``);
- the **Projected GAN discriminator** (Sauer et al. 2021, arXiv 2111.01007): frozen pretrained feature networks
  F_l at several scales, fixed random **cross-channel mixing** (1 x 1 convs) and **cross-scale mixing** (a
  top-down feature pyramid), and one small trainable discriminator D_l per scale (``ProjectedDiscriminator``);
- **progressive growing**: train at low resolution, then add layers for the next resolution and **freeze** the
  ones before (``Generator.set_stage``);
- **classifier guidance**: the cross-entropy of a pretrained classifier on G's samples, added to G's loss.

Simplified from StyleGAN3, and why: StyleGAN3's *alias-free* synthesis (Fourier-feature input, every nonlinearity
applied at 2x the resolution between windowed-sinc up- and down-sampling filters, rotation-equivariant 1 x 1
layers) makes the generator equivariant to translation and rotation, which matters for animation and video, not
for the quality of 32 x 32 stills, and costs an up- and down-sampling per layer, which a CPU cannot afford. The
course uses StyleGAN2's synthesis layers (bilinear 2x up-sampling, 3 x 3 modulated convolutions, noise inputs),
which StyleGAN3 itself reports as of equal FID. There is no EMA of G, no path-length or style-mixing
regularisation, no mixed precision. No pretrained weights can be downloaded, so the two feature networks are the
course's CNN classifier (for EfficientNet) and ``TinyViT``, a small vision transformer trained on the chapter's data
(for DeiT).

The module, top to bottom: ``normalize_2nd_moment``, ``EqualLinear``, ``MappingNetwork`` (with ``truncate``),
``SynthesisLayer``, ``ToImage``, ``SynthesisNetwork``, ``Generator``; ``class_embeddings_from_classifier``;
``diff_augment``; ``ClassifierPyramid``, ``TinyViT`` (``train_tiny_vit``), ``ViTPyramid``,
``ProjectedDiscriminator``, ``StandardDiscriminator``;
``classifier_logits``; ``train_step``; sampling helpers (``sample``, ``sampler``, ``mix_styles``,
``within_class_spread``, ``truncation_sweep``); explorers (``render_class_truncation`` / ``class_truncation_explorer``,
``render_style_mixing`` / ``style_mixing_explorer``, ``render_interpolation`` / ``interpolation_explorer``).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ModulatedConv2d, diff_augment, spectral_norm
from ..losses import hinge_discriminator_loss, hinge_generator_loss

__all__ = ["normalize_2nd_moment", "EqualLinear", "MappingNetwork", "truncate", "SynthesisLayer", "ToImage",
           "SynthesisNetwork", "Generator", "class_embeddings_from_classifier", "diff_augment", "ClassifierPyramid",
           "TinyViT", "train_tiny_vit", "ViTPyramid",
           "ProjectedDiscriminator", "StandardDiscriminator", "classifier_logits", "downsample_to", "train_step",
           "sample", "sampler", "mix_styles", "within_class_spread", "truncation_sweep", "render_class_truncation",
           "class_truncation_explorer", "render_style_mixing", "style_mixing_explorer", "render_interpolation",
           "interpolation_explorer"]


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

    def __init__(self, z_dim: int = 64, n_classes: int = 20, w_dim: int = 128, embed_dim: int = 128,
                 n_layers: int = 2, class_features: torch.Tensor | None = None, lr_mul: float = 0.01,
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

    def __init__(self, w_dim: int = 128, channels: int = 1, widths=(128, 128, 64, 32), image_size: int = 32):
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

    def __init__(self, z_dim: int = 64, n_classes: int = 20, w_dim: int = 128, channels: int = 1,
                 image_size: int = 32, widths=(128, 128, 64, 32), mapping_layers: int = 2,
                 class_features: torch.Tensor | None = None, embed_dim: int = 128):
        super().__init__()
        self.z_dim, self.n_classes, self.w_dim, self.image_size = z_dim, n_classes, w_dim, image_size
        self.mapping = MappingNetwork(z_dim, n_classes, w_dim, embed_dim, mapping_layers, class_features)
        self.synthesis = SynthesisNetwork(w_dim, channels, widths, image_size)
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
        from ..metrics.features import adapt

        self._adapt = adapt
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
        x = self._adapt(x, self.channels_in, self.image_size)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class TinyViT(nn.Module):
    """A small vision transformer (Dosovitskiy et al. 2021, arXiv 2010.11929), the course's stand-in for the DeiT
    that Projected GAN and StyleGAN-XL use as their second feature network:

        tokens_0 = [x_cls; E x_1; ...; E x_N] + E_pos     N = (32 / 4)^2 = 64 patches of 4 x 4 pixels, E linear
        tokens_b = Block_b(tokens_{b-1}),  b = 1..depth   pre-norm encoder blocks: multi-head self-attention + MLP
        logits   = W LayerNorm(tokens_depth[cls])

    The blocks are ``torch.nn.TransformerEncoderLayer`` (``norm_first``, GELU, no dropout). ``token_maps`` returns
    the patch tokens after the chosen blocks reshaped to (B, dim, 8, 8) feature maps, which is what Projected GAN
    takes from DeiT (before its reassembly layers). Trained here as a classifier on the chapter's data
    (``train_tiny_vit``), since no pretrained weights can be downloaded."""

    def __init__(self, channels: int = 1, n_classes: int = 20, image_size: int = 32, patch: int = 4, dim: int = 64,
                 depth: int = 4, heads: int = 4, mlp_ratio: int = 2):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size ({image_size}) must be a multiple of the patch size ({patch})")
        self.channels, self.image_size, self.patch, self.dim = channels, image_size, patch, dim
        self.grid = image_size // patch
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)     # E: one linear map per 4 x 4 patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.grid ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(dim, heads, mlp_ratio * dim, dropout=0.0,
                                                                activation="gelu", batch_first=True,
                                                                norm_first=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def _tokens(self, x: torch.Tensor, upto: int) -> list[torch.Tensor]:
        from ..metrics.features import adapt

        x = adapt(x, self.channels, self.image_size)
        t = self.patch_embed(x).flatten(2).transpose(1, 2)                  # (B, N, dim)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed
        out = []
        for block in self.blocks[:upto]:
            t = block(t)
            out.append(t)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of images in [-1, 1] (any size: resized to ``image_size``)."""
        return self.head(self.norm(self._tokens(x, len(self.blocks))[-1][:, 0]))

    logits = forward          # the course classifiers' interface (``gan_course.metrics.train_classifier.accuracy``)

    def token_maps(self, x: torch.Tensor, layers=(2, 4)) -> list[torch.Tensor]:
        """The patch tokens after blocks ``layers`` (1-based), each reshaped to (B, dim, grid, grid)."""
        tokens = self._tokens(x, max(layers))
        B = x.shape[0]
        return [tokens[b - 1][:, 1:].transpose(1, 2).reshape(B, self.dim, self.grid, self.grid) for b in layers]


def train_tiny_vit(dataset, test_set=None, steps: int = 300, batch_size: int = 64, lr: float = 2e-3,
                   weight_decay: float = 0.05, seed: int = 0, device="cpu", name: str = "tiny-vit",
                   n_test: int = 2000, **vit_kwargs):
    """Train (or load) a ``TinyViT`` classifier on ``dataset`` through ``gan_course.training.Run``: AdamW with a
    linear warm-up (10% of the steps) and cosine decay of the learning rate, cross-entropy. The run lives under
    ``gan_course.paths.runs_dir() / name``, so a second call with the same configuration loads the checkpoint
    instead of training. Returns ``(vit, accuracy, run)``: the network in eval mode and frozen, and its accuracy
    on the first ``n_test`` images of ``test_set`` (logged in the run's history at the last step)."""
    from ..metrics.train_classifier import accuracy
    from ..training import Batches, Run

    torch.manual_seed(seed)
    channels = dataset.images.shape[1] if hasattr(dataset, "images") else dataset[0][0].shape[0]
    vit = TinyViT(channels, len(dataset.classes), **vit_kwargs).to(device)
    opt = torch.optim.AdamW(vit.parameters(), lr=lr, weight_decay=weight_decay)
    config = dict(steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
                  n_test=n_test, architecture=repr(vit))
    run = Run(name, {"vit": vit}, {"vit": opt}, config=config, device=device, live=False)
    batches = run.attach(batches=Batches(dataset, batch_size, seed=seed, device=device))
    warmup = max(1, steps // 10)
    for step in run.steps(steps):
        t = (step - warmup) / max(1, steps - warmup)
        for group in opt.param_groups:     # a function of the step alone: identical after a resume
            group["lr"] = lr * ((step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * t)))
        vit.train()
        x, y = batches.next()[:2]
        loss = F.cross_entropy(vit(x), y)
        run.update("vit", loss)
        run.log(loss=loss.detach())
        if step + 1 == steps and test_set is not None:
            run.log(test_accuracy=accuracy(vit, test_set, limit=n_test))
    vit.eval().requires_grad_(False)
    return vit, run.history.last("test_accuracy", float("nan")), run


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


def _sn_conv(c_in, c_out, k, stride=1, padding=0):
    return spectral_norm(nn.Conv2d(c_in, c_out, k, stride, padding))


class _ScaleHead(nn.Module):
    """D_l: a small conditional discriminator on one scale, Projected GAN's "DownBlock"s (4 x 4 stride-2 SN conv, batch
    norm, leaky ReLU) down to <= 4 x 4, then logits per position, conditioned by projection (Miyato & Koyama 2018):
    D_l = out(h) + <e_c, h> / sqrt(C). Batch norm keeps the features at unit scale under spectral norm."""

    def __init__(self, channels: int, size: int, n_classes: int, width: int = 64):
        super().__init__()
        layers, c = [], channels
        while size > 4:
            layers += [_sn_conv(c, width, 4, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
            c, size = width, size // 2
        if not layers:
            layers = [_sn_conv(c, width, 3, 1, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
            c = width
        self.body = nn.Sequential(*layers)
        self.out = _sn_conv(c, 1, 1)
        self.embed = nn.Embedding(n_classes, c)
        self.width = c

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.body(h)
        projection = (self.embed(c)[:, :, None, None] * h).sum(1, keepdim=True) / math.sqrt(self.width)
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
    """

    def __init__(self, feature_networks, n_classes: int, mix_channels: int = 64, head_width: int = 64,
                 augment: float = 0.125, seed: int = 0):
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
            self.heads.append(nn.ModuleList([_ScaleHead(mix_channels, size, n_classes, head_width)
                                             for size in net.out_sizes]))

    def trainable_parameters(self):
        """The heads' parameters: the only ones D's optimiser updates."""
        return [p for p in self.heads.parameters()]

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


class StandardDiscriminator(nn.Module):
    """The baseline for "what goes wrong": an ordinary conditional discriminator trained from scratch on pixels
    (SN convs, leaky ReLU, stride-2 down to 4 x 4, projection head), inputs resized to ``image_size``, the same
    DiffAugment and hinge loss as the projected one. No pretrained features."""

    def __init__(self, n_classes: int, channels: int = 1, image_size: int = 32, width: int = 64,
                 augment: float = 0.125):
        super().__init__()
        self.image_size, self.augment = image_size, augment
        self.stem = nn.Sequential(_sn_conv(channels, width // 2, 3, 1, 1), nn.LeakyReLU(0.2))
        self.head = _ScaleHead(width // 2, image_size, n_classes, width)

    def trainable_parameters(self):
        return list(self.parameters())

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        if self.training and self.augment > 0:
            x = diff_augment(x, self.augment)
        return self.head(self.stem(x), c)


# --------------------------------------------------------------------------- classifier guidance and the update step
def classifier_logits(net, x: torch.Tensor) -> torch.Tensor:
    """A frozen course classifier's logits *with gradients to x* (``net.logits`` runs under ``no_grad``)."""
    from ..metrics.features import adapt

    return net.head(net.body(adapt(x, net.channels, net.image_size)))


def downsample_to(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Real images at G's current resolution (area average), so D compares like with like while G grows."""
    return x if x.shape[-1] == resolution else F.adaptive_avg_pool2d(x, resolution)


def train_step(run, G: Generator, D: nn.Module, batches, *, classifier=None, lambda_cg: float = 0.0) -> dict:
    """One StyleGAN-XL iteration: a D update, then a G update, both on the hinge loss (as Projected GAN).

    D step, real (x, c) at G's current resolution, z ~ N(0, I), c' uniform:
        L_D = E[max(0, 1 - D(x, c))] + E[max(0, 1 + D(G(z, c'), c'))]
    G step, fresh z, c':
        L_G = -E[D(G(z, c'), c')] + lambda_cg * CE(C(G(z, c')), c')        (classifier guidance, Sec. 3.2)

    where C is a frozen pretrained classifier. w's running class averages are updated from the G step's w.
    ``run`` has optimisers "G" (over G's parameters) and "D" (over ``D.trainable_parameters()``).
    """
    device = run.device
    x, c = batches.next()
    x = downsample_to(x, G.resolution)
    B = x.shape[0]
    z = torch.randn(B, G.z_dim, device=device)
    c_fake = torch.randint(0, G.n_classes, (B,), device=device)
    with torch.no_grad():
        x_fake = G(z, c_fake)
    with run.autocast():
        d_real, d_fake = D(x, c), D(x_fake, c_fake)
        loss_D = hinge_discriminator_loss(d_real, d_fake)
    run.update("D", loss_D)

    trainable = D.trainable_parameters()
    for p in trainable:
        p.requires_grad_(False)
    z = torch.randn(B, G.z_dim, device=device)
    c_fake = torch.randint(0, G.n_classes, (B,), device=device)
    with run.autocast():
        w = G.mapping(z, c_fake)
        x_fake = G.synthesis(w)
        loss_adv = hinge_generator_loss(D(x_fake, c_fake))
        loss_cg = (F.cross_entropy(classifier_logits(classifier, x_fake), c_fake)
                   if classifier is not None and lambda_cg > 0 else torch.zeros((), device=device))
    run.update("G", loss_adv + lambda_cg * loss_cg)
    for p in trainable:
        p.requires_grad_(True)
    G.mapping.update_w_avg(w, c_fake)
    return dict(loss_D=loss_D.detach(), loss_G=loss_adv.detach(), loss_cg=loss_cg.detach(),
                D_real=d_real.detach().mean(), D_fake=d_fake.detach().mean())


# --------------------------------------------------------------------------- sampling
def _latents(n: int, z_dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def sample(G: Generator, c: torch.Tensor, psi: float = 1.0, seed: int = 0, z: torch.Tensor | None = None,
           batch_size: int = 500) -> torch.Tensor:
    """Images G(z, c) with truncation ``psi`` toward each class's average w, z seeded by ``seed`` (or given),
    constant noise, eval mode; CPU, clamped to [-1, 1] (StyleGAN has no output tanh)."""
    was = G.training
    G.eval()
    device = next(G.parameters()).device
    z = _latents(len(c), G.z_dim, seed) if z is None else z
    try:
        out = torch.cat([G(z[i:i + batch_size].to(device), c[i:i + batch_size].to(device), psi, "const").cpu()
                         for i in range(0, len(c), batch_size)])
    finally:
        G.train(was)
    return out.clamp(-1, 1)


def sampler(G: Generator, psi: float = 1.0, seed: int = 0):
    """``n -> n`` class-balanced images (classes 0, 1, ..., K-1, 0, ...): the form ``gan_course.metrics`` takes."""
    return lambda n: sample(G, torch.arange(n) % G.n_classes, psi, seed)


@torch.no_grad()
def mix_styles(G: Generator, z_a: torch.Tensor, z_b: torch.Tensor, c: torch.Tensor, crossover: int,
               psi: float = 1.0) -> torch.Tensor:
    """Style mixing (StyleGAN, Sec. 3.1): w_a drives the layers before index ``crossover`` (coarse: layout, class
    shape), w_b those from ``crossover`` on (fine: stroke, texture). ``crossover`` = 0 gives G(z_b), ``num_ws`` gives
    G(z_a). Constant noise, eval mode, clamped to [-1, 1]."""
    was = G.training
    G.eval()
    try:
        w_a, w_b = G.mapping(z_a, c, psi), G.mapping(z_b, c, psi)
        ws = w_a.unsqueeze(1).repeat(1, G.num_ws, 1)
        ws[:, crossover:] = w_b.unsqueeze(1)
        out = G.synthesis(ws, "const")
    finally:
        G.train(was)
    return out.cpu().clamp(-1, 1)


@torch.no_grad()
def within_class_spread(net, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Variety *inside* the classes: the mean over classes k of tr Cov(phi(x) | class k), the summed variance of the
    feature network's features phi over the images of each class. 0 when every image of a class is the same (psi = 0
    with constant noise); divided by the real data's value it says how much of the data's within-class variety G
    reproduces (precision/recall mix this with fidelity; this number does not)."""
    from ..metrics import extract

    f = extract(net, images)
    labels = torch.as_tensor(labels).cpu()
    traces = [f[labels == k].var(0, unbiased=False).sum() for k in labels.unique()]
    return float(torch.stack(traces).mean())


def truncation_sweep(G: Generator, psis, dataset: str = "glyphs", n: int = 1000, seed: int = 0, grid: int = 40,
                     data_options: dict | None = None, **evaluate_kwargs) -> list[dict]:
    """The fidelity / variety curve: for each psi, ``gan_course.metrics.evaluate`` on ``n`` class-balanced samples
    (FID, precision, recall, classes covered with the course classifier), the classifier agreement with the class
    each sample was generated for, the within-class variety relative to the data's (``within_class_spread`` of the
    samples / that of ``n`` training images, in the course classifier's features), and the first ``grid`` samples.
    The same z at every psi."""
    from ..data import load
    from ..metrics import classifier_agreement, course_classifier, evaluate

    net = course_classifier(dataset)
    real = load(dataset, **(data_options or {}))
    index = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n]
    x_real, y_real = real.get_batch(index)[:2] if hasattr(real, "get_batch") else \
        [torch.stack(t) for t in zip(*[real[int(i)][:2] for i in index], strict=True)]
    real_spread = within_class_spread(net, x_real, y_real)
    c = torch.arange(n) % G.n_classes
    rows = []
    for psi in psis:
        images = sample(G, c, psi, seed)
        m = evaluate(images, dataset, n=n, seed=seed, data_options=data_options, **evaluate_kwargs)
        rows.append(dict(psi=psi, fid=m["fid"], precision=m["precision"], recall=m["recall"],
                         classes_covered=m["classes_covered"], agreement=classifier_agreement(net, images, c),
                         variety=within_class_spread(net, images, c) / real_spread, images=images[:grid]))
    return rows


# --------------------------------------------------------------------------- explorers
def render_class_truncation(G: Generator, sweep: list[dict], class_names, c: int, psi: float, n: int = 8,
                            seed: int = 0):
    """Explorer figure: ``n`` samples of class ``c`` at truncation ``psi`` (same z as psi changes) beside the
    fidelity / variety curve of ``sweep`` (``truncation_sweep`` rows), with the nearest swept psi marked."""
    from ..viz import show_images

    images = sample(G, torch.full((n,), int(c)), psi, seed)
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), gridspec_kw={"width_ratios": [1.6, 1, 1]})
    show_images(images, nrow=n, ax=axes[0], title=f"class '{class_names[c]}', psi = {psi:.2f}")
    psis = [r["psi"] for r in sweep]
    near = min(range(len(sweep)), key=lambda i: abs(psis[i] - psi))
    axes[1].plot([r["variety"] for r in sweep], [r["precision"] for r in sweep], "o-")
    for r in sweep:
        axes[1].annotate(f"psi {r['psi']:g}", (r["variety"], r["precision"]), fontsize="small")
    axes[1].plot(sweep[near]["variety"], sweep[near]["precision"], "k*", markersize=15,
                 label=f"psi = {psis[near]:g}")
    axes[1].set(xlabel="within-class variety (data = 1)", ylabel="precision (fidelity)",
                title="Fidelity vs variety over psi")
    axes[2].plot(psis, [r["fid"] for r in sweep], "o-", label="FID (course classifier)")
    axes[2].axvline(psis[near], color="k", ls=":")
    axes[2].set(xlabel="truncation psi", ylabel="FID", title="FID vs truncation")
    for ax in axes[1:]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def class_truncation_explorer(G: Generator, sweep: list[dict], class_names, n: int = 8):
    """Class picker + psi slider: ``render_class_truncation``."""
    import ipywidgets as widgets

    from ..widgets import choice, explorer

    return explorer(lambda c, psi, seed: render_class_truncation(G, sweep, class_names, c, psi, n, seed),
                    title="Class and truncation in W",
                    c=choice([(name, k) for k, name in enumerate(class_names)], description="class"),
                    psi=widgets.FloatSlider(value=1.0, min=0.0, max=1.2, step=0.1, description="psi"),
                    seed=widgets.IntSlider(value=0, min=0, max=99, description="seed"))


def render_style_mixing(G: Generator, class_names, c: int, seed_a: int, seed_b: int, crossover: int,
                        psi: float = 1.0, n: int = 6):
    """Explorer figure: a row of G(z_a), a row of G(z_b) and a row of the mixes (w_a before ``crossover``, w_b from it),
    ``n`` seeds each (seed_a + i, seed_b + i), class ``c``."""
    from ..viz import show_images

    cs = torch.full((n,), int(c))
    z_a = torch.stack([_latents(1, G.z_dim, seed_a + i)[0] for i in range(n)])
    z_b = torch.stack([_latents(1, G.z_dim, seed_b + i)[0] for i in range(n)])
    rows = torch.cat([mix_styles(G, z_a, z_a, cs, 0, psi), mix_styles(G, z_b, z_b, cs, 0, psi),
                      mix_styles(G, z_a, z_b, cs, crossover, psi)])
    fig, ax = plt.subplots(figsize=(1.3 * n + 1, 4.4))
    show_images(rows, nrow=n, ax=ax, title=f"class '{class_names[c]}': rows A, B, and A's w for layers < {crossover}"
                                           f" + B's w for layers >= {crossover} (of {G.num_ws})")
    fig.tight_layout()
    return fig


def style_mixing_explorer(G: Generator, class_names, n: int = 6):
    """Class, two seeds and the crossover layer: ``render_style_mixing``."""
    import ipywidgets as widgets

    from ..widgets import choice, explorer

    return explorer(lambda c, seed_a, seed_b, crossover: render_style_mixing(G, class_names, c, seed_a, seed_b,
                                                                             crossover, n=n),
                    title="Style mixing between two seeds",
                    c=choice([(name, k) for k, name in enumerate(class_names)], description="class"),
                    seed_a=widgets.IntSlider(value=0, min=0, max=99, description="seed A"),
                    seed_b=widgets.IntSlider(value=50, min=0, max=99, description="seed B"),
                    crossover=widgets.IntSlider(value=G.num_ws // 2, min=0, max=G.num_ws,
                                                description="crossover"))


def render_interpolation(G: Generator, class_names, c_a: int, c_b: int, seed_a: int, seed_b: int, space: str = "W",
                         steps: int = 8, psi: float = 1.0):
    """Explorer figure: ``steps`` images from (z_a, c_a) to (z_b, c_b). In "W": w = lerp(f(z_a, c_a), f(z_b, c_b), t)
    (StyleGAN's perceptual path length is measured this way); in "Z": z and the class embedding are interpolated
    linearly before the mapping network."""
    from ..sampling import lerp
    from ..viz import show_images

    was = G.training
    G.eval()
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    z_a, z_b = _latents(1, G.z_dim, seed_a), _latents(1, G.z_dim, seed_b)
    m = G.mapping
    with torch.no_grad():
        if space == "W":
            w_a, w_b = m(z_a, torch.tensor([c_a]), psi), m(z_b, torch.tensor([c_b]), psi)
            w = lerp(w_a, w_b, t)
        elif space == "Z":
            e = m.embed.weight
            e_t = lerp(e[c_a:c_a + 1], e[c_b:c_b + 1], t)
            z_t = lerp(z_a, z_b, t)
            e_c = normalize_2nd_moment(m.project(normalize_2nd_moment(e_t)))
            w = m.layers(torch.cat([normalize_2nd_moment(z_t), e_c], dim=1))
            w_avg = lerp(m.w_avg_c[c_a:c_a + 1], m.w_avg_c[c_b:c_b + 1], t)
            w = truncate(w, w_avg, psi)
        else:
            raise ValueError(f"space must be 'W' or 'Z', got {space!r}")
        images = G.synthesis(w, "const").clamp(-1, 1)
    G.train(was)
    fig, ax = plt.subplots(figsize=(1.3 * steps + 1, 2.2))
    show_images(images, nrow=steps, ax=ax, title=f"'{class_names[c_a]}' (seed {seed_a}) -> '{class_names[c_b]}' "
                                                  f"(seed {seed_b}), linear in {space}")
    fig.tight_layout()
    return fig


def interpolation_explorer(G: Generator, class_names, steps: int = 8):
    """Two classes, two seeds, the space (W or Z): ``render_interpolation``."""
    import ipywidgets as widgets

    from ..widgets import choice, explorer

    classes = [(name, k) for k, name in enumerate(class_names)]
    return explorer(lambda c_a, c_b, seed_a, seed_b, space: render_interpolation(
                        G, class_names, c_a, c_b, seed_a, seed_b, space, steps),
                    title="Interpolation between two (class, seed) pairs",
                    c_a=choice(classes, description="class A"),
                    c_b=choice(classes, value=min(1, len(classes) - 1), description="class B"),
                    seed_a=widgets.IntSlider(value=0, min=0, max=99, description="seed A"),
                    seed_b=widgets.IntSlider(value=1, min=0, max=99, description="seed B"),
                    space=widgets.ToggleButtons(options=["W", "Z"], value="W", description="space"))
