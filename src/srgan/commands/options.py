"""Options several subcommands share, declared once so their names, choices and help agree."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import click

from srgan.precision import PRECISIONS

F = TypeVar("F", bound=Callable)

PRECISION_HELP = ("auto: fp16 on GPUs, a bf16 mix on CPUs with native bf16 (16-bit images "
                  "in fp32), else fp32; fp32: the exact path.")


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange without nan and the infinities: nan passes every comparison, so it
    slipped through any bound (`--upload-timeout nan` cut every upload after 0.1 s), and inf
    ended in OverflowError tracebacks. Give a `max` too, so that huge numbers are refused."""

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A usage error for a device that is not there or holds no data (`meta`), before any
    model is loaded; the name itself is passed on (torchrun processes pick their GPU later)."""
    from srgan.device import DeviceError, pick_device

    try:
        pick_device(value)
    except DeviceError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def device_option(f: F) -> F:
    return click.option("--device", default="auto", show_default=True, callback=_check_device,
                        help="auto, cpu, cuda, cuda:1 ...")(f)


def precision_option(default: str = "auto", help: str = PRECISION_HELP) -> Callable[[F], F]:
    """--precision; `default` fp32 where results must not depend on the hardware."""
    return click.option("--precision", type=click.Choice(PRECISIONS), default=default,
                        show_default=True, help=help)


def tile_option(f: F) -> F:
    return click.option("--tile", type=click.IntRange(min=8), default=None,
                        help="Tile size in input pixels [default: from a memory budget].")(f)
