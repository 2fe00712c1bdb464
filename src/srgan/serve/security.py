"""Browser-facing hardening: security headers on every answer, a Host check against DNS
rebinding, and a refusal of requests sent by pages from other origins.

Why: the server has no login, so on 127.0.0.1 the only thing between a hostile web page and
the API is the browser's same-origin policy. A DNS-rebinding page reaches us under its own
host name (so the Host check stops it), and a plain cross-origin multipart POST needs no
preflight (so the Origin check stops it). The headers keep the page from being framed,
sniffed into another type, or made to load anything from another origin.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_NETLOC = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?")

CSP = "; ".join([
    "default-src 'self'",
    "img-src 'self' blob: data:",  # results and previews are blob: URLs; Swagger UI's icons
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """The name in a Host header, without the port ("[::1]:8000" -> "::1")."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Security:
    """ASGI middleware: check Host and Origin, then add the security headers to every answer.

    `allowed_hosts`: host names accepted in the Host header (None: any; loopback names are
    always accepted). `allowed_origins`: origins ("https://example.org") whose pages may use
    the API besides the server's own; they also get CORS headers so they can read the answer.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] | None = LOOPBACK_HOSTS,
                 allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = None if allowed_hosts is None else (
            {host_name(h) for h in allowed_hosts} | set(LOOPBACK_HOSTS))
        self.origins = {o.rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        origin = headers.get("origin")
        extra = list(HEADERS)
        problem = self._refusal(host, origin)
        if origin and origin.lower() in self.origins:
            extra += [(b"access-control-allow-origin", origin.encode("latin-1")),
                      (b"access-control-expose-headers",
                       b"Content-Disposition, Retry-After, X-Srgan-Model, X-Srgan-Input-Size, "
                       b"X-Srgan-Output-Size, X-Srgan-Seconds, X-Srgan-Warnings"),
                      (b"vary", b"Origin")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if problem is not None:
            status, detail = problem
            response = JSONResponse({"detail": detail}, status_code=status)
            await response(scope, receive, send_with_headers)
            return
        if (scope["method"] == "OPTIONS" and origin
                and origin.lower() in self.origins):  # a CORS preflight from an allowed page
            extra += [(b"access-control-allow-methods", b"GET, POST, DELETE"),
                      (b"access-control-allow-headers", b"Content-Type")]
            await send_with_headers({"type": "http.response.start", "status": 204,
                                     "headers": []})
            await send_with_headers({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, host: str, origin: str | None) -> tuple[int, str] | None:
        name = host_name(host)
        if self.hosts is not None and name not in self.hosts and not is_loopback(name):
            shown = name.encode("ascii", "replace").decode()[:100] or "(none)"
            return 400, (f"host {shown!r} is not served here (a DNS-rebinding guard); start "
                         f"srgan serve with --allow-host {shown} to allow it")
        if origin is None:
            return None
        own = {f"{scheme}://{host.lower()}" for scheme in ("http", "https")}
        if origin.lower() in own or origin.lower() in self.origins:
            return None
        netloc = origin.lower().partition("://")[2]
        if (_NETLOC.fullmatch(netloc) and is_loopback(host_name(netloc)) and is_loopback(name)
                and _port(netloc) == _port(host)):
            return None  # http://localhost:8000 vs http://127.0.0.1:8000: the same server
        shown = origin.encode("ascii", "replace").decode()[:100]
        if origin.lower() == "null" or not _NETLOC.fullmatch(netloc):
            # an opaque origin: a file:// page or a sandboxed frame. Allowing "null" would
            # let every such page in, so the advice is to give the page a real address.
            return 403, ("requests from a page without an origin of its own (a file:// page "
                         "or a sandboxed frame: Origin null) are refused; open the page from "
                         "this server, or serve it from a web address and start srgan serve "
                         "with --allow-origin https://that.address")
        return 403, (f"requests from pages of another origin ({shown}) are refused; start "
                     f"srgan serve with --allow-origin {shown} to allow it")


def _port(host: str) -> int | None:
    tail = host.rsplit("]", 1)[-1] if host.startswith("[") else host
    if tail.count(":") == 1:
        try:
            return int(tail.rsplit(":", 1)[1])
        except ValueError:
            return None
    return None
