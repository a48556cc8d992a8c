"""``zoo import FRAMEWORK FOLDER``: another framework's trained model written as a zoo model
folder (weights in safetensors, a checked config, a card with its provenance), loaded once with
every check and run on a dummy volume before it is kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..adapters import get_adapter
from ..errors import ZooError
from ..outputs import check_output_folder, is_model_folder
from ..paths import zoo_home
from .cards import Card, check_model_id
from .folder import load_state, write_folder
from .loading import build_imported, forward_check
from .model import ZooModel


@dataclass(frozen=True)
class ImportRequest:
    """What ``zoo import`` was asked: the framework, its model folder and how to read it."""

    framework: str
    source: Path
    organs: str
    name: str | None = None
    out: Path | None = None
    folds: str | None = None
    checkpoint: str = "final"
    trust_pickle: bool = False
    mirroring: bool = True
    license: str = "other"
    force: bool = False


def import_model(r: ImportRequest) -> ZooModel:
    """Read, check, write and verify; the folder appears only once it loads and runs."""
    adapter = get_adapter(r.framework)
    imported = adapter.read(
        Path(r.source), organs=r.organs, folds=r.folds, checkpoint=r.checkpoint, trust_pickle=r.trust_pickle, mirroring=r.mirroring,
    )
    model_id = check_model_id(r.name or imported.name, "--name", ZooError)
    out = Path(r.out) if r.out else zoo_home() / "models" / model_id
    check_output_folder(out, "zoo model folder", owned=is_model_folder(out), force=r.force, inputs=[Path(r.source)])
    card = _card(model_id, adapter.name, adapter.architecture, imported, r.license)
    card.validate()
    where = f"{r.source} (as {model_id})"
    network = build_imported(adapter, imported.config, {k: tuple(v.shape) for k, v in imported.state.items()}, where)
    load_state(network, imported.state, where)
    forward_check(network, card, where)  # it runs before anything is written
    write_folder(out, imported.state, imported.config, card)
    return ZooModel.from_folder(out)


def _card(model_id: str, framework: str, architecture: str, imported: Any, license: str) -> Card:
    patch = imported.card.get("patch_size") or [160, 160]
    return Card(
        model_id=model_id, kind="binary" if len(imported.organs) == 1 else "multiclass", organs=list(imported.organs), windows=[],
        architecture=architecture, input_size=[max(16, min(2048, int(v))) for v in patch[-2:]], crop="none", spacing=None,
        license=license, training={"datasets": [{"name": imported.card.get("dataset", "")}], "framework": framework},
        extra_zoo={"imported": {"framework": framework, **imported.card}},
    )
