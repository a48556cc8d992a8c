"""Resumable training checkpoints in one safetensors file (tensors) with JSON metadata (the rest).

No pickle: model, best-so-far and optimizer tensors are safetensors entries; epoch, history,
optimizer hyper-parameters, scheduler and AMP-scaler state are JSON in the file's metadata.
Written atomically after every epoch, so an interrupted run resumes from the last full epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..atomic import atomic_path, write_failed
from ..errors import TrainingError


@dataclass
class TrainingState:
    epoch: int  # epochs completed
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)  # schedule, scaler, history, best loss, fingerprint


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for idx, entries in state["state"].items():
        plain["state"][str(idx)] = {}
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                plain["state"][str(idx)][name] = value
    return tensors, plain


def save_checkpoint(path: str | Path, state: TrainingState) -> Path:
    tensors = {f"model.{k}": v for k, v in state.model.items()}
    tensors.update({f"best.{k}": v for k, v in state.best.items()})
    opt_tensors, opt_plain = _split_optimizer(state.optimizer)
    tensors.update(opt_tensors)
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    meta = {"epoch": state.epoch, "optimizer": opt_plain, **state.meta}
    try:
        with atomic_path(path, suffix=".safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"training_state": json.dumps(meta)})
    except SafetensorError as exc:
        raise write_failed(path, exc) from None
    return Path(path)


def load_checkpoint(path: str | Path) -> TrainingState:
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no checkpoint to resume from")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {})["training_state"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, KeyError, json.JSONDecodeError, OSError) as exc:
        raise TrainingError(f"{path}: damaged checkpoint ({exc})") from None
    opt = meta.pop("optimizer")
    opt_state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in opt["state"].items()}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = value
    return TrainingState(
        epoch=int(meta.pop("epoch")),
        model={k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        best={k[5:]: v for k, v in tensors.items() if k.startswith("best.")},
        optimizer={"state": opt_state, "param_groups": opt["param_groups"]},
        meta=meta,
    )
