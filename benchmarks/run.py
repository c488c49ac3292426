"""Measure every chapter: run its full-mode notebook (or reuse its recorded run), then tabulate the numbers.

    python benchmarks/run.py                  # execute every chapter in its full setting, then write RESULTS.md
    python benchmarks/run.py --collect        # only collect build/results/NN_*.json into RESULTS.md
    python benchmarks/run.py --chapters 01 03 # only these chapters (with or without --collect)

Each chapter's full-mode run ends with ``gan_course.paths.record_result(...)``, which writes
``build/results/<NN_name>.json`` with its wall time, throughput and quality metrics (named after the feature
network each metric used, e.g. ``fid_glyphs_classifier``) and the machine. A chapter whose checkpoint is
complete is not retrained: the notebook loads it, evaluates it and records again, so re-running is cheap.

``RESULTS.md`` holds one row per chapter that has a results file, and nothing else: a chapter that was not run,
or whose run failed, is listed as not measured; a value a chapter did not record is shown as "—". Nothing is
filled in or estimated here. Under the summary, every number each chapter recorded is listed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan_course import paths  # noqa: E402
from gan_course.claims import markdown  # noqa: E402

CHAPTER = re.compile(r"^(?P<number>\d\d)_\w+$")


def _network_pattern() -> re.Pattern:
    """``<metric>_<network>`` keys: the feature network a metric used is the key's suffix (``fid_glyphs_classifier``,
    ``kid_fashion_mnist_classifier``, ``fid_random_inception``, ``fid_random_inception75``, ``fid_inception``)."""
    from gan_course.metrics.classifier import available_classifiers

    datasets = {name.replace("-", "_") for name in available_classifiers()} | {"fashion_mnist"}
    classifiers = "|".join(sorted((re.escape(d) for d in datasets), key=len, reverse=True))
    return re.compile(rf"^(?P<metric>[a-z_]+?)_(?P<network>(?:{classifiers})_classifier|random_inception\d*|inception)$")


NETWORK = _network_pattern()
SUMMARY = (("fid", "FID"), ("kid", "KID"), ("precision", "precision"), ("recall", "recall"),
           ("inception_score", "IS"))
MISSING = "—"


def machine() -> str:
    """This machine, as the header of RESULTS.md names it."""
    import torch

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores{gpu}, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def chapter_notebooks(chapters=None) -> list[Path]:
    notebooks = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if CHAPTER.match(p.stem))
    return [nb for nb in notebooks if not chapters or nb.stem[:2] in chapters]


def collect(chapters=None, results_dir: Path | None = None) -> dict[str, dict]:
    """``{chapter: numbers}`` from ``build/results/NN_name.json`` (only files named like a chapter)."""
    results = {}
    for path in sorted((results_dir or paths.results_dir()).glob("*.json")):
        if CHAPTER.match(path.stem) and (not chapters or path.stem[:2] in chapters):
            numbers = json.loads(path.read_text())
            numbers["_mtime"] = path.stat().st_mtime
            seeds = path.with_name(f"{path.stem}.seeds.json")       # benchmarks/claims.py: claims over seeds
            if seeds.exists():
                numbers["_seeds"] = json.loads(seeds.read_text())
            results[path.stem] = numbers
    return results


def _format(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _network(tag: str) -> str:
    """``glyphs_classifier`` -> "glyphs classifier", ``random_inception75`` -> "random Inception-v3, 75x75"."""
    if tag.startswith("random_inception"):
        size = tag.removeprefix("random_inception") or "299"
        return f"random Inception-v3, {size}x{size}"
    if tag == "inception":
        return "ImageNet Inception-v3"
    return tag.replace("_", " ").replace("fashion mnist", "fashion-mnist")


def metric_values(numbers: dict, metric: str) -> list[tuple[str, object]]:
    """``(network, value)`` for every recorded ``<metric>_<network>`` key, and ``<metric>`` itself (its network:
    the chapter's ``feature_network``, listed in its details, or "network not recorded")."""
    found = []
    for key, value in sorted(numbers.items()):
        m = NETWORK.match(key)
        if m and m["metric"] == metric:
            network = _network(m["network"])
            if m["network"].startswith("random_inception") and "rfid_n" in numbers:
                network += f", n={numbers['rfid_n']}"      # rFID is usually measured on fewer images
            found.append((network, value))
    if metric in numbers:
        found.append(("feature_network" if "feature_network" in numbers else "network not recorded",
                      numbers[metric]))
    return found


def _cell(values: list[tuple[str, object]]) -> str:
    return "; ".join(f"{_format(v)} ({net})" for net, v in values) if values else MISSING


def coverage(numbers: dict) -> str:
    covered = numbers.get("classes_covered")
    if covered is None:
        return MISSING
    if isinstance(covered, int) and "num_classes" in numbers:
        covered = f"{covered}/{numbers['num_classes']}"
    kl = numbers.get("class_kl")
    return _format(covered) + (f", KL {_format(kl)}" if kl is not None else "")


def wall_time(numbers: dict) -> str:
    wall = numbers.get("wall_time_s")
    train = numbers.get("train_time_s")
    if wall is None:
        return MISSING
    return f"{_format(wall)} s" + (f" (training {_format(train)} s)" if train is not None else "")


def _torch(numbers: dict) -> str:
    version = numbers.get("_torch", numbers.get("torch_version"))
    return f"torch {version}" if version is not None else "torch not recorded"


def _load(numbers: dict) -> str:
    """The 1-minute load average when the result was recorded, if the chapter recorded it (wall times on a
    shared machine are only comparable at similar load)."""
    load = numbers.get("_load", numbers.get("load_average_1min"))
    return f"; load average {_format(load)}" if load is not None else ""


def summary_row(chapter: str, numbers: dict, stale: bool = False) -> str:
    images_per_s = numbers.get("images_per_s", numbers.get("images_per_second"))
    torch_version = _torch(numbers)
    where = (f"{numbers.get('_machine', 'machine not recorded')}; {torch_version}{_load(numbers)}; "
             f"{numbers.get('_recorded', '?')}" + (f"; code {numbers['_commit']}" if "_commit" in numbers else ""))
    if stale:
        where += " (**stale**: not rewritten by the latest benchmark run)"
    n = numbers.get("n", numbers.get("fid_n", numbers.get("eval_n")))
    cells = [chapter, _format(numbers.get("dataset", MISSING)), _format(n) if n is not None else MISSING,
             *(_cell(metric_values(numbers, key)) for key, _ in SUMMARY),
             coverage(numbers), wall_time(numbers),
             _format(images_per_s) if images_per_s is not None else MISSING, where]
    return "| " + " | ".join(cells) + " |"


_RUN_FIELDS = (("_recorded", ""), ("_machine", ""), ("_load", "load "), ("_commit", "code "))


def write_table(results: dict[str, dict], target: Path, notebooks: list[Path] | None = None,
                runs: dict[str, str] | None = None, started: float | None = None) -> str:
    """Write RESULTS.md: header (collector's machine), summary (one row per chapter with results), details."""
    runs = runs or {}
    lines = [
        "# Benchmark results",
        "",
        f"Written by `benchmarks/run.py` on {time.strftime('%Y-%m-%d %H:%M')}; collected on: {machine()}.",
        "",
        "One row per chapter that has a results file (`build/results/<NN_name>.json`, written by the chapter's",
        "full-mode run through `gan_course.paths.record_result`); nothing here is estimated or filled in, and a",
        f"value a chapter did not record is shown as {MISSING}. Each metric names its feature network in",
        "parentheses (`glyphs classifier`: the course classifier of `gan_course.metrics`, 128-d features;",
        "`random Inception`: the random Inception-v3 of rFID). Values of different networks are not comparable,",
        "and neither are values measured with different `n` (see each chapter's details). Wall time is the",
        "whole notebook; images/s is what the chapter measured (training throughput for GAN chapters).",
        "The summary is the chapter's own run at its default budget; in the details, keys starting with",
        "`pretrained_` measure the longer run of the same notebook that `gan_course/pretrained/` ships (07, 08),",
        "evaluated by the notebook in the same way.",
        "",
        "| chapter | dataset | n | FID | KID | precision | recall | IS | classes covered (class KL) | wall time "
        "| images/s | measured on |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for chapter, numbers in results.items():
        stale = started is not None and numbers.get("_mtime", 0) < started
        lines.append(summary_row(chapter, numbers, stale))
    missing = [nb.stem for nb in (notebooks or []) if nb.stem not in results]
    if missing:
        lines += ["", "Not measured (no results file): " + ", ".join(
            f"`{name}`" + (f" ({runs[name]})" if name in runs else "") for name in missing) + "."]
    failed = {name: why for name, why in runs.items() if why != "ok" and name in results}
    if failed:
        lines += ["", "Runs that failed this time (their rows above are from an earlier run): " + ", ".join(
            f"`{name}` ({why})" for name, why in failed.items()) + "."]
    lines.append("")
    for chapter, numbers in results.items():
        lines += [f"## {chapter}", "",
                  f"measured on: {numbers.get('_machine', '?')}, {_torch(numbers)}{_load(numbers)}, "
                  f"{numbers.get('_recorded', '?')}"
                  + (f", code {numbers['_commit']}" if "_commit" in numbers else ""), "", "| quantity | value |",
                  "|---|---|"]
        lines += [f"| {key} | {_format(value)} |" for key, value in sorted(numbers.items())
                  if not key.startswith("_") and key != "claims"]
        lines.append("")
        if numbers.get("claims"):
            lines += [f"### {chapter}: claims", "",
                      "Each claim as the chapter declares it (`CLAIMS` in its lab module), checked on this run's "
                      "numbers: medians, [range] and the seeds on which it held.", ""]
            lines += markdown(numbers["claims"]) + [""]
        if numbers.get("_seeds"):
            over = numbers["_seeds"]
            where = "; ".join(f"seed {s}: " + (", ".join(f"{label}{run[k]}" for k, label in _RUN_FIELDS if k in run)
                                                if isinstance(run, dict) else run)
                              for s, run in over["runs"].items())
            lines += [f"### {chapter}: claims over seeds (`benchmarks/claims.py`)", "",
                      f"The notebook run once per seed ({', '.join(map(str, over['seeds']))}), each in its own build "
                      f"directory; medians, [range] and the seeds on which each claim held. Runs: {where}.", ""]
            lines += markdown(over["claims"]) + [""]
    text = "\n".join(lines)
    target.write_text(text)
    return text


def run_chapters(notebooks: list[Path]) -> dict[str, str]:
    """Execute each notebook in its full setting; ``{name: "ok" | "failed: ..."}`` (a failure does not stop the
    others, and its old results file, if any, is reported as stale)."""
    from gan_course.run_notebooks import execute

    status = {}
    for nb in notebooks:
        print(f"--> {nb.name} (full setting)", flush=True)
        t0 = time.time()
        try:
            execute(nb, paths.build_dir(), smoke=False)
            status[nb.stem] = "ok"
        except Exception as e:   # report it and go on with the next chapter
            traceback.print_exc()
            status[nb.stem] = f"failed: {type(e).__name__}"
        print(f"<-- {nb.name}: {status[nb.stem]} in {time.time() - t0:.0f} s", flush=True)
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect", action="store_true", help="only collect recorded results")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter numbers, e.g. 01 03")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    notebooks = chapter_notebooks(args.chapters)
    runs, started = {}, None
    if not args.collect:
        started = time.time()
        runs = run_chapters(notebooks)
    print(write_table(collect(args.chapters), args.out, notebooks, runs, started))
    return 0 if all(v == "ok" for v in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
