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


def test_kendall_tau_is_scipys_tau_b():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 30).astype(float)  # many ties
    assert metrics.kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b, variant="b").statistic, abs=1e-12)
    assert math.isnan(metrics.kendall_tau([1.0], [2.0]))


# Intervals of the hand-written bootstrap this replaced (numpy default_rng(0),
# percentile method), on the fixed examples below.
OLD_MAE = (-0.2285759941355953, -0.2673766834733092, -0.19103615134018506)
OLD_TAU = (0.4256410256410257, 0.31313731931668853, 0.5461741424802111)


def _endpoint_tolerance(se, n_boot, level=0.90):
    # Monte-Carlo s.d. of a bootstrap percentile endpoint (near-normal distribution):
    # se * sqrt(p (1 - p)) / (phi(z_p) sqrt(B)) = 2.12 se / sqrt(B) for p = 0.05; allow 4 of them.
    p = (1 - level) / 2
    z = 1.6448536269514722
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return 4 * se * math.sqrt(p * (1 - p)) / (phi * math.sqrt(n_boot))


def test_paired_bootstrap_matches_the_old_intervals():
    rng = np.random.default_rng(0)
    target = rng.uniform(size=40)
    good = target + rng.normal(0, 0.01, 40)
    bad = target + rng.normal(0, 0.3, 40)

    def mae(p, t):
        return float(np.mean(np.abs(p - t)))

    # se: standard deviation of each bootstrap distribution (0.0237 and 0.0712).
    for stat, old, se in ((mae, OLD_MAE, 0.0237), (metrics.kendall_tau, OLD_TAU, 0.0712)):
        d, lo, hi = metrics.paired_bootstrap(stat, good, bad, target, n_boot=2000)
        assert d == pytest.approx(old[0], abs=1e-12)  # no resampling in the point estimate
        tol = _endpoint_tolerance(se, 2000)
        assert lo == pytest.approx(old[1], abs=tol) and hi == pytest.approx(old[2], abs=tol)


def test_paired_bootstrap_skips_nan_resamples():
    # 4 items: some resamples repeat one item only, where Kendall's tau is NaN.
    t, a, b = np.arange(4.0), np.array([0.0, 1, 3, 2]), np.array([1.0, 0, 3, 2])
    d, lo, hi = metrics.paired_bootstrap(metrics.kendall_tau, a, b, t, n_boot=300)
    assert d == pytest.approx(1 / 3)
    assert (lo, hi) == pytest.approx((0.0, 0.8))  # the old implementation's interval, finite
