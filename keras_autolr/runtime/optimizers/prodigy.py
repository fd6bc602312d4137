"""Prodigy (Mishchenko & Defazio, 2023): AdamW whose step size estimates itself.

A Keras 3 port of `optax.contrib.prodigy`, step for step (same state, same
order of operations, same defaults), checked against optax over 100 steps in
`tests/runtime/optimizers/test_prodigy.py`. The estimate `d` of the distance
to the solution grows from `initial_d` as training proceeds; the Adam step
size is `d * learning_rate`, with `learning_rate` a multiplier (1.0 by
default, or a schedule that starts at 1.0, e.g. cosine decay).

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.optimizers.prodigy import Prodigy

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=Prodigy(), loss="mse")
model.fit(x, y, epochs=2, batch_size=16, verbose=0)
print(float(model.optimizer.effective_learning_rate))  # d * learning_rate
```
"""

import keras
from keras import ops

from keras_autolr.runtime.optimizers._global import GlobalStepOptimizer, global_sum, global_vdot

__all__ = ["Prodigy"]


@keras.saving.register_keras_serializable(package="keras_autolr")
class Prodigy(GlobalStepOptimizer):
    """Prodigy: AdamW with an automatically estimated step size `d * learning_rate`.

    Same update as `optax.contrib.prodigy` (argument names in Keras style:
    `betas` -> `beta_1`, `beta_2`; `beta3` -> `beta_3`; `eps` -> `epsilon`;
    `estim_lr0` -> `initial_d`; `estim_lr_coef` -> `d_coef`). Weight decay is
    AdamW-style and applied as optax applies it, `-weight_decay * d*lr*bc * w`
    in the same step (not Keras's pre-step shrink); `exclude_from_weight_decay`
    is honoured.

    `effective_learning_rate` (what `keras_autolr.runtime.lr.get_learning_rate`
    and `logs["learning_rate"]` report) is `d * learning_rate`, the Adam-
    equivalent step size; the update itself also carries Adam's bias
    correction, as in optax. `keras_autolr.runtime.lr.set_learning_rate` sets
    the multiplier `learning_rate`, not `d`.

    Non-finite gradients: a step whose gradients contain NaN or inf is skipped
    (no variable or state changes; `iterations` still advances), so `d` stays
    finite. All-zero gradients leave `d` unchanged (optax would produce 0/0).
    Not supported: multi-replica `tf.distribute` strategies.

    Args:
        learning_rate: multiplier of the estimated step size, a float or a
            `LearningRateSchedule` (optax recommends one starting at 1.0).
        beta_1: decay of the first moment.
        beta_2: decay of the second moment.
        beta_3: decay of the `d` estimate's running sums; `sqrt(beta_2)` if None.
        epsilon: added to the denominator (times `d`).
        initial_d: initial (under-)estimate of `d`.
        d_coef: the estimate of `d` is multiplied by this.
        safeguard_warmup: drop the learning rate from the denominator of the
            `d` estimate (helps during warmup).
        weight_decay: AdamW-style decay coefficient, or None.
        name: the optimizer's name.
        **kwargs: other `keras.optimizers.Optimizer` arguments (clipping,
            `gradient_accumulation_steps`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.optimizers.prodigy import Prodigy

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=Prodigy(weight_decay=0.01), loss="mse")
    model.fit(x, x[:, :1], epochs=1, batch_size=16, verbose=0)
    ```
    """

    def __init__(self, learning_rate=1.0, beta_1=0.9, beta_2=0.999, beta_3=None, epsilon=1e-8,
                 initial_d=1e-6, d_coef=1.0, safeguard_warmup=False, weight_decay=None,
                 name="prodigy", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.beta_3 = beta_3
        self.epsilon = epsilon
        self.initial_d = initial_d
        self.d_coef = d_coef
        self.safeguard_warmup = bool(safeguard_warmup)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._exp_avg, self._exp_avg_sq, self._grad_sum, self._params0 = self.add_optimizer_variables(
            var_list, ["exp_avg", "exp_avg_sq", "grad_sum", "params0"])
        self._d = self.add_variable(shape=(), initializer=keras.initializers.Constant(self.initial_d),
                                    dtype="float32", name="d")
        self._numerator = self.add_variable(shape=(), dtype="float32", name="numerator_weighted")

    def global_step(self, grads, variables, learning_rate):
        b1, b2 = self.beta_1, self.beta_2
        b3 = self.beta_3 if self.beta_3 is not None else b2**0.5
        d0 = self.initial_d
        count_inc = ops.cast(self._count + 1, "float32")
        bc = ops.sqrt(1 - ops.power(b2, count_inc)) / (1 - ops.power(b1, count_inc))
        d = ops.convert_to_tensor(self._d)
        dlr = d * learning_rate * bc
        first = ops.equal(ops.convert_to_tensor(self._count), 0)
        # params0 is taken at the first step, not in build (TF's fit can lose build-time copies).
        p0s = [ops.where(first, ops.convert_to_tensor(v), self._slot(self._params0, v)) for v in variables]
        dgs = [d * g for g in grads]
        numerator_acum = global_vdot(grads, [p0 - v for p0, v in zip(p0s, variables)])
        ms = [b1 * self._slot(self._exp_avg, v) + (1 - b1) * dg for v, dg in zip(variables, dgs)]
        vs = [b2 * self._slot(self._exp_avg_sq, v) + (1 - b2) * dg * dg for v, dg in zip(variables, dgs)]
        scale = d if self.safeguard_warmup else dlr
        ss = [b3 * self._slot(self._grad_sum, v) + scale * dg / d0 for v, dg in zip(variables, dgs)]
        numerator = b3 * ops.convert_to_tensor(self._numerator) + (d / d0) * dlr * numerator_acum
        denominator = global_sum([ops.abs(s) for s in ss])
        estimate = self.d_coef * numerator / denominator
        # 0/0 when every gradient so far is zero: keep d (optax would turn it into NaN).
        d_new = ops.where(denominator > 0, ops.maximum(d, estimate), d)
        # optax's expression and order: p + (-wd * dlr * p - dlr * m / (sqrt(v) + d * eps)).
        new_vars = [v + ((-self._decay(v)) * dlr * v - dlr * m / (ops.sqrt(sq) + d_new * self.epsilon))
                    for v, m, sq in zip(variables, ms, vs)]
        ok = ops.logical_and(ops.isfinite(denominator), ops.isfinite(numerator))
        pairs = [(self._d, d_new), (self._numerator, numerator)]
        for i, v in enumerate(variables):
            pairs += [(self._slot_var(self._exp_avg, v), ms[i]), (self._slot_var(self._exp_avg_sq, v), vs[i]),
                      (self._slot_var(self._grad_sum, v), ss[i]), (self._slot_var(self._params0, v), p0s[i]),
                      (v, new_vars[i])]
        self._commit(ok, pairs)

    @property
    def effective_learning_rate(self):
        """`d * learning_rate` at the current iteration (the Adam-equivalent step size)."""
        if not self.built:
            return ops.cast(self.initial_d, "float32") * self._lr_now()
        return ops.convert_to_tensor(self._d) * self._lr_now()

    def get_config(self):
        config = super().get_config()
        config.update({
            "beta_1": self.beta_1, "beta_2": self.beta_2, "beta_3": self.beta_3,
            "epsilon": self.epsilon, "initial_d": self.initial_d, "d_coef": self.d_coef,
            "safeguard_warmup": self.safeguard_warmup,
        })
        return config
