"""Measuring GANs offline: FID, KID, Inception Score, precision/recall, rFID and mode coverage.

    >>> from gan_course.metrics import course_classifier, fid, kid, precision_recall, mode_coverage, evaluate
    >>> net = course_classifier("glyphs")                          # shipped, 128-d features, 20 classes
    >>> fid(load("glyphs", split="test"), sampler(G), net, n=2000) # tensors, datasets or sample(n) callables
    >>> kid(real, fake, net, n=2000)                              # (mean, std) over subsets
    >>> precision_recall(real, fake, net, n=2000)                 # PrecisionRecall(precision, recall)
    >>> mode_coverage(net, sampler(G), n=2000)                    # classes covered, KL to the data's histogram
    >>> evaluate(sampler(G), "glyphs", n=2000)                    # all of it, as a dict

Modules, one idea each (equations and papers in their docstrings):

- ``sources``: ``ImageSource`` turns a tensor, a dataset or a ``sample(n)`` callable into batches in [-1, 1].
- ``features``: ``FeatureNet`` (channel/size adaptation), ``RandomInception`` (rFID, Sauer et
  al. 2022), ``ImageNetInception`` (FID's network, when weights are available).
- ``registry``: ``feature_network(name)``, every network above by name; ``embed``: ``extract`` / ``features_of``.
- ``classifier``: the shipped course classifiers (``course_classifier("glyphs" | "shapes" | "mnist")``);
  ``train_classifier`` reproduces them.
- ``fid`` (Heusel et al. 2017), ``kid`` (Bińkowski et al. 2018), ``inception_score`` (Salimans et al. 2016),
  ``precision_recall`` (Kynkäänniemi et al. 2019), ``density_coverage`` (Naeem et al. 2020's density and
  coverage, and the data-copying check of Meehan et al. 2020), ``coverage`` (the classes a generator covers,
  classifier agreement), ``evaluate`` (everything with a dataset's classifier).

Every metric takes the images and a feature network, and each has a ``*_from_features`` /
``*_from_logits`` twin for features you computed once (``extract``) and reuse. A number is only meaningful
together with its feature network, its sample size and its reference set: report all three.
"""

from .classifier import CourseClassifier, available_classifiers, course_classifier
from .coverage import ModeCoverage, classifier_agreement, mode_coverage, mode_coverage_from_predictions
from .density_coverage import (
    DataCopying,
    DensityCoverage,
    data_copying,
    density_coverage_from_features,
    nearest_distances,
)
from .embed import extract, features_of
from .evaluate import Protocol, evaluate
from .features import (
    FeatureNet,
    ImageNetInception,
    RandomInception,
    adapt,
)
from .fid import fid, fid_from_features, frechet_distance, gaussian_stats
from .inception_score import inception_score, inception_score_from_logits
from .kid import kid, kid_from_features, mmd2_unbiased, polynomial_kernel
from .precision_recall import PrecisionRecall, knn_radii, precision_recall, precision_recall_from_features
from .registry import feature_network, feature_network_names
from .sources import ImageSource

__all__ = [
    "ImageSource", "FeatureNet", "adapt", "extract", "features_of", "feature_network", "feature_network_names",
    "RandomInception", "ImageNetInception", "CourseClassifier", "course_classifier", "available_classifiers",
    "gaussian_stats", "frechet_distance", "fid_from_features", "fid",
    "polynomial_kernel", "mmd2_unbiased", "kid_from_features", "kid",
    "inception_score_from_logits", "inception_score",
    "PrecisionRecall", "knn_radii", "precision_recall_from_features", "precision_recall",
    "DensityCoverage", "density_coverage_from_features", "DataCopying", "nearest_distances", "data_copying",
    "ModeCoverage", "mode_coverage_from_predictions", "mode_coverage", "classifier_agreement",
    "evaluate",
    "Protocol",
]
