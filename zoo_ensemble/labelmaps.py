"""Dataset label maps: which integer values of a label image mean which organ.

A label map says nothing about which organs a dataset *annotates*; a dataset states that
separately (see :mod:`zoo_ensemble.data.dataset`), because an organ that is not annotated is
unknown, not background.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import LabelMapError
from .organs import get_organ
from .specs import LabelMap
from .registry import get_registry, lookup

__all__ = ["BUILTIN_LABEL_MAPS", "LabelMap", "check_laterality", "get_label_map", "label_map_names", "parse_custom"]


def _lm(name: str, description: str, **values: int | tuple[int, ...]) -> LabelMap:
    return LabelMap(
        name,
        {o: (v,) if isinstance(v, int) else tuple(v) for o, v in values.items()},
        description,
    )


BUILTIN_LABEL_MAPS: tuple[LabelMap, ...] = (
    _lm(
        "structseg",
        "StructSeg 2019 task 3 thoracic OARs, as MultiTalent converts them",
        lung_left=1, lung_right=2, heart=3, esophagus=4, trachea=5, spinal_cord=6,
    ),
    _lm(
        "structseg_thesis",
        "StructSeg 2019 thoracic OARs in the order of Crespi et al.'s code (lungs and trachea/esophagus swapped)",
        lung_right=1, lung_left=2, heart=3, trachea=4, esophagus=5, spinal_cord=6,
    ),
    _lm("segthor", "SegTHOR (ISBI 2019)", esophagus=1, heart=2, trachea=3, aorta=4),
    _lm(
        "totalsegmentator",
        "TotalSegmentator v2 'total' task ids (lung lobes merged)",
        lung_left=(10, 11), lung_right=(12, 13, 14), esophagus=15, trachea=16,
        heart=51, aorta=52, spinal_cord=79,
    ),
    _lm(
        "zoo",
        "zoo-ensemble's own order (also the LIDC-IDRI-0001 sample's)",
        lung_left=1, lung_right=2, heart=3, trachea=4, esophagus=5, spinal_cord=6, aorta=7,
    ),
)

def _registered() -> dict[str, LabelMap]:
    reg = get_registry()
    return {name: reg.get("label_maps", name) for name in reg.names("label_maps")}


def label_map_names() -> list[str]:
    return list(_registered())


_CUSTOM_ITEM = re.compile(r"^\s*(\d+)\s*=\s*([a-z0-9_]+)\s*$")


def parse_custom(text: str, name: str = "custom") -> LabelMap:
    """Parse a user-declared map such as ``"1=heart,2=aorta"`` (``"10=lung_left,11=lung_left"``
    gives one organ two values)."""
    values: dict[str, list[int]] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        m = _CUSTOM_ITEM.match(item)
        if not m:
            raise LabelMapError(f"cannot read label map item {item.strip()!r}: expected VALUE=organ, e.g. 1=heart")
        values.setdefault(m.group(2), []).append(int(m.group(1)))
    if not values:
        raise LabelMapError(f"empty label map {text!r}")
    return _checked(LabelMap(name, {o: tuple(v) for o, v in values.items()}, f"declared: {text}"))


def _checked(label_map: LabelMap) -> LabelMap:
    """A user-declared map whose organs are all in the vocabulary."""
    for organ in label_map.values:
        get_organ(organ)
    return label_map


def get_label_map(spec: str | Mapping[str, object] | LabelMap) -> LabelMap:
    """Resolve a label map from a registered name, a ``1=heart,...`` string or a mapping.

    A mapping may be ``{"heart": 1}`` / ``{"lung_left": [10, 11]}`` or ``{"1": "heart"}``.
    """
    if isinstance(spec, LabelMap):
        return spec
    if isinstance(spec, Mapping):
        return _from_mapping(spec)
    if isinstance(spec, str) and "=" in spec:
        return parse_custom(spec)
    return lookup("label_maps", spec, "label map", LabelMapError, f"use one of {', '.join(label_map_names())}, or declare one like 1=heart,2=aorta")


def _from_mapping(spec: Mapping[str, object]) -> LabelMap:
    values: dict[str, list[int]] = {}
    for key, val in spec.items():
        if str(key).isdigit() and isinstance(val, str):
            values.setdefault(val, []).append(int(key))
        elif isinstance(val, int):
            values.setdefault(str(key), []).append(val)
        elif isinstance(val, (list, tuple)) and all(isinstance(v, int) for v in val):
            values.setdefault(str(key), []).extend(val)
        else:
            raise LabelMapError(f"cannot read label map entry {key!r}: {val!r}")
    return _checked(LabelMap("custom", {o: tuple(v) for o, v in values.items()}, "declared in a manifest"))


def check_laterality(masks: Mapping[str, np.ndarray], min_voxels: int = 50) -> None:
    """Refuse masks whose left lung lies on the patient's right (a swapped label map).

    Masks must be in the canonical LPS orientation of :mod:`zoo_ensemble.volumes`, where the x index
    grows towards the patient's left.
    """
    left, right = masks.get("lung_left"), masks.get("lung_right")
    if left is None or right is None or left.sum() < min_voxels or right.sum() < min_voxels:
        return
    x_left = np.nonzero(left)[-1].mean()
    x_right = np.nonzero(right)[-1].mean()
    if x_left < x_right:
        raise LabelMapError(
            "the label called lung_left lies on the patient's right: the label map probably swaps "
            "left and right (for StructSeg try --labels structseg_thesis)"
        )


def check_covers(label_map: LabelMap, organs: Sequence[str]) -> None:
    """Refuse a label map that has no value for one of ``organs`` (it could not write them)."""
    missing = [o for o in organs if o not in label_map.values]
    if missing:
        raise LabelMapError(f"label map {label_map.name!r} has no value for {', '.join(missing)}; choose another label map")
