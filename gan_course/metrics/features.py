"""Feature networks: the space in which FID, KID and precision/recall compare images.

A metric never compares pixels. It embeds every image with a fixed network ``phi`` and compares the two
clouds of feature vectors ``phi(x)``. Which ``phi`` is part of the number: an FID "in Inception features" and
an FID "in the features of the course's glyph classifier" are different quantities with different scales.
The course has three kinds, all ``FeatureNet``s:

- ``course_classifier(dataset)`` (names ``"glyphs"``, ``"shapes"``, ``"mnist"``): the 128-d penultimate layer
  (global-average-pooled last conv block) of a small CNN trained on the dataset
  (``gan_course.metrics.classifier``). Used by every chapter: shipped in the package, fast on a CPU, and it
  knows the dataset's classes, so IS and mode coverage work too.
- ``RandomInception`` (name ``"random-inception"``): the 2048-d pool features of an Inception-v3 with *random*
  weights (He initialisation, fixed seed), inputs 299x299 (75x75 for quick checks): "rFID" (Sauer et al. 2022,
  StyleGAN-XL), a check that a low FID is not an artefact of the features a generator was tuned on.
- ``ImageNetInception`` (name ``"inception"``): the 2048-d pool features of the ImageNet-trained Inception-v3
  of FID (Heusel et al. 2017), for numbers close to papers'; needs weights (a download or a local file).

Every ``FeatureNet`` takes images as the course makes them, float in [-1, 1] with 1 or 3 channels at any size,
and adapts them itself (``adapt``): grey -> RGB by repeating the channel, RGB -> grey by the ITU-R BT.601 luma
weights, and a bilinear resize (antialiased when shrinking) to the size it was built for. ``forward(x)`` is
``features(x)``, so a ``FeatureNet`` can be handed to torchmetrics as its ``feature=`` module.

``extract(net, source, n)`` runs a network over an ``ImageSource`` in batches, on the network's device.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FeatureNet", "adapt", "RandomInception", "ImageNetInception", "RANDOM_INCEPTION_SEED", "random_inception_v3"]

RANDOM_INCEPTION_SEED = 0
_LUMA = (0.299, 0.587, 0.114)   # ITU-R BT.601; the weights sum to 1, so [-1, 1] maps to [-1, 1]


def adapt(x: torch.Tensor, channels: int, size: int | None) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] -> (N, channels, size, size): fix the channels, then resize bilinearly.

    1 -> 3 channels repeats the grey channel; 3 -> 1 takes the luma ``0.299 R + 0.587 G + 0.114 B``.
    ``size=None`` keeps the spatial size.
    """
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
    c = x.shape[1]
    if c != channels:
        if c == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif c == 3 and channels == 1:
            w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        else:
            raise ValueError(f"cannot feed {c}-channel images to a network that takes {channels} channels "
                             "(1 and 3 channels are converted)")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        shrink = x.shape[-1] > size or x.shape[-2] > size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return x


class FeatureNet(nn.Module):
    """A frozen network that embeds images for the metrics.

    Subclasses set ``name`` (a short tag used in result names, e.g. ``"glyphs_classifier"``),
    ``description`` (one line naming the network and layer), ``num_features``, ``channels`` and
    ``image_size``, and implement ``_features(x)`` (and ``_logits(x)`` when the network classifies) on
    already-adapted inputs. Always in eval mode, without gradients.
    """

    name: str = "feature_net"
    description: str = ""
    num_features: int = 0
    channels: int = 3
    image_size: int | None = None
    classes: list[str] | None = None

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return adapt(x.to(next(self.parameters()).dtype), self.channels, self.image_size)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_features) embedding of images in [-1, 1] (any size, 1 or 3 channels)."""
        return self._features(self._prepare(x)).float()

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_classes) class scores of images in [-1, 1] (IS, mode coverage, classifier agreement)."""
        return self._logits(self._prepare(x)).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def _features(self, x):
        raise NotImplementedError

    def _logits(self, x):
        raise NotImplementedError(f"{type(self).__name__} has no classifier head")

    def train(self, mode: bool = True):
        return super().train(False)    # feature networks are frozen: batch norm always uses running stats

    def extra_repr(self) -> str:
        return f"{self.description}" if self.description else ""


# --- Inception-v3: random (rFID) and ImageNet (FID) -----------------------------------------------------------
class _InceptionBase(FeatureNet):
    num_features = 2048
    channels = 3
    image_size = 299

    def _wrap(self, model: nn.Module):
        self.fc = model.fc                 # 2048 -> 1000 (random or ImageNet classes)
        model.fc = nn.Identity()           # the network now ends at the 2048-d average pool ("pool3")
        self.net = model.eval()
        self.requires_grad_(False)

    def _features(self, x):
        return self.net(x)

    def _logits(self, x):
        return self.fc(self.net(x))


def random_inception_v3(seed: int = RANDOM_INCEPTION_SEED) -> nn.Module:
    """torchvision's Inception-v3 (no auxiliary head, no ``transform_input``) with weights drawn from a
    ``torch.Generator`` seeded by ``seed``; eval mode. The global RNG is neither used nor touched.

    Initialisation (He et al. 2015, "Delving Deep into Rectifiers", arXiv 1502.01852, Sec. 2.2): every
    convolution ``w ~ N(0, 2 / fan_in)``, which keeps the second moment of the activations constant through a
    convolution followed by a ReLU, *whatever the input*; every batch norm in its initial state
    (gamma = 1, beta = 0, running mean 0, running variance 1), so in eval mode it is the identity up to its eps;
    the 1000-way head as torchvision draws it (truncated normal, std 0.1; bias 0). The modules are built on the
    ``meta`` device (no memory, no random numbers) and every tensor is then filled in module order, so the same
    seed gives bit-identical weights on every machine and torch version that draws the same normal numbers.
    """
    from torchvision.models import inception_v3

    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        model = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
    model.to_empty(device="cpu")
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()                    # gamma 1, beta 0, running stats (0, 1): identity in eval
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.1, generator=g)
            nn.init.zeros_(m.bias)
    return model.eval()


class RandomInception(_InceptionBase):
    """Inception-v3 with random weights drawn under a fixed seed: the feature network of "rFID".

    Sauer et al. 2022 (StyleGAN-XL, arXiv 2202.00273) report FID computed with a *randomly initialised*
    Inception network beside the usual FID: a generator trained against ImageNet-pretrained features (Projected
    GAN discriminators) could lower FID by matching what those features see rather than the images. Random
    features carry no ImageNet knowledge, so the two agreeing is evidence an improvement is real.

    The network is ``random_inception_v3(seed)``: He initialisation (variance preserving through conv + ReLU)
    and batch norm at its initial state. Both choices matter. torchvision's own initialisation (truncated
    normal, std 0.1 whatever the fan-in) multiplies the activations by ~3 per layer, and eval-mode batch norm
    with its initial statistics does not undo it, so float32 overflows to inf/nan by the last blocks.
    Calibrating the batch-norm statistics on noise images instead keeps noise well scaled but turns the network
    into an amplifier for inputs unlike the noise (glyphs: x100 by the pool layer). The He scaling is fixed and
    data-independent, and the pool features stay O(0.01-1) for any input in [-1, 1], so no output rescaling is
    needed (rFIDs come out small, ~1e-3 to 1 on the course's images).

    Inputs in [-1, 1] are resized to ``image_size`` (default 299, the standard); features are the 2048-d global
    average pool. ~6 GFLOPs per image at 299x299, so on a CPU use a few hundred images; ``image_size=75`` (the
    smallest Inception-v3 takes) is ~16x cheaper, for tests and smoke runs, but is a *different* feature space
    (its description says which). Absolute rFIDs are on this network's own scale, not comparable with
    Inception FIDs nor with StyleGAN-XL's (a different random draw): compare rankings within one study, at one
    ``n`` and one ``image_size``.
    """

    def __init__(self, seed: int = RANDOM_INCEPTION_SEED, image_size: int = 299, device="cpu"):
        super().__init__()
        if image_size < 75:
            raise ValueError(f"Inception-v3 needs inputs of at least 75x75, got image_size={image_size}")
        self._wrap(random_inception_v3(seed))
        self.seed, self.image_size = seed, image_size
        self.name = "random_inception" if image_size == 299 else f"random_inception{image_size}"
        self.description = (f"random Inception-v3 (He init, seed {seed}), 2048-d pool features at "
                            f"{image_size}x{image_size}")
        self.to(device)


class ImageNetInception(_InceptionBase):
    """The ImageNet-trained Inception-v3 of FID (Heusel et al. 2017, arXiv 1706.08500), when you have weights.

    ``weights``:

    - ``"torchvision"`` (default): torchvision's ``Inception_V3_Weights.IMAGENET1K_V1``, from the torch hub
      cache (``$TORCH_HOME``), downloaded once when online;
    - a path to a ``state_dict`` of ``torchvision.models.inception_v3`` (e.g. that same file copied from a
      machine that could download it).

    Inputs in [-1, 1] are resized to 299x299 and fed without ``transform_input`` (the ported Google weights
    expect [-1, 1]). Papers' FIDs use the original TensorFlow graph (``pt_inception-2015-12-05``, as in
    pytorch-fid / torch-fidelity / clean-fid), whose features differ slightly from torchvision's: numbers from
    this class are close to, not identical with, published ones; for exact comparison use
    ``torchmetrics.image.fid.FrechetInceptionDistance(feature=2048)`` with torch-fidelity installed.
    Offline without the weights this raises ``RuntimeError`` saying how to get them.
    """

    def __init__(self, weights: str | os.PathLike = "torchvision", device="cpu"):
        super().__init__()
        from torchvision.models import Inception_V3_Weights, inception_v3

        if str(weights) == "torchvision":
            try:
                model = inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1, aux_logits=False,
                                     transform_input=False)
            except Exception as e:  # no network, no cached file
                url = Inception_V3_Weights.IMAGENET1K_V1.url
                raise RuntimeError(
                    f"The ImageNet Inception-v3 weights are not available ({type(e).__name__}: {e}). "
                    f"Download {url} on a machine with internet access and either put it in "
                    f"{Path(torch.hub.get_dir()) / 'checkpoints'} or pass its path: "
                    "ImageNetInception(weights='/path/to/inception_v3_google-0cc3c7bd.pth'). Offline, the course "
                    "classifiers (course_classifier('glyphs')) and RandomInception need no download."
                ) from e
            source = "torchvision IMAGENET1K_V1"
        else:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise RuntimeError(f"No Inception-v3 weights at {path}. Pass weights='torchvision' to use "
                                   "torchvision's (downloaded once), or the path of a torchvision state_dict.")
            from ..files import load as load_file
            state = load_file(path, map_location="cpu", fix="Download inception_v3_google-0cc3c7bd.pth again (its "
                              "SHA-256 prefix is the 0cc3c7bd in its name) or pass weights='torchvision'.")
            state = state.get("state_dict", state)
            aux = any(k.startswith("AuxLogits.") for k in state)
            num_classes = state["fc.weight"].shape[0] if "fc.weight" in state else 1000
            model = inception_v3(weights=None, aux_logits=aux, init_weights=False, transform_input=False,
                                 num_classes=num_classes)
            model.load_state_dict(state)
            model.aux_logits, model.AuxLogits = False, None
            source = str(path)
        self._wrap(model)
        self.name = "inception"
        self.description = f"ImageNet Inception-v3 ({source}), 2048-d pool features at 299x299"
        self.to(device)
