"""Theoretical cost per training step of each MCV method (thesis Table 4.1).

Counts forward passes, backward passes and optimizer steps per training step,
for `n` candidate learning rates:

| method | #forward | #backward | #step |
|---|---|---|---|
| baseline | 1 | 1 | 1 |
| discard | 3 | 1 | 1 |
| voting | n+2 | 1 | n+1 |
| method1 | n+2 | 1 | n+1 |
| method2 | 2n+2 | 1 | n+1 |
| method3 | n+2 | 1 | n+1 |

`discard` is not in Table 4.1; its row counts Algorithm 3 the same way
(validation loss before, training forward, validation loss after). Every row
is `trial_cost`: the training forward, the pre-update validation forward, the
trials' scoring forwards, and one forward after the applied step for discard;
each strategy (`strategies.Strategy.step_cost`) states its counts that way.

The thesis's run cost is `epochs x steps_per_epoch x [(#forward + #backward), #step]`.
Note that MCV passes run on *half* batches when `MCVModel` splits the
incoming batch, so `weighted_ratio` also gives a size-aware estimate
(backward = 2 forwards).

Example:

```python
from keras_autolr.runtime.mcv.cost import run_cost, step_cost

step_cost("method2", 7)             # StepCost(forward=16, backward=1, step=8)
run_cost("method1", 7, epochs=10, steps_per_epoch=100)  # (10000.0, 8000.0)
```
"""

import collections

__all__ = ["METHODS", "StepCost", "trial_cost", "step_cost", "run_cost", "table_ratio", "weighted_ratio"]

METHODS = ("baseline", "discard", "voting", "method1", "method2", "method3")

StepCost = collections.namedtuple("StepCost", ["forward", "backward", "step"])
StepCost.__doc__ = """Operations of one training step: forward passes, backward passes, optimizer steps.

Example:

```python
from keras_autolr.runtime.mcv.cost import StepCost

StepCost(forward=3, backward=1, step=1).forward   # 3
```
"""


def trial_cost(trials, scores_per_trial=1, scores_applied=False):
    """`StepCost` of an MCV step from its trial counts (every row of Table 4.1).

    One backward (the training half's gradient, shared by every trial); the
    training forward and the pre-update validation forward; `scores_per_trial`
    forwards per trial; one more forward when the applied step is scored;
    `trials + 1` optimizer steps (the trials and the applied step).

    Args:
        trials: trial updates per step (candidate slots; 0 for discard).
        scores_per_trial: forwards scoring each trial (2 for method 2).
        scores_applied: the applied step is scored on the validation half.

    Example:

    ```python
    from keras_autolr.runtime.mcv.cost import trial_cost

    trial_cost(7, scores_per_trial=2)     # method 2: StepCost(forward=16, backward=1, step=8)
    trial_cost(0, scores_applied=True)    # discard:  StepCost(forward=3, backward=1, step=1)
    ```
    """
    trials = int(trials)
    return StepCost(2 + trials * int(scores_per_trial) + int(bool(scores_applied)), 1, trials + 1)


def step_cost(method, n_candidates=7):
    """`StepCost` of one training step of `method` with `n_candidates` LRs.

    Args:
        method: one of `METHODS` ("baseline" is a plain Keras step).
        n_candidates: candidate LRs per step (ignored by baseline and discard).

    Raises:
        ValueError: an unknown method or fewer than one candidate.

    Example:

    ```python
    from keras_autolr.runtime.mcv.cost import step_cost

    step_cost("voting", 4)   # StepCost(forward=6, backward=1, step=5)
    ```
    """
    n = int(n_candidates)
    if n < 1:
        raise ValueError(f"n_candidates must be >= 1, got {n_candidates}.")
    table = {
        "baseline": StepCost(1, 1, 1),
        "discard": trial_cost(0, scores_applied=True),
        "voting": trial_cost(n),
        "method1": trial_cost(n),
        "method2": trial_cost(n, scores_per_trial=2),
        "method3": trial_cost(n),
    }
    if method not in table:
        raise ValueError(f"Unknown MCV method {method!r}; choose one of {METHODS}.")
    return table[method]


def run_cost(method, n_candidates, epochs, steps_per_epoch):
    """The thesis's `(forward + backward, step)` totals for a whole run.

    Args:
        method: one of `METHODS`.
        n_candidates: candidate LRs per step.
        epochs, steps_per_epoch: the run's length.

    Example:

    ```python
    from keras_autolr.runtime.mcv.cost import run_cost

    run_cost("method1", 7, epochs=2, steps_per_epoch=10)   # (200.0, 160.0)
    ```
    """
    c = step_cost(method, n_candidates)
    steps = float(epochs) * float(steps_per_epoch)
    return ((c.forward + c.backward) * steps, c.step * steps)


def table_ratio(method, n_candidates=7):
    """`(#forward + #backward)` of `method` over the baseline's (Table 4.1 units).

    Args:
        method: one of `METHODS`.
        n_candidates: candidate LRs per step.

    Example:

    ```python
    from keras_autolr.runtime.mcv.cost import table_ratio

    table_ratio("method2")   # 8.5
    ```
    """
    c = step_cost(method, n_candidates)
    return (c.forward + c.backward) / 2.0


def weighted_ratio(method, n_candidates=7, backward_cost=2.0, split=True):
    """Estimated compute ratio vs a plain step on the same incoming batch.

    Each forward counts 1, a backward `backward_cost`, optimizer steps 0. With
    `split=True` every MCV pass sees half the batch, the plain step all of it.

    Args:
        method: one of `METHODS`.
        n_candidates: candidate LRs per step.
        backward_cost: cost of a backward pass in forwards.
        split: MCV passes run on half batches.

    Example:

    ```python
    from keras_autolr.runtime.mcv.cost import weighted_ratio

    weighted_ratio("method2")   # 3.0: (16 + 2) / 2 / 3
    ```
    """
    c = step_cost(method, n_candidates)
    size = 0.5 if split else 1.0
    mcv = size * (c.forward + backward_cost * c.backward)
    return mcv / (1.0 + backward_cost)
