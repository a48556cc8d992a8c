"""Inputs whose headers promise what their data do not hold, and writes that fail.

Files cut short in every format we read, spacings no CT has, DICOM series without the
identifiers a DICOM output must reference, and every kind of output written onto a full disk
(a file-size limit, ``RLIMIT_FSIZE``, stands in for one without root). Each command runs in
``hostile_runner.py`` under an address-space limit and must end in one ``error:`` line naming
the problem (exit 2), or in a correct result; the user's files stay byte-identical and no
partial file remains.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import JPEG2000Lossless, RLELossless

from hostile_runner import file_digests, run_cases
from dicom_writer import write_ct_series

HERE = Path(__file__).resolve().parent
PLUGIN_HEART = HERE.parent / "plugins" / "zoo-thorax" / "zoo_thorax" / "models" / "heart-unet"


def phantom(shape: tuple[int, int, int] = (6, 64, 64), spacing=(4.0, 4.0, 5.0)) -> sitk.Image:
    """Air around an elliptic body (40 HU) with a brighter blob in it."""
    z, y, x = np.indices(shape)
    cy, cx = shape[1] / 2, shape[2] / 2
    a = np.full(shape, -1000, np.int16)
    a[((y - cy) / (0.35 * shape[1])) ** 2 + ((x - cx) / (0.42 * shape[2])) ** 2 < 1] = 40
    a[((y - cy) / (0.1 * shape[1])) ** 2 + ((x - cx * 1.05) / (0.12 * shape[2])) ** 2 < 1] = 200
    image = sitk.GetImageFromArray(a)
    image.SetSpacing(spacing)
    return image


def cut(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write(image: sitk.Image, path: Path, compress: bool = False) -> Path:
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def dicom_series(image: sitk.Image, folder: Path, syntax: str | None = None, edit: Callable | None = None) -> Path:
    """``image`` as a DICOM series, re-encoded with pydicom's encoders (``syntax``) and edited."""
    write_ct_series(image, folder)
    for k, f in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(f)
        if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = syntax
        elif syntax is not None:
            ds.compress(syntax)
        if edit is not None:
            edit(ds, k)
        ds.save_as(f, enforce_file_format=syntax == pydicom.uid.DeflatedExplicitVRLittleEndian)
    return folder


def _blank(ds, k):
    for attr in ("SOPInstanceUID", "SOPClassUID", "SeriesInstanceUID", "StudyInstanceUID"):
        setattr(ds, attr, "")
    ds.file_meta.MediaStorageSOPInstanceUID = ""


def _no_frame_of_reference(ds, k):
    del ds.FrameOfReferenceUID


def _same_instance(ds, k):
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.77.5"


def _class_in_meta_only(ds, k):
    del ds.SOPClassUID


def _cases(user: Path, model: Path) -> list[dict]:
    """(what, argv, and either the words the error line must hold or the file a success writes)."""
    m = f"local-dir:{model}"
    ct = phantom()
    out = user / "out"
    out.mkdir()
    cases = []

    def refused(name, argv, words, **kw):
        cases.append({"name": name, "argv": argv, "words": words, **kw})

    def works(name, argv, writes, **kw):
        cases.append({"name": name, "argv": argv, "expect": 0, "writes": str(writes), **kw})

    def predict(source, target, *more):
        return ["predict", m, str(source), "-o", str(target), *more]

    # files cut short, in every format we read
    for name, compress in (("ct.nii.gz", True), ("ct.nii", False), ("raw.nrrd", False), ("gz.nrrd", True), ("raw.mha", False), ("z.mha", True)):
        refused(f"{name} cut at half", predict(cut(write(ct, user / name, compress)), out / "x.nii.gz"), "cut short")
    write(ct, user / "detached.mhd")
    cut(user / "detached.raw")
    refused("an .mhd whose .raw is cut short", predict(user / "detached.mhd", out / "x.nii.gz"), "cut short")
    write(ct, user / "alone.mhd")
    (user / "alone.raw").unlink()
    refused("an .mhd without its .raw", predict(user / "alone.mhd", out / "x.nii.gz"), "is missing")
    huge = bytearray(write(ct, user / "huge.nii").read_bytes()[:400])
    huge[42:48] = np.array([30000, 30000, 30000], "<i2").tobytes()  # a header promising 54 TB
    (user / "huge.nii").write_bytes(bytes(huge))
    refused("a NIfTI header promising 54 TB", predict(user / "huge.nii", out / "x.nii.gz"), "54,000,000,000,000 bytes of data its header promises")
    plain = dicom_series(ct, user / "cut-first")
    cut(sorted(plain.iterdir())[0], 0.97)
    refused("a DICOM series whose first slice is cut short", predict(plain, out / "x.nii.gz"), "ct_0000.dcm: holds")
    j2k = dicom_series(ct, user / "cut-j2k", JPEG2000Lossless)
    cut(sorted(j2k.iterdir())[-1], 0.9)
    refused("a JPEG 2000 series whose last slice is cut short", predict(j2k, out / "x.nii.gz"), "ct_0005.dcm")
    labels = write(sitk.Cast(ct > 100, sitk.sitkUInt8), user / "labels.nii.gz", True)
    pred = cut(write(sitk.Cast(ct > 100, sitk.sitkUInt8), user / "pred.nii.gz", True), 0.7)
    refused("evaluating a label map cut short", ["evaluate", "--pred", str(pred), "--gt", str(labels), "--labels", "1=heart", "-o", str(out / "ev")], "cut short")

    # spacings no CT has; large but possible ones predict within the memory limit
    for name, spacing, words in (("coarse", (100.0, 100.0, 5.0), "spacing 100 mm"), ("fine", (0.001, 0.001, 5.0), "spacing 0.001 mm"),
                                 ("thick", (1.0, 1.0, 80.0), "slice spacing 80 mm")):
        path = write(phantom(spacing=spacing), user / f"{name}.nii.gz", True)
        refused(f"a CT of {spacing} mm voxels", predict(path, out / "x.nii.gz"), words)
    far = write(sitk.Cast(phantom(spacing=(100.0, 100.0, 5.0)) > 100, sitk.sitkUInt8), user / "far-labels.nii.gz", True)
    refused("evaluating a label map of 100 mm pixels", ["evaluate", "--pred", str(far), "--gt", str(far), "--labels", "1=heart", "-o", str(out / "ev")], "spacing 100 mm")
    for mm in (5, 10):
        big = write(phantom((16, 1024, 1024), (float(mm), float(mm), 5.0)), user / f"big-{mm}mm.nii.gz", True)
        # the shipped 160 px, 2.2 mm model: before, a 1024 px slice at 10 mm became 4654 px
        works(f"1024 px of {mm} mm, a shipped model", ["predict", f"local-dir:{PLUGIN_HEART}", str(big), "-o", str(out / f"big-{mm}.nii.gz")], out / f"big-{mm}.nii.gz")

    # DICOM outputs need the identifiers they reference
    small = phantom((4, 48, 48))
    blanked = dicom_series(small, user / "blanked", JPEG2000Lossless, _blank)
    refused("DICOM-SEG of a series with blanked UIDs", predict(blanked, out / "x.seg.dcm"), "have no SOPInstanceUID")
    refused("RTSTRUCT of a series with blanked UIDs", predict(blanked, out / "x.rtstruct.dcm"), "have no SOPInstanceUID")
    works("NIfTI of a series with blanked UIDs", predict(blanked, out / "blanked.nii.gz"), out / "blanked.nii.gz")
    no_for = dicom_series(small, user / "no-for", None, _no_frame_of_reference)
    refused("DICOM-SEG of a series without a frame of reference", predict(no_for, out / "x.seg.dcm"), "no FrameOfReferenceUID")
    twins = dicom_series(small, user / "twins", RLELossless, _same_instance)
    refused("RTSTRUCT of a series whose instances share one UID", predict(twins, out / "x.rtstruct.dcm"), "share the SOPInstanceUID")
    meta = dicom_series(small, user / "class-in-meta", None, _class_in_meta_only)
    works("DICOM-SEG of a series whose SOP class is in the file meta only", predict(meta, out / "meta.seg.dcm"), out / "meta.seg.dcm")

    # writes onto a full disk: the target keeps its content, nothing partial remains
    full = 16 << 10
    good = write(ct, user / "good.nii.gz", True)
    kept = user / "kept.nii"
    kept.write_bytes(b"the user's earlier result")
    series = dicom_series(phantom((6, 96, 96)), user / "series")
    refused("a label map over an earlier one", predict(good, kept), "kept.nii: could not be written (File too large)", fsize=full)
    refused("probabilities (after the label map)", predict(good, out / "p.nii.gz", "--probabilities"), "p_prob_heart.nii.gz: could not be written (File too large)",
            fsize=4000, leaves="p.nii.gz")
    for suffix in (".nrrd", ".mha"):
        refused(f"a {suffix} label map", predict(good, out / f"l{suffix}"), "could not be written (File too large)", fsize=200)
    refused("DICOM-SEG", predict(series, out / "l.seg.dcm"), "l.seg.dcm: could not be written (File too large)", fsize=2000)
    refused("RTSTRUCT", predict(series, out / "l.rtstruct.dcm"), "l.rtstruct.dcm: could not be written (File too large)", fsize=2000)
    refused("an ensemble folder", ["compose", "--method", "argmax", "--models", m, "-o", str(out / "ens")], "ens: could not be written (File too large)", fsize=full)
    refused("an evaluation report", ["evaluate", "--pred", str(labels), "--gt", str(labels), "--labels", "1=heart", "-o", str(out / "ev")], "could not be written (File too large)", fsize=100)
    return cases


def _error_lines(stderr: str) -> list[str]:
    """What a person reads: warnings and progress bars set aside."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:") and "━" not in ln]


@pytest.mark.slow
def test_lying_inputs_and_failed_writes_end_in_one_line(trained_heart, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    cases = _cases(user, trained_heart)
    before = {k: v for k, v in file_digests(user).items() if not k.startswith("out/")}
    report = run_cases(cases, tmp_path, dict(os.environ, ZOO_HOME=str(tmp_path / "home"), ZOO_PLUGINS="none", COLUMNS="200"))
    failures = []
    for case, result in zip(cases, report["results"]):
        lines = _error_lines(result["stderr"])
        if case.get("expect") == 0:
            ok = result["code"] in (0, None) and not lines and Path(case["writes"]).is_file()
        else:
            ok = result["code"] == 2 and len(lines) == 1 and lines[0].startswith("error:") and case["words"] in lines[0]
        if not ok or "Traceback" in result["stderr"]:
            failures.append(f"{case['name']}: exit {result['code']}, stderr {result['stderr'][-700:]!r}")
    assert not failures, "\n".join(failures)
    assert report["peak_rss"] < 2 * 2**30, f"peak resident memory {report['peak_rss'] / 2**20:.0f} MiB"
    after = file_digests(user)
    assert {k: v for k, v in after.items() if not k.startswith("out/")} == before  # the user's files byte-identical
    written = {Path(c["writes"]).name for c in cases if "writes" in c} | {c["leaves"] for c in cases if "leaves" in c}
    assert {Path(k).name for k in after if k.startswith("out/")} <= written  # nothing partial remains
    assert not [p for p in user.rglob("*") if ".tmp" in p.name]


def test_a_cohort_fails_a_case_that_cannot_carry_dicom_output_and_writes_the_others(in_member_zoo, tmp_path, run_cli):
    studies = tmp_path / "studies"
    dicom_series(phantom(), studies / "good", JPEG2000Lossless)
    dicom_series(phantom(), studies / "anonymised", JPEG2000Lossless, _blank)
    code, stdout, err = run_cli(["predict", "heart-unet", str(studies), "-o", str(tmp_path / "out"), "--format", "rtstruct"])
    assert code == 1 and "1 cases segmented, 0 already done, 1 failed" in stdout
    assert "failed: anonymised: " in err and "have no SOPInstanceUID, which RTSTRUCT output must reference" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cohort.json", "good.rtstruct.dcm"]


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, pydicom.uid.JPEGLSLossless, RLELossless, pydicom.uid.DeflatedExplicitVRLittleEndian])
def test_compressed_series_are_read_and_referenced_like_uncompressed_ones(syntax, tmp_path):
    from zoo_ensemble.dicom import Producer
    from zoo_ensemble.formats import write_prediction
    from zoo_ensemble.volumes import read_ct

    hd = pytest.importorskip("highdicom")
    rt_utils = pytest.importorskip("rt_utils")
    image = phantom((5, 48, 48))
    plain = read_ct(dicom_series(image, tmp_path / "plain"))
    packed = read_ct(dicom_series(image, tmp_path / "packed", syntax))
    assert pydicom.dcmread(packed.dicom_files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(packed.array, plain.array)  # voxel for voxel
    mask = packed.array > 100
    producer = Producer("heart-test", "sha256:00", "9.9.9")
    seg = hd.seg.segread(str(write_prediction("dicom-seg", {"heart": mask}, None, packed, tmp_path / "h.seg.dcm", producer)))
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in packed.dicom_files]
    assert {r.ReferencedSOPInstanceUID for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} == set(uids)
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True, skip_overlap_checks=True)
    assert int((pixels == 1).sum()) == int(mask.sum()) > 0
    rt = write_prediction("rtstruct", {"heart": mask}, None, packed, tmp_path / "h.rtstruct.dcm", producer)
    back = rt_utils.RTStructBuilder.create_from(dicom_series_path=str(tmp_path / "packed"), rt_struct_path=str(rt))
    got = back.get_roi_mask_by_name("heart")
    assert 2 * (got.sum() - abs(int(got.sum()) - int(mask.sum()))) / (got.sum() + mask.sum()) > 0.8


def test_what_a_dicom_library_raises_while_writing_is_one_line(tmp_path, monkeypatch):
    from zoo_ensemble.dicom import Producer
    from zoo_ensemble.errors import DicomOutputError
    from zoo_ensemble.formats import write_prediction
    from zoo_ensemble.volumes import read_ct

    hd = pytest.importorskip("highdicom")
    volume = read_ct(dicom_series(phantom((3, 32, 32)), tmp_path / "s"))

    def broken(*args, **kwargs):
        raise KeyError("")  # what highdicom raised on a series with empty UIDs

    monkeypatch.setattr(hd.seg, "Segmentation", broken)
    with pytest.raises(DicomOutputError, match=r"x\.seg\.dcm: highdicom could not make the DICOM-SEG \(KeyError"):
        write_prediction("dicom-seg", {"heart": volume.array > 100}, None, volume, tmp_path / "x.seg.dcm", Producer("m", "r", "v"))
    assert not (tmp_path / "x.seg.dcm").exists()
    before = volume.dicom_headers[0].get("StudyID")
    write_prediction("rtstruct", {"heart": volume.array > 100}, None, volume, tmp_path / "x.rtstruct.dcm", Producer("m", "r", "v"))
    assert volume.dicom_headers[0].get("StudyID") == before  # the writer filled in a copy, not the volume's headers


def test_spreadsheet_cells_that_would_run_are_made_text():
    from zoo_ensemble.spreadsheet import csv_text, inert

    assert [inert(c) for c in ("=1+1", "+1+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x", "heart", "", "a=b")] == [
        "'=1+1", "'+1+cmd", "'-2+3", "'@SUM(A1)", "'\t=x", "'\r=x", "heart", "", "a=b"]
    assert [inert(c) for c in ("-3.5", "+1e3", "-.5", "-0", 7, -2.5)] == ["-3.5", "+1e3", "-.5", "-0", 7, -2.5]  # numbers keep their sign
    assert inert("-inf") == "'-inf"
    assert csv_text(["case", "v"], [['=HYPERLINK("http:x";"a")', "-1.5"]]) == 'case,v\n"\'=HYPERLINK(""http:x"";""a"")",-1.5\n'


def test_case_names_like_formulas_stay_text_in_every_csv(trained_heart, tmp_path, run_cli):
    name = '=HYPERLINK("http:x";"a")'
    cases = tmp_path / "cases"
    cases.mkdir()
    write(phantom(), cases / f"{name}.nii.gz", True)
    code, _, err = run_cli(["predict", f"local-dir:{trained_heart}", str(cases), "-o", str(tmp_path / "out"), "--statistics"])
    assert code == 0, err
    rows = (tmp_path / "out" / "statistics.csv").read_text().splitlines()
    assert rows[1].startswith('"\'=HYPERLINK(""http:x"";""a"")",heart,')
    assert json.loads((tmp_path / "out" / "statistics.json").read_text())[0]["case"] == name  # JSON keeps the raw name
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / f"{name}.nii.gz").write_bytes((tmp_path / "out" / f"{name}.nii.gz").read_bytes())
    code, _, err = run_cli(["evaluate", "--pred", str(tmp_path / "out"), "--gt", str(gt), "--labels", "zoo", "-o", str(tmp_path / "ev")])
    assert code == 0, err
    assert (tmp_path / "ev" / "evaluation.csv").read_text().splitlines()[1].startswith('"\'=HYPERLINK(')
