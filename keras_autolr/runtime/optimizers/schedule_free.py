"""`ScheduleFreeAdamW` with a fix for Keras's TensorFlow backend.

Keras 3.15's `keras.optimizers.ScheduleFreeAdamW` sets its `momentum` slots
(the z sequence) to a copy of the weights in `build`. Inside `model.fit` on the
TensorFlow backend that copy is lost: the slots start at zero, so the first
update pulls every weight towards zero and training stalls. Measured here
(`python -m keras_autolr.runtime.optimizers.schedule_free`, small regression, 5 epochs, LR 3e-3):
after one full-batch step the largest weight is 0.003 on TensorFlow and 0.67
on JAX, and Keras's optimizer only takes the loss from 2.89 to 2.82 on
TensorFlow, against 2.66 to 2.03 on JAX.

This subclass is Keras's algorithm unchanged except that the momentum slot is
initialised from the weights *inside the first update step* (when the
iteration count is 0) instead of in `build`, which works on every backend, and
that the old momentum is used as a value rather than re-read from the variable
after it was updated. It is what the `schedule_free` baseline uses.

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.optimizers.schedule_free import ScheduleFreeAdamW

x = np.random.rand(64, 4).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=ScheduleFreeAdamW(2.5e-3), loss="mse")
model.fit(x, y, epochs=2, verbose=0)
```
"""

import keras
from keras import ops

__all__ = ["ScheduleFreeAdamW"]


@keras.saving.register_keras_serializable(package="keras_autolr")
class ScheduleFreeAdamW(keras.optimizers.ScheduleFreeAdamW):
    """Keras's `ScheduleFreeAdamW`, with the z sequence started from the weights on every backend.

    Same arguments, defaults and algorithm as `keras.optimizers.ScheduleFreeAdamW`
    (schedule-free AdamW, Defazio et al. 2024); only where the momentum slot is
    initialised differs (see the module docstring).

    Args:
        learning_rate: a float or a `LearningRateSchedule`; Keras's default
            is 0.0025.
        **kwargs: the other arguments of `keras.optimizers.ScheduleFreeAdamW`
            (`beta_1`, `beta_2`, `epsilon`, `warmup_steps`, `weight_decay`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.optimizers.schedule_free import ScheduleFreeAdamW

    keras.utils.set_random_seed(0)
    x = np.random.rand(64, 4).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=ScheduleFreeAdamW(1e-2, warmup_steps=4), loss="mse")
    history = model.fit(x, y, epochs=2, verbose=0)
    print(history.history["loss"][-1] < history.history["loss"][0])  # True
    ```
    """

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        local_step = ops.cast(self.iterations + 1, variable.dtype)
        beta_1 = ops.cast(self.beta_1, variable.dtype)
        beta_2 = ops.cast(self.beta_2, variable.dtype)
        epsilon = ops.cast(self.epsilon, variable.dtype)
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(local_step / ops.cast(self.warmup_steps, variable.dtype), 1.0)
        i = self._get_variable_index(variable)
        momentum, velocity = self._momentums[i], self._velocities[i]
        # z starts at the weights: done here because build's copy can be lost (TF fit).
        m_old = ops.where(ops.equal(self.iterations, 0), ops.convert_to_tensor(variable),
                          ops.convert_to_tensor(momentum))
        v_new = ops.add(velocity, ops.multiply(ops.subtract(ops.square(gradient), velocity), 1 - beta_2))
        self.assign(velocity, v_new)
        denom = ops.add(ops.sqrt(v_new / (1 - ops.power(beta_2, local_step))), epsilon)
        m_new = ops.subtract(m_old, ops.divide(ops.multiply(lr, gradient), denom))
        self.assign(momentum, m_new)
        weight = 1.0 / local_step
        x_old = ops.divide(ops.subtract(variable, ops.multiply(1 - beta_1, m_old)), beta_1)
        x_new = ops.add(ops.multiply(1 - weight, x_old), ops.multiply(weight, m_new))
        self.assign(variable, ops.add(ops.multiply(1 - beta_1, m_new), ops.multiply(beta_1, x_new)))


if __name__ == "__main__":
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    for opt in (keras.optimizers.ScheduleFreeAdamW(3e-3), ScheduleFreeAdamW(3e-3)):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
        m.compile(optimizer=opt, loss="mse")
        h = m.fit(x, y, epochs=5, batch_size=32, verbose=0)
        print(keras.backend.backend(), type(opt).__module__, [round(v, 3) for v in h.history["loss"]])
