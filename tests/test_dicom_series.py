"""DICOM series are checked before SimpleITK reads them onto a grid: missing or doubled slices,
mixed image sizes and non-CT modalities are one-line errors (exit 2 in the CLI)."""

from __future__ import annotations

import shutil

import pytest
import SimpleITK as sitk

from dicom_writer import write_ct_series
from zoo_ensemble.cli import main
from zoo_ensemble.errors import DicomSeriesError
from zoo_ensemble.volumes import read_ct, read_labels


@pytest.fixture(scope="module")
def image(cohort_a) -> sitk.Image:
    return sitk.ReadImage(str(cohort_a.cases[0].image))


def test_a_whole_series_reads_like_its_file(image, tmp_path):
    write_ct_series(image, tmp_path / "ct")
    volume = read_ct(tmp_path / "ct")
    assert volume.shape == image.GetSize()[::-1] and len(volume.dicom_files) == image.GetDepth()
    assert (volume.array == sitk.GetArrayFromImage(image).clip(-1024)).all()


def test_missing_slices_are_refused(image, tmp_path):
    write_ct_series(image, tmp_path / "ct", drop=(7, 8))
    with pytest.raises(DicomSeriesError, match=r"5 mm apart but 15 mm between .* missing slices"):
        read_ct(tmp_path / "ct")


def test_doubled_slices_are_refused(image, tmp_path):
    write_ct_series(image, tmp_path / "ct")
    shutil.copy(tmp_path / "ct" / "ct_0004.dcm", tmp_path / "ct" / "ct_0004_copy.dcm")
    with pytest.raises(DicomSeriesError, match="same position"):
        read_ct(tmp_path / "ct")


def test_mixed_image_sizes_are_refused(image, tmp_path):
    write_ct_series(image, tmp_path / "ct")
    write_ct_series(image[::2, ::2, :], tmp_path / "half")
    shutil.copy(tmp_path / "half" / "ct_0003.dcm", tmp_path / "ct" / "ct_0003.dcm")
    with pytest.raises(DicomSeriesError, match=r"mixes 2 kinds of image size \(41x41, 82x82\)"):
        read_ct(tmp_path / "ct")


def test_a_non_ct_series_is_refused_but_may_hold_labels(image, cohort_a, tmp_path):
    write_ct_series(image, tmp_path / "mr", modality="MR")
    with pytest.raises(DicomSeriesError, match="modality is MR, not CT"):
        read_ct(tmp_path / "mr")
    labels = sitk.Cast(sitk.ReadImage(str(cohort_a.cases[0].labels)), sitk.sitkInt16)
    write_ct_series(labels, tmp_path / "labels", modality="OT")
    read = read_labels(tmp_path / "labels")  # a label map is no CT: any modality
    assert read.shape == image.GetSize()[::-1] and set(map(int, read.array.ravel())) == {0, 1, 2, 3, 4, 5, 6}


def test_the_cli_says_one_line_and_writes_nothing(in_member_zoo, image, tmp_path, capsys):
    write_ct_series(image, tmp_path / "ct", drop=(3,))
    with pytest.raises(SystemExit) as stop:
        main(["predict", "heart-unet", str(tmp_path / "ct"), "-o", str(tmp_path / "x.seg.dcm")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "missing slices" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.seg.dcm").exists()
