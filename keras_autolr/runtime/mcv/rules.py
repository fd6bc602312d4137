"""Decision rules of the MCV methods (thesis Algorithms 3-8), as pure functions.

Per-step rules (`discard_step`, `best_candidate`, `update_votes`, `top_candidate`)
use `keras.ops`, so the compiled train step calls them on backend tensors; they
also accept numpy arrays (tests). Per-epoch rules (`select_method1/2/3`) are
numpy: they run once an epoch in a callback. The strategies
(`keras_autolr.runtime.mcv.strategies`) decide which rule a method uses.

Conventions: `losses` has one entry per candidate slot; `mask` is 1.0 for real
candidates, 0.0 for padding (see `candidates.pad_candidates`). Non-finite losses
never win.

Example:

```python
import numpy as np
from keras_autolr.runtime.mcv.rules import select_method3

select_method3(np.array([2.0, 1.1, 1.0]), avg_current=1.2)  # 1: the largest LR (first slot) that beats 1.2
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
]

_BIG = 3.0e38


def _finite_or_big(x):
    x = ops.convert_to_tensor(x, "float32")
    return ops.where(ops.isfinite(x), x, ops.full_like(x, _BIG))


# -- per step (keras.ops) ------------------------------------------------------


def discard_step(current_loss, new_loss):
    """Algorithm 3: True where the update must be discarded.

    Discard when the validation-batch loss went up (`new > current`) or became
    non-finite (training never continues from a NaN state).

    Args:
        current_loss: validation-batch loss before the update.
        new_loss: validation-batch loss after it.

    Example:

    ```python
    from keras_autolr.runtime.mcv.rules import discard_step

    bool(discard_step(1.0, 1.1)), bool(discard_step(1.0, 1.0))   # (True, False)
    ```
    """
    new = ops.convert_to_tensor(new_loss, "float32")
    cur = ops.convert_to_tensor(current_loss, "float32")
    return ops.logical_or(ops.logical_not(ops.isfinite(new)), ops.greater(new, cur))


def best_candidate(current_loss, new_losses, mask):
    """Algorithm 5: the candidate that lowers the validation loss most, or -1 (a discard vote).

    The index of the lowest `new_losses` entry among real candidates if it is
    below `current_loss`; non-finite losses never win.

    Args:
        current_loss: validation-batch loss before the step.
        new_losses: each slot's validation-batch loss after its trial.
        mask: 1.0 for real candidates, 0.0 for padding.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.mcv.rules import best_candidate

    int(best_candidate(1.0, np.array([1.2, 0.7, 0.9]), np.ones(3)))   # 1
    ```
    """
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

    Args:
        history: the vote EMA, one entry per slot.
        best_index: this step's vote (`best_candidate`), -1 for none.
        decay: weight of the newest vote.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.mcv.rules import update_votes

    update_votes(np.full(2, 0.5, "float32"), 1, 0.1)   # [0.45, 0.55]
    ```
    """
    history = ops.convert_to_tensor(history, "float32")
    n = ops.shape(history)[0]
    onehot = ops.cast(ops.equal(ops.arange(n, dtype="int32"), ops.cast(best_index, "int32")), "float32")
    return decay * onehot + (1.0 - decay) * history


def top_candidate(history, mask):
    """Index with the highest vote history among real candidates (ties: first).

    Args:
        history: the vote EMA, one entry per slot.
        mask: 1.0 for real candidates, 0.0 for padding.

    Example:

    ```python
    from keras_autolr.runtime.mcv.rules import top_candidate

    int(top_candidate([0.1, 0.2, 0.9], [1, 1, 0]))   # 1: slot 2 is padding
    ```
    """
    history = ops.convert_to_tensor(history, "float32")
    mask = ops.convert_to_tensor(mask, "float32")
    return ops.cast(ops.argmax(ops.where(mask > 0, history, ops.full_like(history, -1.0))), "int32")


# -- per epoch (numpy) ---------------------------------------------------------


def combined_loss(avg_val, avg_train, alpha):
    """Method 2's score: `(1 - alpha) * val + alpha * train`.

    Args:
        avg_val, avg_train: each candidate's average validation / training loss.
        alpha: weight of the training loss, in [0, 1].

    Raises:
        ValueError: `alpha` outside [0, 1].

    Example:

    ```python
    from keras_autolr.runtime.mcv.rules import combined_loss

    combined_loss([0.4, 0.45], [0.6, 0.2], 0.3)   # [0.46, 0.375]
    ```
    """
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

    Args:
        avg_val: each candidate's average validation loss.
        mask: 1.0 for real candidates, 0.0 for padding (None: all real).

    Returns:
        The index, or None when every real candidate's average is non-finite.

    Example:

    ```python
    from keras_autolr.runtime.mcv.rules import select_method1

    select_method1([0.5, 0.3, float("nan")])   # 1
    ```
    """
    losses = _clean(avg_val, mask)
    return None if not np.isfinite(losses).any() else int(np.argmin(losses))


def select_method2(avg_val, avg_train, alpha, mask=None):
    """Method 2: the lowest `(1 - alpha) * val + alpha * train` average.

    Args:
        avg_val, avg_train: each candidate's average validation / training loss.
        alpha: weight of the training loss, in [0, 1].
        mask: 1.0 for real candidates, 0.0 for padding (None: all real).

    Returns:
        The index, or None when every real candidate's score is non-finite.

    Example:

    ```python
    from keras_autolr.runtime.mcv.rules import select_method2

    select_method2([0.40, 0.45], [0.60, 0.20], alpha=0.5)   # 1
    ```
    """
    return select_method1(combined_loss(avg_val, avg_train, alpha), mask)


def select_method3(avg_val, avg_current, lrs=None, mask=None):
    """Method 3: the largest LR whose average validation loss beats the pre-update loss.

    "Beats" is below `avg_current`, the average pre-update validation loss;
    when no candidate beats it, Method 1's pick.

    Args:
        avg_val: each candidate's average validation loss.
        avg_current: the epoch's average pre-update validation loss.
        lrs: each slot's LR (default: slots ordered largest first, as in the
            thesis list).
        mask: 1.0 for real candidates, 0.0 for padding (None: all real).

    Returns:
        The index, or None when every real candidate's average is non-finite.

    Example:

    ```python
    from keras_autolr.runtime.mcv.rules import select_method3

    select_method3([2.0, 0.9, 0.8], 1.0, lrs=[0.5, 0.2, 0.1])   # 1: 0.2 beats 1.0
    ```
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

