"""Where and how a command computes: the torch device (``auto``: CUDA when present, else the CPU;
``cpu``, ``cuda``, ``cuda:N``), the precision (``fp32``, ``bf16``, ``fp16``, ``auto``: fp16 autocast
on a GPU, fp32 on a CPU) and the number of CPU threads (the CPUs this process may use, not the
host's count)."""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import torch

from .errors import TrainingError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: CPU flags (Linux /proc/cpuinfo) that mean bf16 matrix arithmetic in hardware.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


class PrecisionError(TrainingError):
    """A precision this machine cannot run."""


def resolve_device(name: str = "auto") -> torch.device:
    """The device ``name`` means here; computing on the CPU also sets torch's thread count to
    the CPUs this process may use (once per process, see :func:`configure_threads`)."""
    device = _device(name)
    if device.type == "cpu":
        configure_threads()
    return device


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise TrainingError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise TrainingError(f"device {name!r} is not supported (use auto, cpu, cuda or cuda:N)")
    return device


@lru_cache(maxsize=1)
def cpu_layout(x: torch.Tensor) -> torch.Tensor:
    """Maps of several channels channels-last on a CPU, as prediction lays out its networks:
    oneDNN's NCHW kernels are slower there (a meta U-Net's training step on 160-pixel slices
    1.3x, its forward pass 1.7x, a layer-fusion epoch 1.5x), and an NCHW 1 x 1 convolution of
    18 channels falls off a cliff at batch 16 (24 ms against 1.4 ms at batch 8). A one-channel
    map has one layout either way; other devices keep theirs."""
    if x.device.type == "cpu" and x.dim() == 4 and x.shape[1] > 1:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name (what benchmarks print beside their figures)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_supports_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); detected, not guessed.
    Elsewhere oneDNN emulates bf16, slower than fp32."""
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return cpu_supports_bf16()


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``name`` on ``device`` (None: fp32).

    ``auto`` is fp16 autocast on a GPU and fp32 on a CPU, even one with bf16 arithmetic:
    bf16 keeps 8 bits of mantissa, and on trained models it moved an organ's Dice by more than
    0.002 in 10 of 95 predictions (up to 0.009), while fp16 (11 bits) stayed within 0.0011 on
    the 8 models bf16 moved most (benchmarks/bench_bf16_accuracy.py, docs/results/precision).
    So every CPU gives the same contours unless ``bf16`` is asked for. ``bf16`` where the
    hardware has none, and ``fp16`` on a CPU (emulated, slower than fp32), are errors.
    """
    if name not in PRECISIONS:
        raise PrecisionError(f"unknown precision {name!r} (use {', '.join(PRECISIONS)})")
    on_gpu = device.type == "cuda"
    if name in ("fp32", "auto"):
        return torch.float16 if name == "auto" and on_gpu else None
    if name == "fp16":
        if not on_gpu:
            raise PrecisionError("--precision fp16: a CPU only emulates fp16 (slower than fp32); use fp32, or bf16 where the CPU has it")
        return torch.float16
    if bf16_supported(device):
        return torch.bfloat16
    what = "this GPU" if device.type == "cuda" else "this CPU (no avx512_bf16 or AMX)"
    raise PrecisionError(f"--precision bf16: {what} has no bf16 arithmetic; use fp32 or auto")


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (a
    container limited to 2 CPUs on a 64-core host gets 2)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time the cgroup allows (v2 ``cpu.max`` or v1 ``cfs_quota_us``), None: unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


@lru_cache(maxsize=1)
def configure_threads() -> int:
    """Give torch one thread per usable CPU, once per process, unless the user chose
    (``OMP_NUM_THREADS``): torch counts the host's cores, which oversubscribes a container or a
    process pinned to a few CPUs."""
    if not os.environ.get("OMP_NUM_THREADS"):
        n = usable_cpus()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return torch.get_num_threads()
