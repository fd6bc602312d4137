"""Base class for controllers that set the LR inside the compiled train step.

Purpose: per-batch LR rules that need the *current* batch (its loss, its
gradients) must run between the gradient computation and `apply`, inside the
compiled step, to avoid a host round trip and a one-step lag. Keras callbacks
only run between steps, so `InStepScheduler.install()` (call it from
`on_train_begin`) swaps the model instance's `train_step` for a copy of
Keras's own TensorFlow or JAX step that calls `self.step_update(loss, grads,
weights)` before applying the gradients. The step stays installed after `fit`,
so later fits with the same controller reuse the compiled step (no retrace);
`uninstall()` gives the model Keras's own step back.

Subclasses keep their state in variables created with
`keras_autolr.runtime.lr.add_state_variable` (optimizer variables that
`model.save` and `BackupAndRestore` carry), so the state is part of the compiled training state
on both backends (on JAX the update runs in a `keras.StatelessScope` over the
optimizer variables), and write the LR with
`keras_autolr.runtime.lr.assign_learning_rate`.

The step's logs gain `"step_lr"`, the LR used at that step; with
`record_every=k` the controller stores every k-th one in `self.lr_history`.

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.instep import InStepScheduler

class Halving(InStepScheduler):
    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.install()

    def step_update(self, loss, grads, weights):
        lr = lr_lib.learning_rate_tensor(self.model.optimizer) * 0.5
        lr_lib.assign_learning_rate(self.model.optimizer, lr)
        return lr, grads

x, y = np.ones((32, 2), "float32"), np.ones((32, 1), "float32")
model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
model.compile(keras.optimizers.SGD(0.1), "mse")
cb = Halving(record_every=1)
model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[cb])
print(cb.lr_history)  # [0.05, 0.025, 0.0125, 0.00625]
```

A model whose `train_step` is already custom (an `MCVModel`, or any
subclass overriding `train_step`) is refused with a `TypeError`: installing
would silently replace its step.
"""

import types

import keras
from keras import ops

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_callback import LearningRateCallback

__all__ = ["InStepScheduler", "sanitize"]


def sanitize(grads, finite):
    """Zeroes all gradients when `finite` (a scalar bool tensor) is False.

    Args:
        grads: list of gradient tensors (None entries are kept as None).
        finite: scalar bool tensor, usually `ops.isfinite(loss)`.

    Returns:
        The gradients, or zeros of the same shapes when `finite` is False.

    Example:

    ```python
    from keras import ops
    from keras_autolr.runtime.instep import sanitize

    grads = [ops.ones((2,)), None]
    print(sanitize(grads, ops.isfinite(float("nan")))[0])  # [0. 0.]
    ```
    """
    return [None if g is None else ops.where(finite, g, ops.zeros_like(g)) for g in grads]


class InStepScheduler(LearningRateCallback):
    """A `LearningRateCallback` whose per-batch rule runs inside `train_step`.

    Subclasses implement `step_update(loss, grads, weights) -> (lr, grads)`
    and call `self.install()` from `on_train_begin`; see the module
    docstring. `install()` raises `TypeError` on a model that already has a
    custom `train_step` (an `MCVModel`, a subclass overriding it).

    Args:
        record_every: store every k-th step LR in `self.lr_history` (0: off;
            reading it costs one small host sync per recorded step).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.instep import InStepScheduler

    class Constant(InStepScheduler):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.install()

        def step_update(self, loss, grads, weights):
            return keras.ops.convert_to_tensor(0.01), grads  # log it, change nothing

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    cb = Constant(record_every=1)
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=4, verbose=0, callbacks=[cb])
    print(cb.lr_history)  # [0.01, 0.01]
    cb.uninstall()  # Keras's own step again
    ```
    """

    record_every = 0

    def __init__(self, record_every=0):
        super().__init__()
        self.record_every = int(record_every)
        self.lr_history = []

    def step_update(self, loss, grads, weights):
        """In-graph rule: returns (lr, grads) and assigns the LR and state."""
        raise NotImplementedError

    def install(self):
        """Puts the in-step train step on `self.model` (call from `on_train_begin`).

        Raises:
            TypeError: the model already has a custom `train_step` (a
                subclass overriding it, such as an `MCVModel`); replacing it
                would silently drop what that step does.
        """
        backend = keras.backend.backend()
        if backend == "tensorflow":
            step = _tf_train_step
        elif backend == "jax":
            step = _jax_train_step
        else:
            raise NotImplementedError(
                f"{type(self).__name__} supports the TensorFlow and JAX backends, not {backend!r}."
            )
        _check_default_train_step(self.model, type(self).__name__, (_tf_train_step, _jax_train_step))
        self._opt = lr_lib.base_optimizer(self.model.optimizer)
        current = self.model.__dict__.get("train_step")
        if (getattr(current, "__func__", None) is step and self.model.__dict__.get("_instep_controller") is self
                and self.model.train_function is not None):
            return  # installed by an earlier fit with this controller: reuse the compiled step
        self.model._instep_controller = self
        self.model.train_step = types.MethodType(step, self.model)
        self.model.make_train_function(force=True)

    def uninstall(self):
        """Gives the model Keras's own train step back (next fit retraces)."""
        if "train_step" in self.model.__dict__:
            del self.model.__dict__["train_step"]
        self.model.train_function = None
        self.model.__dict__.pop("_instep_controller", None)

    def on_train_batch_end(self, batch, logs=None):
        if self.record_every and batch % self.record_every == 0 and logs and "step_lr" in logs:
            self.lr_history.append(float(logs["step_lr"]))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if logs is not None:
            logs.pop("step_lr", None)

def _check_default_train_step(model, who, ours):
    """Raises unless `model` trains with Keras's own step (or one of `ours`)."""
    # keras.Model.train_step resolves to the backend trainer's step, so any
    # subclass that overrides it (MCVModel, a user's model) differs from it.
    custom = type(model).train_step is not keras.Model.train_step
    patched = model.__dict__.get("train_step")
    if patched is not None and getattr(patched, "__func__", None) not in ours:
        custom = True
    if custom:
        raise TypeError(
            f"{who} sets the LR inside the train step, so it installs its own `train_step`, but "
            f"the model ({type(model).__name__}) already has a custom `train_step` (for example an "
            "MCVModel's); installing would silently replace it. Use a model that keeps Keras's "
            "train step (keras.Sequential, a functional model, or a subclass that overrides only "
            "`call`), or a between-batch LearningRateCallback instead of an in-step scheduler."
        )


def _tf_train_step(self, data):
    """Keras's TensorFlow train step plus `step_update` before apply."""
    import tensorflow as tf

    ctrl = self._instep_controller
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    with tf.GradientTape() as tape:
        y_pred = self(x, training=True) if self._call_has_training_arg else self(x)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        unscaled = _unscale_loss_for_distribution(loss)
        self._loss_tracker.update_state(
            unscaled, sample_weight=tf.shape(next(i for i in keras.tree.flatten(x) if i is not None))[0]
        )
        scaled = self.optimizer.scale_loss(loss)
    weights = self.trainable_weights
    grads = tape.gradient(scaled, weights)
    replica = tf.distribute.get_replica_context()
    replicas = replica.num_replicas_in_sync if replica is not None else 1
    if replicas > 1:
        # Each replica holds a share of the batch: the rule sees the whole batch's
        # loss and gradients, as on one device, so every replica sets the same LR.
        unscaled = replica.all_reduce(tf.distribute.ReduceOp.MEAN, unscaled)
        grads = _all_reduce_sum(replica, grads)
    lr, grads = ctrl.step_update(unscaled, grads, [w.value for w in weights])
    if replicas > 1:
        # apply_gradients clips each replica's gradients, then sums them: the first replica
        # carries the whole batch's, the others zeros, so clipnorm / global_clipnorm /
        # clipvalue act on the whole gradient as on one device. A product, not a select:
        # a non-finite gradient stays non-finite on every replica (a LossScaleOptimizer's
        # finiteness check must agree across them).
        first = tf.equal(replica.replica_id_in_sync_group, 0)
        grads = [None if g is None else tf.math.scalar_mul(tf.cast(first, g.dtype), g) for g in grads]
    self.optimizer.apply_gradients(zip(grads, weights))
    logs = dict(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))
    logs["step_lr"] = lr
    return logs


def _all_reduce_sum(replica, grads):
    """`grads` summed over the replicas (None entries kept)."""
    present = [i for i, g in enumerate(grads) if g is not None]
    summed = replica.all_reduce("sum", [grads[i] for i in present]) if present else []
    out = list(grads)
    for i, g in zip(present, summed):
        out[i] = g
    return out


def _unscale_loss_for_distribution(loss):
    """The per-replica loss times the replica count, as Keras's TF step reports it."""
    # Keras has no public name for this (keras.src.losses.loss.unscale_loss_for_distribution);
    # the same three lines on the public tf.distribute API.
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * ops.cast(replicas, loss.dtype) if replicas > 1 else loss


def _jax_train_step(self, state, data):
    """Keras's JAX train step plus `step_update` before apply."""
    import jax

    ctrl = self._instep_controller
    trainable, non_trainable, opt_vars, metrics_vars = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
    (loss, aux), grads = grad_fn(
        trainable, non_trainable, metrics_vars, x, y, sample_weight,
        training=True, optimizer_variables=opt_vars,
    )
    unscaled, y_pred, non_trainable, metrics_vars = aux
    opt_variables = self.optimizer.variables
    with keras.StatelessScope(state_mapping=list(zip(opt_variables, opt_vars))) as scope:
        lr, grads = ctrl.step_update(unscaled, list(grads), list(trainable))
    opt_vars = [scope.get_current_value(v) for v in opt_variables]
    trainable, opt_vars = self.optimizer.stateless_apply(opt_vars, grads, trainable)
    logs, metrics_vars = self._update_metrics_variables(metrics_vars, unscaled, x, y, y_pred, sample_weight)
    logs = dict(logs)
    logs["step_lr"] = lr
    return logs, (trainable, non_trainable, opt_vars, metrics_vars)
