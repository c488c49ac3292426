"""The command-line trainer builds each notebook's main run: the same Run name, run configuration and weight shapes
as the run the notebook itself trained, so a checkpoint of one resumes in the other.

This reads the checkpoints that the notebooks' smoke pass of ``make test`` writes (nbval executes every notebook
with ``GAN_COURSE_BUILD=build/nbval``); ``make test`` runs this file after that pass with
``GAN_COURSE_NBVAL_BUILD`` pointing there. Alone, it needs that build: ``make test`` or
``GAN_COURSE_NBVAL_BUILD=build/nbval pytest tests/test_train_matches_notebooks.py`` after ``make smoke``-like runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from gan_course import train

BUILD = os.environ.get("GAN_COURSE_NBVAL_BUILD")
pytestmark = pytest.mark.skipif(not BUILD, reason="needs the notebooks' smoke build (GAN_COURSE_NBVAL_BUILD); "
                                                  "make test runs this after the notebook pass")


@pytest.mark.parametrize("chapter", list(train.CHAPTERS))
def test_the_command_line_builds_the_notebooks_main_run(chapter, tmp_path, monkeypatch):
    checkpoint = Path(BUILD) / "runs" / f"{chapter}-smoke" / "checkpoint.pt"
    assert checkpoint.exists(), f"the notebook's smoke run left no checkpoint at {checkpoint}"
    notebook = torch.load(checkpoint, map_location="cpu", weights_only=False)
    monkeypatch.setenv("GAN_COURSE_BUILD", str(tmp_path))
    job, _ = train.build(chapter, smoke=True, device="cpu")
    assert job.run.name == notebook["name"]
    assert json.loads(json.dumps(job.run.config)) == json.loads(json.dumps(notebook["config"]))
    mine = {k: {n: tuple(t.shape) for n, t in m.state_dict().items()} for k, m in job.run.models.items()}
    theirs = {k: {n: tuple(t.shape) for n, t in state.items()} for k, state in notebook["models"].items()}
    assert mine == theirs
    assert set(job.run.optimizers) == set(notebook["optimizers"])
