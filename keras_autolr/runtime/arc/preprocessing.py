"""Builds ARC's (300, 3) input window from raw training signals (numpy only).

The controller sees the last `CYCLES` = 3 cycles of training (one cycle = the
epochs between two decisions). Each cycle contributes `POINTS_PER_CYCLE` = 100
of the 300 rows; missing cycles (early in training) are left-padded. Columns:

* 0, train loss: every batch's own loss, each cycle resized to 100 points by
  linear interpolation, then z-scored over the whole window (population std,
  floored at 1e-7), left-padded with 0;
* 1, validation loss: one value per epoch, z-scored over the window, resized
  with nearest-neighbour interpolation to 100 points per cycle present,
  left-padded with 0. Without validation data the column is all zeros (the
  controller is trained with this column zeroed part of the time);
* 2, learning rate: one value per cycle divided by the oldest LR in the
  window, nearest-resized, left-padded with 1.

This follows the reference implementation (FastEstimator ARC v2.0); its OpenCV
resizes are re-done here in numpy, with OpenCV's pixel-centre conventions.

Example:

```python
from keras_autolr.runtime.arc.preprocessing import build_window

window = build_window(
    train_losses=[[2.3, 2.1, 2.0], [1.9, 1.8, 1.8]],  # per batch, per cycle
    val_losses=[[2.0], [1.85]],                       # per epoch, per cycle
    learning_rates=[1e-3, 1e-3],                      # one per cycle
)
print(window.shape)  # (300, 3)
```
"""

import numpy as np

__all__ = [
    "CYCLES",
    "POINTS_PER_CYCLE",
    "WINDOW",
    "resize_linear",
    "resize_nearest",
    "zscore",
    "build_window",
]

CYCLES = 3
POINTS_PER_CYCLE = 100
WINDOW = CYCLES * POINTS_PER_CYCLE


def _as_1d(values, what):
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{what} is empty; each cycle needs at least one value.")
    return arr


def resize_linear(values, length):
    """Resizes a 1-D series to `length` points by linear interpolation.

    Uses pixel-centre alignment (source position `(i + 0.5) * n / length - 0.5`,
    clamped to the ends), as OpenCV's `INTER_LINEAR` does.

    Args:
        values: a non-empty 1-D sequence of numbers.
        length: the number of output points.

    Returns:
        A float64 numpy array of shape (length,).

    Example:

    ```python
    from keras_autolr.runtime.arc.preprocessing import resize_linear

    print(resize_linear([0.0, 1.0], 4))  # [0.   0.25 0.75 1.  ]
    ```
    """
    src = _as_1d(values, "values")
    n = src.size
    if n == 1:
        return np.full(length, src[0])
    pos = (np.arange(length) + 0.5) * (n / length) - 0.5
    pos = np.clip(pos, 0.0, n - 1)
    return np.interp(pos, np.arange(n), src)


def resize_nearest(values, length):
    """Resizes a 1-D series to `length` points by nearest neighbour.

    Source index `floor(i * n / length)`, as OpenCV's `INTER_NEAREST` does.

    Args:
        values: a non-empty 1-D sequence of numbers.
        length: the number of output points.

    Returns:
        A numpy array of shape (length,).

    Example:

    ```python
    from keras_autolr.runtime.arc.preprocessing import resize_nearest

    print(resize_nearest([1.0, 2.0, 3.0], 6))  # [1. 1. 2. 2. 3. 3.]
    ```
    """
    src = _as_1d(values, "values")
    idx = np.floor(np.arange(length) * (src.size / length)).astype(int)
    return src[np.minimum(idx, src.size - 1)]


def zscore(values, floor=1e-7):
    """Subtracts the mean and divides by the population std (at least `floor`).

    Args:
        values: numbers (any shape); the statistics are over all of them.
        floor: the smallest std divided by, so a constant series maps to 0.

    Returns:
        A float64 numpy array of the same shape.

    Example:

    ```python
    from keras_autolr.runtime.arc.preprocessing import zscore

    print(zscore([1.0, 2.0, 3.0]).round(4))  # [-1.2247  0.      1.2247]
    print(zscore([5.0, 5.0]))                # [0. 0.]
    ```
    """
    arr = np.asarray(values, dtype=np.float64)
    return (arr - arr.mean()) / max(arr.std(), floor)


def _check_finite(arr, what):
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{what} contains NaN or inf. Drop or replace non-finite losses "
            "before building an ARC window."
        )


def build_window(train_losses, val_losses, learning_rates):
    """Returns the controller input, a float32 array of shape (300, 3).

    Args:
        train_losses: a list of up to 3 cycles (oldest first), each a sequence
            of per-batch training losses. Older cycles beyond the last 3 are
            ignored.
        val_losses: a list with one sequence of per-epoch validation losses
            per cycle, or `None` (no validation data: the column is zeros).
        learning_rates: one LR per cycle (the LR used during that cycle).

    Raises:
        ValueError: no cycles, a cycle without values, a number of LRs that
            does not match the cycles, non-finite values, or an LR <= 0.

    Example:

    ```python
    from keras_autolr.runtime.arc.preprocessing import build_window

    window = build_window([[1.0, 0.9], [0.8, 0.7]], None, [1e-3, 1.618e-3])
    print(window.shape, window.dtype)    # (300, 3) float32
    print(window[0], window[-1])         # padding row, then the last row: LR ratio 1.618
    ```
    """
    cycles = list(train_losses)[-CYCLES:]
    if not cycles:
        raise ValueError("build_window needs at least one cycle of training losses.")
    lrs = np.asarray(list(learning_rates)[-len(cycles):], dtype=np.float64)
    if lrs.size != len(cycles):
        raise ValueError(
            f"Got {len(cycles)} cycles of training losses but {lrs.size} learning "
            "rates; pass one LR per cycle."
        )
    present = len(cycles) * POINTS_PER_CYCLE
    pad = WINDOW - present
    out = np.zeros((WINDOW, 3), dtype=np.float64)

    train = np.concatenate([resize_linear(c, POINTS_PER_CYCLE) for c in cycles])
    _check_finite(train, "The training loss")
    out[pad:, 0] = zscore(train)

    if val_losses is not None:
        val_cycles = list(val_losses)[-len(cycles):]
        flat = [v for c in val_cycles for v in np.asarray(c, np.float64).reshape(-1)]
        if flat:
            val = np.asarray(flat)
            _check_finite(val, "The validation loss")
            out[pad:, 1] = resize_nearest(zscore(val), present)

    _check_finite(lrs, "The learning rate")
    if np.any(lrs <= 0):
        raise ValueError("Learning rates must be positive.")
    out[:pad, 2] = 1.0
    out[pad:, 2] = np.repeat(lrs / lrs[0], POINTS_PER_CYCLE)
    return out.astype(np.float32)
