"""Train the 18 demonstration models this plugin ships, with zoo-ensemble's own training code.

Data: a synthetic StructSeg-like phantom cohort (zoo-ensemble's source A), generated here.
Run from the repository root:  python plugins/zoo-thorax/scripts/build_weights.py
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
NOTE = (
    "Trained on synthetic thoracic CT phantoms (zoo-ensemble `zoo data phantom --source A`); "
    "a demonstration model, not a clinical one."
)


def main() -> None:
    from zoo_ensemble.data.cohort import write_cohort
    from zoo_ensemble.training.fit import train_model
    from zoo_ensemble.training.trainer import TrainConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=1.0, help="training budget per model")
    p.add_argument("--only", nargs="*", help="model ids to (re)build")
    args = p.parse_args()

    import sys

    sys.path.insert(0, str(HERE))
    from zoo_thorax.plugin import ARCHITECTURES, ORGANS

    work = Path(tempfile.mkdtemp(prefix="zoo-thorax-"))
    try:
        ds = write_cohort(work / "cohort", "A", args.cases, args.seed)
        for organ in ORGANS:
            for arch in ARCHITECTURES:
                model_id = f"{organ}-{arch}"
                if args.only and model_id not in args.only:
                    continue
                folder, res = train_model(
                    [organ], arch, [ds], out=HERE / "zoo_thorax" / "models" / model_id, model_id=model_id,
                    run_dir=work / "runs" / model_id, note=NOTE,
                    config=TrainConfig(epochs=100, steps_per_epoch=20, batch_size=8, max_minutes=args.minutes, seed=args.seed),
                )
                print(f"{model_id}: val loss {res.best_val_loss:.4f}, epoch {res.best_epoch}/{res.epochs_run}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
