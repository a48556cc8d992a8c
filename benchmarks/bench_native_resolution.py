"""Native-resolution figures (issue #10): the shipped models on the real chest CT at two resolutions,
and what resampling costs.

For each model (default: the 18 models of the zoo-thorax plugin), on LIDC-IDRI-0001:
- Dice of its organ on ``ct.nii.gz`` (512 x 512 at 0.70 mm) against ``labels.nii.gz`` and on
  ``ct_small.nii.gz`` (128 x 128 at 2.81 mm) against ``labels_small.nii.gz`` (label map ``zoo``),
  and their difference (target: within 0.03);
- on the full-resolution CT, prediction time (slices to float, resample to the model's spacing,
  crop, forward, paste back, resample the probabilities back, decide labels; the card's
  largest-component post-processing left out) divided by the bare forward passes over the same
  resampled crops, timed in the same run (target: <= 1.15).

Data: ``--data DIR`` (what ``zoo data sample --out DIR`` writes), else ``../shared/data/lidc-idri-0001``.
Run: python benchmarks/bench_native_resolution.py [--models heart-unet,...] [--data DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import SAMPLE, dice, machine, save_figures

#: The sample's label values (its README): zoo-ensemble's own label map.
ORGAN_VALUES = {"lung_left": 1, "lung_right": 2, "heart": 3, "trachea": 4, "esophagus": 5, "spinal_cord": 6, "aorta": 7}


def bare_forward_seconds(predictor, volume) -> float:
    """The model's forward passes alone over the crops prediction feeds it (prepared beforehand)."""
    from zoo_ensemble.preprocess import AIR_HU, ResampleInPlane, centre_box, crop_or_pad

    batches = []
    for z0 in range(0, volume.shape[0], predictor.batch_size):
        x = torch.from_numpy(volume.array[z0 : z0 + predictor.batch_size].astype(np.float32))[:, None]
        if predictor.spacing is not None:
            x = ResampleInPlane((predictor.spacing[1], predictor.spacing[0]))(x, (volume.spacing[1], volume.spacing[0]))
        batches.append(crop_or_pad(x, centre_box(*x.shape[-2:], predictor.input_size), AIR_HU))
    with torch.inference_mode():
        t = time.perf_counter()
        for x in batches:
            predictor.model(x)
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--models", help="comma-separated model ids (default: the zoo-thorax plugin's 18)")
    parser.add_argument("--no-timing", action="store_true", help="skip the resampling-cost timing")
    parser.add_argument("--repeat", type=int, default=3, help="timings per model; the best is kept")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from zoo_ensemble.volumes import read_ct, read_labels
    from zoo_ensemble.zoo.model import ZooModel

    if args.models:
        ids = args.models.split(",")
    else:
        from zoo_thorax.plugin import ARCHITECTURES, ORGANS

        ids = [f"{o}-{a}" for o in ORGANS for a in ARCHITECTURES]
    full, small = read_ct(args.data / "ct.nii.gz"), read_ct(args.data / "ct_small.nii.gz")
    full_ref, small_ref = read_labels(args.data / "labels.nii.gz", like=full).array, read_labels(args.data / "labels_small.nii.gz", like=small).array
    print(machine())
    print(f"real CT {args.data}: full {full.shape} at {full.spacing[0]:.3f} mm, small {small.shape} at {small.spacing[0]:.3f} mm\n")
    print("| model | organ | Dice 0.70 mm | Dice 2.81 mm | difference | predict s | bare forward s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for model_id in ids:
        loaded = ZooModel.from_pretrained(model_id)
        organs = loaded.organs
        predictor = loaded.predictor("cpu", "fp32")
        pf, ps = predictor.predict(full), predictor.predict(small)  # as `zoo predict` runs (post-processing included)
        predictor = loaded.predictor("cpu", "fp32", largest_component=[])  # timed without the post-processing: resampling against the bare forward
        seconds, bare = float("nan"), float("nan")
        for _ in range(0 if args.no_timing else args.repeat):  # best of --repeat, each in the same run
            t = time.perf_counter()
            with torch.inference_mode():
                predictor.predict(full)
            seconds = min(seconds, time.perf_counter() - t) if seconds == seconds else time.perf_counter() - t
            b = bare_forward_seconds(predictor, full)
            bare = min(bare, b) if bare == bare else b
        for i, organ in enumerate(organs):
            value = ORGAN_VALUES[organ]
            df = dice(pf.labels == i + 1, full_ref == value)
            ds = dice(ps.labels == i + 1, small_ref == value)
            timing = f"{seconds:.1f} | {bare:.1f} | {seconds / bare:.2f}" if i == 0 else " | | "
            print(f"| {model_id} | {organ} | {df:.3f} | {ds:.3f} | {df - ds:+.3f} | {timing} |", flush=True)
            rows.append({"model": model_id, "organ": organ, "dice_full": df, "dice_small": ds, "predict_s": seconds, "bare_forward_s": bare})
    save_figures(__file__, {"data": str(args.data), "rows": rows}, args.json)


if __name__ == "__main__":
    main()
