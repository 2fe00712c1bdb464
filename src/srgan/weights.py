"""Model files: safetensors weights with the architecture config in the metadata, and the
registry of models that ship inside the package.

A model file is self-describing: `load_generator(path)` builds the right network from the
metadata alone. Nothing is ever unpickled.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from srgan.atomic import atomic_write
from srgan.nets import SRResNet
from srgan.packaged import find_shipped_or_file, shipped_files

FORMAT_KEY = "srgan.format"
FORMAT_VERSION = "1"
CONFIG_KEY = "srgan.config"
CARD_KEY = "srgan.card"
SUPPORTED_ARCHS = ("srresnet",)
MAX_BLOCKS, MAX_CHANNELS, MAX_SCALE = 256, 1024, 16
MIN_OUTPUT_SPAN, MAX_OUTPUT_SPAN = 1e-3, 1e4  # plausible widths of a generator's output range
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".pkl", ".bin")


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
        # a generator's output is a pixel range: (-1, 1), (0, 1), (0, 255) ...; a span far
        # outside that turns every output into 0 or 1 (black / white images) or overflows
        if not (MIN_OUTPUT_SPAN <= hi - lo <= MAX_OUTPUT_SPAN
                and max(abs(lo), abs(hi)) <= MAX_OUTPUT_SPAN):
            raise ModelFileError(
                f"output_range {self.output_range} is not a plausible pixel range "
                f"(its span must be in [{MIN_OUTPUT_SPAN:g}, {MAX_OUTPUT_SPAN:g}])"
            )

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
    *,
    overwrite: bool = True,
) -> Path:
    """Write `net` and its config to `path` atomically (temp file + rename); with
    `overwrite=False` an existing file is never replaced (FileExistsError)."""
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
    payload = save(tensors, metadata=metadata)
    atomic_write(path, lambda fh: fh.write(payload), overwrite=overwrite)
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
            "(a plain state dict: see `srgan.weights.save_generator`, or "
            "`srgan export` for an srgan training checkpoint)"
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


@dataclass(frozen=True)
class SizeRequirements:
    """What input sizes a network takes (spandrel's word): at least `minimum` pixels on a
    side, a multiple of `multiple_of`. SRResNet is fully convolutional: any size."""

    minimum: int = 1
    multiple_of: int = 1


@dataclass(frozen=True)
class LoadedModel:
    """What loading a model file gives: the network (eval mode), the config it was built
    from, its model card, and the facts a caller sizes work by."""

    net: SRResNet
    config: GeneratorConfig
    card: ModelCard = field(default_factory=ModelCard)
    size: SizeRequirements = field(default_factory=SizeRequirements)

    @property
    def scale(self) -> int:
        return self.config.scale

    @classmethod
    def of(cls, net: SRResNet, card: ModelCard | None = None) -> LoadedModel:
        """A network in hand (trained, blended) described as a loaded model would be."""
        return cls(net.eval(), GeneratorConfig.of(net), card or ModelCard())


def load_generator(name_or_path: str | Path, device: str | torch.device = "cpu"
                   ) -> LoadedModel:
    """Build the generator a model file (or a shipped model's name) describes, in eval mode,
    with its config and card."""
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
            bad = [k for k, t in state.items() if t.is_floating_point() and not t.isfinite().all()]
            if bad:
                raise ModelFileError(
                    f"{path}: tensor {bad[0]} has NaN or infinite values"
                    f"{f' (and {len(bad) - 1} more tensors)' if len(bad) > 1 else ''}; "
                    "the model would give black or garbage images (a diverged training run?)"
                )
    except SafetensorError as exc:
        raise ModelFileError(f"{path}: corrupt or truncated safetensors data ({exc})") from exc
    net = config.build()
    net.load_state_dict(state)
    return LoadedModel(net.to(device).eval(), config, card)


def interpolate_generators(a: SRResNet, b: SRResNet, t: float) -> SRResNet:
    """A network whose every weight is (1 - t) a + t b: between two models of the same
    architecture fine-tuned from one another this moves smoothly from one's behaviour to the
    other's (ESRGAN's network interpolation). t = 0 and t = 1 are a and b exactly."""
    if not 0 <= t <= 1:
        raise ValueError(f"interpolation strength must be in [0, 1], got {t}")
    sa, sb = a.state_dict(), b.state_dict()
    shapes = lambda s: {k: tuple(v.shape) for k, v in s.items()}  # noqa: E731
    if shapes(sa) != shapes(sb):
        raise ModelFileError("cannot interpolate two networks of different architectures")
    mixed = {}
    for key, va in sa.items():
        vb = sb[key]
        if not va.is_floating_point() or t == 0:
            mixed[key] = va.clone()
        elif t == 1:
            mixed[key] = vb.clone()
        else:
            mixed[key] = torch.lerp(va.float(), vb.float(), t).to(va.dtype)
    net = copy.deepcopy(a)
    net.load_state_dict(mixed)
    return net.eval()


def denoise_generator(name_or_path: str | Path, strength: float) -> LoadedModel:
    """srresnet_x4 and srresnet_real_x4 blended at `strength` (0 = the first, 1 = the
    second, exactly), with a model card that says so."""
    from srgan.packaged import DEFAULT_MODEL, DENOISE_MODELS

    if not (isinstance(strength, int | float) and 0 <= strength <= 1):
        raise ValueError(f"denoise strength must be a number from 0 to 1, got {strength!r}")
    clean, real = DENOISE_MODELS
    chosen = resolve_model(name_or_path)
    pair = [resolve_model(clean), resolve_model(real)]
    if str(name_or_path) != DEFAULT_MODEL and chosen not in pair:
        raise ModelFileError(f"denoise works by blending {clean} and {real}; it cannot be "
                             f"used with {name_or_path}")
    a, b = load_generator(pair[0]), load_generator(pair[1])
    net = interpolate_generators(a.net, b.net, float(strength))
    card = b.card if strength == 1 else a.card
    if 0 < strength < 1:
        card = replace(
            b.card, name=f"{real} (denoise {strength:g})",
            description=f"The weights of {clean} and {real} blended at {strength:g} "
                        f"(0 = {clean}, 1 = {real}).")
    return LoadedModel(net, b.config if strength == 1 else a.config, card)


def list_models() -> dict[str, Path]:
    """Names and files of the models shipped inside the package."""
    return shipped_files("weights", ".safetensors")


def resolve_model(name_or_path: str | Path) -> Path:
    """A shipped model's name, or a path to a .safetensors file."""
    shipped = list_models()
    path = find_shipped_or_file(name_or_path, shipped)
    if path is not None:
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ModelFileError(pickle_advice(path))
        return path
    names = ", ".join(shipped) or "none"
    raise ModelFileError(f"{name_or_path}: no such model file or shipped model (shipped: {names})")


def state_dict_recipe(path: str | Path) -> str:
    """How to turn a pickled SRResNet state dict into a model file without running its code."""
    name = Path(path)
    out = name.with_suffix(".safetensors").name
    return (
        "A plain state dict of an SRResNet converts, in an environment you trust, with:\n"
        "  python -c \"import torch; from srgan.nets import SRResNet; "
        "from srgan.weights import save_generator; net = SRResNet(4, 16, 64); "
        f"net.load_state_dict(torch.load('{name}', weights_only=True)); "
        f"save_generator(net, '{out}')\"\n"
        "(weights_only=True reads tensors only, never code; SRResNet(scale, num_blocks, "
        "channels) must match the network the weights are for)."
    )


def pickle_advice(path: str | Path) -> str:
    """Why a pickle-based file is refused, and how to convert it without running its code."""
    name = Path(path)
    out = name.with_suffix(".safetensors").name
    return (
        f"{name}: pickle-based checkpoints are not loaded (unpickling can run code). An srgan "
        f"training checkpoint converts safely with `srgan export {name} -o {out}`. "
        + state_dict_recipe(name)
    )
