from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk

from dicom_writer import keeping_locale
from zoo_ensemble import volumes
from zoo_ensemble.errors import (
    OutputWriteError,
    GeometryMismatchError,
    ImageDimensionError,
    ImageReadError,
    NotHounsfieldError,
)


def _image(array: np.ndarray, spacing=(0.8, 0.9, 2.5), origin=(10.0, -20.0, 30.0), direction=(1, 0, 0, 0, -1, 0, 0, 0, 1)) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection([float(d) for d in direction])
    return img


def _ct(shape=(6, 20, 24), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = rng.integers(-1000, 1500, size=shape).astype(np.int16)
    arr.flat[0] = -2048  # field-of-view padding
    return arr


def test_real_ct_round_trip_keeps_the_flipped_grid(lidc, tmp_path):
    vol = volumes.read_ct(lidc / "ct.nii.gz")
    assert vol.source.orientation == "LAS"  # stored with a flipped y axis
    assert vol.shape == (133, 512, 512)
    assert vol.array.min() == -1024  # -2048 padding clipped
    labels = volumes.read_labels(lidc / "labels.nii.gz", like=vol)
    # canonical LPS: the patient's left lung (value 1) has the larger x index
    assert np.nonzero(labels.array == 1)[2].mean() > np.nonzero(labels.array == 2)[2].mean()
    # and the spinal cord (6) is posterior (larger y) of the heart (3)
    assert np.nonzero(labels.array == 6)[1].mean() > np.nonzero(labels.array == 3)[1].mean()

    out = volumes.write_labels(labels.array, labels, tmp_path / "labels.nii.gz")
    orig, back = sitk.ReadImage(str(lidc / "labels.nii.gz")), sitk.ReadImage(str(out))
    assert back.GetSize() == orig.GetSize()
    assert back.GetOrigin() == orig.GetOrigin()
    assert back.GetSpacing() == orig.GetSpacing()
    assert back.GetDirection() == orig.GetDirection()
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(orig))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd"])
def test_reads_every_format_and_clips_padding(tmp_path, suffix):
    arr = _ct()
    path = tmp_path / f"ct{suffix}"
    sitk.WriteImage(_image(arr), str(path))
    vol = volumes.read_ct(path)
    assert vol.array.dtype == np.int16
    # y was flipped on disk; canonical order flips it back
    expected = np.maximum(arr[:, ::-1, :], -1024)
    assert np.array_equal(vol.array, expected)
    assert vol.spacing == pytest.approx((0.8, 0.9, 2.5))


@pytest.mark.parametrize("direction", [(0, 1, 0, 1, 0, 0, 0, 0, -1), (-1, 0, 0, 0, 1, 0, 0, 0, 1), (1, 0, 0, 0, 0, 1, 0, -1, 0)])
def test_write_back_restores_any_axis_permutation(tmp_path, direction):
    arr = _ct((5, 7, 9)).astype(np.uint8)
    src = tmp_path / "lab.nrrd"
    sitk.WriteImage(_image(arr, direction=direction), str(src))
    vol = volumes.read_labels(src)
    out = volumes.write_labels(vol.array, vol, tmp_path / "out.nii.gz")
    back = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(back), arr)
    assert np.allclose(back.GetDirection(), direction)
    assert np.allclose(back.GetOrigin(), (10.0, -20.0, 30.0))


def test_not_an_image(tmp_path):
    bad = tmp_path / "scan.nii.gz"
    bad.write_text("this is not an image")
    with pytest.raises(ImageReadError, match="not an image"):
        volumes.read_ct(bad)
    with pytest.raises(ImageReadError, match="no such file"):
        volumes.read_ct(tmp_path / "missing.nii.gz")
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(ImageReadError, match="unsupported file type"):
        volumes.read_ct(txt)


def test_2d_image_is_refused(tmp_path):
    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(_ct((20, 24))), str(path))
    with pytest.raises(ImageDimensionError, match="2D image; a 3D volume is needed"):
        volumes.read_ct(path)


def test_8bit_and_offset_data_are_not_hounsfield(tmp_path):
    eight = tmp_path / "eight.nii.gz"
    sitk.WriteImage(_image(np.random.default_rng(0).integers(0, 256, (4, 8, 8)).astype(np.uint8)), str(eight))
    with pytest.raises(NotHounsfieldError, match="8-bit"):
        volumes.read_ct(eight)
    offset = tmp_path / "offset.nii.gz"
    sitk.WriteImage(_image((_ct() + 1024).clip(0).astype(np.int16) + 100), str(offset))
    with pytest.raises(NotHounsfieldError, match="Hounsfield"):
        volumes.read_ct(offset)
    assert volumes.read_ct(offset, check_hu=False).array.min() >= 100


def test_label_grid_must_match_image(tmp_path):
    img, lab = tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz"
    sitk.WriteImage(_image(_ct()), str(img))
    sitk.WriteImage(_image(np.zeros((6, 20, 24), np.uint8), spacing=(0.8, 0.9, 3.0)), str(lab))
    vol = volumes.read_ct(img)
    with pytest.raises(GeometryMismatchError, match="differs from its image"):
        volumes.read_labels(lab, like=vol)


def _write_dicom_series(folder, array, series_uid, spacing=(0.7, 0.7, 2.5)):
    with keeping_locale():
        _write_series(folder, array, series_uid, spacing)


def _write_series(folder, array, series_uid, spacing):
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(array.shape[0]):
        sl = image[:, :, k]
        tags = {
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": series_uid,
            "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0013": str(k + 1),
        }
        for key, val in tags.items():
            sl.SetMetaData(key, val)
        writer.SetFileName(str(folder / f"{series_uid[-3:]}_{k:03d}.dcm"))
        writer.Execute(sl)


def test_dicom_folder_picks_the_longest_series(tmp_path, caplog):
    big = _ct((6, 16, 16))
    small = _ct((3, 16, 16), seed=1)
    _write_dicom_series(tmp_path / "dcm", big, "1.2.826.0.1.3680043.2.1125.101")
    _write_dicom_series(tmp_path / "dcm", small, "1.2.826.0.1.3680043.2.1125.202")
    with caplog.at_level(logging.WARNING, logger="zoo_ensemble"):
        logging.getLogger("zoo_ensemble").propagate = True
        vol = volumes.read_ct(tmp_path / "dcm")
    assert vol.shape[0] == 6
    assert any("holds 2 DICOM series" in n for n in vol.notes)
    assert vol.spacing[2] == pytest.approx(2.5)
    assert vol.array.min() == -1024  # padding clipped
    assert np.array_equal(vol.array[:, :, :], np.maximum(big, -1024))


def test_dicom_folder_without_series(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ImageReadError, match="no readable DICOM series"):
        volumes.read_ct(tmp_path / "empty")


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    vol = volumes.read_labels(_save(tmp_path))
    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(volumes.sitk, "WriteImage", boom)
    with pytest.raises(OutputWriteError, match=r"pred\.nii\.gz: could not be written \(disk full\)"):
        volumes.write_labels(vol.array, vol, tmp_path / "out" / "pred.nii.gz")
    assert list((tmp_path / "out").iterdir()) == []


def _save(tmp_path):
    p = tmp_path / "lab.nii.gz"
    sitk.WriteImage(_image(np.ones((3, 4, 5), np.uint8)), str(p))
    return p
