"""The folder pipeline of `srgan upscale`: the next file is decoded and the previous one
encoded in threads while the current one computes, so the device never waits for PNG."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import torch

Item = TypeVar("Item")


def overlapped(
    items: Iterable[Item],
    load: Callable[[Item], Any],
    compute: Callable[[Item, Any], Any],
    save: Callable[[Item, Any], Any],
    depth: int = 1,
) -> Iterator[tuple[Item, BaseException | None]]:
    """For each item, in order: `load(item)` in a worker thread (`depth` items ahead), then
    `compute(item, loaded)` in the calling thread (the device work), then `save(item,
    result)` in a worker thread while the next items compute (up to `depth` saves pending).
    Yields (item, None) once an item is saved, or (item, the exception) if a step failed:
    that item's later steps are skipped, the other items go on. Yields come in order; at
    most 2 * depth + 1 items are held at once."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(max_workers=2 * depth, thread_name_prefix="srgan-io") as pool:
        loads: deque[Future] = deque(pool.submit(load, it) for it in items[:depth])
        saving: deque[tuple[Item, Future | None, BaseException | None]] = deque()

        def finished(entry: tuple[Item, Future | None, BaseException | None]):
            item, fut, error = entry
            if fut is not None:
                try:
                    fut.result()
                except Exception as exc:  # reported per item, like a failed load
                    error = exc
            return item, error

        for i, item in enumerate(items):
            fut = loads.popleft()
            if i + depth < len(items):
                loads.append(pool.submit(load, items[i + depth]))
            error: BaseException | None = None
            result = None
            try:
                result = compute(item, fut.result())
            except Exception as exc:
                error = exc
            fut = None  # drop the decoded input before the next one is computed
            saving.append((item, pool.submit(save, item, result) if error is None else None,
                           error))
            result = None
            while len(saving) > depth:
                yield finished(saving.popleft())
        while saving:
            yield finished(saving.popleft())


def io_depth(device: torch.device) -> int:
    """Files decoded ahead / encoded behind in folder mode: one on a CPU (its cores run the
    network), more on an accelerator, where PNG encoding would otherwise be the bottleneck."""
    if device.type == "cpu":
        return 1
    return max(1, min(8, (os.cpu_count() or 2) // 2))
