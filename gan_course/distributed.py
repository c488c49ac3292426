"""Data-parallel training with PyTorch's own distributed engine (``torch.distributed``, launched by ``torchrun``).

One process per device ("rank"); every rank holds the same G and D, draws its own shard of each batch
(``training.Batches`` with ``rank`` / ``world_size``) and its own noise, and after each backward pass the gradients
are averaged over the ranks before the optimiser steps (``average_gradients``, called by ``training.Run.update``),
so every rank takes the same step and the weights stay identical. With a per-rank batch B on N ranks, one step is the
step one process would take on the batch of N x B.

Why gradients are averaged in ``Run.update`` rather than by wrapping G and D in ``DistributedDataParallel``: a GAN
iteration calls D several times (real, fake, the gradient penalty's interpolates) before one backward, and G's update
back-propagates through a D whose parameters are frozen. Both are known DDP pitfalls (its reducer expects one forward
per backward and a gradient for every parameter it registered). NVIDIA's StyleGAN2-ADA / StyleGAN3 training loop,
the code StyleGAN-XL is built on, does exactly this instead: it all-reduces the flattened gradients of the module
being updated and divides by the number of GPUs. Buffers that are not gradients (batch-norm statistics, spectral
norm's power-iteration vector u) stay identical because every rank starts from rank 0's state
(``broadcast_state``) and updates them deterministically from identical weights; batch norm's statistics over the
whole N x B batch need ``SyncBatchNorm`` (``sync_batch_norm``; BigGAN's "cross-replica" batch norm, Sec. 4 / App. C).

Only rank 0 writes files (checkpoints, samples, the results file); the others wait at a barrier. Every collective
has a timeout (``TIMEOUT_S``), so a rank that dies ends the run with an error instead of a hang.

    torchrun --nproc_per_node=2 -m gan_course.train 03_dcgan --steps 2000
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["TIMEOUT_S", "init", "is_distributed", "rank", "world_size", "local_rank", "is_main", "barrier",
           "average_gradients", "broadcast_state", "all_mean", "sync_batch_norm", "CrossReplicaBatchNorm", "rank_seed",
           "shutdown"]

TIMEOUT_S = float(os.environ.get("GAN_COURSE_DIST_TIMEOUT", 300))
"""Seconds a collective (all-reduce, barrier) waits for the other ranks before the run fails with an error."""


def is_distributed() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0)) if is_distributed() else 0


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes files and prints."""
    return rank() == 0


def init(device: str | torch.device = "auto", timeout_s: float | None = None) -> torch.device:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR`` in the environment)
    and return this rank's device: ``cuda:LOCAL_RANK`` on GPUs (backend NCCL), else the CPU (backend gloo). Outside
    ``torchrun`` (no ``WORLD_SIZE``, or 1) nothing is joined and the device is ``gan_course.utils.get_device(device)``.
    """
    from .utils import get_device

    size = int(os.environ.get("WORLD_SIZE", 1))
    if size <= 1:
        return get_device(device)
    wanted = get_device(device)
    if wanted.type == "cuda":
        wanted = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(wanted)
    elif wanted.type == "mps":
        raise ValueError("Data-parallel training runs on CUDA GPUs (NCCL) or on the CPU (gloo), not on MPS: "
                         "pass --device cpu, or train in one process on MPS.")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if wanted.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_s or TIMEOUT_S))
    return wanted


def barrier():
    if is_distributed():
        dist.barrier()


def shutdown(wait: bool = False):
    """Leave the process group. ``wait``: first wait for the other ranks (a barrier), so that no rank tears its
    connections down while another still uses them (gloo aborts the process then); only on the success path, since
    after a failure the others may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if wait and is_distributed():
            dist.barrier()
        dist.destroy_process_group()


def rank_seed(seed: int) -> int:
    """This rank's seed for what must differ between ranks (noise, dropout): ``seed`` on rank 0 (so a one-process
    run and rank 0 draw alike), ``seed + 1_000_003 * rank`` on the others."""
    return seed + 1_000_003 * rank()


@torch.no_grad()
def average_gradients(parameters) -> None:
    """Replace each parameter's gradient by its mean over the ranks (one all-reduce of the flattened gradients,
    as StyleGAN2-ADA's training loop does). Parameters without a gradient on this rank count as zero gradients, so
    every rank takes part in the same collective. A no-op in one process."""
    if not is_distributed():
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for p in params:
        n = p.numel()
        grad = flat[offset:offset + n].view_as(p)
        if p.grad is None:
            p.grad = grad.clone()
        else:
            p.grad.copy_(grad)
        offset += n


@torch.no_grad()
def broadcast_state(*modules: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every rank's modules (what DDP does when it wraps a module),
    so all ranks start identical: the same initial weights, batch-norm statistics and power-iteration vectors."""
    if not is_distributed():
        return
    for module in modules:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src)


def all_mean(values: dict[str, float]) -> dict[str, float]:
    """The mean over the ranks of each logged scalar (every rank gets the same numbers: the losses of the whole
    N x B batch, and a NaN on any rank is a NaN on all, so all of them stop together)."""
    if not is_distributed() or not values:
        return values
    t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, (t / world_size()).tolist(), strict=True))


class _AllReduceSum(torch.autograd.Function):
    """The sum over the ranks, differentiable: the gradient of each rank's input is the sum over the ranks of the
    gradients of the output (every rank's loss depends on every rank's contribution)."""

    @staticmethod
    def forward(ctx, x):
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CrossReplicaBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training-mode statistics are the mean and variance over the batches of *all* ranks: BigGAN's
    cross-replica batch norm, for the CPU (gloo), where ``torch.nn.SyncBatchNorm`` does not run. Per channel, the
    sums of x and x^2 and the count are all-reduced with a differentiable all-reduce, so the gradient flows through the global statistics as it
    would in one process on the whole batch. Evaluation mode uses the running statistics, as ``BatchNorm`` does."""

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-d input (N, C, ...), got {input.dim()}-d")

    @classmethod
    def from_batch_norm(cls, bn: nn.modules.batchnorm._BatchNorm) -> CrossReplicaBatchNorm:
        new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        new.load_state_dict(bn.state_dict())
        new.train(bn.training)
        return new.to(next(iter(list(bn.parameters()) + list(bn.buffers())), torch.empty(0)).device)

    def forward(self, x):
        self._check_input_dim(x)
        if not (self.training or not self.track_running_stats) or not is_distributed():
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c:2 * c] / n - mean * mean                    # biased, as batch norm normalises with
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(factor * mean.detach())
                self.running_var.mul_(1 - factor).add_(factor * var.detach() * n / max(float(n) - 1, 1.0))
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every batch norm computing its statistics over the batches of all ranks (BigGAN's
    cross-replica batch norm, Sec. 4 / App. C): ``torch.nn.SyncBatchNorm`` on GPUs, ``CrossReplicaBatchNorm`` on the
    CPU. Unchanged in one process."""
    if not is_distributed():
        return module
    if any(p.is_cuda for p in module.parameters()):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _replace_batch_norms(module)


def _replace_batch_norms(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CrossReplicaBatchNorm):
        return CrossReplicaBatchNorm.from_batch_norm(module)
    for name, child in module.named_children():
        module.add_module(name, _replace_batch_norms(child))
    return module
