"""Ensemble folders: one ``model.safetensors`` holding every member's weights and the
combiner's, a ``config.json`` that rebuilds it (each member's own config inside), and a card
that keeps the members' provenance. Self-contained: it runs offline, without its members."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ..adapters import adapter_for
from ..architectures import ModelConfig, build_model
from ..ensembles import get_method
from ..ensembles.base import Ensemble, MemberRecord
from ..errors import ModelFormatError
from .cards import Card, check_model_id
from .folder import build_within_limits, check_card_matches, load_state, read_weights, weights_header

CONFIG_FORMAT = 1
#: The paper's largest ensemble has 8 members; 32 leaves room and bounds what a config can ask to build.
MAX_MEMBERS = 32


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


def build_ensemble(method: str, members: list, infos: list[MemberRecord], organs: list[str], options: dict[str, Any] | None = None) -> Ensemble:
    return get_method(method).build(members, infos, organs, **(options or {}))


def load_ensemble(folder: Path, card: Card, config: dict[str, Any]) -> Ensemble:
    for key in ("method", "organs", "members"):
        if key not in config:
            raise ModelFormatError(f"{folder}/config.json: missing field {key!r}")
    if config["method"] != card.method:
        raise ModelFormatError(f"{folder}: card method {card.method!r} disagrees with config.json's {config['method']!r}")
    if not isinstance(config["organs"], list) or list(config["organs"]) != list(card.organs):
        raise ModelFormatError(f"{folder}: card organs {card.organs} disagree with config.json organs {config['organs']}")
    check_card_matches(folder, card, config)
    records = _member_records(config["members"], folder)
    options = config.get("options") or {}
    if not isinstance(options, dict):
        raise ModelFormatError(f"{folder}/config.json: field 'options' must be a mapping")

    def build() -> Ensemble:
        members = [make() for make, _ in records]
        return build_ensemble(config["method"], members, [record for _, record in records], list(config["organs"]), options)

    where = str(folder / "model.safetensors")
    ensemble = build_within_limits(build, weights_header(folder, card), where)
    load_state(ensemble, read_weights(folder), where)
    return ensemble.eval()


def _member_records(members: Any, folder: Path) -> list[tuple[Callable[[], Any], MemberRecord]]:
    """How to build each member (its config checked: one of ours, or an imported model's, which
    its adapter checks as it builds) and its provenance, before any member is built."""
    if not (isinstance(members, list) and 0 < len(members) <= MAX_MEMBERS):
        raise ModelFormatError(f"{folder}/config.json: field 'members' must list 1 to {MAX_MEMBERS} members")
    out = []
    for i, m in enumerate(members):
        if not (isinstance(m, dict) and isinstance(m.get("config"), dict) and isinstance(m.get("model_id"), str) and isinstance(m.get("organs"), list)):
            raise ModelFormatError(f"{folder}/config.json: member {i} needs model_id, organs and config")
        check_model_id(m["model_id"], f"{folder}/config.json: member {i}")
        adapter = adapter_for(m["config"].get("architecture"))
        if adapter is not None:
            make = partial(adapter.build, m["config"])
        else:
            make = partial(build_model, ModelConfig.from_dict(m["config"]))
        out.append((make, MemberRecord(m["model_id"], list(m["organs"]), m["config"])))
    return out
