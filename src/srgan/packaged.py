"""Files that ship inside the package (models in srgan/weights, training configs in
srgan/configs), and the one rule for naming one: a shipped file's name, else a path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# The shipped model used when none is named (CLI, Python API, web page): the faithful one.
DEFAULT_MODEL = "srresnet_x4"

# --denoise interpolates the weights of these two (same network, one fine-tuned from the
# other): 0 = the first (clean photos: keeps fine texture), 1 = the second (real photos:
# removes noise, JPEG blocks and blur).
DENOISE_MODELS = ("srresnet_x4", "srresnet_real_x4")


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
