"""VGG19 feature extractor for the perceptual (content) loss, without torchvision.

The layer indices follow torchvision's `vgg19().features`, so its ImageNet checkpoint
(`features.N.weight` / `features.N.bias`) loads as it is.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch
from torch import nn

# torchvision's VGG19 config: channels, "M" = 2x2 max-pool.
VGG19_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)
TORCHVISION_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
TORCHVISION_VGG19_FILE = "vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_ENV = "SRGAN_VGG19_WEIGHTS"


def feature_layer_index(block: int, conv: int, after_relu: bool = True) -> int:
    """Index in `features` of phi_{block,conv}: the conv's ReLU (or the conv itself)."""
    index, b, c = 0, 1, 0
    for item in VGG19_CONFIG:
        if item == "M":
            b, c = b + 1, 0
            index += 1
            continue
        c += 1
        if (b, c) == (block, conv):
            return index + 1 if after_relu else index
        index += 2
    raise ValueError(f"VGG19 has no conv{block}_{conv}")


def parse_layer(name: str) -> tuple[int, int, bool]:
    """'vgg54' -> (5, 4, True); 'vgg54_prerelu' -> (5, 4, False); 'vgg22' -> (2, 2, True)."""
    m = re.fullmatch(r"(?:vgg)?(\d)(\d)(_prerelu)?", name)
    if not m:
        raise ValueError(f"unknown VGG layer {name!r}; use e.g. vgg54, vgg22, vgg54_prerelu")
    block, conv, after_relu = int(m.group(1)), int(m.group(2)), m.group(3) is None
    feature_layer_index(block, conv)  # raises for layers VGG19 does not have
    return block, conv, after_relu


class VGGWeightsMissing(FileNotFoundError):
    """ImageNet VGG19 weights are needed and could not be found or downloaded."""


class VGGFeatures(nn.Module):
    """phi_{i,j} of VGG19: input RGB in [0, 1], ImageNet normalisation done inside.

    Only the layers up to the requested one are kept; parameters are frozen.
    """

    def __init__(self, layer: str = "vgg54", weights: str | Path | None = "imagenet") -> None:
        super().__init__()
        block, conv, after_relu = parse_layer(layer)
        self.layer = layer
        last = feature_layer_index(block, conv, after_relu)
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG19_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers[: last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        if weights is not None:
            state = load_vgg19_state_dict(None if weights == "imagenet" else weights)
            own = self.state_dict()
            wanted = {k: v for k, v in state.items() if k in own}
            missing = [k for k in own if k.startswith("features.") and k not in wanted]
            if missing:
                raise ValueError(f"VGG19 weights lack {missing[:3]}...: not a torchvision VGG19")
            self.load_state_dict(wanted, strict=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)


def _hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_weights_message() -> str:
    target = _hub_checkpoint_dir() / TORCHVISION_VGG19_FILE
    return (
        "ImageNet VGG19 weights are needed for the VGG content loss but were not found.\n"
        f"  Get {TORCHVISION_VGG19_URL}\n"
        f"  and put it at {target}\n"
        f"  (or point ${WEIGHTS_ENV} or the config's vgg_weights at a local copy; the file\n"
        "  may be the torchvision .pth or a .safetensors with the same 'features.N.*' keys).\n"
        "  Without VGG weights, use a pixel loss instead (e.g. the srgan_mse_x4 config)."
    )


def _check_hub_hash(path: Path) -> None:
    prefix = TORCHVISION_VGG19_FILE.split("-")[1].split(".")[0]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(prefix):
        raise ValueError(
            f"{path}: sha256 {digest[:8]}... does not match torchvision's {prefix}; "
            "the file is corrupt or not the VGG19 checkpoint. Delete it and fetch it again."
        )


def load_vgg19_state_dict(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """Load torchvision-layout VGG19 weights without unpickling arbitrary objects.

    Order: an explicit path, $SRGAN_VGG19_WEIGHTS, the torch hub cache, then a download from
    torchvision's URL into that cache (hash checked). Raises VGGWeightsMissing offline.
    """
    if path is None and os.environ.get(WEIGHTS_ENV):
        path = os.environ[WEIGHTS_ENV]
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise VGGWeightsMissing(f"{path}: no such file.\n" + missing_weights_message())
    else:
        cached = _hub_checkpoint_dir() / TORCHVISION_VGG19_FILE
        if cached.is_file():
            _check_hub_hash(cached)
            path = cached
        else:
            try:
                torch.hub.load_state_dict_from_url(
                    TORCHVISION_VGG19_URL, check_hash=True, progress=True, weights_only=True
                )
            except Exception as exc:  # offline, proxy, HTTP error, hash mismatch
                raise VGGWeightsMissing(
                    f"download failed ({type(exc).__name__}: {exc}).\n" + missing_weights_message()
                ) from exc
            path = cached
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict")
    return state
