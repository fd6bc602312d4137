"""Candidate learning-rate lists for micro cross-validation (MCV).

The thesis (Algorithm 8) rebuilds the list every epoch around the current LR:
`[5, 2, 4/3, 1, 3/4, 1/2, 1/5] x lr`. MCV-lr-voting (Algorithm 4) instead uses a
fixed list, typically `{0.1, 0.01, 0.001, 0.0001}`.

Lists are validated here once, so the compiled train step never sees a
non-positive or non-finite LR.

Example:

```python
from keras_autolr.runtime.mcv.candidates import candidate_list, pad_candidates

candidate_list(0.01)
# array([0.05, 0.02, 0.01333, 0.01, 0.0075, 0.005, 0.002])
padded, mask = pad_candidates([0.1, 0.01, 0.001, 0.0001], size=7)
```
"""

import math

import numpy as np

__all__ = [
    "FACTORS",
    "THESIS_LR_LIST",
    "CandidateError",
    "validate_candidates",
    "candidate_list",
    "pad_candidates",
]

#: Multipliers of the current LR tried every step (thesis, Section 3.2).
FACTORS = (5.0, 2.0, 4.0 / 3.0, 1.0, 3.0 / 4.0, 1.0 / 2.0, 1.0 / 5.0)

#: The thesis's initial / voting list.
THESIS_LR_LIST = (0.1, 0.01, 0.001, 0.0001)


class CandidateError(ValueError):
    """Raised for an unusable candidate list."""


def validate_candidates(values, what="candidate learning rates"):
    """Returns `values` as a float64 array, or raises `CandidateError`.

    Every entry must be a finite positive number and the list non-empty.

    Args:
        values: a number or a sequence of numbers.
        what: what the values are, for the error message.

    Raises:
        CandidateError: an empty list, a non-number, or an entry that is not
            finite and positive.

    Example:

    ```python
    from keras_autolr.runtime.mcv.candidates import validate_candidates

    validate_candidates([0.1, 0.01])   # array([0.1 , 0.01])
    ```
    """
    try:
        arr = np.asarray(values, dtype="float64").reshape(-1)
    except (TypeError, ValueError):
        raise CandidateError(f"The {what} must be numbers, got {values!r}.") from None
    if arr.size == 0:
        raise CandidateError(f"The {what} are empty; give at least one value.")
    bad = [float(v) for v in arr if not (math.isfinite(v) and v > 0)]
    if bad:
        raise CandidateError(
            f"The {what} must all be finite and positive; got {bad} in "
            f"{arr.tolist()}. Remove those entries (an LR of 0 would be a "
            "discard: use method='discard' for that)."
        )
    return arr


def candidate_list(lr, factors=FACTORS, min_lr=1e-8, max_lr=10.0):
    """The candidates around `lr`: `factors x lr`, clipped to `[min_lr, max_lr]`.

    Clipping is needed because the rule is multiplicative: without bounds a run
    can walk the LR to 1e-29 or to overflow (see the reference facts).

    Args:
        lr: current learning rate (finite, positive).
        factors: multipliers, finite and positive.
        min_lr, max_lr: bounds on every candidate (`0 < min_lr <= max_lr`).

    Example:

    ```python
    from keras_autolr.runtime.mcv.candidates import candidate_list

    candidate_list(5.0, factors=[5.0, 1.0], max_lr=10.0)   # array([10.,  5.])
    ```
    """
    lr = float(validate_candidates([lr], "learning rate")[0])
    factors = validate_candidates(factors, "candidate factors")
    if not (0 < min_lr <= max_lr and math.isfinite(max_lr)):
        raise CandidateError(
            f"Need 0 < min_lr <= max_lr < inf, got min_lr={min_lr}, max_lr={max_lr}."
        )
    return np.clip(factors * lr, min_lr, max_lr)


def pad_candidates(values, size):
    """Pads `values` to `size` entries for a fixed-shape compiled step.

    Returns `(padded, mask)`: padding repeats the last value (so any LR the step
    computes stays valid) and `mask` is 1.0 for real entries, 0.0 for padding.

    Args:
        values: the candidate LRs (validated).
        size: the number of slots.

    Raises:
        CandidateError: more values than slots, or an invalid value.

    Example:

    ```python
    from keras_autolr.runtime.mcv.candidates import pad_candidates

    pad_candidates([0.1, 0.01], size=3)   # (array([0.1 , 0.01, 0.01]), array([1., 1., 0.]))
    ```
    """
    arr = validate_candidates(values)
    if arr.size > size:
        raise CandidateError(
            f"{arr.size} candidates do not fit in {size} slots; pass at most "
            f"{size} (the strategy's `num_slots`: its number of factors, initial "
            "candidates or voting candidates)."
        )
    padded = np.concatenate([arr, np.full(size - arr.size, arr[-1])])
    mask = np.concatenate([np.ones(arr.size), np.zeros(size - arr.size)])
    return padded, mask
