#!/usr/bin/env bash
# Train the CPU demonstration model saves/qdmn_lite_synth.pth (lite configuration) on
# generated data that is disjoint from SynthVOS (seeds 100 and 600; SynthVOS uses
# 2022-2024): stage 0 on static images from a mirrored random initialisation, stage 2 at
# 192 px crops on videos of the wide training preset (objects of 0.2-40 % of the frame,
# many shapes, textures and backgrounds, camera pan and zoom, occlusions; docs/SYNTHVOS.md),
# then stage 2 on whole 240x432 frames (the shape of the evaluation frames).
# The held-out generator (scripts/make_heldout.py) is never trained on: it checks generalisation.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-data/demo_train}
S0_IT=${S0_IT:-600}
S2_STOP=${S2_STOP:-1000}  # stage 2 at 192 px: stopped here, on the schedule of a 2400-iteration run
S2F_IT=${S2F_IT:-800}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # 2 threads collapse when anything else runs on a 2-core machine: keep it quiet

python -m scripts.make_synthetic --out "$ROOT/static" --layout static --seed 100 --videos 20 --images 40 --height 192 --width 256
# Wide-preset videos (240x432; 1-4 objects in the DAVIS layout, YouTube-VOS ids and
# entries in the other) from seed 600; the YouTube-layout ones carry ground truth on
# every frame, which serves as a YouTube-VOS train set.
WIDE_VIDEOS=${WIDE_VIDEOS:-150}
python -m scripts.make_synthvos --out "$ROOT/wide" --style wide --seed 600 --videos "$WIDE_VIDEOS"
mkdir -p "$ROOT/wide_yt/train"
ln -sfn ../../wide/yv/all_frames/valid_all_frames/JPEGImages "$ROOT/wide_yt/train/JPEGImages"
ln -sfn ../../wide/yv/valid_gt/Annotations "$ROOT/wide_yt/train/Annotations"
VIDEOS=(--davis_root "$ROOT/wide/val" --yv_root "$ROOT/wide_yt" --no_subset --num_workers 1)

python train.py --stage 0 --id demo_s0 --model_config lite --mirror_init --size 128 -b 4 -i "$S0_IT" --steps $((S0_IT * 5 / 6)) \
    --lr 1e-4 --static_root "$ROOT/static" --num_workers 1 --save_every "$S0_IT" --seed 0
S0=$(ls -t saves/*_demo_s0/*_demo_s0_"$S0_IT".pth | head -n 1)
python train.py --stage 2 --id demo_s2 --load_network "$S0" --size 192 -b 4 -i 2400 --steps 1900 --stop_at "$S2_STOP" --lr 1e-4 \
    "${VIDEOS[@]}" --save_every 200 --seed 2
S2=$(ls -t saves/*_demo_s2/*_demo_s2_"$S2_STOP".pth | head -n 1)
python train.py --stage 2 --id demo_s2f --load_network "$S2" --size 240 --crop_width 432 -b 4 -i "$S2F_IT" --steps $((S2F_IT * 4 / 5)) \
    --lr 1e-4 "${VIDEOS[@]}" --save_every 100 --seed 3
S2F=$(ls -t saves/*_demo_s2f/*_demo_s2f_"$S2F_IT".pth | head -n 1)
python -m scripts.export_weights "$S2F" saves/qdmn_lite_synth.pth --half
