"""What the routes share: the models, the loaded upscalers, the limits, the queue, and the
work of one job (decode, upscale tile by tile, encode), all in memory.

The pixel limit is imageio's: `probe_size` applies it from the header before the job is
queued (with the output size), `read_image` again while it decodes. What the output format
loses comes back from `encode` as notes, sent in X-Srgan-Warnings.
"""

from __future__ import annotations

import inspect
import io
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from srgan.serve.jobs import Job, JobQueue
from srgan.serve.models import ModelEntry, denoise_offer
from srgan.serve.params import (
    DENOISE_STEP,
    FORMATS,
    OUTSCALE_MAX,
    OUTSCALE_MIN,
    Context,
    JobParams,
)
from srgan.weights import ModelFileError

BLENDS_KEPT = 4  # denoise strengths whose blended model stays loaded


class ApiError(Exception):
    """An answer other than 200: its status and the sentence sent as `{"detail": ...}`."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


@dataclass
class Limits:
    max_pixels: int
    max_output_pixels: int
    max_upload_bytes: int

    def describe(self) -> dict[str, Any]:
        return {
            "max_pixels": self.max_pixels,
            "max_output_pixels": self.max_output_pixels,
            "max_upload_bytes": self.max_upload_bytes,
            "outscale": [OUTSCALE_MIN, OUTSCALE_MAX],
            "formats": list(FORMATS),
        }


@dataclass
class Result:
    payload: bytes
    media_type: str
    filename: str
    seconds: float
    warnings: list[str]


try:
    from torch import OutOfMemoryError as _OutOfMemory
except ImportError:  # older torch
    from torch.cuda import OutOfMemoryError as _OutOfMemory


class Service:
    def __init__(self, models: dict[str, ModelEntry], default: str, limits: Limits,
                 queue: JobQueue, loader: Callable[[Path], Any]) -> None:
        self.models = models
        self.default = default
        self.limits = limits
        self.queue = queue
        self.loader = loader
        self.denoise_ends, missing = denoise_offer(models)
        self.context = Context({n: e.scale for n, e in models.items()}, default,
                               frozenset(n for n in self.denoise_ends if n), missing)
        self._upscalers: dict[str, Any] = {}
        self._blends: OrderedDict[float, Any] = OrderedDict()  # strength -> blended model
        self._load_lock = threading.Lock()
        queue.runner = self.run
        queue.error_of = error_of

    def upscaler(self, name: str, denoise: float | None = None) -> Any:
        """The loaded model (loaded once, on first use, in a worker thread), or the bicubic
        pseudo-model, which has nothing to load; with `denoise`, the denoise pair blended at
        that strength (the last BLENDS_KEPT strengths stay loaded)."""
        if self.models[name].path is None:
            from srgan.evaluate.methods import Bicubic

            return Bicubic()
        if denoise is not None:
            return self._blend(name, denoise)
        with self._load_lock:
            if name not in self._upscalers:
                path = self.models[name].path
                assert path is not None
                self._upscalers[name] = self.loader(path)
            return self._upscalers[name]

    def _blend(self, name: str, strength: float) -> Any:
        with self._load_lock:
            if strength in self._blends:
                self._blends.move_to_end(strength)
            else:
                self._blends[strength] = self.loader(self.models[name].path, denoise=strength)
                while len(self._blends) > BLENDS_KEPT:
                    self._blends.popitem(last=False)
            return self._blends[strength]

    def is_loaded(self, p: JobParams) -> bool:
        if self.models[p.model].path is None:
            return True
        return p.denoise in self._blends if p.denoise is not None else p.model in self._upscalers

    def loaded(self) -> list[str]:
        return sorted(self._upscalers)

    def describe_denoise(self) -> dict[str, Any]:
        """/v1/models' `denoise` capability: whether a strength may be sent, with which
        models, and why not when not."""
        ctx = self.context
        return {"available": bool(ctx.denoise_models), "models": sorted(ctx.denoise_models),
                "ends": list(self.denoise_ends),  # the models at 0 and at 1, where served
                "minimum": 0.0, "maximum": 1.0, "step": DENOISE_STEP,
                "detail": ("0 keeps fine texture (and the noise), 1 removes noise, JPEG "
                           "blocks and blur the most" if ctx.denoise_models
                           else f"not offered: {ctx.denoise_missing}")}

    def work(self, params: JobParams, in_size: tuple[int, int]) -> int:
        """The pixels a job's tiles will read, if its model is loaded (else 0: unknown)."""
        up = (self._upscalers.get(params.model) if params.denoise is None
              else self._blends.get(params.denoise))
        return 0 if up is None else work_pixels(up, in_size[1], in_size[0])

    # ------------------------------------------------------------ checks before queueing
    def probe(self, data: bytes, filename: str, params: JobParams
              ) -> tuple[tuple[int, int], tuple[int, int]]:
        """(input, output) sizes from the header only (nothing decoded): refuse too many
        pixels in or out."""
        from srgan.imageio import ImageReadError, probe_size
        from srgan.inference.outscale import output_size

        try:
            w, h = probe_size(io.BytesIO(data), self.limits.max_pixels, name=filename)
        except ImageReadError as exc:
            raise read_error(filename, exc) from None
        oh, ow = output_size(h, w, params.outscale)
        if ow * oh > self.limits.max_output_pixels:
            raise ApiError(
                422, f"{filename}: the output would be {ow}x{oh} = {ow * oh:,} pixels, over "
                f"this server's limit of {self.limits.max_output_pixels:,}; "
                "choose a smaller outscale")
        return (w, h), (ow, oh)

    # ------------------------------------------------------------ the job (worker thread)
    def run(self, job: Job) -> Result:
        """Upload bytes in, encoded bytes out: read, upscale (reporting each tile), encode."""
        import time

        from srgan.imageio import ImageReadError, ImageWriteError, encode, read_image

        start = time.perf_counter()
        p: JobParams = job.params
        assert job.upload is not None
        try:
            data = read_image(io.BytesIO(job.upload), max_pixels=self.limits.max_pixels,
                              name=job.filename)
        except ImageReadError as exc:
            raise read_error(job.filename, exc) from None
        job.upload = None  # the decoded pixels are what counts now
        if not self.is_loaded(p):
            self.queue.enter(job, "loading")
        try:
            up = self.upscaler(p.model, p.denoise)
        except ModelFileError as exc:  # the file changed or vanished since start-up
            raise ApiError(500, f"model {p.model!r} cannot be loaded: {exc}") from None
        channels = data.pixels.shape[2] if data.pixels.ndim == 3 else 1
        tiles = up.tiles_for(data.height, data.width, channels) if hasattr(up, "tiles_for") \
            else 1
        self.queue.start_tiles(job, tiles, work_pixels(up, data.height, data.width, channels))
        scale = None if p.outscale == up.scale else p.outscale
        kwargs: dict[str, Any] = {"outscale": scale, "tta": p.tta}
        if _takes_progress(up):
            kwargs["progress"] = lambda n: self.queue.progress(job, n)
        try:
            result = up.upscale(data, **kwargs)
        except (MemoryError, _OutOfMemory) as exc:
            raise ApiError(503, f"{job.filename}: out of memory while upscaling "
                           f"({type(exc).__name__}); try a smaller image") from None
        if "progress" not in kwargs:
            self.queue.progress(job, tiles)
        self.queue.end_tiles(job)
        notes = list(result.warnings)
        try:
            payload = encode(result, p.format, notes=notes)
        except ImageWriteError as exc:
            raise ApiError(422, f"{job.filename}: cannot write {p.format}: {exc.reason}"
                           ) from None
        job.out_size = (result.width, result.height)
        return Result(payload, FORMATS[p.format][0], self.result_name(job.filename, p),
                      time.perf_counter() - start, notes)

    def result_name(self, filename: str, p: JobParams) -> str:
        """`photo_x4.png` for the default model; another model's name is in the name
        (`photo_srgan_mse_x4.png`, `photo_bicubic_x4.png`), so two results never clash."""
        scale = f"x{p.outscale:g}"
        middle = "" if p.model == self.default else f"_{p.model}"
        if p.denoise is not None:
            middle += f"_denoise{p.denoise:g}"
        if not middle.endswith(f"_{scale}"):
            middle += f"_{scale}"
        return f"{safe_stem(filename)}{middle}{FORMATS[p.format][1]}"


def work_pixels(up: Any, height: int, width: int, channels: int = 3) -> int:
    """Pixels the network reads for an image: its tiles' windows with the context around
    them (a large image's ~30 % more than its own pixels), alpha as a second pass; 0 when
    the upscaler does not say how it tiles."""
    if not hasattr(up, "iter_tiles"):
        return 0
    per_plane = sum((t.py1 - t.py0) * (t.px1 - t.px0) for t in up.iter_tiles(height, width))
    return per_plane * (2 if channels in (2, 4) else 1)


def _takes_progress(up: Any) -> bool:
    try:
        return "progress" in inspect.signature(up.upscale).parameters
    except (TypeError, ValueError):
        return False


def read_error(filename: str, exc: Exception) -> ApiError:
    """An upload imageio cannot read, said as this server says it (422)."""
    from srgan.imageio import TooManyPixels

    if isinstance(exc, TooManyPixels):
        w, h = exc.width, exc.height
        return ApiError(422, f"{filename}: image is {w}x{h} = {w * h:,} pixels, over this "
                        f"server's limit of {exc.limit:,}; send a smaller image")
    return ApiError(422, f"{filename}: {getattr(exc, 'reason', exc)}")


def error_of(exc: BaseException) -> tuple[int, str]:
    """A failed job's (status, sentence): ApiErrors as they are, anything else a logged 500."""
    if isinstance(exc, ApiError):
        return exc.status, exc.detail
    import logging

    logging.getLogger("srgan.serve").error("job failed", exc_info=exc)
    return 500, f"internal error ({type(exc).__name__}); the server logged it"


def safe_stem(filename: str) -> str:
    """The file name's stem with letters and digits of any script kept, everything else
    (separators, quotes, controls, bidi overrides) turned into '_'."""
    stem = Path(unicodedata.normalize("NFC", filename or "image").replace("\\", "/")).stem
    kept = "".join(ch if ch in "._-" or unicodedata.category(ch)[0] in "LN" else "_"
                   for ch in stem)
    return re.sub(r"_+", "_", kept).strip("._")[:80] or "image"


def ascii_name(name: str) -> str:
    """An ASCII stand-in for a file name: accents dropped from their letters (été -> ete),
    other characters turned into '_'."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", name)
                    if not unicodedata.combining(ch))
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9._-]", "_", plain)).strip("_") or "image"


def content_disposition(name: str, kind: str = "inline") -> str:
    """`inline` with an ASCII fallback name and the real one in RFC 5987 form."""
    fallback = ascii_name(name)
    if fallback.startswith("."):
        fallback = "image" + fallback
    if fallback == name:
        return f'{kind}; filename="{name}"'
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def header_text(text: str, limit: int = 400) -> str:
    clean = text.encode("ascii", "replace").decode("ascii")
    return re.sub(r"[\x00-\x1f\x7f]", " ", clean)[:limit]
