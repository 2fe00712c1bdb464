"""The job routes: POST /v1/upscale makes a job (202 with its id, or with `?wait=true` /
`Prefer: wait` the image itself), GET /v1/jobs/{id} says where it stands, GET
/v1/jobs/{id}/result gives the image, DELETE /v1/jobs/{id} cancels it.

The id is the only key: nothing lists jobs, and a job is found by its id alone."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from srgan.serve import params as P
from srgan.serve.jobs import CANCELLED, DONE, FAILED, FINISHED, Job
from srgan.serve.service import ApiError, Result, Service, content_disposition, header_text

WAIT_STEP = 0.05  # s between looks at a job a synchronous request waits for


def add_job_routes(app: FastAPI, service: Service, error_responses: dict) -> None:
    queue = service.queue

    @app.post("/v1/upscale", summary="Upscale one image (a job; or the image, with wait)",
              status_code=202, response_class=Response,
              openapi_extra={"requestBody": P.openapi_body(service.context),
                             "parameters": _wait_parameters()},
              responses={200: {"content": {m: {} for m, _ in P.FORMATS.values()},
                               "description": "With wait: the upscaled image."},
                         202: {"description": "The job, with its id; poll GET /v1/jobs/{id}."},
                         409: {"description": "With wait: the job was cancelled."},
                         **error_responses})
    async def upscale(request: Request) -> Response:
        queue.check()  # a full queue is said before the upload is read
        async with request.form() as form:
            image, params = _read_form(form, request, service)
            filename = (image.filename or "upload")[:200]
            data = await image.read()
        in_size, out_size = await run_in_threadpool(service.probe, data, filename, params)
        key = f"{params.model}{'+tta' if params.tta else ''}"
        job = queue.submit(params, filename, data, in_size, out_size, key,
                           service.work(params, in_size))
        wait = _wait_seconds(request)
        if wait is None:
            return JSONResponse(job_view(service, job, request), status_code=202,
                                headers={"Location": _path(request, job.id)})
        return await _wait_for(service, job, request, wait)

    @app.get("/v1/jobs/{job_id}", summary="Where a job stands: state, position, progress, "
             "ETA, and its result once done", responses={404: error_responses[404]})
    async def get_job(job_id: str, request: Request) -> JSONResponse:
        job = _find(service, job_id)
        return JSONResponse(job_view(service, job, request),
                            headers={"Cache-Control": "no-store"})

    @app.get("/v1/jobs/{job_id}/result", summary="The upscaled image of a finished job",
             response_class=Response,
             responses={200: {"content": {m: {} for m, _ in P.FORMATS.values()},
                              "description": "The upscaled image."},
                        404: error_responses[404],
                        409: {"description": "Not finished yet, or cancelled."}})
    async def get_result(job_id: str, request: Request) -> Response:
        return _result_response(_find(service, job_id))

    @app.delete("/v1/jobs/{job_id}", summary="Cancel a job: a waiting one leaves the queue "
                "at once, a running one stops at its next tile",
                responses={404: error_responses[404]})
    async def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
        _find(service, job_id, touch=False)
        job = queue.cancel(job_id)
        if job is None:
            raise ApiError(404, _gone(job_id))
        state = {CANCELLED: "cancelled", "running": "cancelling"}.get(job.state, "deleted")
        return {"id": job.id, "state": state}


def _wait_parameters() -> list[dict[str, Any]]:
    return [
        {"name": "wait", "in": "query", "required": False,
         "schema": {"type": "boolean", "default": False},
         "description": "true: answer with the image once it is done (a synchronous call) "
                        "instead of with the job."},
        {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "`wait` does what ?wait=true does; `wait=N`: at most N seconds, "
                        "then the job (202)."},
    ]


def _read_form(form: Any, request: Request, service: Service) -> tuple[UploadFile, Any]:
    items = list(form.multi_items())
    repeated = sorted({k for k, _ in items if len(form.getlist(k)) > 1})
    if repeated:
        raise ApiError(422, f"{', '.join(repeated)}: sent more than once; send one image (and "
                       "each field once) per request")
    image = form.get("image")
    if image is None:
        raise ApiError(422, "image: no image uploaded (send it as the multipart file field "
                       "'image')")
    if not isinstance(image, UploadFile):
        raise ApiError(422, "image: expected a file, got a text value (send the image as a "
                       "multipart file)")
    try:
        params = P.parse(items, request.query_params.multi_items(), service.context)
    except P.ParamError as exc:
        raise ApiError(exc.status, exc.detail) from None
    return image, params


def _wait_seconds(request: Request) -> float | None:
    """None: answer with the job now; inf: wait for the image; N: wait at most N s."""
    wait = request.query_params.get("wait")
    if wait is not None:
        value = wait.strip().lower()
        if value in P.TRUE or value == "":
            return math.inf
        if value in P.FALSE:
            return None
        raise ApiError(422, f"wait: {wait[:40]!r} is not true or false")
    for pref in request.headers.get("prefer", "").split(","):
        name, _, value = pref.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                seconds = float(value) if value.strip() else math.inf
            except ValueError:
                return math.inf
            return seconds if seconds > 0 else None
    return None


async def _wait_for(service: Service, job: Job, request: Request, seconds: float) -> Response:
    """Hold the request until the job ends (or `seconds` pass); a client that hangs up
    cancels its job."""
    deadline = time.monotonic() + seconds
    while job.state not in FINISHED:
        if await request.is_disconnected():
            service.queue.cancel(job.id, "the client hung up")
            return Response(status_code=499)
        if time.monotonic() > deadline:
            return JSONResponse(job_view(service, job, request), status_code=202,
                                headers={"Location": _path(request, job.id)})
        service.queue.get(job.id)  # seen: a waiting client is not an abandoned one
        await asyncio.sleep(WAIT_STEP)
    return _result_response(job)


def _result_response(job: Job) -> Response:
    if job.state == FAILED and job.error is not None:
        status, detail = job.error
        raise ApiError(status, detail)
    if job.state == CANCELLED:
        raise ApiError(409, f"the job was cancelled ({job.cancel_reason or 'cancelled'}); "
                       "nothing was made")
    if job.state != DONE or job.result is None:
        raise ApiError(409, f"the job is not finished yet (it is {job.state}); ask "
                       "GET /v1/jobs/{id} until its state is done")
    result: Result = job.result
    headers = {
        "Content-Disposition": content_disposition(result.filename),
        "X-Srgan-Job": job.id,
        "X-Srgan-Model": job.params.model,
        "X-Srgan-Input-Size": "{}x{}".format(*job.in_size),
        "X-Srgan-Output-Size": "{}x{}".format(*job.out_size),
        "X-Srgan-Seconds": f"{result.seconds:.3f}",
        "Cache-Control": "no-store",
    }
    if result.warnings:
        headers["X-Srgan-Warnings"] = header_text("; ".join(result.warnings))
    return Response(result.payload, media_type=result.media_type, headers=headers)


def _find(service: Service, job_id: str, touch: bool = True) -> Job:
    job = service.queue.get(job_id, touch=touch) if len(job_id) == 32 else None
    if job is None:
        raise ApiError(404, _gone(job_id))
    return job


def _gone(job_id: str) -> str:
    shown = job_id.encode("ascii", "replace").decode()[:40]
    return (f"no job {shown!r} here: the id is wrong, or the job was cancelled, or its "
            "result expired (a job nobody asks about for a while is dropped)")


def _path(request: Request, job_id: str, tail: str = "") -> str:
    return f"{request.scope.get('root_path', '')}/v1/jobs/{job_id}{tail}"


def job_view(service: Service, job: Job, request: Request) -> dict[str, Any]:
    """GET /v1/jobs/{id}'s answer: the queue's view plus what was asked and what came out."""
    view = service.queue.describe(job)
    p = job.params
    view.update({"model": p.model, "outscale": p.outscale, "format": p.format, "tta": p.tta,
                 "denoise": p.denoise,
                 "filename": job.filename, "input_size": list(job.in_size),
                 "output_size": list(job.out_size), "url": _path(request, job.id)})
    if job.state == DONE and job.result is not None:
        r: Result = job.result
        view["result"] = {"url": _path(request, job.id, "/result"), "filename": r.filename,
                          "media_type": r.media_type, "bytes": len(r.payload),
                          "seconds": round(r.seconds, 3), "warnings": r.warnings}
    elif job.state == FAILED and job.error is not None:
        view["error"] = {"status": job.error[0], "detail": job.error[1]}
    elif job.state == CANCELLED:
        view["reason"] = job.cancel_reason
    return view
