"""`denoise` in the HTTP API: the clean-photo and the real-photo model blended at a strength
from 0 to 1, offered (and said so in /v1/models) only where both models are installed and
served, refused with a clear 422 elsewhere; blends are cached, not rebuilt per job."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import tiny_generator
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402

from srgan import packaged  # noqa: E402
from srgan.serve.app import create_app  # noqa: E402
from srgan.serve.models import default_upscaler_loader  # noqa: E402
from srgan.weights import ModelCard, save_generator  # noqa: E402

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture()
def pair(tmp_path, monkeypatch) -> list[str]:
    files = []
    for i, name in enumerate(("clean", "real")):
        path = tmp_path / f"{name}.safetensors"
        save_generator(tiny_generator(seed=i), path, ModelCard(name=name, description="t."))
        files.append(str(path))
    monkeypatch.setattr(packaged, "DENOISE_MODELS", tuple(files))
    return files


def png(seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (12, 14, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def upscale(c: TestClient, **fields):
    return c.post("/v1/upscale?wait=true", files={"image": ("a.png", png(), "image/png")},
                  data={k: str(v) for k, v in fields.items()})


def pixels(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)))


def test_denoise_blends_the_pair_0_and_1_exactly_and_caches_blends(pair):
    loads: list[float | None] = []  # the denoise strength of each model the server loads
    load = default_upscaler_loader("cpu", "fp32", None)

    def counting_loader(path, denoise=None):
        loads.append(denoise)
        return load(path, denoise=denoise)

    app = create_app(pair, loader=counting_loader)
    with TestClient(app, base_url=LOCAL) as c:
        info = c.get("/v1/models").json()
        assert info["denoise"]["available"] is True
        assert info["denoise"]["models"] == info["denoise"]["ends"] == ["clean", "real"]
        assert {m["name"]: m["denoise"] for m in info["models"]} == {
            "clean": True, "real": True, "bicubic": False}
        clean, real = pixels(upscale(c, model="clean")), pixels(upscale(c, model="real"))
        assert np.array_equal(pixels(upscale(c, model="clean", denoise=0)), clean)
        assert np.array_equal(pixels(upscale(c, model="real", denoise="1")), real)
        half = upscale(c, denoise=0.5)  # the default model is one of the pair
        assert "denoise0.5" in half.headers["content-disposition"]
        mid = pixels(half)
        assert not np.array_equal(mid, clean) and not np.array_equal(mid, real)
        # 0.52 rounds to the 0.5 blend already loaded: no new blend for it
        assert np.array_equal(pixels(upscale(c, denoise=0.52)), mid)
        assert loads == [None, None, 0.0, 1.0, 0.5]  # each blend loaded once
        job = c.post("/v1/upscale", files={"image": ("a.png", png(), "image/png")},
                     data={"denoise": "0.52"}).json()
        assert job["denoise"] == 0.5
        for bad in ("1.5", "-0.1", "nan", "lots"):
            r = upscale(c, denoise=bad)
            assert r.status_code == 422 and r.json()["detail"].startswith("denoise: ")
        r = upscale(c, model="bicubic", denoise=0.5)
        assert r.status_code == 422 and "clean and real" in r.json()["detail"]


def test_denoise_is_refused_where_a_model_of_the_pair_is_missing(pair, tmp_path, monkeypatch):
    monkeypatch.setattr(packaged, "DENOISE_MODELS", (pair[0], str(tmp_path / "gone.st")))
    with TestClient(create_app([pair[0]], device="cpu"), base_url=LOCAL) as c:
        info = c.get("/v1/models").json()["denoise"]
        assert info["available"] is False and "gone is not installed" in info["detail"]
        r = upscale(c, denoise=0.5)
        assert r.status_code == 422
        assert r.json()["detail"] == ("denoise: not offered by this server (it blends "
                                      f"{pair[0]} and {tmp_path / 'gone.st'}, and gone is "
                                      "not installed)")
        assert upscale(c).status_code == 200  # without it, the model as it is
