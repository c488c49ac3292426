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
- ``rfid`` (only with ``rfid=True``): FID in the features of a randomly initialised Inception-v3 (Sauer et
  al. 2022), on ``rfid_n`` images at ``rfid_size`` x ``rfid_size`` (299: the standard, slow on a CPU;
  75: ~16x cheaper, another feature space); ``rfid_network`` names it.

``tag=True`` renames the numbers after their network, ready for ``gan_course.paths.record_result``:
``fid_glyphs_classifier``, ``kid_glyphs_classifier``, ..., ``fid_random_inception`` (``fid_random_inception75``
at 75x75).

The real images' features are computed once per (dataset, split, n, seed, device) and kept in memory, so
calling ``evaluate`` every few hundred training steps only pays for the generated samples.
"""

from __future__ import annotations

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

__all__ = ["evaluate", "clear_cache"]

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


def _real_dataset(dataset: str, split: str, root, data_options: dict):
    from ..data import load
    kwargs = dict(data_options)
    if root is not None:
        kwargs["root"] = root
    return load(dataset, split=split, **kwargs)


def evaluate(sample, dataset: str, n: int = 2000, *, split: str = "train", root=None,
             data_options: dict | None = None, classifier: str | None = None, k: int = 3, kid_subsets: int = 50,
             kid_subset_size: int = 1000, rfid: bool = False, rfid_n: int | None = None, rfid_size: int = 299, seed: int = 0,
             device="auto", batch_size: int = 256, progress: bool = False, tag: bool = False) -> dict:
    """Measure a generator against a dataset with the dataset's course classifier (see the module docstring).

    Args:
        sample: the generator, as ``sample(n) -> images`` in [-1, 1] (called once with ``n``); or a tensor /
            dataset of generated images (any ``ImageSource``).
        dataset: the dataset name for ``gan_course.data.load`` (``"glyphs"``, ``"shapes"``, ``"mnist"``).
        n: generated and real images compared (the same number of each).
        split, root, data_options: where the real images come from (``load(dataset, split, root=root,
            **data_options)``), e.g. ``data_options={"classes": "digits"}``.
        classifier: the course classifier to use (default: the one named like ``dataset``).
        k: neighbourhood size of precision/recall. kid_subsets, kid_subset_size: KID's subsets.
        rfid, rfid_n, rfid_size: also FID with a random Inception-v3, ``rfid_n`` real against ``rfid_n``
            generated images (default and at most ``min(n, 500)``), resized to ``rfid_size`` (299, the standard;
            75 is the cheap option for tests and smoke runs).
        seed: the real subset and KID's subsets. device: where the networks run (``get_device`` names).
        tag: name the numbers after their feature network (for ``record_result``).
    """
    from ..utils import get_device

    device = get_device(device)
    data_options = dict(data_options or {})
    name = classifier or dataset
    net = _net(("classifier", name, str(device)), lambda: course_classifier(name, device=device))

    key = (dataset, split, str(root), tuple(sorted(data_options.items())), n, seed, name, str(device))
    if key not in _REAL:
        real_set = _real_dataset(dataset, split, root, data_options)
        f_real = extract(net, ImageSource(real_set, n=n, seed=seed), batch_size=batch_size, progress=progress)
        _REAL[key] = (f_real, reference_distribution(real_set, len(net.classes)))
    f_real, p_real = _REAL[key]

    fake = ImageSource(sample, n=n, seed=seed + 1)
    fake_images = fake.tensor() if rfid else None      # rFID needs the same samples again: draw them once
    f_fake = extract(net, fake_images if rfid else fake, n=n, batch_size=batch_size, progress=progress)
    with torch.no_grad():
        logits = net.head(f_fake.to(device)).float().cpu()       # logits = head(features): no second pass
    kid_mean, kid_std = kid_from_features(f_real, f_fake, subsets=kid_subsets, subset_size=kid_subset_size,
                                          seed=seed)
    pr = precision_recall_from_features(f_real, f_fake, k=k)
    is_mean, _ = inception_score_from_logits(logits, splits=10)
    cov = mode_coverage_from_predictions(logits.argmax(1), len(net.classes), p_real, classes=net.classes)
    out = dict(fid=fid_from_features(f_real, f_fake), kid=kid_mean, kid_std=kid_std, precision=pr.precision,
               recall=pr.recall, inception_score=is_mean, classes_covered=cov.covered,
               num_classes=cov.num_classes, class_kl=cov.kl)
    if rfid:
        rn = min(n, 500 if rfid_n is None else rfid_n)      # at most the n generated images drawn above
        inc = _net(("random-inception", rfid_size, str(device)),
                   lambda: RandomInception(image_size=rfid_size, device=device))
        rkey = ("rfid", *key[:4], rn, rfid_size, seed, str(device))
        if rkey not in _REAL:
            real_set = _real_dataset(dataset, split, root, data_options)
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
