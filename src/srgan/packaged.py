"""Files that ship inside the package (models in srgan/weights, training configs in
srgan/configs), and the one rule for naming one: a shipped file's name, else a path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# The shipped model used when none is named (CLI, Python API, web page): the one for the
# photos people have (JPEG, noise, blur); the bicubic-trained ones are a `-m` away.
DEFAULT_MODEL = "srresnet_real_x4"

# --denoise interpolates the weights of these two (same network, one fine-tuned from the
# other): 0 = the first (clean photos: keeps fine texture), 1 = the second (real photos:
# removes noise, JPEG blocks and blur).
DENOISE_MODELS = ("srresnet_x4", "srresnet_real_x4")

# What each shipped model is for, in plain words for someone choosing between them (`srgan
# models`, the web page); a card's description is written for people who train models.
PLAIN_WORDS = {
    "srresnet_real_x4": "For the photos people have (phone photos, web images, thumbnails, "
                        "scans): removes JPEG blocks and noise instead of sharpening them.",
    "srresnet_x4": "For clean photos and the benchmarks: stays closest to your photo, but "
                   "sharpens JPEG blocks and noise along with the detail; fine texture soft.",
    "srgan_real_x4": "For the photos people have, when you want them crisp: cleans JPEG blocks "
                     "and noise like srresnet_real_x4 but draws sharper edges and invents "
                     "texture; dark outlines round small lettering, waxy film grain.",
    "srgan_mse_x4": "Sharper, invented texture: crisper detail, some of it made up by the "
                    "model rather than recovered; halos on strong edges.",
}


def shipped_files(folder: str, suffix: str) -> dict[str, Path]:
    """{name: path} of the `*suffix` files in the package's `folder`, sorted by name."""
    root = Path(str(resources.files("srgan") / folder))
    return {p.stem: p for p in sorted(root.glob(f"*{suffix}"))}


def find_shipped_or_file(name_or_path: str | Path, shipped: dict[str, Path]) -> Path | None:
    """A shipped file named `name_or_path` (a string only: a Path is always a path), else the
    path when it is a file; None when it is neither."""
    if isinstance(name_or_path, str) and name_or_path in shipped:
        return shipped[name_or_path]
    path = Path(name_or_path)
    return path if path.is_file() else None
