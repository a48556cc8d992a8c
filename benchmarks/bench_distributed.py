"""Data-parallel figures (issue #14), each against its one-process baseline in the same run:

1. Training slices per second: 2 gloo processes x 1 thread against 1 process x 2 threads, the
   same global batch (the ratio is what splitting costs on a CPU: communication per step and per
   BatchNorm layer, and smaller matrix products per process).
2. Cohort prediction of phantom CTs: 2 processes against 1, seconds per case, outputs compared.

Run: python benchmarks/bench_distributed.py [--cases 20] [--steps 6] [--arch unet]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine, save_figures

HERE = Path(__file__).resolve()


def train_worker(cohort: str, arch: str, steps: int) -> None:
    """One timed training run (started alone or under torchrun); rank 0 prints slices/s."""
    import torch

    from zoo_ensemble.architectures import build_model, make_config
    from zoo_ensemble.data.dataset import open_dataset
    from zoo_ensemble.data.slices import load_cases
    from zoo_ensemble.distributed import current
    from zoo_ensemble.training.trainer import TrainConfig, Trainer

    ds = open_dataset(cohort)
    cases = load_cases(ds, ds.cases[:3], ["heart"], (160, 160), (2.2, 2.2))
    torch.manual_seed(0)
    model = build_model(make_config(arch, ["heart"], "small", input_size=[160, 160], spacing=[2.2, 2.2]))
    config = TrainConfig(epochs=1, steps_per_epoch=steps, batch_size=8, device="cpu", augment=False)
    trainer = Trainer(model, cases[:2], cases[2:], ["heart"], config)
    trainer.train_epoch(0)  # warm-up: oneDNN kernels, allocator
    start = time.perf_counter()
    trainer.train_epoch(1)
    seconds = time.perf_counter() - start
    if current().is_main:
        print(json.dumps({"slices_per_s": steps * config.batch_size / seconds, "threads": torch.get_num_threads()}))


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return proc


def _torchrun(n: int) -> list[str]:
    return [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc-per-node", str(n)]


def _last_json(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def bench_training(work: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    cmd = [str(HERE), "train-worker", str(work / "cohort"), args.arch, str(args.steps)]
    one = _last_json(_run([sys.executable, *cmd], {**env, "OMP_NUM_THREADS": "2"}).stdout)
    two = _last_json(_run([*_torchrun(2), *cmd], {**env, "OMP_NUM_THREADS": "1"}).stdout)
    print(f"training {args.arch} (small, 160 x 160, global batch 8): 1 process x {one['threads']} threads {one['slices_per_s']:.2f} slices/s; "
          f"2 processes x {two['threads']} thread {two['slices_per_s']:.2f} slices/s; ratio {two['slices_per_s'] / one['slices_per_s']:.2f}")
    return {"one_process_slices_per_s": one["slices_per_s"], "two_processes_slices_per_s": two["slices_per_s"], "ratio": two["slices_per_s"] / one["slices_per_s"]}


def bench_cohort(work: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, object]:
    import SimpleITK as sitk

    from zoo_ensemble.data.phantom import write_cohort

    cts = work / "cts"
    cts.mkdir()
    many = write_cohort(work / "many", "B", cases=args.cases, seed=5, scale=4.0)
    for case in many.cases:
        (cts / Path(case.image).name).symlink_to(case.image)
    predict = ["-m", "zoo_ensemble", "predict", f"local-dir:{work / 'model'}", str(cts), "--device", "cpu"]
    times = {}
    for n, threads in ((1, "2"), (2, "1")):
        start = time.perf_counter()
        launcher = [sys.executable] if n == 1 else _torchrun(2)
        _run([*launcher, *predict, "-o", str(work / f"out{n}")], {**env, "OMP_NUM_THREADS": threads})
        times[n] = time.perf_counter() - start
    same = all(
        np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(work / "out1" / p.name))), sitk.GetArrayFromImage(sitk.ReadImage(str(p))))
        for p in sorted((work / "out2").glob("*.nii.gz"))
    )
    print(f"cohort of {args.cases} phantom CTs: 1 process x 2 threads {times[1] / args.cases:.2f} s/case, 2 processes x 1 thread "
          f"{times[2] / args.cases:.2f} s/case (whole command, model load included); ratio {times[1] / times[2]:.2f}; outputs identical: {same}")
    return {"one_process_s_per_case": times[1] / args.cases, "two_processes_s_per_case": times[2] / args.cases, "ratio": times[1] / times[2], "identical": same}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "train-worker":
        train_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=20)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--arch", default="unet")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    from zoo_ensemble.data.phantom import write_cohort
    from zoo_ensemble.devices import usable_cpus
    from zoo_ensemble.training.train import TrainRequest, train_model
    from zoo_ensemble.training.trainer import TrainConfig

    print(f"{machine()}; {usable_cpus()} usable CPUs")
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-dist-"))
    env = {**os.environ, "ZOO_HOME": str(work / "home"), "PYTHONPATH": str(HERE.parents[1])}
    try:
        cohort = write_cohort(work / "cohort", "A", cases=4, seed=3, scale=4.0)
        training = bench_training(work, args, env)
        os.environ["ZOO_HOME"] = env["ZOO_HOME"]
        train_model(TrainRequest(["heart"], "unet", [cohort], out=work / "model", config=TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4)))
        save_figures(__file__, {"arch": args.arch, "training": training, "cohort": bench_cohort(work, args, env)}, args.json)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
