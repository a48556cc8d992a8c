"""Cohort prediction: many CTs, the model loaded once, failures skipped and reported, an
interrupted cohort resumed, statistics and previews, outputs equal to one-by-one prediction."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from zoo_ensemble.cli import main


def _labels(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture
def cohort_dir(cohort_a, tmp_path) -> Path:
    folder = tmp_path / "cts"
    folder.mkdir()
    for case in cohort_a.cases[:3]:
        (folder / Path(case.image).name).symlink_to(case.image)
    (folder / "broken.nii.gz").write_text("not an image")
    return folder


def test_a_cohort_skips_a_failing_case_and_says_so(in_member_zoo, cohort_dir, tmp_path, run_cli):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(["predict", "heart-unet", str(cohort_dir), "-o", str(out), "--statistics", "--preview"])
    assert code == 1  # one case failed
    assert "failed: broken:" in stderr and "3 cases segmented, 0 already done, 1 failed" in stdout
    names = sorted(p.name for p in out.glob("*.nii.gz"))
    assert len(names) == 3 and "broken.nii.gz" not in names
    assert len(list(out.glob("*.png"))) == 3 and (out / "cohort.json").is_file()
    rows = list(csv.DictReader((out / "statistics.csv").open()))
    assert len(rows) == 3 and {r["organ"] for r in rows} == {"heart"}
    stats = json.loads((out / "statistics.json").read_text())
    first = stats[0]
    image = sitk.ReadImage(str(cohort_dir / f"{first['case']}.nii.gz"))
    labels = _labels(out / f"{first['case']}.nii.gz")
    voxel_ml = np.prod(image.GetSpacing()) / 1000
    heart = first["organs"]["heart"]
    assert heart["voxels"] == int((labels == 3).sum()) and heart["volume_ml"] == pytest.approx(heart["voxels"] * voxel_ml)
    if heart["voxels"]:
        assert heart["mean_hu"] == pytest.approx(float(sitk.GetArrayFromImage(image)[labels == 3].clip(-1024).mean()), rel=1e-4)


def test_cohort_outputs_equal_one_by_one_prediction(in_member_zoo, cohort_dir, tmp_path, run_cli):
    out = tmp_path / "out"
    run_cli(["predict", "heart-unet", str(cohort_dir), "-o", str(out)])
    for ct in sorted(cohort_dir.glob("*.nii.gz"))[:1]:
        if ct.name == "broken.nii.gz":
            continue
        single = tmp_path / f"single-{ct.name}"
        main(["predict", "heart-unet", str(ct), "-o", str(single)])
        assert np.array_equal(_labels(single), _labels(out / ct.name))
        a, b = sitk.ReadImage(str(single)), sitk.ReadImage(str(out / ct.name))
        assert a.GetOrigin() == b.GetOrigin() and a.GetDirection() == b.GetDirection()


def test_an_interrupted_cohort_computes_only_what_is_missing(in_member_zoo, cohort_dir, tmp_path, run_cli):
    out = tmp_path / "out"
    (cohort_dir / "broken.nii.gz").unlink()
    assert run_cli(["predict", "heart-unet", str(cohort_dir), "-o", str(out)])[0] == 0
    before = {p.name: _labels(p) for p in out.glob("*.nii.gz")}
    gone = sorted(before)[1]
    (out / gone).unlink()  # as if the run had stopped before this case
    code, stdout, _ = run_cli(["predict", "heart-unet", str(cohort_dir), "-o", str(out)])
    assert code == 0 and "1 cases segmented, 2 already done, 0 failed" in stdout
    assert all(np.array_equal(_labels(out / n), a) for n, a in before.items())
    code, stdout, _ = run_cli(["predict", "heart-unet", str(cohort_dir), "-o", str(out), "--overwrite"])
    assert "3 cases segmented, 0 already done" in stdout


def test_a_list_file_and_its_missing_entries(in_member_zoo, cohort_a, tmp_path, run_cli):
    listing = tmp_path / "cases.csv"
    rel = Path(cohort_a.cases[0].image)
    listing.write_text(f"path\n{rel}\n{tmp_path / 'nowhere.nii.gz'}\n")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(["predict", "heart-unet", str(listing), "-o", str(out)])
    assert code == 1 and "failed: nowhere: " in stderr and "no such file" in stderr
    assert (out / Path(rel).name).is_file()


@pytest.mark.parametrize(
    ("out", "words"),
    [("inside", "is inside the input folder"), ("labels.nii.gz", "a cohort needs -o FOLDER"), ("users", "not empty and not a cohort output folder")],
)
def test_cohort_refuses_bad_output_folders(in_member_zoo, cohort_dir, tmp_path, out, words, run_cli):
    target = {"inside": cohort_dir / "out", "labels.nii.gz": tmp_path / "labels.nii.gz", "users": tmp_path / "users"}[out]
    if out == "users":
        target.mkdir()
        (target / "mine.txt").write_text("keep")
    code, _, stderr = run_cli(["predict", "heart-unet", str(cohort_dir), "-o", str(target)])
    assert code == 2 and words in stderr and len(stderr.strip().splitlines()) == 1
    assert not any(target.glob("*.nii.gz")) if target.is_dir() else not target.exists()


def test_another_models_cohort_folder_is_refused(in_member_zoo, cohort_dir, tmp_path, run_cli):
    out = tmp_path / "out"
    (cohort_dir / "broken.nii.gz").unlink()
    run_cli(["predict", "heart-unet", str(cohort_dir), "-o", str(out)])
    code, _, stderr = run_cli(["predict", "trachea-se_resunet", str(cohort_dir), "-o", str(out)])
    assert code == 2 and "holds the nifti outputs of 'heart-unet'" in stderr


def test_progress_counts_cases_and_each_cases_slices(in_member_zoo, cohort_dir, tmp_path):
    from zoo_ensemble.cohort_predict import CohortRun, gather_cases
    from zoo_ensemble.labelmaps import get_label_map
    from zoo_ensemble.zoo.model import ZooModel

    (cohort_dir / "broken.nii.gz").unlink()
    model = ZooModel.from_pretrained("heart-unet")
    cases_seen, slices_seen = [], []
    run = CohortRun(
        model, dict(label_map=get_label_map("zoo"), device="cpu"), tmp_path / "out",
        progress=lambda i, n: cases_seen.append((i, n)), slice_progress=lambda i, n: slices_seen.append((i, n)),
    )
    (tmp_path / "out").mkdir()
    run.run(gather_cases([cohort_dir]))
    assert cases_seen == [(1, 3), (2, 3), (3, 3)]
    depths = [sitk.ReadImage(str(p)).GetDepth() for p in sorted(cohort_dir.glob("*.nii.gz"))]
    assert [n for i, n in slices_seen if i == n] == depths  # each case's slices counted to its end
