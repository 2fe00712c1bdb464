"""Fuzz the model-file loader (`srgan.weights.load_generator`) and, with `--target checkpoint`,
the training-checkpoint loader (`srgan.train.checkpoint.load_checkpoint`).

Model seeds are tiny generator files (x2 and x4, fp32 and fp16). Mutations are byte-wise havoc
on the whole file, or structure-aware: the safetensors header is parsed, one thing in it is
changed (a tensor's dtype, shape or offsets; a key dropped, added or renamed; the srgan config
or card JSON given odd values: huge, negative, fractional, infinite, NaN, strings, nesting
1000s deep, unknown fields; the length prefix lied about), and the file is put back together
so the mutation reaches srgan's own checks rather than stopping at safetensors' parser.

What must hold: load_generator returns a model whose network runs on a 4x4 input, or raises
ModelFileError; load_checkpoint returns a dict or raises CheckpointError. Anything else is a
crash, and so is an allocation over the --memory-gib cap (the process's address space is
capped, so a "tiny file that builds a 20 GB network" fails loudly here instead of swapping the
machine); an input slower than --slow seconds is a finding.

    python fuzz/fuzz_models.py --seconds 180
    python fuzz/fuzz_models.py --target checkpoint --seconds 60
    python fuzz/fuzz_models.py --replay fuzz/crashes/models-crash-*.bin
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    INTERESTING_32,
    Driver,
    Rejected,
    byte_mutate,
    limit_memory,
    main_loop,
    parse_args,
)

DTYPES = ("F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3",
          "F8_E5M2", "C64", "U64", "XX", "")
ODD_VALUES = (0, 1, 2, 3, 4, 8, 16, 32, 256, 257, 1024, 1025, -1, -4, 4.5, 1e999, -1e999,
              float("nan"), 10**30, "4", "", None, True, [], {}, [4], "1" * 5000)
CONFIG_FIELDS = ("arch", "scale", "num_blocks", "channels", "input_range", "output_range")


def model_seeds() -> list[bytes]:
    import torch

    from srgan.nets import SRResNet
    from srgan.weights import ModelCard, save_generator

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale, blocks, ch, dtype in ((4, 1, 4, torch.float32), (2, 2, 4, torch.float16),
                                         (4, 0, 2, torch.float32)):
            torch.manual_seed(0)
            net = SRResNet(scale, blocks, ch)
            p = save_generator(net, Path(tmp) / "m.safetensors",
                               ModelCard(name="seed", description="fuzz seed"), dtype=dtype)
            out.append(p.read_bytes())
    return out


def split(data: bytes) -> tuple[dict, bytes] | None:
    if len(data) < 8:
        return None
    (n,) = struct.unpack("<Q", data[:8])
    try:
        return json.loads(data[8:8 + n]), data[8 + n:]
    except (ValueError, RecursionError):
        return None


def join(header: dict, body: bytes, rnd: random.Random) -> bytes:
    text = json.dumps(header, allow_nan=True).encode()
    n = len(text)
    if rnd.random() < 0.05:  # the length prefix lies
        n = rnd.choice((0, 1, n - 1, n + 1, n + 7, 2**32, 2**63, 100_000_001))
    return struct.pack("<Q", n & (2**64 - 1)) + text + body


def odd_json(rnd: random.Random) -> str:
    kind = rnd.randrange(4)
    if kind == 0:
        depth = rnd.choice((10, 1000, 100_000))
        return "[" * depth + "]" * depth
    if kind == 1:
        return rnd.choice(("{", "null", "[]", "1", '"x"', "{}", "\x00", "\ud800"))
    if kind == 2:
        return json.dumps({f: rnd.choice(ODD_VALUES) for f in CONFIG_FIELDS
                           if rnd.random() < 0.5}, allow_nan=True)
    return json.dumps({"evil": 1, "scale": 4})


def structure_mutate(data: bytes, rnd: random.Random) -> bytes | None:
    parsed = split(data)
    if parsed is None:
        return None
    header, body = parsed
    meta = dict(header.get("__metadata__") or {})
    keys = [k for k in header if k != "__metadata__"]
    op = rnd.randrange(8)
    if op in (0, 1) and "srgan.config" in meta:  # one config field changed
        cfg = json.loads(meta["srgan.config"])
        field_ = rnd.choice(CONFIG_FIELDS)
        cfg[field_] = rnd.choice(ODD_VALUES)
        if rnd.random() < 0.3:  # and a second one (e.g. blocks and channels both large)
            cfg[rnd.choice(CONFIG_FIELDS)] = rnd.choice(ODD_VALUES)
        meta["srgan.config"] = json.dumps(cfg, allow_nan=True)
    elif op == 2:
        meta[rnd.choice(("srgan.config", "srgan.card", "srgan.format"))] = odd_json(rnd)
    elif op == 3 and keys:
        k = rnd.choice(keys)
        entry = dict(header[k])
        what = rnd.randrange(3)
        if what == 0:
            entry["dtype"] = rnd.choice(DTYPES)
        elif what == 1:
            shape = list(entry.get("shape", []))
            choice = rnd.randrange(4)
            if choice == 0 and shape:
                shape[rnd.randrange(len(shape))] = rnd.choice(INTERESTING_32)
            elif choice == 1:
                shape.append(rnd.choice((0, 1, 2)))
            elif choice == 2 and shape:
                shape.pop()
            else:
                shape = [rnd.choice((0, 1, 2**31, 2**40))] * rnd.randrange(1, 4)
            entry["shape"] = shape
        else:
            a, b = entry.get("data_offsets", [0, 0])
            entry["data_offsets"] = rnd.choice(([b, a], [a, b + 4], [a + 4, b], [0, 2**40],
                                                [len(body), len(body) + 4], [a, a]))
        header[k] = entry
    elif op == 4 and keys:
        header.pop(rnd.choice(keys))
    elif op == 5 and keys:
        k = rnd.choice(keys)
        header[k + rnd.choice((".x", "_", ""))] = header.pop(k)
        if rnd.random() < 0.5:  # a copy of some entry under a new name
            header["extra.weight"] = dict(header[rnd.choice([k for k in header
                                                              if k != "__metadata__"])])
    elif op == 6:
        body = bytes(byte_mutate(bytearray(body), rnd, rnd.randrange(1, 4)))
    else:  # metadata values that are not strings, or no metadata at all
        header["__metadata__"] = rnd.choice((None, {"srgan.config": 4}, [], "x", meta))
        return join(header, body, rnd)
    header["__metadata__"] = meta
    return join(header, body, rnd)


def model_checker(workdir: Path):
    import torch

    from srgan.weights import ModelFileError, load_generator

    path = workdir / "model.safetensors"
    x = torch.rand(1, 3, 4, 4)

    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            net = load_generator(path).net
        except ModelFileError as exc:
            if str(path) not in str(exc):
                raise AssertionError(f"error does not name the file: {exc}") from exc
            raise Rejected from None
        with torch.inference_mode():
            y = net(x)
        assert y.shape == (1, 3, 4 * net.scale, 4 * net.scale), y.shape

    return check


def checkpoint_seeds() -> list[bytes]:
    import torch

    from srgan.nets import SRResNet
    from srgan.train.checkpoint import FORMAT, VERSION

    torch.manual_seed(0)
    net = SRResNet(4, 1, 4)
    state = {"format": FORMAT, "version": VERSION, "step": 7, "generator": net.state_dict(),
             "rng": torch.get_rng_state(), "counters": {"nan_batches": 0}, "config": "x = 1"}
    buf = io.BytesIO()
    torch.save(state, buf)
    return [buf.getvalue()]


def checkpoint_checker(workdir: Path):
    from srgan.train.checkpoint import CheckpointError, load_checkpoint

    path = workdir / "step_000000007.pt"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            state = load_checkpoint(path)
        except CheckpointError:
            raise Rejected from None
        assert isinstance(state, dict)

    return check


def main() -> int:
    import argparse

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--target", choices=("model", "checkpoint"), default="model")
    known, rest = pre.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = parse_args("Fuzz srgan's model-file loader (--target model|checkpoint)",
                      str(HERE / "crashes"))
    import torch

    torch.set_num_threads(1)
    seeds = model_seeds() if known.target == "model" else checkpoint_seeds()
    with tempfile.TemporaryDirectory(prefix="srgan-fuzz-model-") as tmp:
        if known.target == "model":
            checker = model_checker(Path(tmp))
        else:
            checker = checkpoint_checker(Path(tmp))
        name = "models" if known.target == "model" else "checkpoints"
        driver = Driver(name, checker, args.crash_dir, args.seconds, args.slow)

        def make_input(rnd: random.Random) -> bytes:
            base = rnd.choice(seeds)
            if known.target == "model" and rnd.random() < 0.7:
                out = structure_mutate(base, rnd)
                if out is not None:
                    return out
            return bytes(byte_mutate(bytearray(base), rnd, rnd.choice((1, 2, 4, 8))))

        print(f"fuzzing {known.target} loading with {len(seeds)} seeds for {args.seconds:g} s "
              f"({args.engine}); pid {os.getpid()}", flush=True)
        limit_memory(args.memory_gib)
        return main_loop(args, driver, seeds, make_input)


if __name__ == "__main__":
    sys.exit(main())
