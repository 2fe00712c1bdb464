"""DIV2K (Agustsson and Timofte, NTIRE 2017): 800 training and 100 validation 2K images, with
MATLAB-bicubic x4 LR versions, from the official site (or a mirror with the same file names).

Sizes and SHA-256 digests are those of the official archives (as recorded in the
tensorflow_datasets checksum list for DIV2K).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from srgan.datasets.download import DownloadError, download, safe_extract

DEFAULT_BASE_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
BASE_URL_ENV = "SRGAN_DIV2K_URL"


@dataclass(frozen=True)
class Archive:
    file: str
    size: int
    sha256: str
    folder: str  # what it extracts to, relative to the target folder


DIV2K_ARCHIVES: dict[str, Archive] = {
    "train_hr": Archive(
        "DIV2K_train_HR.zip", 3530603713,
        "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335", "DIV2K_train_HR"),
    "valid_hr": Archive(
        "DIV2K_valid_HR.zip", 448993893,
        "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc", "DIV2K_valid_HR"),
    "train_lr_x4": Archive(
        "DIV2K_train_LR_bicubic_X4.zip", 246914039,
        "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a",
        "DIV2K_train_LR_bicubic/X4"),
    "valid_lr_x4": Archive(
        "DIV2K_valid_LR_bicubic_X4.zip", 31505881,
        "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
        "DIV2K_valid_LR_bicubic/X4"),
}


def download_div2k(
    target: str | Path,
    base_url: str = DEFAULT_BASE_URL,
    parts: Iterable[str] = tuple(DIV2K_ARCHIVES),
    keep_archives: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
    archives: dict[str, Archive] | None = None,
) -> dict[str, Path]:
    """Download, verify and extract the chosen DIV2K parts into `target`.

    Layout: target/DIV2K_train_HR/0001.png, target/DIV2K_train_LR_bicubic/X4/0001x4.png, ...
    (archives in target/downloads). Finished parts (marker file) are skipped, so the command
    can be re-run after an interruption: downloads resume where they stopped.
    """
    table = archives or DIV2K_ARCHIVES
    target = Path(target)
    base = base_url if base_url.endswith("/") else base_url + "/"
    out: dict[str, Path] = {}
    for name in parts:
        if name not in table:
            raise DownloadError(f"unknown DIV2K part {name!r}; choose from {', '.join(table)}")
        arc = table[name]
        folder = target / arc.folder
        marker = target / f".{arc.file}.extracted"
        if marker.is_file() and folder.is_dir():
            log(f"{folder}: already there")
            out[name] = folder
            continue
        zip_path = download(base + arc.file, target / "downloads" / arc.file, arc.size,
                            arc.sha256, progress=progress, log=log)
        log(f"extracting {zip_path.name} ...")
        safe_extract(zip_path, target)
        if not folder.is_dir():
            raise DownloadError(f"{zip_path}: did not contain {arc.folder}/ as expected")
        marker.write_text(arc.sha256 + "\n")
        if not keep_archives:
            zip_path.unlink()
        out[name] = folder
    return out
