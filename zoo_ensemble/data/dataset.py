"""Datasets: folders of CT cases with label maps, and which organs each dataset annotates.

Three layouts are read:

* ``generic``: ``images/NAME.nii.gz`` and ``labels/NAME.nii.gz`` with a ``dataset.json``
  manifest that names the label map and the annotated organs (and optionally fixed splits);
* ``structseg``: StructSeg 2019 as distributed, one folder per patient (``1/data.nii.gz``,
  ``1/label.nii.gz``);
* ``segthor``: SegTHOR as distributed, ``train/Patient_01/Patient_01.nii.gz`` with ``GT.nii.gz``.

Partial labels are first-class: an organ the dataset does not annotate is *unknown*, never
background, and :meth:`Dataset.load` returns masks only for annotated organs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_text
from ..errors import DatasetError
from ..volumes import IMAGE_SUFFIXES, Volume, read_ct, read_labels, strip_image_suffix
from ..labelmaps import LabelMap, check_laterality, get_label_map, label_map_names
from ..organs import get_organ

MANIFEST = "dataset.json"
MANIFEST_FORMAT = "zoo-dataset/1"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Case:
    case_id: str
    image: Path
    labels: Path | None


@dataclass
class Dataset:
    name: str
    root: Path
    layout: str
    label_map: LabelMap
    organs: tuple[str, ...]
    cases: list[Case]
    fixed_splits: dict[str, list[str]] = field(default_factory=dict)
    salt: str | None = None  # the manifest's ``case_salt``; else derived from the data (see case_hash)

    def __post_init__(self) -> None:
        for organ in self.organs:
            get_organ(organ)
            if organ not in self.label_map.values:
                raise DatasetError(
                    f"dataset {self.name!r} says it annotates {organ!r}, but label map {self.label_map.name!r} has no value for it"
                )
        ids = [c.case_id for c in self.cases]
        if len(set(ids)) != len(ids):
            raise DatasetError(f"dataset {self.name!r} has duplicate case ids")

    def annotates(self, organ: str) -> bool:
        return organ in self.organs

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.case_id == case_id:
                return c
        raise DatasetError(f"dataset {self.name!r} has no case {case_id!r}")

    def load(self, case: Case, organs: list[str] | None = None, check_hu: bool = True) -> tuple[Volume, dict[str, np.ndarray]]:
        """Read a case: its CT and a boolean mask per requested organ that the dataset annotates."""
        volume = read_ct(case.image, check_hu=check_hu)
        if case.labels is None:
            return volume, {}
        labels = read_labels(case.labels, like=volume)
        wanted = [o for o in (organs or self.organs) if self.annotates(o)]
        masks = self.label_map.masks(labels.array, wanted)
        check_laterality(masks)
        return volume, masks

    def split(self, seed: int = 0, val: float = 0.15, test: float = 0.15) -> dict[str, list[Case]]:
        """Split by patient (never by slice): the manifest's fixed splits, else a seeded shuffle."""
        if self.fixed_splits:
            return {s: [self.case(i) for i in self.fixed_splits.get(s, [])] for s in SPLITS}
        ids = split_ids([c.case_id for c in self.cases], seed, val, test)
        return {s: [self.case(i) for i in ids[s]] for s in SPLITS}

    def case_hash(self, case: Case) -> str:
        """A fingerprint of a case for leakage checks on model cards: sha256 of the dataset's salt
        and the case id. Without the salt a case id (``A0-001``, ``Patient_01``) cannot be
        recovered by trying names; anyone who holds the same data files gets the same hashes,
        so leakage checks match across machines."""
        return hashlib.sha256(f"{self.case_salt()}/{self.name}/{case.case_id}".encode()).hexdigest()[:16]

    def case_salt(self) -> str:
        """The manifest's ``case_salt``, else a digest of the first 1 MiB of the first case's image."""
        if self.salt is None:
            first = sorted(self.cases, key=lambda c: c.case_id)[0]
            try:
                with open(first.image, "rb") as fh:
                    head = fh.read(1 << 20)
            except OSError as exc:
                raise DatasetError(f"{first.image}: cannot be read ({exc.strerror})") from None
            self.salt = hashlib.sha256(head).hexdigest()[:32]
        return self.salt


def split_ids(ids: list[str], seed: int = 0, val: float = 0.15, test: float = 0.15) -> dict[str, list[str]]:
    """Seeded patient-level split; with 3 or more cases, validation and test get at least one each."""
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise DatasetError(f"split fractions val={val}, test={test} must be in [0, 1) and sum below 1")
    order = sorted(ids)
    rng = np.random.default_rng(seed)
    order = [order[i] for i in rng.permutation(len(order))]
    n = len(order)
    n_test = int(round(n * test))
    n_val = int(round(n * val))
    if n >= 3:
        n_test, n_val = max(n_test, 1 if test > 0 else 0), max(n_val, 1 if val > 0 else 0)
    n_test = min(n_test, max(n - 1, 0))
    n_val = min(n_val, max(n - 1 - n_test, 0))
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def _images_in(folder: Path) -> dict[str, Path]:
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES) and not p.name.startswith("."):
            out[strip_image_suffix(p.name)] = p
    return out


def _first(folder: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suffix in (".nii.gz", ".nii"):
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


def detect_layout(root: Path) -> str:
    if (root / MANIFEST).is_file() or (root / "images").is_dir():
        return "generic"
    if (root / "train").is_dir() or any(p.is_dir() and p.name.startswith("Patient_") for p in root.iterdir()):
        return "segthor"
    if any(p.is_dir() and _first(p, ("data",)) for p in root.iterdir()):
        return "structseg"
    raise DatasetError(
        f"{root}: not a dataset folder (expected images/ and labels/ with {MANIFEST}, StructSeg's "
        "1/data.nii.gz + 1/label.nii.gz, or SegTHOR's train/Patient_01/Patient_01.nii.gz + GT.nii.gz)"
    )


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return data


def _generic_cases(root: Path) -> list[Case]:
    img_dir, lab_dir = root / "images", root / "labels"
    if not img_dir.is_dir():
        raise DatasetError(f"{root}: generic layout needs an images/ folder")
    images = _images_in(img_dir)
    labels = _images_in(lab_dir) if lab_dir.is_dir() else {}
    orphans = sorted(set(labels) - set(images))
    if orphans:
        raise DatasetError(f"{lab_dir}: label maps without an image: {', '.join(orphans[:5])}")
    return [Case(cid, images[cid], labels.get(cid)) for cid in images]


def _structseg_cases(root: Path) -> list[Case]:
    cases = []
    dirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name))
    for d in dirs:
        image = _first(d, ("data",))
        if image is not None:
            cases.append(Case(d.name, image, _first(d, ("label",))))
    return cases


def _segthor_cases(root: Path) -> list[Case]:
    base = root / "train" if (root / "train").is_dir() else root
    cases = []
    for d in sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith("Patient_")):
        image = _first(d, (d.name,))
        if image is not None:
            cases.append(Case(d.name, image, _first(d, ("GT",))))
    return cases


_DEFAULT_MAPS = {"structseg": "structseg", "segthor": "segthor"}


def open_dataset(
    root: str | Path,
    label_map: str | LabelMap | None = None,
    organs: list[str] | None = None,
    name: str | None = None,
) -> Dataset:
    """Open a dataset folder; ``label_map`` and ``organs`` override what the layout or manifest says."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    layout = detect_layout(root)
    manifest = _read_manifest(root) if layout == "generic" else {}
    spec = label_map or manifest.get("label_map") or _DEFAULT_MAPS.get(layout)
    if spec is None:
        raise DatasetError(f"{root}: no {MANIFEST} names the label map; pass one (e.g. --labels 1=heart,2=aorta)")
    lm = get_label_map(spec)
    annotated = tuple(organs or manifest.get("organs") or lm.organs)
    cases = {"generic": _generic_cases, "structseg": _structseg_cases, "segthor": _segthor_cases}[layout](root)
    if not cases:
        raise DatasetError(f"{root}: no cases found in the {layout} layout")
    splits = manifest.get("splits") or {}
    return Dataset(
        name=name or manifest.get("name") or root.name,
        root=root,
        layout=layout,
        label_map=lm,
        organs=annotated,
        cases=cases,
        fixed_splits={s: list(splits.get(s, [])) for s in SPLITS} if splits else {},
        salt=str(manifest["case_salt"]) if isinstance(manifest.get("case_salt"), str) and manifest["case_salt"] else None,
    )


def write_manifest(root: Path, name: str, label_map: LabelMap, organs: list[str] | tuple[str, ...], **extra: Any) -> Path:
    """Write a generic-layout ``dataset.json`` (atomically)."""
    registered = label_map.name in label_map_names() and get_label_map(label_map.name) == label_map
    lm: Any = label_map.name if registered else label_map.as_dict()
    data = {"format": MANIFEST_FORMAT, "name": name, "label_map": lm, "organs": list(organs), **extra}
    return write_text(root / MANIFEST, json.dumps(data, indent=2) + "\n")
