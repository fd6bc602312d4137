"""Hypergradient descent (HD, Baydin et al. 2018): a baseline of the MLR-SNet paper.

Purpose: Keras has no HD, and the paper compares MLR-SNet with it. HD adapts
the LR online by gradient descent on the LR itself:

    lr_t = lr_{t-1} - beta * <g_t, u_{t-1}>

where g_t is the current gradient and u_{t-1} the previous update direction
per unit LR (for SGD u = -g_{t-1}, giving lr += beta <g_t, g_{t-1}>; for Adam
the Adam direction). We measure u_{t-1} = (w_t - w_{t-1}) / lr_{t-1}, which
is the right direction for any optimizer (SGD, momentum, Adam) without
reimplementing it. Runs inside the compiled step (`InStepScheduler`), so
the LR of step t uses step t's gradient. The LR is floored at `min_lr`.

Paper values: beta = 1e-3 for SGD, 1e-7 for Adam (they search
{1e-3, ..., 1e-7}). Costs one copy of the weights as state.

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.mlrsnet import HypergradientDescent

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 3)).astype("float32")
y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
hd = HypergradientDescent(beta=1e-3, record_every=1)
model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[hd])
print(hd.lr_history[:3])  # the LR moves with <g_t, g_{t-1}>
```

Args:
    beta: the hyper-LR.
    min_lr: floor of the LR.
    record_every: see `InStepScheduler`.
"""

from keras import ops

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.instep import InStepScheduler, sanitize

__all__ = ["HypergradientDescent", "hd_update"]


def hd_update(lr_prev, grads, weights, prev_weights, started, beta, min_lr):
    """Pure HD rule (keras.ops): returns the new LR.

    Args:
        lr_prev: the LR of the previous step.
        grads: current gradients (None entries are skipped).
        weights: current weights w_t.
        prev_weights: the weights before the previous update, w_{t-1}.
        started: > 0 once a previous step exists (else `lr_prev` is kept).
        beta: the hyper-LR.
        min_lr: floor of the LR.

    Returns:
        `max(lr_prev - beta * <g_t, (w_t - w_{t-1}) / lr_prev>, min_lr)`.

    Example:

    ```python
    from keras import ops
    from keras_autolr.runtime.mlrsnet.hypergradient import hd_update

    g, w, w_prev = [ops.ones((2,))], [ops.zeros((2,))], [ops.ones((2,)) * 0.1]
    # SGD at LR 0.1 stepped by -0.1 * g: gradients agree, so the LR rises by beta * |g|^2.
    print(float(hd_update(0.1, g, w, w_prev, 1.0, beta=0.01, min_lr=1e-8)))  # 0.12
    ```
    """
    dot = 0.0
    for g, w, wp in zip(grads, weights, prev_weights):
        if g is None:
            continue
        dot = dot + ops.sum(ops.cast(g, "float32") * (ops.cast(w, "float32") - wp))
    lr_prev = ops.cast(lr_prev, "float32")
    u_dot = dot / ops.maximum(lr_prev, 1e-30)
    new = ops.maximum(lr_prev - beta * u_dot, min_lr)
    return ops.where(started > 0, new, lr_prev)


class HypergradientDescent(InStepScheduler):
    __doc__ = __doc__

    def __init__(self, beta=1e-3, min_lr=1e-8, record_every=0):
        super().__init__(record_every)
        if not beta > 0:
            raise ValueError(f"beta must be positive, got {beta}.")
        self.beta = float(beta)
        self.min_lr = float(min_lr)
        self._state = {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        opt = lr_lib.base_optimizer(self.model.optimizer)
        key = id(opt)
        if key not in self._state:
            with lr_lib._strategy_scope(opt):
                # State variables that model.save / BackupAndRestore carry (see lr.add_state_variable).
                prev = [lr_lib.add_state_variable(self.model.optimizer, "hd_prev", w.shape)
                        for w in self.model.trainable_weights]
                started = lr_lib.add_state_variable(self.model.optimizer, "hd_started")
            self._state[key] = (prev, started)
        self._prev, self._started = self._state[key]
        self.install()

    def step_update(self, loss, grads, weights):
        lr_prev = lr_lib.learning_rate_tensor(self._opt)
        finite = ops.isfinite(ops.cast(loss, "float32"))
        grads = sanitize(grads, finite)
        lr = hd_update(lr_prev, grads, weights, [p.value for p in self._prev], self._started.value,
                       self.beta, self.min_lr)
        lr = ops.where(finite, lr, ops.cast(lr_prev, "float32"))
        for p, w in zip(self._prev, weights):
            p.assign(ops.cast(w, "float32"))
        self._started.assign(ops.ones(()))
        lr_lib.assign_learning_rate(self._opt, lr)
        return lr, grads

    def get_config(self):
        return {"beta": self.beta, "min_lr": self.min_lr, "record_every": self.record_every}
