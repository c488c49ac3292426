"""``evaluate(sample, dataset, n)``: every number a chapter reports about a generator, in one call.

    >>> from gan_course.metrics import evaluate
    >>> m = evaluate(sampler(G), "glyphs", n=2000)
    >>> m
    {'fid': 3.1, 'kid': 0.004, 'kid_std': 0.001, 'precision': 0.71, 'recall': 0.55, 'inception_score': 17.2,
     'classes_covered': 20, 'num_classes': 20, 'class_kl': 0.02, 'n': 2000, 'dataset': 'glyphs',
     'feature_network': "course classifier 'glyphs' (128-d pool features, 20 classes, test accuracy 99.6%)"}

Which network each number uses (honesty first: none of these is the ImageNet-Inception FID of papers):

- ``fid``, ``kid`` (+ ``kid_std``), ``precision``, ``recall``: the 128-d features of the dataset's **course
  classifier**, generated samples against ``n`` images of the dataset's ``split`` (a seeded random subset).
- ``inception_score``, ``classes_covered`` / ``num_classes``, ``class_kl``: the course classifier's class
  predictions (IS out of K classes, not ImageNet's 1000; coverage rule in ``gan_course.metrics.coverage``).
- ``rfid`` (only with ``protocol=Protocol(rfid_n=...)``): FID in the features of a randomly initialised
  Inception-v3 (Sauer et al. 2022), on ``rfid_n`` images at ``rfid_size`` x ``rfid_size`` (299: the standard,
  slow on a CPU; 75: ~16x cheaper, another feature space); ``rfid_network`` names it.

How it measures (precision/recall's k, KID's subsets, rFID) is one ``Protocol`` value, so a chapter states its
protocol once and passes it to every call.

``tag=True`` renames the numbers after their network, ready for ``gan_course.paths.record_result``:
``fid_glyphs_classifier``, ``kid_glyphs_classifier``, ..., ``fid_random_inception`` (``fid_random_inception75``
at 75x75).

The real images' features are computed once per (dataset, data options, n, seed, device) and kept in memory, so
calling ``evaluate`` every few hundred training steps only pays for the generated samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .classifier import course_classifier
from .coverage import mode_coverage_from_predictions, reference_distribution
from .embed import extract
from .features import RandomInception
from .fid import fid_from_features
from .inception_score import inception_score_from_logits
from .kid import kid_from_features
from .precision_recall import precision_recall_from_features
from .sources import ImageSource

__all__ = ["evaluate", "Protocol", "clear_cache"]

_REAL: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
_NETS: dict[tuple, torch.nn.Module] = {}


def clear_cache() -> None:
    """Forget the cached real features and networks of ``evaluate``."""
    _REAL.clear()
    _NETS.clear()


def _net(key: tuple, build):
    if key not in _NETS:
        _NETS[key] = build()
    return _NETS[key]


@dataclass(frozen=True)
class Protocol:
    """How ``evaluate`` measures, beyond *what* it compares (the defaults are the course's standard protocol).

    Args:
        k: neighbourhood size of precision/recall (Kynkaanniemi et al. 2019 use 3).
        kid_subsets, kid_subset_size: KID's random subsets (Binkowski et al. 2018: 100 of 1,000).
        rfid_n: also FID with a random Inception-v3 on ``rfid_n`` real against ``rfid_n`` generated images
            (at most ``n``); 0 (the default) skips it: it is slow on a CPU.
        rfid_size: the side the images are resized to for it (299, the standard; 75 is ~16x cheaper and
            another feature space).
        batch_size: images per forward pass of the feature networks (no effect on the numbers).
    """

    k: int = 3
    kid_subsets: int = 50
    kid_subset_size: int = 1000
    rfid_n: int = 0
    rfid_size: int = 299
    batch_size: int = 256

    def __post_init__(self):
        for name in ("k", "kid_subsets", "kid_subset_size", "batch_size", "rfid_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"Protocol.{name} must be a positive whole number, got {getattr(self, name)!r}")
        if not isinstance(self.rfid_n, int) or self.rfid_n < 0:
            raise ValueError(f"Protocol.rfid_n must be 0 (no rFID) or a positive whole number, got {self.rfid_n!r}")


def _real_dataset(dataset: str, data_options: dict):
    from ..data import load
    return load(dataset, **{"split": "train", **data_options})


def evaluate(sample, dataset: str, n: int = 2000, *, data_options: dict | None = None, classifier: str | None = None,
             protocol: Protocol = Protocol(), seed: int = 0, device="auto", tag: bool = False,
             progress: bool = False) -> dict:
    """Measure a generator against a dataset with the dataset's course classifier (see the module docstring).

    Args:
        sample: the generator, as ``sample(n) -> images`` in [-1, 1] (called once with ``n``); or a tensor /
            dataset of generated images (any ``ImageSource``).
        dataset: the dataset name for ``gan_course.data.load`` (``"glyphs"``, ``"shapes"``, ``"mnist"``).
        n: generated and real images compared (the same number of each).
        data_options: where the real images come from, as keywords of ``load(dataset, **data_options)``:
            ``split`` ("train" unless given), ``root`` and the dataset's options, e.g.
            ``{"split": "test", "classes": "digits"}``.
        classifier: the course classifier to use (default: the one named like ``dataset``).
        protocol: ``Protocol`` (precision/recall's k, KID's subsets, the optional random-Inception rFID).
        seed: the real subset and KID's subsets. device: where the networks run (``get_device`` names).
        tag: name the numbers after their feature network (for ``record_result``).
        progress: show progress bars while features are extracted.
    """
    from ..utils import get_device

    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol must be a gan_course.metrics.Protocol, got {type(protocol).__name__}")
    device = get_device(device)
    data_options = dict(data_options or {})
    name = classifier or dataset
    net = _net(("classifier", name, str(device)), lambda: course_classifier(name, device=device))
    rfid, batch_size = protocol.rfid_n > 0, protocol.batch_size

    key = (dataset, tuple(sorted({"split": "train", **data_options}.items())), n, seed, name, str(device))
    if key not in _REAL:
        real_set = _real_dataset(dataset, data_options)
        f_real = extract(net, ImageSource(real_set, n=n, seed=seed), batch_size=batch_size, progress=progress)
        _REAL[key] = (f_real, reference_distribution(real_set, len(net.classes)))
    f_real, p_real = _REAL[key]

    fake = ImageSource(sample, n=n, seed=seed + 1)
    fake_images = fake.tensor() if rfid else None      # rFID needs the same samples again: draw them once
    f_fake = extract(net, fake_images if rfid else fake, n=n, batch_size=batch_size, progress=progress)
    with torch.no_grad():
        logits = net.head(f_fake.to(device)).float().cpu()       # logits = head(features): no second pass
    kid_mean, kid_std = kid_from_features(f_real, f_fake, subsets=protocol.kid_subsets,
                                          subset_size=protocol.kid_subset_size, seed=seed)
    pr = precision_recall_from_features(f_real, f_fake, k=protocol.k)
    is_mean, _ = inception_score_from_logits(logits, splits=10)
    cov = mode_coverage_from_predictions(logits.argmax(1), len(net.classes), p_real, classes=net.classes)
    out = dict(fid=fid_from_features(f_real, f_fake), kid=kid_mean, kid_std=kid_std, precision=pr.precision,
               recall=pr.recall, inception_score=is_mean, classes_covered=cov.covered,
               num_classes=cov.num_classes, class_kl=cov.kl)
    if rfid:
        rn = min(n, protocol.rfid_n)                        # at most the n generated images drawn above
        inc = _net(("random-inception", protocol.rfid_size, str(device)),
                   lambda: RandomInception(image_size=protocol.rfid_size, device=device))
        rkey = ("rfid", *key[:2], rn, protocol.rfid_size, seed, str(device))
        if rkey not in _REAL:
            real_set = _real_dataset(dataset, data_options)
            _REAL[rkey] = (extract(inc, ImageSource(real_set, n=rn, seed=seed), batch_size=32, progress=progress),
                           None)
        f_inc = extract(inc, fake_images[:rn], batch_size=32, progress=progress)
        out["rfid"] = fid_from_features(_REAL[rkey][0], f_inc)
    if tag:
        out = {(f"fid_{inc.name}" if key == "rfid" else key if key == "num_classes" else f"{key}_{net.name}"):
               value for key, value in out.items()}
    out.update(n=n, dataset=dataset, feature_network=net.description)
    if rfid:
        out["rfid_network"] = f"{inc.description}, n={rn}"
    return out
