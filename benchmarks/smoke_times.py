"""How long each notebook's smoke setting takes (the CI budget: each under 60 s on the course machine).

    python benchmarks/smoke_times.py                  # every notebook, one after the other
    python benchmarks/smoke_times.py --chapters 07 08

Each notebook is executed once in smoke mode with papermill (``gan_course.run_notebooks.execute``, no HTML), in a
fresh build directory, so nothing is resumed from an earlier run's checkpoints; the wall time of the whole
execution (kernel start included) and the 1-minute load average before and after it are written as the section
"Smoke-mode times" of ``benchmarks/RESULTS.md`` (replacing the previous one). Measure on an idle machine: the
times of a shared machine are not the notebooks'.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import chapter_notebooks, machine  # noqa: E402

BUDGET_S = 60
HEADING = "## Smoke-mode times (`benchmarks/smoke_times.py`)"


def time_notebook(notebook: Path) -> dict:
    from gan_course.run_notebooks import execute

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as build:
        previous = os.environ.get("GAN_COURSE_BUILD")
        os.environ["GAN_COURSE_BUILD"] = build
        start = time.perf_counter()
        try:
            execute(notebook, Path(build), smoke=True, html=False)
            status = "ok"
        except Exception as e:  # report it and go on
            status = f"failed: {type(e).__name__}"
        finally:
            if previous is None:
                os.environ.pop("GAN_COURSE_BUILD", None)
            else:
                os.environ["GAN_COURSE_BUILD"] = previous
        wall = time.perf_counter() - start
    return {"notebook": notebook.stem, "wall_s": wall, "status": status, "load": (load_before, os.getloadavg()[0])}


def section(rows: list[dict], commit: str) -> str:
    lines = [HEADING, "",
             f"Each notebook executed once in smoke mode (papermill, kernel start included, a fresh build directory) on "
             f"{machine()}, {datetime.now():%Y-%m-%d %H:%M}, code {commit}. Budget: {BUDGET_S} s each.", "",
             "| notebook | wall time | within budget | load average before / after | status |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['notebook']} | {r['wall_s']:.1f} s | {'yes' if r['wall_s'] < BUDGET_S else 'NO'} | "
                     f"{r['load'][0]:.2f} / {r['load'][1]:.2f} | {r['status']} |")
    lines.append(f"| all | {sum(r['wall_s'] for r in rows):.1f} s | | | |")
    return "\n".join(lines) + "\n"


def write(text: str, target: Path) -> None:
    """Replace the section in ``target`` (or append it)."""
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    if HEADING in old:
        start = old.index(HEADING)
        nxt = old.find("\n## ", start + len(HEADING))
        old = old[:start] + (old[nxt + 1:] if nxt >= 0 else "")
    target.write_text(old.rstrip() + "\n\n" + text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", nargs="*", help="two-digit chapter numbers (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    notebooks = chapter_notebooks(args.chapters)
    if not notebooks:
        raise SystemExit(f"no notebook matches {args.chapters}")
    rows = []
    for nb in notebooks:
        rows.append(time_notebook(nb))
        r = rows[-1]
        print(f"{r['notebook']}: {r['wall_s']:.1f} s ({r['status']}; load {r['load'][0]:.2f} / {r['load'][1]:.2f})",
              flush=True)
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    write(section(rows, commit), args.out)
    print(f"wrote {args.out}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
