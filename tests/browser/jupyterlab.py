"""Drive the course's notebooks in a real JupyterLab with headless Chromium (Playwright): a server on a free port
with the notebook copied into a scratch directory (smoke mode), a page that runs every cell, and locators for an
explorer by its title. Used by ``test_explorers_in_jupyterlab.py`` and ``screenshots.py``; needs a Chromium
(Debian's ``chromium`` at ``/usr/bin/chromium``, or ``GAN_COURSE_CHROMIUM``) and ``pip install playwright``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GAN_COURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}     # a laptop screen: JupyterLab at its default layout and 100 % zoom


def missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt install chromium, or set GAN_COURSE_CHROMIUM)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(notebooks: list[str], work: Path, smoke: bool = True):
    """A JupyterLab server serving copies of ``notebooks`` (names in notebooks/) from ``work``; yields its base URL
    with the token. Smoke mode and the build directory are set in the kernel's environment."""
    work.mkdir(parents=True, exist_ok=True)
    for name in notebooks:
        shutil.copy(ROOT / "notebooks" / name, work / name)
    port, token = _free_port(), "gan-course-browser-test"
    env = dict(os.environ, GAN_COURSE_BUILD=str(work / "build"), JUPYTER_CONFIG_DIR=str(work / "jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(work / "lab-settings"), JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"))
    if smoke:
        env["GAN_COURSE_SMOKE"] = "1"
    news = work / "lab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')   # no "Jupyter news?" toast over the page
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", "--ServerApp.allow_root=True", f"--ServerApp.root_dir={work}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited: see {work / 'server.log'}") from None
                time.sleep(0.5)
        else:
            raise RuntimeError(f"JupyterLab did not start in 60 s: see {work / 'server.log'}")
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@contextlib.contextmanager
def browser_page(height: int | None = None):
    """A headless Chromium page at VIEWPORT (``height`` overrides its height) that collects console errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=dict(VIEWPORT, height=height or VIEWPORT["height"]))
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.console_errors = errors
            yield page
        finally:
            browser.close()


def run_all(page, url: str, token: str, notebook: str, timeout_s: float = 600):
    """Open ``notebook`` in JupyterLab, run every cell, and wait until the kernel is idle with every code cell
    executed; raises with the first error output if a cell failed."""
    page.goto(f"{url}/lab/tree/{notebook}?token={token}")
    page.wait_for_function("window.jupyterapp && jupyterapp.shell.currentWidget && "
                           "jupyterapp.shell.currentWidget.sessionContext && "
                           "jupyterapp.shell.currentWidget.sessionContext.session && "
                           "jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
                           "jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=120_000)
    page.evaluate("jupyterapp.commands.execute('notebook:run-all-cells')")
    done = """() => {
        const nb = jupyterapp.shell.currentWidget;
        const cells = nb.content.widgets.filter(c => c.model.type === 'code');
        const error = cells.find(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
        if (error) return 'error: ' + JSON.stringify(error.model.outputs.toJSON().find(o => o.output_type === 'error').evalue);
        const ran = cells.every(c => c.model.executionCount !== null);
        return ran && nb.sessionContext.session.kernel.status === 'idle' ? 'done' : '';
    }"""
    handle = page.wait_for_function(done, timeout=timeout_s * 1000, polling=1000)
    state = handle.json_value()
    if state != "done":
        raise AssertionError(f"{notebook} failed in JupyterLab: {state}")


def explorer(page, title: str):
    """The explorer whose title (the bold header) contains ``title``: its outermost box."""
    box = page.locator(f".widget-vbox:has(> .widget-html:has-text({title!r}))").first
    box.scroll_into_view_if_needed()
    return box


def slider_value(box, description: str) -> str:
    """The readout of the slider labelled ``description`` inside ``box``."""
    return box.evaluate("""(box, name) => {
        const label = [...box.querySelectorAll('.widget-slider label')].find(l => l.textContent.trim() === name);
        return label ? label.closest('.widget-slider').querySelector('.widget-readout').textContent.trim() : null;
    }""", description)


def figure_src(box) -> str:
    return box.locator(".widget-output img").first.get_attribute("src")
