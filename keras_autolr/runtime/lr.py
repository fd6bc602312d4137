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
values that are not finite and positive or that float32 cannot hold) raise
`LearningRateError` with what to do.

Saving. keras_autolr adds variables to optimizers (the `ScaledSchedule`
multiplier; MLR-SNet's and hypergradient descent's state, through
`add_state_variable`), which Keras cannot re-create when it loads a model:
Keras saves an optimizer's variables by position and skips them all (with a
warning) when the counts differ. So these variables are kept out of the
optimizer's own entry in the weights file, and Keras's own saving carries them
in a child entry:

* the optimizer (and a `LossScaleOptimizer` around it) saves exactly Keras's
  variables (`iterations`, the LR variable, the slots), in Keras's order: any
  Keras optimizer of that kind loads them, with or without keras_autolr;
* the added variables are saved by name in a `keras_autolr_state` entry under
  the optimizer, written by `model.save`, `model.save_weights` and
  `keras.callbacks.BackupAndRestore`. An optimizer that keras_autolr prepared
  (every `LearningRateCallback` attaches the state holder in `set_model`,
  before any callback's `on_train_begin`) reads it back; a value whose
  variable does not exist yet waits and is assigned when the variable is
  created, so the callbacks' order relative to `BackupAndRestore` does not
  matter;
* the multiplier's value is also in the serialized `ScaledSchedule`, so
  `keras.models.load_model` (after `import keras_autolr`) gives back the same
  effective LR, bit for bit, while the reloaded optimizer stays a plain Keras
  one; setting its LR later installs the multiplier again from that value.

Controller state that is not the optimizer's (MLR-SNet's LSTM state) comes
back on a `BackupAndRestore` resume, not with `load_model`, which rebuilds no
callbacks. So does callbacks' host-side state (`add_host_state`: MCV's
stopping counters and decision log, `LRFinder`'s finished sweep), saved in the
same entry but never an optimizer variable, so the train step does not carry it.

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

import json
import math
import types
import warnings

import keras
import numpy as np
from keras.optimizers.schedules import LearningRateSchedule

# saving_lib walks only KerasSaveable children; Keras exports no public base for one.
from keras.src.saving.keras_saveable import KerasSaveable

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
    "attach_state",
    "add_state_variable",
    "add_host_state",
    "take_host_state",
]

# The optimizer attribute holding keras_autolr's variables (the saved entry's name).
STATE_ATTR = "keras_autolr_state"


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


def _check_range(value, dtype, what="learning rate"):
    """Refuses a value the variable's dtype would store as 0, a subnormal or inf."""
    info = np.finfo(keras.backend.standardize_dtype(dtype))
    if not float(info.tiny) <= value <= float(info.max):
        stored = "0 or a subnormal" if value < float(info.tiny) else "inf"
        raise LearningRateError(
            f"Refusing to set a {what} of {value!r}: it is stored as {info.dtype}, "
            f"which represents positive values from {float(info.tiny):.7g} to "
            f"{float(info.max):.7g}, so it would become {stored}. Pass a value in that range."
        )
    return value


# -- keras_autolr's variables on an optimizer, and how they are saved ---------


class _State(KerasSaveable):
    """keras_autolr's variables on one optimizer, saved by name in a child entry of it."""

    # KerasSaveable pickles (and so deep-copies) objects as whole models; this is plain state.
    __reduce__ = object.__reduce__

    def __init__(self):
        self.by_key = {}  # saved name -> variable
        self.host = {}  # saved-name prefix -> function returning a callback's host state
        self.pending = {}  # saved name -> loaded value whose variable does not exist yet

    def _obj_type(self):
        return "Optimizer"

    def add(self, name, variable):
        key, n = name, 0
        while key in self.by_key:
            n += 1
            key = f"{name}_{n}"
        self.by_key[key] = variable
        if key in self.pending:
            variable.assign(self.pending.pop(key))

    def save_own_variables(self, store):
        for key, variable in self.by_key.items():
            store[key] = variable.numpy()
        for prefix, get in self.host.items():
            for key, value in get().items():
                if isinstance(value, np.ndarray):
                    store[f"{prefix}.{key}"] = value
                else:  # JSON text as bytes (floats round-trip exactly)
                    text = json.dumps(value, default=float)
                    store[f"{prefix}.{key}.json"] = np.frombuffer(text.encode(), np.uint8)

    def load_own_variables(self, store):
        for key in store.keys():
            value = np.asarray(store[key])
            if key in self.by_key:
                self.by_key[key].assign(value)
            else:
                self.pending[key] = value


def _chain(optimizer):
    """The optimizer and the ones it wraps (a LossScaleOptimizer's inner one)."""
    out = [optimizer]
    while hasattr(out[-1], "inner_optimizer") and len(out) < 8:
        out.append(out[-1].inner_optimizer)
    return out


def _keras_variables(optimizer):
    """`optimizer.variables` without keras_autolr's: what Keras itself created, in its order."""
    added = set()
    for opt in _chain(optimizer):
        state = opt.__dict__.get(STATE_ATTR)
        if state is not None:
            added.update(id(v) for v in state.by_key.values())
    return [v for v in optimizer.variables if id(v) not in added]


def _save_keras_variables(self, store):
    # Keras's `save_own_variables`, over Keras's variables only.
    for i, variable in enumerate(_keras_variables(self)):
        store[str(i)] = variable.numpy()


def _load_keras_variables(self, store):
    # Keras's `load_own_variables` (same check, same warning), over Keras's variables only.
    own = _keras_variables(self)
    if len(store.keys()) != len(own):
        warnings.warn(
            f"Skipping variable loading for optimizer '{self.name}', because it has "
            f"{len(own)} variables whereas the saved optimizer has {len(store.keys())} variables. ",
            stacklevel=2,
        )
        return
    for i, variable in enumerate(own):
        variable.assign(store[str(i)])


def attach_state(optimizer):
    """Makes the optimizer save and reload keras_autolr's variables with its own.

    Idempotent and cheap (no variable is created). Every `LearningRateCallback`
    calls it in `set_model`, so the optimizer can take back its state from a
    `keras.callbacks.BackupAndRestore` backup whatever the callbacks' order;
    `add_state_variable` calls it too. After it, the optimizer's own entry in a
    weights file holds only Keras's variables, in Keras's order (any Keras
    optimizer of that kind loads it), and keras_autolr's variables are saved by
    name in its `keras_autolr_state` entry.

    Args:
        optimizer: the optimizer the model was compiled with (a
            `LossScaleOptimizer`'s inner one is found).

    Raises:
        LearningRateError: `optimizer` is not a single Keras optimizer.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import attach_state

    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    attach_state(opt)
    print(hasattr(opt.inner_optimizer, "keras_autolr_state"))  # True
    ```
    """
    base = base_optimizer(optimizer)
    for opt in _chain(optimizer):
        # Instance attributes, set past the optimizers' attribute tracking: they
        # shadow Keras's methods for this object only, and are not variables.
        if "save_own_variables" not in opt.__dict__:
            opt.__dict__["save_own_variables"] = types.MethodType(_save_keras_variables, opt)
            opt.__dict__["load_own_variables"] = types.MethodType(_load_keras_variables, opt)
    if STATE_ATTR not in base.__dict__:
        base.__dict__[STATE_ATTR] = _State()
    return base.__dict__[STATE_ATTR]


def add_state_variable(optimizer, name, shape=(), initializer="zeros", dtype="float32", aggregation="none"):
    """Creates a keras_autolr state variable on the optimizer, saved and restored with it.

    For controllers whose state must be part of the compiled training state
    (it is an optimizer variable, so on JAX it travels in the train step's
    state): the LR multiplier, MLR-SNet's LSTM state. Unlike
    `optimizer.add_variable`, the variable is saved by `name` outside the
    optimizer's own entry (see `attach_state`), so a model saved with it loads
    with all its optimizer state, and a `BackupAndRestore` resume sets it back,
    also when the backup is read before the variable is created.

    Args:
        optimizer: the optimizer the model was compiled with (wrappers are
            unwrapped).
        name: the variable's name, also its key in the saved entry (a
            repeated name gets a `_1`, `_2`, ... suffix, in creation order).
        shape: the variable's shape.
        initializer: a Keras initializer or its name.
        dtype: the variable's dtype.
        aggregation: the variable's cross-replica aggregation.

    Returns:
        The new `keras.Variable`.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import add_state_variable

    opt = keras.optimizers.SGD(0.1)
    h = add_state_variable(opt, "my_state", shape=(2,))
    print(h.path, [v.name for v in opt.variables])  # sgd/my_state ['iteration', 'learning_rate', 'my_state']
    ```
    """
    state = attach_state(optimizer)
    opt = base_optimizer(optimizer)
    # The variable must be created in the optimizer's distribution scope (TF).
    with _strategy_scope(opt):
        variable = opt.add_variable(
            shape=shape, initializer=initializer, dtype=dtype, aggregation=aggregation, name=name,
        )
    state.add(name, variable)
    return variable


def add_host_state(optimizer, name, get_state):
    """Saves a callback's host-side state with the optimizer's, in the same entry as its variables.

    For state that the compiled step never reads (a stopping rule's patience
    count, a decision log, a finished LR sweep): it is not an optimizer
    variable, so it costs the train step nothing, yet `model.save`,
    `model.save_weights` and every `keras.callbacks.BackupAndRestore` backup
    carry it in the optimizer's `keras_autolr_state` entry (see
    `attach_state`). `get_state` is called at each save; loading a weights
    file keeps the values for `take_host_state`. Registering `name` again
    replaces the earlier function (one owner per name and optimizer).

    Args:
        optimizer: the optimizer the model was compiled with (wrappers are
            unwrapped).
        name: the state's name, the prefix of its saved keys (no dots).
        get_state: a function returning a dict of str -> numpy array or
            JSON-serializable value (numbers, strings, lists, dicts, None).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.lr import add_host_state, take_host_state

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.optimizer.build(model.trainable_variables)
    add_host_state(model.optimizer, "counter", lambda: {"count": 3, "best": np.ones(2)})
    model.save_weights("state.weights.h5")
    model.load_weights("state.weights.h5")
    print(take_host_state(model.optimizer, "counter"))  # {'count': 3, 'best': array([1., 1.])}
    ```
    """
    if "." in name:
        raise ValueError(f"A host-state name has no dots, got {name!r}.")
    attach_state(optimizer).host[name] = get_state


def take_host_state(optimizer, name):
    """The host state last loaded under `name` (see `add_host_state`), once; None if none was.

    A value is taken once: a later call returns None until another weights
    file is loaded. Callbacks call it when they first need their state (the
    first `on_epoch_begin` of a fit), so a `BackupAndRestore` listed before or
    after them restores it alike.

    Args:
        optimizer: the optimizer the model was compiled with.
        name: the name given to `add_host_state`.

    Returns:
        A dict like the one `get_state` returned (arrays as numpy arrays,
        other values as JSON gives them back), or None.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import take_host_state

    print(take_host_state(keras.optimizers.SGD(0.1), "counter"))  # None: nothing was loaded
    ```
    """
    pending = attach_state(optimizer).pending
    prefix = f"{name}."
    out = {}
    for key in [k for k in pending if k.startswith(prefix)]:
        value = pending.pop(key)
        key = key[len(prefix):]
        if key.endswith(".json"):
            out[key[:-len(".json")]] = json.loads(np.asarray(value, np.uint8).tobytes().decode())
        else:
            out[key] = value
    return out or None


def _warn_if_step_compiled_under_jax_distribution(opt):
    """Warns before a variable is added to a built optimizer under a JAX `keras.distribution`."""
    # There Keras fixes the train step's output shardings per optimizer variable when fit
    # starts; a variable added during fit (outside a LearningRateCallback, which re-syncs
    # the step) then fails the next step with an opaque pytree error.
    if keras.backend.backend() == "jax" and keras.distribution.distribution() is not None and opt.built:
        warnings.warn(
            "set_learning_rate on a schedule adds an LR-multiplier variable to the optimizer; under a "
            "JAX keras.distribution a train step compiled before it no longer matches (fit then fails "
            "with a pytree structure error). Call keras_autolr.runtime.lr.prepare(optimizer) before "
            "fit, or change the LR from a keras_autolr LearningRateCallback.",
            stacklevel=3,
        )


def _install_multiplier(optimizer):
    """Wraps a schedule in `ScaledSchedule` with a multiplier state variable."""
    opt = base_optimizer(optimizer)
    raw = opt._learning_rate
    if isinstance(raw, ScaledSchedule) and isinstance(raw.multiplier, keras.Variable):
        return raw
    inner, start = (raw.schedule, float(raw.multiplier)) if isinstance(raw, ScaledSchedule) else (raw, 1.0)
    var = add_state_variable(
        optimizer, "lr_multiplier", initializer=keras.initializers.Constant(start),
        aggregation="only_first_replica",
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
        LearningRateError: the value is not finite and positive, float32
            (the LR variable's dtype) cannot hold it or the schedule's
            multiplier it needs, or the optimizer's LR is a plain callable we
            cannot scale.

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
        _check_range(value, "float32")  # ScaledSchedule computes in float32
        inner = raw.schedule if isinstance(raw, ScaledSchedule) else raw
        base = float(keras.ops.convert_to_numpy(inner(opt._iterations)))
        if not math.isfinite(base) or base <= 0.0:
            raise LearningRateError(
                f"The optimizer's schedule is {base} at this step, so it cannot be "
                "scaled to a positive LR. Use a schedule that stays positive "
                "(e.g. set `alpha` > 0 in CosineDecay) or a float LR."
            )
        multiplier = _check_range(value / base, "float32", f"multiplier (LR {value} / schedule {base})")
        if not (isinstance(raw, ScaledSchedule) and isinstance(raw.multiplier, keras.Variable)):
            _warn_if_step_compiled_under_jax_distribution(opt)
        _install_multiplier(optimizer).multiplier.assign(multiplier)
        return value
    if isinstance(raw, keras.Variable):
        raw.assign(_check_range(value, raw.dtype))
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

    For an optimizer that estimates its own step size (`Prodigy`,
    `DAdaptAdam`, `DoG`: `get_learning_rate` is d * lr) the base multiplier
    is scaled, so the effective step size scales by `factor` too.

    Args:
        optimizer: a Keras optimizer (wrappers are unwrapped).
        factor: a finite positive multiplier.

    Raises:
        LearningRateError: `factor` or the resulting LR is not finite and
            positive, or the resulting LR is out of float32's range.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.lr import scale_learning_rate

    opt = keras.optimizers.Adam(1e-3)
    print(round(scale_learning_rate(opt, 0.5), 6))  # 0.0005
    ```
    """
    factor = _check_value(factor, "learning-rate factor")
    # Scale what `set_learning_rate` writes: for an optimizer that estimates its own
    # step size (Prodigy: d * lr) that is the base multiplier lr, not d * lr.
    base = float(keras.ops.convert_to_numpy(learning_rate_tensor(optimizer)))
    set_learning_rate(optimizer, base * factor)
    return get_learning_rate(optimizer)


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
        _install_multiplier(optimizer)
    elif not isinstance(raw, keras.Variable):
        raise _unsettable(raw)
    return get_learning_rate(opt)
