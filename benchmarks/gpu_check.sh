#!/usr/bin/env bash
# The GPU check (issue #13), one command for when a GPU machine is lent (under 8 minutes on one
# H100): install the package without touching the machine's torch, run the GPU tests (a mixed-
# precision training step; CUDA prediction equal to the CPU's within tolerance), train under
# torchrun with NCCL, one process per GPU (issue #14), then print the GPU figures
# (benchmarks/gpu_bench.py). Commit what it prints under docs/results/gpu/.
#
#   bash benchmarks/gpu_check.sh             # on a GPU machine
#   bash benchmarks/gpu_check.sh --dry-run   # anywhere: the same steps on the CPU at toy sizes
#
# A stage that fails is reported and the next one still runs (a lent GPU's minutes are few); the
# exit status is 1 when any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=""
[ "${1:-}" = "--dry-run" ] && dry="--dry-run"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

echo "== zoo-ensemble GPU check ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
if [ -z "$dry" ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    # the machine's torch stays; our package and its pure-Python needs come without upgrading it
    $python -m pip install -q --no-build-isolation --no-deps -e . -e ./plugins/zoo-thorax
fi
$python -c "import torch, zoo_ensemble; print('torch', torch.__version__, '| CUDA', torch.cuda.is_available(), '| zoo-ensemble', zoo_ensemble.__version__)" || exit 1
failed=""
stage() {  # stage NAME COMMAND...: run it, note a failure, go on
    local name=$1; shift
    "$@" || { echo "!! stage '$name' FAILED (exit $?)"; failed="$failed $name"; }
}

echo "== GPU tests"
if [ -z "$dry" ]; then
    stage tests $python -m pytest -q -p no:cacheprovider tests/test_gpu.py
else
    stage tests env ZOO_GPU_DRY_RUN=1 $python -m pytest -q -p no:cacheprovider tests/test_gpu.py
fi

echo "== torchrun: zoo train on phantoms, one process per GPU"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
torchrun_train() {
    $python -c "from zoo_ensemble.data.phantom import write_cohort; write_cohort('$work/cohort', 'A', cases=4, seed=3, scale=4.0)" || return 1
    if [ -z "$dry" ]; then n=$(nvidia-smi -L | wc -l); device=cuda; else n=2; device=cpu; fi
    ZOO_HOME="$work/home" OMP_NUM_THREADS=1 $python -m torch.distributed.run --standalone --nproc-per-node "$n" -m zoo_ensemble \
        train --organ heart --data "$work/cohort" --out "$work/heart" --size 64 --spacing 4,4 --epochs 2 --steps 4 \
        --batch-size $((4 * n)) --device "$device" 2>&1 | grep -v "^W[0-9]"
}
stage torchrun torchrun_train

echo "== GPU figures"
stage figures $python benchmarks/gpu_bench.py $dry --json "${OUT:-$work}/gpu_bench.json"  # the figures as JSON: under $OUT on a lent machine

if [ -n "$failed" ]; then echo "== FAILED stages:$failed"; exit 1; fi
echo "== all stages passed"

