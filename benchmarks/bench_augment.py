"""Augmentation cost (issue #13): the batched augmentation of ``zoo_ensemble.data.augment``
against the MONAI per-slice transforms it replaced (RandRotated, RandGridDistortiond,
Rand2DElasticd with the same strengths and probabilities), in one run, on the CPU: milliseconds
per slice at 16 x 16 (the fixed cost of a call, which a GPU cannot hide) and at 160 and
320 px, one thread (a data-loader worker's share), batches of 16.

Run: python benchmarks/bench_augment.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from common import best_of, machine, save_figures


def monai_per_slice(config):
    """The transforms as the trainer ran them before, one slice at a time."""
    from monai.data import set_track_meta
    from monai.transforms import Compose, Rand2DElasticd, RandGridDistortiond, RandRotated

    set_track_meta(False)  # as the old Augmenter did: metadata tracking halves MONAI's speed
    keys, modes = ("image", "mask"), ("bilinear", "nearest")
    transform = Compose([
        RandRotated(keys, range_x=math.radians(config.rotate_degrees), prob=config.rotate_p, mode=modes, padding_mode="zeros"),
        RandGridDistortiond(keys, num_cells=config.grid_cells, prob=config.grid_p, distort_limit=config.grid_limit, mode=modes, padding_mode="zeros"),
        Rand2DElasticd(keys, spacing=(config.elastic_spacing,) * 2, magnitude_range=config.elastic_magnitude, prob=config.elastic_p, mode=modes, padding_mode="zeros"),
    ])

    def run(images: torch.Tensor, masks: torch.Tensor, seeds: list[int]) -> None:
        for image, mask, seed in zip(images, masks, seeds):
            transform.set_random_state(seed=seed % 2**32)
            out = transform({"image": image, "mask": mask})
            torch.as_tensor(np.asarray(out["image"])), torch.as_tensor(np.asarray(out["mask"]))

    return run


def ms_per_slice(run, size: int, batch: int, repeat: int) -> float:
    images = torch.rand(batch, 1, size, size) * 1400 - 1000
    masks = (torch.rand(batch, 2, size, size) > 0.5).float()
    run(images, masks, list(range(batch)))  # warm-up
    rounds = iter(range(1, repeat + 1))  # other draws each time

    def one_round() -> None:
        r = next(rounds)
        run(images, masks, [1000 * r + i for i in range(batch)])

    return best_of(one_round, repeat) / batch * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--json", type=Path, default=None, help="where the figures go (default: bench_augment.json here)")
    args = p.parse_args()
    torch.set_num_threads(1)

    from zoo_ensemble.data.augment import AugmentConfig, Augmenter

    config = AugmentConfig()
    print(f"{machine()}; batches of {args.batch}, best of {args.repeat}")
    print(f"{'slice':>9s} {'MONAI per slice':>16s} {'batched':>9s} {'ratio':>7s}")
    baseline, ours = monai_per_slice(config), Augmenter(config)
    rows = []
    for size in (16, 160, 320):
        old = ms_per_slice(baseline, size, args.batch, args.repeat)
        new = ms_per_slice(ours, size, args.batch, args.repeat)
        print(f"{size:>4d} x {size:<3d} {old:>13.2f} ms {new:>6.2f} ms {old / new:>6.1f}x")
        rows.append({"size": size, "monai_ms_per_slice": old, "batched_ms_per_slice": new, "ratio": old / new})
    save_figures(__file__, {"batch": args.batch, "repeat": args.repeat, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
