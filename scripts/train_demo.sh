#!/usr/bin/env bash
# Train the CPU demonstration model saves/qdmn_lite_synth.pth (lite configuration) on
# generated data that is disjoint from SynthVOS (seeds 100-102 and 500; SynthVOS uses
# 2022-2024). Stage 0 on static images, stage 2 on DAVIS- and YouTube-layout videos at
# 128 px, then stage 2 again at 192 px on videos in the SynthVOS style.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-data/demo_train}
S0_IT=${S0_IT:-600}
S2_IT=${S2_IT:-1200}
S2C_IT=${S2C_IT:-2400}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # 2 threads collapse when anything else runs on a 2-core machine

python scripts/make_synthetic.py --out "$ROOT/static" --layout static --seed 100 --videos 20 --images 40 --height 192 --width 256
python scripts/make_synthetic.py --out "$ROOT/DAVIS" --layout davis2017 --seed 101 --videos 60 --frames 30 --height 240 --width 432 --max_objects 3
python scripts/make_synthetic.py --out "$ROOT/YouTube" --layout youtube --split train --seed 102 --videos 40 --frames 8 --height 240 --width 432 --max_objects 3
# SynthVOS-style videos (hard events, 1-3 objects, 240x432) from seed 500; the YouTube-layout
# ones carry ground truth on every frame, which serves as a YouTube-VOS train set.
python scripts/make_synthvos.py --out "$ROOT/synthstyle" --sets val,yv --seed 500 --videos 100
mkdir -p "$ROOT/synthstyle_yt/train"
ln -sfn ../../synthstyle/yv/all_frames/valid_all_frames/JPEGImages "$ROOT/synthstyle_yt/train/JPEGImages"
ln -sfn ../../synthstyle/yv/valid_gt/Annotations "$ROOT/synthstyle_yt/train/Annotations"

python train.py --stage 0 --id demo_s0 --model_config lite --size 128 -b 4 -i "$S0_IT" --steps $((S0_IT * 5 / 6)) --lr 1e-4 \
    --static_root "$ROOT/static" --num_workers 1 --save_every "$S0_IT" --seed 0
S0=$(ls -t saves/*_demo_s0/*_demo_s0_"$S0_IT".pth | head -n 1)
python train.py --stage 2 --id demo_s2 --load_network "$S0" --size 128 -b 4 -i "$S2_IT" --steps $((S2_IT * 4 / 5)) --lr 1e-4 \
    --davis_root "$ROOT/DAVIS" --yv_root "$ROOT/YouTube" --no_subset --num_workers 1 --save_every "$S2_IT" --seed 0
S2=$(ls -t saves/*_demo_s2/*_demo_s2_"$S2_IT".pth | head -n 1)
python train.py --stage 2 --id demo_s2c --load_network "$S2" --size 192 -b 4 -i "$S2C_IT" --steps $((S2C_IT * 19 / 24)) --lr 1e-4 \
    --davis_root "$ROOT/synthstyle/val" --yv_root "$ROOT/synthstyle_yt" --no_subset --num_workers 1 --save_every 200 --seed 2
S2C=$(ls -t saves/*_demo_s2c/*_demo_s2c_"$S2C_IT".pth | head -n 1)
python scripts/export_weights.py "$S2C" saves/qdmn_lite_synth.pth --half
