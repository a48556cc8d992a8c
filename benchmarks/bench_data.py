"""Data-layer figures: reading and slicing the real CT, and HD95 + Dice on its full grid.

Run: python benchmarks/bench_data.py [--data ../shared/data/lidc-idri-0001]
Prints seconds and ratios against baselines measured in the same process:
- reading: SimpleITK's bare ReadImage + GetArrayFromImage of the same file;
- metrics: MONAI's compute_dice + compute_hausdorff_distance(percentile=95) on the same masks.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from common import SAMPLE, machine, save_figures, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE, help="the sample CT's folder")
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    ct, labels = args.data / "ct.nii.gz", args.data / "labels.nii.gz"
    print(machine())

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

    t_bare, _ = timed(bare)
    t_ours, slices = timed(ours)
    print(f"read 512x512x133 CT and make {tuple(slices.shape)} windowed crops: {t_ours:.3f} s")
    print(f"  baseline bare SimpleITK read: {t_bare:.3f} s   ratio {t_ours / t_bare:.2f}")

    lab = volumes.read_labels(labels)
    ref = lab.array == 2  # right lung
    pred = np.roll(np.roll(ref, 3, axis=2), 1, axis=0)
    sp = lab.spacing_zyx
    t_m, s = timed(lambda: metrics.score(pred, ref, sp))
    print(f"HD95 + Dice, right lung on 512x512x133: {t_m:.3f} s  (dice {s.dice:.4f}, hd95 {s.hd95:.3f} mm)")

    from monai.metrics import compute_dice, compute_hausdorff_distance

    p, r = torch.from_numpy(pred)[None, None], torch.from_numpy(ref)[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_monai, h = timed(lambda: (compute_dice(p.float(), r.float()), compute_hausdorff_distance(p, r, percentile=95, spacing=list(sp))))
    print(f"  baseline MONAI: {t_monai:.3f} s (hd95 {float(h[1]):.3f} mm)   ratio {t_m / t_monai:.2f}")
    save_figures(__file__, {
        "read_and_crop_s": t_ours, "bare_read_s": t_bare, "read_ratio": t_ours / t_bare,
        "metrics_s": t_m, "monai_metrics_s": t_monai, "metrics_ratio": t_m / t_monai, "dice": s.dice, "hd95_mm": s.hd95,
    }, args.json)


if __name__ == "__main__":
    main()
