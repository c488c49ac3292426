"""Deep Convolutional GANs (Radford, Metz & Chintala, 2015, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", arXiv 1511.06434).

The objective is still Goodfellow et al.'s minimax game (chapter 01, Eq. 1 of arXiv 1406.2661), played with the
non-saturating generator loss:

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))],        L_G = -E_z[log D(G(z))].

What the paper adds is an *architecture* that makes convolutional GANs train reliably, found by "extensive model
exploration" (Sec. 3, "Architecture guidelines for stable Deep Convolutional GANs"):

1. replace pooling by strided convolutions in D and fractionally-strided (transposed) convolutions in G;
2. batch normalisation in both G and D, except on G's output layer and on D's input layer;
3. no fully connected hidden layers (G's first layer is a projection of z, D's last a single logit);
4. ReLU in G for every layer but the output, which is tanh;
5. LeakyReLU (slope 0.2) in D for every layer;

and the training details of Sec. 4: images scaled to [-1, 1], weights drawn from N(0, 0.02), Adam with
learning rate 2e-4 and beta_1 = 0.5, mini-batches of 128 (the course uses 64 on a CPU).

This module, top to bottom:

- ``init_weights_``: the N(0, 0.02) initialisation (Sec. 4);
- ``Generator`` and ``Discriminator`` (Fig. 1, sized for 32x32 or 64x64), configurable in width and with batch
  norm on or off, ``check_guidelines`` which verifies guidelines 1-5 on a pair of networks;
- ``optimizers`` (Adam, Sec. 4) and ``train``, the chapter's update step packaged for the experiments (the
  notebook writes the same step out), with an optional ``eval_fn`` (e.g. FID) logged into the run's history;
- the explorers of Sec. 6: latent interpolation (``render_interpolation`` / ``interpolation_explorer``, Sec. 6.1)
  and vector arithmetic on z (``LatentPool``, ``latent_arithmetic``, ``render_arithmetic`` /
  ``arithmetic_explorer``, Sec. 6.3), and ``arithmetic_scores``, which counts how often the arithmetic works.

The representation-learning experiment of Sec. 5.1 (a linear classifier on D's max-pooled features) uses
``Discriminator.features`` with ``gan_course.analysis.pooled_features`` and ``fit_linear_probe``.

Choices that differ from the paper, and why: 4x4 kernels (as in the authors' Torch code, soumith/dcgan.torch,
where each stride-2 layer exactly doubles or halves the size) rather than Fig. 1's 5x5; G's first layer is a 4x4
transposed convolution of the 1x1 "image" z, which is exactly the paper's "project and reshape" (a matrix
multiplication whose result is reshaped to 4x4 maps); z ~ N(0, I) (dcgan.torch's default, and what the course's
interpolation assumes) rather than uniform on [-1, 1]; batch-norm scales gamma ~ N(1, 0.02) as in dcgan.torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from torch import nn

from ..losses import discriminator_loss, generator_loss_nonsaturating
from ..sampling import generate, interpolate
from ..sampling import sampler as sampling_sampler
from ..viz import image_grid

LEAK = 0.2          # Sec. 4: "In the LeakyReLU, the slope of the leak was set to 0.2 in all models."
INIT_STD = 0.02     # Sec. 4: "All weights were initialized from a zero-centered Normal distribution with std 0.02."
LR = 2e-4           # Sec. 4: "we used the Adam optimizer ... learning rate of 0.0002"
BETA1 = 0.5         # Sec. 4: "reducing [beta_1] to 0.5 helped stabilize training"


# ============================================================================ initialisation (Sec. 4)
@torch.no_grad()
def init_weights_(module: nn.Module, std: float = INIT_STD) -> nn.Module:
    """DCGAN's initialisation (Sec. 4), in place: every (transposed) convolution and linear weight ~ N(0, std^2),
    biases 0; batch-norm scales gamma ~ N(1, std^2) and shifts beta = 0 (as in dcgan.torch).

    Use as ``G.apply(init_weights_)`` or ``init_weights_(G)`` (the latter walks all sub-modules). Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def _levels(image_size: int) -> int:
    """Number of stride-2 layers between a 4x4 map and an image of side ``image_size`` (a power of two >= 8)."""
    n = int(round(math.log2(image_size))) - 2
    if image_size < 8 or 2 ** (n + 2) != image_size:
        raise ValueError(f"image_size must be a power of two >= 8 (e.g. 32 or 64), got {image_size}")
    return n


# ============================================================================ the generator (Fig. 1)
class Generator(nn.Module):
    """G(z): z in R^{z_dim} -> image (channels, image_size, image_size) in [-1, 1] (Fig. 1, Sec. 3).

    For 32x32 with ``width`` = w (the paper's Fig. 1 is the 64x64 version with w = 128 and 5x5 kernels):

        z (z_dim x 1 x 1) -> project: ConvT 4x4          -> 4w x 4 x 4,   BN, ReLU
                          -> blocks[0]: ConvT 4x4, stride 2 -> 2w x 8 x 8,   BN, ReLU
                          -> blocks[1]: ConvT 4x4, stride 2 ->  w x 16 x 16, BN, ReLU
                          -> to_image:  ConvT 4x4, stride 2 ->  C x 32 x 32, tanh   (no BN on the output)

    Each stride-2 transposed convolution ("fractionally-strided", guideline 1) doubles the side:
    out = (in - 1) * stride - 2 * padding + kernel = 2 * in. ``batch_norm=False`` removes every BN (the
    experiment of Sec. 3: without it, deep generators collapse or fail to start).
    """

    def __init__(self, z_dim: int = 100, channels: int = 1, image_size: int = 32, width: int = 64,
                 batch_norm: bool = True, init_std: float = INIT_STD):
        super().__init__()
        self.z_dim, self.channels, self.image_size, self.width = z_dim, channels, image_size, width
        self.batch_norm = batch_norm
        n = _levels(image_size)                       # 3 for 32x32: 4 -> 8 -> 16 -> 32
        c = width * 2 ** (n - 1)                      # channels of the 4x4 map: 4w for 32x32, 8w for 64x64

        def block(conv: nn.Module, out: int) -> nn.Sequential:
            bn = [nn.BatchNorm2d(out)] if batch_norm else []
            return nn.Sequential(conv, *bn, nn.ReLU())  # guideline 4: ReLU in every hidden layer

        # "project and reshape": a 4x4 transposed convolution of z seen as a 1x1 image = a linear map to c x 4 x 4
        self.project = block(nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=not batch_norm), c)
        blocks = []
        for _ in range(n - 1):                        # guideline 1: fractionally-strided convolutions, no upsampling
            blocks.append(block(nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=not batch_norm), c // 2))
            c //= 2
        self.blocks = nn.Sequential(*blocks)
        # guideline 2 and 4: no BN on the output layer, tanh output
        self.to_image = nn.Sequential(nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh())
        init_weights_(self, init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z.view(len(z), self.z_dim, 1, 1))
        return self.to_image(self.blocks(h))


# ============================================================================ the discriminator (Sec. 3)
class Discriminator(nn.Module):
    """D(x) as a *logit* (``D(x) = sigmoid(self(x))``), shape (B,): G's mirror image (Sec. 3).

    For 32x32 with ``width`` = w:

        x (C x 32 x 32) -> blocks[0]: Conv 4x4, stride 2 ->  w x 16 x 16, LeakyReLU(0.2)   (no BN on the input layer)
                        -> blocks[1]: Conv 4x4, stride 2 -> 2w x 8 x 8,   BN, LeakyReLU(0.2)
                        -> blocks[2]: Conv 4x4, stride 2 -> 4w x 4 x 4,   BN, LeakyReLU(0.2)
                        -> to_logit:  Conv 4x4 (valid)   ->  1 x 1 x 1:   the logit

    Strided convolutions replace pooling (guideline 1); the last layer is the paper's "flattened and fed into a
    single sigmoid output", written as a 4x4 convolution (guideline 3: no hidden fully connected layer).
    ``features(x)`` returns the activation of every block, the representation probed in Sec. 5.1.
    """

    def __init__(self, channels: int = 1, image_size: int = 32, width: int = 64, batch_norm: bool = True,
                 leak: float = LEAK, init_std: float = INIT_STD):
        super().__init__()
        self.channels, self.image_size, self.width, self.batch_norm = channels, image_size, width, batch_norm
        n = _levels(image_size)
        blocks, c_in, c = [], channels, width
        for i in range(n):
            use_bn = batch_norm and i > 0             # guideline 2: no BN on D's input layer
            bn = [nn.BatchNorm2d(c)] if use_bn else []
            blocks.append(nn.Sequential(nn.Conv2d(c_in, c, 4, 2, 1, bias=not use_bn), *bn,
                                        nn.LeakyReLU(leak)))  # guideline 5
            c_in, c = c, c * 2
        self.blocks = nn.Sequential(*blocks)
        self.to_logit = nn.Conv2d(c_in, 1, 4, 1, 0)
        init_weights_(self, init_std)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each block, from the first (w x 16 x 16 for 32x32) to the last (4w x 4 x 4)."""
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_logit(self.blocks(x)).view(len(x))

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) in (0, 1): the probability that x came from the data."""
        return torch.sigmoid(self(x))


def check_guidelines(G: nn.Module, D: nn.Module) -> dict[str, bool]:
    """Which of the Sec. 3 guidelines a (G, D) pair follows, read off the modules themselves.

    Keys: ``no_pooling`` (no pooling or upsampling layers; all resolution changes are stride-2 (transposed)
    convolutions), ``batch_norm`` (BN in both, not after G's last or D's first convolution), ``no_hidden_fc``
    (no ``nn.Linear``), ``G_relu_tanh`` (ReLU hidden units, tanh output), ``D_leaky_relu`` (LeakyReLU(0.2) only).
    """
    def layers(m):
        return [x for x in m.modules() if not list(x.children())]

    pool_types = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample)
    g, d = layers(G), layers(D)
    convs_g = [m for m in g if isinstance(m, nn.ConvTranspose2d)]
    convs_d = [m for m in d if isinstance(m, nn.Conv2d)]
    strided = all(m.stride == (2, 2) for m in convs_g[1:] + convs_d[:-1])

    def followed_by_bn(seq, conv):
        i = seq.index(conv)
        return i + 1 < len(seq) and isinstance(seq[i + 1], nn.BatchNorm2d)

    bn_ok = (len(convs_g) > 1 and len(convs_d) > 1
             and all(followed_by_bn(g, c) for c in convs_g[:-1]) and not followed_by_bn(g, convs_g[-1])
             and all(followed_by_bn(d, c) for c in convs_d[1:-1]) and not followed_by_bn(d, convs_d[0]))
    g_acts = [m for m in g if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU))]
    d_acts = [m for m in d if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU))]
    return {
        "no_pooling": not any(isinstance(m, pool_types) for m in g + d) and strided,
        "batch_norm": bn_ok,
        "no_hidden_fc": not any(isinstance(m, nn.Linear) for m in g + d),
        "G_relu_tanh": (len(g_acts) > 0 and all(type(a) is nn.ReLU for a in g_acts[:-1])
                        and isinstance(g_acts[-1], nn.Tanh)),
        "D_leaky_relu": (len(d_acts) > 0 and all(isinstance(a, nn.LeakyReLU) and a.negative_slope == LEAK
                                                 for a in d_acts)),
    }


# ============================================================================ training (Sec. 4)
def optimizers(G: nn.Module, D: nn.Module, lr_G: float = LR, lr_D: float = LR, beta1: float = BETA1):
    """Adam for both players with the paper's settings (Sec. 4): lr 2e-4, betas (0.5, 0.999)."""
    return (torch.optim.Adam(G.parameters(), lr=lr_G, betas=(beta1, 0.999)),
            torch.optim.Adam(D.parameters(), lr=lr_D, betas=(beta1, 0.999)))


def train(name: str, G: Generator, D: Discriminator, dataset, steps: int, *, batch_size: int = 64,
          lr_G: float = LR, lr_D: float = LR, beta1: float = BETA1, d_steps: int = 1, seed: int = 0,
          device: torch.device | str = "cpu", z_fixed: torch.Tensor | None = None, show_every: int = 0,
          eval_fn: Callable[[nn.Module], dict] | None = None, eval_every: int = 0, progress: bool = True,
          live: bool | None = None, config: dict | None = None):
    """Train (G, D) for ``steps`` generator updates with the chapter's update step; return the ``Run``.

    Each step: ``d_steps`` discriminator updates on L_D (fresh real and generated batches each time; Goodfellow
    et al.'s k), then one generator update on the non-saturating L_G, computed on the last generated batch
    through the freshly updated D (as in dcgan.torch). Logs ``loss_D``, ``loss_G``, ``D_x``
    = mean D(x) and ``D_G_z`` = mean D(G(z)); every ``eval_every`` steps (and at the last) also the numbers of
    ``eval_fn(G)`` (e.g. ``{"fid": ...}``), so a run's quality over training lands in its history. Runs through
    ``gan_course.training.Run`` (checkpoints under ``build/runs/<name>``, resumed if the configuration matches).
    The notebook's main loop is this step written out.
    """
    from ..training import Batches, Run, set_requires_grad

    device = torch.device(device)
    G.to(device).train()
    D.to(device).train()
    opt_G, opt_D = optimizers(G, D, lr_G, lr_D, beta1)
    cfg = dict(batch_size=batch_size, lr_G=lr_G, lr_D=lr_D, beta1=beta1, d_steps=d_steps, seed=seed,
               data=dict(name=getattr(dataset, "name", type(dataset).__name__), size=len(dataset)),
               G=dict(z_dim=G.z_dim, channels=G.channels, image_size=G.image_size, width=G.width,
                      batch_norm=G.batch_norm),
               D=dict(width=D.width, batch_norm=D.batch_norm), **(config or {}))
    torch.manual_seed(seed)
    run = Run(name, {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, config=cfg, device=device, progress=progress,
              live=live)
    batches = run.attach(batches=Batches(dataset, batch_size, seed=seed, device=device))
    for _ in run.steps(steps):
        for _ in range(d_steps):                                  # k discriminator updates (Goodfellow's k)
            x, _ = batches.next()
            z = torch.randn(batch_size, G.z_dim, device=device)
            fake = G(z)
            real_logits, fake_logits = D(x), D(fake.detach())     # detach: this loss does not train G
            loss_D = discriminator_loss(real_logits, fake_logits)
            run.update("D", loss_D)
        set_requires_grad(D, False)                               # G's step needs no gradient for D's weights
        loss_G = generator_loss_nonsaturating(D(fake))            # the last batch of fakes, through the updated D
        run.update("G", loss_G)
        set_requires_grad(D, True)
        run.log(loss_D=loss_D, loss_G=loss_G, D_x=torch.sigmoid(real_logits).mean(),
                D_G_z=torch.sigmoid(fake_logits).mean())
        if eval_fn is not None and eval_every and run.every(eval_every):
            run.log(**eval_fn(G))
        if show_every and z_fixed is not None and run.every(show_every):
            run.show(samples=sample(G, z_fixed))
    return run


# Drawing images for figures and metrics is plumbing shared by every chapter (gan_course.sampling):
# sample(G, z) = G(z) in eval mode, batched, on the CPU; sampler(G, seed) = n -> G(z) for the metrics.
sample, sampler = generate, sampling_sampler


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
    images = sample(G, paths)
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
    import ipywidgets as widgets

    from ..widgets import choice, explorer, seed_slider

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
        self.images = sample(G, self.z)
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
    images, base_images = sample(G, torch.stack(results)), sample(G, torch.stack(baselines))
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
    images = sample(G, torch.cat(rows))
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
    import ipywidgets as widgets

    from ..widgets import choice, explorer, seed_slider

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
