import math

import numpy as np
import pytest

from keras_autolr.harness import profiles


def test_time_to_target_first_reach_and_never():
    assert profiles.time_to_target([0.1, 0.5, 0.7, 0.6], [1, 2, 3, 4], 0.5) == 2
    assert profiles.time_to_target([0.1, float("nan"), 0.2], [1, 2, 3], 0.5) == math.inf
    assert profiles.time_to_target([9.0, 5.0, 4.0], [1, 2, 3], 5.0, mode="min") == 2
    with pytest.raises(ValueError, match="length"):
        profiles.time_to_target([1.0], [1, 2], 0.5)
    with pytest.raises(ValueError, match="mode"):
        profiles.time_to_target([1.0], [1], 0.5, mode="up")


def test_median_time_needs_most_seeds():
    assert profiles.median_time([1.0, 2.0, math.inf]) == 2.0
    assert profiles.median_time([1.0, math.inf, math.inf]) == math.inf
    assert profiles.median_time([1.0, 3.0]) == 2.0
    assert profiles.median_time([]) == math.inf


def test_profile_and_score_match_a_hand_computation():
    # Three workloads: a is fastest on w1, w2; b on w3; c solves only w1 at 4x.
    times = {
        "a": {"w1": 10.0, "w2": 20.0, "w3": 60.0},
        "b": {"w1": 20.0, "w2": 50.0, "w3": 30.0},
        "c": {"w1": 40.0, "w2": math.inf, "w3": math.inf},
    }
    rho = profiles.performance_profile(times, taus=[1.0, 2.0, 2.5, 4.0])
    assert rho["a"] == pytest.approx([2 / 3, 1.0, 1.0, 1.0])
    assert rho["b"] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert rho["c"] == pytest.approx([0.0, 0.0, 0.0, 1 / 3])
    s = profiles.benchmark_scores(times, num_points=30001)
    # Exact areas on [1, 4] divided by 3: a = (2/3 * 1 + 1 * 2) / 3; b = (1/3*1 + 2/3*0.5 + 1*1.5) / 3.
    assert s["a"] == pytest.approx((2 / 3 + 2) / 3, abs=1e-3)
    assert s["b"] == pytest.approx((1 / 3 + 1 / 3 + 1.5) / 3, abs=1e-3)
    assert s["c"] == pytest.approx(0.0, abs=1e-3)


def test_unsolved_workload_counts_against_everyone():
    times = {"a": {"w1": 1.0, "w2": math.inf}, "b": {"w1": 2.0}}
    rho = profiles.performance_profile(times, taus=[4.0])
    assert rho == {"a": [0.5], "b": [0.5]}


def test_method_times_from_records():
    recs = [
        {"method": "m", "workload": "w", "seconds_to_target": 4.0, "steps_to_target": 40},
        {"method": "m", "workload": "w", "seconds_to_target": 2.0, "steps_to_target": 20},
        {"method": "m", "workload": "w", "seconds_to_target": None, "steps_to_target": None},
    ]
    assert profiles.method_times(recs) == {"m": {"w": 4.0}}
    assert profiles.method_times(recs, key="steps_to_target") == {"m": {"w": 40.0}}


def test_scores_are_bounded_and_reject_bad_tau():
    rng = np.random.default_rng(0)
    times = {f"m{i}": {f"w{j}": float(rng.uniform(1, 10)) for j in range(5)} for i in range(4)}
    for v in profiles.benchmark_scores(times).values():
        assert 0.0 <= v <= 1.0
    with pytest.raises(ValueError, match="max_tau"):
        profiles.benchmark_scores(times, max_tau=1.0)
