"""Upload guards: bodies are counted while they arrive, so nothing unbounded is buffered.

A declared Content-Length over the limit is refused before reading anything, a body that
grows past it is cut off at the limit, and a client that stalls gets 408.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"upload too large: this server accepts images up to {_mb(limit)}")


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"upload stalled: no data for {seconds:g} s, or too slow overall")


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes and uploads that stall.

    The counting happens in `receive`, so whatever parses the body (multipart here) gets an
    HTTPException at the first byte over the limit and never holds more than that. The
    exceptions subclass HTTPException so FastAPI's form parsing passes them on untouched.

    Before answering 413, up to `drain` more bytes are read and thrown away: a client that
    is still sending when the server closes gets a TCP reset and may never see the answer,
    so a photo somewhat over the limit gets a readable 413 rather than "connection reset".
    Bodies larger than that are answered at once and the connection is closed.
    """

    def __init__(self, app: ASGIApp, limit: int, upload_timeout: float, upload_deadline: float,
                 overhead: int = 0, drain: int | None = None):
        self.app = app
        self.shown_limit = limit  # what people are told: the file size they may send
        self.limit = limit + overhead  # what is enforced: the whole multipart body
        self.upload_timeout = upload_timeout  # s without a byte
        self.upload_deadline = upload_deadline  # s for the whole body
        self.drain = max(limit, 8 << 20) if drain is None else drain

    async def _discard(self, receive: Receive, budget: int, deadline: float) -> None:
        """Read and drop the rest of a body, within `budget` bytes and the time limits."""
        while budget > 0:
            wait = min(self.upload_timeout, deadline - time.monotonic())
            if wait <= 0:
                return
            try:
                message = await asyncio.wait_for(receive(), wait)
            except TimeoutError:
                return
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.upload_deadline
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            if declared <= self.limit + self.drain:
                await self._discard(receive, declared, deadline)
            detail = BodyTooLarge(self.shown_limit).detail
            await _send_json(send, 413, detail, {"Connection": "close"})
            return
        started = False
        seen = 0
        complete = False

        async def limited_receive() -> Message:
            nonlocal seen, complete
            if complete:  # the body is in: later receives only wait for a disconnect
                return await receive()
            wait = min(self.upload_timeout, deadline - time.monotonic())
            if wait <= 0:
                raise BodyTimeout(self.upload_timeout)
            try:
                message = await asyncio.wait_for(receive(), wait)
            except TimeoutError:
                raise BodyTimeout(self.upload_timeout) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.limit:
                    if message.get("more_body", False):
                        await self._discard(receive, self.drain, deadline)
                    raise BodyTooLarge(self.shown_limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except (BodyTooLarge, BodyTimeout) as exc:  # raised outside a route's own handling
            if started:
                raise
            await _send_json(send, exc.status_code, exc.detail, {"Connection": "close"})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


