"""Reading an nnU-Net v2 trained-model folder (``Trainer__Plans__configuration`` with
``plans.json``, ``dataset.json`` and ``fold_N/checkpoint_*.pth``) into what a zoo model folder
holds: one safetensors state (``folds.N.*``), a checked config, and the card's facts.

The checkpoints are pickles. Each is read once, here, and only ever with
``torch.load(weights_only=True)``: tensors, plain containers and the numpy scalars nnU-Net's
trainer logs, nothing that runs code. A file that names other objects (a path, a trainer's own
class) is refused, unless the user passed ``trust_pickle``: those objects are then read as
inert stand-ins (:class:`_Inert`: nothing of them is called or kept), still by the
weights-only unpickler, and the weights must be plain tensors. Nothing is unpickled after the
import.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...architectures.volume import drop_shared
from ...atomic import sha256_file
from ...errors import UnknownOrganError, ZooError
from ...registry import get_registry
from ...specs import ImportedModel
from . import plans as checks
from .plans import ARCHITECTURE

MAX_JSON_BYTES = 4 << 20
CHECKPOINTS = {"final": "checkpoint_final.pth", "best": "checkpoint_best.pth", "latest": "checkpoint_latest.pth"}


class ImportRefused(ZooError):
    """An nnU-Net folder that cannot be imported as given."""


def _json(path: Path) -> Any:
    if not path.is_file():
        raise ImportRefused(f"{path.parent}: no {path.name} (an nnU-Net v2 trained-model folder holds plans.json, dataset.json and fold_N/)")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ImportRefused(f"{path}: larger than {MAX_JSON_BYTES >> 20} MiB")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ImportRefused(f"{path}: not valid JSON ({str(exc).splitlines()[0][:80]})") from None


def parse_folds(folds: str | None, folder: Path, checkpoint: str) -> list[int | str]:
    """``0,1,...`` or ``all`` (every ``fold_N`` with the checkpoint; ``fold_all`` if it is the only one)."""
    if folds in (None, "", "all"):
        found = sorted(int(p.name[5:]) for p in folder.glob("fold_*") if p.name[5:].isdigit() and (p / checkpoint).is_file())
        if not found and (folder / "fold_all" / checkpoint).is_file():
            return ["all"]
        if not found:
            raise ImportRefused(f"{folder}: no fold_N/{checkpoint}")
        return found[: checks.MAX_FOLDS]
    out: list[int | str] = []
    for part in str(folds).split(","):
        part = part.strip()
        if not (part.isdigit() and int(part) < 100):
            raise ImportRefused(f"--folds: {part[:20]!r} is not a fold number (use 0,1,... or all)")
        out.append(int(part))
    if len(set(out)) != len(out) or len(out) > checks.MAX_FOLDS:
        raise ImportRefused(f"--folds: give up to {checks.MAX_FOLDS} different folds")
    return out


def _safe_numpy_globals() -> list[Any]:
    """What numpy scalars in nnU-Net's training log need to be rebuilt: data, not code."""
    found: list[Any] = [np.dtype]
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            found.append(__import__(mod, fromlist=["scalar"]).scalar)
            break
        except (ImportError, AttributeError):
            continue
    found += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return found


class _Inert:
    """What a checkpoint object that is not data reads as under ``trust_pickle``: it takes any
    arguments and state and keeps none of it (torch's weights-only unpickler builds it in place
    of the named class or function, so nothing from the file runs)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


#: Names a trusted checkpoint may stand in for, at most.
MAX_STAND_INS = 32


def read_checkpoint(path: Path, trust_pickle: bool) -> dict[str, Any]:
    """One nnU-Net checkpoint, read by the weights-only unpickler; with ``trust_pickle``, the
    objects it refuses become inert stand-ins, one name at a time."""
    if not path.is_file():
        raise ImportRefused(f"{path.parent}: no {path.name}")
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5; before, numpy scalars are refused too
    stand_ins: list[Any] = []
    while True:
        try:
            with allow(_safe_numpy_globals() + stand_ins) if allow else contextlib.nullcontext():
                data = torch.load(path, map_location="cpu", weights_only=True)
            break
        except pickle.UnpicklingError as exc:
            what = re.search(r"GLOBAL ([\w.]+)", str(exc))
            if trust_pickle and what and allow and len(stand_ins) < MAX_STAND_INS:
                stand_ins.append((_Inert, what.group(1)))
                continue
            raise ImportRefused(
                f"{path}: torch.load(weights_only=True) refuses it (it needs {what.group(1) if what else 'objects beyond tensors'}); "
                "--trust-pickle reads such objects as inert stand-ins, if you trust who made it"
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise ImportRefused(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0][:100]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("network_weights"), dict):
        raise ImportRefused(f"{path}: not an nnU-Net checkpoint (no network_weights)")
    weights = data["network_weights"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise ImportRefused(f"{path}: network_weights must map names to tensors")
    return data


def organ_labels(spec: str, labels: dict[str, int]) -> dict[str, list[int]]:
    """``--organs``: ``heart=3,lung_left=10+11`` (values or dataset label names), or
    ``totalsegmentator`` (every registered organ whose TotalSegmentator class names are all labels)."""
    organs = get_registry().entries["organs"]
    out: dict[str, list[int]] = {}
    if spec.strip() == "totalsegmentator":
        for name, entry in organs.items():
            parts = tuple(getattr(entry.value, "totalsegmentator", ()) or ())
            if parts and all(p in labels for p in parts):
                out[name] = [labels[p] for p in parts]
        if not out:
            raise ImportRefused("--organs totalsegmentator: no registered organ's TotalSegmentator class names are among the model's labels")
        return out
    by_value = {v: k for k, v in labels.items()}
    for item in spec.split(","):
        organ, sep, values = item.strip().partition("=")
        if not sep or not values:
            raise ImportRefused(f"--organs: {item.strip()[:40]!r} is not ORGAN=LABEL (e.g. heart=3 or lung_left=10+11)")
        if organ not in organs:
            raise UnknownOrganError(f"--organs: unknown organ {organ[:40]!r} (known: {', '.join(organs)})")
        if organ in out:
            raise ImportRefused(f"--organs: {organ} is given twice")
        found = []
        for v in values.split("+"):
            value = int(v) if v.isdigit() else labels.get(v)
            if value is None or value not in by_value or value == 0:
                raise ImportRefused(f"--organs: {organ}={v[:40]!r} is not a foreground label of the model's dataset.json (has {', '.join(f'{k}={x}' for k, x in labels.items() if x)[:200]})")
            found.append(value)
        out[organ] = found
    used = [v for vs in out.values() for v in vs]
    if len(set(used)) != len(used):
        raise ImportRefused("--organs: a label may make only one organ")
    return out


def read_folder(
    folder: str | Path, organs: str, folds: str | None = None, checkpoint: str = "final", trust_pickle: bool = False, mirroring: bool = True,
) -> ImportedModel:
    """Everything a zoo model folder needs from an nnU-Net v2 trained-model folder, checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportRefused(f"{folder}: no such folder")
    if checkpoint not in CHECKPOINTS:
        raise ImportRefused(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    _check_is_a_trained_model_folder(folder)
    plans = checks.check_plans(_json(folder / "plans.json"))
    dataset = _json(folder / "dataset.json")
    labels = checks.check_dataset(dataset)
    mapping = organ_labels(organs, labels)
    chosen = parse_folds(folds, folder, CHECKPOINTS[checkpoint])
    state: dict[str, torch.Tensor] = {}
    sources, first = [], None
    for i, fold in enumerate(chosen):
        path = folder / f"fold_{fold}" / CHECKPOINTS[checkpoint]
        data = read_checkpoint(path, trust_pickle)
        init = data.get("init_args") if isinstance(data.get("init_args"), dict) else {}
        facts = (str(data.get("trainer_name", "nnUNetTrainer"))[:128], str(init.get("configuration", ""))[:64], data.get("inference_allowed_mirroring_axes"))
        if first is None:
            first = facts
        elif facts[:2] != first[:2]:
            raise ImportRefused(f"{path}: trained as {facts[0]} / {facts[1]}, fold {chosen[0]} as {first[0]} / {first[1]}")
        state.update({f"folds.{i}.{k}": v for k, v in drop_shared(data["network_weights"]).items()})
        sources.append({"fold": fold, "file": f"fold_{fold}/{CHECKPOINTS[checkpoint]}", "sha256": sha256_file(path)})
    assert first is not None
    trainer, configuration, axes = first
    if not configuration:
        configuration = folder.name.split("__")[-1]
    cfg = checks.configuration(plans, configuration)
    config = {
        "format": 1, "architecture": ARCHITECTURE, "organs": list(mapping), "organ_labels": mapping, "configuration": configuration,
        "plans": plans, "dataset": {k: dataset[k] for k in ("channel_names", "labels", "file_ending", "name") if k in dataset},
        "trainer": trainer, "folds": chosen, "checkpoint": checkpoint,
        "mirroring_axes": [int(a) for a in axes] if isinstance(axes, (list, tuple)) else None, "mirroring": bool(mirroring),
    }
    card = {
        "configuration": configuration, "trainer": trainer, "plans": str(plans.get("plans_name", ""))[:128],
        "dataset": str(plans.get("dataset_name", dataset.get("name", "")))[:128], "folds": chosen, "checkpoint": checkpoint,
        "patch_size": cfg["patch_size"], "spacing": cfg["spacing"], "normalization": cfg["normalization_schemes"][0],
        "intensity": plans.get("foreground_intensity_properties_per_channel", {}).get("0", {}),
        "mirroring": bool(mirroring), "sources": sources,
    }
    return ImportedModel(state, config, list(mapping), card, _suggest_name(list(mapping)))


def _check_is_a_trained_model_folder(folder: Path) -> None:
    """A dataset's results folder (several trainer folders) names the ones to choose from."""
    if (folder / "plans.json").is_file():
        return
    inside = sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / "plans.json").is_file())[:8]
    if inside:
        raise ImportRefused(f"{folder}: holds several trained models; import one of them: {', '.join(inside)}")


def _suggest_name(organs: list[str]) -> str:
    return f"{organs[0]}-nnunet" if len(organs) == 1 else f"nnunet-{len(organs)}-organs"
