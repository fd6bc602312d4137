"""Metrics the papers report: convergence step, weighted accuracy, Kendall's tau.

numpy and scipy; no Keras. Definitions follow the papers exactly:

* `convergence_step` (ARC, section 4): the threshold is the *worst* of the
  per-run best scores across all runs being compared; a run's convergence step
  is the first step at which its metric reaches that threshold.
* `weighted_accuracy` (ARC, Table 2 and Eq. 1): confusion-matrix accuracy
  weighted by the absolute reward/penalty matrix, so that calling for the wrong
  direction costs more than wrongly keeping the LR.
* `kendall_tau`: Kendall's tau-b (ties handled), as used to compare rankings of
  configurations in the feature-histories thesis (scipy's).

Example:

```python
from keras_autolr.harness import metrics

runs = [([1, 2, 3], [0.5, 0.9, 0.9]), ([1, 2, 3], [0.6, 0.7, 0.65])]
print(metrics.convergence_steps(runs))  # (0.7, [2, 2])
```
"""

import math
import warnings

import numpy as np
from scipy import stats

__all__ = [
    "ARC_REWARD_PENALTY",
    "best_score",
    "convergence_threshold",
    "convergence_step",
    "convergence_steps",
    "weighted_accuracy",
    "kendall_tau",
    "mean_std",
    "format_mean_std",
    "paired_bootstrap",
]

# Rows: predicted, columns: actual, in ARC's class order (0 raise, 1 keep,
# 2 lower). Table 2 of the paper lists the same matrix as decrease, constant,
# increase; it is symmetric under that reordering.
ARC_REWARD_PENALTY = np.array([[3, -1, -3], [-1, 1, -1], [-3, -1, 3]], dtype=float)


def _check_mode(mode):
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}.")


def best_score(values, mode="max"):
    """Best finite value of a curve (NaN when it has none).

    Args:
        values: the metric per evaluation point.
        mode: "max" when higher is better, "min" otherwise.

    Example:

    ```python
    from keras_autolr.harness.metrics import best_score

    print(best_score([3.0, float("nan"), 1.5], mode="min"))  # 1.5
    ```
    """
    _check_mode(mode)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan
    return float(v.max() if mode == "max" else v.min())


def convergence_threshold(curves, mode="max"):
    """The worst of the per-run best scores (ARC section 4).

    Args:
        curves: iterable of metric curves (one per run).
        mode: "max" when higher is better (accuracy), "min" otherwise
            (perplexity, loss).

    Raises:
        ValueError: no run has a finite value.

    Example:

    ```python
    from keras_autolr.harness.metrics import convergence_threshold

    print(convergence_threshold([[0.1, 0.9], [0.2, 0.7]]))  # 0.7: the worse run's best
    ```
    """
    bests = [best_score(c, mode) for c in curves]
    bests = [b for b in bests if math.isfinite(b)]
    if not bests:
        raise ValueError("No run has a finite metric value; no threshold exists.")
    return float(min(bests) if mode == "max" else max(bests))


def convergence_step(values, steps, threshold, mode="max"):
    """First step at which `values` reaches `threshold`, or None if never.

    Args:
        values: metric per evaluation point.
        steps: training step of each evaluation point (same length).
        threshold: from `convergence_threshold`.
        mode: "max" (reach means >=) or "min" (reach means <=).

    Example:

    ```python
    from keras_autolr.harness.metrics import convergence_step

    print(convergence_step([0.1, 0.7, 0.8], [100, 200, 300], 0.7))  # 200
    ```
    """
    _check_mode(mode)
    values = np.asarray(values, dtype=float)
    steps = np.asarray(steps)
    if values.shape != steps.shape:
        raise ValueError(f"values {values.shape} and steps {steps.shape} differ in shape.")
    hit = values >= threshold if mode == "max" else values <= threshold
    hit &= np.isfinite(values)
    idx = np.flatnonzero(hit)
    return int(steps[idx[0]]) if idx.size else None


def convergence_steps(runs, mode="max"):
    """Convergence steps of several runs against their common threshold.

    Args:
        runs: list of `(steps, values)` pairs, all the runs compared together
            (every method and seed at one initial LR, as in the paper).
        mode: "max" or "min".

    Returns:
        `(threshold, [step or None per run])`.

    Example:

    ```python
    from keras_autolr.harness.metrics import convergence_steps

    runs = [([10, 20], [0.5, 0.9]), ([10, 20], [0.8, 0.7])]
    print(convergence_steps(runs))  # (0.8, [20, 10])
    ```
    """
    threshold = convergence_threshold([v for _, v in runs], mode)
    return threshold, [convergence_step(v, s, threshold, mode) for s, v in runs]


def weighted_accuracy(confusion, reward_penalty=ARC_REWARD_PENALTY):
    """ARC Eq. 1: sum_i CM[i,i]|RPM[i,i]| / sum_ij CM[i,j]|RPM[i,j]|.

    Args:
        confusion: square confusion matrix (rows predicted, columns actual,
            or the transpose: |RPM| is symmetric so the result is the same).
        reward_penalty: the reward/penalty matrix (ARC's Table 2 by default).

    Returns:
        The weighted accuracy in [0, 1] (NaN for an empty matrix).

    Example:

    ```python
    import numpy as np
    from keras_autolr.harness.metrics import weighted_accuracy

    cm = np.array([[5, 0, 1], [0, 4, 0], [1, 0, 5]])  # two raise <-> lower mistakes
    print(weighted_accuracy(cm))  # 0.85, below the plain 14 / 16 = 0.875
    ```
    """
    cm = np.asarray(confusion, dtype=float)
    w = np.abs(np.asarray(reward_penalty, dtype=float))
    if cm.shape != w.shape:
        raise ValueError(f"confusion matrix shape {cm.shape} != reward matrix {w.shape}.")
    total = float((cm * w).sum())
    if total == 0:
        return math.nan
    return float((np.diag(cm) * np.diag(w)).sum() / total)


def kendall_tau(a, b):
    """Kendall's tau-b between two equally long sequences (`scipy.stats.kendalltau`).

    Tau-b, (concordant - discordant) / sqrt(untied pairs in a * untied pairs
    in b), is the variant the feature-histories thesis uses to compare
    rankings of configurations, and scipy's default.

    Args:
        a: 1-D sequence of numbers (for example predicted accuracies).
        b: 1-D sequence of the same length (for example final accuracies).

    Returns:
        The coefficient in [-1, 1]; NaN when either sequence is constant or
        shorter than 2.

    Example:

    ```python
    from keras_autolr.harness.metrics import kendall_tau

    print(kendall_tau([0.1, 0.4, 0.3, 0.9], [0.2, 0.5, 0.6, 0.8]))  # 0.667: one pair swapped
    ```
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("kendall_tau needs two 1-D sequences of equal length.")
    if a.size < 2:
        return math.nan
    return float(stats.kendalltau(a, b, variant="b").statistic)


def paired_bootstrap(statistic, a, b, target, n_boot=2000, level=0.90, seed=0):
    """Confidence interval of `statistic(a, target) - statistic(b, target)`.

    Resamples the items (e.g. configurations) with replacement, keeping each
    item's a, b and target together (`scipy.stats.bootstrap(...,
    paired=True)`, percentile method), so the interval reflects how much the
    comparison of two predictors of `target` could move with other items.
    Resamples whose statistic is NaN (a constant resample for Kendall's tau)
    are left out of the percentiles rather than making the interval NaN.

    Args:
        statistic: `f(predictor, target) -> float`, e.g. `kendall_tau` or a
            mean absolute error.
        a: 1-D predictions of the first predictor.
        b: 1-D predictions of the second predictor (same length).
        target: 1-D values both predict (same length, at least 2).
        n_boot: number of resamples.
        level: confidence level of the two-sided percentile interval.
        seed: seed of the resampling (`numpy.random.default_rng`).

    Returns:
        `(difference on all items, low, high)`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.harness.metrics import kendall_tau, paired_bootstrap

    rng = np.random.default_rng(0)
    final = rng.uniform(size=30)
    proxy, latest = final + rng.normal(0, 0.05, 30), final + rng.normal(0, 0.3, 30)
    d, low, high = paired_bootstrap(kendall_tau, proxy, latest, final, n_boot=200)
    print(f"tau(proxy) - tau(latest) = {d:.2f}, 90% CI [{low:.2f}, {high:.2f}]")
    ```
    """
    a, b, target = (np.asarray(v, dtype=float) for v in (a, b, target))
    if not a.shape == b.shape == target.shape or a.ndim != 1 or a.size < 2:
        raise ValueError("paired_bootstrap needs three 1-D sequences of equal length >= 2.")

    def diff(a_, b_, t_):
        return statistic(a_, t_) - statistic(b_, t_)

    with warnings.catch_warnings():
        # A NaN resample makes scipy's interval NaN (and warn); we then skip those resamples.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap((a, b, target), diff, paired=True, vectorized=False, n_resamples=int(n_boot),
                              confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
    low, high = res.confidence_interval
    if not (np.isfinite(low) and np.isfinite(high)):
        tail = 100 * (1 - level) / 2
        low, high = np.nanpercentile(res.bootstrap_distribution, [tail, 100 - tail])
    return float(diff(a, b, target)), float(low), float(high)


def mean_std(values):
    """Mean and sample standard deviation (ddof=1; 0 for one value) of finite values.

    Args:
        values: numbers; None and non-finite ones are left out.

    Returns:
        `(mean, std, n)`; `(nan, nan, 0)` when nothing is finite.

    Example:

    ```python
    from keras_autolr.harness.metrics import mean_std

    print(mean_std([1.0, 3.0, None]))  # (2.0, 1.414..., 2)
    ```
    """
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean()), std, int(v.size)


def format_mean_std(values, digits=4, scale=1.0):
    """'mean ± std' text as in the papers' tables; notes runs that never got there.

    Args:
        values: numbers or None (a run that never reached the threshold).
        digits: decimals.
        scale: factor applied first (e.g. 100 for percentages).

    Example:

    ```python
    from keras_autolr.harness.metrics import format_mean_std

    print(format_mean_std([0.91, 0.93, None], digits=1, scale=100))  # 92.0 ± 1.4 (2/3)
    ```
    """
    vals = list(values)
    m, s, n = mean_std([None if x is None else x * scale for x in vals])
    if n == 0:
        return "—"
    text = f"{m:.{digits}f} ± {s:.{digits}f}"
    if n < len(vals):
        text += f" ({n}/{len(vals)})"
    return text
