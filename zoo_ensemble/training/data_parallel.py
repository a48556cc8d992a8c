"""What makes training under torchrun give what one process gives: batch statistics and the
loss over the global batch, the model wrapped in DistributedDataParallel, validation batches
shared out whole.

Each process takes every ``size``-th slice of the epoch's draw and ``batch_size / size`` of each
step's batch, so a step's slices across processes are the single process's batch. BatchNorm
statistics are summed across processes (``torch.nn.SyncBatchNorm`` on GPUs;
:class:`CpuSyncBatchNorm` under gloo, which torch's does not run on), and the loss is computed
from sums over the global batch (see ``losses.py``), so losses and weights follow the single
process to float tolerance. Dropout masks are drawn per process and so differ from one
process's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..distributed import World, sum_across_with_grad
from ..errors import TrainingError


def per_rank_batch(batch_size: int, world: World) -> int:
    """Each process's share of a step's ``batch_size`` slices."""
    if batch_size < world.size:
        raise TrainingError(f"--batch-size {batch_size} gives fewer slices per step than the {world.size} processes; each needs at least one")
    if batch_size % world.size:
        raise TrainingError(f"--batch-size {batch_size} does not split evenly across {world.size} processes; use a multiple of {world.size}")
    return batch_size // world.size


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are the global batch's, summed across processes.

    Hand-written because ``torch.nn.SyncBatchNorm`` refuses CPU tensors, and gloo runs need the
    same statistics as one process. Same parameters and buffers as ``nn.BatchNorm2d``; in eval
    mode or alone it is ``nn.BatchNorm2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not torch.distributed.is_initialized():
            return super().forward(x)
        count = sum_across_with_grad(torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device))
        mean = sum_across_with_grad(x.sum((0, 2, 3))) / count
        centred = x - mean.view(1, -1, 1, 1)
        var = sum_across_with_grad((centred * centred).sum((0, 2, 3))) / count
        self._track(mean.detach(), var.detach(), float(count))
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1) if self.affine else y

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(var * count / max(count - 1.0, 1.0), factor)  # unbiased, as BatchNorm keeps it


@contextmanager
def synced_batchnorm(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Within the block, the trainable BatchNorm layers of ``model`` use the global batch's
    statistics; the layers are switched in place (same parameters, buffers and state-dict keys)
    and switched back after."""
    sync_class = nn.SyncBatchNorm if device.type == "cuda" else CpuSyncBatchNorm
    switched = [m for m in model.modules() if type(m) is nn.BatchNorm2d and any(p.requires_grad for p in m.parameters(recurse=False))]
    for m in switched:
        m.__class__ = sync_class
        m.process_group = None  # nn.SyncBatchNorm's: the default group
    try:
        yield
    finally:
        for m in switched:
            m.__class__ = nn.BatchNorm2d
            del m.process_group


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel. Buffers are not broadcast every step: the synced
    statistics keep them equal, and frozen ensemble members' buffers never change."""
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False)


def validation_indices(count: int, batch: int, world: World) -> list[int]:
    """This process's validation slices: whole batches of the single process's sequence (batch
    ``k`` goes to process ``k mod size``), so the summed loss is the single process's."""
    batches = range(0, count, batch)
    return [i for k, start in enumerate(batches) if k % world.size == world.rank for i in range(start, min(start + batch, count))]
