#!/usr/bin/env bash
# The GPU measurement of the speed issue, in one short run: official model, 480x864,
# 2 objects, an 80-frame generated DAVIS-like video, float32 and --amp (float16), with
# FLOPs and peak CUDA memory. Results: benchmarks/gpu_480p_{fp32,amp}.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for mode in fp32 amp; do
    flags=()
    [ "$mode" = amp ] && flags+=(--amp)
    python -m scripts.benchmark --config official --height 480 --width 864 --objects 2 --frames 80 --device cuda \
        --flop_frames 2 "${flags[@]}" --json "benchmarks/gpu_480p_$mode.json" --markdown "benchmarks/gpu_480p_$mode.md"
    cat "benchmarks/gpu_480p_$mode.md"
done
