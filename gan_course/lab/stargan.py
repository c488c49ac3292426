"""What chapter 09 does with StarGAN (``gan_course.models.stargan``): the glyph domains it translates between, the
judges that grade its translations, the numbers, the figures and explorers, and the experiment arms.

- ``domain_labels`` / ``load_domains``: glyphs labelled [bold, italic, one-hot family], like CelebA's attributes;
  ``describe`` writes a label in words;
- ``DomainClassifier`` reads labels with G's own judge, D_cls; the independent judge trained on real glyphs only
  (``AttributeClassifier``, ``train_attribute_classifier``, ``read_labels``, ``logits_to_labels``,
  ``label_accuracy``) lives in ``gan_course.metrics.attributes`` (chapter 04 uses it too) and is re-exported here;
- ``translate``, ``evaluate``: G(x, c) into every domain, scored for attributes, content and reconstruction;
- ``render_translation`` / ``translation_explorer``, ``render_domain_grid`` / ``domain_grid_explorer``;
- ``train_arm``: one experiment arm (an ablation, or the mask-vector run): a ``Run`` around ``stargan.train_step``,
  the same update as the chapter's main loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from .. import data
from ..claims import Claim
from ..data.base import TensorImageDataset
from ..data.glyphs import FAMILY_NAMES
from ..metrics.attributes import (  # noqa: F401
    AttributeClassifier,
    label_accuracy,
    logits_to_labels,
    read_labels,
    train_attribute_classifier,
)
from ..models import stargan
from ..models.stargan import all_domains, domain_names
from ..sampling import generate
from ..training import Run
from ..widgets import choice, explorer

# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("translates_beyond_identity", "Sec. 3.1: G(x, c) translates x into the target domain c (share of "
          "translations whose labels an independent classifier reads as all of c, against doing nothing, G = x)",
          "attribute_accuracy", ">", "identity_attribute_accuracy"),
    Claim("reconstruction_keeps_content", "Sec. 3.1, Eq. 4: the reconstruction loss makes translations keep the "
          "input's content (character read by the course classifier; ABLATION_STEPS, with vs without L_rec)",
          "ablation_full_content_preserved", ">", "ablation_no_rec_content_preserved"),
    Claim("classification_gives_the_target", "Sec. 3.1, Eq. 2-3: the domain classification loss is what asks for "
          "the target (attribute accuracy; ABLATION_STEPS, with vs without L_cls)",
          "ablation_full_attribute_accuracy", ">", "ablation_no_cls_attribute_accuracy"),
    Claim("d_cls_flatters_G", "The course, Sec. 3.2: G's own judge D_cls reads the target in more translations than "
          "a classifier G never trained against (why the chapter does not score G with D_cls)",
          "d_cls_attribute_accuracy", ">", "attribute_accuracy"),
    Claim("mask_vector_translates", "Sec. 3.2: with the mask vector, G translates into labels a dataset never had "
          "(digits, which had no family label, to a family; against the share the untouched digits already meet)",
          "mask_digits_to_family_accuracy", ">", "mask_identity_digits_family"),
]


# ============================================================================ the glyph domains
def domain_labels(attributes: torch.Tensor, families: Sequence[str]) -> torch.Tensor:
    """Glyph attribute vectors (N, 9) = [bold, italic, one-hot of the 7 families] -> (N, 2 + len(families)).

    Like CelebA's five attributes in the paper (black / blond / brown hair: one-hot; male; young), the glyph domain
    label is two binary attributes and a one-hot choice among a few font families. Rows of another family would
    get an all-zero family part; ``load_domains`` keeps only images of the chosen families.
    """
    cols = [0, 1] + [2 + FAMILY_NAMES.index(f) for f in families]
    return attributes[:, cols].float()


def load_domains(split: str = "train", families: Sequence[str] = ("sans", "serif", "mono"), image_size: int = 32,
                 classes: str = "all", root=None) -> TensorImageDataset:
    """The glyphs of ``families`` with their domain label as the target: items (image, c') with c' float
    [bold, italic, one-hot family]. ``.targets`` still holds the character (for content preservation),
    ``.domain_names`` names the label's entries."""
    glyphs = data.load("glyphs", split, image_size=image_size, target="attributes", classes=classes, root=root)
    c = domain_labels(glyphs.views["attributes"], families)
    keep = c[:, 2:].sum(1) > 0
    ds = TensorImageDataset(glyphs.images[keep], glyphs.targets[keep], glyphs.classes, views={"domain": c[keep]},
                            target="domain", name="glyph-domains", split=split)
    ds.domain_names = domain_names(families)
    ds.families = tuple(families)
    ds.jitter = glyphs.jitter[keep]            # how each glyph was drawn: glyphs.render(..., jitter=) redraws it
    return ds


def describe(c: torch.Tensor, names: Sequence[str]) -> str:
    """A domain label as words: ``[1, 0, 0, 1, 0]`` with glyph names -> ``"serif bold"``."""
    c = [float(v) for v in c]
    families = [n for n, v in zip(names[2:], c[2:], strict=True) if v > 0.5]
    styles = [n for n, v in zip(names[:2], c[:2], strict=True) if v > 0.5]
    return " ".join(families + styles) or "regular"


class DomainClassifier(nn.Module):
    """D_cls on its own: D's body and classification head, x -> (B, c_dim) logits, in D's current mode (so
    ``sampling.generate`` can read labels with it like with any classifier)."""

    def __init__(self, D: stargan.Discriminator):
        super().__init__()
        self.D = D
        self.train(D.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(x)[1]

    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """0/1 labels as D_cls reads them (``read_labels``)."""
        return read_labels(self, x, batch_size)



# ============================================================================ measuring translations
@torch.no_grad()
def translate(G: nn.Module, x: torch.Tensor, c: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """G(x, c) at test time (eval mode, no gradients), in batches, on the CPU: ``sampling.generate``."""
    return generate(G, x, c, batch_size=batch_size)


@torch.no_grad()
def evaluate(G: nn.Module, dataset, attribute_net: AttributeClassifier, content_net, n: int = 500,
             label_of: Callable[[torch.Tensor], torch.Tensor] | None = None,
             D: nn.Module | None = None) -> dict[str, float]:
    """Translate ``n`` test images into EVERY domain and measure (Sec. 4's questions, with independent judges):

    - ``attribute_accuracy`` (and per label): ``attribute_net`` reads the target labels off G(x, c);
    - ``content_preserved``: ``content_net`` (the course's glyph classifier) still reads x's character;
    - ``reconstruction_l1``: mean |x - G(G(x, c), c')| per pixel (images in [-1, 1]);
    - ``identity_attribute_accuracy``: the attribute accuracy of G(x, c) = x, the score of doing nothing;
    - ``d_cls_attribute_accuracy`` (when ``D`` is given): the same count with G's own judge, D_cls (unshifted
      inputs), read like ``attribute_net``. Far above ``attribute_accuracy`` means G learned to fool D_cls.

    ``label_of`` maps domain labels to what G takes (e.g. ``mask.encode(c, k)``); the identity by default.
    """
    label_of = label_of or (lambda c: c)
    names = dataset.domain_names
    domains = all_domains(dataset.families)
    x, c_prime = dataset.get_batch(torch.arange(min(n, len(dataset))))
    chars = dataset.targets[: len(x)]
    B, K = len(x), len(domains)
    xs = x.repeat_interleave(K, 0)
    cs = domains.repeat(B, 1)
    fake = translate(G, xs, label_of(cs))
    rec = translate(G, fake, label_of(c_prime.repeat_interleave(K, 0)))
    predicted = attribute_net.predict(fake)
    acc = label_accuracy(predicted, cs, names)
    char_pred = torch.cat([content_net.logits(fake[i:i + 1024]).argmax(1).cpu() for i in range(0, len(fake), 1024)])
    out = {f"attribute_accuracy_{k}" if k != "all" else "attribute_accuracy": v for k, v in acc.items()}
    out["content_preserved"] = float((char_pred == chars.repeat_interleave(K)).float().mean())
    out["reconstruction_l1"] = float((rec - xs).abs().mean())
    out["identity_attribute_accuracy"] = label_accuracy(c_prime.repeat_interleave(K, 0), cs, names)["all"]
    if D is not None:
        out["d_cls_attribute_accuracy"] = label_accuracy(DomainClassifier(D).predict(fake), cs, names)["all"]
    return out


# ============================================================================ pictures and explorers
def _show(ax, image: torch.Tensor, title: str | None = None):
    ax.imshow(((image[0].detach().float().cpu() + 1) / 2).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def render_translation(G: nn.Module, dataset, index: int = 0, bold: bool = False, italic: bool = False,
                       family: str | None = None, attribute_net: AttributeClassifier | None = None,
                       label_of: Callable | None = None):
    """One input x, its translation G(x, c) to the chosen domain c and the reconstruction G(G(x, c), c').

    Each image is titled with its domain and, when ``attribute_net`` is given, what the independent classifier
    reads off it. Returns the figure.
    """
    label_of = label_of or (lambda c: c)
    names, families = dataset.domain_names, dataset.families
    family = family or families[0]
    x, c_prime = dataset.get_batch(torch.tensor([index]))
    c = torch.tensor([[float(bold), float(italic)] + [float(f == family) for f in families]])
    fake = translate(G, x, label_of(c))
    rec = translate(G, fake, label_of(c_prime))
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 3.4), layout="constrained")   # room for the suptitle
    read = attribute_net.predict(torch.cat([x, fake, rec])) if attribute_net is not None else None
    for i, (ax, img, name, lab) in enumerate(zip(axes, (x, fake, rec), ("input x", "G(x, c)", "G(G(x, c), c')"),
                                                 (c_prime, c, c_prime), strict=True)):
        title = f"{name}\n{describe(lab[0], names)}"
        if read is not None:
            title += f"\nclassifier: {describe(read[i], names)}"
        _show(ax, img[0], title)
    l1 = float((rec - x).abs().mean())
    fig.suptitle(f"test image {index} ('{dataset.classes[int(dataset.targets[index])]}'): to "
                 f"{describe(c[0], names)}; reconstruction L1 {l1:.3f}")
    return fig


def render_domain_grid(G: nn.Module, dataset, indices: Sequence[int] = (0,), label_of: Callable | None = None,
                       title: str | None = None):
    """Each input (a row) and its translations into every domain (columns: family x {regular, bold, italic,
    bold italic}). Returns the figure."""
    label_of = label_of or (lambda c: c)
    names, domains = dataset.domain_names, all_domains(dataset.families)
    idx = torch.as_tensor(list(indices))
    x, c_prime = dataset.get_batch(idx)
    K = len(domains)
    fake = translate(G, x.repeat_interleave(K, 0), label_of(domains.repeat(len(x), 1))).view(len(x), K, *x.shape[1:])
    cell = min(0.95, (8.5 - 0.4) / (K + 1))    # at most JupyterLab's width: text is not shrunk
    fig, axes = plt.subplots(len(x), K + 1, figsize=(cell * (K + 1) + 0.4, 1.25 * cell * len(x) + 1.1),
                             squeeze=False)
    for r in range(len(x)):
        _show(axes[r, 0], x[r], f"input\n{describe(c_prime[r], names)}" if r == 0 else None)
        axes[r, 0].set_ylabel(f"#{int(idx[r])}", fontsize=9)
        for k in range(K):
            _show(axes[r, k + 1], fake[r, k], describe(domains[k], names).replace(" ", "\n") if r == 0 else None)
    fig.suptitle(title or "One generator, every domain: each row is one input translated to all domains")
    fig.supxlabel("target domain c")
    fig.tight_layout()
    return fig


def translation_explorer(G: nn.Module, dataset, attribute_net: AttributeClassifier | None = None, n: int = 200,
                         label_of: Callable | None = None, title: str = "StarGAN: toggle the target domain"):
    """Explorer over ``render_translation``: pick a test image, toggle bold / italic, choose the family."""
    def render(index, bold, italic, family):
        return render_translation(G, dataset, index, bold, italic, family, attribute_net, label_of)

    return explorer(render, title=title,
                    index=widgets.IntSlider(value=0, min=0, max=min(n, len(dataset)) - 1, description="input"),
                    bold=widgets.Checkbox(value=True, description="bold"),
                    italic=widgets.Checkbox(value=False, description="italic"),
                    family=choice(dataset.families, description="family"))


def domain_grid_explorer(G: nn.Module, dataset, rows: int = 3, label_of: Callable | None = None,
                         title: str = "One input across all domains"):
    """Explorer over ``render_domain_grid``: a page of ``rows`` test inputs, each across every domain."""
    return explorer(lambda page: render_domain_grid(G, dataset, range(page * rows, page * rows + rows), label_of),
                    title=title, page=widgets.IntSlider(value=0, min=0, max=max(0, len(dataset) // rows - 1),
                                                        description="page"))


def cost_of_pairwise_models(k: int) -> int:
    """Generators needed to translate between every ordered pair of k domains with one model per pair (Fig. 2 (a)):
    k (k - 1). StarGAN needs 1."""
    return k * (k - 1)


# ============================================================================ the experiment arms
def train_arm(name: str, G: stargan.Generator, D: stargan.Discriminator, batches: stargan.DomainBatches,
              cfg: stargan.Config, *, steps: int, device: torch.device | str = "cpu", amp: bool = False,
              config: dict | None = None, cls_loss: Callable = stargan.domain_classification_loss,
              checkpoint_every: int = 500) -> Run:
    """Train one experiment arm for ``steps`` iterations of ``stargan.train_step`` and return its ``Run``.

    Fresh Adam optimisers (``stargan.optimizers``); ``batches`` is a ``stargan.DomainBatches`` (checkpointed with
    the run); ``cls_loss`` as in ``train_step`` (``mask.classification_loss`` for the mask-vector run). The run is
    saved under ``name`` like the chapter's main run (re-running resumes); its config is ``config`` (the data and
    network settings) updated with ``cfg``, so a changed setting starts afresh. The losses are in ``run.history``.
    """
    run = Run(name, {"G": G, "D": D}, stargan.optimizers(G, D, cfg), config={**(config or {}), **asdict(cfg)},
              device=device, amp=amp, checkpoint_every=checkpoint_every)
    run.attach(batches=batches)
    G.train()
    D.train()
    for _ in run.steps(steps):
        run.log(**stargan.train_step(run, G, D, batches, cfg, cls_loss=cls_loss))
    return run
