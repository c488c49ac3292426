"""A pytest plugin for the notebook pass of ``make test``: nbval executes every chapter in smoke mode, cell by cell,
and this plugin fails a cell that prints a Python warning or whose claims table names a quantity the run never
recorded (a key built at run time that the notebook forgot to store).

    GAN_COURSE_SMOKE=1 python -m pytest -p tests.nbval_checks --nbval-lax notebooks

The committed notebooks carry no outputs, so nbval has no reference outputs to compare and checks that every cell
runs; the checks below read what each cell printed in this run (nbval keeps it on the test item).
"""

from __future__ import annotations

import os
import re

import pytest

# pytest -n N executes N notebooks side by side: give each kernel its share of the cores (gan_course.notebook reads
# $OMP_NUM_THREADS), or their threads oversubscribe them and wait at every operation's barrier
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1)
                                                 // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1)))))


def printed_warnings(outputs) -> list[str]:
    """Every line of a cell's stderr that reports a Python warning ("UserWarning: ...", "FutureWarning: ...")."""
    return [line.strip() for output in outputs
            if output.get("output_type") == "stream" and output.get("name") == "stderr"
            for line in output.get("text", "").splitlines() if re.search(r"\b\w*Warning: ", line)]


def unmeasured_claims(outputs) -> list[str]:
    """Every claims-table row (``gan_course.claims.show``) that says a quantity was not recorded by the run."""
    found = []
    for output in outputs:
        text = output.get("data", {}).get("text/markdown", "") + output.get("text", "")
        found += [line.strip() for line in text.splitlines() if "not measured in this run (no " in line]
    return found


def cell_problems(outputs) -> list[str]:
    return ([f"prints a warning: {w}" for w in printed_warnings(outputs)]
            + [f"its claims table names a quantity the run never recorded: {c}" for c in unmeasured_claims(outputs)])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield  # nbval runs the cell (and fails the item itself when the cell raises)
    problems = cell_problems(getattr(item, "test_outputs", None) or [])
    if problems:
        pytest.fail(f"{item.nodeid}\n" + "\n".join(problems), pytrace=False)
    return result
