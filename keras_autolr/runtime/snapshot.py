"""Host copies of a model's and its optimizer's state, restored bit for bit.

`snapshot(model)` copies every model variable (trainable weights, non-trainable
state such as BatchNorm statistics and dropout seeds, metric state) and every
optimizer variable (slots, iteration count, learning rate or the
`ScaledSchedule` LR multiplier of `keras_autolr.runtime.lr`) into numpy arrays;
`restore(model, snap)` writes them back, refusing a model or optimizer whose
variables do not line up. `variable_values` / `assign_values` do the same for
any list of variables (e.g. a meta-training run's whole state).

This is the one host-side checkpoint: of the offline pipelines (ARC's data
generator, MLR-SNet's resume file), the LR finder's restore and the
leaderboard's `fh_lr_search` probes. MCV's trial updates do not use it: they
snapshot in-graph, inside the compiled train step (`runtime/mcv/_tf_step.py`).

Example:

```python
import keras, numpy as np
from keras_autolr.runtime.snapshot import restore, snapshot

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(keras.optimizers.Adam(0.01), "mse")
x, y = np.random.rand(8, 3), np.random.rand(8, 1)
model.train_on_batch(x, y)
snap = snapshot(model)
first = model.train_on_batch(x, y)
restore(model, snap)
assert model.train_on_batch(x, y) == first   # the same step again, bit for bit
```
"""

import dataclasses

import keras
import numpy as np

__all__ = ["Snapshot", "SnapshotError", "snapshot", "restore", "variable_values", "assign_values"]


class SnapshotError(ValueError):
    """Raised when a snapshot does not fit the variables it is restored into."""


@dataclasses.dataclass(frozen=True, eq=False)
class Snapshot:
    """Numpy copies of a model's and its optimizer's variables (a checkpoint in memory).

    Args:
        model_values: one array per `model.variables`, in order.
        optimizer_values: one array per `model.optimizer.variables`, in order.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.snapshot import snapshot

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    snap = snapshot(model)
    [a.shape for a in snap.model_values], len(snap.optimizer_values)
    ```
    """

    model_values: list
    optimizer_values: list


def variable_values(variables):
    """Numpy copies of `variables`' current values, in order.

    Args:
        variables: Keras variables.

    Returns:
        A list of numpy arrays (copies: later assignments do not change them).

    Example:

    ```python
    import keras
    from keras_autolr.runtime.snapshot import variable_values

    v = keras.Variable([1.0, 2.0])
    values = variable_values([v])
    v.assign([0.0, 0.0])
    values[0]   # array([1., 2.], dtype=float32)
    ```
    """
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def assign_values(variables, values, what="variables"):
    """Writes `values` (from `variable_values`) back into `variables`, exactly.

    Args:
        variables: Keras variables, in the order the values were taken.
        values: arrays, one per variable.
        what: what the variables are, for the error message.

    Raises:
        SnapshotError: a different number of values, or a value whose shape
            differs from its variable's.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.snapshot import assign_values, variable_values

    v = keras.Variable([1.0, 2.0])
    values = variable_values([v])
    v.assign([0.0, 0.0])
    assign_values([v], values)
    keras.ops.convert_to_numpy(v)   # array([1., 2.], dtype=float32)
    ```
    """
    variables, values = list(variables), list(values)
    _check(variables, values, what)
    for v, a in zip(variables, values):
        v.assign(a)


def _check(variables, values, what):
    if len(variables) != len(values):
        raise SnapshotError(
            f"The snapshot holds {len(values)} {what} but there are {len(variables)}: it was "
            "taken from a different model or optimizer (or the optimizer was not built yet: "
            "call optimizer.build(model.trainable_variables) before snapshotting).")
    for i, (v, a) in enumerate(zip(variables, values)):
        if tuple(v.shape) != tuple(np.shape(a)):
            raise SnapshotError(
                f"The snapshot does not fit: {what} #{i} ({v.path}) has shape "
                f"{tuple(v.shape)}, the snapshot {tuple(np.shape(a))}. Restore into the "
                "model and optimizer it was taken from.")


def _optimizer_variables(model):
    opt = getattr(model, "optimizer", None)
    return [] if opt is None else list(opt.variables)


def snapshot(model):
    """Checkpoints a model's variables and its optimizer's full state into numpy.

    Covers trainable and non-trainable model variables (BatchNorm statistics,
    dropout seed state, metric state) and all optimizer variables (slots,
    iteration count, the LR or its multiplier). Build the optimizer first
    (`optimizer.build(model.trainable_variables)` or one training step) so its
    state is included from the start.

    Args:
        model: a Keras model (compiled or not).

    Returns:
        A `Snapshot`.

    Example:

    ```python
    import keras, numpy as np
    from keras_autolr.runtime.snapshot import snapshot

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.train_on_batch(np.ones((4, 3)), np.ones((4, 1)))
    int(snapshot(model).optimizer_values[0])   # 1: the iteration count
    ```
    """
    return Snapshot(variable_values(model.variables), variable_values(_optimizer_variables(model)))


def restore(model, snap):
    """Restores a `snapshot` exactly (variable by variable, model and optimizer).

    Args:
        model: the model the snapshot was taken from (or one with identical
            variables and optimizer state layout).
        snap: a `Snapshot`.

    Raises:
        SnapshotError: the snapshot does not fit the model or its optimizer
            (checked before anything is written).

    Example:

    ```python
    import keras, numpy as np
    from keras_autolr.runtime.snapshot import restore, snapshot

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    snap = snapshot(model)
    model.train_on_batch(np.ones((4, 3)), np.ones((4, 1)))
    restore(model, snap)
    np.array_equal(model.get_weights()[0], snap.model_values[0])   # True
    ```
    """
    model_vars, opt_vars = list(model.variables), _optimizer_variables(model)
    # Check both before writing either, so a mismatch leaves the model untouched.
    _check(model_vars, snap.model_values, "model variables")
    _check(opt_vars, snap.optimizer_values, "optimizer variables")
    assign_values(model_vars, snap.model_values, "model variables")
    assign_values(opt_vars, snap.optimizer_values, "optimizer variables")

