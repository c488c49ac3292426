# gan-course: two commands do everything on a fresh clone.
#   make course   create .venv if missing, execute every notebook (full setting) into build/ with HTML copies
#   make test     create .venv if missing, run the whole test suite (unit tests + every notebook in smoke mode)
# Other targets: make lab, make smoke, make lint, make benchmarks, make student, make assignments,
#   make grade SUBMISSIONS=<dir>, make grade-selftest, make clean.

PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
# torch and torchvision are installed first and pinned: on the course machines these exact releases are on disk.
# On your own machine you may override, e.g.  make test TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
NOTEBOOKS  := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
BUILD      := build
JOBS       ?= 2
STAMP      := $(VENV)/.gan-course-installed
# Real datasets (MNIST, facades, ...): a directory you point at, else the course's shared copies if present.
# (absolute: notebooks run with notebooks/ as their working directory)
GAN_COURSE_DATA ?= $(abspath $(firstword $(wildcard ../shared/datasets)))
export GAN_COURSE_DATA

.PHONY: env course smoke test lint unit notebooks-smoke lab benchmarks student assignments grade grade-selftest clean \
	browser-test screenshots

env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

## Execute every notebook in its default (full) setting into build/, with an HTML copy of each.
course: $(STAMP)
	@mkdir -p $(BUILD)
	$(PY) -m gan_course.run_notebooks --out $(BUILD) $(NOTEBOOKS)

## The same in smoke mode (seconds per notebook): a quick check that everything runs.
smoke: $(STAMP)
	@mkdir -p $(BUILD)/smoke
	$(PY) -m gan_course.run_notebooks --smoke --out $(BUILD)/smoke $(NOTEBOOKS)

## A real browser (not part of make test: CI has no Chromium): chapter 07 run in JupyterLab in headless Chromium,
## its sample clicked, the attention query and map checked. Needs Debian's chromium (apt install chromium) or
## GAN_COURSE_CHROMIUM=/path/to/chrome; installs Playwright into .venv. ~3 minutes.
browser-test: $(STAMP)
	$(PY) -m pip install --quiet playwright
	$(PY) -m pytest -p no:cacheprovider tests/browser

## Screenshots of the signature explorers at JupyterLab's default width into docs/screenshots/ (as browser-test).
screenshots: $(STAMP)
	$(PY) -m pip install --quiet playwright
	$(PY) -m tests.browser.screenshots --out docs/screenshots

## Lint (ruff, configured in pyproject.toml) over the library, tests, benchmarks and notebooks.
lint: $(STAMP)
	$(PY) -m ruff check gan_course tests benchmarks notebooks

## Lint, unit tests, then every notebook executed once in smoke mode, cell by cell, by nbval (with the checks of
## tests/nbval_checks.py: no printed warnings, no claims table naming a quantity the run never recorded), each
## notebook building into a fresh build/nbval/ so nothing resumes from an earlier run; then the command-line trainer
## is checked against the main runs those notebooks wrote (tests/test_train_matches_notebooks.py).
test: lint
	$(PY) -m pytest -n $(JOBS) --ignore=tests/browser tests
	rm -rf $(BUILD)/nbval
	GAN_COURSE_SMOKE=1 GAN_COURSE_BUILD=$(abspath $(BUILD)/nbval) $(PY) -m pytest -n $(JOBS) --dist loadscope \
		--nbval-lax --nbval-kernel-name python3 --nbval-sanitize-with tests/nbval_sanitize.cfg \
		-p tests.nbval_checks -p no:cacheprovider notebooks
	GAN_COURSE_NBVAL_BUILD=$(abspath $(BUILD)/nbval) $(PY) -m pytest -q -p no:cacheprovider \
		tests/test_train_matches_notebooks.py

## Student copies of the chapters (solutions and outputs removed, nbgrader markers) in build/student/.
student: $(STAMP)
	$(PY) -m gan_course.run_notebooks --student --out $(BUILD)/student $(NOTEBOOKS)

## An nbgrader course in build/course/ (nbgrader_config.py, source/<chapter>/) with every chapter released by
## `nbgrader generate_assignment` (nbgrader's defaults) into build/course/release/. No environment to activate.
assignments: $(STAMP)
	$(PY) -m gan_course.classroom assignments --out $(BUILD)/course $(NOTEBOOKS)

## Grade a folder of completed notebooks offline (no nbgrader database): one sub-folder per student or files named
## by student; each runs in smoke mode with a per-notebook time limit (TIMEOUT s) -> build/grades.csv and
## build/feedback/<student>.html.   make grade SUBMISSIONS=path/to/submissions
TIMEOUT ?= 600
grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "make grade needs SUBMISSIONS=<folder of submitted notebooks>"; exit 2; }
	$(PY) -m gan_course.classroom grade "$(SUBMISSIONS)" --out $(BUILD) --timeout $(TIMEOUT) --jobs $(JOBS)

## Every chapter through the whole grading path: released copy (0 points), solutions put back (10), one wrong answer
## (that exercise's points lost) and a garbage file (reported). ~10 minutes on 2 cores; make test does two chapters.
grade-selftest: $(STAMP)
	$(PY) -m gan_course.classroom selftest --out $(BUILD)/grade-selftest --jobs $(JOBS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

benchmarks: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(BUILD) .pytest_cache
