"""Server-issued jobs: POST answers with a job at once (or the image when asked to wait),
GET /v1/jobs/{id} says state, position, tile progress and ETA, DELETE frees the slot at once
and stops a running job at its next tile, abandoned jobs are dropped, the queue waits instead
of refusing, and job ids are random 128-bit keys that only their holder knows. Also the API's
rough edges: HEAD, query strings, typed values, /docs pre-fills, ASCII download names."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import HANG, until
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402

from srgan.inference import Upscaler  # noqa: E402
from srgan.serve.app import create_app  # noqa: E402

LOCAL = "http://127.0.0.1:8000"


def png_bytes(w: int = 20, h: int = 12, seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def post(c: TestClient, data: bytes | None = None, query: str = "", name: str = "a.png",
         headers: dict | None = None, **fields):
    return c.post(f"/v1/upscale{query}", files={"image": (name, data or png_bytes(), "image/png")},
                  data={k: str(v) for k, v in fields.items()}, headers=headers or {})


class Stepper:
    """An upscaler whose tiles the test releases one by one (`step.release()`); it reports
    each tile through `progress` as the real engine does, and says how many it has."""

    def __init__(self, inner: Upscaler, tiles: int = 4) -> None:
        self.inner, self.scale, self.tiles = inner, inner.scale, tiles
        self.step = threading.Semaphore(0)
        self.running = threading.Event()
        self.stopped_after: list[int] = []

    def tiles_for(self, height: int, width: int, channels: int = 3) -> int:
        return self.tiles

    def upscale(self, data, outscale=None, tta=False, progress=None):
        self.running.set()
        done = 0
        try:
            for _ in range(self.tiles):
                assert self.step.acquire(timeout=HANG)
                done += 1
                progress(1)
        finally:
            self.stopped_after.append(done)
            self.running.clear()
        return self.inner.upscale(data, outscale, tta=tta)


@pytest.fixture
def stepper(tiny_model_path: Path) -> Stepper:
    return Stepper(Upscaler.from_pretrained(tiny_model_path, device="cpu"))


def stepped_app(tiny_model_path: Path, stepper: Stepper, **kw):
    return create_app([str(tiny_model_path)], device="cpu", loader=lambda path: stepper, **kw)


# --------------------------------------------------------------------------- jobs


def test_post_answers_with_a_job_at_once_and_get_follows_it_to_the_result(
        tiny_model_path: Path, stepper: Stepper):
    """Issue 25 item 2: the client invented a ticket and held the request open."""
    with TestClient(stepped_app(tiny_model_path, stepper), base_url=LOCAL) as c:
        r = post(c, png_bytes(20, 12), outscale=2)
        assert r.status_code == 202, r.text  # at once: no tile has run
        job = r.json()
        assert re.fullmatch(r"[0-9a-f]{32}", job["id"])
        assert r.headers["location"] == f"/v1/jobs/{job['id']}" == job["url"]
        assert job["input_size"] == [20, 12] and job["output_size"] == [40, 24]
        until(stepper.running.is_set, "the job to start")
        view = c.get(job["url"]).json()
        assert (view["state"], view["tiles_done"], view["tiles_total"]) == ("running", 0, 4)
        assert c.get(job["url"] + "/result").status_code == 409  # not done yet
        for _ in range(4):
            stepper.step.release()
        until(lambda: c.get(job["url"]).json()["state"] == "done", "the job to finish")
        view = c.get(job["url"]).json()
        assert view["progress"] == 1.0 and view["result"]["filename"] == "a_x2.png"
        img = c.get(view["result"]["url"])
        assert img.status_code == 200 and img.headers["x-srgan-job"] == job["id"]
        assert Image.open(io.BytesIO(img.content)).size == (40, 24)


def test_wait_and_prefer_wait_answer_synchronously(tiny_model_path: Path, stepper: Stepper):
    """Issue 25 item 2: simple clients keep one request: ?wait=true or Prefer: wait."""
    stepper.tiles = 1
    with TestClient(stepped_app(tiny_model_path, stepper), base_url=LOCAL) as c:
        for query, headers in (("?wait=true", {}), ("", {"Prefer": "wait"})):
            stepper.step.release()
            r = post(c, query=query, headers=headers)
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(r.content)).size == (80, 48)
        # a bounded wait that runs out answers with the job, which goes on
        r = post(c, headers={"Prefer": "wait=0.2"})
        assert r.status_code == 202 and r.json()["state"] in ("waiting", "running")
        stepper.step.release()
        until(lambda: c.get(r.json()["url"]).json()["state"] == "done", "the job")
        assert post(c, query="?wait=maybe").status_code == 422


def test_progress_is_tiles_and_the_eta_comes_from_the_measured_rate_and_the_size(
        tiny_model_path: Path, stepper: Stepper):
    """Issue 25 item 1: an indeterminate bar and an ETA averaged over jobs of any size."""
    with TestClient(stepped_app(tiny_model_path, stepper), base_url=LOCAL) as c:
        first = post(c, png_bytes(20, 20)).json()  # 400 px: measures the rate
        until(stepper.running.is_set, "the first job")
        assert c.get(first["url"]).json()["eta_s"] is None  # nothing measured yet
        for done in range(1, 5):
            time.sleep(0.05)
            stepper.step.release()
            until(lambda d=done: c.get(first["url"]).json()["tiles_done"] == d, "a tile")
            view = c.get(first["url"]).json()
            if done < 4:  # from its own tile rate once a tile is done
                assert view["progress"] == done / 4 and view["eta_s"] is not None
        until(lambda: c.get(first["url"]).json()["state"] == "done", "the first job")
        took = c.get(first["url"]).json()["elapsed_s"]
        small = post(c, png_bytes(20, 20)).json()
        big = post(c, png_bytes(80, 80)).json()  # 16x the pixels, waiting behind `small`
        until(stepper.running.is_set, "the second job")
        small_view, big_view = c.get(small["url"]).json(), c.get(big["url"]).json()
        assert small_view["state"] == "running" and big_view["position"] == 1
        assert big_view["ahead"] == 1
        # the big one's own part is 16x the small one's whole time, plus what is ahead of it
        assert big_view["eta_s"] >= 10 * max(small_view["eta_s"], 0.1 * took)
        c.delete(big["url"])
        for _ in range(4):
            stepper.step.release()


def test_delete_frees_the_slot_at_once_and_stops_a_running_job_at_the_next_tile(
        tiny_model_path: Path, stepper: Stepper):
    """Issue 25 item 3: 8 cancelled jobs kept their slots (503 for the next upload) until the
    running job ended, and a running job could not be stopped."""
    app = stepped_app(tiny_model_path, stepper, queue_size=8)
    with TestClient(app, base_url=LOCAL) as c:
        running = post(c).json()
        until(stepper.running.is_set, "the first job")
        waiting = [post(c).json() for _ in range(8)]
        assert c.get("/healthz").json()["queue"]["waiting"] == 8
        assert post(c).status_code == 503  # full
        for job in waiting:
            assert c.delete(job["url"]).json() == {"id": job["id"], "state": "cancelled"}
        assert c.get("/healthz").json()["queue"]["waiting"] == 0  # at once
        assert c.get(waiting[0]["url"]).json()["state"] == "cancelled"
        assert c.get(waiting[0]["url"] + "/result").status_code == 409
        late = post(c)
        assert late.status_code == 202  # the freed slots take new jobs
        stepper.step.release()  # one tile of the running job
        until(lambda: c.get(running["url"]).json()["tiles_done"] == 1, "a tile")
        assert c.delete(running["url"]).json()["state"] == "cancelling"
        stepper.step.release()  # its next tile ends it
        until(lambda: c.get(running["url"]).json()["state"] == "cancelled", "the cancel")
        assert stepper.stopped_after[0] == 2  # stopped after the tile it was in
        until(stepper.running.is_set, "the late job")  # and the worker moved on
        c.delete(late.json()["url"])
        stepper.step.release()
        until(lambda: c.get("/healthz").json()["queue"]["running"] == 0, "the worker")


def test_a_job_nobody_asks_about_is_dropped(tiny_model_path: Path, stepper: Stepper):
    """Issue 25 item 3: a client that gave up (closed tab, read timeout) still had its job
    run. A job not asked about for the lease is dropped, running or waiting."""
    app = stepped_app(tiny_model_path, stepper, job_lease=0.5)
    with TestClient(app, base_url=LOCAL) as c:
        running, waiting = post(c).json(), post(c).json()
        until(stepper.running.is_set, "the first job")
        time.sleep(0.7)  # nobody asks about either
        assert c.get("/healthz").json()["queue"]["waiting"] == 0
        assert c.get(waiting["url"]).status_code == 404
        stepper.step.release()  # the running one stops at its next tile
        until(lambda: not stepper.running.is_set(), "the abandoned job to stop")
        assert stepper.stopped_after == [1]

        def dropped() -> bool:
            r = c.get(running["url"])
            return r.status_code == 404 or r.json()["reason"] == "abandoned"

        until(dropped, "the abandoned job to be dropped")
        assert c.app.state.service.queue.done == 0


def test_a_waiting_request_whose_client_hangs_up_cancels_its_job(tiny_model_path: Path,
                                                                   stepper: Stepper):
    """Issue 25 item 3, the synchronous way: the connection closes, the job goes."""
    app = stepped_app(tiny_model_path, stepper)
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"'
            f"\r\nContent-Type: image/png\r\n\r\n").encode() + png_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    sent: list[dict] = []

    async def main() -> None:
        stage = 0

        async def receive():
            nonlocal stage
            stage += 1
            if stage == 1:
                return {"type": "http.request", "body": body, "more_body": False}
            until(stepper.running.is_set, "the job")  # hang up once it runs
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/upscale", "root_path": "",
                 "query_string": b"wait=true", "scheme": "http", "server": ("127.0.0.1", 8000),
                 "client": ("127.0.0.1", 5000), "http_version": "1.1",
                 "headers": [(b"host", b"127.0.0.1:8000"),
                             (b"content-type", f"multipart/form-data; boundary={boundary}"
                              .encode()), (b"content-length", str(len(body)).encode())]}
        await asyncio.wait_for(app(scope, receive, send), HANG)

    asyncio.run(main())
    stepper.step.release()
    until(lambda: not stepper.running.is_set(), "the job to stop")
    assert stepper.stopped_after == [1]  # stopped at its next tile, not run to the end
    queue = app.state.service.queue
    assert queue.stats()["running"] == 0 and queue.done == 0


def test_a_busy_server_queues_instead_of_refusing_and_holds_bytes_not_pixels(
        tiny_model_path: Path, stepper: Stepper):
    """Issue 25 item 4: 1 worker plus 8 waiting was full with a handful of users."""
    with TestClient(stepped_app(tiny_model_path, stepper), base_url=LOCAL) as c:
        first = post(c).json()
        until(stepper.running.is_set, "the first job")
        jobs = [post(c, png_bytes(20, 12, seed=i)) for i in range(20)]
        assert {r.status_code for r in jobs} == {202}
        assert [r.json()["position"] for r in jobs] == list(range(1, 21))
        queue = c.app.state.service.queue
        held = [queue.get(r.json()["id"], touch=False) for r in jobs]
        assert all(isinstance(j.upload, bytes) and j.in_size == (20, 12) for j in held)
        for j in [first, *(r.json() for r in jobs)]:
            c.delete(j["url"])
        stepper.step.release()
    # the bound is in bytes too: a line holding its share of uploads refuses the next one
    small = stepped_app(tiny_model_path, stepper, queue_mb=len(png_bytes()) * 1.5 / 2**20)
    with TestClient(small, base_url=LOCAL) as c:
        first = post(c).json()
        until(stepper.running.is_set, "the first job")
        assert post(c).status_code == 202
        full = post(c)
        assert full.status_code == 503 and "uploaded bytes" in full.json()["detail"]
        assert int(full.headers["retry-after"]) >= 1
        for _ in range(2):
            stepper.step.release()


def test_polls_back_off_and_are_not_logged(tiny_model_path: Path, stepper: Stepper):
    """Issue 25 item 5: a poll every 0.5 s gave 900 requests and 900 log lines a job."""
    from srgan.serve.middleware import QuietPolls

    access = logging.getLogger(QuietPolls.LOGGER)
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)

    def served(method: str, path: str, status: int) -> None:  # as uvicorn logs a request
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", method, path, "1.1", status)

    try:
        with TestClient(stepped_app(tiny_model_path, stepper), base_url=LOCAL) as c:
            job = post(c).json()
            assert job["poll_after_s"] == 0.5
            queue = c.app.state.service.queue
            queue.get(job["id"]).created -= 60  # a minute old
            assert c.get(job["url"]).json()["poll_after_s"] == 5.0
            served("GET", job["url"], 200)  # the app's filter is on uvicorn's access log
            served("POST", "/v1/upscale", 202)
            c.delete(job["url"])
            stepper.step.release()
        served("GET", job["url"], 200)  # and taken off when the app stops
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert len(lines) == 2 and "POST /v1/upscale" in lines[0] and job["url"] in lines[1]

    quiet = QuietPolls()

    def line(method: str, path: str, status: int) -> bool:
        record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0,
                                   '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", method, path,
                                                               "1.1", status), None)
        return quiet.filter(record)

    assert not line("GET", f"/v1/jobs/{'a' * 32}", 200)
    assert line("GET", f"/v1/jobs/{'a' * 32}", 404)  # errors are still logged
    assert line("GET", f"/v1/jobs/{'a' * 32}/result", 200)
    assert line("POST", "/v1/upscale", 202) and line("DELETE", f"/v1/jobs/{'a' * 32}", 200)


# --------------------------------------------------------------------------- job ids


def test_job_ids_are_random_unguessable_and_the_only_key(tiny_model_path: Path):
    """Issue 26 item H: tickets were chosen by the client, so B could cancel or take over
    A's job. Ids are now 128 random bits from the server; nothing else finds a job."""
    with TestClient(create_app([str(tiny_model_path)], device="cpu"), base_url=LOCAL) as c:
        ids = [post(c, query="").json()["id"] for _ in range(30)]
        assert len(set(ids)) == 30 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert len({i[:8] for i in ids}) == 30  # not a counter
        other = ids[0][:-1] + ("0" if ids[0][-1] != "0" else "1")
        assert c.get(f"/v1/jobs/{other}").status_code == 404
        assert c.delete(f"/v1/jobs/{other}").status_code == 404
        assert c.get(f"/v1/jobs/{ids[0]}").status_code == 200
        # a client cannot choose an id, nor reach the old ticket routes
        r = post(c, ticket="first")
        assert r.status_code == 422 and r.json()["detail"].startswith("ticket: not a parameter")
        assert c.get("/v1/queue/first").status_code == 404
        assert c.delete("/v1/queue/1").status_code == 404


# --------------------------------------------------------------------------- rough edges


@pytest.fixture(scope="module")
def client(tiny_model_path: Path):
    app = create_app([str(tiny_model_path)], device="cpu", max_pixels=50_000)
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def test_head_is_answered_where_get_is(client: TestClient):
    """Issue 25 item 13: HEAD got 405 on /, /healthz, /v1/models and /docs."""
    for path in ("/", "/healthz", "/v1/models", "/docs", "/static/app.js"):
        r = client.head(path)
        assert r.status_code == 200, path
        assert r.content == b"" and int(r.headers["content-length"]) > 0
    assert client.head("/v1/upscale").status_code == 405


def test_query_parameters_are_honoured_or_refused(client: TestClient):
    """Issue 25 item 14: ?model=nope&format=gif gave 200 with the defaults; format=JPG 422."""
    assert post(client, query="?wait=true&model=nope").status_code == 404
    r = post(client, query="?wait=true&format=gif")
    assert r.status_code == 422 and r.json()["detail"].startswith("format: 'gif'")
    r = post(client, query="?wait=true&format=webp&outscale=2")
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert r.headers["x-srgan-output-size"] == "40x24"
    r = post(client, query="?wait=true&format=png", format="png")
    assert r.status_code == 422 and "more than once" in r.json()["detail"]
    r = post(client, query="?wait=true&scale=2")
    assert r.status_code == 422 and r.json()["detail"].startswith("scale: not a parameter")
    for typed in ("JPG", "JPEG", " jpg ", ".jpg"):
        r = post(client, query="?wait=true", format=typed)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", typed
    assert post(client, query="?wait=true", tta="True").status_code == 200
    assert post(client, query="?wait=true", outscale="x2").headers["x-srgan-output-size"] \
        == "40x24"


def test_403_for_an_opaque_origin_does_not_recommend_allowing_null(client: TestClient):
    """Issue 25 item 16: --allow-origin null would let every sandboxed frame and file:// in."""
    r = post(client, query="?wait=true", headers={"origin": "null"})
    assert r.status_code == 403
    detail = r.json()["detail"]
    assert "--allow-origin null" not in detail and "--allow-origin https://" in detail
    assert "file://" in detail


def test_openapi_prefills_a_real_model(client: TestClient):
    """Issue 25 item 17: Swagger's Try it out sent model=string and got 404."""
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/upscale"]["post"]["requestBody"]["content"]
    props = body["multipart/form-data"]["schema"]["properties"]
    assert props["model"]["default"] == "tiny_x4"
    assert props["model"]["enum"] == ["tiny_x4", "bicubic"]
    assert props["image"]["format"] == "binary"
    assert {"202", "200", "404", "413", "422", "503"} <= set(
        schema["paths"]["/v1/upscale"]["post"]["responses"])


def test_ascii_download_name_keeps_accented_letters(client: TestClient):
    """Issue 25 item 18: 'été 猫.png' was saved as 't_bicubic_x4.png' by curl -OJ."""
    r = post(client, query="?wait=true", name="été 猫.png", model="bicubic")
    assert r.headers["content-disposition"] == (
        "inline; filename=\"ete_bicubic_x4.png\"; "
        "filename*=UTF-8''%C3%A9t%C3%A9_%E7%8C%AB_bicubic_x4.png")


def test_results_of_two_models_have_two_names(tiny_model_path: Path, tmp_path: Path):
    """Issue 25 item 12: A and B downloads shared one name (x_x4.png, then x_x4 (1).png)."""
    second = tmp_path / "tiny_b_x4.safetensors"
    second.write_bytes(tiny_model_path.read_bytes())
    app = create_app([str(tiny_model_path), str(second)], device="cpu")
    with TestClient(app, base_url=LOCAL) as c:
        names = [post(c, query="?wait=true", name="x.png", model=m)
                 .headers["content-disposition"] for m in ("tiny_x4", "tiny_b_x4")]
        also = post(c, query="?wait=true", name="x.png", model="tiny_b_x4", outscale=2)
    assert names == ['inline; filename="x_x4.png"', 'inline; filename="x_tiny_b_x4.png"']
    assert also.headers["content-disposition"] == 'inline; filename="x_tiny_b_x4_x2.png"'
