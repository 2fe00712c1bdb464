"""The HTTP API: every status code it promises, the queue, the upload limits, the page's files,
and a bounded schemathesis run against its own OpenAPI schema (no 5xx for any input)."""

from __future__ import annotations

import asyncio
import io
import re
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
from srgan.serve.app import STATIC_DIR, BodyLimit, create_app  # noqa: E402


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


LOCAL = "http://127.0.0.1:8000"  # the Host a browser on this machine sends
SYNC = "/v1/upscale?wait=true"  # answers with the image, as the API did before jobs


def upload(client: TestClient, data: bytes, name: str = "photo.png", **fields):
    """A synchronous upscale (?wait=true): the answer is the image, or the error."""
    return client.post(SYNC, files={"image": (name, data, "image/png")},
                       data={k: str(v) for k, v in fields.items()})


@pytest.fixture(scope="module")
def client(tiny_model_path: Path):
    app = create_app([str(tiny_model_path)], device="cpu", max_pixels=50_000,
                     max_upload_mb=0.25)
    with TestClient(app, base_url=LOCAL) as c:
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


def test_uploads_never_touch_the_disk(client: TestClient, monkeypatch):
    """Bytes in, bytes out: no temporary file or folder for the upload or the answer."""
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("a temporary file was made")

    for name in ("mkdtemp", "mkstemp", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse)
    for fmt in ("png", "jpg", "webp"):
        r = upload(client, png_bytes(10, 8, "RGBA"), format=fmt)
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == (40, 32)


def test_bicubic_is_not_a_loaded_model(client: TestClient):
    assert upload(client, png_bytes(8, 8), model="bicubic").status_code == 200
    assert "bicubic" not in client.get("/healthz").json()["models_loaded"]


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


def test_422_too_many_pixels_judged_from_the_header(client: TestClient, monkeypatch):
    from PIL import ImageFile

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    with monkeypatch.context() as m:
        m.setattr(ImageFile.ImageFile, "load", no_decoding)  # the header alone decides
        r = upload(client, png_header_only(100_000, 100_000), name="bomb.png")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "10,000,000,000" in detail and "limit of 50,000" in detail
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
    if bad in ("nan", "inf"):  # issue 15 bug 8: nan was refused with "should be <= 8"
        assert r.json()["detail"] == "outscale: Input should be a finite number"


def test_422_two_files_in_the_image_field(client: TestClient):
    """Issue 15 bug 7: two files got a 200 and the last one was upscaled silently."""
    r = client.post(SYNC, files=[("image", ("a.png", png_bytes(8, 8), "image/png")),
                                          ("image", ("b.png", png_bytes(6, 6), "image/png"))])
    assert r.status_code == 422
    assert r.json()["detail"].startswith("image: sent more than once")
    r = client.post(SYNC, files={"image": ("a.png", png_bytes(8, 8), "image/png")},
                    data={"outscale": ["2", "3"]})
    assert r.status_code == 422 and "outscale: sent more than once" in r.json()["detail"]


def test_422_text_instead_of_a_file(client: TestClient):
    """Issue 15 bug 8: a text value for image got "Expected UploadFile, received: <class 'str'>"."""
    r = client.post("/v1/upscale", data={"image": "photo.png"})
    assert r.status_code == 422
    assert r.json()["detail"] == ("image: expected a file, got a text value (send the image "
                                  "as a multipart file)")


def test_format_jpeg_is_jpg(client: TestClient):
    """Issue 15 bug 8: format=jpeg was refused where jpg was accepted."""
    r = upload(client, png_bytes(10, 8), format="jpeg")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert 'filename="photo_x4.jpg"' in r.headers["content-disposition"]


def test_non_ascii_file_name_is_kept(client: TestClient):
    """Issue 15 bug 8: "été.png" came back as "image_x4.png"; now RFC 5987 plus a fallback."""
    r = upload(client, png_bytes(8, 8), name="été à Zürich.png")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == (
        "inline; filename=\"ete_a_Zurich_x4.png\"; "
        "filename*=UTF-8''%C3%A9t%C3%A9_%C3%A0_Z%C3%BCrich_x4.png")
    r = upload(client, png_bytes(8, 8), name="фото.png")
    assert "filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE_x4.png" in r.headers["content-disposition"]


def test_favicon(client: TestClient):
    """Issue 15 bug 8: /favicon.ico was 404."""
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert Image.open(io.BytesIO(r.content)).format == "ICO"


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

    def upscale(self, data, outscale=None, tta=False):
        self.entered.set()
        assert self.release.wait(10)
        return self.inner.upscale(data, outscale, tta=tta)


def test_503_with_retry_after_when_the_queue_is_full(tiny_model_path: Path):
    blocker = _Blocking(Upscaler.from_pretrained(tiny_model_path, device="cpu"))
    app = create_app([str(tiny_model_path)], workers=1, queue_size=1,
                     loader=lambda path: blocker)
    results: list[int] = []
    with TestClient(app, base_url=LOCAL) as c:
        threads = [threading.Thread(target=lambda: results.append(upload(c, png_bytes())
                                                                  .status_code))
                   for _ in range(2)]
        threads[0].start()
        assert blocker.entered.wait(10)  # one job running ...
        threads[1].start()
        for _ in range(3000):  # ... and one waiting (60 s at most: only a hang)
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
        guard = BodyLimit(app, limit=1000, upload_timeout=0.1, upload_deadline=5)
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

    guard = BodyLimit(app, limit=1000, upload_timeout=1, upload_deadline=5, drain=5000)
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
    assert body["queue"]["capacity"] == 1 + 32


def test_models_lists_what_a_client_needs_and_no_training_record(client: TestClient):
    """/v1/models was 5.8 KB with the training config and the trainer's absolute paths: now
    name, kind, scale, summary and the limits."""
    r = client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "tiny_x4"
    by_name = {m["name"]: m for m in body["models"]}
    assert by_name["tiny_x4"] == {"name": "tiny_x4", "kind": "network", "scale": 4,
                                  "default": True, "summary": "test.", "denoise": False}
    assert by_name["bicubic"]["kind"] == "interpolation"
    assert body["limits"]["max_pixels"] == 50_000
    assert body["limits"]["max_upload_bytes"] == 256 * 1024
    assert body["limits"]["formats"] == ["png", "jpg", "webp"]
    with TestClient(create_app(None, device="cpu"), base_url=LOCAL) as c:
        shipped = c.get("/v1/models")
    per_model = len(shipped.content) / len(shipped.json()["models"])  # a training record: 2 KB+
    assert per_model < 400, shipped.text
    assert "/" not in shipped.text and "config" not in shipped.text


def test_docs_and_openapi(client: TestClient):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/v1/upscale"]["post"]
    assert {"200", "404", "413", "422", "503"} <= set(op["responses"])
    assert "/v1/models" in schema["paths"] and "/healthz" in schema["paths"]


def test_docs_work_offline(client: TestClient):
    """Issue 15 bug 6: /docs loaded Swagger UI from a CDN (blank offline) and /redoc ReDoc."""
    html = client.get("/docs").text
    assert "http://" not in html and "https://" not in html and "cdn" not in html.lower()
    assert "<script>" not in html  # no inline code: the CSP allows only files from here
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "swagger-ui/swagger-ui-bundle.js" in sources and "static/docs.js" in sources
    for src in sources:
        r = client.get("/" + src.lstrip("./"))
        assert r.status_code == 200, src
    assert len(client.get("/swagger-ui/swagger-ui-bundle.js").content) > 500_000
    assert client.get("/redoc").status_code == 404  # dropped: nothing on PyPI ships it


def test_page_is_served_and_works_offline(client: TestClient):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in r.text and 'href="static/style.css"' in r.text
    names = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in (".html", ".js", ".css"))
    assert {"index.html", "app.js", "api.js", "progress.js", "viewer.js", "style.css"} <= set(
        names)
    for name in names:
        assert f'src="static/{name}"' in r.text or name in ("index.html", "docs.js", "docs.css",
                                                              "style.css")
        assert client.get(f"/static/{name}").status_code == 200
        text = (STATIC_DIR / name).read_text()
        # nothing fetched from another origin: no CDN, fonts or scripts from elsewhere
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_shipped_models_are_described_in_plain_words():
    """The page lists whatever list_models() returns, each with a summary for non-experts
    (the card's description is training jargon)."""
    from srgan.weights import list_models

    with TestClient(create_app(None, device="cpu"), base_url=LOCAL) as c:
        body = c.get("/v1/models").json()
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {*list_models(), "bicubic"}
    # every shipped model said in plain words: what kind of photo it is for
    from srgan.packaged import PLAIN_WORDS

    for name in list_models():
        assert by_name[name]["summary"] == PLAIN_WORDS[name], name
    assert by_name["srresnet_real_x4"]["summary"].startswith("For the photos people have")
    assert all(m["summary"] for m in body["models"])
    # the real-photo model is the default, as for `srgan upscale`, though srgan_ sorts first
    assert body["default"] == "srresnet_real_x4"
    assert body["models"][0]["name"] == "srresnet_real_x4" and body["models"][0]["default"]


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
    with TestClient(app, base_url=LOCAL) as c:
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
    assert [(g["upload_timeout"], g["upload_deadline"]) for g in guards] == [
        (30.0, 300.0), (4.0, 77.0), (30.0, 300.0)]
    assert [run["http"].head_timeout for run in runs] == [10.0, 4.0, 2.5]


# --------------------------------------------------------------------------- schemathesis


def test_schemathesis_no_server_errors(tiny_model_path: Path):
    """Generated requests for every operation in the OpenAPI schema: never a 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    app = create_app([str(tiny_model_path)], device="cpu", max_pixels=10_000, max_upload_mb=0.1,
                     allowed_hosts=["testserver"])  # the Host schemathesis sends
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
    assert set(calls) == {"/healthz", "/v1/models", "/v1/upscale", "/v1/jobs/{job_id}",
                          "/v1/jobs/{job_id}/result"}
    assert len(calls["/v1/upscale"]) >= 20
    assert all(code < 500 for codes in calls.values() for code in codes)


# --------------------------------------------------------------------------- hardening


def test_security_headers_on_every_answer(client: TestClient):
    """Issue 15: no response carried security headers; now the page, the API, its errors and
    the 413 the body guard sends all do."""
    answers = [client.get("/"), client.get("/static/app.js"), client.get("/docs"),
               client.get("/v1/models"), upload(client, b"not an image"),
               upload(client, png_bytes(8, 8) + b"\0" * (400 * 1024)), client.get("/nothing")]
    assert [r.status_code for r in answers] == [200, 200, 200, 200, 422, 413, 404]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"]
                   .split(";"))
        assert csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
        assert csp["script-src"] == "'self'" and csp["connect-src"] == "'self'"
        # nothing from another origin: every source is this server, blob: or data:
        assert all(set(v.split()) <= {"'self'", "'none'", "blob:", "data:"}
                   for v in csp.values())


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "127.0.0.5:80", "[::1]:8000",
                                  "app.localhost"])
def test_loopback_host_names_are_accepted(client: TestClient, host: str):
    assert client.get("/healthz", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "192.168.1.5",
                                  "localhost.evil.example", ""])
def test_other_host_names_are_refused_dns_rebinding(client: TestClient, host: str):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: refuse that Host."""
    r = client.get("/v1/models", headers={"host": host})
    assert r.status_code == 400
    assert "--allow-host" in r.json()["detail"]
    assert r.headers["x-frame-options"] == "DENY"


def test_allowed_hosts_option(tiny_model_path: Path):
    app = create_app([str(tiny_model_path)], device="cpu", allowed_hosts=["photos.lan"])
    with TestClient(app, base_url="http://photos.lan:8000") as c:
        assert c.get("/v1/models").status_code == 200
        assert c.get("/v1/models", headers={"host": "localhost"}).status_code == 200
        assert c.get("/v1/models", headers={"host": "evil.example"}).status_code == 400
    anyhost = create_app([str(tiny_model_path)], device="cpu", allowed_hosts=None)
    with TestClient(anyhost, base_url="http://evil.example") as c:
        assert c.get("/v1/models").status_code == 200


def test_cross_origin_post_is_refused(client: TestClient):
    """A page elsewhere can POST multipart here with no preflight: the Origin says so."""
    for origin in ["http://evil.example", "null", "http://127.0.0.1:9999",
                   "http://127.0.0.1:8000.evil.example"]:
        r = client.post(SYNC, files={"image": ("a.png", png_bytes(), "image/png")},
                        headers={"origin": origin})
        assert r.status_code == 403, origin
        assert "--allow-origin" in r.json()["detail"]
        assert "access-control-allow-origin" not in r.headers
    for origin in ["http://127.0.0.1:8000", "http://localhost:8000"]:  # the page itself
        r = client.post(SYNC, files={"image": ("a.png", png_bytes(), "image/png")},
                        headers={"origin": origin})
        assert r.status_code == 200, origin
    assert upload(client, png_bytes()).status_code == 200  # no Origin: curl, scripts


def test_allowed_origins_option(tiny_model_path: Path):
    app = create_app([str(tiny_model_path)], device="cpu",
                     allowed_origins=["https://photos.example"])
    with TestClient(app, base_url=LOCAL) as c:
        r = c.post(SYNC, files={"image": ("a.png", png_bytes(), "image/png")},
                   headers={"origin": "https://photos.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://photos.example"
        assert "X-Srgan-Output-Size" in r.headers["access-control-expose-headers"]
        pre = c.options("/v1/upscale", headers={"origin": "https://photos.example",
                                                "access-control-request-method": "POST"})
        assert pre.status_code == 204 and "POST" in pre.headers["access-control-allow-methods"]
        r = c.post(SYNC, files={"image": ("a.png", png_bytes(), "image/png")},
                   headers={"origin": "https://other.example"})
        assert r.status_code == 403


def test_serve_command_host_and_origin_options(tiny_model_path: Path, monkeypatch):
    """On loopback only loopback names by default; --allow-host/--allow-origin add others;
    bound to another address, any Host unless --allow-host narrows it."""
    uvicorn = pytest.importorskip("uvicorn")
    from click.testing import CliRunner

    from srgan.cli import main
    from srgan.serve.security import Security

    runs: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append(dict(app=app, **kw)))
    base = ["serve", "-m", str(tiny_model_path), "--device", "cpu"]
    for extra in ([], ["--allow-host", "photos.lan", "--allow-origin", "https://x.example"],
                  ["--host", "0.0.0.0"], ["--host", "192.168.1.5", "--allow-host", "nas"]):
        result = CliRunner().invoke(main, base + extra)
        assert result.exit_code == 0, result.output
    guards = [next(m.kwargs for m in run["app"].user_middleware if m.cls is Security)
              for run in runs]
    assert [(g["allowed_hosts"], tuple(g["allowed_origins"])) for g in guards] == [
        ([], ()), (["photos.lan"], ("https://x.example",)), (None, ()),
        (["nas", "192.168.1.5"], ())]
