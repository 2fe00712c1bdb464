"""Inference throughput: a naive baseline against the fast path, on every device found.

    python benchmarks/infer_throughput.py                    # all sizes, folder run
    python benchmarks/infer_throughput.py --sizes 64x64,128x128 --folder-images 4

Prints megapixels of OUTPUT per second and peak memory for
  naive  eager SRResNet as trained (BatchNorm unfolded), fp32 on CPU / fp16 autocast on CUDA,
         one whole image per forward pass, float32 result on the host;
  fast   `Upscaler.upscale(..., bits=8)`: BN folded, channels_last, batched tiles, fp16 on CUDA,
         the bf16 mix on CPUs with native bf16 (precision auto), fp32 on other CPUs,
         rounded on the device into a uint8 image (what `srgan upscale` writes);
and their ratio. Extra rows: ONNX Runtime (CPU), torch.compile and bf16 (CUDA), fast fp32
where auto picked bf16, and the bf16 mix on CPUs without native bf16 (why it is off there).
First, the CPU: PyTorch's capability, the native-bf16 verdict `auto` rests on.
"Mpx/cpu-s" divides by the process's CPU time: on a shared machine it is steadier than wall
time. `--goal` instead times naive, fast fp32 and fast auto in turn, 3 rounds, medians: the
ratio issue 17 asks for, fair on a busy machine. Then a folder run, decode and encode included: the
naive loop (read, upscale, write_image, one after the other) against `srgan upscale`'s
overlapped pipeline. Last, the hardware limit: the GEMM peak in each precision (fp32 and
bf16 on the CPU), the compute limit per precision (FLOPs per output pixel run in each dtype
against its peak), the fast path's share of it, and a torch.profiler table of where its
time goes; and PNG encoding of a 4K frame, ours against Pillow's. Nothing is asserted; the
numbers are for the closing notes of issues 6 and 17.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from srgan import cpu, imageio
from srgan.commands.pipeline import io_depth, overlapped
from srgan.heap import keep_freed_memory
from srgan.imageio import ImageData, QuantizedImage, read_image, read_quantized, write_image
from srgan.inference import Upscaler
from srgan.nets import SRResNet
from srgan.weights import list_models, load_generator


# --------------------------------------------------------------------------- memory
class PeakRSS:
    """Peak resident memory above the level at start, by polling /proc (psutil not needed)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.base = self.rss()
        self.peak = self.base
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def used(self) -> int:
        return self.peak - self.base


def measure(fn: Callable[[], object], device: torch.device, repeat: int) -> dict:
    """Best wall time of `repeat` runs after one warm-up, CPU time, and peak memory (above
    the level before the warm-up, so caches and arenas made on first use count)."""
    best, cpu = float("inf"), float("inf")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with PeakRSS() as mem:
        fn()
        sync(device)
        for _ in range(repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            sync(device)
            best = min(best, time.perf_counter() - t0)
            cpu = min(cpu, time.process_time() - c0)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else mem.used
    return {"seconds": best, "cpu_seconds": cpu, "peak": peak}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- methods
def naive_fn(net: SRResNet, x: torch.Tensor, device: torch.device) -> Callable[[], object]:
    """The baseline: eager, BN unfolded, one whole image, fp16 autocast on CUDA."""
    net = net.to(device).eval()

    @torch.inference_mode()
    def run() -> torch.Tensor:
        xd = x.to(device)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                y = net(xd)
        else:
            y = net(xd)
        return net.to_unit(y.float()).clamp(0, 1).cpu()

    return run


def fast_fn(up: Upscaler, data: ImageData) -> Callable[[], object]:
    return lambda: up.upscale(data, bits=data.bit_depth)


def random_paper_net() -> SRResNet:
    """Paper-size SRResNet with random weights and non-trivial BN statistics."""
    torch.manual_seed(0)
    net = SRResNet().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:8.0f} MiB"


def row(label: str, out_px: int, r: dict, base: dict | None) -> None:
    mpx = out_px / r["seconds"] / 1e6
    line = (f"  {label:<28} {mpx:9.3f} Mpx/s {out_px / r['cpu_seconds'] / 1e6:9.3f} Mpx/cpu-s "
            f"{fmt_bytes(r['peak'])}")
    if base is not None:
        line += f"   x{base['seconds'] / r['seconds']:.2f} vs naive"
    print(line, flush=True)


@contextlib.contextmanager
def as_srgan_upscale(device: torch.device):
    """Run the fast path with the process settings `srgan upscale` uses: on the CPU, freed
    memory kept for reuse (srgan.heap); restored afterwards so the naive rows never get it."""
    kept = device.type == "cpu" and keep_freed_memory(True)
    try:
        yield
    finally:
        if kept:
            keep_freed_memory(False)


# --------------------------------------------------------------------------- runs
def bench_sizes(net: SRResNet, device: torch.device, sizes: list[tuple[int, int]],
                repeat: int, naive_max_px: int) -> None:
    kinds = ["fast"]
    if device.type == "cuda":
        kinds += ["fast+compile", "fast bf16"]
    else:
        if cpu.native_bf16()[0]:
            kinds.append("fast fp32")
        try:
            import onnxruntime  # noqa: F401

            kinds.append("fast onnxruntime")
        except ImportError:
            pass
    ups = {}
    for kind in kinds:
        options = {"compile": kind.endswith("compile"),
                   "backend": "onnxruntime" if "onnx" in kind else "torch"}
        precision = "bf16" if "bf16" in kind else "fp32" if "fp32" in kind else "auto"
        ups[kind] = Upscaler(net, device=device, precision=precision, **options)
    tile = ups["fast"].tile
    print(f"device {device}  ({torch.get_num_threads()} CPU threads; fast-path tile {tile}, "
          f"tile budget {ups['fast'].budget_px} LR px per forward; fast runs "
          f"{str(ups['fast'].dtype).replace('torch.', '')})", flush=True)
    for h, w in sizes:
        rng = np.random.default_rng(h * w)
        img = np.clip(rng.random((h, w, 3), dtype=np.float32) * 0.3
                      + np.linspace(0, 0.7, w, dtype=np.float32)[None, :, None], 0, 1)
        data = ImageData(img)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
        out_px = h * w * 16
        print(f" {w}x{h} -> {4 * w}x{4 * h} ({out_px / 1e6:.2f} Mpx out)", flush=True)
        base = None
        if h * w <= naive_max_px:
            try:
                base = measure(naive_fn(net, x, device), device, repeat)
                row("naive", out_px, base, None)
            except (RuntimeError, MemoryError) as exc:  # CUDA OOM on a whole image
                print(f"  naive: failed ({str(exc).splitlines()[0][:80]})")
        else:
            print(f"  naive: skipped (over --naive-max-px {naive_max_px})")
        for kind, up in ups.items():
            try:
                with as_srgan_upscale(device):
                    r = measure(fast_fn(up, data), device, repeat)
                row(kind, out_px, r, base)
            except Exception as exc:  # keep going: a row that fails is a finding too
                print(f"  {kind}: failed ({type(exc).__name__}: {str(exc)[:100]})")
        if device.type == "cpu" and (h, w) == sizes[0] and not cpu.native_bf16()[0]:
            bf16_row(net, x, out_px, base)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def bf16_row(net: SRResNet, x: torch.Tensor, out_px: int, base: dict | None) -> None:
    """The CPU bf16 mix on a CPU without native bf16 (emulated), whole image: why `auto`
    stays in fp32 here."""
    from srgan.fuse import inference_model

    m = inference_model(net, torch.bfloat16, cpu_mix=True)
    xb = x.contiguous(memory_format=torch.channels_last)
    ref = inference_model(net)(x.contiguous(memory_format=torch.channels_last)).detach()

    @torch.inference_mode()
    def run() -> torch.Tensor:
        return m(xb)

    r = measure(run, torch.device("cpu"), 1)
    with torch.inference_mode():
        err = (run().float().clamp(0, 1) - ref.clamp(0, 1)).abs().max().item()
    row("cpu bf16 mix (emulated, unused)", out_px, r, base)
    print(f"  {'':28} bf16 max error {err * 255:.2f}/255", flush=True)


def bench_goal(net: SRResNet, sizes: list[tuple[int, int]], rounds: int = 3) -> None:
    """Issue 17's measure on the CPU: `Upscaler(precision="auto")` against the naive eager
    fp32 pass, and fast fp32 for reference; the three run in turn, `rounds` times, and the
    medians are compared (a busy machine slows all three alike)."""
    import statistics

    device = torch.device("cpu")
    ups = {p: Upscaler(net, device=device, precision=p) for p in ("fp32", "auto")}
    print(f" goal: naive vs fast, median of {rounds} in turn; auto runs "
          f"{str(ups['auto'].dtype).replace('torch.', '')}", flush=True)
    for h, w in sizes:
        rng = np.random.default_rng(h * w)
        img = np.clip(rng.random((h, w, 3), dtype=np.float32) * 0.3
                      + np.linspace(0, 0.7, w, dtype=np.float32)[None, :, None], 0, 1)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
        fns = {"naive": naive_fn(net, x, device),
               "fast fp32": fast_fn(ups["fp32"], ImageData(img)),
               "fast auto": fast_fn(ups["auto"], ImageData(img))}
        times: dict[str, list[float]] = {k: [] for k in fns}
        def settings(k: str) -> contextlib.AbstractContextManager:  # naive: plain malloc
            return contextlib.nullcontext() if k == "naive" else as_srgan_upscale(device)

        for k, fn in fns.items():
            with settings(k):
                fn()
        for _ in range(rounds):
            for k, fn in fns.items():
                with settings(k):
                    t0 = time.perf_counter()
                    fn()
                    times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        out_px = h * w * 16
        print(f"  {w}x{h}: " + "; ".join(
            f"{k} {out_px / t / 1e6:.3f} Mpx/s x{med['naive'] / t:.2f}" for k, t in med.items()),
            flush=True)


def bench_folder(net: SRResNet, device: torch.device, n: int, size: tuple[int, int]) -> None:
    """Files in, files out: naive sequential loop vs the overlapped quantised pipeline."""
    from PIL import Image

    h, w = size
    with tempfile.TemporaryDirectory(prefix="srgan-bench-") as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        rng = np.random.default_rng(0)
        for i in range(n):
            arr = (rng.random((h, w, 3)) * 64 + np.linspace(0, 190, w)[None, :, None])
            Image.fromarray(arr.astype(np.uint8)).save(src / f"{i:03d}.png")
        files = sorted(src.iterdir())
        up = Upscaler(net, device=device)
        out_px = n * h * w * 16
        print(f" folder: {n} PNGs {w}x{h} -> {4 * w}x{4 * h}, decode + upscale + encode",
              flush=True)

        def run_naive(out: Path) -> None:
            out.mkdir()
            for f in files:
                data = read_image(f)
                x = torch.from_numpy(data.pixels).permute(2, 0, 1)[None].contiguous()
                y = naive_fn(net, x, device)()[0].permute(1, 2, 0).numpy()
                write_image(data.with_pixels(y), out / f.name)

        def run_fast(out: Path) -> None:
            out.mkdir()
            jobs = [(f, out / f.name) for f in files]
            for _, err in overlapped(jobs, lambda j: read_quantized(j[0]),
                                     lambda j, d: up.upscale(d),
                                     lambda j, q: write_image(q, j[1]),
                                     depth=io_depth(device)):
                if err is not None:
                    raise err

        results = {}
        for label, fn in (("naive loop", run_naive), ("fast pipeline", run_fast)):
            out = Path(tmp) / label.replace(" ", "_")
            c0, t0 = time.process_time(), time.perf_counter()
            settings = as_srgan_upscale(device) if fn is run_fast else contextlib.nullcontext()
            with settings, PeakRSS() as mem:
                fn(out)
                sync(device)
            r = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                 "peak": mem.used}
            results[label] = r
            row(label, out_px, r, results.get("naive loop") if label != "naive loop" else None)
        print(f"  {'':28} {n / results['fast pipeline']['seconds']:.2f} images/s (fast)")


# --------------------------------------------------------------------------- encoding
def bench_png_encode(size: tuple[int, int] = (2160, 3840)) -> None:
    """PNG encoding of one 4K frame: Pillow (one thread) against imageio's block-parallel
    encoder. On a GPU this, not the network, bounds a folder run's frames per second."""
    import io

    from PIL import Image

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    arr = np.clip(np.stack([127 + 90 * np.sin(xx * f + c) * np.cos(yy * f * 0.7)
                            for c, f in enumerate((0.011, 0.017, 0.023))], 2)
                  + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
    mb = arr.nbytes / 1e6
    with tempfile.TemporaryDirectory(prefix="srgan-png-") as tmp:
        t0 = time.perf_counter()
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG", compress_level=6)
        pil = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = write_image(QuantizedImage(arr), Path(tmp) / "x.png")
        mine = time.perf_counter() - t0
        size_ratio = ours.stat().st_size / len(buf.getvalue())
    print(f" PNG encode of a {w}x{h} frame ({mb:.0f} MB): Pillow {mb / pil:.0f} MB/s, srgan "
          f"{mb / mine:.0f} MB/s on {imageio.PNG_THREADS} threads (x{pil / mine:.2f}); file size "
          f"x{size_ratio:.3f} of Pillow's", flush=True)


# --------------------------------------------------------------------------- the limit
def flops_per_output_px(net: SRResNet) -> float:
    """Multiply-adds x 2 of every convolution, per output pixel (exact: padding keeps each
    layer's cost per pixel constant). Element-wise work (PReLU, BN, pixel shuffle) is left
    out: it is memory traffic, not arithmetic."""
    total = 0

    def count(mod: torch.nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += 2 * k * out.numel()

    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.inference_mode():
            y = net.cpu()(torch.zeros(1, 3, 16, 16))
    finally:
        for h in hooks:
            h.remove()
    return total / (y.shape[-1] * y.shape[-2])


def gemm_peak(device: torch.device, dtype: torch.dtype) -> float:
    """Best FLOP/s of a large matrix product in `dtype` on `device`: the arithmetic ceiling
    any convolution implementation in that precision can reach here."""
    gpu = device.type == "cuda"
    n = 8192 if gpu else 2048
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for _ in range(5 if gpu else 3):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(10 if gpu else 1):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t0) / (10 if gpu else 1))
    return 2 * n**3 / best


def flops_by_dtype(model: torch.nn.Module, scale: int) -> dict[torch.dtype, float]:
    """FLOPs per output pixel of an inference model's convolutions, by the dtype they run in
    (the CPU bf16 mix keeps a few in fp32)."""
    total: dict[torch.dtype, float] = {}

    def count(mod: torch.nn.Conv2d, _inp, out: torch.Tensor) -> None:
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total[mod.weight.dtype] = total.get(mod.weight.dtype, 0) + 2 * k * out.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, 16, 16).contiguous(memory_format=torch.channels_last))
    finally:
        for h in hooks:
            h.remove()
    return {k: v / (16 * scale) ** 2 for k, v in total.items()}


def describe_cpu() -> None:
    """What `auto` precision rests on: PyTorch's vector ISA and the native-bf16 verdict."""
    native, why = cpu.native_bf16()
    print(f"CPU: capability {cpu.capability()}; native bf16: {'yes' if native else 'no'} "
          f"({why}); precision auto -> {'bf16 mix' if native else 'fp32'}", flush=True)


def bench_limit(net: SRResNet, device: torch.device, size: tuple[int, int], repeat: int) -> None:
    """The fast path against the compute limit per precision (the GEMM peak in each dtype
    against the FLOPs per output pixel run in it), and where its time goes (torch.profiler,
    top operators by self time)."""
    from srgan.fuse import inference_model

    flops = flops_per_output_px(net)
    gpu = device.type == "cuda"
    dtypes = [torch.float16] if gpu else [torch.float32, torch.bfloat16]
    peaks = {dt: gemm_peak(device, dt) for dt in dtypes}
    print(f" limit: {flops / 1e3:.0f} kFLOP per output px (the network); GEMM peak "
          + ", ".join(f"{str(dt)[6:]} {p / 1e9:.0f} GFLOP/s" for dt, p in peaks.items()),
          flush=True)
    h, w = size
    img = np.random.default_rng(1).random((h, w, 3), dtype=np.float32)
    precisions = ["auto"] if gpu else ["fp32"] + (["auto"] if cpu.native_bf16()[0] else [])
    for precision in precisions:
        up = Upscaler(net, device=device, precision=precision)
        if gpu:
            model, label = None, "fp16"
            need = {torch.float16: flops}
        else:
            mix = up.dtype == torch.bfloat16
            model = inference_model(net, torch.bfloat16, cpu_mix=True) if mix else \
                inference_model(net)
            label = "bf16 mix" if mix else "fp32"
            need = flops_by_dtype(model, net.scale)
        limit = 1 / sum(f / peaks[dt] for dt, f in need.items()) / 1e6
        with as_srgan_upscale(device):
            r = measure(fast_fn(up, ImageData(img)), device, repeat)
        got = h * w * 16 / r["seconds"] / 1e6
        parts = " + ".join(f"{f / 1e3:.0f}k in {str(dt)[6:]}" for dt, f in need.items())
        print(f"  {label:<9} FLOP/px run: {parts} -> compute limit {limit:.3f} Mpx/s; fast "
              f"path {got:.3f} Mpx/s at {w}x{h} = {100 * got / limit:.0f}% of it", flush=True)
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with as_srgan_upscale(device), profile(activities=acts) as prof:
        fast_fn(up, ImageData(img))()
        sync(device)
    key = "self_cuda_time_total" if gpu else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=8, max_name_column_width=34)
    print(f" profile of the fast path ({label}; top operators by self time):")
    for line in table.splitlines():
        print("  " + line)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        w, h = part.lower().split("x")
        out.append((int(h), int(w)))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="srresnet_x4",
                   help="shipped model or .safetensors (random paper-size weights if absent)")
    p.add_argument("--sizes", default="64x64,128x128,256x256,960x540",
                   help="input sizes WxH, comma-separated")
    p.add_argument("--devices", default="auto", help="auto (every device found) or cpu,cuda")
    p.add_argument("--repeat", type=int, default=None, help="timed runs (default: 3 GPU, 1 CPU)")
    p.add_argument("--naive-max-px", type=int, default=1_000_000,
                   help="skip the whole-image baseline above this many input pixels")
    p.add_argument("--folder-images", type=int, default=None,
                   help="images in the folder run (default: 32 GPU, 4 CPU; 0: none)")
    p.add_argument("--folder-size", default=None, help="WxH of folder images "
                   "(default: 960x540 GPU, 128x128 CPU)")
    p.add_argument("--goal", action="store_true", help="only issue 17's measure: naive, fast "
                   "fp32 and fast auto in turn on the CPU, median of 3, at --sizes")
    p.add_argument("--limit-size", default="256x256", help="WxH input for the compute-limit "
                   "and profile section ('none' to skip)")
    args = p.parse_args(argv)

    if args.model in list_models() or Path(args.model).is_file():
        net, label = load_generator(args.model).net, args.model
    else:
        net, label = random_paper_net(), "random paper-size SRResNet x4 (16 blocks, 64 ch)"
    print(f"model: {label}; torch {torch.__version__}; python {sys.version.split()[0]}")
    describe_cpu()
    if args.goal:
        bench_goal(net, parse_sizes(args.sizes))
        return
    if args.devices == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = args.devices.split(",")
    for name in devices:
        device = torch.device(name)
        gpu = device.type == "cuda"
        if gpu:
            print(f"GPU: {torch.cuda.get_device_name(device)}")
        bench_sizes(net, device, parse_sizes(args.sizes), args.repeat or (3 if gpu else 1),
                    args.naive_max_px)
        n = args.folder_images if args.folder_images is not None else (32 if gpu else 4)
        if n:
            size = parse_sizes(args.folder_size or ("960x540" if gpu else "128x128"))[0]
            bench_folder(net, device, n, size)
        if args.limit_size != "none":
            bench_limit(net, device, parse_sizes(args.limit_size)[0],
                        args.repeat or (3 if gpu else 1))
    bench_png_encode()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"process peak RSS {ru.ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
