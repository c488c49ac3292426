"""The course as graded assignments: nbgrader metadata from the notebooks' own cells, an nbgrader course, and
offline grading with no gradebook database.

    python -m gan_course.classroom metadata notebooks/*.ipynb           # write each exercise's nbgrader metadata
    python -m gan_course.classroom metadata --check notebooks/*.ipynb   # fail if any is missing or stale (tests)
    python -m gan_course.classroom assignments --out build/course notebooks/*.ipynb   # make assignments
    python -m gan_course.classroom grade SUBMISSIONS --out build        # make grade SUBMISSIONS=...
    python -m gan_course.classroom selftest --out build/grade-selftest 02_cgan ...      # make grade-selftest
    python -m gan_course.classroom guide                                # docs/INSTRUCTORS.md's generated tables

An exercise is three cells (docs/DEVELOPING.md): the task, a Markdown cell opening ``**Exercise N (P points).**``;
the answer, a code cell with the learner's code between ``### BEGIN SOLUTION`` and ``### END SOLUTION``; the
test, the next code cell, calling a check from ``gan_course.exercises`` and then the hidden tests between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``. From these cells :func:`nbgrader_metadata` derives what
nbgrader reads: the task read-only, the answer a ``solution`` cell, the test a ``grade``d, locked cell worth P
points, each with a stable ``grade_id`` named after its exercise and check.

Grading (:func:`grade`) does what ``nbgrader autograde`` does, without its database: each submitted notebook gets
the instructor's task and test cells back (hidden tests included, whatever the student did to them), is run in
smoke mode in a fresh build directory with a time limit, and each test cell scores its points when it ran without
an error, else 0 with the first line of the error (the check's message). A submission that is not a notebook,
crashes its kernel or runs out of time is recorded with the reason; the others are graded all the same.
"""

from __future__ import annotations

import argparse
import csv
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

SCHEMA_VERSION = 3          # nbgrader 0.9's cell metadata schema
POINTS_PER_CHAPTER = 10
TASK = re.compile(r"\*\*Exercise (?P<number>\d+) \((?P<points>\d+) points?\)\.\*\*")
CHECK = re.compile(r"\bch\d\d\.(?P<check>check_\w+)\(")
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SMOKE_CELL = "SMOKE = True  # graded in smoke mode (gan_course.classroom)"


class ExerciseLayoutError(ValueError):
    """A notebook's exercise cells do not follow the layout nbgrader metadata is derived from."""


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: its number and points, the indices of its three cells, and the check it calls."""

    number: int
    points: int
    task: int
    answer: int
    test: int
    check: str

    @property
    def name(self) -> str:
        return f"ex{self.number}_{self.check.removeprefix('check_')}"

    @property
    def ids(self) -> dict[str, str]:
        return {"task": f"{self.name}_task", "answer": self.name, "test": f"{self.name}_test"}


def chapter_names(notebooks: Path = NOTEBOOKS) -> list[str]:
    return sorted(p.stem for p in notebooks.glob("[0-9][0-9]_*.ipynb"))


def exercises(nb, where: str = "the notebook") -> list[Exercise]:
    """The graded exercises of notebook ``nb`` (nbformat), checked against the layout of the module docstring;
    ``ExerciseLayoutError`` names the cell and what is wrong."""
    cells, found = nb.cells, []
    for i, cell in enumerate(cells):
        match = TASK.match(cell.source.lstrip()) if cell.cell_type == "markdown" else None
        if not match:
            if cell.cell_type == "markdown" and re.match(r"\s*\*\*Exercise \d", cell.source):
                raise ExerciseLayoutError(f"{where}, cell {i}: an exercise must open with '**Exercise N (P points).**' "
                                          f"(or '(1 point)'), found {cell.source.splitlines()[0][:60]!r}")
            continue
        number, points = int(match["number"]), int(match["points"])
        label = f"{where}, Exercise {number} (cell {i})"
        if number != len(found) + 1:
            raise ExerciseLayoutError(f"{label}: exercises are numbered 1, 2, ... in order; expected {len(found) + 1}")
        if i + 2 >= len(cells) or cells[i + 1].cell_type != "code" or cells[i + 2].cell_type != "code":
            raise ExerciseLayoutError(f"{label}: the task must be followed by two code cells, the answer and the test")
        answer, test = cells[i + 1].source, cells[i + 2].source
        if answer.count(BEGIN_SOLUTION) != 1 or answer.count(END_SOLUTION) != 1:
            raise ExerciseLayoutError(f"{label}: its answer cell (cell {i + 1}) needs one '{BEGIN_SOLUTION}' ... "
                                      f"'{END_SOLUTION}' region")
        if BEGIN_SOLUTION in test:
            raise ExerciseLayoutError(f"{label}: its test cell (cell {i + 2}) holds a solution region")
        checks = CHECK.findall(test)
        if len(checks) != 1:
            raise ExerciseLayoutError(f"{label}: its test cell (cell {i + 2}) must call exactly one check "
                                      f"chNN.check_...(...), found {len(checks)}")
        if test.count(BEGIN_HIDDEN) != 1 or test.count(END_HIDDEN) != 1 or test.index(BEGIN_HIDDEN) < test.index(
                checks[0]):
            raise ExerciseLayoutError(f"{label}: its test cell (cell {i + 2}) needs one '{BEGIN_HIDDEN}' ... "
                                      f"'{END_HIDDEN}' block after the visible check")
        found.append(Exercise(number, points, i, i + 1, i + 2, checks[0]))
    claimed = {e.answer for e in found}
    for i, cell in enumerate(cells):
        if BEGIN_SOLUTION in cell.source and i not in claimed:
            raise ExerciseLayoutError(f"{where}, cell {i}: a solution region outside an exercise's answer cell")
    names = [e.name for e in found]
    if len(set(names)) != len(names):
        raise ExerciseLayoutError(f"{where}: two exercises call the same check ({names}); grade_ids must be unique")
    return found


def nbgrader_metadata(nb, where: str = "the notebook") -> dict[int, dict]:
    """``{cell index: nbgrader metadata}`` for every cell nbgrader should know of (all others have none)."""
    def meta(grade_id, *, solution=False, grade=False, locked=False, points=None):
        m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
             "solution": solution, "task": False}
        if points is not None:
            m["points"] = points
        return m

    out = {}
    for e in exercises(nb, where):
        out[e.task] = meta(e.ids["task"], locked=True)
        out[e.answer] = meta(e.ids["answer"], solution=True)
        out[e.test] = meta(e.ids["test"], grade=True, locked=True, points=e.points)
    return out


def stale_metadata(nb, where: str = "the notebook") -> list[str]:
    """What differs between ``nb``'s nbgrader metadata and what its cells imply (empty: up to date)."""
    expected = nbgrader_metadata(nb, where)
    problems = []
    for i, cell in enumerate(nb.cells):
        have, want = cell.metadata.get("nbgrader"), expected.get(i)
        if have != want:
            problems.append(f"{where}, cell {i}: nbgrader metadata is {have} but its cells imply {want}")
    return problems


def write_metadata(path: Path) -> bool:
    """Bring ``path``'s nbgrader metadata up to date in place; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    expected = nbgrader_metadata(nb, path.name)
    changed = False
    for i, cell in enumerate(nb.cells):
        want = expected.get(i)
        if cell.metadata.get("nbgrader") != want:
            changed = True
            if want is None:
                cell.metadata.pop("nbgrader")
            else:
                cell.metadata["nbgrader"] = want
    if changed:
        nbformat.write(nb, path)
    return changed


# --- the nbgrader course ------------------------------------------------------------------------------------------
NBGRADER_CONFIG = '''\
"""nbgrader configuration of the gan-course assignments (written by `make assignments`)."""
import os

c = get_config()  # noqa: F821 - provided by nbgrader
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "gan-course"
c.CourseDirectory.assignments = {assignments!r}
# Autograding runs every chapter in smoke mode (seconds of training instead of minutes): the exercises' tests do
# not need a trained model. The notebooks read GAN_COURSE_SMOKE in their parameters cell; nbgrader's kernels
# inherit this process's environment. Remove this line to grade the full-length runs.
os.environ.setdefault("GAN_COURSE_SMOKE", "1")
c.ExecutePreprocessor.timeout = {timeout}
'''


def tool_env(**extra) -> dict:
    """The environment for nbgrader and kernels: this interpreter's bin directory first on PATH (nbgrader shells out
    to ``alembic``, which is only found there when the environment is not activated)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def build_course(out: Path, notebooks: list[Path], timeout: int = 600) -> Path:
    """An nbgrader course in ``out``: ``nbgrader_config.py``, ``source/<NN_name>/<NN_name>.ipynb`` (metadata checked
    up to date), then ``nbgrader generate_assignment`` for each chapter with nbgrader's default preprocessors, into
    ``release/<NN_name>/``. Returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        problems = stale_metadata(nb, path.name)
        if problems:
            raise ExerciseLayoutError(f"{path.name}'s nbgrader metadata is not up to date (run `python -m "
                                      f"gan_course.classroom metadata {path}`): {problems[0]}")
        target = out / "source" / path.stem
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / path.name)
        names.append(path.stem)
    (out / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(
        assignments={n: {"assignment_id": n} for n in names}, timeout=timeout))
    for name in names:
        done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "generate_assignment", name, "--force"],
                              cwd=out, env=tool_env(), capture_output=True, text=True)
        if done.returncode != 0 or not (out / "release" / name / f"{name}.ipynb").exists():
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{done.stdout}\n{done.stderr}")
    return out


# --- grading without a database -------------------------------------------------------------------------------------
@dataclass
class Submission:
    student: str
    chapter: str | None
    path: Path


@dataclass
class Outcome:
    """What grading one submission found: a row per exercise, and the reason when it could not be run whole."""

    submission: Submission
    rows: list[dict] = field(default_factory=list)
    problem: str | None = None
    executed: Path | None = None


def find_submissions(root: Path, chapters: list[str]) -> list[Submission]:
    """Every ``.ipynb`` under ``root``: one sub-folder per student (``alice/02_cgan.ipynb``, nbgrader's
    ``alice/02_cgan/02_cgan.ipynb``) or files named by student (``alice_02_cgan.ipynb``, ``02_cgan-alice.ipynb``).
    The chapter is the chapter name in the file name (None when there is none)."""
    if not root.is_dir():
        raise FileNotFoundError(f"no submissions folder {root} (make grade SUBMISSIONS=<folder of notebooks>)")
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):           # .ipynb_checkpoints, hidden files
            continue
        chapter = next((c for c in sorted(chapters, key=len, reverse=True) if c in path.stem), None)
        if len(rel.parts) > 1:
            student = rel.parts[0]
        else:
            student = (path.stem.replace(chapter, "") if chapter else path.stem).strip("_-. ") or path.stem
        found.append(Submission(student, chapter, path))
    return found


def _first_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text or "").strip()
    return text.splitlines()[0] if text else ""


def prepare(submitted, instructor) -> tuple[object, list[str]]:
    """The notebook to run for a submission: the instructor's task and test cells restored by ``grade_id`` (hidden
    tests back in), outputs cleared, ``SMOKE = True`` after the parameters cell. Returns it and the ids of test cells
    the submission no longer has."""
    theirs = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in instructor.cells
              if c.metadata.get("nbgrader", {}).get("locked")}
    seen = set()
    for cell in submitted.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in theirs:
            cell.source, cell.cell_type = theirs[grade_id].source, theirs[grade_id].cell_type
            cell.metadata["nbgrader"] = dict(theirs[grade_id].metadata["nbgrader"])
            seen.add(grade_id)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    missing = [g for g, c in theirs.items() if c.metadata["nbgrader"].get("grade") and g not in seen]
    params = next((i for i, c in enumerate(submitted.cells) if "parameters" in c.metadata.get("tags", [])), -1)
    submitted.cells.insert(params + 1, nbformat.v4.new_code_cell(SMOKE_CELL))
    return submitted, missing


def score(executed, instructor, missing: list[str], problem: str | None) -> list[dict]:
    """A row per test cell of ``instructor``: its points if its cell ran without an error, else 0 and why."""
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in executed.cells}
    rows = []
    for cell in instructor.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        grade_id, points = meta["grade_id"], meta.get("points", 0)
        ran = cells.get(grade_id)
        if grade_id in missing or ran is None:
            got, message = 0, "the test cell was deleted from the submission"
        elif ran.get("execution_count") is None and not ran.get("outputs"):
            got, message = 0, f"not run: {problem or 'the notebook stopped before this cell'}"
        else:
            errors = [o for o in ran.outputs if o.output_type == "error"]
            if errors and errors[0].ename in ("KeyboardInterrupt", "NotFinished") and problem:
                got, message = 0, f"not finished: {problem}"
            elif errors:
                got = 0
                message = f"{errors[0].ename}: {_first_line(errors[0].evalue)}"
            else:
                got = points
                printed = "".join(o.get("text", "") for o in ran.outputs if o.output_type == "stream")
                message = _first_line(printed) or "passed"
        rows.append({"grade_id": grade_id, "points": got, "max_points": points, "message": message})
    return rows


def _run_child(src: Path, dst: Path, timeout: float) -> int:
    """(In a child process.) Execute ``src`` into ``dst`` within ``timeout`` seconds in all, errors allowed; on a
    timeout or a dead kernel write what ran, and the reason to ``dst.with_suffix('.problem')``."""
    from nbclient import NotebookClient

    nb = nbformat.read(src, as_version=4)
    deadline = time.monotonic() + timeout
    running = {"cell": None}                # the cell being executed: the one to blame if the kernel dies

    def started(cell, cell_index, **_):
        running["cell"] = cell_index

    def finished(cell, cell_index, **_):
        running["cell"] = None

    client = NotebookClient(nb, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(
        src.parent)}}, timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        on_cell_start=started, on_cell_executed=finished)

    def theirs(i):       # the cell's number in the submission (before the inserted SMOKE cell)
        inserted = next((j for j, c in enumerate(nb.cells) if c.source == SMOKE_CELL), len(nb.cells))
        return i if i is None or i < inserted else i - 1

    problem = None
    try:
        client.execute()
    except Exception as error:            # CellTimeoutError, DeadKernelError, ...
        index = running["cell"]
        if index is None:
            index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                          and c.get("execution_count") is None and not c.get("outputs")), None)
        kind = type(error).__name__
        if "Timeout" in kind:
            problem = f"did not finish within {timeout:.0f} s (stopped in cell {theirs(index)})"
        elif "DeadKernel" in kind:
            problem = f"the kernel died (in cell {theirs(index)})"
        else:
            problem = f"{kind}: {_first_line(str(error))}"
        if index is not None:             # the cell did not finish, whatever it printed: it scores as stopped
            nb.cells[index].outputs.append(nbformat.v4.new_output(
                "error", ename="NotFinished", evalue=problem, traceback=[]))
    interrupted = next((i for i, c in enumerate(nb.cells) if any(
        o.output_type == "error" and o.ename == "KeyboardInterrupt" for o in c.get("outputs", []))), None)
    if problem is None and interrupted is not None:   # nbclient interrupts a cell past its time and goes on
        problem = f"did not finish within {timeout:.0f} s (stopped in cell {theirs(interrupted)})"
    nbformat.write(nb, dst)
    if problem:
        dst.with_suffix(".problem").write_text(problem)
    return 0


def grade_one(sub: Submission, instructor, out: Path, timeout: float, threads: int | None = None) -> Outcome:
    """Grade one submission (see the module docstring); the executed notebook goes to ``out/graded/``. ``threads``:
    torch's CPU threads in its kernel (``$OMP_NUM_THREADS`` when set), so that notebooks graded side by side do not
    oversubscribe the cores."""
    outcome = Outcome(sub)
    try:
        submitted = nbformat.read(sub.path, as_version=4)
    except Exception as error:
        outcome.problem = f"not a valid notebook ({type(error).__name__}: {_first_line(str(error))[:200]})"
    if outcome.problem is None:
        nb, missing = prepare(submitted, instructor)
        graded = out / "graded" / sub.student
        graded.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="gan-course-grade-") as work:
            work = Path(work)
            src, dst = work / f"{sub.chapter}.ipynb", work / f"{sub.chapter}.executed.ipynb"
            nbformat.write(nb, src)
            env = tool_env(GAN_COURSE_SMOKE="1", GAN_COURSE_BUILD=work / "build")
            if threads and "OMP_NUM_THREADS" not in os.environ:
                env["OMP_NUM_THREADS"] = str(threads)
            try:
                subprocess.run([sys.executable, "-m", "gan_course.classroom", "_run", str(src), str(dst),
                                str(timeout)], cwd=work, env=env, timeout=timeout + 120, capture_output=True)
            except subprocess.TimeoutExpired:
                outcome.problem = f"did not finish within {timeout:.0f} s"
            if dst.with_suffix(".problem").exists():
                outcome.problem = dst.with_suffix(".problem").read_text()
            if dst.exists():
                executed = nbformat.read(dst, as_version=4)
                outcome.executed = graded / f"{sub.chapter}.ipynb"
                shutil.copy2(dst, outcome.executed)
            else:
                executed = nb
                outcome.problem = outcome.problem or "the notebook could not be executed"
        outcome.rows = score(executed, instructor, missing, outcome.problem)
    else:
        outcome.rows = [{"grade_id": r["grade_id"], "points": 0, "max_points": r["max_points"],
                         "message": f"not graded: {outcome.problem}"}
                        for r in score(instructor, instructor, [], None)]
    return outcome


def grade(submissions: Path, out: Path, notebooks: Path = NOTEBOOKS, timeout: float = 600, jobs: int = 2,
          log=print) -> list[Outcome]:
    """Grade every notebook under ``submissions`` (:func:`find_submissions`) into ``out/grades.csv`` (student,
    chapter, grade_id, points, max_points, message) and ``out/feedback/<student>.html``."""
    chapters = chapter_names(notebooks)
    instructors = {c: nbformat.read(notebooks / f"{c}.ipynb", as_version=4) for c in chapters}
    for c, nb in instructors.items():
        problems = stale_metadata(nb, f"{c}.ipynb")
        if problems:
            raise ExerciseLayoutError(f"{c}.ipynb's nbgrader metadata is not up to date: {problems[0]}")
    subs = find_submissions(submissions, chapters)
    threads = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(subs))))
    if not subs:
        raise FileNotFoundError(f"no notebooks (*.ipynb) under {submissions}")

    def one(sub: Submission) -> Outcome:
        start = time.monotonic()
        if sub.chapter is None:
            outcome = Outcome(sub, problem="cannot tell which chapter it is: its name contains none of "
                                           + ", ".join(chapters))
        else:
            outcome = grade_one(sub, instructors[sub.chapter], out, timeout, threads)
        got = sum(r["points"] for r in outcome.rows)
        most = sum(r["max_points"] for r in outcome.rows)
        log(f"{sub.student} / {sub.chapter or sub.path.name}: {got}/{most}"
            f"{f' ({outcome.problem})' if outcome.problem else ''} in {time.monotonic() - start:.0f} s")
        return outcome

    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = list(pool.map(one, subs))
    write_grades(outcomes, out / "grades.csv")
    write_feedback(outcomes, out / "feedback")
    return outcomes


GRADE_COLUMNS = ("student", "chapter", "grade_id", "points", "max_points", "message")


def write_grades(outcomes: list[Outcome], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=GRADE_COLUMNS)
        writer.writeheader()
        for o in outcomes:
            base = {"student": o.submission.student, "chapter": o.submission.chapter or o.submission.path.name}
            if not o.rows:
                writer.writerow({**base, "grade_id": "", "points": 0, "max_points": 0,
                                 "message": f"not graded: {o.problem}"})
            for row in o.rows:
                writer.writerow({**base, **row})
    return path


def write_feedback(outcomes: list[Outcome], folder: Path) -> list[Path]:
    """One HTML page per student: per chapter its points, and per exercise the check's whole message."""
    folder.mkdir(parents=True, exist_ok=True)
    students: dict[str, list[Outcome]] = {}
    for o in outcomes:
        students.setdefault(o.submission.student, []).append(o)
    written = []
    for student, theirs in sorted(students.items()):
        parts = [f"<h1>gan-course feedback: {html.escape(student)}</h1>"]
        for o in theirs:
            got, most = sum(r["points"] for r in o.rows), sum(r["max_points"] for r in o.rows)
            parts.append(f"<h2>{html.escape(o.submission.chapter or o.submission.path.name)}: {got} / {most}</h2>")
            if o.problem:
                parts.append(f"<p class='problem'>{html.escape(o.problem)}</p>")
            full = _full_messages(o)
            parts.append("<table><tr><th>exercise</th><th>points</th><th>the check says</th></tr>")
            for row in o.rows:
                message = full.get(row["grade_id"], row["message"])
                parts.append(f"<tr class='{'ok' if row['points'] == row['max_points'] else 'lost'}'>"
                             f"<td>{html.escape(row['grade_id'])}</td><td>{row['points']} / {row['max_points']}</td>"
                             f"<td><pre>{html.escape(message)}</pre></td></tr>")
            parts.append("</table>")
        page = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', student)}.html"
        page.write_text(FEEDBACK_PAGE.format(title=html.escape(student), body="\n".join(parts)), encoding="utf-8")
        written.append(page)
    return written


def _full_messages(outcome: Outcome) -> dict[str, str]:
    """The whole error message of every failed test cell of an executed submission."""
    if outcome.executed is None or not outcome.executed.exists():
        return {}
    found = {}
    for cell in nbformat.read(outcome.executed, as_version=4).cells:
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if errors and grade_id:
            found[grade_id] = re.sub(r"\x1b\[[0-9;]*m", "", f"{errors[0].ename}: {errors[0].evalue}")
    return found


FEEDBACK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Feedback: {title}</title><style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }} table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #ccc; padding: .3em .5em; vertical-align: top; text-align: left; }}
tr.ok td:nth-child(2) {{ color: #176617; }} tr.lost td:nth-child(2) {{ color: #a31515; font-weight: bold; }}
pre {{ white-space: pre-wrap; margin: 0; }} .problem {{ color: #a31515; }}</style></head><body>
{body}</body></html>"""


# --- the instructors' guide: the tables that must stay in step with the notebooks and RESULTS.md ----------------
GUIDE = Path(__file__).resolve().parent.parent / "docs" / "INSTRUCTORS.md"
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "RESULTS.md"


def exercise_table(notebooks: Path = NOTEBOOKS) -> str:
    """Markdown: every chapter's graded exercises (number, what the task asks, points, the check, its grade_id)."""
    lines = ["| chapter | exercise | points | check (visible; hidden tests in the notebook) | grade_id |",
             "|---|---|---|---|---|"]
    for chapter in chapter_names(notebooks):
        nb = nbformat.read(notebooks / f"{chapter}.ipynb", as_version=4)
        for e in exercises(nb, chapter):
            task = TASK.sub("", nb.cells[e.task].source.strip(), count=1).strip()
            first = re.split(r"(?<=[.:?])\s", " ".join(task.split()), maxsplit=1)[0]
            lines.append(f"| {chapter} | {e.number}. {first} | {e.points} | `{e.check}` | `{e.ids['test']}` |")
    return "\n".join(lines)


def _table_rows(text: str, heading: str) -> dict[str, list[str]]:
    """The rows (split into cells) of the first Markdown table after ``heading`` in ``text``, by first cell."""
    start = text.find(heading)
    rows = {}
    if start < 0:
        return rows
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
        elif rows and not line.startswith("|"):
            break
    return rows


def times_table(results: Path = RESULTS, notebooks: Path = NOTEBOOKS) -> str:
    """Markdown: each chapter's recorded CPU times (smoke and full), copied from benchmarks/RESULTS.md with where and
    when they were measured; a chapter with no recorded run says so."""
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    full = _table_rows(text, "| chapter | dataset |")
    smoke = _table_rows(text, "## Smoke-mode times")
    lines = ["| chapter | smoke run (CI) | full run (the default) | full run measured on |", "|---|---|---|---|"]
    for chapter in chapter_names(notebooks):
        f, sm = full.get(chapter), smoke.get(chapter)
        lines.append(f"| {chapter} | {sm[1] if sm else 'not recorded'} | {f[-3] if f else 'not recorded'} | "
                     f"{f[-1] if f else ''} |")
    return "\n".join(lines)


def guide_blocks(notebooks: Path = NOTEBOOKS, results: Path = RESULTS) -> dict[str, str]:
    return {"exercises": exercise_table(notebooks), "times": times_table(results, notebooks)}


def update_guide(path: Path = GUIDE, check: bool = False, **kwargs) -> list[str]:
    """Rewrite the generated blocks of the guide (between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``);
    with ``check``, only return the names of the blocks that are stale."""
    text = path.read_text(encoding="utf-8")
    stale = []
    for name, block in guide_blocks(**kwargs).items():
        pattern = re.compile(rf"(<!-- generated: {name} [^>]*-->\n)(.*?)(<!-- end generated -->)", re.S)
        found = pattern.search(text)
        if found is None:
            raise ValueError(f"{path.name} has no block '<!-- generated: {name} ... -->'")
        if found.group(2).strip() != block.strip():
            stale.append(name)
            text = text[:found.start(2)] + block + "\n" + text[found.end(2):]
    if stale and not check:
        path.write_text(text, encoding="utf-8")
    return stale


# --- the self-test: the course grades what it should --------------------------------------------------------------
WRONG_BY_ONE = '''
_answer_{name} = {name}


def {name}(*args, **kwargs):  # a deliberately wrong answer: the right one, off by one
    out = _answer_{name}(*args, **kwargs)
    return tuple(o + 1 for o in out) if isinstance(out, tuple) else out + 1
'''


def answer_function(source: str) -> str:
    """The name of the function an answer cell defines (the last ``def`` at the cell's top level)."""
    names = re.findall(r"^def (\w+)\(", source, flags=re.M)
    if not names:
        raise ExerciseLayoutError(f"an answer cell defines no function: {source[:80]!r}")
    return names[-1]


def selftest(chapters: list[str], out: Path, notebooks: Path = NOTEBOOKS, timeout: float = 600, jobs: int = 2,
             log=print) -> list[str]:
    """Build the nbgrader course for ``chapters``, then grade, per chapter, four submissions: the released copy
    (expected 0 points, NotImplementedError in every message), the released copy with the solutions put back
    (full marks), the same with the first exercise's answer deliberately wrong (exactly that exercise's points
    lost, the check's message in the CSV) and a file that is not a notebook (reported, the others graded).
    Returns the problems found (empty: all as expected)."""
    shutil.rmtree(out, ignore_errors=True)
    course = build_course(out / "course", [notebooks / f"{c}.ipynb" for c in chapters], timeout=int(timeout))
    subs = out / "submissions"
    for chapter in chapters:
        source = nbformat.read(notebooks / f"{chapter}.ipynb", as_version=4)
        answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                   if c.metadata.get("nbgrader", {}).get("solution")}
        release = course / "release" / chapter / f"{chapter}.ipynb"
        for student in ("released", "solved", "one_wrong"):
            nb = nbformat.read(release, as_version=4)
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if student != "released" and grade_id in answers:
                    cell.source = answers[grade_id]
                    if student == "one_wrong" and grade_id == exercises(source)[0].name:
                        cell.source += "\n" + WRONG_BY_ONE.format(name=answer_function(cell.source))
            (subs / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, subs / student / f"{chapter}.ipynb")
        (subs / "garbage").mkdir(parents=True, exist_ok=True)
        (subs / "garbage" / f"{chapter}.ipynb").write_text('{"cells": [ this is not JSON')
    outcomes = grade(subs, out, notebooks, timeout=timeout, jobs=jobs, log=log)
    problems = []
    with open(out / "grades.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for chapter in chapters:
        first = exercises(nbformat.read(notebooks / f"{chapter}.ipynb", as_version=4))[0]
        for student in ("released", "solved", "one_wrong", "garbage"):
            mine = [r for r in rows if r["student"] == student and r["chapter"] == chapter]
            got = sum(int(r["points"]) for r in mine)
            if not mine:
                problems.append(f"{chapter}/{student}: no rows in grades.csv")
                continue
            if student == "released" and (got != 0 or not all("NotImplementedError" in r["message"] for r in mine)):
                problems.append(f"{chapter}/released: {got} points, messages {[r['message'] for r in mine]}")
            if student == "solved" and got != POINTS_PER_CHAPTER:
                problems.append(f"{chapter}/solved: {got} of {POINTS_PER_CHAPTER}: {[r['message'] for r in mine]}")
            if student == "one_wrong":
                lost = [r for r in mine if int(r["points"]) < int(r["max_points"])]
                if [r["grade_id"] for r in lost] != [first.ids["test"]] or not lost[0]["message"].startswith(
                        "ExerciseError") or got != POINTS_PER_CHAPTER - first.points:
                    problems.append(f"{chapter}/one_wrong: lost {[(r['grade_id'], r['message']) for r in lost]}")
            if student == "garbage" and not (got == 0 and all("not a valid notebook" in r["message"] for r in mine)):
                problems.append(f"{chapter}/garbage: {[r['message'] for r in mine]}")
    for o in outcomes:
        if o.problem and o.submission.student != "garbage":
            problems.append(f"{o.submission.chapter}/{o.submission.student}: {o.problem}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    meta = sub.add_parser("metadata", help="write (or --check) the nbgrader metadata of notebooks")
    meta.add_argument("notebooks", nargs="+", type=Path)
    meta.add_argument("--check", action="store_true", help="only report stale metadata (exit 1 if any)")
    course = sub.add_parser("assignments", help="an nbgrader course with every chapter released")
    course.add_argument("notebooks", nargs="+", type=Path)
    course.add_argument("--out", type=Path, default=Path("build/course"))
    grading = sub.add_parser("grade", help="grade a folder of submissions into grades.csv and feedback/")
    grading.add_argument("submissions", type=Path)
    grading.add_argument("--out", type=Path, default=Path("build"))
    grading.add_argument("--timeout", type=float, default=600, help="seconds per notebook (default 600)")
    grading.add_argument("--jobs", type=int, default=2, help="notebooks graded at once (default 2)")
    test = sub.add_parser("selftest", help="grade released, solved, one-wrong and garbage copies of chapters")
    test.add_argument("chapters", nargs="*")
    test.add_argument("--out", type=Path, default=Path("build/grade-selftest"))
    test.add_argument("--jobs", type=int, default=2)
    guide = sub.add_parser("guide", help="rewrite (or --check) the generated tables of docs/INSTRUCTORS.md")
    guide.add_argument("--check", action="store_true")
    run = sub.add_parser("_run")        # internal: one notebook in a child process
    run.add_argument("src", type=Path)
    run.add_argument("dst", type=Path)
    run.add_argument("timeout", type=float)
    args = parser.parse_args(argv)

    if args.command == "_run":
        return _run_child(args.src, args.dst, args.timeout)
    if args.command == "metadata":
        problems = []
        for path in args.notebooks:
            if args.check:
                problems += stale_metadata(nbformat.read(path, as_version=4), path.name)
            elif write_metadata(path):
                print(f"updated {path}")
        for p in problems:
            print(p)
        return 1 if problems else 0
    if args.command == "guide":
        stale = update_guide(check=args.check)
        print(("stale: " if args.check else "updated: ") + ", ".join(stale) if stale else "up to date")
        return 1 if stale and args.check else 0
    if args.command == "assignments":
        course = build_course(args.out, args.notebooks)
        print(f"nbgrader course in {course}: source/ and release/ for {len(args.notebooks)} chapter(s)")
        return 0
    if args.command == "grade":
        grade(args.submissions, args.out, timeout=args.timeout, jobs=args.jobs)
        print(f"wrote {args.out / 'grades.csv'} and {args.out / 'feedback'}/")
        return 0
    chapters = args.chapters or chapter_names()
    unknown = sorted(set(chapters) - set(chapter_names()))
    if unknown:
        parser.error(f"unknown chapter(s) {', '.join(unknown)}; valid choices: {', '.join(chapter_names())}")
    problems = selftest(chapters, args.out, jobs=args.jobs)
    for p in problems:
        print("PROBLEM", p)
    print("grading self-test:", "passed" if not problems else f"{len(problems)} problem(s)",
          f"({', '.join(chapters)}; grades in {args.out / 'grades.csv'})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
