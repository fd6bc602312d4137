"""The LR scale gamma of MLR-SNet: LR = gamma * net output (in (0, 1)).

Purpose: the official code does not use the paper's fixed gamma (1 for images,
40 for text); it derives gamma for image tasks from the initial loss on the
whole training set, L0, and the class count C:

    gamma = sqrt(L0) * ln(L0 * C) / C**0.25 / 4

(about 0.67 for CIFAR-10 at initialisation, 1.04 for CIFAR-100), and recomputes
it from the current training loss when a checkpoint is swapped in. We follow
that rule for image nets (it adapts the LR range to the task) and the paper's
gamma = 40 for text nets with SGD (no rule for text exists in either source).

When the loss is already small (L0 * C <= 1) the rule gives gamma <= 0. The
official meta-test takes its absolute value (`absolute=True`, what
`OfficialProtocol` uses: at a loss of 0.05 on 10 classes that is 0.022);
the package's default (`PackageProtocol`) floors it at `floor` = 1e-3
instead, about 22x lower there.

Example:

```python
from keras_autolr.runtime.mlrsnet.gamma import gamma_from_loss

print(round(gamma_from_loss(2.3026, 10), 3))  # 0.669: an untrained 10-class model
```
"""

import math

import numpy as np
from keras import ops

__all__ = ["EmptyDataError", "gamma_from_loss", "gamma_rule", "initial_loss", "compute_gamma", "TEXT_GAMMA", "GAMMA_FLOOR"]

TEXT_GAMMA = 40.0
GAMMA_FLOOR = 1e-3


class EmptyDataError(ValueError):
    """gamma cannot be computed: no data to measure the loss on."""


def _check_classes(num_classes):
    if num_classes is None or int(num_classes) < 2:
        raise ValueError(
            f"num_classes must be an integer >= 2 to compute gamma, got {num_classes!r} "
            "(use 2 for a binary task)."
        )
    return int(num_classes)


def gamma_from_loss(loss, num_classes, floor=GAMMA_FLOOR, absolute=False):
    """The reference's gamma for a loss value `loss` and `num_classes` classes.

    Args:
        loss: the mean training loss L0 (finite, positive).
        num_classes: class count C (>= 2).
        floor: lower bound of the result (the rule is <= 0 when L0 * C <= 1).
        absolute: take `abs()` of the rule first, as the official meta-test
            code does (then pass `floor=0.0` for the official value).

    Returns:
        `max(g, floor)` as a float, with `g = sqrt(L0) * ln(L0 * C) / C**0.25 / 4`
        (or `abs(g)` when `absolute`).

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet.gamma import gamma_from_loss

    print(round(gamma_from_loss(4.6052, 100), 2))  # 1.04: CIFAR-100 at initialisation
    print(gamma_from_loss(0.05, 10))               # 0.001: floored
    print(round(gamma_from_loss(0.05, 10, floor=0.0, absolute=True), 4))  # 0.0218: the official abs()
    ```
    """
    C = _check_classes(num_classes)
    loss = float(loss)
    if not math.isfinite(loss) or loss <= 0.0:
        raise ValueError(
            f"gamma needs a finite positive training loss, got {loss}. Check that the "
            "model and data give a finite loss before training, or pass gamma= explicitly."
        )
    g = math.sqrt(loss) * math.log(loss * C) / C**0.25 / 4.0
    return max(abs(g) if absolute else g, floor)


def gamma_rule(loss, num_classes, floor=GAMMA_FLOOR, absolute=False):
    """`gamma_from_loss` in `keras.ops` (used in-graph on the first batch).

    Args:
        loss: scalar loss tensor.
        num_classes: class count C (>= 2).
        floor: lower bound of the result.
        absolute: take `abs()` of the rule first (the official code).

    Returns:
        A float32 scalar tensor.

    Example:

    ```python
    from keras import ops
    from keras_autolr.runtime.mlrsnet.gamma import gamma_rule

    print(float(gamma_rule(ops.convert_to_tensor(2.3026), 10)))  # ~0.669
    ```
    """
    C = float(_check_classes(num_classes))
    loss = ops.maximum(ops.cast(loss, "float32"), 1e-12)
    g = ops.sqrt(loss) * ops.log(loss * C) / (C**0.25) / 4.0
    return ops.maximum(ops.abs(g) if absolute else g, floor)


def initial_loss(model, x, y=None, batch_size=256):
    """Mean loss of the compiled `model` over (x, y): the reference's L0.

    Args:
        model: a compiled Keras model.
        x: inputs (non-empty).
        y: targets.
        batch_size: evaluation batch size.

    Raises:
        EmptyDataError: `x` or `y` is empty.
        ValueError: the loss is not finite.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.mlrsnet.gamma import initial_loss

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile("sgd", "mse")
    print(initial_loss(model, np.ones((4, 2)), np.full((4, 1), 2.0)))  # 4.0
    ```
    """
    n = 0 if x is None else (len(x) if hasattr(x, "__len__") else None)
    if n == 0 or (y is not None and hasattr(y, "__len__") and len(y) == 0):
        raise EmptyDataError(
            "Cannot compute gamma: the data for the initial loss is empty. Pass the "
            "training data (non-empty), or set gamma explicitly."
        )
    out = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    loss = out.get("loss")
    if loss is None or not np.isfinite(loss):
        raise ValueError(f"The initial loss is {loss}; gamma cannot be computed from it.")
    return float(loss)


def compute_gamma(model, x, y=None, num_classes=None, floor=GAMMA_FLOOR, batch_size=256, absolute=False):
    """The reference's gamma for a compiled model and its training data.

    The loss is an evaluation pass (`model.evaluate`: inference mode, e.g.
    BatchNorm's moving statistics) over all of (x, y), as the official code.

    Args:
        model: a compiled classifier.
        x: training inputs.
        y: training labels.
        num_classes: class count C (>= 2).
        floor: lower bound of gamma.
        batch_size: evaluation batch size.
        absolute: take `abs()` of the rule (the official code).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.mlrsnet.gamma import compute_gamma

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).normal(size=(64, 4)), np.arange(64) % 10
    print(compute_gamma(model, x, y, num_classes=10))  # ~0.7
    ```
    """
    _check_classes(num_classes)
    return gamma_from_loss(initial_loss(model, x, y, batch_size), num_classes, floor, absolute)
