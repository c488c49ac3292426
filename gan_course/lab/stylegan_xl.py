"""What chapter 10 does with StyleGAN-XL (``gan_course.models.stylegan_xl``): measure it, sweep it, explore it.

- ``sampler``: the ``n -> images`` form ``gan_course.metrics`` takes, class-balanced;
- ``mix_styles`` (StyleGAN's style mixing), ``within_class_spread`` and ``truncation_sweep`` (the fidelity /
  variety curve over psi);
- the explorers: ``render_class_truncation`` / ``class_truncation_explorer``, ``render_style_mixing`` /
  ``style_mixing_explorer``, ``render_interpolation`` / ``interpolation_explorer``;
- ``StandardDiscriminator``, the baseline D of "what goes wrong" (trained from scratch, no pretrained features);
- ``train_arm``, the "what goes wrong" arms: a ``Run`` + ``Batches`` loop around ``stylegan_xl.train_step``
  (the same update the notebook's main loop runs), and ``snapshot_path`` for G's weights kept at a step.

Every eval-mode draw goes through ``gan_course.sampling.generate`` (via ``sampling.GeneratorView``).
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ..claims import Claim
from ..data import load
from ..files import atomic_save
from ..layers import SNConv2d, diff_augment
from ..metrics import classifier_agreement, course_classifier, evaluate, extract
from ..models import stylegan_xl as xl
from ..models.stylegan_xl import Generator, normalize_2nd_moment, truncate
from ..sampling import GeneratorView, generate, lerp, normal
from ..training import Batches, Run
from ..utils import seed_everything
from ..viz import show_images
from ..widgets import choice, explorer

__all__ = ["CLAIMS", "sampler", "mix_styles", "within_class_spread", "recognised_spread", "truncation_sweep",
           "render_class_truncation", "class_truncation_explorer", "render_style_mixing", "style_mixing_explorer", "render_interpolation",
           "interpolation_explorer", "StandardDiscriminator", "snapshot_path", "train_arm"]


# ============================================================================ what the chapter claims
# Judged by the TinyViT trained in the chapter: with the default FEATURE_NETS = ("cnn",) neither D (whose features
# come from the course classifier) nor classifier guidance (the same classifier) ever used it.
CLAIMS = [
    Claim("projected_d_beats_standard_d", "Sauer et al. 2021, Sec. 3 / StyleGAN-XL Sec. 3.2: a discriminator on frozen "
          "pretrained features trains G far faster than one from scratch on pixels (class agreement by the TinyViT "
          "after COMPARE_STEPS steps, projected vs ordinary D)", "agreement_vit_xl_at_compare",
          ">", "agreement_vit_standard_d"),
    Claim("projected_d_beats_standard_d_rfid", "The same claim judged by a network nobody trained: rFID, the FID in a "
          "randomly initialised Inception-v3 (StyleGAN-XL's own check), after COMPARE_STEPS steps, projected vs "
          "ordinary D", "rfid_xl_at_compare", "<", "rfid_standard_d"),
    Claim("pretrained_embeddings_help", "StyleGAN-XL Sec. 3.2: class embeddings initialised from a pretrained "
          "classifier help (TinyViT agreement after COMPARE_STEPS steps, pretrained vs random table)",
          "agreement_vit_xl_at_compare", ">", "agreement_vit_random_embeddings"),
    Claim("gated_guidance_keeps_variety", "StyleGAN-XL Sec. 3.2 and its code: classifier guidance only from 32x32 on, "
          "since at lower resolutions it 'leads to mode collapse' (the variety of the samples the TinyViT recognises as "
          "their class, in its features, after COMPARE_STEPS steps: guidance from 32x32 vs at every resolution)",
          "variety_vit_xl_at_compare", ">", "variety_vit_guidance_everywhere"),
    Claim("truncation_raises_agreement", "StyleGAN Sec. 3.1 / StyleGAN-XL: truncation in W toward the class's average w "
          "makes samples more typical of their class (TinyViT agreement at psi = PSI_REPORTED vs psi = 1)",
          "agreement_vit_truncated", ">", "agreement_vit_psi1"),
]


def _latent(seed: int, z_dim: int) -> torch.Tensor:
    """One z ~ N(0, I), (1, z_dim), from ``torch.Generator().manual_seed(seed)``: the explorers' "seed"."""
    return normal(1, z_dim, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- sampling and measurements
def sampler(G: Generator, psi: float = 1.0, seed: int = 0):
    """``n -> n`` class-balanced images (classes 0, 1, ..., K-1, 0, ...): the form ``gan_course.metrics`` takes."""
    return lambda n: xl.sample(G, torch.arange(n) % G.n_classes, psi, seed)


def mix_styles(G: Generator, z_a: torch.Tensor, z_b: torch.Tensor, c: torch.Tensor, crossover: int,
               psi: float = 1.0) -> torch.Tensor:
    """Style mixing (StyleGAN, Sec. 3.1): w_a drives the layers before index ``crossover`` (coarse: layout, class
    shape), w_b those from ``crossover`` on (fine: stroke, texture). ``crossover`` = 0 gives G(z_b), ``num_ws`` gives
    G(z_a). Constant noise, eval mode, clamped to [-1, 1]."""
    def mixed(z_a, z_b, c):
        w_a, w_b = G.mapping(z_a, c, psi), G.mapping(z_b, c, psi)
        ws = w_a.unsqueeze(1).repeat(1, G.num_ws, 1)
        ws[:, crossover:] = w_b.unsqueeze(1)
        return G.synthesis(ws, "const")
    return generate(GeneratorView(G, mixed), z_a, z_b, c).clamp(-1, 1)


@torch.no_grad()
def within_class_spread(net, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Variety *inside* the classes: the mean over classes k of tr Cov(phi(x) | class k), the summed variance of the
    feature network's features phi over the images of each class. 0 when every image of a class is the same (psi = 0
    with constant noise); divided by the real data's value it says how much of the data's within-class variety G
    reproduces (precision/recall mix this with fidelity; this number does not)."""
    f = extract(net, images)
    labels = torch.as_tensor(labels).cpu()
    traces = [f[labels == k].var(0, unbiased=False).sum() for k in labels.unique()]
    return float(torch.stack(traces).mean())


def recognised_spread(net, images: torch.Tensor, labels: torch.Tensor, n_classes: int) -> float:
    """Variety of what ``net`` recognises: for each class k < ``n_classes``, tr Cov(phi(x)) over the images made for
    class k that ``net`` classifies as k (0 for a class with fewer than two), averaged over all ``n_classes`` classes.
    ``within_class_spread`` counts noise as variety (blotches spread far in any feature space); here an image adds
    variety only if it is recognisably its class, and a class drawn one way only, or never drawn, adds none, so the
    number falls with mode collapse and with a class left out."""
    labels = torch.as_tensor(labels).cpu()
    f = extract(net, images)
    recognised = extract(net, images, what="logits").argmax(1) == labels
    traces = [f[recognised & (labels == k)].var(0, unbiased=False).sum() if int((recognised & (labels == k)).sum()) > 1
              else torch.tensor(0.0) for k in range(n_classes)]
    return float(torch.stack(traces).mean())


def class_scores(net, images: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[list[float], list[float]]:
    """Per class k < ``n_classes``: the fraction of the images made for k that ``net`` classifies as k, and
    tr Cov(phi(x)) over those images (``within_class_spread`` for one class; 0 with fewer than two). Two lists."""
    labels = torch.as_tensor(labels).cpu()
    f = extract(net, images)
    predicted = extract(net, images, what="logits").argmax(1)
    agreement, spread = [], []
    for k in range(n_classes):
        mine = labels == k
        agreement.append(float((predicted[mine] == k).double().mean()) if mine.any() else float("nan"))
        spread.append(float(f[mine].var(0, unbiased=False).sum()) if int(mine.sum()) > 1 else 0.0)
    return agreement, spread


def _name(net) -> str:
    return getattr(net, "description", None) or type(net).__name__


def truncation_sweep(G: Generator, psis, dataset: str = "glyphs", n: int = 1000, seed: int = 0, grid: int = 40,
                     data_options: dict | None = None, judge=None, **evaluate_kwargs) -> list[dict]:
    """The fidelity / variety curve: for each psi, ``gan_course.metrics.evaluate`` on ``n`` class-balanced samples
    (FID, precision, recall, classes covered with the course classifier), the classifier agreement with the class
    each sample was generated for, the within-class variety relative to the data's (``within_class_spread`` of the
    samples / that of ``n`` training images, in the course classifier's features), and the first ``grid`` samples.
    The same z at every psi.

    Per class (for the explorer): ``agreement_by_class`` and ``variety_by_class`` (``class_scores`` of the samples
    over those of the same training images), measured by ``judge`` (a network neither D nor guidance uses, e.g. the
    chapter's TinyViT; default the course classifier), named in ``judge``."""
    net = course_classifier(dataset)
    judge = judge or net
    real = load(dataset, **(data_options or {}))
    index = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n]
    x_real, y_real = real.get_batch(index)[:2] if hasattr(real, "get_batch") else \
        [torch.stack(t) for t in zip(*[real[int(i)][:2] for i in index], strict=True)]
    real_spread = within_class_spread(net, x_real, y_real)
    _, real_by_class = class_scores(judge, x_real, y_real, G.n_classes)
    c = torch.arange(n) % G.n_classes
    rows = []
    for psi in psis:
        images = xl.sample(G, c, psi, seed)
        m = evaluate(images, dataset, n=n, seed=seed, data_options=data_options, **evaluate_kwargs)
        agreement_k, spread_k = class_scores(judge, images, c, G.n_classes)
        rows.append(dict(psi=psi, fid=m["fid"], precision=m["precision"], recall=m["recall"],
                         classes_covered=m["classes_covered"], agreement=classifier_agreement(net, images, c),
                         variety=within_class_spread(net, images, c) / real_spread, images=images[:grid],
                         agreement_by_class=agreement_k,
                         variety_by_class=[v / max(r, 1e-12) for v, r in zip(spread_k, real_by_class, strict=True)],
                         real_spread_by_class=real_by_class, judge=_name(judge), dataset=dataset,
                         per_class_n=n // G.n_classes))
    return rows


# --------------------------------------------------------------------------- explorers
def _rows_figure(images: torch.Tensor, nrow: int, height: float, title: str):
    """A titled figure of image rows, ``nrow`` images a row (the style-mixing and interpolation explorers)."""
    fig, ax = plt.subplots(figsize=(1.3 * nrow + 1, height))
    show_images(images, nrow=nrow, ax=ax, title=title)
    fig.tight_layout()
    return fig


def render_class_truncation(G: Generator, sweep: list[dict], class_names, c: int, psi: float, n: int = 8,
                            seed: int = 0, judge=None):
    """Explorer figure for class ``c`` at truncation ``psi`` (any value, not only a swept one): ``n`` of its samples
    (same z as psi changes); below, fidelity against variety for this class (its own curve over the swept psi, and
    this psi measured now on as many samples of the class as the sweep had) beside the mean over classes; and FID
    over psi with this psi marked. Per-class numbers come from ``sweep``'s ``judge`` (pass the same network as
    ``judge``; ``truncation_sweep`` rows)."""
    if not sweep or "agreement_by_class" not in sweep[0]:
        raise ValueError("sweep rows need agreement_by_class / variety_by_class: make them with truncation_sweep")
    if judge is None:
        judge = course_classifier(sweep[0]["dataset"])
    if _name(judge) != sweep[0]["judge"]:
        raise ValueError(f"the sweep's per-class numbers were measured by {sweep[0]['judge']!r}: pass that network "
                         f"as judge (got {_name(judge)!r})")
    m = max(n, sweep[0]["per_class_n"])
    images = xl.sample(G, torch.full((m,), int(c)), psi, seed)
    here_agree, here_spread = class_scores(judge, images, torch.full((m,), int(c)), G.n_classes)
    psis = [r["psi"] for r in sweep]
    fig = plt.figure(figsize=(8.5, 6.6))   # JupyterLab's output width at 100 %: text keeps its size
    grid = fig.add_gridspec(2, 2, height_ratios=[0.55, 1])
    image_ax, curve_ax, fid_ax = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    show_images(images[:n], nrow=n, ax=image_ax, title=f"class '{class_names[c]}', psi = {psi:.2f}")
    mean = [(sum(r["variety_by_class"]) / len(r["variety_by_class"]),
             sum(r["agreement_by_class"]) / len(r["agreement_by_class"])) for r in sweep]
    curve_ax.plot(*zip(*mean, strict=True), "o--", color="0.6", label="mean over classes")
    mine = [(r["variety_by_class"][c], r["agreement_by_class"][c]) for r in sweep]
    curve_ax.plot(*zip(*mine, strict=True), "o-", color="C0", label=f"class '{class_names[c]}'")
    for (v, a), p in zip(mine, psis, strict=True):
        curve_ax.annotate(f"{p:g}", (v, a), textcoords="offset points", xytext=(4, 4), fontsize=9, color="C0")
    curve_ax.plot(here_spread[c] / max(sweep[0]["real_spread_by_class"][c], 1e-12), here_agree[c], "k*",
                  markersize=15, label=f"psi = {psi:.2f}, {m} samples now")
    curve_ax.set(xlabel="within-class variety (data = 1)", ylabel="share judged as its class",
                 title=f"Fidelity vs variety (judge: {sweep[0]['judge'].split(' (')[0]})")
    fid_ax.plot(psis, [r["fid"] for r in sweep], "o-", label="FID, all classes")
    fid_ax.axvline(psi, color="k", ls=":", label=f"psi = {psi:.2f}")
    fid_ax.set(xlabel="truncation psi", ylabel="FID (course classifier)", title="FID vs truncation")
    for ax in (curve_ax, fid_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def class_truncation_explorer(G: Generator, sweep: list[dict], class_names, n: int = 8, judge=None):
    """Class picker + psi slider + seed: ``render_class_truncation`` (``judge``: the network that measured the
    sweep's per-class numbers, so the chosen psi is measured the same way)."""
    return explorer(lambda c, psi, seed: render_class_truncation(G, sweep, class_names, c, psi, n, seed, judge),
                    title="Class and truncation in W",
                    c=choice([(name, k) for k, name in enumerate(class_names)], description="class"),
                    psi=widgets.FloatSlider(value=1.0, min=0.0, max=1.2, step=0.05, description="psi"),
                    seed=widgets.IntSlider(value=0, min=0, max=99, description="seed"))


def render_style_mixing(G: Generator, class_names, c: int, seed_a: int, seed_b: int, crossover: int,
                        psi: float = 1.0, n: int = 6):
    """Explorer figure: a row of G(z_a), a row of G(z_b) and a row of the mixes (w_a before ``crossover``, w_b from it),
    ``n`` seeds each (seed_a + i, seed_b + i), class ``c``."""
    cs = torch.full((n,), int(c))
    z_a = torch.cat([_latent(seed_a + i, G.z_dim) for i in range(n)])
    z_b = torch.cat([_latent(seed_b + i, G.z_dim) for i in range(n)])
    rows = torch.cat([mix_styles(G, z_a, z_a, cs, 0, psi), mix_styles(G, z_b, z_b, cs, 0, psi),
                      mix_styles(G, z_a, z_b, cs, crossover, psi)])
    return _rows_figure(rows, n, 4.4, f"class '{class_names[c]}': rows A, B, and A's w for layers < {crossover}"
                                      f" + B's w for layers >= {crossover} (of {G.num_ws})")


def style_mixing_explorer(G: Generator, class_names, n: int = 6):
    """Class, two seeds and the crossover layer: ``render_style_mixing``."""
    return explorer(lambda c, seed_a, seed_b, crossover: render_style_mixing(G, class_names, c, seed_a, seed_b,
                                                                             crossover, n=n),
                    title="Style mixing between two seeds",
                    c=choice([(name, k) for k, name in enumerate(class_names)], description="class"),
                    seed_a=widgets.IntSlider(value=0, min=0, max=99, description="seed A"),
                    seed_b=widgets.IntSlider(value=50, min=0, max=99, description="seed B"),
                    crossover=widgets.IntSlider(value=G.num_ws // 2, min=0, max=G.num_ws,
                                                description="crossover"))


def render_interpolation(G: Generator, class_names, c_a: int, c_b: int, seed_a: int, seed_b: int, space: str = "W",
                         steps: int = 8, psi: float = 1.0):
    """Explorer figure: ``steps`` images from (z_a, c_a) to (z_b, c_b). In "W": w = lerp(f(z_a, c_a), f(z_b, c_b), t)
    (StyleGAN's perceptual path length is measured this way); in "Z": z and the class embedding are interpolated
    linearly before the mapping network."""
    if space not in ("W", "Z"):
        raise ValueError(f"space must be 'W' or 'Z', got {space!r}")
    z_a, z_b = _latent(seed_a, G.z_dim), _latent(seed_b, G.z_dim)
    m = G.mapping

    def path(t):                             # t: (steps, 1) on G's device -> the images along the path
        a, b = z_a.to(t.device), z_b.to(t.device)
        if space == "W":
            w = lerp(m(a, torch.tensor([c_a], device=t.device), psi), m(b, torch.tensor([c_b], device=t.device), psi),
                     t)
        else:
            e = m.embed.weight
            e_c = normalize_2nd_moment(m.project(normalize_2nd_moment(lerp(e[c_a:c_a + 1], e[c_b:c_b + 1], t))))
            w = m.layers(torch.cat([normalize_2nd_moment(lerp(a, b, t)), e_c], dim=1))
            w = truncate(w, lerp(m.w_avg_c[c_a:c_a + 1], m.w_avg_c[c_b:c_b + 1], t), psi)
        return G.synthesis(w, "const")
    images = generate(GeneratorView(G, path), torch.linspace(0, 1, steps).unsqueeze(1)).clamp(-1, 1)
    return _rows_figure(images, steps, 2.2, f"'{class_names[c_a]}' (seed {seed_a}) -> '{class_names[c_b]}' "
                                            f"(seed {seed_b}), linear in {space}")


def interpolation_explorer(G: Generator, class_names, steps: int = 8):
    """Two classes, two seeds, the space (W or Z): ``render_interpolation``."""
    classes = [(name, k) for k, name in enumerate(class_names)]
    return explorer(lambda c_a, c_b, seed_a, seed_b, space: render_interpolation(
                        G, class_names, c_a, c_b, seed_a, seed_b, space, steps),
                    title="Interpolation between two (class, seed) pairs",
                    c_a=choice(classes, description="class A"),
                    c_b=choice(classes, value=min(1, len(classes) - 1), description="class B"),
                    seed_a=widgets.IntSlider(value=0, min=0, max=99, description="seed A"),
                    seed_b=widgets.IntSlider(value=1, min=0, max=99, description="seed B"),
                    space=widgets.ToggleButtons(options=["W", "Z"], value="W", description="space"))


# --------------------------------------------------------------------------- the experiment arms
class StandardDiscriminator(nn.Module):
    """The baseline for "what goes wrong": an ordinary conditional discriminator trained from scratch on pixels
    (SN convs, leaky ReLU, stride-2 down to 4 x 4, projection head), inputs resized to ``image_size``, the same
    DiffAugment and hinge loss as the projected one. No pretrained features."""

    def __init__(self, *, n_classes: int, channels: int = 1, image_size: int = 32, width: int = 64,
                 augment: float = xl.AUGMENT):
        super().__init__()
        self.image_size, self.augment = image_size, augment
        self.stem = nn.Sequential(SNConv2d(channels, width // 2, 3, 1, 1), nn.LeakyReLU(0.2))
        self.head = xl.ScaleHead(width // 2, image_size, n_classes, width)

    @property
    def trainable(self) -> nn.Module:
        """All of it: this D trains from scratch."""
        return self

    def trainable_parameters(self):
        return list(self.trainable.parameters())

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        if self.training and self.augment > 0:
            x = diff_augment(x, self.augment)
        return self.head(self.stem(x), c)


def snapshot_path(run: Run, step: int):
    """Where G's weights after ``step`` steps of ``run`` are kept (to compare a shorter run at the same budget)."""
    return run.dir / f"G-step{step}.pt"


def train_arm(name: str, cfg: xl.Config, make_generator, make_discriminator, dataset, *, steps: int,
              batch_size: int, seed: int, device, classifier=None, config: dict | None = None, amp: bool = False,
              keep_at: int | None = None, show_every: int = 100):
    """Train (or resume) one experiment arm: seed, build G = ``make_generator(cfg)`` and D =
    ``make_discriminator(cfg)``, Adam (``stylegan_xl.optimizers``), a ``Run`` named ``name`` (``config``: what
    defines it, so a changed setting starts afresh) and seeded ``Batches``, then ``steps`` iterations of
    ``stylegan_xl.train_step`` (``classifier`` for the guidance), logged; live samples every ``show_every`` steps.
    With ``keep_at``, G's weights after that many steps are also saved (``snapshot_path``). Returns G, D, run."""
    seed_everything(seed)
    G = make_generator(cfg).to(device)
    D = make_discriminator(cfg).to(device)
    run = Run(name, {"G": G, "D": D}, xl.optimizers(G, D, cfg), config=config, device=device, amp=amp)
    batches = run.attach(batches=Batches(dataset, batch_size, seed=seed, device=device))
    c_show = torch.arange(60) % G.n_classes      # three rows of 20 classes
    for step in run.steps(steps):
        run.log(**xl.train_step(run, G, D, batches, cfg, classifier=classifier))
        if keep_at is not None and step + 1 == keep_at:
            atomic_save(G.state_dict(), snapshot_path(run, keep_at))
        if run.every(show_every):
            run.show(samples=xl.sample(G, c_show, seed=seed), keys=["loss_D", "loss_G", "loss_cg"])
    return G, D, run
