"""The file formats a prediction is written in, which one an output name asks for, and the writer.

Label maps (NIfTI, NRRD, MHA) are written on the input's grid by SimpleITK; DICOM-SEG and
RTSTRUCT reference the DICOM series the CT was read from (``dicom/``). A ``.dcm`` name alone does
not say which of the two is meant, so it needs ``--format`` or a ``.seg.dcm`` / ``.rtstruct.dcm``
name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .dicom import Producer
from .dicom.series import check_referenceable, frames_of, source_headers
from .labelmaps import LabelMap
from .outputs import OutputError
from .volumes import Volume, write_labels

#: Format -> the file-name endings it writes (the first is used for new names).
FORMATS: dict[str, tuple[str, ...]] = {
    "nifti": (".nii.gz", ".nii"),
    "nrrd": (".nrrd",),
    "mha": (".mha",),
    "dicom-seg": (".seg.dcm", ".dcm"),
    "rtstruct": (".rtstruct.dcm", ".rt.dcm", ".dcm"),
}
DICOM_FORMATS = ("dicom-seg", "rtstruct")
ALL_SUFFIXES = tuple(dict.fromkeys(s for suffixes in FORMATS.values() for s in suffixes))


def format_for(path: Path | None, requested: str | None = None) -> str:
    """The format to write: ``requested`` (checked against the name), else the one ``path``'s
    ending names; NIfTI when neither says."""
    name = path.name.lower() if path is not None else ""
    if requested is not None:
        if requested not in FORMATS:
            raise OutputError(f"unknown output format {requested!r} (choose from {', '.join(FORMATS)})")
        if name and not name.endswith(FORMATS[requested]):
            raise OutputError(f"{path}: --format {requested} writes {' or '.join(FORMATS[requested])} files")
        return requested
    if not name:
        return "nifti"
    for fmt, suffixes in FORMATS.items():
        if name.endswith(suffixes[0]) or (fmt not in DICOM_FORMATS and name.endswith(suffixes)):
            return fmt
    if name.endswith(".rt.dcm"):
        return "rtstruct"
    if name.endswith(".dcm"):
        raise OutputError(f"{path}: a .dcm file may be DICOM-SEG or RTSTRUCT; say --format dicom-seg or --format rtstruct")
    raise OutputError(f"{path}: unsupported file type (use one of {', '.join(ALL_SUFFIXES)})")


def suffix(fmt: str) -> str:
    """The ending of a new file in ``fmt``."""
    return FORMATS[fmt][0]


def needs_series(fmt: str) -> bool:
    """Whether ``fmt`` references the DICOM series the CT came from."""
    return fmt in DICOM_FORMATS


def check_source(fmt: str, volume: Volume, where: str) -> None:
    """Before a model runs: a DICOM format needs a source series it can reference (identifiers
    present and unique); the other formats need nothing."""
    if needs_series(fmt):
        check_referenceable(volume.dicom_headers, where, {"dicom-seg": "DICOM-SEG", "rtstruct": "RTSTRUCT"}[fmt])


def write_prediction(
    fmt: str, masks: Mapping[str, np.ndarray], label_map: LabelMap | None, volume: Volume, path: Path, producer: Producer,
) -> Path:
    """Write one case's organ masks (canonical order) in ``fmt``, atomically; ``label_map`` gives
    the values of a label map format (the DICOM formats name their segments instead)."""
    if needs_series(fmt):
        name = {"dicom-seg": "DICOM-SEG", "rtstruct": "RTSTRUCT"}[fmt]
        headers = source_headers(volume.dicom_headers, path, name)
        frames = frames_of(volume.to_sitk(_numbered(masks, volume)), headers, str(path))
        if fmt == "dicom-seg":
            from .dicom.seg import write_seg

            return write_seg(list(masks), frames, headers, path, producer)
        from .dicom.rtstruct import write_rtstruct

        return write_rtstruct(list(masks), frames, headers, path, producer)
    if label_map is None:
        raise ValueError(f"writing {fmt} needs a label map")
    return write_labels(label_map.encode(masks), volume, path)


def _numbered(masks: Mapping[str, np.ndarray], volume: Volume) -> np.ndarray:
    """One array holding ``i + 1`` where the ``i``-th organ is (canonical order)."""
    numbers = np.zeros(volume.shape, np.uint8 if len(masks) < 256 else np.uint16)
    for i, mask in enumerate(masks.values()):
        numbers[mask] = i + 1
    return numbers
