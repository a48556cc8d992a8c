"""Training datasets that plugins register (``register_datasets``), rendered once per version
under the zoo home: what ``zoo compose`` trains a learned ensemble on when no ``--data`` is given."""

from __future__ import annotations

from collections.abc import Sequence

from ..atomic import atomic_folder
from ..errors import DatasetError
from ..paths import zoo_home
from ..registry import get_registry
from ..specs import DatasetSpec
from .dataset import Dataset, open_dataset


def registered_for(organs: Sequence[str]) -> list[tuple[Dataset, str]]:
    """Registered datasets that together annotate every organ of ``organs`` (those that cover
    the most first), each with the plugin that registered it; an organ none annotates is an
    error naming ``--data``."""
    reg = get_registry()
    specs: list[DatasetSpec] = [reg.get("datasets", n) for n in reg.names("datasets")]
    chosen: list[DatasetSpec] = []
    for organ in organs:
        if any(organ in s.organs for s in chosen):
            continue
        offers = [s for s in specs if organ in s.organs]
        if not offers:
            raise DatasetError(f"no registered dataset annotates {organ!r}; give training data with --data DIR")
        chosen.append(max(offers, key=lambda s: sum(o in s.organs for o in organs)))
    return [(render(s), reg.source("datasets", s.name) or "?") for s in chosen]


def render(spec: DatasetSpec) -> Dataset:
    """The dataset ``spec`` builds, made once (atomically: a folder is complete or absent)."""
    folder = zoo_home() / "datasets" / f"{spec.name}-{spec.version}"
    if not (folder / "dataset.json").is_file():
        with atomic_folder(folder) as tmp:
            spec.build(tmp)
    return open_dataset(folder)
