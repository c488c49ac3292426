"""Pictures of a GAN at work: image grids, loss curves and the live view shown while a chapter trains.

Images everywhere in the course are float tensors in [-1, 1] of shape (B, C, H, W); ``to_unit`` maps them
to [0, 1] for display.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid


def in_notebook() -> bool:
    """True inside a Jupyter kernel (including papermill / nbval runs), False in a terminal or plain pytest."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


# JupyterLab's output area at 100 % zoom is about 850 px wide; a wider figure is shrunk to fit, and its text with it.
READABLE_WIDTH_IN = 8.5     # inches at matplotlib's 100 dpi
READABLE_TEXT_PT = 9.0


def readability(fig) -> dict:
    """How readable ``fig`` is at JupyterLab's width: ``width_in``, the ``scale`` it is shown at (<= 1: shrunk to
    READABLE_WIDTH_IN), the ``smallest_pt`` text as shown (titles, labels, ticks, legends, annotations), and
    ``overlaps``: pairs of texts that overlap (tick labels, axis labels of neighbouring panels, titles), and
    ``clipped``: texts that run off the figure. ``readable`` when nothing is below
    READABLE_TEXT_PT and nothing overlaps."""
    if not hasattr(fig.canvas, "get_renderer"):   # a closed figure (an explorer's last one): draw it off-screen
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    fig.canvas.draw()   # constrained layout settles on the second pass
    renderer = fig.canvas.get_renderer()
    width = fig.get_figwidth() * fig.dpi / 100
    scale = min(1.0, READABLE_WIDTH_IN / width)
    hidden = set()   # tick labels outside an axis's view are in its tick list but never drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * abs(hi - lo) <= tick.get_loc() <= hi + 1e-9 * abs(hi - lo):
                    hidden.update((id(tick.label1), id(tick.label2)))
    texts = [t for t in fig.findobj(plt.Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    smallest = min((t.get_fontsize() for t in texts), default=float("inf")) * scale
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    overlaps = [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]
    canvas = fig.bbox
    clipped = [text for text, box in boxes if box.x0 < canvas.x0 - 1 or box.x1 > canvas.x1 + 1
               or box.y0 < canvas.y0 - 1 or box.y1 > canvas.y1 + 1]
    return dict(width_in=fig.get_figwidth(), scale=scale, smallest_pt=smallest, overlaps=overlaps, clipped=clipped,
                readable=smallest >= READABLE_TEXT_PT and not overlaps and not clipped)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Map images from the course's [-1, 1] range to [0, 1] (clamped), detached and on the CPU as float32."""
    return ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """Tile a batch (B, C, H, W) in [-1, 1] into one (3, H', W') image in [0, 1]; ``nrow`` images per row."""
    if images.dim() != 4:
        raise ValueError(f"image_grid expects a batch of shape (B, C, H, W), got {tuple(images.shape)}")
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return make_grid(to_unit(images), nrow=nrow, padding=padding, pad_value=0.5)


def show_images(images: torch.Tensor, nrow: int | None = None, title: str | None = None, ax=None,
                figsize: tuple[float, float] | None = None):
    """Draw a grid of images on ``ax`` (a new figure if None); return the axes."""
    grid = image_grid(images, nrow)
    if ax is None:
        size = figsize or (min(8, 1 + grid.shape[2] / 40), min(8, 1 + grid.shape[1] / 40))
        _, ax = plt.subplots(figsize=size)
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def smooth(values, window: int = 25):
    """Running mean over ``window`` points (shorter at the start), for readable loss curves."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_history(history, keys=None, ax=None, title: str = "Training losses", window: int = 25,
                 ylabel: str = "loss"):
    """Plot logged scalars (a ``training.History`` or ``{key: (steps, values)}``) against the step."""
    data = history.as_dict() if hasattr(history, "as_dict") else history
    keys = list(keys) if keys is not None else list(data)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for key in keys:
        steps, values = data[key]
        if not steps:
            continue
        line, = ax.plot(steps, values, alpha=0.25)
        ax.plot(steps, smooth(list(values), window), color=line.get_color(), label=key)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if keys:
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


class LiveView:
    """Loss curves beside the latest sample grid, redrawn in place in a notebook; silent elsewhere.

    ``update`` also returns the figure, so tests and scripts can save or inspect it.
    """

    def __init__(self, title: str = "", enabled: bool | None = None):
        self.title = title
        self.enabled = in_notebook() if enabled is None else enabled
        self._handle = None

    def update(self, history, samples: torch.Tensor | None, step: int, keys=None):
        fig, axes = plt.subplots(1, 2 if samples is not None else 1,
                                 figsize=(11 if samples is not None else 6, 4),
                                 gridspec_kw={"width_ratios": [1.4, 1]} if samples is not None else None)
        axes = list(axes) if samples is not None else [axes]
        plot_history(history, keys=keys, ax=axes[0], title=f"{self.title} losses (step {step})".strip())
        if samples is not None:
            show_images(samples, ax=axes[1], title=f"samples at step {step}")
        fig.tight_layout()
        if self.enabled:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(fig, display_id=True)
            else:
                self._handle.update(fig)
        plt.close(fig)
        return fig
