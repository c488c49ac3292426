"""Every chapter notebook executes in its smoke setting (papermill, one test per notebook, so -n 2 works)."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REQUIRED_PARAMETERS = ("SMOKE", "STEPS", "BATCH_SIZE", "DATASET", "DEVICE", "SEED")


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean_with_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    assert code.index(tagged[0]) <= 1, f"{path.name}: the parameters cell must come first"
    for name in REQUIRED_PARAMETERS:
        assert f"{name} " in tagged[0].source or f"{name}:" in tagged[0].source, f"{path.name}: no {name}"
    assert 'os.environ.get("GAN_COURSE_SMOKE")' in tagged[0].source, f"{path.name}: SMOKE must read GAN_COURSE_SMOKE"
    assert all(not c.outputs for c in code), f"{path.name} is committed with outputs; strip them"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    import papermill
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    monkeypatch.setenv("GAN_COURSE_BUILD", str(tmp_path / "build"))  # fresh runs: nothing to resume
    out = Path(__file__).parent.parent / "build" / "test-notebooks" / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(path), str(out), parameters={"SMOKE": True}, kernel_name="python3",
                                   cwd=str(path.parent), progress_bar=False, execution_timeout=600)
    except PapermillExecutionError as e:
        pytest.fail(f"{path.name}, cell {e.exec_count}: {e.ename}: {e.evalue}\n(executed copy: {out})",
                    pytrace=False)
    except CellTimeoutError as e:
        pytest.fail(f"{path.name}: a cell timed out: {e}", pytrace=False)
    executed = nbformat.read(out, as_version=4)
    warnings = printed_warnings(executed)
    assert not warnings, f"{path.name} prints warnings in smoke mode (executed copy: {out}):\n" + "\n".join(warnings)
    unmeasured = unmeasured_claims(executed)
    assert not unmeasured, f"{path.name}'s claims table names quantities it never recorded:\n" + "\n".join(unmeasured)


def printed_warnings(nb) -> list[str]:
    """Every line of a cell's stderr that reports a Python warning ("UserWarning: ...", "FutureWarning: ...")."""
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found += [f"cell {i}: {line.strip()}" for line in output.get("text", "").splitlines()
                          if re.search(r"\b\w*Warning: ", line)]
    return found


def unmeasured_claims(nb) -> list[str]:
    """Every claims-table row (``gan_course.claims.show``) that says a quantity was not recorded by the run."""
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/markdown", "") + output.get("text", "")
            found += [f"cell {i}: {line.strip()}" for line in text.splitlines() if "not measured in this run (no " in line]
    return found


def test_unmeasured_claims_are_found():
    from gan_course import claims

    outcomes = claims.check([claims.Claim("c", "paper", "a", ">", "b")], {"a": 1.0})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={
        "text/markdown": "\n".join(claims.markdown(claims.records(outcomes)))})]
    assert len(unmeasured_claims(nb)) == 1 and "no b" in unmeasured_claims(nb)[0]
    measured = claims.check([claims.Claim("c", "paper", "a", ">", "b")], {"a": 1.0, "b": 0.0})
    nb.cells[0].outputs[0]["data"]["text/markdown"] = "\n".join(claims.markdown(claims.records(measured)))
    assert unmeasured_claims(nb) == []


def test_printed_warnings_are_found():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text="a.py:3: UserWarning: careful\n"),
                           nbformat.v4.new_output("stream", name="stdout", text="UserWarning: printed, not warned\n"),
                           nbformat.v4.new_output("stream", name="stderr", text="100%|####| 3/3\n")]
    assert printed_warnings(nb) == ["cell 0: a.py:3: UserWarning: careful"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_copy_removes_every_solution(path, tmp_path):
    """Exercises are authored with nbgrader markers; the student copy keeps the checks and drops the answers."""
    from gan_course.run_notebooks import student_copy

    source = nbformat.read(path, as_version=4)
    solutions = [c for c in source.cells if "### BEGIN SOLUTION" in c.source]
    if path.stem.startswith("00_"):
        pytest.skip("the metrics primer has no graded exercises")
    assert len(solutions) >= 2, f"{path.name}: a chapter has at least two exercises"
    for cell in solutions:
        assert cell.source.count("### BEGIN SOLUTION") == cell.source.count("### END SOLUTION")
    student = nbformat.read(student_copy(path, tmp_path), as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text
    assert text.count("raise NotImplementedError") >= len(solutions)
    assert "check_" in text  # the checks stay for the students
