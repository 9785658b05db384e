#!/usr/bin/env bash
# Train the CPU demonstration model saves/qdmn_lite_synth.pth (lite configuration) from a
# mirrored random initialisation, on generated data that is disjoint from SynthVOS (seeds
# 100 and 500; SynthVOS uses 2022-2024): stage 0 on static images, stage 2 on
# SynthVOS-style videos at 192 px crops, then on whole 240x432 frames (the shape of the
# evaluation frames); exported as float16 weights. This is the shipped model's recipe.
# FT_IT=N adds an experiment that did not beat it (README, "Attempts at a stronger model"),
# written to saves/qdmn_lite_synth_ft.pth:
# N iterations of fine-tuning on whole frames with --amp, on SynthVOS-style videos (the
# DAVIS part, sampled 5x as in the official stage 2) and videos of the wide preset (the
# YouTube-VOS part, seed 600: objects of 0.2-40 % of the frame, many shapes, textures and
# backgrounds, camera pan and zoom, occlusions; docs/SYNTHVOS.md).
# The held-out generator (scripts/make_heldout.py) is never trained on: it checks generalisation.
# Resumable: every step is skipped when its result exists, and a stage that was stopped
# (SIGTERM or Ctrl-C save a checkpoint) resumes from its latest *_checkpoint.pth, so the
# training can run in several parts: rerun the script. Checkpoints stay in saves/ and the
# data in data/ (both ignored by git); only the final float16 weights are exported.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-data/demo_train}
S0_IT=${S0_IT:-600}
S2_STOP=${S2_STOP:-1000}  # stage 2 at 192 px: a 2400-iteration schedule stopped here
S2F_IT=${S2F_IT:-800}     # stage 2 on whole frames
FT_IT=${FT_IT:-0}         # the fine-tuning experiment (1500 in the README); 0: none
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # 2 threads collapse when anything else runs on a 2-core machine: keep it quiet
THREADS=${THREADS:-$OMP_NUM_THREADS}  # network threads (train.py would give the data worker one of the 2 cores: it is mostly idle)
AMP_PREVIOUS=${AMP_PREVIOUS:-}   # the shipped model was trained in float32; --amp is 3-4x faster here (docs/TRAINING.md), not the same model
AMP=${AMP:---amp}  # the experiment: bfloat16 + channels_last where the CPU has native bfloat16; AMP= for float32

latest() { ls -t $1 2>/dev/null | head -n 1 || true; }

# train ID FINAL_ITERATION PRECISION FLAGS...: nothing when ID's weights at FINAL_ITERATION exist; resumed from
# ID's latest training checkpoint when there is one (the flags that start a run are dropped then).
# Stops the script unless the weights at FINAL_ITERATION exist afterwards (a stopped stage resumes on the next run).
train() {
    local id=$1 final=$2 precision=$3; shift 3
    if [ -n "$(latest "saves/*_$id/*_${id}_$final.pth")" ]; then echo "$id: done"; return; fi
    local ckpt; ckpt=$(latest "saves/*_$id/*_${id}_checkpoint.pth")
    if [ -z "$ckpt" ]; then
        python train.py --id "$id" --threads "$THREADS" $precision "$@"
    else
        local args=() skip=0
        for a in "$@"; do  # drop --load_network X, --mirror_init, --model_config X: the checkpoint has them
            if [ "$skip" = 1 ]; then skip=0; continue; fi
            case "$a" in --load_network|--model_config) skip=1 ;; --mirror_init) ;; *) args+=("$a") ;; esac
        done
        python train.py --id "$id" --threads "$THREADS" $precision --load_model "$ckpt" "${args[@]}"
    fi
    if [ -z "$(latest "saves/*_$id/*_${id}_$final.pth")" ]; then echo "$id stopped before iteration $final: rerun to resume"; exit 0; fi
}

[ -d "$ROOT/static" ] || python -m scripts.make_synthetic --out "$ROOT/static" --layout static --seed 100 --videos 20 --images 40 \
    --height 192 --width 256
# SynthVOS-style videos (hard events, 1-3 objects, 240x432) from seed 500 and wide-preset
# videos from seed 600; the YouTube-layout ones carry ground truth on every frame, which
# serves as a YouTube-VOS train set.
[ -f "$ROOT/synthstyle/yv/synthvos.json" ] || python -m scripts.make_synthvos --out "$ROOT/synthstyle" --sets val,yv --seed 500 --videos 100
[ "$FT_IT" = 0 ] || [ -f "$ROOT/wide/yv/synthvos.json" ] || python -m scripts.make_synthvos --out "$ROOT/wide" --style wide --seed 600 --videos 150
for kind in synthstyle wide; do
    [ -d "$ROOT/$kind/yv" ] || continue
    mkdir -p "$ROOT/${kind}_yt/train"
    ln -sfn "../../$kind/yv/all_frames/valid_all_frames/JPEGImages" "$ROOT/${kind}_yt/train/JPEGImages"
    ln -sfn "../../$kind/yv/valid_gt/Annotations" "$ROOT/${kind}_yt/train/Annotations"
done
STYLE=(--davis_root "$ROOT/synthstyle/val" --yv_root "$ROOT/synthstyle_yt" --no_subset --num_workers 1)
MIXED=(--davis_root "$ROOT/synthstyle/val" --yv_root "$ROOT/wide_yt" --no_subset --num_workers 1)

# The shipped model (float16), as data/demo_train/previous_model.pth: the experiment starts from it.
# To run only the experiment: cp saves/qdmn_lite_synth.pth data/demo_train/previous_model.pth
PREVIOUS="$ROOT/previous_model.pth"
if [ ! -f "$PREVIOUS" ]; then
    train demo_s0 "$S0_IT" "$AMP_PREVIOUS" --stage 0 --model_config lite --mirror_init --size 128 -b 4 -i "$S0_IT" \
        --steps $((S0_IT * 5 / 6)) --lr 1e-4 --static_root "$ROOT/static" --num_workers 1 --save_every "$S0_IT" --seed 0
    train demo_s2 "$S2_STOP" "$AMP_PREVIOUS" --stage 2 --load_network "$(latest "saves/*_demo_s0/*_demo_s0_$S0_IT.pth")" \
        --size 192 -b 4 -i 2400 --steps 1900 --stop_at "$S2_STOP" --lr 1e-4 "${STYLE[@]}" --save_every 200 --seed 2
    train demo_s2f "$S2F_IT" "$AMP_PREVIOUS" --stage 2 --load_network "$(latest "saves/*_demo_s2/*_demo_s2_$S2_STOP.pth")" \
        --size 240 --crop_width 432 -b 4 -i "$S2F_IT" --steps $((S2F_IT * 4 / 5)) --lr 1e-4 "${STYLE[@]}" --save_every 100 --seed 3
    python -m scripts.export_weights "$(latest "saves/*_demo_s2f/*_demo_s2f_$S2F_IT.pth")" "$PREVIOUS" --half
fi
if [ "$FT_IT" = 0 ]; then cp "$PREVIOUS" saves/qdmn_lite_synth.pth; echo "wrote saves/qdmn_lite_synth.pth"; exit 0; fi
# The experiment: fine-tuning on both kinds of video
train demo_ft "$FT_IT" "$AMP" --stage 2 --load_network "$PREVIOUS" --size 240 --crop_width 432 -b 4 -i "$FT_IT" \
    --steps $((FT_IT * 4 / 5)) --lr 1e-4 "${MIXED[@]}" --save_every 100 --seed 4
python -m scripts.export_weights "$(latest "saves/*_demo_ft/*_demo_ft_$FT_IT.pth")" saves/qdmn_lite_synth_ft.pth --half  # beside the shipped model
