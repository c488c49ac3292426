"""The explorer pattern works headless; plots are titled and labelled."""

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from gan_course.training import History
from gan_course.viz import LiveView, image_grid, plot_history, show_images
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
