"""AlgoPerf-style scoring: time to target, performance profiles, the benchmark score.

Pure functions over run records, as AlgoPerf (Dahl et al. 2023, "Benchmarking
Neural Network Training Algorithms"; `scoring/performance_profile.py` of
mlcommons/algorithmic-efficiency) defines them:

* a run's *time to target* is the first time (step or second) at which its
  validation metric reaches the workload's target; infinite when it never does
  (or diverged);
* a method's time on a workload is the median over its seeds (AlgoPerf takes
  the median over studies), infinite unless most seeds reached the target;
* the *performance profile* of a method is rho(tau) = the fraction of
  workloads on which its time is within tau times the fastest method's time;
* the *benchmark score* is the area under rho on tau in [1, max_tau]
  (trapezoidal rule on `num_points` linearly spaced points), divided by
  `max_tau - 1`, so 1.0 means fastest everywhere and 0.0 means never within
  max_tau of the fastest. AlgoPerf uses max_tau = 4.

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

__all__ = [
    "time_to_target",
    "median_time",
    "method_times",
    "performance_profile",
    "benchmark_scores",
    "MAX_TAU",
]

MAX_TAU = 4.0

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
        times: one time to target per seed (`math.inf` for a seed that missed).

    Returns:
        The median over seeds: infinite when half or more of the seeds missed
        (the median of a list with as many infinities as finite values is
        taken as infinite, so a method must reach the target on most seeds).

    Example:

    ```python
    from keras_autolr.harness.profiles import median_time

    assert median_time([3.0, 1.0, 2.0]) == 2.0
    assert median_time([1.0, float("inf")]) == float("inf")
    ```
    """
    times = sorted(float(t) for t in times)
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
    if not (math.isfinite(t) and math.isfinite(best)):
        return math.inf  # not reached (a workload no method solved counts against everyone)
    return 1.0 if t <= best else t / best


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
        workloads any method was run on.

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


def benchmark_scores(times, max_tau=MAX_TAU, num_points=1000):
    """AlgoPerf's benchmark score of each method: the normalized area under its profile.

    Args:
        times: `{method: {workload: time}}`.
        max_tau: the largest ratio that still earns credit (AlgoPerf: 4).
        num_points: points of the trapezoidal rule on [1, max_tau].

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
