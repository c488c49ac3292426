"""Nothing a learner trained is ever lost or stuck: each fault is injected and both the message (naming the file or
parameter, and the fix) and the data on disk (the earlier checkpoint byte-identical, no temporary files) are checked.

Faults: a NaN / inf loss or weight (rollback to the last good checkpoint, lowering the learning rate), a full disk,
a save killed with ``kill -9``, a checkpoint that does not fit the networks (shapes, optimiser hyper-parameters),
a damaged checkpoint, ``resume=False``, two config changes within one second, switching back to an earlier config.
"""

import errno
import re
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from gan_course.data.base import TensorImageDataset
from gan_course.files import DiskFullError, sha256
from gan_course.training import Batches, Run, TrainingDiverged


def _toy_dataset(n=64):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    return TensorImageDataset(images, torch.arange(n) % 4, classes=["a", "b", "c", "d"])


def _open(name="r", lr=1e-2, hidden=None, eps=1e-8, config=None, every=5, **kw):
    """A tiny regression 'model' (a linear layer, or two with ``hidden`` units) opened as a Run."""
    torch.manual_seed(0)
    model = nn.Linear(16, 1) if hidden is None else nn.Sequential(nn.Linear(16, hidden), nn.Linear(hidden, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=eps)
    run = Run(name, {"m": model}, {"m": opt}, config={"lr": lr, **(config or {})}, checkpoint_every=every,
              progress=False, live=False, **kw)
    batches = run.attach(batches=Batches(_toy_dataset(), 8, seed=0))
    return run, model, batches


def _train(run, model, batches, total, nan_at=None, after_step=None):
    """The notebooks' loop; ``nan_at``: the step whose loss (and so its update) is NaN. Returns the steps seen."""
    seen = []
    for step in run.steps(total):
        seen.append(step)
        x, y = batches.next()
        noise = torch.randn(8, 1)  # consumes the global RNG: a rollback must restore it
        loss = ((model(x.flatten(1)) - y.float().unsqueeze(1) - 0.01 * noise) ** 2).mean()
        if step == nan_at:
            loss = loss * float("nan")
        run.update("m", loss)
        run.log(loss=loss)
        if after_step is not None:
            after_step(step)
    return seen


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _temps(directory):
    return sorted(p.name for p in directory.glob(".*.tmp-*"))


def _asides(build, name, tag=""):
    pattern = rf"{name}\.\d{{8}}-\d{{6}}(-\d+)?{tag}"
    return sorted(p for p in (build / "runs").iterdir() if re.fullmatch(pattern, p.name))


# ---------------------------------------------------------------------- NaN: roll back to the last good checkpoint
def test_nan_rolls_back_and_rerunning_the_same_loop_equals_an_uninterrupted_run(tmp_build):
    run, model, batches = _open("nan")
    hashes = {}
    def remember(step):
        if step >= 10:
            hashes.setdefault(step, sha256(run.checkpoint_path))

    with pytest.raises(TrainingDiverged) as info:
        _train(run, model, batches, 20, nan_at=13, after_step=remember)
    message = str(info.value)
    assert "loss became nan at step 13" in message
    assert f"({run.checkpoint_path}, step 10) was restored into m, the optimisers and batches" in message
    assert "learning rates" in message and "continues from step 10" in message
    assert run.step == 10 and all(torch.isfinite(v).all() for v in model.state_dict().values())
    saved = torch.load(run.checkpoint_path, weights_only=True)
    assert all(torch.equal(v, saved["models"]["m"][k]) for k, v in model.state_dict().items())
    assert sha256(run.checkpoint_path) == hashes[10]  # the good checkpoint was not touched

    seen = _train(run, model, batches, 20)  # re-running the training cell: the same Run object
    _, reference, ref_batches = _open("reference")
    _train(_, reference, ref_batches, 20)
    assert seen[0] == 10 and run.step == 20
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in model.state_dict().items())
    assert run.history.steps("loss") == list(range(20))


def test_nan_then_a_new_run_object_resumes_from_the_last_good_checkpoint(tmp_build):
    run, model, batches = _open("nan2")
    with pytest.raises(TrainingDiverged):
        _train(run, model, batches, 20, nan_at=8)
    run2, model2, batches2 = _open("nan2")  # re-running the cell that builds the networks and the Run
    assert run2.resumed and run2.step == 5
    seen = _train(run2, model2, batches2, 20)
    _, reference, ref_batches = _open("reference")
    _train(_, reference, ref_batches, 20)
    assert seen[0] == 5
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in model2.state_dict().items())


def _quadratic(name, lr, every=4):
    """Gradient descent on loss = mean((w x)^2), x = 3: w <- (1 - 18 lr) w, so lr = 0.5 overflows to inf."""
    w = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        w.weight.fill_(1.0)
    run = Run(name, {"w": w}, {"w": torch.optim.SGD(w.parameters(), lr=lr)}, config={"lr": lr},
              checkpoint_every=every, progress=False, live=False)
    return run, w


def _descend(run, w, total):
    x = torch.full((4, 1), 3.0)
    for _ in run.steps(total):
        loss = (w(x) ** 2).mean()
        run.update("w", loss)
        run.log(loss=loss)


def test_a_lowered_learning_rate_continues_from_the_last_good_checkpoint(tmp_build, capsys):
    run, w = _quadratic("lr", lr=0.5)
    with pytest.raises(TrainingDiverged) as info:
        _descend(run, w, 60)
    k = int(re.search(r"loss became inf at step (\d+)", str(info.value)).group(1))
    good = k // 4 * 4
    assert run.step == good and torch.isfinite(w.weight).all()
    kept = sha256(run.checkpoint_path)
    with pytest.raises(TrainingDiverged, match=f"at step {k}:"):  # unchanged settings: the same divergence
        _descend(run, w, 60)

    run2, w2 = _quadratic("lr", lr=0.01)  # the learner halves (and more) LR and runs the notebook again
    assert run2.resumed and run2.step == good and sha256(run2.checkpoint_path) == kept
    assert run2.optimizers["w"].param_groups[0]["lr"] == 0.01
    assert [(c["what"], c["old"], c["new"], c["step"]) for c in run2.changes] == [
        ("config lr", 0.5, 0.01, good), ("opt w lr", 0.5, 0.01, good)]
    assert "config lr 0.5 -> 0.01" in capsys.readouterr().out
    loss_at_good = run2.history.values("loss")[-1]
    _descend(run2, w2, 60)
    assert run2.step == 60 and torch.isfinite(w2.weight).all()
    assert run2.history.steps("loss") == list(range(60)) and run2.history.values("loss")[-1] < loss_at_good
    saved = torch.load(run2.checkpoint_path, weights_only=True)
    assert saved["config"]["lr"] == 0.01 and saved["optimizers"]["w"]["param_groups"][0]["lr"] == 0.01
    assert saved["changes"] == run2.changes


def test_a_changed_learning_rate_on_a_finished_run_starts_a_new_run(tmp_build, capsys):
    run, w = _quadratic("fin", lr=0.01)
    _descend(run, w, 8)
    kept = sha256(run.checkpoint_path)
    run2, _ = _quadratic("fin", lr=0.02)
    out = capsys.readouterr().out
    assert run2.step == 0 and not run2.resumed
    assert "config lr 0.01 -> 0.02; opt w lr 0.01 -> 0.02" in out
    assert "learning rates may change only while a run is unfinished, and this one finished its 8 steps" in out
    (aside,) = _asides(tmp_build, "fin")
    assert sha256(aside / "checkpoint.pt") == kept


def test_nan_before_the_first_checkpoint_says_nothing_could_be_restored(tmp_build):
    run, model, batches = _open("early", every=100)
    with pytest.raises(TrainingDiverged) as info:
        _train(run, model, batches, 20, nan_at=2)
    message = str(info.value)
    assert "Nothing could be restored: no checkpoint had been written yet" in message
    assert "m.weight" in message and "restarts from step 0" in message and "learning rates" in message
    with pytest.raises(TrainingDiverged, match="cannot continue"):  # re-running the loop cannot help
        _train(run, model, batches, 20)
    assert not run.checkpoint_path.exists()


def test_non_finite_weights_are_never_checkpointed(tmp_build):
    run, model, batches = _open("weights")
    hashes = {}

    def corrupt(step):
        if step == 6:
            hashes["good"] = sha256(run.checkpoint_path)
        if step == 9:  # a bad update after the step's loss was logged
            with torch.no_grad():
                model.weight[0, 0] = float("inf")

    with pytest.raises(TrainingDiverged, match=r"m\.weight became non-finite") as info:
        _train(run, model, batches, 20, after_step=corrupt)
    assert "step 5) was restored" in str(info.value)
    assert sha256(run.checkpoint_path) == hashes["good"] and torch.isfinite(model.weight).all()


# ---------------------------------------------------------------------- full disk, killed saves
@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")])
def test_a_full_disk_names_the_checkpoint_and_keeps_the_previous_one(tmp_build, monkeypatch, error):
    run, model, batches = _open("disk")
    _train(run, model, batches, 5)
    kept = sha256(run.checkpoint_path)
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise error

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(DiskFullError) as info:
        _train(run, model, batches, 10)
    message = str(info.value)
    assert str(run.checkpoint_path) in message and "the disk is full" in message and "MiB free" in message
    assert "The previous copy is intact" in message and "Free some space" in message
    assert sha256(run.checkpoint_path) == kept and _temps(run.dir) == []

    monkeypatch.setattr(torch, "save", real_save)  # space freed: running the cell again saves what was trained
    _train(run, model, batches, 10)
    assert torch.load(run.checkpoint_path, weights_only=True)["step"] == 10


def test_a_save_killed_mid_write_leaves_the_old_checkpoint_and_no_temporary_file(tmp_build):
    run, model, batches = _open("killed")
    _train(run, model, batches, 5)
    kept = sha256(run.checkpoint_path)
    child = textwrap.dedent(f"""
        import os, sys, time, torch
        from gan_course import files
        def slow_fsync(fd):          # the large object is written; the disk is still flushing when the kill comes
            print("flushing", flush=True)
            time.sleep(60)
        files.os.fsync = slow_fsync
        files.atomic_save({{"weights": torch.zeros(4_000_000)}}, {str(run.checkpoint_path)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "flushing"
        (temp,) = run.dir.glob(".checkpoint.pt.tmp-*")
        assert temp.stat().st_size > 16_000_000  # the killed save had written the whole large object
    finally:
        proc.kill()  # kill -9
        proc.wait()
    assert sha256(run.checkpoint_path) == kept and _temps(run.dir) != []
    run2, _, _ = _open("killed")
    assert _temps(run2.dir) == [] and run2.resumed and run2.step == 5
    assert sha256(run2.checkpoint_path) == kept


# ---------------------------------------------------------------------- checkpoints that do not fit the networks
def test_other_tensor_shapes_move_the_run_aside_with_the_parameter_named(tmp_build, capsys):
    run, model, batches = _open("shapes", hidden=4)
    _train(run, model, batches, 5)
    kept = sha256(run.checkpoint_path)
    run2, model2, _ = _open("shapes", hidden=8)  # the width is missing from the config: the shapes tell
    out = capsys.readouterr().out
    assert "m.0.weight: checkpoint (4, 16) vs now (8, 16)" in out and "m.0.bias: checkpoint (4,) vs now (8,)" in out
    assert run2.step == 0 and not run2.resumed
    (aside,) = _asides(tmp_build, "shapes")
    assert f"moved to {aside}" in out and sha256(aside / "checkpoint.pt") == kept


def test_other_optimiser_hyper_parameters_move_the_run_aside(tmp_build, capsys):
    run, model, batches = _open("eps", eps=1e-8)
    _train(run, model, batches, 3)
    run2, _, _ = _open("eps", eps=1e-6)  # e.g. 08's ADAM_EPS, not in the config
    assert "opt m eps: checkpoint 1e-08 vs now 1e-06" in capsys.readouterr().out
    assert run2.step == 0 and run2.optimizers["m"].param_groups[0]["eps"] == 1e-6
    assert len(_asides(tmp_build, "eps")) == 1


def test_a_checkpoint_of_an_older_version_still_resumes(tmp_build):
    run, model, batches = _open("old")
    _train(run, model, batches, 3)
    state = torch.load(run.checkpoint_path, weights_only=True)
    for key in ("total", "changes", "optimizer_types"):
        del state[key]
    torch.save(state, run.checkpoint_path)
    run2, _, _ = _open("old")
    assert run2.resumed and run2.step == 3


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "not a checkpoint"])
def test_a_damaged_checkpoint_is_moved_aside_and_training_starts_afresh(tmp_build, capsys, damage):
    run, model, batches = _open("damaged")
    _train(run, model, batches, 3)
    data = run.checkpoint_path.read_bytes()
    if damage == "not a checkpoint":  # readable, but something else was saved under the checkpoint's name
        torch.save({"weights": model.state_dict()}, run.checkpoint_path)
    else:
        run.checkpoint_path.write_bytes({"empty": b"", "truncated": data[:len(data) // 2],
                                         "garbage": bytes(range(256)) * 8}[damage])
    kept = sha256(run.checkpoint_path)
    run2, model2, batches2 = _open("damaged")
    out = capsys.readouterr().out
    (aside,) = _asides(tmp_build, "damaged", tag="-damaged")
    assert f"The checkpoint {run.checkpoint_path} cannot be read" in out and f"moved to {aside}" in out
    assert sha256(aside / "checkpoint.pt") == kept
    assert run2.step == 0 and not run2.resumed
    _train(run2, model2, batches2, 3)
    assert _open("damaged")[0].resumed  # the fresh run, not the damaged one


# ---------------------------------------------------------------------- moving aside and back
def test_resume_false_moves_the_earlier_run_aside_instead_of_overwriting_it(tmp_build, capsys):
    run, model, batches = _open("again")
    _train(run, model, batches, 5)
    kept = sha256(run.checkpoint_path)
    run2, model2, batches2 = _open("again", resume=False)
    (aside,) = _asides(tmp_build, "again")
    assert f"resume=False: the earlier run in {run.dir} was moved to {aside}" in capsys.readouterr().out
    _train(run2, model2, batches2, 5)
    assert run2.step == 5 and sha256(aside / "checkpoint.pt") == kept


def test_two_config_changes_within_one_second_keep_every_run(tmp_build, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt, *args: "20261201-120000")  # the same second throughout
    for width in (1, 2, 3):
        run, model, batches = _open("quick", config={"width": width})
        _train(run, model, batches, 2)
    asides = _asides(tmp_build, "quick")
    assert [p.name for p in asides] == ["quick.20261201-120000", "quick.20261201-120000-2"]
    configs = [torch.load(p / "checkpoint.pt", weights_only=True)["config"]["width"] for p in asides]
    assert sorted(configs) == [1, 2]


def test_switching_back_to_an_earlier_config_resumes_the_run_moved_aside(tmp_build, capsys):
    run_a, model_a, batches_a = _open("switch", config={"z_dim": 8})
    _train(run_a, model_a, batches_a, 7)
    kept = sha256(run_a.checkpoint_path)
    run_b, model_b, batches_b = _open("switch", config={"z_dim": 16})
    _train(run_b, model_b, batches_b, 3)
    capsys.readouterr()

    run_a2, _, _ = _open("switch", config={"z_dim": 8})
    out = capsys.readouterr().out
    assert "config z_dim: checkpoint 16 vs now 8" in out and "matches this configuration" in out
    assert run_a2.resumed and run_a2.step == 7 and sha256(run_a2.checkpoint_path) == kept
    (aside,) = _asides(tmp_build, "switch")
    assert torch.load(aside / "checkpoint.pt", weights_only=True)["config"]["z_dim"] == 16


def test_switching_back_before_the_new_run_saved_anything_finds_the_earlier_run(tmp_build):
    run_a, model_a, batches_a = _open("back", config={"z_dim": 8})
    _train(run_a, model_a, batches_a, 3)
    _open("back", config={"z_dim": 16})  # opened, never trained
    run_a2, _, _ = _open("back", config={"z_dim": 8})
    assert run_a2.resumed and run_a2.step == 3 and _asides(tmp_build, "back") == []
