"""`ProxyAccuracy`: writes the feature-history estimate into Keras logs.

Every `every` epochs it ensembles the last `k` epochs recorded by a
`FeatureHistory` (thesis Algorithm 1, lines 9-14) and writes
`logs["val_proxy_accuracy"]`, with `logs["val_proxy_members"]` (the number of
epochs used; fewer than `k` means the estimate is partial) and
`logs["val_proxy_cost_epochs"]` (the estimate's wall time in epochs of the
network's own training). Callbacks after it, such as KerasTuner's or an
Optuna pruning callback, see the keys.

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.feature_history import FeatureHistory, ProxyAccuracy

rng = np.random.default_rng(0)
x, y = rng.normal(size=(96, 4)).astype("float32"), rng.integers(0, 3, 96)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
recorder = FeatureHistory("run.h5", (x[:64], y[:64]), (x[64:], y[64:]))
h = model.fit(x[:64], y[:64], epochs=2, verbose=0, callbacks=[recorder, ProxyAccuracy(recorder, k=2)])
print(h.history["val_proxy_accuracy"])
```
"""

import dataclasses
import time

import keras

from keras_autolr.runtime.feature_history import estimate as estimate_lib

__all__ = ["ProxyAccuracy"]


class ProxyAccuracy(keras.callbacks.Callback):
    """Logs the proxy-ensemble estimate of final validation accuracy.

    Args:
        recorder: the `FeatureHistory` of the same fit. If it has not yet
            recorded the current epoch (it comes later in the callback
            list), it is asked to record it first.
        k: window of recent epochs (thesis: 10).
        every: estimate every `every` epochs (after the last one as well).
        monitor: key written into `logs`.
        fit: how to fit each linear classifier: a `ClassifierFit`
            (`THESIS_FIT`: the thesis's 5 epochs at batch 1024), True for the
            default 200 steps, or False to ensemble the recorded classifiers
            as they are.
        seed: seed of the classifier fits.

    Each result in `results` carries its cost: `fit_steps`, `fit_passes`,
    `seconds`, and `cost_epochs`, its wall time divided by the time of the
    epoch it followed (from `on_epoch_begin` to this callback's
    `on_epoch_end`, so it includes the recording pass when the recorder
    comes first).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.feature_history import FeatureHistory, ProxyAccuracy

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 4)).astype("float32"), rng.integers(0, 3, 96)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    recorder = FeatureHistory("run.h5", (x[:64], y[:64]), (x[64:], y[64:]))
    proxy = ProxyAccuracy(recorder, k=3, every=3)
    model.fit(x[:64], y[:64], epochs=3, verbose=0, callbacks=[recorder, proxy])
    print(proxy.results[-1].accuracy, proxy.results[-1].epochs)  # after epoch 3: epochs [0, 1, 2]
    ```
    """

    def __init__(self, recorder, k=10, every=1, monitor="val_proxy_accuracy",
                 fit=True, seed=0):
        super().__init__()
        if int(k) < 1 or int(every) < 1:
            raise ValueError(f"k and every must be >= 1, got k={k}, "
                             f"every={every}.")
        if recorder.keep_in_memory < k:
            recorder.keep_in_memory = int(k)
            recorder.recent = type(recorder.recent)(recorder.recent,
                                                    maxlen=int(k))
        self.recorder = recorder
        self.k = int(k)
        self.every = int(every)
        self.monitor = monitor
        self.fit = fit if fit is False else estimate_lib._as_fit(fit)
        self.seed = int(seed)
        self.results = []
        self._epoch_start = None

    def on_train_begin(self, logs=None):
        self._epochs_total = (self.params or {}).get("epochs")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def _due(self, epoch):
        last = self._epochs_total is not None and epoch + 1 == (
            self._epochs_total)
        return (epoch + 1) % self.every == 0 or last

    def on_epoch_end(self, epoch, logs=None):
        if not self._due(epoch):
            return
        self.recorder.record(epoch, logs)  # idempotent: a no-op if it has recorded `epoch`
        epoch_s = (time.perf_counter() - self._epoch_start
                   if self._epoch_start is not None else None)
        result = estimate_lib.estimate_from_epochs(
            list(self.recorder.recent), k=self.k, fit=self.fit,
            seed=self.seed, warn=False)
        if epoch_s:
            result.cost_epochs = result.seconds / epoch_s
        self.results.append(result)
        if logs is not None:
            logs[self.monitor] = result.accuracy
            logs[self.monitor.replace("accuracy", "members")] = float(
                len(result.epochs))
            if result.cost_epochs is not None:
                logs[self.monitor.replace("accuracy", "cost_epochs")] = float(
                    result.cost_epochs)

    def get_config(self):
        fit = self.fit if self.fit is False else dataclasses.asdict(self.fit)
        return {"k": self.k, "every": self.every, "monitor": self.monitor,
                "fit": fit, "seed": self.seed}
