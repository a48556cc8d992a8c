"""How long the paper's combiners (default initialisation) take to converge on the cpu preset's
kind of data, trained on cached member outputs with the cpu preset's ensemble schedule (Adam
1e-3, the paper's batch of 2, decay 0.97 per 250 steps, halving on plateaus, early stopping
once the smoothed validation loss gains less than 0.001 in 3 epochs of 100 steps): epochs run,
why they stopped, the best epoch, the validation loss per epoch, seconds, and test Dice beside
argmax of the same members, in one run. Unlike the preset, every method may run until early
stopping ends it (at most ``--epochs``).

Members: the first-party plugin's best model per organ; data: phantoms of sources A and B at
scale 3 (as the cpu preset draws them), no augmentation.

    python benchmarks/bench_convergence.py [--methods logits_conv meta_unet layer_fusion] [--epochs 60] [--cases 12]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from common import cpu_preset_phantoms, machine, save_figures


def compose_run(method: str, data: list, out: Path, epochs: int, gamma: float | None) -> tuple[dict, Any]:
    from dataclasses import replace

    from zoo_ensemble.compose import ComposeRequest, compose
    from zoo_ensemble.ensembles import init_options
    from zoo_ensemble.experiments.settings import load_preset

    config = replace(load_preset("cpu").ensemble_config(method), epochs=epochs)
    if gamma is not None:
        config = replace(config, schedule=replace(config.schedule, gamma=gamma))
    options = init_options(method, "paper") if method != "argmax" else {}
    result = compose(ComposeRequest(method, "all", None, data, out=out, config=config, options=options, run_dir=out.parent / f"run-{out.name}"))
    dice = result.report.mean_stats()["dice"]
    row = {"test_dice": dice.mean, "test_dice_std": dice.std, "test_patients": len(result.report.cases)}
    trained = result.train_result
    if trained is not None:
        row.update(epochs_run=trained.epochs_run, stopped=trained.stopped, best_epoch=trained.best_epoch, seconds=trained.seconds,
                   val_loss=[round(float(h["val_loss"]), 4) for h in trained.history if "val_loss" in h])
    return row, result.report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["logits_conv", "meta_unet", "layer_fusion"])
    p.add_argument("--epochs", type=int, default=60, help="at most, of 100 steps; early stopping usually ends a run first")
    p.add_argument("--cases", type=int, default=12, help="phantom CTs of each source")
    p.add_argument("--gamma", type=float, default=None, help="exponential decay per 250 steps (default: the preset's 0.97)")
    args = p.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        data = cpu_preset_phantoms(tmp, args.cases)
        runs = {m: compose_run(m, data, tmp / m, args.epochs, args.gamma) for m in ["argmax", *args.methods]}
    argmax = runs["argmax"][1]
    rows = {m: {**row, **({"dice_vs_argmax": report.paired_against(argmax).as_dict()} if m != "argmax" else {})} for m, (row, report) in runs.items()}
    print(f"{args.cases} + {args.cases} phantom CTs (scale 3), the best shipped member per organ, epochs of 100 x 2 slices (the cpu preset's)")
    for method, r in rows.items():
        line = f"{method:12s} test Dice {r['test_dice']:.3f} ± {r['test_dice_std']:.3f} ({r['test_patients']} patients)"
        if "dice_vs_argmax" in r:
            d = r["dice_vs_argmax"]
            line += f"; minus argmax {d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}], p {d['p']:.2g}, {d['n']} patients paired"
        if "epochs_run" in r:
            line += f"; {r['epochs_run']} epochs ({r['stopped']}), best {r['best_epoch']}, {r['seconds']:.0f} s; val loss {r['val_loss']}"
        print(line)
    save_figures(__file__, rows)


if __name__ == "__main__":
    main()
