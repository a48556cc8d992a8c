"""DICOM-SEG and RTSTRUCT output: read back by independent readers (highdicom, rt-utils' loader,
pydicom), matched voxel for voxel or by Dice to the label map, referencing the source instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dicom_writer import write_ct_series
from zoo_ensemble.dicom import Producer
from zoo_ensemble.dicom.series import position
from zoo_ensemble.formats import write_prediction
from zoo_ensemble.labelmaps import get_label_map
from zoo_ensemble.organs import get_organ, organ_color
from zoo_ensemble.volumes import read_ct, read_labels

hd = pytest.importorskip("highdicom")
rt_utils = pytest.importorskip("rt_utils")

PRODUCER = Producer("thorax-test", "sha256:0123456789abcdef", "9.9.9")


@pytest.fixture(scope="module")
def series(cohort_a, tmp_path_factory):
    """A phantom case written as a DICOM series in LAS order (the slice normal points down, so
    the series is read flipped), with its true organ masks on the volume read from the series."""
    case = cohort_a.cases[0]
    image = sitk.DICOMOrient(sitk.ReadImage(str(case.image)), "LAS")
    folder = tmp_path_factory.mktemp("dicom") / "ct"
    uids = write_ct_series(image, folder)
    volume = read_ct(folder)
    truth = read_labels(case.labels)
    # the labels on the series' grid, canonical order: the series and the file share the physical grid
    labels = sitk.GetArrayFromImage(sitk.DICOMOrient(truth.to_sitk(truth.array), "LPS"))
    masks = cohort_a.label_map.masks(labels)
    return folder, uids, volume, masks


def test_series_read_keeps_its_files_and_grid(series):
    folder, uids, volume, masks = series
    assert len(volume.dicom_files) == len(uids) == volume.shape[0]
    assert all(Path(f).parent == folder for f in volume.dicom_files)
    assert all(m.shape == volume.shape for m in masks.values()) and masks["heart"].any()


def test_dicom_seg_reads_back_voxel_for_voxel(series, tmp_path):
    folder, uids, volume, masks = series
    out = write_prediction("dicom-seg", masks, get_label_map("zoo"), volume, tmp_path / "x.seg.dcm", PRODUCER)
    seg = hd.seg.segread(str(out))
    source = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(f, stop_before_pixels=True) for f in volume.dicom_files)}
    # references: the series and every instance the segmentation has frames on
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == next(iter(source.values())).SeriesInstanceUID
    referenced = {r.ReferencedSOPInstanceUID for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(uids)
    # voxel for voxel: the frames per source instance, put back on the volume's grid by position
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True, skip_overlap_checks=True)
    numbers = np.zeros(volume.shape, np.uint8)
    for i, m in enumerate(masks.values()):
        numbers[m] = i + 1
    on_series = sitk.GetArrayFromImage(volume.to_sitk(numbers))  # the series' own grid, as read
    reader = sitk.ReadImage(volume.dicom_files)
    for uid, frame in zip(uids, pixels):
        k = round(reader.TransformPhysicalPointToContinuousIndex([float(v) for v in source[uid].ImagePositionPatient])[2])
        assert np.array_equal(frame, on_series[k]), uid
    assert int(sum(m.sum() for m in masks.values())) == int((pixels > 0).sum())


def test_dicom_seg_segments_carry_codes_colours_and_the_model(series, tmp_path):
    folder, uids, volume, masks = series
    seg = hd.seg.segread(str(write_prediction("dicom-seg", masks, get_label_map("zoo"), volume, tmp_path / "x.seg.dcm", PRODUCER)))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == list(masks)
    for desc, organ in zip(seg.SegmentSequence, masks):
        code = desc.SegmentedPropertyTypeCodeSequence[0]
        assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (*get_organ(organ).snomed[:1], "SCT", get_organ(organ).snomed[1])
        algorithm = desc.SegmentationAlgorithmIdentificationSequence[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("thorax-test", "sha256:0123456789abcdef")
        rgb = hd.color.CIELabColor.from_dicom_value(desc.RecommendedDisplayCIELabValue).to_rgb()
        assert np.allclose(rgb, organ_color(organ), atol=2)
    assert seg.ManufacturerModelName == "thorax-test" and seg.SoftwareVersions == "9.9.9"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def test_rtstruct_reads_back_with_dice_and_references(series, tmp_path):
    folder, uids, volume, masks = series
    out = write_prediction("rtstruct", masks, get_label_map("zoo"), volume, tmp_path / "x.rtstruct.dcm", PRODUCER)
    loaded = rt_utils.RTStructBuilder.create_from(dicom_series_path=str(folder), rt_struct_path=str(out))
    assert loaded.get_roi_names() == list(masks)
    slices = sorted((pydicom.dcmread(f) for f in volume.dicom_files), key=position)
    image = sitk.ReadImage(volume.dicom_files)
    for organ, mask in masks.items():
        back = np.moveaxis(loaded.get_roi_mask_by_name(organ), -1, 0)  # rt-utils: (rows, cols, slice)
        on_series = sitk.GetArrayFromImage(volume.to_sitk(mask.astype(np.uint8))).astype(bool)
        order = [round(image.TransformPhysicalPointToContinuousIndex([float(v) for v in s.ImagePositionPatient])[2]) for s in slices]
        assert _dice(back, on_series[order]) >= 0.95, organ
    ds = pydicom.dcmread(out)
    referenced = {c.ReferencedSOPInstanceUID for c in ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
                  .RTReferencedSeriesSequence[0].ContourImageSequence}
    assert referenced == set(uids)
    assert [tuple(map(int, r.ROIDisplayColor)) for r in ds.ROIContourSequence] == [organ_color(o) for o in masks]
    assert {o.RTROIInterpretedType for o in ds.RTROIObservationsSequence} == {"ORGAN"}
    assert [o.RTROIIdentificationCodeSequence[0].CodeValue for o in ds.RTROIObservationsSequence] == [get_organ(o).snomed[0] for o in masks]


def test_rtstruct_contours_are_closed_planar_on_their_slices_in_order(series, tmp_path):
    folder, uids, volume, masks = series
    out = write_prediction("rtstruct", masks, get_label_map("zoo"), volume, tmp_path / "x.rtstruct.dcm", PRODUCER)
    ds = pydicom.dcmread(out)
    by_uid = {s.SOPInstanceUID: s for s in (pydicom.dcmread(f, stop_before_pixels=True) for f in volume.dicom_files)}
    for roi in ds.ROIContourSequence:
        where = []
        for contour in roi.ContourSequence:
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            assert len(contour.ContourImageSequence) == 1
            slice_ = by_uid[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
            points = np.asarray(contour.ContourData, float).reshape(-1, 3)
            assert int(contour.NumberOfContourPoints) == len(points) >= 1
            normal = np.cross(*np.asarray(slice_.ImageOrientationPatient, float).reshape(2, 3))
            assert np.allclose(points @ normal, position(slice_), atol=1e-3)  # every point on its slice's plane
            where.append(position(slice_))
        assert where == sorted(where)  # contours listed slice by slice along the normal


@pytest.fixture
def thorax(monkeypatch):
    """The shipped plugin's models: trained on phantoms, so they find organs in one."""
    pytest.importorskip("zoo_thorax", reason="the zoo-thorax plugin is not installed (pip install ./plugins/zoo-thorax)")
    monkeypatch.setenv("ZOO_PLUGINS", "thorax")


def test_zoo_predict_writes_the_same_organs_as_dicom_seg_rtstruct_and_nifti(thorax, series, tmp_path, run_cli):
    folder = series[0]
    outs = {"nifti": tmp_path / "l.nii.gz", "seg": tmp_path / "l.seg.dcm", "rt": tmp_path / "rs.dcm"}
    assert run_cli(["predict", "lung_left-deeplabv3", str(folder), "-o", str(outs["nifti"])])[0] == 0
    assert run_cli(["predict", "lung_left-deeplabv3", str(folder), "-o", str(outs["seg"])])[0] == 0
    code, stdout, _ = run_cli(["predict", "lung_left-deeplabv3", str(folder), "-o", str(outs["rt"]), "--format", "rtstruct"])
    assert code == 0 and "rtstruct: lung_left" in stdout
    labels = sitk.ReadImage(str(outs["nifti"]))  # on the series' grid
    want = sitk.GetArrayFromImage(labels) == 1
    assert want.sum() > 1000  # the model finds the lung, so the comparison is not between empty masks
    seg = hd.seg.segread(str(outs["seg"]))
    by_uid = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: f for f in sorted(folder.iterdir())}
    uids = list(by_uid)
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True, skip_overlap_checks=True)
    for uid, frame in zip(uids, pixels):
        ds = pydicom.dcmread(by_uid[uid], stop_before_pixels=True)
        k = round(labels.TransformPhysicalPointToContinuousIndex([float(v) for v in ds.ImagePositionPatient])[2])
        assert np.array_equal(frame == 1, want[k])
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "lung_left-deeplabv3" and algorithm.AlgorithmVersion.startswith("sha256:")
    rts = rt_utils.RTStructBuilder.create_from(dicom_series_path=str(folder), rt_struct_path=str(outs["rt"]))
    assert rts.get_roi_names() == ["lung_left"] and rts.get_roi_mask_by_name("lung_left").sum() > 0


def test_dicom_formats_need_a_dicom_series_and_a_clear_name(in_member_zoo, cohort_a, series, tmp_path, run_cli):
    nifti = str(cohort_a.cases[0].image)
    code, _, err = run_cli(["predict", "heart-unet", nifti, "-o", str(tmp_path / "x.seg.dcm")])
    assert code == 2 and "references the DICOM series the CT came from" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["predict", "heart-unet", str(series[0]), "-o", str(tmp_path / "x.dcm")])
    assert code == 2 and "say --format dicom-seg or --format rtstruct" in err
    code, _, err = run_cli(["predict", "heart-unet", str(series[0]), "-o", str(tmp_path / "x.nii.gz"), "--format", "rtstruct"])
    assert code == 2 and "--format rtstruct writes .rtstruct.dcm or .rt.dcm or .dcm files" in err
    assert list(tmp_path.iterdir()) == []


def test_a_dicom_cohort_writes_seg_per_study_and_fails_the_nifti_case(in_member_zoo, cohort_a, tmp_path, run_cli):
    studies = tmp_path / "studies"
    for i, case in enumerate(cohort_a.cases[:2]):
        write_ct_series(sitk.ReadImage(str(case.image)), studies / case.case_id, series=i + 1)
    listing = tmp_path / "cases.txt"
    listing.write_text(f"{studies / cohort_a.cases[0].case_id}\n{studies / cohort_a.cases[1].case_id}\n{cohort_a.cases[2].image}\n")
    out = tmp_path / "out"
    code, stdout, err = run_cli(["predict", "heart-unet", str(listing), "-o", str(out), "--format", "dicom-seg"])
    assert code == 1 and "2 cases segmented, 0 already done, 1 failed" in stdout
    assert f"failed: {cohort_a.cases[2].case_id}: " in err and "not a DICOM series" in err
    assert sorted(p.name for p in out.glob("*.seg.dcm")) == [f"{c.case_id}.seg.dcm" for c in cohort_a.cases[:2]]
    for c in cohort_a.cases[:2]:
        seg = hd.seg.segread(str(out / f"{c.case_id}.seg.dcm"))
        source = pydicom.dcmread(next((studies / c.case_id).iterdir()), stop_before_pixels=True)
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    code, stdout, _ = run_cli(["predict", "heart-unet", str(listing), "-o", str(out), "--format", "dicom-seg"])
    assert "0 cases segmented, 2 already done, 1 failed" in stdout
    code, _, err = run_cli(["predict", "heart-unet", str(listing), "-o", str(out)])
    assert code == 2 and "holds the dicom-seg outputs of 'heart-unet'" in err


def test_the_python_api_saves_dicom_seg_for_a_dicom_input(thorax, series, tmp_path):
    import zoo_ensemble as zoo
    from zoo_ensemble.errors import ZooError

    model = zoo.from_pretrained("heart-deeplabv3")
    seg = model.predict(series[0])
    assert seg.masks["heart"].sum() > 100
    out = seg.save(tmp_path / "heart.seg.dcm")
    back = hd.seg.segread(str(out))
    assert back.SegmentSequence[0].SegmentLabel == "heart"
    assert back.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "heart-deeplabv3"
    pixels = back.get_pixels_by_source_instance(source_sop_instance_uids=series[1], combine_segments=True, skip_overlap_checks=True)
    assert int((pixels == 1).sum()) == int(seg.masks["heart"].sum())
    nifti = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.ReadImage(series[2].dicom_files), str(nifti))
    with pytest.raises(ZooError, match="is not a DICOM series"):
        model.predict(nifti).save(tmp_path / "x.seg.dcm")
