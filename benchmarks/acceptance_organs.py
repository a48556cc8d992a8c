"""Acceptance for organ models (issue #3): tiny binary models trained on CPU within a time budget.

1. Synthetic cohort, source A: one tiny binary model per organ, at most --minutes of training
   each, evaluated on held-out phantom patients (the test split). Targets: Dice >= 0.85 for
   lungs and heart, >= 0.6 for trachea, esophagus and spinal cord.
2. The real CT (LIDC-IDRI-0001, 128 x 128 x 133 version): a tiny two-lung model trained on the
   lower half of the slices, validated on the next 15 %, tested on the top 35 % it never saw.
   Target: Dice >= 0.9 for both lungs.

Run: python benchmarks/acceptance_organs.py [--arch unet] [--minutes 3] [--cases 16]
Prints every figure, reached or not, and writes them to --out/acceptance.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import SimpleITK as sitk
import torch

TARGETS = {"lung_left": 0.85, "lung_right": 0.85, "heart": 0.85, "trachea": 0.6, "esophagus": 0.6, "spinal_cord": 0.6}

from common import SAMPLE, machine, save_figures


def epoch_minutes(minutes: float) -> float:
    # The budget is checked after each epoch; stop early enough that the epoch in flight ends in time.
    return max(minutes - 0.35, 0.2)


def phantom_part(args, work: Path) -> dict:
    from zoo_ensemble.data.phantom import write_cohort
    from zoo_ensemble.evaluation import evaluate_model
    from zoo_ensemble.zoo.model import ZooModel
    from zoo_ensemble.training.train import TrainRequest, train_model
    from zoo_ensemble.training.trainer import TrainConfig

    ds = write_cohort(work / "cohort-a", "A", args.cases, args.seed)
    results = {}
    for organ in TARGETS:
        t = time.time()
        folder, res = train_model(TrainRequest(
            [organ], args.arch, [ds], out=work / "models" / f"{organ}-{args.arch}", run_dir=work / "runs" / organ,
            config=TrainConfig(epochs=200, steps_per_epoch=args.steps, batch_size=8, max_minutes=epoch_minutes(args.minutes), seed=args.seed),
        ))
        train_s = time.time() - t
        report = evaluate_model(ZooModel.from_folder(folder).predictor("cpu", "fp32"), ds, "test", seed=0)
        st = report.organ_stats(organ)
        results[organ] = {
            "dice": st["dice"].mean, "dice_std": st["dice"].std, "hd95": st["hd95"].mean, "test_cases": st["dice"].n,
            "train_seconds": round(train_s, 1), "epochs": res.epochs_run, "target": TARGETS[organ], "reached": st["dice"].mean >= TARGETS[organ],
        }
        print(f"{organ:12s} test Dice {st['dice'].mean:.3f} ± {st['dice'].std:.3f} (target {TARGETS[organ]}) "
              f"HD95 {st['hd95'].mean:.1f} mm  trained {train_s:.0f} s, {res.epochs_run} epochs", flush=True)
    return results


def lidc_part(args, work: Path) -> dict:
    from zoo_ensemble.data.dataset import open_dataset, write_manifest
    from zoo_ensemble.labelmaps import get_label_map
    from zoo_ensemble.evaluation import evaluate_model
    from zoo_ensemble.zoo.model import ZooModel
    from zoo_ensemble.training.train import TrainRequest, train_model
    from zoo_ensemble.training.trainer import TrainConfig

    src = args.data
    img, lab = sitk.ReadImage(str(src / "ct_small.nii.gz")), sitk.ReadImage(str(src / "labels_small.nii.gz"))
    n = img.GetSize()[2]
    # z grows superior in this file (direction z = +1): the lower half trains, the top 35 % tests
    parts = {"train": (0, n // 2), "val": (n // 2, int(n * 0.65)), "test": (int(n * 0.65), n)}
    root = work / "lidc-parts"
    for name, (a, b) in parts.items():
        for kind, image in (("images", img), ("labels", lab)):
            (root / kind).mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(image[:, :, a:b], str(root / kind / f"{name}.nii.gz"))
    organs = ["lung_left", "lung_right"]
    write_manifest(root, "lidc-idri-0001-parts", get_label_map("zoo"), organs, splits={k: [k] for k in parts})
    ds = open_dataset(root)
    t = time.time()
    folder, res = train_model(TrainRequest(
        organs, args.arch, [ds], out=work / "models" / "lungs-lidc", run_dir=work / "runs" / "lidc", input_size=(128, 128),
        config=TrainConfig(epochs=200, steps_per_epoch=args.steps, batch_size=8, max_minutes=epoch_minutes(args.minutes), seed=args.seed),
    ))
    train_s = time.time() - t
    report = evaluate_model(ZooModel.from_folder(folder).predictor("cpu", "fp32"), ds, "test")
    out = {}
    for organ in organs:
        d = report.organ_stats(organ)["dice"].mean
        out[organ] = {"dice": d, "target": 0.9, "reached": d >= 0.9, "hd95": report.organ_stats(organ)["hd95"].mean}
        print(f"LIDC {organ:10s} Dice on unseen slices {d:.3f} (target 0.9)", flush=True)
    out["train_seconds"] = round(train_s, 1)
    out["slices"] = {k: b - a for k, (a, b) in parts.items()}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="unet")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--cases", type=int, default=16)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("acceptance-work"))
    p.add_argument("--data", type=Path, default=SAMPLE, help="the sample CT's folder")
    p.add_argument("--skip-phantom", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    args.out.mkdir(parents=True, exist_ok=True)
    print(machine())
    result = {"arch": args.arch, "minutes": args.minutes, "threads": torch.get_num_threads()}
    if not args.skip_phantom:
        result["phantom_a"] = phantom_part(args, args.out)
    result["lidc"] = lidc_part(args, args.out)
    print(json.dumps(result, indent=2))
    save_figures(__file__, result, args.out / "acceptance.json")


if __name__ == "__main__":
    main()
