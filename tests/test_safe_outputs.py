"""Nothing a user owns is overwritten or deleted unasked; bad inputs and outputs are one line, before work."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from zoo_ensemble.cli import main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return exc.value.code, lines


def _digest(path: Path) -> str:
    if path.is_dir():
        return "|".join(f"{p.relative_to(path)}:{_digest(p)}" for p in sorted(path.rglob("*")) if p.is_file())
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ct(tmp_path):
    a = np.full((3, 48, 48), -1000, np.int16)
    a[:, 10:30, 10:30] = 40
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(a), str(path))
    return path


def _refusal(argv, capsys, *protected) -> str:
    """Run a command that must be refused: status 2, one `error:` line, ``protected`` untouched.
    Returns that line, for the test to check what it names."""
    before = [_digest(p) for p in protected]
    code, lines = _run(argv, capsys)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert [_digest(p) for p in protected] == before
    return lines[0]


def test_predict_onto_its_own_input_is_refused(trained_heart, ct, capsys):
    assert "is also an input" in _refusal(["predict", f"local-dir:{trained_heart}", str(ct), "-o", str(ct)], capsys, ct)


def test_predict_into_a_folder_or_under_a_file_is_refused(trained_heart, ct, tmp_path, capsys):
    # -o naming a folder makes a cohort (of one): a folder holding other things is refused
    assert "not empty and not a cohort output folder" in _refusal(["predict", f"local-dir:{trained_heart}", str(ct), "-o", str(tmp_path)], capsys, ct)
    assert "is a file, not a folder" in _refusal(["predict", f"local-dir:{trained_heart}", str(ct), "-o", str(ct / "x.nii.gz")], capsys, ct)
    assert "unsupported file type" in _refusal(["predict", f"local-dir:{trained_heart}", str(ct), "-o", str(tmp_path / "x.png")], capsys, ct)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_predict_into_a_read_only_folder_is_refused(trained_heart, ct, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert "not writable" in _refusal(["predict", f"local-dir:{trained_heart}", str(ct), "-o", str(ro / "x.nii.gz")], capsys)
    finally:
        ro.chmod(0o700)


def test_preview_onto_its_input_is_refused(ct, capsys):
    assert "is also an input" in _refusal(["data", "preview", str(ct), "-o", str(ct)], capsys, ct)
    assert "unsupported file type" in _refusal(["data", "preview", str(ct), "-o", str(ct.with_name("p.jpg"))], capsys, ct)


def test_train_into_a_users_folder_needs_force(cohort_a, tmp_path, capsys):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("years of work")
    assert "--force" in _refusal(
        ["train", "--organ", "heart", "--data", str(cohort_a.root), "--size", "64", "--spacing", "4,4", "-o", str(folder)],
        capsys, folder,
    )


def test_phantom_into_another_dataset_needs_force(tmp_path, capsys):
    out = tmp_path / "cohort"
    main(["data", "phantom", "--out", str(out), "--cases", "1", "--source", "A", "--seed", "1", "--scale", "6"])
    main(["data", "phantom", "--out", str(out), "--cases", "1", "--source", "A", "--seed", "1", "--scale", "6"])  # same settings: fine
    capsys.readouterr()
    assert "--force" in _refusal(["data", "phantom", "--out", str(out), "--cases", "2", "--source", "B", "--seed", "1", "--scale", "6"], capsys, out)
    main(["data", "phantom", "--out", str(out), "--cases", "1", "--source", "B", "--seed", "1", "--scale", "6", "--force"])
    assert sorted(p.name for p in (out / "images").iterdir()) == ["B1-000.nii.gz"]


@pytest.mark.parametrize("values", [np.nan, np.inf])
def test_non_finite_voxels_are_refused(values, trained_heart, tmp_path, capsys):
    a = np.full((3, 48, 48), -1000, np.float32)
    a[1, 5, 5] = values
    path = tmp_path / "bad.mha"
    sitk.WriteImage(sitk.GetImageFromArray(a), str(path))
    assert "1 of 6912 voxels are NaN or infinite" in _refusal(["predict", f"local-dir:{trained_heart}", str(path), "-o", str(tmp_path / "o.nii.gz")], capsys)
    assert not (tmp_path / "o.nii.gz").exists()


def test_a_single_slice_image_is_predicted(trained_heart, tmp_path, capsys):
    a = np.full((1, 48, 48), -1000, np.int16)
    path = tmp_path / "one.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(a), str(path))
    main(["predict", f"local-dir:{trained_heart}", str(path), "-o", str(tmp_path / "o.nii.gz")])
    assert sitk.ReadImage(str(tmp_path / "o.nii.gz")).GetSize() == (48, 48, 1)


def test_label_values_missing_from_the_map_are_named(tmp_path, caplog):
    from zoo_ensemble.evaluation import evaluate_label_files
    from zoo_ensemble.labelmaps import get_label_map

    ref = np.zeros((2, 16, 16), np.uint8)
    ref[:, 2:6, 2:6] = 3
    ref[:, 10:12, 10:12] = 9  # not a zoo value
    for name in ("gt.nii.gz", "pred.nii.gz"):
        sitk.WriteImage(sitk.GetImageFromArray(ref), str(tmp_path / name))
    with caplog.at_level(logging.WARNING, logger="zoo_ensemble"):
        evaluate_label_files(tmp_path / "pred.nii.gz", tmp_path / "gt.nii.gz", get_label_map("zoo"))
    messages = [r.getMessage() for r in caplog.records]
    assert any("9 (8 voxels)" in m and "not in label map 'zoo'" in m for m in messages)
