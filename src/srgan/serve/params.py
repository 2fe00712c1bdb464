"""A job's parameters: one table (`OPTIONS`) says how each is named, parsed, validated and
described, and the form parser, the query-string parser and the OpenAPI schema all come from
it. Adding an option (a denoise strength, say) is one `Option` here and one field of
`JobParams`; the worker reads the field.

What people type is accepted where it is unambiguous (`JPG`, `jpeg`, `True`, ` 2 `); what the
server would not honour is refused with 422 naming the field (an unknown field, a value out of
range, a field sent twice), never ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OUTSCALE_MIN, OUTSCALE_MAX = 1.0, 8.0
FORMATS = {"png": ("image/png", ".png"), "jpg": ("image/jpeg", ".jpg"),
           "webp": ("image/webp", ".webp")}
FORMAT_ALIASES = {"jpeg": "jpg"}
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
# the query string's own parameter (how to answer), not a job parameter
CONTROL = {"wait"}
# blends of the clean-photo and the real-photo model are made (and cached) at this step
DENOISE_STEP = 0.05


class ParamError(ValueError):
    """A parameter the server will not honour: (HTTP status, sentence)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class JobParams:
    model: str
    outscale: float
    format: str
    tta: bool
    denoise: float | None = None  # None: the model as it is


@dataclass(frozen=True)
class Context:
    """What parsing needs to know about the server: its models, their scales, its default."""

    models: Mapping[str, int | None]  # name -> the model's own scale (None: bicubic)
    default: str
    denoise_models: frozenset[str] = frozenset()  # the models a denoise strength blends
    denoise_missing: str = ""  # why this server offers no denoise (when it does not)


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[str, Context], Any]
    schema: Callable[[Context], dict[str, Any]]
    default: Callable[[Context, dict[str, Any]], Any]


def _model(text: str, ctx: Context) -> str:
    name = text.strip()
    if name not in ctx.models:
        raise ParamError(404, f"unknown model {name!r}; this server has: {', '.join(ctx.models)}")
    return name


def _outscale(text: str, ctx: Context) -> float:
    try:
        value = float(text.strip().lstrip("xX×"))
    except ValueError:
        raise ParamError(422, f"outscale: {text[:40]!r} is not a number (use e.g. 4)") from None
    if not math.isfinite(value):
        raise ParamError(422, "outscale: Input should be a finite number")
    if not OUTSCALE_MIN <= value <= OUTSCALE_MAX:
        raise ParamError(422, f"outscale: {value:g} is outside {OUTSCALE_MIN:g} to "
                         f"{OUTSCALE_MAX:g}")
    return value


def _format(text: str, ctx: Context) -> str:
    fmt = text.strip().lower().lstrip(".")
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ParamError(422, f"format: {text[:40]!r} is not one this server writes; use "
                         f"{', '.join(FORMATS)} (or jpeg)")
    return fmt


def _bool(name: str) -> Callable[[str, Context], bool]:
    def parse(text: str, ctx: Context) -> bool:
        value = text.strip().lower()
        if value in TRUE | FALSE:
            return value in TRUE
        raise ParamError(422, f"{name}: {text[:40]!r} is not true or false")

    return parse


def _denoise(text: str, ctx: Context) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ParamError(422, f"denoise: {text[:40]!r} is not a number (use 0 to 1, e.g. "
                         "0.5)") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ParamError(422, f"denoise: {text[:40]!r} is outside 0 to 1 (0 keeps fine "
                         "texture and the noise, 1 removes the most noise)")
    return round(round(value / DENOISE_STEP) * DENOISE_STEP, 2)


def _check_denoise(got: dict[str, Any], ctx: Context) -> None:
    """A strength the server cannot honour is refused, never ignored."""
    if got.get("denoise") is None:
        return
    if not ctx.denoise_models:
        raise ParamError(422, f"denoise: not offered by this server ({ctx.denoise_missing})")
    if got["model"] not in ctx.denoise_models:
        pair = " and ".join(sorted(ctx.denoise_models))
        raise ParamError(422, f"denoise: works by blending {pair}; choose one of them as the "
                         f"model, not {got['model']!r}")


def _default_outscale(ctx: Context, got: dict[str, Any]) -> float:
    return float(ctx.models.get(got["model"]) or 4)


OPTIONS: tuple[Option, ...] = (
    Option("model", _model,
           lambda ctx: {"type": "string", "enum": list(ctx.models), "default": ctx.default,
                        "description": "A name from /v1/models; 'bicubic' for plain "
                                       "interpolation."},
           lambda ctx, got: ctx.default),
    Option("outscale", _outscale,
           lambda ctx: {"type": "number", "minimum": OUTSCALE_MIN, "maximum": OUTSCALE_MAX,
                        "description": "Final scale factor (default: the model's own, "
                                       "e.g. 4)."},
           _default_outscale),
    Option("format", _format,
           lambda ctx: {"type": "string", "enum": [*FORMATS, *FORMAT_ALIASES],
                        "default": "png", "description": "Output format (jpeg = jpg; "
                                                         "any case)."},
           lambda ctx, got: "png"),
    Option("tta", _bool("tta"),
           lambda ctx: {"type": "boolean", "default": False,
                        "description": "x8 self-ensemble: 8x slower, slightly better."},
           lambda ctx, got: False),
    Option("denoise", _denoise,
           lambda ctx: {"type": "number", "minimum": 0, "maximum": 1,
                        "description": "Clean up noise and JPEG blocks: 0 keeps fine texture "
                                       "(and the noise), 1 removes the most; rounded to "
                                       f"{DENOISE_STEP:g}. Only where /v1/models says "
                                       "denoise is available."},
           lambda ctx, got: None),
)
NAMES = {o.name for o in OPTIONS}


def parse(form: Iterable[tuple[str, Any]], query: Iterable[tuple[str, str]],
          ctx: Context) -> JobParams:
    """The job's parameters from the form's text fields and the query string (either may
    carry any of them, not both). The image field is the caller's business."""
    given: dict[str, tuple[str, str]] = {}  # name -> (where, text)
    for where, items in (("form", form), ("query", query)):
        for key, value in items:
            if key == "image" or (where == "query" and key in CONTROL):
                continue
            if key not in NAMES:
                raise ParamError(422, f"{key}: not a parameter of this API (it takes "
                                 f"{', '.join(sorted(NAMES))}); nothing was done")
            if key in given:
                raise ParamError(422, f"{key}: sent more than once; send one image (and each "
                                 "field once) per request")
            if not isinstance(value, str):
                raise ParamError(422, f"{key}: expected a text value, got a file")
            given[key] = (where, value)
    got: dict[str, Any] = {}
    for option in OPTIONS:
        if option.name in given:
            got[option.name] = option.parse(given[option.name][1], ctx)
        else:
            got[option.name] = option.default(ctx, got)
    _check_denoise(got, ctx)
    return JobParams(**got)


def openapi_body(ctx: Context) -> dict[str, Any]:
    """The multipart request body of POST /v1/upscale, for the OpenAPI schema."""
    props: dict[str, Any] = {"image": {"type": "string", "format": "binary",
                                       "description": "The image (PNG, JPEG, WebP, ...)."}}
    props.update({o.name: o.schema(ctx) for o in OPTIONS})
    return {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"], "properties": props}}}}
