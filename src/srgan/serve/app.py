"""The web page and HTTP API: a thin layer over `Upscaler` and `srgan.imageio`.

    from srgan.serve.app import create_app
    app = create_app("srresnet_x4")     # then: uvicorn.run(app)

Why it is built the way it is:

* The model runs in a worker thread (one job at a time by default), never on the event loop,
  so the page, /healthz and uploads in progress stay responsive while an image is upscaled.
* Requests wait in a bounded queue; past it they get 503 with Retry-After at once instead of
  piling up memory. The queue is an asyncio semaphore (jobs running) plus a counter (jobs
  admitted), both touched only on the event loop.
* Upload bodies are counted while they arrive (`BodyLimit`): a declared Content-Length over the
  limit is refused before reading anything, a body that grows past it is cut off at the limit,
  and a client that stalls gets 408. Nothing reads an unbounded body into memory.
* Uploads are read and answers encoded in memory (`srgan.imageio.probe_size`, `read_image` on
  the upload's file object, `encode`), with no temporary files. The pixel limit is imageio's:
  `probe_size` applies it from the header before the job is queued (with the output size),
  `read_image` again while it decodes. What the output format loses comes back from `encode`
  as notes, sent in X-Srgan-Warnings.
* Every error is JSON `{"detail": "..."}` with a sentence a person can act on; the page shows it.
  Routes raise `ApiError(status, detail)` for every answer they refuse.
* Seams: upload guards in `limits.py`, the queue in `jobs.py`, Host/Origin checks and security
  headers in `security.py`, the offline Swagger UI in `apidocs.py`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from srgan.serve.apidocs import add_docs
from srgan.serve.jobs import JobCancelled, JobQueue, QueueFull
from srgan.serve.limits import BodyLimit
from srgan.serve.models import ModelEntry, collect_models, default_upscaler_loader
from srgan.serve.security import LOOPBACK_HOSTS, Security
from srgan.weights import ModelFileError

__all__ = ["STATIC_DIR", "ApiError", "BodyLimit", "JobQueue", "QueueFull", "create_app"]

log = logging.getLogger("srgan.serve")

DEFAULT_MAX_PIXELS = 1_000_000  # input pixels; x4 gives 16 MP out
DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_QUEUE = 8  # jobs waiting behind the running ones before 503
OUTSCALE_MIN, OUTSCALE_MAX = 1.0, 8.0
FORMATS = {"png": ("image/png", ".png"), "jpg": ("image/jpeg", ".jpg"),
           "webp": ("image/webp", ".webp")}
FORMAT_ALIASES = {"jpeg": "jpg"}
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the small form fields
STATIC_DIR = Path(str(resources.files("srgan.serve") / "static"))


class ErrorBody(BaseModel):
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown model."},
    408: {"model": ErrorBody, "description": "The upload stalled."},
    413: {"model": ErrorBody, "description": "Upload larger than the server's limit."},
    422: {"model": ErrorBody,
          "description": "Not an image, corrupt, too many pixels, or a bad parameter."},
    503: {"model": ErrorBody, "description": "Queue full (see Retry-After) or out of memory."},
}


# --------------------------------------------------------------------------- the service


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


class ApiError(Exception):
    """An answer other than 200: its status and the sentence sent as `{"detail": ...}`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def __getattr__(name: str) -> Any:
    if name == "BadRequest":  # the old name, also raised for 500 and 503
        warnings.warn("srgan.serve.app.BadRequest is now ApiError; BadRequest goes in the next "
                      "release", DeprecationWarning, stacklevel=2)
        return ApiError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Result:
    payload: bytes
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    seconds: float
    warnings: list[str]


class Service:
    """What the routes share: the models, the loaded upscalers, the limits and the queue."""

    def __init__(self, models: dict[str, ModelEntry], default: str, limits: Limits,
                 queue: JobQueue, loader: Callable[[Path], Any]) -> None:
        self.models = models
        self.default = default
        self.limits = limits
        self.queue = queue
        self.loader = loader
        self._upscalers: dict[str, Any] = {}
        self._load_lock = threading.Lock()

    def upscaler(self, name: str) -> Any:
        """The loaded model (loaded once, on first use, in a worker thread), or the bicubic
        pseudo-model, which has nothing to load."""
        if self.models[name].path is None:
            from srgan.evaluate.methods import Bicubic

            return Bicubic()
        with self._load_lock:
            if name not in self._upscalers:
                path = self.models[name].path
                assert path is not None
                self._upscalers[name] = self.loader(path)
            return self._upscalers[name]

    def loaded(self) -> list[str]:
        return sorted(self._upscalers)

    # ------------------------------------------------------------ checks before queueing
    def probe(self, file: Any, filename: str, entry: ModelEntry,
              outscale: float) -> tuple[int, int]:
        """Size from the header only (nothing decoded): refuse too many pixels in or out."""
        from srgan.imageio import ImageReadError, probe_size

        try:
            w, h = probe_size(file, self.limits.max_pixels, name=filename)
        except ImageReadError as exc:
            raise self._read_error(filename, exc) from None
        from srgan.inference.outscale import output_size

        oh, ow = output_size(h, w, outscale)
        if ow * oh > self.limits.max_output_pixels:
            raise ApiError(
                422, f"{filename}: the output would be {ow}x{oh} = {ow * oh:,} pixels, over "
                f"this server's limit of {self.limits.max_output_pixels:,}; "
                "choose a smaller outscale")
        return w, h

    @staticmethod
    def _read_error(filename: str, exc: Exception) -> ApiError:
        """An upload imageio cannot read, said as this server says it (422)."""
        from srgan.imageio import TooManyPixels

        if isinstance(exc, TooManyPixels):
            w, h = exc.width, exc.height
            return ApiError(422, f"{filename}: image is {w}x{h} = {w * h:,} pixels, over this "
                            f"server's limit of {exc.limit:,}; send a smaller image")
        return ApiError(422, f"{filename}: {getattr(exc, 'reason', exc)}")

    # ------------------------------------------------------------ the job (worker thread)
    def job(self, file: Any, filename: str, entry: ModelEntry, outscale: float,
            fmt: str, tta: bool) -> Result:
        """Upload bytes in, encoded bytes out: read, upscale, encode, all in memory."""
        from srgan.imageio import ImageReadError, ImageWriteError, encode, read_image

        start = time.perf_counter()
        try:
            data = read_image(file, max_pixels=self.limits.max_pixels, name=filename)
        except ImageReadError as exc:
            raise self._read_error(filename, exc) from None
        try:
            up = self.upscaler(entry.name)
        except ModelFileError as exc:  # the file changed or vanished since start-up
            raise ApiError(500, f"model {entry.name!r} cannot be loaded: {exc}") from None
        scale = None if outscale == up.scale else outscale
        try:
            result = up.upscale_image(data, outscale=scale, tta=tta)
        except (MemoryError, _OutOfMemory) as exc:
            raise ApiError(503, f"{filename}: out of memory while upscaling "
                           f"({type(exc).__name__}); try a smaller image") from None
        notes = list(result.warnings)
        try:
            payload = encode(result, fmt, notes=notes)
        except ImageWriteError as exc:
            raise ApiError(422, f"{filename}: cannot write {fmt}: {exc.reason}") from None
        return Result(payload, (data.width, data.height), (result.width, result.height),
                      time.perf_counter() - start, notes)


try:
    from torch import OutOfMemoryError as _OutOfMemory
except ImportError:  # older torch
    from torch.cuda import OutOfMemoryError as _OutOfMemory


def _safe_stem(filename: str) -> str:
    """The file name's stem with letters and digits of any script kept, everything else
    (separators, quotes, controls, bidi overrides) turned into '_'."""
    stem = Path(unicodedata.normalize("NFC", filename or "image").replace("\\", "/")).stem
    kept = "".join(ch if ch in "._-" or unicodedata.category(ch)[0] in "LN" else "_"
                   for ch in stem)
    return re.sub(r"_+", "_", kept).strip("._")[:80] or "image"


def content_disposition(name: str) -> str:
    """`inline` with an ASCII fallback name and the real one in RFC 5987 form."""
    ascii_name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9._-]", "_", name)).strip("_") or "image"
    if ascii_name == name:
        return f'inline; filename="{name}"'
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _header_text(text: str, limit: int = 400) -> str:
    clean = text.encode("ascii", "replace").decode("ascii")
    return re.sub(r"[\x00-\x1f\x7f]", " ", clean)[:limit]


# --------------------------------------------------------------------------- the app


def create_app(
    models: str | Path | Sequence[str | Path] | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    tile: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_output_pixels: int | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    workers: int = 1,
    queue_size: int = DEFAULT_QUEUE,
    idle_timeout: float = 30.0,
    upload_timeout: float = 300.0,
    preload: bool = False,
    loader: Callable[[Path], Any] | None = None,
    allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS,
    allowed_origins: Sequence[str] = (),
) -> FastAPI:
    """The FastAPI app: page at /, API under /v1, /healthz, OpenAPI at /docs.

    `models`: shipped model names and/or .safetensors files (the first is the default);
    None serves every shipped model. `max_pixels` limits the input image, `max_output_pixels`
    (default 16 x max_pixels) the result. `workers` jobs run at once, `queue_size` more wait;
    beyond that 503. `idle_timeout`/`upload_timeout` (s) end stalled uploads with 408.
    `preload` loads the default model at start-up. `loader(path)` returns an object with
    `.scale` and `.upscale_image(ImageData, outscale, tta)` (default: `Upscaler`).
    `allowed_hosts`: Host header names accepted besides loopback ones (None: any host);
    `allowed_origins`: other origins whose pages may call the API.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be > 0, got {max_upload_mb}")
    entries = collect_models(models)
    default = next(iter(entries))
    limits = Limits(
        max_pixels=max_pixels,
        max_output_pixels=max_output_pixels or 16 * max_pixels,
        max_upload_bytes=int(max_upload_mb * 2**20),
    )
    queue = JobQueue(workers, queue_size)
    service = Service(entries, default, limits, queue,
                      loader or default_upscaler_loader(device, precision, tile))

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if preload:
            await run_in_threadpool(service.upscaler, default)
        yield
        queue.shutdown()

    app = FastAPI(
        title="srgan",
        summary="Photo-realistic x4 super-resolution (SRResNet / SRGAN, Ledig et al. 2017).",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(BodyLimit, limit=limits.max_upload_bytes, overhead=MULTIPART_OVERHEAD,
                       idle_timeout=idle_timeout, total_timeout=upload_timeout)
    # outermost, so its checks come first and its headers reach every answer (413s too)
    app.add_middleware(Security, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_docs(app)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the server is busy ({queue.capacity} jobs running or waiting); "
                       f"try again in {exc.retry_after} s"},
            status_code=503, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(JobCancelled)
    async def cancelled(request: Request, exc: JobCancelled) -> JSONResponse:
        return JSONResponse({"detail": "cancelled by the client before it ran"},
                            status_code=409)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_text(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); the server logged it"},
            status_code=500)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon")

    @app.get("/healthz", summary="Liveness and queue state")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": _version(), "queue": queue.stats(),
                "models_loaded": service.loaded()}

    @app.get("/v1/models", summary="The models served, their scale and card, and the limits")
    async def get_models() -> dict[str, Any]:
        return {
            "default": default,
            "models": [e.describe(default) for e in entries.values()],
            "limits": limits.describe(),
        }

    @app.get("/v1/queue/{ticket}", summary="Where a job sent with this ticket stands")
    async def queue_position(ticket: str) -> dict[str, Any]:
        return queue.position(ticket)

    @app.delete("/v1/queue/{ticket}", summary="Withdraw a job that is still waiting")
    async def queue_cancel(ticket: str) -> dict[str, Any]:
        return {"state": queue.cancel(ticket)}

    @app.post(
        "/v1/upscale",
        summary="Upscale one image",
        response_class=Response,
        responses={200: {"content": {m: {} for m, _ in FORMATS.values()},
                         "description": "The upscaled image."},
                   409: {"model": ErrorBody, "description": "Withdrawn by its client."},
                   **ERROR_RESPONSES},
    )
    async def upscale(
        request: Request,
        image: Annotated[UploadFile, File(description="The image (PNG, JPEG, WebP, ...).")],
        model: Annotated[str | None, Form(description="A name from /v1/models; "
                                          "'bicubic' for plain interpolation.")] = None,
        outscale: Annotated[float | None, Form(
            ge=OUTSCALE_MIN, le=OUTSCALE_MAX, allow_inf_nan=False,
            description="Final scale factor (default: the model's own, e.g. 4).")] = None,
        format: Annotated[Literal["png", "jpg", "jpeg", "webp"], Form(
            description="Output format (jpeg = jpg).")] = "png",
        tta: Annotated[bool, Form(description="x8 self-ensemble: 8x slower, "
                                  "slightly better.")] = False,
        ticket: Annotated[str | None, Form(
            max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
            description="Any id of yours: GET/DELETE /v1/queue/{ticket} then tells where "
                        "the job stands or withdraws it.")] = None,
    ) -> Response:
        form = await request.form()  # parsed once already; this is the cached copy
        repeated = sorted({k for k in form if len(form.getlist(k)) > 1})
        if repeated:
            raise ApiError(422, f"{', '.join(repeated)}: sent more than once; "
                           "send one image (and each field once) per request")
        fmt = FORMAT_ALIASES.get(format, format)
        name = model or default
        entry = entries.get(name)
        if entry is None:
            raise ApiError(404, f"unknown model {name!r}; this server has: "
                           f"{', '.join(entries)}")
        scale = float(outscale if outscale is not None else (entry.scale or 4))
        filename = (image.filename or "upload")[:200]
        queue.check()
        await run_in_threadpool(service.probe, image.file, filename, entry, scale)
        result: Result = await queue.run(service.job, image.file, filename, entry, scale,
                                         fmt, tta, ticket=ticket)
        media, ext = FORMATS[fmt]
        suffix = "" if entry.path is not None else "_bicubic"
        out_name = f"{_safe_stem(filename)}{suffix}_x{scale:g}{ext}"
        headers = {
            "Content-Disposition": content_disposition(out_name),
            "X-Srgan-Model": name,
            "X-Srgan-Input-Size": "{}x{}".format(*result.in_size),
            "X-Srgan-Output-Size": "{}x{}".format(*result.out_size),
            "X-Srgan-Seconds": f"{result.seconds:.3f}",
            "Cache-Control": "no-store",
        }
        if result.warnings:
            headers["X-Srgan-Warnings"] = _header_text("; ".join(result.warnings))
        return Response(result.payload, media_type=media, headers=headers)

    return app


def _validation_text(exc: RequestValidationError) -> str:
    """FastAPI's list of problems as one readable sentence per problem."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        msg = err.get("msg", "invalid")
        if loc == "image" and err.get("type") == "missing":
            msg = "no image uploaded (send it as the multipart file field 'image')"
        elif loc == "image":
            msg = "expected a file, got a text value (send the image as a multipart file)"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines) or "invalid request"


def _version() -> str:
    from srgan import __version__

    return __version__
