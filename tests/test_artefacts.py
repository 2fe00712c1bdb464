"""The checkerboard score: ~1 on a photograph-like spectrum, far above with a period-2/4 pattern."""

import numpy as np
import pytest
from helpers import pink_noise

from srgan.evaluate.artefacts import periodic_artefact_score


def test_a_natural_spectrum_scores_about_one():
    assert 0.7 < periodic_artefact_score(pink_noise(256)) < 1.4


@pytest.mark.parametrize("period", [2, 4])
def test_a_faint_periodic_pattern_raises_the_score(period):
    image = pink_noise(256)
    x = np.arange(256)
    pattern = np.where(((x[:, None] // (period // 2)) + (x[None, :] // (period // 2))) % 2, 1, -1)
    clean = periodic_artefact_score(image)
    marked = periodic_artefact_score(image + 5.0 * pattern)  # 5 levels on a std of 40
    assert marked > 2.5 * clean


def test_a_pattern_whose_sign_changes_from_region_to_region_still_counts():
    """GAN checkerboards follow the texture: the score works per tile, not on global phase."""
    image = pink_noise(256, seed=1)
    x = np.arange(256)
    checker = np.where((x[:, None] + x[None, :]) % 2, 1.0, -1.0)
    sign = np.where((x[:, None] // 64 + x[None, :] // 64) % 2, 1.0, -1.0)
    clean = periodic_artefact_score(image)
    assert periodic_artefact_score(image + 5.0 * checker * sign) > 2.5 * clean


def test_bad_shapes_and_tiles_are_refused():
    with pytest.raises(ValueError, match="2-D"):
        periodic_artefact_score(np.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match="multiple of 4"):
        periodic_artefact_score(np.zeros((64, 64)), tile=30)
    with pytest.raises(ValueError, match="smaller than one"):
        periodic_artefact_score(np.zeros((20, 64)))


def test_halo_score_is_zero_within_the_hr_range_and_measures_a_rim():
    from srgan.evaluate.artefacts import halo_score

    hr = np.zeros((32, 32))
    hr[:, 16:] = 200.0  # one vertical step edge
    assert halo_score(hr, hr) == 0.0
    blurred = hr.copy()
    blurred[:, 15], blurred[:, 16] = 60.0, 140.0  # softer, but inside the HR's range
    assert halo_score(blurred, hr) == 0.0
    rimmed = hr.copy()
    rimmed[:, 17] = 230.0  # a bright rim 30 levels above the edge's bright side
    # edge pixels: the columns whose 7-wide window spans the step (13..18 of the inner 26)
    # -> 6 columns, one of them overshooting by 30
    assert halo_score(rimmed, hr) == pytest.approx(30.0 / 6)
    dark = hr.copy()
    dark[:, 14] = -12.0  # a dark rim on the dark side counts the same way
    assert halo_score(dark, hr) == pytest.approx(12.0 / 6)
    # texture away from edges is not a halo
    noisy = hr + np.where(np.arange(32) < 8, 25.0, 0.0)[None, :]
    assert halo_score(noisy, hr) == 0.0


def test_halo_score_rejects_mismatched_or_tiny_images():
    from srgan.evaluate.artefacts import halo_score

    with pytest.raises(ValueError, match="one shape"):
        halo_score(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="smaller"):
        halo_score(np.zeros((4, 4)), np.zeros((4, 4)))
    assert halo_score(np.ones((16, 16)), np.zeros((16, 16))) == 0.0  # flat HR: no edge
