"""Write a CT as a DICOM series the way a scanner export looks (CT Image Storage, one file per
slice, study/series/frame-of-reference UIDs, slice thickness): what the DICOM tests and the DICOM
output benchmark start from, since no DICOM data can be downloaded for them."""

from __future__ import annotations

import contextlib
import locale
from collections.abc import Iterator
from pathlib import Path

import SimpleITK as sitk

ROOT = "1.2.826.0.1.3680043.8.498.77"  # a UID root for generated data
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@contextlib.contextmanager
def keeping_locale() -> Iterator[None]:
    """GDCM's DICOM writer leaves the process in the C locale (Python then decodes text files as
    ASCII by default); put the locale back, so that later tests see the process as it was."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def write_ct_series(image: sitk.Image, folder: Path, series: int = 1, modality: str = "CT", drop: tuple[int, ...] = ()) -> list[str]:
    """Write ``image`` slice by slice into ``folder``; returns the SOP instance UIDs written in
    slice-index order. ``drop`` leaves slices out (a series with missing slices)."""
    with keeping_locale():
        return _write(image, folder, series, modality, drop)


def _write(image: sitk.Image, folder: Path, series: int, modality: str, drop: tuple[int, ...]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    d = image.GetDirection()
    orientation = "\\".join(f"{v:.6f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    uids = []
    for k in range(image.GetDepth()):
        if k in drop:
            continue
        sop = f"{ROOT}.{series}.{k + 1}"
        tags = {
            "0008|0016": CT_IMAGE_STORAGE, "0008|0018": sop, "0008|0060": modality,
            "0008|0020": "20261128", "0008|0030": "120000", "0010|0010": "Phantom^Zoo", "0010|0020": "ZOO-TEST",
            "0020|000d": f"{ROOT}.1", "0020|000e": f"{ROOT}.{series}.0", "0020|0052": f"{ROOT}.9",
            "0020|0010": "1", "0020|0011": str(series), "0020|0013": str(k + 1),
            "0018|0050": f"{image.GetSpacing()[2]:g}", "0028|1052": "0", "0028|1053": "1",
            "0020|0032": "\\".join(f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0037": orientation,
        }
        sl = image[:, :, k]
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"ct_{k:04d}.dcm"))
        writer.Execute(sl)
        uids.append(sop)
    return uids
