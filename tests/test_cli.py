from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from zoo_ensemble.cli import main


def zoo(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo_ensemble", *args], capture_output=True, encoding="utf-8", cwd=cwd)


def test_help_lists_commands():
    """Each command has its own row in the help's command table (a word in some other help text
    does not count), and the product's commands are all there."""
    import typer

    from zoo_ensemble.cli import _register
    from zoo_ensemble.cli.app import app

    r = zoo("--help")
    assert r.returncode == 0
    listed = set(re.findall(r"^│ ([a-z][a-z-]*) ", r.stdout, re.M))
    _register()
    assert listed == set(typer.main.get_command(app).commands)
    assert {"data", "train", "compose", "predict", "evaluate", "demo", "list", "info", "verify", "pull", "push", "plugins"} <= listed


def test_bad_input_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "ct.nii.gz"
    bad.write_text("garbage")
    r = zoo("data", "preview", str(bad), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "not an image" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_phantom_command_writes_a_dataset(tmp_path):
    out = tmp_path / "cohort"
    main(["data", "phantom", "--out", str(out), "--cases", "2", "--source", "B", "--seed", "5", "--scale", "4"])
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["label_map"] == "segthor" and manifest["organs"] == ["heart", "esophagus", "trachea", "aorta"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["B5-000.nii.gz", "B5-001.nii.gz"]
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["B5-000.nii.gz", "B5-001.nii.gz"]
    with pytest.raises(SystemExit) as exc:
        main(["data", "phantom", "--out", str(out), "--source", "C"])
    assert exc.value.code == 2


def test_preview_writes_a_png(cohort_a, tmp_path):
    out = tmp_path / "p.png"
    main(["data", "preview", str(cohort_a.cases[0].image), "-o", str(out), "--slices", "3"])
    img = sitk.ReadImage(str(out))
    assert img.GetSize()[0] > 600 and img.GetSize()[1] > 300


def test_evaluate_files_and_folders(cohort_a, tmp_path, capsys):
    gt_dir = tmp_path / "gt"
    pred_dir = tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    for case in cohort_a.cases[:2]:
        shutil.copy(case.labels, gt_dir / case.labels.name)
        img = sitk.ReadImage(str(case.labels))
        arr = sitk.GetArrayFromImage(img)
        arr[arr == 3] = 0  # the "prediction" misses the heart entirely
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(img)
        sitk.WriteImage(out, str(pred_dir / case.labels.name))
    main(["evaluate", "--pred", str(pred_dir), "--gt", str(gt_dir), "--labels", "structseg", "--out", str(tmp_path / "ev")])
    text = capsys.readouterr().out
    assert "lung_left" in text and "mean" in text
    data = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert data["organs"]["lung_left"]["dice"]["mean"] == pytest.approx(1.0)
    assert data["organs"]["heart"]["dice"]["mean"] == 0.0
    assert data["missed"] == 2
    per_case_mean = np.mean([1, 1, 0, 1, 1, 1])
    assert data["mean"]["dice"]["mean"] == pytest.approx(per_case_mean)
    assert (tmp_path / "ev" / "evaluation.csv").read_text().count("\n") == 1 + 2 * 6


@pytest.mark.parametrize(
    "args, words",
    [(["--bogus"], "No such option: --bogus"), (["predict"], "Missing argument 'model'"), (["nocmd"], "No such command 'nocmd'")],
)
def test_usage_errors_are_one_line_with_status_2(args, words):
    r = zoo(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0] and "--help" in lines[0]


def test_version():
    from zoo_ensemble import __version__

    r = zoo("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"zoo-ensemble {__version__}"


def test_error_text_prints_as_written_not_as_markup(tmp_path):
    bad = tmp_path / "[red]x[/red].nii.gz"
    r = zoo("data", "preview", str(bad))
    assert r.returncode == 2 and "[red]x[/red].nii.gz" in r.stderr
