"""Peak memory of `srgan upscale` on one huge image, against the tile budget.

    python benchmarks/upscale_memory.py                          # 10000x10000, tiny model
    python benchmarks/upscale_memory.py --size 2000x2000 --model srresnet_x4

Writes a smooth RGB PNG of --size, runs `python -m srgan upscale` on it in a child process
and polls the child's /proc status: peak VmRSS split into anonymous memory (what must fit in
RAM) and file-backed pages (the memory-mapped output buffer, which the kernel can write back
and drop under pressure). Prints them next to the tile budget and the output's raw bytes.
`--model tiny` (default) is a random 1-block, 8-channel x4 SRResNet: the same code path and
tile budget as the paper-size network, minutes instead of hours on a CPU. Nothing is asserted;
the numbers are for the closing note of issue 6.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def smooth_png(path: Path, width: int, height: int) -> None:
    """Gradients and ripples, written band by band so the input itself stays small in RAM."""
    im = Image.new("RGB", (width, height))
    band = 1024
    xx = np.arange(width, dtype=np.float32)[None, :]
    for y0 in range(0, height, band):
        yy = np.arange(y0, min(height, y0 + band), dtype=np.float32)[:, None]
        planes = [127 + 100 * np.sin(xx * f + c) * np.cos(yy * f * 0.7)
                  for c, f in enumerate((0.011, 0.017, 0.023))]
        arr = np.clip(np.stack(planes, 2), 0, 255).astype(np.uint8)
        im.paste(Image.fromarray(arr), (0, y0))
    im.save(path, compress_level=1)


def tiny_model(path: Path) -> Path:
    import torch

    from srgan.nets import SRResNet
    from srgan.weights import ModelCard, save_generator

    torch.manual_seed(0)
    net = SRResNet(scale=4, num_blocks=1, channels=8).eval()
    return save_generator(net, path, ModelCard(name="tiny_x4", description="memory benchmark"))


class ChildMemory:
    """Peaks of VmRSS, RssAnon and RssFile of a child process, polled from /proc."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                text = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for line in text.splitlines():
                key, _, value = line.partition(":")
                if key in self.peak:
                    self.peak[key] = max(self.peak[key], int(value.split()[0]) * 1024)
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def gib(n: float) -> str:
    return f"{n / 2**30:6.2f} GiB"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="10000x10000", help="input WxH")
    p.add_argument("--model", default="tiny", help="'tiny', a shipped model or .safetensors")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the input, output and spill file go (default: a temp folder)")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from srgan.inference import Upscaler

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="srgan-mem-", dir=args.workdir) as tmp:
        tmp_path = Path(tmp)
        model = str(tiny_model(tmp_path / "tiny.safetensors")) if args.model == "tiny" \
            else args.model
        budget_mb = Upscaler.from_pretrained(model, device="cpu").budget_mb
        src = tmp_path / "in.png"
        t0 = time.perf_counter()
        smooth_png(src, width, height)
        print(f"input {width}x{height} PNG, {src.stat().st_size / 2**20:.0f} MiB, made in "
              f"{time.perf_counter() - t0:.0f} s; model {args.model}; CPU tile budget "
              f"{budget_mb} MB", flush=True)
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "srgan", "upscale", str(src), "-o", str(out), "-m", model,
               "-q", "--device", "cpu"]
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, env={**__import__("os").environ, "TMPDIR": tmp})
        mem = ChildMemory(child.pid)
        rc = child.wait()
        mem.stop()
        wall = time.perf_counter() - t0
        result = out / "in_x4.png"
        raw = width * height * 16 * 3
        print(f"srgan upscale: exit {rc}, {wall:.0f} s")
        print(f"output pixels (uint8 RGB)     {gib(raw)}")
        print(f"peak VmRSS                    {gib(mem.peak['VmRSS'])}")
        print(f"  anonymous (must fit in RAM) {gib(mem.peak['RssAnon'])}")
        print(f"  file-backed (evictable)     {gib(mem.peak['RssFile'])}", flush=True)
        if rc == 0:
            w, h, ok = check_png(result)
            print(f"output {w}x{h} PNG, {result.stat().st_size / 2**20:.0f} MiB on disk, "
                  f"{'decodes to the right number of bytes' if ok else 'CORRUPT'}")


def check_png(path: Path) -> tuple[int, int, bool]:
    """(width, height, whether every chunk's CRC holds and the IDAT stream inflates to exactly
    height x (1 + width x 3) bytes), streaming: Pillow refuses to open 1.6 gigapixels."""
    import struct
    import zlib

    inflate, total, ok = zlib.decompressobj(), 0, True
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        while True:
            length, ctype = struct.unpack(">I4s", fh.read(8))
            data = fh.read(length)
            ok &= struct.unpack(">I", fh.read(4))[0] == zlib.crc32(ctype + data)
            if ctype == b"IHDR":
                w, h = struct.unpack(">II", data[:8])
            elif ctype == b"IDAT":
                total += len(inflate.decompress(data))
            elif ctype == b"IEND":
                break
    return w, h, ok and inflate.eof and total == h * (1 + w * 3)

if __name__ == "__main__":
    main()
