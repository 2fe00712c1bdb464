"""srgan.pairing: the one LR/HR file pairing that training and the benchmark share."""

from __future__ import annotations

from pathlib import Path

from srgan.pairing import match_key, pair_lr_files


def test_match_key_drops_only_this_scale():
    assert match_key("0001x4", 4) == "0001" and match_key("0001x2", 4) == "0001x2"


def test_every_accepted_naming_pairs():
    hr = [Path(f"HR/{n}.png") for n in ("0001", "baby", "Bird", "img_001_SRF_4_HR", "comic")]
    lr = [Path(f"LR/{n}") for n in ("0001x4.png", "baby_LRBI_x4.png", "bird.png",
                                    "img_001_SRF_4_LR.png", "comic_x4.bmp")]
    pairs = pair_lr_files(hr, lr, 4)
    assert [pairs[h] for h in hr] == lr


def test_div2k_name_wins_then_same_stem_and_ambiguity_is_not_guessed():
    hr = [Path("HR/0001.png"), Path("HR/0002.png"), Path("HR/zebra.png")]
    lr = [Path("LR/0001.png"), Path("LR/0001x4.png"),  # both: the scale-marked one is LR
          Path("LR/0002x4.png"), Path("LR/0002x4.jpg"),  # two candidates: unpaired
          Path("LR/zebra_lr.png"), Path("LR/zebra_bicubic.png")]  # likewise
    pairs = pair_lr_files(hr, lr, 4)
    assert pairs == {hr[0]: lr[1], hr[1]: None, hr[2]: None}


def test_no_partner_and_other_scales_stay_unpaired():
    hr = [Path("HR/0001.png"), Path("HR/lone.png")]
    assert pair_lr_files(hr, [Path("LR/0001x2.png")], 4) == {hr[0]: None, hr[1]: None}
    assert pair_lr_files(hr[:1], [Path("LR/0001x2.png")], 2) == {hr[0]: Path("LR/0001x2.png")}


def test_lr_file_names_pair_up():
    assert match_key("baby_LRBI_x4", 4) == "baby" == match_key("baby", 4)
    assert match_key("img_001_SRF_4_HR", 4) == match_key("img_001_SRF_4_LR", 4)
    assert match_key("img_004", 4) == "img_004"
    hr = [Path("baby.png"), Path("bird.png"), Path("head.png")]
    lr = [Path("babyx4.png"), Path("bird_LR.png"), Path("head_LR.png"), Path("head_x4.png")]
    pairs = pair_lr_files(hr, lr, 4)
    assert pairs[hr[0]] == lr[0] and pairs[hr[1]] == lr[1]
    assert pairs[hr[2]] is None  # two candidates: ambiguous, not guessed


def test_training_pairs_benchmark_style_names_too(tmp_path):
    import numpy as np
    import torch

    from srgan.data import load_training_set
    from srgan.imageio import from_array, write_image

    (tmp_path / "HR").mkdir()
    (tmp_path / "LR").mkdir()
    rng = np.random.default_rng(3)
    for hr_name, lr_name in (("0001", "0001x4"), ("baby", "baby_LRBI_x4"), ("Bird", "bird_lr")):
        lr = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        write_image(from_array(lr.repeat(4, 0).repeat(4, 1)), tmp_path / "HR" / f"{hr_name}.png")
        write_image(from_array(lr), tmp_path / "LR" / f"{lr_name}.png")
    logs: list[str] = []
    ts = load_training_set([tmp_path / "HR"], crop=16, scale=4, lr_folders=[tmp_path / "LR"],
                           log=logs.append, seed=0)
    assert len(ts) == 3 and logs == []
    lr, hr = ts.batch(8)
    assert torch.equal(lr.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3), hr)
