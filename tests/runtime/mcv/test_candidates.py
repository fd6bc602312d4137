import math

import numpy as np
import pytest

from keras_autolr.runtime.mcv import candidates as c


def test_candidate_list_is_factors_times_lr_largest_first():
    got = c.candidate_list(0.03)
    np.testing.assert_allclose(got, [0.15, 0.06, 0.04, 0.03, 0.0225, 0.015, 0.006])
    assert list(got) == sorted(got, reverse=True)


def test_candidate_list_clips_to_bounds():
    got = c.candidate_list(4.0, max_lr=10.0)
    assert got.max() == 10.0 and got[2] == pytest.approx(16 / 3)
    assert c.candidate_list(1e-9, min_lr=1e-8).min() == 1e-8


@pytest.mark.parametrize("bad", [[0.1, 0.0], [0.1, -1.0], [math.nan], [math.inf, 0.1], [], ["x"]])
def test_validate_rejects_bad_entries(bad):
    with pytest.raises(c.CandidateError):
        c.validate_candidates(bad)


@pytest.mark.parametrize("lr", [0.0, -0.1, math.nan, math.inf])
def test_candidate_list_rejects_bad_lr(lr):
    with pytest.raises(c.CandidateError, match="finite and positive"):
        c.candidate_list(lr)


def test_candidate_list_rejects_bad_bounds():
    with pytest.raises(c.CandidateError, match="min_lr"):
        c.candidate_list(0.1, min_lr=1.0, max_lr=0.1)


def test_pad_candidates_masks_padding():
    padded, mask = c.pad_candidates(c.THESIS_LR_LIST, 7)
    assert padded.shape == (7,) and mask.tolist() == [1, 1, 1, 1, 0, 0, 0]
    assert np.all(padded > 0)
    with pytest.raises(c.CandidateError, match="do not fit"):
        c.pad_candidates([0.1] * 8, 7)
