"""Write synthetic phantom cohorts to disk in the generic dataset layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ...errors import DatasetError
from ...labelmaps import get_label_map
from ...volumes import write_image
from ..dataset import Dataset, open_dataset, write_manifest
from .generator import SOURCES, PhantomCase, generate_case

GENERATOR_VERSION = 1


def case_id(source: str, seed: int, index: int) -> str:
    """Ids carry source and seed so that cohorts can be pooled without clashes."""
    return f"{source}{seed}-{index:03d}"


def _stored(array: np.ndarray, case: PhantomCase, orientation: str) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(case.spacing)
    image.SetOrigin(case.origin)
    return sitk.DICOMOrient(image, orientation)


def _write(image: sitk.Image, path: Path) -> None:
    write_image(image, path)


def same_cohort(out: str | Path, source: str, cases: int, seed: int, scale: float) -> bool:
    """Whether ``out`` is missing, empty, or a cohort this generator made with these settings
    (so writing it again only finishes what an interrupted run left)."""
    out = Path(out)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return True
    if not out.is_dir():
        return False
    if not (out / "dataset.json").exists():  # an interrupted run writes the manifest last
        entries = {p.name for p in out.iterdir()}
        prefix = case_id(source, seed, 0)[:-3]
        return entries <= {"images", "labels"} and all(
            f.name.startswith(prefix) or f.name.startswith(".") for d in entries for f in (out / d).iterdir()
        )
    try:
        manifest = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    wanted = {"source": source, "seed": seed, "cases": cases, "scale": scale, "version": GENERATOR_VERSION}
    return isinstance(manifest, dict) and manifest.get("generator") == wanted


def write_case(out: str | Path, source: str, seed: int, index: int, scale: float) -> None:
    """Write one case of a cohort (image and labels, each atomically) unless both are there: cases
    are independent, so several processes may write one cohort's cases side by side."""
    profile = SOURCES[source]
    cid = case_id(source, seed, index)
    img_path, lab_path = Path(out) / "images" / f"{cid}.nii.gz", Path(out) / "labels" / f"{cid}.nii.gz"
    if img_path.exists() and lab_path.exists():
        return
    img_path.parent.mkdir(parents=True, exist_ok=True)
    lab_path.parent.mkdir(parents=True, exist_ok=True)
    case = generate_case(profile, seed, index, scale)
    labels = get_label_map(profile.label_map).encode({o: case.labels[o] for o in profile.organs})
    _write(_stored(case.image, case, profile.orientation), img_path)
    _write(_stored(labels, case, profile.orientation), lab_path)


def write_cohort(
    out: str | Path,
    source: str = "A",
    cases: int = 10,
    seed: int = 0,
    scale: float = 2.0,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Generate ``cases`` phantom patients of ``source`` into ``out`` and return the dataset.

    Each file is written atomically and the manifest last, so an interrupted run leaves no
    half-written case and a re-run with the same arguments reuses the finished ones.
    """
    if source not in SOURCES:
        raise DatasetError(f"unknown phantom source {source!r}: use one of {', '.join(SOURCES)}")
    if cases < 1:
        raise DatasetError("a cohort needs at least one case")
    if not scale > 0:
        raise DatasetError(f"scale must be > 0, got {scale}")
    profile = SOURCES[source]
    label_map = get_label_map(profile.label_map)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(cases):
        write_case(out, source, seed, i, scale)
        if progress:
            progress(i + 1, cases)
    write_manifest(
        out,
        name=f"{profile.dataset}-s{seed}",
        label_map=label_map,
        organs=profile.organs,
        description=f"synthetic thoracic CT phantoms, source {source} ({profile.dataset})",
        generator={"source": source, "seed": seed, "cases": cases, "scale": scale, "version": GENERATOR_VERSION},
    )
    return open_dataset(out)
