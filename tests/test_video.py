"""Video upscaling (srgan.video): clips made with PyAV itself, a tiny random generator."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

av = pytest.importorskip("av")

from srgan.cli import main  # noqa: E402
from srgan.inference import Upscaler  # noqa: E402
from srgan.video import EncodeOptions, VideoError, Window, upscale_video  # noqa: E402
from srgan.video_colour import (  # noqa: E402
    ITU601,
    ITU709,
    even_size,
    output_matrix,
    rotate,
    source_matrix,
    source_range,
)

MS = Fraction(1, 1000)


def make_clip(path: Path, n: int = 8, w: int = 32, h: int = 24, *, audio: bool = True,
              steps_ms: list[int] | None = None, rotation: int = 0, pix_fmt: str = "yuv420p",
              colour: tuple[int, int, int] | None = None, matrix: int | None = None,
              codec: str = "libx264", corrupt: int | None = None, seed: int = 0) -> list:
    """A clip of random (or solid) frames at 25 fps (or `steps_ms` apart) with a second of
    mono AAC per second of video; returns the RGB frames that went in."""
    rng = np.random.default_rng(seed)
    c = av.open(str(path), "w")
    v = c.add_stream(codec, rate=25)
    v.width, v.height, v.pix_fmt = w, h, pix_fmt
    v.codec_context.time_base = MS
    if matrix is not None:
        v.codec_context.colorspace = 6 if matrix == ITU601 else matrix
        v.codec_context.color_range = 1
    if rotation:
        v.set_display_rotation(rotation)
    a = c.add_stream("aac", rate=48000) if audio else None
    frames, t = [], 0
    for i in range(n):
        rgb = (np.full((h, w, 3), colour, np.uint8) if colour is not None
               else rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        frames.append(rgb)
        f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if matrix is not None:
            f = f.reformat(format=pix_fmt, src_colorspace=matrix, dst_colorspace=matrix,
                           src_color_range=2, dst_color_range=1)
        f.pts, f.time_base = t, MS
        t += steps_ms[i] if steps_ms else 40
        for p in v.encode(f):
            if corrupt is not None and p.pts == corrupt:
                bad = av.Packet(bytes(p.size))
                bad.pts, bad.dts, bad.time_base, bad.stream = p.pts, p.dts, p.time_base, p.stream
                p = bad
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    if a is not None:
        for i in range(round(t / 1000 * 48000 / 1024)):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts = 48000, i * 1024
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    c.close()
    return frames


def probe(path: Path) -> dict:
    """Frame times (s), sizes, RGB frames, audio span (s) and colour tags of a file."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        info = {"colorspace": vs.codec_context.colorspace,
                "range": vs.codec_context.color_range, "times": [], "rgb": [], "yuv": []}
        for f in c.decode(vs):
            info["times"].append(float(f.pts * vs.time_base))
            info["size"] = (f.width, f.height)
            info["rotation"] = f.rotation
            info["yuv"].append(f.to_ndarray() if f.format.name == "yuv420p" else None)
            info["rgb"].append(f.to_ndarray(format="rgb24", src_colorspace=source_matrix(
                f.colorspace, f.width, f.height), src_color_range=source_range(
                f.color_range, f.format.name), dst_color_range=2))
        info["audio"] = None
        if c.streams.audio:
            c.seek(0)
            packets = [p for p in c.demux(c.streams.audio[0]) if p.pts is not None]
            tb = c.streams.audio[0].time_base
            info["audio"] = (float(packets[0].pts * tb),
                             float((packets[-1].pts + packets[-1].duration) * tb))
    return info


@pytest.fixture(scope="module")
def upscaler(tiny_model_path) -> Upscaler:
    return Upscaler.from_pretrained(tiny_model_path, device="cpu", precision="fp32")


def run(upscaler, src: Path, dst: Path, **kw) -> object:
    fmt = {".mkv": "matroska"}.get(dst.suffix, "mp4")
    with open(dst, "wb") as fh:
        return upscale_video(upscaler, src, fh, fmt, warn=lambda m: None, **kw)


# ----------------------------------------------------------------- pure functions
def test_colour_choices_follow_tags_then_size():
    assert source_matrix(1, 320, 240) == ITU709
    assert source_matrix(6, 1920, 1080) == ITU601  # tagged beats the size guess
    assert source_matrix(2, 320, 240) == ITU601 and source_matrix(2, 1280, 720) == ITU709
    assert source_range(0, "yuv420p") == 1 and source_range(0, "yuvj420p") == 2
    assert source_range(2, "yuv420p") == 2
    assert output_matrix(5) == ITU601 and output_matrix(2) == ITU709
    assert even_size(25, 33) == (26, 34) and even_size(24, 32) == (24, 32)
    a = np.arange(6).reshape(2, 3)
    assert rotate(a, 90).tolist() == np.rot90(a).tolist() and rotate(a, -180).shape == (2, 3)


# ----------------------------------------------------------------- end to end
def test_frames_size_timestamps_and_audio(tmp_path, upscaler):
    src, dst = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    make_clip(src, n=10, w=33, h=25, pix_fmt="yuv444p")  # odd size: x4 is even
    report = run(upscaler, src, dst)
    a, b = probe(src), probe(dst)
    assert report.frames == 10 and len(b["times"]) == 10
    assert b["size"] == (132, 100)
    assert b["times"] == pytest.approx(a["times"], abs=1e-6)
    assert b["audio"] == pytest.approx(a["audio"], abs=1e-6)  # copied packet for packet
    # A/V sync: the first frame and the first audio sample keep their offset (< one frame)
    assert abs((b["times"][0] - b["audio"][0]) - (a["times"][0] - a["audio"][0])) < 0.04


def test_no_audio_and_variable_frame_rate(tmp_path, upscaler):
    src, dst = tmp_path / "vfr.mp4", tmp_path / "out.mp4"
    steps = [40, 80, 40, 120, 40, 40]
    make_clip(src, n=6, audio=False, steps_ms=steps)
    run(upscaler, src, dst)
    b = probe(dst)
    assert b["audio"] is None
    assert b["times"] == pytest.approx([0, 0.04, 0.12, 0.16, 0.28, 0.32], abs=1e-6)


def test_lossless_frame_equals_upscale_of_decoded_frame(tmp_path, upscaler):
    src, dst = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    make_clip(src, n=4, w=30, h=22)
    run(upscaler, src, dst, opts=EncodeOptions(lossless=True))
    decoded = probe(src)["rgb"]
    out = probe(dst)["rgb"]
    assert len(out) == 4
    for i in (0, 3):
        want = upscaler.upscale(decoded[i]).astype(int)
        assert out[i].shape == want.shape == (88, 120, 3)
        assert np.abs(out[i].astype(int) - want).max() <= 1  # integer vs float pipeline


def test_default_h264_is_close_to_the_upscaled_frame(tmp_path, upscaler):
    src, dst = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    make_clip(src, n=2, w=32, h=24, colour=(180, 90, 40), audio=False)
    run(upscaler, src, dst, opts=EncodeOptions(crf=0))
    want = upscaler.upscale(probe(src)["rgb"][0]).astype(float)
    mse = ((probe(dst)["rgb"][0] - want) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 35  # 4:2:0 chroma and rounding only (~38 dB)


def test_outscale_resizes_and_keeps_4_2_0_sizes_even(tmp_path, upscaler):
    src = tmp_path / "clip.mp4"
    make_clip(src, n=2, w=33, h=25, pix_fmt="yuv444p", audio=False)
    run(upscaler, src, tmp_path / "x2.mp4", outscale=2)
    assert probe(tmp_path / "x2.mp4")["size"] == (66, 50)
    run(upscaler, src, tmp_path / "x3.mp4", outscale=3)  # 99x75 -> 100x76 for 4:2:0
    assert probe(tmp_path / "x3.mp4")["size"] == (100, 76)
    run(upscaler, src, tmp_path / "x3rgb.mp4", outscale=3, opts=EncodeOptions(lossless=True))
    assert probe(tmp_path / "x3rgb.mp4")["size"] == (99, 75)  # RGB has no chroma to halve


def test_rotation_is_applied_to_the_pixels(tmp_path, upscaler):
    src, dst = tmp_path / "rot.mp4", tmp_path / "out.mp4"
    make_clip(src, n=2, w=32, h=24, rotation=90, audio=False)
    run(upscaler, src, dst, opts=EncodeOptions(lossless=True))
    a, b = probe(src), probe(dst)
    assert a["rotation"] == 90 and b["rotation"] == 0
    assert b["size"] == (96, 128)  # 24x32 portrait, x4
    want = upscaler.upscale(np.ascontiguousarray(np.rot90(a["rgb"][0]))).astype(int)
    assert np.abs(b["rgb"][0].astype(int) - want).max() <= 1


class Nearest:
    """A stand-in upscaler (x2 pixel repeat) so that colours pass through unchanged."""

    scale = 2

    def upscale(self, data, tta=False):
        from srgan.imageio import QuantizedImage

        return QuantizedImage(data.pixels.repeat(2, 0).repeat(2, 1), 8)


@pytest.mark.parametrize("matrix", [ITU601, ITU709])
def test_colour_matrix_and_range_are_kept(tmp_path, matrix):
    rgb = (200, 60, 120)
    src, dst = tmp_path / "c.mp4", tmp_path / "out.mp4"
    make_clip(src, n=2, w=32, h=24, colour=rgb, matrix=matrix, audio=False)
    run(Nearest(), src, dst, opts=EncodeOptions(crf=0))
    b = probe(dst)
    assert b["colorspace"] == (6 if matrix == ITU601 else 1) and b["range"] == 1
    kr, kb = (0.299, 0.114) if matrix == ITU601 else (0.2126, 0.0722)
    y = 16 + 219 * (kr * rgb[0] + (1 - kr - kb) * rgb[1] + kb * rgb[2]) / 255
    assert np.abs(b["yuv"][0][:48].astype(float) - y).max() <= 2  # the luma plane
    assert np.abs(b["rgb"][0].astype(int) - rgb).max() <= 4


def test_untagged_small_source_is_read_as_bt601_and_written_as_bt709(tmp_path):
    rgb = (40, 200, 90)
    src, dst = tmp_path / "c.mp4", tmp_path / "out.mp4"
    make_clip(src, n=1, w=32, h=24, colour=rgb, matrix=None, audio=False)
    run(Nearest(), src, dst, opts=EncodeOptions(crf=0))
    b = probe(dst)
    assert b["colorspace"] == 1 and b["range"] == 1
    assert np.abs(b["rgb"][0].astype(int) - rgb).max() <= 4


def test_start_and_duration_cut_video_and_audio_together(tmp_path, upscaler):
    src, dst = tmp_path / "long.mp4", tmp_path / "out.mp4"
    make_clip(src, n=25, w=32, h=24)  # one second
    run(upscaler, src, dst, window=Window(start=0.4, duration=0.4))
    b = probe(dst)
    assert len(b["times"]) == 10
    assert b["times"][0] == pytest.approx(0, abs=1e-6)
    start, end = b["audio"]
    assert abs(start - b["times"][0]) < 0.04 and abs(end - 0.4) < 0.04


def test_decoder_runs_only_a_few_frames_ahead(tmp_path, monkeypatch):
    """Memory is bounded: however long the clip, few decoded frames wait for the network."""
    import time

    import srgan.video

    src = tmp_path / "clip.mp4"
    make_clip(src, n=30, audio=True)
    decoded, ahead = [], []
    real_rotate = srgan.video.rotate

    def counting_rotate(rgb, degrees):
        decoded.append(1)
        return real_rotate(rgb, degrees)

    def slow_upscale(up, rgb, outscale, tta=False, even=True):
        time.sleep(0.01)  # a slow network: the decoder would run away if nothing held it
        ahead.append(len(decoded) - len(ahead) - 1)
        return rgb.repeat(2, 0).repeat(2, 1)

    monkeypatch.setattr(srgan.video, "rotate", counting_rotate)
    monkeypatch.setattr(srgan.video, "upscale_frame", slow_upscale)
    report = run(Nearest(), src, tmp_path / "out.mp4")
    assert report.frames == 30 and len(decoded) == 30
    assert max(ahead) <= srgan.video.QUEUE_FRAMES + 1


def test_corrupt_frame_is_reported_with_its_time_and_the_rest_goes_on(tmp_path, upscaler):
    src, dst = tmp_path / "bad.mkv", tmp_path / "out.mp4"
    make_clip(src, n=6, w=32, h=24, codec="mjpeg", pix_fmt="yuvj420p", audio=False,
              corrupt=120)
    warnings: list[str] = []
    with open(dst, "wb") as fh:
        report = upscale_video(upscaler, src, fh, warn=warnings.append)
    assert report.frames == 5 and len(probe(dst)["times"]) == 5
    assert len(warnings) == 1 and "0.120s" in warnings[0] and str(src) in warnings[0]


def test_file_without_video_stream_is_a_clear_error(tmp_path, upscaler):
    src = tmp_path / "sound.mp4"
    c = av.open(str(src), "w")
    a = c.add_stream("aac", rate=48000)
    af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                    layout="mono")
    af.sample_rate, af.pts = 48000, 0
    for p in [*a.encode(af), *a.encode()]:
        c.mux(p)
    c.close()
    with pytest.raises(VideoError, match=r"sound\.mp4: no video stream \(streams: audio\)"):
        run(upscaler, src, tmp_path / "out.mp4")


# ----------------------------------------------------------------- the command
def test_cli_upscales_videos_and_keeps_the_output_rules(tmp_path, tiny_model_path):
    src = tmp_path / "clip.mp4"
    make_clip(src, n=3)
    args = ["upscale", str(src), "-m", str(tiny_model_path), "--precision", "fp32", "-q"]
    r = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out" / "clip_x4.mp4"
    assert len(probe(out)["times"]) == 3
    before = out.stat().st_mtime_ns
    r = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    assert r.exit_code == 0 and "exists" in r.output and out.stat().st_mtime_ns == before
    size = src.stat().st_size
    r = CliRunner().invoke(main, [*args, "-o", str(src), "--overwrite"])
    assert r.exit_code == 1 and "is one of the inputs" in r.output
    assert src.stat().st_size == size
    r = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "one.mp4"), "--start", "0.04"])
    assert r.exit_code == 0, r.output
    assert len(probe(tmp_path / "one.mp4")["times"]) == 2


def test_cli_refuses_an_unknown_codec_before_any_work(tmp_path, tiny_model_path):
    src = tmp_path / "clip.mp4"
    make_clip(src, n=2)
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "out"),
                                  "-m", str(tiny_model_path), "--codec", "nosuchcodec"])
    assert r.exit_code == 2 and "'nosuchcodec' is not an FFmpeg video encoder" in r.output
    assert not (tmp_path / "out").exists()


def test_cli_help_says_resume_is_not_supported():
    r = CliRunner().invoke(main, ["upscale", "--help"])
    assert "--resume is not supported" in r.output and "--lossless" in r.output
    assert "\n  Each output is written" in r.output  # the image text is still dedented


def test_cli_interrupted_run_leaves_no_file(tmp_path, tiny_model_path, monkeypatch):
    import srgan.video

    src = tmp_path / "clip.mp4"
    make_clip(src, n=6)
    calls = []

    def boom(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.zeros((96, 128, 3), np.uint8)

    monkeypatch.setattr(srgan.video, "upscale_frame", boom)
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "out"), "-q",
                                  "-m", str(tiny_model_path)])
    assert r.exit_code != 0 and len(calls) == 3
    assert os.listdir(tmp_path / "out") == []  # no clip_x4.mp4, no temporary file


def test_cli_reports_a_video_without_video_stream_and_goes_on(tmp_path, tiny_model_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "a.mp4", n=2)
    (folder / "b.mp4").write_bytes(b"not a video at all")
    r = CliRunner().invoke(main, ["upscale", str(folder), "-o", str(tmp_path / "out"), "-q",
                                  "-m", str(tiny_model_path), "--precision", "fp32"])
    assert r.exit_code == 1
    assert "b.mp4: cannot be read as a video" in r.output
    assert (tmp_path / "out" / "a_x4.mp4").exists() and not (tmp_path / "out" / "b_x4.mp4").exists()


def test_torchrun_processes_share_a_folder_of_videos(tmp_path, tiny_model_path, monkeypatch):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mkv"):
        make_clip(folder / name, n=2, audio=False)
    made = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        out = tmp_path / f"out{rank}"
        r = CliRunner().invoke(main, ["upscale", str(folder), "-o", str(out), "-q",
                                      "-m", str(tiny_model_path), "--device", "cpu"])
        assert r.exit_code == 0, r.output
        made.append(sorted(p.name for p in out.iterdir()))
    assert made == [["a_x4.mp4", "c_x4.mp4"], ["b_x4.mp4"]]  # disjoint, together complete


def test_cli_folder_of_a_video_and_images_does_both(tmp_path, tiny_model_path):
    from helpers import write_photo

    mixed, photos = tmp_path / "m", tmp_path / "photos"
    mixed.mkdir()
    make_clip(mixed / "clip.mp4", n=2, audio=False)
    write_photo(mixed / "a.png")
    write_photo(mixed / "b.png")
    write_photo(photos / "c.png")
    r = CliRunner().invoke(main, ["upscale", str(mixed), str(photos), "-o", str(tmp_path / "out"),
                                  "-q", "-m", str(tiny_model_path), "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a_x4.png", "b_x4.png", "c_x4.png",
                                                     "clip_x4.mp4"]
    assert "images: 3 upscaled, 0 skipped, 0 failed" in r.output
    assert "videos: 1 upscaled, 0 skipped, 0 failed" in r.output
    # a video file and an image file on one command line: both done, both reported
    r = CliRunner().invoke(main, ["upscale", str(mixed / "clip.mp4"), str(photos / "c.png"),
                                  "-o", str(tmp_path / "two"), "-q", "-m", str(tiny_model_path)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["c_x4.png", "clip_x4.mp4"]


def test_cli_in_place_never_replaces_a_clip_named_like_an_output(tmp_path, tiny_model_path):
    from srgan.video_checks import has_mark

    folder = tmp_path / "v"
    folder.mkdir()
    make_clip(folder / "clip.mp4", n=2, audio=False)
    make_clip(folder / "clip_x4.mp4", n=2, audio=False, seed=1)  # the user's own clip
    before = (folder / "clip_x4.mp4").read_bytes()
    r = CliRunner().invoke(main, ["upscale", str(folder), "-o", str(folder), "-q", "--overwrite",
                                  "-m", str(tiny_model_path)])
    assert r.exit_code == 1 and "clip_x4.mp4 is one of the inputs" in r.output, r.output
    assert "no input images" not in r.output and "images:" not in r.output
    assert (folder / "clip_x4.mp4").read_bytes() == before
    assert has_mark(folder / "clip_x4_x4.mp4") and not has_mark(folder / "clip_x4.mp4")


def test_a_truncated_video_is_an_error_not_a_short_output(tmp_path, upscaler):
    whole, cut = tmp_path / "whole.mkv", tmp_path / "cut.mkv"
    make_clip(whole, n=20)
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) * 6 // 10])
    with pytest.raises(VideoError, match=r"cut\.mkv: the video ends at 0\.\d+s but the file "
                                         r"declares 0\.800s: it is truncated"):
        run(upscaler, cut, tmp_path / "out.mp4")
    assert len(probe(run_ok(upscaler, whole, tmp_path / "ok.mp4"))["times"]) == 20
    # the part that is there, asked for with --duration, is upscaled
    short = run(upscaler, cut, tmp_path / "part.mp4", window=Window(0, 0.2))
    assert short.frames == 5


def run_ok(upscaler, src: Path, dst: Path) -> Path:
    run(upscaler, src, dst)
    return dst


def test_a_resolution_change_mid_stream_is_an_error(tmp_path, upscaler):
    from fractions import Fraction as F

    src = tmp_path / "two_sizes.ts"
    c = av.open(str(src), "w")
    s = c.add_stream("libx264", rate=25)
    s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
    t = 0
    for w, h in [(32, 24), (48, 36)]:  # two encoders, one stream: in-band SPS in MPEG-TS
        cc = av.CodecContext.create("libx264", "w")
        cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
        cc.time_base, cc.framerate = F(1, 25), F(25)
        frames = [av.VideoFrame.from_ndarray(np.zeros((h, w, 3), np.uint8), format="rgb24")
                  for _ in range(3)]
        for f in [*frames, None]:
            if f is not None:
                f.pts, t = t, t + 1
            for p in cc.encode(f):
                p.stream, p.time_base = s, F(1, 25)
                c.mux(p)
    c.close()
    with pytest.raises(VideoError, match=r"frame size changes at 0\.120s from 32x24 to 48x36"):
        run(upscaler, src, tmp_path / "out.mp4")


def test_an_output_too_large_for_the_encoder_fails_before_any_frame(tmp_path, upscaler,
                                                                     monkeypatch):
    import srgan.video

    src = tmp_path / "wide.mp4"
    make_clip(src, n=2, w=4098, h=8, audio=False)
    calls = []
    monkeypatch.setattr(srgan.video, "upscale_frame", lambda *a, **k: calls.append(1))
    with pytest.raises(VideoError, match=r"16392x32 and libx264 takes at most 16384 pixels"):
        run(upscaler, src, tmp_path / "out.mp4")
    assert calls == []
