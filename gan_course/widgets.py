"""The explorer pattern: an ipywidgets panel around a plain render function.

Every explorer in the course is built the same way, so that a learner can read one and write their own, and
tests can drive all of them without a browser:

- ``render(**values) -> matplotlib Figure`` is a plain function of the controls' values;
- ``explorer(render, seed=IntSlider(...), label=Dropdown(...))`` wires the controls to it: changing any
  control re-renders into an ``Output`` area; ``explorer.state`` keeps the last values and figure.

Headless (in pytest), setting ``ex.controls["seed"].value = 3`` fires the callback exactly as a slider
drag does in JupyterLab; tests then read ``ex.state``.

An explorer whose controls move together (a click that sets both x and y, a run whose steps re-range a slider)
changes them inside ``with ex.hold():``, which renders once at the end; a change that leaves every value as
it was renders nothing. ``beside`` puts a widget (e.g. a clickable image) to the left of the figure.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import ipywidgets as widgets
import matplotlib.pyplot as plt


class Explorer:
    """Controls + output area + the render function that links them (see module docstring)."""

    def __init__(self, render: Callable, controls: dict[str, widgets.Widget], title: str | None = None,
                 continuous: bool = False, beside: widgets.Widget | None = None):
        self.render = render
        self.controls = controls
        self.output = widgets.Output()
        self.state: dict = {"values": None, "figure": None, "renders": 0}
        self._held = 0
        for control in controls.values():
            if hasattr(control, "continuous_update"):
                control.continuous_update = continuous
            control.observe(self._on_change, names="value")
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        body = self.output if beside is None else widgets.HBox([beside, self.output])
        self.widget = widgets.VBox(header + [widgets.HBox(list(controls.values()),
                                                          layout=widgets.Layout(flex_flow="row wrap")),
                                             body])
        self.refresh()

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self):
        """Call ``render`` with the controls' current values and show the figure it returns."""
        values = self.values()
        figure = self.render(**values)
        old = self.state["figure"]
        if old is not None and old is not figure:
            plt.close(old)
        self.state.update(values=values, figure=figure, renders=self.state["renders"] + 1)
        with self.output:
            from IPython.display import clear_output, display

            clear_output(wait=True)
            if figure is not None:
                display(figure)
        if figure is not None:
            plt.close(figure)  # shown once, in the output area (inline backends would show it again)
        return figure

    @contextmanager
    def hold(self):
        """Change several controls at once: nothing renders inside the block, one render follows it (if a value
        changed)."""
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
            if not self._held and self.values() != self.state["values"]:
                self.refresh()

    def _on_change(self, change):
        if self._held or self.values() == self.state["values"]:
            return
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def explorer(render: Callable, title: str | None = None, continuous: bool = False,
             beside: widgets.Widget | None = None, **controls) -> Explorer:
    """Build an ``Explorer``: ``explorer(render, seed=widgets.IntSlider(0, 0, 99), title="...")``."""
    if not controls:
        raise ValueError("explorer needs at least one control, e.g. seed=widgets.IntSlider(...)")
    ex = Explorer(render, controls, title=title, continuous=continuous, beside=beside)
    _settle()
    return ex


def _settle(seconds: float = 1.5):
    """Pause briefly after building an explorer when running inside a kernel (no pause in a terminal or pytest).

    Building an explorer renders its first figure into an ``Output`` widget. Under headless execution
    (papermill / nbval through nbclient 0.11 with ipykernel 7) the client answers that output with a comm message;
    when the kernel's ``execute_reply`` arrives at the same moment it can be lost and execution hangs on an idle
    kernel (jupyter/nbclient issue 312). Letting the exchange finish before the cell ends avoids it.
    """
    from .viz import in_notebook

    if in_notebook():
        import time

        time.sleep(seconds)


def seed_slider(value: int = 0, max: int = 999, description: str = "seed") -> widgets.IntSlider:
    """The course's standard seed slider."""
    return widgets.IntSlider(value=value, min=0, max=max, step=1, description=description)


def choice(options, value=None, description: str = "") -> widgets.Dropdown:
    """A dropdown over ``options`` (a list of values or of ``(label, value)`` pairs)."""
    options = list(options)
    first = options[0][1] if isinstance(options[0], tuple) else options[0]
    return widgets.Dropdown(options=options, value=first if value is None else value, description=description)
