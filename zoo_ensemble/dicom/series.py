"""The DICOM series a CT was read from: its headers read with pydicom, checked, in slice order.

SimpleITK reads a series onto a regular grid whatever the files hold; a series with a missing
slice, two sizes of image or an MR modality would silently become a wrong CT. So the headers are
checked before the pixels are read, and DICOM outputs are matched to the very instances read.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset

from ..errors import DicomOutputError, DicomSeriesError

#: Slice gaps this much larger than the series' usual spacing mean missing slices.
GAP_TOLERANCE = 0.1
#: Modalities a CT series may carry (PET/CT scanners label the CT part "CT" as well).
CT_MODALITIES = ("CT",)


@contextlib.contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Hold back a library's log warnings (it also warns in ways we handle or that do not apply)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def read_headers(files: Sequence[str | Path]) -> list[Dataset]:
    """The headers of ``files`` without their pixel data."""
    out = []
    for f in files:
        try:
            out.append(pydicom.dcmread(str(f), stop_before_pixels=True))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise DicomSeriesError(f"{f}: not a readable DICOM file ({exc})") from None
    return out


def normal(ds: Dataset) -> np.ndarray:
    """The slice normal: the cross product of the row and column directions."""
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    return np.cross(iop[:3], iop[3:])


def position(ds: Dataset) -> float:
    """Where a slice lies along its normal, in mm (how rt-utils and dcm2niix order slices)."""
    return float(np.dot(normal(ds), np.asarray(ds.ImagePositionPatient, dtype=float)))


def check_series(headers: list[Dataset], where: str, ct: bool = True) -> list[Dataset]:
    """The headers sorted along the slice normal, after checking that they make one volume: one
    image size, pixel spacing and orientation, no missing or doubled slice, and (``ct``) modality CT."""
    if not headers:
        raise DicomSeriesError(f"{where}: the DICOM series holds no images")
    for attr in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns"):
        lacking = sum(attr not in ds for ds in headers)
        if lacking:
            raise DicomSeriesError(f"{where}: {lacking} of {len(headers)} DICOM images lack {attr}; not a CT series")
    modalities = sorted({str(ds.get("Modality", "?")) for ds in headers})
    if ct and any(m not in CT_MODALITIES for m in modalities):
        raise DicomSeriesError(f"{where}: the DICOM series' modality is {'/'.join(modalities)}, not CT")
    _same(headers, where, "image size", lambda ds: (int(ds.Rows), int(ds.Columns)))
    _same(headers, where, "pixel spacing", lambda ds: tuple(round(float(v), 4) for v in ds.PixelSpacing))
    _same(headers, where, "orientation", lambda ds: tuple(round(float(v), 4) for v in ds.ImageOrientationPatient))
    ordered = sorted(headers, key=position)
    _check_spacing([position(ds) for ds in ordered], where)
    return ordered


def _same(headers: list[Dataset], where: str, what: str, key) -> None:
    values = sorted({key(ds) for ds in headers})
    if len(values) > 1:
        shown = ", ".join("x".join(f"{v:g}" for v in value) for value in values[:3])
        raise DicomSeriesError(f"{where}: the DICOM series mixes {len(values)} kinds of {what} ({shown}); one volume needs one")


def _check_spacing(positions: list[float], where: str) -> None:
    if len(positions) < 2:
        return
    gaps = np.diff(positions)
    if gaps.min() < 1e-3:
        i = int(gaps.argmin())
        raise DicomSeriesError(f"{where}: two DICOM slices lie at the same position ({positions[i]:.2f} mm); doubled slices")
    usual = float(np.median(gaps))
    bad = np.flatnonzero(np.abs(gaps - usual) > GAP_TOLERANCE * usual)
    if bad.size:
        i = int(bad[0])
        raise DicomSeriesError(
            f"{where}: slices are {usual:.3g} mm apart but {gaps[i]:.3g} mm between {positions[i]:.2f} and "
            f"{positions[i + 1]:.2f} mm; missing slices or uneven spacing ({bad.size} such gaps)"
        )


def frames_of(image: sitk.Image, headers: list[Dataset], where: str) -> np.ndarray:
    """``image``'s slices (a SimpleITK image on the series' own grid) in the order of ``headers``,
    each matched to its instance by position, so that frame ``i`` lies on ``headers[i]``."""
    array = sitk.GetArrayViewFromImage(image)
    frames = []
    for ds in headers:
        point = [float(v) for v in ds.ImagePositionPatient]
        index = np.asarray(image.TransformPhysicalPointToContinuousIndex(point))
        k = int(round(index[2]))
        if np.abs(index - [0, 0, k]).max() > 0.01 or not 0 <= k < array.shape[0]:
            raise DicomSeriesError(f"{where}: instance {ds.SOPInstanceUID} does not lie on a slice of the volume read")
        if array.shape[1:] != (int(ds.Rows), int(ds.Columns)):
            raise DicomSeriesError(f"{where}: instance {ds.SOPInstanceUID} is {ds.Rows}x{ds.Columns}, the volume {array.shape[1:]}")
        frames.append(array[k])
    return np.stack(frames)


def source_headers(headers: Sequence[Dataset], path: Path, what: str) -> list[Dataset]:
    """The headers (checked when the volume was read) of the series an output ``what`` at
    ``path`` references; copies, so that a writer may fill in what it needs."""
    if not headers:
        raise DicomOutputError(
            f"{path}: {what} references the DICOM series the CT came from, but this CT was not read from a "
            "DICOM series; give the DICOM folder, or write NIfTI"
        )
    return [copy.copy(ds) for ds in headers]
