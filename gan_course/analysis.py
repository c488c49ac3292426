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
