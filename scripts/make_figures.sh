#!/usr/bin/env bash
# Make the README's comparison figures (docs/figures/*.png, srgan_mse_artefacts.png among
# them) from photographs the project may publish: Debian's mate-backgrounds package (GPL-2+;
# authors in docs/figures/CREDITS.md and in the package's copyright file). Not Set5/Set14
# (research-use terms) and not training images: these photographs are in neither.
#
#   scripts/make_figures.sh [OUT_DIR] [MODEL ...]
#
# OUT_DIR defaults to docs/figures; MODELs default to srresnet_x4 srgan_mse_x4 (names from
# `srgan models` or .safetensors files). Needs apt-get and dpkg (Debian/Ubuntu; no root: the
# package is downloaded and unpacked into a temporary folder, never installed) and the
# srgan package in $PYTHON (default: python3).
#
# Each photograph is cropped to a detailed region and downscaled with MATLAB bicubic to a
# 512x320 HR image; `srgan compare` reduces that x4 (MATLAB bicubic) to the 128x80 LR input
# and draws LR | bicubic | models | HR with a zoomed inset (given below, or "auto": where the
# methods differ most) and each method's Y-PSNR / Y-SSIM against HR.
set -euo pipefail

OUT=${1:-docs/figures}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(srresnet_x4 srgan_mse_x4)
PYTHON=${PYTHON:-python3}

# figure name | photograph in nature/ | crop x,y,w,h in its pixels | inset x,y,w,h in HR or auto
FIGURES=(
  "ladybird|LadyBird.jpg|1288,540,1024,640|200,110,96,96"
  "yellow_flower|YellowFlower.jpg|1536,960,1024,640|auto"
  "garden|Garden.jpg|1000,240,1280,800|auto"
  # srgan_mse_x4's ringing: the crown's soft reflections become stacked thin dark and bright
  # lines (README and MODELS.md link it); the inset is put there, not where methods differ most
  "srgan_mse_artefacts|Aqua.jpg|1280,560,1280,800|188,220,64,64"
)

. "$(dirname "$0")/mate_photos.sh"  # sets work, photos, model_args
mkdir -p "$work/hr" "$OUT"

for spec in "${FIGURES[@]}"; do
  IFS='|' read -r name file crop box <<<"$spec"
  "$PYTHON" - "$photos/$file" "$crop" "$work/hr/$name.png" <<'PY'
import sys

import numpy as np
import torch
from PIL import Image

from srgan.resize import imresize

src, crop, dst = sys.argv[1], sys.argv[2], sys.argv[3]
x, y, w, h = (int(v) for v in crop.split(","))
with Image.open(src) as im:
    rgb = np.asarray(im.convert("RGB").crop((x, y, x + w, y + h)))
hr = imresize(torch.from_numpy(rgb.copy()).permute(2, 0, 1), size=(320, 512))
Image.fromarray(hr.permute(1, 2, 0).numpy()).save(dst)
PY
  box_args=()
  [ "$box" = auto ] || box_args=(--box "$box")
  "$PYTHON" -m srgan compare "${model_args[@]}" "${box_args[@]}" --panel-width 256 \
    "$work/hr/$name.png" -o "$OUT/$name.png" --overwrite
done
echo "photographs: Debian mate-backgrounds (GPL-2+), credited in docs/figures/CREDITS.md" >&2
