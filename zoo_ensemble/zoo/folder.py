"""The zoo model folder format: ``model.safetensors`` + ``config.json`` + ``README.md`` (the card).

The primitives every kind shares: writing a folder atomically, reading its config and weights
with every check (safetensors only, sha256 against the card, the header's shapes against a
network built on the ``meta`` device first, a size limit). Which network a folder holds is
decided in :mod:`zoo_ensemble.zoo.loading`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch.overrides import TorchFunctionMode

from ..architectures import SegmentationModel
from ..architectures.limits import MAX_PARAMETERS
from ..atomic import FILE_MODE, atomic_folder, sha256_file, write_text
from ..errors import ModelFormatError
from .card_file import write_card
from .cards import Card

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_CONFIG_BYTES = 4 << 20


def write_folder(folder: str | Path, state: dict[str, torch.Tensor], config: dict[str, Any], card: Card) -> Path:
    """Write a complete model folder, replacing ``folder`` only once everything is on disk."""
    folder = Path(folder)
    with atomic_folder(folder, errors=(SafetensorError,)) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp / WEIGHTS), metadata={"format": "pt"})
        os.chmod(tmp / WEIGHTS, FILE_MODE)  # safetensors writes 0600; every file of a folder gets one mode
        card.weights_sha256 = sha256_file(tmp / WEIGHTS)
        write_text(tmp / CONFIG, json.dumps(config, indent=2) + "\n")
        write_card(card, tmp)
    return folder


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
        with torch.device("meta"), _NoRandomFillOnMeta():
            skeleton = build()
    except (TypeError, ValueError, RuntimeError, AssertionError, IndexError, KeyError, ZeroDivisionError) as exc:
        raise ModelFormatError(f"{where}: the config does not build a network ({str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__})") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    size = sum(math.prod(shape) for shape in expected.values())
    if size > MAX_PARAMETERS:
        raise ModelFormatError(f"{where}: the config asks for {size / 1e6:.0f} M parameters, more than the {MAX_PARAMETERS / 1e6:.0f} M allowed")
    check_shapes(expected, header, where)
    if _filled_by_its_weights(skeleton):
        # every tensor is about to be overwritten by the weights (check_shapes: the same names and
        # shapes), so the skeleton gets memory without a second construction and random init
        # (three quarters of building a member; loading the demo's 14 ensembles builds 168)
        return skeleton.to_empty(device="cpu")
    return build()


class _NoRandomFillOnMeta(TorchFunctionMode):
    """Initialisers of meta tensors skipped: ``torch.nn.init``'s functions, and the random fills
    (``uniform_``, ``normal_``) that timm's own initialisers call. On the meta device they change
    nothing and cost as much as the rest of the build, dispatched through torch's Python
    references. A function mode is thread-local, unlike patching ``torch.nn.init`` as
    transformers' ``no_init_weights`` does."""

    FILLS = frozenset({"uniform_", "normal_"})

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        name, module = getattr(func, "__name__", ""), getattr(func, "__module__", "")
        initialiser = module == "torch.nn.init" and name.endswith("_") or name in self.FILLS
        if initialiser and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def _filled_by_its_weights(module: torch.nn.Module) -> bool:
    """Whether loading a state dict sets every tensor ``module`` holds: no non-persistent buffer,
    no tensor kept as a plain attribute, no parameter registered twice (``to_empty`` would
    leave the first two uninitialised and untie the third); otherwise it is built again."""
    params = list(module.named_parameters(remove_duplicate=False))
    if len({id(p) for _, p in params}) != len(params):
        return False
    for m in module.modules():
        if m._non_persistent_buffers_set or any(isinstance(v, torch.Tensor) for v in vars(m).values()):
            return False
    return True


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
