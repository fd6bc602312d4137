"""Shared base class for callbacks that control the learning rate.

It owns the two behaviours every controller needs: making the optimizer's LR
settable before the train step is compiled (`keras_autolr.runtime.lr.prepare`) and
reporting the LR of every epoch in `logs["learning_rate"]`, so `History`,
`CSVLogger` and `TensorBoard` show it.
"""

import keras

from keras_autolr.runtime import lr as lr_lib


class LearningRateCallback(keras.callbacks.Callback):
    """Base class for keras_autolr learning-rate callbacks.

    Subclasses call `self.get_lr()` / `self.set_lr(value)` and override the
    usual callback hooks, calling `super()` in `on_train_begin` and
    `on_epoch_end`.

    Example:

    ```python
    class Halve(LearningRateCallback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 5:
                self.set_lr(self.get_lr() / 2)
    ```
    """

    def on_train_begin(self, logs=None):
        self.initial_lr = lr_lib.prepare(self.model.optimizer)

    def get_lr(self):
        return lr_lib.get_learning_rate(self.model.optimizer)

    def set_lr(self, value):
        return lr_lib.set_learning_rate(self.model.optimizer, value)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.get_lr()


class LearningRateLogger(LearningRateCallback):
    """Writes the current LR into `logs["learning_rate"]` each epoch.

    Keras's own `LearningRateScheduler` and `ReduceLROnPlateau` log the LR;
    constant LRs and `LearningRateSchedule`s do not. Add this to see the LR in
    `History` for any optimizer.

    Example:

    ```python
    model.fit(x, y, epochs=3, callbacks=[LearningRateLogger()])
    ```
    """

    def on_train_begin(self, logs=None):
        # Reading needs no multiplier; do not wrap schedules we will never set.
        self.initial_lr = self.get_lr()
