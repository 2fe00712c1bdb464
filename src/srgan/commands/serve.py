"""`srgan serve`: the web page and HTTP API on uvicorn."""

from __future__ import annotations

import click

from srgan.commands.options import (
    FiniteFloatRange,
    device_option,
    precision_option,
    tile_option,
)
from srgan.serve.defaults import (
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_QUEUE,
    DEFAULT_UPLOAD_DEADLINE,
    DEFAULT_UPLOAD_TIMEOUT,
    UPLOAD_MAX_PIXELS,
)

WEB_EXTRA = "`srgan serve` needs the web extra: pip install 'srgan[web]'"

EXAMPLES = """
\b
Examples:
  srgan serve                                     # http://127.0.0.1:8000, shipped models
  srgan serve --model srresnet_x4 --device cuda   # one model, on the GPU
  srgan serve -m mine.safetensors -m srresnet_x4  # your file (the default) and a shipped one
  srgan serve --host 0.0.0.0 --port 8080 --max-pixels 4000000 --max-upload-mb 50
  curl -F image=@photo.jpg 'http://127.0.0.1:8000/v1/upscale?wait=true' -o photo_x4.png
"""


@click.command(epilog=EXAMPLES)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; think before you do).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("-m", "--model", "models", multiple=True,
              help="Shipped model name or .safetensors file; repeat for several (the first is "
                   "the default). [default: every shipped model]")
@device_option
@precision_option()
@tile_option
@click.option("--max-pixels", type=click.IntRange(min=1), default=UPLOAD_MAX_PIXELS,
              show_default=True, help="Largest input image, in pixels (checked from the "
                                      "header before decoding); outputs may have 16x this.")
@click.option("--max-upload-mb", type=FiniteFloatRange(0.001, 10**6), default=DEFAULT_MAX_UPLOAD_MB,
              show_default=True, help="Largest upload; bigger requests get 413.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images upscaled at the same time (each needs its own memory).")
@click.option("--queue", "queue_size", type=click.IntRange(min=0), default=DEFAULT_QUEUE,
              show_default=True, help="Jobs that may wait in line for a worker (each "
                                      "holds its upload, not its pixels); more get 503.")
@click.option("--max-connections", type=click.IntRange(min=1), default=200, show_default=True,
              help="Open connections before uvicorn answers 503 itself.")
@click.option("--upload-timeout", type=FiniteFloatRange(1, 86400),
              default=DEFAULT_UPLOAD_TIMEOUT, show_default=True,
              help="Seconds an upload may stall (no bytes at all) before 408.")
@click.option("--upload-deadline", type=FiniteFloatRange(1, 86400),
              default=DEFAULT_UPLOAD_DEADLINE,
              show_default=True,
              help="Seconds a whole upload may take, however steadily it trickles, before 408.")
@click.option("--header-timeout", type=FiniteFloatRange(0.1, 86400), default=None,
              help="Seconds a connection may take to send a complete request head (also "
                   "between requests on a kept-alive connection); then it is closed. "
                   "[default: the smaller of 10 and --upload-timeout]")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also accept this Host name (repeatable; '*' for any). Loopback names are "
                   "always accepted; on a loopback address nothing else is by default (a "
                   "guard against DNS rebinding); on other addresses any host unless this "
                   "is given.")
@click.option("--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
              help="Let pages from this origin (e.g. https://photos.example) call the API "
                   "and read its answers (repeatable). Others are refused with 403.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, models: tuple[str, ...], device: str, precision: str,
          tile: int | None, max_pixels: int, max_upload_mb: float, workers: int,
          queue_size: int, max_connections: int, upload_timeout: float, upload_deadline: float,
          header_timeout: float | None, allow_hosts: tuple[str, ...],
          allow_origins: tuple[str, ...], log_level: str) -> None:
    """Serve the page (/) and the API (/v1/upscale, /v1/models, /healthz, /docs)."""
    try:
        import uvicorn

        from srgan.serve.app import create_app
        from srgan.serve.security import is_loopback
    except ImportError as exc:
        raise click.ClickException(f"{WEB_EXTRA} (missing: {exc.name or exc})") from None
    from srgan.weights import ModelFileError

    if "*" in allow_hosts or (not allow_hosts and not is_loopback(host)):
        allowed_hosts = None
    else:
        allowed_hosts = [*allow_hosts, *([] if is_loopback(host) else [host])]

    try:
        app = create_app(
            list(models) or None,
            device=device, precision=precision, tile=tile, max_pixels=max_pixels,
            max_upload_mb=max_upload_mb, workers=workers, queue_size=queue_size,
            upload_timeout=upload_timeout, upload_deadline=upload_deadline, preload=True,
            allowed_hosts=allowed_hosts, allowed_origins=allow_origins,
        )
    except (ModelFileError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"srgan: open http://{shown}:{port}/ (API docs at /docs); Ctrl+C stops")
    if allowed_hosts is None:
        click.echo("srgan: any Host name is accepted; --allow-host NAME limits it to NAME "
                   "(and loopback names)")
    head = min(10.0, upload_timeout) if header_timeout is None else header_timeout
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                http=head_deadline_protocol(head),
                limit_concurrency=max_connections, timeout_keep_alive=5,
                h11_max_incomplete_event_size=64 * 1024)


def head_deadline_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol with a deadline for each request head.

    uvicorn has none: a connection that sends nothing, or trickles its headers a byte at a
    time, is held for ever, and --max-connections of them make the server answer 503 to
    everyone (slowloris). The deadline counts from the connection (or from the end of the
    previous response) and is not extended by data, so trickling does not help; once a head is
    complete the body's own limits (--upload-timeout, --upload-deadline) take over.
    """
    import asyncio

    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadlineH11(H11Protocol):
        head_timeout = seconds
        _head_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request head gets its own deadline

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def _head_expired(self) -> None:
            # IDLE: no complete request head yet (h11 leaves IDLE only once the head parsed)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadlineH11
