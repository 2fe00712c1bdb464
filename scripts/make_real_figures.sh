#!/usr/bin/env bash
# Make the README's real-photo figures (docs/figures/real_*.png): photographs made
# low-resolution the way the web does it, then upscaled by each model.
#
#   scripts/make_real_figures.sh [OUT_DIR] [MODEL ...]
#
# OUT_DIR defaults to docs/figures; MODELs default to srresnet_x4 srresnet_real_x4. The
# photographs are Debian's mate-backgrounds (GPL-2+; docs/figures/CREDITS.md), picked among
# those in no training or benchmark set (Blinds, Dune, RainDrops, Storm, TwoWings and Wood are
# training photographs). Needs apt-get and dpkg (the package is downloaded and
# unpacked into a temporary folder, never installed) and the srgan package in $PYTHON.
#
# Each photograph is cropped, shrunk to 1/4 with Pillow's bicubic (as image editors and web
# sites resize) and saved as a JPEG of quality 40-60 (as thumbnails and shared photos are):
# the LR input. `srgan compare --lr-input` draws LR | bicubic | models with a zoomed inset.
set -euo pipefail

OUT=${1:-docs/figures}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(srresnet_x4 srresnet_real_x4)
PYTHON=${PYTHON:-python3}  # may be a command with arguments: "nice python3"

# figure name | photograph in nature/ | crop x,y,w,h in its pixels | JPEG quality | inset
FIGURES=(
  "real_aqua|Aqua.jpg|900,300,1024,640|45|auto"
  "real_flower|FreshFlower.jpg|200,300,1024,640|50|auto"
  "real_meadow|GreenMeadow.jpg|128,300,1024,640|55|auto"
)

. "$(dirname "$0")/mate_photos.sh"  # sets work, photos, model_args
mkdir -p "$work/lr" "$OUT"

for spec in "${FIGURES[@]}"; do
  IFS='|' read -r name file crop quality box <<<"$spec"
  $PYTHON - "$photos/$file" "$crop" "$quality" "$work/lr/$name.jpg" <<'PY'
import sys

from PIL import Image

src, crop, quality, dst = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
x, y, w, h = (int(v) for v in crop.split(","))
with Image.open(src) as im:
    small = im.convert("RGB").crop((x, y, x + w, y + h)).resize((w // 4, h // 4),
                                                                  Image.Resampling.BICUBIC)
small.save(dst, quality=quality)
PY
  box_args=()
  [ "$box" = auto ] || box_args=(--box "$box")
  $PYTHON -m srgan compare "${model_args[@]}" "${box_args[@]}" --lr-input --panel-width 256 \
    "$work/lr/$name.jpg" -o "$OUT/$name.png" --overwrite
done
echo "photographs: Debian mate-backgrounds (GPL-2+), credited in docs/figures/CREDITS.md" >&2
