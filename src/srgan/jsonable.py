"""Values made fit for JSON, shared by the training log and the benchmark summary: JSON has
no NaN or infinity, no tensors and no paths."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch


def jsonable(value: Any) -> Any:
    """`value` as something json.dumps writes as valid JSON; other values unchanged."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf"
    if isinstance(value, torch.Tensor):
        return jsonable(value.item()) if value.numel() == 1 else value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def json_default(value: Any) -> Any:
    """For json.dumps(default=...): what `jsonable` converts, else TypeError."""
    converted = jsonable(value)
    if converted is value:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")
    return converted
