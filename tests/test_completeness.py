"""Whole files or nothing: the completeness check on its own, against files made every way a
writer makes them (one or several gzip members, padding, detached data, DICOM objects beside a
series), so that it refuses only what is provably short."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from zoo_ensemble.completeness import check_complete
from zoo_ensemble.errors import ImageReadError, TruncatedFileError
from zoo_ensemble.volumes import read_ct

from test_lying_inputs import dicom_series, phantom


@pytest.fixture
def nifti(tmp_path) -> tuple[Path, bytes]:
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(phantom((4, 40, 40)), str(path), useCompression=True)
    return path, gzip.decompress(path.read_bytes())


def test_a_gzip_file_of_several_members_or_with_padding_is_whole(nifti, tmp_path):
    _, raw = nifti
    several = tmp_path / "several.nii.gz"
    several.write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]) + b"\0" * 64)
    check_complete(several)  # the trailer records only the last member: the stream is read to its end
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(several))), sitk.GetArrayFromImage(sitk.ReadImage(str(nifti[0]))))
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes((gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]))[:-30])
    with pytest.raises(TruncatedFileError, match="cut short"):
        check_complete(cut)
    longer = tmp_path / "longer.nii.gz"
    longer.write_bytes(gzip.compress(raw + b"extension bytes after the data"))
    check_complete(longer)


def test_a_damaged_stream_is_named(nifti, tmp_path):
    path, _ = nifti
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 40] = bytes(40)
    data[-4:] = b"\1\2\3\4"  # a length that does not match: the stream is read, and its CRC fails
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(TruncatedFileError, match="bad.nii.gz"):
        check_complete(bad)


def test_detached_data_are_checked_where_they_are(tmp_path):
    image = phantom((4, 40, 40))
    for name in ("ct.nhdr", "ct.mhd"):
        sitk.WriteImage(image, str(tmp_path / name))
    raw = [p for p in tmp_path.iterdir() if p.suffix in (".raw", ".gz") or p.name.endswith(".raw.gz")]
    for header in ("ct.nhdr", "ct.mhd"):
        check_complete(tmp_path / header)
    for data in raw:
        data.write_bytes(data.read_bytes()[:100])
    for header in ("ct.nhdr", "ct.mhd"):
        with pytest.raises(TruncatedFileError, match="cut short"):
            check_complete(tmp_path / header)


def test_what_cannot_be_judged_is_left_to_the_reader_but_not_when_we_wrote_it(tmp_path):
    text = tmp_path / "ct.nrrd"
    text.write_text("NRRD0004\ntype: short\ndimension: 1\nsizes: 3\nencoding: ascii\n\n1 2 3\n")
    check_complete(text)  # a text encoding: ITK parses it
    with pytest.raises(TruncatedFileError, match="not a whole image file"):
        check_complete(text, written=True)
    stranger = tmp_path / "ct.nii"
    stranger.write_bytes(b"not a nifti header at all")
    check_complete(stranger)
    with pytest.raises(ImageReadError):
        read_ct(stranger)


def test_other_dicom_objects_beside_a_series_are_let_be_but_a_damaged_slice_is_named(tmp_path):
    folder = dicom_series(phantom((4, 40, 40)), tmp_path / "ct")
    other = pydicom.dcmread(next(folder.iterdir()))  # another series' object in the folder
    other.SeriesInstanceUID = other.SOPInstanceUID = other.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.77.77"
    other.Modality = "SEG"
    del other.PixelData, other.Rows, other.Columns
    other.save_as(folder / "segmentation.dcm")
    (folder / "DICOMDIR.txt").write_text("not DICOM")
    assert read_ct(folder).shape[0] == 4
    last = sorted(folder.glob("ct_*.dcm"))[-1]
    last.write_bytes(last.read_bytes()[:-100])
    with pytest.raises(ImageReadError, match=f"{last.name}: holds .* of the 3,200 bytes of pixel data"):
        read_ct(folder)
