"""Shared base of the optimizers whose step needs every variable's gradient at once.

Prodigy, D-Adaptation and DoG keep scalar state (the step-size estimate, running
sums) computed over *all* parameters. Keras calls `update_step` one variable at a
time, so these optimizers override `_backend_update_step` (which receives every
gradient and variable of the step) and run one global step there, as optax's
`update` does on the whole parameter tree.
"""

import keras
from keras import ops

__all__ = []


class GlobalStepOptimizer(keras.optimizers.Optimizer):
    """Base class: one `global_step(grads, variables, learning_rate)` per training step.

    Subclasses implement `global_step` with `self.assign` only (so it works in
    TF graphs and in JAX's stateless apply) and expose the step size they use
    as `effective_learning_rate`, which `keras_autolr.runtime.lr.get_learning_rate`
    reports. Weight decay is applied inside `global_step`, where optax applies
    it, so Keras's own pre-step decay is switched off.
    """

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        _check_single_replica(type(self).__name__)
        # Number of steps taken (skipped non-finite steps excluded): optax's `count`.
        self._count = self.add_variable(shape=(), dtype="int32", initializer="zeros", name="count")

    def _apply_weight_decay(self, variables):
        # The decay is part of `global_step` (optax's placement), not a pre-step shrink.
        return

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        grads = [ops.cast(_dense(g), "float32") for g in grads]
        self.global_step(grads, list(trainable_variables), ops.cast(learning_rate, "float32"))

    def update_step(self, gradient, variable, learning_rate):
        raise NotImplementedError(
            f"{type(self).__name__} updates all variables together; use `apply`."
        )

    def global_step(self, grads, variables, learning_rate):
        raise NotImplementedError

    def _decay(self, variable):
        """The weight-decay coefficient for `variable` (honours `exclude_from_weight_decay`)."""
        if not self.weight_decay or not self._use_weight_decay(variable):
            return 0.0
        return float(self.weight_decay)

    def _slot(self, slots, variable):
        """The current value of `variable`'s slot in `slots` (a tensor)."""
        return ops.convert_to_tensor(slots[self._get_variable_index(variable)])

    def _slot_var(self, slots, variable):
        return slots[self._get_variable_index(variable)]

    def _commit(self, ok, pairs):
        """Assigns each `(variable, new)` if `ok`, else keeps the old value (a skipped step)."""
        for var, new in pairs:
            self.assign(var, ops.where(ok, new, ops.convert_to_tensor(var)))
        count = ops.convert_to_tensor(self._count)
        self.assign(self._count, ops.where(ok, count + 1, count))

    @property
    def effective_learning_rate(self):
        """The step size this optimizer uses now (a scalar tensor); 0 before it is built."""
        raise NotImplementedError

    def _lr_now(self):
        """The base learning rate (multiplier) at the current iteration."""
        return ops.cast(self._get_current_learning_rate(), "float32")


def global_sum(tensors):
    """Sum of the sums of `tensors` (optax's `tree.sum`)."""
    total = ops.sum(tensors[0])
    for t in tensors[1:]:
        total = total + ops.sum(t)
    return total


def global_vdot(a, b):
    """Sum of elementwise products over lists of tensors (optax's `tree.vdot`)."""
    return global_sum([x * y for x, y in zip(a, b)])


def _dense(gradient):
    """`gradient` as a dense tensor.

    TensorFlow hands an `Embedding`'s gradient over as `tf.IndexedSlices`, which
    Python arithmetic (`g**2`, `0.9 * g`) rejects; the global step's sums cover
    every entry anyway, so densify (as optax's dense pytrees are).
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            return tf.convert_to_tensor(gradient)
    return gradient


def _check_single_replica(name):
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
        raise NotImplementedError(
            f"{name} keeps global (all-parameter) state and does not support "
            "multi-replica tf.distribute strategies; train on one replica or use the JAX backend."
        )
