"""Decision rules of the MCV methods (thesis Algorithms 3-8), as pure functions.

Per-step rules (`discard_step`, `best_candidate`, `update_votes`, `top_candidate`)
use `keras.ops`, so the compiled train step calls them on backend tensors; they
also accept numpy arrays (tests). Per-epoch rules (`select_method1/2/3`, `select`)
are numpy: they run once an epoch in a callback.

Conventions: `losses` has one entry per candidate slot; `mask` is 1.0 for real
candidates, 0.0 for padding (see `candidates.pad_candidates`). Non-finite losses
never win.

Example:

```python
import numpy as np
select("method3", avg_val=np.array([2.0, 1.1, 1.0]), avg_current=1.2,
       mask=np.ones(3))   # -> 1: the largest LR (first slot) that beats 1.2
```
"""

import numpy as np
from keras import ops

__all__ = [
    "discard_step",
    "best_candidate",
    "update_votes",
    "top_candidate",
    "combined_loss",
    "select_method1",
    "select_method2",
    "select_method3",
    "select",
    "EPOCH_METHODS",
    "STEP_METHODS",
]

EPOCH_METHODS = ("method1", "method2", "method3")
STEP_METHODS = ("discard", "voting")
_BIG = 3.0e38


def _finite_or_big(x):
    x = ops.convert_to_tensor(x, "float32")
    return ops.where(ops.isfinite(x), x, ops.full_like(x, _BIG))


# -- per step (keras.ops) ------------------------------------------------------


def discard_step(current_loss, new_loss):
    """Algorithm 3: True where the update must be discarded.

    Discard when the validation-batch loss went up (`new > current`) or became
    non-finite (training never continues from a NaN state).
    """
    new = ops.convert_to_tensor(new_loss, "float32")
    cur = ops.convert_to_tensor(current_loss, "float32")
    return ops.logical_or(ops.logical_not(ops.isfinite(new)), ops.greater(new, cur))


def best_candidate(current_loss, new_losses, mask):
    """Algorithm 5: index of the candidate with the lowest validation loss
    that is below `current_loss`, or -1 when none lowers it (a discard vote)."""
    losses = _finite_or_big(new_losses)
    mask = ops.convert_to_tensor(mask, "float32")
    losses = ops.where(mask > 0, losses, ops.full_like(losses, _BIG))
    idx = ops.cast(ops.argmin(losses), "int32")
    best = ops.min(losses)
    improved = ops.less(best, ops.convert_to_tensor(current_loss, "float32"))
    return ops.where(improved, idx, ops.full_like(idx, -1))


def update_votes(history, best_index, decay):
    """Algorithm 6: `history <- decay * onehot(best) + (1 - decay) * history`.

    A vote of -1 (no candidate lowered the loss) is an all-zero vote, so every
    entry decays.
    """
    history = ops.convert_to_tensor(history, "float32")
    n = ops.shape(history)[0]
    onehot = ops.cast(ops.equal(ops.arange(n, dtype="int32"), ops.cast(best_index, "int32")), "float32")
    return decay * onehot + (1.0 - decay) * history


def top_candidate(history, mask):
    """Index with the highest vote history among real candidates (ties: first)."""
    history = ops.convert_to_tensor(history, "float32")
    mask = ops.convert_to_tensor(mask, "float32")
    return ops.cast(ops.argmax(ops.where(mask > 0, history, ops.full_like(history, -1.0))), "int32")


# -- per epoch (numpy) ---------------------------------------------------------


def combined_loss(avg_val, avg_train, alpha):
    """Method 2's score: `(1 - alpha) * val + alpha * train`."""
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    return (1.0 - alpha) * np.asarray(avg_val, "float64") + alpha * np.asarray(avg_train, "float64")


def _clean(losses, mask):
    losses = np.asarray(losses, "float64").copy()
    mask = np.ones_like(losses) if mask is None else np.asarray(mask)
    losses[~np.isfinite(losses) | (mask <= 0)] = np.inf
    return losses


def select_method1(avg_val, mask=None):
    """Method 1: the candidate with the lowest average validation loss.

    Returns None when every real candidate's average is non-finite.
    """
    losses = _clean(avg_val, mask)
    return None if not np.isfinite(losses).any() else int(np.argmin(losses))


def select_method2(avg_val, avg_train, alpha, mask=None):
    """Method 2: the lowest `(1 - alpha) * val + alpha * train` average."""
    return select_method1(combined_loss(avg_val, avg_train, alpha), mask)


def select_method3(avg_val, avg_current, lrs=None, mask=None):
    """Method 3: the largest LR whose average validation loss is below the
    average pre-update validation loss `avg_current`; else Method 1's pick.

    `lrs` gives each slot's LR (default: slots ordered largest first, as in the
    thesis list).
    """
    losses = _clean(avg_val, mask)
    if not np.isfinite(losses).any():
        return None
    better = np.flatnonzero(losses < float(avg_current))
    if better.size == 0:
        return int(np.argmin(losses))
    if lrs is None:
        return int(better[0])
    lrs = np.asarray(lrs, "float64")
    return int(better[np.argmax(lrs[better])])


def select(method, avg_val, avg_current=None, avg_train=None, alpha=0.5, lrs=None, mask=None):
    """Dispatches to the epoch rule of `method` ("method1", "method2", "method3")."""
    if method == "method1":
        return select_method1(avg_val, mask)
    if method == "method2":
        if avg_train is None:
            raise ValueError("method2 needs avg_train (training-batch losses per candidate).")
        return select_method2(avg_val, avg_train, alpha, mask)
    if method == "method3":
        if avg_current is None:
            raise ValueError("method3 needs avg_current (pre-update validation loss).")
        return select_method3(avg_val, avg_current, lrs, mask)
    raise ValueError(f"{method!r} has no epoch rule; choose one of {EPOCH_METHODS}.")
