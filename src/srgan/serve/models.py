"""The models a server offers: shipped names or files, read at start-up, plus the bicubic
pseudo-model (`srgan.evaluate.methods.Bicubic`, the benchmarks' baseline too)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srgan import packaged
from srgan.evaluate.methods import BICUBIC, BICUBIC_DESCRIPTION
from srgan.packaged import DEFAULT_MODEL, PLAIN_WORDS
from srgan.weights import ModelFileError, list_models, read_metadata, resolve_model


@dataclass
class ModelEntry:
    name: str
    path: Path | None  # None for the bicubic pseudo-model
    scale: int | None
    card: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        if self.name in PLAIN_WORDS:
            return PLAIN_WORDS[self.name]
        text = str(self.card.get("extra", {}).get("summary") or self.card.get("description", ""))
        return text.split(". ")[0].rstrip(".") + "." if text else ""

    def describe(self, default: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "interpolation" if self.path is None else "network",
            "scale": self.scale,
            "default": self.name == default,
            "summary": self.summary(),
        }


def collect_models(models: str | Path | Sequence[str | Path] | None) -> dict[str, ModelEntry]:
    """Name -> entry for the models to serve: the given names/files, or every shipped model.

    Each file's metadata is read now, so a bad model file stops the server at start-up
    instead of failing the first request."""
    if models is None:  # the default model first: the first entry is the server's default
        items: list[str | Path] = sorted(list_models(), key=lambda n: n != DEFAULT_MODEL)
    elif isinstance(models, str | Path):
        items = [models]
    else:
        items = list(models)
    entries: dict[str, ModelEntry] = {}
    for item in items:
        path = resolve_model(item)
        name = item if isinstance(item, str) and item in list_models() else path.stem
        if name == BICUBIC:
            raise ModelFileError(f"{path}: the model name {BICUBIC!r} is reserved")
        base, n = name, 2
        while name in entries:
            name, n = f"{base}-{n}", n + 1
        config, card = read_metadata(path)
        entries[name] = ModelEntry(
            name, path, config.scale, dataclasses.asdict(card),
            {"arch": config.arch, "num_blocks": config.num_blocks, "channels": config.channels},
        )
    if not entries:
        raise ModelFileError(
            "no models to serve: none ship with this installation; pass --model FILE"
        )
    entries[BICUBIC] = ModelEntry(
        BICUBIC, None, None,
        {"name": BICUBIC, "description": BICUBIC_DESCRIPTION, "training": "", "extra": {}},
        {},
    )
    return entries


def denoise_offer(entries: dict[str, ModelEntry]) -> tuple[tuple[str | None, str | None], str]:
    """((the served name of the clean and of the real model of the pair, None where not
    served), why none when neither is): offered only when
    both models of `srgan.packaged.DENOISE_MODELS` are installed and this server serves one
    of them (a server started for other models does not blend models it does not serve)."""
    pair = packaged.DENOISE_MODELS
    paths = []
    for name in pair:
        try:
            paths.append(resolve_model(name).resolve())
        except ModelFileError:
            return (None, None), (f"it blends {pair[0]} and {pair[1]}, and "
                                  f"{Path(name).stem} is not installed")
    served = {e.path.resolve(): n for n, e in entries.items() if e.path is not None}
    ends = (served.get(paths[0]), served.get(paths[1]))
    if ends == (None, None):
        return ends, f"it blends {pair[0]} and {pair[1]}, and this server serves neither"
    return ends, ""


# On a CPU the automatic tile (~750 px) cuts a 1000x1000 upload into 4 tiles of a minute or
# more each; the page's progress bar moves per tile, so the server caps it and runs one tile
# per pass (about 10% more work for the extra context around smaller tiles).
SERVER_CPU_TILE = 384


def default_upscaler_loader(
    device: str, precision: str, tile: int | None
) -> Callable[[Path], Any]:
    def load(path: Path, denoise: float | None = None) -> Any:
        """The model at `path`, or (`denoise`) the denoise pair blended at that strength."""
        from srgan.inference import Upscaler

        up = Upscaler.from_pretrained(path, device=device, precision=precision, tile=tile,
                                      denoise=denoise)
        if tile is None and up.device.type == "cpu" and up.tile > SERVER_CPU_TILE:
            up.tile, up.batch = SERVER_CPU_TILE, 1  # plain settings, read per image
        return up

    return load


