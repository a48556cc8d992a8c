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
    assert out.count("slices/s") == 10 and out.count("loader workers") == 4  # 3 members, 3 ensembles; zoo train's loop 4 times
    assert out.count("s per CT") == 4 and out.count("the networks alone") == 4
    assert "where one prediction's time goes" in out and "operators by own host time" in out and "FAILED" not in out
    assert out.rstrip().endswith("== all stages passed")


def test_a_failing_stage_is_reported_and_the_next_still_runs(tmp_path):
    python = tmp_path / "python"  # fails the GPU tests and the figures, runs everything else
    python.write_text(f"""#!/usr/bin/env bash
case "$*" in *pytest*|*gpu_bench.py*) echo "made to fail"; exit 3;; esac
exec {sys.executable} "$@"
""")
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "ZOO_HOME": str(tmp_path / "home"), "ZOO_PLUGINS": "none"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "!! stage 'tests' FAILED (exit 3)" in done.stdout and "!! stage 'figures' FAILED (exit 3)" in done.stdout
    assert done.stdout.count("saved heart to") == 1  # the stage between them ran
    assert done.stdout.rstrip().endswith("== FAILED stages: tests figures")
