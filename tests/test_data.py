"""Training data: packed images, batched crops/augmentation, degradation, loading rules."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_random_png

from srgan.data import (
    DataError,
    ImageBank,
    TrainingSet,
    degrade,
    load_training_set,
    load_validation_set,
)
from srgan.imageio import display_path, from_array, write_image
from srgan.resize import imresize


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(from_array(array), path)
    return path


def random_images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def dihedral(a: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of an H x W x C array (H == W)."""
    out = []
    for k in range(4):
        r = np.rot90(a, k)
        out += [r, r[:, ::-1]]
    return out


def test_crops_without_augmentation_are_plain_slices():
    images = random_images([(20, 30), (17, 17), (40, 25)])
    bank = ImageBank.pack(images, ["a", "b", "c"], torch.device("cpu"))
    index = torch.tensor([0, 1, 2, 2, 0])
    y = torch.tensor([0, 1, 23, 0, 4])
    x = torch.tensor([14, 0, 9, 0, 2])
    out = bank.crops(index, y, x, 16, torch.zeros(5, dtype=torch.int64))
    assert out.shape == (5, 3, 16, 16) and out.dtype == torch.uint8
    for b in range(5):
        i, yy, xx = int(index[b]), int(y[b]), int(x[b])
        expected = images[i][yy : yy + 16, xx : xx + 16].transpose(2, 0, 1)
        np.testing.assert_array_equal(out[b].numpy(), expected)


def test_the_eight_transforms_are_the_dihedral_group():
    (image,) = random_images([(12, 12)], seed=1)
    bank = ImageBank.pack([image], ["a"], torch.device("cpu"))
    zeros = torch.zeros(8, dtype=torch.int64)
    out = bank.crops(zeros, zeros, zeros, 12, torch.arange(8)).permute(0, 2, 3, 1).numpy()
    expected = dihedral(image)
    matched = set()
    for t in range(8):
        hits = [k for k, e in enumerate(expected) if np.array_equal(out[t], e)]
        assert len(hits) == 1, f"transform {t} is not a flip/rotation of the crop"
        matched.add(hits[0])
    assert matched == set(range(8))


def coordinate_image(h: int, w: int, ident: int) -> np.ndarray:
    """R = row, G = column, B = image id: every pixel says where it came from."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy, xx, np.full_like(yy, ident)], axis=2).astype(np.uint8)


def test_batch_shapes_ranges_and_degradation():
    images = [coordinate_image(40, 40, 10), coordinate_image(48, 33, 20)]
    bank = ImageBank.pack(images, ["a", "b"], torch.device("cpu"))
    ts = TrainingSet(bank, crop=16, scale=4, seed=3)
    lr, hr = ts.batch(64)
    assert hr.shape == (64, 3, 16, 16) and lr.shape == (64, 3, 4, 4)
    assert hr.dtype == lr.dtype == torch.float32
    assert hr.min() >= 0 and hr.max() <= 1
    expected = (imresize(hr, 0.25).clamp(0, 1) * 255).round() / 255
    torch.testing.assert_close(lr, expected, rtol=0, atol=1e-6)
    assert torch.equal(degrade(hr, 4, quantize=False), imresize(hr, 0.25))
    # every HR crop is a 16x16 window of one image, in one of the 8 orientations
    u8 = (hr * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    seen_ids = set()
    for crop in u8:
        ident = int(crop[0, 0, 2])
        assert (crop[..., 2] == ident).all() and ident in (10, 20)
        seen_ids.add(ident)
        im = images[0] if ident == 10 else images[1]
        y0, x0 = int(crop[..., 0].min()), int(crop[..., 1].min())
        window = im[y0 : y0 + 16, x0 : x0 + 16]
        assert any(np.array_equal(t, crop) for t in dihedral(window))
    assert seen_ids == {10, 20}


def test_generator_state_replays_the_same_batches():
    bank = ImageBank.pack(random_images([(30, 30), (40, 20)], seed=4), ["a", "b"],
                          torch.device("cpu"))
    ts = TrainingSet(bank, crop=8, scale=2, seed=5)
    ts.batch(4)
    state = {k: v.clone() for k, v in ts.state_dict().items()}
    first = [ts.batch(4) for _ in range(3)]
    ts.load_state_dict(state)
    again = [ts.batch(4) for _ in range(3)]
    for (a_lr, a_hr), (b_lr, b_hr) in zip(first, again, strict=True):
        assert torch.equal(a_lr, b_lr) and torch.equal(a_hr, b_hr)
    other = TrainingSet(bank, crop=8, scale=2, seed=6)
    assert not torch.equal(other.batch(4)[1], first[0][1])


def test_area_sampling_prefers_big_images():
    bank = ImageBank.pack(random_images([(64, 64), (8, 8)], seed=7), ["big", "small"],
                          torch.device("cpu"))
    ts = TrainingSet(bank, crop=8, scale=2, sample="area", seed=0)
    index, *_ = ts.sample_indices(2000)
    share_big = (index == 0).float().mean().item()
    assert share_big == pytest.approx(64 * 64 / (64 * 64 + 64), abs=0.02)
    ts = TrainingSet(bank, crop=8, scale=2, sample="image", seed=0)
    index, *_ = ts.sample_indices(2000)
    assert (index == 0).float().mean().item() == pytest.approx(0.5, abs=0.05)


def test_paired_lr_crops_stay_aligned(tmp_path):
    rng = np.random.default_rng(8)
    for name, (h, w) in {"0001": (10, 12), "0002": (9, 11)}.items():
        lr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        hr = lr.repeat(4, axis=0).repeat(4, axis=1)  # every HR block is its LR pixel
        write_png(tmp_path / "HR" / f"{name}.png", hr)
        write_png(tmp_path / "LR" / f"{name}x4.png", lr)
    ts = load_training_set([tmp_path / "HR"], crop=16, scale=4, lr_folders=[tmp_path / "LR"],
                           log=lambda s: None, seed=1)
    assert ts.lr is not None and len(ts) == 2
    lr, hr = ts.batch(32)
    assert lr.shape == (32, 3, 4, 4) and hr.shape == (32, 3, 16, 16)
    up = lr.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    assert torch.equal(up, hr)


def test_loading_skips_small_and_broken_images(tmp_path):
    folder = tmp_path / "train"
    write_png(folder / "ok.png", random_images([(20, 24)])[0])
    write_png(folder / "grey.png", np.full((20, 20), 77, dtype=np.uint8))
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    write_png(folder / "rgba.png", rgba)
    write_png(folder / "small.png", random_images([(8, 30)])[0])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    messages = []
    ts = load_training_set([folder], crop=16, scale=4, log=messages.append)
    assert len(ts) == 3
    text = "\n".join(messages)
    assert "small.png" in text and "smaller than the 16x16 crop" in text
    assert "broken.png" in text and "unreadable" in text
    names = [n.rsplit("/", 1)[-1] for n in ts.hr.names]
    assert names == ["grey.png", "ok.png", "rgba.png"]
    # grey replicated to RGB, alpha dropped (not composited)
    index = torch.tensor([0, 2])
    crops = ts.hr.crops(index, torch.zeros(2, dtype=torch.int64),
                        torch.zeros(2, dtype=torch.int64), 16, torch.zeros(2, dtype=torch.int64))
    assert (crops[0] == 77).all()
    assert (crops[1][0] == 200).all() and (crops[1][1:] == 0).all()


def test_unusable_sets_are_errors(tmp_path):
    with pytest.raises(DataError, match="--set data.train"):
        load_training_set([tmp_path / "absent"], crop=16, scale=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable training image"):
        load_training_set([tmp_path / "empty"], crop=16, scale=4)
    write_png(tmp_path / "tiny" / "a.png", random_images([(8, 8)])[0])
    with pytest.raises(DataError, match="smaller than the crop"):
        load_training_set([tmp_path / "tiny"], crop=16, scale=4, log=lambda s: None)


def test_validation_set_is_modcropped_with_matlab_lr(tmp_path):
    image = random_images([(27, 34)], seed=9)[0]
    write_png(tmp_path / "val" / "x.png", image)
    (item,) = load_validation_set(tmp_path / "val", scale=4)
    assert item.hr.shape == (3, 24, 32) and item.lr.shape == (1, 3, 6, 8)
    hr = torch.from_numpy(image[:24, :32]).permute(2, 0, 1).float()[None] / 255
    expected = (imresize(hr, 0.25).clamp(0, 1) * 255).round() / 255
    torch.testing.assert_close(item.lr, expected, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- odd inputs
def test_training_loader_corpus_uses_good_files_and_reports_bad_ones(corpus):
    folder, cases = corpus
    logs: list[str] = []
    crop = 12
    ts = load_training_set([folder], crop=crop, scale=4, log=logs.append)
    names = set(ts.hr.names)
    for case in cases:
        if case.path.is_dir() and not case.path.is_symlink():
            continue
        mine = [line for line in logs if str(case.path) in line
                or display_path(case.path) in line]
        if case.expect == "error":
            assert str(case.path) not in names
            assert len(mine) == 1 and "skipping unreadable" in mine[0], (case, mine)
            assert case.error is None or case.error in mine[0].lower(), mine
        elif min(case.size) >= crop:
            assert str(case.path) in names and mine == [], (case, mine)
        else:
            assert len(mine) == 1 and "smaller than" in mine[0], (case, mine)
    lr, hr = ts.batch(8)
    assert lr.shape == (8, 3, 3, 3) and hr.shape == (8, 3, 12, 12)
    assert torch.isfinite(lr).all() and float(hr.min()) >= 0 and float(hr.max()) <= 1
    val = load_validation_set(folder, 4, log=logs.append)
    assert len(val) >= 20 and all(v.hr.shape[1] % 4 == 0 for v in val)


def test_training_loader_with_only_bad_files_is_an_error_naming_the_folder(corpus, tmp_path):
    folder, cases = corpus
    bad = tmp_path / "bad"
    bad.mkdir()
    for case in cases:
        if case.expect == "error" and case.path.is_file() and not case.path.is_symlink():
            shutil.copy(case.path, bad / case.path.name)
    logs: list[str] = []
    with pytest.raises(DataError, match=f"no usable training image in {bad}"):
        load_training_set([bad], crop=8, scale=4, log=logs.append)
    assert len(logs) == len(list(bad.iterdir())) >= 10


def test_non_utf8_names_in_logs_are_printable(tmp_path):
    """A training run's log lines go to stdout and log files: a non-UTF-8 file name must not
    make them unencodable (print() on a UTF-8 terminal raises UnicodeEncodeError)."""
    folder = tmp_path / "set"
    folder.mkdir()
    write_random_png(folder / "good.png", 32, 32)
    write_random_png(os.fsencode(folder) + b"/small_\xe9.png", 4, 4)
    (Path(os.fsdecode(os.fsencode(folder) + b"/broken_\xff.png"))).write_bytes(b"junk")
    logs: list[str] = []
    load_training_set([folder], crop=16, scale=4, log=logs.append)
    assert len(logs) == 2
    for line in logs:
        line.encode("utf-8")


def test_training_folders_leave_out_the_validation_images_of_runs(tmp_path, tiny_model_path):
    """A run folder inside a training folder is refused; a training folder holding a run's
    validation images (LR | SR | HR strips srgan train wrote) reads only the photos."""
    from click.testing import CliRunner
    from helpers import TINY, make_images

    from srgan.cli import main
    from srgan.imageio import from_array, write_image

    photos = make_images(tmp_path / "photos", count=3)
    val = make_images(tmp_path / "val", count=1, size=(32, 36))
    run = photos / "runs" / "r"
    sets = [a for s in [*TINY, f"data.train=[{photos}]", f"data.val={val}", "train.steps=1"]
            for a in ("--set", s)]
    res = CliRunner().invoke(main, ["train", "srresnet_x4", *sets, "--run-dir", str(run)])
    assert res.exit_code != 0 and f"run folder {run} is inside {photos}" in res.output, res.output
    assert not run.exists()
    inside_val = val / "r"  # its step strips would be scored as validation images
    res = CliRunner().invoke(main, ["train", "srresnet_x4", *sets, "--run-dir", str(inside_val)])
    assert res.exit_code != 0 and f"is inside {val} (data.val)" in res.output, res.output
    assert not inside_val.exists()
    strips = photos / "old_run" / "val"
    strips.mkdir(parents=True)
    for i in range(3):  # what an earlier run left there (marked by srgan's writer)
        write_image(from_array(np.zeros((40, 48, 3), np.uint8)),
                    strips / f"step_{i:09d}_im0.png")
    messages: list[str] = []
    ts = load_training_set([photos], crop=16, scale=4, log=messages.append)
    assert len(ts) == 3
    assert any("3 validation image(s) of srgan train runs" in m for m in messages), messages
