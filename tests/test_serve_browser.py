"""End to end in a real browser: Debian's chromium driven by Playwright for Python, against
`srgan serve`'s app on uvicorn (127.0.0.1, a free port). Skipped when either is missing;
.ci/run installs chromium and runs `pytest -m browser`.

Set SRGAN_DOCS_SCREENSHOT=docs/serve-screenshot.png to also write the screenshot for the docs.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from srgan.serve.app import create_app  # noqa: E402


def photo(h: int = 48, w: int = 64) -> Image.Image:
    """A small picture with edges and gradients (something worth upscaling)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(xx / 5.0)
    g = (yy / h) * ((xx // 8) % 2)
    b = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (h / 3) ** 2).astype(np.float32)
    arr = (np.stack([r, g, b], axis=2) * 255).round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


@pytest.fixture(scope="module")
def server_url(tiny_model_path: Path):
    app = create_app([str(tiny_model_path)], device="cpu", max_pixels=100_000,
                     max_upload_mb=1)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    # the page must work offline: every request it makes goes to our server
    foreign: list[str] = []
    local = (server_url, f"blob:{server_url}", "data:")
    pg.on("request", lambda req: None if req.url.startswith(local) else
          foreign.append(req.url))
    pg.goto(server_url)
    pg.wait_for_function("document.querySelectorAll('#model option').length > 0")
    yield pg
    assert foreign == [], f"the page fetched from elsewhere: {foreign}"
    context.close()


def test_upload_upscale_compare_download(page, tmp_path: Path):
    src = tmp_path / "photo.png"
    photo().save(src)
    assert page.locator("#model").input_value() == "tiny_x4"
    assert "megapixels" in page.inner_text("#limits")
    page.set_input_files("#file", str(src))
    assert "photo.png" in page.inner_text("#drop-text")
    page.click("#go")
    page.wait_for_selector("#before", state="visible", timeout=30_000)  # bicubic arrived
    assert page.locator("#error").is_hidden()
    assert "64x48 → 256x192" in page.inner_text("#result-info")
    assert page.inner_text("#tag-before").startswith("bicubic")
    assert page.inner_text("#tag-after").startswith("tiny_x4")
    # both sides have the same pixel size and are shown at the same size
    sizes = page.evaluate("""() => [...document.querySelectorAll('#compare img')].map(
        i => [i.naturalWidth, i.naturalHeight, i.clientWidth, i.clientHeight])""")
    assert sizes[0] == sizes[1] and sizes[0][:2] == [256, 192]
    # the slider moves the divider
    page.fill("#slider", "25")
    page.dispatch_event("#slider", "input")
    assert page.evaluate("document.getElementById('divider').style.left") == "25%"

    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "photo_x4.png"
    got = Image.open(download.path())
    assert got.size == (64 * 4, 48 * 4)

    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] > 500
    docs = os.environ.get("SRGAN_DOCS_SCREENSHOT")
    if docs:
        shutil.copyfile(shot, docs)


def test_drop_and_error_message(page, tmp_path: Path):
    """A file dropped on the zone is taken; the API's error detail is shown to the person."""
    handle = page.evaluate_handle(
        """(b64) => {
            const bin = atob(b64);
            const bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'notes.png', {type: 'image/png'}));
            return dt;
        }""",
        base64.b64encode(b"these are notes, not a picture").decode(),
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": handle})
    assert "notes.png" in page.inner_text("#drop-text")
    page.click("#go")
    page.wait_for_selector("#error", state="visible", timeout=30_000)
    assert "notes.png: not an image" in page.inner_text("#error")
    assert page.locator("#result").is_hidden()


def test_too_large_upload_is_explained_before_sending(page, tmp_path: Path):
    big = tmp_path / "big.png"
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (700, 700, 3), np.uint8)).save(
        buf, "PNG")
    big.write_bytes(buf.getvalue())  # ~1.4 MB > the 1 MB limit
    page.set_input_files("#file", str(big))
    assert "accepts uploads up to 1.0 MB" in page.inner_text("#error")
    page.click("#go")  # the server says so too
    page.wait_for_function(
        "document.getElementById('error').textContent.includes('upload too large')",
        timeout=30_000)
