"""`srgan serve` (srgan.commands.serve) without the web extra: help and a clear message, and
its fallback defaults equal to the app's."""

from __future__ import annotations

import os
import subprocess
import sys

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


