"""The committed notebooks: clean, with a parameters cell, exercises that a student copy strips.

Every notebook is *executed* in smoke mode by the second pass of ``make test`` (nbval, cell by cell, with the
checks of ``tests/nbval_checks.py``); the checks themselves are tested here."""

from pathlib import Path

import nbformat
import pytest
from nbval_checks import cell_problems, printed_warnings, unmeasured_claims

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


def test_unmeasured_claims_are_found():
    from gan_course import claims

    outcomes = claims.check([claims.Claim("c", "paper", "a", ">", "b")], {"a": 1.0})
    outputs = [nbformat.v4.new_output("display_data", data={
        "text/markdown": "\n".join(claims.markdown(claims.records(outcomes)))})]
    assert len(unmeasured_claims(outputs)) == 1 and "no b" in unmeasured_claims(outputs)[0]
    assert cell_problems(outputs) and "never recorded" in cell_problems(outputs)[0]
    measured = claims.check([claims.Claim("c", "paper", "a", ">", "b")], {"a": 1.0, "b": 0.0})
    outputs[0]["data"]["text/markdown"] = "\n".join(claims.markdown(claims.records(measured)))
    assert unmeasured_claims(outputs) == [] and cell_problems(outputs) == []


def test_printed_warnings_are_found():
    outputs = [nbformat.v4.new_output("stream", name="stderr", text="a.py:3: UserWarning: careful\n"),
               nbformat.v4.new_output("stream", name="stdout", text="UserWarning: printed, not warned\n"),
               nbformat.v4.new_output("stream", name="stderr", text="100%|####| 3/3\n")]
    assert printed_warnings(outputs) == ["a.py:3: UserWarning: careful"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_copy_removes_every_solution(path, tmp_path):
    """Exercises are authored with nbgrader markers; the student copy keeps the checks and drops the answers."""
    from gan_course.run_notebooks import student_copy

    source = nbformat.read(path, as_version=4)
    solutions = [c for c in source.cells if "### BEGIN SOLUTION" in c.source]
    assert len(solutions) >= 3, f"{path.name}: a chapter has at least three exercises"
    for cell in solutions:
        assert cell.source.count("### BEGIN SOLUTION") == cell.source.count("### END SOLUTION")
    student = nbformat.read(student_copy(path, tmp_path), as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text
    assert text.count("raise NotImplementedError") >= len(solutions)
    assert "check_" in text  # the checks stay for the students


def test_the_nbval_pass_fails_a_cell_that_warns(tmp_path):
    """make test's notebook pass (nbval with -p tests.nbval_checks) fails the cell that warns, and only that one."""
    import subprocess
    import sys

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import warnings\nwarnings.warn('careful')"),
                                         nbformat.v4.new_code_cell("print('fine')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "demo.ipynb")
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", "python3",
                           "-p", "tests.nbval_checks", "-p", "no:cacheprovider", "-q", str(tmp_path / "demo.ipynb")],
                          cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout and "UserWarning: careful" in done.stdout
