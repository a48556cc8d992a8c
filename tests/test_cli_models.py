from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from safetensors.torch import load_file, save_file

from zoo_ensemble.cli import main


def test_train_predict_evaluate_from_the_command_line(cohort_a, tmp_path, capsys):
    out = tmp_path / "trachea-se"
    main([
        "train", "--organ", "trachea", "--arch", "se_resunet", "--data", str(cohort_a.root), "--out", str(out),
        "--size", "64", "--spacing", "4,4", "--epochs", "1", "--steps", "2", "--batch-size", "4", "--device", "cpu",
    ])
    assert (out / "model.safetensors").exists() and (out / "config.json").exists() and (out / "README.md").exists()
    assert "trachea" in (out / "README.md").read_text()

    ct = cohort_a.cases[0].image
    pred_path = tmp_path / "pred" / "labels.nrrd"
    main(["predict", f"local-dir:{out}", str(ct), "-o", str(pred_path), "--probabilities", "--label-map", "structseg"])
    src, pred = sitk.ReadImage(str(ct)), sitk.ReadImage(str(pred_path))
    assert pred.GetSize() == src.GetSize() and pred.GetOrigin() == src.GetOrigin() and pred.GetDirection() == src.GetDirection()
    prob = sitk.ReadImage(str(tmp_path / "pred" / "labels_prob_trachea.nii.gz"))
    assert prob.GetPixelIDTypeAsString() == "32-bit float" and prob.GetSize() == src.GetSize()
    labels = sitk.GetArrayFromImage(pred)
    assert np.array_equal(labels == 5, sitk.GetArrayFromImage(prob) > 0.5)  # trachea is 5 in StructSeg's map
    assert set(np.unique(labels)) <= {0, 5}

    # a model certain of the trachea everywhere in its field of view: the value written is 5
    sure = tmp_path / "sure"
    shutil.copytree(out, sure)
    state = load_file(str(sure / "model.safetensors"))
    state["head.bias"] = torch.full_like(state["head.bias"], 30.0)
    save_file(state, str(sure / "model.safetensors"))
    card = (sure / "README.md").read_text()
    (sure / "README.md").write_text("\n".join(ln for ln in card.splitlines() if "weights_sha256" not in ln) + "\n")
    main(["predict", f"local-dir:{sure}", str(ct), "-o", str(tmp_path / "sure.nii.gz"), "--label-map", "structseg"])
    values = np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "sure.nii.gz"))))
    assert set(values) == {0, 5} or set(values) == {5}

    main(["evaluate", str(out), "--data", str(cohort_a.root), "--split", "all", "--out", str(tmp_path / "ev")])
    data = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert data["split"] == "all" and len(data["cases"]) == len(cohort_a.cases)
    assert set(data["organs"]) == {"trachea"}
    assert "trachea" in capsys.readouterr().out


def test_training_an_organ_no_dataset_annotates_fails_before_training(cohort_a, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--organ", "aorta", "--data", str(cohort_a.root), "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "no dataset annotates 'aorta'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_unknown_model_suggests(in_member_zoo, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["predict", "heart-unett", str(tmp_path / "ct.nii.gz")])
    assert "did you mean heart-unet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "org/heart", str(tmp_path / "ct.nii.gz")])
    err = capsys.readouterr().err
    assert "local-dir:" in err and "hf-hub:" in err
