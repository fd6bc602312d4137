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
`optimizer.add_variable`, so the state is part of the compiled training state
on both backends (on JAX the update runs in a `keras.StatelessScope` over the
optimizer variables), and write the LR with
`keras_autolr.runtime.lr.assign_learning_rate`.

The step's logs gain `"step_lr"`, the LR used at that step; with
`record_every=k` the controller stores every k-th one in `self.lr_history`.

Example:

```python
class Halving(InStepScheduler):
    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.install()

    def step_update(self, loss, grads, weights):
        lr = keras_autolr.runtime.lr.learning_rate_tensor(self.model.optimizer) * 0.5
        keras_autolr.runtime.lr.assign_learning_rate(self.model.optimizer, lr)
        return lr, grads
```
"""

import types

import keras
from keras import ops

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_callback import LearningRateCallback

__all__ = ["InStepScheduler", "sanitize"]


def sanitize(grads, finite):
    """Zeroes all gradients when `finite` (a scalar bool tensor) is False."""
    return [None if g is None else ops.where(finite, g, ops.zeros_like(g)) for g in grads]


class InStepScheduler(LearningRateCallback):
    """A `LearningRateCallback` whose per-batch rule runs inside `train_step`.

    Args:
        record_every: store every k-th step LR in `self.lr_history` (0: off;
            reading it costs one small host sync per recorded step).
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
        backend = keras.backend.backend()
        if backend == "tensorflow":
            step = _tf_train_step
        elif backend == "jax":
            step = _jax_train_step
        else:
            raise NotImplementedError(
                f"{type(self).__name__} supports the TensorFlow and JAX backends, not {backend!r}."
            )
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



def _tf_train_step(self, data):
    """Keras's TensorFlow train step plus `step_update` before apply."""
    import tensorflow as tf
    from keras.src import tree
    from keras.src.losses import loss as loss_module

    ctrl = self._instep_controller
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    with tf.GradientTape() as tape:
        y_pred = self(x, training=True) if self._call_has_training_arg else self(x)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        unscaled = loss_module.unscale_loss_for_distribution(loss)
        self._loss_tracker.update_state(
            unscaled, sample_weight=tf.shape(next(i for i in tree.flatten(x) if i is not None))[0]
        )
        scaled = self.optimizer.scale_loss(loss)
    weights = self.trainable_weights
    grads = tape.gradient(scaled, weights)
    lr, grads = ctrl.step_update(unscaled, grads, [w.value for w in weights])
    self.optimizer.apply_gradients(zip(grads, weights))
    logs = dict(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))
    logs["step_lr"] = lr
    return logs


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
