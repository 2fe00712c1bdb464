"""End to end in a real browser: Debian's chromium driven by Playwright for Python, against
`srgan serve`'s app on uvicorn (127.0.0.1, a free port), at a desktop size and at a phone size
(390x844, touch). Skipped when either is missing; .ci/run installs chromium and runs
`pytest -m browser`.

Every page load also checks that nothing was requested from another origin and that the
Content-Security-Policy blocked nothing (so the policy and the page agree).

Set SRGAN_DOCS_SCREENSHOT=docs/serve-screenshot.png to also retake the docs' screenshots
(desktop, and the phone one next to it) with the shipped model on examples/ladybird_lr.png.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

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
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True}
SIZES = {"desktop": DESKTOP, "phone": PHONE}

if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from srgan.inference import Upscaler, resize_to  # noqa: E402
from srgan.serve.app import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def photo(h: int = 48, w: int = 64, seed: int = 0) -> Image.Image:
    """A small picture with edges and gradients (something worth upscaling)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(xx / (5.0 + seed))
    g = (yy / h) * ((xx // 8) % 2)
    b = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (h / 3) ** 2).astype(np.float32)
    arr = (np.stack([r, g, b], axis=2) * 255).round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def save(img: Image.Image, path: Path, **kw: Any) -> Path:
    img.save(path, **kw)
    return path


class Gated:
    """An upscaler that waits for `gate` before each job: lets a test act while one runs."""

    gate = threading.Event()

    def __init__(self, inner: Upscaler) -> None:
        self.inner = inner
        self.scale = inner.scale

    def upscale(self, data, outscale=None, tta=False):
        assert self.gate.wait(30)
        return self.inner.upscale(data, outscale, tta=tta)


def start_server(app) -> tuple[Any, threading.Thread, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300  # only a hang: a busy machine starts slowly
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def server_url(tiny_model_path: Path, tmp_path_factory):
    second = tmp_path_factory.mktemp("second") / "tiny_b_x4.safetensors"
    second.write_bytes(tiny_model_path.read_bytes())
    Gated.gate.set()
    app = create_app([str(tiny_model_path), str(second)], device="cpu", max_pixels=100_000,
                     max_upload_mb=1,
                     loader=lambda path: Gated(Upscaler.from_pretrained(path, device="cpu")))
    server, thread, url = start_server(app)
    yield url
    Gated.gate.set()
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, url: str, **context_args: Any):
    """A page on `url` that records foreign requests, CSP violations and POSTs."""
    context = browser.new_context(accept_downloads=True, **context_args)
    pg = context.new_page()
    pg.foreign, pg.csp, pg.posts = [], [], []
    local = (url, f"blob:{url}", "data:")
    pg.on("request", lambda req: None if req.url.startswith(local) else
          pg.foreign.append(req.url))
    pg.on("request", lambda req: req.method == "POST" and pg.posts.append(req.url))
    pg.on("console", lambda msg: "Content Security Policy" in msg.text and
          pg.csp.append(msg.text))
    pg.goto(url)
    return context, pg


@pytest.fixture
def page(browser, server_url):
    """A desktop page (one size: the phone has its own tests, and a browser run per size
    would double the cost of every test)."""
    context, pg = open_page(browser, server_url, **DESKTOP)
    pg.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
    yield pg
    assert pg.foreign == [], f"the page fetched from elsewhere: {pg.foreign}"
    assert pg.csp == [], f"the CSP blocked something: {pg.csp}"
    context.close()


@pytest.fixture
def desktop(browser, server_url):
    context, pg = open_page(browser, server_url, **DESKTOP)
    pg.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
    yield pg
    assert pg.foreign == [] and pg.csp == []
    context.close()


def image_of(page, selector: str) -> np.ndarray:
    """The pixels of an <img> on the page, as float RGB in [0, 1] (through a canvas: the
    CSP lets the page fetch nothing but its own server, blob: URLs included)."""
    b64 = page.evaluate("""(sel) => {
        const img = document.querySelector(sel);
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.getContext('2d').drawImage(img, 0, 0);
        return c.toDataURL('image/png').split(',')[1];
    }""", selector)
    img = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255


def bicubic_of(img: Image.Image, scale: float = 4) -> np.ndarray:
    src = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
    return resize_to(src, src.shape[0], src.shape[1], scale)


def wait_result(page, timeout: float = 30_000) -> None:
    page.wait_for_selector("#before", state="visible", timeout=timeout)


def until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout  # only to catch a hang
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --------------------------------------------------------------------------- the main path


def test_upload_upscale_compare_download(page, tmp_path: Path):
    src = save(photo(), tmp_path / "photo.png")
    assert page.locator("#model").input_value() == "tiny_x4"
    assert "megapixels" in page.inner_text("#limits")
    page.set_input_files("#file", str(src))
    # the preview shows the image and its pixel size before anything is sent
    page.wait_for_function("() => document.querySelector('#preview .size').textContent"
                           ".includes('64 × 48 px')")
    assert page.locator("#preview img").is_visible() and page.posts == []
    page.click("#go")
    wait_result(page)
    assert page.locator("#error").is_hidden()
    assert "64x48 → 256x192" in page.inner_text("#result-info")
    assert page.inner_text("#tag-before") == "bicubic"
    assert page.inner_text("#tag-after").startswith("tiny_x4")
    # issue 15 bug 1: one upload per run (the bicubic side is made in the browser) ...
    assert len(page.posts) == 1
    # ... both sides have the same pixel size, are shown at the same size, and the left one
    # is MATLAB bicubic of the very file uploaded
    sizes = page.evaluate("""() => [...document.querySelectorAll('#compare img')].map(
        i => [i.naturalWidth, i.naturalHeight, i.clientWidth, i.clientHeight])""")
    assert sizes[0] == sizes[1] and sizes[0][:2] == [256, 192]
    assert np.abs(image_of(page, "#before") - bicubic_of(photo())).max() <= 1.5 / 255
    # issue 15 bug 8: "fit" never enlarges a small result (256 image px -> <= 256 CSS px)
    assert sizes[0][2] <= 256 and not page.evaluate(
        "document.getElementById('compare').classList.contains('pixelated')")
    # the slider moves the divider
    page.fill("#slider", "25")
    page.dispatch_event("#slider", "input")
    assert page.evaluate("document.getElementById('divider').style.left") == "25%"
    # issue 15 bug 3: the two labels never overlap, and a swipe on the image is ours
    boxes = [page.locator(s).bounding_box() for s in ("#tag-before", "#tag-after")]
    assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"], boxes
    assert page.evaluate("getComputedStyle(document.getElementById('compare')).touchAction"
                         ) == "pan-y pinch-zoom"

    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "photo_x4.png"
    assert Image.open(download.path()).size == (64 * 4, 48 * 4)

    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] >= 390


def test_the_comparison_stays_one_image_when_another_is_chosen_while_busy(desktop,
                                                                           tmp_path: Path):
    """Issue 15 bug 1: choosing another image while the first was processed made the left
    side a bicubic of the second image."""
    page = desktop
    first = save(photo(48, 64), tmp_path / "first.png")
    second = save(photo(30, 40, seed=3), tmp_path / "second.png")
    Gated.gate.clear()
    try:
        page.set_input_files("#file", str(first))
        page.click("#go")
        page.wait_for_function("() => document.getElementById('status-text').textContent"
                               ".includes('Upscaling')", timeout=30_000)
        page.set_input_files("#file", str(second))  # refused while busy, and said so
        assert "An upscale is running" in page.inner_text("#notice")
    finally:
        Gated.gate.set()
    wait_result(page)
    page.wait_for_function("() => document.getElementById('cancel').hidden")
    assert len(page.posts) == 1
    after, before = image_of(page, "#after"), image_of(page, "#before")
    assert after.shape == before.shape == (192, 256, 3)
    assert np.abs(before - bicubic_of(photo(48, 64))).max() <= 1.5 / 255


def test_mouse_drag_moves_the_divider_and_stops_on_release(desktop, tmp_path: Path):
    """Issue 15 bug 2: a mouse drag started a native image drag; afterwards the divider
    followed the pointer with no button down."""
    page = desktop
    page.set_input_files("#file", str(save(photo(), tmp_path / "p.png")))
    page.click("#go")
    wait_result(page)
    box = page.locator("#compare").bounding_box()
    y = box["y"] + box["height"] / 2
    at = lambda f: box["x"] + f * box["width"]  # noqa: E731
    left = lambda: float(page.evaluate(  # noqa: E731
        "document.getElementById('divider').style.left").rstrip("%"))
    page.mouse.move(at(0.3), y)
    page.mouse.down()
    page.mouse.move(at(0.5), y, steps=5)
    page.mouse.move(at(0.7), y, steps=5)
    assert abs(left() - 70) < 2
    page.mouse.up()
    page.mouse.move(at(0.2), y, steps=5)  # no button down: the divider stays
    assert abs(left() - 70) < 2


def test_a_horizontal_swipe_moves_the_divider_and_keeps_the_page(browser, server_url,
                                                                 tmp_path: Path):
    """Issue 15 bug 3: in touch emulation a swipe went back in history and lost the result."""
    context, page = open_page(browser, server_url, **PHONE)
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
    page.goto(server_url + "#second")  # a history entry a back-swipe would return to
    page.set_input_files("#file", str(save(photo(), tmp_path / "p.png")))
    page.click("#go")
    wait_result(page)
    box = page.locator("#compare").bounding_box()
    y = box["y"] + box["height"] / 2
    cdp = context.new_cdp_session(page)
    xs = [box["x"] + f * box["width"] for f in (0.8, 0.6, 0.4, 0.2)]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart",
                                          "touchPoints": [{"x": xs[0], "y": y}]})
    for x in xs[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                              "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_timeout(300)
    assert page.url.endswith("#second") and page.locator("#result").is_visible()
    assert float(page.evaluate("document.getElementById('divider').style.left")
                 .rstrip("%")) < 35
    context.close()


# --------------------------------------------------------------------------- messages


@pytest.mark.filterwarnings("ignore::srgan.imageio.ImageWarning")
def test_server_warnings_stay_on_screen(desktop, tmp_path: Path):
    """Issue 15 bug 4: the caption overwrote the server's warnings a moment after they came."""
    page = desktop
    frames = [photo(seed=s) for s in (0, 2)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    page.set_input_files("#file", str(gif))
    page.click("#go")
    wait_result(page)
    page.wait_for_function("() => document.getElementById('compare-note').textContent"
                           ".startsWith('Left of the line')")
    assert "first frame" in page.inner_text("#warnings")
    assert page.locator("#warnings").is_visible()


def test_the_busy_message_says_it_once(desktop, tmp_path: Path):
    """Issue 15 bug 5: "... try again in 15 s Try again in 15 s"."""
    page = desktop
    page.route("**/v1/upscale", lambda route: route.fulfill(
        status=503, headers={"Retry-After": "15", "Content-Type": "application/json"},
        body='{"detail": "the server is busy (9 jobs running or waiting); try again in 15 s"}'))
    page.set_input_files("#file", str(save(photo(), tmp_path / "p.png")))
    page.click("#go")
    page.wait_for_selector("#error", state="visible", timeout=30_000)
    text = page.inner_text("#error")
    assert text == "the server is busy (9 jobs running or waiting); try again in 15 s"
    assert page.evaluate("document.activeElement.id") == "error"  # focus is not lost


def test_drop_and_error_message(page):
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
    page.wait_for_function("() => document.querySelector('#preview .size').textContent"
                           ".includes('no preview')")
    page.click("#go")
    page.wait_for_selector("#error", state="visible", timeout=30_000)
    assert "notes.png: not an image" in page.inner_text("#error")
    assert page.locator("#result").is_hidden()


def test_limits_are_checked_before_sending(desktop, tmp_path: Path):
    """Issue 25 item 9: a 2000x2000 image (its size shown in the preview) was uploaded and
    then refused; 1000x1000 at x8 too; a 21 MB file was flagged but Upscale stayed enabled.
    The server here takes 100,000 pixels, 1 MB uploads and 1.6 MP outputs."""
    page = desktop
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (700, 700, 3), np.uint8)).save(
        big, "PNG")  # ~1.4 MB > the 1 MB limit
    page.set_input_files("#file", str(big))
    assert "accepts uploads up to 1.0 MB" in page.inner_text("#error")
    assert page.locator("#go").is_disabled()
    page.set_input_files("#file", str(save(photo(300, 400), tmp_path / "wide.png")))
    page.wait_for_function("() => document.getElementById('error').textContent"
                           ".includes('120,000 pixels')")
    assert "takes up to 100,000" in page.inner_text("#error")
    assert page.locator("#go").is_disabled()
    page.set_input_files("#file", str(save(photo(300, 300), tmp_path / "square.png")))
    page.wait_for_function("() => !document.getElementById('go').disabled")  # 90,000 px, x4
    page.select_option("#outscale", "8")  # 2400 x 2400 = 5.76 MP out
    assert "smaller output scale" in page.inner_text("#error")
    assert page.locator("#go").is_disabled()
    page.select_option("#outscale", "4")
    assert page.locator("#go").is_enabled() and page.locator("#error").is_hidden()
    assert page.posts == []  # nothing was sent for any of it


# --------------------------------------------------------------------------- features


def test_models_are_listed_in_plain_words_and_the_choice_is_used(desktop, tmp_path: Path):
    page = desktop
    options = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert options == ["tiny_x4", "tiny_b_x4"]  # whatever the server offers, bicubic aside
    assert page.inner_text("#model-card") == "tiny_x4 (×4): test."
    page.select_option("#model", "tiny_b_x4")
    page.set_input_files("#file", str(save(photo(), tmp_path / "p.png")))
    page.click("#go")
    wait_result(page)
    assert page.inner_text("#tag-after").startswith("tiny_b_x4")


def test_one_model_against_another_on_the_slider(desktop, server_url, tmp_path: Path):
    """With two models, the left side can be the other model's result for the same file."""
    import httpx

    page = desktop
    assert page.eval_on_selector_all("#compare-with option", "os => os.map(o => o.value)") == [
        "bicubic", "tiny_x4", "tiny_b_x4"]
    src = save(photo(), tmp_path / "ab.png")
    page.set_input_files("#file", str(src))
    page.select_option("#compare-with", "tiny_b_x4")
    page.click("#go")
    wait_result(page)
    assert len(page.posts) == 2  # one per model; the same file both times
    assert page.inner_text("#tag-before") == "tiny_b_x4 (model)"
    assert page.inner_text("#tag-after").startswith("tiny_x4")
    want = httpx.post(server_url + "v1/upscale?wait=true", data={"model": "tiny_b_x4"},
                      files={"image": ("ab.png", src.read_bytes(), "image/png")}).content
    want = np.asarray(Image.open(io.BytesIO(want)).convert("RGB"), dtype=np.float32) / 255
    assert np.array_equal(image_of(page, "#before"), want)


def test_paste_an_image(page):
    png = io.BytesIO()
    photo(20, 30).save(png, "PNG")
    page.evaluate("""(b64) => {
        const bin = atob(b64);
        const bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'image.png', {type: 'image/png'}));
        document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt}));
    }""", base64.b64encode(png.getvalue()).decode())
    page.wait_for_function("() => document.querySelector('#preview .size').textContent"
                           ".includes('30 × 20 px')")
    assert "pasted-1.png" in page.inner_text("#drop-text")
    page.click("#go")
    wait_result(page)
    assert "30x20 → 120x80" in page.inner_text("#result-info")


def test_several_files_one_after_another_and_a_zip(page, tmp_path: Path):
    files = [save(photo(24 + 4 * i, 32, seed=i), tmp_path / f"p{i}.png") for i in range(3)]
    page.set_input_files("#file", [str(f) for f in files])
    page.wait_for_function("() => document.querySelectorAll('#preview li').length === 3")
    assert page.inner_text("#drop-text") == "3 images chosen"
    page.click("#go")
    page.wait_for_selector("#download-all", state="visible", timeout=60_000)
    assert len(page.posts) == 3
    assert page.eval_on_selector_all("#batch li", "ls => ls.map(l => l.textContent)") == [
        "p0_x4.png", "p1_x4.png", "p2_x4.png"]
    page.click("#batch li:nth-child(2) button")  # view the second one
    page.wait_for_function("() => document.getElementById('after').naturalHeight === 112")
    with page.expect_download() as info:
        page.click("#download-all")
    with zipfile.ZipFile(info.value.path()) as z:
        assert z.testzip() is None
        assert z.namelist() == ["p0_x4.png", "p1_x4.png", "p2_x4.png"]
        sizes = [Image.open(io.BytesIO(z.read(n))).size for n in z.namelist()]
    assert sizes == [(128, 96), (128, 112), (128, 128)]


def test_queue_position_and_cancel(page, server_url, tmp_path: Path):
    """While another job holds the worker, the page says where its job stands; Cancel
    withdraws it, and the page is ready for the next run."""
    import httpx

    Gated.gate.clear()
    other = threading.Thread(target=lambda: httpx.post(
        server_url + "v1/upscale?wait=true",
        files={"image": ("o.png", _png(photo()), "image/png")}, timeout=60))
    try:
        other.start()
        for _ in range(500):  # the other job holds the worker before ours is sent
            if httpx.get(server_url + "healthz").json()["queue"]["running"] == 1:
                break
            time.sleep(0.02)
        page.set_input_files("#file", str(save(photo(), tmp_path / "mine.png")))
        page.click("#go")
        page.wait_for_function("() => document.getElementById('status-text').textContent"
                               ".includes('1 job ahead of yours')", timeout=30_000)
        assert page.evaluate("document.activeElement.id") == "cancel"
        page.keyboard.press("Escape")  # issue 25 item 12: Escape did not cancel
        page.wait_for_selector("#error", state="visible")
        assert page.inner_text("#error").startswith("Cancelled.")
        assert page.locator("#go").is_enabled() and page.locator("#cancel").is_hidden()
        # issue 25 item 3: the cancelled job left the line at once, the other still runs
        until(lambda: httpx.get(server_url + "healthz").json()["queue"]["waiting"] == 0)
        assert httpx.get(server_url + "healthz").json()["queue"]["running"] == 1
    finally:
        Gated.gate.set()
        other.join(60)
    health = httpx.get(server_url + "healthz").json()
    assert health["queue"]["running"] == 0 and health["queue"]["waiting"] == 0


def test_dark_mode_follows_the_system_on_the_page_and_the_api_docs(browser, server_url):
    """Issue 25 item 12: /docs stayed white in dark mode."""
    colours = {}
    for scheme in ("light", "dark"):
        for size in ("desktop", "phone"):
            context, page = open_page(browser, server_url, color_scheme=scheme, **SIZES[size])
            colours[scheme, size] = page.evaluate(f"""() => [document.documentElement,
                    document.querySelector('.panel'), document.querySelector('h1')].map(
                e => {_SUM_OF_COLOUR}(e, e.tagName === 'H1' ? 'color' : 'backgroundColor'))""")
            context.close()
        context, page = open_page(browser, server_url + "docs", color_scheme=scheme, **DESKTOP)
        page.wait_for_selector(".opblock", timeout=30_000)
        # what is drawn where the operations are: the filter inverts Swagger's white
        colours[scheme, "docs"] = page.evaluate(f"""() => {{
            const box = document.getElementById('swagger-ui');
            const f = getComputedStyle(box).filter;
            return [{_SUM_OF_COLOUR}(document.documentElement, 'backgroundColor'),
                    f.includes('invert') ? 1 : 0];
        }}""")
        context.close()
    for size in ("desktop", "phone"):  # page and panels dark, text light, and the reverse
        light, dark = colours["light", size], colours["dark", size]
        assert all(v > 600 for v in light[:2]) and light[2] < 150, colours
        assert all(v < 150 for v in dark[:2]) and dark[2] > 600, colours
    assert colours["light", "docs"][1] == 0 and colours["dark", "docs"] == [
        colours["dark", "docs"][0], 1] and colours["dark", "docs"][0] < 150, colours


_SUM_OF_COLOUR = """((e, prop) => (getComputedStyle(e)[prop].match(/\\d+/g) || [255, 255, 255])
    .slice(0, 3).reduce((a, b) => a + Number(b), 0))"""


def test_keyboard_only(browser, server_url, tmp_path: Path):
    """Every stop has a visible focus, the file input is not a stop of its own, a whole run
    works from the keyboard, and focus lands on the result afterwards."""
    context, page = open_page(browser, server_url, **DESKTOP)
    # Playwright turns on file-chooser interception when the first listener is added, one
    # round trip later; a key pressed before that opens a native dialog that never reports.
    # A listener from the start makes the chooser below always interceptable.
    page.on("filechooser", lambda _chooser: None)
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")

    def tab(key: str = "Tab") -> list:
        page.keyboard.press(key)
        return page.evaluate("""() => {
            const e = document.activeElement, s = getComputedStyle(e);
            return [e.id || e.textContent.trim(), s.outlineStyle, parseFloat(s.outlineWidth)];
        }""")

    stops = [tab(), tab()]
    assert [s[0] for s in stops] == ["API docs", "choose"]
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(save(photo(), tmp_path / "k.png")))
    stops += [tab() for _ in range(6)]
    ids = [s[0] for s in stops]
    assert ids == ["API docs", "choose", "Try an example", "model", "compare-with", "outscale",
                   "format", "go"], ids
    assert all(style != "none" and width >= 2 for _, style, width in stops), stops
    page.keyboard.press("Enter")
    wait_result(page)
    page.wait_for_function("() => document.activeElement.id === 'download'")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    assert tab()[0] == "download-all" or page.locator("#download-all").is_hidden()
    assert page.foreign == [] and page.csp == []
    context.close()


def test_api_docs_work_offline(desktop, server_url):
    """Issue 15 bug 6: /docs loaded Swagger UI from a CDN and was blank offline."""
    page = desktop
    page.goto(server_url + "docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 5
    assert "/v1/upscale" in page.inner_text("#swagger-ui")
    assert page.foreign == [] and page.csp == []


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- jobs on the page


def _job(**kw: Any) -> dict:
    job = {"id": "f" * 32, "url": "/v1/jobs/" + "f" * 32, "state": "waiting", "stage": "waiting",
           "position": 2, "ahead": 2, "tiles_done": 0, "tiles_total": 0, "progress": 0,
           "elapsed_s": 0, "eta_s": 40, "poll_after_s": 0.5, "format": "png",
           "input_size": [64, 48], "output_size": [256, 192]}
    return {**job, **kw}


def test_the_page_shows_position_then_tiles_and_eta_then_the_result(desktop, tmp_path: Path):
    """Issue 25 items 1, 2 and 5: an indeterminate bar under "about 7 s" for 473 s. The page
    now follows a server-issued job: its place in line, then tile n of N with the time left
    (the bar moving between polls), then the result; polls back off as the server says."""
    import json

    page = desktop
    result = _png(photo(192, 256))
    answers = [_job(position=1, ahead=1, eta_s=30),
               _job(state="running", stage="upscaling", tiles_total=4, eta_s=8, elapsed_s=2),
               _job(state="running", stage="upscaling", tiles_done=1, tiles_total=4, eta_s=6,
                    elapsed_s=4, poll_after_s=1.5),
               _job(state="running", stage="upscaling", tiles_done=3, tiles_total=4, eta_s=2,
                    elapsed_s=8),
               _job(state="done", stage="done", tiles_done=4, tiles_total=4, eta_s=0,
                    result={"url": "/v1/jobs/" + "f" * 32 + "/result", "filename": "p_x4.png",
                            "seconds": 10.5, "warnings": []})]
    polls: list[float] = []

    def poll(route):
        polls.append(time.monotonic())
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps(answers[min(len(polls) - 1, len(answers) - 1)]))

    page.route("**/v1/upscale", lambda route: route.fulfill(
        status=202, content_type="application/json", body=json.dumps(_job())))
    page.route("**/v1/jobs/" + "f" * 32, poll)
    page.route("**/result", lambda route: route.fulfill(status=200, content_type="image/png",
                                                        body=result))
    page.set_input_files("#file", str(save(photo(), tmp_path / "p.png")))
    page.click("#go")
    seen = []
    for _ in range(400):
        text = page.inner_text("#status-text") if page.locator("#status").is_visible() else ""
        value = page.evaluate("document.getElementById('progress').getAttribute('value')")
        if text and (not seen or seen[-1][0] != text):
            seen.append((text, value))
        if page.locator("#before").is_visible():
            break
        page.wait_for_timeout(50)
    texts = [t for t, _ in seen]
    assert any("2nd (2 jobs ahead of yours), about 40 s" in t for t in texts), texts
    assert any("1st (1 job ahead of yours)" in t for t in texts), texts
    assert any(t.startswith("Upscaling: tile 2 of 4, about") for t in texts), texts
    assert any(t.startswith("Upscaling: tile 4 of 4") for t in texts), texts
    tiles = [float(v) for t, v in seen if t.startswith("Upscaling") and v is not None]
    assert tiles == sorted(tiles) and tiles[-1] >= 75 and len(set(tiles)) >= 3, seen
    assert "256x192 pixels in 10.50 s" in page.inner_text("#result-info")
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    assert gaps[2] >= 1.2  # the server's poll_after_s was followed, not a fixed 0.5 s


def test_the_bar_moves_between_polls_but_never_past_the_tile_being_run(desktop):
    """Issue 25 item 1 (done when: a 1000x1000 upload's bar moves every few seconds). Its 4
    tiles take minutes each on 2 cores, so between two polls the bar and the countdown move
    on from the last answer (progress.js draws it once a second), short of the next tile."""
    job = _job(state="running", stage="upscaling", tiles_done=1, tiles_total=4, eta_s=300,
               elapsed_s=100)
    views = desktop.evaluate("""(job) => [0, 1, 5, 30, 1000].map(dt => Progress.view(job, dt))
        """, job)
    texts, bars = [t for t, _ in views], [b for _, b in views]
    assert bars[0] == 25 and bars == sorted(bars) and bars[1] > bars[0], bars
    assert len(set(bars[:4])) == 4 and bars[-1] < 50, bars  # tile 2 of 4 is not done yet
    assert texts[0] == "Upscaling: tile 2 of 4, about 5 min 00 s left", texts
    assert texts[3] == "Upscaling: tile 2 of 4, about 4 min 30 s left", texts


def test_results_are_drawn_at_css_pixel_size_on_dense_screens(browser, server_url,
                                                              tmp_path: Path):
    """Issue 25 item 6: one image pixel per device pixel made a 256-pixel result 128 CSS
    pixels wide at density 2 and 85 at density 3. "100 %" is one image pixel per CSS pixel,
    and "fit" (the default) shrinks a result wider than the panel to the panel."""
    src = save(photo(40, 120), tmp_path / "p.png")  # a 480x160 result
    for args in ({**DESKTOP, "device_scale_factor": 2}, PHONE):
        context, page = open_page(browser, server_url, **args)
        page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
        page.set_input_files("#file", str(src))
        page.click("#go")
        wait_result(page)
        assert page.locator("#zoom").input_value() == "fit"
        width = page.evaluate("document.getElementById('after').getBoundingClientRect().width")
        room = page.evaluate("document.getElementById('viewport').clientWidth")
        if room >= 480:  # the desktop: the whole result at its CSS size
            assert width == 480, (args, width)
        else:  # the phone: the panel's width, not 480 / 3 device pixels' worth
            assert room - 2 <= width <= room, (args, width, room)
        page.select_option("#zoom", "1")  # 100% = one CSS pixel per image pixel
        assert page.evaluate("document.getElementById('after').clientWidth") == 480
        page.select_option("#zoom", "2")  # 200% = two CSS pixels per image pixel
        assert page.evaluate("document.getElementById('after').clientWidth") == 960
        context.close()


def test_the_phone_layout(browser, server_url, tmp_path: Path):
    """Issue 25 items 7, 8 and 12 on a phone: labels cut to "s..." | "s...", a range bar
    wider than the image with no handle on the line, a vertical swipe that moved the divider,
    "Ctrl+V" and "drop" in the touch layout, a model select 6 px out of the panel."""
    context, page = open_page(browser, server_url, **PHONE)
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
    text = page.inner_text("#drop-text")
    assert "Ctrl" not in text and "drop" not in text.lower(), text
    panel = page.locator("#input-panel").bounding_box()
    select = page.locator("#model").bounding_box()
    assert select["x"] + select["width"] <= panel["x"] + panel["width"], (select, panel)
    page.select_option("#compare-with", "tiny_b_x4")
    page.set_input_files("#file", str(save(photo(), tmp_path / "p.png")))
    page.click("#go")
    wait_result(page)
    for tag in ("#tag-before", "#tag-after"):  # the whole name, nothing cut
        assert page.evaluate(f"""() => {{ const e = document.querySelector('{tag}');
            return e.scrollWidth <= e.clientWidth; }}""")
    assert page.inner_text("#tag-before") == "tiny_b_x4 (model)"
    assert page.inner_text("#tag-after") == "tiny_x4 (model)"
    compare = page.locator("#compare").bounding_box()
    slider = page.locator("#slider").bounding_box()
    assert abs(slider["x"] - compare["x"]) <= 1 and abs(slider["width"] - compare["width"]) <= 1
    handle = page.locator("#divider .handle").bounding_box()
    assert handle["width"] >= 24 and handle["height"] >= 24
    assert abs(handle["x"] + handle["width"] / 2 - (compare["x"] + compare["width"] / 2)) <= 2
    # a vertical swipe that starts on the image scrolls; the divider stays where it was
    cdp = context.new_cdp_session(page)
    x, y0 = compare["x"] + 0.8 * compare["width"], compare["y"] + 0.6 * compare["height"]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart",
                                          "touchPoints": [{"x": x, "y": y0}]})
    for dy in (10, 25, 40, 60):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                              "touchPoints": [{"x": x + 1, "y": y0 - dy}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_timeout(200)
    assert page.evaluate("document.getElementById('divider').style.left") == "50%"
    assert page.foreign == [] and page.csp == []
    context.close()


def test_nothing_is_ignored_silently(desktop, tmp_path: Path):
    """Issue 25 items 10 and 11: a dropped .txt or .pdf, a drop while busy and a drop on the
    result did nothing and said nothing; the previous result stayed under a new error."""
    page = desktop

    def drop(selector: str, name: str, kind: str, data: bytes) -> None:
        handle = page.evaluate_handle("""([name, kind, b64]) => {
            const bin = atob(b64);
            const bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: kind}));
            return dt;
        }""", [name, kind, base64.b64encode(data).decode()])
        page.dispatch_event(selector, "drop", {"dataTransfer": handle})

    drop("#drop", "notes.txt", "text/plain", b"some notes")
    assert "notes.txt is not an image (text/plain)" in page.inner_text("#notice")
    drop("#drop", "paper.pdf", "application/pdf", b"%PDF-1.4")
    assert "paper.pdf is not an image" in page.inner_text("#notice")
    page.set_input_files("#file", str(save(photo(), tmp_path / "first.png")))
    page.click("#go")
    wait_result(page)
    drop("#viewport", "second.png", "image/png", _png(photo(30, 40, seed=2)))  # on the result
    page.wait_for_function("() => document.getElementById('drop-text').textContent"
                           ".includes('second.png')")
    Gated.gate.clear()
    try:
        page.click("#go")
        page.wait_for_function("() => !document.getElementById('cancel').hidden")
        drop("#drop", "third.png", "image/png", _png(photo()))
        assert "An upscale is running" in page.inner_text("#notice")
    finally:
        Gated.gate.set()
    wait_result(page)
    assert "second.png" in page.inner_text("#drop-text")  # the drop while busy was refused
    drop("#drop", "broken.png", "image/png", b"not a picture at all")
    page.click("#go")
    page.wait_for_selector("#error", state="visible", timeout=30_000)
    assert page.locator("#result").is_hidden()  # the old result is not shown under it


def test_batch_errors_model_choice_and_the_example(desktop, tmp_path: Path):
    """Issue 25 item 12: "notimage.png: notimage.png: not an image file", the output scale
    reset to x4 by a model change, no example image to try the page with."""
    page = desktop
    page.select_option("#outscale", "2")
    page.select_option("#model", "tiny_b_x4")
    assert page.locator("#outscale").input_value() == "2"  # kept
    bad = tmp_path / "notimage.png"
    bad.write_bytes(b"these are notes")
    page.set_input_files("#file", [str(save(photo(), tmp_path / "ok.png")), str(bad)])
    page.click("#go")
    page.wait_for_function("() => document.querySelector('#batch li.failed')",
                           timeout=30_000)
    failed = page.inner_text("#batch li.failed")
    assert failed.count("notimage.png") == 1, failed
    page.wait_for_function("() => document.getElementById('cancel').hidden")
    assert page.inner_text("#error").count("notimage.png") == 1
    page.click("text=Try an example")
    page.wait_for_function("() => document.querySelector('#preview .size').textContent"
                           ".includes('256 × 160 px')")
    page.select_option("#outscale", "1")
    page.click("#go")
    wait_result(page)
    assert "256x160 → 256x160" in page.inner_text("#result-info")


# --------------------------------------------------------------------------- docs screenshots


@pytest.mark.skipif(not os.environ.get("SRGAN_DOCS_SCREENSHOT"),
                    reason="set SRGAN_DOCS_SCREENSHOT=docs/serve-screenshot.png to retake")
def test_docs_screenshots(browser, tmp_path: Path):
    """The docs' screenshots, 1280x900 and 390x844, light and dark: the shipped models on
    examples/ladybird_lr.png."""
    base = Path(os.environ["SRGAN_DOCS_SCREENSHOT"])
    server, thread, url = start_server(create_app(None, device="cpu"))
    shots = []
    try:
        for size, args in (("", DESKTOP), ("-phone", PHONE)):
            for scheme in ("light", "dark"):
                path = base.with_name(base.stem + size + ("-dark" if scheme == "dark" else "")
                                      + ".png")
                context, page = open_page(browser, url, color_scheme=scheme, **args)
                page.wait_for_function(
                    "() => document.querySelectorAll('#model option').length > 0")
                page.set_input_files("#file", str(ROOT / "examples" / "ladybird_lr.png"))
                page.click("#go")
                wait_result(page, timeout=300_000)
                page.fill("#slider", "50")
                page.dispatch_event("#slider", "input")
                page.evaluate("document.activeElement.blur()")
                shot = tmp_path / path.name
                page.screenshot(path=str(shot), full_page=True, scale="css")
                shutil.copyfile(shot, path)
                shots.append(path)
                assert page.foreign == [] and page.csp == []
                context.close()
    finally:
        server.should_exit = True
        thread.join(10)
    assert [Image.open(p).size[0] for p in shots] == [1280, 1280, 390, 390]
