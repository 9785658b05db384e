#!/usr/bin/env bash
# Train the CPU demonstration model saves/qdmn_lite_synth.pth (lite configuration) on
# generated data that is disjoint from SynthVOS (seeds 100 and 600; SynthVOS uses
# 2022-2024): stage 0 on static images from a mirrored random initialisation, stage 2 at
# 192 px crops on videos of the wide training preset (objects of 0.2-40 % of the frame,
# many shapes, textures and backgrounds, camera pan and zoom, occlusions; docs/SYNTHVOS.md),
# then stage 2 on whole 240x432 frames (the shape of the evaluation frames).
# The held-out generator (scripts/make_heldout.py) is never trained on: it checks generalisation.
# Resumable: every step is skipped when its result exists, and a stage that was stopped
# (SIGTERM or Ctrl-C save a checkpoint) resumes from its latest *_checkpoint.pth, so the
# training can run in several parts: rerun the script. Checkpoints stay in saves/ and the
# data in data/ (both ignored by git); only the final float16 weights are exported.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-data/demo_train}
S0_IT=${S0_IT:-600}
S2_IT=${S2_IT:-4000}    # stage 2 at 192 px: the schedule (learning-rate step at 80 %) ...
S2_STOP=${S2_STOP:-2400}  # ... stopped here
S2F_IT=${S2F_IT:-1200}  # stage 2 on whole frames
WIDE_VIDEOS=${WIDE_VIDEOS:-150}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # 2 threads collapse when anything else runs on a 2-core machine: keep it quiet
THREADS=${THREADS:-$OMP_NUM_THREADS}  # network threads (train.py would give the data worker one of the 2 cores: it is mostly idle)
AMP=${AMP:---amp}  # bfloat16 + channels_last where the CPU has native bfloat16 (3-4x float32, docs/TRAINING.md); AMP= for float32

latest() { ls -t $1 2>/dev/null | head -n 1 || true; }

# train ID FINAL_ITERATION FLAGS...: nothing when ID's weights at FINAL_ITERATION exist; resumed from
# ID's latest training checkpoint when there is one (the flags that start a run are dropped then).
train() {
    local id=$1 final=$2; shift 2
    if [ -n "$(latest "saves/*_$id/*_${id}_$final.pth")" ]; then echo "$id: done"; return; fi
    local ckpt; ckpt=$(latest "saves/*_$id/*_${id}_checkpoint.pth")
    if [ -z "$ckpt" ]; then python train.py --id "$id" --threads "$THREADS" $AMP "$@"; return; fi
    local args=() skip=0
    for a in "$@"; do  # drop --load_network X, --mirror_init, --model_config X: the checkpoint has them
        if [ "$skip" = 1 ]; then skip=0; continue; fi
        case "$a" in --load_network|--model_config) skip=1 ;; --mirror_init) ;; *) args+=("$a") ;; esac
    done
    python train.py --id "$id" --threads "$THREADS" $AMP --load_model "$ckpt" "${args[@]}"
}

[ -d "$ROOT/static" ] || python -m scripts.make_synthetic --out "$ROOT/static" --layout static --seed 100 --videos 20 --images 40 \
    --height 192 --width 256
# Wide-preset videos (240x432; 1-4 objects in the DAVIS layout, YouTube-VOS ids and
# entries in the other) from seed 600; the YouTube-layout ones carry ground truth on
# every frame, which serves as a YouTube-VOS train set.
[ -f "$ROOT/wide/yv/synthvos.json" ] || python -m scripts.make_synthvos --out "$ROOT/wide" --style wide --seed 600 --videos "$WIDE_VIDEOS"
mkdir -p "$ROOT/wide_yt/train"
ln -sfn ../../wide/yv/all_frames/valid_all_frames/JPEGImages "$ROOT/wide_yt/train/JPEGImages"
ln -sfn ../../wide/yv/valid_gt/Annotations "$ROOT/wide_yt/train/Annotations"
VIDEOS=(--davis_root "$ROOT/wide/val" --yv_root "$ROOT/wide_yt" --no_subset --num_workers 1)

train demo_s0 "$S0_IT" --stage 0 --model_config lite --mirror_init --size 128 -b 4 -i "$S0_IT" --steps $((S0_IT * 5 / 6)) \
    --lr 1e-4 --static_root "$ROOT/static" --num_workers 1 --save_every "$S0_IT" --seed 0
train demo_s2 "$S2_STOP" --stage 2 --load_network "$(latest "saves/*_demo_s0/*_demo_s0_$S0_IT.pth")" --size 192 -b 4 -i "$S2_IT" \
    --steps $((S2_IT * 4 / 5)) --stop_at "$S2_STOP" --lr 1e-4 "${VIDEOS[@]}" --save_every 200 --seed 2
train demo_s2f "$S2F_IT" --stage 2 --load_network "$(latest "saves/*_demo_s2/*_demo_s2_$S2_STOP.pth")" --size 240 --crop_width 432 -b 4 \
    -i "$S2F_IT" --steps $((S2F_IT * 4 / 5)) --lr 1e-4 "${VIDEOS[@]}" --save_every 100 --seed 3
python -m scripts.export_weights "$(latest "saves/*_demo_s2f/*_demo_s2f_$S2F_IT.pth")" saves/qdmn_lite_synth.pth --half
