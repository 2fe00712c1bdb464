"""What a run reports: a tqdm progress bar, a JSON-lines log of scalars and events, and
TensorBoard scalars and image grids when the optional `tensorboard` package is installed.
Only rank 0 reports; other ranks get a silent logger."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from srgan.jsonable import jsonable


class MetricWindow:
    """The logged quantities of the steps since the last log line: their means, the steps
    skipped as non-finite, the throughput, and a smoothed loss for the progress bar."""

    def __init__(self, step: int, patches_per_step: int, now: float | None = None) -> None:
        self.patches_per_step = patches_per_step
        self.smooth_loss: float | None = None
        self._reset(step, time.monotonic() if now is None else now)

    def _reset(self, step: int, now: float) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        self.skipped = 0
        self.t0, self.step0 = now, step

    def add(self, names: list[str], values: list[float]) -> None:
        """A good step's values (the first is the loss)."""
        for name, value in zip(names, values, strict=True):
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1
        loss = values[0]
        self.smooth_loss = loss if self.smooth_loss is None else (
            0.95 * self.smooth_loss + 0.05 * loss)

    def skip(self) -> None:
        self.skipped += 1

    def rate(self, step: int, now: float | None = None) -> float:
        """Patches a second since the window opened."""
        elapsed = (time.monotonic() if now is None else now) - self.t0
        return (step - self.step0) * self.patches_per_step / max(elapsed, 1e-9)

    def close(self, step: int, lr: float, now: float | None = None) -> tuple[dict[str, float],
                                                                             float]:
        """(the window's scalars, its seconds), and a new window opened at `step`."""
        now = time.monotonic() if now is None else now
        scalars = {k: v / max(1, self.count) for k, v in self.sums.items()}
        scalars.update({"lr": lr, "patches_per_s": self.rate(step, now),
                        "skipped": self.skipped})
        seconds = now - self.t0
        self._reset(step, now)
        return scalars, seconds


class RunLogger:
    """Writes `log.jsonl` (one JSON object per line, flushed), drives the progress bar and,
    when available, a TensorBoard writer in `tb/`.

    The bar appears at the first step, after the start-up messages, and every human line
    (`message`, through `say` when given) is written around it, never into it."""

    def __init__(
        self,
        run_dir: Path | None,
        total_steps: int = 0,
        start_step: int = 0,
        progress: bool = True,
        tensorboard: bool = True,
        active: bool = True,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.active = active and run_dir is not None
        self.run_dir = run_dir
        self._file = None
        self._bar = None
        self._tb = None
        self._say = say
        self._bar_args = None
        if not self.active:
            return
        assert run_dir is not None
        self._file = open(run_dir / "log.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if progress:
            self._bar_args = {"total": total_steps, "initial": start_step}
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.message("tensorboard is not installed: TensorBoard logging off "
                             "(pip install 'srgan[tensorboard]'); log.jsonl has the same scalars")
            else:
                self._tb = SummaryWriter(str(run_dir / "tb"))

    # ------------------------------------------------------------------- text

    def message(self, text: str) -> None:
        """A human line on stderr that does not break the progress bar."""
        if not self.active:
            return
        if self._say is None:
            if self._bar is not None:
                self._bar.write(text, file=sys.stderr)
            else:
                print(text, file=sys.stderr, flush=True)
            return
        if self._bar is None:
            self._say(text)
            return
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stderr):
            self._say(text)

    def event(self, kind: str, **fields: Any) -> None:
        self.record({"event": kind, **fields})

    def record(self, data: dict[str, Any]) -> None:
        if not self.active or self._file is None:
            return
        data = {"time": round(time.time(), 3), **{k: jsonable(v) for k, v in data.items()}}
        self._file.write(json.dumps(data) + "\n")
        self._file.flush()

    # ------------------------------------------------------------------- scalars

    def scalars(self, step: int, values: dict[str, float], prefix: str = "train") -> None:
        self.record({"step": step, **{f"{prefix}/{k}": v for k, v in values.items()}})
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, int | float) and math.isfinite(v):
                    self._tb.add_scalar(f"{prefix}/{k}", v, step)

    def progress(self, step: int, postfix: dict[str, str] | None = None) -> None:
        """The bar at `step` (called every step; tqdm itself limits redraws)."""
        if self._bar is None and self._bar_args is not None:
            from tqdm import tqdm

            self._bar = tqdm(unit="step", dynamic_ncols=True, smoothing=0.05, file=sys.stderr,
                             **self._bar_args)
            self._bar_args = None
        if self._bar is not None:
            if postfix is not None:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(step - self._bar.n)

    def image(self, tag: str, step: int, chw_uint8: torch.Tensor) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, chw_uint8.cpu(), step, dataformats="CHW")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._file is not None:
            self._file.close()
            self._file = None
