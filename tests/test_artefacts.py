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
