"""Transparent huge pages for torch's large CPU tensors (issue #13): prediction time, page faults
and peak memory of paper-size models with ``THP_MEM_ALLOC_ENABLE`` off and on.

A paper-size network's activations at 320 x 320 and batch 16 are hundreds of MB each; glibc
serves such blocks straight from mmap and returns them on free, so every forward pass
page-faults them in again, 4 KiB at a time. PyTorch's CPU allocator backs blocks of 2 MiB and
more with transparent huge pages when ``THP_MEM_ALLOC_ENABLE=1`` (read once per process, before
the first allocation), which ``import zoo_ensemble`` now sets unless the environment says
otherwise. Each setting runs in its own process (that is the only way to switch it), the two
alternating, ``--repeat`` times each; the best time of each is compared.

Data: the first ``--slices`` slices of ``--data``/ct.nii.gz, else a synthetic CT of that size.
Run: python benchmarks/bench_huge_pages.py [--archs deeplabv3,se_resunet,unet] [--slices 48] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import SAMPLE, machine, save_figures

CHILD = r"""
import json, resource, sys, time
import numpy as np, SimpleITK as sitk, torch
from zoo_ensemble.architectures import build_model, make_config
from zoo_ensemble.inference import InferenceConfig, Predictor
from zoo_ensemble.volumes import ct_from_image, read_ct
arch, slices, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if data:
    volume = read_ct(data)
    volume.array = volume.array[:slices]
else:
    array = np.full((slices, 512, 512), -1000, np.int16)
    array[:, 100:400, 80:430] = 40
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.7, 2.5))
    volume = ct_from_image(image)
torch.manual_seed(0)
model = build_model(make_config(arch, ["heart"], "paper", input_size=[320, 320]))
predictor = Predictor(model, InferenceConfig(("heart",), (320, 320), "center", spacing=None), batch_size=16)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
start = time.perf_counter()
predictor.predict(volume)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "faults": usage.ru_minflt - faults, "peak_mib": usage.ru_maxrss / 1024}))
"""


def run(arch: str, slices: int, data: str, thp: str) -> dict:
    env = dict(os.environ, THP_MEM_ALLOC_ENABLE=thp)
    out = subprocess.run([sys.executable, "-c", CHILD, arch, str(slices), data], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--archs", default="deeplabv3,se_resunet,unet")
    parser.add_argument("--slices", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    ct = args.data / "ct.nii.gz"
    data = str(ct) if ct.exists() else ""
    thp_mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    mode = thp_mode.read_text().strip() if thp_mode.exists() else "unknown"
    print(f"{machine()}; kernel THP: {mode}")
    print(f"{args.slices} slices of {'the real CT' if data else 'a synthetic CT'}, paper size, 320 x 320 crops, batch 16:\n")
    print("| model | THP off s | THP on s | speed-up | page faults off | on | peak MiB off | on |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for arch in args.archs.split(","):
        results: dict[str, list[dict]] = {"0": [], "1": []}
        for _ in range(args.repeat):
            for thp in ("0", "1"):
                results[thp].append(run(arch, args.slices, data, thp))
        off = min(results["0"], key=lambda r: r["seconds"])
        on = min(results["1"], key=lambda r: r["seconds"])
        print(f"| {arch} | {off['seconds']:.1f} | {on['seconds']:.1f} | {off['seconds'] / on['seconds']:.2f}x | {off['faults']:,} | {on['faults']:,} "
              f"| {off['peak_mib']:.0f} | {on['peak_mib']:.0f} |", flush=True)
        rows.append({"arch": arch, "off": off, "on": on, "speed_up": off["seconds"] / on["seconds"]})
    save_figures(__file__, {"slices": args.slices, "data": "real CT" if data else "synthetic", "kernel_thp": mode, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
