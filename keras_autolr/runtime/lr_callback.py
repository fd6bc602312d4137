"""Shared base class for callbacks that control the learning rate.

It owns the behaviours every such callback needs: making the optimizer save
and restore keras_autolr's variables (`keras_autolr.runtime.lr.attach_state`,
from `set_model`), making its LR settable before the train step is compiled
(`keras_autolr.runtime.lr.prepare`) and reporting the LR of every epoch in `logs["learning_rate"]`, so `History`,
`CSVLogger` and `TensorBoard` show it.
"""

import keras

from keras_autolr.runtime import lr as lr_lib

__all__ = ["LearningRateCallback", "LearningRateLogger"]


class LearningRateCallback(keras.callbacks.Callback):
    """Base class for keras_autolr learning-rate callbacks.

    Subclasses call `self.get_lr()` / `self.set_lr(value)` and override the
    usual callback hooks, calling `super()` in `on_train_begin` and
    `on_epoch_end`. After `on_train_begin`, `self.initial_lr` holds the LR the
    fit started with.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.lr_callback import LearningRateCallback

    class Halve(LearningRateCallback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.set_lr(self.get_lr() / 2)

    x = np.random.rand(32, 4).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    history = model.fit(x, y, epochs=2, callbacks=[Halve()], verbose=0)
    print([round(v, 6) for v in history.history["learning_rate"]])  # [0.01, 0.005]
    ```
    """

    def set_model(self, model):
        super().set_model(model)
        # Before any callback's on_train_begin, so that a BackupAndRestore
        # listed ahead of us still restores our variables (see lr.attach_state).
        if getattr(model, "optimizer", None) is not None:
            try:
                lr_lib.attach_state(model.optimizer)
            except lr_lib.LearningRateError:
                pass  # on_train_begin says what is wrong

    def on_train_begin(self, logs=None):
        self.initial_lr = lr_lib.prepare(self.model.optimizer)
        self._sync_train_function()

    def _sync_train_function(self):
        """Recompiles the train step if the optimizer gained variables since Keras compiled it.

        Only under a `keras.distribution` on JAX, where Keras compiles the step
        with one output sharding per optimizer variable (fixed when `fit`
        starts, before `on_train_begin`), so variables added there (a schedule's
        multiplier, MLR-SNet's or HD's state) would not match it. Call it after adding them.
        """
        model = self.model
        if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
            return
        if getattr(model, "train_function", None) is None:
            return
        # Keyed on the function too: `compile` makes a new one, built with the new
        # optimizer's variables before ours were added to it.
        count = len(model.optimizer.variables)
        synced = model.__dict__.get("_autolr_synced_train_function")
        if synced is None or synced[0] is not model.train_function or synced[1] != count:
            model.make_train_function(force=True)
            model.__dict__["_autolr_synced_train_function"] = (model.train_function, count)

    def get_lr(self):
        """The model optimizer's current LR, a float."""
        return lr_lib.get_learning_rate(self.model.optimizer)

    def set_lr(self, value):
        """Sets the model optimizer's LR (see `keras_autolr.runtime.lr.set_learning_rate`)."""
        return lr_lib.set_learning_rate(self.model.optimizer, value)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.get_lr()


class LearningRateLogger(LearningRateCallback):
    """Writes the current LR into `logs["learning_rate"]` each epoch.

    Keras's own `LearningRateScheduler` and `ReduceLROnPlateau` log the LR;
    constant LRs and `LearningRateSchedule`s do not. Add this to see the LR in
    `History` for any optimizer. It only reads the LR, so a schedule is left
    as it is.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.lr_callback import LearningRateLogger

    x = np.random.rand(32, 4).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    decay = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=1, decay_rate=0.5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(decay), loss="mse")
    history = model.fit(x, y, batch_size=32, epochs=2, callbacks=[LearningRateLogger()], verbose=0)
    print([round(v, 6) for v in history.history["learning_rate"]])  # [0.005, 0.0025]
    ```
    """

    def on_train_begin(self, logs=None):
        # Reading needs no multiplier; do not wrap schedules we will never set.
        self.initial_lr = self.get_lr()
