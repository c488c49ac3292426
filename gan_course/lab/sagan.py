"""What chapter 07 does with SAGAN (``gan_course.models.sagan``): the monitor, the experiment arms, and the attention
measurements and explorer.

- ``Monitor``: FID and class coverage with the course classifier, sample snapshots and the singular values of every
  weight (``gan_course.lab.spectra.SpectraRecorder``) over training, checkpointed with the run;
- ``train_arm``: an arm of the stabilisation experiment (Sec. 5.1): a ``Run`` + ``Batches`` loop around
  ``sagan.train_step``, the update the notebook's own loop runs;
- attention: ``attention_maps`` (beta from every attention block, by forward hooks), ``mean_attention_distance``,
  ``attention_beyond``, ``receptive_field``, ``conv_attention`` / ``uniform_attention`` (baselines),
  ``shape_mask`` / ``attention_on_region`` (does a query inside the shape look at the shape?);
- ``render_attention`` / ``attention_explorer``: where does a query look?

Spectral normalisation, measured (``spectral_report``, ``conv_operator_norm``, the spectra explorer), lives in
``gan_course.lab.spectra``, shared with chapter 08.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import nn

from ..claims import Claim
from ..layers import SelfAttention2d
from ..metrics import Protocol, evaluate
from ..models import sagan
from ..training import Batches, Run
from ..viz import to_unit
from ..widgets import choice, explorer
from .spectra import SpectraRecorder

__all__ = ["Monitor", "train_arm", "attention_maps", "residual_share", "attention_entropy", "mean_attention_distance",
           "attention_beyond", "receptive_field",
           "conv_attention", "uniform_attention", "shape_mask", "attention_on_region", "render_attention",
           "attention_explorer"]



# ============================================================================ what the chapter claims
CLAIMS = [
    Claim("ttur_improves_faster", "Sec. 5.1 / Fig. 3: SN on G/D with TTUR (lr_D = 4 lr_G) improves faster than "
          "SN on G/D at one learning rate (FID after EXPERIMENT_STEPS steps, same seed and data)",
          "experiment_fid_sn_GD", ">", "experiment_fid_sn_GD_ttur"),
    Claim("sn_on_G_helps", "Sec. 5.1 / Fig. 3: spectral norm on G as well as D trains better than SN on D only "
          "(FID after EXPERIMENT_STEPS steps, one learning rate for both arms)", "experiment_fid_sn_D", ">",
          "experiment_fid_sn_GD"),
    Claim("attention_helps", "Sec. 5.2 / Table 1: the self-attention block improves FID over the same networks "
          "without it (SN on G/D + TTUR, FID after EXPERIMENT_STEPS steps)", "experiment_fid_no_attention", ">",
          "experiment_fid_sn_GD_ttur"),
    Claim("sn_on_D_helps", "Sec. 4 (after SN-GAN): spectral norm on D stabilises training: the same run with an "
          "unnormalised D (SN on G, TTUR) has a worse FID after EXPERIMENT_STEPS steps", "experiment_fid_no_sn_D", ">",
          "experiment_fid_sn_GD_ttur"),
    Claim("unnormalised_D_gains_scale", "Sec. 4 / Miyato et al. 2018: without SN nothing bounds D's layers: the largest "
          "sigma_0 of D's weights grows during training", "d_sigma0_max_no_sn_D_end", ">",
          "d_sigma0_max_no_sn_D_start"),
]

# ============================================================================ measuring a run
def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class Monitor:
    """What the chapter measures during training, at the steps it is asked to (all of it checkpointed with the run).

    ``record(step)`` stores, after ``step`` generator updates:

    - ``fid`` and ``classes_covered``: ``gan_course.metrics.evaluate`` with the dataset's course classifier on
      ``n`` samples of ``sampler(G, seed)`` (a fixed set of z, balanced classes) against ``n`` training images
      (loaded with ``data_options``, e.g. ``{"layout": "centred"}``);
    - ``snapshots``: G(z_fixed, y_fixed) as uint8 images, to compare runs at equal budgets;
    - the singular values of every weight of G and D (``gan_course.lab.spectra.SpectraRecorder``; SAGAN's
      per-class BN tables left out), in ``spectra`` (None with ``spectra=False``).

    The spectra are cheap next to an FID, so ``track(step)``, called after every update, records them more
    often: at every multiple of ``spectra_every`` (0: only with the FID). Attach the monitor to the ``Run``
    (``run.attach(monitor=monitor)``) so a resumed run keeps its curves.
    """

    def __init__(self, G: sagan.Generator, D: sagan.Discriminator, dataset: str, z_fixed: torch.Tensor,
                 y_fixed: torch.Tensor, n: int = 500, seed: int = 1, spectra: bool = True, device="cpu",
                 data_options: dict | None = None, spectra_every: int = 0):
        if spectra_every < 0:
            raise ValueError(f"spectra_every must be 0 (only with the FID) or a positive number of steps, "
                             f"got {spectra_every}")
        self.G, self.D, self.dataset, self.n, self.seed, self.device = G, D, dataset, n, seed, device
        self.data_options = dict(data_options or {})
        self.z_fixed, self.y_fixed = z_fixed.cpu(), y_fixed.cpu()
        self.steps: list[int] = []
        self.fid: list[float] = []
        self.classes_covered: list[int] = []
        self.snapshots: list[torch.Tensor] = []
        self.spectra = SpectraRecorder({"G": G, "D": D}, every=spectra_every, conditional_bn=False) if spectra \
            else None

    def track(self, step: int) -> None:
        """After update ``step``: record the spectra if ``step`` is a multiple of ``spectra_every``."""
        if self.spectra is not None:
            self.spectra.record(step)

    def record(self, step: int) -> dict:
        """Measure now (after ``step`` updates); returns ``{"fid": ..., "classes_covered": ...}`` for ``run.log``."""
        m = evaluate(sagan.sampler(self.G, self.seed), self.dataset, n=self.n, data_options=self.data_options,
                     protocol=Protocol(kid_subsets=10, kid_subset_size=min(1000, self.n)), device=self.device)
        self.steps.append(int(step))
        self.fid.append(float(m["fid"]))
        self.classes_covered.append(int(m["classes_covered"]))
        self.snapshots.append(_to_uint8(sagan.sample(self.G, self.z_fixed, self.y_fixed)))
        if self.spectra is not None:
            self.spectra.record(step, force=True)
        return {"fid": self.fid[-1], "classes_covered": self.classes_covered[-1]}

    def at(self, step: int) -> dict:
        """The measurements taken at ``step``: fid, classes_covered and the snapshot as float images in [-1, 1]."""
        i = self.steps.index(step)
        return {"fid": self.fid[i], "classes_covered": self.classes_covered[i],
                "samples": self.snapshots[i].float() / 127.5 - 1}

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "fid": list(self.fid), "classes_covered": list(self.classes_covered),
                "snapshots": list(self.snapshots),
                "spectra": self.spectra.state_dict() if self.spectra is not None else None}

    def load_state_dict(self, state: dict):
        self.steps, self.fid = list(state["steps"]), list(state["fid"])
        self.classes_covered, self.snapshots = list(state["classes_covered"]), list(state["snapshots"])
        if self.spectra is not None:
            self.spectra.load_state_dict(state["spectra"])

def train_arm(name: str, G: sagan.Generator, D: sagan.Discriminator, dataset, steps: int, cfg: sagan.Config, *,
              batch_size: int, seed: int = 0, device="cpu", amp: bool = False, monitor: Monitor | None = None,
              eval_every: int = 100, progress: bool = True, live: bool | None = None, config: dict | None = None):
    """Train (G, D) for ``steps`` iterations of ``sagan.train_step`` (the notebook's update) and return the ``Run``:
    an arm of the stabilisation experiment (Sec. 5.1).

    The run's configuration is ``cfg`` with ``batch_size``, ``seed``, whether G and D are spectrally normalised,
    ``eval_every`` and ``config`` (describe there what else defines the arm: networks, data), so a checkpoint
    under ``build/runs/<name>`` is resumed only by the same arm. With a ``monitor``, records it before training
    and every ``eval_every`` steps (logging ``fid`` / ``classes_covered``), its spectra every ``spectra_every``
    (``Monitor.track``); it is checkpointed with the run.
    """
    device = torch.device(device)
    G.to(device).train()
    D.to(device).train()
    opt_G, opt_D = sagan.optimizers(G, D, cfg)
    run_config = dict(dataclasses.asdict(cfg), batch_size=batch_size, seed=seed, sn_G=G.sn, sn_D=D.sn,
                      eval_every=eval_every if monitor else 0, amp=amp, **(config or {}))
    run = Run(name, {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, config=run_config, device=device, amp=amp,
              progress=progress, live=live)
    batches = run.attach(batches=Batches(dataset, batch_size, seed=seed, device=device))
    if monitor is not None:
        run.attach(monitor=monitor)
        if not monitor.steps:
            monitor.record(0)
    for _ in run.steps(steps):
        run.log(**sagan.train_step(run, G, D, batches, cfg))
        if monitor is not None:
            monitor.track(run.step + 1)
            if run.every(eval_every):
                run.log(**monitor.record(run.step + 1))
    return run


# ============================================================================ looking at the attention
def attention_maps(model: nn.Module, *inputs, **kwargs):
    """Run ``model(*inputs, **kwargs)`` and collect beta from every ``SelfAttention2d`` inside it.

    Returns ``(output, maps)`` with ``maps[name] = beta`` of shape (B, N_queries, N_keys), rows summing to 1
    (beta[b, j, i] = beta_{j,i}, the weight query position j gives to position i, Sec. 3). A forward hook on
    each block recomputes the block on its own input with ``return_attention=True`` (with the block in eval
    mode, so spectral norm's power iteration is not stepped twice); the model's output is unchanged.
    """
    maps = {}

    def hook(name):
        def fn(module, args, output):
            was_training = module.training
            module.eval()
            try:
                maps[name] = module.forward(args[0], return_attention=True)[1].detach()
            finally:
                module.train(was_training)
        return fn

    return _with_attention_hooks(model, hook, *inputs, **kwargs), maps


def _with_attention_hooks(model: nn.Module, make_hook, *inputs, **kwargs):
    """``model(*inputs, **kwargs)`` with the forward hook ``make_hook(name)`` on every ``SelfAttention2d`` inside it
    (removed afterwards, whatever happens); a clear error when the model has no such block."""
    handles = [module.register_forward_hook(make_hook(name)) for name, module in model.named_modules()
               if isinstance(module, SelfAttention2d)]
    if not handles:
        raise ValueError(f"{type(model).__name__} has no SelfAttention2d block")
    try:
        return model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def residual_share(model: nn.Module, *inputs, **kwargs) -> dict[str, dict[str, float]]:
    """How much each ``SelfAttention2d`` inside ``model`` changes its input, y = gamma * o + x (Sec. 3):
    ``{name: {"gamma": gamma, "share": ||gamma * o|| / ||x||}}`` over the batch of ``model(*inputs, **kwargs)``.
    A block can attend far and still add little: the share says how much of the output the attention is."""
    found = {}

    def hook(name):
        def fn(module, args, output):
            x = args[0]
            found[name] = {"gamma": float(module.gamma), "share": float((output - x).norm() / x.norm())}
        return fn

    _with_attention_hooks(model, hook, *inputs, **kwargs)
    return found


def attention_entropy(beta: torch.Tensor) -> float:
    """Mean row entropy of beta over its maximum, -sum_i beta_{j,i} log beta_{j,i} / log N_keys, averaged over
    queries (and the batch): 1 for uniform attention (every key alike), 0 when each query looks at one key."""
    b = beta.double().clamp_min(1e-30)
    return float((-(b * b.log()).sum(-1) / math.log(beta.shape[-1])).mean())


def _grid(n: int, image_size: int) -> torch.Tensor:
    """Pixel coordinates (row, col) of the centres of an s x s grid (s = sqrt(n)) covering the image: (n, 2)."""
    s = math.isqrt(n)
    if s * s != n:
        raise ValueError(f"expected a square grid of positions, got {n}")
    step = image_size / s
    r, c = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    return torch.stack([(r.flatten() + 0.5) * step, (c.flatten() + 0.5) * step], dim=1).double()


def mean_attention_distance(beta: torch.Tensor, image_size: int, per_query: bool = False) -> torch.Tensor:
    """Expected distance, in image pixels, between a query and where it looks: mean_j sum_i beta_{j,i} |p_i - p_j|.

    ``beta``: (N_q, N_k) or (B, N_q, N_k), rows summing to 1, queries and keys on square grids laid over an
    ``image_size`` image (keys may be on a coarser grid, as with ``pool=True``); |.| is the Euclidean distance
    between grid-cell centres. Returns the mean over queries (and the batch), or the (B, N_q) map with
    ``per_query=True``.
    """
    squeeze = beta.dim() == 2
    b = beta.unsqueeze(0) if squeeze else beta
    q, k = _grid(b.shape[1], image_size), _grid(b.shape[2], image_size)
    dist = torch.cdist(q, k)  # (N_q, N_k)
    per = (b.double() * dist).sum(-1)  # (B, N_q)
    if per_query:
        return (per[0] if squeeze else per).float()
    return per.mean().float()


def attention_beyond(beta: torch.Tensor, image_size: int, window: float) -> float:
    """The share of attention that lands outside a ``window`` x ``window`` pixel square centred on each query:
    mean_j sum_{i : |p_i - p_j|_inf > window / 2} beta_{j,i}.

    With ``window`` the receptive field of the features the block receives (``receptive_field``), this is the
    part of what a query gathers that no convolution below it could have brought to that position.
    """
    b = beta.unsqueeze(0) if beta.dim() == 2 else beta
    q, k = _grid(b.shape[1], image_size), _grid(b.shape[2], image_size)
    outside = ((q[:, None, :] - k[None, :, :]).abs().amax(-1) > window / 2).to(b.dtype)  # (N_q, N_k)
    return float((b * outside).sum(-1).mean())


def receptive_field(features: Callable[[torch.Tensor], torch.Tensor], image_size: int = 32, channels: int = 3,
                    seed: int = 0) -> int:
    """The receptive field, in pixels, of the centre position of ``features(x)`` (a (1, C, h, w) map).

    Measured, not derived: the side of the square of input pixels with a non-zero gradient
    d features[:, :, h/2, w/2] / d x at a random input. For stacks of convolutions and pooling this is the
    theoretical receptive field (the effective one, where the gradient is large, is smaller).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, channels, image_size, image_size, generator=g, requires_grad=True)
    h = features(x)
    h[:, :, h.shape[-2] // 2, h.shape[-1] // 2].abs().sum().backward()
    support = x.grad[0].abs().sum(0) > 0
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    return int(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


def conv_attention(size: int, kernel_size: int = 3) -> torch.Tensor:
    """The "attention map" of a k x k convolution with equal weights: each query spreads 1/k^2 over its k x k
    neighbourhood (renormalised at the borders). (N, N) for an ``size`` x ``size`` grid: the baseline a
    convolution layer's receptive field gives."""
    n = size * size
    r, c = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r, c = r.flatten(), c.flatten()
    near = ((r[:, None] - r[None, :]).abs() <= kernel_size // 2) & ((c[:, None] - c[None, :]).abs() <= kernel_size // 2)
    beta = near.double()
    return (beta / beta.sum(1, keepdim=True)).float().reshape(n, n)


def uniform_attention(n_queries: int, n_keys: int | None = None) -> torch.Tensor:
    """Every query looks everywhere equally: beta_{j,i} = 1 / N_keys."""
    n_keys = n_keys or n_queries
    return torch.full((n_queries, n_keys), 1.0 / n_keys)


def shape_mask(images: torch.Tensor, size: int, threshold: float = 0.4) -> torch.Tensor:
    """Where the coloured shape is, on a ``size`` x ``size`` grid, for the ``shapes`` dataset: (B, size^2) bool.

    The backgrounds are grey (R = G = B) and the shapes saturated, so a cell belongs to the shape when the
    spread max(R, G, B) - min(R, G, B) of its average colour (in [-1, 1] units) exceeds ``threshold``.
    """
    pooled = F.adaptive_avg_pool2d(images.float(), size)
    spread = pooled.max(dim=1).values - pooled.min(dim=1).values
    return (spread > threshold).flatten(1)


def attention_on_region(beta: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """How much attention queries inside a region give to that region, against its area.

    ``beta`` (B, N, N), ``mask`` (B, N) bool. For queries j inside the mask: mean_j sum_{i in mask} beta_{j,i}
    ("inside_to_inside"); for queries outside: the mass they give to the outside ("outside_to_outside");
    with the area fractions that uniform attention would give ("inside_area", "outside_area").
    """
    m = mask.to(beta.dtype)
    mass_in = (beta * m[:, None, :]).sum(-1)  # (B, N): mass each query puts inside
    inside, outside = mask, ~mask
    out = {
        "inside_to_inside": float(mass_in[inside].mean()) if inside.any() else float("nan"),
        "outside_to_outside": float((1 - mass_in)[outside].mean()) if outside.any() else float("nan"),
        # what a query sees under uniform attention, averaged over the same queries
        "inside_area": float(m.mean(1, keepdim=True).expand_as(m)[inside].mean()) if inside.any() else float("nan"),
        "outside_area": float((1 - m.mean(1, keepdim=True)).expand_as(m)[outside].mean())
        if outside.any() else float("nan"),
    }
    return out


# ============================================================================ the attention explorer
def _query_cell(x: int, y: int, size: int, grid: int) -> tuple[int, int]:
    """The (row, col) cell of a ``grid`` x ``grid`` map that contains pixel (x, y) of a ``size`` image."""
    if not (0 <= x < size and 0 <= y < size):
        raise ValueError(f"query pixel (x, y) must be inside the {size} x {size} image, got ({x}, {y})")
    return y * grid // size, x * grid // size


def query_statistics(beta: torch.Tensor, j: int, image_size: int) -> dict[str, float]:
    """What query ``j``'s row of ``beta`` (N_q, N_k) does, against uniform attention from the same cell:
    ``entropy`` over its maximum log N_k (1: uniform), ``distance`` (mean attention distance, pixels) and
    ``uniform_distance`` (the same for uniform attention from this query's cell)."""
    uniform = uniform_attention(beta.shape[0], beta.shape[1])
    return {"entropy": attention_entropy(beta[j:j + 1]),
            "distance": float(mean_attention_distance(beta, image_size, per_query=True)[j]),
            "uniform_distance": float(mean_attention_distance(uniform, image_size, per_query=True)[j])}


def render_attention(image: torch.Tensor, beta: torch.Tensor, x: int, y: int, title: str = "", alpha: float = 0.6,
                     window: float | None = None, residual: dict[str, float] | None = None):
    """Two panels: the attention of the query over the image (overlay; the sample itself is the explorer's
    query pad) and the attention map alone; under them, what this query does against uniform attention from its cell (row
    entropy over the maximum, mean distance beside the uniform map's) and, given ``residual`` ({"gamma", "share"}
    of ``residual_share``), how much the block adds to its input at all.

    ``image`` (C, S, S) in [-1, 1]; ``beta`` (N_q, N_k) for one image (queries and keys on square grids); the
    query is the grid cell containing pixel (x, y); cells are named (x, y) like pixels (column, row).
    ``window``: draw a square of that many pixels around the query (e.g. the receptive field of the features the
    attention block receives). Returns the Figure.
    """
    size = image.shape[-1]
    hq, hk = math.isqrt(beta.shape[0]), math.isqrt(beta.shape[1])
    row, col = _query_cell(x, y, size, hq)
    j = row * hq + col
    heat = beta[j].reshape(1, 1, hk, hk).float()
    heat_img = F.interpolate(heat, size=(size, size), mode="nearest")[0, 0]
    picture = to_unit(image).permute(1, 2, 0).squeeze(-1).numpy()
    cmap = "gray" if picture.ndim == 2 else None
    cell = size / hq
    centre = ((col + 0.5) * cell - 0.5, (row + 0.5) * cell - 0.5)  # (x, y) in imshow coordinates
    stats = query_statistics(beta, j, size)

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 4.3))   # beside the 176 px query pad at JupyterLab's width
    axes[0].imshow(picture, cmap=cmap, interpolation="nearest")
    axes[0].imshow(heat_img.numpy(), cmap="inferno", alpha=alpha, interpolation="nearest")
    axes[0].set_title(f"query pixel ({x}, {y}): attention")
    im = axes[1].imshow(beta[j].reshape(hk, hk).float().numpy(), cmap="inferno", interpolation="nearest",
                        extent=(-0.5, size - 0.5, size - 0.5, -0.5))
    axes[1].set_title(f"beta_j, cell ({col}, {row}) of {hq}x{hq}")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04, label="attention weight")
    for ax in axes:
        ax.plot(*centre, marker="x", color="cyan", markersize=10, markeredgewidth=2.5)
        if window:
            ax.add_patch(Rectangle((centre[0] - window / 2, centre[1] - window / 2), window, window, fill=False,
                                   edgecolor="cyan", linestyle="--", linewidth=1))
        ax.set_xlim(-0.5, size - 0.5)
        ax.set_ylim(size - 0.5, -0.5)
        ax.set_xlabel("x (pixels)")
    axes[0].set_ylabel("y (pixels)")
    lines = [f"this query: row entropy {stats['entropy']:.2f} of the maximum (uniform: 1.00)",
             f"mean distance {stats['distance']:.1f} px (uniform attention from this cell: "
             f"{stats['uniform_distance']:.1f} px)"]
    if residual is not None:
        lines.append(f"the block, y = gamma o + x: gamma = {residual['gamma']:+.3f}, "
                     f"||gamma o|| / ||x|| = {residual['share']:.3f}")
    fig.text(0.5, 0.01, "\n".join(lines), ha="center", va="bottom", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.02 + 0.05 * len(lines), 1, 1))
    return fig


def _query_pad(image: torch.Tensor, x: int, y: int, grid: int, pixels: int) -> bytes:
    """PNG of the sample scaled to ``pixels`` (nearest), the query's cell outlined: the image a learner clicks."""
    import io

    from PIL import Image, ImageDraw

    array = (to_unit(image).permute(1, 2, 0) * 255).round().byte()
    picture = Image.fromarray(array.squeeze(-1).numpy() if array.shape[-1] == 1 else array.numpy())
    picture = picture.convert("RGB").resize((pixels, pixels), Image.NEAREST)
    row, col = _query_cell(x, y, image.shape[-1], grid)
    cell = pixels / grid
    ImageDraw.Draw(picture).rectangle([col * cell, row * cell, (col + 1) * cell - 1, (row + 1) * cell - 1],
                                      outline=(0, 255, 255), width=2)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def click_to_pixel(event: dict, size: int) -> tuple[int, int]:
    """The image pixel (x, y) under a click on the query pad: ``event`` is ipyevents' click message
    (``relativeX``/``relativeY`` from the pad's top-left corner, ``boundingRectWidth``/``Height`` its size on screen,
    whatever the zoom)."""
    width, height = event.get("boundingRectWidth") or 1, event.get("boundingRectHeight") or 1
    x = int(event["relativeX"] / width * size)
    y = int(event["relativeY"] / height * size)
    return min(max(x, 0), size - 1), min(max(y, 0), size - 1)


def attention_explorer(images: torch.Tensor, maps: dict[str, torch.Tensor], labels: list[str] | None = None,
                       windows: dict[str, float] | None = None, residual: dict[str, dict] | None = None,
                       pad_pixels: int = 176, title: str = "Where does a query look? (SAGAN attention, Sec. 3)"):
    """Explorer over ``images`` (B, C, S, S) and their attention ``maps`` ({layer name: beta (B, N_q, N_k)}):
    choose a sample, a layer and a query (click the sample on the left, or move the x / y sliders) and see where
    the query's cell looks. ``windows`` (pixels, per layer) draws the receptive field of that layer's input around
    the query; ``residual`` ({layer: ``residual_share`` entry}) adds the block's gamma and ||gamma o|| / ||x||.
    ``ex.click(event)`` is what a click does (ipyevents' message; tests call it directly)."""
    from ipyevents import Event

    size = images.shape[-1]
    windows, residual = windows or {}, residual or {}

    def render(sample, layer, x, y):
        label = f"sample {sample}" + (f" ({labels[sample]})" if labels else "") + f", {layer}"
        return render_attention(images[sample], maps[layer][sample], x, y, title=label, window=windows.get(layer),
                                residual=residual.get(layer))

    pad = widgets.Image(format="png", width=pad_pixels, height=pad_pixels,
                        layout=widgets.Layout(width=f"{pad_pixels}px", height=f"{pad_pixels}px",
                                              margin="40px 8px 0 0"))
    ex = explorer(
        render, title=title, beside=widgets.VBox([widgets.HTML("click to query:"), pad]),
        sample=widgets.IntSlider(value=0, min=0, max=images.shape[0] - 1, description="sample"),
        layer=choice(list(maps), description="layer"),
        x=widgets.IntSlider(value=size // 2, min=0, max=size - 1, description="query x"),
        y=widgets.IntSlider(value=size // 2, min=0, max=size - 1, description="query y"),
    )

    def show_pad(change=None):
        v = ex.values()
        pad.value = _query_pad(images[v["sample"]], v["x"], v["y"], math.isqrt(maps[v["layer"]].shape[1]), pad_pixels)

    def click(event: dict):
        x, y = click_to_pixel(event, size)
        with ex.hold():
            ex.controls["x"].value, ex.controls["y"].value = x, y

    for control in ex.controls.values():
        control.observe(show_pad, names="value")
    show_pad()
    Event(source=pad, watched_events=["click"]).on_dom_event(click)
    ex.click, ex.pad = click, pad
    return ex
