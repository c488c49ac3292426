"""Building blocks shared by several chapters, each written beside the equation it implements.

- ``spectral_norm`` / ``SNConv2d`` / ``SNLinear``: W / sigma(W) (Miyato et al., 2018), used by SAGAN, BigGAN;
  ``orthogonal_sn`` / ``ortho_conv2d`` / ``ortho_linear``: the same after an orthogonal initialisation (BigGAN);
  ``raw_weight`` / ``weight_layers``: the weights those layers hold (what SN divides, what BigGAN regularises).
- ``SelfAttention2d``: the self-attention block of SAGAN (Zhang et al., 2018), also in BigGAN.
- ``ConditionalBatchNorm2d``: batch norm whose gain and bias are predicted from a conditioning vector (BigGAN).
- ``ModulatedConv2d``: StyleGAN2's modulated / demodulated convolution (Karras et al., 2020), used by StyleGAN-XL.
- ``diff_augment``: DiffAugment's random translation of D's inputs (Zhao et al., 2020), StyleGAN-XL and StarGAN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _torch_spectral_norm


# --------------------------------------------------------------------------- Miyato et al. (2018)
def spectral_norm(module: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12) -> nn.Module:
    """Reparametrise ``module.weight`` as W_SN = W / sigma(W) (Miyato et al., 2018, arXiv 1802.05957, Eq. 8).

    sigma(W), the largest singular value of W reshaped to (out, -1), is estimated by power iteration with a
    persistent vector u, one step per forward pass in training mode (Algorithm 1). The result is a layer whose
    Lipschitz constant is at most 1. This is PyTorch's own implementation
    (``torch.nn.utils.parametrizations.spectral_norm``); the raw weight is ``module.parametrizations.weight.original``.
    """
    return _torch_spectral_norm(module, n_power_iterations=n_power_iterations, eps=eps)


def SNConv2d(*args, **kwargs) -> nn.Conv2d:
    """``nn.Conv2d`` with spectral normalisation."""
    return spectral_norm(nn.Conv2d(*args, **kwargs))


def SNLinear(*args, **kwargs) -> nn.Linear:
    """``nn.Linear`` with spectral normalisation."""
    return spectral_norm(nn.Linear(*args, **kwargs))


def orthogonal_sn(module: nn.Module, sn: bool = True) -> nn.Module:
    """Orthogonal initialisation of ``module.weight`` (Saxe et al., 2014; BigGAN Appendix B), zero bias, then
    spectral norm when ``sn`` (SAGAN, BigGAN).

    The weight is initialised *before* spectral norm is applied, so that the power-iteration vector u that
    ``spectral_norm`` prepares belongs to the final initial weight.
    """
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return spectral_norm(module) if sn else module


def ortho_conv2d(in_channels: int, out_channels: int, kernel_size: int = 3, *, sn: bool = True,
                 bias: bool = True) -> nn.Module:
    """A 'same'-padded convolution, orthogonally initialised, spectrally normalised when ``sn`` (SAGAN, BigGAN)."""
    return orthogonal_sn(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias), sn)


def ortho_linear(in_features: int, out_features: int, *, sn: bool = True, bias: bool = True) -> nn.Module:
    """A linear layer, orthogonally initialised, spectrally normalised when ``sn`` (SAGAN, BigGAN)."""
    return orthogonal_sn(nn.Linear(in_features, out_features, bias=bias), sn)


def is_spectrally_normalised(module: nn.Module) -> bool:
    """True when ``module.weight`` is reparametrised by ``spectral_norm``."""
    return hasattr(module, "parametrizations") and "weight" in module.parametrizations


def raw_weight(module: nn.Module) -> torch.Tensor:
    """The weight the optimiser updates: W itself, or the unnormalised W of a spectrally normalised layer."""
    return module.parametrizations.weight.original if is_spectrally_normalised(module) else module.weight


def weight_layers(model: nn.Module, *, conditional_bn: bool = True) -> list[tuple[str, nn.Module]]:
    """(name, layer) for every convolution, linear layer and embedding of ``model``: the layers spectral norm and
    orthogonal regularisation act on (SAGAN, BigGAN).

    ``conditional_bn`` decides the linear maps inside ``ConditionalBatchNorm2d``: BigGAN's predict gain and bias
    from c = [e(y), z_l] and are weights like any other (spectrally normalised, regularised): ``True``; SAGAN's
    are per-class tables (gamma_y, beta_y), not normalised: ``False`` leaves them out.
    """
    skip = () if conditional_bn else tuple(f"{name}." for name, m in model.named_modules()
                                           if isinstance(m, ConditionalBatchNorm2d))
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) and not name.startswith(skip)]


# --------------------------------------------------------------------------- Zhang et al. (2018)
class SelfAttention2d(nn.Module):
    """Self-attention over the positions of a feature map (SAGAN, Zhang et al., 2018, arXiv 1805.08318, Sec. 3).

    With x in R^{C x N} (N = H * W positions), C_bar = C / 8:

        f(x) = W_f x,  g(x) = W_g x,  h(x) = W_h x          (1x1 convolutions to C_bar channels)
        s_ij = f(x_i)^T g(x_j)
        beta_{j,i} = exp(s_ij) / sum_i exp(s_ij)             (softmax over the keys i, for each query j)
        o_j = v( sum_i beta_{j,i} h(x_i) ),  v(x) = W_v x    (W_v maps C_bar back to C)
        y = gamma * o + x,                                   gamma initialised to 0

    so at initialisation the block is the identity and the network learns how much non-local evidence to use.
    This is the paper's variant. The official code (SAGAN's TensorFlow ``sn_non_local_block_sim``) and BigGAN-PyTorch's
    ``Attention`` also max-pool keys and values 2x2 (N/4 keys) and give h C/2 channels: pass
    ``pool=True, value_channels=C // 2`` for that variant. ``pool`` says where the pooling sits:

    - ``True`` or ``"after"``: the official order, f(x) and h(x) computed at every position, then max-pooled 2x2;
    - ``"before"``: x max-pooled 2x2 first, then the 1x1 convolutions (4x fewer multiply-adds for f and h; not
      the same function, since a max does not commute with a linear map: kept for weights trained that way);
    - ``False``: no pooling (the paper's text).

    ``forward(x, return_attention=True)`` also returns beta as (B, N_queries, N_keys), rows summing to 1;
    otherwise the memory-efficient fused kernel (``F.scaled_dot_product_attention``, scale 1 as in the paper)
    is used and the N x N map is never stored.
    """

    POOL = (False, True, "after", "before")

    def __init__(self, channels: int, key_channels: int | None = None, value_channels: int | None = None,
                 pool: bool | str = False, sn: bool = True):
        super().__init__()
        if not any(pool is p or (isinstance(pool, str) and pool == p) for p in self.POOL):
            raise ValueError(f"pool must be one of {self.POOL} (True is the official 'after'), got {pool!r}")
        if channels < 8:
            raise ValueError(f"SelfAttention2d needs at least 8 channels (C/8 >= 1), got {channels}")
        c_bar = key_channels or channels // 8
        c_value = value_channels or c_bar
        conv = SNConv2d if sn else nn.Conv2d
        self.W_f = conv(channels, c_bar, 1, bias=False)  # keys
        self.W_g = conv(channels, c_bar, 1, bias=False)  # queries
        self.W_h = conv(channels, c_value, 1, bias=False)  # values
        self.W_v = conv(c_value, channels, 1, bias=False)  # back to C channels
        self.gamma = nn.Parameter(torch.zeros(1))
        self.pool = "after" if pool is True else pool

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        B, C, H, W = x.shape
        query = self.W_g(x).flatten(2).transpose(1, 2)  # (B, N, C_bar): g(x_j)
        keys_in = F.max_pool2d(x, 2) if self.pool == "before" else x
        key, value = self.W_f(keys_in), self.W_h(keys_in)
        if self.pool == "after":                          # the official order: convolve, then pool
            key, value = F.max_pool2d(key, 2), F.max_pool2d(value, 2)
        key = key.flatten(2).transpose(1, 2)  # (B, N_k, C_bar): f(x_i)
        value = value.flatten(2).transpose(1, 2)  # (B, N_k, C_v): h(x_i)
        if return_attention:
            s = query @ key.transpose(1, 2)  # s[b, j, i] = f(x_i)^T g(x_j)
            beta = s.softmax(dim=-1)  # normalise over the keys i
            attended = beta @ value
        else:
            attended = F.scaled_dot_product_attention(query, key, value, scale=1.0)
        o = self.W_v(attended.transpose(1, 2).reshape(B, -1, H, W))
        y = self.gamma * o + x
        return (y, beta) if return_attention else y


# --------------------------------------------------------------------------- de Vries et al. (2017); Brock et al. (2018)
class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are functions of a conditioning vector (BigGAN, Sec. 3 and Appendix B).

        y = (1 + gain(c)) * (x - mu) / sigma + bias(c),     gain, bias: linear maps of c

    In BigGAN, c is the shared class embedding concatenated with a chunk of z (the hierarchical latent). The
    gain is parametrised around 1 so a freshly initialised layer is plain batch norm.
    """

    def __init__(self, num_features: int, cond_dim: int, sn: bool = True, eps: float = 1e-4, momentum: float = 0.1):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False, eps=eps, momentum=momentum)
        linear = SNLinear if sn else nn.Linear
        self.gain = linear(cond_dim, num_features, bias=False)
        self.bias = linear(cond_dim, num_features, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gain = (1 + self.gain(c)).unsqueeze(-1).unsqueeze(-1)
        bias = self.bias(c).unsqueeze(-1).unsqueeze(-1)
        return self.bn(x) * gain + bias


# --------------------------------------------------------------------------- Karras et al. (2020)
class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution (Karras et al., 2020, arXiv 1912.04958, Sec. 2.2, Eqs. 1-3).

        s = A(style)                                  (affine map; bias initialised to 1)
        w'_ijk = s_i * w_ijk                          (modulation: scale input channel i)
        w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps)   (demodulation: each output filter j has unit L2 norm)

    Demodulation replaces AdaIN's explicit normalisation: for inputs with unit variance the outputs have unit
    variance again, statistically rather than by measuring the activations. Weights use the equalised learning
    rate (stored ~ N(0, 1), scaled by 1/sqrt(fan_in) at run time). Implemented as one grouped convolution with
    a different kernel per sample.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, eps: float = 1e-8):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.eps = demodulate, eps
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = nn.Linear(style_dim, in_channels)
        nn.init.ones_(self.affine.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        if C != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {C}")
        s = self.affine(style)  # (B, in)
        w = self.weight.unsqueeze(0) * self.weight_gain * s.view(B, 1, C, 1, 1)  # (B, out, in, k, k)
        if self.demodulate:
            w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + self.eps)
        w = w.reshape(B * self.out_channels, C, self.kernel_size, self.kernel_size)
        y = F.conv2d(x.reshape(1, B * C, H, W), w, padding=self.kernel_size // 2, groups=B)
        return y.reshape(B, self.out_channels, y.shape[-2], y.shape[-1])


# --------------------------------------------------------------------------- augmentation for D
def diff_augment(x: torch.Tensor, translation: float = 0.125, generator: torch.Generator | None = None):
    """Differentiable augmentation (Zhao et al. 2020, arXiv 2006.10738), the translation part: shift each image by up
    to ``translation`` of its size, padding with the background (-1). Applied to every image D sees, real or
    generated, with gradients flowing through to G, so D cannot key on where a pixel sits and G cannot win by
    placing one. Projected GAN / StyleGAN-XL use it (with DiffAugment's cutout and colour); chapter 09 uses it
    for StarGAN's discriminator."""
    if translation <= 0:
        return x
    B, _, H, W = x.shape
    sh, sw = int(H * translation + 0.5), int(W * translation + 0.5)
    dy = torch.randint(-sh, sh + 1, (B,), generator=generator).tolist()
    dx = torch.randint(-sw, sw + 1, (B,), generator=generator).tolist()
    padded = F.pad(x, (sw, sw, sh, sh), value=-1.0)
    return torch.stack([padded[b, :, sh + dy[b]:sh + dy[b] + H, sw + dx[b]:sw + dx[b] + W] for b in range(B)])
