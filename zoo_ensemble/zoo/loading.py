"""Loading any zoo model folder, binary, multiclass or ensemble, by the kind its card states,
and the one way from a loaded model to a :class:`~zoo_ensemble.inference.Predictor`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..architectures import ModelConfig, SegmentationModel, build_model
from ..devices import resolve_device, resolve_precision
from ..errors import ModelFormatError, ZooError
from ..inference import ChannelSelect, Predictor
from ..organs import parse_organs
from .cards import Card
from .ensemble_folder import load_ensemble
from .folder import WEIGHTS, build_within_limits, check_card_matches, load_state, read_config, read_weights, weights_header


@dataclass
class LoadedModel:
    model: torch.nn.Module
    card: Card
    config: dict[str, Any]
    folder: Path

    @property
    def organs(self) -> list[str]:
        return list(self.card.organs)


def load_single(folder: Path, card: Card, config: dict[str, Any]) -> SegmentationModel:
    """A binary or multiclass model: its config checked against the card, built within limits."""
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
    """Load and check a model folder of any kind, dispatching on the card's ``kind``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(f"{folder}: no such model folder")
    card = Card.read(folder)
    config = read_config(folder)
    model = load_ensemble(folder, card, config) if card.kind == "ensemble" else load_single(folder, card, config)
    return LoadedModel(model, card, config, folder)


def predictor_from_card(
    model: torch.nn.Module, card: Card, organs: Sequence[str] | None = None, device: str = "auto", batch_size: int = 16,
    largest_component: Sequence[str] | None = None, precision: str = "fp32",
) -> Predictor:
    """A Predictor configured as the card says: input size, crop, spacing, threshold, the
    post-processing chosen on validation (``largest_component`` overrides it: the organs whose
    largest component is kept, ``[]`` for none), the grids the model was trained on;
    ``precision`` is ``auto`` (fp16 autocast on a GPU, fp32 on a CPU), ``fp32``, ``bf16`` or ``fp16``."""
    largest = (card.postprocess.get("largest_component") or []) if largest_component is None else list(largest_component)
    where = resolve_device(device)
    return Predictor(
        model, list(organs or card.organs), card.input_size, card.crop, card.spacing, card.threshold, batch_size,
        where, largest, name=card.model_id, trained_on=card.trained_on, precision=resolve_precision(precision, where),
    )


def predictor_for(
    loaded: LoadedModel, device: str = "auto", batch_size: int = 16, organs: str | Sequence[str] | None = None,
    largest_component: Sequence[str] | None = None, precision: str = "fp32",
) -> Predictor:
    """A Predictor for a loaded model, producing only ``organs`` when given (an ensemble then runs
    only the members those organs need); ``largest_component`` as in :func:`predictor_from_card`."""
    model, wanted = loaded.model, loaded.organs
    if organs:
        wanted = parse_organs(organs)
        unknown = [o for o in wanted if o not in loaded.organs]
        if unknown:
            raise ZooError(f"model {loaded.card.model_id!r} does not segment {', '.join(unknown)} (it segments {', '.join(loaded.organs)})")
        if hasattr(model, "restricted_to"):
            model = model.restricted_to(wanted)
        else:
            model = ChannelSelect(model, [loaded.organs.index(o) for o in wanted])
    return predictor_from_card(model, loaded.card, wanted, device, batch_size, largest_component, precision)
