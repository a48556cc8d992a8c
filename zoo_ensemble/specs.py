"""What plugins register: the plain data types of the plugin contract.

Organs (with their default CT window), label maps, architecture families, ensemble methods and
zoo models. They sit at the bottom of the package and import nothing of it but the errors, so
the plugin manager can check what a plugin registers without importing the modules that later
look entries up (see ``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LabelMapError, ZooError

log = logging.getLogger("zoo_ensemble")

#: A model id names a folder, a Hub repo and a table row: letters, digits, ``.``, ``_`` and ``-``,
#: starting with a letter or digit, at most 96 characters (no path, markup or control characters).
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def check_model_id(model_id: Any, where: str = "model id", error: type[Exception] = ZooError) -> str:
    """A model id that is safe as a folder name and in a terminal, or ``error`` naming it."""
    if not (isinstance(model_id, str) and MODEL_ID.fullmatch(model_id) and ".." not in model_id):
        shown = repr(model_id)[:40].encode("ascii", "backslashreplace").decode()
        raise error(f"{where} {shown} is not a model id (letters, digits, '.', '_' and '-', at most 96, starting with a letter or digit)")
    return model_id


@dataclass(frozen=True)
class Window:
    """A CT display window: HU in ``[level - width/2, level + width/2]`` maps onto ``[0, 1]``."""

    width: float
    level: float

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ValueError(f"window width must be > 0, got {self.width}")

    @property
    def low(self) -> float:
        return self.level - self.width / 2

    @property
    def high(self) -> float:
        return self.level + self.width / 2

    def as_dict(self) -> dict[str, float]:
        return {"width": self.width, "level": self.level}


#: SNOMED CT concept ids are 6 to 18 digits; TotalSegmentator names are snake_case.
_SNOMED_ID = re.compile(r"[1-9][0-9]{5,17}")
_SNAKE = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class Organ:
    """An organ of the vocabulary.

    ``snomed`` is its SNOMED CT concept ``(id, meaning)``, which DICOM-SEG segments and RTSTRUCT
    ROIs carry; ``totalsegmentator`` the TotalSegmentator v2 class names that make it (the lungs
    are lobes there); ``color`` the RGB colour it is drawn in by DICOM viewers and planning systems.
    """

    name: str
    window: Window
    description: str
    small: bool = False  # thin or small structures: oversampled when training
    snomed: tuple[str, str] | None = None
    totalsegmentator: tuple[str, ...] = ()
    color: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        where = f"organ {self.name!r}"
        if self.snomed is not None:
            ok = isinstance(self.snomed, tuple) and len(self.snomed) == 2 and all(isinstance(v, str) for v in self.snomed)
            if not (ok and _SNOMED_ID.fullmatch(self.snomed[0]) and 0 < len(self.snomed[1]) <= 64):
                raise ValueError(f"{where}: snomed must be (concept id of 6-18 digits, meaning), got {self.snomed!r}")
        if not isinstance(self.totalsegmentator, tuple) or not all(isinstance(n, str) and _SNAKE.fullmatch(n) for n in self.totalsegmentator):
            raise ValueError(f"{where}: totalsegmentator must be a tuple of snake_case class names")
        if self.color is not None:
            c = self.color
            if not (isinstance(c, tuple) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)):
                raise ValueError(f"{where}: color must be three integers 0..255, got {c!r}")


@dataclass(frozen=True)
class LabelMap:
    """``organ -> label values``; several values may make one organ (TotalSegmentator lobes).

    The values are checked here; that the organs exist is checked where the map is registered
    or parsed (the vocabulary lives in the registry).
    """

    name: str
    values: Mapping[str, tuple[int, ...]]
    description: str = ""

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for organ, vals in self.values.items():
            if not vals:
                raise LabelMapError(f"label map {self.name!r}: organ {organ!r} has no value")
            for v in vals:
                if not 0 < int(v) < 65536:
                    raise LabelMapError(f"label map {self.name!r}: value {v} of {organ!r} is not in 1..65535")
                if v in seen:
                    raise LabelMapError(f"label map {self.name!r}: value {v} is given to both {seen[v]!r} and {organ!r}")
                seen[v] = organ

    @property
    def organs(self) -> list[str]:
        return list(self.values)

    def mask(self, labels: np.ndarray, organ: str) -> np.ndarray:
        """Boolean mask of ``organ`` in a label array."""
        if organ not in self.values:
            raise LabelMapError(f"label map {self.name!r} has no organ {organ!r} (it has {', '.join(self.values)})")
        vals = self.values[organ]
        if len(vals) == 1:
            return labels == vals[0]
        return np.isin(labels, vals)

    def masks(self, labels: np.ndarray, organs: list[str] | None = None) -> dict[str, np.ndarray]:
        """One boolean mask per organ (all organs of the map by default)."""
        return {o: self.mask(labels, o) for o in (organs or self.organs)}

    def unknown_values(self, labels: np.ndarray) -> dict[int, int]:
        """Label values present in ``labels`` that this map does not name, with voxel counts."""
        known = {v for vals in self.values.values() for v in vals} | {0}
        values, counts = np.unique(labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts) if int(v) not in known}

    def warn_unknown(self, labels: np.ndarray, where: str) -> None:
        """Say once per file which values this map leaves out (they are scored as background)."""
        unknown = self.unknown_values(labels)
        if unknown:
            shown = ", ".join(f"{v} ({c} voxels)" for v, c in list(unknown.items())[:8])
            log.warning("%s: label value(s) %s are not in label map %r and count as background", where, shown, self.name)

    def encode(self, masks: Mapping[str, np.ndarray], dtype: type = np.uint8) -> np.ndarray:
        """Write masks into one label array with this map's (first) value per organ.

        Where masks overlap, the organ later in ``masks`` wins.
        """
        if not masks:
            raise LabelMapError("nothing to encode")
        shape = next(iter(masks.values())).shape
        out = np.zeros(shape, dtype=dtype)
        for organ, m in masks.items():
            if organ not in self.values:
                raise LabelMapError(f"label map {self.name!r} has no value for organ {organ!r}")
            out[m] = self.values[organ][0]
        return out

    def as_dict(self) -> dict[str, list[int]]:
        return {o: list(v) for o, v in self.values.items()}


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture family: ``build(config) -> model`` and its size presets."""

    name: str
    build: Callable[[Any], Any]
    presets: dict[str, dict[str, Any]]
    description: str = ""


@dataclass(frozen=True)
class MethodSpec:
    """An ensemble method: ``build(members, infos, organs, **options) -> ensemble``."""

    name: str
    build: Callable[..., Any]
    trainable: bool
    description: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin offers: a Hub repo at a pinned revision, or a folder inside its package."""

    model_id: str
    organs: tuple[str, ...]
    architecture: str | None = None
    method: str | None = None
    kind: str = "binary"
    hub_repo: str | None = None
    revision: str | None = None
    path: str | Path | None = None
    windows: tuple[Window, ...] = ()
    license: str | None = None
    description: str = ""
    headline: float | None = None  # validation Dice when known without loading the model

    def check(self) -> None:
        if (self.hub_repo is None) == (self.path is None):
            raise ZooError(f"model spec {self.model_id!r}: give exactly one of hub_repo and path")
        if self.hub_repo and not (self.revision and len(self.revision) == 40 and all(c in "0123456789abcdef" for c in self.revision)):
            raise ZooError(f"model spec {self.model_id!r}: a Hub model needs a pinned revision (a 40-hex commit)")
        check_model_id(self.model_id, "model spec", ZooError)
        if self.kind == "binary" and len(self.organs) != 1:
            raise ZooError(f"model spec {self.model_id!r}: a binary model has exactly one organ")


@dataclass(frozen=True)
class DatasetSpec:
    """A training dataset a plugin offers for its organs: ``build(folder)`` writes it in the
    generic dataset layout (``images/``, ``labels/``, ``dataset.json``) into an empty folder.
    The toolkit renders it once per ``version`` and keeps it under the zoo home; ``zoo compose``
    trains on it when no ``--data`` is given."""

    name: str
    organs: tuple[str, ...]
    build: Callable[[Path], object]
    version: str = "1"
    description: str = ""

    def check(self) -> None:
        check_model_id(self.name, "dataset spec", ZooError)
        check_model_id(self.version, f"dataset spec {self.name!r}: version", ZooError)
        if not self.organs or not callable(self.build):
            raise ZooError(f"dataset spec {self.name!r}: needs organs and a build(folder) function")


@dataclass
class ImportedModel:
    """What a member adapter's ``read`` returns: the weights as one flat state dict (each
    tensor once), the ``config.json`` its ``build`` takes, the organs in output order, the
    facts its card keeps under ``zoo.imported`` (with ``framework``: the adapter's name) (provenance: source files and their
    sha256) and a suggested model id."""

    state: dict[str, Any]
    config: dict[str, Any]
    organs: list[str]
    card: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass(frozen=True)
class MemberAdapterSpec:
    """Another framework's trained models as zoo members (nnU-Net v2 is the first).

    ``zoo import NAME FOLDER`` calls ``read(folder, organs=..., folds=..., checkpoint=...,
    trust_pickle=..., mirroring=...)``, which returns an :class:`ImportedModel`; the toolkit writes it as a zoo
    model folder whose card names ``architecture``. Loading that folder calls ``build(config)``
    (on the ``meta`` device first, to compare shapes with the weights): a
    :class:`~zoo_ensemble.architectures.volume.VolumeNetwork`, which predicts whole volumes
    into per-organ logits on the CT's grid. ``extra`` is the pip extra that brings the
    framework, named when it is missing."""

    name: str
    architecture: str
    read: Callable[..., Any]
    build: Callable[[dict[str, Any]], Any]
    extra: str = ""
    description: str = ""

    def check(self) -> None:
        check_model_id(self.name, "member adapter", ZooError)
        check_model_id(self.architecture, f"member adapter {self.name!r}: architecture", ZooError)
        if not (callable(self.read) and callable(self.build)):
            raise ZooError(f"member adapter {self.name!r}: needs read(folder, ...) and build(config) functions")
