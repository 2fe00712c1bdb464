"""The page's "Clean up noise and JPEG" slider, in a real browser (see test_serve_browser.py):
shown only where the server offers denoise, at the chosen model's own end until moved, and
its strength sent with the job."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_generator

from srgan import packaged
from srgan.weights import ModelCard, save_generator

pytestmark = pytest.mark.browser
pytest.importorskip("playwright.sync_api")

from test_serve_browser import (  # noqa: E402
    DESKTOP,
    browser,  # noqa: F401 - the module-scoped fixture
    open_page,
    photo,
    save,
    start_server,
)

from srgan.serve.app import create_app  # noqa: E402


def serve(models: list[str]):
    server, thread, url = start_server(create_app(models, device="cpu"))
    return server, thread, url


def test_the_denoise_slider_shows_where_offered_and_its_strength_is_sent(
        browser, tmp_path: Path, monkeypatch):  # noqa: F811 - the imported fixture
    files = []
    for i, name in enumerate(("clean", "real")):
        path = tmp_path / f"{name}.safetensors"
        save_generator(tiny_generator(seed=i), path, ModelCard(name=name, description="t."))
        files.append(str(path))
    monkeypatch.setattr(packaged, "DENOISE_MODELS", (files[0], str(tmp_path / "gone.st")))
    server, thread, url = serve(files)  # one of the pair is missing: no slider
    try:
        context, page = open_page(browser, url, **DESKTOP)
        page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
        assert page.is_hidden("#denoise-label")
        context.close()
    finally:
        server.should_exit = True
        thread.join(10)
    monkeypatch.setattr(packaged, "DENOISE_MODELS", tuple(files))
    server, thread, url = serve(files)
    try:
        context, page = open_page(browser, url, **DESKTOP)
        page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
        assert page.is_visible("#denoise-label")
        assert page.input_value("#denoise") == "0"  # clean: the model alone
        assert page.inner_text("#denoise-value") == "off"
        page.select_option("#model", "real")
        assert page.input_value("#denoise") == "1"
        page.fill("#denoise", "0.5")
        page.dispatch_event("#denoise", "input")
        assert page.inner_text("#denoise-value") == "50 %"
        page.set_input_files("#file", str(save(photo(), tmp_path / "p.png")))
        page.click("#go")
        page.wait_for_selector("#before", state="visible", timeout=60_000)
        assert "denoise0.5" in page.get_attribute("#download", "download")
        page.select_option("#model", "clean")  # a moved slider stays where it was put
        assert page.input_value("#denoise") == "0.5"
        assert page.foreign == [] and page.csp == []
        context.close()
    finally:
        server.should_exit = True
        thread.join(10)
