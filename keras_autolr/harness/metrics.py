"""Metrics the papers report: convergence step, weighted accuracy, Kendall's tau.

Pure numpy; no Keras. Definitions follow the papers exactly:

* `convergence_step` (ARC, section 4): the threshold is the *worst* of the
  per-run best scores across all runs being compared; a run's convergence step
  is the first step at which its metric reaches that threshold.
* `weighted_accuracy` (ARC, Table 2 and Eq. 1): confusion-matrix accuracy
  weighted by the absolute reward/penalty matrix, so that calling for the wrong
  direction costs more than wrongly keeping the LR.
* `kendall_tau`: Kendall's tau-b (ties handled), as used to compare rankings of
  configurations in the feature-histories thesis.
"""

import math

import numpy as np

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
    """Best finite value of a curve (NaN when it has none)."""
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

    Returns:
        `(threshold, [step or None per run])`.
    """
    threshold = convergence_threshold([v for _, v in runs], mode)
    return threshold, [convergence_step(v, s, threshold, mode) for s, v in runs]


def weighted_accuracy(confusion, reward_penalty=ARC_REWARD_PENALTY):
    """ARC Eq. 1: sum_i CM[i,i]|RPM[i,i]| / sum_ij CM[i,j]|RPM[i,j]|.

    Args:
        confusion: square confusion matrix (rows predicted, columns actual,
            or the transpose: |RPM| is symmetric so the result is the same).
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
    """Kendall's tau-b between two equally long sequences (ties handled).

    Returns NaN when either sequence is constant.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("kendall_tau needs two 1-D sequences of equal length.")
    n = a.size
    if n < 2:
        return math.nan
    i, j = np.triu_indices(n, k=1)
    da = np.sign(a[i] - a[j])
    db = np.sign(b[i] - b[j])
    concordant_minus_discordant = float((da * db).sum())
    n_a = float((da != 0).sum())
    n_b = float((db != 0).sum())
    if n_a == 0 or n_b == 0:
        return math.nan
    return concordant_minus_discordant / math.sqrt(n_a * n_b)


def paired_bootstrap(statistic, a, b, target, n_boot=2000, level=0.90, seed=0):
    """Confidence interval of `statistic(a, target) - statistic(b, target)`.

    Resamples the items (e.g. configurations) with replacement, keeping each
    item's a, b and target together, so the interval reflects how much the
    comparison of two predictors of `target` could move with other items.

    Returns `(difference on all items, low, high)` (percentile interval at
    `level`; NaN resamples, e.g. a constant resample for Kendall's tau, are
    skipped).
    """
    a, b, target = (np.asarray(v, dtype=float) for v in (a, b, target))
    if not a.shape == b.shape == target.shape or a.ndim != 1 or a.size < 2:
        raise ValueError("paired_bootstrap needs three 1-D sequences of equal length >= 2.")
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(int(n_boot)):
        i = rng.integers(0, a.size, a.size)
        diffs.append(statistic(a[i], target[i]) - statistic(b[i], target[i]))
    diffs = np.asarray(diffs, dtype=float)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(diffs, [tail, 100 - tail])
    return float(statistic(a, target) - statistic(b, target)), float(low), float(high)


def mean_std(values):
    """Mean and sample standard deviation (ddof=1; 0 for one value) of finite values.

    Returns `(mean, std, n)`; `(nan, nan, 0)` when nothing is finite.
    """
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean()), std, int(v.size)


def format_mean_std(values, digits=4, scale=1.0):
    """'mean ± std' text as in the papers' tables; notes runs that never got there."""
    vals = list(values)
    m, s, n = mean_std([None if x is None else x * scale for x in vals])
    if n == 0:
        return "—"
    text = f"{m:.{digits}f} ± {s:.{digits}f}"
    if n < len(vals):
        text += f" ({n}/{len(vals)})"
    return text
