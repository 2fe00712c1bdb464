"""What both fuzz scripts share: a time-bounded driver, byte mutations, crash bookkeeping.

Not a test module (pytest never collects fuzz/). The driver feeds a target function with inputs
made by a Hypothesis strategy (mutations of valid seed files, so the shrinker works on the
mutation choices) or, with `--engine atheris` when atheris is installed, by libFuzzer's
coverage-guided mutator. A target returns normally for an accepted input, raises one of the
documented exception types for a refused one, and anything else is a crash: it is recorded
once per signature (exception type + innermost frame in srgan, Pillow or safetensors), with
the input saved under the crash folder, and the run goes on.

Inputs that take longer than `--slow` seconds are recorded as "slow" findings too: a decoder
that spins on a few hundred bytes is a denial of service even if it ends in a clean error.

Before each execution the input is written to `<crash dir>/last_input`, so a hard crash of the
interpreter (segfault, OOM kill) leaves the guilty input behind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import struct
import sys
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

INTERESTING_32 = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
                  0x80000000, 0xFFFFFFFF, 65500, 100000, 2**24)
INTERESTING_8 = (0, 1, 2, 3, 4, 6, 7, 8, 15, 16, 0x7F, 0x80, 0xFE, 0xFF)


class Rejected(Exception):
    """Raised by a target's checker when an input was refused in the documented way."""


@dataclass
class Finding:
    kind: str  # "crash" or "slow"
    signature: str
    count: int
    first_input: str  # file name under the crash folder
    detail: str


@dataclass
class Stats:
    executions: int = 0
    accepted: int = 0
    rejected: int = 0
    started: float = field(default_factory=time.monotonic)
    findings: dict[str, Finding] = field(default_factory=dict)

    def summary(self) -> dict:
        secs = time.monotonic() - self.started
        crashes = [f for f in self.findings.values() if f.kind == "crash"]
        slow = [f for f in self.findings.values() if f.kind == "slow"]
        return {
            "executions": self.executions,
            "accepted": self.accepted,
            "rejected_cleanly": self.rejected,
            "seconds": round(secs, 1),
            "exec_per_s": round(self.executions / max(secs, 1e-9), 1),
            "unique_crashes": len(crashes),
            "crash_hits": sum(f.count for f in crashes),
            "unique_slow": len(slow),
            "findings": [f.__dict__ for f in self.findings.values()],
        }


def signature(exc: BaseException) -> str:
    """Exception type plus the innermost frame that is ours or a library's we call."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = "?"
    for fr in reversed(frames):
        if any(k in fr.filename for k in ("srgan", "PIL", "safetensors", "torch")):
            where = f"{Path(fr.filename).name}:{fr.lineno} in {fr.name}"
            break
    return f"{type(exc).__name__} at {where}"


class Driver:
    """Runs `check(data)` on inputs, counting outcomes and recording findings."""

    def __init__(self, name: str, check: Callable[[bytes], object], crash_dir: Path,
                 seconds: float, slow: float) -> None:
        self.name = name
        self.check = check
        self.crash_dir = crash_dir
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        self.deadline = time.monotonic() + seconds
        self.slow = slow
        self.stats = Stats()
        self.last = crash_dir / "last_input"
        self.json_path: Path | None = None  # report() writes its summary here too

    def restart_clock(self, seconds: float) -> None:
        """The time budget counts from here (seeds and set-up excluded)."""
        self.deadline = time.monotonic() + seconds
        self.stats.started = time.monotonic()

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def _record(self, kind: str, sig: str, data: bytes, detail: str) -> None:
        key = f"{kind}: {sig}"
        f = self.stats.findings.get(key)
        if f is not None:
            f.count += 1
            return
        digest = hashlib.sha1(data).hexdigest()[:12]
        fname = f"{self.name}-{kind}-{digest}.bin"
        (self.crash_dir / fname).write_bytes(data)
        self.stats.findings[key] = Finding(kind, sig, 1, fname, detail)
        print(f"\n[{kind}] {sig}\n  input: {self.crash_dir / fname} ({len(data)} bytes)\n"
              + "\n".join("  " + line for line in detail.splitlines()[-12:]), flush=True)

    def run_one(self, data: bytes) -> None:
        self.last.write_bytes(data)
        self.stats.executions += 1
        t0 = time.perf_counter()
        try:
            self.check(data)
            self.stats.accepted += 1
        except Rejected:
            self.stats.rejected += 1
        except Exception as exc:  # noqa: BLE001 - everything else is what we hunt
            self._record("crash", signature(exc), data,
                         "".join(traceback.format_exception(exc)))
        took = time.perf_counter() - t0
        if took > self.slow:
            self._record("slow", f"over {self.slow:g} s", data, f"one input took {took:.2f} s")

    def report(self) -> dict:
        out = {"target": self.name, **self.stats.summary()}
        if self.json_path is not None:
            self.json_path.write_text(json.dumps(out, indent=2))
        print(json.dumps({k: v for k, v in out.items() if k != "findings"}), flush=True)
        for f in out["findings"]:
            print(f"  {f['kind']}: {f['signature']} x{f['count']} -> {f['first_input']}")
        return out


# --------------------------------------------------------------------------- mutations


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """(type, payload) of each chunk of a well-formed PNG, or None."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    out, i = [], 8
    while i + 12 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        ctype = data[i + 4:i + 8]
        if i + 12 + n > len(data):
            return None
        out.append((ctype, data[i + 8:i + 8 + n]))
        i += 12 + n
    return out


def png_join(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """Chunks back into a PNG, every CRC correct (so mutations reach the decoders)."""
    parts = [b"\x89PNG\r\n\x1a\n"]
    for ctype, payload in chunks:
        parts.append(struct.pack(">I", len(payload)) + ctype + payload
                     + struct.pack(">I", zlib.crc32(ctype + payload)))
    return b"".join(parts)


def byte_mutate(data: bytearray, rnd: random.Random, rounds: int) -> bytearray:
    """AFL-style havoc: flips, interesting values, inserts, deletes, clones, truncation."""
    for _ in range(rounds):
        op = rnd.randrange(9)
        n = len(data)
        if n == 0:
            data += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 16)))
            continue
        pos = rnd.randrange(n)
        if op == 0:
            data[pos] ^= 1 << rnd.randrange(8)
        elif op == 1:
            data[pos] = rnd.randrange(256)
        elif op == 2:
            data[pos] = rnd.choice(INTERESTING_8)
        elif op == 3 and n >= 4:
            pos = min(pos, n - 4)
            fmt = rnd.choice((">I", "<I"))
            struct.pack_into(fmt, data, pos, rnd.choice(INTERESTING_32))
        elif op == 4 and n >= 2:
            pos = min(pos, n - 2)
            struct.pack_into(rnd.choice((">H", "<H")), data, pos,
                             rnd.choice(INTERESTING_32) & 0xFFFF)
        elif op == 5:
            data[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 32)))
        elif op == 6:
            del data[pos:pos + rnd.randrange(1, 64)]
        elif op == 7:
            src = rnd.randrange(n)
            chunk = data[src:src + rnd.randrange(1, 128)]
            data[pos:pos] = chunk
        else:
            del data[rnd.randrange(n + 1):]
    return data


def png_mutate(data: bytes, rnd: random.Random) -> bytes | None:
    """Structure-aware PNG mutation with valid CRCs: edit IHDR fields, drop, duplicate or
    reorder chunks, mutate one chunk's payload, or recompress IDAT with havoc applied."""
    chunks = png_chunks(data)
    if not chunks:
        return None
    op = rnd.randrange(6)
    i = rnd.randrange(len(chunks))
    if op == 0:
        ihdr = next((k for k, (t, _) in enumerate(chunks) if t == b"IHDR"), None)
        if ihdr is not None and len(chunks[ihdr][1]) == 13:
            w, h, bd, ct, cm, fm, il = struct.unpack(">IIBBBBB", chunks[ihdr][1])
            field_ = rnd.randrange(5)
            if field_ == 0:
                w = rnd.choice((0, 1, 2, 3, 7, 8, 9, 255, 256, 65535, 2**31 - 1, w + 1, w - 1))
            elif field_ == 1:
                h = rnd.choice((0, 1, 2, 3, 7, 8, 9, 255, 256, 65535, 2**31 - 1, h + 1, h - 1))
            elif field_ == 2:
                bd = rnd.choice((0, 1, 2, 4, 8, 16, 32))
            elif field_ == 3:
                ct = rnd.choice((0, 1, 2, 3, 4, 5, 6, 7))
            else:
                il = rnd.choice((0, 1, 2))
            chunks[ihdr] = (b"IHDR", struct.pack(">IIBBBBB", w & 0xFFFFFFFF, h & 0xFFFFFFFF,
                                                 bd, ct, cm, fm, il))
    elif op == 1 and len(chunks) > 1:
        del chunks[i]
    elif op == 2:
        chunks.insert(rnd.randrange(len(chunks) + 1), chunks[i])
    elif op == 3:
        j = rnd.randrange(len(chunks))
        chunks[i], chunks[j] = chunks[j], chunks[i]
    elif op == 4:
        t, payload = chunks[i]
        chunks[i] = (t, bytes(byte_mutate(bytearray(payload), rnd, rnd.randrange(1, 4))))
    else:
        idats = [k for k, (t, _) in enumerate(chunks) if t == b"IDAT"]
        if idats:
            raw = zlib.decompress(b"".join(chunks[k][1] for k in idats))
            raw = bytes(byte_mutate(bytearray(raw), rnd, rnd.randrange(1, 4)))
            first = idats[0]
            chunks = [c for k, c in enumerate(chunks) if k not in idats]
            chunks.insert(first, (b"IDAT", zlib.compress(raw)))
    return png_join(chunks)


# --------------------------------------------------------------------------- engines


def limit_memory(gib: float) -> None:
    """Cap the address space, so a huge allocation fails (and is reported) instead of
    taking the machine down."""
    if gib > 0:
        cap = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run_hypothesis(driver: Driver, make_input: Callable[[random.Random], bytes],
                   batch: int = 500) -> None:
    """Drive with Hypothesis: it draws the mutation seed (a 64-bit integer per example) and
    so owns the randomness; batches of `batch` examples until the time is up."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=batch, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 2**64 - 1))
    def one(seed: int) -> None:
        if driver.out_of_time():
            return
        driver.run_one(make_input_safely(random.Random(seed)))

    def make_input_safely(rnd: random.Random) -> bytes:  # a mutator bug must not end the run
        try:
            return make_input(rnd)
        except Exception as exc:  # noqa: BLE001
            print(f"mutator error (input skipped): {exc!r}", file=sys.stderr)
            return b""

    while not driver.out_of_time():
        one()


def run_atheris(driver: Driver, seeds: list[bytes], make_input: Callable[[random.Random], bytes],
                seconds: float) -> None:
    """Drive with atheris (libFuzzer, Python coverage of srgan + Pillow/safetensors wrappers).
    Half of the inputs are libFuzzer's own, half our structure-aware mutations seeded by it."""
    import atheris

    _instrument(atheris, ("srgan", "PIL", "safetensors"))
    driver.restart_clock(seconds)

    def test_one(data: bytes) -> None:
        if driver.out_of_time():
            driver.report()
            os._exit(0)
        if data[:1] == b"\x00" and len(data) >= 9:
            driver.run_one(make_input(random.Random(int.from_bytes(data[1:9], "little"))))
        else:
            driver.run_one(bytes(data[1:]))

    corpus = driver.crash_dir / "atheris_corpus"
    corpus.mkdir(exist_ok=True)
    for k, s in enumerate(seeds):
        (corpus / f"seed{k}").write_bytes(b"\x01" + s)
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={int(seconds) + 5}",
                   "-rss_limit_mb=0", "-max_len=200000"], test_one)
    atheris.Fuzz()


def _instrument(atheris, packages: tuple[str, ...]) -> int:
    """Coverage for the Python code we care about (already imported, so instrument_imports
    is too late; instrument_all would take minutes over torch)."""
    import inspect

    count = 0
    for name, mod in list(sys.modules.items()):
        if mod is None or name.split(".")[0] not in packages:
            continue
        for obj in list(vars(mod).values()):
            members = [obj]
            if inspect.isclass(obj):
                members = list(vars(obj).values())
            elif not inspect.isfunction(obj):
                continue
            if getattr(obj, "__module__", None) != name:
                continue
            for f in members:
                if inspect.isfunction(f):
                    try:
                        atheris.instrument_func(f)
                        count += 1
                    except Exception:  # noqa: BLE001 - some code objects cannot be patched
                        pass
    print(f"atheris: instrumented {count} functions", flush=True)
    return count


def parse_args(description: str, default_dir: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--seconds", type=float, default=120, help="how long to fuzz")
    ap.add_argument("--engine", choices=("hypothesis", "atheris"), default="hypothesis")
    ap.add_argument("--slow", type=float, default=5.0,
                    help="an input taking longer than this (s) is a finding")
    ap.add_argument("--memory-gib", type=float, default=4.0,
                    help="address-space cap for this process (0: none)")
    ap.add_argument("--crash-dir", type=Path, default=Path(default_dir),
                    help="where crashing inputs and the last input go")
    ap.add_argument("--json", type=Path, default=None, help="write the summary here too")
    ap.add_argument("--replay", type=Path, nargs="*", default=None,
                    help="run these files once each (e.g. saved crashes) and exit")
    return ap.parse_args()


def main_loop(args: argparse.Namespace, driver: Driver, seeds: list[bytes],
              make_input: Callable[[random.Random], bytes]) -> int:
    driver.json_path = args.json
    if args.replay is not None:
        for p in args.replay:
            driver.run_one(p.read_bytes())
        out = driver.report()
        return 1 if out["unique_crashes"] else 0
    for s in seeds:  # every seed must pass untouched
        driver.run_one(s)
    driver.restart_clock(args.seconds)
    if args.engine == "atheris":
        run_atheris(driver, seeds, make_input, args.seconds)
    else:
        run_hypothesis(driver, make_input)
    out = driver.report()
    return 1 if out["unique_crashes"] else 0
