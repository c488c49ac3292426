"""Execute the course's notebooks headless (papermill) and export an HTML copy of each; or strip outputs.

    python -m gan_course.run_notebooks --out build notebooks/01_gan.ipynb ...     # full setting (make course)
    python -m gan_course.run_notebooks --smoke --out build/smoke notebooks/*.ipynb  # seconds each (make smoke)
    python -m gan_course.run_notebooks --strip notebooks/*.ipynb                    # before committing
    python -m gan_course.run_notebooks --student --out build/student notebooks/*.ipynb  # handouts (nbgrader)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat


def strip(path: Path) -> None:
    """Remove outputs, execution counts and widget state from a notebook, in place."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    for key in ("widgets", "papermill"):
        nb.metadata.pop(key, None)
    nbformat.write(nb, path)


def student_copy(path: Path, out_dir: Path) -> Path:
    """Write the student version of a notebook: nbgrader replaces every ``### BEGIN SOLUTION`` ...
    ``### END SOLUTION`` block by ``raise NotImplementedError()`` (hidden tests removed, outputs cleared)."""
    from nbconvert import NotebookExporter
    from traitlets.config import Config

    config = Config()
    config.NotebookExporter.preprocessors = [
        "nbgrader.preprocessors.ClearSolutions",
        "nbgrader.preprocessors.ClearHiddenTests",
        "nbgrader.preprocessors.ClearOutput",
    ]
    config.ClearSolutions.enforce_metadata = False
    config.ClearHiddenTests.enforce_metadata = False
    body, _ = NotebookExporter(config=config).from_filename(str(path))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    target.write_text(body, encoding="utf-8")
    return target


def execute(path: Path, out_dir: Path, smoke: bool, html: bool = True, cwd: Path | None = None,
            parameters: dict | None = None) -> Path:
    """Run ``path`` with papermill into ``out_dir`` (SMOKE and any other ``parameters`` injected), then write
    ``<name>.html`` beside it."""
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    papermill.execute_notebook(str(path), str(target), parameters={"SMOKE": smoke, **(parameters or {})},
                               kernel_name="python3", cwd=str(cwd or path.parent), progress_bar=False)
    if html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_filename(str(target))
        target.with_suffix(".html").write_text(body, encoding="utf-8")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build"))
    parser.add_argument("--smoke", action="store_true", help="run each notebook's smoke setting")
    parser.add_argument("--no-html", action="store_true")
    parser.add_argument("--strip", action="store_true", help="strip outputs in place instead of executing")
    parser.add_argument("--student", action="store_true", help="write student copies (solutions removed) to --out")
    args = parser.parse_args(argv)
    failures = []
    for path in args.notebooks:
        if not path.exists():
            parser.error(f"no such notebook: {path}")
        if args.strip:
            strip(path)
            continue
        if args.student:
            print(f"wrote {student_copy(path, args.out)}")
            continue
        start = time.monotonic()
        print(f"--> {path} ({'smoke' if args.smoke else 'full'} setting)", flush=True)
        try:
            target = execute(path, args.out, args.smoke, html=not args.no_html)
        except Exception as error:  # report every notebook, then fail
            failures.append(path)
            print(f"FAILED {path}: {type(error).__name__}: {str(error)[:2000]}", flush=True)
            continue
        print(f"    wrote {target} and its HTML in {time.monotonic() - start:.0f} s", flush=True)
    if failures:
        print(f"{len(failures)} notebook(s) failed: {', '.join(map(str, failures))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
