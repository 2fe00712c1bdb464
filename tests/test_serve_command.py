"""`srgan serve` (srgan.commands.serve) without the web extra: help and a clear message, and
its fallback defaults equal to the app's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO


def test_serve_help_works_without_the_web_extra():
    code = ("import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None\n"
            "from srgan.cli import main\n"
            "main(sys.argv[1:])")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-c", code, "serve", "--help"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--port" in res.stdout and "--max-pixels" in res.stdout
    res = subprocess.run([sys.executable, "-c", code, "serve"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 1 and "pip install 'srgan[web]'" in res.stderr


def test_serve_fallback_defaults_match_the_app():
    pytest.importorskip("fastapi")
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "import srgan.commands.serve as c\n"
            "print(c.DEFAULT_MAX_PIXELS, c.DEFAULT_MAX_UPLOAD_MB, c.DEFAULT_QUEUE)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60).stdout.split()
    from srgan.serve import app

    assert out == [str(app.DEFAULT_MAX_PIXELS), str(app.DEFAULT_MAX_UPLOAD_MB),
                   str(app.DEFAULT_QUEUE)]


