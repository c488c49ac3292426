"""Training throughput in full precision, with mixed precision, and with mixed precision + torch.compile, per chapter,
on whatever device runs it (meant for a GPU; ``--device cpu`` checks the script itself).

    python benchmarks/gpu.py                           # every chapter the command-line trainer knows, on cuda
    python benchmarks/gpu.py --chapters 08_biggan --steps 50 --warmup 10
    python benchmarks/gpu.py --device cpu --smoke      # seconds: the script's own check (tests run this)
    python benchmarks/gpu.py --record                  # also add the table to benchmarks/RESULTS.md

Each measurement builds the chapter's main run exactly as ``python -m gan_course.train`` does (the notebook's
networks, Config and ``train_step``, at the notebook's default settings unless ``--set NAME=VALUE``), in a fresh
build directory (nothing resumes), runs ``--warmup`` iterations (for ``compile``: the compilation, timed apart),
then times ``--steps`` iterations with the device synchronised before and after. Reported: generated images/s,
the ratio to fp32, the compile time and the peak GPU memory (``torch.cuda.max_memory_allocated``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gan_course import train  # noqa: E402

MODES = {"fp32": (False, False), "amp": (True, False), "amp+compile": (True, True)}


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(chapter: str, mode: str, steps: int, warmup: int, device: str, smoke: bool, settings: dict) -> dict:
    amp, compiled = MODES[mode]
    if amp and torch.device(device).type == "cpu":
        amp = "bf16"                                  # the CPU's mixed precision (checks the path only)
    with tempfile.TemporaryDirectory(prefix="gan-course-gpu-") as build:
        os.environ["GAN_COURSE_BUILD"] = build
        job, p = train.build(chapter, {**settings, "AMP": amp, "STEPS": steps + warmup}, smoke=smoke, device=device)
        dev = job.run.device
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        step = torch.compile(job.step) if compiled else job.step
        start = time.perf_counter()
        for _ in range(warmup):
            step()
        _sync(dev)
        warm_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(dev)
        seconds = time.perf_counter() - start
        return dict(chapter=chapter, mode=mode, batch_size=job.batch_size, steps=steps,
                    images_per_s=round(steps * job.batch_size / seconds, 1), warmup_s=round(warm_s, 2),
                    amp=str(job.run.amp_dtype).replace("torch.", "") if job.run.amp else "off",
                    peak_memory_mib=round(torch.cuda.max_memory_allocated(dev) / 2**20) if dev.type == "cuda" else None)


def table(rows: list[dict]) -> str:
    lines = ["| chapter | batch | fp32 images/s | AMP images/s (x fp32) | AMP + compile images/s (x fp32) | "
             "compile time | peak memory (fp32 / AMP / AMP + compile) |", "|---|---|---|---|---|---|---|"]
    for chapter in dict.fromkeys(r["chapter"] for r in rows):
        by = {r["mode"]: r for r in rows if r["chapter"] == chapter}
        base = by.get("fp32", {}).get("images_per_s")

        def cell(mode, by=by, base=base):
            r = by.get(mode)
            if r is None:
                return "—"
            ratio = f" ({r['images_per_s'] / base:.2f}x)" if base and mode != "fp32" else ""
            return f"{r['images_per_s']}{ratio}"

        memory = " / ".join(f"{by[m]['peak_memory_mib']} MiB" if by.get(m, {}).get("peak_memory_mib") is not None
                            else "—" for m in MODES)
        compile_s = by.get("amp+compile", {}).get("warmup_s")
        batch = next(iter(by.values()))["batch_size"]
        lines.append(f"| {chapter} | {batch} | {cell('fp32')} | {cell('amp')} | {cell('amp+compile')} | "
                     f"{'—' if compile_s is None else f'{compile_s} s (warm-up)'} | {memory} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="+", default=list(train.CHAPTERS), choices=list(train.CHAPTERS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="the notebooks' smoke settings")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="a notebook parameter")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    settings = {}
    for item in args.set:
        name, _, value = item.partition("=")
        try:
            settings[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[name] = value
    rows = []
    for chapter in args.chapters:
        for mode in args.modes:
            row = measure(chapter, mode, args.steps, args.warmup, args.device, args.smoke, settings)
            print(json.dumps(row), flush=True)
            rows.append(row)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device.startswith("cuda") else \
        f"{platform.machine()} CPU, {os.cpu_count()} cores"
    text = (f"Training throughput by precision on {name} (`benchmarks/gpu.py`, torch {torch.__version__}, "
            f"{args.steps} timed steps after {args.warmup} warm-up steps, {time.strftime('%Y-%m-%d %H:%M')}"
            f"{', smoke settings' if args.smoke else ''}{', ' + ' '.join(args.set) if args.set else ''}):\n\n"
            + table(rows) + "\n")
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1))
    if args.record:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as f:
            f.write("\n## GPU throughput\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
