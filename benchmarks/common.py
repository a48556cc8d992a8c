"""What the benchmarks share: the machine they ran on, best-of timing, peak memory, the fp32
matmul rate and FLOPs, the real sample CT, Dice, volumes cut or tiled from a CT, and writing the
figures as JSON beside the printed table. A benchmark imports this module, never another
benchmark script."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from zoo_ensemble.devices import cpu_model  # the CPU kind changes between machines: every figure says which

REPO = Path(__file__).resolve().parents[1]
#: The real chest CT and its labels (LIDC-IDRI-0001; see its README): $ZOO_SHARED/data/..., else
#: beside a checkout (a folder `zoo data sample --out DIR` makes has the same files).
SAMPLE = Path(os.environ.get("ZOO_SHARED", REPO.parent / "shared")) / "data" / "lidc-idri-0001"


def machine() -> str:
    """One line: CPU, the threads torch uses, torch's version."""
    import torch

    return f"CPU: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def best_of(run: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs in seconds: a slow moment of a shared machine lowers no
    side of a ratio measured in the same run."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def timed(run: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """:func:`best_of`, and what the last run returned."""
    result: list[Any] = [None]

    def keep() -> None:
        result[0] = run()

    return best_of(keep, repeat), result[0]


def peak_since_reset_mib() -> float:
    """This process's peak resident memory (MiB) since the last call, which resets it (Linux:
    VmHWM, cleared by writing 5 to clear_refs), so that each step reports its own peak."""
    status = Path("/proc/self/status").read_text()
    peak = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:")) / 1024
    Path("/proc/self/clear_refs").write_text("5")
    return peak


class PeakRSS:
    """Samples this process's resident memory in a thread; ``peak`` in MiB above the start."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak, self._stop = interval, 0.0, threading.Event()

    @staticmethod
    def rss() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096 / 2**20

    def __enter__(self) -> PeakRSS:
        self.start = self.rss()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss() - self.start)
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.rss() - self.start)


def matmul_gflops(n: int = 2048, repeat: int = 5) -> float:
    """The CPU's fp32 matmul rate, best of ``repeat`` (the models' times are best-of too)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / best_of(lambda: a @ b, repeat) / 1e9


def gflops_per_slice(model: Any, size: int) -> float:
    """A model's GFLOPs for one ``size`` x ``size`` slice (torch's FLOP counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.full((1, 1, size, size), -500.0)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 1e9


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def first_slices(volume: Any, n: int) -> Any:
    """A volume of the first ``n`` slices of ``volume``."""
    return _volume_like(volume, np.ascontiguousarray(volume.array[:n]))


def tiled(volume: Any, n: int) -> Any:
    """A volume of ``n`` slices: ``volume`` repeated."""
    reps = int(np.ceil(n / volume.shape[0]))
    return _volume_like(volume, np.ascontiguousarray(np.concatenate([volume.array] * reps)[:n]))


def _volume_like(volume: Any, array: np.ndarray) -> Any:
    from zoo_ensemble.volumes import Geometry, Volume

    g = Geometry(array.shape[::-1], volume.spacing, volume.origin, volume.direction)
    return Volume(array, volume.spacing, volume.origin, volume.direction, g)


def save_figures(script: str, figures: dict[str, Any], out: str | os.PathLike[str] | None = None) -> Path:
    """Write ``figures`` (with the machine they were measured on) as ``<script>.json`` in the
    current folder, or ``out``; the printed table says the same for people."""
    path = Path(out) if out is not None else Path.cwd() / f"{Path(script).stem}.json"
    record = {"script": Path(script).name, "machine": machine(), "cpu": cpu_model(), "threads": os.cpu_count(),
              "python": sys.version.split()[0], "figures": figures}
    path.write_text(json.dumps(record, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"figures written to {path}")
    return path


#: Runs ``zoo`` from the code at argv[1] after running argv[2] (a Python line, or empty).
_RUNNER = """
import sys
code, setup, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path.insert(0, code)
import zoo_ensemble
assert zoo_ensemble.__file__.startswith(code), zoo_ensemble.__file__
exec(setup)
from zoo_ensemble.cli import main
main(argv)
"""


def cpu_preset_phantoms(tmp: Path, cases: int) -> list[Any]:
    """A zoo home under ``tmp`` with the first-party plugin, and ``cases`` phantoms of each of
    sources A and B at scale 3, as the cpu preset draws them (datasets, in that order)."""
    os.environ["ZOO_HOME"] = str(tmp / "home")
    os.environ.setdefault("ZOO_PLUGINS", "thorax")
    from zoo_ensemble.data.phantom import write_cohort

    return [write_cohort(tmp / f"cohort-{s}", s, cases, seed=0, scale=3.0) for s in ("A", "B")]


def run_zoo(code: Path, argv: list[str], limit_gib: float, setup: str = "") -> dict[str, Any]:
    """``zoo ARGV`` in its own process from the code at ``code`` (this tree, or a worktree of
    another revision), its address space at most ``limit_gib``: exit status, peak resident
    memory (MiB, from ``wait4``), wall seconds and its last line."""
    import resource
    import subprocess
    import tempfile

    def limit() -> None:
        cap = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = dict(os.environ, ZOO_PLUGINS=os.environ.get("ZOO_PLUGINS", "none"), COLUMNS="200")
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _RUNNER, str(code), setup, *argv], stdout=subprocess.DEVNULL, stderr=err, env=env, preexec_fn=limit,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        err.seek(0)
        lines = [ln for ln in err.read().decode("utf-8", "replace").splitlines() if ln.strip() and "━" not in ln]
    said = next((ln for ln in lines if ln.startswith("error:")), lines[-1] if lines else "")
    return {"exit": os.waitstatus_to_exitcode(status), "peak_mib": usage.ru_maxrss / 1024, "seconds": seconds, "said": said[:110]}


def worktree(rev: str, where: Path) -> Path:
    """A checkout of ``rev`` at ``where`` (git worktree), to run a baseline in the same run."""
    import subprocess

    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev], check=True, capture_output=True)
    return where


def remove_worktree(where: Path) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], capture_output=True)
