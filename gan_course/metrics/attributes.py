"""An independent judge of glyph style: which font family, bold or not, italic or not, read off an image.

The glyphs' attribute vector (``data.load("glyphs", target="attributes")``) is [bold, italic, one-hot of the 7
families] (``gan_course.data.glyphs.attribute_vector``). ``AttributeClassifier`` is a small CNN fitted to it on REAL
glyphs only (``train_attribute_classifier``), so it grades a generator that never trained against it: chapter 09
reads StarGAN's translations with it (beside G's own judge, D_cls), chapter 04 asks what InfoGAN's categorical code
encodes besides the digit. ``read_labels`` turns its logits into 0/1 labels (each binary attribute at probability
0.5, exactly one family), ``label_accuracy`` scores labels against the truth, ``styles`` splits labels into named
columns (family index, bold, italic).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.glyphs import BINARY_ATTRIBUTES
from ..sampling import generate
from ..training import Batches

__all__ = ["AttributeClassifier", "BINARY_ATTRIBUTES", "label_accuracy", "logits_to_labels", "read_labels",
           "styles", "train_attribute_classifier"]


class AttributeClassifier(nn.Module):
    """An independent judge of the domain labels: a small CNN trained on REAL glyphs only, never on G's outputs.

    Three conv3x3-BN-ReLU-maxpool blocks (16, 32, 64), global average pooling and a linear layer to one logit per
    label. Separate from D_cls (which G was trained to please) so that the attribute accuracy is not graded by
    the network the generator learned to fool.
    """

    def __init__(self, c_dim: int, channels: int = 1, widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        layers, c = [], channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, c_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """0/1 labels (``read_labels``)."""
        return read_labels(self, x, batch_size)


def logits_to_labels(logits: torch.Tensor, n_binary: int = len(BINARY_ATTRIBUTES)) -> torch.Tensor:
    """Domain logits -> 0/1 labels: the first ``n_binary`` thresholded at 0, the rest one-hot of their argmax."""
    out = (logits[:, :n_binary] > 0).float()
    family = F.one_hot(logits[:, n_binary:].argmax(1), logits.shape[1] - n_binary).float()
    return torch.cat([out, family], 1)


def read_labels(classifier: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """A domain classifier's 0/1 labels for ``x`` (eval mode, in batches, on the CPU): each binary attribute
    thresholded at probability 0.5, and exactly one family (argmax of its logits)."""
    return logits_to_labels(generate(classifier, x, batch_size=batch_size))


def train_attribute_classifier(dataset, steps: int = 400, batch_size: int = 128, lr: float = 2e-3,
                               seed: int = 0, device="cpu") -> AttributeClassifier:
    """Fit an ``AttributeClassifier`` to a domain-labelled dataset (items (x, c')) with the BCE of each label."""
    torch.manual_seed(seed)
    x0, c0 = dataset.get_batch(torch.arange(1))
    net = AttributeClassifier(c0.shape[1], x0.shape[1]).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    batches = Batches(dataset, batch_size, seed=seed, device=device)
    net.train()
    for _ in range(steps):
        x, c = batches.next()
        loss = F.binary_cross_entropy_with_logits(net(x), c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def label_accuracy(predicted: torch.Tensor, target: torch.Tensor, names: Sequence[str]) -> dict[str, float]:
    """Agreement of predicted and target 0/1 labels: ``all`` (every label right), each binary attribute, and
    ``family`` (the one-hot part right)."""
    same = predicted.round() == target.round()
    out = {"all": float(same.all(1).float().mean())}
    for i, name in enumerate(names[:len(BINARY_ATTRIBUTES)]):
        out[name] = float(same[:, i].float().mean())
    out["family"] = float(same[:, len(BINARY_ATTRIBUTES):].all(1).float().mean())
    return out


def styles(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """0/1 labels [bold, italic, one-hot family] -> ``{"family": index, "bold": 0/1, "italic": 0/1, "style": 0..3}``
    (int64 tensors; ``style`` = 2 * bold + italic, the four faces of a family)."""
    bold, italic = labels[:, 0].long(), labels[:, 1].long()
    return {"family": labels[:, len(BINARY_ATTRIBUTES):].argmax(1), "bold": bold, "italic": italic,
            "style": 2 * bold + italic}
