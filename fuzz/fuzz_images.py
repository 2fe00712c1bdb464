"""Fuzz the image-loading path: `srgan.imageio.read_image` (and what follows a successful read:
writing the result as PNG and JPEG, and the web server's header probe).

The seeds are the "ok" files of tests/image_corpus.py (PNG of every mode and depth, interlaced,
tRNS, eXIf, iCCP; JPEG baseline/progressive/CMYK/EXIF/ICC; WebP lossy/lossless/animated; GIF;
APNG; BMP; PPM; TIFF plain/deflate/float/premultiplied), mutated byte-wise (AFL-style havoc)
or structure-wise for PNG (IHDR fields, chunk order, payloads, IDAT recompressed, CRCs kept
valid so the mutations reach the decoders instead of stopping at the CRC check).

What must hold for every input:
* read_image raises ImageReadError naming the file, or returns pixels that are float32,
  finite, in [0, 1], HxWxC with C in 1..4, bit depth 8 or 16, within the pixel limit;
* what was read can be written as PNG (no exception) and as JPEG (ImageWriteError at most);
* the server's probe (if fastapi is installed) returns a size or raises its BadRequest.
Anything else is a crash; an input slower than --slow seconds is a finding too.

    python fuzz/fuzz_images.py --seconds 180            # Hypothesis-driven (default)
    python fuzz/fuzz_images.py --engine atheris         # coverage-guided, if atheris installed
    python fuzz/fuzz_images.py --replay fuzz/crashes/images-crash-*.bin
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import Driver, Rejected, byte_mutate, main_loop, parse_args, png_mutate  # noqa: E402

from srgan.imageio import (  # noqa: E402
    ImageReadError,
    ImageWriteError,
    display_path,
    read_image,
    write_image,
)

MAX_PIXELS = 4_000_000  # keeps every accepted decode small; the limit itself is tested too
warnings.simplefilter("ignore")  # Pillow warns about every odd tag it skips


def seeds() -> list[bytes]:
    """Every regular "ok" file of the test corpus (no links, folders or bombs)."""
    from image_corpus import make_corpus

    with tempfile.TemporaryDirectory() as tmp:
        out = []
        for case in make_corpus(Path(tmp)):
            p = case.path
            if case.expect == "ok" and not p.is_symlink() and p.is_file():
                out.append(p.read_bytes())
        return out


def make_checker(workdir: Path):
    src = workdir / "input.img"
    probe = _server_probe()

    def check(data: bytes) -> None:
        src.write_bytes(data)
        try:
            img = read_image(src, max_pixels=MAX_PIXELS)
        except ImageReadError as exc:
            if display_path(src) not in str(exc):
                raise AssertionError(f"error does not name the file: {exc}") from exc
            img = None
        if probe is not None:
            probe(data)
        if img is None:
            raise Rejected
        px = img.pixels
        assert px.dtype == np.float32 and px.ndim == 3 and px.shape[2] in (1, 2, 3, 4), px.shape
        assert px.shape[0] * px.shape[1] <= MAX_PIXELS, px.shape
        assert img.bit_depth in (8, 16), img.bit_depth
        assert np.isfinite(px).all() and px.min(initial=0) >= 0 and px.max(initial=0) <= 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_image(img, workdir / "out.png", overwrite=True)
            back = read_image(workdir / "out.png", max_pixels=0)
            assert back.size == img.size and back.channels == img.channels
            with contextlib.suppress(ImageWriteError):
                write_image(img, workdir / "out.jpg", overwrite=True)

    return check


def _server_probe():
    """The web app's header probe, if fastapi is installed: BadRequest or a size, only."""
    try:
        from srgan.serve.app import BadRequest, Limits, ModelEntry, Service
    except ImportError:
        return None
    svc = Service({}, "x", Limits(1_000_000, 16_000_000, 20 << 20), None, None)
    entry = ModelEntry("x", None, 4)

    def probe(data: bytes) -> None:
        with contextlib.suppress(BadRequest):
            svc.probe(io.BytesIO(data), "upload.png", entry, 4.0)

    return probe


def main() -> int:
    args = parse_args("Fuzz srgan's image loader", str(HERE / "crashes"))
    seed_files = seeds()
    with tempfile.TemporaryDirectory(prefix="srgan-fuzz-img-") as tmp:
        driver = Driver("images", make_checker(Path(tmp)), args.crash_dir, args.seconds,
                        args.slow)

        def make_input(rnd: random.Random) -> bytes:
            base = rnd.choice(seed_files)
            if base.startswith(b"\x89PNG") and rnd.random() < 0.5:
                out = png_mutate(base, rnd)
                if out is not None:
                    if rnd.random() < 0.3:  # and sometimes havoc on top (CRCs break)
                        out = bytes(byte_mutate(bytearray(out), rnd, 1))
                    return out
            return bytes(byte_mutate(bytearray(base), rnd, rnd.choice((1, 1, 2, 4, 8, 16))))

        print(f"fuzzing read_image with {len(seed_files)} seeds for {args.seconds:g} s "
              f"({args.engine}); pid {os.getpid()}", flush=True)
        from common import limit_memory

        limit_memory(args.memory_gib)
        return main_loop(args, driver, seed_files, make_input)


if __name__ == "__main__":
    sys.exit(main())
