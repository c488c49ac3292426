"""The command-line trainer (gan_course.train): the notebook's parameters and main run, resume, clear errors, and the
mixed-precision path exercised on the CPU in bfloat16."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest
import torch

from gan_course import train

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture
def build(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_COURSE_BUILD", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_parameters_cells_hold_only_imports_and_assignments(path):
    """gan_course.train executes a notebook's parameters cell: it must be plain settings (papermill needs that too)."""
    source, smoke = train._cells(path.stem)
    for node in ast.parse(source).body:
        assert isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign)), (path.name, ast.dump(node)[:80])
    for node in ast.parse(smoke).body:          # the settings cell: `if SMOKE:` overrides and derived values
        assert isinstance(node, ast.Assign) or (isinstance(node, ast.If) and ast.unparse(node.test) == "SMOKE" and all(
            isinstance(n, ast.Assign) for n in node.body)), path.name


@pytest.mark.parametrize("chapter", list(train.CHAPTERS))
def test_help_lists_the_chapters_parameters_with_the_notebooks_defaults(chapter, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main([chapter, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for param in train.notebook_parameters(chapter).values():
        flag = "--amp" if param.name == "AMP" else param.flag
        assert flag in text, flag
        assert f"default {' '.join(param.source.split())}" in text, param.name


def test_parameters_are_the_notebooks_then_the_overrides_then_smoke():
    p = train.parameters("03_dcgan")
    assert p.STEPS == train.notebook_parameters("03_dcgan")["STEPS"].default and not p.SMOKE
    smoke = train.parameters("03_dcgan", smoke=True)
    assert smoke.SMOKE and smoke.STEPS == 20 and smoke.WIDTH == 8             # the notebook's smoke cell
    asked = train.parameters("03_dcgan", {"STEPS": 3, "LR": 1e-3}, smoke=True)
    assert asked.STEPS == 3 and asked.LR == 1e-3 and asked.WIDTH == 8         # explicit values win


def test_unknown_chapter_or_parameter_is_named_with_the_valid_choices(capsys):
    with pytest.raises(SystemExit):
        train.main(["99_nope"])
    err = capsys.readouterr().err
    assert "unknown chapter '99_nope'" in err and "03_dcgan" in err
    with pytest.raises(ValueError, match=r"no parameter 'LEARNING_RATE'\. Valid parameters: .*BATCH_SIZE"):
        train.parameters("03_dcgan", {"LEARNING_RATE": 1})
    with pytest.raises(SystemExit):
        train.main(["03_dcgan", "--learning-rate", "1"])
    assert "unrecognized arguments: --learning-rate" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Valid choices: False, True, 'bf16', 'fp16'"):
        train.train("03_dcgan", {"STEPS": 1, "AMP": "fp8"}, smoke=True, device="cpu")


def test_command_line_values_are_python_literals_or_strings():
    assert train._value("2e-4") == 2e-4 and train._value("(64, 64)") == (64, 64)
    assert train._value("None") is None and train._value("shapes") == "shapes" and train._value("True") is True


@pytest.mark.slow
@pytest.mark.parametrize("chapter", list(train.CHAPTERS))
def test_trains_resumes_and_records(chapter, build, capsys):
    first = train.train(chapter, {"STEPS": 2}, smoke=True, device="cpu")
    assert first["steps"] == 2 and not first["resumed"] and first["world_size"] == 1
    assert all(math.isfinite(v) for k, v in first.items() if k.startswith("last_"))
    again = train.train(chapter, {"STEPS": 3}, smoke=True, device="cpu")    # continues the checkpoint
    assert again["steps"] == 3 and again["resumed"]
    recorded = json.loads((build / "results" / f"{chapter}.train.json").read_text())
    assert recorded["steps"] == 3 and recorded["world_size"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("chapter", list(train.CHAPTERS))
def test_mixed_precision_path_runs_on_the_cpu_in_bfloat16(chapter, build):
    job, _ = train.build(chapter, {"STEPS": 2, "AMP": "bf16"}, smoke=True, device="cpu")
    assert job.run.amp and job.run.amp_dtype == torch.bfloat16
    seen = []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = torch.ones(2, 2) @ torch.ones(2, 2)
    assert x.dtype == torch.bfloat16                          # autocast is active on this CPU build
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(o.dtype) if torch.is_tensor(o) and isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) else None)
    try:
        logs = job.step()
    finally:
        hook.remove()
    assert torch.bfloat16 in seen, "no convolution or linear layer ran in bfloat16: the step ignored run.autocast()"
    assert all(math.isfinite(float(v)) for v in logs.values())


@pytest.mark.slow
def test_the_gpu_benchmark_script_runs_on_the_cpu(tmp_path):
    """benchmarks/gpu.py is meant for a GPU; on the CPU (bf16 for its AMP rows) it must still run and report."""
    import subprocess
    import sys

    out = tmp_path / "rows.json"
    result = subprocess.run([sys.executable, "benchmarks/gpu.py", "--device", "cpu", "--smoke", "--steps", "1",
                             "--warmup", "1", "--chapters", "03_dcgan", "--modes", "fp32", "amp", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["mode"], r["amp"]) for r in rows] == [("fp32", "off"), ("amp", "bfloat16")]
    assert all(r["images_per_s"] > 0 for r in rows) and "| 03_dcgan | 64 |" in result.stdout
