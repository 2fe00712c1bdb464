"""What srgan.video checks about a video that the pixels alone do not say: that the
encoder takes the output size (asked before the first frame is computed), that the frame
size does not change mid-stream, and that the decoded frames reach the end the file
declares (a cut file decodes without an error, just shorter); how many frames to expect;
and whether a video carries srgan's mark (an output of ours)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

# x264's own limit (x264_validate_parameters): the reason avcodec_open2 gives is generic
SIDE_LIMITS = {"libx264": 16384, "libx264rgb": 16384}


def pixel_format(codec: Any, lossless: bool) -> str:
    """The pixel format the encoder is given: RGB for lossless, else 4:2:0 where it has it."""
    formats = [f.name for f in codec.video_formats or []]
    if lossless:
        return "rgb24"
    return "yuv420p" if "yuv420p" in formats or not formats else formats[0]


def check_encoder_size(av: Any, encoder: str, lossless: bool, width: int, height: int,
                       name: str, error: type[Exception]) -> None:
    """Open the encoder at the output size (no frame encoded) and raise `error` if it
    refuses it, so an output too large for it fails before any frame is computed."""
    limit = SIDE_LIMITS.get(encoder)
    why = None
    if limit is not None and max(width, height) > limit:
        why = f"{encoder} takes at most {limit} pixels on a side"
    else:
        cc = av.CodecContext.create(encoder, "w")
        cc.width, cc.height = width, height
        cc.pix_fmt = pixel_format(av.Codec(encoder, "w"), lossless)
        cc.time_base, cc.framerate = Fraction(1, 25), Fraction(25)
        if encoder.startswith("libx26"):
            cc.options = {"preset": "ultrafast"}  # the size check, without its buffers
        try:
            cc.open()
        except Exception as exc:
            why = f"{encoder} refuses that size ({exc})"
    if why is not None:
        raise error(f"{name}: the output would be {width}x{height} and {why}; use a smaller "
                    "--outscale, or another --codec (ffv1 in .mkv has no such limit)")


def check_same_size(first: tuple[int, int], rgb: Any, seconds: float, name: str,
                    error: type[Exception]) -> None:
    """Refuse a frame whose size differs from the first one's (a resolution change)."""
    h, w = rgb.shape[:2]
    if (h, w) != first:
        raise error(f"{name}: the frame size changes at {seconds:.3f}s from "
                    f"{first[1]}x{first[0]} to {w}x{h}; one video gets one output size, so "
                    "upscale the parts apart (--start/--duration)")


def _tag_seconds(value: str | None) -> float | None:
    """Matroska's per-stream DURATION tag, "HH:MM:SS.nnnnnnnnn" -> seconds."""
    try:
        h, m, s = (value or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return None


def declared_seconds(container: Any) -> tuple[float | None, bool]:
    """How long the file says its video lasts, and whether the video stream itself says so
    (True) or only the container, whose duration may be the audio's (False)."""
    vs = container.streams.video[0]
    if vs.duration and vs.time_base:
        return float(vs.duration * vs.time_base), True
    tagged = _tag_seconds({k.upper(): v for k, v in vs.metadata.items()}.get("DURATION"))
    if tagged:
        return tagged, True
    if container.duration:
        return container.duration / 1_000_000, False
    return None, False


def shortfall(container: Any, start: float, duration: float | None, last_seconds: float,
              name: str) -> tuple[str, bool] | None:
    """(message, certain) when the last decoded frame (seconds from the first timestamp)
    ends well before the end the file declares (within the --start/--duration window):
    the file was cut short. `certain` when the video stream itself declares its length."""
    declared, certain = declared_seconds(container)
    if declared is None:
        return None
    vs = container.streams.video[0]
    period = 1 / float(vs.average_rate or vs.guessed_rate or 25)
    end = declared if duration is None else min(declared, start + duration)
    got = last_seconds + period
    if end - got <= max(2.5 * period, 0.01 * end):
        return None
    return (f"{name}: the video ends at {got:.3f}s but the file declares {end:.3f}s: it is "
            f"truncated or damaged (upscale the part that is there with --duration "
            f"{max(0.0, got - start):.3f})", certain)


def estimate_frames(container: Any, window: Any) -> int | None:
    """For the progress bar: frames in the window, from the stream's count or duration."""
    vs = container.streams.video[0]
    rate = float(vs.average_rate or vs.guessed_rate or 0)
    if vs.duration and vs.time_base:
        seconds = float(vs.duration * vs.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000
    else:
        return vs.frames or None
    seconds = max(0.0, seconds - window.start)
    if window.duration is not None:
        seconds = min(seconds, window.duration)
    return max(1, round(seconds * rate)) if rate else None


def has_mark(path: Path) -> bool:
    """Whether the video at `path` was written by srgan (the container's comment tag)."""
    import av

    from srgan.imageio.mark import MARK

    try:
        with av.open(str(path)) as c:
            tags = {k.lower(): v for k, v in c.metadata.items()}
    except Exception:  # unreadable, or PyAV missing: not proven ours
        return False
    return tags.get("comment", "").strip() == MARK
