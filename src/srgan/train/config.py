"""Training configuration: typed sections, packaged TOML configs, `--set key=value` overrides.

A config is a TOML file with the sections below. Every key has a type and a default here; a
file (or an override) that names an unknown key or gives a value of the wrong type is an error
that says which key and what was expected, so a typo never silently trains the wrong thing.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgan.degrade import DegradationParams
from srgan.packaged import find_shipped_or_file, shipped_files
from srgan.train.config_values import ConfigError, coerce, short_repr

STAGES = ("srresnet", "srgan")
SCHEDULES = ("constant", "multistep", "cosine", "cosine_restarts")
AMP_MODES = ("auto", "bf16", "none")
SAMPLING = ("image", "area")
DEGRADATIONS = ("bicubic", "realistic")
EXPORT_WHICH = ("best", "last")
PIXEL_LOSSES = ("mse", "l1")
DISCRIMINATOR_INPUTS = ("image", "highpass")
MAX_HIGHPASS_SIGMA = 32.0  # HR pixels; a 257-tap blur, already wider than any training crop
PAPER_VGG_SCALE = 1.0 / 12.75
# Bounds far beyond any SRResNet (the paper: 16 blocks, 64 channels; EDSR: 32, 256), so that a
# typo is a config error rather than a network too big to build.
MAX_BLOCKS = 256
MAX_CHANNELS = 1024
MAX_STEPS = 10**9


@dataclass
class RunSection:
    """Where the run folder goes and what seeds it."""

    name: str = ""  # run folder name under `dir`; "" = the config's name
    based_on: str = ""  # the packaged config or file this run started from (set at start)
    dir: str = "runs"
    seed: int = 0
    device: str = "auto"  # auto = cuda if available, else cpu; or "cpu", "cuda", "cuda:1"


@dataclass
class ModelSection:
    """The generator (SRResNet) and, for stage 2, where its weights start from."""

    scale: int = 4
    num_blocks: int = 16
    channels: int = 64
    init: str = ""  # stage 2: a generator .safetensors or a stage-1 run folder
    freeze: list[str] = field(default_factory=list)  # G parameter-name prefixes kept fixed


@dataclass
class DiscriminatorSection:
    base_channels: int = 64
    antialias: bool = False  # blur before each stride-2 conv: no checkerboard gradient for G
    input: str = "image"  # or "highpass": D judges x - gaussian_blur(x), real and SR alike
    highpass_sigma: float = 1.5  # the blur's sigma in HR pixels (discriminator.input=highpass)


@dataclass
class DataSection:
    """Training images: HR folders (decoded once, kept in memory on the training device)."""

    train: list[str] = field(default_factory=lambda: ["data/DIV2K/DIV2K_train_HR"])
    train_lr: list[str] = field(default_factory=list)  # paired LR folders, same order as train
    val: str = ""  # folder of HR images for validation; "" = no validation
    val_lr: str = ""  # real LR images paired with data.val by name; "" = bicubic of the HR
    val_max_images: int = 0  # 0 = all; else this many, evenly spread over the sorted names
    crop: int = 96  # HR crop size (LR crop = crop / scale)
    augment: bool = True  # random flips and 90-degree rotations
    sample: str = "image"  # image: each image equally likely; area: by pixel count
    quantize_lr: bool = True  # round LR crops to 8 bits, like LR images saved as PNG
    degradation: str = "bicubic"  # or "realistic": blur, resize, noise, JPEG ([degradation])
    workers: int = 1  # processes degrading realistic patches beside training (0 = inline)
    device: str = "auto"  # where decoded images live: auto = the training device, or "cpu"
    max_images: int = 0  # use at most this many training images (0 = all)


@dataclass
class TrainSection:
    """The optimisation: stage, steps, batch, Adam, LR schedule, EMA, clipping, precision."""

    stage: str = "srresnet"
    steps: int = 100_000
    batch_size: int = 16  # per process (per GPU); the global batch is this x world size
    lr: float = 1e-4
    d_lr: float = 0.0  # discriminator lr; 0 = same as lr
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    schedule: str = "constant"
    milestones: list[int] = field(default_factory=list)  # multistep: steps where lr *= gamma
    gamma: float = 0.1
    warmup_steps: int = 0  # linear warmup from lr/warmup_steps
    min_lr: float = 0.0  # cosine: the final lr; cosine_restarts: each segment's final lr
    period: int = 10_000  # cosine_restarts: steps in the first segment
    period_mult: float = 1.0  # cosine_restarts: each segment is this many times the last
    restart_decay: float = 1.0  # cosine_restarts: each segment's peak lr is this times the last
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    ema: float = 0.0  # EMA decay of the generator weights (e.g. 0.999); 0 = off
    max_bad_steps: int = 20  # stop after this many non-finite losses in a row
    amp: str = "auto"  # auto = bf16 on CUDA and on CPUs with native bf16, else fp32
    channels_last: bool = True  # channels_last memory format (faster on CUDA and CPU)
    compile: bool = False  # torch.compile the networks (CUDA; slow first steps)


@dataclass
class LossSection:
    """Losses (stage 1 uses only `content`). Content terms are a weighted sum:
    {vgg54 = 1.0}, {mse = 1.0, vgg22 = 0.1}."""

    content: dict[str, float] = field(default_factory=lambda: {"mse": 1.0})
    vgg_scale: float = PAPER_VGG_SCALE  # features multiplied by this before the MSE
    vgg_weights: str = "imagenet"  # "imagenet" (torch hub cache / download) or a file path
    adversarial: float = 1e-3  # weight of -log D(G(LR))
    feature_matching: float = 0.0  # weight of the L1 discriminator feature-matching term
    adversarial_warmup: int = 0  # steps over which the two weights above rise from 0 (D trains)
    artifacts: float = 0.0  # weight of the LDL artefact-map L1 term (stage 2; needs train.ema)
    flat_mse: float = 0.0  # weight of the pixel MSE on locally flat HR regions (stage 2)
    usm_pixel_targets: bool = False  # pixel terms against an unsharp-masked HR (Real-ESRGAN)


@dataclass
class LogSection:
    """Progress, logs, validation, checkpoints, export."""

    every: int = 100  # JSON-lines / TensorBoard scalars every N steps
    val_every: int = 1000
    ckpt_every: int = 1000
    keep: int = 3  # last K checkpoints kept (best.pt is kept apart)
    val_images: int = 2  # LR|SR|HR strips saved to val/ per validation
    val_niqe: bool = False  # also the outputs' NIQE (stage 2: realism, as PSNR falls)
    tensorboard: bool = True  # when the tensorboard package is importable
    progress: bool = True  # tqdm progress bar
    export: str = "best"  # generator.safetensors = best validated (or last) weights


@dataclass
class Config:
    run: RunSection = field(default_factory=RunSection)
    model: ModelSection = field(default_factory=ModelSection)
    discriminator: DiscriminatorSection = field(default_factory=DiscriminatorSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    loss: LossSection = field(default_factory=LossSection)
    degradation: DegradationParams = field(default_factory=DegradationParams)
    log: LogSection = field(default_factory=LogSection)
    source: str = ""  # the config's name or path (not a TOML key)

    # ------------------------------------------------------------------------- access

    def get(self, key: str) -> Any:
        section, name = _split_key(key)
        return getattr(getattr(self, section), name)

    def set(self, key: str, value: Any) -> None:
        """Set `section.name` (or `loss.content.TERM`) to `value`, type-checked."""
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "loss" and parts[1] == "content":
            weight = coerce(value, float, key)
            content = dict(self.loss.content)
            content[parts[2]] = weight
            self.loss.content = content
            return
        section, name = _split_key(key)
        hint = _field_types()[section][name]
        setattr(getattr(self, section), name, coerce(value, hint, key))

    def flat(self) -> dict[str, Any]:
        out = {}
        for section, names in _field_types().items():
            for name in names:
                out[f"{section}.{name}"] = getattr(getattr(self, section), name)
        return out

    @property
    def name(self) -> str:
        if self.run.name:
            return self.run.name
        return Path(self.source).stem if self.source else "run"

    # ------------------------------------------------------------------------- checks

    def validate(self) -> Config:
        """Check values that types alone cannot (enums, ranges, cross-field rules)."""
        t, d, m, lo = self.train, self.data, self.model, self.loss

        def need(ok: bool, key: str, msg: str) -> None:
            if not ok:
                raise ConfigError(f"{key}: {msg} (got {self.get(key)!r})")

        need(t.stage in STAGES, "train.stage", f"one of {STAGES}")
        need(t.schedule in SCHEDULES, "train.schedule", f"one of {SCHEDULES}")
        need(t.amp in AMP_MODES, "train.amp", f"one of {AMP_MODES}")
        need(d.sample in SAMPLING, "data.sample", f"one of {SAMPLING}")
        need(self.log.export in EXPORT_WHICH, "log.export", f"one of {EXPORT_WHICH}")
        need(m.scale in (2, 4, 8), "model.scale", "2, 4 or 8")
        _check_run_name(self.run.name)
        need(0 <= m.num_blocks <= MAX_BLOCKS, "model.num_blocks", f"0 to {MAX_BLOCKS}")
        need(1 <= m.channels <= MAX_CHANNELS, "model.channels", f"1 to {MAX_CHANNELS}")
        need(1 <= self.discriminator.base_channels <= MAX_CHANNELS,
             "discriminator.base_channels", f"1 to {MAX_CHANNELS}")
        need(self.discriminator.input in DISCRIMINATOR_INPUTS, "discriminator.input",
             f"one of {DISCRIMINATOR_INPUTS}")
        need(0 < self.discriminator.highpass_sigma <= MAX_HIGHPASS_SIGMA,
             "discriminator.highpass_sigma", f"> 0 and at most {MAX_HIGHPASS_SIGMA:g}")
        need(d.crop >= m.scale and d.crop % m.scale == 0, "data.crop",
             f"a positive multiple of model.scale ({m.scale})")
        need(len(d.train) >= 1, "data.train", "at least one folder")
        need(d.degradation in DEGRADATIONS, "data.degradation", f"one of {DEGRADATIONS}")
        need(d.degradation == "bicubic" or not d.train_lr, "data.degradation",
             "bicubic when data.train_lr gives ready-made LR images")
        need(0 <= d.workers <= 64, "data.workers", "0 (inline) to 64")
        need(not d.val_lr or bool(d.val), "data.val_lr", "empty unless data.val is set")
        for problem in self.degradation.check():
            raise ConfigError(f"degradation.{problem}")
        need(not d.train_lr or len(d.train_lr) == len(d.train), "data.train_lr",
             f"empty or one LR folder per data.train folder ({len(d.train)})")
        need(1 <= t.steps <= MAX_STEPS, "train.steps", f"1 to {MAX_STEPS:,}")
        need(t.batch_size >= 1, "train.batch_size", ">= 1")
        need(t.lr > 0 and math.isfinite(t.lr), "train.lr", "> 0")
        need(t.d_lr >= 0, "train.d_lr", ">= 0")
        need(len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas), "train.betas",
             "two numbers in [0, 1)")
        need(0 <= t.ema < 1, "train.ema", "in [0, 1)")
        need(t.grad_clip >= 0, "train.grad_clip", ">= 0")
        need(t.warmup_steps >= 0, "train.warmup_steps", ">= 0")
        need(t.period >= 1, "train.period", ">= 1")
        need(t.period_mult >= 1 and math.isfinite(t.period_mult), "train.period_mult", ">= 1")
        need(0 < t.restart_decay <= 1, "train.restart_decay", "in (0, 1]")
        need(t.max_bad_steps >= 1, "train.max_bad_steps", ">= 1")
        need(all(s > 0 for s in t.milestones), "train.milestones", "positive steps")
        need(lo.vgg_scale > 0, "loss.vgg_scale", "> 0")
        need(lo.adversarial >= 0, "loss.adversarial", ">= 0")
        need(lo.feature_matching >= 0, "loss.feature_matching", ">= 0")
        need(lo.adversarial_warmup >= 0, "loss.adversarial_warmup", ">= 0")
        need(lo.artifacts >= 0, "loss.artifacts", ">= 0")
        need(lo.flat_mse >= 0, "loss.flat_mse", ">= 0")
        need(lo.artifacts == 0 or t.ema > 0, "loss.artifacts",
             "0 unless train.ema > 0 (the artefact map compares with the EMA generator)")
        need(bool(lo.content), "loss.content", "at least one term, e.g. {mse = 1.0}")
        for term, weight in lo.content.items():
            if term not in PIXEL_LOSSES:
                try:
                    from srgan.nets.vgg import parse_layer

                    parse_layer(term)
                except ValueError:
                    raise ConfigError(
                        f"loss.content: unknown term {term!r}; use mse, l1, vgg54, "
                        "vgg54_prerelu, vgg22 (any vggIJ[_prerelu])"
                    ) from None
            if not (weight >= 0 and math.isfinite(weight)):
                raise ConfigError(f"loss.content.{term}: weight must be >= 0, got {weight}")
        for key in ("log.every", "log.val_every", "log.ckpt_every", "log.keep"):
            need(self.get(key) >= 1, key, ">= 1")
        return self

    def absolute_paths(self, base: Path | None = None) -> Config:
        """In place: data folders, model.init and a VGG weights file made absolute (from `base`,
        default the working directory), so the run folder's config.toml resumes from anywhere.
        A model.init that names a shipped model, not a file, stays a name."""
        base = Path.cwd() if base is None else Path(base)

        def absolute(text: str) -> str:
            return str(base / Path(text).expanduser()) if text else text

        d = self.data
        d.train = [absolute(x) for x in d.train]
        d.train_lr = [absolute(x) for x in d.train_lr]
        d.val = absolute(d.val)
        d.val_lr = absolute(d.val_lr)
        init = self.model.init
        if init and ("/" in init or (base / init).exists()):
            self.model.init = absolute(init)
        if self.loss.vgg_weights not in ("", "imagenet"):
            self.loss.vgg_weights = absolute(self.loss.vgg_weights)
        return self

    def uses_vgg(self) -> bool:
        return any(t not in PIXEL_LOSSES for t in self.loss.content)

    # ------------------------------------------------------------------------- TOML out

    def to_toml(self, header: str = "") -> str:
        """The resolved config as TOML that `load_config` reads back to an equal Config
        (written by tomli-w, which escapes every character TOML needs escaped)."""
        import tomli_w

        data = {section: {name: getattr(getattr(self, section), name) for name in names}
                for section, names in _field_types().items()}
        lines = [f"# {_comment_safe(line)}" for line in header.splitlines()] if header else []
        body = tomli_w.dumps(data)
        return "\n".join(lines) + "\n\n" + body if lines else body


def _check_run_name(name: str) -> None:
    """run.name is one folder name under run.dir: `../x` or `/tmp/x` would put the run
    elsewhere, and a control character makes a name no shell shows as typed."""
    if name and (name in (".", "..") or "/" in name or "\\" in name or len(name) > 200
                 or any(c < " " or c == "\x7f" for c in name)):
        raise ConfigError(f"run.name: one folder name (no '/', '..' or control characters; "
                          f"--run-dir chooses any folder), got {short_repr(name)}")


# ----------------------------------------------------------------------------- types


@functools.cache
def _field_types() -> dict[str, dict[str, Any]]:
    """{section: {name: type hint}} from the dataclasses, in declaration order."""
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(Config):
        if f.name == "source":
            continue
        cls = typing.get_type_hints(Config)[f.name]
        out[f.name] = dict(typing.get_type_hints(cls))
    return out


def _split_key(key: str) -> tuple[str, str]:
    types_ = _field_types()
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in types_ or parts[1] not in types_[parts[0]]:
        everything = [f"{s}.{n}" for s, ns in types_.items() for n in ns]
        close = difflib.get_close_matches(key, everything, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown config key {key!r}{hint}")
    return parts[0], parts[1]


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    """tomllib.loads with its failures as ConfigError: nesting deep enough to exhaust Python's
    recursion limit is malformed input too, not a crash."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not a usable config (arrays or tables nested too deeply)"
                          ) from None


def _comment_safe(text: str) -> str:
    """A TOML comment may hold no control character but tab: the others become '?'."""
    return "".join(c if c == "\t" or (c >= " " and c != "\x7f") else "?" for c in text)


# ----------------------------------------------------------------------------- loading


def packaged_configs() -> dict[str, Path]:
    """Names and paths of the configs shipped in the package (srresnet_x4, srgan_x4, ...)."""
    return shipped_files("configs", ".toml")


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A packaged config's name, a run folder (its config.toml) or a TOML file."""
    shipped = packaged_configs()
    path = Path(name_or_path)
    if path.is_dir() and (path / "config.toml").is_file() and str(name_or_path) not in shipped:
        return path / "config.toml"  # a run folder
    found = find_shipped_or_file(name_or_path, shipped)
    if found is not None:
        return found
    names = ", ".join(shipped) or "none"
    raise ConfigError(f"{name_or_path}: no such config file or packaged config (packaged: {names})")


def config_from_dict(raw: dict[str, Any], source: str = "") -> Config:
    """Build a Config from parsed TOML: every key must exist and have the right type."""
    cfg = Config(source=source)
    types_ = _field_types()
    for section, values in raw.items():
        if section not in types_:
            close = difflib.get_close_matches(section, list(types_), n=2)
            hint = f"; did you mean [{close[0]}]?" if close else ""
            raise ConfigError(f"{source}: unknown section [{section}]{hint}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table, got {values!r}")
        for name, value in values.items():
            try:
                cfg.set(f"{section}.{name}", value)
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A packaged config by name (`srresnet_x4`) or a TOML path, then `key=value` overrides."""
    path = resolve_config_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc})") from None
    raw = _parse_toml(text, str(path))
    source = str(name_or_path) if str(name_or_path) in packaged_configs() else str(path)
    cfg = config_from_dict(raw, source=source)
    apply_overrides(cfg, overrides)
    return cfg.validate()


def parse_override(text: str) -> tuple[str, Any]:
    """'train.batch_size=32' -> ('train.batch_size', 32).

    The value is read as a TOML value (numbers, true/false, "strings", [lists], {tables});
    anything that is not valid TOML is taken as a plain string, and `[a,b]` with bare words
    as a list of strings, so shell-friendly `data.train=[dir1,dir2]` works unquoted.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value")
    key, value = text.split("=", 1)
    key, value = key.strip(), value.strip()
    if not key:
        raise ConfigError(f"override {text!r}: empty key")
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    except RecursionError:
        raise ConfigError(f"override {key}=...: value nested too deeply") from None
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1].strip()
        return key, [v.strip().strip("'\"") for v in inner.split(",")] if inner else []
    return key, value


def _is_str_key(key: str) -> bool:
    parts = key.split(".")
    if len(parts) != 2:
        return False
    return _field_types().get(parts[0], {}).get(parts[1]) is str


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    for text in overrides:
        key, value = parse_override(text)
        if not isinstance(value, str) and _is_str_key(key):
            value = text.split("=", 1)[1].strip()  # run.name=2024 is a name, not a number
        try:
            cfg.set(key, value)
        except ConfigError as exc:
            shown = text if len(text) <= 80 else text[:60] + "..."
            raise ConfigError(f"--set {shown}: {exc}") from None
    return cfg
