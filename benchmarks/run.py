"""Measure every chapter: run its full-mode notebook (or reuse its recorded run), then tabulate the numbers.

    python benchmarks/run.py                  # execute every chapter in its full setting, then write RESULTS.md
    python benchmarks/run.py --collect        # only collect build/results/*.json into RESULTS.md
    python benchmarks/run.py --chapters 01 03 # only these chapters

Each chapter's full-mode run ends with ``gan_course.paths.record_result(...)``, which writes
``build/results/<chapter>.json`` with its wall time, throughput and quality metrics (and the feature network
each metric used). A chapter whose checkpoint is complete is not retrained: the notebook loads it, evaluates
it and records again, so re-running this script is cheap.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan_course import paths  # noqa: E402
from gan_course.run_notebooks import execute  # noqa: E402


def collect() -> dict[str, dict]:
    results = {}
    for path in sorted(paths.results_dir().glob("*.json")):
        results[path.stem] = json.loads(path.read_text())
    return results


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_table(results: dict[str, dict], target: Path) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/run.py` from each chapter's full-mode run (`build/results/<chapter>.json`).",
        "Each row is one chapter; `machine` says where it was measured. Metric names say which feature network",
        "they used (e.g. `fid_glyphs_classifier`: FID in the feature space of the course's glyph classifier).",
        "",
    ]
    for chapter, numbers in results.items():
        machine, recorded = numbers.pop("_machine", "?"), numbers.pop("_recorded", "?")
        lines += [f"## {chapter}", "", f"measured on: {machine}, {recorded}", "", "| quantity | value |",
                  "|---|---|"]
        lines += [f"| {key} | {_format(value)} |" for key, value in sorted(numbers.items())]
        lines.append("")
    text = "\n".join(lines)
    target.write_text(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect", action="store_true", help="only collect recorded results")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter numbers, e.g. 01 03")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    if not args.collect:
        notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        if args.chapters:
            notebooks = [nb for nb in notebooks if nb.name[:2] in args.chapters]
        for nb in notebooks:
            print(f"--> {nb.name} (full setting)", flush=True)
            execute(nb, paths.build_dir(), smoke=False)
    print(write_table(collect(), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
