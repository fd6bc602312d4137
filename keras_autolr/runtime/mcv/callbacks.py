"""Epoch-level MCV callbacks: the LR decision and the thesis's stopping rules.

`MCVScheduler` runs once per epoch: it reads the accumulators that
`MCVModel.train_step` filled, picks the next LR with the strategy's epoch rule
(`Strategy.select`), rebuilds the candidate list `[5, 2, 4/3, 1, 3/4, 1/2, 1/5] x lr`,
and writes what happened into `logs` (chosen LR, discard rate, every
candidate's average losses, operation counts). `MCVModel.fit` adds one
automatically.

The callbacks do not import `MCVModel` (which imports them to add them in
`fit`): they accept any model with the MCV protocol, `strategy`, `mcv_state`,
`set_candidates` and `reset_mcv_sums`.

`MCVStopping` is the thesis's stopping rule: patience on the epoch's average
validation-batch loss (`logs["mcv_val_batch_loss"]`); a non-finite value stops
at once; either way the weights of the best epoch are restored.

Resuming. Both callbacks' Python state (`MCVScheduler.decisions`;
`MCVStopping`'s best value, best epoch, patience count and best weights) is
saved with the optimizer's keras_autolr state (`keras_autolr.runtime.lr.add_host_state`),
so a `keras.callbacks.BackupAndRestore` resume continues it: the decision log
holds every epoch and the stopping rule stops where the uninterrupted run does.
`MCVModel.fit` lists `BackupAndRestore` after these callbacks, so each backup
holds the epoch's decision and stopping state.

Example:

```python
import keras, numpy as np
from keras_autolr.runtime.mcv import MCVModel, MCVScheduler, MCVStopping

inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
model = MCVModel(inner, method="method3", factors=[2.0, 1.0, 0.5])
model.compile(keras.optimizers.Adam(1e-3),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x, y = np.random.rand(128, 4), np.random.randint(0, 3, 128)
model.fit(x, y, epochs=3, batch_size=32, verbose=0,
          callbacks=[MCVScheduler(), MCVStopping(patience=5),
                     keras.callbacks.CSVLogger("log.csv")])
```
"""

import math

import keras
import numpy as np

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_callback import LearningRateCallback

__all__ = ["MCVScheduler", "MCVStopping"]

_PROTOCOL = ("strategy", "mcv_state", "set_candidates", "reset_mcv_sums")


def _model(cb):
    m = cb.model
    if not all(hasattr(m, name) for name in _PROTOCOL):
        raise TypeError(
            f"{type(cb).__name__} needs an MCVModel; got {type(m).__name__}. Wrap "
            "your model: keras_autolr.runtime.mcv.MCVModel(model, method=...)."
        )
    return m


def _keep_state(cb, model):
    """Saves `cb._host_state()` with the model's optimizer from now on (from `set_model`, so
    the optimizer reads a backup that a BackupAndRestore loads before our `on_train_begin`)."""
    if getattr(model, "optimizer", None) is not None:
        lr_lib.add_host_state(model.optimizer, cb._STATE, cb._host_state)


def _restored_state(cb):
    """The state a weights file just loaded (a BackupAndRestore resume) holds for `cb`, or None."""
    optimizer = getattr(cb.model, "optimizer", None)
    return None if optimizer is None else lr_lib.take_host_state(optimizer, cb._STATE)


class MCVScheduler(LearningRateCallback):
    """Picks the LR of the next epoch from the MCV candidate losses.

    Logs (per epoch): `learning_rate` (LR used this epoch; for "voting" the
    last voted LR), `mcv_next_lr`, `mcv_val_batch_loss`, `mcv_discard_rate`,
    `mcv_cand{i}_lr`, `mcv_cand{i}_val_loss` (and `_train_loss` for method 2),
    `mcv_forward`, `mcv_backward`, `mcv_opt_steps` (operations per step,
    measured) and `mcv_theory_forward/backward/opt_steps` (Table 4.1).

    `decisions` lists one dict per epoch (`epoch`, `lr`, `next_lr`,
    `val_losses`, `lrs`); a `BackupAndRestore` resume restores the epochs
    before the interruption.

    Args:
        verbose: 1 prints the decision each epoch.

    Example:

    ```python
    import keras, numpy as np
    from keras_autolr.runtime.mcv import MCVModel, MCVScheduler

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = MCVModel(inner, method="method1", factors=[2.0, 1.0, 0.5])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    scheduler = MCVScheduler()
    model.fit(np.random.rand(64, 4), np.random.rand(64, 2), batch_size=16, epochs=2,
              verbose=0, callbacks=[scheduler])
    scheduler.decisions[-1]["next_lr"]
    ```
    """

    def __init__(self, verbose=0):
        super().__init__()
        self.verbose = verbose
        self.decisions = []

    _STATE = "mcv_scheduler"

    def get_config(self):
        return {"verbose": self.verbose}

    def _host_state(self):
        return {"decisions": self.decisions}

    def set_model(self, model):
        super().set_model(model)
        _keep_state(self, model)

    def _restore(self):
        state = _restored_state(self)
        if state is not None:
            self.decisions = state["decisions"]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._restore()  # a BackupAndRestore listed before us has loaded its backup
        m = _model(self)
        strategy = m.strategy
        first = strategy.first_candidates(self.get_lr())
        m.set_candidates(first)
        first_lr = strategy.first_epoch_lr(first)
        if first_lr is not None:
            self.set_lr(first_lr)
        m.reset_mcv_sums()

    def on_epoch_begin(self, epoch, logs=None):
        self._restore()  # one listed after us loads it in its on_train_begin

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        m = _model(self)
        strategy = m.strategy
        s = m.mcv_state()
        n = max(s["steps"], 1.0)
        k = int(s["mask"].sum())
        lrs = s["candidate_lrs"][:k]
        avg_val = s["sum_val"][:k] / n
        avg_train = s["sum_train"][:k] / n
        avg_cur = s["sum_current"] / n
        used_lr = self.get_lr()
        logs["learning_rate"] = used_lr
        logs["mcv_val_batch_loss"] = float(avg_cur)
        logs["mcv_discard_rate"] = s["discards"] / n
        for name, key in (("forward", "forward"), ("backward", "backward"), ("opt_steps", "opt_steps")):
            logs[f"mcv_{name}"] = s[key] / n
        theory = strategy.step_cost()
        logs["mcv_theory_forward"] = float(theory.forward)
        logs["mcv_theory_backward"] = float(theory.backward)
        logs["mcv_theory_opt_steps"] = float(theory.step)
        if strategy.trials:
            for i in range(k):
                logs[f"mcv_cand{i}_lr"] = float(lrs[i])
                logs[f"mcv_cand{i}_val_loss"] = float(avg_val[i])
                if strategy.scores_train:
                    logs[f"mcv_cand{i}_train_loss"] = float(avg_train[i])

        next_lr = used_lr
        if strategy.epoch_rule:
            idx = strategy.select(avg_val, avg_cur, avg_train, lrs)
            if idx is None or not math.isfinite(avg_cur):
                # Every candidate diverged: stop; MCVStopping restores the best epoch.
                self.model.stop_training = True
                logs["mcv_nonfinite"] = 1.0
            else:
                next_lr = strategy.clip(lrs[idx])
                self.set_lr(next_lr)
                m.set_candidates(strategy.candidates_around(next_lr))
        logs["mcv_next_lr"] = next_lr
        self.decisions.append({"epoch": epoch, "lr": used_lr, "next_lr": next_lr,
                               "val_losses": avg_val.tolist(), "lrs": lrs.tolist()})
        if self.verbose:
            print(f"\nMCV epoch {epoch + 1}: lr {used_lr:.3g} -> {next_lr:.3g}, "
                  f"val-batch loss {avg_cur:.4f}, discards {logs['mcv_discard_rate']:.1%}")
        m.reset_mcv_sums()


class MCVStopping(keras.callbacks.Callback):
    """Stops MCV training by patience or on a non-finite loss; restores the best epoch.

    Args:
        patience: epochs without improvement of `monitor` before stopping.
        monitor: log key (default: the epoch's average validation-batch loss).
        min_delta: smallest decrease that counts as an improvement.
        restore_best_weights: restore the best epoch's weights when training
            stops (a non-finite loss always restores).

    Attributes after `fit`: `best_epoch` (0-based), `best`, `stopped_epoch`,
    `reason` ("patience", "nonfinite" or None). A `BackupAndRestore` resume
    restores them, the patience count and the best weights.

    Example:

    ```python
    import keras, numpy as np
    from keras_autolr.runtime.mcv import MCVModel, MCVStopping

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = MCVModel(inner, method="method3", factors=[2.0, 1.0, 0.5])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    stop = MCVStopping(patience=2)
    model.fit(np.random.rand(64, 4), np.random.rand(64, 2), batch_size=16, epochs=4,
              verbose=0, callbacks=[stop])
    stop.best_epoch, stop.reason
    ```
    """

    def __init__(self, patience=20, monitor="mcv_val_batch_loss", min_delta=0.0,
                 restore_best_weights=True):
        super().__init__()
        if int(patience) < 1:
            raise ValueError(f"patience must be >= 1, got {patience}.")
        self.patience = int(patience)
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)

    _STATE = "mcv_stopping"

    def get_config(self):
        return {"patience": self.patience, "monitor": self.monitor,
                "min_delta": self.min_delta, "restore_best_weights": self.restore_best_weights}

    def _host_state(self):
        state = {"counters": {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}}
        for i, w in enumerate(self._best_weights or []):
            state[f"best_weights_{i}"] = np.asarray(w)
        return state

    def set_model(self, model):
        super().set_model(model)
        _keep_state(self, model)

    def _restore(self):
        state = _restored_state(self)
        if state is None:
            return
        counters = state["counters"]
        self.best, self.best_epoch, self.wait = float(counters["best"]), counters["best_epoch"], counters["wait"]
        n = sum(1 for key in state if key.startswith("best_weights_"))
        if n:
            self._best_weights = [state[f"best_weights_{i}"] for i in range(n)]

    def on_train_begin(self, logs=None):
        self.best = math.inf
        self.best_epoch = None
        self.wait = 0
        self.stopped_epoch = None
        self.reason = None
        self._best_weights = self.model.get_weights()
        self._restore()  # a BackupAndRestore listed before us has loaded its backup

    def on_epoch_begin(self, epoch, logs=None):
        self._restore()  # one listed after us (MCVModel.fit puts it there) loads in on_train_begin

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            raise KeyError(
                f"MCVStopping monitors {self.monitor!r}, which is not in the logs "
                f"({sorted(logs)}). Use it with an MCVModel or set `monitor`."
            )
        value = float(value)
        nonfinite = not math.isfinite(value) or logs.get("mcv_nonfinite") or not all(
            math.isfinite(float(v)) for k, v in logs.items()
            if k == "loss" and isinstance(v, (int, float, np.floating)))
        if nonfinite:
            self._stop(epoch, "nonfinite", restore=True)
            return
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self._stop(epoch, "patience", restore=self.restore_best_weights)

    def _stop(self, epoch, reason, restore):
        self.model.stop_training = True
        self.stopped_epoch, self.reason = epoch, reason
        if restore and self._best_weights is not None:
            self.model.set_weights(self._best_weights)
