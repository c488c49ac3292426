"""What every chapter notebook does before it trains: pick the device, seed, set threads, and show library code.

``setup`` replaces the set-up cell each notebook used to carry; ``show_source`` prints a function's or class's
source as Markdown, so a learner reads exactly the code that runs; ``show_table`` shows a table of numbers as
Markdown, which wraps cleanly at any notebook width (a fixed-width print wraps mid-row).
"""

from __future__ import annotations

import inspect
import os

import torch

from .utils import get_device, seed_everything


def threads(requested: int | None = None) -> int:
    """The number of CPU threads torch should use: ``requested``, else ``$OMP_NUM_THREADS``, else 2; never more
    than the machine's cores (two threads suit the course's 2-core laptops; 1 helps on a busy machine)."""
    n = requested if requested is not None else int(os.environ.get("OMP_NUM_THREADS", 2))
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive int, got {n!r}")
    return max(1, min(n, os.cpu_count() or 1))


def setup(device: str | torch.device = "auto", seed: int = 0, *, n_threads: int | None = None,
          smoke: bool | None = None, quiet: bool = False) -> torch.device:
    """Pick the device (``gan_course.utils.get_device``), seed Python/NumPy/torch, set torch's CPU threads.

    Returns the device. Prints one line saying what was chosen (unless ``quiet``).
    """
    dev = get_device(device)
    seed_everything(seed)
    torch.set_num_threads(threads(n_threads))
    if not quiet:
        mode = "" if smoke is None else f", smoke: {smoke}"
        print(f"device: {dev}, seed: {seed}, threads: {torch.get_num_threads()}{mode}")
    return dev


def show_source(*objects):
    """Display the source code of library functions / classes as Markdown (plain text outside a notebook)."""
    _display_markdown("\n".join(f"```python\n{inspect.getsource(o)}```" for o in objects))


def _display_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython is a dependency of jupyterlab
        print(text)
        return
    display(Markdown(text))


def markdown_table(rows: dict, digits: int = 3, first: str = "") -> str:
    """``{row name: {column: value}}`` as a Markdown table: floats to ``digits`` decimals, the rest as ``str``;
    the columns are the first row's keys, ``first`` heads the column of row names."""
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    columns = list(next(iter(rows.values())))

    def cell(v) -> str:
        text = f"{v:.{digits}f}" if isinstance(v, float) else str(v)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join([first, *columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    lines += ["| " + " | ".join([cell(name), *(cell(values.get(c, "")) for c in columns)]) + " |"
              for name, values in rows.items()]
    return "\n".join(lines)


def show_table(rows: dict, digits: int = 3, first: str = "", title: str | None = None) -> str:
    """Display ``markdown_table(rows, digits, first)`` (with a bold ``title`` above it) and return its Markdown."""
    text = (f"**{title}**\n\n" if title else "") + markdown_table(rows, digits, first)
    _display_markdown(text)
    return text
