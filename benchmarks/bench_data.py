"""Data-layer figures: reading and slicing the real CT, and HD95 + Dice on its full grid.

Run: python benchmarks/bench_data.py [--shared ../shared]
Prints seconds and ratios against baselines measured in the same process:
- reading: SimpleITK's bare ReadImage + GetArrayFromImage of the same file;
- metrics: MONAI's compute_dice + compute_hausdorff_distance(percentile=95) on the same masks.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--crop", type=int, default=320)
    args = parser.parse_args()
    ct = args.shared / "data" / "lidc-idri-0001" / "ct.nii.gz"
    labels = args.shared / "data" / "lidc-idri-0001" / "labels.nii.gz"

    from zoo_ensemble import metrics, volumes
    from zoo_ensemble.organs import default_window
    from zoo_ensemble.preprocess import CenterCropPad, WindowLayer

    torch.set_num_threads(max(1, torch.get_num_threads()))
    window, crop = WindowLayer.of(default_window("lung_left")), CenterCropPad(args.crop)

    def ours():
        vol = volumes.read_ct(ct)
        with torch.no_grad():
            return window(crop(torch.from_numpy(vol.array).float()[:, None]))

    def bare():
        return sitk.GetArrayFromImage(sitk.ReadImage(str(ct)))

    t_bare, _ = best_of(bare)
    t_ours, slices = best_of(ours)
    print(f"read 512x512x133 CT and make {tuple(slices.shape)} windowed crops: {t_ours:.3f} s")
    print(f"  baseline bare SimpleITK read: {t_bare:.3f} s   ratio {t_ours / t_bare:.2f}")

    lab = volumes.read_labels(labels)
    ref = lab.array == 2  # right lung
    pred = np.roll(np.roll(ref, 3, axis=2), 1, axis=0)
    sp = lab.spacing_zyx
    t_m, s = best_of(lambda: metrics.score(pred, ref, sp))
    print(f"HD95 + Dice, right lung on 512x512x133: {t_m:.3f} s  (dice {s.dice:.4f}, hd95 {s.hd95:.3f} mm)")

    from monai.metrics import compute_dice, compute_hausdorff_distance

    p, r = torch.from_numpy(pred)[None, None], torch.from_numpy(ref)[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_monai, h = best_of(lambda: (compute_dice(p.float(), r.float()), compute_hausdorff_distance(p, r, percentile=95, spacing=list(sp))))
    print(f"  baseline MONAI: {t_monai:.3f} s (hd95 {float(h[1]):.3f} mm)   ratio {t_m / t_monai:.2f}")


if __name__ == "__main__":
    main()
