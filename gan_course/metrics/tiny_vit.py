"""A small vision transformer trained on the course's data: the stand-in for a pretrained DeiT.

Projected GAN and StyleGAN-XL (chapter 10) judge images in the features of two frozen, pretrained networks, an
EfficientNet and a DeiT vision transformer. No pretrained weights can be downloaded here, so the course's
feature networks are its CNN classifier (``gan_course.metrics.classifier``) and this ``TinyViT``, trained as a
classifier on the chapter's data in under a minute. It lives beside the CNN classifier because it is the same
kind of object: a classifier of the course's images with the course classifiers' interface (``logits``,
``channels``, ``image_size``, inputs adapted by ``gan_course.metrics.features.adapt``), measured with
``gan_course.metrics.train_classifier.accuracy``, and not part of any paper's model.

    vit, accuracy, run = train_tiny_vit(load("glyphs"), load("glyphs", split="test"), steps=400)
    maps = vit.token_maps(x, layers=(2, 4))          # (B, dim, 8, 8) each: what the projected D reads
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..training import Batches, Run
from .features import adapt
from .train_classifier import accuracy

__all__ = ["TinyViT", "train_tiny_vit"]


class TinyViT(nn.Module):
    """A small vision transformer (Dosovitskiy et al. 2021, arXiv 2010.11929), the course's stand-in for the DeiT
    that Projected GAN and StyleGAN-XL use as their second feature network:

        tokens_0 = [x_cls; E x_1; ...; E x_N] + E_pos     N = (32 / 4)^2 = 64 patches of 4 x 4 pixels, E linear
        tokens_b = Block_b(tokens_{b-1}),  b = 1..depth   pre-norm encoder blocks: multi-head self-attention + MLP
        logits   = W LayerNorm(tokens_depth[cls])

    The blocks are ``torch.nn.TransformerEncoderLayer`` (``norm_first``, GELU, no dropout). ``token_maps`` returns
    the patch tokens after the chosen blocks reshaped to (B, dim, 8, 8) feature maps, which is what Projected GAN
    takes from DeiT (before its reassembly layers). Trained here as a classifier on the chapter's data
    (``train_tiny_vit``), since no pretrained weights can be downloaded."""

    def __init__(self, *, channels: int = 1, n_classes: int = 20, image_size: int = 32, patch: int = 4,
                 dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: int = 2):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size ({image_size}) must be a multiple of the patch size ({patch})")
        self.channels, self.image_size, self.patch, self.dim = channels, image_size, patch, dim
        self.grid = image_size // patch
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)     # E: one linear map per 4 x 4 patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.grid ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([nn.TransformerEncoderLayer(dim, heads, mlp_ratio * dim, dropout=0.0,
                                                                activation="gelu", batch_first=True,
                                                                norm_first=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def _tokens(self, x: torch.Tensor, upto: int) -> list[torch.Tensor]:
        x = adapt(x, self.channels, self.image_size)
        t = self.patch_embed(x).flatten(2).transpose(1, 2)                  # (B, N, dim)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed
        out = []
        for block in self.blocks[:upto]:
            t = block(t)
            out.append(t)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of images in [-1, 1] (any size: resized to ``image_size``)."""
        return self.head(self.norm(self._tokens(x, len(self.blocks))[-1][:, 0]))

    logits = forward          # the course classifiers' interface (``gan_course.metrics.train_classifier.accuracy``)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input, the layer-normalised class token after the last block: (B, dim), on the ViT's device
        (the interface ``gan_course.metrics.extract`` takes, so the TinyViT can embed images for a metric)."""
        x = x.to(self.cls_token.device)
        return self.norm(self._tokens(x, len(self.blocks))[-1][:, 0])

    def token_maps(self, x: torch.Tensor, layers=(2, 4)) -> list[torch.Tensor]:
        """The patch tokens after blocks ``layers`` (1-based), each reshaped to (B, dim, grid, grid)."""
        tokens = self._tokens(x, max(layers))
        B = x.shape[0]
        return [tokens[b - 1][:, 1:].transpose(1, 2).reshape(B, self.dim, self.grid, self.grid) for b in layers]


def train_tiny_vit(dataset, test_set=None, steps: int = 300, batch_size: int = 64, lr: float = 2e-3,
                   weight_decay: float = 0.05, seed: int = 0, device="cpu", name: str = "tiny-vit",
                   n_test: int = 2000, **vit_kwargs):
    """Train (or load) a ``TinyViT`` classifier on ``dataset`` through ``gan_course.training.Run``: AdamW with a
    linear warm-up (10% of the steps) and cosine decay of the learning rate, cross-entropy. The run lives under
    ``gan_course.paths.runs_dir() / name``, so a second call with the same configuration loads the checkpoint
    instead of training. Returns ``(vit, accuracy, run)``: the network in eval mode and frozen, and its accuracy
    on the first ``n_test`` images of ``test_set`` (logged in the run's history at the last step)."""
    torch.manual_seed(seed)
    channels = dataset.images.shape[1] if hasattr(dataset, "images") else dataset[0][0].shape[0]
    vit = TinyViT(channels=channels, n_classes=len(dataset.classes), **vit_kwargs).to(device)
    warmup = max(1, steps // 10)

    def lr_at(step: int) -> float:             # a function of the step alone: identical after a resume
        t = (step - warmup) / max(1, steps - warmup)
        return lr * ((step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * t)))
    # Every step sets its own rate; the optimiser starts at the last one, the rate a finished checkpoint holds, so
    # that a re-run loads it (a Run refuses a finished checkpoint whose learning rate differs from its optimiser's).
    opt = torch.optim.AdamW(vit.parameters(), lr=lr_at(steps - 1), weight_decay=weight_decay)
    config = dict(steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
                  n_test=n_test, architecture=repr(vit))
    run = Run(name, {"vit": vit}, {"vit": opt}, config=config, device=device, live=False)
    batches = run.attach(batches=Batches(dataset, batch_size, seed=seed, device=device))
    for step in run.steps(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        vit.train()
        x, y = batches.next()[:2]
        loss = F.cross_entropy(vit(x), y)
        run.update("vit", loss)
        run.log(loss=loss.detach())
        if step + 1 == steps and test_set is not None:
            run.log(test_accuracy=accuracy(vit, test_set, limit=n_test))
    vit.eval().requires_grad_(False)
    return vit, run.history.last("test_accuracy", float("nan")), run
