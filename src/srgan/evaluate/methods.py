"""What `benchmark` and `compare` both need: the methods under test (`bicubic` and model
files), where the standard sets are (`resolve_dataset`), and the benchmark's image protocol
(8-bit RGB, modcrop, MATLAB-bicubic LR).

Images travel as uint8 tensors of shape (3, H, W): the literature scores 8-bit images, and
MATLAB's `imresize` on uint8 rounds its result to uint8, so the LR and the bicubic baseline
are made exactly that way here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from srgan.imageio import ImageData
from srgan.inference import ImageUpscaler, Upscaler, resize_to
from srgan.quantize import quantize_tensor
from srgan.resize import imresize, modcrop

BICUBIC = "bicubic"
BICUBIC_DESCRIPTION = ("Bicubic interpolation (MATLAB imresize): the baseline a "
                       "super-resolution model is compared against.")
DATA_ROOT_ENV = "SRGAN_DATA_ROOT"
# Where the project's standard sets live, relative to the working directory (a checkout next
# to the shared data, as the README's commands assume).
DEFAULT_DATA_ROOT = Path("..") / "shared" / "data" / "benchmark"
REAL_DATA_ROOT = Path("..") / "shared" / "data" / "real"  # real camera pairs (DRealSR)
# Where the README has `srgan data download set5` put a set, relative to the working
# directory like the others: looked in last, so it changes nothing where the others hold it.
DOWNLOAD_DATA_ROOT = Path("data") / "benchmark"
# The standard benchmark sets, with the papers they come from: srgan ships none of them and
# downloads Set5 and Set14 only, so a "not found" names where they come from and how to get
# them or point at one's own copy.
STANDARD_SETS = {
    "set5": "Set5 (Bevilacqua et al., BMVC 2012)",
    "set14": "Set14 (Zeyde et al., Curves and Surfaces 2010)",
    "bsd100": "BSD100 (the 100 test images of the Berkeley segmentation set, Martin et al., "
              "ICCV 2001)",
    "b100": "B100 (the 100 test images of the Berkeley segmentation set, Martin et al., "
            "ICCV 2001)",
    "urban100": "Urban100 (Huang et al., CVPR 2015)",
    "manga109": "Manga109 (Matsui et al., 2017)",
    "general100": "General100 (Dong et al., ECCV 2016)",
    "div2k": "DIV2K (Agustsson and Timofte, CVPR workshops 2017)",
}


class ProtocolError(ValueError):
    """An image cannot be used under the benchmark protocol (too small, sizes disagree...)."""


# --------------------------------------------------------------------------- methods
class Method:
    """Something that turns a uint8 (3, h, w) LR tensor into a uint8 (3, s*h, s*w) SR one."""

    name: str
    scale: int
    device: str = "cpu"

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class Bicubic(Method, ImageUpscaler):
    """The "bicubic" pseudo-model, the baseline every table carries and the server offers:
    MATLAB `imresize(lr, scale, 'bicubic')` on uint8 for benchmarks, and `Upscaler`'s
    `upscale` face (PIL, NumPy, tensors, ImageData, any outscale) where an `Upscaler` would
    stand; `tta` and `progress` mean nothing to an interpolation."""

    scale: int = 4
    name: str = BICUBIC

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        return imresize(lr, scale=self.scale)

    def _image(self, data: ImageData, outscale: float | None, call: object) -> ImageData:
        """ImageData -> ImageData resized by `outscale` (default the scale), in one resize."""
        scale = self.scale if outscale is None else outscale
        out = data.with_pixels(resize_to(data.pixels, data.height, data.width, scale))
        if getattr(call, "progress", None) is not None:
            call.progress(1)  # one "tile": the whole image
        return out

    def _tensor(self, x: torch.Tensor, call: object) -> torch.Tensor:
        return imresize(x.float().cpu(), scale=self.scale).clamp_(0, 1)


@dataclass
class Network(Method):
    """A generator behind an `Upscaler`; output rounded to uint8 like MATLAB's im2uint8."""

    name: str
    upscaler: object = field(repr=False)
    tta: bool = False

    @property
    def scale(self) -> int:  # type: ignore[override]
        return int(self.upscaler.scale)

    @property
    def device(self) -> str:  # type: ignore[override]
        return str(self.upscaler.device)

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        x = lr.to(torch.float32).div_(255.0)
        y = self.upscaler.upscale(x, tta=self.tta)
        return to_uint8(y)

    def warm_up(self) -> None:
        """One tiny pass so the first timed image does not pay for CUDA/cuDNN start-up."""
        self(torch.zeros(3, 16, 16, dtype=torch.uint8))


def model_label(name_or_path: str | Path) -> str:
    """A short column name: a shipped model's name, or a file's stem."""
    text = str(name_or_path)
    return Path(text).stem if text.endswith(".safetensors") else text


def load_methods(
    names: Sequence[str | Path | Method],
    scale: int = 4,
    device: str = "auto",
    precision: str = "fp32",
    tta: bool = False,
    tile: int | None = None,
    baseline: bool = True,
) -> list[Method]:
    """Methods for model names/paths (`bicubic` included); the baseline first if `baseline`.

    Raises `srgan.ModelFileError` for a model that cannot be loaded and `ValueError` when a
    model's scale is not `scale`: both are the user's to fix before any image is scored.
    """

    methods: list[Method] = []
    labels: set[str] = set()
    def is_bicubic(n: object) -> bool:
        return isinstance(n, Bicubic) or (not isinstance(n, Method) and str(n) == BICUBIC)

    if baseline and not any(is_bicubic(n) for n in names):
        names = [BICUBIC, *names]
    for item in names:
        if isinstance(item, Method):
            method = item
        elif str(item) == BICUBIC:
            method = Bicubic(scale=scale)
        else:
            up = Upscaler.from_pretrained(item, device=device, precision=precision, tile=tile)
            method = Network(name=model_label(item), upscaler=up, tta=tta)
        if method.scale != scale:
            raise ValueError(f"model {method.name!r} upscales x{method.scale}, not x{scale}")
        label, n = method.name, 2
        while label in labels:  # two files with the same stem: keep both columns apart
            label, n = f"{method.name}#{n}", n + 1
        method.name = label
        labels.add(label)
        methods.append(method)
    return methods


# --------------------------------------------------------------------------- datasets
def data_roots(
    data_root: str | Path | None = None, env: Mapping[str, str] | None = None
) -> list[tuple[Path, str]]:
    """The folders a set name is looked up in, in order, each with where it came from:
    `data_root` (--data-root), then $SRGAN_DATA_ROOT, then ../shared/data/benchmark,
    ../shared/data/real and data/benchmark (where `srgan data download set5` puts Set5)."""
    env = os.environ if env is None else env
    roots: list[tuple[Path, str]] = []
    if data_root is not None:
        roots.append((Path(data_root), "--data-root"))
    if env.get(DATA_ROOT_ENV):
        roots.append((Path(env[DATA_ROOT_ENV]), f"${DATA_ROOT_ENV}"))
    roots.append((DEFAULT_DATA_ROOT, "default"))
    roots.append((REAL_DATA_ROOT, "default"))
    roots.append((DOWNLOAD_DATA_ROOT, "default"))
    return roots


def split_pair_folder(folder: Path) -> tuple[Path, Path | None]:
    """A set folder holding `HR/` and `LR/` and no image of its own (DRealSR, RealSR) is a
    set of real pairs: (its HR folder, its LR folder). Any other folder: (itself, None)."""
    from srgan.imageio import find_images

    hr, lr = folder / "HR", folder / "LR"
    if hr.is_dir() and lr.is_dir() and not find_images([folder], recursive=False):
        return hr, lr
    return folder, None


def resolve_dataset(
    name: str | Path,
    data_root: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    what: str = "dataset",
) -> Path:
    """A folder of images from a path or a set name (`Set5`, `Set14/HR`, `BSD100`...).

    A path that exists as given is used as it is (so full and relative paths keep working);
    a relative one that does not is looked up under each of `data_roots` in turn. Raises
    FileNotFoundError saying every place it looked, and what sets the roots hold."""
    path = Path(name)
    if path.is_dir():
        return path
    looked = [f"{path} (as given)"]
    if not path.is_absolute():
        for root, origin in data_roots(data_root, env):
            candidate = root / path
            if candidate.is_dir():
                return candidate
            looked.append(f"{candidate} ({origin})")
    if path.exists():
        raise FileNotFoundError(f"{what} {path}: not a folder")
    if not (os.environ if env is None else env).get(DATA_ROOT_ENV):
        looked.append(f"${DATA_ROOT_ENV} not set")
    found: set[str] = set()
    for root, _ in data_roots(data_root, env):
        with contextlib.suppress(OSError):
            found.update(p.name for p in root.iterdir() if p.is_dir())
    hint = f"; sets there: {', '.join(sorted(found))}" if found else \
        "; give a folder path, --data-root DIR or $SRGAN_DATA_ROOT"
    raise FileNotFoundError(f"{what} {str(name)!r} not found: looked in "
                            + ", ".join(looked) + hint + standard_set_hint(path))


def standard_set_hint(path: Path) -> str:
    """For a standard set's name: where it comes from and how to use one's own copy, since
    srgan has no copy of its own to fall back on ('' for any other name)."""
    key = path.parts[0].lower() if path.parts else ""
    if key not in STANDARD_SETS:
        return ""
    if key == "div2k":
        return ". DIV2K is fetched with `srgan data download div2k DIR`"
    if key in ("set5", "set14"):
        return (f". {STANDARD_SETS[key]} is a standard benchmark set: `srgan data download "
                f"{key} {DOWNLOAD_DATA_ROOT.as_posix()}` fetches it from a public mirror, "
                f"checked image by image, into {DOWNLOAD_DATA_ROOT.as_posix()}/, where its "
                f"name is found; or give your own copy: the folder itself (--data "
                f"path/to/{path.parts[0]}) or the folder that holds {path.parts[0]}/ "
                "(--data-root DIR, or $SRGAN_DATA_ROOT); docs/faq.md has more")
    return (f". {STANDARD_SETS[key]} is a standard benchmark set that srgan neither ships "
            "nor downloads: get its HR images from the authors or a super-resolution "
            f"toolbox, then give the folder itself (--data path/to/{path.parts[0]}) or the "
            f"folder that holds {path.parts[0]}/ (--data-root DIR, or $SRGAN_DATA_ROOT); "
            "docs/faq.md has more")


# --------------------------------------------------------------------------- images
def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float in [0, 1] -> uint8, rounding half up (MATLAB's im2uint8)."""
    return quantize_tensor(x, 8)


def load_rgb8(path: str | Path) -> tuple[torch.Tensor, list[str]]:
    """Read an image as a uint8 (3, H, W) tensor, as the benchmark scores it.

    Grey is replicated to RGB (then scored RGB->Y, like most Python toolboxes; for 8-bit grey
    Y = 16 + 219/255 * grey); alpha is dropped; 16-bit is rounded to 8 bits. The notes say
    which of these happened. Raises `srgan.imageio.ImageReadError` naming the file.
    """
    from srgan.imageio import read_rgb8

    pixels, notes = read_rgb8(path)
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), notes


def prepare_pair(
    hr: torch.Tensor, scale: int, lr: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The protocol: HR modcropped to the scale; LR = MATLAB bicubic 1/scale of it (uint8).

    With a given LR, HR is cropped (top-left) to scale x the LR's size, and must not be
    smaller than that or larger by a whole LR pixel.
    """
    if lr is None:
        hr = modcrop(hr, scale)
        if hr.shape[-2] < scale or hr.shape[-1] < scale:
            raise ProtocolError(f"smaller than {scale}x{scale} pixels")
        return hr, imresize(hr, scale=1.0 / scale)
    h, w = lr.shape[-2] * scale, lr.shape[-1] * scale
    H, W = hr.shape[-2], hr.shape[-1]
    if not (h <= H < h + scale and w <= W < w + scale):
        raise ProtocolError(
            f"LR {lr.shape[-1]}x{lr.shape[-2]} does not match HR {W}x{H} at x{scale}"
        )
    return hr[..., :h, :w], lr


def error_reason(exc: BaseException, path: Path | None = None) -> str:
    """An error's reason without the file name that report lines already start with."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    text = str(exc)
    if path is not None:
        for prefix in (f"{path}: ", f"{path.name}: "):
            if text.startswith(prefix):
                return text[len(prefix):]
    return text or type(exc).__name__
