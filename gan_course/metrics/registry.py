"""Feature networks by name: the one place that knows every network the metrics accept.

Kept apart from ``features`` (the networks) and ``classifier`` (the course classifiers, which are ``FeatureNet``s):
both are imported here, so neither has to import the other.
"""

from __future__ import annotations

from torch import nn

from ..utils import get_device
from .classifier import available_classifiers, course_classifier
from .features import FeatureNet, ImageNetInception, RandomInception


def feature_network_names() -> list[str]:
    """Names ``feature_network`` accepts: the shipped course classifiers, ``random-inception``, ``inception``."""
    return [*available_classifiers(), "random-inception", "inception"]


def feature_network(name: str | FeatureNet, device="cpu") -> FeatureNet:
    """A ``FeatureNet`` by name: a course classifier (``"glyphs"``, ``"shapes"``, ``"mnist"``, ...),
    ``"random-inception"`` (rFID) or ``"inception"`` (ImageNet weights; see ``ImageNetInception``).

    ``device`` is anything ``gan_course.utils.get_device`` takes. A ``FeatureNet`` is returned as is.
    """
    if isinstance(name, nn.Module):
        return name
    device = get_device(device)
    key = str(name).lower()
    if key in ("random-inception", "random_inception", "rfid"):
        return RandomInception(device=device)
    if key in ("inception", "imagenet-inception"):
        return ImageNetInception(device=device)
    if key in available_classifiers():
        return course_classifier(key, device=device)
    raise ValueError(f"Unknown feature network {name!r}. Valid choices: {', '.join(feature_network_names())}.")
