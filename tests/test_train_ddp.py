"""torchrun DDP on CPU: two gloo processes train in lockstep and rank 0 alone writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import FAULTS, REPO, TINY, read_log

from srgan.nets import SRResNet
from srgan.train.checkpoint import list_checkpoints, load_checkpoint


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_two_gloo_processes_keep_identical_weights(image_dirs, tmp_path):
    train, _ = image_dirs
    dump = tmp_path / "dump"
    run_dir = tmp_path / "run"
    sets = [*TINY, f"data.train=[{train}]", "train.steps=3", "log.every=1",
            "train.lr=1e-3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(FAULTS), json.dumps({"dump_weights": str(dump)}), "train", "srgan_mse_x4",
           *[a for s in sets for a in ("--set", s)], "--run-dir", str(run_dir)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr

    ranks = [torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert set(ranks[0]) == set(ranks[1]) and any(k.startswith("d.") for k in ranks[0])
    for k in ranks[0]:
        assert torch.equal(ranks[0][k], ranks[1][k]), f"{k} differs between ranks"
    torch.manual_seed(0)  # the trainer's seeded initialisation: training did move the weights
    init = SRResNet(4, 1, 8).state_dict()
    assert not torch.equal(init["head.0.weight"], ranks[0]["g.head.0.weight"])

    # rank 0 wrote the one run folder; the checkpoint holds each rank's (different) crop RNG
    (ckpt_path,) = list_checkpoints(run_dir / "checkpoints")
    state = load_checkpoint(ckpt_path)
    assert state["world_size"] == 2 and len(state["data"]) == 2
    assert not torch.equal(state["data"][0]["generator"], state["data"][1]["generator"])
    records = read_log(run_dir)
    assert records[0]["world_size"] == 2
    assert [r["step"] for r in records if "train/loss" in r] == [1, 2, 3]
    assert (run_dir / "generator.safetensors").is_file()
