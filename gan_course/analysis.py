"""Looking inside trained GANs: what their networks have learned, measured.

The course's analysis tools, each a plain function of tensors and modules (no training loop, no plotting), so
that notebooks can call them and tests can check them:

- **Linear probes** (Radford et al., 2015, arXiv 1511.06434, Sec. 5.1): how much of the label information a
  network's features make *linearly* available. ``pooled_features`` max-pools every layer of a feature extractor
  to a small spatial grid and concatenates them (the paper's 4x4 grid, "flattened and concatenated"), and
  ``fit_linear_probe`` trains an L2-regularised multinomial logistic regression on them (the paper used an L2-SVM);
  ``linear_probe`` does both for a train and a test set. Compare against the same architecture with random
  weights: the difference is what adversarial training taught the network.
- ``balanced_subset``: a few labelled examples per class, the semi-supervised setting of the probe experiments.
- **Receptive fields** (pix2pix's PatchGAN, Isola et al., 2017, arXiv 1611.07004, Sec. 3.2.2):
  ``receptive_field`` computes how many input pixels one output unit of a convolution stack sees, layer by
  layer; ``empirical_receptive_field`` measures it with a gradient.

Later chapters add their own tools here (e.g. singular values of weight matrices for spectral normalisation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FeatureFn = Callable[[torch.Tensor], "torch.Tensor | Sequence[torch.Tensor]"]


# ============================================================================ features
@torch.no_grad()
def pooled_features(feature_fn: FeatureFn, images: torch.Tensor, grid: int = 4, batch_size: int = 500,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Radford et al. (2015), Sec. 5.1: each layer's activation max-pooled to a ``grid`` x ``grid`` spatial map,
    flattened, and all layers concatenated: one (N, F) float32 feature matrix on the CPU.

    ``feature_fn(x)`` returns one (B, C, H, W) tensor or a list of them (e.g. ``Discriminator.features``); maps
    smaller than ``grid`` are kept whole, (B, C) vectors are used as they are. Call it with the network in the
    mode you want (``eval()`` for batch norm's running statistics).
    """
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        if device is not None:
            x = x.to(device)
        maps = feature_fn(x)
        maps = [maps] if torch.is_tensor(maps) else list(maps)
        flat = []
        for h in maps:
            if h.dim() == 4:
                size = (min(grid, h.shape[-2]), min(grid, h.shape[-1]))
                h = F.adaptive_max_pool2d(h, size)
            flat.append(h.flatten(1).float().cpu())
        out.append(torch.cat(flat, 1))
    return torch.cat(out)


# ============================================================================ the probe
@dataclass
class LinearProbe:
    """A multinomial logistic regression on standardised features: logits = ((f - mean) / std) W^T + b."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor        # (num_classes, F)
    bias: torch.Tensor          # (num_classes,)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return ((features - self.mean) / self.std) @ self.weight.t() + self.bias

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits(features).argmax(1)

    def accuracy(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        """Fraction of ``features`` whose predicted class equals ``labels``."""
        return (self.predict(features) == labels).float().mean().item()


def fit_linear_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None,
                     weight_decay: float = 1e-3, max_iter: int = 200) -> LinearProbe:
    """Fit an L2-regularised multinomial logistic regression, minimising

        (1/N) sum_i -log softmax(W f_i + b)_{y_i} + (weight_decay / 2) ||W||^2,

    on features standardised to zero mean and unit variance (per feature, statistics of ``features``), by
    full-batch L-BFGS from zero weights: deterministic, and a few seconds for thousands of examples.
    The paper (Sec. 5.1) trained a regularised linear L2-SVM; any linear classifier measures the same thing,
    and this one needs nothing beyond torch.
    """
    features = features.float()
    labels = labels.long()
    if len(features) != len(labels):
        raise ValueError(f"features and labels differ in length: {len(features)} vs {len(labels)}")
    k = int(num_classes if num_classes is not None else labels.max().item() + 1)
    mean = features.mean(0)
    std = features.std(0).clamp_min(1e-6)
    f = (features - mean) / std
    W = torch.zeros(k, f.shape[1], requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(f @ W.t() + b, labels) + weight_decay / 2 * W.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearProbe(mean, std, W.detach(), b.detach())


def balanced_subset(targets: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class in ``targets``, drawn at random (seeded), sorted."""
    targets = torch.as_tensor(targets)
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in targets.unique():
        index = (targets == c).nonzero().flatten()
        if len(index) < per_class:
            raise ValueError(f"class {int(c)} has only {len(index)} examples, fewer than per_class={per_class}")
        picks.append(index[torch.randperm(len(index), generator=g)[:per_class]])
    return torch.cat(picks).sort().values


def linear_probe(feature_fn: FeatureFn, train_images: torch.Tensor, train_labels: torch.Tensor,
                 test_images: torch.Tensor, test_labels: torch.Tensor, grid: int = 4, weight_decay: float = 1e-3,
                 num_classes: int | None = None, device=None) -> dict:
    """Sec. 5.1 in one call: pooled features of both sets, a probe fitted on the training set, its accuracies.

    Returns ``{"train_accuracy", "test_accuracy", "probe", "dim"}`` (``dim`` = length of the feature vector).
    """
    f_train = pooled_features(feature_fn, train_images, grid=grid, device=device)
    f_test = pooled_features(feature_fn, test_images, grid=grid, device=device)
    probe = fit_linear_probe(f_train, train_labels, num_classes=num_classes, weight_decay=weight_decay)
    return {"train_accuracy": probe.accuracy(f_train, train_labels),
            "test_accuracy": probe.accuracy(f_test, test_labels), "probe": probe, "dim": f_train.shape[1]}


# ============================================================================ receptive fields
@dataclass
class ReceptiveField:
    """The receptive field of one output unit of a stack of convolutions / poolings (per spatial side).

    ``size`` (r): how many input pixels one output unit sees; ``jump`` (j): input pixels between two
    neighbouring output units (the product of the strides); ``start``: the input coordinate of the centre of
    output unit 0's field (pixel centres at 0, 1, 2, ...; negative when padding puts it outside the image), so
    unit i is centred at ``start + i * jump``. ``layers`` lists the same three numbers after every layer.
    """

    size: int
    jump: int
    start: float
    layers: list[dict]

    def __str__(self) -> str:
        rows = [f"{'layer':<28} {'k':>3} {'s':>3} {'p':>3} {'d':>3} {'r':>5} {'j':>4}"]
        rows += [f"{lay['name']:<28} {lay['kernel']:>3} {lay['stride']:>3} {lay['padding']:>3} {lay['dilation']:>3} "
                 f"{lay['size']:>5} {lay['jump']:>4}" for lay in self.layers]
        rows.append(f"receptive field {self.size} x {self.size}, one unit every {self.jump} input pixels")
        return "\n".join(rows)


def _square(value, what: str, name: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"{name}: {what} {tuple(value)} differs between axes; receptive_field handles square "
                             "kernels, strides, padding and dilation only")
        value = value[0]
    if not isinstance(value, int):
        raise ValueError(f"{name}: {what} {value!r} is not an integer (padding='same'/'valid' strings are not handled)")
    return value


def _layer_specs(layers) -> list[tuple[str, int, int, int, int]]:
    """(name, kernel, stride, padding, dilation) of every spatial layer of a module or a list of specs."""
    from torch import nn

    specs = []
    if isinstance(layers, nn.Module):
        for name, m in layers.named_modules():
            if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Upsample)):
                raise ValueError(f"{name} ({type(m).__name__}) up-samples; receptive_field follows down-sampling "
                                 "stacks (convolutions and poolings) only")
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
                label = f"{name or 'module'} ({type(m).__name__})"
                dilation = getattr(m, "dilation", 1)
                specs.append((label, _square(m.kernel_size, "kernel_size", label), _square(m.stride, "stride", label),
                              _square(m.padding, "padding", label), _square(dilation, "dilation", label)))
        if not specs:
            raise ValueError("receptive_field found no convolution or pooling layer in the module")
        return specs
    for i, spec in enumerate(layers):
        if isinstance(spec, dict):
            k, s = spec["kernel"], spec.get("stride", 1)
            p, d = spec.get("padding", 0), spec.get("dilation", 1)
        else:
            spec = tuple(spec)
            if not 2 <= len(spec) <= 4:
                raise ValueError(f"layer {i}: expected (kernel, stride[, padding[, dilation]]), got {spec!r}")
            k, s, p, d = (*spec, 0, 1)[:4] if len(spec) == 2 else (*spec, 1)[:4]
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"layer {i}: kernel, stride and dilation must be >= 1, got {(k, s, d)}")
        specs.append((f"layer {i}", int(k), int(s), int(p), int(d)))
    return specs


def receptive_field(layers) -> ReceptiveField:
    """Receptive field of the last layer's units with respect to the input, layer by layer from the input:

        r_l = r_{l-1} + (k_l - 1) d_l j_{l-1},   j_l = j_{l-1} s_l,   c_l = c_{l-1} + ((k_l - 1) d_l / 2 - p_l) j_{l-1}

    with r_0 = 1, j_0 = 1, c_0 = 0 (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional
    Neural Networks", Distill 2019). k: kernel size, s: stride, p: padding, d: dilation. Pointwise layers
    (activations, normalisation, dropout, 1x1 convolutions) do not grow it.

    ``layers``: an ``nn.Module`` whose convolutions and poolings are applied in the order they are registered
    (an ``nn.Sequential``, or a chain of them), or a list of ``(kernel, stride[, padding[, dilation]])``.
    Example: pix2pix's 70 x 70 PatchGAN, ``[(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]`` -> size 70, jump 8.
    """
    r, j, c = 1, 1, 0.0
    rows = []
    for name, k, s, p, d in _layer_specs(layers):
        r, c, j = r + (k - 1) * d * j, c + ((k - 1) * d / 2 - p) * j, j * s
        rows.append({"name": name, "kernel": k, "stride": s, "padding": p, "dilation": d, "size": r, "jump": j,
                     "start": c})
    return ReceptiveField(size=r, jump=j, start=c, layers=rows)


def empirical_receptive_field(net: Callable[[torch.Tensor], torch.Tensor], input_shape: tuple[int, ...],
                              unit: tuple[int, int] | None = None) -> tuple[int, int]:
    """Measure the receptive field instead of computing it: back-propagate one output unit (default: the
    centre one) of ``net`` to a random input of shape ``(C, H, W)`` and return the (height, width) of the
    bounding box of the input pixels with a non-zero gradient.

    Equal to ``receptive_field(net).size`` when the input is large enough that the field is not cut by the
    border (and no unit is dead, e.g. LeakyReLU rather than ReLU). Call it with the network in eval mode.
    """
    x = torch.randn(1, *input_shape, dtype=torch.float64 if _is_double(net) else torch.float32,
                    requires_grad=True)
    out = net(x)
    i, j = unit if unit is not None else (out.shape[-2] // 2, out.shape[-1] // 2)
    (grad,) = torch.autograd.grad(out[0, ..., i, j].sum(), x)
    rows, cols = grad[0].abs().sum(0).nonzero(as_tuple=True)
    if len(rows) == 0:
        return (0, 0)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def _is_double(net) -> bool:
    params = list(net.parameters()) if hasattr(net, "parameters") else []
    return bool(params) and params[0].dtype == torch.float64


# ============================================================================ singular values (ch. 07, 08)
@torch.no_grad()
def top_singular_values(weight: torch.Tensor, k: int | None = 3, method: str = "exact", n_iterations: int = 100,
                        seed: int = 0) -> torch.Tensor:
    """The ``k`` largest singular values sigma_0 >= sigma_1 >= ... of ``weight`` reshaped to (out, -1).

    The reshaped matrix is the one spectral normalisation divides by its sigma_0 (Miyato et al., 2018, arXiv
    1802.05957, Sec. 2.1) and the one whose spectrum BigGAN records (Brock et al., 2018, Sec. 4). ``k=None``
    returns the whole spectrum (min(out, in) values). ``method``:

    - ``"exact"``: ``torch.linalg.svdvals`` (float64 for accuracy);
    - ``"power"``: block power (subspace) iteration, V <- orth(W^T W V) from a seeded random start, then the
      singular values of W V: the k-dimensional generalisation of spectral norm's one-vector power iteration.
      Converges at the rate (sigma_k / sigma_{k-1})^n_iterations; use it when the SVD is too expensive.

    Returns a float32 tensor of length ``k`` (fewer if the matrix has fewer singular values), on ``weight``'s device.
    Runs on one CPU thread: for matrices this small, LAPACK's threads cost far more than they save (100x on a
    busy 2-core machine).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _top_singular_values(weight, k, method, n_iterations, seed)
    finally:
        torch.set_num_threads(threads)


def _top_singular_values(weight: torch.Tensor, k: int | None, method: str, n_iterations: int,
                         seed: int) -> torch.Tensor:
    W = weight.detach().flatten(1).double()
    r = min(W.shape)
    k = r if k is None else min(int(k), r)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if method == "exact":
        s = torch.linalg.svdvals(W)[:k]
    elif method == "power":
        g = torch.Generator().manual_seed(seed)
        V = torch.randn(W.shape[1], k, generator=g, dtype=torch.float64).to(W.device)
        V = torch.linalg.qr(V).Q
        for _ in range(n_iterations):
            V = torch.linalg.qr(W.t() @ (W @ V)).Q
        s = torch.linalg.svdvals(W @ V)[:k]
    else:
        raise ValueError(f"method must be 'exact' or 'power', got {method!r}")
    return s.float()
