"""Train the 18 demonstration models this plugin ships, with zoo-ensemble's own training code.

Data: two synthetic phantom cohorts generated here at the sources' own resolutions and full
fields of view: source A (StructSeg-like: 1.15 to 1.25 mm in-plane, 5 mm slices, no contrast;
all six organs annotated) and source B (SegTHOR-like: 0.9 to 1.37 mm, 2 to 3.7 mm slices,
contrast-enhanced blood; heart, trachea and esophagus annotated). Each model learns from every
cohort that annotates its organ, so the heart, trachea and esophagus models see both contrast
phases and the whole range of grids. Every model is the ``tiny`` variant: slices resampled to
2.2 mm and centre-cropped to 160 x 160 (352 mm). Fixed epoch and step counts and seeds, no
wall-clock budget, so the same command gives the same models on the same software.

Run from the repository root:  python plugins/zoo-thorax/scripts/build_weights.py
(about an hour on 2 CPU cores; ``--work DIR`` keeps the cohort and checkpoints, so an
interrupted build resumes where it stopped).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
NOTE = (
    "Trained on synthetic thoracic CT phantoms (zoo-ensemble `zoo data phantom --source A|B --scale 1`); "
    "a demonstration model, not a clinical one."
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=16, help="phantom patients per source (the split keeps 15 %% for validation and 15 %% for test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="phantom in-plane spacing multiplier (1 = the source's own 1.15-1.25 mm)")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--steps", type=int, default=20, help="batches per epoch")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--work", type=Path, help="working folder kept between runs (default: a temporary one)")
    p.add_argument("--only", nargs="*", help="model ids to (re)build")
    return p.parse_args()


def main() -> None:
    from zoo_ensemble.data.phantom import write_cohort
    from zoo_ensemble.training.train import TrainRequest, train_model
    from zoo_ensemble.training.trainer import TrainConfig

    args = parse_args()
    sys.path.insert(0, str(HERE))
    from zoo_thorax.plugin import ARCHITECTURES, ORGANS

    work = args.work or Path(tempfile.mkdtemp(prefix="zoo-thorax-"))
    try:
        cohorts = [write_cohort(work / f"cohort-{src}", src, args.cases, args.seed, scale=args.scale) for src in ("A", "B")]
        config = TrainConfig(epochs=args.epochs, steps_per_epoch=args.steps, batch_size=args.batch_size, seed=args.seed, device="cpu")
        for organ in ORGANS:
            for arch in ARCHITECTURES:
                model_id = f"{organ}-{arch}"
                if args.only and model_id not in args.only:
                    continue
                run_dir = work / "runs" / model_id
                started = time.monotonic()
                datasets = [ds for ds in cohorts if ds.annotates(organ)]
                folder, res = train_model(TrainRequest(
                    [organ], arch, datasets, out=HERE / "zoo_thorax" / "models" / model_id, model_id=model_id,
                    run_dir=run_dir, note=NOTE, config=config, resume=(run_dir / "checkpoint.safetensors").exists(),
                ))
                print(
                    f"{model_id}: val loss {res.best_val_loss:.4f}, val Dice {res.history[res.best_epoch - 1]['val_dice_mean']:.3f}, "
                    f"best epoch {res.best_epoch}/{res.epochs_run} ({res.stopped}), {time.monotonic() - started:.0f} s",
                    flush=True,
                )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
