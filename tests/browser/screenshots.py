"""Screenshots of the signature explorers in JupyterLab at its default width (a 1280 x 900 window, 100 % zoom):
chapter 07's attention and spectra explorers, 08's and 10's truncation explorers, each notebook run in smoke mode
(so the models are the smoke runs' or, in 07 and 08, the shipped longer runs'; the layout is what a learner sees).

    python -m tests.browser.screenshots --out docs/screenshots        # make screenshots

Needs what the browser tests need (``tests/browser/jupyterlab.py``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from . import jupyterlab as lab

SHOTS = {   # notebook: [(explorer title, file name)]
    "07_sagan.ipynb": [("Where does a query look?", "07_attention_explorer.png"),
                       ("Singular values of every weight", "07_spectra_explorer.png")],
    "08_biggan.ipynb": [("The truncation trick", "08_truncation_explorer.png")],
    "10_stylegan_xl.ipynb": [("Class and truncation in W", "10_truncation_explorer.png")],
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=lab.ROOT / "docs" / "screenshots")
    parser.add_argument("--notebooks", nargs="*", default=list(SHOTS))
    args = parser.parse_args(argv)
    if lab.missing():
        raise SystemExit(f"cannot take screenshots: {lab.missing()}")
    args.out.mkdir(parents=True, exist_ok=True)
    for notebook in args.notebooks:          # one server and page per notebook: nothing left over between them
        with tempfile.TemporaryDirectory() as work, lab.lab_server([notebook], Path(work)) as (url, token), \
                lab.browser_page(height=1200) as page:   # JupyterLab's default width; tall enough for an explorer
            lab.run_all(page, url, token, notebook)
            for title, name in SHOTS[notebook]:
                box = lab.explorer(page, title)
                box.evaluate("b => b.scrollIntoView({block: 'center'})")   # clear of the status bar
                page.wait_for_timeout(1000)
                box.screenshot(path=str(args.out / name))
                print(f"wrote {args.out / name}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
