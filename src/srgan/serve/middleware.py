"""Small pieces around the routes: HEAD answered wherever GET is, and an access log that does
not write a line for every poll of a job."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: HEAD is answered as GET without the body (uptime monitors, `curl -I`);
    the routes themselves declare GET only, so the OpenAPI schema stays as it was."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the rest of the body is not sent; the final message ends it
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class QuietPolls(logging.Filter):
    """Drops uvicorn's access-log line for a successful GET of a job's state: a client polls
    it every few seconds, and one line per poll buried everything else. Job creation, results,
    cancels and every error are still logged."""

    LOGGER = "uvicorn.access"

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) < 5:
            return True
        method, path, status = args[1], str(args[2]), args[4]
        try:
            ok = int(status) < 400
        except (TypeError, ValueError):
            return True
        polled = "/v1/jobs/" in path and not path.split("?")[0].endswith("/result")
        return not (method in ("GET", "HEAD") and polled and ok)

    @classmethod
    def install(cls) -> QuietPolls:
        quiet = cls()
        logging.getLogger(cls.LOGGER).addFilter(quiet)
        return quiet

    def remove(self) -> None:
        logging.getLogger(self.LOGGER).removeFilter(self)
