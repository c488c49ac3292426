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
- **Spectral analysis** (Sec. 4): the top singular values sigma_0 of every weight, recorded over training,
  reveal when and where training collapses.

The module holds the chapter's networks and tools, top to bottom: ``GBlock`` / ``DBlock`` / ``Generator`` /
``Discriminator``; ``orthogonal_regularization``; ``train_step`` (one BigGAN iteration); ``sample`` and the
truncation sweep (``truncation_sweep``, ``saturated_fraction``); ``SpectraRecorder``; the two explorers
(``render_truncation`` / ``truncation_explorer``, ``render_spectra`` / ``spectra_explorer``). The building blocks
(``ConditionalBatchNorm2d``, ``SelfAttention2d``, ``spectral_norm``) come from ``gan_course.layers``, the hinge
loss from ``gan_course.losses``, the truncated sampler from ``gan_course.sampling``, the EMA from
``gan_course.training``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ..analysis import top_singular_values
from ..layers import ConditionalBatchNorm2d, SelfAttention2d, spectral_norm
from ..losses import hinge_discriminator_loss, hinge_generator_loss
from ..sampling import truncated_normal

__all__ = ["GBlock", "DBlock", "Generator", "Discriminator", "raw_weight", "weight_layers",
           "off_diagonal_orthogonal_penalty", "orthogonal_regularization", "train_step", "sample",
           "saturated_fraction", "truncation_sweep", "SpectraRecorder", "top_singular_values",
           "render_truncation", "truncation_explorer", "render_spectra", "spectra_explorer", "refresh_spectral_norm"]


# --------------------------------------------------------------------------- orthogonal init + spectral norm
def _ortho(module: nn.Module) -> nn.Module:
    """Orthogonal initialisation of ``module.weight`` (Saxe et al., 2014; BigGAN Appendix B), zero bias."""
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return module


def _sn(module: nn.Module, sn: bool) -> nn.Module:
    """Spectral norm *after* the orthogonal init, so the power-iteration vector u belongs to the initial weight."""
    return spectral_norm(_ortho(module)) if sn else _ortho(module)


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, sn: bool = True) -> nn.Module:
    """A 'same'-padded convolution, orthogonally initialised, spectrally normalised when ``sn``."""
    return _sn(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), sn)


def linear(in_features: int, out_features: int, sn: bool = True, bias: bool = True) -> nn.Module:
    """A linear layer, orthogonally initialised, spectrally normalised when ``sn``."""
    return _sn(nn.Linear(in_features, out_features, bias=bias), sn)


def conditional_bn(num_features: int, cond_dim: int, sn: bool = True) -> ConditionalBatchNorm2d:
    """BigGAN's conditional BN: y = (1 + gamma(c)) * BN(x) + beta(c), gamma and beta linear (no bias) in c.

    ``gan_course.layers.ConditionalBatchNorm2d`` with its two linear maps orthogonally initialised and
    spectrally normalised (as in the reference code, where they are ``SNLinear``).
    """
    bn = ConditionalBatchNorm2d(num_features, cond_dim, sn=False)
    _sn(bn.gain, sn)
    _sn(bn.bias, sn)
    return bn


def attention(channels: int, sn: bool = True) -> SelfAttention2d:
    """BigGAN's self-attention variant (the reference ``Attention`` layer): keys f and queries g with C/8 channels,
    values h with C/2 channels, keys and values max-pooled 2 x 2, a 1 x 1 output conv back to C, gate gamma = 0 at
    init; every conv orthogonally initialised and spectrally normalised."""
    block = SelfAttention2d(channels, value_channels=channels // 2, pool=True, sn=False)
    for name in ("W_f", "W_g", "W_h", "W_v"):
        setattr(block, name, _sn(getattr(block, name), sn))
    return block


# --------------------------------------------------------------------------- residual blocks (Appendix B, Fig. 15)
class GBlock(nn.Module):
    """BigGAN's generator residual block (Fig. 15 b), doubling the resolution:

        h   = conv3x3( relu( cBN_2( conv3x3( up( relu( cBN_1(x, c) ) ) ), c ) ) )
        out = h + conv1x1( up(x) )

    c = [e(y), z_l]: the shared class embedding concatenated with this block's chunk of z. Each cBN predicts its
    per-channel gain 1 + gamma(c) and bias beta(c) with its own linear maps of c.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, sn: bool = True):
        super().__init__()
        self.bn1 = conditional_bn(in_channels, cond_dim, sn)
        self.conv1 = conv(in_channels, out_channels, 3, sn)
        self.bn2 = conditional_bn(out_channels, cond_dim, sn)
        self.conv2 = conv(out_channels, out_channels, 3, sn)
        self.shortcut = conv(in_channels, out_channels, 1, sn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """BigGAN's discriminator residual block (Fig. 15 c), no batch norm:

        h   = avgpool( conv3x3( relu( conv3x3( a(x) ) ) ) )       a = relu (pre-activation), identity in block 1
        out = h + avgpool( conv1x1(x) )                           (block 1: conv1x1(avgpool(x)))

    ``downsample=False`` keeps the resolution (the last blocks at 32 x 32); the shortcut is then the identity
    when the widths agree.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = True, first: bool = False,
                 sn: bool = True):
        super().__init__()
        self.conv1 = conv(in_channels, out_channels, 3, sn)
        self.conv2 = conv(out_channels, out_channels, 3, sn)
        self.learn_shortcut = downsample or in_channels != out_channels
        self.shortcut = conv(in_channels, out_channels, 1, sn) if self.learn_shortcut else None
        self.downsample, self.first = downsample, first

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if not self.learn_shortcut:
            return h + x
        return h + (self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x)))


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

    def __init__(self, z_dim: int = 80, n_classes: int = 10, ch: int = 16, shared_dim: int = 32,
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
        self.shared = _ortho(nn.Embedding(n_classes, shared_dim))           # E: the shared class embedding
        self.linear = linear(self.chunk, self.widths[0] * 4 * 4, sn)          # W z_0 -> 4 x 4 map
        self.blocks = nn.ModuleList(GBlock(self.widths[i], self.widths[i + 1], cond_dim, sn)
                                    for i in range(n_blocks))
        self.resolutions = [4 * 2 ** (i + 1) for i in range(n_blocks)]
        if attn_res is not None and attn_res not in self.resolutions:
            raise ValueError(f"attn_res must be one of {self.resolutions} or None, got {attn_res}")
        self.attention = (attention(self.widths[self.resolutions.index(attn_res) + 1], sn)
                          if attn_res is not None else None)
        self.bn = nn.BatchNorm2d(self.widths[-1], eps=1e-4)
        self.to_rgb = conv(self.widths[-1], out_channels, 3, sn)

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
    tapering like BigGAN's 128 x 128 discriminator (the 32 x 32 one keeps 4ch); psi: a linear map to one number; embed(y): one learned
    vector per class. The output is a logit for the hinge loss, linear in the class embedding. Every layer,
    the embedding included, is orthogonally initialised and spectrally normalised (``sn=True``).
    """

    def __init__(self, n_classes: int = 10, ch: int = 16, image_size: int = 32, attn_res: int | None = 16,
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
        self.psi = linear(self.features_dim, 1, sn)
        self.embed = _sn(nn.Embedding(n_classes, self.features_dim), sn)

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
def raw_weight(module: nn.Module) -> torch.Tensor:
    """The trainable weight of a layer: under spectral norm, the raw W (not W / sigma(W))."""
    if hasattr(module, "parametrizations") and "weight" in module.parametrizations:
        return module.parametrizations.weight.original
    return module.weight


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every (name, layer) of ``model`` with a weight matrix: convolutions, linear layers, embeddings."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) and raw_weight(m).dim() >= 2]


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


# --------------------------------------------------------------------------- one training iteration
def train_step(run, G: Generator, D: Discriminator, batches, *, d_steps: int = 2, beta: float = 1e-4) -> dict:
    """One BigGAN iteration (Appendix C): ``d_steps`` discriminator updates, then one generator update.

    D step, on a real batch (x, y) and fresh z ~ N(0, I), y_fake uniform over the classes:
        L_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z, y_fake), y_fake))]            (hinge loss)
    G step, on fresh z and y_fake:
        L_G = -E[D(G(z, y_fake), y_fake)] + R_beta(G)                                      (Eq. 3 added to G's loss)

    ``run`` is a ``gan_course.training.Run`` with optimisers "G" and "D"; ``batches`` yields (x, y) on its
    device. Returns the scalars to log (losses, R_beta, mean D outputs).
    """
    from ..training import set_requires_grad

    device = run.device
    for _ in range(d_steps):
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
    R = orthogonal_regularization(G, beta) if beta > 0 else torch.zeros((), device=device)
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
        if hasattr(module, "parametrizations") and "weight" in module.parametrizations:
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


# --------------------------------------------------------------------------- sampling and the truncation trick
@torch.no_grad()
def sample(G: nn.Module, n: int, threshold: float | None = None, y: torch.Tensor | None = None,
           generator: torch.Generator | None = None, batch_size: int = 500) -> torch.Tensor:
    """n class-conditional samples G(z, y), z from N(0, I) truncated to [-threshold, threshold] by resampling
    (``threshold=None``: no truncation, psi = infinity). ``y`` defaults to the classes in turn (0, 1, ..., K-1, 0,
    ...), balanced. G is used as it is (put it, or its EMA, in eval mode first). Returns CPU images in [-1, 1]."""
    net = getattr(G, "module", G)  # an EMA wraps the generator
    if y is None:
        y = torch.arange(n) % net.n_classes
    if threshold is None:
        z = torch.randn(n, net.z_dim, generator=generator)
    else:
        z = truncated_normal((n, net.z_dim), threshold, generator=generator)
    device = next(G.parameters()).device
    out = [G(z[i:i + batch_size].to(device), y[i:i + batch_size].to(device)).cpu() for i in range(0, n, batch_size)]
    return torch.cat(out)


def saturated_fraction(images: torch.Tensor, level: float = 0.99) -> float:
    """Fraction of pixel values at the tanh rails (|x| > ``level``): BigGAN's saturation artefacts, measured."""
    return float((images.abs() > level).float().mean())


def truncation_sweep(G: nn.Module, thresholds, dataset: str = "shapes", n: int = 1000, seed: int = 0,
                     grid: int = 40, **evaluate_kwargs) -> list[dict]:
    """The fidelity / variety trade-off (BigGAN Sec. 3.1, Fig. 2): for each truncation threshold psi (None: no
    truncation), ``gan_course.metrics.evaluate`` on ``n`` class-balanced samples with the dataset's course classifier
    (FID, precision, recall, classes covered, class KL, IS), the classifier agreement with the class each sample was
    generated for, the saturated fraction, and the first ``grid`` samples (for the explorer).

    The same seed at every threshold: values of z inside [-psi, psi] are kept, the others redrawn, so the grids
    show the same latents pulled towards 0 as psi shrinks.
    """
    from ..metrics import classifier_agreement, course_classifier, evaluate

    classifier = course_classifier(dataset)
    y = torch.arange(n) % getattr(G, "module", G).n_classes
    rows = []
    for psi in thresholds:
        images = sample(G, n, psi, y=y, generator=torch.Generator().manual_seed(seed))
        m = evaluate(images, dataset, n=n, seed=seed, **evaluate_kwargs)
        rows.append(dict(threshold=psi, fid=m["fid"], precision=m["precision"], recall=m["recall"],
                         classes_covered=m["classes_covered"], class_kl=m["class_kl"],
                         inception_score=m["inception_score"], agreement=classifier_agreement(classifier, images, y),
                         saturated=saturated_fraction(images), images=images[:grid]))
    return rows


# --------------------------------------------------------------------------- spectral analysis (Sec. 4)
class SpectraRecorder:
    """Records the singular values of every weight of some networks during training (BigGAN Sec. 4, Figs. 3, 20).

    ``record(step)`` computes, for each network and each conv / linear / embedding layer, the full spectrum
    sigma_0 >= sigma_1 >= ... of the *raw* weight reshaped to (out, -1) (under spectral norm the applied weight is
    W / sigma_0, whose top singular value is 1 by construction; the raw W is what grows or explodes).
    ``top(net, layer, k)`` gives (steps, (T, k) tensor); ``spectrum(net, layer, step)`` one recorded spectrum.
    Has ``state_dict`` / ``load_state_dict``, so ``Run.attach`` checkpoints it with the run.
    """

    def __init__(self, models: dict[str, nn.Module], every: int = 20):
        self.models, self.every = dict(models), every
        self.steps: list[int] = []
        self.values: dict[str, dict[str, list[torch.Tensor]]] = {
            net: {name: [] for name, _ in weight_layers(m)} for net, m in self.models.items()}

    def layers(self, net: str) -> list[str]:
        return list(self.values[net])

    @torch.no_grad()
    def record(self, step: int, force: bool = False) -> bool:
        """Record the spectra at ``step`` if it is a multiple of ``every`` (or ``force``); True if recorded."""
        if not force and (self.every <= 0 or step % self.every):
            return False
        if self.steps and self.steps[-1] == step:
            return False
        self.steps.append(int(step))
        for net, model in self.models.items():
            for name, layer in weight_layers(model):
                self.values[net][name].append(top_singular_values(raw_weight(layer).cpu(), k=None).float())
        return True

    def top(self, net: str, layer: str, k: int = 3) -> tuple[list[int], torch.Tensor]:
        """(steps, sigma) with sigma (T, k): sigma_0..sigma_{k-1} of ``layer`` at every recorded step."""
        values = self.values[net][layer]
        return self.steps, torch.stack([v[:k] for v in values]) if values else torch.zeros(0, k)

    def spectrum(self, net: str, layer: str, step: int) -> torch.Tensor:
        """The full recorded spectrum of ``layer`` at the recorded step nearest to ``step``."""
        i = min(range(len(self.steps)), key=lambda j: abs(self.steps[j] - step))
        return self.values[net][layer][i]

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "values": {n: {k: list(v) for k, v in d.items()}
                                                      for n, d in self.values.items()}}

    def load_state_dict(self, state: dict):
        self.steps = list(state["steps"])
        self.values = {n: {k: list(v) for k, v in d.items()} for n, d in state["values"].items()}


# --------------------------------------------------------------------------- explorers
def _threshold_label(threshold) -> str:
    return "none" if threshold is None else f"{threshold:g}"


def render_truncation(sweeps: dict[str, list[dict]], threshold, model: str | None = None, nrow: int = 10):
    """The truncation explorer's figure: the sample grid of ``model`` at truncation ``threshold`` beside the
    fidelity / variety curves of every model of ``sweeps`` ({model name: ``truncation_sweep`` rows}): precision vs
    recall, and FID and saturated fraction against the threshold; the current threshold is marked."""
    from ..viz import show_images

    model = model or next(iter(sweeps))
    rows = sweeps[model]
    i = next((j for j, r in enumerate(rows) if r["threshold"] == threshold), None)
    if i is None:
        raise ValueError(f"threshold {threshold} is not in the sweep: {[r['threshold'] for r in rows]}")
    finite = [r["threshold"] for r in rows if r["threshold"] is not None]
    inf_x = (max(finite) * 1.3) if finite else 1.0  # where "no truncation" is drawn on the threshold axis

    def x_of(r):
        return inf_x if r["threshold"] is None else r["threshold"]

    label = _threshold_label
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2), gridspec_kw={"width_ratios": [1.5, 1, 1, 1]})
    show_images(rows[i]["images"], nrow=nrow, ax=axes[0],
                title=f"{model}: psi = {label(threshold)}  (one class per column)")
    for name, rs in sweeps.items():
        line, = axes[1].plot([r["recall"] for r in rs], [r["precision"] for r in rs], "o-", label=name)
        axes[2].plot([x_of(r) for r in rs], [r["fid"] for r in rs], "o-", color=line.get_color(), label=name)
        axes[3].plot([x_of(r) for r in rs], [r["saturated"] for r in rs], "o-", color=line.get_color(), label=name)
    r = rows[i]
    axes[1].plot(r["recall"], r["precision"], "k*", markersize=16, label=f"psi = {label(threshold)}")
    axes[1].set(xlabel="recall (variety)", ylabel="precision (fidelity)", title="Fidelity vs variety over psi")
    for ax, ylabel, title in ((axes[2], "FID (course classifier)", "FID vs truncation"),
                                   (axes[3], "fraction of |x| > 0.99", "Saturated pixels")):
        ax.axvline(x_of(r), color="k", ls=":", lw=1)
        ax.set(xlabel="truncation threshold psi (right end: none)", ylabel=ylabel, title=title)
        ax.set_xticks([x_of(q) for q in rows])
        ax.set_xticklabels([label(q["threshold"]) for q in rows], fontsize="small")
    for ax in axes[1:]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def truncation_explorer(sweeps: dict[str, list[dict]]):
    """Threshold slider (and model choice) over precomputed ``truncation_sweep`` results: ``render_truncation``.

    The slider shows the thresholds as text ("none" for no truncation) and passes the number (or None) on."""
    import ipywidgets as widgets

    from ..widgets import choice, explorer

    models = list(sweeps)
    thresholds = {_threshold_label(r["threshold"]): r["threshold"] for r in sweeps[models[0]]}
    labels = list(thresholds)
    return explorer(lambda psi, model: render_truncation(sweeps, thresholds[psi], model),
                    title="The truncation trick: fidelity against variety",
                    psi=widgets.SelectionSlider(options=labels, value=labels[-1], description="psi"),
                    model=choice(models, description="model"))


def render_spectra(recorders: dict[str, SpectraRecorder], run: str, net: str, layer: str, step: int,
                   normalised: bool = False, k: int = 3):
    """The spectra explorer's figure for one layer: sigma_0..sigma_{k-1} over training with the chosen step marked
    (left), and the full spectrum at that step (right). ``normalised``: divide by sigma_0, i.e. the spectrum of the
    weight spectral norm actually applies, W / sigma_0(W)."""
    rec = recorders[run]
    if layer not in rec.values[net]:
        raise ValueError(f"{net} of run {run!r} has no layer {layer!r}; choose one of {rec.layers(net)}")
    steps, top = rec.top(net, layer, k)
    spectrum = rec.spectrum(net, layer, step)
    if normalised:
        top, spectrum = top / top[:, :1], spectrum / spectrum[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for j in range(top.shape[1]):
        axes[0].plot(steps, top[:, j].numpy(), label=f"sigma_{j}")
    axes[0].axvline(step, color="k", ls=":", lw=1)
    what = "of W / sigma_0(W)" if normalised else "of the raw weight W"
    axes[0].set(xlabel="generator step", ylabel="singular value", title=f"{run} · {net}.{layer}: top {k} {what}")
    axes[1].semilogy(range(len(spectrum)), spectrum.clamp_min(1e-8).numpy(), ".-")
    axes[1].set(xlabel="index i", ylabel="sigma_i (log scale)", title=f"full spectrum at step {step}")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def spectra_explorer(recorders: dict[str, SpectraRecorder]):
    """Pick a run, a layer of G or D and a step (slider over the recorded steps): ``render_spectra``."""
    import ipywidgets as widgets

    from ..widgets import choice, explorer

    runs = list(recorders)
    first = recorders[runs[0]]
    layers = [f"{net}: {name}" for net in first.values for name in first.layers(net)]
    steps = sorted(set().union(*(rec.steps for rec in recorders.values())))
    default = next((x for x in layers if x.startswith("D")), layers[0])

    def render(run, layer, step, normalised):
        net, name = layer.split(": ", 1)
        return render_spectra(recorders, run, net, name, step, normalised)

    return explorer(render, title="Singular values over training (BigGAN Sec. 4)",
                    run=choice(runs, description="run"), layer=choice(layers, value=default, description="layer"),
                    step=widgets.SelectionSlider(options=steps, value=steps[-1], description="step"),
                    normalised=widgets.Checkbox(value=False, description="W / sigma_0 (as SN applies it)"))
