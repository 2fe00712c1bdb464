"""Interactive API docs at /docs that work offline.

FastAPI's own /docs and /redoc load Swagger UI, ReDoc and fonts from CDNs, so they are blank
on a machine without internet, and their inline script would break the page's CSP. Here the
Swagger UI files (5.x, which reads FastAPI's OpenAPI 3.1) come from the `fastapi-offline`
package (a dependency of the `web` extra; we use its files, not its app class) and are started
by a small script of our own. ReDoc is dropped: it injects inline styles and starts blob:
workers, which the page's CSP forbids, and Swagger UI covers the same ground.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>srgan API</title>
<link rel="icon" href="favicon.ico">
<link rel="stylesheet" href="swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="static/docs.css">
<script src="swagger-ui/swagger-ui-bundle.js" defer></script>
<script src="static/docs.js" defer></script>
</head>
<body>
<p class="srgan-back"><a href="./">&larr; back to the page</a> &middot;
schema: <a href="openapi.json">openapi.json</a></p>
<div id="swagger-ui"></div>
</body>
</html>
"""

NO_BUNDLE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>srgan API</title></head>
<body><h1>srgan API</h1>
<p>The interactive docs need the <code>fastapi-offline</code> package
(<code>pip install 'srgan[web]'</code>). The schema is at <a href="openapi.json">openapi.json</a>
and the API is described in docs/serve.md.</p></body></html>
"""


def swagger_ui_dir() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:
        return None
    path = Path(fastapi_offline.__file__).parent / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def add_docs(app: FastAPI) -> None:
    """Route /docs (and the Swagger UI files under /swagger-ui); the app has docs_url=None."""
    bundle = swagger_ui_dir()
    if bundle is not None:
        app.mount("/swagger-ui", StaticFiles(directory=bundle), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_HTML if bundle is not None else NO_BUNDLE_HTML)
