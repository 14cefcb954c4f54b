#!/usr/bin/env bash
# The GPU check: one prepared run for a machine with a CUDA GPU, under 5 minutes, downloading
# nothing but packages from the registries (PyPI):
#   1. the card and its driver (nvidia-smi);
#   2. a virtual environment ($FASTFNN_GPU_VENV, default .venv-gpu) with this package, CuPy with
#      its CUDA toolkit wheels (cupy-cuda13x[ctk], or cupy-cuda12x[ctk] under a CUDA 12 driver)
#      and PyTorch (PyPI's Linux wheels are CUDA builds); reused when it is already there;
#   3. `fastfnn info`: CuPy's probe kernel compiled and ran, or why not (then the check stops);
#   4. the GPU-marked tests on the real device (no emulation);
#   5. the GPU benchmarks: fastfnn[cupy] against PyTorch CUDA eager on the same card (and Numba at
#      batch 128 for the GPU >= 10x Numba goal), on MNIST if $FASTFNN_DATA has it, else synthetic
#      MNIST-shaped data; raw numbers in $GPU_CHECK_JSON (default gpu_check.json here).
# Usage: benchmarks/gpu_check.sh    (run from anywhere; it works in the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== card: $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
cuda_major=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -n 1)
cupy_wheel="cupy-cuda13x[ctk]"
if [ -n "$cuda_major" ] && [ "$cuda_major" -lt 13 ]; then cupy_wheel="cupy-cuda12x[ctk]"; fi

echo "== environment (${FASTFNN_GPU_VENV:-.venv-gpu}, $cupy_wheel, torch)"
venv="${FASTFNN_GPU_VENV:-.venv-gpu}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"
timeout 240 "$py" -m pip install -q --disable-pip-version-check -e ".[dev,bench]" "$cupy_wheel" torch

echo "== fastfnn info"
"$py" -m fastfnn info
"$py" - <<'PY'
import sys
from fastfnn.backends import available_backends
reason = available_backends()["cupy"]
if reason:
    sys.exit(f"gpu_check: the cupy backend cannot run here: {reason}")
PY

echo "== GPU-marked tests on the device"
timeout 150 "$py" -m pytest -q -m gpu tests -p no:cacheprovider

echo "== GPU benchmarks (fastfnn[cupy] against PyTorch CUDA eager)"
json="${GPU_CHECK_JSON:-gpu_check.json}"
timeout 120 "$py" -m fastfnn.bench --backends cupy,numba --compare torch-cuda --settle 0 \
    --workloads 784-128-64-10,784-128-64-10/32,784-128-64-10/1024 --json "$json"
echo "== done; raw numbers in $json"
