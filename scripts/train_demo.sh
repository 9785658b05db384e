#!/usr/bin/env bash
# Train the CPU demonstration model saves/qdmn_lite_synth.pth (lite configuration) from a
# mirrored random initialisation, on generated data that is disjoint from SynthVOS (seeds
# 100 and 500; SynthVOS uses 2022-2024), with --amp (bfloat16 where the CPU has it natively):
# stage 0 on static images with --train_bn (batch norm learns its statistics, which then stay
# frozen, as ImageNet statistics do in the official recipe), stage 2 on SynthVOS-style videos
# at 192 px crops, then on whole 240x432 frames (the shape of the evaluation frames);
# exported as float16 weights. README, "The demonstration model".
# BN_ALL=1 runs the variant that also trains batch norm in stage 2 (README, "Attempts at a
# stronger model"), written to saves/qdmn_lite_synth_bn_all.pth beside the shipped model.
# The held-out generator (scripts/make_heldout.py) is never trained on: it checks generalisation.
# Resumable: every step is skipped when its result exists, and a stage that was stopped
# (SIGTERM or Ctrl-C save a checkpoint) resumes from its latest *_checkpoint.pth, so the
# training can run in several parts: rerun the script. Checkpoints stay in saves/ and the
# data in data/ (both ignored by git); only the final float16 weights are exported.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-data/demo_train}
S0_IT=${S0_IT:-1000}
S2_STOP=${S2_STOP:-1000}  # stage 2 at 192 px: a 2400-iteration schedule stopped here
S2F_IT=${S2F_IT:-800}     # stage 2 on whole frames
BN_ALL=${BN_ALL:-0}       # 1: --train_bn in stage 2 too (the variant)
# The shipped model ran stage 0 on 2 threads and stage 2 on 1 thread (pinned to one core, the variant on
# the other). Float results depend on the thread count and the instruction set: other counts are
# faster or slower, not bit-identical.
S0_THREADS=${S0_THREADS:-2}
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS
AMP=${AMP:---amp}  # bfloat16 + channels_last where the CPU has native bfloat16; AMP= for float32

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
# SynthVOS-style videos (hard events, 1-3 objects, 240x432) from seed 500; the YouTube-layout
# ones carry ground truth on every frame, which serves as a YouTube-VOS train set.
[ -f "$ROOT/synthstyle/yv/synthvos.json" ] || python -m scripts.make_synthvos --out "$ROOT/synthstyle" --sets val,yv --seed 500 --videos 100
mkdir -p "$ROOT/synthstyle_yt/train"
ln -sfn ../../synthstyle/yv/all_frames/valid_all_frames/JPEGImages "$ROOT/synthstyle_yt/train/JPEGImages"
ln -sfn ../../synthstyle/yv/valid_gt/Annotations "$ROOT/synthstyle_yt/train/Annotations"
STYLE=(--davis_root "$ROOT/synthstyle/val" --yv_root "$ROOT/synthstyle_yt" --no_subset --num_workers 1)

OMP_NUM_THREADS=$S0_THREADS THREADS=$S0_THREADS train demo_s0 "$S0_IT" "$AMP" --train_bn --stage 0 --model_config lite --mirror_init --size 128 -b 4 -i "$S0_IT" \
    --steps $((S0_IT * 83 / 100)) --lr 1e-4 --static_root "$ROOT/static" --num_workers 1 --save_every 500 --seed 0
S0=$(latest "saves/*_demo_s0/*_demo_s0_$S0_IT.pth")
if [ "$BN_ALL" = 1 ]; then S2=demo_s2_bn_all S2F=demo_s2f_bn_all STAGE2_BN=--train_bn OUT=saves/qdmn_lite_synth_bn_all.pth
else S2=demo_s2 S2F=demo_s2f STAGE2_BN= OUT=saves/qdmn_lite_synth.pth; fi
train "$S2" "$S2_STOP" "$AMP" $STAGE2_BN --stage 2 --load_network "$S0" \
    --size 192 -b 4 -i 2400 --steps 1900 --stop_at "$S2_STOP" --lr 1e-4 "${STYLE[@]}" --save_every 200 --seed 2
train "$S2F" "$S2F_IT" "$AMP" $STAGE2_BN --stage 2 --load_network "$(latest "saves/*_$S2/*_${S2}_$S2_STOP.pth")" \
    --size 240 --crop_width 432 -b 4 -i "$S2F_IT" --steps $((S2F_IT * 4 / 5)) --lr 1e-4 "${STYLE[@]}" --save_every 100 --seed 3
python -m scripts.export_weights "$(latest "saves/*_$S2F/*_${S2F}_$S2F_IT.pth")" "$OUT" --half
