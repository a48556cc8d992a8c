"""Zoo model folders: ``model.safetensors`` + ``config.json`` + ``README.md`` (the card).

Loading checks everything before a model is used: the card validates, the config builds, the
weights are safetensors (pickles are never loaded), are intact, match the card's sha256 when it
records one, and fit the built model key by key and shape by shape.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .architectures import ModelConfig, SegmentationModel, build_model
from .architectures.limits import MAX_PARAMETERS
from .atomic import FILE_MODE, swap_in_folder, temp_folder, write_text
from .cards import Card
from .errors import ModelFormatError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_CONFIG_BYTES = 4 << 20


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoadedModel:
    model: torch.nn.Module
    card: Card
    config: dict[str, Any]
    folder: Path

    @property
    def organs(self) -> list[str]:
        return list(self.card.organs)


def write_folder(folder: str | Path, state: dict[str, torch.Tensor], config: dict[str, Any], card: Card) -> Path:
    """Write a complete model folder, replacing ``folder`` only once everything is on disk."""
    folder = Path(folder)
    tmp = temp_folder(folder)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp / WEIGHTS), metadata={"format": "pt"})
        os.chmod(tmp / WEIGHTS, FILE_MODE)  # safetensors writes 0600; every file of a folder gets one mode
        card.weights_sha256 = sha256_file(tmp / WEIGHTS)
        write_text(tmp / CONFIG, json.dumps(config, indent=2) + "\n")
        card.write(tmp)
        swap_in_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def card_for(model: SegmentationModel, model_id: str, **fields: Any) -> Card:
    """A card describing a single (binary or multiclass) model from its config."""
    cfg = model.config
    return Card(
        model_id=model_id,
        kind=cfg.kind,
        organs=list(cfg.organs),
        windows=list(cfg.windows),
        architecture=cfg.architecture,
        encoder=cfg.encoder,
        variant=cfg.variant,
        input_size=list(cfg.input_size),
        crop=cfg.crop,
        spacing=cfg.spacing,
        threshold=cfg.threshold,
        **fields,
    )


def save_model(model: SegmentationModel, folder: str | Path, card: Card) -> Path:
    return write_folder(folder, model.state_dict(), model.config.to_dict(), card)


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG
    if not path.is_file():
        raise ModelFormatError(f"{folder}: no {CONFIG}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelFormatError(f"{path}: {path.stat().st_size} bytes, more than a config may hold ({MAX_CONFIG_BYTES})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ModelFormatError(f"{path}: not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: expected a JSON object")
    return data


def weights_header(folder: Path, card: Card | None = None) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the folder's tensors from the safetensors header alone (no tensor is
    read), after the file's sha256 is checked against the card."""
    path = checked_weights_path(folder, card)
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"{path}: damaged or truncated safetensors file ({str(exc).splitlines()[0][:100]})") from None


def build_within_limits(build: Callable[[], torch.nn.Module], header: dict[str, tuple[int, ...]], where: str) -> torch.nn.Module:
    """Build a network from an untrusted config: first on the ``meta`` device (no memory), where
    its size is bounded and every tensor shape is compared with the weights' header, then for real."""
    try:
        with torch.device("meta"):
            skeleton = build()
    except (TypeError, ValueError, RuntimeError, AssertionError, IndexError, KeyError, ZeroDivisionError) as exc:
        raise ModelFormatError(f"{where}: the config does not build a network ({str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__})") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    size = sum(math.prod(shape) for shape in expected.values())
    if size > MAX_PARAMETERS:
        raise ModelFormatError(f"{where}: the config asks for {size / 1e6:.0f} M parameters, more than the {MAX_PARAMETERS / 1e6:.0f} M allowed")
    check_shapes(expected, header, where)
    return build()


def check_shapes(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], where: str) -> None:
    """Every tensor the network needs, in the shape it needs, and nothing else; the first misfit is named."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0][:80]!r}")
        raise ModelFormatError(f"{where}: weights do not fit the config ({'; '.join(parts)})")
    for k, shape in expected.items():
        if tuple(found[k]) != shape:
            raise ModelFormatError(f"{where}: weight {k!r} has shape {tuple(found[k])}, the config's model needs {shape}")


def checked_weights_path(folder: Path, card: Card | None = None) -> Path:
    """The safetensors file (never a pickle), its sha256 checked against the card's when it has one."""
    path = folder / WEIGHTS
    if not path.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES) if folder.is_dir() else []
        if pickles:
            raise ModelFormatError(
                f"{folder}: offers only pickled weights ({', '.join(pickles)}); zoo-ensemble loads safetensors only, never pickles"
            )
        raise ModelFormatError(f"{folder}: no {WEIGHTS}")
    if card is not None and card.weights_sha256:
        actual = sha256_file(path)
        if actual != card.weights_sha256:
            raise ModelFormatError(
                f"{path}: sha256 {actual[:12]}... differs from the card's {card.weights_sha256[:12]}...; the weights were changed or damaged"
            )
    return path


def read_weights(folder: Path, card: Card | None = None) -> dict[str, torch.Tensor]:
    """The folder's safetensors weights, checked against the card's sha256 when it has one."""
    path = checked_weights_path(folder, card)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: damaged or truncated safetensors file ({exc})") from None


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Strictly load ``state``, naming the first missing, unexpected or misshapen key."""
    check_shapes({k: tuple(v.shape) for k, v in model.state_dict().items()}, {k: tuple(v.shape) for k, v in state.items()}, where)
    model.load_state_dict(state, strict=True)


def check_card_matches(folder: Path, card: Card, config: dict[str, Any]) -> None:
    """The card's input geometry must be the config's: the card is what prediction reads."""
    pairs = (("input size", card.input_size, config.get("input_size")), ("crop", card.crop, config.get("crop")), ("spacing", card.spacing, config.get("spacing")))
    for name, in_card, in_config in pairs:
        if in_card != in_config:
            raise ModelFormatError(f"{folder}: card {name} {in_card} disagrees with config.json's {in_config}")


def load_single(folder: Path, card: Card, config: dict[str, Any]) -> SegmentationModel:
    cfg = ModelConfig.from_dict(config)
    if cfg.organs != card.organs:
        raise ModelFormatError(f"{folder}: card organs {card.organs} disagree with config.json organs {cfg.organs}")
    if cfg.architecture != card.architecture:
        raise ModelFormatError(f"{folder}: card architecture {card.architecture!r} disagrees with config.json's {cfg.architecture!r}")
    check_card_matches(folder, card, cfg.to_dict())
    model = build_within_limits(lambda: build_model(cfg), weights_header(folder, card), str(folder / WEIGHTS))
    load_state(model, read_weights(folder), str(folder / WEIGHTS))
    return model.eval()


def load_folder(folder: str | Path) -> LoadedModel:
    """Load and check a model folder (binary, multiclass or ensemble)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(f"{folder}: no such model folder")
    card = Card.read(folder)
    config = read_config(folder)
    if card.kind == "ensemble":
        from .ensembles.io import load_ensemble

        model = load_ensemble(folder, card, config)
    else:
        model = load_single(folder, card, config)
    return LoadedModel(model, card, config, folder)
