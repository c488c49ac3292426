"""What chapter 03 does with DCGAN (``gan_course.models.dcgan``): the experiment arms and the explorers of Sec. 6.

- ``CLAIMS``: what the chapter claims about its runs (Section 5's arms), checked by ``gan_course.claims``;
- ``he_init_`` (He et al. 2015's variance-preserving initialisation, the other init of Section 5's 2x2) and
  ``output_spread`` (how much G's output varies with z: the mechanism Section 5 measures at step 0);
- ``train_arm``: an experiment arm, a ``Run`` + ``Batches`` loop around a paper module's ``train_step`` (the same
  update the notebook's loop runs), with an optional ``eval_fn`` (e.g. FID) logged into the run's history; later
  chapters whose arms are a (G, D) pair trained by ``train_step`` reuse it;
- Sec. 6.1, walking in the latent space: ``latent``, ``render_interpolation`` / ``interpolation_explorer``;
- Sec. 6.3, vector arithmetic on z: ``LatentPool``, ``latent_arithmetic``, ``arithmetic_scores`` (how often the
  arithmetic works), ``render_arithmetic`` / ``arithmetic_explorer``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from types import ModuleType

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from ..claims import Claim
from ..models import dcgan
from ..sampling import generate, interpolate, normal
from ..training import Batches, Run
from ..viz import image_grid
from ..widgets import choice, explorer, seed_slider

# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("batch_norm_helps_at_paper_init", "Sec. 3: batch norm 'proved critical to get deep generators to begin "
          "learning' (FID after WRONG_STEPS steps, N(0, 0.02^2) weights in both arms)", "fid_no_bn_normal", ">",
          "fid_bn_normal"),
    Claim("no_bn_failure_is_the_init", "the failure without batch norm is the N(0, 0.02^2) init's: He init without "
          "batch norm trains (FID after WRONG_STEPS steps)", "fid_no_bn_normal", ">", "fid_no_bn_he"),
    Claim("he_init_trains_without_batch_norm", "Sec. 3's 'critical' role of batch norm, at a variance-preserving "
          "init: 'batch norm still helps' did not hold over 3 seeds (RESULTS.md, 2026-12-02), so the claim is what "
          "did: without batch norm He init trains at least as well (FID after WRONG_STEPS steps, He init in both arms)",
          "fid_no_bn_he", "<", "fid_bn_he"),
    Claim("lr_1e-3_too_high_for_D", "Sec. 4: 'the suggested learning rate of 0.001 was too high' (D at 1e-3, "
          "G at the paper's 2e-4: FID after WRONG_STEPS steps)", "fid_lr_D_high", ">", "fid_bn_normal"),
    Claim("probe_beats_random_D", "Sec. 5.1: D's features are good for classification (linear-probe accuracy "
          "with the fewest labels, trained D vs the same D with random weights)", "probe_trained_D_fewest",
          ">", "probe_random_D_fewest"),
]


# ============================================================================ Section 5's 2x2: normalisation x init
@torch.no_grad()
def he_init_(module: nn.Module, negative_slope: float = 0.0) -> nn.Module:
    """He et al.'s initialisation (2015, Eq. 10: Var[w] = 2 / n_l), in place: every (transposed) convolution and
    linear weight ~ N(0, 2 / ((1 + a^2) n)), with ``a`` the LeakyReLU slope (0: ReLU) and n the inputs that reach
    one output unit (fan-in); biases 0; batch norm gamma = 1, beta = 0. For a transposed convolution with stride s
    each output pixel receives in_channels * k^2 / s^2 taps on average, which is its n (PyTorch's ``kaiming_normal_``
    reads a transposed convolution's fan-in from the wrong axis). Activations then keep their scale layer after
    layer, with or without batch norm; DCGAN's N(0, 0.02^2) shrinks them at every layer when nothing rescales them.
    """
    gain = 2.0 / (1.0 + negative_slope ** 2)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if isinstance(m, nn.Linear):
                fan_in = m.in_features
            elif isinstance(m, nn.ConvTranspose2d) and m.stride == (1, 1) and m.padding == (0, 0):
                fan_in = m.in_channels                   # G's projection of the 1x1 "image" z: one tap a pixel
            elif isinstance(m, nn.ConvTranspose2d):
                fan_in = m.in_channels * math.prod(m.kernel_size) / math.prod(m.stride)
            else:
                fan_in = m.in_channels * math.prod(m.kernel_size) // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(gain / fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


@torch.no_grad()
def output_spread(G: nn.Module, n: int = 256, seed: int = 0) -> float:
    """How much G's images vary with z (G has a ``z_dim``): the per-pixel standard deviation over ``n`` draws,
    averaged over pixels.

    Near 0, every z gives the same image (the "single point" Sec. 3 says batch norm prevents); a trained G on
    glyphs varies by a few tenths. Drawn in train mode, as G is at its first training step (batch statistics).
    """
    was_training = G.training
    G.train()
    try:
        device = next(G.parameters()).device
        x = G(normal(n, G.z_dim, generator=torch.Generator().manual_seed(seed), device=device))
    finally:
        G.train(was_training)
    return float(x.std(0).mean())


# ============================================================================ experiment arms
def train_arm(name: str, G: nn.Module, D: nn.Module, dataset, steps: int, cfg, *, paper: ModuleType = dcgan,
              seed: int = 0, device: torch.device | str = "cpu", eval_fn: Callable[[nn.Module], dict] | None = None,
              eval_every: int = 0, progress: bool = True, live: bool | None = None, config: dict | None = None):
    """Train (G, D) for ``steps`` iterations of ``paper.train_step(run, G, D, batches, cfg)``; return the ``Run``.

    ``paper`` is the paper module (``dcgan`` by default) that defines ``optimizers(G, D, cfg)`` and
    ``train_step``; ``cfg`` its ``Config`` (``cfg.batch_size`` images a batch). The run's configuration is
    ``cfg`` plus ``seed`` and ``config`` (describe there what else defines the arm: the networks, the data), so a
    checkpoint under ``build/runs/<name>`` is resumed only by the same arm. Every ``eval_every`` steps (and at the
    last) the numbers of ``eval_fn(G)`` (e.g. ``{"fid": ...}``) are logged too, so an arm's quality over training
    lands in its history.
    """
    device = torch.device(device)
    G.to(device).train()
    D.to(device).train()
    opt_G, opt_D = paper.optimizers(G, D, cfg)
    torch.manual_seed(seed)
    run = Run(name, {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, config=dict(dataclasses.asdict(cfg), seed=seed,
              **(config or {})), device=device, progress=progress, live=live)
    batches = run.attach(batches=Batches(dataset, cfg.batch_size, seed=seed, device=device))
    for _ in run.steps(steps):
        run.log(**paper.train_step(run, G, D, batches, cfg))
        if eval_fn is not None and eval_every and run.every(eval_every):
            run.log(**eval_fn(G))
    return run


# ============================================================================ Sec. 6.1: walking in the latent space
def latent(seed: int, z_dim: int = 100) -> torch.Tensor:
    """The latent vector z ~ N(0, I) of a seed: one (z_dim,) vector, the same on every machine."""
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(int(seed)))


def render_interpolation(G: nn.Module, seed_a: int = 0, seed_b: int = 1, steps: int = 10, method: str = "slerp",
                         rows: int = 3):
    """Sec. 6.1 "Walking in the latent space": G along a path from z_a to z_b, one row per pair of seeds.

    Row r goes from seed ``seed_a + r`` to seed ``seed_b + r`` (so several walks are shown at once). Smooth
    transitions, rather than sudden jumps, are the paper's evidence that G has not memorised its training images.
    """
    paths = torch.cat([interpolate(latent(seed_a + r, G.z_dim), latent(seed_b + r, G.z_dim), steps, method)
                       for r in range(rows)])
    images = generate(G, paths)
    fig, ax = plt.subplots(figsize=(min(12, 0.9 * steps + 1), 0.95 * rows + 0.8))
    ax.imshow(image_grid(images, nrow=steps).permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(f"G({method}(z_a, z_b, t)): seeds {seed_a}..{seed_a + rows - 1} -> {seed_b}..{seed_b + rows - 1}")
    ax.set_xticks([(i + 0.5) * (images.shape[-1] + 2) for i in range(steps)],
                  [f"{t:.2f}" for t in torch.linspace(0, 1, steps).tolist()], fontsize=7)
    ax.set_yticks([])
    ax.set_xlabel("interpolation weight t")
    ax.set_ylabel("walk")
    fig.tight_layout()
    return fig


def interpolation_explorer(G: nn.Module, title: str = "Walking in the latent space (Sec. 6.1)"):
    """An explorer over ``render_interpolation``: the two seeds, the number of steps and lerp/slerp."""
    return explorer(lambda seed_a, seed_b, steps, method: render_interpolation(G, seed_a, seed_b, steps, method),
                    title=title, seed_a=seed_slider(0, description="seed a"),
                    seed_b=seed_slider(100, description="seed b"),
                    steps=widgets.IntSlider(value=10, min=3, max=16, description="steps"),
                    method=choice(["slerp", "lerp"], description="path"))


# ============================================================================ Sec. 6.3: vector arithmetic on z
class LatentPool:
    """Many latent vectors z with what a judge says about G(z): the raw material of vector arithmetic.

    The paper picked, by eye, three samples showing each concept ("smiling woman", "neutral woman", ...) and
    averaged their z. Here a ``judge(images) -> {name: labels}`` (e.g. linear probes on D's features, or the
    course classifier) labels ``n`` samples; ``select(**conditions)`` finds the z whose samples match.
    """

    def __init__(self, G: nn.Module, judge: Callable[[torch.Tensor], dict[str, torch.Tensor]], n: int = 2000,
                 seed: int = 0):
        self.z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
        self.images = generate(G, self.z)
        self.labels = {k: torch.as_tensor(v).cpu() for k, v in judge(self.images).items()}

    def select(self, **conditions) -> torch.Tensor:
        """Indices of the pool whose judged labels equal every ``name=value`` given."""
        mask = torch.ones(len(self.z), dtype=torch.bool)
        for name, value in conditions.items():
            mask &= self.labels[name] == value
        return mask.nonzero().flatten()

    def concept(self, k: int = 3, seed: int = 0, **conditions) -> torch.Tensor:
        """``k`` latent vectors (k, z_dim) picked at random (seeded) among those matching ``conditions``."""
        index = self.select(**conditions)
        if len(index) < k:
            raise ValueError(f"Only {len(index)} samples in the pool match {conditions}; need {k}. "
                             "Use a larger pool, fewer samples per concept, or another concept.")
        pick = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))[:k]
        return self.z[index[pick]]


def latent_arithmetic(z_a: torch.Tensor, z_b: torch.Tensor, z_c: torch.Tensor, n: int = 8, noise: float = 0.25,
                      seed: int = 0) -> torch.Tensor:
    """Sec. 6.3 / Fig. 7: z = mean(z_a) - mean(z_b) + mean(z_c), plus ``n - 1`` neighbours z + u, u ~ U[-noise, noise].

    The paper averages three z per concept ("experiments working on only single samples per concept were
    unstable") and shows the result with "uniform noise sampled with scale +-0.25 added" (Fig. 7). Returns (n, z_dim),
    the un-noised vector first.
    """
    z = z_a.mean(0) - z_b.mean(0) + z_c.mean(0)
    u = (torch.rand(n - 1, z.numel(), generator=torch.Generator().manual_seed(seed)) * 2 - 1) * noise
    return torch.cat([z[None], z[None] + u])


@torch.no_grad()
def arithmetic_scores(G: nn.Module, pool: LatentPool, judge: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                      pairs: list[tuple[int, int]], attribute: str = "bold", k: int = 3, seed: int = 0) -> dict:
    """Sec. 6.3 measured: how often "x with style - x without + y without" gives "y with style".

    For every (x, y) in ``pairs`` (character labels) it averages ``k`` pool vectors per concept, forms
    z = mean(x, s=1) - mean(x, s=0) + mean(y, s=0) (``latent_arithmetic`` without noise) and asks ``judge``
    about G(z). Returns the fractions of results judged to be character y (``label``), to have the style
    (``attribute``) and both (``success``); and the baseline: how often G(mean(y, s=0)), the same z without the
    added "style" vector, is judged to have the style (``baseline_attribute``). Pairs with too few matching pool
    samples are skipped; ``pairs_used`` counts the others (all rates are NaN when it is 0). Also returned: the
    results G(z) (``images``), the baselines (``baseline_images``) and each used pair's y (``targets``).
    """
    results, baselines, ys = [], [], []
    for i, (x, y) in enumerate(pairs):
        try:
            z_a = pool.concept(k, seed + 3 * i, label=x, **{attribute: 1})
            z_b = pool.concept(k, seed + 3 * i + 1, label=x, **{attribute: 0})
            z_c = pool.concept(k, seed + 3 * i + 2, label=y, **{attribute: 0})
        except ValueError:
            continue
        results.append(latent_arithmetic(z_a, z_b, z_c, n=1)[0])
        baselines.append(z_c.mean(0))
        ys.append(y)
    if not ys:                                # e.g. an untrained G whose pool lacks the concepts
        nan = float("nan")
        empty = torch.zeros(0, G.channels, G.image_size, G.image_size)
        return {"label": nan, attribute: nan, "success": nan, f"baseline_{attribute}": nan, "pairs_used": 0,
                "images": empty, "baseline_images": empty, "targets": []}
    images, base_images = generate(G, torch.stack(results)), generate(G, torch.stack(baselines))
    seen, base = judge(images), judge(base_images)
    right_char = torch.as_tensor(seen["label"]).cpu() == torch.tensor(ys)
    has_style = torch.as_tensor(seen[attribute]).cpu() == 1
    return {"label": right_char.float().mean().item(), attribute: has_style.float().mean().item(),
            "success": (right_char & has_style).float().mean().item(),
            f"baseline_{attribute}": (torch.as_tensor(base[attribute]).cpu() == 1).float().mean().item(),
            "pairs_used": len(ys), "images": images, "baseline_images": base_images, "targets": ys}


def render_arithmetic(G: nn.Module, pool: LatentPool, a: dict, b: dict, c: dict, k: int = 3, seed: int = 0,
                      judge: Callable | None = None, names: dict | None = None):
    """Fig. 7 for glyphs, one row per concept: ``k`` samples of a, b and c (conditions for ``pool.concept``, e.g.
    ``dict(label=3, bold=1)``) followed by G(mean z); the last row is z = mean a - mean b + mean c with ``k``
    noisy neighbours z + U[-0.25, 0.25] and, last, G(z) itself. If ``judge`` is given, the title says what it sees
    in the last row. ``names`` maps a label name to readable values (e.g. ``{"label": dataset.classes}``).
    A concept with fewer than ``k`` samples in the pool gives a figure that says so (nothing is raised).
    """
    names = names or {}

    def describe(cond):
        return ", ".join(f"{key} {names[key][v] if key in names else v}" for key, v in cond.items())

    try:
        zs = [pool.concept(k, seed + i, **cond) for i, cond in enumerate((a, b, c))]
    except ValueError as error:               # too few samples of a concept: say so in the figure, do not fail
        fig, ax = plt.subplots(figsize=(9, 1.4))
        ax.text(0.5, 0.5, str(error), ha="center", va="center", wrap=True, fontsize=9)
        ax.set_axis_off()
        ax.set_title("Vector arithmetic on z: not enough samples of a concept in the pool")
        return fig
    result = latent_arithmetic(*zs, n=k + 1, seed=seed)           # the result first, then its noisy neighbours
    rows = [torch.cat([z, z.mean(0, keepdim=True)]) for z in zs] + [torch.cat([result[1:], result[:1]])]
    images = generate(G, torch.cat(rows))
    fig, ax = plt.subplots(figsize=(1.1 * (k + 1) + 2.6, 5.0))
    ax.imshow(image_grid(images, nrow=k + 1).permute(1, 2, 0).numpy(), interpolation="nearest")
    cell = images.shape[-1] + 2                                    # image side + image_grid's padding
    ax.set_yticks([(i + 0.5) * cell + 1 for i in range(4)],
                  [f"a: {describe(a)}", f"b: {describe(b)}", f"c: {describe(c)}", "a - b + c"], fontsize=9)
    ax.set_xticks([(i + 0.5) * cell + 1 for i in range(k + 1)], [str(i + 1) for i in range(k)] + ["mean"],
                  fontsize=8)
    ax.set_xlabel(f"{k} samples (last row: + noise), then G(mean z) (last row: G(a - b + c))", fontsize=8)
    title = "Vector arithmetic on z (Sec. 6.3)"
    if judge is not None:
        seen = judge(images[3 * (k + 1):])
        title += "\njudge sees in the last row: " + "; ".join(
            f"{key} " + " ".join(str(names[key][v] if key in names else v) for v in torch.as_tensor(vals).tolist())
            for key, vals in seen.items())
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def arithmetic_explorer(G: nn.Module, pool: LatentPool, classes: list[str], judge: Callable | None = None,
                        attribute: str = "bold", title: str = "Vector arithmetic on z (Sec. 6.3)"):
    """An explorer over ``render_arithmetic`` for "character x with style s - character x + character y":
    pick the characters, the style value and the seed that chooses which samples are averaged."""
    options = [(name, i) for i, name in enumerate(classes)]
    names = {"label": classes}

    def render(char_x, char_y, style, k, seed):
        return render_arithmetic(G, pool, a=dict(label=char_x, **{attribute: style}),
                                 b=dict(label=char_x, **{attribute: 1 - style}),
                                 c=dict(label=char_y, **{attribute: 1 - style}), k=k, seed=seed, judge=judge,
                                 names=names)

    return explorer(render, title=title,
                    char_x=choice(options, value=0, description="x"),
                    char_y=choice(options, value=1, description="y"),
                    style=choice([(f"{attribute}", 1), (f"not {attribute}", 0)], value=1, description="style"),
                    k=widgets.IntSlider(value=3, min=1, max=8, description="z per concept"),
                    seed=seed_slider(0))
