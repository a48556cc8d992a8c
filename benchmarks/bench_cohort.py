"""Cohort prediction figures (issue #12): seconds per case in batch mode (`zoo predict ENS FOLDER
-o OUT`, the model loaded once, reading and writing overlapped) against one `zoo predict` process
per case, in one run; and the peak resident memory of the first and the last case of an
in-process cohort of 20 copies of one CT (it must not grow with the number of cases).

The ensemble is the argmax of the shipped zoo-thorax heart-unet and trachea-unet (pip install
./plugins/zoo-thorax); the cohort is 20 phantom CTs of source A at scale 2.

Run: python benchmarks/bench_cohort.py [--cases 20] [--single 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, peak_since_reset_mib, save_figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=20)
    p.add_argument("--single", type=int, default=5, help="cases timed with one process each")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    from zoo_ensemble.api import compose_ensemble
    from zoo_ensemble.data.phantom import write_cohort

    print(machine())
    work = Path(tempfile.mkdtemp(prefix="bench-cohort-"))
    env = {**os.environ, "ZOO_HOME": str(work / "home")}
    os.environ["ZOO_HOME"] = env["ZOO_HOME"]
    cohort = write_cohort(work / "cohort", "A", args.cases, seed=7, scale=2.0)
    images = work / "cohort" / "images"
    ens = compose_ensemble("argmax", models=["heart-unet", "trachea-unet"], out=work / "home" / "models" / "bench-argmax")
    cts = sorted(images.glob("*.nii.gz"))
    zoo = [sys.executable, "-m", "zoo_ensemble", "predict", "bench-argmax"]

    started = time.perf_counter()
    for i, ct in enumerate(cts[: args.single]):
        subprocess.run([*zoo, str(ct), "-o", str(work / "single" / ct.name)], env=env, check=True, capture_output=True)
    per_process = (time.perf_counter() - started) / args.single

    started = time.perf_counter()
    subprocess.run([*zoo, str(images), "-o", str(work / "batch")], env=env, check=True, capture_output=True)
    batch = (time.perf_counter() - started) / len(cts)

    from zoo_ensemble.cohort_predict import CohortRun, gather_cases
    from zoo_ensemble.labelmaps import get_label_map

    # memory: the same case 20 times, so that a growth can only come from the number of cases
    same = work / "same"
    same.mkdir()
    for i in range(len(cts)):
        shutil.copy(cts[0], same / f"copy{i:03d}.nii.gz")
    rss: list[float] = []
    run = CohortRun(
        ens, dict(label_map=get_label_map("zoo"), device="cpu"), work / "inproc",
        progress=lambda i, n: rss.append(peak_since_reset_mib()),
    )
    (work / "inproc").mkdir()
    peak_since_reset_mib()
    run.run(gather_cases([same]))

    print(f"cohort: {len(cts)} phantom CTs {cohort.cases[0].case_id}..., ensemble {ens.model_id} ({', '.join(ens.organs)})")
    print(f"one zoo predict process per case: {per_process:.2f} s/case (mean of {args.single})")
    print(f"batch zoo predict over the folder: {batch:.2f} s/case (all {len(cts)}, process start included)")
    print(f"ratio batch / per-process: {batch / per_process:.2f} (target <= 0.5)")
    print(f"peak resident memory, {len(rss)} copies of one case in one process: case 1 {rss[0]:.0f} MiB, case {len(rss)} {rss[-1]:.0f} MiB")
    print("peak of each case (MiB): " + " ".join(f"{r:.0f}" for r in rss))
    save_figures(__file__, {
        "cases": len(cts), "per_process_s_per_case": per_process, "batch_s_per_case": batch, "ratio": batch / per_process,
        "peak_mib_per_case": rss,
    }, args.json)


if __name__ == "__main__":
    main()
