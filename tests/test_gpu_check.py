"""benchmarks/gpu_check.sh must run when a GPU is lent; until then its --dry-run (the same steps
on the CPU at toy sizes) is kept passing here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEARNED = ("logits_conv", "meta_unet", "layer_fusion")


def test_the_gpu_check_runs_dry_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "ZOO_HOME": str(tmp_path / "home"), "ZOO_PLUGINS": "none"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "2 passed" in out  # the GPU tests, with the CPU standing in
    assert out.count("saved heart to") == 1  # torchrun, two gloo processes standing in for GPUs; rank 0 speaks
    # every figure the bench promises, each a positive number: the members' and ensembles' training
    # rates, zoo train's own loop with and without loader workers, each ensemble's seconds per CT
    rates = {m.group(1): float(m.group(2)) for m in re.finditer(r"^  (member \w+|ensemble \w+) +([\d.]+) slices/s", out, re.M)}
    assert set(rates) == {"member deeplabv3", "member se_resunet", "member unet", *(f"ensemble {m}" for m in LEARNED)}
    loops = re.findall(r"^  member (\w+) +(\d+) loader workers +([\d.]+) slices/s", out, re.M)
    assert [a for a, _, _ in loops] == ["deeplabv3", "deeplabv3", "se_resunet", "unet"] and loops[0][1] == "0"
    per_ct = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(r"^  (\w+) +\(\d+ members\) +([\d.]+) s per CT  \(the networks alone ([\d.]+) s\)", out, re.M)}
    assert set(per_ct) == {"argmax", *LEARNED}
    assert all(v > 0 for v in rates.values()) and all(float(r) > 0 for _, _, r in loops) and all(whole > 0 and alone > 0 for whole, alone in per_ct.values())  # toy sizes: no order between them
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
