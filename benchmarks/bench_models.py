"""Organ-model figures (issue #3): training throughput, prediction time, overhead ratio, FLOPs.

For each architecture, tiny and paper size, on this machine:
- training throughput (slices/s) on 160 x 160 (tiny) or 320 x 320 (paper) slices, batch 8 / 2;
- prediction seconds for the real 512 x 512 x 133 CT (320 x 320 centre crops, as the paper);
  paper-size models run on --paper-slices slices and are scaled to 133 (said in the output);
- prediction time / time of the bare forward passes over the same crops, in the same run;
- GFLOPs per slice (torch.utils.flop_counter) and the GFLOP/s prediction achieves, next to the
  GFLOP/s of a plain fp32 matrix multiply measured in the same run;
- peak resident memory while predicting a 512 x 512 x 300 volume (the real CT tiled).

Run: python benchmarks/bench_models.py [--archs unet,se_resunet,deeplabv3] [--variants tiny,paper] [--data DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import SAMPLE, PeakRSS, first_slices, gflops_per_slice, machine, matmul_gflops, save_figures, tiled


def train_throughput(model: torch.nn.Module, size: int, batch: int, steps: int) -> float:
    from zoo_ensemble.training.losses import MaskedDiceBCELoss

    model.train()
    opt, loss_fn = torch.optim.Adam(model.parameters(), 1e-3), MaskedDiceBCELoss()
    x = torch.randn(batch, 1, size, size) * 300
    y = (torch.rand(batch, 1, size, size) > 0.8).float()
    opt.zero_grad()
    loss_fn(model(x), y).backward()  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="unet,se_resunet,deeplabv3")
    p.add_argument("--variants", default="tiny,paper")
    p.add_argument("--paper-slices", type=int, default=12)
    p.add_argument("--data", type=Path, default=SAMPLE, help="the sample CT's folder")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    from zoo_ensemble.architectures import build_model, make_config
    from zoo_ensemble.inference import InferenceConfig, Predictor
    from zoo_ensemble.volumes import read_ct
    from zoo_ensemble.preprocess import AIR_HU, centre_box, crop_or_pad

    torch.manual_seed(0)
    volume = read_ct(args.data / "ct.nii.gz")
    mm = matmul_gflops()
    print(f"{machine()}; fp32 matmul 2048^3: {mm:.1f} GFLOP/s")
    rows = []
    header = f"{'model':22s} {'params':>9s} {'train sl/s':>10s} {'predict s/vol':>13s} {'bare fwd s':>10s} {'ratio':>6s} {'GFLOP/sl':>9s} {'GFLOP/s':>8s} {'of matmul':>9s}"
    print(header)
    for arch in args.archs.split(","):
        for variant in args.variants.split(","):
            paper = variant == "paper"
            size = 320
            model = build_model(make_config(arch, ["heart"], variant, input_size=[size, size])).eval()
            params = sum(q.numel() for q in model.parameters())
            thr = train_throughput(model, 320 if paper else 160, 2 if paper else 8, 2 if paper else 5)
            model.eval()
            n = args.paper_slices if paper else volume.shape[0]
            sub = volume.with_array(volume.array) if not paper else first_slices(volume, n)
            pred = Predictor(model, InferenceConfig(("heart",), (size, size), "center"), batch_size=8)
            pred.predict(first_slices(volume, 2))  # warm-up
            t = time.perf_counter()
            pred.predict(sub)
            t_pred = time.perf_counter() - t
            box = centre_box(*sub.shape[1:], (size, size))
            t = time.perf_counter()
            with torch.no_grad():
                for z0 in range(0, n, 8):
                    x = crop_or_pad(torch.from_numpy(sub.array[z0 : z0 + 8].astype(np.float32))[:, None], box, AIR_HU)
                    model(x)
            t_bare = time.perf_counter() - t
            scale = volume.shape[0] / n
            gf = gflops_per_slice(model, size)
            achieved = gf * n / t_pred
            note = f"  (x{scale:.1f} from {n} slices)" if scale != 1 else ""
            print(
                f"{arch + '-' + variant:22s} {params:>9,d} {thr:>10.1f} {t_pred * scale:>13.1f} {t_bare * scale:>10.1f} "
                f"{t_pred / t_bare:>6.2f} {gf:>9.2f} {achieved:>8.1f} {achieved / mm:>9.2f}{note}",
                flush=True,
            )
            rows.append({
                "model": f"{arch}-{variant}", "params": params, "train_slices_per_s": thr, "predict_s_per_volume": t_pred * scale,
                "bare_forward_s": t_bare * scale, "ratio": t_pred / t_bare, "gflop_per_slice": gf, "gflop_per_s": achieved,
                "share_of_matmul": achieved / mm, "slices_timed": n,
            })
    tall = tiled(volume, 300)
    model = build_model(make_config("unet", ["heart", "trachea", "esophagus"], "tiny", input_size=[320, 320])).eval()
    with PeakRSS() as mem:
        pred = Predictor(model, InferenceConfig(tuple(model.organs), (320, 320), "center"), batch_size=8).predict(tall, probabilities=True)
    one = tall.array.size * 4 / 2**20
    print(f"peak memory predicting 512x512x300 with 3 channels and probabilities: +{mem.peak:.0f} MiB "
          f"(one float32 volume is {one:.0f} MiB; allowed: 3 of them = {3 * one:.0f} MiB plus the label map)")
    del pred
    save_figures(__file__, {"matmul_gflops": mm, "rows": rows, "peak_mib_512x512x300": mem.peak}, args.json)


if __name__ == "__main__":
    main()
