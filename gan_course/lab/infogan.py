"""What chapter 04 does with InfoGAN (``gan_course.models.infogan``): drawing samples with their codes, reading
the codes back, measuring what they mean, and the explorers.

- ``sample_with_codes``, ``sampler`` (for ``gan_course.metrics``) and ``read_codes`` (Q(c | x) of given images);
- what the codes mean: ``code_agreement`` (purity, matched accuracy and normalised mutual information of the
  categorical code against a classifier's labels), ``what_code_encodes`` (c_1 against several factors at once:
  digit, font family, bold, italic), ``glyph_moments`` (slant, width, height, thickness of a digit,
  from image moments), ``correlations``, ``ShapeFactorReader`` (hue, scale, position and background of a
  ``shapes`` image), ``contingency``, ``entropy``, ``mutual_information``, ``quantize``, ``code_factor_nmi``,
  ``correlation_ratio``, ``code_factor_r2`` and ``mig`` (the disentanglement matrix and gap);
- ``CLAIMS``: what the chapter claims about its runs, checked by ``gan_course.claims``;
- the explorers: ``render_codes`` / ``code_explorer`` (a picker for c_1, a slider per continuous code),
  ``render_traversal`` (Fig. 2: one code varies, everything else fixed) and ``heatmap``.

The chapter's experiment arms (InfoGAN and a plain GAN on shapes) run through ``gan_course.lab.dcgan.train_arm``
around ``infogan.train_step``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
import torch.nn.functional as F
from matplotlib.colors import rgb_to_hsv
from scipy.optimize import linear_sum_assignment

from ..claims import Claim
from ..metrics import extract
from ..models.infogan import Discriminator, Generator, Latent, QOutput
from ..sampling import generate
from ..viz import image_grid
from ..widgets import choice, explorer, seed_slider

# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("c1_agrees_with_digit", "Sec. 7.1: on MNIST c_1 'can capture drastic change in shape', i.e. the digit "
          "(matched accuracy of c_1 against the course classifier's digit, above chance = 1 / K)",
          "c1_matched_accuracy", ">", "c1_chance"),
    Claim("info_term_disentangles", "Sec. 7.2 / Fig. 1: without L_I the codes mean nothing in particular (MIG on "
          "shapes, InfoGAN vs the same GAN with lambda = 0)", "shapes_mig_infogan", ">", "shapes_mig_plain"),
    Claim("info_term_explains_factors", "Sec. 7.2: with L_I each factor is explained by some code (mean over "
          "factors of the best code's eta^2 on shapes, InfoGAN vs lambda = 0)", "shapes_best_eta2_infogan", ">",
          "shapes_best_eta2_plain"),
]


# ============================================================================ samples with their codes
def sample_with_codes(G: Generator, n: int, seed: int = 0):
    """``n`` samples from the prior (seeded) with their codes: ``(images, c_cat, c_cont)``."""
    z, c_cat, c_cont = G.latent.sample(n, torch.Generator().manual_seed(seed))
    return generate(G, z, c_cat, c_cont), c_cat, c_cont


def sampler(G: Generator, seed: int = 0) -> Callable[[int], torch.Tensor]:
    """``n -> n samples G(z, c)`` with (z, c) from the prior, seeded (for ``gan_course.metrics``)."""
    return lambda n: sample_with_codes(G, n, seed)[0]


@torch.no_grad()
def read_codes(D: Discriminator, images: torch.Tensor, batch_size: int = 500) -> QOutput:
    """Q(c | x) for a batch of images (e.g. real ones), in eval mode, on the CPU."""
    was_training = D.training
    D.eval()
    device = next(D.parameters()).device
    parts = [D.q(images[i:i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
    D.train(was_training)
    return QOutput(*(torch.cat([getattr(p, f) for p in parts]).cpu() for f in QOutput._fields))



# ============================================================================ what do the codes mean?
def contingency(a: torch.Tensor, b: torch.Tensor, ka: int | None = None, kb: int | None = None) -> torch.Tensor:
    """Counts n[i, j] of samples with a = i and b = j (two integer label vectors)."""
    a, b = torch.as_tensor(a).long().flatten(), torch.as_tensor(b).long().flatten()
    ka = ka or int(a.max()) + 1
    kb = kb or int(b.max()) + 1
    return torch.bincount(a * kb + b, minlength=ka * kb).view(ka, kb)


def entropy(labels: torch.Tensor, k: int | None = None) -> float:
    """H(a) in nats of a discrete label vector (plug-in estimate)."""
    p = torch.bincount(torch.as_tensor(labels).long().flatten(), minlength=k or 0).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def mutual_information(a: torch.Tensor, b: torch.Tensor) -> float:
    """I(a; b) in nats between two discrete label vectors, from their contingency table (plug-in estimate):

    I(a; b) = sum_ij p_ij log(p_ij / (p_i p_j)).
    """
    n = contingency(a, b).double()
    p = n / n.sum()
    outer = p.sum(1, keepdim=True) * p.sum(0, keepdim=True)
    mask = p > 0
    return float((p[mask] * (p[mask] / outer[mask]).log()).sum())


def quantize(values: torch.Tensor, bins: int = 10) -> torch.Tensor:
    """Equal-frequency bins 0..bins-1 of a continuous vector (its ranks cut into ``bins`` groups)."""
    values = torch.as_tensor(values).double().flatten()
    ranks = torch.empty(len(values), dtype=torch.long)
    ranks[values.argsort()] = torch.arange(len(values))
    return ranks * bins // len(values)


def code_agreement(c_cat: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """How well the categorical code c_1 matches a labelling (e.g. a classifier's predicted digit):

    - ``purity``: each code value votes for its most frequent label; the fraction of samples that agree;
    - ``matched_accuracy``: the best one-to-one assignment of code values to labels (Hungarian algorithm), the
      paper's "classification error" (Sec. 7.1: 5% on MNIST) read the other way;
    - ``nmi``: I(c_1; label) / H(label), the fraction of the label's entropy the code explains (1: it determines it);
    - ``mapping``: code value -> label of the one-to-one assignment.
    """
    c_cat, labels = torch.as_tensor(c_cat).long(), torch.as_tensor(labels).long()
    k = max(int(c_cat.max()) + 1, num_classes)
    n = contingency(c_cat, labels, k, num_classes)
    rows, cols = linear_sum_assignment(-n.numpy())
    return {"purity": float(n.max(dim=1).values.sum() / n.sum()),
            "matched_accuracy": float(n[rows, cols].sum() / n.sum()),
            "nmi": mutual_information(c_cat, labels) / max(entropy(labels, num_classes), 1e-12),
            "mapping": {int(r): int(c) for r, c in zip(rows, cols, strict=True)}}


def what_code_encodes(c_cat: torch.Tensor, factors: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """How much of each factor (a discrete labelling of the same samples: digit, font family, bold, ...) the
    categorical code c_1 determines: ``{factor: {"H(factor)", "I(c1; factor)", "share of H(factor)",
    "share of H(c1)"}}`` in nats. The share of H(factor) is ``code_agreement``'s NMI; the share of H(c1) says how
    much of the code's own entropy the factor accounts for (the shares of factors that are independent of each
    other add up to at most 1)."""
    c_cat = torch.as_tensor(c_cat).long()
    h_code = entropy(c_cat)
    rows = {}
    for name, labels in factors.items():
        h, i = entropy(labels), mutual_information(c_cat, labels)
        rows[name] = {"H(factor)": h, "I(c1; factor)": i, "share of H(factor)": i / max(h, 1e-12),
                      "share of H(c1)": i / max(h_code, 1e-12)}
    return rows


def glyph_moments(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Smooth properties of white-on-black glyphs from their image moments (ink m = (x + 1) / 2 as a density):

    - ``slant``: mu_11 / mu_02, the shear that would make the glyph upright (> 0 leans right, like italics);
    - ``width``, ``height``: the standard deviations of the ink along x and y, in pixels;
    - ``thickness``: the mean ink per pixel (thicker strokes, more ink).

    These are the quantities InfoGAN's continuous codes picked up on MNIST (Fig. 2: rotation, width; Fig. 5:
    thickness) measured without a labelled ruler. Returns tensors of shape (N,).
    """
    m = ((images.float()[:, 0] + 1) / 2).clamp(0, 1)              # (N, H, W)
    n, h, w = m.shape
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1).expand(n, h, w)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w).expand(n, h, w)
    mass = m.sum(dim=(1, 2)).clamp_min(1e-6)
    cx, cy = (m * xs).sum(dim=(1, 2)) / mass, (m * ys).sum(dim=(1, 2)) / mass
    dx, dy = xs - cx.view(n, 1, 1), -(ys - cy.view(n, 1, 1))       # dy > 0 upwards
    mu20, mu02 = (m * dx * dx).sum(dim=(1, 2)) / mass, (m * dy * dy).sum(dim=(1, 2)) / mass
    mu11 = (m * dx * dy).sum(dim=(1, 2)) / mass
    return {"slant": mu11 / mu02.clamp_min(1e-6), "width": mu20.sqrt(), "height": mu02.sqrt(),
            "thickness": m.mean(dim=(1, 2))}


def correlations(codes: torch.Tensor, measures: dict[str, torch.Tensor]) -> torch.Tensor:
    """Pearson correlation between each column of ``codes`` (N, L) and each measure (N,): an (L, M) matrix."""
    c = codes.double() - codes.double().mean(0)
    m = torch.stack([v.double() for v in measures.values()], dim=1)
    m = m - m.mean(0)
    return (c.T @ m) / (c.norm(dim=0).view(-1, 1) * m.norm(dim=0).view(1, -1)).clamp_min(1e-12)


class ShapeFactorReader:
    """Reads the ground-truth factors of a ``shapes`` image back off its pixels, so that the factors of *generated*
    images can be compared with the codes that made them.

    Every ``shapes`` image is a grey background b blended with one shape of colour k with pixel coverage a:
    x = b + a (k - b). The colour has saturation 0.85 and value 0.95 and the background is grey, so
    max(rgb) - min(rgb) = 0.8075 a: the coverage of every pixel is known exactly. From it:

    - ``background``: the median grey of the pixels outside the shape (coverage < 0.05);
    - ``x``, ``y``: the coverage-weighted centroid, in the dataset's [-1, 1] image coordinates;
    - ``scale``: sqrt(area) divided by the area of that shape at scale 1 (``fit`` measures it on real images);
    - ``hue``: the hue of the coverage-weighted mean colour (mixing a colour with grey does not change its hue);
    - ``shape``: the course classifier's prediction.

    Rotation is not read (its range depends on the shape's symmetry). ``names`` lists the columns of ``read``.
    """

    names = ("shape", "hue", "scale", "x", "y", "background")
    CHROMA = 0.85 * 0.95

    def __init__(self, classifier=None):
        self.classifier = classifier
        self.unit_area = None

    def _parts(self, images: torch.Tensor):
        rgb = ((images.float() + 1) / 2).clamp(0, 1)                       # (N, 3, H, W)
        n, _, h, w = rgb.shape
        chroma = rgb.amax(1) - rgb.amin(1)
        a = (chroma / self.CHROMA).clamp(0, 1)                             # coverage (N, H, W)
        grey = rgb.mean(1)
        outside = a < 0.05
        background = torch.stack([g[o].median() if o.any() else g.median() for g, o in zip(grey, outside, strict=True)])
        area = a.sum(dim=(1, 2)).clamp_min(1e-6)
        coords = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
        x = (a * coords.view(1, 1, w)).sum(dim=(1, 2)) / area
        y = (a * coords.view(1, h, 1)).sum(dim=(1, 2)) / area
        weight = a.unsqueeze(1)                                            # blending with grey keeps the hue
        colour = (rgb * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3)).clamp_min(1e-6)
        hue = torch.from_numpy(rgb_to_hsv(colour.clamp(0, 1).numpy())[:, 0]).float()
        return area / (h * w), hue, x, y, background

    def predict_shape(self, images: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise ValueError("ShapeFactorReader needs the shapes course classifier to read the shape")
        return extract(self.classifier, images, what="logits").argmax(1)

    def fit(self, images: torch.Tensor, shapes: torch.Tensor, scales: torch.Tensor) -> ShapeFactorReader:
        """Learn, per shape, the image area at scale 1 (area / scale^2, median over real images)."""
        area = self._parts(images)[0]
        unit = torch.zeros(int(shapes.max()) + 1)
        for k in range(len(unit)):
            mask = shapes.long() == k
            unit[k] = (area[mask] / scales[mask] ** 2).median()
        self.unit_area = unit
        return self

    def read(self, images: torch.Tensor, shapes: torch.Tensor | None = None) -> torch.Tensor:
        """Factors (N, 6) in the order of ``names``; ``shapes`` (true or predicted class) skips the classifier."""
        if self.unit_area is None:
            raise ValueError("call fit(real_images, shape_classes, scales) first: the scale needs each shape's area")
        area, hue, x, y, background = self._parts(images)
        shapes = self.predict_shape(images) if shapes is None else torch.as_tensor(shapes).long()
        scale = (area / self.unit_area[shapes]).sqrt()
        return torch.stack([shapes.float(), hue, scale, x, y, background], dim=1)


def code_factor_nmi(codes: torch.Tensor, factors: torch.Tensor, discrete_codes=(0,), discrete_factors=(0,),
                    bins: int = 10) -> torch.Tensor:
    """The disentanglement matrix: entry (j, k) = I(c_j; f_k) / H(f_k), how much of factor k code j determines.

    ``codes`` (N, J) and ``factors`` (N, K); columns listed in ``discrete_*`` are used as labels, the others are cut
    into ``bins`` equal-frequency bins (then H(f_k) = log bins). Each row of a well disentangled model has one large
    entry, and each factor is explained by one code.
    """
    def labels(matrix, discrete):
        return [matrix[:, i].long() if i in discrete else quantize(matrix[:, i], bins) for i in range(matrix.shape[1])]

    cs, fs = labels(codes, discrete_codes), labels(factors, discrete_factors)
    return torch.tensor([[mutual_information(c, f) / max(entropy(f), 1e-12) for f in fs] for c in cs])


def correlation_ratio(groups: torch.Tensor, values: torch.Tensor) -> float:
    """eta^2 = Var(E[f | g]) / Var(f): the fraction of the variance of ``values`` (N,) or (N, d) explained by the
    group labels ``groups`` (N,) (Pearson's correlation ratio, squared). 0: the groups tell nothing about the mean of
    f; 1: f is constant within each group. For a vector f the variances of its components are added."""
    groups = torch.as_tensor(groups).long().flatten()
    v = torch.as_tensor(values).double().reshape(len(groups), -1)
    total = ((v - v.mean(0)) ** 2).sum()
    k = int(groups.max()) + 1
    counts = torch.bincount(groups, minlength=k).double()
    means = torch.zeros(k, v.shape[1], dtype=torch.float64).index_add_(0, groups, v) / counts.clamp_min(1).view(-1, 1)
    between = (counts.view(-1, 1) * (means - v.mean(0)) ** 2).sum()
    return float(between / total.clamp_min(1e-12))


def code_factor_r2(codes: torch.Tensor, factors: torch.Tensor, factor_names, discrete_codes=(0,),
                   categorical=("shape",), circular=("hue",), bins: int = 10) -> torch.Tensor:
    """The disentanglement matrix in variance terms: entry (j, k) = eta^2 of factor k given code j, the fraction of
    the factor's variance that the code explains (``correlation_ratio``; continuous codes cut into ``bins``
    equal-frequency bins). Categorical factors are one-hot encoded and circular ones (hue in [0, 1)) placed on the
    unit circle, so every entry is a fraction of variance in [0, 1]."""
    def embed(name, f):
        if name in categorical:
            return F.one_hot(f.long(), int(f.max()) + 1).double()
        if name in circular:
            return torch.stack([torch.cos(2 * math.pi * f), torch.sin(2 * math.pi * f)], 1).double()
        return f.double()

    fs = [embed(name, factors[:, k]) for k, name in enumerate(factor_names)]
    cs = [codes[:, j].long() if j in discrete_codes else quantize(codes[:, j], bins) for j in range(codes.shape[1])]
    return torch.tensor([[correlation_ratio(c, f) for f in fs] for c in cs])


def mig(nmi: torch.Tensor) -> float:
    """Mutual Information Gap (Chen et al., 2018, arXiv 1802.04942): for each factor, the difference between the
    largest and the second largest normalised MI over the codes, averaged over factors. 1: every factor is read by
    exactly one code; 0: the best code is no better than the runner-up (entangled or uninformative)."""
    top = nmi.sort(dim=0, descending=True).values
    return float((top[0] - top[1]).mean())


# ============================================================================ explorers (Sec. 7, Fig. 2)
def _latent_grid(latent: Latent, n: int, seed: int):
    return torch.randn(n, latent.z_dim, generator=torch.Generator().manual_seed(int(seed)))


def _draw(ax, images: torch.Tensor, nrow: int):
    ax.imshow(image_grid(images, nrow=nrow).permute(1, 2, 0).numpy(), interpolation="nearest")


def render_codes(G: Generator, category: int = 0, continuous=(), seed: int = 0, n: int = 32, nrow: int = 8,
                 class_names: list[str] | None = None):
    """``n`` samples G(z, c) that share the codes c = (``category``, ``continuous``...) and differ only in z (drawn
    from ``seed``): what the codes fix, across many noise vectors."""
    latent = G.latent
    values = list(continuous) + [0.0] * (latent.continuous - len(continuous))
    z = _latent_grid(latent, n, seed)
    c_cat = torch.full((n,), int(category), dtype=torch.long)
    c_cont = torch.tensor(values, dtype=torch.float32).expand(n, -1)
    images = generate(G, z, c_cat, c_cont)
    fig, ax = plt.subplots(figsize=(0.75 * nrow + 1, 0.75 * math.ceil(n / nrow) + 0.9))
    _draw(ax, images, nrow)
    ax.set_xticks([])
    ax.set_yticks([])
    codes = ", ".join(f"c{j + 2}={v:+.2f}" for j, v in enumerate(values))
    ax.set_title(f"G(z, c): c1={category}, {codes}; {n} noise vectors z (seed {seed})", fontsize=9)
    ax.set_xlabel("z varies (same codes everywhere)")
    if class_names is not None:
        ax.set_ylabel(f"looks like '{class_names[int(category)]}'?" if category < len(class_names) else "")
    fig.tight_layout()
    return fig


def code_explorer(G: Generator, title: str = "InfoGAN: pick c1, slide the continuous codes", limit: float = 2.0,
                  n: int = 32):
    """An explorer over ``render_codes``: a picker for the categorical code c_1, one slider per continuous code
    (from -``limit`` to ``limit``: the paper extrapolates to +-2, beyond the prior's +-1), and the seed of z."""
    latent = G.latent
    controls = {"category": choice(list(range(latent.categories)), value=0, description="c1")}
    for j in range(latent.continuous):
        controls[f"c{j + 2}"] = widgets.FloatSlider(value=0.0, min=-limit, max=limit, step=0.1,
                                                    description=f"c{j + 2}")
    controls["seed"] = seed_slider(0)

    def render(category, seed, **codes):
        return render_codes(G, category, [codes[f"c{j + 2}"] for j in range(latent.continuous)], seed, n=n)

    return explorer(render, title=title, **controls)


def render_traversal(G: Generator, code: int, values=None, seed: int = 0, rows: int | None = None,
                     row_categories: bool = True, limit: float = 2.0):
    """Fig. 2: vary one code from left to right, everything else fixed within a row.

    ``code = 1`` varies the categorical code c_1 over its K values (each row a different z, continuous codes 0).
    ``code >= 2`` varies continuous code c_code over ``values`` (default -``limit``..``limit`` in 9 steps); with
    ``row_categories`` row r uses c_1 = r (one row per category), each with its own z; the other codes are 0.
    """
    latent = G.latent
    if code == 1:
        rows = rows or 5
        cols = latent.categories
        z = _latent_grid(latent, rows, seed).repeat_interleave(cols, 0)
        c_cat = torch.arange(cols).repeat(rows)
        c_cont = torch.zeros(rows * cols, latent.continuous)
        ticks, xlabel = [str(k) for k in range(cols)], "categorical code c1"
    elif 2 <= code <= latent.continuous + 1:
        values = torch.linspace(-limit, limit, 9) if values is None else torch.as_tensor(values, dtype=torch.float32)
        rows = rows or (latent.categories if row_categories else 5)
        cols = len(values)
        z = _latent_grid(latent, rows, seed).repeat_interleave(cols, 0)
        c_cat = (torch.arange(rows) % latent.categories if row_categories
                 else torch.zeros(rows, dtype=torch.long)).repeat_interleave(cols)
        c_cont = torch.zeros(rows * cols, latent.continuous)
        c_cont[:, code - 2] = values.repeat(rows)
        ticks, xlabel = [f"{v:+.1f}" for v in values.tolist()], f"continuous code c{code}"
    else:
        raise ValueError(f"code must be 1 (categorical) or 2..{latent.continuous + 1} (continuous), got {code}")
    images = generate(G, z, c_cat, c_cont)
    side = images.shape[-1] + 2
    fig, ax = plt.subplots(figsize=(0.6 * cols + 1.2, 0.6 * rows + 0.9))
    _draw(ax, images, cols)
    ax.set_xticks([(i + 0.5) * side for i in range(cols)], ticks, fontsize=7)
    ax.set_yticks([(i + 0.5) * side for i in range(rows)],
                  [f"c1={k}" for k in (torch.arange(rows) % latent.categories).tolist()]
                  if code != 1 and row_categories else [f"z{r}" for r in range(rows)], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("row: fixed z" + (" and c1" if code != 1 and row_categories else ""))
    ax.set_title(f"Varying {'c1' if code == 1 else f'c{code}'}, all else fixed in each row", fontsize=9)
    fig.tight_layout()
    return fig


def heatmap(matrix: torch.Tensor, row_labels, col_labels, title: str, ax=None, vmin: float = 0.0,
            vmax: float = 1.0, cmap: str = "viridis", xlabel: str = "factor", ylabel: str = "code"):
    """A seaborn heatmap of a code x factor matrix, annotated with its values."""
    if ax is None:
        _, ax = plt.subplots(figsize=(0.9 * len(col_labels) + 1.5, 0.45 * len(row_labels) + 1.2))
    sns.heatmap(np.asarray(matrix, dtype=float), annot=True, fmt=".2f", vmin=vmin, vmax=vmax, cmap=cmap,
                xticklabels=list(col_labels), yticklabels=list(row_labels), ax=ax, cbar=True)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax
