"""Spectral normalisation and singular values, measured: the one home of what chapters 07 (SAGAN) and 08 (BigGAN)
measure about their weights.

- ``raw_weight`` / ``weight_layers`` (from ``gan_course.layers``): the weight the optimiser moves, and the layers
  that hold one; ``effective_weight``: the weight a layer applies (W / sigma_hat under spectral norm);
- ``spectral_report``: sigma(W) by SVD, spectral norm's running estimate sigma_hat and sigma(W / sigma_hat), for
  every normalised layer; ``conv_operator_norm``: a convolution's true Lipschitz constant (Sedghi et al., 2019);
- ``SpectraRecorder``: the whole spectrum of every weight of some networks over training (BigGAN Sec. 4,
  Figs. 3 and 20), of the raw and of the applied weight, checkpointable with a ``Run``;
- ``render_spectra`` / ``spectra_explorer``: one layer's singular values over training in one or several runs.

Nothing here steps spectral norm's power iteration: the applied weight is read with the parametrisation in eval
mode. Singular values come from ``gan_course.analysis.top_singular_values`` (exact SVD in float64).
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ..analysis import top_singular_values
from ..layers import is_spectrally_normalised, raw_weight, weight_layers
from ..widgets import choice, explorer

__all__ = ["raw_weight", "weight_layers", "effective_weight", "conv_operator_norm", "spectral_report",
           "top_singular_values", "SpectraRecorder", "WEIGHTS", "readable_log_axis", "render_spectra", "spectra_explorer"]

# What a recorded spectrum is of: the weight a layer applies, the raw weight W, or W / sigma_0(W) (exact).
WEIGHTS = ("applied", "raw", "normalised")


@torch.no_grad()
def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the layer applies: W / sigma_hat(W) for a spectrally normalised layer, W otherwise.

    sigma_hat = u^T W v is spectral norm's running power-iteration estimate. Reading ``module.weight`` in training
    mode would step the power iteration (and change the layer); here the parametrisation is read in eval mode.
    """
    if not is_spectrally_normalised(module):
        return module.weight.detach()
    sn = module.parametrizations.weight[0]
    was = sn.training
    sn.eval()
    try:
        return module.weight.detach().clone()
    finally:
        sn.train(was)


def conv_operator_norm(conv: nn.Conv2d, size: int, iters: int = 50, seed: int = 0) -> float:
    """The true Lipschitz constant (spectral norm) of a conv layer acting on ``size`` x ``size`` inputs.

    Spectral normalisation divides by sigma of the weight reshaped to (out, in * k * k); the linear map the
    convolution applies to a whole feature map has a different norm (up to k times larger, Sedghi et al.,
    2019). Estimated by power iteration on x -> conv(x) (bias removed) and its adjoint.
    """
    weight = effective_weight(conv)
    padding = conv.padding
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, weight.shape[1], size, size, generator=g, dtype=weight.dtype)
    sigma = 0.0
    for _ in range(iters):
        x = x / x.norm()
        y = F.conv2d(x, weight, padding=padding)
        sigma = float(y.norm())
        x = F.conv_transpose2d(y, weight, padding=padding)
    return sigma


@torch.no_grad()
def spectral_report(model: nn.Module, conv_size: dict[str, int] | None = None) -> list[dict]:
    """For every spectrally normalised layer of ``model``, one dict:

    - ``sigma_raw``: sigma(W) of the raw weight, exact (``torch.linalg.svdvals`` of W reshaped to (out, -1));
    - ``sigma_hat``: spectral norm's power-iteration estimate u^T W v (one step per training forward);
    - ``sigma_sn``: sigma(W / sigma_hat(W)), exact: ~1 once u has converged;
    - ``conv_operator_norm`` for convs whose input size is given in ``conv_size[name]``.

    Nothing is changed (the power iteration is not stepped).
    """
    rows = []
    for name, module in weight_layers(model):
        if not is_spectrally_normalised(module):
            continue
        W = raw_weight(module).detach()
        sn = module.parametrizations.weight[0]
        row = {"layer": name, "shape": tuple(W.shape),
               "sigma_raw": float(top_singular_values(W, k=1)[0]),
               "sigma_hat": float(sn._u @ (W.flatten(1) @ sn._v)),
               "sigma_sn": float(top_singular_values(effective_weight(module), k=1)[0])}
        if conv_size and name in conv_size and isinstance(module, nn.Conv2d):
            row["conv_operator_norm"] = conv_operator_norm(module, conv_size[name])
        rows.append(row)
    return rows


class SpectraRecorder:
    """The singular values of every weight of some networks over training (BigGAN Sec. 4, Figs. 3 and 20).

    ``models`` is ``{"G": G, "D": D}`` (any names). ``record(step)`` stores, for every layer of
    ``weight_layers(model, conditional_bn=conditional_bn)``, the whole spectrum sigma_0 >= sigma_1 >= ... of

    - the **applied** weight (W / sigma_hat under spectral norm, whose sigma_0 stays ~1; W otherwise), and
    - the **raw** weight W reshaped to (out, -1), the one the optimiser moves (under SN, what grows or explodes).

    ``every``: ``record`` records only at multiples of it (or when ``force``d), never twice at one step.
    ``conditional_bn=False`` leaves out the per-class tables of SAGAN's conditional batch norm. Has
    ``state_dict`` / ``load_state_dict``, so ``Run.attach`` checkpoints it with the run.
    """

    def __init__(self, models: dict[str, nn.Module], every: int = 1, *, conditional_bn: bool = True):
        self.models, self.every, self.conditional_bn = dict(models), every, conditional_bn
        self._layers = {net: weight_layers(m, conditional_bn=conditional_bn) for net, m in self.models.items()}
        self.normalised = {net: {name: is_spectrally_normalised(m) for name, m in layers}
                           for net, layers in self._layers.items()}
        self.steps: list[int] = []
        self.applied: dict[str, dict[str, list[torch.Tensor]]] = {n: {k: [] for k in d}
                                                                   for n, d in self.normalised.items()}
        self.raw: dict[str, dict[str, list[torch.Tensor]]] = {n: {k: [] for k in d} for n, d in self.normalised.items()}

    def layers(self, net: str) -> list[str]:
        """The names of ``net``'s recorded layers, in the network's order."""
        if net not in self.normalised:
            raise ValueError(f"no network {net!r} recorded; choose one of {list(self.normalised)}")
        return list(self.normalised[net])

    @torch.no_grad()
    def record(self, step: int, force: bool = False) -> bool:
        """Record the spectra at ``step`` if it is a multiple of ``every`` (or ``force``); True if recorded."""
        if not force and (self.every <= 0 or step % self.every):
            return False
        if self.steps and self.steps[-1] == step:
            return False
        self.steps.append(int(step))
        for net, layers in self._layers.items():
            for name, layer in layers:
                raw = top_singular_values(raw_weight(layer), k=None).cpu()
                self.raw[net][name].append(raw)
                applied = top_singular_values(effective_weight(layer), k=None).cpu() if self.normalised[net][name] \
                    else raw
                self.applied[net][name].append(applied)
        return True

    def _values(self, net: str, layer: str, weight: str) -> list[torch.Tensor]:
        if weight not in WEIGHTS:
            raise ValueError(f"weight must be one of {WEIGHTS}, got {weight!r}")
        if layer not in self.layers(net):
            raise ValueError(f"{net} has no recorded layer {layer!r}; choose one of {self.layers(net)}")
        if weight == "applied":
            return self.applied[net][layer]
        values = self.raw[net][layer]
        return [v / v[0] for v in values] if weight == "normalised" else values

    def top(self, net: str, layer: str, k: int = 3, weight: str = "applied") -> tuple[list[int], torch.Tensor]:
        """(steps, sigma) with sigma (T, k): sigma_0..sigma_{k-1} of ``layer``'s ``weight`` at every recorded step.

        ``weight``: "applied" (what the layer applies), "raw" (W) or "normalised" (W / sigma_0(W))."""
        values = self._values(net, layer, weight)
        return list(self.steps), torch.stack([v[:k] for v in values]) if values else torch.zeros(0, k)

    def spectrum(self, net: str, layer: str, step: int, weight: str = "applied") -> tuple[int, torch.Tensor]:
        """(recorded step, whole spectrum) at the last recorded step <= ``step`` (the first one if none is)."""
        values = self._values(net, layer, weight)
        if not values:
            raise ValueError("nothing recorded yet: call record(step) first")
        past = [i for i, s in enumerate(self.steps) if s <= step] or [0]
        return self.steps[past[-1]], values[past[-1]]

    def state_dict(self) -> dict:
        copy = lambda d: {n: {k: list(v) for k, v in layers.items()} for n, layers in d.items()}  # noqa: E731
        return {"steps": list(self.steps), "applied": copy(self.applied), "raw": copy(self.raw)}

    def load_state_dict(self, state: dict):
        self.steps = list(state["steps"])
        self.applied = {n: {k: list(v) for k, v in d.items()} for n, d in state["applied"].items()}
        self.raw = {n: {k: list(v) for k, v in d.items()} for n, d in state["raw"].items()}


_WEIGHT_LABELS = {"applied": "of the applied weight", "raw": "of the raw weight W",
                  "normalised": "of W / sigma_0(W)"}
# The weight dropdown's labels: what each view is, in words (the value passed on is the key).
_WEIGHT_CHOICES = [("applied: W / sigma_hat, what the layer uses", "applied"),
                   ("raw: W, what the optimiser moves", "raw"),
                   ("normalised: W / sigma_0(W), exact", "normalised")]


def readable_log_axis(ax, axis: str = "y"):
    """Label a log axis that spans less than a decade with plain numbers (matplotlib would label only one
    power of ten there, or none): a few evenly placed ticks, with as many digits as tell them apart."""
    from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if lo <= 0 or hi / lo >= 10:
        return
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(5))
    target.set_major_formatter(ScalarFormatter(useOffset=False))
    target.set_minor_formatter(NullFormatter())


def render_spectra(recorders: dict[str, SpectraRecorder], net: str, layer: str, step: int, *, k: int = 3,
                   weight: str = "applied", title: str = ""):
    """Three panels for one layer of ``net`` in every run of ``recorders`` ({run name: ``SpectraRecorder``}):

    top, sigma_0..sigma_{k-1} of ``weight`` over training (solid, fading with i; with ``weight="applied"``, the
    raw weight's sigma_0 dotted for a spectrally normalised layer), the step drawn below marked on each run;
    bottom left, the whole spectrum at the last recorded step <= ``step`` (the step each run is drawn at is in the
    title and the legend); bottom right, sigma_0 / sigma_1 over training, which no rescaling of W changes (so
    spectral norm's division does not hide it). Runs without that layer are left out. Returns the Figure.
    """
    runs = {run: rec for run, rec in recorders.items() if net in rec.normalised and layer in rec.normalised[net]
            and rec.steps}
    if not runs:
        raise ValueError(f"no run has recorded {net}/{layer}; runs: {list(recorders)}")
    drawn = {}    # run: the recorded step its spectrum is drawn at (SpectraRecorder.spectrum picks it)
    fig = plt.figure(figsize=(8.5, 7.2))   # JupyterLab's output width at 100 %: text keeps its size
    grid = fig.add_gridspec(2, 2)
    over, whole, ratio = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, (run, rec) in enumerate(runs.items()):
        color = colors[c % len(colors)]
        sn = " (SN)" if rec.normalised[net][layer] else " (no SN)"
        steps, top = rec.top(net, layer, k, weight)
        for i in range(top.shape[1]):
            over.plot(steps, top[:, i].numpy(), color=color, alpha=1.0 - 0.3 * i, lw=2 if i == 0 else 1,
                      label=f"{run}{sn}: sigma_0..{top.shape[1] - 1}" if i == 0 else None)
        if weight == "applied" and rec.normalised[net][layer]:
            over.plot(steps, rec.top(net, layer, 1, "raw")[1][:, 0].numpy(), color=color, ls=":",
                      label=f"{run}: sigma_0 of the raw W")
        at, spectrum = rec.spectrum(net, layer, step, weight)
        drawn[run] = at
        over.axvline(at, color=color, lw=0.8, ls="--")
        whole.plot(range(len(spectrum)), spectrum.clamp_min(1e-8).numpy(), "o-", ms=3, color=color,
                   label=f"{run}, step {at}")
        steps2, top2 = rec.top(net, layer, 2, "raw")
        if top2.shape[1] == 2:
            ratio.plot(steps2, (top2[:, 0] / top2[:, 1].clamp_min(1e-12)).numpy(), color=color, label=run)
            ratio.axvline(at, color=color, lw=0.8, ls="--")
    over.set(xlabel="training step (dashed: the step drawn below)", ylabel="singular value (log scale)",
             yscale="log", title=f"{net}.{layer}: top {k} singular values {_WEIGHT_LABELS[weight]}")
    at_all = sorted(set(drawn.values()))
    at_text = f"step {at_all[0]}" if len(at_all) == 1 else "steps " + ", ".join(map(str, at_all)) + " (per run)"
    whole.set(xlabel="index i (sorted)", ylabel="sigma_i (log scale)", yscale="log",
              title=f"whole spectrum at {at_text}")
    ratio.set(xlabel="training step", ylabel="sigma_0 / sigma_1", title="sigma_0 / sigma_1 (scale-free)")
    if not ratio.lines:
        ratio.text(0.5, 0.5, "one singular value only", ha="center", va="center", transform=ratio.transAxes)
    for ax in (over, whole, ratio):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=9)
    for ax in (over, whole):
        readable_log_axis(ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def spectra_explorer(recorders: dict[str, SpectraRecorder], *, weight: str = "applied", layer: str | None = None,
                     title: str = "Singular values of every weight, over training"):
    """Explorer over ``recorders`` ({run name: ``SpectraRecorder``}): pick the runs ("all" of them together, or
    one), a layer ("G/blocks.0.conv1", ...; default ``layer`` or the first), a recorded step and which weight
    (``WEIGHTS``; default ``weight``): ``render_spectra`` of that layer. The step slider offers the chosen run's
    recorded steps (all runs' for "all"), so every step it shows is one that is drawn."""
    if weight not in WEIGHTS:
        raise ValueError(f"weight must be one of {WEIGHTS}, got {weight!r}")
    layers = []
    for rec in recorders.values():
        layers += [f"{net}/{name}" for net in rec.normalised for name in rec.layers(net)
                   if f"{net}/{name}" not in layers]
    if layer is not None and layer not in layers:
        raise ValueError(f"layer must be one of {layers}, got {layer!r}")
    runs = (["all"] if len(recorders) > 1 else []) + list(recorders)

    def steps_of(run):
        chosen = recorders.values() if run == "all" else [recorders[run]]
        return sorted(set().union(*(rec.steps for rec in chosen))) or [0]

    run_control = choice(runs, description="runs")
    step_control = widgets.SelectionSlider(options=steps_of(run_control.value), description="step")
    step_control.value = step_control.options[-1]
    weight_control = widgets.Dropdown(options=_WEIGHT_CHOICES, value=weight, description="weight",
                                      style={"description_width": "initial"}, layout=widgets.Layout(width="auto"))
    view: dict = {}

    def follow_run(change):
        """The step slider spans the chosen run's steps; the drawn step stays as close as it can."""
        options = steps_of(change["new"])
        before = step_control.value
        past = [s for s in options if s <= before]
        with view["explorer"].hold():
            step_control.options = options
            step_control.value = past[-1] if past else options[0]

    run_control.observe(follow_run, names="value")   # before the explorer's own observer: one render per change

    def render(run, layer, step, weight):
        net, name = layer.split("/", 1)
        chosen = recorders if run == "all" else {run: recorders[run]}
        return render_spectra(chosen, net, name, step, weight=weight)

    view["explorer"] = explorer(render, title=title, run=run_control,
                                layer=choice(layers, value=layer or layers[0], description="layer"),
                                step=step_control, weight=weight_control)
    return view["explorer"]
