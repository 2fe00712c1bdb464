"""How long a job will take: measured rates per stage times this job's size, and for a
running job its own tile times as soon as it has some.

A job goes through stages (`Job.enter` stamps each): decoding (seconds per input pixel),
loading the model the first time it is used (not estimated), upscaling (seconds per pixel
the network reads, its tiles' windows with their context, per model and tta: what a 64x64
thumbnail and a 1000x1000 photo have in common) and encoding (seconds per output pixel, per
format: writing a 4000x4000 PNG is a real part of the job). Each rate is a ratio of decaying
sums of seconds and pixels, so a large job counts for more than a thumbnail whose time is
mostly fixed overhead.

What a running job's own tiles say beats any earlier job: after one tile its rate (which
includes the first tile's warm-up), after two the rate of its last few tiles (never the
first). A tile under way that has taken longer than the rate says counts as at least that
long, and so do the tiles after it (the machine got busier). The time left in a stage counts
down between tiles instead of standing still, never below a fifth of the stage's estimate.

Everything takes `now` as an argument, so tests can drive it with made-up clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DECODING, LOADING, UPSCALING, ENCODING = "decoding", "loading", "upscaling", "encoding"
RECENT = 3  # tiles a running job's own rate is measured over, once it has that many
FLOOR = 0.2  # of a stage's estimate: what is said to be left once the estimate is spent


@dataclass
class Timeline:
    """When a job entered each stage, and when each batch of its tiles was done."""

    marks: dict[str, float] = field(default_factory=dict)  # stage -> when it began
    tiles: list[tuple[float, int]] = field(default_factory=list)  # (when, tiles done by then)

    def enter(self, stage: str, now: float) -> None:
        self.marks[stage] = now

    def tile_done(self, now: float, done: int) -> None:
        self.tiles.append((now, done))

    def seconds_in(self, stage: str, end: float) -> float | None:
        """How long the job spent in `stage` (up to the next stage that began, else `end`)."""
        if stage not in self.marks:
            return None
        start = self.marks[stage]
        later = [t for t in self.marks.values() if t > start]
        return max(0.0, (min(later) if later else end) - start)


class Rate:
    """Seconds per unit, as a ratio of decaying sums (recent jobs count most)."""

    DECAY = 0.7

    def __init__(self) -> None:
        self.seconds = 0.0
        self.units = 0.0

    def add(self, seconds: float, units: int) -> None:
        self.seconds = self.DECAY * self.seconds + seconds
        self.units = self.DECAY * self.units + max(1, units)

    @property
    def per_unit(self) -> float | None:
        return self.seconds / self.units if self.units else None


@dataclass(frozen=True)
class Size:
    """What a job's time scales with."""

    in_pixels: int
    work: int  # pixels the network reads (its tiles' windows)
    out_pixels: int
    tiles: int  # 0 until the server knows


class Rates:
    """The measured rates, and the estimates made from them."""

    def __init__(self) -> None:
        self.decode = Rate()
        self.tile: dict[str, Rate] = {}  # model (+tta) -> seconds per network pixel
        self.encode: dict[str, Rate] = {}  # output format -> seconds per output pixel

    def record(self, t: Timeline, size: Size, key: str, fmt: str, finished: float) -> None:
        """Learn from a job that finished: each stage's time over its size."""
        decode = t.seconds_in(DECODING, finished)
        tiles = t.seconds_in(UPSCALING, finished)
        encode = t.seconds_in(ENCODING, finished)
        if decode is None or tiles is None or encode is None:
            return  # failed early or cancelled: nothing comparable measured
        self.decode.add(decode, size.in_pixels)
        self.tile.setdefault(key, Rate()).add(tiles, size.work)
        self.encode.setdefault(fmt, Rate()).add(encode, size.out_pixels)

    def stages(self, size: Size, key: str, fmt: str) -> dict[str, float] | None:
        """Each stage's expected seconds for a job of `size`; None before `key` ran once."""
        tile = self.tile.get(key)
        if tile is None or tile.per_unit is None:
            return None
        encode = self.encode.get(fmt) or next(iter(self.encode.values()), None)
        return {
            DECODING: (self.decode.per_unit or 0.0) * size.in_pixels,
            UPSCALING: tile.per_unit * size.work,
            ENCODING: ((encode.per_unit if encode else None) or 0.0) * size.out_pixels,
        }

    def estimate(self, size: Size, key: str, fmt: str) -> float | None:
        """Seconds the whole job should take (a waiting job's own part)."""
        stages = self.stages(size, key, fmt)
        return None if stages is None else sum(stages.values())

    def remaining(self, t: Timeline, stage: str, size: Size, key: str, fmt: str,
                  now: float) -> float | None:
        """Seconds until a running job in `stage` is done; None when nothing says."""
        stages = self.stages(size, key, fmt)
        if stage == UPSCALING:
            tiles = tiles_left(t, size.tiles, now,
                               None if stages is None else stages[UPSCALING])
            if tiles is None:
                return None
            return tiles + (stages[ENCODING] if stages else 0.0)
        if stages is None:
            return None
        if stage == ENCODING:
            return _counted_down(stages[ENCODING], t.seconds_in(ENCODING, now))
        if stage == LOADING:  # how long a model takes to load is not measured
            return stages[UPSCALING] + stages[ENCODING]
        return (_counted_down(stages[DECODING], t.seconds_in(DECODING, now))
                + stages[UPSCALING] + stages[ENCODING])


def _counted_down(estimate: float, spent: float | None) -> float:
    return max(estimate - (spent or 0.0), FLOOR * estimate)


def tiles_left(t: Timeline, total: int, now: float, prior: float | None) -> float | None:
    """Seconds until the last of `total` tiles is done: from this job's own tile times once
    one is done, before that from `prior` (the whole stage's estimate from earlier jobs)."""
    start = t.marks.get(UPSCALING)
    if start is None or total <= 0:
        return prior
    done = t.tiles[-1][1] if t.tiles else 0
    left = total - done
    if left <= 0:
        return 0.0
    if len(t.tiles) >= 2:  # the last few tiles (a busier or idler machine shows soon),
        # never the first one's warm-up
        (t0, d0), (t1, d1) = t.tiles[max(0, len(t.tiles) - 1 - RECENT)], t.tiles[-1]
        rate = (t1 - t0) / max(1, d1 - d0)
    elif t.tiles:
        rate = (t.tiles[0][0] - start) / max(1, done)
    elif prior is not None:
        rate = prior / total
    else:
        return None
    since = now - (t.tiles[-1][0] if t.tiles else start)
    rate = max(rate, since)  # the tile under way has taken `since` already
    return max(rate * left - since, FLOOR * rate)
