"""Server-issued jobs and the bounded queue they wait in.

Why it is built this way:

* A job's id is 128 random bits (`secrets`), issued by the server and never reused: it is the
  only key to the job, so a client can read or cancel its own job and nobody else's.
* Jobs wait in a FIFO line served by `workers` threads. A waiting job holds its upload as the
  encoded bytes and its probed size, never decoded pixels; the line is bounded by a count and
  by the bytes it holds, and only past those is a job refused (QueueFull, 503).
* Cancelling takes a waiting job out of the line at once; a running one stops at its next
  tile (its progress callback raises). A job nobody has asked about for `lease` seconds is
  taken to be abandoned (closed tab, a script that gave up) and is dropped the same way, and
  a finished job's result is freed after the same time without a look.
* ETAs come from measured rates per stage (decoding, the model's tiles, encoding) times this
  job's size, and for a running job from its own tile times once a tile is done, not from
  an average over jobs of other sizes (`srgan.serve.eta`).
* Everything is guarded by one lock; the event loop only reads snapshots (`describe`), so the
  routes stay loop-agnostic and the worker threads never touch asyncio.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from srgan.serve.eta import DECODING, ENCODING, UPSCALING, Rates, Size, Timeline

WAITING, RUNNING, DONE, FAILED, CANCELLED = "waiting", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class QueueFull(Exception):
    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.reason = reason


class JobCancelled(Exception):
    """Raised inside a running job (from its progress callback) once it was cancelled."""


@dataclass
class Job:
    """One upscale request: what was asked, where it stands, and (once done) its result."""

    id: str
    params: Any  # srgan.serve.params.JobParams
    filename: str
    upload: bytes | None  # the encoded upload, dropped once decoded
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    key: str  # the rate this job's time is estimated from (model and tta)
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    work: int = 0  # pixels the network will read (its tiles' windows); 0: the input's
    state: str = WAITING
    stage: str = "waiting"
    started: float | None = None
    finished: float | None = None
    timeline: Timeline = field(default_factory=Timeline)
    tiles_done: int = 0
    tiles_total: int = 0
    cancel_reason: str | None = None
    result: Any = None  # whatever the runner returned
    error: tuple[int, str] | None = None

    @property
    def in_pixels(self) -> int:
        return self.in_size[0] * self.in_size[1]

    @property
    def out_pixels(self) -> int:
        return self.out_size[0] * self.out_size[1]

    @property
    def format(self) -> str:
        return str(getattr(self.params, "format", "png"))

    @property
    def size(self) -> Size:
        return Size(self.in_pixels, self.work or self.in_pixels, self.out_pixels,
                    self.tiles_total)

    def enter(self, stage: str, now: float) -> None:
        self.stage = stage
        self.timeline.enter(stage, now)

    def check(self) -> None:
        """Called by the runner between tiles: stop here if the job was cancelled."""
        if self.cancel_reason is not None:
            raise JobCancelled(self.cancel_reason)


class JobQueue:
    """At most `workers` jobs run (each in its own thread); at most `waiting` more wait,
    holding at most `max_bytes` of uploads between them.

    `runner(job)` does the work in a worker thread and returns the result; it calls
    `job.check()` and `progress(job, n)` as tiles finish, and raises to fail the job (the
    exception becomes the job's error through `error_of`).
    """

    def __init__(self, workers: int, waiting: int, max_bytes: int, lease: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if waiting < 0:
            raise ValueError(f"queue size must be >= 0, got {waiting}")
        if not lease > 0 or not math.isfinite(lease):
            raise ValueError(f"the job lease must be a positive number of seconds, got {lease}")
        self.workers = workers
        self.waiting_limit = waiting
        self.max_bytes = max_bytes
        self.lease = lease
        self.clock = clock
        self.rates = Rates()
        self.done = 0
        self.runner: Callable[[Job], Any] | None = None
        self.error_of: Callable[[BaseException], tuple[int, str]] = (
            lambda exc: (500, f"internal error ({type(exc).__name__}); the server logged it"))
        self._jobs: dict[str, Job] = {}
        self._line: deque[Job] = deque()
        self._running: list[Job] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._stopping = False

    @property
    def capacity(self) -> int:
        return self.workers + self.waiting_limit

    # ------------------------------------------------------------------ admitting
    def _new_id(self) -> str:
        while True:  # 128 random bits; a clash with a live job is all but impossible
            job_id = secrets.token_hex(16)
            if job_id not in self._jobs:
                return job_id

    def _queued_bytes(self) -> int:
        return sum(len(j.upload or b"") for j in self._line)

    def check(self, incoming: int = 0) -> None:
        """Raise QueueFull now if a job of `incoming` bytes would be refused."""
        with self._lock:
            self._check(incoming)

    def _check(self, incoming: int) -> None:
        self._sweep(self.clock())
        busy = len(self._running) >= self.workers
        if busy and len(self._line) >= self.waiting_limit:
            raise QueueFull(self._retry_after(), f"{len(self._line)} jobs are waiting, the "
                            f"most this server holds")
        if busy and self._line and self._queued_bytes() + incoming > self.max_bytes:
            raise QueueFull(self._retry_after(), "the waiting jobs hold as many uploaded "
                            "bytes as this server keeps")

    def submit(self, params: Any, filename: str, upload: bytes, in_size: tuple[int, int],
               out_size: tuple[int, int], key: str, work: int = 0) -> Job:
        """Queue a job; `work`: the pixels its tiles' windows hold, when known (the ETA of a
        large image counts the context read around each tile)."""
        with self._lock:
            self._check(len(upload))
            now = self.clock()
            job = Job(self._new_id(), params, filename, upload, in_size, out_size, key,
                      created=now, seen=now, work=work)
            self._jobs[job.id] = job
            self._line.append(job)
            self._start_threads()
            self._wake.notify()
            return job

    def _start_threads(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.workers and not self._stopping:
            t = threading.Thread(target=self._work, name=f"srgan-job-{len(self._threads)}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    # ------------------------------------------------------------------ running
    def _next(self) -> Job | None:
        with self._lock:
            while not self._stopping:
                self._sweep(self.clock())
                if self._line:
                    job = self._line.popleft()
                    job.state, job.started = RUNNING, self.clock()
                    job.enter(DECODING, job.started)
                    self._running.append(job)
                    return job
                self._wake.wait(timeout=self.lease / 4)
            return None

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                assert self.runner is not None
                result = self.runner(job)
            except JobCancelled:
                result, outcome = None, CANCELLED
            except BaseException as exc:  # noqa: BLE001 - every failure ends the job, not us
                result, outcome = None, FAILED
                job.error = self.error_of(exc)
            else:
                outcome = DONE
            with self._lock:
                job.finished = self.clock()
                job.upload = None
                self._running.remove(job)
                if outcome == DONE and job.cancel_reason is None:
                    job.state, job.result = DONE, result
                    self.rates.record(job.timeline, job.size, job.key, job.format,
                                      job.finished)
                    self.done += 1
                elif outcome == FAILED:
                    job.state = FAILED
                else:
                    job.state = CANCELLED
                job.stage = job.state

    def progress(self, job: Job, n: int) -> None:
        """A runner's tile callback: count, then stop if cancelled or abandoned."""
        with self._lock:
            job.tiles_done += n
            job.timeline.tile_done(self.clock(), job.tiles_done)
            if self.clock() - job.seen > self.lease:
                job.cancel_reason = "abandoned"
        job.check()

    def enter(self, job: Job, stage: str) -> None:
        """The runner moved on to `stage` (e.g. loading the model)."""
        with self._lock:
            job.enter(stage, self.clock())
        job.check()

    def start_tiles(self, job: Job, total: int, work: int = 0) -> None:
        """`total` tiles to run, holding `work` pixels with their context (0: unknown)."""
        with self._lock:
            job.tiles_total, job.work = total, work or job.work
            job.enter(UPSCALING, self.clock())
        job.check()

    def end_tiles(self, job: Job) -> None:
        with self._lock:
            job.enter(ENCODING, self.clock())
        job.check()

    # ------------------------------------------------------------------ clients
    def get(self, job_id: str, touch: bool = True) -> Job | None:
        with self._lock:
            self._sweep(self.clock())
            job = self._jobs.get(job_id)
            if job is not None and touch:
                job.seen = self.clock()
            return job

    def cancel(self, job_id: str, reason: str = "cancelled") -> Job | None:
        """Take a waiting job out of the line now; stop a running one at its next tile;
        forget a finished one (its result is freed)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            self._cancel(job, reason)
            return job

    def _cancel(self, job: Job, reason: str) -> None:
        if job.state == WAITING:
            self._line.remove(job)
            job.state = job.stage = CANCELLED
            job.upload, job.finished = None, self.clock()
        elif job.state == RUNNING:
            job.cancel_reason = reason
        else:
            job.result = None
            self._jobs.pop(job.id, None)
        job.cancel_reason = job.cancel_reason or reason

    def _sweep(self, now: float) -> None:
        """Drop what nobody asks about any more (callers hold the lock)."""
        for job in list(self._jobs.values()):
            if now - job.seen <= self.lease:
                continue
            if job.state in FINISHED:
                job.result = None
                del self._jobs[job.id]
            else:
                self._cancel(job, "abandoned")

    # ------------------------------------------------------------------ views
    def describe(self, job: Job) -> dict[str, Any]:
        """Where a job stands, for GET /v1/jobs/{id} (a snapshot taken under the lock)."""
        with self._lock:
            now = self.clock()
            ahead = self._ahead(job)
            view: dict[str, Any] = {
                "id": job.id, "state": job.state, "stage": job.stage,
                "position": ahead[0] if job.state == WAITING else 0,
                "ahead": ahead[1] if job.state == WAITING else 0,
                "tiles_done": job.tiles_done, "tiles_total": job.tiles_total,
                "progress": self._fraction(job),
                "elapsed_s": round((job.finished or now) - (job.started or now), 1),
                "eta_s": self._eta(job, now),
                "poll_after_s": self._poll_after(job, now),
            }
            return view

    def _ahead(self, job: Job) -> tuple[int, int]:
        """(1-based place in the waiting line, jobs that run before it, running included)."""
        if job.state != WAITING:
            return 0, 0
        place = self._line.index(job)
        return place + 1, place + len(self._running)

    @staticmethod
    def _fraction(job: Job) -> float:
        if job.state == DONE:
            return 1.0
        if not job.tiles_total:
            return 0.0
        return round(min(1.0, job.tiles_done / job.tiles_total), 4)

    def _eta(self, job: Job, now: float) -> float | None:
        if job.state in FINISHED:
            return 0.0 if job.state == DONE else None
        if job.state == RUNNING:
            left = self._remaining(job, now)
            return None if left is None else round(left, 1)
        # waiting: what runs before it, shared between the workers, then its own time
        before = [self._remaining(j, now) for j in self._running]
        before += [self._estimate(j) for j in list(self._line)[:self._line.index(job)]]
        own = self._estimate(job)
        if own is None or any(t is None for t in before):
            return None
        return round(sum(before) / self.workers + own, 1)  # type: ignore[arg-type]

    def _estimate(self, job: Job) -> float | None:
        return self.rates.estimate(job.size, job.key, job.format)

    def _remaining(self, job: Job, now: float) -> float | None:
        return self.rates.remaining(job.timeline, job.stage, job.size, job.key, job.format,
                                    now)

    def _poll_after(self, job: Job, now: float) -> float:
        """How long a client may wait before asking again: soon at first, then less often
        (grows with the job's age, at most 5 s), never past the lease."""
        age = now - job.created
        return round(min(5.0, max(0.5, age / 10), self.lease / 4), 1)

    def _retry_after(self) -> int:
        now = self.clock()
        times = [self._remaining(j, now) for j in self._running]
        times += [self._estimate(j) for j in self._line]
        known = [t for t in times if t is not None]
        guess = (sum(known) + 10.0 * (len(times) - len(known))) / self.workers
        return int(min(600, max(1, math.ceil(guess))))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            self._sweep(self.clock())
            return {
                "workers": self.workers,
                "capacity": self.capacity,
                "running": len(self._running),
                "waiting": len(self._line),
                "done": self.done,
            }

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            for job in list(self._line):
                self._cancel(job, "the server is stopping")
            for job in self._running:
                job.cancel_reason = "the server is stopping"
            self._wake.notify_all()
