import math

import numpy as np
import pytest

from keras_autolr.harness import metrics

pytestmark = pytest.mark.jax


def test_convergence_threshold_is_worst_best():
    curves = [[0.1, 0.5, 0.9], [0.2, 0.7, 0.6], [0.3, 0.8]]
    assert metrics.convergence_threshold(curves, "max") == 0.7
    assert metrics.convergence_threshold([[3, 2, 1], [5, 4]], "min") == 4


def test_convergence_step_first_hit():
    assert metrics.convergence_step([0.1, 0.7, 0.8], [10, 20, 30], 0.7, "max") == 20
    assert metrics.convergence_step([0.1, 0.6], [10, 20], 0.7, "max") is None
    assert metrics.convergence_step([9.0, 4.0, 3.0], [1, 2, 3], 4.0, "min") == 2
    assert metrics.convergence_step([math.nan, 0.9], [1, 2], 0.5, "max") == 2


def test_convergence_steps_as_in_arc_section_4():
    # Three runs: the threshold is 0.7 (the worst of 0.9, 0.7, 0.8).
    runs = [([100, 200, 300], [0.5, 0.9, 0.9]), ([100, 200, 300], [0.6, 0.7, 0.65]),
            ([100, 200, 300], [0.71, 0.75, 0.8])]
    threshold, steps = metrics.convergence_steps(runs)
    assert threshold == 0.7
    assert steps == [200, 200, 100]


def test_weighted_accuracy_eq1():
    # Perfect predictions score 1; a confusion of raise<->lower is penalised 3x.
    assert metrics.weighted_accuracy(np.eye(3) * 10) == 1.0
    cm = np.array([[5, 0, 1], [0, 4, 0], [1, 0, 5]])  # rows predicted, cols actual
    expected = (5 * 3 + 4 * 1 + 5 * 3) / (5 * 3 + 4 * 1 + 5 * 3 + 1 * 3 + 1 * 3)
    assert metrics.weighted_accuracy(cm) == pytest.approx(expected)
    cm_keep = np.array([[5, 1, 0], [0, 4, 0], [0, 0, 5]])  # a wrong 'raise' where keep was right
    assert metrics.weighted_accuracy(cm_keep) == pytest.approx((15 + 4 + 15) / (15 + 4 + 15 + 1))
    with pytest.raises(ValueError):
        metrics.weighted_accuracy(np.eye(2))


def test_kendall_tau_b():
    assert metrics.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert metrics.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Hand-computed with ties: pairs (1,2):+ (1,3):+ (1,4):+ (2,3):0 in b (2,4):+ (3,4):+
    # concordant-discordant = 5, n_a = 6 pairs untied, n_b = 5 -> 5/sqrt(30)
    assert metrics.kendall_tau([1, 2, 3, 4], [1, 2, 2, 3]) == pytest.approx(5 / math.sqrt(30))
    assert math.isnan(metrics.kendall_tau([1, 1, 1], [1, 2, 3]))


def test_mean_std_and_format():
    m, s, n = metrics.mean_std([1.0, 2.0, 3.0, None, math.nan])
    assert (m, n) == (2.0, 3) and s == pytest.approx(1.0)
    assert metrics.format_mean_std([1.0, 3.0, None], digits=1) == "2.0 ± 1.4 (2/3)"
    assert metrics.format_mean_std([None]) == "—"


def test_paired_bootstrap_interval_brackets_the_difference():
    rng = np.random.default_rng(0)
    target = rng.uniform(size=40)
    good = target + rng.normal(0, 0.01, 40)
    bad = target + rng.normal(0, 0.3, 40)

    def mae(p, t):
        return float(np.mean(np.abs(p - t)))

    d, lo, hi = metrics.paired_bootstrap(mae, good, bad, target, n_boot=500)
    assert lo <= d <= hi < 0  # clearly better: the whole interval is below 0
    d, lo, hi = metrics.paired_bootstrap(metrics.kendall_tau, good, good, target, n_boot=50)
    assert d == lo == hi == 0.0
    with pytest.raises(ValueError):
        metrics.paired_bootstrap(mae, good[:3], bad, target)
