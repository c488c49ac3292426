"""Data-parallel training (gan_course.distributed) on the CPU with the gloo backend: N ranks x batch B take the step
one process takes on N x B, batch norm across ranks, rank 0 alone writes, checkpoints resume across world sizes, and
a rank that fails ends the run instead of hanging it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from gan_course import distributed
from gan_course.training import Batches, Run

ROOT = Path(__file__).resolve().parent.parent


class Points(torch.utils.data.Dataset):
    """32 fixed (x, y) pairs: a regression the tests train on."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 4, generator=g)
        self.y = self.x @ torch.randn(4, 1, generator=g) + 0.1 * torch.randn(32, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def get_batch(self, index):
        return self.x[index], self.y[index]


def make_model(kind: str) -> nn.Module:
    """``plain``, ``bn`` (batch norm between the layers) or ``sn`` (spectral norm on both layers: power iteration
    buffers u that every forward pass updates)."""
    torch.manual_seed(1)
    first, last = nn.Linear(4, 8), nn.Linear(8, 1)
    if kind == "sn":
        first, last = (nn.utils.parametrizations.spectral_norm(m) for m in (first, last))
    return nn.Sequential(first, *([nn.BatchNorm1d(8)] if kind == "bn" else []), nn.Tanh(), last)


def train_steps(model, batches, run, steps: int):
    opt = run.optimizers["net"]
    for _ in run.steps(steps):
        x, y = batches.next()
        loss = ((model(x) - y) ** 2).mean()
        run.update("net", loss)
        run.log(loss=loss)
    del opt


def _worker(rank: int, world: int, init_file: str, out: str, kind: str, batch: int, steps: int):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = distributed.sync_batch_norm(make_model(kind))
        if rank == 1:                          # a different start: the broadcast must overwrite it
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        run = Run("dp", {"net": model}, {"net": opt}, root=Path(out) / "run", progress=False, live=False)
        batches = Batches(Points(), batch, seed=3)
        train_steps(model, batches, run, steps)
        torch.save({"state": model.state_dict(), "loss": run.history.values("loss")},
                   Path(out) / f"rank{rank}.pt")
        distributed.shutdown(wait=True)            # leave together (a rank leaving early makes gloo abort)
    finally:
        distributed.shutdown()


def data_parallel(tmp_path: Path, world: int, kind: str, batch: int, steps: int) -> list[dict]:
    init = tmp_path / "init"
    mp.start_processes(_worker, args=(world, str(init), str(tmp_path), kind, batch, steps), nprocs=world,
                       start_method="spawn", join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]


def one_process(tmp_path: Path, kind: str, batch: int, steps: int) -> dict:
    model = make_model(kind)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = Run("one", {"net": model}, {"net": opt}, root=tmp_path / "one", progress=False, live=False)
    train_steps(model, Batches(Points(), batch, seed=3), run, steps)
    return {"state": model.state_dict(), "loss": run.history.values("loss")}


def test_batches_shards_are_the_one_process_batch():
    data = Points()
    one = Batches(data, 8, seed=5)
    shards = [Batches(data, 4, seed=5, rank=r, world_size=2) for r in range(2)]
    for _ in range(10):                                         # across epoch boundaries (32 items, 8 a step)
        whole = one.next()[0]
        assert torch.equal(torch.cat([s.next()[0] for s in shards]), whole)
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        Batches(data, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="x 4 ranks"):
        Batches(data, 16, rank=0, world_size=4)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "bn", "sn"], ids=["no-bn", "cross-replica-bn", "spectral-norm"])
def test_two_ranks_of_batch_b_take_the_step_of_one_process_of_batch_2b(tmp_path, kind):
    """Weights, batch-norm statistics and spectral norm's power-iteration vectors: every entry of the state dict."""
    ranks = data_parallel(tmp_path, 2, kind, batch=4, steps=5)
    alone = one_process(tmp_path, kind, batch=8, steps=5)
    assert set(alone["state"]) == set(ranks[0]["state"])
    for key, value in alone["state"].items():
        for r in ranks:
            assert torch.allclose(r["state"][key].float(), value.float(), atol=1e-5), (key, kind)
    # the logged loss is the mean over the ranks' shards: the whole batch's loss
    assert ranks[0]["loss"] == pytest.approx(alone["loss"], abs=1e-5)
    assert ranks[0]["loss"] == ranks[1]["loss"]


def test_without_cross_replica_statistics_batch_norm_differs(tmp_path):
    """The control of the test above: per-rank statistics are NOT the whole batch's (so the test can fail)."""
    model = make_model("bn")
    x = Points().x[:8]
    whole = model(x)
    halves = torch.cat([model(x[:4]), model(x[4:])])
    assert not torch.allclose(whole, halves, atol=1e-3)


SCRIPT = textwrap.dedent('''
    import os, sys, torch
    from gan_course import train
    import gan_course.files as files, gan_course.training as training
    writes = []
    real = training.atomic_save
    def counting(obj, path, *a, **k):
        writes.append(str(path))
        return real(obj, path, *a, **k)
    training.atomic_save = counting
    numbers = train.train("03_dcgan", {"STEPS": int(sys.argv[1]), "BATCH_SIZE": int(sys.argv[2]), "EVAL_EVERY": 0},
                          smoke=True, device="cpu")
    rank = int(os.environ.get("RANK", 0))
    with open(os.path.join(os.environ["GAN_COURSE_BUILD"], f"writes{rank}.txt"), "w") as f:
        f.write("\\n".join(writes))
    print("STEPS", numbers["steps"], "RESUMED", numbers["resumed"], "WORLD", numbers["world_size"])
    from gan_course import distributed
    distributed.shutdown(wait=True)
    ''')


def _launch(tmp_path: Path, nproc: int, steps: int, batch: int, timeout: float = 240, script: str = SCRIPT):
    (tmp_path / "script.py").write_text(script)
    env = dict(os.environ, GAN_COURSE_BUILD=str(tmp_path / "build"), OMP_NUM_THREADS="1",
               GAN_COURSE_DIST_TIMEOUT="20")
    (tmp_path / "build").mkdir(exist_ok=True)
    if nproc == 1:
        cmd = [sys.executable, str(tmp_path / "script.py"), str(steps), str(batch)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               str(tmp_path / "script.py"), str(steps), str(batch)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_torchrun_rank_zero_alone_writes_and_checkpoints_resume_across_world_sizes(tmp_path):
    first = _launch(tmp_path, 2, steps=3, batch=8)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "STEPS 3 RESUMED False WORLD 2" in first.stdout
    writes0 = (tmp_path / "build" / "writes0.txt").read_text().split()
    writes1 = (tmp_path / "build" / "writes1.txt").read_text().split()
    assert writes0 and all(w.endswith("checkpoint.pt") for w in writes0) and writes1 == []
    second = _launch(tmp_path, 1, steps=5, batch=8)           # one process continues the 2-process run
    assert second.returncode == 0, second.stderr[-3000:]
    assert "STEPS 5 RESUMED True WORLD 1" in second.stdout
    third = _launch(tmp_path, 2, steps=7, batch=8)             # and two continue the one-process run
    assert third.returncode == 0, third.stderr[-3000:]
    assert "STEPS 7 RESUMED True WORLD 2" in third.stdout
    state = torch.load(tmp_path / "build" / "runs" / "03_dcgan-smoke" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 7 and state["history"]["loss_D"]["steps"] == list(range(7))


FAILING = textwrap.dedent('''
    import os, sys, time, torch
    from gan_course import distributed
    distributed.init("cpu")
    if distributed.rank() == 1:
        if sys.argv[1] == "leaves":
            os._exit(0)                    # leaves without a word (as a crashed or killed rank does)
        time.sleep(600)                    # hangs (a deadlocked or stuck rank)
    t = torch.ones(1)
    torch.distributed.all_reduce(t)        # rank 0 waits for the other rank
    print("unreachable")
    ''')


@pytest.mark.slow
@pytest.mark.parametrize("how", ["leaves", "hangs"])
def test_a_rank_that_fails_ends_the_run_with_an_error_not_a_hang(tmp_path, how):
    """GAN_COURSE_DIST_TIMEOUT is 20 s here: a rank stuck for 10 minutes must not keep the run waiting for it."""
    (tmp_path / "script.py").write_text(FAILING)
    env = dict(os.environ, OMP_NUM_THREADS="1", GAN_COURSE_DIST_TIMEOUT="20")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(tmp_path / "script.py"), how], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=200)
    assert result.returncode != 0 and "unreachable" not in result.stdout
    assert "[rank0]" in result.stderr and ("Connection" in result.stderr or "imed out" in result.stderr
                                           or "imeout" in result.stderr), result.stderr[-2000:]
