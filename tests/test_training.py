"""Run, Batches and EMA: checkpoints are atomic and complete, resuming reproduces an uninterrupted run."""

import math

import pytest
import torch
from torch import nn

from gan_course.data.base import TensorImageDataset
from gan_course.training import EMA, Batches, Run, TrainingDiverged, atomic_save


def _toy_dataset(n=64):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    return TensorImageDataset(images, torch.arange(n) % 4, classes=["a", "b", "c", "d"])


def _train(total, stop_at=None, name="toy", seed=0):
    """A tiny regression 'training' through the Run plumbing; returns (run, model)."""
    torch.manual_seed(seed)
    model = nn.Linear(16, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    run = Run(name, {"m": model}, {"m": opt}, config={"lr": 1e-2}, progress=False, live=False)
    batches = run.attach(batches=Batches(_toy_dataset(), 8, seed=seed))
    for step in run.steps(total):
        x, y = batches.next()
        noise = torch.randn(8, 1)  # consumes the global RNG: resume must restore it
        loss = ((model(x.flatten(1)) - y.float().unsqueeze(1) - 0.01 * noise) ** 2).mean()
        run.update("m", loss)
        run.log(loss=loss)
        if stop_at is not None and step + 1 == stop_at:
            run.save()
            break
    return run, model


def test_batches_are_seeded_cover_an_epoch_and_resume():
    ds = _toy_dataset(64)
    a = Batches(ds, 8, seed=3)
    seen = torch.cat([a.next()[1] for _ in range(8)])
    assert sorted(seen.tolist()) == sorted(ds.targets.tolist())  # one epoch visits every item once
    b = Batches(ds, 8, seed=3)
    for _ in range(5):
        b.next()
    c = Batches(ds, 8, seed=3)
    c.load_state_dict(b.state_dict())
    assert torch.equal(b.next()[0], c.next()[0])


def test_batches_reject_bad_sizes():
    with pytest.raises(ValueError, match="larger than the dataset"):
        Batches(_toy_dataset(4), 8)


def test_resumed_run_equals_uninterrupted_run(tmp_build):
    _, full = _train(20, name="full")
    _train(20, stop_at=7, name="interrupted")
    run, resumed = _train(20, name="interrupted")
    assert run.resumed and run.step == 20
    assert torch.allclose(full.weight, resumed.weight, atol=1e-6)
    assert len(run.history.values("loss")) == 20


def test_checkpoint_holds_everything(tmp_build):
    run, _ = _train(5, name="ckpt")
    state = torch.load(run.checkpoint_path, weights_only=True)
    assert {"models", "optimizers", "step", "history", "rng", "config", "attached"} <= set(state)
    assert state["step"] == 5 and "batches" in state["attached"]


def test_completed_run_does_not_train_again(tmp_build, capsys):
    _train(5, name="done")
    run, _ = _train(5, name="done")
    assert run.step == 5
    assert "Already trained" in capsys.readouterr().out


def test_changed_config_moves_old_checkpoint_aside(tmp_build):
    _train(3, name="cfg")
    model = nn.Linear(16, 1)
    run = Run("cfg", {"m": model}, {"m": torch.optim.SGD(model.parameters(), lr=0.1)}, config={"lr": 0.1},
              progress=False, live=False)
    assert run.step == 0 and not run.resumed
    kept = [p for p in (tmp_build / "runs").iterdir() if p.name.startswith("cfg.")]
    assert kept and (kept[0] / "checkpoint.pt").exists()


def test_nan_loss_raises_with_advice(tmp_build):
    model = nn.Linear(2, 1)
    run = Run("nan", {"m": model}, {"m": torch.optim.SGD(model.parameters(), lr=0.1)}, progress=False, live=False)
    for _ in run.steps(3):
        with pytest.raises(TrainingDiverged, match="learning rate"):
            run.log(loss_D=float("nan"))
        break


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.pt"
    atomic_save({"a": torch.ones(2)}, target)

    def broken_save(obj, f):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        atomic_save({"a": torch.zeros(2)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(2))


def test_ema_tracks_the_running_average():
    model = nn.Linear(1, 1, bias=False)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update()  # first update copies
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update()  # 0.5 * 1 + 0.5 * 3
    assert math.isclose(ema.module.weight.item(), 2.0, rel_tol=1e-6)
    assert "_source" not in dict(ema.named_modules())


def test_every_fires_on_multiples_and_last_step(tmp_build):
    model = nn.Linear(1, 1)
    run = Run("every", {"m": model}, {"m": torch.optim.SGD(model.parameters(), lr=0.1)}, progress=False, live=False)
    fired = [step for step in run.steps(7) if run.every(3)]
    assert fired == [2, 5, 6]


def test_update_rejects_unknown_optimizer(tmp_build):
    model = nn.Linear(1, 1)
    run = Run("u", {"m": model}, {"G": torch.optim.SGD(model.parameters(), lr=0.1)}, progress=False, live=False)
    with pytest.raises(ValueError, match="this run has: G"):
        run.update("D", model(torch.ones(1, 1)).sum())
