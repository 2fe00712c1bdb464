"""The job API over a real socket: `srgan serve`'s app on uvicorn at 127.0.0.1 (a free port).
Twenty clients at once are all served, in the order they came, each seeing its place in line;
and docs/serve.md's Python example runs as written against it."""

from __future__ import annotations

import io
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from helpers import HANG, until  # noqa: E402
from test_serve_jobs import Stepper, png_bytes  # noqa: E402

from srgan.inference import Upscaler  # noqa: E402
from srgan.serve.app import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Serving:
    """uvicorn running `app` in a thread until the block ends."""

    def __init__(self, app) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        until(lambda: self.server.started or not self.thread.is_alive(), "uvicorn to start")
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(HANG)


class Recording(Stepper):
    """A Stepper that also notes which image (by its width) each job it runs was."""

    def __init__(self, inner: Upscaler) -> None:
        super().__init__(inner, tiles=1)
        self.order: list[int] = []

    def upscale(self, data, outscale=None, tta=False, progress=None):
        self.order.append(data.width)
        return super().upscale(data, outscale, tta=tta, progress=progress)


def test_20_concurrent_clients_are_all_served_in_order_with_their_position(
        tiny_model_path: Path):
    """Issue 25, done when: 20 clients at once on loopback, all served in the order they
    came, each with its place in line visible while it waits."""
    rec = Recording(Upscaler.from_pretrained(tiny_model_path, device="cpu"))
    app = create_app([str(tiny_model_path)], device="cpu", loader=lambda path: rec)
    with Serving(app) as url, httpx.Client(base_url=url, timeout=HANG) as c:
        def post(width: int) -> dict:
            r = c.post("/v1/upscale", files={"image": ("a.png", png_bytes(width, 8))})
            assert r.status_code == 202, r.text
            return r.json()

        first = post(8)  # holds the worker
        until(rec.running.is_set, "the first job")
        with ThreadPoolExecutor(20) as pool:  # twenty clients at once
            jobs = list(pool.map(post, range(10, 30)))
        # each was told its place at once, and the places are the order they got in
        assert sorted(j["position"] for j in jobs) == list(range(1, 21))
        arrival = [j["input_size"][0] for j in sorted(jobs, key=lambda j: j["position"])]
        for j in jobs:  # asking again says the same, with the jobs ahead of it
            view = c.get(j["url"]).json()
            assert view["state"] == "waiting" and view["position"] == j["position"]
            assert view["ahead"] == j["position"]  # the running one and those before it
        last = max(jobs, key=lambda j: j["position"])
        for step in range(21):
            rec.step.release()  # one job done: everyone behind it moves up a place
            if step < 20:
                until(lambda s=step: c.get(last["url"]).json()["position"] in (19 - s, 0),
                      "the line to move")
        for j in [first, *jobs]:
            until(lambda j=j: c.get(j["url"]).json()["state"] == "done", "every job")
            result = c.get(j["url"] + "/result")
            assert result.status_code == 200
            assert Image.open(io.BytesIO(result.content)).size == (j["input_size"][0] * 4, 32)
        assert rec.order == [8, *arrival]  # first come, first served
        queue = c.get("/healthz").json()["queue"]
        assert (queue["running"], queue["waiting"], queue["done"]) == (0, 0, 21)


def _docs_python_example() -> str:
    text = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    section = text.split("### Jobs: two ways to call it", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "docs/serve.md lost its Python example"
    return blocks[0]


def test_the_docs_python_example_runs_as_written(tmp_path: Path, monkeypatch, capsys):
    """Issue 25 item 2: docs/serve.md shows both ways (one request, and a job followed to its
    result) in Python; run as written (only SERVER changed) against the shipped models."""
    requests = pytest.importorskip("requests")
    code = _docs_python_example()
    assert "wait" in code and "/v1/upscale" in code and "job['url']" in code
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
        tmp_path / "photo.jpg", quality=90)
    monkeypatch.chdir(tmp_path)
    with Serving(create_app(None, device="cpu")) as url:
        code = re.sub(r'^SERVER = ".*"$', f'SERVER = "{url}"', code, count=1, flags=re.M)
        assert url in code
        exec(compile(code, "docs/serve.md", "exec"), {"__name__": "docs_example",
                                                      "requests": requests})
        assert httpx.get(url + "/healthz").json()["queue"]["done"] == 2  # one each way
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["photo.jpg", "photo_x4.png"], written  # both ways wrote the result
    assert Image.open(tmp_path / "photo_x4.png").size == (96, 80)
    for line in capsys.readouterr().out.splitlines():  # the job's progress, as polled
        assert re.fullmatch(r"(waiting|running|done) \d+/\d+ tiles \S+ s left", line), line
