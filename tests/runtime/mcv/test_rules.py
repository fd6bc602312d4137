import math

import numpy as np
import pytest
from keras import ops

from keras_autolr.runtime.mcv import rules

N = lambda t: np.asarray(ops.convert_to_numpy(t))  # noqa: E731


def test_discard_step_rejects_increase_and_nan():
    assert N(rules.discard_step(1.0, 1.1))
    assert not N(rules.discard_step(1.0, 0.9))
    assert not N(rules.discard_step(1.0, 1.0))  # equal loss: keep (Alg. 3 uses >)
    assert N(rules.discard_step(1.0, math.nan))


def test_best_candidate_picks_lowest_improving_and_minus_one_otherwise():
    mask = np.ones(4, "float32")
    assert int(N(rules.best_candidate(1.0, [1.2, 0.7, 0.9, 1.1], mask))) == 1
    assert int(N(rules.best_candidate(0.5, [1.2, 0.7, 0.9, 1.1], mask))) == -1
    # NaN never wins, padding never wins
    assert int(N(rules.best_candidate(1.0, [math.nan, 0.8, 0.9, 0.1], [1, 1, 1, 0]))) == 1


def test_update_votes_is_ema_and_zero_vote_decays():
    h = np.full(4, 0.25, "float32")
    got = N(rules.update_votes(h, 2, 0.1))
    np.testing.assert_allclose(got, [0.225, 0.225, 0.325, 0.225], rtol=1e-6)
    got = N(rules.update_votes(h, -1, 0.1))
    np.testing.assert_allclose(got, [0.225] * 4, rtol=1e-6)


def test_top_candidate_ignores_padding():
    assert int(N(rules.top_candidate([0.1, 0.2, 0.9], [1, 1, 0]))) == 1


def test_method1_min_val_and_all_nan_returns_none():
    assert rules.select_method1([0.5, 0.3, 0.4]) == 1
    assert rules.select_method1([math.nan, 0.3, math.inf]) == 1
    assert rules.select_method1([math.nan, math.nan]) is None
    assert rules.select_method1([0.5, 0.1], mask=[1, 0]) == 0


@pytest.mark.parametrize("alpha,expected", [(0.0, 0), (0.5, 1), (1.0, 1)])
def test_method2_weights_train_loss(alpha, expected):
    val, train = [0.40, 0.45], [0.60, 0.20]
    assert rules.select_method2(val, train, alpha) == expected
    np.testing.assert_allclose(rules.combined_loss(val, train, 0.3), [0.46, 0.375])
    with pytest.raises(ValueError):
        rules.combined_loss(val, train, 1.5)


def test_method3_largest_lr_below_current_else_min():
    lrs = [0.5, 0.2, 0.1, 0.05]
    avg = [2.0, 0.9, 0.8, 0.95]
    assert rules.select_method3(avg, 1.0, lrs) == 1  # largest LR that beats 1.0
    assert rules.select_method3(avg, 0.7, lrs) == 2  # none beats: min loss
    assert rules.select_method3(avg, 1.0) == 1  # slots assumed largest first
    # order given by lrs, not by slot
    assert rules.select_method3([0.9, 0.95], 1.0, lrs=[0.1, 0.3]) == 1
    assert rules.select_method3([math.nan] * 2, 1.0) is None

