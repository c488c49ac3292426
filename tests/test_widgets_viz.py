"""The explorer pattern works headless; plots are titled and labelled."""

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from gan_course.training import History
from gan_course.viz import LiveView, image_grid, plot_history, readability, show_images
from gan_course.widgets import explorer, seed_slider


def test_explorer_re_renders_when_a_control_changes():
    calls = []

    def render(seed, label):
        calls.append((seed, label))
        fig, ax = plt.subplots()
        ax.set_title(f"seed {seed}, {label}")
        return fig

    ex = explorer(render, seed=seed_slider(3), label=widgets.Dropdown(options=["a", "b"]))
    assert calls == [(3, "a")]
    ex.controls["seed"].value = 5
    ex.controls["label"].value = "b"
    assert calls[-1] == (5, "b") and ex.state["renders"] == 3
    assert ex.state["figure"].axes[0].get_title() == "seed 5, b"


def test_image_grid_maps_to_unit_range():
    grid = image_grid(torch.full((4, 1, 8, 8), -1.0))
    assert grid.shape[0] == 3 and grid.min() >= 0 and grid.max() <= 1


def test_plots_are_labelled():
    h = History()
    for s in range(30):
        h.append(s, "loss_D", 1.0 / (s + 1))
    ax = plot_history(h)
    assert ax.get_xlabel() == "step" and ax.get_title()
    ax = show_images(torch.zeros(4, 3, 8, 8), title="samples")
    assert ax.get_title() == "samples"
    fig = LiveView("t", enabled=False).update(h, torch.zeros(4, 1, 8, 8), step=30)
    assert len(fig.axes) == 2
    plt.close("all")


def test_hold_renders_once_for_several_controls_and_not_for_no_change():
    calls = []

    def render(x, y):
        calls.append((x, y))
        return None

    ex = explorer(render, x=widgets.IntSlider(0, 0, 9), y=widgets.IntSlider(0, 0, 9))
    with ex.hold():
        ex.controls["x"].value = 3
        ex.controls["y"].value = 4
    assert calls == [(0, 0), (3, 4)] and ex.state["values"] == {"x": 3, "y": 4}
    with ex.hold():
        ex.controls["x"].value = 5
        ex.controls["x"].value = 3          # back where it was: nothing to draw
    assert len(calls) == 2
    ex.controls["y"].value = 5
    assert calls[-1] == (3, 5) and ex.state["renders"] == 3


def test_readability_flags_a_shrunk_figure_overlapping_ticks_and_clipped_text():
    fig, ax = plt.subplots(figsize=(16, 4))                 # shown at 8.5 / 16 of its size in JupyterLab
    ax.plot([0.1, 0.11, 1], [0, 1, 2])
    ax.set_xticks([0.1, 0.11, 1])
    assert readability(fig)["smallest_pt"] < 9 and not readability(fig)["readable"]
    assert ("0.10", "0.11") in readability(fig)["overlaps"]
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_title("a title far too long for a figure this narrow, running off both of its sides")
    assert readability(fig)["clipped"] and not readability(fig)["readable"]
    ax.set_title("short")
    assert readability(fig)["readable"]
    plt.close(fig)
