"""Schedule-free AdamW as the reference defines it (`optax.contrib.schedule_free_adamw`).

Defazio et al., "The Road Less Scheduled" (2024). Three sequences: `z` (the
base AdamW-without-momentum iterate), `x` (its weighted average, the point to
evaluate at) and `y = b1 * x + (1 - b1) * z` (where gradients are taken). As
in optax, the model's variables hold `y` during `fit`; `z` is optimizer state
and `x` is recomputed from them, `x = (y - (1 - b1) * z) / b1`.

How `ReferenceScheduleFreeAdamW` differs from `keras.optimizers.ScheduleFreeAdamW`
(and from `keras_autolr.runtime.optimizers.schedule_free.ScheduleFreeAdamW`, which is
Keras's algorithm with a TF fix):

* averaging weight: `c_t = lr_max_t**weight_lr_power / sum_k lr_max_k**weight_lr_power`
  (`lr_max_t` the largest LR so far, warmup included), so steps taken during
  warmup count less; Keras uses `1 / t`;
* warmup: optax's `warmup_constant_schedule` (LR 0 at step 0, peak after
  `warmup_steps`), with `z` stepped at the LR of the step count before the
  increment and the weight at the count after, exactly as optax; Keras scales
  the LR by `min(t / warmup_steps, 1)`;
* weight decay: `weight_decay * y` is added to the Adam direction before the
  LR (optax's `add_decayed_weights` inside the base optimizer), at `y`;
  Keras applies its generic decoupled decay to the variable before the step;
* `x` is recomputed from `y` and `z` every step (never stored), as optax does.

Evaluation point: `eval_weights()` returns `x` for every trained variable, and
`EvalWeights(model)` is a context manager that swaps `x` into the model and
puts every model variable back bit-exactly on exit. The authors evaluate and
save at `x`; add the `ScheduleFreeEval` callback to `fit` for that: validation
inside `fit` runs at `x`, and the callbacks given to it (a `ModelCheckpoint`)
see `x` at `on_epoch_end`/`on_train_end`; training resumes from `y`, bit for
bit. After `fit` the model holds `y` (as optax's params do).

BatchNorm: running statistics accumulated at `y` do not fit `x`. As the
authors recommend (facebookresearch/schedule_free issues #60 and #22), pass
training batches as `bn_data`: with `x` swapped in, the statistics are
recomputed by forward passes in training mode over those batches, each
batch weighted equally (the layer's momentum is set to `(k - 1) / k` for the
k-th batch: PyTorch's `momentum=None` cumulative average), and put back with
the rest on exit. Without `bn_data` a BatchNorm model is evaluated with the
statistics from `y` (`ScheduleFreeEval` warns).

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.optimizers.schedule_free_ref import (EvalWeights, ReferenceScheduleFreeAdamW,
                                                               ScheduleFreeEval)

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=ReferenceScheduleFreeAdamW(1e-2, warmup_steps=4), loss="mse")
model.fit(x, x[:, :1], epochs=2, batch_size=16, verbose=0)
with EvalWeights(model):
    print(model.evaluate(x, x[:, :1], verbose=0))
model.fit(x, x[:, :1], epochs=1, batch_size=16, validation_data=(x, x[:, :1]),
          callbacks=[ScheduleFreeEval()], verbose=0)   # val_loss at x
```
"""

import warnings

import keras
import numpy as np
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_autolr.runtime.optimizers._global import GlobalStepOptimizer

__all__ = ["ReferenceScheduleFreeAdamW", "EvalWeights", "ScheduleFreeEval"]


@keras.saving.register_keras_serializable(package="keras_autolr")
class ReferenceScheduleFreeAdamW(GlobalStepOptimizer):
    """Schedule-free AdamW with optax's (the reference's) averaging, warmup and decay.

    Same update as `optax.contrib.schedule_free_adamw` (`b1` -> `beta_1`, `b2`
    -> `beta_2`, `eps` -> `epsilon`; `state_dtype` is not supported). See the
    module docstring for how it differs from `keras.optimizers.ScheduleFreeAdamW`.
    `z` starts at the weights at the first step. `learning_rate` may also be a
    `LearningRateSchedule` (optax's `schedule_free` accepts schedules); the
    warmup multiplies it. `effective_learning_rate` is the LR of the next z
    step. A step with NaN/inf gradients is skipped (`iterations` still advances).

    Args:
        learning_rate: peak AdamW learning rate (float or schedule).
        warmup_steps: length of the linear warmup from 0, or None/0 for none.
        beta_1: interpolation between `x` and `z` for `y`; must be > 0.
        beta_2: decay of the second moment.
        epsilon: added to the denominator, outside the square root.
        weight_decay: coefficient of `weight_decay * y` added to the direction.
        weight_lr_power: exponent of `lr_max` in the averaging weight.
        name: the optimizer's name.
        **kwargs: other `keras.optimizers.Optimizer` arguments.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.optimizers.schedule_free_ref import ReferenceScheduleFreeAdamW

    opt = ReferenceScheduleFreeAdamW(1.0)
    w = keras.Variable([1.0, 2.0, 3.0])
    for _ in range(3):
        opt.apply([2 * keras.ops.convert_to_tensor(w)], [w])  # f(w) = sum(w ** 2)
    print([float(v) for v in opt.eval_weights()[0]])
    ```
    """

    def __init__(self, learning_rate=0.0025, warmup_steps=None, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay=None, weight_lr_power=2.0, name="reference_schedule_free_adamw", **kwargs):
        if not beta_1 > 0:
            raise ValueError(f"beta_1 must be > 0 (x is recovered by dividing by it), got {beta_1}.")
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.warmup_steps = int(warmup_steps) if warmup_steps else None
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.weight_lr_power = weight_lr_power

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._z, self._nu = self.add_optimizer_variables(var_list, ["z", "nu"])
        self._weight_sum = self.add_variable(shape=(), dtype="float32", name="weight_sum")
        self._max_lr = self.add_variable(shape=(), dtype="float32", name="max_lr")

    def _lr_at(self, count):
        """optax's learning rate at `count` (float32 tensor), warmup included."""
        raw = self._learning_rate
        if isinstance(raw, LearningRateSchedule):
            peak = ops.cast(raw(count), "float32")
        else:
            peak = ops.cast(raw, "float32")
        if not self.warmup_steps:
            return peak
        w = float(self.warmup_steps)
        # optax: polynomial_schedule(0 -> peak) written as (init - end) * frac + end, then constant.
        frac = 1 - ops.minimum(ops.cast(count, "float32"), w) / w
        return (0.0 - peak) * frac + peak

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # The LR is read at two step counts (optax's), not the one Keras passes.
        super()._backend_update_step(grads, trainable_variables, 0.0)

    def global_step(self, grads, variables, learning_rate):
        b1, b2 = self.beta_1, self.beta_2
        count = ops.convert_to_tensor(self._count)
        lr_z = self._lr_at(count)          # base optimizer's schedule count (starts at 0)
        lr_w = self._lr_at(count + 1)      # schedule_free's step_count (starts at 1)
        max_lr = ops.maximum(ops.convert_to_tensor(self._max_lr), lr_w)
        weight = ops.power(max_lr, self.weight_lr_power)
        total = ops.convert_to_tensor(self._weight_sum) + weight
        ratio = weight / total
        ck = ops.where(ops.logical_or(ops.isnan(weight), ops.isnan(total)), float("nan"),
                       ops.where(ops.isnan(ratio), 0.0, ratio))
        first = ops.equal(count, 0)
        bias = 1 - ops.power(b2, ops.cast(count + 1, "float32"))
        ys = [ops.convert_to_tensor(v) for v in variables]
        zs = [ops.where(first, y, self._slot(self._z, v)) for y, v in zip(ys, variables)]
        nus = [(1 - b2) * (g**2) + b2 * self._slot(self._nu, v) for g, v in zip(grads, variables)]
        new_z, new_y = [], []
        for g, y, z, nu, v in zip(grads, ys, zs, nus, variables):
            u = g * (1 / (ops.sqrt(nu / bias) + self.epsilon))
            if self._decay(v):
                u = u + self._decay(v) * y
            z1 = z + u * (-lr_z)
            x0 = (y - (1.0 - b1) * z) / b1
            x1 = (1.0 - ck) * x0 + ck * z1
            new_z.append(z1)
            # optax returns the update y1 - y, which apply_updates adds back: same rounding.
            new_y.append(y + ((b1 * x1 + (1.0 - b1) * z1) - y))
        total_sq = ops.sum(ops.stack([ops.sum(ops.square(g)) for g in grads]))
        ok = ops.isfinite(total_sq)
        pairs = [(self._weight_sum, total), (self._max_lr, max_lr)]
        for i, v in enumerate(variables):
            pairs += [(self._slot_var(self._nu, v), nus[i]), (self._slot_var(self._z, v), new_z[i]), (v, new_y[i])]
        self._commit(ok, pairs)

    def eval_weights(self, variables=None):
        """The evaluation point `x = (y - (1 - b1) z) / b1` for each trained variable.

        Args:
            variables: the model variables (default: all the optimizer was built on).

        Returns:
            A list of tensors in the order of `variables`. Before the first
            step `z == y`, so `x == y`.
        """
        variables = list(self._trainable_variables if variables is None else variables)
        b1 = self.beta_1
        started = ops.greater(ops.convert_to_tensor(self._count), 0)
        out = []
        for v in variables:
            z = ops.where(started, self._slot(self._z, v), ops.convert_to_tensor(v))
            out.append((ops.convert_to_tensor(v) - (1.0 - b1) * z) / b1)
        return out

    @property
    def effective_learning_rate(self):
        """The learning rate of the next `z` step (warmup included)."""
        count = ops.convert_to_tensor(self._count) if self.built else 0
        return self._lr_at(count)

    def get_config(self):
        config = super().get_config()
        config.update({"warmup_steps": self.warmup_steps, "beta_1": self.beta_1, "beta_2": self.beta_2,
                       "epsilon": self.epsilon, "weight_lr_power": self.weight_lr_power})
        return config


def _input_batches(data, batch_size, max_batches):
    """The first `max_batches` input batches of `data` (an array, or a dataset/iterable of batches)."""
    if data is None:
        return []
    if hasattr(data, "shape") and not hasattr(data, "element_spec"):
        n = len(data) - len(data) % batch_size if len(data) >= batch_size else len(data)
        return [data[i:i + batch_size] for i in range(0, n, batch_size)][:max_batches]
    source = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data
    out = []
    for batch in source:
        if len(out) == max_batches:
            break
        # (x, y[, sample_weight]) batches: only x goes through the model.
        out.append(batch[0] if isinstance(batch, (tuple, list)) else batch)
    return out


def _batch_norm_layers(model):
    # Layer._flatten_layers is the only walk that also finds layers nested in custom layers.
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def _recompute_batch_norm(model, batches):
    """BatchNorm statistics as the equal-weight average over `batches` of the model's batch moments."""
    layers = _batch_norm_layers(model)
    renorm = [layer.name for layer in layers if getattr(layer, "renorm", False)]
    if renorm:
        raise ValueError(f"BatchNormalization with renorm=True ({renorm}) has no plain running statistics "
                         "to recompute at x; build the layers with renorm=False.")
    momenta = [layer.momentum for layer in layers]
    try:
        for k, xb in enumerate(batches, start=1):
            for layer in layers:
                layer.momentum = (k - 1) / k  # k = 1: the first batch's moments replace the old statistics
            model(xb, training=True)  # eager, so the momentum set here is the one used
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def _schedule_free_optimizer(model, who):
    opt = getattr(model, "optimizer", None)
    while hasattr(opt, "inner_optimizer"):  # LossScaleOptimizer
        opt = opt.inner_optimizer
    if not isinstance(opt, ReferenceScheduleFreeAdamW):
        raise ValueError(f"{who} needs a model compiled with ReferenceScheduleFreeAdamW, "
                         f"got {type(opt).__name__}.")
    return opt


class EvalWeights:
    """Context manager: the model holds schedule-free's evaluation point `x` inside the block.

    On entry every model variable is copied, `x` is assigned to the trained
    variables and, if `bn_data` is given, the BatchNorm statistics are
    recomputed at `x` (module docstring). On exit every model variable
    (weights, BatchNorm statistics, dropout seeds) gets its saved value back,
    so `y` is restored exactly (written back, not recomputed).

    Args:
        model: a model compiled with `ReferenceScheduleFreeAdamW` and trained
            at least one step (before that `x == y`).
        bn_data: training inputs for the BatchNorm recomputation: an array, or
            a `tf.data.Dataset` / iterable of batches (`(x, y)` tuples give x);
            None keeps the statistics from `y`.
        bn_batches: how many batches of `bn_data` to use.
        batch_size: batch size when `bn_data` is an array.

    Raises:
        ValueError: the optimizer is not `ReferenceScheduleFreeAdamW` or not
            built, `bn_data` gives no batch, or a BatchNorm layer uses renorm.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.optimizers.schedule_free_ref import EvalWeights, ReferenceScheduleFreeAdamW

    x = np.ones((8, 2), "float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=ReferenceScheduleFreeAdamW(1e-2), loss="mse")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    with EvalWeights(model):
        loss_at_x = model.evaluate(x, x[:, :1], verbose=0)
    ```
    """

    def __init__(self, model, bn_data=None, bn_batches=10, batch_size=32):
        opt = _schedule_free_optimizer(model, "EvalWeights")
        if not opt.built:
            raise ValueError("EvalWeights needs a model compiled with ReferenceScheduleFreeAdamW "
                             "whose optimizer is built (train at least one step first).")
        self.model = model
        self.optimizer = opt
        self._bn = _input_batches(bn_data, int(batch_size), int(bn_batches))
        if bn_data is not None and not self._bn:
            raise ValueError(f"bn_data gave no batch (batch_size={batch_size}); pass more data or a "
                             "smaller batch_size.")
        self._saved = None

    def __enter__(self):
        variables = self.optimizer._trainable_variables
        self._saved = [np.array(ops.convert_to_numpy(v)) for v in self.model.variables]
        for v, x in zip(variables, self.optimizer.eval_weights(variables)):
            v.assign(x)
        if self._bn:
            _recompute_batch_norm(self.model, self._bn)
        return self

    def __exit__(self, *exc):
        for v, saved in zip(self.model.variables, self._saved):
            v.assign(saved)
        self._saved = None
        return False


class ScheduleFreeEval(keras.callbacks.Callback):
    """Callback: validation inside `fit` (and the callbacks it wraps) see schedule-free's `x`.

    `on_test_begin` enters `EvalWeights(model, bn_data, ...)`, `on_test_end`
    leaves it, so `val_*` logs are computed at `x` (with BatchNorm statistics
    recomputed at `x` when `bn_data` is given) and training continues from
    `y` exactly. The `callbacks` given here (typically a
    `keras.callbacks.ModelCheckpoint`) receive the train, epoch, train-batch and
    test begin/end hooks, and run their
    `on_epoch_end` and `on_train_end` with `x` swapped in, so checkpoints hold
    `x` whatever the order of the callbacks. Other callbacks of `fit`
    (`BackupAndRestore` included, which must back up `y`) see `y`. Passed
    to `model.evaluate`, it evaluates at `x` too.

    Args:
        bn_data: training inputs for recomputing BatchNorm statistics at `x`
            (see `EvalWeights`); warn-and-skip if None and the model has BatchNorm.
        bn_batches: how many batches of `bn_data` each recomputation uses.
        batch_size: batch size when `bn_data` is an array.
        callbacks: callbacks run at `x` at epoch end and train end.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.optimizers.schedule_free_ref import ReferenceScheduleFreeAdamW, ScheduleFreeEval

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dense(1)])
    model.compile(optimizer=ReferenceScheduleFreeAdamW(1e-2), loss="mse")
    checkpoint = keras.callbacks.ModelCheckpoint("at_x.weights.h5", save_weights_only=True)
    history = model.fit(x, x[:, :1], epochs=2, batch_size=16, validation_split=0.25, verbose=0,
                        callbacks=[ScheduleFreeEval(bn_data=x[:48], batch_size=16, callbacks=[checkpoint])])
    print(history.history["val_loss"])
    ```
    """

    def __init__(self, bn_data=None, bn_batches=10, batch_size=32, callbacks=()):
        super().__init__()
        self.bn_data, self.bn_batches, self.batch_size = bn_data, int(bn_batches), int(batch_size)
        self.callbacks = list(callbacks)
        self._swap = None
        self._warned = False

    def set_model(self, model):
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for cb in self.callbacks:
            cb.set_params(params)

    def _eval_weights(self):
        opt = _schedule_free_optimizer(self.model, "ScheduleFreeEval")
        if not opt.built:
            return None  # no step taken: x == y
        if self.bn_data is None and not self._warned and _batch_norm_layers(self.model):
            self._warned = True
            warnings.warn("The model has BatchNormalization layers and ScheduleFreeEval got no bn_data: "
                          "evaluation at x uses the running statistics accumulated at y. Pass training "
                          "inputs as bn_data to recompute them at x.", stacklevel=3)
        return EvalWeights(self.model, self.bn_data, self.bn_batches, self.batch_size)

    def _delegate(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def _at_x(self, hook, *args):
        swap = self._eval_weights() if self.callbacks else None
        if swap is None:
            return self._delegate(hook, *args)
        with swap:
            self._delegate(hook, *args)

    def on_train_begin(self, logs=None):
        _schedule_free_optimizer(self.model, "ScheduleFreeEval")  # fail before the first epoch
        self._delegate("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._at_x("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._delegate("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._at_x("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._delegate("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._delegate("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs=None):
        self._swap = self._eval_weights()
        if self._swap is not None:
            self._swap.__enter__()
        self._delegate("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._delegate("on_test_end", logs)
        if self._swap is not None:
            swap, self._swap = self._swap, None
            swap.__exit__(None, None, None)
