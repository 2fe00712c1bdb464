"""The web page and HTTP API: a thin layer over `Upscaler` and `srgan.imageio`.

    from srgan.serve.app import create_app
    app = create_app("srresnet_x4")     # then: uvicorn.run(app)

Why it is built the way it is:

* Every upscale is a job the server issues (`jobs.py`): POST answers with its id at once (or,
  asked to wait, with the image), the model runs in worker threads, never on the event loop,
  so the page, /healthz and uploads in progress stay responsive while an image is upscaled.
* Jobs wait in a bounded FIFO line that holds the uploads' bytes and probed sizes, not decoded
  images; only past its bounds is a job refused (503 with Retry-After).
* Upload bodies are counted while they arrive (`BodyLimit`): a declared Content-Length over the
  limit is refused before reading anything, a body that grows past it is cut off at the limit,
  and a client that stalls gets 408. Nothing reads an unbounded body into memory.
* Every error is JSON `{"detail": "..."}` with a sentence a person can act on; the page shows it.
  Routes raise `ApiError(status, detail)` for every answer they refuse.
* Seams: the job's parameters in `params.py`, the work in `service.py`, the job routes in
  `routes_jobs.py`, upload guards in `limits.py`, the queue in `jobs.py`, Host/Origin checks
  and security headers in `security.py`, HEAD and the quiet access log in `middleware.py`,
  the offline Swagger UI in `apidocs.py`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from srgan.serve.apidocs import add_docs
from srgan.serve.defaults import (
    DEFAULT_JOB_LEASE,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_QUEUE,
    DEFAULT_QUEUE_MB,
    DEFAULT_UPLOAD_DEADLINE,
    DEFAULT_UPLOAD_TIMEOUT,
    UPLOAD_MAX_PIXELS,
)
from srgan.serve.jobs import JobQueue, QueueFull
from srgan.serve.limits import BodyLimit
from srgan.serve.middleware import HeadAsGet, QuietPolls
from srgan.serve.models import collect_models, default_upscaler_loader
from srgan.serve.routes_jobs import add_job_routes
from srgan.serve.security import LOOPBACK_HOSTS, Security
from srgan.serve.service import ApiError, Limits, Service, content_disposition

__all__ = ["STATIC_DIR", "ApiError", "BodyLimit", "JobQueue", "QueueFull",
           "content_disposition", "create_app"]

log = logging.getLogger("srgan.serve")

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the small form fields
STATIC_DIR = Path(str(resources.files("srgan.serve") / "static"))


class ErrorBody(BaseModel):
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown model, or no such job."},
    408: {"model": ErrorBody, "description": "The upload stalled."},
    413: {"model": ErrorBody, "description": "Upload larger than the server's limit."},
    422: {"model": ErrorBody,
          "description": "Not an image, corrupt, too many pixels, or a bad parameter."},
    503: {"model": ErrorBody, "description": "Queue full (see Retry-After) or out of memory."},
}


def create_app(
    models: str | Path | Sequence[str | Path] | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    tile: int | None = None,
    max_pixels: int = UPLOAD_MAX_PIXELS,
    max_output_pixels: int | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    workers: int = 1,
    queue_size: int = DEFAULT_QUEUE,
    queue_mb: float = DEFAULT_QUEUE_MB,
    job_lease: float = DEFAULT_JOB_LEASE,
    upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT,
    upload_deadline: float = DEFAULT_UPLOAD_DEADLINE,
    preload: bool = False,
    loader: Callable[[Path], Any] | None = None,
    allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS,
    allowed_origins: Sequence[str] = (),
) -> FastAPI:
    """The FastAPI app: page at /, API under /v1, /healthz, OpenAPI at /docs.

    `models`: shipped model names and/or .safetensors files (the first is the default);
    None serves every shipped model. `max_pixels` limits the input image, `max_output_pixels`
    (default 16 x max_pixels) the result. `workers` jobs run at once, `queue_size` more wait
    (holding at most `queue_mb` of uploads); beyond that 503. A job nobody asks about for
    `job_lease` s is dropped. An upload that sends nothing for `upload_timeout` s, or takes
    longer than `upload_deadline` s in all, ends with 408. `preload` loads the default model
    at start-up. `loader(path)` returns an object with `.scale` and `.upscale(ImageData,
    outscale, tta=, progress=)` (default: `Upscaler`).
    `allowed_hosts`: Host header names accepted besides loopback ones (None: any host);
    `allowed_origins`: other origins whose pages may call the API.
    """
    for name, value in (("max_upload_mb", max_upload_mb), ("queue_mb", queue_mb)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    entries = collect_models(models)
    default = next(iter(entries))
    limits = Limits(max_pixels=max_pixels,
                    max_output_pixels=max_output_pixels or 16 * max_pixels,
                    max_upload_bytes=int(max_upload_mb * 2**20))
    queue = JobQueue(workers, queue_size, int(queue_mb * 2**20), job_lease)
    service = Service(entries, default, limits, queue,
                      loader or default_upscaler_loader(device, precision, tile))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        quiet = QuietPolls.install()
        if preload:
            await run_in_threadpool(service.upscaler, default)
        yield
        quiet.remove()
        queue.shutdown()

    app = FastAPI(title="srgan", version=_version(), lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  summary="Photo-realistic x4 super-resolution (SRResNet / SRGAN, Ledig et "
                          "al. 2017).")
    app.state.service = service
    app.add_middleware(BodyLimit, limit=limits.max_upload_bytes, overhead=MULTIPART_OVERHEAD,
                       upload_timeout=upload_timeout, upload_deadline=upload_deadline)
    app.add_middleware(HeadAsGet)
    # outermost, so its checks come first and its headers reach every answer (413s too)
    app.add_middleware(Security, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_docs(app)
    _add_error_handlers(app, queue)
    _add_info_routes(app, service)
    add_job_routes(app, service, ERROR_RESPONSES)
    return app


def _add_error_handlers(app: FastAPI, queue: JobQueue) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the server is busy ({exc.reason}); try again in {exc.retry_after} s"},
            status_code=503, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_text(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); the server logged it"},
            status_code=500)


def _add_info_routes(app: FastAPI, service: Service) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon")

    @app.get("/healthz", summary="Liveness and queue state")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": _version(), "queue": service.queue.stats(),
                "models_loaded": service.loaded()}

    @app.get("/v1/models", summary="The models served (name, scale, summary) and the limits")
    async def get_models() -> dict[str, Any]:
        return {
            "default": service.default,
            "models": [{**e.describe(service.default),
                        "denoise": e.name in service.context.denoise_models}
                       for e in service.models.values()],
            "limits": service.limits.describe(),
            "denoise": service.describe_denoise(),
        }


def _validation_text(exc: RequestValidationError) -> str:
    """FastAPI's list of problems as one readable sentence per problem."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = err.get("msg", "invalid")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines) or "invalid request"


def _version() -> str:
    from srgan import __version__

    return __version__
