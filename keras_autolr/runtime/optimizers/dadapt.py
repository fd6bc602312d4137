"""D-Adaptation Adam (Defazio & Mishchenko, 2023): AdamW with an estimated step size.

A Keras 3 port of `optax.contrib.dadapt_adamw`, step for step (same state,
order of operations and defaults), checked against optax over 100 steps in
`tests/runtime/optimizers/test_optax_parity.py`. The estimate `d` of the
distance to the solution (in the infinity norm) only grows; the Adam step
size is `d * learning_rate` with `learning_rate` a multiplier (1.0 by default).

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.optimizers.dadapt import DAdaptAdam

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=DAdaptAdam(), loss="mse")
model.fit(x, x[:, :1], epochs=2, batch_size=16, verbose=0)
print(float(model.optimizer.effective_learning_rate))  # d * learning_rate
```
"""

import keras
from keras import ops

from keras_autolr.runtime.optimizers._global import GlobalStepOptimizer, global_sum, global_vdot

__all__ = ["DAdaptAdam"]


@keras.saving.register_keras_serializable(package="keras_autolr")
class DAdaptAdam(GlobalStepOptimizer):
    """D-Adaptation AdamW: Adam with the step size `d * learning_rate` estimated online.

    Same update as `optax.contrib.dadapt_adamw` (Keras-style names: `betas`
    -> `beta_1`, `beta_2`; `eps` -> `epsilon`; `estim_lr0` -> `initial_d`).
    Weight decay is applied as optax applies it, `-weight_decay * d*lr*bc * w`
    in the same step; `exclude_from_weight_decay` is honoured.

    `effective_learning_rate` (reported by `keras_autolr.runtime.lr.get_learning_rate`
    and in `logs["learning_rate"]`) is `d * learning_rate`;
    `keras_autolr.runtime.lr.set_learning_rate` sets the multiplier
    `learning_rate`, not `d`. A step with NaN/inf gradients is skipped (nothing
    changes, `iterations` still advances); all-zero gradients leave `d`
    unchanged. Not supported: multi-replica `tf.distribute` strategies.

    Args:
        learning_rate: multiplier of the estimated step size, a float or a
            `LearningRateSchedule`.
        beta_1: decay of the first moment.
        beta_2: decay of the second moment (its square root weights `d`'s sums).
        epsilon: added to the denominator.
        initial_d: initial (under-)estimate of `d`.
        weight_decay: AdamW-style decay coefficient, or None.
        name: the optimizer's name.
        **kwargs: other `keras.optimizers.Optimizer` arguments.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.optimizers.dadapt import DAdaptAdam

    opt = DAdaptAdam(weight_decay=0.01)
    w = keras.Variable([1.0, -2.0])
    opt.apply([keras.ops.convert_to_tensor([0.5, -0.5])], [w])
    print(float(opt.effective_learning_rate))
    ```
    """

    def __init__(self, learning_rate=1.0, beta_1=0.9, beta_2=0.999, epsilon=1e-8, initial_d=1e-6,
                 weight_decay=None, name="dadapt_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.initial_d = initial_d

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._exp_avg, self._exp_avg_sq, self._grad_sum = self.add_optimizer_variables(
            var_list, ["exp_avg", "exp_avg_sq", "grad_sum"])
        self._d = self.add_variable(shape=(), initializer=keras.initializers.Constant(self.initial_d),
                                    dtype="float32", name="d")
        self._numerator = self.add_variable(shape=(), dtype="float32", name="numerator_weighted")

    def global_step(self, grads, variables, learning_rate):
        b1, b2 = self.beta_1, self.beta_2
        sb2 = b2**0.5
        count_inc = ops.cast(self._count + 1, "float32")
        bc = ops.sqrt(1 - ops.power(b2, count_inc)) / (1 - ops.power(b1, count_inc))
        d = ops.convert_to_tensor(self._d)
        dlr = d * learning_rate * bc
        old_s = [ops.convert_to_tensor(self._slot(self._grad_sum, v)) for v in variables]
        old_v = [ops.convert_to_tensor(self._slot(self._exp_avg_sq, v)) for v in variables]
        numerator_acum = global_vdot(grads, [s / (ops.sqrt(sq) + self.epsilon) for s, sq in zip(old_s, old_v)])
        ms = [b1 * self._slot(self._exp_avg, v) + (1 - b1) * dlr * g for v, g in zip(variables, grads)]
        vs = [b2 * sq + (1 - b2) * g * g for sq, g in zip(old_v, grads)]
        ss = [sb2 * s + (1 - sb2) * dlr * g for s, g in zip(old_s, grads)]
        l1 = global_sum([ops.abs(s) for s in ss])
        numerator = sb2 * ops.convert_to_tensor(self._numerator) + (1 - sb2) * dlr * numerator_acum
        estimate = numerator / ((1 - sb2) * l1)
        # 0/0 while every gradient is zero: keep d (optax would turn it into NaN).
        d_new = ops.where(l1 > 0, ops.maximum(d, estimate), d)
        # optax's expression and order: p + (-wd * dlr * p - m / (sqrt(v) + eps)).
        new_vars = [v + ((-self._decay(v)) * dlr * v - m / (ops.sqrt(sq) + self.epsilon))
                    for v, m, sq in zip(variables, ms, vs)]
        ok = ops.logical_and(ops.isfinite(l1), ops.isfinite(numerator))
        pairs = [(self._d, d_new), (self._numerator, numerator)]
        for i, v in enumerate(variables):
            pairs += [(self._slot_var(self._exp_avg, v), ms[i]), (self._slot_var(self._exp_avg_sq, v), vs[i]),
                      (self._slot_var(self._grad_sum, v), ss[i]), (v, new_vars[i])]
        self._commit(ok, pairs)

    @property
    def effective_learning_rate(self):
        """`d * learning_rate` at the current iteration (the Adam-equivalent step size)."""
        d = ops.convert_to_tensor(self._d) if self.built else ops.cast(self.initial_d, "float32")
        return d * self._lr_now()

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "initial_d": self.initial_d})
        return config
