"""The bounded job queue: a few jobs run in worker threads, a few more wait, the rest get 503.

Each admitted job gets a sequence number; a client that sent a ticket with its job can ask
where it stands (`position`) and withdraw it while it waits (`cancel`). The page uses both for
"2 jobs ahead of yours, about 6 s" and its cancel button.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any


class QueueFull(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("queue full")
        self.retry_after = retry_after


class JobCancelled(Exception):
    """The job was withdrawn by its client while it waited; it never ran."""


class JobQueue:
    """At most `workers` jobs run (each in its own thread); at most `waiting` more wait.

    Only the event loop touches the counters and `_jobs`, so plain ints and dicts are enough;
    the semaphore orders the waiting jobs (FIFO); the thread pool keeps the model's work off
    the event loop.
    """

    def __init__(self, workers: int, waiting: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if waiting < 0:
            raise ValueError(f"queue size must be >= 0, got {waiting}")
        self.workers = workers
        self.capacity = workers + waiting
        self.admitted = 0
        self.running = 0
        self.done = 0
        self.mean_seconds = 1.0  # moving average of a job's run time, for Retry-After
        self._sem: asyncio.Semaphore | None = None
        self._pool = None
        self._seq = 0
        self._jobs: dict[int, str] = {}  # seq -> "waiting" | "running" | "cancelled"
        self._tickets: dict[str, int] = {}  # client's ticket -> seq

    def _setup(self) -> asyncio.Semaphore:
        if self._sem is None:
            from concurrent.futures import ThreadPoolExecutor

            self._sem = asyncio.Semaphore(self.workers)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="srgan-job")
        return self._sem

    def retry_after(self) -> int:
        ahead = max(1, self.admitted - self.workers + 1)
        return int(min(600, max(1, math.ceil(self.mean_seconds * ahead / self.workers))))

    def check(self) -> None:
        """Raise QueueFull now if a job would be refused (saves probing the image first)."""
        if self.admitted >= self.capacity:
            raise QueueFull(self.retry_after())

    async def run(self, fn: Callable[..., Any], *args: Any, ticket: str | None = None) -> Any:
        sem = self._setup()
        self.check()
        self.admitted += 1
        self._seq += 1
        seq = self._seq
        self._jobs[seq] = "waiting"
        if ticket:
            self._tickets[ticket] = seq
        try:
            async with sem:
                if self._jobs[seq] == "cancelled":
                    raise JobCancelled()
                self._jobs[seq] = "running"
                self.running += 1
                start = time.perf_counter()
                try:
                    loop = asyncio.get_running_loop()
                    return await loop.run_in_executor(self._pool, fn, *args)
                finally:
                    self.running -= 1
                    self.done += 1
                    took = time.perf_counter() - start
                    # the first job sets the estimate; later ones move it gradually
                    self.mean_seconds = took if self.done == 1 else (
                        0.8 * self.mean_seconds + 0.2 * took)
        finally:
            self.admitted -= 1
            del self._jobs[seq]
            if ticket and self._tickets.get(ticket) == seq:
                del self._tickets[ticket]

    def position(self, ticket: str) -> dict[str, Any]:
        """Where a ticket's job stands: its state, the jobs ahead of it, a time estimate (s)."""
        seq = self._tickets.get(ticket)
        if seq is None:
            return {"state": "unknown", "ahead": 0, "eta_s": None}
        state = self._jobs[seq]
        ahead = sum(1 for s, st in self._jobs.items() if s < seq and st != "cancelled")
        # jobs ahead finish `workers` at a time, then this one runs for about one mean time
        rounds = (ahead // self.workers) + 1 if state == "waiting" else 1
        eta = math.ceil(self.mean_seconds * rounds) if self.done else None
        return {"state": state, "ahead": ahead if state == "waiting" else 0, "eta_s": eta}

    def cancel(self, ticket: str) -> str:
        """Withdraw a waiting job; a running one cannot be stopped (its result is dropped)."""
        seq = self._tickets.get(ticket)
        if seq is None:
            return "unknown"
        if self._jobs[seq] == "waiting":
            self._jobs[seq] = "cancelled"
            return "cancelled"
        return self._jobs[seq]

    def stats(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "capacity": self.capacity,
            "running": self.running,
            "waiting": max(0, self.admitted - self.running),
            "done": self.done,
        }

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
