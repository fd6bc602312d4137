"""ARC: a Keras callback that lets a trained controller steer the learning rate.

Every `frequency` epochs (a *cycle*), ARC shows its controller the last three
cycles of training (every batch's training loss, every epoch's validation
loss, each cycle's LR) and multiplies the LR by 1.618 (raise), 1 (keep) or
0.618 (lower), whichever the controller finds most likely to help
(Autonomous Learning Rate Control, Wu et al.). It needs no tuning and works
with or without validation data.

Example:

```python
model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
history = model.fit(x, y, validation_split=0.1, epochs=30,
                    callbacks=[keras_autolr.ARC(verbose=1)])
history.history["arc_decision"]   # -1 (no decision), 0 raise, 1 keep, 2 lower
```

Args:
    controller: path of a controller saved in `.keras` format, a
        `keras.Model` mapping (None, 300, 3) to (None, 3), or `None` for the
        controller shipped with keras_autolr (`saved_controllers/arc.keras`).
    frequency: epochs per cycle (an int >= 1), or `"auto"` (default) for
        about 10 decisions over the run, as the paper's section 5 recommends:
        `max(1, epochs // 10)`. The paper's CIFAR-10 setting is 3 (30 epochs).
    use_validation: `False` hides the validation loss from the controller
        (its column is zeroed, as for a fit without validation data); useful
        when validation loss is much noisier than training loss (e.g. early
        BatchNorm statistics on short epochs).
    verbose: 1 prints each decision.

Logs written every epoch (for `History`, `CSVLogger`, `TensorBoard`):
`learning_rate` (the LR used in that epoch), `arc_decision` (-1 when no
decision was made at the end of that epoch, else 0 raise / 1 keep / 2 lower)
and `arc_p_raise`, `arc_p_keep`, `arc_p_lower` (NaN when no decision).

Behaviour worth knowing:
    * Per-batch losses are recovered from Keras's running epoch mean by
      differencing (`logs["loss"]` after batch k is the mean of batches
      0..k); Keras weights that mean by batch size, so the value for a
      smaller last batch is approximate.
    * A non-finite training or validation loss in an epoch makes ARC lower
      the LR (x0.618) at the end of that epoch without asking the
      controller; non-finite values are kept out of the window, and ARC never
      writes a non-finite LR.
    * If the run is too short for a single decision, ARC warns and keeps the LR.
    * State resets at the start of every `fit`.
"""

import math
import os
import warnings

import keras
import numpy as np
from keras.src.utils import io_utils

from keras_autolr.arc import controller as controller_lib
from keras_autolr.arc.controller import CLASS_NAMES, FACTORS, KEEP, LOWER
from keras_autolr.arc.preprocessing import CYCLES, build_window
from keras_autolr.controller import LearningRateController

__all__ = ["ARC", "auto_frequency"]

NO_DECISION = -1


def auto_frequency(epochs, decisions=10):
    """Epochs per cycle giving about `decisions` decisions over `epochs` epochs."""
    return max(1, int(epochs) // int(decisions))


class ARC(LearningRateController):
    __doc__ = __doc__

    def __init__(self, controller=None, frequency="auto", use_validation=True, verbose=0):
        super().__init__()
        if frequency != "auto":
            if isinstance(frequency, bool) or not isinstance(frequency, (int, np.integer)) or frequency < 1:
                raise ValueError(
                    f"frequency must be a positive number of epochs or 'auto', got {frequency!r}."
                )
            frequency = int(frequency)
        if controller is not None and not isinstance(controller, (str, os.PathLike, keras.Model)):
            raise controller_lib.ControllerError(
                "controller must be a path to a .keras file, a keras.Model or None, "
                f"got {type(controller).__name__}."
            )
        if isinstance(controller, keras.Model):
            controller_lib.check_controller(controller)
        self.controller = controller
        self.frequency = frequency
        self.use_validation = bool(use_validation)
        self.verbose = verbose
        self._predictor = None
        self.decisions = []

    # -- controller ----------------------------------------------------------

    def _get_predictor(self):
        if self._predictor is None:
            model = self.controller
            if not isinstance(model, keras.Model):
                model = controller_lib.load_controller(self.controller)
            self._predictor = controller_lib.Predictor(model)
        return self._predictor

    # -- callback hooks ------------------------------------------------------

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._get_predictor()
        epochs = (self.params or {}).get("epochs")
        if self.frequency == "auto":
            if epochs is None:
                warnings.warn("ARC: the number of epochs is unknown; using frequency=3.", stacklevel=2)
                self._freq = 3
            else:
                self._freq = auto_frequency(epochs)
        else:
            self._freq = self.frequency
        if epochs is not None and epochs <= self._freq:
            warnings.warn(
                f"ARC decides every {self._freq} epoch(s) but this fit runs {epochs}; "
                "it will make no decision and keep the learning rate. Train for more "
                "epochs or pass a smaller `frequency`.",
                stacklevel=2,
            )
        self._total_epochs = epochs
        self._cycles = []  # completed cycles: (train losses, val losses, lr)
        self._new_cycle()
        self._epochs_seen = 0
        self.decisions = []

    def _new_cycle(self):
        self._train, self._val, self._has_val = [], [], False
        self._cycle_lr = None
        self._bad = False

    def on_epoch_begin(self, epoch, logs=None):
        self._prev_batch, self._prev_mean = -1, 0.0
        if self._cycle_lr is None:
            self._cycle_lr = self.get_lr()

    def on_train_batch_end(self, batch, logs=None):
        if not logs or "loss" not in logs:
            return
        mean = float(logs["loss"])
        k, p = int(batch), self._prev_batch
        if k <= p:  # a new epoch counter we did not see begin
            p, self._prev_mean = -1, 0.0
        value = ((k + 1) * mean - (p + 1) * self._prev_mean) / (k - p)
        self._prev_batch, self._prev_mean = k, mean
        if math.isfinite(value):
            self._train.append(value)
        else:
            self._bad = True

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # logs the LR this epoch used
        logs = logs if logs is not None else {}
        self._epochs_seen += 1
        val = logs.get("val_loss")
        if val is not None:
            val = float(val)
            if math.isfinite(val):
                self._val.append(val)
                self._has_val = True
            else:
                self._bad = True
        decision, probs = NO_DECISION, (math.nan,) * 3
        if self._bad:
            decision = self._apply(LOWER, epoch, probs, reason="non-finite loss")
            # Start a fresh cycle at the lowered LR; keep earlier finite cycles.
            self._new_cycle()
        elif self._epochs_seen % self._freq == 0:
            self._cycles.append((self._train, self._val if self._has_val else None, self._cycle_lr))
            self._cycles = self._cycles[-CYCLES:]
            self._new_cycle()
            last = self._total_epochs is not None and self._epochs_seen >= self._total_epochs
            if not last:
                decision, probs = self._decide(epoch)
        logs["arc_decision"] = decision
        logs["arc_p_raise"], logs["arc_p_keep"], logs["arc_p_lower"] = (float(p) for p in probs)

    # -- decisions -----------------------------------------------------------

    def window(self):
        """The controller input for the cycles seen so far, or None."""
        cycles = [c for c in self._cycles if len(c[0]) > 0]
        if not cycles:
            return None
        vals = [c[1] for c in cycles]
        val_losses = None if not self.use_validation or any(v is None for v in vals) else vals
        return build_window([c[0] for c in cycles], val_losses, [c[2] for c in cycles])

    def _decide(self, epoch):
        window = self.window()
        if window is None:
            return NO_DECISION, (math.nan,) * 3
        probs = self._get_predictor()(window)
        if not np.all(np.isfinite(probs)):
            choice = KEEP
        else:
            choice = int(np.argmax(probs))
        return self._apply(choice, epoch, probs), probs

    def _apply(self, choice, epoch, probs, reason=None):
        old = self.get_lr()
        new = old * FACTORS[choice]
        if choice != KEEP:
            if math.isfinite(new) and new > 0:
                self.set_lr(new)
            else:
                new = old  # never write a non-finite or zero LR
        self.decisions.append(
            {"epoch": epoch, "decision": CLASS_NAMES[choice], "lr_before": old, "lr_after": new,
             "probabilities": [float(p) for p in probs], "reason": reason}
        )
        if self.verbose:
            why = f" ({reason})" if reason else (
                " (p raise {:.2f}, keep {:.2f}, lower {:.2f})".format(*probs)
            )
            io_utils.print_msg(
                f"\nEpoch {epoch + 1}: ARC {CLASS_NAMES[choice]}s the learning rate "
                f"{old:.3g} -> {new:.3g}{why}."
            )
        return choice

    # -- config --------------------------------------------------------------

    def get_config(self):
        """Config for `ARC.from_config`.

        A controller passed as a path round-trips; one passed as an in-memory
        `keras.Model` cannot be stored in a config and is recorded as `None`
        (the shipped controller): save it with `model.save(path)` and pass the path.
        """
        ctrl = self.controller
        path = os.fspath(ctrl) if isinstance(ctrl, (str, os.PathLike)) else None
        return {"controller": path, "frequency": self.frequency,
                "use_validation": self.use_validation, "verbose": self.verbose}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
