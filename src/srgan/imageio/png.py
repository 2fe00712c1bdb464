"""PNG, the format `srgan upscale` writes by default, handled in part by hand:

* `scan_png` checks every chunk's CRC and that the file reaches IEND, and hands the IHDR size
  to the caller's check before anything is decoded;
* `decode_png16_colour` decodes 16-bit LA/RGB/RGBA (Pillow 13 reduces those to 8 bits), still
  with Pillow's C unfilter, run once for the high bytes and once for the low bytes;
* `write_png` is a block-parallel encoder: rows are cut into blocks of about `block_bytes`,
  each filtered and deflated on its own thread (pigz's scheme), so memory does not grow with
  the image and every core works.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from srgan.imageio.errors import ImageReadError
from srgan.imageio.metadata import EXIF_PREFIX
from srgan.imageio.pil import with_key_alpha

__all__ = ["BLOCK_BYTES", "IDAT_BYTES", "PNG_MAGIC", "PNG_THREADS", "PngScan",
           "adler32_combine", "decode_png16_colour", "scan_png", "write_png"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IDAT_BYTES = 8 << 20  # compressed bytes per IDAT chunk (at most)
BLOCK_BYTES = 1 << 20  # raw bytes of rows filtered and deflated per task (~20x in temporaries)
# zlib level and strategy as Pillow's encoder: files within 0.1% of its size
_LEVEL, _STRATEGY = 6, zlib.Z_FILTERED
PNG_THREADS = max(1, min(8, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class Writable(Protocol):
    def write(self, data: bytes | memoryview, /) -> object: ...


# --------------------------------------------------------------------------- reading


@dataclass
class PngScan:
    width: int = 0
    height: int = 0
    bit_depth: int = 0
    colour_type: int = 0
    interlace: int = 0
    idat: list[bytes] = field(default_factory=list)
    trns: bytes | None = None
    exif: bytes | None = None


def scan_png(f, path: Path | None, check_size: Callable[[int, int], None]) -> PngScan:
    """Walk every chunk of the binary file `f` (after the signature): check each CRC, that the
    file reaches IEND, and pass the IHDR size to `check_size(width, height)` before anything
    is decoded. Keeps IDAT only for 16-bit colour images. `path` names the file in errors."""
    scan = PngScan()
    f.seek(len(PNG_MAGIC))
    first = True
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise ImageReadError(path, "truncated PNG (file ends before the IEND chunk)")
        length, ctype = struct.unpack(">I4s", head)
        name = ctype.decode("latin-1")
        if length > 0x7FFFFFFF:
            raise ImageReadError(path, f"corrupt PNG (chunk {name!r} claims {length} bytes)")
        if first and ctype != b"IHDR":
            raise ImageReadError(path, "corrupt PNG (first chunk is not IHDR)")
        keep = ctype in (b"IHDR", b"tRNS", b"eXIf") or (
            ctype == b"IDAT" and scan.bit_depth == 16 and scan.colour_type in (2, 4, 6)
        )
        crc = zlib.crc32(ctype)
        parts: list[bytes] = []
        remaining = length
        while remaining:
            block = f.read(min(remaining, 1 << 20))
            if not block:
                raise ImageReadError(path, f"truncated PNG (file ends inside chunk {name!r})")
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
            if keep:
                parts.append(block)
        tail = f.read(4)
        if len(tail) < 4:
            raise ImageReadError(path, f"truncated PNG (file ends inside chunk {name!r})")
        if struct.unpack(">I", tail)[0] != crc:
            raise ImageReadError(path, f"corrupt PNG (CRC mismatch in chunk {name!r})")
        data = b"".join(parts)
        if ctype == b"IHDR":
            if length != 13:
                raise ImageReadError(path, "corrupt PNG (bad IHDR length)")
            (scan.width, scan.height, scan.bit_depth, scan.colour_type, _, _,
             scan.interlace) = struct.unpack(">IIBBBBB", data)
            check_size(scan.width, scan.height)
        elif ctype == b"IDAT" and keep:
            scan.idat.append(data)
        elif ctype == b"tRNS":
            scan.trns = data
        elif ctype == b"eXIf":
            scan.exif = data
        elif ctype == b"IEND":
            return scan
        first = False


def decode_png16_colour(scan: PngScan, path: Path | None) -> np.ndarray:
    """16-bit LA/RGB/RGBA PNG -> HxWxC uint16, unfiltered by Pillow's C zip decoder."""
    size = (scan.width, scan.height)
    data = b"".join(scan.idat)
    args = (scan.interlace,)
    try:
        if scan.colour_type == 4:  # 4 bytes/pixel: L hi, L lo, A hi, A lo
            raw = np.asarray(Image.frombytes("RGBA", size, data, "zip", "RGBA", *args))
            raw = raw.astype(np.uint16)
            arr = np.stack([raw[..., 0] << 8 | raw[..., 1], raw[..., 2] << 8 | raw[..., 3]], 2)
        else:
            mode = "RGB" if scan.colour_type == 2 else "RGBA"
            hi = np.asarray(Image.frombytes(mode, size, data, "zip", mode + ";16B", *args))
            lo = np.asarray(Image.frombytes(mode, size, data, "zip", mode + ";16L", *args))
            arr = hi.astype(np.uint16) << 8 | lo.astype(np.uint16)
    except (ValueError, OSError) as exc:
        raise ImageReadError(path, f"corrupt or truncated PNG image data ({exc})") from None
    if scan.colour_type == 2 and scan.trns is not None and len(scan.trns) == 6:
        arr = with_key_alpha(arr, struct.unpack(">HHH", scan.trns), 65535)
    return arr



# --------------------------------------------------------------------------- writing


def _filter_rows(rows: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """PNG-filter a block of rows (uint8, R x N) given the row above it (uint8, N): per row the
    filter with the smallest sum of |signed bytes| (the usual heuristic). Returns R x (1 + N).
    uint8 arithmetic wraps mod 256, which is exactly what the filters need."""
    x = rows
    b = np.empty_like(x)
    b[0] = prev
    b[1:] = x[:-1]
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    ai, bi, ci = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    pa, pb, pc = np.abs(bi - ci), np.abs(ai - ci), np.abs(ai + bi - 2 * ci)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    avg = ((ai + bi) >> 1).astype(np.uint8)
    cands = (x, x - a, x - b, x - avg, x - paeth)
    costs = np.stack([np.abs(v.view(np.int8)).view(np.uint8).sum(axis=1, dtype=np.int64)
                      for v in cands])
    best = np.argmin(costs, axis=0)
    out = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
    out[:, 0] = best
    for kind, v in enumerate(cands):
        chosen = best == kind
        out[chosen, 1:] = v[chosen]
    return out


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def _png_executor() -> ThreadPoolExecutor:
    """Threads for PNG blocks (zlib and most of numpy release the GIL): one per core, up to 8."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(PNG_THREADS, thread_name_prefix="srgan-png")
        return _pool


def _png_rows(block: np.ndarray) -> np.ndarray:
    """HxWxC uint8/uint16 -> H x (W*C*bytes) uint8, big-endian samples as PNG stores them."""
    rows = np.ascontiguousarray(block.astype(">u2") if block.dtype == np.uint16 else block)
    return rows.view(np.uint8).reshape(len(block), -1)


def _deflate_rows(arr: np.ndarray, y0: int, y1: int, last: bool) -> tuple[bytes, int, int]:
    """Filter rows y0:y1 (the row above comes from the image itself, so blocks are independent)
    and raw-deflate them, ending on a byte boundary (sync flush) so that the blocks concatenate
    into one deflate stream. Returns (deflated, adler32 of the filtered bytes, their length)."""
    rows = _png_rows(arr[y0:y1])
    prev = _png_rows(arr[y0 - 1 : y0])[0] if y0 else np.zeros(rows.shape[1], np.uint8)
    filtered = _filter_rows(rows, prev, rows.shape[1] // arr.shape[1])
    comp = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15, 8, _STRATEGY)
    data = comp.compress(filtered) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return data, zlib.adler32(filtered), filtered.size


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of A+B from those of A and B and B's length (zlib's adler32_combine)."""
    base = 65521
    rem = len2 % base
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 = (sum1 + (adler2 & 0xFFFF) + base - 1) % base
    sum2 = (sum2 + (adler1 >> 16) + (adler2 >> 16) + base - rem) % base
    return sum1 | (sum2 << 16)


def write_png(out: Writable, arr: np.ndarray, icc: bytes | None, exif: bytes | None, *,
              block_bytes: int = BLOCK_BYTES, idat_bytes: int = IDAT_BYTES,
              software: str | None = None) -> None:
    """Write HxWxC uint8 or uint16 pixels (C 1..4; may be a np.memmap) as a non-interlaced PNG.

    The rows are cut into blocks of about `block_bytes`, each filtered and deflated on its
    own thread (pigz's scheme: sync-flushed raw deflate blocks, one zlib header, Adler-32s
    combined), at most two blocks per thread in flight, written in order as IDAT chunks of
    about `idat_bytes`. So memory does not grow with the image, and the encoder, which at
    zlib level 6 is slower than a GPU's upscaling by far, uses every core. Same filter
    heuristic, level and strategy as Pillow's encoder; the files are as small (within 0.1%
    on Set14 upscaled). `software` goes into a tEXt "Software" chunk before the pixels."""
    h, w, ch = arr.shape
    bits = 16 if arr.dtype == np.uint16 else 8
    header = struct.pack(">IIBBBBB", w, h, bits, {1: 0, 2: 4, 3: 2, 4: 6}[ch], 0, 0, 0)
    out.write(PNG_MAGIC + _png_chunk(b"IHDR", header))
    if icc:
        out.write(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    if exif:
        out.write(_png_chunk(b"eXIf", exif[6:] if exif.startswith(EXIF_PREFIX) else exif))
    if software:
        out.write(_png_chunk(b"tEXt", b"Software\x00" + software.encode("latin-1")))
    step = max(1, block_bytes // max(1, w * ch * bits // 8))
    starts = range(0, h, step)
    pending: list[bytes] = [b"\x78\x9c"]  # zlib header: deflate, 32K window, default level
    pending_bytes, adler = 2, 1

    def emit(result: tuple[bytes, int, int]) -> None:
        nonlocal pending, pending_bytes, adler
        data, block_adler, size = result
        adler = adler32_combine(adler, block_adler, size)
        pending.append(data)
        pending_bytes += len(data)
        if pending_bytes >= idat_bytes:
            out.write(_png_chunk(b"IDAT", b"".join(pending)))
            pending, pending_bytes = [], 0

    if len(starts) == 1:
        emit(_deflate_rows(arr, 0, h, True))
    else:
        pool = _png_executor()
        ahead = 2 * PNG_THREADS
        queue: deque[Future] = deque()
        try:
            for y0 in starts:
                queue.append(pool.submit(_deflate_rows, arr, y0, min(h, y0 + step),
                                         y0 + step >= h))
                if len(queue) >= ahead:
                    emit(queue.popleft().result())
            while queue:
                emit(queue.popleft().result())
        finally:
            for f in queue:
                f.cancel()
    pending.append(struct.pack(">I", adler))
    out.write(_png_chunk(b"IDAT", b"".join(pending)))
    out.write(_png_chunk(b"IEND", b""))

