"""Ensemble folders: one ``model.safetensors`` holding every member's weights and the
combiner's, a ``config.json`` that rebuilds it (each member's own config inside), and a card
that keeps the members' provenance. Self-contained: it runs offline, without its members."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..architectures import ModelConfig, build_model
from ..cards import Card
from ..errors import ModelFormatError
from ..model_folder import check_card_matches, load_state, read_weights
from . import get_method
from .base import Ensemble, MemberInfo

CONFIG_FORMAT = 1


def ensemble_config(ensemble: Ensemble, card: Card) -> dict[str, Any]:
    return {
        "format": CONFIG_FORMAT,
        "kind": "ensemble",
        "method": ensemble.method,
        "organs": list(ensemble.organs),
        "options": ensemble.method_config(),
        "members": [{"model_id": i.model_id, "organs": list(i.organs), "config": i.config} for i in ensemble.infos],
        "input_size": list(card.input_size),
        "crop": card.crop,
        "spacing": card.spacing,
        "threshold": card.threshold,
    }


def build_ensemble(method: str, members: list, infos: list[MemberInfo], organs: list[str], options: dict[str, Any] | None = None) -> Ensemble:
    return get_method(method).build(members, infos, organs, **(options or {}))


def load_ensemble(folder: Path, card: Card, config: dict[str, Any]) -> Ensemble:
    for key in ("method", "organs", "members"):
        if key not in config:
            raise ModelFormatError(f"{folder}/config.json: missing field {key!r}")
    if config["method"] != card.method:
        raise ModelFormatError(f"{folder}: card method {card.method!r} disagrees with config.json's {config['method']!r}")
    if list(config["organs"]) != list(card.organs):
        raise ModelFormatError(f"{folder}: card organs {card.organs} disagree with config.json organs {config['organs']}")
    check_card_matches(folder, card, config)
    members, infos = [], []
    for m in config["members"]:
        cfg = ModelConfig.from_dict(m["config"])
        members.append(build_model(cfg))
        infos.append(MemberInfo(m["model_id"], list(m["organs"]), m["config"]))
    ensemble = build_ensemble(config["method"], members, infos, list(config["organs"]), config.get("options") or {})
    load_state(ensemble, read_weights(folder, card), str(folder / "model.safetensors"))
    return ensemble.eval()
