"""benchmarks/gpu_check.sh must run when a GPU is lent; until then its --dry-run (the same steps
on the CPU at toy sizes) is kept passing here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_dry_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "ZOO_HOME": str(tmp_path / "home"), "ZOO_PLUGINS": "none"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "2 passed" in out  # the GPU tests, with the CPU standing in
    assert out.count("saved heart to") == 1  # torchrun, two gloo processes standing in for GPUs; rank 0 speaks
    for method in ("logits_conv", "meta_unet", "layer_fusion"):
        assert f"ensemble {method}" in out and f"  {method}" in out
    assert out.count("slices/s") == 6 and out.count("s per CT") == 4 and out.rstrip().endswith("done")
