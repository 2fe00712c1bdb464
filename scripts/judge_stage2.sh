#!/usr/bin/env bash
# Judge a stage-2 (SRGAN) candidate against the shipped srresnet_x4 on the three bars of issue 13:
# Set14 NIQE at least 1.0 lower, Y-PSNR within 2 dB, no visible artefacts.
#
#   scripts/judge_stage2.sh runs/campaign/srgan_mse_x4/generator.safetensors out/judge
#
# Writes OUT/benchmark/ (PSNR, SSIM, NIQE tables), OUT/checkerboard.md (periodic-artefact
# score per image, HR about 1), and OUT/*.png compare figures with zoomed insets of the images
# where a checkerboard shows first (baboon's fur, the face, barbara's cloth).
set -euo pipefail
cd "$(dirname "$0")/.."
candidate=${1:?a generator .safetensors}
out=${2:?an output folder}
srgan=${SRGAN:-.venv/bin/srgan}
python=${PYTHON:-.venv/bin/python}
shared=${SRGAN_SHARED:-../shared}
sets=$shared/data/benchmark
mkdir -p "$out"
"$srgan" benchmark -m srresnet_x4 -m "$candidate" --data "$sets/Set5" "$sets/Set14" --niqe \
  --precision fp32 --device cpu -o "$out/benchmark" --overwrite -q
"$python" scripts/checkerboard.py -m srresnet_x4 -m "$candidate" --data "$sets/Set14" \
  > "$out/checkerboard.md"
"$srgan" compare -m srresnet_x4 -m "$candidate" --device cpu --overwrite -o "$out/baboon.png" \
  "$sets/Set14/baboon.png"
"$srgan" compare -m srresnet_x4 -m "$candidate" --device cpu --overwrite -o "$out/face.png" \
  "$sets/Set14/face.png"
"$srgan" compare -m srresnet_x4 -m "$candidate" --device cpu --overwrite -o "$out/barbara.png" \
  "$sets/Set14/barbara.png"
grep -E "mean|image" "$out/checkerboard.md"
cat "$out/benchmark/"*.md 2>/dev/null | grep -E "^\|" | head -40
