"""Video throughput: frames/s of `srgan upscale clip.mp4` and the share of time outside the
network (decode, colour conversion, encode), for 320x240 -> 1280x960 by default.

    python benchmarks/video_throughput.py                     # 8 frames, shipped x4 model
    python benchmarks/video_throughput.py --seconds 10 --fps 25   # the issue's 10-second clip

A clip with AAC audio is made with PyAV, then
  stages      each stage timed on its own, one after the other: decode (packets to frames),
              colour conversion in (YUV -> RGB), the network (`upscale_frame`), colour
              conversion out (RGB -> YUV 4:2:0) and H.264 encoding; the share outside the
              network is what those cost over the total;
  end to end  `srgan.video.upscale_video` as `srgan upscale` runs it (threads overlapped,
              audio copied): wall time, frames/s, and the wall time not spent in the network.
Nothing is asserted; the numbers are for issue 16's closing note.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from srgan.inference import Upscaler
from srgan.video import EncodeOptions, upscale_frame, upscale_video
from srgan.video_colour import RANGE_FULL, source_matrix, source_range


def make_clip(path: Path, frames: int, width: int, height: int, fps: int) -> None:
    """Moving smooth patterns (so that H.264 has motion to code) and a 440 Hz tone."""
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt = width, height, "yuv420p"
    a = c.add_stream("aac", rate=48000)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(frames):
        rgb = np.stack([127 + 100 * np.sin((xx + 3 * i) / (9 + 4 * k)) * np.cos(yy / (7 + k))
                        for k in range(3)], axis=2).astype(np.uint8)
        f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        f.pts = i
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    samples = round(frames / fps * 48000)
    t = np.arange(samples, dtype=np.float32) / 48000
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for i in range(0, samples - 1023, 1024):
        af = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="fltp", layout="mono")
        af.sample_rate, af.pts = 48000, i
        for p in a.encode(af):
            c.mux(p)
    for p in a.encode():
        c.mux(p)
    c.close()


def stages(clip: Path, up: Upscaler, network_frames: int) -> dict[str, float]:
    """Seconds per frame of each stage, run one after the other."""
    t = dict.fromkeys(["decode", "colour in", "network", "colour out", "encode"], 0.0)
    rgbs = []
    with av.open(str(clip)) as c:
        vs = c.streams.video[0]
        for packet in c.demux(vs):
            t0 = time.perf_counter()
            frames = packet.decode()
            t["decode"] += time.perf_counter() - t0
            for f in frames:
                t0 = time.perf_counter()
                rgbs.append(f.to_ndarray(format="rgb24", src_colorspace=source_matrix(
                    f.colorspace, f.width, f.height), src_color_range=source_range(
                    f.color_range, f.format.name), dst_color_range=RANGE_FULL))
                t["colour in"] += time.perf_counter() - t0
    n = len(rgbs)
    t["decode"] /= n
    t["colour in"] /= n
    outs = []
    upscale_frame(up, rgbs[0], None)  # warm-up
    for rgb in rgbs[:network_frames]:
        t0 = time.perf_counter()
        outs.append(upscale_frame(up, rgb, None))
        t["network"] += time.perf_counter() - t0
    t["network"] /= len(outs)
    with tempfile.TemporaryFile() as fh, av.open(fh, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=25)
        s.height, s.width = outs[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = EncodeOptions().options()
        for i in range(n):
            t0 = time.perf_counter()
            f = av.VideoFrame.from_ndarray(outs[i % len(outs)], format="rgb24").reformat(
                format="yuv420p", src_colorspace=1, dst_colorspace=1,
                src_color_range=RANGE_FULL, dst_color_range=1)
            t["colour out"] += time.perf_counter() - t0
            f.pts = i
            t0 = time.perf_counter()
            for p in s.encode(f):
                c.mux(p)
            t["encode"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in s.encode(None):
            c.mux(p)
        t["encode"] += time.perf_counter() - t0
    t["colour out"] /= n
    t["encode"] /= n
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="320x240", help="input WxH")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=None, help="clip length instead of --frames")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("-m", "--model", default="srresnet_x4")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--keep", type=Path, default=None, help="also keep the upscaled clip here")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    n = round(args.seconds * args.fps) if args.seconds else args.frames
    up = Upscaler.from_pretrained(args.model, device="cpu", precision=args.precision)
    print(f"{args.model} {up.dtype} on the CPU; {w}x{h} -> {w * up.scale}x{h * up.scale}, "
          f"{n} frames at {args.fps} fps with AAC audio")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, n, w, h, args.fps)
        t = stages(clip, up, min(n, 4))
        total = sum(t.values())
        print("stages, one after the other (ms per frame):")
        for k, v in t.items():
            print(f"  {k:<11} {v * 1e3:9.1f}  {100 * v / total:5.1f}%")
        print(f"  outside the network: {100 * (total - t['network']) / total:.1f}% "
              f"({1 / total:.2f} frames/s serial)")
        out = args.keep or Path(tmp) / "out.mp4"
        t0 = time.perf_counter()
        with open(out, "wb") as fh:
            report = upscale_video(up, clip, fh, "mp4")
        wall = time.perf_counter() - t0
        print(f"end to end (upscale_video, threads): {report.frames} frames, "
              f"{report.audio_packets} audio packets in {wall:.1f}s = "
              f"{report.frames / wall:.2f} frames/s; "
              f"{100 * (wall - report.seconds_network) / wall:.1f}% of the wall time outside "
              f"the network")


if __name__ == "__main__":
    main()
