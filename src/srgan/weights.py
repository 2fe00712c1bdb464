"""Model files: safetensors weights with the architecture config in the metadata, and the
registry of models that ship inside the package.

A model file is self-describing: `load_generator(path)` builds the right network from the
metadata alone. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from srgan.nets import SRResNet

FORMAT_KEY = "srgan.format"
FORMAT_VERSION = "1"
CONFIG_KEY = "srgan.config"
CARD_KEY = "srgan.card"
SUPPORTED_ARCHS = ("srresnet",)
MAX_BLOCKS, MAX_CHANNELS, MAX_SCALE = 256, 1024, 16


class ModelFileError(ValueError):
    """A model file is missing, malformed, or does not match its own metadata."""


@dataclass(frozen=True)
class GeneratorConfig:
    """What is needed to rebuild a generator: stored as JSON in the file's metadata."""

    arch: str = "srresnet"
    scale: int = 4
    num_blocks: int = 16
    channels: int = 64
    input_range: tuple[float, float] = (0.0, 1.0)
    output_range: tuple[float, float] = (-1.0, 1.0)

    def build(self) -> SRResNet:
        if self.arch not in SUPPORTED_ARCHS:
            raise ModelFileError(f"unknown architecture {self.arch!r}")
        if tuple(self.input_range) != (0.0, 1.0):
            raise ModelFileError(f"input_range {self.input_range} unsupported (only [0, 1])")
        return SRResNet(self.scale, self.num_blocks, self.channels, tuple(self.output_range))

    @classmethod
    def from_json(cls, text: str) -> GeneratorConfig:
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: [[[[...
            raise ModelFileError(f"config metadata is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ModelFileError("config metadata is not a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(raw) - known
        if unknown:
            raise ModelFileError(f"config metadata has unknown fields {sorted(unknown)}")
        try:
            cfg = cls(
                arch=str(raw.get("arch", "srresnet")),
                scale=int(raw.get("scale", 4)),
                num_blocks=int(raw.get("num_blocks", 16)),
                channels=int(raw.get("channels", 64)),
                input_range=_pair(raw.get("input_range", (0.0, 1.0))),
                output_range=_pair(raw.get("output_range", (-1.0, 1.0))),
            )
        except (TypeError, ValueError, OverflowError) as exc:  # Overflow: int(1e999)
            raise ModelFileError(f"config metadata has a bad value: {exc}") from exc
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.arch not in SUPPORTED_ARCHS:  # checked here too, so that read_metadata
            raise ModelFileError(f"unknown architecture {self.arch!r}")  # names the file
        if tuple(self.input_range) != (0.0, 1.0):
            raise ModelFileError(f"input_range {self.input_range} unsupported (only [0, 1])")
        if self.scale not in (2, 4, 8, 16):
            raise ModelFileError(f"scale {self.scale} is not a power of two in 2..{MAX_SCALE}")
        if not 0 <= self.num_blocks <= MAX_BLOCKS:
            raise ModelFileError(f"num_blocks {self.num_blocks} outside 0..{MAX_BLOCKS}")
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise ModelFileError(f"channels {self.channels} outside 1..{MAX_CHANNELS}")
        lo, hi = self.output_range
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ModelFileError(f"output_range {self.output_range} is empty or not finite")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def of(cls, net: SRResNet) -> GeneratorConfig:
        return cls(
            scale=net.scale,
            num_blocks=net.num_blocks,
            channels=net.channels,
            output_range=net.output_range,
        )


def _pair(value: object) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"expected two numbers, got {value!r}")
    return float(value[0]), float(value[1])


@dataclass
class ModelCard:
    """Human-facing facts about a model file, kept in its metadata."""

    name: str = ""
    description: str = ""
    training: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def save_generator(
    net: SRResNet,
    path: str | Path,
    card: ModelCard | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write `net` and its config to `path` atomically (temp file + rename)."""
    path = Path(path)
    config = GeneratorConfig.of(net)
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in net.state_dict().items()}
    metadata = {
        FORMAT_KEY: FORMAT_VERSION,
        CONFIG_KEY: config.to_json(),
        CARD_KEY: json.dumps(asdict(card or ModelCard()), sort_keys=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_metadata(path: str | Path) -> tuple[GeneratorConfig, ModelCard]:
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc})") from exc
    if CONFIG_KEY not in meta:
        raise ModelFileError(
            f"{path}: no '{CONFIG_KEY}' metadata; not an srgan model file "
            "(convert other checkpoints with `srgan export`)"
        )
    try:
        config = GeneratorConfig.from_json(meta[CONFIG_KEY])
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    try:
        card_raw = json.loads(meta.get(CARD_KEY, "{}"))
        card = ModelCard(**{k: card_raw[k] for k in ("name", "description", "training", "extra")
                            if k in card_raw})
    except (json.JSONDecodeError, TypeError, RecursionError):
        card = ModelCard()
    return config, card


def load_generator(name_or_path: str | Path, device: str | torch.device = "cpu") -> SRResNet:
    """Build the generator a model file (or a shipped model's name) describes, in eval mode."""
    path = resolve_model(name_or_path)
    config, card = read_metadata(path)
    with torch.device("meta"):  # shapes only: nothing is allocated before the file matches
        expected = config.build().state_dict()
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            missing = sorted(set(expected) - keys)
            unexpected = sorted(keys - set(expected))
            if missing or unexpected:
                raise ModelFileError(
                    f"{path}: tensors do not match its config {config}: "
                    f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                    f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}"
                )
            for key in expected:
                shape = tuple(f.get_slice(key).get_shape())
                if shape != tuple(expected[key].shape):
                    raise ModelFileError(
                        f"{path}: tensor {key} has shape {shape}, "
                        f"its config needs {tuple(expected[key].shape)}"
                    )
            state = {key: f.get_tensor(key).to(expected[key].dtype) for key in expected}
    except SafetensorError as exc:
        raise ModelFileError(f"{path}: corrupt or truncated safetensors data ({exc})") from exc
    net = config.build()
    net.load_state_dict(state)
    net.card = card  # type: ignore[attr-defined]
    return net.to(device).eval()


def _shipped_dir() -> Path:
    return Path(str(resources.files("srgan") / "weights"))


def list_models() -> dict[str, Path]:
    """Names and files of the models shipped inside the package."""
    folder = _shipped_dir()
    return {p.stem: p for p in sorted(folder.glob("*.safetensors"))}


def resolve_model(name_or_path: str | Path) -> Path:
    """A shipped model's name, or a path to a .safetensors file."""
    shipped = list_models()
    if isinstance(name_or_path, str) and name_or_path in shipped:
        return shipped[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        if path.suffix in (".pth", ".pt", ".ckpt", ".pkl", ".bin"):
            raise ModelFileError(
                f"{path}: pickle-based checkpoints are not loaded (they can run code); "
                "convert it with `srgan export` from a trusted environment to .safetensors"
            )
        return path
    names = ", ".join(shipped) or "none"
    raise ModelFileError(f"{name_or_path}: no such model file or shipped model (shipped: {names})")
