"""The mark srgan writes into every image file it makes, so a command can tell its own
earlier outputs from the user's files by what is in them rather than by their names.

PNG: a tEXt "Software" chunk; JPEG: a COM segment; WebP: XMP CreatorTool; TIFF: the
Software tag. BMP carries no metadata at all, so a BMP can never be proven ours.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MARK", "MARK_XMP", "UNMARKABLE", "has_mark"]

MARK = "srgan"
MARK_XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf='
            '"http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="{MARK}"/>'
            '</rdf:RDF></x:xmpmeta>').encode()
UNMARKABLE = frozenset({".bmp", ".dib"})  # formats without any metadata


def _marked(value: object) -> bool:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return isinstance(value, str) and value.strip() == MARK


def has_mark(path: str | os.PathLike) -> bool | None:
    """Whether the image file at `path` carries srgan's mark (read from its header, not
    decoded); None for a format that cannot carry one (BMP). False for anything unreadable."""
    path = Path(os.fsdecode(path))
    if path.suffix.lower() in UNMARKABLE:
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            info = im.info
            if im.format == "PNG":
                return _marked(info.get("Software"))
            if im.format == "JPEG":
                return _marked(info.get("comment"))
            if im.format == "WEBP":
                return f'xmp:CreatorTool="{MARK}"'.encode() in (info.get("xmp") or b"")
            if im.format == "TIFF":
                return _marked(im.tag_v2.get(305))  # type: ignore[attr-defined]
            return None if im.format == "BMP" else False
    except Exception:  # not an image, too large to open, unreadable: not proven ours
        return False
