#!/usr/bin/env bash
# The one GPU entry point: scripts/gpu_check.py (environment, CUDA training, CUDA evaluation against the CPU and the
# official code, the demonstration model), every stage time-boxed, every output in $OUT (or --out DIR).
# Prepare its wheels and the official code here first: bash benchmarks/gpu_check_prepare.sh. docs/GPU_CHECK.md.
# Dry run on the CPU: bash benchmarks/gpu_check.sh --device cpu --tiny --out /tmp/gpu_check
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" -m scripts.gpu_check "$@"
