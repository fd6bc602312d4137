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

Also here, as pure functions of the run's numbers: `batch_losses` (each
batch's own loss from Keras's running epoch mean) and `auto_frequency` /
`num_decisions` (ARC's default cycle length and the decisions it gives).

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
    "batch_losses",
    "auto_frequency",
    "num_decisions",
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


def batch_losses(running_means, samples_seen):
    """Returns each logged step's own loss from Keras's running epoch mean of the loss.

    Keras logs after step k the mean of the epoch's losses so far, each batch
    weighted by its number of samples: `mean_k = sum(loss_i * n_i) / sum(n_i)`.
    Given the samples seen through each logged step, `sum(n_i)`, each step's
    loss is `(mean_k * seen_k - mean_p * seen_p) / (seen_k - seen_p)` (`p` the
    previous logged step), exact up to float32 rounding of Keras's sums. With
    several steps per log (`steps_per_execution`) it is their sample-weighted
    mean.

    Args:
        running_means: the logged running means, in step order.
        samples_seen: the samples seen through each of those steps
            (increasing), the same length.

    Returns:
        A float32 numpy array, one loss per logged step.

    Raises:
        ValueError: the lengths differ or `samples_seen` does not increase.

    Example:

    ```python
    from keras_autolr.runtime.arc.preprocessing import batch_losses

    # Batches of 16, 16 and 4 samples with losses 1.0, 0.5, 0.2:
    means = [1.0, 0.75, (16 * 1.0 + 16 * 0.5 + 4 * 0.2) / 36]
    print(batch_losses(means, [16, 32, 36]).round(6))  # [1.  0.5 0.2]
    ```
    """
    means = np.asarray(running_means, dtype=np.float64).reshape(-1)
    seen = np.asarray(samples_seen, dtype=np.float64).reshape(-1)
    if means.size != seen.size:
        raise ValueError(
            f"Got {means.size} running means but {seen.size} sample counts; pass one count per mean."
        )
    if means.size == 0:
        return np.zeros(0, np.float32)
    prev = np.concatenate([[0.0], seen[:-1]])
    if np.any(seen - prev <= 0):
        raise ValueError("samples_seen must increase from one logged step to the next.")
    totals = means * seen
    return ((totals - np.concatenate([[0.0], totals[:-1]])) / (seen - prev)).astype(np.float32)


# The paper spreads 10 decisions over training (section 5); a cycle of
# `epochs // 10` epochs keeps its settings (CIFAR-10: 30 epochs every 3; PTB:
# 98 every 9) but gives up to 18 decisions on short runs, so cycles are
# lengthened until there are at most MAX_DECISIONS.
_TARGET_DECISIONS = 10
_MAX_DECISIONS = 12


def auto_frequency(epochs):
    """Returns ARC's default cycle length in epochs for a fit of `epochs` epochs.

    `max(epochs // 10, (epochs - 1) // 13 + 1)`: the paper's `epochs // 10`
    (10 cycles; 30 epochs give 3, 98 give 9, `10 n` give `n`), lengthened
    where that would give more than 12 decisions (14 to 19 epochs: 2 instead
    of 1; 27 to 29: 3 instead of 2). ARC decides at the end of every cycle but
    not after the last epoch, so a fit of `epochs` epochs gets exactly
    `num_decisions(epochs, auto_frequency(epochs)) = (epochs - 1) //
    auto_frequency(epochs)` decisions. From 10 to 300 epochs that is always
    between 6 and 12: 6 for 14 epochs, 7 for 15 or 16, 8 for 17, 18 or 27,
    and 9 to 12 for every other length (9 for 10, 20, 30, ... 300). Below 10
    epochs it is `epochs - 1` (a decision every epoch).

    Args:
        epochs: the fit's number of epochs (an int >= 1).

    Returns:
        The number of epochs per cycle, an int >= 1.

    Example:

    ```python
    from keras_autolr.runtime.arc.preprocessing import auto_frequency, num_decisions

    for epochs in (15, 30, 98, 300):
        f = auto_frequency(epochs)
        print(epochs, f, num_decisions(epochs, f))  # 15 2 7 / 30 3 9 / 98 9 10 / 300 30 9
    ```
    """
    epochs = int(epochs)
    return max(1, epochs // _TARGET_DECISIONS, (epochs - 1) // (_MAX_DECISIONS + 1) + 1)


def num_decisions(epochs, frequency):
    """Returns how many decisions ARC makes in a fit of `epochs` epochs, one every `frequency`.

    Decisions are made at the end of every cycle except after the fit's last
    epoch (there is nothing left to apply them to): `(epochs - 1) // frequency`.
    A non-finite loss, which lowers the LR and restarts the cycle, changes this.

    Args:
        epochs: the fit's number of epochs.
        frequency: epochs per cycle.

    Returns:
        An int >= 0.

    Example:

    ```python
    from keras_autolr.runtime.arc.preprocessing import num_decisions

    print(num_decisions(30, 3), num_decisions(3, 3))  # 9 0
    ```
    """
    return max(0, int(epochs) - 1) // int(frequency)
