"""A corpus of bad and odd image files, generated on demand (nothing binary is committed).

    from image_corpus import make_corpus
    for case in make_corpus(tmp_path):
        ...  # case.expect == "ok": must read (and upscale, ...) fine; "error": a clear error

Every case says what a correct reader must do with it: `expect` is "ok" or "error", and for
"ok" cases the facts a reader must reproduce (size after EXIF orientation, channels, bit
depth, exact or near pixels, ICC presence, a warning). The PNG and TIFF bytes are written here
by small independent encoders (all five PNG filter types, Adam7 interlace, 16-bit, tRNS),
so the reader is not tested against itself. Images are tiny (<= 64x64 unless the case is about
size), so running a model over the whole corpus is fast.

Cases that cannot be made on this machine (a non-UTF-8 name on a filesystem that refuses it)
are left out; the unreadable-file case expects "ok" when the process can read it anyway (root).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

__all__ = ["Case", "cmyk_icc", "jpeg_with_size", "make_corpus", "png_bytes", "srgb_icc",
           "tiff_bytes"]


@dataclass(eq=False)
class Case:
    """One file of the corpus and what a reader must make of it."""

    name: str
    path: Path
    expect: str  # "ok" or "error"
    size: tuple[int, int] | None = None  # (width, height) after EXIF orientation
    channels: int | None = None  # 1 L, 2 LA, 3 RGB, 4 RGBA
    bit_depth: int | None = None  # 8 or 16
    pixels: np.ndarray | None = None  # expected HxWxC uint8/uint16 after orientation
    tolerance: int = 0  # max |difference| from `pixels` (lossy formats)
    icc: bool | None = None  # an ICC profile must (True) / must not (False) come out
    warning: str | None = None  # substring of one of the reader's warnings
    error: str | None = None  # substring of the error message (lower-case)
    tags: frozenset[str] = field(default_factory=frozenset)  # e.g. {"alpha", "animated"}

    def __repr__(self) -> str:
        return f"Case({self.name!r}, {self.expect})"


# --------------------------------------------------------------------------- encoders


def _chunk(ctype: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(ctype + data) if crc is None else crc
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc & 0xFFFFFFFF)


def _filter_row(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    """Reference PNG filter of one scanline, byte by byte (spec section 9)."""
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 0:
            pred = 0
        elif kind == 1:
            pred = a
        elif kind == 2:
            pred = b
        elif kind == 3:
            pred = (a + b) // 2
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[i] = (x - pred) & 0xFF
    return bytes([kind]) + bytes(out)


def _scanlines(arr: np.ndarray, bit_depth: int, start: int) -> bytes:
    h, w, ch = arr.shape
    bpp = max(1, ch * bit_depth // 8)
    dt = ">u2" if bit_depth == 16 else np.uint8
    prev = bytes(w * ch * bit_depth // 8)
    out = []
    for y in range(h):
        row = arr[y].astype(dt).tobytes()
        out.append(_filter_row((start + y) % 5, row, prev, bpp))
        prev = row
    return b"".join(out)


_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
          (1, 0, 2, 1))


def png_bytes(
    arr: np.ndarray, *, bit_depth: int = 8, interlace: bool = False,
    before_idat: list[tuple[bytes, bytes]] = (), after_idat: list[tuple[bytes, bytes]] = (),
    ihdr_size: tuple[int, int] | None = None,
) -> bytes:
    """A PNG from an HxWxC uint array (C 1..4 -> grey, grey+alpha, RGB, RGBA), rows cycling
    through all five filter types, optionally Adam7-interlaced. `ihdr_size` overrides the
    header's (width, height), e.g. to claim a huge image."""
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    h, w, ch = arr.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[ch]
    if interlace:
        raw = b"".join(_scanlines(arr[y0::dy, x0::dx], bit_depth, i)
                       for i, (y0, x0, dy, dx) in enumerate(_ADAM7)
                       if arr[y0::dy, x0::dx].size)
    else:
        raw = _scanlines(arr, bit_depth, 0)
    hw, hh = ihdr_size or (w, h)
    ihdr = struct.pack(">IIBBBBB", hw, hh, bit_depth, colour_type, 0, 0, int(interlace))
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr)]
    parts += [_chunk(t, d) for t, d in before_idat]
    parts.append(_chunk(b"IDAT", zlib.compress(raw, 9)))
    parts += [_chunk(t, d) for t, d in after_idat]
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def tiff_bytes(arr: np.ndarray, *, extra_samples: int | None = None, float32: bool = False
               ) -> bytes:
    """A baseline little-endian uncompressed TIFF from HxWxC uint8/uint16 or float32 (C 1..4;
    C 2 and 4 carry alpha: `extra_samples` 1 = associated/premultiplied, 2 = unassociated)."""
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    h, w, ch = arr.shape
    bits = 32 if float32 else arr.dtype.itemsize * 8
    data = arr.astype("<f4" if float32 else arr.dtype.newbyteorder("<")).tobytes()
    tags: list[tuple[int, int, list[int]]] = [  # (tag, type 3=SHORT 4=LONG, values)
        (256, 4, [w]), (257, 4, [h]), (258, 3, [bits] * ch), (259, 3, [1]),
        (262, 3, [1 if ch <= 2 else 2]), (273, 4, [0]), (277, 3, [ch]), (278, 4, [h]),
        (279, 4, [len(data)]), (284, 3, [1]),
    ]
    if extra_samples is not None:
        tags.append((338, 3, [extra_samples]))
    if float32:
        tags.append((339, 3, [3] * ch))
    ifd_end = 8 + 2 + 12 * len(tags) + 4
    spill = bytearray()  # values longer than 4 bytes live after the IFD
    body = bytearray()
    offsets = {}
    for tag, typ, values in tags:
        raw = struct.pack("<" + ("H" if typ == 3 else "I") * len(values), *values)
        if len(raw) > 4:
            offsets[tag] = ifd_end + len(spill)
            spill += raw
    data_off = ifd_end + len(spill)
    for tag, typ, values in tags:
        if tag == 273:
            values = [data_off]
        raw = struct.pack("<" + ("H" if typ == 3 else "I") * len(values), *values)
        field_ = struct.pack("<I", offsets[tag]) if tag in offsets else raw.ljust(4, b"\0")
        body += struct.pack("<HHI", tag, typ, len(values)) + field_
    head = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags))
    return head + bytes(body) + struct.pack("<I", 0) + bytes(spill) + data


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """Rewrite the frame header (SOFn) of a JPEG to claim another size."""
    out = bytearray(jpeg)
    i = 2
    while i < len(out) - 9:
        if out[i] != 0xFF:
            raise ValueError("not a JPEG marker")
        marker = out[i + 1]
        seg_len = struct.unpack(">H", out[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", out, i + 5, height, width)
            return bytes(out)
        i += 2 + seg_len
    raise ValueError("no SOF marker found")


def srgb_icc() -> bytes:
    """An sRGB ICC profile made by LittleCMS."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def cmyk_icc() -> bytes:
    """A tiny but valid ICC v2 CMYK output profile (A2B0 = lut8 over a 2^4 grid): the corners
    are the naive CMYK->RGB colours taken to Lab by LittleCMS. Enough to exercise a reader's
    colour-managed CMYK path; mid-tones come out visibly unlike the naive formula."""
    corners = [(c, m, y, k) for c in (0, 1) for m in (0, 1) for y in (0, 1) for k in (0, 1)]
    rgb = np.array([[(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)]
                    for c, m, y, k in corners])
    im = Image.fromarray((rgb * 255).round().astype(np.uint8)[None])
    lab = ImageCms.profileToProfile(im, ImageCms.createProfile("sRGB"),
                                    ImageCms.createProfile("LAB"), outputMode="LAB")
    clut = np.asarray(lab)[0].astype(np.uint8)
    clut[:, 1:] += 128  # Pillow's LAB holds a*, b* as int8; lut8 Lab is offset by 128
    ident = bytes(range(256))
    matrix = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    a2b0 = b"mft1" + bytes(4) + bytes([4, 3, 2, 0]) + matrix + ident * 4 + clut.tobytes() \
        + ident * 3
    text = b"srgan test CMYK\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8 + 3 + 67)
    wtpt = b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    cprt = b"text" + bytes(4) + b"public domain\0"
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", cprt), (b"A2B0", a2b0)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"lcms" + struct.pack(">I", 0x02100000)
              + b"prtrCMYKLab " + bytes(12) + b"acsp" + bytes(28) + _s15(0.9642) + _s15(1.0)
              + _s15(0.8249)).ljust(128, b"\0")
    return header + struct.pack(">I", len(tags)) + table + data


def _exif(orientation: int) -> bytes:
    e = Image.Exif()
    e[0x0112] = orientation
    e[0x010F] = "srgan corpus"  # Make: something else to keep
    return e.tobytes()


def _pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _quadrants(w: int, h: int) -> np.ndarray:
    """An upright test picture: four flat colours, so any rotation or flip is visible."""
    a = np.empty((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (220, 30, 30)
    a[: h // 2, w // 2 :] = (30, 200, 40)
    a[h // 2 :, : w // 2] = (40, 40, 210)
    a[h // 2 :, w // 2 :] = (240, 240, 60)
    return a


def _stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels that a viewer shows as `upright` given an EXIF orientation."""
    inverse = {
        1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1], 5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, 1), 7: lambda a: np.rot90(a, 1)[:, ::-1],
        8: lambda a: np.rot90(a, -1),
    }[orientation]
    return np.ascontiguousarray(inverse(upright))


# --------------------------------------------------------------------------- the corpus


def make_corpus(directory: Path) -> list[Case]:
    """Write the corpus into `directory` (created if needed) and return its cases."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(8)
    cases: list[Case] = []

    def rand(h: int, w: int, c: int, bits: int = 8) -> np.ndarray:
        return rng.integers(0, 1 << bits, (h, w, c), dtype=np.uint16 if bits == 16 else np.uint8)

    def put(name: str, data: bytes, expect: str = "ok", **facts) -> Case:
        path = d / name
        path.write_bytes(data)
        case = Case(name, path, expect, **facts)
        cases.append(case)
        return case

    def ok_png(name: str, arr: np.ndarray, bits: int = 8, **kw) -> Case:
        arr3 = arr[:, :, None] if arr.ndim == 2 else arr
        h, w, c = arr3.shape
        facts = {"size": (w, h), "channels": c, "bit_depth": bits, "pixels": arr3}
        facts.update({k: kw.pop(k) for k in list(kw) if k in Case.__dataclass_fields__})
        return put(name, png_bytes(arr3, bit_depth=bits, **kw), **facts)

    # ---- files that must be refused, each with a clear error naming it
    put("zero_byte.png", b"", "error", error="empty")
    put("text_named.png", b"this is not an image, just text\n" * 20, "error", error="not an image")
    put("random_bytes.jpg", rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(), "error")
    put("png_signature_only.png", b"\x89PNG\r\n\x1a\n", "error", error="truncated")
    good = png_bytes(rand(32, 32, 3))
    idat = good.index(b"IDAT")
    put("truncated.png", good[: idat + 4 + (len(good) - idat) // 3], "error", error="truncated")
    put("no_iend.png", good[:-12], "error", error="truncated")
    bad = bytearray(good)
    bad[idat + 10] ^= 0xFF
    put("bad_crc.png", bytes(bad), "error", error="crc")
    put("bomb_100000x100000.png", png_bytes(rand(8, 8, 3), ihdr_size=(100000, 100000)), "error",
        error="pixels", tags=frozenset({"bomb"}))
    jpg = _pil_bytes(Image.fromarray(rand(64, 64, 3)), "JPEG", quality=90)
    put("truncated.jpg", jpg[: len(jpg) // 2], "error", error="truncated")
    put("bomb_65000x65000.jpg", jpeg_with_size(jpg, 65000, 65000), "error", error="pixels",
        tags=frozenset({"bomb"}))
    put("gif_header_garbage.gif", b"GIF89a" + rng.integers(0, 256, 300, dtype=np.uint8)
        .tobytes(), "error")
    put("float_out_of_range.tif", tiff_bytes(np.linspace(0, 255, 64, dtype=np.float32)
                                             .reshape(8, 8), float32=True), "error",
        error="outside")
    folder = d / "folder_named.png"
    folder.mkdir(exist_ok=True)
    cases.append(Case("folder_named.png", folder, "error", error="folder"))
    broken = d / "broken_link.png"
    if not broken.is_symlink():
        broken.symlink_to(d / "does_not_exist.png")
    cases.append(Case("broken_link.png", broken, "error", error="link"))
    arr = rand(16, 16, 3)
    locked = put("unreadable.png", png_bytes(arr))
    locked.path.chmod(0)
    try:  # root (or CAP_DAC_OVERRIDE) reads it anyway
        locked.path.open("rb").close()
        cases[-1] = Case(locked.name, locked.path, "ok", (16, 16), 3, 8, arr)
    except PermissionError:
        cases[-1] = Case(locked.name, locked.path, "error", error="permission")

    # ---- sizes
    ok_png("tiny_1x1.png", rand(1, 1, 3))
    ok_png("row_37x1.png", rand(1, 37, 3))
    ok_png("column_1x37.png", rand(37, 1, 3))
    ok_png("wide_1024x2.png", rand(2, 1024, 3), tags=frozenset({"aspect"}))
    ok_png("tall_2x1024.png", rand(1024, 2, 1), tags=frozenset({"aspect"}))

    # ---- PNG modes and depths (independent encoder)
    ok_png("grey8.png", rand(20, 24, 1))
    ok_png("la8.png", rand(20, 24, 2), tags=frozenset({"alpha"}))
    ok_png("rgb8.png", rand(20, 24, 3))
    ok_png("rgba8.png", rand(20, 24, 4), tags=frozenset({"alpha"}))
    ok_png("grey16.png", rand(20, 24, 1, 16), 16)
    ok_png("la16.png", rand(20, 24, 2, 16), 16, tags=frozenset({"alpha"}))
    ok_png("rgb16.png", rand(20, 24, 3, 16), 16)
    ok_png("rgba16.png", rand(20, 24, 4, 16), 16, tags=frozenset({"alpha"}))
    ok_png("rgb8_interlaced.png", rand(19, 23, 3), interlace=True)
    ok_png("rgb16_interlaced.png", rand(19, 23, 3, 16), 16, interlace=True)
    ok_png("rgba16_interlaced.png", rand(9, 11, 4, 16), 16, interlace=True)
    key = rand(16, 16, 3)
    key[:4] = (10, 20, 30)
    with_alpha = np.concatenate([key, np.where((key == (10, 20, 30)).all(2, keepdims=True),
                                               0, 255).astype(np.uint8)], 2)
    put("rgb_colour_key.png", png_bytes(key, before_idat=[(b"tRNS", struct.pack(">HHH", 10, 20,
                                                                               30))]),
        size=(16, 16), channels=4, bit_depth=8, pixels=with_alpha, tags=frozenset({"alpha"}))
    g16 = rand(12, 12, 1, 16)
    g16[0] = 777
    put("grey16_colour_key.png", png_bytes(g16, bit_depth=16,
                                           before_idat=[(b"tRNS", struct.pack(">H", 777))]),
        size=(12, 12), channels=2, bit_depth=16,
        pixels=np.concatenate([g16, np.where(g16 == 777, 0, 65535).astype(np.uint16)], 2),
        tags=frozenset({"alpha"}))
    # RGBA whose transparent pixels are black and edges half transparent (premultiplied look)
    edge = np.zeros((32, 32, 4), np.uint8)
    edge[8:24, 8:24] = (250, 120, 20, 255)
    edge[7, 8:24] = edge[24, 8:24] = edge[8:24, 7] = edge[8:24, 24] = (125, 60, 10, 128)
    ok_png("rgba_premultiplied_edges.png", edge, tags=frozenset({"alpha"}))
    ok_png("trailing_garbage.png", rand(8, 8, 3), after_idat=[])
    cases[-1].path.write_bytes(cases[-1].path.read_bytes() + b"garbage after IEND" * 5)
    exif_arr = _quadrants(16, 24)
    stored = _stored_for(exif_arr, 8)
    put("exif_orientation8.png", png_bytes(stored, before_idat=[(b"eXIf", _exif(8)[6:])]),
        size=(16, 24), channels=3, bit_depth=8, pixels=exif_arr, tags=frozenset({"exif"}))
    exif16 = _quadrants(8, 12).astype(np.uint16) * 257 + 3
    put("rgb16_exif_orientation6.png", png_bytes(_stored_for(exif16, 6), bit_depth=16,
                                                 before_idat=[(b"eXIf", _exif(6)[6:])]),
        size=(8, 12), channels=3, bit_depth=16, pixels=exif16, tags=frozenset({"exif"}))
    put("icc_srgb.png", png_bytes(rand(16, 16, 3), before_idat=[
        (b"iCCP", b"sRGB\x00\x00" + zlib.compress(srgb_icc()))]),
        size=(16, 16), channels=3, bit_depth=8, icc=True)
    put("icc_rgb16.png", png_bytes(rand(8, 8, 3, 16), bit_depth=16, before_idat=[
        (b"iCCP", b"sRGB\x00\x00" + zlib.compress(srgb_icc()))]),
        size=(8, 8), channels=3, bit_depth=16, icc=True)

    # ---- Pillow-made files of other kinds
    bits = (rng.random((16, 24)) > 0.5)
    put("bilevel.png", _pil_bytes(Image.fromarray(bits), "PNG"), size=(24, 16), channels=1,
        bit_depth=8, pixels=(bits * 255).astype(np.uint8)[:, :, None])
    pal_idx = rng.integers(0, 4, (16, 16), dtype=np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]], np.uint8)
    pim = Image.fromarray(pal_idx, "P")
    pim.putpalette(palette.ravel().tolist())
    put("palette.png", _pil_bytes(pim, "PNG"), size=(16, 16), channels=3, bit_depth=8,
        pixels=palette[pal_idx])
    rgba_pal = np.concatenate([palette[pal_idx], np.where(pal_idx == 3, 0, 255)
                               .astype(np.uint8)[:, :, None]], 2)
    put("palette_transparency.png", _pil_bytes(pim, "PNG", transparency=3), size=(16, 16),
        channels=4, bit_depth=8, pixels=rgba_pal, tags=frozenset({"alpha"}))
    put("gif_transparency.gif", _pil_bytes(pim, "GIF", transparency=3), size=(16, 16),
        channels=4, bit_depth=8, pixels=rgba_pal, tags=frozenset({"alpha"}))
    cmyk = Image.new("CMYK", (24, 16), (10, 200, 30, 40))
    put("cmyk.jpg", _pil_bytes(cmyk, "JPEG", quality=95), size=(24, 16), channels=3,
        bit_depth=8, warning="CMYK")
    cmyk = Image.new("CMYK", (24, 16), (128, 96, 64, 0))
    profile = cmyk_icc()
    managed = ImageCms.profileToProfile(cmyk, ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                                        ImageCms.createProfile("sRGB"), outputMode="RGB")
    put("cmyk_icc.jpg", _pil_bytes(cmyk, "JPEG", quality=95, icc_profile=profile),
        size=(24, 16), channels=3, bit_depth=8, pixels=np.asarray(managed), tolerance=6,
        icc=True, warning="ICC profile", tags=frozenset({"icc"}))
    quads = _quadrants(32, 48)
    put("progressive.jpg", _pil_bytes(Image.fromarray(quads), "JPEG", quality=95,
                                      progressive=True, subsampling=0),
        size=(32, 48), channels=3, bit_depth=8, pixels=quads, tolerance=8)
    grey = np.repeat(np.arange(0, 256, 8, dtype=np.uint8)[None], 16, 0)
    put("grey.jpg", _pil_bytes(Image.fromarray(grey), "JPEG", quality=95), size=(32, 16),
        channels=1, bit_depth=8, pixels=grey[:, :, None], tolerance=8)
    put("jpeg_named.png", jpg, size=(64, 64), channels=3, bit_depth=8)
    for orientation in (6, 3):
        stored = _stored_for(quads, orientation)
        put(f"exif_orientation{orientation}.jpg",
            _pil_bytes(Image.fromarray(stored), "JPEG", quality=95, subsampling=0,
                       exif=_exif(orientation)),
            size=(32, 48), channels=3, bit_depth=8, pixels=quads, tolerance=8,
            tags=frozenset({"exif"}))
    put("icc_srgb.jpg", _pil_bytes(Image.fromarray(rand(16, 16, 3)), "JPEG",
                                   icc_profile=srgb_icc()),
        size=(16, 16), channels=3, bit_depth=8, icc=True)
    frames = [Image.fromarray(np.full((16, 20, 3), c, np.uint8)) for c in
              ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    red = np.full((16, 20, 3), (255, 0, 0), np.uint8)
    for fmt, ext in (("GIF", "gif"), ("WEBP", "webp"), ("PNG", "png")):
        extra = {"lossless": True} if fmt == "WEBP" else {}
        put(f"animated.{ext}", _pil_bytes(frames[0], fmt, save_all=True,
                                          append_images=frames[1:], duration=100, loop=0,
                                          **extra),
            size=(20, 16), channels=3, bit_depth=8, pixels=red, warning="first frame",
            tags=frozenset({"animated"}))
    arr = rand(16, 24, 3)
    put("rgb.bmp", _pil_bytes(Image.fromarray(arr), "BMP"), size=(24, 16), channels=3,
        bit_depth=8, pixels=arr)
    arr = rand(16, 24, 3)
    put("rgb.ppm", _pil_bytes(Image.fromarray(arr), "PPM"), size=(24, 16), channels=3,
        bit_depth=8, pixels=arr)
    arr = rand(16, 24, 3)
    put("rgb_deflate.tiff", _pil_bytes(Image.fromarray(arr), "TIFF",
                                       compression="tiff_deflate"),
        size=(24, 16), channels=3, bit_depth=8, pixels=arr)
    arr = rand(16, 24, 1, 16)
    put("grey16.tif", tiff_bytes(arr), size=(24, 16), channels=1, bit_depth=16, pixels=arr)
    # premultiplied (associated alpha) TIFF: colour already multiplied by alpha
    straight = np.zeros((8, 8, 4), np.uint8)
    straight[..., :3] = (200, 100, 50)
    straight[..., 3] = np.repeat(np.array([255, 255, 128, 128, 64, 64, 0, 0], np.uint8)[None],
                                 8, 0)
    premul = straight.copy()
    premul[..., :3] = (straight[..., :3].astype(np.uint16) * straight[..., 3:] // 255)
    put("rgba_premultiplied.tif", tiff_bytes(premul, extra_samples=1), size=(8, 8),
        channels=4, bit_depth=8, tags=frozenset({"alpha", "premultiplied"}))
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    put("float01.tif", tiff_bytes(ramp, float32=True), size=(8, 8), channels=1, bit_depth=16,
        pixels=np.floor(ramp * 65535 + 0.5).astype(np.uint16)[:, :, None])
    arr = rand(16, 24, 4)
    put("webp_lossless.webp", _pil_bytes(Image.fromarray(arr), "WEBP", lossless=True, exact=True),
        size=(24, 16), channels=4, bit_depth=8, pixels=arr, tags=frozenset({"alpha"}))
    arr = np.concatenate([quads, np.full((48, 32, 1), 255, np.uint8)], 2)
    arr[:, :8, 3] = 0
    put("webp_lossy_alpha.webp", _pil_bytes(Image.fromarray(arr), "WEBP", quality=90),
        size=(32, 48), channels=4, bit_depth=8, tags=frozenset({"alpha"}))

    # ---- names and links
    target = ok_png("symlink_target.png", rand(8, 8, 3))
    link = d / "symlink_to_image.png"
    if not link.is_symlink():
        link.symlink_to(target.path.name)
    cases.append(Case("symlink_to_image.png", link, "ok", target.size, 3, 8, target.pixels))
    arr = rand(8, 8, 3)
    try:
        odd = Path(os.fsdecode(os.fsencode(str(d)) + b"/caf\xe9_latin1_name.png"))
        odd.write_bytes(png_bytes(arr))
        cases.append(Case("non_utf8_name.png", odd, "ok", (8, 8), 3, 8, arr,
                          tags=frozenset({"name"})))
    except (OSError, UnicodeError):  # a filesystem that insists on UTF-8 names
        pass
    return cases
