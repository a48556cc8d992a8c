"""Which torch device a command runs on: ``auto`` (CUDA when present, else the CPU), ``cpu``,
``cuda`` or ``cuda:N``."""

from __future__ import annotations

import torch

from .errors import TrainingError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} asked for, but CUDA is not available on this machine")
    return device
