"""`torchrun --nproc_per_node N -m srgan upscale FOLDER -o OUT` shards the files over the
ranks: every file is done exactly once. Runs two CPU processes under the real torchrun."""

import re
import subprocess
import sys

import numpy as np
from helpers import smooth_image
from PIL import Image


def test_two_ranks_upscale_every_file_exactly_once(tmp_path, tiny_model_path):
    src = tmp_path / "in"
    names = [f"{i:02d}.png" for i in range(7)] + ["sub/x.png", "sub/y.jpg"]
    for i, name in enumerate(names):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((smooth_image(10, 12, seed=i) * 255).astype(np.uint8)).save(src / name)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "srgan", "upscale", str(src), "-o", str(out), "-m", str(tiny_model_path),
           "-q", "--device", "cpu"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    done = {int(r): int(n) for r, n in
            re.findall(r"\[rank (\d)/2\] (\d+) upscaled, 0 skipped, 0 failed", res.stderr)}
    # each rank did its share, and the shares add up to the folder: nothing twice or skipped
    assert done == {0: 5, 1: 4}, res.stderr
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert made == sorted(n.replace(".", "_x4.") for n in names)
    assert all(Image.open(out / m).size == (48, 40) for m in made)
