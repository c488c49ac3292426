"""Chapter 07's attention explorer in a real JupyterLab (headless Chromium): run the notebook in smoke mode, click
the sample, and check that the query sliders and the attention map moved. ``make browser-test``; skipped where no
Chromium or Playwright is installed (CI has neither)."""

from __future__ import annotations

import pytest

from . import jupyterlab as lab

pytestmark = pytest.mark.skipif(lab.missing() is not None, reason=lab.missing() or "")


def test_clicking_the_sample_moves_the_attention_query(tmp_path):
    with lab.lab_server(["07_sagan.ipynb"], tmp_path) as (url, token), lab.browser_page() as page:
        lab.run_all(page, url, token, "07_sagan.ipynb")
        box = lab.explorer(page, "Where does a query look?")
        assert (lab.slider_value(box, "query x"), lab.slider_value(box, "query y")) == ("16", "16")
        before = lab.figure_src(box)
        pad = box.locator(".widget-vbox:has(> .widget-html:has-text('click to query')) img").first
        size = pad.bounding_box()
        pad.click(position={"x": 0.25 * size["width"], "y": 0.8 * size["height"]})
        for _ in range(120):                                  # the kernel renders the new map
            if lab.figure_src(box) != before:
                break
            page.wait_for_timeout(500)
        assert (lab.slider_value(box, "query x"), lab.slider_value(box, "query y")) == ("8", "25")
        assert lab.figure_src(box) != before, "the attention map did not change after the click"
        assert not [e for e in page.console_errors if "widget" in e.lower()], page.console_errors
