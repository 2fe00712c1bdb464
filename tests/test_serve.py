"""The HTTP API: every status code it promises, the queue, the upload limits, the page's files,
and a bounded schemathesis run against its own OpenAPI schema (no 5xx for any input)."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402

from srgan.inference import Upscaler, resize_to  # noqa: E402
from srgan.serve.app import STATIC_DIR, BodyLimit, JobQueue, QueueFull, create_app  # noqa: E402


def png_bytes(w: int = 20, h: int = 12, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    channels = len(mode)
    arr = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    im = Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims w x h pixels, with a tiny IDAT: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def upload(client: TestClient, data: bytes, name: str = "photo.png", **fields):
    return client.post("/v1/upscale", files={"image": (name, data, "image/png")},
                       data={k: str(v) for k, v in fields.items()})


@pytest.fixture(scope="module")
def client(tiny_model_path: Path):
    app = create_app([str(tiny_model_path)], device="cpu", max_pixels=50_000,
                     max_upload_mb=0.25)
    with TestClient(app) as c:
        yield c


# --------------------------------------------------------------------------- 200s


def test_upscale_returns_the_models_4x_output(client: TestClient, tiny_model_path: Path):
    data = png_bytes(20, 12)
    r = upload(client, data)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-srgan-model"] == "tiny_x4"
    assert r.headers["x-srgan-input-size"] == "20x12"
    assert r.headers["x-srgan-output-size"] == "80x48"
    assert 'filename="photo_x4.png"' in r.headers["content-disposition"]
    out = Image.open(io.BytesIO(r.content))
    assert out.size == (80, 48) and out.mode == "RGB"
    # the same pixels as the Python API gives for the same file
    direct = Upscaler.from_pretrained(tiny_model_path, device="cpu").upscale(
        Image.open(io.BytesIO(data)))
    assert np.array_equal(np.asarray(out), np.asarray(direct))


@pytest.mark.parametrize(("fmt", "mime", "pil_format"),
                         [("jpg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP")])
def test_output_formats(client: TestClient, fmt: str, mime: str, pil_format: str):
    r = upload(client, png_bytes(10, 8), format=fmt)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == mime
    out = Image.open(io.BytesIO(r.content))
    assert out.format == pil_format and out.size == (40, 32)


def test_outscale_and_bicubic_baseline_have_the_same_size(client: TestClient):
    data = png_bytes(15, 10)
    sr = upload(client, data, outscale=2.5)
    bic = upload(client, data, model="bicubic", outscale=2.5)
    assert sr.status_code == bic.status_code == 200
    assert Image.open(io.BytesIO(sr.content)).size == (38, 25)  # round(15*2.5), round(10*2.5)
    got = np.asarray(Image.open(io.BytesIO(bic.content)), dtype=np.float32) / 255
    assert got.shape == (25, 38, 3)
    src = np.asarray(Image.open(io.BytesIO(data)), dtype=np.float32) / 255
    want = resize_to(src, 10, 15, 2.5)  # the MATLAB bicubic the rest of srgan uses
    assert np.abs(got - want).max() <= 1 / 255 + 1e-6
    assert "bicubic" in bic.headers["content-disposition"]


def test_alpha_survives_png(client: TestClient):
    r = upload(client, png_bytes(8, 8, "RGBA"))
    assert r.status_code == 200
    assert Image.open(io.BytesIO(r.content)).mode == "RGBA"


@pytest.mark.filterwarnings("ignore::srgan.imageio.ImageWarning")
def test_jpeg_of_transparent_image_says_what_was_lost(client: TestClient):
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[..., 3] = 128
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, "PNG")
    r = upload(client, buf.getvalue(), format="jpg")
    assert r.status_code == 200
    assert "composited over white" in r.headers["x-srgan-warnings"]


# --------------------------------------------------------------------------- errors


def test_413_declared_length_refused_before_reading(client: TestClient):
    big = png_bytes(8, 8) + b"\0" * (400 * 1024)
    r = upload(client, big)
    assert r.status_code == 413
    assert r.json()["detail"] == "upload too large: this server accepts images up to 256 KB"


def test_413_streamed_body_without_length_is_cut_off(client: TestClient):
    boundary = "xyz"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n").encode()

    def body():
        yield head
        for _ in range(40):  # 40 x 16 KB = 640 KB > 0.25 MB + overhead
            yield b"\0" * 16384

    r = client.post("/v1/upscale", content=body(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    assert "too large" in r.json()["detail"]


def test_422_not_an_image(client: TestClient):
    r = upload(client, b"this is text, not a picture", name="notes.png")
    assert r.status_code == 422
    assert r.json()["detail"].startswith("notes.png: not an image")


def test_422_corrupt_image(client: TestClient):
    data = png_bytes(16, 16)
    r = upload(client, data[: len(data) // 2], name="cut.png")
    assert r.status_code == 422
    assert "truncated" in r.json()["detail"]
    r = upload(client, b"", name="empty.png")
    assert r.status_code == 422
    assert "empty" in r.json()["detail"]


def test_422_too_many_pixels_judged_from_the_header(client: TestClient):
    start = time.perf_counter()
    r = upload(client, png_header_only(100_000, 100_000), name="bomb.png")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "10,000,000,000" in detail and "limit of 50,000" in detail
    assert time.perf_counter() - start < 5  # nothing was decoded
    r = upload(client, png_header_only(300, 300), name="big.png")
    assert r.status_code == 422
    assert r.json()["detail"] == ("big.png: image is 300x300 = 90,000 pixels, over this "
                                  "server's limit of 50,000; send a smaller image")


def test_422_output_too_large(client: TestClient):
    # 200x200 = 40k input pixels is allowed, x8 = 2.56 MP > 16 x 50k
    r = upload(client, png_bytes(200, 200), outscale=8)
    assert r.status_code == 422
    assert "smaller outscale" in r.json()["detail"]


@pytest.mark.parametrize("bad", ["0.5", "9", "nan", "inf", "four", "-1"])
def test_422_outscale_out_of_range(client: TestClient, bad: str):
    r = upload(client, png_bytes(), outscale=bad)
    assert r.status_code == 422
    assert "outscale" in r.json()["detail"]


def test_422_bad_format_and_missing_image(client: TestClient):
    r = upload(client, png_bytes(), format="gif")
    assert r.status_code == 422 and "format" in r.json()["detail"]
    r = client.post("/v1/upscale", data={"outscale": "2"})
    assert r.status_code == 422 and "no image uploaded" in r.json()["detail"]


def test_404_unknown_model(client: TestClient):
    r = upload(client, png_bytes(), model="srgan_x9000")
    assert r.status_code == 404
    assert "srgan_x9000" in r.json()["detail"] and "tiny_x4" in r.json()["detail"]


def test_malformed_multipart_is_a_client_error(client: TestClient):
    for body, ctype in [
        (b"--b\r\nnonsense", "multipart/form-data; boundary=b"),
        (b"\xff" * 100, "multipart/form-data"),
        (b'{"image": 1}', "application/json"),
        (b"image=abc", "application/x-www-form-urlencoded"),
    ]:
        r = client.post("/v1/upscale", content=body, headers={"content-type": ctype})
        assert 400 <= r.status_code < 500, (ctype, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str)


class _Blocking:
    """An upscaler that holds its worker until released: lets a test fill the queue."""

    def __init__(self, inner: Upscaler) -> None:
        self.inner = inner
        self.scale = inner.scale
        self.entered = threading.Event()
        self.release = threading.Event()

    def upscale_image(self, data, outscale=None, tta=False):
        self.entered.set()
        assert self.release.wait(10)
        return self.inner.upscale_image(data, outscale, tta)


def test_503_with_retry_after_when_the_queue_is_full(tiny_model_path: Path):
    blocker = _Blocking(Upscaler.from_pretrained(tiny_model_path, device="cpu"))
    app = create_app([str(tiny_model_path)], workers=1, queue_size=1,
                     loader=lambda path: blocker)
    results: list[int] = []
    with TestClient(app) as c:
        threads = [threading.Thread(target=lambda: results.append(upload(c, png_bytes())
                                                                  .status_code))
                   for _ in range(2)]
        threads[0].start()
        assert blocker.entered.wait(10)  # one job running ...
        threads[1].start()
        for _ in range(200):  # ... and one waiting
            if c.get("/healthz").json()["queue"]["waiting"] == 1:
                break
            time.sleep(0.02)
        assert c.get("/healthz").json()["queue"] == {
            "workers": 1, "capacity": 2, "running": 1, "waiting": 1, "done": 0}
        r = upload(c, png_bytes())
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1
        assert "busy" in r.json()["detail"]
        # the page and health checks still answer while the worker is busy
        assert c.get("/healthz").status_code == 200
        blocker.release.set()
        for t in threads:
            t.join(10)
        assert results == [200, 200]
        assert upload(c, png_bytes()).status_code == 200


def test_job_queue_counts_and_releases():
    async def main():
        q = JobQueue(workers=1, waiting=0)
        gate = threading.Event()
        first = asyncio.create_task(q.run(gate.wait, 5))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as info:
            await q.run(lambda: None)
        assert info.value.retry_after >= 1
        gate.set()
        assert await first is True
        assert await q.run(lambda: 42) == 42
        assert q.stats()["done"] == 2 and q.admitted == 0
        q.shutdown()

    asyncio.run(main())


def test_408_when_an_upload_stalls():
    """A client that sends headers and then nothing is answered (and let go) after the timeout."""

    async def app(scope, receive, send):
        await receive()  # the body never comes
        raise AssertionError("unreachable")

    async def stalled_receive():
        await asyncio.sleep(3600)

    sent = []

    async def send(message):
        sent.append(message)

    async def main():
        guard = BodyLimit(app, limit=1000, idle_timeout=0.1, total_timeout=5)
        scope = {"type": "http", "method": "POST", "path": "/v1/upscale", "headers": []}
        await asyncio.wait_for(guard(scope, stalled_receive, send), 5)

    asyncio.run(main())
    assert sent[0]["status"] == 408
    assert b"stalled" in sent[1]["body"]


def _run_guard(headers: list, chunks: list[bytes]) -> tuple[list, int]:
    """Drive the middleware with a body in chunks; return (messages sent, chunks consumed)."""
    consumed = 0

    async def receive():
        nonlocal consumed
        if consumed >= len(chunks):
            await asyncio.sleep(3600)
        consumed += 1
        return {"type": "http.request", "body": chunks[consumed - 1],
                "more_body": consumed < len(chunks)}

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    guard = BodyLimit(app, limit=1000, idle_timeout=1, total_timeout=5, drain=5000)
    scope = {"type": "http", "method": "POST", "path": "/v1/upscale", "headers": headers}
    asyncio.run(asyncio.wait_for(guard(scope, receive, send), 5))
    return sent, consumed


def test_413_drains_a_slightly_oversized_body_so_the_client_can_read_the_answer():
    chunks = [b"x" * 500] * 6  # 3000 bytes: over the limit, within the drain budget
    sent, consumed = _run_guard([(b"content-length", b"3000")], chunks)
    assert sent[0]["status"] == 413 and consumed == 6  # all read, then answered
    sent, consumed = _run_guard([(b"content-length", b"100000000")], chunks)
    assert sent[0]["status"] == 413 and consumed == 0  # far too big: answered at once
    sent, consumed = _run_guard([], chunks)  # no length: counted, cut, drained
    assert sent[0]["status"] == 413 and consumed == 6
    sent, consumed = _run_guard([(b"content-length", b"1000")], [b"x" * 500] * 2)
    assert sent[0]["status"] == 200 and consumed == 2


# --------------------------------------------------------------------------- other routes


def test_healthz(client: TestClient):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["queue"]["capacity"] == 1 + 8


def test_models_lists_scale_card_and_limits(client: TestClient):
    r = client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "tiny_x4"
    by_name = {m["name"]: m for m in body["models"]}
    assert by_name["tiny_x4"]["scale"] == 4 and by_name["tiny_x4"]["kind"] == "network"
    assert by_name["tiny_x4"]["card"]["description"] == "test"
    assert by_name["tiny_x4"]["config"] == {"arch": "srresnet", "num_blocks": 1, "channels": 8}
    assert by_name["bicubic"]["kind"] == "interpolation"
    assert body["limits"]["max_pixels"] == 50_000
    assert body["limits"]["max_upload_bytes"] == 256 * 1024
    assert body["limits"]["formats"] == ["png", "jpg", "webp"]


def test_docs_and_openapi(client: TestClient):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/v1/upscale"]["post"]
    assert {"200", "404", "413", "422", "503"} <= set(op["responses"])
    assert "/v1/models" in schema["paths"] and "/healthz" in schema["paths"]


def test_page_is_served_and_works_offline(client: TestClient):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in r.text and 'href="static/style.css"' in r.text
    for name in ("index.html", "app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
        text = (STATIC_DIR / name).read_text()
        # nothing fetched from another origin: no CDN, fonts or scripts from elsewhere
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_bad_model_file_fails_at_start(tmp_path: Path):
    from srgan.weights import ModelFileError

    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.safetensors"):
        create_app([str(bad)])


def test_model_file_gone_after_start_is_a_json_500_and_the_server_lives_on(
        tiny_model_path: Path, tmp_path: Path):
    copy = tmp_path / "gone_x4.safetensors"
    copy.write_bytes(tiny_model_path.read_bytes())
    app = create_app([str(copy)], device="cpu")
    copy.unlink()
    with TestClient(app) as c:
        r = upload(c, png_bytes())
        assert r.status_code == 500
        assert r.json()["detail"].startswith("model 'gone_x4' cannot be loaded")
        assert upload(c, png_bytes(), model="bicubic").status_code == 200
        assert c.get("/healthz").status_code == 200


def test_serve_command_help():
    from click.testing import CliRunner

    from srgan.cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--model", "--device", "--max-pixels", "--max-upload-mb",
                   "--workers", "--queue"):
        assert option in result.output
    result = CliRunner().invoke(main, ["serve", "--model", "/nonexistent.safetensors"])
    assert result.exit_code != 0 and "no such model file" in result.output


def test_serve_command_passes_its_timeouts(tiny_model_path: Path, monkeypatch):
    """--upload-deadline reaches the body guard, and the head deadline defaults to the smaller
    of 10 s and --upload-timeout (the slow-head behaviour itself: test_reliability_server)."""
    uvicorn = pytest.importorskip("uvicorn")
    from click.testing import CliRunner

    from srgan.cli import main

    runs: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append(dict(app=app, **kw)))
    base = ["serve", "-m", str(tiny_model_path), "--device", "cpu"]
    for extra in ([], ["--upload-timeout", "4", "--upload-deadline", "77"],
                  ["--header-timeout", "2.5"]):
        result = CliRunner().invoke(main, base + extra)
        assert result.exit_code == 0, result.output
    guards = [next(m.kwargs for m in run["app"].user_middleware if m.cls is BodyLimit)
              for run in runs]
    assert [(g["idle_timeout"], g["total_timeout"]) for g in guards] == [
        (30.0, 300.0), (4.0, 77.0), (30.0, 300.0)]
    assert [run["http"].head_timeout for run in runs] == [10.0, 4.0, 2.5]


# --------------------------------------------------------------------------- schemathesis


def test_schemathesis_no_server_errors(tiny_model_path: Path):
    """Generated requests for every operation in the OpenAPI schema: never a 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    app = create_app([str(tiny_model_path)], device="cpu", max_pixels=10_000, max_upload_mb=0.1)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    calls: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call()
            calls.setdefault(case.operation.path, []).append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        check()
    assert set(calls) == {"/healthz", "/v1/models", "/v1/upscale"}
    assert len(calls["/v1/upscale"]) >= 20
    assert all(code < 500 for codes in calls.values() for code in codes)
