"""Training throughput against this machine's limit: images/s, FLOPs per step, achieved GFLOP/s and the fraction
of the fp32 peak measured in the same run, with the step's time split, for every chapter's main run at its
default settings, beside the PyTorch DCGAN example's training step at the same architecture and batch.

    python benchmarks/throughput.py                    # every chapter, then RESULTS.md gets the table
    python benchmarks/throughput.py --chapters 03_dcgan 07_sagan --steps 20 --no-record

The peak is the best of fp32 matrix products (2048 x 2048) and of a wide 3x3 convolution, timed here, now, with
torch's threads as the chapters use them. Each chapter's step is built by ``gan_course.train.build`` (the notebook's
main run: networks, Config, ``train_step``), in a fresh build directory, warmed up, then timed for ``--steps``
iterations. The FLOPs of one iteration are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix
products and convolutions, forward and backward; what it does not count, e.g. element-wise work, is not in the
GFLOP/s; it cannot follow the double backward of a gradient penalty nor 10's step, so 06, 09 and 10 get no count).
The split: time inside ``Batches.next`` (data), inside the optimisers' ``step`` (optimizer), inside the
top-level forward calls of the chapter's networks (forward), and the rest of the step (backward, losses, Python).

The reference: ``examples/dcgan/main.py`` of pytorch/examples (its netG / netD for 64 x 64 images, BCELoss, its
loop: D on real, D on G(z).detach(), one optimiser step, then G), against chapter 03's ``train_step`` on the same
architecture (``dcgan.Generator(image_size=64, width=64, z_dim=100)``) and batch, on random images (the data
pipeline is not what is compared).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from gan_course import train  # noqa: E402
from gan_course.training import Batches  # noqa: E402


# ============================================================================ the machine's peak
def peak_gflops(seconds: float = 1.5) -> dict:
    """Best fp32 GFLOP/s of (a) 2048 x 2048 matrix products, (b) a 3x3 convolution, 256 -> 256 channels at 32 x 32,
    batch 16, each repeated for about ``seconds``."""
    def best(fn, flops):
        fn()
        rates, start = [], time.perf_counter()
        while time.perf_counter() - start < seconds:
            t = time.perf_counter()
            fn()
            rates.append(flops / (time.perf_counter() - t) / 1e9)
        return max(rates)

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    conv, x = nn.Conv2d(256, 256, 3, padding=1, bias=False), torch.randn(16, 256, 32, 32)
    with torch.no_grad():
        matmul = best(lambda: a @ b, 2 * 2048 ** 3)
        convolution = best(lambda: conv(x), 2 * 16 * 256 * 256 * 9 * 32 * 32)
    return {"matmul": round(matmul, 1), "conv": round(convolution, 1), "peak": round(max(matmul, convolution), 1)}


# ============================================================================ timing a step, with its split
class Split:
    """Seconds spent in data, optimiser steps and top-level forwards, accumulated by hooks while ``on``."""

    def __init__(self, nets: list[nn.Module], optimizers: list[torch.optim.Optimizer]):
        self.t = {"data": 0.0, "optimizer": 0.0, "forward": 0.0}
        self._depth, self._handles, self._start = 0, [], {}
        for net in nets:
            self._handles += [net.register_forward_pre_hook(self._fwd_in), net.register_forward_hook(self._fwd_out)]
        for opt in optimizers:
            self._handles += [opt.register_step_pre_hook(lambda *a: self._begin("optimizer")),
                              opt.register_step_post_hook(lambda *a: self._end("optimizer"))]
        self._next = Batches.next

        split = self

        def timed_next(batches):
            t = time.perf_counter()
            try:
                return split._next(batches)
            finally:
                split.t["data"] += time.perf_counter() - t

        Batches.next = timed_next

    def _begin(self, key):
        self._start[key] = time.perf_counter()

    def _end(self, key):
        self.t[key] += time.perf_counter() - self._start.pop(key)

    def _fwd_in(self, *args):
        if self._depth == 0:
            self._begin("forward")
        self._depth += 1

    def _fwd_out(self, *args):
        self._depth -= 1
        if self._depth == 0:
            self._end("forward")

    def close(self):
        for h in self._handles:
            h.remove()
        Batches.next = self._next


@contextmanager
def fresh_build():
    previous = os.environ.get("GAN_COURSE_BUILD")
    with tempfile.TemporaryDirectory(prefix="gan-course-throughput-") as build:
        os.environ["GAN_COURSE_BUILD"] = build
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("GAN_COURSE_BUILD", None)
            else:
                os.environ["GAN_COURSE_BUILD"] = previous


def time_step(step, batch_size: int, nets, optimizers, steps: int, warmup: int) -> dict:
    """Warm up, time ``steps`` iterations with the split, then count one more iteration's FLOPs (last, so that a
    step the counter cannot follow, which stops half-way, does not touch the timing)."""
    for _ in range(warmup):
        step()
    split = Split(nets, optimizers)
    try:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = time.perf_counter() - start
    finally:
        split.close()
    try:
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
    except (RuntimeError, AssertionError):   # its module hooks cannot follow a double backward (06, 09's penalty)
        flops = float("nan")
    rest = seconds - sum(split.t.values())
    return {"images_per_s": steps * batch_size / seconds, "step_ms": 1000 * seconds / steps,
            "gflop_per_step": flops / 1e9, "gflops": flops * steps / seconds / 1e9,
            **{f"{k}_share": v / seconds for k, v in split.t.items()}, "rest_share": rest / seconds}


def chapter_row(chapter: str, steps: int, warmup: int) -> dict:
    with fresh_build():
        job, p = train.build(chapter, device="cpu")
        nets = [m for k, m in job.run.models.items() if k in ("G", "D")]
        row = time_step(job.step, job.batch_size, nets, list(job.run.optimizers.values()), steps, warmup)
    return {"what": chapter, "batch": job.batch_size, **row}


# ============================================================================ the pytorch/examples DCGAN step
class ExampleG(nn.Module):          # examples/dcgan/main.py's Generator (nz=100, ngf=64, nc=1)
    def __init__(self, nz=100, ngf=64, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class ExampleD(nn.Module):          # examples/dcgan/main.py's Discriminator (ndf=64, nc=1)
    def __init__(self, ndf=64, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


def example_row(batch: int, steps: int, warmup: int) -> dict:
    """The example's loop body (its lines, for one batch of random images), timed like the chapters'."""
    torch.manual_seed(0)
    netG, netD = ExampleG(), ExampleD()
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = torch.rand(batch, 1, 64, 64) * 2 - 1

    def step():
        netD.zero_grad()
        label = torch.full((batch,), 1.0)
        errD_real = criterion(netD(data), label)
        errD_real.backward()
        fake = netG(torch.randn(batch, 100, 1, 1))
        label.fill_(0.0)
        errD_fake = criterion(netD(fake.detach()), label)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        errG = criterion(netD(fake), label)
        errG.backward()
        optG.step()
        return errG.item()                             # the example prints every iteration's losses

    return {"what": "pytorch/examples dcgan (64x64, ngf=ndf=64)", "batch": batch,
            **time_step(step, batch, [netG, netD], [optD, optG], steps, warmup)}


def course_dcgan_row(batch: int, steps: int, warmup: int) -> dict:
    """Chapter 03's ``train_step`` on the example's architecture and batch (64 x 64, width 64, z of 100)."""
    from gan_course.models import dcgan
    from gan_course.training import Run

    class Random(torch.utils.data.Dataset):
        images = torch.rand(batch * 4, 1, 64, 64) * 2 - 1

        def __len__(self):
            return len(self.images)

        def get_batch(self, index):
            return self.images[index], torch.zeros(len(index), dtype=torch.long)

    torch.manual_seed(0)
    G = dcgan.Generator(z_dim=100, channels=1, image_size=64, width=64)
    D = dcgan.Discriminator(channels=1, image_size=64, width=64)
    cfg = dcgan.Config(batch_size=batch)
    opt_G, opt_D = dcgan.optimizers(G, D, cfg)
    with fresh_build():
        run = Run("throughput", {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, progress=False, live=False)
        batches = Batches(Random(), batch, seed=0)

        def step():
            logs = dcgan.train_step(run, G, D, batches, cfg)
            run.log(**logs)                           # the notebook logs every step too
            return logs

        row = time_step(step, batch, [G, D], [opt_G, opt_D], steps, warmup)
    return {"what": "course: 03's train_step, same architecture", "batch": batch, **row}


# ============================================================================ the table
def markdown(rows: list[dict], peak: dict) -> str:
    lines = ["| run | batch | images/s | ms / step | GFLOP / step | GFLOP/s | of peak | data | forward | optimizer | "
             "backward and the rest |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        counted = r["gflop_per_step"] == r["gflop_per_step"]
        flop = (f"{r['gflop_per_step']:.3f} | {r['gflops']:.1f} | {r['gflops'] / peak['peak']:.1%}" if counted
                else "— | — | —")
        lines.append(f"| {r['what']} | {r['batch']} | {r['images_per_s']:.0f} | {r['step_ms']:.1f} | {flop} | "
                     f"{r['data_share']:.0%} | {r['forward_share']:.0%} | {r['optimizer_share']:.0%} | "
                     f"{r['rest_share']:.0%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="*", default=list(train.CHAPTERS), choices=list(train.CHAPTERS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reference-batch", type=int, default=64)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    peak = peak_gflops()
    print(f"peak fp32: {peak}", flush=True)
    rows = []
    for chapter in args.chapters:
        rows.append(chapter_row(chapter, args.steps, args.warmup))
        print(rows[-1], flush=True)
    rows.append(example_row(args.reference_batch, args.steps, args.warmup))
    rows.append(course_dcgan_row(args.reference_batch, args.steps, args.warmup))
    print(rows[-2], rows[-1], sep="\n", flush=True)
    ratio = rows[-1]["images_per_s"] / rows[-2]["images_per_s"]
    text = (f"Written by `benchmarks/throughput.py` on {time.strftime('%Y-%m-%d %H:%M')}: {platform.machine()}, "
            f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, load "
            f"average {load:.2f} at the start, {args.steps} timed steps after {args.warmup} warm-up steps per row; "
            f"each chapter's main run at its notebook's default settings. Peak fp32 measured in the same run: "
            f"{peak['matmul']} GFLOP/s (2048 x 2048 matrix products), {peak['conv']} GFLOP/s (3x3 convolution, "
            f"256 channels at 32 x 32); 'of peak' is against the larger. GFLOP counts matrix products and "
            f"convolutions (forward and backward) only; '—' where FlopCounterMode cannot follow the step's double "
            f"backward (the gradient penalties of 06 and 09, and 10's step). The last two rows: the pytorch/examples DCGAN step and "
            f"chapter 03's `train_step` on the same 64 x 64 architecture and batch (course / example: "
            f"{ratio:.2f}).\n\n" + markdown(rows, peak) + "\n")
    print(text)
    if not args.no_record:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as f:
            f.write("\n# Training throughput against this machine's peak (`benchmarks/throughput.py`)\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
