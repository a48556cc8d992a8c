"""GPU figures (issue #13), printed with the GPU's name: training throughput (slices/s) with
mixed precision of a paper-size member and of each learned ensemble over six paper-size members,
the GPU's utilisation while training (sampled), prediction seconds for a 512 x 512 x 133 CT with
the six members (argmax) and with each ensemble, and the peak GPU memory of each.

Weights are random (throughput does not depend on them) and the CT is a synthetic body of the
real CT's size, so the script needs nothing but the package. ``--dry-run`` runs every step on the
CPU at toy sizes, to show the script works before a GPU is lent.

Run: python benchmarks/gpu_bench.py [--dry-run] [--steps 30] [--slices 133]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from common import save_figures

ORGANS = ("lung_left", "lung_right", "heart", "esophagus", "trachea", "spinal_cord")
ARCHS = ("se_resunet", "se_resunet", "deeplabv3", "se_resunet", "deeplabv3", "se_resunet")  # the paper's picks
LEARNED = ("logits_conv", "meta_unet", "layer_fusion")
FOV_MM = 320.0  # the paper preset's field of view (320 px at 1.0 mm); toy sizes keep it


class Utilisation:
    """The GPU's busy share, sampled every 0.1 s while the block runs (nvidia-smi; NVML via torch where present)."""

    def __init__(self, device: torch.device):
        self.device, self.samples, self._stop = device, [], threading.Event()

    def _sample(self) -> float | None:
        try:
            return float(torch.cuda.utilization(self.device))
        except Exception:  # no pynvml: ask nvidia-smi
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", str(self.device.index or 0)],
                                     capture_output=True, text=True, timeout=5)
                return float(out.stdout.strip().splitlines()[0])
            except Exception:
                return None

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            value = self._sample()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> Utilisation:
        if self.device.type == "cuda":
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.device.type == "cuda":
            self._thread.join()

    @property
    def mean(self) -> str:
        return f"{np.mean(self.samples):.0f} %" if self.samples else "n/a"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device):
    dtype = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda")


def train_throughput(model: torch.nn.Module, device: torch.device, size: int, batch: int, steps: int) -> tuple[float, str]:
    """Slices per second of forward, backward and Adam step with mixed precision (after 3 warm-up steps)."""
    model.to(device, memory_format=torch.channels_last).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    x = (torch.rand(batch, 1, size, size, device=device) * 1400 - 1000).contiguous(memory_format=torch.channels_last)
    n_out = len(getattr(model, "organs", ["x"]))
    y = (torch.rand(batch, n_out, size, size, device=device) > 0.9).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with _autocast(device):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    _sync(device)
    with Utilisation(device) as busy:  # at least 5 s, so that the sampled busy share means something
        started, done = time.perf_counter(), 0
        while done < steps or time.perf_counter() - started < (5.0 if device.type == "cuda" else 0.0):
            step()
            done += 1
        _sync(device)
        seconds = time.perf_counter() - started
    return done * batch / seconds, busy.mean


def trainer_throughput(arch: str, variant: str, size: int, batch: int, steps: int, device: torch.device, workers: int, work: str, profile: bool = False) -> tuple[float, str, int]:
    """Slices per second of `zoo train`'s own loop (zoo_ensemble.training.Trainer: phantom slices
    gathered by the data loader, augmented on the device, mixed precision), one epoch of ``steps`` steps
    after a warm-up epoch; the GPU's busy share while it runs; the loader's worker count."""
    from zoo_ensemble.architectures import build_model, make_config
    from zoo_ensemble.data.phantom import write_cohort
    from zoo_ensemble.data.slices import load_cases
    from zoo_ensemble.training.trainer import Trainer, TrainConfig

    cohort = write_cohort(f"{work}/cohort", "A", cases=3, seed=3, scale=2.0)
    cases = load_cases(cohort, cohort.cases, ["heart"], size, (FOV_MM / size, FOV_MM / size), cache_dir=f"{work}/cache")
    model = build_model(make_config(arch, ["heart"], variant, input_size=[size, size], spacing=[FOV_MM / size] * 2))
    config = TrainConfig(epochs=1, steps_per_epoch=steps, batch_size=batch, device=str(device), num_workers=workers)
    trainer = Trainer(model, cases[:2], cases[2:], ["heart"], config)
    trainer.train_epoch(0)
    _sync(device)
    with Utilisation(device) as busy:
        started = time.perf_counter()
        trainer.train_epoch(1)
        _sync(device)
        seconds = time.perf_counter() - started
    if profile:
        profile_epoch(trainer, device)
    return steps * batch / seconds, busy.mean, config.num_workers


def profile_epoch(trainer, device: torch.device, rows: int = 14) -> None:
    """torch.profiler over one more epoch of the loop, operators by their own host time: a
    host that waits for the GPU shows as cudaStreamSynchronize / cudaMemcpyAsync / item."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        trainer.train_epoch(2)
        _sync(device)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40)
    print("  one epoch of that loop, operators by own host time (torch.profiler):")
    for line in table.splitlines():
        if line.strip():
            print("   ", line[:170])


@torch.inference_mode()
def forward_seconds(model: torch.nn.Module, device: torch.device, size: int, slices: int, batch: int, precision) -> float:
    """Seconds of the model's forward passes alone over ``slices`` slices in batches, as the
    predictor runs them (channels-last, its autocast), after one warm-up batch."""
    model = model.to(device, memory_format=torch.channels_last).eval()
    x = (torch.rand(batch, 1, size, size, device=device) * 1400 - 1000).contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=precision or torch.float32, enabled=precision is not None):
        model(x)
        _sync(device)
        started = time.perf_counter()
        for first in range(0, slices, batch):
            model(x[: min(batch, slices - first)])
        _sync(device)
    return time.perf_counter() - started


def where_the_time_goes(predictor, volume, device: torch.device, rows: int = 12) -> None:
    """The functions one prediction spends its time in (cProfile, own time): what is left to
    speed up beside the networks (a wait on the GPU shows as the copy that waits)."""
    import cProfile
    import io
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    predictor.predict(volume)
    _sync(device)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(rows)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "tottime" in line)
    print("where one prediction's time goes (cProfile, own time, the last ensemble):")
    for line in lines[start : start + rows + 1]:
        print("   ", line[:150])


def synthetic_ct(shape: tuple[int, int, int]):
    """A body-sized ellipse of soft tissue with lungs, in air, on the real CT's grid (0.7 x 0.7 x 2.5 mm)."""
    import SimpleITK as sitk

    from zoo_ensemble.volumes import ct_from_image

    z, h, w = shape
    yy, xx = np.mgrid[:h, :w]
    body = ((yy - h / 2) / (0.38 * h)) ** 2 + ((xx - w / 2) / (0.45 * w)) ** 2 < 1
    lungs = (((yy - h / 2) / (0.25 * h)) ** 2 + ((np.abs(xx - w / 2) - 0.2 * w) / (0.15 * w)) ** 2) < 1
    slice_ = np.where(body, 40, -1000) + np.where(lungs, -800, 0)
    image = sitk.GetImageFromArray(np.repeat(slice_[None].astype(np.int16), z, axis=0))
    image.SetSpacing((0.7, 0.7, 2.5))
    return ct_from_image(image, "synthetic CT")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="on the CPU at toy sizes: check the script, measure nothing")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--slices", type=int, default=133)
    p.add_argument("--json", type=Path, default=None, help="where the figures go (default: gpu_bench.json here)")
    args = p.parse_args()

    from zoo_ensemble.architectures import build_model, make_config
    from zoo_ensemble.ensembles.base import MemberRecord
    from zoo_ensemble.inference import InferenceConfig, Predictor
    from zoo_ensemble.zoo.ensemble_folder import build_ensemble
    from zoo_ensemble.devices import resolve_precision

    if args.dry_run:
        device, variant, size, batch, steps, shape = torch.device("cpu"), "tiny", 96, 2, 2, (4, 96, 96)
        print(f"DRY RUN on the CPU ({platform.processor() or platform.machine()}): toy sizes, the figures mean nothing")
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --dry-run to check the script on a CPU")
        device, variant, size, batch, steps, shape = torch.device("cuda"), "paper", 320, 16, args.steps, (args.slices, 512, 512)
        props = torch.cuda.get_device_properties(device)
        print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)

    def members() -> tuple[list, list]:
        built, infos = [], []
        for organ, arch in zip(ORGANS, ARCHS):
            cfg = make_config(arch, [organ], variant, input_size=[size, size], spacing=[FOV_MM / size] * 2)
            built.append(build_model(cfg).eval())
            infos.append(MemberRecord(f"{organ}-{arch}", [organ], cfg.to_dict()))
        return built, infos

    figures: dict = {"device": str(device), "dry_run": args.dry_run, "training": {}, "trainer_loop": [], "prediction": {}}
    print(f"training ({variant} size, {size} x {size}, batch {batch}, {steps} steps, mixed precision):")
    for arch in ("deeplabv3", "se_resunet", "unet"):
        rate, busy = train_throughput(build_model(make_config(arch, ["heart"], variant, input_size=[size, size], spacing=[FOV_MM / size] * 2)), device, size, batch, steps)
        print(f"  member {arch:12s} {rate:8.1f} slices/s  GPU busy {busy}")
        figures["training"][f"member {arch}"] = {"slices_per_s": rate, "busy": busy}
    for method in LEARNED:
        built, infos = members()
        rate, busy = train_throughput(build_ensemble(method, built, infos, list(ORGANS)), device, size, batch, steps)
        print(f"  ensemble {method:12s} {rate:6.1f} slices/s  GPU busy {busy}")
        figures["training"][f"ensemble {method}"] = {"slices_per_s": rate, "busy": busy}
    print(f"zoo train's loop (phantom slices, augmented on the device, {steps} steps of {batch}):")
    with tempfile.TemporaryDirectory() as work:
        pool = 4 if device.type == "cuda" else 1
        for arch, workers in (("deeplabv3", 0), ("deeplabv3", pool), ("se_resunet", 0), ("unet", 0)):
            try:
                rate, busy, used = trainer_throughput(arch, variant, size, batch, steps, device, workers, work, profile=(arch, workers) == ("unet", 0))
            except Exception as exc:  # a machine's small /dev/shm can fail the loader's workers: report, go on
                print(f"  member {arch:12s} workers {workers}: FAILED {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                continue
            print(f"  member {arch:12s} {used} loader workers {rate:8.1f} slices/s  GPU busy {busy}")
            figures["trainer_loop"].append({"arch": arch, "workers": used, "slices_per_s": rate, "busy": busy})

    volume = synthetic_ct(shape)
    print(f"prediction of a {shape[2]} x {shape[1]} x {shape[0]} CT ({size} x {size} crops, autocast as `zoo predict` runs: {resolve_precision('auto', device) or 'fp32'}):")
    for method in ("argmax", *LEARNED):
        built, infos = members()
        ens = build_ensemble(method, built, infos, list(ORGANS)).eval()
        precision = resolve_precision("auto", device)  # what `zoo predict` uses: fp16 on a GPU
        predictor = Predictor(
            ens, InferenceConfig(tuple(ORGANS), (size, size), "center", spacing=(FOV_MM / size, FOV_MM / size)), device, precision,
            batch_size=32 if device.type == "cuda" else 2,
        )
        predictor.predict(volume)  # warm-up: cuDNN picks its kernels for every batch shape of the timed run
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        predictor.predict(volume)
        _sync(device)
        seconds = time.perf_counter() - started
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else "n/a"
        alone = forward_seconds(ens, device, size, shape[0], predictor.batch_size, precision)
        print(f"  {method:12s} ({len(built)} members) {seconds:7.2f} s per CT  (the networks alone {alone:.2f} s)  peak GPU memory {peak}")
        figures["prediction"][method] = {"seconds_per_ct": seconds, "networks_alone_s": alone, "peak_gpu_memory": peak}
    where_the_time_goes(predictor, volume, device)
    save_figures(__file__, figures, args.json)
    print("done")


if __name__ == "__main__":
    main()
