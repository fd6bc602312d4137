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
(validation loss before, training forward, validation loss after).

The thesis's run cost is `epochs x steps_per_epoch x [(#forward + #backward), #step]`.
Note that MCV passes run on *half* batches when the incoming batch is split
(`MCVModel(split="half")`), so `weighted_ratio` also gives a size-aware estimate
(backward = 2 forwards).

Example:

```python
step_cost("method2", 7)             # StepCost(forward=16, backward=1, step=8)
run_cost("method1", 7, epochs=10, steps_per_epoch=100)  # (10000, 8000)
```
"""

import collections

__all__ = ["METHODS", "StepCost", "step_cost", "run_cost", "table_ratio", "weighted_ratio"]

METHODS = ("baseline", "discard", "voting", "method1", "method2", "method3")

StepCost = collections.namedtuple("StepCost", ["forward", "backward", "step"])


def step_cost(method, n_candidates=7):
    """`StepCost` of one training step of `method` with `n_candidates` LRs."""
    n = int(n_candidates)
    if n < 1:
        raise ValueError(f"n_candidates must be >= 1, got {n_candidates}.")
    table = {
        "baseline": (1, 1, 1),
        "discard": (3, 1, 1),
        "voting": (n + 2, 1, n + 1),
        "method1": (n + 2, 1, n + 1),
        "method2": (2 * n + 2, 1, n + 1),
        "method3": (n + 2, 1, n + 1),
    }
    if method not in table:
        raise ValueError(f"Unknown MCV method {method!r}; choose one of {METHODS}.")
    return StepCost(*table[method])


def run_cost(method, n_candidates, epochs, steps_per_epoch):
    """The thesis's `(forward + backward, step)` totals for a whole run."""
    c = step_cost(method, n_candidates)
    steps = float(epochs) * float(steps_per_epoch)
    return ((c.forward + c.backward) * steps, c.step * steps)


def table_ratio(method, n_candidates=7):
    """`(#forward + #backward)` of `method` over the baseline's (Table 4.1 units)."""
    c = step_cost(method, n_candidates)
    return (c.forward + c.backward) / 2.0


def weighted_ratio(method, n_candidates=7, backward_cost=2.0, split=True):
    """Estimated compute ratio vs a plain step on the same incoming batch.

    Each forward counts 1, a backward `backward_cost`, optimizer steps 0. With
    `split=True` every MCV pass sees half the batch, the plain step all of it.
    """
    c = step_cost(method, n_candidates)
    size = 0.5 if split else 1.0
    mcv = size * (c.forward + backward_cost * c.backward)
    return mcv / (1.0 + backward_cost)
