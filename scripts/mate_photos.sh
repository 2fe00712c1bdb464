# Sourced by the figure scripts: downloads Debian's mate-backgrounds package into a temporary
# folder (removed on exit; unpacked, never installed) and sets
#   work    the temporary folder
#   photos  its nature/ photographs (GPL-2+, credited in docs/figures/CREDITS.md)
#   model_args  -m NAME for each entry of the MODELS array
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download mate-backgrounds >/dev/null)
dpkg -x "$work"/mate-backgrounds_*_all.deb "$work/pkg"
photos="$work/pkg/usr/share/backgrounds/mate/nature"
model_args=()
for m in "${MODELS[@]}"; do model_args+=(-m "$m"); done
