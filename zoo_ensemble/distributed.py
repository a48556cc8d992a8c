"""Data-parallel runs under ``torchrun``: which process this is, its device, and the few
collectives training and cohort prediction need.

torchrun sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rendezvous; a process started any
other way is a world of one and nothing here talks to anyone. gloo on CPUs, NCCL on GPUs (one
per process: ``cuda:LOCAL_RANK``); ``ZOO_DIST_BACKEND=gloo|nccl`` overrides the choice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from .devices import resolve_device
from .errors import ZooError

BACKENDS = ("gloo", "nccl")
#: How long a process waits at a collective for the others (rank 0 alone evaluates and writes
#: between trainings of an experiment); ``ZOO_DIST_TIMEOUT_MINUTES`` changes it.
DEFAULT_TIMEOUT_MINUTES = 60.0


class DistributedError(ZooError):
    """A data-parallel launch that cannot run as asked."""


class RankError(DistributedError):
    """A problem of this process alone (the others may run): it says so itself."""


class OtherProcessFailed(DistributedError):
    """Another process of the run failed (and said why); this one stops without repeating it."""


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def share(self, count: int) -> range:
        """This process's items of ``count`` (every ``size``-th from ``rank``): disjoint,
        deterministic, their union all items."""
        return range(self.rank, count, self.size)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"{name}={raw!r} is not a whole number (torchrun sets it)") from None


def launched() -> World:
    """The world torchrun started this process in (a world of one when it did not)."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if size < 1 or not 0 <= rank < size or local < 0:
        raise DistributedError(f"RANK={rank}, WORLD_SIZE={size}, LOCAL_RANK={local} do not describe a run (torchrun sets them)")
    return World(rank, size, local)


def current() -> World:
    """The world of this process: joined if :func:`join` ran, else as launched."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    return launched()


def _backend(device: torch.device) -> str:
    asked = os.environ.get("ZOO_DIST_BACKEND", "").strip().lower()
    if asked and asked not in BACKENDS:
        raise DistributedError(f"ZOO_DIST_BACKEND={asked!r}: use gloo (CPUs) or nccl (GPUs)")
    if asked == "nccl" and device.type != "cuda":
        why = "this machine has no CUDA GPU" if not torch.cuda.is_available() else "the run computes on the CPU (--device cpu)"
        raise DistributedError(f"NCCL asked for (ZOO_DIST_BACKEND=nccl) but {why}; use gloo on CPUs")
    return asked or ("nccl" if device.type == "cuda" else "gloo")


def rank_device(name: str, world: World) -> torch.device:
    """The device of this process: ``name`` as one process means it, except that under torchrun a
    GPU run gives each process its own GPU, ``cuda:LOCAL_RANK``."""
    device = resolve_device(name)
    if not world.active or device.type != "cuda":
        return device
    if device.index is not None:
        raise DistributedError(f"--device {name}: under torchrun each process takes the GPU of its LOCAL_RANK; pass --device cuda")
    count = torch.cuda.device_count()
    if world.local_rank >= count:
        raise RankError(f"process {world.rank} has LOCAL_RANK {world.local_rank} but this machine has {count} GPU(s); start at most {count} processes per node")
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)


def join(device_name: str = "auto") -> tuple[World, torch.device]:
    """This process's world and device, joining the run's process group the first time (a
    world of one joins nothing)."""
    world = launched()
    device = rank_device(device_name, world)
    if world.active and not dist.is_initialized():
        backend = _backend(device)
        minutes = float(os.environ.get("ZOO_DIST_TIMEOUT_MINUTES") or DEFAULT_TIMEOUT_MINUTES)
        dist.init_process_group(backend, timeout=timedelta(minutes=minutes), device_id=device if backend == "nccl" else None)
    return world, device


def leave() -> None:
    """Leave the process group (at the end of a command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _joined() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def sum_across(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all processes (a copy; no gradient), on ``tensor``'s device."""
    if not _joined():
        return tensor
    out = tensor.detach().to(_comm_device(), copy=True)
    dist.all_reduce(out)
    return out.to(tensor.device)


class _SumAcross(torch.autograd.Function):
    """All-reduce (sum) whose backward sums the gradients the same way. Hand-written: torch's
    ``torch.distributed.nn.functional.all_reduce`` is deprecated for a private replacement."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def sum_across_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all processes, differentiable: the gradient reaching each
    process's ``tensor`` is the sum of all processes' gradients of the result."""
    if not _joined():
        return tensor
    return _SumAcross.apply(tensor)


def main_decides(answer: bool) -> bool:
    """Rank 0's ``answer``, on every process: for a decision that must be the same everywhere
    (stop now? is that file already there?) where each process's own look could differ."""
    if not _joined():
        return answer
    return bool(sum_across(torch.tensor([float(answer and current().is_main)]))[0] > 0)


def barrier() -> None:
    """Wait until every process is here (rank 0 has written what the others read next)."""
    if _joined():
        dist.barrier()


def _any_failed(failed: bool) -> bool:
    return bool(sum_across(torch.tensor([float(failed)]))[0] > 0)


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the others (which then find what rank 0 cached);
    when rank 0 fails in it, the others stop with :class:`OtherProcessFailed` instead of waiting."""
    if not _joined():
        yield
        return
    if not current().is_main:
        if _any_failed(False):
            raise OtherProcessFailed("rank 0 failed; it says why")
        yield
        return
    ok = False
    try:
        yield
        ok = True
    finally:
        _any_failed(not ok)


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every process's ``obj`` (picklable, ours: plain numbers and strings), in rank order, on rank
    0; None on the others."""
    if not _joined():
        return [obj]
    world = current()
    out: list[Any] | None = [None] * world.size if world.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out
