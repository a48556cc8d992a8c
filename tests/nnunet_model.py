"""A small nnU-Net v2 trained-model folder, made by nnU-Net itself, for the import tests.

Phantom patients are written as an nnU-Net raw dataset; nnU-Net extracts the fingerprint and
plans the experiment; the 3d_fullres network of the plans is then shrunk (the plans' own one,
32 to 320 features, would take minutes per CT on two cores) and two folds of it are initialised
with seeds and saved in nnU-Net's checkpoint format, as its trainer saves them. The final layer
is scaled so that the random network is confident: a voxel's label then does not hang on a
near tie, and fidelity tests compare label maps, not rounding.

Run as ``python tests/nnunet_model.py OUT`` (nnU-Net reads its folders from the environment
when imported, so the test session runs it in a subprocess); ``OUT/model`` is the trained-model
folder, ``OUT/ct`` holds one CT to predict.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

#: dataset.json labels: heart, both lungs (each as two "lobes", as TotalSegmentator has them), aorta.
LABELS = {"background": 0, "heart": 1, "lung_upper_lobe_left": 2, "lung_lower_lobe_left": 3, "aorta": 4}
DATASET = "Dataset901_ZooPhantom"
CASES = 3


def _write(array: np.ndarray, spacing: tuple[float, float, float], origin: tuple[float, float, float], path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path), useCompression=True)


def _labels(case) -> np.ndarray:  # noqa: ANN001
    out = np.zeros(case.image.shape, dtype=np.uint8)
    out[case.labels["heart"]] = 1
    left = case.labels["lung_left"]
    upper = np.zeros_like(left)
    upper[left.shape[0] // 2 :] = True
    out[left & upper] = 2
    out[left & ~upper] = 3
    out[case.labels["aorta"]] = 4
    return out


def write_raw(raw: Path) -> None:
    from zoo_ensemble.data.phantom.generator import generate_case

    folder = raw / DATASET
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    for i in range(CASES + 1):
        case = generate_case("A", 901, i, 4.0)
        if i == CASES:  # the held-out CT the tests predict
            (raw.parent / "ct").mkdir(exist_ok=True)
            _write(case.image.astype(np.int16), case.spacing, case.origin, raw.parent / "ct" / "case_0000.nii.gz")
            continue
        _write(case.image.astype(np.int16), case.spacing, case.origin, folder / "imagesTr" / f"case_{i:03d}_0000.nii.gz")
        _write(_labels(case), case.spacing, case.origin, folder / "labelsTr" / f"case_{i:03d}.nii.gz")
    meta = {"channel_names": {"0": "CT"}, "labels": LABELS, "numTraining": CASES, "file_ending": ".nii.gz", "name": "ZooPhantom"}
    (folder / "dataset.json").write_text(json.dumps(meta))


def shrink(plans: dict) -> dict:
    """The 3d_fullres network cut to three stages of 4 to 16 features and a 32 x 48 x 48 patch,
    at twice the planned spacing: a CT then takes a few sliding-window tiles, not dozens."""
    cfg = plans["configurations"]["3d_fullres"]
    cfg["patch_size"] = [32, 48, 48]
    cfg["spacing"] = [2 * s for s in cfg["spacing"]]
    cfg["batch_size"] = 2
    kw = cfg["architecture"]["arch_kwargs"]
    kw.update(
        n_stages=3, features_per_stage=[4, 8, 16], kernel_sizes=[[3, 3, 3]] * 3, strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        n_conv_per_stage=[1, 1, 1], n_conv_per_stage_decoder=[1, 1],
    )
    return plans


def save_folds(plans: dict, dataset_json: dict, out: Path) -> None:
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    cfg = plans["configurations"]["3d_fullres"]
    arch = cfg["architecture"]
    for fold in (0, 1):
        torch.manual_seed(fold)
        net = get_network_from_plans(
            arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"], 1, len(LABELS), allow_init=True, deep_supervision=False,
        )
        with torch.no_grad():
            net.decoder.seg_layers[-1].weight.mul_(50.0)
        checkpoint = {
            "network_weights": net.state_dict(),
            "optimizer_state": None,
            "grad_scaler_state": None,
            "logging": {"ema_fg_dice": [np.float64(0.5)]},  # as nnU-Net's trainer logs: numpy scalars
            "_best_ema": np.float64(0.5),
            "current_epoch": 1,
            "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": fold, "dataset_json": dataset_json, "device": "cpu"},
            "trainer_name": "nnUNetTrainer",
            "inference_allowed_mirroring_axes": (0, 1, 2),
        }
        (out / f"fold_{fold}").mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, out / f"fold_{fold}" / "checkpoint_final.pth")


def main(out: Path) -> None:
    raw, pre = out / "raw", out / "preprocessed"
    write_raw(raw)
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments

    extract_fingerprints([901], num_processes=1, check_dataset_integrity=True, clean=True, verbose=False)
    plan_experiments([901])
    plans = shrink(json.loads((pre / DATASET / "nnUNetPlans.json").read_text()))
    dataset_json = json.loads((raw / DATASET / "dataset.json").read_text())
    model = out / "model" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    model.mkdir(parents=True, exist_ok=True)
    (model / "plans.json").write_text(json.dumps(plans, indent=1))
    (model / "dataset.json").write_text(json.dumps(dataset_json, indent=1))
    save_folds(plans, dataset_json, model)


if __name__ == "__main__":
    target = Path(sys.argv[1]).resolve()
    assert os.environ.get("nnUNet_raw") == str(target / "raw"), "run through tests.nnunet_model (it sets nnU-Net's folders)"
    main(target)
