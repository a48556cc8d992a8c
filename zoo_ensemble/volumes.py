"""Reading and writing CT volumes and label maps (SimpleITK).

Everything is processed in one canonical orientation, LPS in ITK's naming: the array is
``(z, y, x)`` with x growing towards the patient's left, y towards posterior and z towards
superior, so ``array[k]`` is an axial slice as a radiologist views it. Results are written back
exactly on the grid of the file they came from (size, origin, spacing, direction).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset

from .atomic import atomic_path, short_write_cause, write_failed
from .completeness import check_complete
from .dicom.series import check_left_out, check_series, read_headers, scan_series
from .errors import (
    GeometryMismatchError,
    ImageDimensionError,
    ImageReadError,
    LabelMapError,
    NotHounsfieldError,
    TruncatedFileError,
)
from .input_range import check_scan_spacing
from .native_stderr import held_stderr

log = logging.getLogger("zoo_ensemble")

CANONICAL = "LPS"
AIR_HU = -1024
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
WRITE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


@dataclass(frozen=True)
class Geometry:
    """A voxel grid in physical space, in SimpleITK's (x, y, z) conventions."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> Geometry:
        return cls(
            tuple(image.GetSize()),
            tuple(image.GetSpacing()),
            tuple(image.GetOrigin()),
            tuple(image.GetDirection()),
        )

    @property
    def orientation(self) -> str:
        return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(self.direction)

    def apply(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def matches(self, other: Geometry, tol_mm: float = 1e-3) -> bool:
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, rtol=1e-5, atol=1e-6)
            and np.allclose(self.origin, other.origin, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-4)
        )

    def describe(self) -> str:
        sp = "x".join(f"{s:.3g}" for s in self.spacing)
        return f"size {'x'.join(map(str, self.size))}, spacing {sp} mm, orientation {self.orientation}"


@dataclass
class Volume:
    """A 3D image in canonical orientation plus the grid of the file it came from.

    ``array`` is ``(z, y, x)``; ``spacing`` is ``(x, y, z)`` in mm as SimpleITK gives it.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    source: Geometry
    path: str | None = None
    notes: list[str] = field(default_factory=list)
    #: The headers of the DICOM instances the volume was read from (a DICOM folder), checked
    #: and in slice order; DICOM outputs reference these instances.
    dicom_headers: tuple[Dataset, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def dicom_files(self) -> tuple[str, ...]:
        """The files of :attr:`dicom_headers`."""
        return tuple(str(ds.filename) for ds in self.dicom_headers)

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Spacing in array axis order, as metrics need it."""
        return (self.spacing[2], self.spacing[1], self.spacing[0])

    def with_array(self, array: np.ndarray) -> Volume:
        """A volume on the same grid holding other voxels (a prediction, a mask)."""
        if array.shape != self.array.shape:
            raise GeometryMismatchError(f"array shape {array.shape} differs from the volume's {self.array.shape}")
        return replace(self, array=array, notes=[])

    def to_sitk(self, array: np.ndarray | None = None) -> sitk.Image:
        """An image on the *source* grid holding ``array`` (canonical order) or this volume."""
        data = self.array if array is None else array
        if data.shape != self.array.shape:
            raise GeometryMismatchError(f"array shape {data.shape} differs from the volume's {self.array.shape}")
        if data.dtype == bool:
            data = data.astype(np.uint8)
        image = sitk.GetImageFromArray(np.ascontiguousarray(data))
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        back = sitk.DICOMOrient(image, self.source.orientation)
        if tuple(back.GetSize()) != self.source.size:
            raise GeometryMismatchError("re-orientation did not restore the source grid")
        # Copy the exact source numbers: re-orientation recomputes the origin in floating point.
        return self.source.apply(back)


def _check_suffix(path: Path, allowed: tuple[str, ...]) -> None:
    name = path.name.lower()
    if not name.endswith(allowed):
        raise ImageReadError(f"{path}: unsupported file type (use one of {', '.join(allowed)})")


def _read_dicom_folder(folder: Path, ct: bool) -> tuple[sitk.Image, list[str], tuple[Dataset, ...]]:
    files = scan_series(folder)
    series = list(files)
    if not series:
        raise ImageReadError(f"{folder}: no readable DICOM series in this folder")
    chosen = max(series, key=lambda sid: len(files[sid]))
    notes = []
    if len(series) > 1:
        others = ", ".join(f"{sid} ({len(files[sid])} slices)" for sid in series if sid != chosen)
        notes.append(
            f"{folder} holds {len(series)} DICOM series; using {chosen} ({len(files[chosen])} slices), "
            f"ignoring {others}"
        )
    check_left_out(folder, [f for sid in series for f in files[sid]], chosen)
    # SimpleITK puts any set of slices on a regular grid: the headers are checked first.
    headers = check_series(read_headers(files[chosen]), str(folder), ct=ct)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(files[chosen]))
    try:
        return reader.Execute(), notes, tuple(headers)
    except RuntimeError as exc:
        raise ImageReadError(f"{folder}: DICOM series {chosen} cannot be read ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # SimpleITK puts the useful part after the source location on the last lines.
    return lines[-1] if lines else type(exc).__name__


def read_image(path: str | Path) -> tuple[sitk.Image, list[str]]:
    """Read any supported image file or DICOM folder (any modality) as a SimpleITK image."""
    image, notes, _ = _read_any(Path(path), ct=False)
    return image, notes


def _read_any(path: Path, ct: bool) -> tuple[sitk.Image, list[str], tuple[Dataset, ...]]:
    if not path.exists():
        raise ImageReadError(f"{path}: no such file or folder")
    if path.is_dir():
        return _read_dicom_folder(path, ct)
    check_complete(path)
    # MetaImage prints its parse errors on stderr before it raises (the other readers do not, and
    # holding stderr would keep a cohort's reads from overlapping its writes)
    quiet = held_stderr if path.name.lower().endswith((".mha", ".mhd")) else contextlib.nullcontext
    try:
        with quiet():
            return sitk.ReadImage(str(path)), [], ()
    except RuntimeError as exc:
        raise ImageReadError(f"{path}: not an image SimpleITK can read ({_first_line(exc)})") from None


def _to_volume(image: sitk.Image, path: Path, notes: list[str]) -> Volume:
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageDimensionError(f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel; a CT has one")
    dim = image.GetDimension()
    if dim != 3:
        raise ImageDimensionError(f"{path}: is a {dim}D image; a 3D volume is needed")
    source = Geometry.of(image)
    canon = sitk.DICOMOrient(image, CANONICAL)
    check_scan_spacing(canon.GetSpacing(), str(path))
    for note in notes:
        log.warning(note)
    return Volume(
        array=sitk.GetArrayFromImage(canon),
        spacing=tuple(canon.GetSpacing()),  # type: ignore[arg-type]
        origin=tuple(canon.GetOrigin()),  # type: ignore[arg-type]
        direction=tuple(canon.GetDirection()),
        source=source,
        path=str(path),
        notes=notes,
    )


def check_hounsfield(array: np.ndarray, name: str = "image") -> None:
    """Refuse data that cannot be CT in HU: 8-bit data, or nothing anywhere near air.

    Every CT of a body holds air (outside the body, in lungs or bowel) near -1000 HU; data whose
    darkest voxel is above -300 were rescaled or lost their DICOM rescale intercept.
    """
    lo, hi = float(array.min()), float(array.max())
    if array.dtype == np.uint8 or (lo >= 0 and hi <= 255):
        raise NotHounsfieldError(
            f"{name}: intensities span {lo:g}..{hi:g}, which looks like 8-bit image data, not CT in Hounsfield units"
        )
    if lo > -300:
        raise NotHounsfieldError(
            f"{name}: darkest voxel is {lo:g}, but CT air is about -1000 HU; the data do not look like "
            "Hounsfield units (rescaled, or a DICOM rescale intercept missing?)"
        )


def read_ct(path: str | Path, check_hu: bool = True) -> Volume:
    """Read a CT volume (file or DICOM folder) in canonical orientation, in HU.

    Values below -1024 HU (field-of-view padding such as -2048 or -3024) are clipped to -1024.
    The array is int16 when the values are integral, float32 otherwise.
    """
    path = Path(path)
    if path.is_file():
        _check_suffix(path, IMAGE_SUFFIXES + (".dcm",))
    image, notes, headers = _read_any(path, ct=True)
    volume = ct_from_image(image, str(path), notes, check_hu)
    volume.dicom_headers = headers
    return volume


def ct_from_image(image: sitk.Image, name: str = "image", notes: list[str] | None = None, check_hu: bool = True) -> Volume:
    """A CT volume from a SimpleITK image already in memory, checked as :func:`read_ct` checks a file."""
    vol = _to_volume(image, Path(name), list(notes or []))
    arr = vol.array
    if arr.size == 0:
        raise ImageDimensionError(f"{name}: holds no voxels (size {'x'.join(map(str, vol.source.size))})")
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32, copy=False)
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise NotHounsfieldError(f"{name}: {bad} of {arr.size} voxels are NaN or infinite; a CT holds finite Hounsfield units")
    if check_hu:
        check_hounsfield(arr, name)
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= -32768 and arr.max() <= 32767:
        arr = arr.astype(np.int16, copy=False)
    np.maximum(arr, AIR_HU, out=arr)
    vol.array = arr
    return vol


def read_labels(path: str | Path, like: Volume | None = None) -> Volume:
    """Read a label map in canonical orientation; with ``like``, it must share that image's grid."""
    path = Path(path)
    if path.is_file():
        _check_suffix(path, IMAGE_SUFFIXES + (".dcm",))
    image, notes = read_image(path)
    vol = _to_volume(image, path, notes)
    if like is not None and not vol.source.matches(like.source):
        raise GeometryMismatchError(
            f"{path}: label grid ({vol.source.describe()}) differs from its image's ({like.source.describe()})"
        )
    arr = vol.array
    if np.issubdtype(arr.dtype, np.floating):
        if not np.array_equal(arr, np.round(arr)):
            raise LabelMapError(f"{path}: label values are not integers; is this an image rather than a label map?")
        arr = arr.astype(np.int32)
    if arr.min() < 0:
        raise LabelMapError(f"{path}: negative label value {arr.min()}")
    vol.array = arr.astype(np.uint8 if arr.max() < 256 else np.uint16, copy=False)
    return vol


def write_volume(array: np.ndarray, like: Volume, path: str | Path, compress: bool = True) -> Path:
    """Write ``array`` (canonical order, on ``like``'s grid) to ``path`` on the source grid, atomically."""
    path = Path(path)
    _check_suffix(path, WRITE_SUFFIXES)
    return write_image(like.to_sitk(array), path, compress)


def write_image(image: sitk.Image, path: str | Path, compress: bool = True) -> Path:
    """Write a SimpleITK image atomically, and only once what reached the disk is whole: ITK's
    NIfTI writer reports a full disk or a size limit only on stderr and returns success, so the
    file is checked against its own header before it is renamed into place."""
    path = Path(path)
    # what ITK prints about a failed write is held back: the one error line names the cause
    with atomic_path(path) as tmp, held_stderr():
        try:
            sitk.WriteImage(image, str(tmp), useCompression=compress)
        except RuntimeError as exc:  # ITK's text rarely names the system's reason: ask the disk
            raise write_failed(path, short_write_cause(tmp, _first_line(exc))) from None
        try:
            check_complete(tmp, written=True)
        except TruncatedFileError:
            raise write_failed(path, short_write_cause(tmp)) from None
    return path


def write_labels(array: np.ndarray, like: Volume, path: str | Path) -> Path:
    """Write a label map (uint8 when it fits) on ``like``'s source grid, atomically."""
    dtype = np.uint8 if array.max(initial=0) < 256 else np.uint16
    return write_volume(array.astype(dtype, copy=False), like, path)


def strip_image_suffix(name: str) -> str:
    """``case_001.nii.gz`` -> ``case_001`` (also ``labels.seg.dcm`` -> ``labels``)."""
    low = name.lower()
    for suffix in IMAGE_SUFFIXES + (".seg.dcm", ".rtstruct.dcm", ".rt.dcm", ".dcm"):
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return name


def probability_path(labels: str | Path, organ: str) -> Path:
    """Where the probability map of ``organ`` goes beside a label map: ``labels_prob_heart.nii.gz``."""
    labels = Path(labels)
    return labels.with_name(f"{strip_image_suffix(labels.name)}_prob_{organ}.nii.gz")
