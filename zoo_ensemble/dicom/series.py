"""The DICOM series a CT was read from: its headers read with pydicom, checked, in slice order.

SimpleITK reads a series onto a regular grid whatever the files hold; a series with a missing
slice, two sizes of image or an MR modality would silently become a wrong CT. So the headers are
checked before the pixels are read, and DICOM outputs are matched to the very instances read.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset

from ..errors import DicomOutputError, DicomSeriesError, ZooError

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


@contextlib.contextmanager
def library_errors(path: Path, library: str, what: str) -> Iterator[None]:
    """Whatever a DICOM library raises while making ``what`` becomes one line naming ``path``;
    our own errors (a failed write among them) pass as they are."""
    try:
        yield
    except ZooError:
        raise
    except Exception as exc:  # highdicom, rt-utils and pydicom raise many kinds (KeyError, ValueError, ...)
        raise DicomOutputError(f"{path}: {library} could not make the {what} ({type(exc).__name__}: {_one_line(exc)})") from None


def scan_series(folder: Path) -> dict[str, tuple[str, ...]]:
    """The DICOM series GDCM finds in ``folder`` (series id -> its files in GDCM's order), empty
    for a folder without one. GDCM reads every file's header to find them, so a folder is scanned
    once per process while its files stay as they are (names, sizes, times): deciding that a
    path is one CT, and then reading it, share the scan."""
    folder = Path(folder)
    try:
        if not folder.is_dir():
            return {}
        stamp = hash(tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder) if e.is_file())))
    except OSError:
        return {}
    return dict(_scan(str(folder.resolve()), stamp))


@functools.lru_cache(maxsize=256)
def _scan(folder: str, stamp: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK warns on stderr for every folder without a series
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder) or ()
        return tuple((sid, tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, sid))) for sid in ids)
    except RuntimeError:
        return ()
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def is_dicom_series(folder: Path) -> bool:
    """Whether ``folder`` itself holds a DICOM series (then it is one case, not a cohort)."""
    return bool(scan_series(folder))


def read_headers(files: Sequence[str | Path]) -> list[Dataset]:
    """The headers of ``files`` without their pixel data, each file checked to hold all the
    pixel data its header promises (read up to the pixel data element, then only its item
    headers: the pixels themselves are not read twice)."""
    out = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                ds = pydicom.dcmread(fh, stop_before_pixels=True)
                ds.filename = str(f)
                check_pixel_data(fh, ds, str(f))
        except DicomSeriesError:
            raise
        except Exception as exc:  # pydicom raises what its parsers raise (zlib, struct, value errors) on damaged files
            raise DicomSeriesError(f"{f}: not a readable DICOM file ({_one_line(exc)})") from None
        out.append(ds)
    return out


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


_PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
_ITEM, _SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE0DD)
_UNDEFINED = 0xFFFFFFFF


def check_pixel_data(fh, ds: Dataset, where: str) -> None:
    """Refuse an image file whose pixel data element is cut short: ``fh`` stands where
    ``dcmread(stop_before_pixels=True)`` left it, at the pixel data element's tag.

    Native pixel data must be as long as rows x columns x frames x samples x bytes and present
    to its declared length; encapsulated (compressed) data must have all their fragments and
    the sequence delimiter. A deflated file was inflated whole to be read, and zlib refuses a
    cut stream there; an image without any pixel data element is refused too."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian or "Rows" not in ds:
        return
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        return
    size = os.fstat(fh.fileno()).st_size
    start = fh.tell()
    head = fh.read(8)
    if len(head) < 8:
        raise DicomSeriesError(f"{where}: an image without pixel data; the file was cut short (at {start:,} bytes)")
    e = "<" if little else ">"
    tag = struct.unpack(e + "HH", head[:4])
    if tag not in _PIXEL_TAGS:
        return  # an element pydicom stopped at for another reason: nothing to say
    if implicit:
        length = struct.unpack(e + "I", head[4:8])[0]
    else:
        length = struct.unpack(e + "I", fh.read(4))[0] if head[4:6] in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN") else struct.unpack(e + "H", head[6:8])[0]
    value = fh.tell()
    if length == _UNDEFINED:
        _check_fragments(fh, size, e, where)
        return
    have = max(size - value, 0)
    want = _native_bytes(ds)
    if have < length or (want and length < want):
        raise DicomSeriesError(
            f"{where}: holds {min(have, length):,} of the {max(length, want):,} bytes of pixel data its header promises; "
            "the file was cut short"
        )


def _native_bytes(ds: Dataset) -> int:
    """Bytes of uncompressed pixel data the header describes (0 where it does not say)."""
    try:
        bits = int(ds.BitsAllocated)
        count = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return 0
    return (count * bits + 7) // 8 if bits > 0 else 0


def _check_fragments(fh, size: int, e: str, where: str) -> None:
    """Walk the items of encapsulated pixel data by their headers up to the sequence delimiter."""
    while True:
        head = fh.read(8)
        if len(head) < 8:
            raise DicomSeriesError(f"{where}: its compressed pixel data end without their delimiter; the file was cut short")
        group, element, length = struct.unpack(e + "HHI", head)
        if (group, element) == _SEQUENCE_END:
            return
        if (group, element) != _ITEM or length == _UNDEFINED:
            raise DicomSeriesError(f"{where}: its compressed pixel data are damaged (an item tag {group:04X},{element:04X})")
        if fh.tell() + length > size:
            raise DicomSeriesError(
                f"{where}: a fragment of its compressed pixel data ends {fh.tell() + length - size:,} bytes past the end of "
                "the file; the file was cut short"
            )
        fh.seek(length, os.SEEK_CUR)


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


#: What a DICOM-SEG or RTSTRUCT must reference in its source series: one value for the series
#: (study, series, frame of reference) and each instance's own identity.
_SERIES_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


def check_referenceable(headers: Sequence[Dataset], where: str, what: str) -> None:
    """Refuse, before any model runs, a series that a ``what`` (DICOM-SEG, RTSTRUCT) could not
    reference: every instance needs a non-empty SOPInstanceUID of its own and a SOPClassUID (the
    file meta's MediaStorageSOPClassUID stands in, as readers take it), and the series one
    Study, Series and Frame of Reference UID. Anonymised series often lack some; their NIfTI and
    NRRD outputs need none."""
    if not headers:
        raise DicomOutputError(
            f"{where}: is not a DICOM series, and {what} output references the series the CT came from; "
            "give the DICOM folder, or write NIfTI"
        )
    fallback = "NIfTI, NRRD or MHA output still works (--format nifti)"
    n = len(headers)
    lacking = sum(not _text(ds, "SOPInstanceUID") for ds in headers)
    if lacking:
        raise DicomOutputError(f"{where}: {lacking} of {n} DICOM images have no SOPInstanceUID, which {what} output must reference; {fallback}")
    uids = [_text(ds, "SOPInstanceUID") for ds in headers]
    if len(set(uids)) < n:
        doubled = next(u for u in uids if uids.count(u) > 1)
        raise DicomOutputError(f"{where}: {uids.count(doubled)} DICOM images share the SOPInstanceUID {doubled}; {what} output must tell them apart; {fallback}")
    lacking = sum(not sop_class(ds) for ds in headers)
    if lacking:
        raise DicomOutputError(f"{where}: {lacking} of {n} DICOM images have no SOPClassUID, which {what} output must reference; {fallback}")
    for attr in _SERIES_UIDS:
        values = {_text(ds, attr) for ds in headers}
        if "" in values:
            raise DicomOutputError(f"{where}: the DICOM series has no {attr}, which {what} output must reference; {fallback}")
        if len(values) > 1:
            raise DicomOutputError(f"{where}: the DICOM series mixes {len(values)} values of {attr}; {what} output references one; {fallback}")


def _text(ds: Dataset, attr: str) -> str:
    return str(ds.get(attr, "") or "").strip()


def sop_class(ds: Dataset) -> str:
    """The instance's SOPClassUID, or its file meta's MediaStorageSOPClassUID where it has none."""
    meta = getattr(ds, "file_meta", None)
    return _text(ds, "SOPClassUID") or (_text(meta, "MediaStorageSOPClassUID") if meta is not None else "")


def source_headers(headers: Sequence[Dataset], path: Path, what: str) -> list[Dataset]:
    """The headers (checked when the volume was read) of the series an output ``what`` at
    ``path`` references, checked to be referenceable; deep copies (a shallow copy of a pydicom
    dataset shares its elements), so that a writer may fill in what it needs (the SOPClassUID
    from the file meta) without changing the volume's headers."""
    check_referenceable(headers, str(path), what)
    out = []
    for ds in headers:
        ds = copy.deepcopy(ds)
        if not _text(ds, "SOPClassUID"):
            ds.SOPClassUID = sop_class(ds)
        out.append(ds)
    return out


def check_left_out(folder: Path, listed: Sequence[str], series_uid: str) -> None:
    """GDCM's series scan silently leaves out files it cannot parse, so a slice cut short would
    just be missing (at either end of a series, no gap shows it). Every DICOM file of ``folder``
    that no series holds is therefore read here: one that is damaged, or one that belongs to
    ``series_uid`` and still was left out, is refused by name. Other objects (a structure set,
    a DICOMDIR, another series) are let be."""
    known = {os.path.abspath(f) for f in listed}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or os.path.abspath(path) in known or not _is_dicom_file(path):
            continue
        ds = read_headers([path])[0]  # refuses a damaged or cut file by name
        if "Rows" in ds and str(ds.get("SeriesInstanceUID", "")) == series_uid:
            raise DicomSeriesError(f"{path}: a slice of this series that the series reader could not read; is the file damaged?")


def _is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file: the 'DICM' prefix after the 128-byte preamble."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"
