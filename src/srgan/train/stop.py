"""Stopping a run between two steps: on SIGTERM/SIGINT, or when the time limit is reached."""

from __future__ import annotations

import signal
import threading
from typing import Any

GO, SIGNALLED, TIME_LIMIT = 0.0, 1.0, 2.0  # stop codes, max-reduced over ranks


class StopFlag:
    """SIGTERM/SIGINT set a flag that the loop reads at its next sync point, so the run ends
    with a checkpoint between two steps instead of in the middle of one."""

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum:  # second signal: give up at once
            signal.signal(signum, self._old.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signum = signum

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()

    def reason(self, code: float) -> str:
        """The stop code's words for the log: "time limit", "SIGTERM" or "SIGINT"."""
        if code == TIME_LIMIT:
            return "time limit"
        return signal.Signals(self.signum or signal.SIGTERM).name
