"""Training throughput of two commits, measured side by side: did a change slow a chapter's training loop?

    python benchmarks/compare_commits.py 06296f9                      # HEAD's working tree against commit 06296f9
    python benchmarks/compare_commits.py 06296f9 --chapters 07 09 --steps 300 --repeats 3
    python benchmarks/compare_commits.py 06296f9 --against c5c922f    # two commits, neither the working tree

For each chapter, each tree (the base commit, exported with ``git archive``, and this working tree or the commit
``--against``) runs the
chapter's notebook in its full setting up to the cell that computes the main run's throughput (the first cell
that assigns ``images_per_s``), with ``STEPS`` set to ``--steps``, and reports what that cell computed: the images
per second of the main training loop and its seconds (``train_time_s``, else ``run.elapsed``: the loop only; the
cells before it, data and classifiers, are not timed). The trees take turns in the order A B B A A B ... so that a machine that
drifts over the comparison (warming up, throttling) affects both alike; each execution gets a fresh build directory (no checkpoint resumed) and
each tree its own data cache. The medians and ranges over ``--repeats`` go to ``build/compare/<base>.json`` and,
with ``--out``, to a Markdown table.

Whole-notebook wall times are not comparable across commits that add or remove cells; the training loop is what
a refactoring of the step can slow. Measure on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT_CELL = re.compile(r"^\s*(?:\w+,\s*)?images_per_s\s+=", re.MULTILINE)   # where the main run's is computed
REPORT = ("import json as _json\n"
          "print('COMPARE ' + _json.dumps({'images_per_s': float(images_per_s), "
          "'train_s': float(globals().get('train_time_s', run.elapsed)), 'steps': int(run.step)}))")


def export(commit: str, target: Path) -> Path:
    """The tree of ``commit`` under ``target`` (``git archive``: tracked files only, no history)."""
    if not (target / "gan_course").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], check=True,
                                 capture_output=True).stdout
        with tempfile.TemporaryFile() as f:
            f.write(archive)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(target, filter="data")
    return target


def notebook_of(tree: Path, chapter: str) -> Path:
    found = sorted((tree / "notebooks").glob(f"{chapter}_*.ipynb"))
    if not found:
        raise SystemExit(f"no notebook for chapter {chapter!r} in {tree}; chapters are two digits, e.g. 07")
    return found[0]


def truncated(path: Path, target: Path) -> Path:
    """``path`` cut after the cell that computes the main run's throughput, plus a cell printing it as JSON."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and THROUGHPUT_CELL.search(c.source)),
                 None)
    if index is None:
        raise SystemExit(f"{path.name} has no cell computing the main run's images_per_s: nothing to compare")
    nb.cells = nb.cells[:index + 1] + [nbformat.v4.new_code_cell(REPORT)]
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def measure(tree: Path, chapter: str, steps: int, work: Path, label: str, parameters: dict | None = None) -> dict:
    """Execute ``tree``'s chapter up to its throughput cell in a fresh build directory; return its numbers."""
    import papermill

    nb = truncated(notebook_of(tree, chapter), work / label / f"{chapter}.ipynb")
    build = Path(tempfile.mkdtemp(prefix=f"{label}-{chapter}-", dir=work))
    env = {"PYTHONPATH": str(tree), "GAN_COURSE_BUILD": str(build), "GAN_COURSE_CACHE": str(work / label / "cache")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)                               # the kernel inherits the environment
    try:
        out = nb.with_name(f"{chapter}-executed.ipynb")
        papermill.execute_notebook(str(nb), str(out), parameters={"SMOKE": False, "STEPS": steps, **(parameters or {})},
                                   kernel_name="python3", cwd=str(tree / "notebooks"), progress_bar=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    import nbformat

    text = "".join(o.get("text", "") for o in nbformat.read(out, as_version=4).cells[-1].outputs)
    line = next(line for line in text.splitlines() if line.startswith("COMPARE "))
    return json.loads(line[len("COMPARE "):])


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the commit to compare against (e.g. the one before a refactoring)")
    parser.add_argument("--chapters", nargs="+", default=["07", "08", "09"])
    parser.add_argument("--steps", type=int, default=300, help="STEPS of each main run (default 300)")
    parser.add_argument("--repeats", type=int, default=2, help="executions per tree and chapter (default 2)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="another notebook parameter for both trees (VALUE read as JSON, e.g. WRONG_STEPS=200)")
    parser.add_argument("--against", default=None, help="compare with this commit instead of the working tree")
    parser.add_argument("--out", type=Path, default=None, help="also write a Markdown table here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    parameters = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            parser.error(f"--param takes NAME=VALUE (a notebook parameter), got {item!r}")
        try:
            parameters[name] = json.loads(value)
        except json.JSONDecodeError:
            parameters[name] = value                    # a bare string

    base = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base], check=True,
                          capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.against or "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    work = ROOT / "build" / "compare"
    now = f"{head} (working tree)" if args.against is None else head
    trees = {base: export(base, work / f"tree-{base}"),
             now: ROOT if args.against is None else export(head, work / f"tree-{head}")}
    results = {}
    for chapter in args.chapters:
        runs = {label: [] for label in trees}
        for r in range(args.repeats):
            order = list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]   # ABBA: drift cancels
            for label, tree in order:
                numbers = measure(tree, chapter, args.steps, work, label.split()[0] + ("-wt" if tree == ROOT else ""),
                                  parameters)
                runs[label].append(numbers)
                print(f"{chapter} {label} #{r + 1}: {numbers['images_per_s']:.1f} images/s, "
                      f"{numbers['train_s']:.1f} s for {numbers['steps']} steps", flush=True)
        results[chapter] = {label: {"images_per_s": summary([n["images_per_s"] for n in ns]),
                                    "train_s": summary([n["train_s"] for n in ns])} for label, ns in runs.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    record = {"base": base, "head": now, "steps": args.steps, "parameters": parameters, "repeats": args.repeats, "chapters": results,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
              "load_average_1min_at_end": load, "date": time.strftime("%Y-%m-%d %H:%M")}
    (work / f"{base}.json").write_text(json.dumps(record, indent=1))
    lines = [f"Training throughput, {base} against {now}: each chapter's main run of {args.steps} "
             f"steps{' with ' + ', '.join(f'{k}={v}' for k, v in parameters.items()) if parameters else ''}, "
             f"{args.repeats} executions per tree, in ABBA order; median [min, max]. "
             f"{record['machine']}; load average {load:.2f} at the end; {record['date']}.", "",
             "| chapter | images/s at " + base + " | images/s now | now / before |", "|---|---|---|---|"]
    for chapter, by in results.items():
        before, now = (by[label]["images_per_s"] for label in trees)
        lines.append(f"| {chapter} | {before['median']:.1f} [{before['min']:.1f}, {before['max']:.1f}] | "
                     f"{now['median']:.1f} [{now['min']:.1f}, {now['max']:.1f}] | "
                     f"{now['median'] / before['median']:.3f} |")
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
