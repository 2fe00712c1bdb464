"""The server's ETA, driven by made-up clocks and rates (no wall-clock speed involved): a
1000x1000 upload said "about 7 s" for 473 s, then (with per-pixel rates) 0.3x to 3.7x the
real time left: the prior came from thumbnails, the estimate grew while a tile ran, the first
tile's warm-up counted for every tile and the PNG writing at the end did not count down."""

from __future__ import annotations

import random

from srgan.serve.eta import (
    DECODING,
    ENCODING,
    FLOOR,
    LOADING,
    UPSCALING,
    Rates,
    Size,
    Timeline,
)

THUMB = Size(in_pixels=64 * 64, work=64 * 64, out_pixels=256 * 256, tiles=1)
# 1000x1000 in 9 tiles whose windows (with their context) read 382x382 pixels each
LARGE = Size(in_pixels=1000 * 1000, work=9 * 382 * 382, out_pixels=4000 * 4000, tiles=9)
ENCODE_S_PER_PX = 1.3e-6  # PNG, measured: the same per pixel for 256x256 and 4000x4000


def thumbnails(rates: Rates, tile_s_per_px: float, n: int = 20) -> None:
    """Jobs of 64x64 as a benchmark's line of clients runs them, one after the other."""
    now = 0.0
    for _ in range(n):
        t = Timeline()
        t.enter(DECODING, now)
        t.enter(UPSCALING, now := now + 0.002)
        t.tile_done(now := now + tile_s_per_px * THUMB.work, 1)
        t.enter(ENCODING, now)
        now += 0.001 + ENCODE_S_PER_PX * THUMB.out_pixels
        rates.record(t, THUMB, "m", "png", now)


def large_job(first_tile: float, tile: float, encode: float, jitter: float, seed: int = 0
              ) -> tuple[list[tuple[str, float]], float]:
    """The stage changes and tile ends of one large job: [(event, when)], and its end."""
    rng = random.Random(seed)
    events = [(DECODING, 0.0), (UPSCALING, now := 0.35)]
    for i in range(LARGE.tiles):
        now += first_tile if i == 0 else tile * rng.uniform(1 - jitter, 1 + jitter)
        events.append(("tile", now))
    events.append((ENCODING, now))
    return events, now + encode


def ratios(rates: Rates, events: list[tuple[str, float]], end: float) -> list[float]:
    """ETA / real time left, sampled every second after the first tenth (as
    benchmarks/serve_queue.py does), while more than 5 s are left (in the last seconds a
    PNG that compresses 15 % faster than expected is a factor of 2 of almost nothing)."""
    out = []
    for second in range(1, int(end)):
        now = float(second)
        t, stage, done = Timeline(), DECODING, 0
        for what, when in events:
            if when > now:
                break
            if what == "tile":
                done += 1
                t.tile_done(when, done)
            else:
                t.enter(stage := what, when)
        left = rates.remaining(t, stage, LARGE, "m", "png", now)
        if now >= end / 10 and end - now > 5:
            assert left is not None
            out.append(left / (end - now))
    return out


def test_a_large_jobs_eta_stays_within_a_factor_of_2_after_the_first_tenth():
    rates = Rates()
    # as measured on a 2-core machine: thumbnails run their small tiles 1.6x faster per pixel
    # than the large job will, whose first tile warms up (1.6x a tile), whose tiles vary by
    # 25 % (a busy machine) and whose PNG takes 15 % more or less than the thumbnails' rate
    # says (how well it compresses)
    thumbnails(rates, tile_s_per_px=12.0 / (382 * 382) / 1.6)
    for seed, png in [(seed, png) for seed in range(4) for png in (1 / 1.15, 1.15)]:
        events, end = large_job(first_tile=1.6 * 12.0, tile=12.0, jitter=0.25,
                                encode=png * ENCODE_S_PER_PX * LARGE.out_pixels, seed=seed)
        got = ratios(rates, events, end)
        assert len(got) > 80
        assert min(got) >= 0.5 and max(got) <= 2.0, (seed, min(got), max(got))


def test_the_time_left_counts_down_while_a_tile_runs_and_while_encoding():
    rates = Rates()
    thumbnails(rates, tile_s_per_px=1e-4)
    t = Timeline()
    t.enter(DECODING, 0.0)
    t.enter(UPSCALING, 1.0)
    t.tile_done(11.0, 1)
    t.tile_done(21.0, 2)  # 10 s a tile
    a = rates.remaining(t, UPSCALING, LARGE, "m", "png", 22.0)
    b = rates.remaining(t, UPSCALING, LARGE, "m", "png", 28.0)
    encode = rates.stages(LARGE, "m", "png")[ENCODING]
    assert a is not None and b is not None
    assert abs(a - (7 * 10 - 1 + encode)) < 1e-6 and abs(a - b - 6) < 1e-6
    # a tile that overruns the rate: the tiles after it are taken to be as slow
    c = rates.remaining(t, UPSCALING, LARGE, "m", "png", 41.0)  # 20 s into tile 3
    assert abs(c - (20 * 7 - 20 + encode)) < 1e-6
    t.enter(ENCODING, 100.0)
    early = rates.remaining(t, ENCODING, LARGE, "m", "png", 101.0)
    late = rates.remaining(t, ENCODING, LARGE, "m", "png", 100.0 + encode / 2)
    spent = rates.remaining(t, ENCODING, LARGE, "m", "png", 100.0 + 5 * encode)
    assert abs(early - (encode - 1)) < 1e-6 and abs(late - encode / 2) < 1e-6
    assert abs(spent - FLOOR * encode) < 1e-6  # never 0 while it still runs


def test_rates_are_per_stage_per_model_and_per_format_and_loading_is_not_one():
    rates = Rates()
    assert rates.estimate(LARGE, "m", "png") is None  # nothing measured yet
    t = Timeline()
    t.enter(DECODING, 0.0)
    t.enter(LOADING, 0.1)  # the model's first use: 5 s of loading, in no rate
    t.enter(UPSCALING, 5.1)
    t.tile_done(6.1, 1)
    t.enter(ENCODING, 6.1)
    rates.record(t, THUMB, "m", "png", 6.2)
    stages = rates.stages(THUMB, "m", "png")
    assert abs(stages[DECODING] - 0.1) < 1e-9 and abs(stages[UPSCALING] - 1.0) < 1e-9
    assert abs(stages[ENCODING] - 0.1) < 1e-9
    assert rates.estimate(THUMB, "m+tta", "png") is None  # another model (or tta): unknown
    # an unmeasured format borrows a measured one's rate rather than saying nothing
    assert rates.estimate(THUMB, "m", "webp") == rates.estimate(THUMB, "m", "png")
    # a large job weighs more than a thumbnail in the per-pixel rates
    big = Timeline()
    big.enter(DECODING, 0.0)
    big.enter(UPSCALING, 0.0)
    big.tile_done(100.0, 9)
    big.enter(ENCODING, 100.0)
    rates.record(big, LARGE, "m", "png", 120.0)
    per_px = rates.stages(LARGE, "m", "png")[UPSCALING] / LARGE.work
    assert abs(per_px / (100.0 / LARGE.work) - 1) < 0.01
