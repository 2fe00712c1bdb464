"""The `srgan` subcommands, one module each (`srgan.cli` loads them lazily): upscale (with
its folder pipeline and video options), train, export, models, benchmark and compare
(evaluate), serve, data; `options` holds the options several of them share."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def forward_to(module: str) -> Callable[[str], Any]:
    """A module `__getattr__` for a command module's old home: every name resolves in its
    new home, imported on first use."""
    def __getattr__(name: str) -> Any:
        return getattr(importlib.import_module(module), name)
    return __getattr__
