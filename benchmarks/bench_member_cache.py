"""Combiner training on cached member outputs (#25) against the members run at every step, in
one run: training slices per second of each learned method both ways, the one-time cost of
filling the cache, its size on disk, and an estimate of its size for the paper preset.

Members: the first-party plugin's best model per organ (six, 160 px at 2.2 mm); data: a phantom
cohort as the cpu preset draws it (sources A and B, scale 3); each ensemble trains 2 epochs
x 25 steps of 8 slices (no augmentation). Layer fusion keeps its members' trunks, the others
their logits.

    python benchmarks/bench_member_cache.py [--cases 12] [--epochs 2] [--steps 25]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from common import cpu_preset_phantoms, machine, save_figures

LEARNED = ("layer_fusion", "logits_conv", "meta_unet")  # layer fusion caches its members' trunks, the others their logits


def compose_once(method: str, data: list, out: Path, cache: bool, epochs: int, steps: int) -> dict:
    from zoo_ensemble.compose import ComposeRequest, compose
    from zoo_ensemble.ensembles import init_options
    from zoo_ensemble.training.trainer import TrainConfig

    config = TrainConfig(epochs=epochs, steps_per_epoch=steps, batch_size=8, seed=0, augment=False, device="cpu", small_boost=1.0)
    started = time.perf_counter()
    result = compose(ComposeRequest(
        method, "all", None, data, out=out, config=config, cache=cache, options=init_options(method, "paper"), run_dir=out.parent / f"run-{out.name}",
    ))
    wall = time.perf_counter() - started
    trained = result.train_result
    slices = epochs * steps * 8
    return {"wall_s": wall, "train_s": trained.seconds, "slices_per_s": slices / trained.seconds, "best_val_loss": trained.best_val_loss}


def paper_estimate(channels: int) -> dict:
    """The paper preset's cache: its phantom cohorts' training and validation slices at 320 x 320."""
    from zoo_ensemble.data.phantom.generator import generate_case
    from zoo_ensemble.experiments.settings import load_preset

    preset = load_preset("paper")
    slices = 0
    for source, cases in preset.phantom_cases.items():
        depth = generate_case(source, 0, 0, scale=preset.phantom_scale).image.shape[0]
        slices += depth * int(cases)
    share = 1 - preset.test_fraction  # training and validation patients
    per_channel = slices * share * 320 * 320 * 2
    return {"slices": slices, "train_val_share": share, "gib_per_member_channel": per_channel / 2**30, "gib_six_members": 6 * per_channel / 2**30,
            "gib_for_channels": channels * per_channel / 2**30}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=12, help="phantom CTs of each source")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        data = cpu_preset_phantoms(tmp, args.cases)
        from zoo_ensemble.paths import member_cache_dir

        rows = {}
        for method in LEARNED:
            shutil.rmtree(member_cache_dir(), ignore_errors=True)
            fly = compose_once(method, data, tmp / f"{method}-fly", False, args.epochs, args.steps)
            first = compose_once(method, data, tmp / f"{method}-first", True, args.epochs, args.steps)
            warm = compose_once(method, data, tmp / f"{method}-warm", True, args.epochs, args.steps)
            kept = sum(f.stat().st_size for f in member_cache_dir().rglob("*.npy"))
            rows[method] = {"on_the_fly": fly, "cache_filled": first, "cache_read": warm, "ratio": warm["slices_per_s"] / fly["slices_per_s"], "cache_mib": kept / 2**20}
        files = list(member_cache_dir().rglob("*.npy"))
        size = sum(f.stat().st_size for f in files)
        channels = sum(np.load(f, mmap_mode="r").shape[1] for f in files if f.parent == files[0].parent)
    print(f"{args.cases} + {args.cases} phantom CTs (scale 3), six members, {args.epochs} epochs x {args.steps} steps of 8 slices, CPU")
    print(f"{'method':12s} {'on the fly':>12s} {'cache read':>12s} {'ratio':>6s}   wall s: on the fly / filling the cache / reading it; cache MiB")
    for method, r in rows.items():
        print(f"{method:12s} {r['on_the_fly']['slices_per_s']:>8.1f} sl/s {r['cache_read']['slices_per_s']:>8.1f} sl/s {r['ratio']:>5.1f}x   "
              f"{r['on_the_fly']['wall_s']:.1f} / {r['cache_filled']['wall_s']:.1f} / {r['cache_read']['wall_s']:.1f}; {r['cache_mib']:.0f}")
    print(f"logits cache on disk: {size / 2**20:.1f} MiB in {len(files)} files (float16)")
    estimate = paper_estimate(channels)
    print(f"paper preset (phantoms at scale 1, 320 x 320): {estimate['gib_per_member_channel']:.2f} GiB per member channel, "
          f"{estimate['gib_six_members']:.1f} GiB for six binary members")
    save_figures(__file__, {"cases_per_source": args.cases, "rows": rows, "cache_mib": size / 2**20, "paper_estimate": estimate}, args.json)


if __name__ == "__main__":
    main()
