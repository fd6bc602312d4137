"""DoG, Distance over Gradients (Ivgi, Hinder & Carmon, 2023): SGD with a parameter-free step.

A Keras 3 port of `optax.contrib.dog`, checked against optax over 100 steps in
`tests/runtime/optimizers/test_optax_parity.py`. The step size is
`eta_t = learning_rate * max_k ||x_k - x_0|| / sqrt(sum_k ||g_k||^2 + eps)`
(norms over all parameters together). The authors recommend averaging the
iterates (e.g. `keras.optimizers.Optimizer(use_ema=True)` arguments).

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.optimizers.dog import DoG

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=DoG(), loss="mse")
model.fit(x, x[:, :1], epochs=2, batch_size=16, verbose=0)
print(float(model.optimizer.effective_learning_rate))  # the last step's eta
```
"""

import keras
from keras import ops

from keras_autolr.runtime.optimizers._global import GlobalStepOptimizer, global_sum

__all__ = ["DoG"]

_INIT_STEPS = ("heuristic", "distance", "learning_rate")


def _sq_norm(tensors):
    return global_sum([ops.square(t) for t in tensors])


@keras.saving.register_keras_serializable(package="keras_autolr")
class DoG(GlobalStepOptimizer):
    """Distance-over-Gradients SGD: step `learning_rate * r_max / sqrt(G + eps)`.

    Same update as `optax.contrib.dog`; optax's `init_step=(tag, value)` is
    split into `init_step` (the tag) and `init_step_value`:

    * `"heuristic"` (default): `r_0 = init_step_value * (1 + ||x_0||)`; the
      suggested value is 1e-6, 1e-4 for models with batch normalization;
    * `"distance"`: `r_0 = init_step_value`;
    * `"learning_rate"`: the first step size is `init_step_value`.

    `x_0` (and `r_0`) are taken at the first step. Weight decay is optax's
    `add_decayed_weights` before DoG: `weight_decay * w` is added to the
    gradient (and so enters `G`); `exclude_from_weight_decay` is honoured
    (optax's `mask`).

    `effective_learning_rate` (reported by `keras_autolr.runtime.lr.get_learning_rate`
    and `logs["learning_rate"]`) is `learning_rate * eta` of the last step (0
    before the first step: eta depends on the step's gradient).
    `keras_autolr.runtime.lr.set_learning_rate` sets the multiplier
    `learning_rate`. A step with NaN/inf gradients is skipped (nothing changes,
    `iterations` still advances). Not supported: multi-replica `tf.distribute`.

    Args:
        learning_rate: multiplier of DoG's step size, a float or a
            `LearningRateSchedule`.
        init_step: "heuristic", "distance" or "learning_rate" (see above).
        init_step_value: the value for `init_step`.
        epsilon: added to the sum of squared gradient norms.
        weight_decay: coefficient of the decay added to the gradient, or None.
        name: the optimizer's name.
        **kwargs: other `keras.optimizers.Optimizer` arguments.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.optimizers.dog import DoG

    opt = DoG(init_step="distance", init_step_value=1e-3)
    w = keras.Variable([1.0, -2.0])
    opt.apply([keras.ops.convert_to_tensor([0.5, -0.5])], [w])
    print(float(opt.effective_learning_rate))  # 1e-3 / sqrt(0.5 + 1e-8)
    ```
    """

    def __init__(self, learning_rate=1.0, init_step="heuristic", init_step_value=1e-6, epsilon=1e-8,
                 weight_decay=None, name="dog", **kwargs):
        if init_step not in _INIT_STEPS:
            raise ValueError(f"init_step must be one of {_INIT_STEPS}, got {init_step!r}.")
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.init_step = init_step
        self.init_step_value = init_step_value
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._params0 = self.add_optimizer_variables(var_list, "params0")
        self._max_dist = self.add_variable(shape=(), dtype="float32", name="max_dist")
        self._sum_sq = self.add_variable(shape=(), dtype="float32", name="sum_sq_norm_grads")
        self._eta = self.add_variable(shape=(), dtype="float32", name="eta")

    def global_step(self, grads, variables, learning_rate):
        first = ops.equal(ops.convert_to_tensor(self._count), 0)
        values = [ops.convert_to_tensor(v) for v in variables]
        p0s = [ops.where(first, v, self._slot(self._params0, ref)) for v, ref in zip(values, variables)]
        if self.init_step == "heuristic":
            r0 = self.init_step_value * (1 + ops.sqrt(_sq_norm(values)))
        else:
            r0 = ops.cast(self.init_step_value if self.init_step == "distance" else 0.0, "float32")
        max_dist = ops.where(first, r0, ops.convert_to_tensor(self._max_dist))
        grads = [g + self._decay(ref) * v if self._decay(ref) else g
                 for g, v, ref in zip(grads, values, variables)]
        dist = ops.sqrt(_sq_norm([p0 - v for p0, v in zip(p0s, values)]))
        max_dist = ops.maximum(max_dist, dist)
        sum_sq = ops.convert_to_tensor(self._sum_sq) + _sq_norm(grads)
        eta = max_dist / ops.sqrt(sum_sq + self.epsilon)
        if self.init_step == "learning_rate":
            eta = ops.where(first, ops.cast(self.init_step_value, "float32"), eta)
        new_vars = [v + (-learning_rate) * (eta * g) for v, g in zip(values, grads)]
        ok = ops.isfinite(sum_sq)
        pairs = [(self._max_dist, max_dist), (self._sum_sq, sum_sq), (self._eta, eta)]
        for i, v in enumerate(variables):
            pairs += [(self._slot_var(self._params0, v), p0s[i]), (v, new_vars[i])]
        self._commit(ok, pairs)

    @property
    def effective_learning_rate(self):
        """`learning_rate * eta`, eta being the last step's DoG step size (0 before any step)."""
        if not self.built:
            return ops.cast(0.0, "float32")
        return ops.convert_to_tensor(self._eta) * self._lr_now()

    def get_config(self):
        config = super().get_config()
        config.update({"init_step": self.init_step, "init_step_value": self.init_step_value,
                       "epsilon": self.epsilon})
        return config
