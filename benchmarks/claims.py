"""Check a chapter's claims over seeds: run its notebook once per seed (full setting), pool what each run
recorded, and check the chapter's ``CLAIMS`` on the pooled numbers.

    python benchmarks/claims.py --chapters 03 --seeds 0 1 2      # three full runs of 03, then its claims
    python benchmarks/claims.py --chapters 03 --collect          # only pool the runs already on disk

A claim compares recorded quantities of arms that differ only in what it claims (``gan_course.claims``). A single
notebook run is one seed; this script runs the notebook with ``SEED`` = each seed, each in its own build directory
(``build/seeds/<chapter>/seed<s>/``: its own checkpoints and results file), so the runs share nothing but the
code and the dataset cache. A quantity a run records as a list (a notebook that already runs several seeds itself,
like 01) is pooled element by element. The result, ``build/results/<chapter>.seeds.json``, holds each
quantity's values per seed and the claims table; ``benchmarks/run.py`` lists it in RESULTS.md under the chapter,
with the machine and date of each run. Nothing is estimated: a seed whose run failed is left out and named.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan_course import claims as claims_lib  # noqa: E402
from gan_course import paths  # noqa: E402


def chapter_claims(chapter: str) -> list:
    """The ``CLAIMS`` list of chapter ``NN_name``'s lab module, ``gan_course.lab.<name>`` (a clear error when there is
    no such chapter or it declares no claims yet)."""
    chapters = sorted(nb.stem for nb in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if chapter not in chapters:
        raise ValueError(f"Unknown chapter {chapter!r}. Valid choices: {', '.join(chapters)}.")
    lab = chapter[3:]
    try:
        module = importlib.import_module(f"gan_course.lab.{lab}")
    except ModuleNotFoundError:
        raise ValueError(f"{chapter} has no lab module (gan_course.lab.{lab}), so no CLAIMS to check") from None
    found = getattr(module, "CLAIMS", None)
    if not found:
        raise ValueError(f"gan_course.lab.{lab} declares no CLAIMS yet: nothing to check for {chapter}")
    return found


def seed_dir(chapter: str, seed: int, root: Path | None = None) -> Path:
    return (root or paths.build_dir()) / "seeds" / chapter / f"seed{seed}"


def run_seed(notebook: Path, seed: int, out: Path, smoke: bool = False) -> str:
    """Execute ``notebook`` with ``SEED = seed`` (full setting unless ``smoke``), building into ``out``."""
    from gan_course.run_notebooks import execute

    previous = os.environ.get("GAN_COURSE_BUILD")
    os.environ["GAN_COURSE_BUILD"] = str(out)
    try:
        execute(notebook, out, smoke=smoke, html=False, parameters={"SEED": seed})
        return "ok"
    except Exception as e:            # report it and go on with the next seed
        traceback.print_exc()
        return f"failed: {type(e).__name__}"
    finally:
        if previous is None:
            os.environ.pop("GAN_COURSE_BUILD", None)
        else:
            os.environ["GAN_COURSE_BUILD"] = previous


def pool(chapter: str, seeds, root: Path | None = None) -> tuple[dict, dict]:
    """``({quantity: [value per seed]}, {seed: run's metadata or why it is missing})`` from the seed runs on disk."""
    quantities: dict[str, list] = {}
    runs = {}
    for seed in seeds:
        path = seed_dir(chapter, seed, root) / "results" / f"{chapter}.json"
        if not path.exists():
            runs[seed] = "no results file (not run, or the run failed)"
            continue
        numbers = json.loads(path.read_text())
        runs[seed] = {k: numbers[k] for k in ("_machine", "_torch", "_load", "_recorded", "_commit") if k in numbers}
        for key, value in numbers.items():
            if key.startswith("_") or key == "claims":
                continue
            values = value if isinstance(value, list) else [value]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                quantities.setdefault(key, []).extend(values)
    return quantities, runs


def check_over_seeds(chapter: str, seeds, root: Path | None = None) -> dict:
    """Pool the seed runs of ``chapter``, check its claims and write ``<chapter>.seeds.json``; return its content."""
    declared = chapter_claims(chapter)
    quantities, runs = pool(chapter, seeds, root)
    outcomes = claims_lib.check(declared, quantities)
    report = {"chapter": chapter, "seeds": [s for s in seeds if isinstance(runs.get(s), dict)], "runs": runs,
              "quantities": {q: quantities[q] for c in declared for q in c.quantities() if q in quantities},
              "claims": claims_lib.records(outcomes), "_recorded": time.strftime("%Y-%m-%d %H:%M")}
    target = (root or paths.build_dir()) / "results" / f"{chapter}.seeds.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True))
    os.replace(tmp, target)
    print(claims_lib.report(outcomes))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", nargs="+", required=True, help="chapter numbers, e.g. 03 07")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--collect", action="store_true", help="only pool the seed runs already on disk")
    args = parser.parse_args(argv)
    notebooks = {nb.stem: nb for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    chosen = [name for name in notebooks if name[:2] in args.chapters]
    if not chosen:
        raise SystemExit(f"no chapter matches {args.chapters}; chapters: {', '.join(n[:2] for n in notebooks)}")
    status = 0
    for chapter in chosen:
        chapter_claims(chapter)                          # fail early when the chapter declares no claims
        if not args.collect:
            for seed in args.seeds:
                print(f"--> {chapter}, SEED = {seed}", flush=True)
                why = run_seed(notebooks[chapter], seed, seed_dir(chapter, seed))
                print(f"<-- {chapter}, SEED = {seed}: {why}", flush=True)
                status |= why != "ok"
        check_over_seeds(chapter, args.seeds)
    return status


if __name__ == "__main__":
    sys.exit(main())
