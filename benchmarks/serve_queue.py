"""Jobs against a real `srgan serve` on 127.0.0.1: a line of concurrent clients, and the
progress and ETA of one large upload.

1. `--clients` (20) clients send a small image each at once, as jobs, and poll them: every
   job must be accepted (no 503), finish in the order it was sent, and each client must see
   its place in line; then as many jobs again are sent and the waiting half cancelled, and
   /healthz must show the freed places at once.
2. One `--size` x `--size` (1000) upload: the script polls it every second and reports how
   often the tile count moved and how far the ETA was from the real remaining time after the
   first tenth of the job.

Loopback only, bounded in count and time (`--timeout`, 900 s in all); the server is a child
process stopped at the end. Prints a JSON summary.

    python benchmarks/serve_queue.py                   # shipped default model, 1000x1000
    python benchmarks/serve_queue.py --size 400 --clients 10
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests
from PIL import Image

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def png(size: int, seed: int = 0) -> bytes:
    """A smooth picture with some edges (a random one would be slow to encode, like noise)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rng = np.random.default_rng(seed)
    arr = np.stack([np.sin(xx * rng.uniform(5, 20)), yy, ((xx - 0.5) ** 2 + (yy - 0.5) ** 2
                                                          < 0.1).astype(np.float32)], axis=2)
    buf = io.BytesIO()
    Image.fromarray(((arr * 0.5 + 0.5).clip(0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "srgan", "serve", "--host", HOST, "--port", str(port),
           "--device", "cpu", "--queue", str(2 * args.clients + 4), "--log-level", "warning",
           "--max-pixels", str(max(1_000_000, args.size**2))]
    if args.model:
        cmd += ["-m", args.model]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://{HOST}:{port}/healthz", timeout=2).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start: " + proc.stderr.read().decode()[-2000:])


def submit(base: str, data: bytes, name: str) -> dict:
    r = requests.post(f"{base}/v1/upscale", files={"image": (name, data, "image/png")},
                      timeout=60)
    r.raise_for_status()
    return r.json()


def follow(base: str, job: dict, deadline: float) -> dict:
    """Poll until the job ends; returns the places seen and when it finished."""
    places = {job.get("position", 0)}
    while job["state"] in ("waiting", "running") and time.monotonic() < deadline:
        time.sleep(min(job["poll_after_s"], 1.0))
        job = requests.get(base + job["url"], timeout=30).json()
        places.add(job["position"])
    return {"state": job["state"], "places": sorted(places), "end": time.monotonic()}


def line_of_clients(base: str, clients: int, deadline: float) -> dict:
    images = [png(64, seed=i) for i in range(clients)]
    sent: list[dict] = []
    lock = threading.Lock()

    def client(i: int) -> dict:
        job = submit(base, images[i], f"c{i}.png")
        with lock:
            sent.append(job)
        return {"i": i, "id": job["id"], "first_place": job["position"],
                **follow(base, job, deadline)}

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    by_id = {r["id"]: r for r in results}
    order = [by_id[j["id"]]["end"] for j in sorted(sent, key=lambda j: j["position"])]
    # each client notices its end within a poll (<= 1 s here)
    in_order = all(a <= b + 1.0 for a, b in zip(order, order[1:], strict=False))
    # then as many again, and the waiting ones cancelled
    jobs = [submit(base, images[i], f"d{i}.png") for i in range(clients)]
    waiting_before = requests.get(f"{base}/healthz", timeout=10).json()["queue"]["waiting"]
    cancelled = sum(requests.delete(base + j["url"], timeout=10).json()["state"] == "cancelled"
                    for j in jobs[1:])
    waiting_after = requests.get(f"{base}/healthz", timeout=10).json()["queue"]["waiting"]
    requests.delete(base + jobs[0]["url"], timeout=10)
    return {"clients": clients, "all_done": all(r["state"] == "done" for r in results),
            "finished_in_order_of_place": in_order,
            "saw_their_place": sum(r["first_place"] >= 1 or r["places"] != [0]
                                   for r in results),
            "waiting_before_cancel": waiting_before, "cancelled": cancelled,
            "waiting_right_after_cancel": waiting_after}


def one_large(base: str, size: int, deadline: float, samples_to: str | None = None) -> dict:
    job = submit(base, png(size), "large.png")
    t0 = time.monotonic()
    samples = []
    while job["state"] in ("waiting", "running") and time.monotonic() < deadline:
        time.sleep(1.0)
        job = requests.get(base + job["url"], timeout=30).json()
        samples.append((time.monotonic() - t0, job["tiles_done"], job["tiles_total"],
                        job["eta_s"], job["stage"]))
    total = time.monotonic() - t0
    moves = [t for (t, d, *_), (_, d0, *_) in zip(samples[1:], samples, strict=False)
             if d != d0]
    gaps = np.diff([0.0, *moves]).tolist() if moves else [total]
    ratios = [eta / (total - t) for t, _, _, eta, _ in samples
              if eta is not None and t >= total / 10 and total - t > 2]
    if samples_to:
        with open(samples_to, "w") as f:
            json.dump([{"t": round(t, 2), "left": round(total - t, 2), "tiles": d, "of": n,
                        "eta": eta, "stage": st} for t, d, n, eta, st in samples], f, indent=0)
    return {"size": size, "state": job["state"], "seconds": round(total, 1),
            "tiles": samples[-1][2] if samples else 0,
            "longest_gap_between_tile_moves_s": round(max(gaps), 1),
            "eta_over_real_after_first_tenth": [round(min(ratios), 2), round(max(ratios), 2)]
            if ratios else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model name or file (default: shipped)")
    ap.add_argument("--clients", type=int, default=20, choices=range(1, 51), metavar="1..50")
    ap.add_argument("--size", type=int, default=1000, help="side of the large upload")
    ap.add_argument("--samples", default=None, metavar="FILE",
                    help="write the large upload's per-second samples (JSON) here")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds for everything")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    port = free_port()
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + args.timeout
    proc = start_server(args, port)
    try:
        summary = {"line": line_of_clients(base, args.clients, deadline),
                   "large": one_large(base, args.size, deadline, args.samples)}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
