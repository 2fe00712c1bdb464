"""`srgan serve`: the web page and HTTP API on uvicorn."""

from __future__ import annotations

import click

from srgan.serve.app import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, DEFAULT_QUEUE

EXAMPLES = """
\b
Examples:
  srgan serve                                   # http://127.0.0.1:8000, shipped models
  srgan serve --model srgan_x4 --device cuda    # one model, on the GPU
  srgan serve -m mine.safetensors -m srgan_x4   # your file (the default) and a shipped one
  srgan serve --host 0.0.0.0 --port 8080 --max-pixels 4000000 --max-upload-mb 50
  curl -F image=@photo.jpg -F outscale=4 http://127.0.0.1:8000/v1/upscale -o photo_x4.png
"""


@click.command(epilog=EXAMPLES)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; think before you do).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("-m", "--model", "models", multiple=True,
              help="Shipped model name or .safetensors file; repeat for several (the first is "
                   "the default). [default: every shipped model]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
              default="auto", show_default=True)
@click.option("--tile", type=click.IntRange(min=8), default=None,
              help="Tile size in input pixels [default: from a memory budget].")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS,
              show_default=True, help="Largest input image, in pixels (checked from the "
                                      "header before decoding); outputs may have 16x this.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=DEFAULT_MAX_UPLOAD_MB,
              show_default=True, help="Largest upload; bigger requests get 413.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images upscaled at the same time (each needs its own memory).")
@click.option("--queue", "queue_size", type=click.IntRange(min=0), default=DEFAULT_QUEUE,
              show_default=True, help="Requests that may wait for a worker; more get 503.")
@click.option("--max-connections", type=click.IntRange(min=1), default=200, show_default=True,
              help="Open connections before uvicorn answers 503 itself.")
@click.option("--upload-timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Seconds an upload may stall before 408.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, models: tuple[str, ...], device: str, precision: str,
          tile: int | None, max_pixels: int, max_upload_mb: float, workers: int,
          queue_size: int, max_connections: int, upload_timeout: float, log_level: str) -> None:
    """Serve the page (/) and the API (/v1/upscale, /v1/models, /healthz, /docs)."""
    import uvicorn

    from srgan.serve.app import create_app
    from srgan.weights import ModelFileError

    try:
        app = create_app(
            list(models) or None,
            device=device, precision=precision, tile=tile, max_pixels=max_pixels,
            max_upload_mb=max_upload_mb, workers=workers, queue_size=queue_size,
            idle_timeout=upload_timeout, preload=True,
        )
    except (ModelFileError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"srgan: open http://{shown}:{port}/ (API docs at /docs); Ctrl+C stops")
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                limit_concurrency=max_connections, timeout_keep_alive=5,
                h11_max_incomplete_event_size=64 * 1024)
