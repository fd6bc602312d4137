"""AlgoPerf-style scoring: time to target, performance profiles, the benchmark score.

Pure functions over run records that reproduce AlgoPerf's scoring (Dahl et al.
2023, "Benchmarking Neural Network Training Algorithms"; the code is
`scoring/performance_profile.py` and `scoring/score_submissions.py` of
mlcommons/algorithmic-efficiency, the rules `docs/DOCUMENTATION.md`,
"Scoring"). `tests/harness/test_profiles.py` checks them numerically against a
transcription of that code.

* a run's *time to target* is the time (step or second) of the first
  evaluation whose validation metric reaches the target (`>=` for a metric to
  maximize, `<=` to minimize); infinite when none does (`get_best_trial_index`);
* a method's time on a workload is the median over its seeds, AlgoPerf's
  `np.median` over studies: infinite unless more than half of the seeds reached
  the target (`get_workloads_time_to_target`);
* a time more than 4x the fastest method's on that workload is set to
  infinite (AlgoPerf's "within 4x of the fastest" rule, tested as
  `t > 4 * t_best` exactly as they do), then each time is divided by the
  fastest: r = t / t_best; r is infinite for a method that missed, and on a
  workload no method solved every method misses;
* the *performance profile* of a method is rho(tau) = the fraction of
  workloads with r <= tau; a workload a method was not run on counts as missed;
* the *benchmark score* is the area under rho on tau in [1, max_tau]
  (`np.trapezoid` on `num_points` linearly spaced points) divided by
  `max_tau - 1`, so 1.0 means fastest everywhere and 0.0 means never within 4x
  of the fastest. AlgoPerf scores with max_tau = 4 and 100 points
  (`score_submissions.py`: `compute_performance_profiles(min_tau=1.0,
  max_tau=4.0, num_points=100, scale='linear')`, then
  `compute_leaderboard_score(normalize=True)`); those are the defaults here.

Where this module deliberately differs from AlgoPerf's code, and why:

* one run per seed: the leaderboard scores AlgoPerf's self-tuning ruleset
  (one trial per study), so there is no external-tuning step taking the
  fastest of several trials within a study; `method_times` takes the median
  over every record of a (method, workload);
* no held-out workload variants (AlgoPerf makes a fixed workload's time
  infinite when its variant misses): the leaderboard has no variants (its
  `@lr/10`-style entries are separate methods, not workload variants);
* rho's denominator is the number of workloads any method was run on, not a
  hard-coded count (AlgoPerf's `NUM_BASE_WORKLOADS = 8`); the same whenever the
  grid is complete, and no check that each workload has exactly 5 seeds
  (AlgoPerf's `strict` mode);
* a non-finite metric value never counts as reaching the target; AlgoPerf's
  comparison would count an infinite value (e.g. a loss of `-inf` under a
  minimized metric) as reached, which here is a numerical failure;
* a NaN time is treated as a miss (AlgoPerf never produces one).

Example:

```python
from keras_autolr.harness import profiles

times = {"adam": {"w1": 10.0, "w2": 30.0}, "sgd": {"w1": 20.0, "w2": float("inf")}}
rho = profiles.performance_profile(times, taus=[1.0, 2.0, 4.0])
assert rho["adam"] == [1.0, 1.0, 1.0] and rho["sgd"] == [0.0, 0.5, 0.5]
scores = profiles.benchmark_scores(times)
assert scores["adam"] == 1.0 and 0.3 < scores["sgd"] < 0.5
```
"""

import math

import numpy as np
from scipy import stats

__all__ = [
    "time_to_target",
    "median_time",
    "method_times",
    "performance_profile",
    "benchmark_scores",
    "mean_ranks",
    "MAX_TAU",
]

MAX_TAU = 4.0  # AlgoPerf's r_max: no credit beyond 4x the fastest, and the profile's upper end

# numpy 2 renamed trapz; both give the same numbers.
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def time_to_target(values, times, target, mode="max"):
    """The first time at which a metric curve reaches its target.

    Args:
        values: the metric after each evaluation (e.g. validation accuracy per epoch).
        times: the time of each evaluation, same length (steps or seconds, cumulative).
        target: the value to reach.
        mode: "max" (higher is better: reached when value >= target) or "min".

    Returns:
        The time of the first evaluation that reaches `target`, or `math.inf`
        when none does. Non-finite values never count as reached.

    Example:

    ```python
    from keras_autolr.harness.profiles import time_to_target

    assert time_to_target([0.5, 0.8, 0.9], [10, 20, 30], 0.8) == 20
    assert time_to_target([3.0, 2.0], [1, 2], 1.0, mode="min") == float("inf")
    ```
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}.")
    if len(values) != len(times):
        raise ValueError(f"values and times differ in length ({len(values)} vs {len(times)}).")
    for v, t in zip(values, times):
        if v is None or not math.isfinite(v):
            continue
        if (v >= target) if mode == "max" else (v <= target):
            return float(t)
    return math.inf


def median_time(times):
    """A method's time on one workload from its seeds' times: the median, inf unless most reached.

    Args:
        times: one time to target per seed (`math.inf` or NaN for a seed that missed).

    Returns:
        The median over seeds, as `np.median` gives it (AlgoPerf's median over
        studies): infinite when half or more of the seeds missed, since the
        mean of a finite middle value and an infinite one is infinite; so a
        method must reach the target on most seeds. Infinite for no seeds.

    Example:

    ```python
    from keras_autolr.harness.profiles import median_time

    assert median_time([3.0, 1.0, 2.0]) == 2.0
    assert median_time([1.0, float("inf")]) == float("inf")
    ```
    """
    times = sorted(math.inf if math.isnan(float(t)) else float(t) for t in times)
    if not times:
        return math.inf
    n = len(times)
    if n % 2:
        return times[n // 2]
    lo, hi = times[n // 2 - 1], times[n // 2]
    return math.inf if math.isinf(hi) else (lo + hi) / 2


def method_times(records, key="seconds_to_target"):
    """Per-method, per-workload median times from leaderboard run records.

    Args:
        records: dicts with at least `method`, `workload` and `key` (None or
            missing means the target was not reached).
        key: which time to use: "seconds_to_target" or "steps_to_target".

    Returns:
        `{method: {workload: median time}}`.

    Example:

    ```python
    from keras_autolr.harness.profiles import method_times

    recs = [{"method": "a", "workload": "w", "seconds_to_target": s} for s in (1.0, 3.0, None)]
    assert method_times(recs) == {"a": {"w": 3.0}}
    ```
    """
    grouped = {}
    for r in records:
        t = r.get(key)
        t = math.inf if t is None else float(t)
        grouped.setdefault(r["method"], {}).setdefault(r["workload"], []).append(t)
    return {m: {w: median_time(ts) for w, ts in ws.items()} for m, ws in grouped.items()}


def _ratio(t, best):
    # Not reached, or AlgoPerf's 4x rule, compared as they do (t > 4 * best, not
    # t / best > 4: the two can round differently at the boundary). When no
    # method solved the workload, best is inf and t is too.
    if not math.isfinite(t) or t > MAX_TAU * best:
        return math.inf
    # best == 0 leaves t == 0 here; AlgoPerf keeps that 0 (0/0 is NaN, which
    # `DataFrame.update` skips), i.e. full credit, as 1.0 does.
    return 1.0 if best == 0 else t / best


def _ratios(times):
    workloads = sorted({w for ws in times.values() for w in ws})
    if not workloads:
        raise ValueError("No workloads in the times given.")
    best = {}
    for w in workloads:
        finite = [ws[w] for ws in times.values() if math.isfinite(ws.get(w, math.inf))]
        best[w] = min(finite) if finite else math.inf
    ratios = {}
    for m, ws in times.items():
        ratios[m] = np.array([_ratio(ws.get(w, math.inf), best[w]) for w in workloads], dtype=float)
    return ratios, workloads


def performance_profile(times, taus):
    """rho(tau) of each method: the fraction of workloads within tau of the fastest.

    Args:
        times: `{method: {workload: time}}` (from `method_times`); a missing
            workload counts as not reached.
        taus: the ratios at which to evaluate the profile.

    Returns:
        `{method: [rho(tau) for tau in taus]}`; the denominator is the number of
        workloads any method was run on. Flat beyond tau = 4: a time over 4x
        the fastest counts as a miss (AlgoPerf's rule).

    Example:

    ```python
    from keras_autolr.harness.profiles import performance_profile

    rho = performance_profile({"a": {"w": 1.0}, "b": {"w": 3.0}}, taus=[1, 3])
    assert rho == {"a": [1.0, 1.0], "b": [0.0, 1.0]}
    ```
    """
    ratios, workloads = _ratios(times)
    n = len(workloads)
    return {m: [float((r <= tau).sum() / n) for tau in taus] for m, r in ratios.items()}


def benchmark_scores(times, max_tau=MAX_TAU, num_points=100):
    """AlgoPerf's benchmark score of each method: the normalized area under its profile.

    Args:
        times: `{method: {workload: time}}`.
        max_tau: the upper end of the integral (AlgoPerf: 4).
        num_points: points of the trapezoidal rule on [1, max_tau] (AlgoPerf:
            100; more points approach the exact integral of the step function,
            which the AlgoPerf paper defines and its code approximates).

    Returns:
        `{method: score}` with scores in [0, 1].

    Example:

    ```python
    from keras_autolr.harness.profiles import benchmark_scores

    s = benchmark_scores({"a": {"w": 1.0}, "b": {"w": 2.5}}, max_tau=4.0)
    assert s["a"] == 1.0 and abs(s["b"] - 0.5) < 1e-2
    ```
    """
    if max_tau <= 1:
        raise ValueError(f"max_tau must be above 1, got {max_tau}.")
    taus = np.linspace(1.0, max_tau, num_points)
    rho = performance_profile(times, taus)
    return {m: float(_trapezoid(r, taus) / (max_tau - 1.0)) for m, r in rho.items()}


def mean_ranks(best, modes):
    """Each method's rank by best metric, averaged over workloads (1 = best everywhere).

    Not part of AlgoPerf's score: a second measure for the methods the score
    cannot tell apart, those that reach few targets (it is 0 for every method
    that reaches none). On each workload the methods are ranked by their best
    metric (ties share the average rank, as in a Friedman test); a method
    without a value there (it failed, or was not run) shares the last place.

    Args:
        best: `{method: {workload: best metric}}` (None or NaN: no value).
        modes: `{workload: "max" or "min"}`, the direction of each metric.

    Returns:
        `{method: mean rank}` over the workloads in `modes`.

    Example:

    ```python
    from keras_autolr.harness.profiles import mean_ranks

    best = {"a": {"acc": 0.9, "mse": 0.1}, "b": {"acc": 0.8, "mse": 0.1}, "c": {"acc": None, "mse": 0.3}}
    print(mean_ranks(best, {"acc": "max", "mse": "min"}))  # {'a': 1.25, 'b': 1.75, 'c': 3.0}
    ```
    """
    methods = sorted(best)
    if not methods or not modes:
        raise ValueError("mean_ranks needs at least one method and one workload.")
    total = dict.fromkeys(methods, 0.0)
    for w, mode in modes.items():
        if mode not in ("max", "min"):
            raise ValueError(f"The mode of workload {w!r} must be 'max' or 'min', got {mode!r}.")
        sign = -1.0 if mode == "max" else 1.0
        # Missing values rank last: +inf after the sign, so all of them tie there.
        keys = []
        for m in methods:
            v = best[m].get(w)
            keys.append(math.inf if v is None or not math.isfinite(v) else sign * float(v))
        for m, r in zip(methods, stats.rankdata(keys, method="average")):
            total[m] += float(r)
    return {m: total[m] / len(modes) for m in methods}
