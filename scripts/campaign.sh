#!/usr/bin/env bash
# One segment of the CPU training campaign (issue 13): trains a stage for at most MINUTES,
# resumable at any point, and leaves its log where scripts/training_curve.py finds it.
#
#   scripts/campaign.sh srresnet_x4 120      # stage 1: continues runs/campaign/srresnet_x4
#   scripts/campaign.sh srgan_mse_x4 120     # stage 2: starts from the shipped srresnet_x4
#   scripts/campaign.sh srresnet_real_x4 120 # real photos: realistic degradations, DRealSR val
#   scripts/campaign.sh srgan_real_x4 120    # real photos, stage 2 from srresnet_real_x4
#   scripts/campaign.sh srresnet_x4 130 --set train.period_mult=1.2   # extra srgan train options
#
# A killed or time-limited segment continues with the same command (--auto-resume). Once the
# run folder is gone (a new machine), the next segment starts from the shipped weights, so
# progress lives in the package, and each segment's log.jsonl is copied to
# docs/training/logs/ by scripts/campaign_ship.sh when its weights ship.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:?stage config: srresnet_x4 or srgan_mse_x4}
minutes=${2:?minutes of training}
shift 2  # the rest goes to srgan train as is (later --set options win)
shared=${SRGAN_SHARED:-../shared}
srgan=${SRGAN:-.venv/bin/srgan}
common=(
  --auto-resume --run-dir "runs/campaign/$stage" --time-limit "$minutes"
  --set "data.train=[$shared/data/train]" --set "data.val=$shared/data/benchmark/Set5"
  --set train.steps=10000000 --set train.schedule=cosine_restarts
  --set train.warmup_steps=100 --set train.min_lr=1e-6 --set train.ema=0.999
  --set log.val_every=500 --set log.ckpt_every=500 --set log.keep=2 --set log.progress=false
)
# Real-photo stages validate on real camera pairs (DRealSR: the LR is the camera's own), 24 of
# the 93 each time, spread over the cameras.
real_val=(
  --set "data.val=$shared/data/real/DRealSR/HR" --set "data.val_lr=$shared/data/real/DRealSR/LR"
  --set data.val_max_images=24 --set log.val_every=1000 --set log.ckpt_every=500
)
case "$stage" in
  srresnet_x4)
    # Warm start from the shipped weights; segments of ~2 h on 2 cores, each 0.7x the last.
    exec "$srgan" train srresnet_x4 "${common[@]}" --set model.init=srresnet_x4 \
      --set train.lr=2e-4 --set "train.period=${PERIOD:-12000}" --set train.restart_decay=0.7 "$@"
    ;;
  srgan_mse_x4)
    # PSNR falls as realism grows, so the Set5 PSNR cannot pick stage 2's weights: keep the
    # last ones (log.export = last) and judge them by NIQE (srgan benchmark --niqe).
    exec "$srgan" train srgan_mse_x4 "${common[@]}" --set "model.init=${INIT:-srresnet_x4}" \
      --set train.lr=1e-4 --set "train.period=${PERIOD:-8000}" --set train.restart_decay=0.7 \
      --set log.export=last "$@"
    ;;
  srresnet_real_x4)
    # Realistic degradations (one worker process), from the shipped srresnet_x4, pixel MSE.
    exec "$srgan" train srresnet_real_x4 "${common[@]}" "${real_val[@]}" \
      --set model.init=srresnet_x4 --set train.lr=1e-4 --set "train.period=${PERIOD:-16000}" \
      --set train.restart_decay=0.7 "$@"
    ;;
  srgan_real_x4)
    # Stage 2 for real photos, from the shipped srresnet_real_x4 (its config: frozen
    # upsampler, 1e-2 adversarial, flat-region MSE, lr 1e-5).
    exec "$srgan" train srgan_real_x4 "${common[@]}" "${real_val[@]}" \
      --set "model.init=${INIT:-srresnet_real_x4}" --set train.schedule=constant \
      --set train.lr=1e-5 --set log.export=last "$@"
    ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
