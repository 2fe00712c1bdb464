"""Video upscaling: frames decoded with PyAV (FFmpeg in its wheel), upscaled by `Upscaler`,
encoded again, audio copied packet for packet.

Three threads, two bounded queues: a decoder runs a few frames ahead, the calling thread
runs the network, an encoder muxes behind it; audio packets travel through the same queues in
file order, so memory stays a few frames whatever the clip's length. Timestamps are kept (a
variable frame rate stays variable), the source's rotation is applied to the pixels, the
colour matrix (BT.601/BT.709) and range are read from the source and the output is tagged
(`srgan.video_colour`).
`--resume` is not supported: an interrupted run starts over (and leaves no partial file).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from srgan.video_checks import (
    check_encoder_size,
    check_same_size,
    estimate_frames,
    pixel_format,
    shortfall,
)
from srgan.video_colour import (
    ITU601,
    PRIMARIES,
    RANGE_FULL,
    even_size,
    output_matrix,
    rotate,
    source_matrix,
    source_range,
)

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
    ".flv", ".wmv", ".3gp", ".ogv", ".y4m",
})
# muxer for an output name; anything else is written as MP4
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
              ".avi": "avi"}
# audio codecs an MP4 can carry as they are (anything else: -o name.mkv)
MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac", "mp2"})
CRF_ENCODERS = frozenset({"libx264", "libx265", "libvpx-vp9", "libsvtav1"})
QUEUE_FRAMES = 4  # decoded frames (and audio packets) waiting for the network
TIMEOUT = 0.2  # seconds between checks that the other threads are still alive


class VideoError(Exception):
    """A video that cannot be upscaled: the message names the file and the problem."""


def require_av() -> Any:
    """PyAV, or a clear error saying how to install it."""
    try:
        import av
    except ImportError:
        raise VideoError("video needs PyAV: pip install 'srgan[video]'") from None
    return av


# ----------------------------------------------------------------- settings
@dataclass(frozen=True)
class EncodeOptions:
    """How frames are encoded. `lossless`: RGB H.264 at qp 0 (libx264rgb), bit-exact pixels."""

    codec: str = "libx264"
    crf: float = 18
    lossless: bool = False
    preset: str = "medium"

    @property
    def encoder(self) -> str:
        return "libx264rgb" if self.lossless else self.codec

    def options(self) -> dict[str, str]:
        """Encoder options: constant quality where the encoder has a CRF."""
        if self.lossless:
            return {"qp": "0", "preset": self.preset}
        opts = {}
        if self.codec in CRF_ENCODERS:
            opts["crf"] = f"{self.crf:g}"
        if self.codec in ("libx264", "libx265"):
            opts["preset"] = self.preset
        if self.codec == "libvpx-vp9":
            opts["b"] = "0"  # constant quality
        return opts


@dataclass
class VideoReport:
    """What happened to one video."""

    frames: int = 0
    audio_packets: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds_network: float = 0.0


@dataclass(frozen=True)
class Window:
    """--start/--duration in seconds from the video's first timestamp."""

    start: float = 0.0
    duration: float | None = None

    def keeps(self, t: float, origin: float) -> bool:
        rel = t - origin
        if rel < self.start - 1e-6:
            return False
        return self.duration is None or rel < self.start + self.duration - 1e-6

    def past(self, t: float, origin: float) -> bool:
        return self.duration is not None and t - origin >= self.start + self.duration - 1e-6


# ----------------------------------------------------------------- threads
_END = ("end",)


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    """Put into a bounded queue, giving up when the run is being stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=TIMEOUT)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while True:
        try:
            return q.get(timeout=TIMEOUT)
        except queue.Empty:
            if stop.is_set():
                return _END


def _stamp(pts: int | None, time_base: Fraction | None) -> str:
    if pts is None or time_base is None:
        return "unknown time"
    return f"{float(pts * time_base):.3f}s"


def decode(container: Any, name: str, window: Window, out: queue.Queue,
           stop: threading.Event) -> None:
    """Decoder thread: ("frame", pts, rgb) and ("audio", packet) items in file order, ("warn",
    text) for a frame that cannot be decoded (left out, the rest goes on), then _END (or
    ("fatal", exception))."""
    try:
        vs = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        vtb = vs.time_base
        origin = float((vs.start_time or 0) * vtb)
        if window.start > 0:
            container.seek(round((origin + window.start) / vtb), stream=vs)
        w, h = vs.codec_context.width, vs.codec_context.height
        video_done = audio_done = False
        last_pts = None
        for packet in container.demux(*([vs, audio] if audio else [vs])):
            if stop.is_set():
                return
            if packet.stream is not vs:  # audio: copied as it is
                if packet.pts is None or packet.size == 0:
                    continue
                t = float(packet.pts * packet.time_base)
                if window.past(t, origin):
                    audio_done = True
                elif window.start <= 0 or window.keeps(t, origin):
                    _put(out, ("audio", packet), stop)
                if video_done and audio_done:
                    break
                continue
            if video_done:
                continue
            try:
                frames = packet.decode()
            except Exception as exc:  # av.error.InvalidDataError and kin: one bad packet
                _put(out, ("warn", f"{name}: frame at {_stamp(packet.pts, vtb)} could not be "
                                   f"decoded ({exc}); left out"), stop)
                continue
            for frame in frames:
                if frame.pts is None:  # no timestamp: one frame after the last
                    step = round(1 / (vs.average_rate or 25) / vtb)
                    frame.pts = 0 if last_pts is None else last_pts + max(1, step)
                t = float(frame.pts * vtb)
                if window.past(t, origin):
                    video_done = True
                    break
                if not window.keeps(t, origin):
                    continue
                if last_pts is not None and frame.pts <= last_pts:
                    _put(out, ("warn", f"{name}: frame at {_stamp(frame.pts, vtb)} repeats an "
                                       "earlier timestamp; left out"), stop)
                    continue
                last_pts = frame.pts
                if frame.is_corrupt:
                    _put(out, ("warn", f"{name}: frame at {_stamp(frame.pts, vtb)} is corrupt "
                                       "(decoded with errors concealed)"), stop)
                matrix = source_matrix(frame.colorspace, w, h)
                rng = source_range(frame.color_range, frame.format.name)
                rgb = frame.to_ndarray(format="rgb24", src_colorspace=matrix,
                                       src_color_range=rng, dst_color_range=RANGE_FULL)
                _put(out, ("frame", frame.pts, rotate(rgb, frame.rotation or 0)), stop)
            if video_done and (audio is None or audio_done):
                break
        _put(out, _END, stop)
    except Exception as exc:
        _put(out, ("fatal", exc), stop)


class Encoder:
    """Encoder thread's state: the output container, opened on the first frame (its size is
    the first upscaled frame's), audio packets that came before it held until then."""

    def __init__(self, fh: BinaryIO, fmt: str, source: Any, opts: EncodeOptions,
                 window: Window) -> None:
        from srgan.imageio.mark import MARK

        self.av = require_av()
        self.out = self.av.open(fh, "w", format=fmt)
        self.out.metadata["comment"] = MARK  # so a later run knows it for ours (has_mark)
        self.opts = opts
        vs = source.streams.video[0]
        self.vtb = vs.time_base
        self.rate = vs.average_rate or vs.guessed_rate or Fraction(25)
        self.matrix = output_matrix(vs.codec_context.colorspace)
        self.range = source_range(vs.codec_context.color_range, vs.codec_context.format.name
                                  if vs.codec_context.format else "")
        self.primaries = vs.codec_context.color_primaries
        self.trc = vs.codec_context.color_trc
        self.v_shift = round(window.start / self.vtb) if window.start > 0 else 0
        self.audio = None  # added after the video stream, so that the video comes first
        self.audio_source = source.streams.audio[0] if source.streams.audio else None
        self.a_shift = 0
        if self.audio_source is not None and window.start > 0:
            self.a_shift = round(window.start / self.audio_source.time_base)
        self.video = None
        self.held: list[Any] = []
        self.frames = 0
        self.audio_packets = 0

    def _open_video(self, height: int, width: int) -> None:
        try:
            codec = self.av.Codec(self.opts.encoder, "w")
        except Exception:
            raise VideoError(f"unknown video encoder {self.opts.encoder!r} (try libx264, "
                             "libx265, libvpx-vp9, ffv1, mpeg4)") from None
        pix = pixel_format(codec, self.opts.lossless)
        s = self.out.add_stream(self.opts.encoder, rate=self.rate)
        s.width, s.height, s.pix_fmt = width, height, pix
        s.time_base = self.vtb
        s.codec_context.time_base = self.vtb
        s.options = self.opts.options()
        if not self.opts.lossless:
            cc = s.codec_context
            cc.colorspace = 6 if self.matrix == ITU601 else self.matrix
            cc.color_range = self.range
            default = PRIMARIES.get(self.matrix, 2)
            cc.color_primaries = self.primaries if self.primaries not in (None, 2) else default
            cc.color_trc = self.trc if self.trc not in (None, 2) else default
        self.video = s
        if self.audio_source is not None:
            self.audio = self.out.add_stream_from_template(self.audio_source)
        for packet in self.held:
            self._mux_audio(packet)
        self.held = []

    def _mux_audio(self, packet: Any) -> None:
        packet.stream = self.audio
        if self.a_shift:
            packet.pts -= self.a_shift
            if packet.dts is not None:
                packet.dts -= self.a_shift
        self.out.mux(packet)
        self.audio_packets += 1

    def audio_packet(self, packet: Any) -> None:
        if self.audio_source is None:
            return
        if self.video is None:
            self.held.append(packet)
        else:
            self._mux_audio(packet)

    def frame(self, pts: int, rgb: np.ndarray) -> None:
        if self.video is None:
            h, w = rgb.shape[:2]
            if not self.opts.lossless and (h % 2 or w % 2):
                raise VideoError(f"odd output size {w}x{h} for 4:2:0 chroma")
            self._open_video(h, w)
        f = self.av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if not self.opts.lossless:
            f = f.reformat(format=self.video.pix_fmt, src_colorspace=self.matrix,
                           dst_colorspace=self.matrix, src_color_range=RANGE_FULL,
                           dst_color_range=self.range)
        f.pts = pts - self.v_shift
        f.time_base = self.vtb
        for packet in self.video.encode(f):
            self.out.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self.video is not None:
            for packet in self.video.encode(None):
                self.out.mux(packet)
        self.out.close()

    def run(self, q: queue.Queue, stop: threading.Event, errors: list[BaseException]) -> None:
        """The thread: consume ("frame", pts, rgb) / ("audio", packet) until _END."""
        try:
            while True:
                item = _get(q, stop)
                if item is _END:
                    break
                if item[0] == "frame":
                    self.frame(item[1], item[2])
                else:
                    self.audio_packet(item[1])
            if not stop.is_set():
                self.close()
        except BaseException as exc:
            errors.append(exc)
            stop.set()


# ----------------------------------------------------------------- one video
def output_frame_size(upscaler: Any, h: int, w: int, outscale: float | None,
                      even: bool) -> tuple[int, int]:
    """(height, width) of an upscaled h x w frame: even for 4:2:0 chroma when `even`."""
    from srgan.inference.outscale import output_size

    size = output_size(h, w, upscaler.scale if outscale is None else outscale)
    return even_size(*size) if even else size


def upscale_frame(upscaler: Any, rgb: np.ndarray, outscale: float | None, tta: bool = False,
                  even: bool = True) -> np.ndarray:
    """HxWx3 uint8 -> the upscaled frame, uint8: the model's integer pipeline, then (for
    --outscale, or an odd size under 4:2:0) MATLAB bicubic to the final size."""
    from srgan.imageio import QuantizedImage, from_array, to_array
    from srgan.inference.outscale import resize_pixels

    h, w = rgb.shape[:2]
    size = output_frame_size(upscaler, h, w, outscale, even)
    if size == (h * upscaler.scale, w * upscaler.scale):
        return upscaler.upscale(QuantizedImage(rgb, 8), tta=tta).pixels
    y = resize_pixels(upscaler.upscale(from_array(rgb), tta=tta).pixels, size)
    return to_array(from_array(y), np.uint8)


def _check_video_stream(container: Any, name: str) -> None:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise VideoError(f"{name}: no video stream (streams: {', '.join(kinds)})")


def upscale_video(
    upscaler: Any,
    src: Path,
    fh: BinaryIO,
    fmt: str = "mp4",
    *,
    outscale: float | None = None,
    tta: bool = False,
    opts: EncodeOptions = EncodeOptions(),
    window: Window = Window(),
    progress: Callable[[int], Any] | None = None,
    warn: Callable[[str], Any] = print,
    total: Callable[[int | None], Any] | None = None,
) -> VideoReport:
    """Upscale the video `src` into the open binary file `fh` (container `fmt`). Raises
    VideoError for a file that cannot be used; a frame that cannot be decoded is passed to
    `warn` with its timestamp and left out."""
    av = require_av()
    name = str(src)
    try:
        container = av.open(str(src))
    except Exception as exc:
        raise VideoError(f"{name}: cannot be read as a video ({exc})") from None
    report = VideoReport()
    try:
        _check_video_stream(container, name)
        audio = container.streams.audio[0] if container.streams.audio else None
        if fmt == "mp4" and audio is not None and audio.codec_context.name not in MP4_AUDIO:
            raise VideoError(f"{name}: {audio.codec_context.name} audio cannot be copied into "
                             "MP4 unchanged; give an .mkv output name (-o name.mkv)")
        container.streams.video[0].thread_type = "AUTO"
        if total is not None:
            total(estimate_frames(container, window))
        encoder = Encoder(fh, fmt, container, opts, window)
        stop = threading.Event()
        decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
        upscaled: queue.Queue = queue.Queue(2)
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=decode, args=(container, name, window, decoded, stop),
                             name="srgan-video-decode", daemon=True),
            threading.Thread(target=encoder.run, args=(upscaled, stop, errors),
                             name="srgan-video-encode", daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            last_seconds = _upscale_frames(upscaler, container, name, decoded, upscaled, stop,
                                           report, outscale=outscale, tta=tta, opts=opts,
                                           progress=progress, warn=warn)
        except BaseException:
            stop.set()
            raise
        finally:
            for t in threads:
                t.join()
        _check_result(errors, report, container, window, last_seconds, name, warn)
        report.audio_packets = encoder.audio_packets
        return report
    finally:
        container.close()


def _upscale_frames(upscaler: Any, container: Any, name: str, decoded: queue.Queue,
                    upscaled: queue.Queue, stop: threading.Event, report: VideoReport, *,
                    outscale: float | None, tta: bool, opts: EncodeOptions,
                    progress: Callable[[int], Any] | None, warn: Callable[[str], Any]) -> float:
    """The calling thread's part: each decoded frame through the network, on to the
    encoder (audio passes by); the encoder's size is checked before the first frame is
    computed. Returns the last frame's time, in seconds from the start."""
    import time

    av = require_av()
    vs = container.streams.video[0]
    vtb, origin = vs.time_base, float((vs.start_time or 0) * vs.time_base)
    first, last_seconds = None, 0.0
    while not stop.is_set():
        item = _get(decoded, stop)
        if item is _END:
            break
        kind = item[0]
        if kind == "fatal":
            raise VideoError(f"{name}: {item[1]}") from item[1]
        if kind == "warn":
            report.warnings.append(item[1])
            warn(item[1])
            continue
        if kind == "frame":
            last_seconds = float(item[1] * vtb) - origin
            if first is None:  # before the first frame is computed
                first = item[2].shape[:2]
                oh, ow = output_frame_size(upscaler, *first, outscale, not opts.lossless)
                check_encoder_size(av, opts.encoder, opts.lossless, ow, oh, name, VideoError)
            check_same_size(first, item[2], last_seconds, name, VideoError)
            t0 = time.perf_counter()
            out = upscale_frame(upscaler, item[2], outscale, tta, not opts.lossless)
            report.seconds_network += time.perf_counter() - t0
            item = ("frame", item[1], out)
            report.frames += 1
            if progress is not None:
                progress(1)
        _put(upscaled, item, stop)
    _put(upscaled, _END, stop)
    return last_seconds


def _check_result(errors: list[BaseException], report: VideoReport, container: Any,
                  window: Window, last_seconds: float, name: str,
                  warn: Callable[[str], Any]) -> None:
    """After the threads: the encoder's error, no frame at all, or a cut file, as a
    VideoError naming the file (a shortfall only the container's duration says: a warning)."""
    if errors:
        exc = errors[0]
        if isinstance(exc, VideoError):
            raise VideoError(f"{name}: {exc}") from exc
        raise VideoError(f"{name}: cannot write the output ({exc})") from exc
    if report.frames == 0:
        raise VideoError(f"{name}: no video frames"
                         + (" in the --start/--duration window" if window.start or
                            window.duration is not None else ""))
    short = shortfall(container, window.start, window.duration, last_seconds, name)
    if short is not None and short[1]:
        raise VideoError(short[0])
    if short is not None:  # only the container's duration says so: it may be the audio's
        report.warnings.append(short[0])
        warn(short[0])
