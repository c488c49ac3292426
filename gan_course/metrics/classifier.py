"""The course classifiers: small CNNs trained on each dataset, shipped in the package, used as feature networks.

FID was defined with an ImageNet Inception-v3, whose weights need a download and whose 6 GFLOPs per image are
slow on a CPU. For 28x28 glyphs and 32x32 shapes a network trained *on the dataset itself* is both faster
and more telling: its features separate exactly the classes the generator must reproduce, and its class
predictions give the Inception Score and mode coverage. (The same trick is common for MNIST GANs: "FID with
a LeNet".)

The network mirrors Inception's head: convolution blocks, a global average pool whose output is the
**feature vector** (128-d, like Inception's 2048-d pool3), and one linear layer to the class **logits**::

    x (C x S x S, [-1, 1]) -> [conv3x3-BN-ReLU-maxpool2] x 3 (32, 64, 128 channels)
      -> global average pool -> features phi(x) in R^128 -> dropout -> linear -> logits in R^K

    >>> net = course_classifier("glyphs")        # eval mode, frozen, on the CPU
    >>> net.features(x).shape, net.logits(x).shape
    (torch.Size([64, 128]), torch.Size([64, 20]))
    >>> net.meta["test_accuracy"]

Weights live in ``gan_course/metrics/weights/<dataset>.pt`` (fp16 ``state_dict`` + ``meta``: classes,
image size, channels, test accuracy, the command that trained them); ``python -m
gan_course.metrics.train_classifier --dataset glyphs`` reproduces them (``weights/README.md`` lists them).
``weights/SHA256SUMS`` records each file's SHA-256, checked on load (``gan_course.checksums``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
import torch.nn as nn

from .. import checksums, files
from .features import FeatureNet

__all__ = ["CourseClassifier", "course_classifier", "available_classifiers", "weights_path", "WEIGHTS_DIR",
           "WIDTHS"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WIDTHS = (32, 64, 128)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class CourseClassifier(FeatureNet):
    """Small CNN classifier whose global-average-pooled last block is the feature vector (see module doc).

    Args:
        channels: input channels (1 for glyphs/MNIST, 3 for shapes).
        num_classes: K, the number of classes.
        image_size: the size it was trained at; other sizes are resized to it.
        widths: channels of the three blocks; the last is the feature dimension.
    """

    def __init__(self, channels: int, num_classes: int, image_size: int, widths=WIDTHS, dropout: float = 0.2):
        super().__init__()
        self.channels, self.image_size, self.num_features = channels, image_size, widths[-1]
        blocks, c = [], channels
        for w in widths:
            blocks.append(_block(c, w))
            c = w
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))
        self.name = "classifier"
        self.meta: dict = {}

    def _features(self, x):
        return self.body(x)

    def _logits(self, x):
        return self.head(self.body(x))

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits with gradients and train-mode BN/dropout (``features``/``logits`` are frozen): training only."""
        nn.Module.train(self, True)
        return self.head(self.body(x))


def weights_path(dataset: str) -> Path:
    """``gan_course/metrics/weights/<dataset>.pt``."""
    return WEIGHTS_DIR / f"{dataset}.pt"


def available_classifiers() -> list[str]:
    """Datasets with a shipped classifier (a weights file in ``gan_course/metrics/weights/``)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def build(meta: dict) -> CourseClassifier:
    """An untrained ``CourseClassifier`` shaped as ``meta`` describes (channels, classes, image size, widths)."""
    return CourseClassifier(meta["channels"], len(meta["classes"]), meta["image_size"],
                            widths=tuple(meta.get("widths", WIDTHS)))


def recipe(dataset: str) -> str:
    """The command that (re)trains the shipped classifier of ``dataset`` (see ``train_classifier``)."""
    root = " --root $GAN_COURSE_DATA" if dataset in ("mnist", "fashion-mnist") else ""
    return f"python -m gan_course.metrics.train_classifier --dataset {dataset}{root}"


@cache
def _load(dataset: str) -> tuple[dict, dict]:
    """Meta and state of ``weights/<dataset>.pt``, after checking its SHA-256 against ``weights/SHA256SUMS``."""
    path = weights_path(dataset)
    checksums.verify(path, recipe(dataset))
    blob = files.load(path, fix=checksums.restore_hint(path, recipe(dataset)), map_location="cpu")
    return blob["meta"], blob["state_dict"]


def course_classifier(dataset: str, device="cpu") -> CourseClassifier:
    """The shipped classifier of ``dataset``, in eval mode and frozen, on ``device``.

    ``features(x)`` is the 128-d penultimate layer (FID, KID, precision/recall), ``logits(x)`` the class
    scores (Inception Score, mode coverage, classifier agreement); ``meta`` holds the classes, image size,
    channels, test accuracy and training command. Unknown names raise ``ValueError`` listing the available
    classifiers.
    """
    from ..utils import get_device

    key = str(dataset).lower()
    available = available_classifiers()
    if key not in available:
        raise ValueError(
            f"No course classifier for dataset {dataset!r}. Available: {', '.join(available) or 'none'}. "
            f"Train one with: python -m gan_course.metrics.train_classifier --dataset {dataset}"
        )
    meta, state = _load(key)
    net = build(meta)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    net.meta = dict(meta)
    net.classes = list(meta["classes"])
    net.name = f"{key.replace('-', '_')}_classifier"
    net.description = (f"course classifier '{key}' ({net.num_features}-d pool features, {len(net.classes)} classes, "
                       f"test accuracy {meta['test_accuracy']:.2%})")
    net.requires_grad_(False)
    return net.eval().to(get_device(device))
