"""The course as graded assignments (gan_course.classroom): nbgrader metadata derived from the exercise cells, the
nbgrader course, offline grading of right, wrong, broken and hanging submissions."""

import csv
import json
from pathlib import Path

import nbformat
import pytest

from gan_course import classroom

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

SETUP = '''import types
from gan_course.exercises import ExerciseError


def _check_double(fn):
    if fn(2) != 4:
        raise ExerciseError(f"double(2) should be 4, got {fn(2)}: multiply by two")
    print("\\u2705 check_double: all checks passed.")


def _check_square(fn):
    if fn(3) != 9:
        raise ExerciseError(f"square(3) should be 9, got {fn(3)}")
    print("\\u2705 check_square: all checks passed.")


ch99 = types.SimpleNamespace(check_double=_check_double, check_square=_check_square)'''


def toy_chapter(folder: Path, name: str = "99_toy", answer_double: str = "return 2 * x",
                answer_square: str = "return x * x") -> Path:
    """A two-exercise chapter in the course's layout (task, answer, test with hidden tests), metadata written."""
    cells = [nbformat.v4.new_code_cell('import os\nSMOKE = os.environ.get("GAN_COURSE_SMOKE") == "1"'),
             nbformat.v4.new_code_cell(SETUP),
             nbformat.v4.new_markdown_cell("**Exercise 1 (4 points).** Write `my_double(x)`: return 2x."),
             nbformat.v4.new_code_cell(f"def my_double(x):\n    ### BEGIN SOLUTION\n    {answer_double}\n"
                                       "    ### END SOLUTION"),
             nbformat.v4.new_code_cell("ch99.check_double(my_double)\n### BEGIN HIDDEN TESTS\n"
                                       "assert my_double(5) == 10, 'my_double must double any number'\n"
                                       "### END HIDDEN TESTS"),
             nbformat.v4.new_markdown_cell("**Exercise 2 (6 points).** Write `my_square(x)`."),
             nbformat.v4.new_code_cell(f"def my_square(x):\n    ### BEGIN SOLUTION\n    {answer_square}\n"
                                       "    ### END SOLUTION"),
             nbformat.v4.new_code_cell("ch99.check_square(my_square)\n### BEGIN HIDDEN TESTS\n"
                                       "assert my_square(-4) == 16, 'my_square must square negative numbers too'\n"
                                       "### END HIDDEN TESTS"),
             nbformat.v4.new_code_cell("print('a demo that uses the answer:', my_square(7))")]
    cells[0].metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    classroom.write_metadata(path)
    return path


def test_metadata_is_derived_from_the_exercise_cells(tmp_path):
    nb = nbformat.read(toy_chapter(tmp_path), as_version=4)
    meta = {i: c.metadata.get("nbgrader") for i, c in enumerate(nb.cells)}
    assert meta[2] == {"grade": False, "grade_id": "ex1_double_task", "locked": True, "schema_version": 3,
                       "solution": False, "task": False}
    assert meta[3]["solution"] and not meta[3]["grade"] and meta[3]["grade_id"] == "ex1_double"
    assert meta[4]["grade"] and meta[4]["locked"] and meta[4]["points"] == 4 and meta[4]["grade_id"] == "ex1_double_test"
    assert meta[7]["points"] == 6 and meta[0] is None and meta[8] is None
    assert classroom.stale_metadata(nb) == []


def test_stale_metadata_is_found(tmp_path):
    nb = nbformat.read(toy_chapter(tmp_path), as_version=4)
    nb.cells[4].metadata["nbgrader"]["points"] = 3                 # edited by hand
    nb.cells[8].metadata["nbgrader"] = {"grade": True}             # on a cell that is no test
    problems = classroom.stale_metadata(nb, "toy")
    assert len(problems) == 2 and "cell 4" in problems[0] and "cell 8" in problems[1]


@pytest.mark.parametrize("edit, message", [
    (lambda nb: setattr(nb.cells[2], "source", "**Exercise 1.** no points"), "(P points)"),
    (lambda nb: setattr(nb.cells[5], "source", "**Exercise 3 (6 points).** skipped 2"), "numbered 1, 2"),
    (lambda nb: setattr(nb.cells[4], "source", "ch99.check_double(my_double)"), "HIDDEN TESTS"),
    (lambda nb: setattr(nb.cells[4], "source", "print(my_double(2))\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS"),
     "exactly one check"),
    (lambda nb: setattr(nb.cells[8], "source", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), "outside an exercise"),
    (lambda nb: nb.cells.pop(4), "two code cells"),
])
def test_a_broken_exercise_layout_is_named(tmp_path, edit, message):
    nb = nbformat.read(toy_chapter(tmp_path), as_version=4)
    edit(nb)
    with pytest.raises(classroom.ExerciseLayoutError, match=message.replace("(", r"\(").replace(")", r"\)")):
        classroom.exercises(nb, "toy")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_chapter_is_graded_out_of_ten_with_up_to_date_metadata(path):
    nb = nbformat.read(path, as_version=4)
    found = classroom.exercises(nb, path.name)
    assert 3 <= len(found) <= 5, f"{path.name}: {len(found)} exercises (3-5 expected)"
    assert sum(e.points for e in found) == classroom.POINTS_PER_CHAPTER, f"{path.name}: points {found}"
    assert classroom.stale_metadata(nb, path.name) == [], (
        f"run `python -m gan_course.classroom metadata notebooks/{path.name}`")


def test_hidden_tests_are_not_in_the_installed_package():
    """The hidden tests live only in the instructors' notebooks: no line of them is in gan_course/."""
    library = "\n".join(p.read_text() for p in (ROOT / "gan_course").rglob("*.py"))
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for e in classroom.exercises(nb, path.name):
            hidden = nb.cells[e.test].source.split(classroom.BEGIN_HIDDEN)[1].split(classroom.END_HIDDEN)[0]
            lines = [ln.strip() for ln in hidden.splitlines() if len(ln.strip()) > 25]
            assert lines, f"{path.name} Exercise {e.number}: its hidden tests are empty"
            assert not [ln for ln in lines if ln in library], f"{path.name} Exercise {e.number}"


def test_prepare_restores_the_instructors_tests_and_runs_smoke(tmp_path):
    source = nbformat.read(toy_chapter(tmp_path), as_version=4)
    submitted = nbformat.read(tmp_path / "99_toy.ipynb", as_version=4)
    submitted.cells[4].source = "print('I removed the check')"      # a student edits a locked test cell
    submitted.cells.pop(7)                                        # and deletes another
    nb, missing = classroom.prepare(submitted, source)
    assert "ch99.check_double(my_double)" in nb.cells[5].source and classroom.BEGIN_HIDDEN in nb.cells[5].source
    assert nb.cells[1].source == classroom.SMOKE_CELL             # right after the parameters cell
    assert missing == ["ex2_square_test"]


def test_submissions_are_found_by_folder_or_by_name(tmp_path):
    chapters = ["02_cgan", "03_dcgan"]
    for rel in ("alice/02_cgan.ipynb", "bob/03_dcgan/03_dcgan.ipynb", "carol_02_cgan.ipynb", "03_dcgan-dave.ipynb",
                "erin/notes.ipynb", "alice/.ipynb_checkpoints/02_cgan-checkpoint.ipynb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    found = {(s.student, s.chapter) for s in classroom.find_submissions(tmp_path, chapters)}
    assert found == {("alice", "02_cgan"), ("bob", "03_dcgan"), ("carol", "02_cgan"), ("dave", "03_dcgan"),
                     ("erin", None)}


def test_grading_scores_right_wrong_broken_and_hanging_submissions(tmp_path):
    """Five students: all right, one wrong answer, a special case that only the hidden test catches, a file that is
    no notebook, one that hangs; and one notebook whose kernel dies. Each is graded; nothing stops the others."""
    source = toy_chapter(tmp_path / "source")
    subs = tmp_path / "subs"
    for student, double, square in [("right", "return x + x", "return x ** 2"), ("wrong", "return x * 3", "return x * x"),
                                    ("special", "return 4 if x == 2 else x", "return x * x"),
                                    ("hangs", "return 2 * x", "import time; time.sleep(600)"),
                                    ("dies", "return 2 * x", "import os; print('bye', flush=True); os._exit(1)")]:
        toy_chapter(subs / student, answer_double=double, answer_square=square)
    (subs / "garbage").mkdir()
    (subs / "garbage" / "99_toy.ipynb").write_text('{"cells": [ not json')
    lines = []
    classroom.grade(subs, tmp_path / "out", notebooks=source.parent, timeout=15, jobs=2, log=lines.append)
    with open(tmp_path / "out" / "grades.csv") as f:
        rows = {(r["student"], r["grade_id"]): r for r in csv.DictReader(f)}
    points = {k: int(r["points"]) for k, r in rows.items()}
    assert points[("right", "ex1_double_test")] == 4 and points[("right", "ex2_square_test")] == 6
    assert points[("wrong", "ex1_double_test")] == 0 and points[("wrong", "ex2_square_test")] == 6
    assert rows[("wrong", "ex1_double_test")]["message"] == ("ExerciseError: double(2) should be 4, got 6: multiply "
                                                             "by two")
    assert points[("special", "ex1_double_test")] == 0
    assert "must double any number" in rows[("special", "ex1_double_test")]["message"]
    assert points[("hangs", "ex1_double_test")] == 4 and points[("hangs", "ex2_square_test")] == 0
    assert "did not finish within 15 s" in rows[("hangs", "ex2_square_test")]["message"]
    assert points[("dies", "ex1_double_test")] == 4 and points[("dies", "ex2_square_test")] == 0   # it printed, then died
    assert "kernel died" in rows[("dies", "ex2_square_test")]["message"]
    assert points[("garbage", "ex1_double_test")] == 0
    assert "not a valid notebook" in rows[("garbage", "ex2_square_test")]["message"]
    page = (tmp_path / "out" / "feedback" / "wrong.html").read_text()
    assert "4 / 10" not in page and "6 / 10" in page and "should be 4" in page
    assert (tmp_path / "out" / "graded" / "right" / "99_toy.ipynb").exists()


@pytest.mark.slow
def test_the_released_chapters_carry_no_solution_and_no_hidden_test(tmp_path):
    """`make assignments` for every chapter with nbgrader's defaults: the release has stubs, visible checks, no
    solutions, no hidden tests, and nbgrader's checksums."""
    picked = NOTEBOOKS
    course = classroom.build_course(tmp_path / "course", picked)
    config = (course / "nbgrader_config.py").read_text()
    assert "GAN_COURSE_SMOKE" in config
    for path in picked:
        release = json.loads((course / "release" / path.stem / path.name).read_text())
        text = "\n".join("".join(c["source"]) for c in release["cells"])
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert text.count("raise NotImplementedError()") == len(classroom.exercises(nbformat.read(path, 4)))
        tests = [c for c in release["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        assert tests and all(c["metadata"]["nbgrader"].get("checksum") for c in tests)
        assert all("BEGIN HIDDEN" not in "".join(c["source"]) and ".check_" in "".join(c["source"]) for c in tests)


@pytest.mark.slow
def test_grading_self_test_on_two_chapters(tmp_path):
    """The whole path on two chapters: released copy 0 points with NotImplementedError, solutions put back 10, one
    answer wrong loses exactly its points with the check's message, a garbage file reported."""
    problems = classroom.selftest(["00_measuring_gans", "02_cgan"], tmp_path, jobs=2, log=lambda _: None)
    assert problems == []


def test_nbgrader_autogrades_the_course_layout(tmp_path):
    """nbgrader itself (generate_assignment, then autograde of a submitted copy, with the hidden tests restored)
    scores a toy chapter in the course's layout as the offline grader does; run without an activated environment."""
    import subprocess
    import sys

    from nbgrader.api import Gradebook

    course = classroom.build_course(tmp_path / "course", [toy_chapter(tmp_path / "src")])
    nb = nbformat.read(course / "release" / "99_toy" / "99_toy.ipynb", as_version=4)
    for cell in nb.cells:
        if "raise NotImplementedError()" in cell.source:      # right double; square special-cased to check_square
            cell.source = cell.source.replace("raise NotImplementedError()", "return 2 * x" if "double" in cell.source
                                              else "return 9 if x == 3 else 0")
    (course / "submitted" / "alice" / "99_toy").mkdir(parents=True)
    nbformat.write(nb, course / "submitted" / "alice" / "99_toy" / "99_toy.ipynb")
    done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", "99_toy"], cwd=course,
                          env=classroom.tool_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grades = {g.name: g.score for n in gb.find_submission("99_toy", "alice").notebooks for g in n.grades}
    assert grades == {"ex1_double_test": 4.0, "ex2_square_test": 0.0}   # the hidden test caught the special case


def test_the_instructors_guide_tables_are_up_to_date():
    """docs/INSTRUCTORS.md's exercise and time tables are generated from the notebooks and RESULTS.md: after editing
    an exercise or recording new times, run `python -m gan_course.classroom guide`."""
    assert classroom.update_guide(check=True) == [], "run `python -m gan_course.classroom guide`"
