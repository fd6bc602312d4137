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


# --- AlgoPerf's own scoring, transcribed as the reference ----------------------
# Transcribed (Apache-2.0) from mlcommons/algorithmic-efficiency:
# scoring/performance_profile.py `get_best_trial_index` (first eval reaching the
# target), `get_workloads_time_to_target` (np.median over studies),
# `compute_performance_profiles` (4x rule, divide by the per-workload min,
# rho = count(r <= tau) / NUM_BASE_WORKLOADS) and scoring/score_submissions.py
# `compute_leaderboard_score(normalize=True)`, with the arguments
# score_submissions.main passes (min_tau=1, max_tau=4, num_points=100, linear).
# pandas is replaced by numpy with pandas' semantics: DataFrame.min skips NaN
# (a workload a submission lacks), and DataFrame.update ignores the NaN results
# of the division (inf / inf, 0 / 0), keeping the old value. One trial per study
# (the self-tuning ruleset), so the best trial of a study is its only trial.
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def _algoperf_study_time(values, times, target, minimize):
    reached = np.asarray(values) <= target if minimize else np.asarray(values) >= target
    return float(np.asarray(times)[np.argmax(reached)]) if reached.any() else np.inf


def _algoperf(curves, workloads, target, minimize):
    subs = sorted(curves)
    df = np.full((len(subs), len(workloads)), np.nan)
    for i, s in enumerate(subs):
        for j, w in enumerate(workloads):
            if w in curves[s]:
                df[i, j] = np.median([_algoperf_study_time(v, t, target, minimize) for v, t in curves[s][w]])
    best = np.nanmin(df, axis=0)
    df[df > 4 * best] = np.inf
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = df / best
    df = np.where(np.isnan(ratio), df, ratio)
    points = np.linspace(1.0, 4.0, num=100)
    perf = np.stack([(df <= tau).sum(axis=1) / len(workloads) for tau in points], axis=1)
    scores = _trapezoid(perf, x=points) / (points.max() - points.min())
    return points, dict(zip(subs, perf)), dict(zip(subs, scores))


def _curves(rng):
    """Eval curves {method: {workload: [(values, times) per seed]}} with the cases that matter."""
    methods, workloads, target = [f"m{i}" for i in range(5)], [f"w{j}" for j in range(6)], 0.9
    scale = {"m0": 1.0, "m1": 1.0, "m2": 1.5, "m3": 2.5, "m4": 3.0}
    curves = {m: {} for m in methods}
    for m in methods:
        for w in workloads:
            if m == "m4" and w == "w3":
                continue  # never run: counts as missed
            runs = []
            for seed in range(4 if m == "m2" else 3):
                times = np.cumsum(rng.uniform(0.5, 1.5, 8)) * scale[m] * (6.0 if (m, w) == ("m3", "w4") else 1.0)
                hit = 99 if w == "w5" else int(rng.integers(0, 10))  # >= 8: never reaches; w5: nobody does
                if (m, w) == ("m2", "w1"):
                    hit = (1, 2, 99, 99)[seed]  # half the seeds miss: the median is inf
                values = np.where(np.arange(8) < hit, rng.uniform(0.3, 0.89, 8), rng.uniform(0.9, 1.0, 8))
                if hit < 8:
                    values[hit] = target  # exactly at the target counts (>=)
                values[0] = np.nan if hit > 0 else values[0]  # a NaN eval never counts
                runs.append((values, times))
            curves[m][w] = runs
    for w in ("w0", "w2"):
        curves["m1"][w] = [(v.copy(), t.copy()) for v, t in curves["m0"][w]]  # ties with m0
    return curves, workloads, target


@pytest.mark.parametrize("minimize", [False, True])
def test_profiles_and_scores_match_algoperf_reference(minimize):
    curves, workloads, target = _curves(np.random.default_rng(7))
    sign = -1.0 if minimize else 1.0  # the same curves as a metric to minimize
    curves = {m: {w: [(sign * v, t) for v, t in rs] for w, rs in ws.items()} for m, ws in curves.items()}
    points, ref_rho, ref_scores = _algoperf(curves, workloads, sign * target, minimize)

    mode = "min" if minimize else "max"
    records = []
    for m, ws in curves.items():
        for w, runs in ws.items():
            for seed, (values, times) in enumerate(runs):
                t = profiles.time_to_target(list(values), list(times), sign * target, mode=mode)
                records.append({"method": m, "workload": w, "seed": seed,
                                "seconds_to_target": t if math.isfinite(t) else None})
    times = profiles.method_times(records)
    rho = profiles.performance_profile(times, points)
    scores = profiles.benchmark_scores(times)  # defaults: AlgoPerf's max_tau=4, 100 points

    assert set(rho) == set(ref_rho) == set(scores)
    for m in ref_rho:
        np.testing.assert_allclose(rho[m], ref_rho[m], rtol=0, atol=1e-9)
        assert scores[m] == pytest.approx(ref_scores[m], abs=1e-9)
    # The example exercises what it should: a tie, an unsolved workload, a 4x cut-off, a miss by median.
    assert rho["m0"][0] > 0 and times["m0"]["w0"] == times["m1"]["w0"]
    assert all(math.isinf(ws["w5"]) for ws in times.values())
    assert math.isinf(times["m2"]["w1"])
    assert times["m3"]["w4"] > 4 * min(ws.get("w4", math.inf) for ws in times.values())
    assert len({round(v, 6) for v in ref_scores.values()}) == len(ref_scores)
    assert 0.0 < min(ref_scores.values()) and max(ref_scores.values()) < 1.0


def test_intended_difference_infinite_metric_never_reaches():
    # AlgoPerf's comparison counts an infinite metric value as reaching the target;
    # ours treats it as a numerical failure (see the module docstring).
    assert _algoperf_study_time([np.inf, 0.95], [1.0, 2.0], 0.9, minimize=False) == 1.0
    assert profiles.time_to_target([math.inf, 0.95], [1.0, 2.0], 0.9) == 2.0
    assert _algoperf_study_time([-np.inf], [1.0], 0.1, minimize=True) == 1.0
    assert profiles.time_to_target([-math.inf], [1.0], 0.1, mode="min") == math.inf


def test_four_x_rule_makes_the_profile_flat_beyond_four():
    times = {"a": {"w": 1.0}, "b": {"w": 4.0}, "c": {"w": 4.000001}}
    rho = profiles.performance_profile(times, taus=[4.0, 10.0])
    assert rho == {"a": [1.0, 1.0], "b": [1.0, 1.0], "c": [0.0, 0.0]}
    # max_tau beyond 4 only widens the integral: c still earns nothing, b's credit is diluted.
    s = profiles.benchmark_scores(times, max_tau=8.0, num_points=7001)
    assert s["c"] == 0.0 and s["b"] == pytest.approx((8.0 - 4.0) / 7.0, abs=1e-3)


def test_zero_fastest_time_gives_full_credit_not_a_crash():
    times = {"a": {"w": 0.0}, "b": {"w": 0.0}, "c": {"w": 1.0}}
    rho = profiles.performance_profile(times, taus=[1.0, 4.0])
    assert rho == {"a": [1.0, 1.0], "b": [1.0, 1.0], "c": [0.0, 0.0]}


def test_median_time_counts_nan_as_a_miss():
    assert profiles.median_time([1.0, float("nan"), 2.0]) == 2.0
    assert profiles.median_time([1.0, float("nan")]) == math.inf


def test_mean_ranks_average_ties_missing_last_and_metric_direction():
    """Ranks per workload by best metric (max or min), ties averaged, missing values tied last."""
    best = {"a": {"acc": 0.9, "ppl": 10.0, "mse": float("nan")},
            "b": {"acc": 0.9, "ppl": 12.0, "mse": 0.2},
            "c": {"acc": 0.5, "mse": 0.1},  # never ran ppl
            "d": {"acc": None, "ppl": 11.0, "mse": 0.3}}
    ranks = profiles.mean_ranks(best, {"acc": "max", "ppl": "min", "mse": "min"})
    # acc: a, b tie (1.5), c 3, d 4; ppl: a 1, d 2, b 3, c 4; mse: c 1, b 2, d 3, a 4
    assert ranks == {"a": (1.5 + 1 + 4) / 3, "b": (1.5 + 3 + 2) / 3, "c": (3 + 4 + 1) / 3, "d": (4 + 2 + 3) / 3}
    with pytest.raises(ValueError, match="'max' or 'min'"):
        profiles.mean_ranks(best, {"acc": "up"})
