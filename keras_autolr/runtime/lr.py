"""The one place that reads and writes an optimizer's learning rate.

Every learning-rate callback in `keras_autolr` (ARC, MLR-SNet, MCV, the
baselines' logging) goes through these functions; nothing else touches
`optimizer.learning_rate`.

Supported optimizers:

* a plain float learning rate (stored by Keras as a variable): assigned directly;
* a `keras.optimizers.schedules.LearningRateSchedule`: Keras refuses assignment,
  so the schedule is wrapped once in `ScaledSchedule`, whose multiplier is a
  variable tracked by the optimizer (so it travels with the optimizer state on
  every backend, under `jit`, and under `tf.distribute` strategies). Setting the
  LR then sets the multiplier; the schedule's shape is kept;
* `keras.optimizers.LossScaleOptimizer` (mixed precision): its inner optimizer;
* optimizers created under `tf.distribute.MirroredStrategy`: variable assignment
  is a cross-replica operation, which Keras handles.

Unsupported cases (a callable LR that is not a schedule, several optimizers,
non-finite or non-positive values) raise `LearningRateError` with what to do.

Example:

```python
import keras
from keras_autolr.runtime import lr

opt = keras.optimizers.Adam(1e-3)
lr.set_learning_rate(opt, 3e-4)
print(round(lr.get_learning_rate(opt), 6))         # 0.0003
print(round(lr.scale_learning_rate(opt, 0.5), 6))  # 0.00015
```
"""

import math

import keras
from keras.optimizers.schedules import LearningRateSchedule

__all__ = [
    "LearningRateError",
    "ScaledSchedule",
    "base_optimizer",
    "get_learning_rate",
    "learning_rate_tensor",
    "set_learning_rate",
    "scale_learning_rate",
    "assign_learning_rate",
    "stateless_learning_rate",
    "prepare",
]


class LearningRateError(ValueError):
    """Raised when an optimizer's learning rate cannot be read or set.

    The message says what to do (compile with a Keras optimizer, use a float
    or a `LearningRateSchedule`, pass a finite positive value).
    """


@keras.saving.register_keras_serializable(package="keras_autolr")
class ScaledSchedule(LearningRateSchedule):
    """A learning-rate schedule multiplied by a settable factor.

    `lr(step) = multiplier * schedule(step)`. Installed by `set_learning_rate`
    when an optimizer was built with a schedule, so callbacks can move the LR
    while the schedule keeps its shape.

    Args:
        schedule: the wrapped `LearningRateSchedule`.
        multiplier: a `keras.Variable` (tracked by the optimizer) or a float.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import ScaledSchedule

    decay = keras.optimizers.schedules.ExponentialDecay(1e-2, 100, 0.5)
    half = ScaledSchedule(decay, multiplier=0.5)
    print(round(float(half(100)), 6))  # 0.0025 (0.5 x 0.005)
    ```
    """

    def __init__(self, schedule, multiplier=1.0):
        self.schedule = schedule
        self.multiplier = multiplier

    def __call__(self, step):
        return keras.ops.multiply(
            keras.ops.cast(self.multiplier, "float32"),
            keras.ops.cast(self.schedule(step), "float32"),
        )

    def get_config(self):
        m = self.multiplier
        value = float(keras.ops.convert_to_numpy(m)) if not isinstance(m, float) else m
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "multiplier": value,
        }

    @classmethod
    def from_config(cls, config):
        schedule = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(schedule, float(config["multiplier"]))


def base_optimizer(optimizer):
    """Returns the optimizer that owns the learning rate.

    Unwraps `LossScaleOptimizer` (and any wrapper exposing `inner_optimizer`).

    Args:
        optimizer: a Keras optimizer, possibly wrapped.

    Returns:
        The `keras.optimizers.Optimizer` whose `learning_rate` is the LR.

    Raises:
        LearningRateError: `optimizer` is None, not a Keras optimizer, or
            holds several optimizers.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import base_optimizer

    inner = keras.optimizers.SGD(0.1)
    scaled = keras.optimizers.LossScaleOptimizer(inner)
    assert base_optimizer(scaled) is inner
    ```
    """
    if optimizer is None:
        raise LearningRateError(
            "The model has no optimizer. Call `model.compile(optimizer=...)` "
            "before fitting with a keras_autolr learning-rate controller."
        )
    seen = 0
    while hasattr(optimizer, "inner_optimizer") and seen < 8:
        optimizer = optimizer.inner_optimizer
        seen += 1
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise LearningRateError(
            f"Expected a keras.optimizers.Optimizer, got {type(optimizer).__name__}. "
            "keras_autolr controls Keras 3 optimizers only; compile the model "
            "with one (e.g. keras.optimizers.Adam)."
        )
    if "MultiOptimizer" in type(optimizer).__name__ or hasattr(optimizer, "optimizer_map"):
        raise LearningRateError(
            "This optimizer combines several optimizers, each with its own "
            "learning rate; keras_autolr controls one learning rate. Compile "
            "the model with a single optimizer."
        )
    return optimizer


def learning_rate_tensor(optimizer):
    """Returns the current LR as a backend tensor (usable inside compiled steps).

    Args:
        optimizer: a Keras optimizer (wrappers are unwrapped).

    Returns:
        A scalar tensor: the variable's value, or the schedule at the
        optimizer's current iteration.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import learning_rate_tensor

    opt = keras.optimizers.Adam(1e-3)
    lr = learning_rate_tensor(opt)
    print(round(float(keras.ops.convert_to_numpy(lr)), 6))  # 0.001
    ```
    """
    opt = base_optimizer(optimizer)
    raw = opt._learning_rate
    if isinstance(raw, LearningRateSchedule):
        return raw(opt._iterations)
    if isinstance(raw, keras.Variable):
        return raw.value
    if callable(raw):
        return raw()
    return raw


def get_learning_rate(optimizer):
    """Returns the optimizer's current learning rate as a Python float.

    For a schedule this is the value at the optimizer's current iteration
    (times the multiplier, if one is installed). For an optimizer that
    estimates its own step size (it has an `effective_learning_rate`, e.g.
    `keras_autolr.runtime.optimizers.Prodigy`: `d * lr`) this is that step
    size; `set_learning_rate` on such an optimizer sets its base multiplier.

    Args:
        optimizer: a Keras optimizer (wrappers are unwrapped).

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import get_learning_rate

    decay = keras.optimizers.schedules.ExponentialDecay(1e-2, 100, 0.5)
    print(round(get_learning_rate(keras.optimizers.SGD(decay)), 6))  # 0.01 at step 0
    ```
    """
    effective = getattr(base_optimizer(optimizer), "effective_learning_rate", None)
    if effective is not None:
        return float(keras.ops.convert_to_numpy(effective))
    return float(keras.ops.convert_to_numpy(learning_rate_tensor(optimizer)))


def _unsettable(raw):
    return LearningRateError(
        f"The optimizer's learning rate is a {type(raw).__name__}, which cannot be "
        "set. Build the optimizer with a float or a "
        "keras.optimizers.schedules.LearningRateSchedule."
    )


def _check_value(value, what="learning rate"):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise LearningRateError(f"The {what} must be a number, got {value!r}.") from None
    if not math.isfinite(value) or value <= 0.0:
        raise LearningRateError(
            f"Refusing to set a {what} of {value}: it must be finite and "
            "positive. A controller that produced this should lower the LR "
            "(or stop) instead of writing it."
        )
    return value


def _install_multiplier(opt):
    """Wraps a schedule in `ScaledSchedule` with a tracked multiplier variable."""
    raw = opt._learning_rate
    if isinstance(raw, ScaledSchedule) and isinstance(raw.multiplier, keras.Variable):
        return raw
    inner, start = (raw.schedule, float(raw.multiplier)) if isinstance(raw, ScaledSchedule) else (raw, 1.0)
    # The variable must be created in the optimizer's distribution scope (TF).
    scope = _strategy_scope(opt)
    with scope:
        var = opt.add_variable(
            shape=(), initializer=keras.initializers.Constant(start),
            dtype="float32", aggregation="only_first_replica",
            name="lr_multiplier",
        )
    wrapped = ScaledSchedule(inner, var)
    opt._learning_rate = wrapped
    return wrapped


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _strategy_scope(opt):
    if keras.backend.backend() != "tensorflow":
        return _NullScope()
    import tensorflow as tf

    strategy = getattr(opt, "_distribution_strategy", None)
    if strategy is None:
        var = opt._iterations
        strategy = getattr(getattr(var, "value", None), "_distribute_strategy", None)
    if strategy is not None and not tf.distribute.has_strategy():
        return strategy.scope()
    return _NullScope()


def set_learning_rate(optimizer, value):
    """Sets the optimizer's learning rate to `value` (a finite positive float).

    For a schedule-based optimizer, the schedule is scaled so that its value at
    the current iteration equals `value`; it keeps decaying from there.

    Args:
        optimizer: a Keras optimizer (wrappers are unwrapped).
        value: the new learning rate.

    Returns:
        `value`, as a float.

    Raises:
        LearningRateError: the value is not finite and positive, or the
            optimizer's LR is a plain callable we cannot scale.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import get_learning_rate, set_learning_rate

    decay = keras.optimizers.schedules.ExponentialDecay(1e-2, 100, 0.5)
    opt = keras.optimizers.SGD(decay)
    set_learning_rate(opt, 1e-3)  # scales the schedule by 0.1
    print(round(get_learning_rate(opt), 6))  # 0.001
    ```
    """
    value = _check_value(value)
    opt = base_optimizer(optimizer)
    raw = opt._learning_rate
    if isinstance(raw, LearningRateSchedule):
        wrapped = _install_multiplier(opt)
        base = float(keras.ops.convert_to_numpy(wrapped.schedule(opt._iterations)))
        if not math.isfinite(base) or base <= 0.0:
            raise LearningRateError(
                f"The optimizer's schedule is {base} at this step, so it cannot be "
                "scaled to a positive LR. Use a schedule that stays positive "
                "(e.g. set `alpha` > 0 in CosineDecay) or a float LR."
            )
        wrapped.multiplier.assign(value / base)
        return value
    if isinstance(raw, keras.Variable):
        raw.assign(value)
        return value
    raise _unsettable(raw)


def assign_learning_rate(optimizer, value):
    """Assigns a backend tensor LR, without host round trip, inside a compiled step.

    Used by per-batch schedulers (MLR-SNet's, `InStepScheduler`s) that compute
    the LR in-graph. The caller is responsible for `value` being finite and
    positive. A scheduled LR needs `prepare(optimizer)` first.

    Args:
        optimizer: a Keras optimizer (wrappers are unwrapped).
        value: a scalar tensor (or float), the new LR.

    Raises:
        LearningRateError: the LR is a schedule that was not `prepare`d, or
            neither a float nor a schedule.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import assign_learning_rate, get_learning_rate

    opt = keras.optimizers.SGD(0.1)
    assign_learning_rate(opt, keras.ops.convert_to_tensor(0.05))
    print(round(get_learning_rate(opt), 6))  # 0.05
    ```
    """
    opt = base_optimizer(optimizer)
    raw = opt._learning_rate
    if isinstance(raw, LearningRateSchedule):
        if not (isinstance(raw, ScaledSchedule) and isinstance(raw.multiplier, keras.Variable)):
            raise LearningRateError(
                "Call keras_autolr.runtime.lr.prepare(optimizer) before the train step is "
                "compiled (e.g. in on_train_begin) to control a scheduled LR per batch."
            )
        base = keras.ops.cast(raw.schedule(opt._iterations), "float32")
        raw.multiplier.assign(keras.ops.cast(value, "float32") / base)
        return
    if isinstance(raw, keras.Variable):
        raw.assign(keras.ops.cast(value, raw.dtype))
        return
    raise LearningRateError(
        "Per-batch learning-rate control needs an optimizer built with a float "
        "learning rate or a LearningRateSchedule."
    )


def stateless_learning_rate(optimizer, optimizer_values, value):
    """Returns optimizer state values with the LR (or LR multiplier) set to `value`.

    The stateless twin of `assign_learning_rate`, for pure train steps (JAX):
    `optimizer_values` lines up with `optimizer.variables`; nothing is written.

    Args:
        optimizer: a Keras optimizer (wrappers are unwrapped).
        optimizer_values: the current values of `optimizer.variables`.
        value: a scalar tensor (or float), the new LR.

    Returns:
        A list like `optimizer_values`, with the LR's entry replaced.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import get_learning_rate, stateless_learning_rate

    opt = keras.optimizers.SGD(0.1)
    values = [v.value for v in opt.variables]
    new = stateless_learning_rate(opt, values, 0.05)
    print(round(get_learning_rate(opt), 6))  # 0.1: nothing was written
    ```
    """
    # Map the given optimizer's own variables (a LossScaleOptimizer's include
    # its inner optimizer's); assign_learning_rate finds the LR inside.
    mapping = list(zip(optimizer.variables, optimizer_values))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        assign_learning_rate(optimizer, value)
    out = []
    for ref, val in zip(optimizer.variables, optimizer_values):
        new = scope.get_current_value(ref)
        out.append(val if new is None else new)
    return out


def scale_learning_rate(optimizer, factor):
    """Multiplies the current LR by `factor` and returns the new LR.

    Args:
        optimizer: a Keras optimizer (wrappers are unwrapped).
        factor: a finite positive multiplier.

    Raises:
        LearningRateError: `factor` or the resulting LR is not finite and
            positive.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import scale_learning_rate

    opt = keras.optimizers.Adam(1e-3)
    print(round(scale_learning_rate(opt, 0.5), 6))  # 0.0005
    ```
    """
    factor = _check_value(factor, "learning-rate factor")
    return set_learning_rate(optimizer, get_learning_rate(optimizer) * factor)


def prepare(optimizer):
    """Makes the optimizer's LR settable before training is compiled.

    Call from `on_train_begin`: for a schedule this installs the multiplier
    variable now, so the compiled train step (TF graph or JAX state) already
    contains it.

    Args:
        optimizer: a Keras optimizer (wrappers are unwrapped).

    Returns:
        The current LR, as a float.

    Raises:
        LearningRateError: the LR is neither a float nor a schedule.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import prepare

    decay = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100)
    opt = keras.optimizers.Adam(decay)
    print(round(prepare(opt), 6))                                # 0.001
    print(any("lr_multiplier" in v.path for v in opt.variables))  # True
    ```
    """
    opt = base_optimizer(optimizer)
    raw = opt._learning_rate
    if isinstance(raw, LearningRateSchedule):
        _install_multiplier(opt)
    elif not isinstance(raw, keras.Variable):
        raise _unsettable(raw)
    return get_learning_rate(opt)
