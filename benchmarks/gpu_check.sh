#!/usr/bin/env bash
# The GPU check (issue #13), one command for when a GPU machine is lent (under 8 minutes on one
# H100): install the package without touching the machine's torch, run the GPU tests (a mixed-
# precision training step; CUDA prediction equal to the CPU's within tolerance), then print the
# GPU figures (benchmarks/gpu_bench.py). Commit what it prints under docs/results/gpu/.
#
#   bash benchmarks/gpu_check.sh             # on a GPU machine
#   bash benchmarks/gpu_check.sh --dry-run   # anywhere: the same steps on the CPU at toy sizes
set -euo pipefail
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
$python -c "import torch, zoo_ensemble; print('torch', torch.__version__, '| CUDA', torch.cuda.is_available(), '| zoo-ensemble', zoo_ensemble.__version__)"

echo "== GPU tests"
if [ -z "$dry" ]; then
    $python -m pytest -q -p no:cacheprovider tests/test_gpu.py
else
    ZOO_GPU_DRY_RUN=1 $python -m pytest -q -p no:cacheprovider tests/test_gpu.py
fi

echo "== GPU figures"
$python benchmarks/gpu_bench.py $dry
