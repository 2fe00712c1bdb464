"""`srgan serve`: the web page and HTTP API (FastAPI + uvicorn, the optional extra `srgan[web]`).

Import `srgan.serve.app.create_app` for the ASGI app; this package imports nothing heavy."""

__all__: list[str] = []
