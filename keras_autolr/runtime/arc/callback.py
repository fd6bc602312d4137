"""ARC: a Keras callback that lets a trained controller steer the learning rate.

`ARC` is the callback (its docstring has the arguments, the logs it writes and
the behaviour worth knowing); `auto_frequency` is its default number of epochs
between decisions. The controller network is in `controller.py`, its input
window in `preprocessing.py`.
"""

import inspect
import math
import os
import threading
import warnings

import keras
import numpy as np
from absl import logging as absl_logging  # a Keras dependency; where Keras's own messages go

from keras_autolr.runtime.arc import controller as controller_lib
from keras_autolr.runtime.arc.controller import CLASS_NAMES, FACTORS, KEEP, LOWER
from keras_autolr.runtime.arc.preprocessing import CYCLES, build_window
from keras_autolr.runtime.lr_callback import LearningRateCallback, LearningRateLogger

__all__ = ["ARC", "auto_frequency"]

NO_DECISION = -1

# Callbacks that change the LR themselves: with ARC their changes compound.
_KERAS_LR_CALLBACKS = (keras.callbacks.ReduceLROnPlateau, keras.callbacks.LearningRateScheduler)

# Loaded controllers and their compiled forward passes, one per file version
# per process: loading a .keras file and tracing the forward pass cost ~0.3 s,
# which would otherwise be paid by every fit.
_PREDICTORS = {}
_PREDICTORS_LOCK = threading.Lock()


def _predictor_for_path(path):
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
    except OSError:
        key = None  # let load_controller raise its own clear error
    with _PREDICTORS_LOCK:
        if key is not None and key in _PREDICTORS:
            return _PREDICTORS[key]
        predictor = controller_lib.Predictor(controller_lib.load_controller(path))
        if key is not None:
            _PREDICTORS[key] = predictor
        return predictor


def _fit_callbacks(callback, depth=8):
    """The other callbacks of the fit that is calling `callback`, or None if not found.

    Keras gives a callback no handle on its `CallbackList`; the list that is
    calling the hook is a caller on the stack, so it is looked up there.
    """
    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
            if frame is None:
                return None
            owner = frame.f_locals.get("self")
            if isinstance(owner, keras.callbacks.CallbackList) and any(c is callback for c in owner.callbacks):
                return [c for c in owner.callbacks if c is not callback]
        return None
    finally:
        del frame  # frames hold references to their locals


def _changes_lr(callback):
    if isinstance(callback, _KERAS_LR_CALLBACKS):
        return True
    return isinstance(callback, LearningRateCallback) and not isinstance(callback, LearningRateLogger)


def _same_lr(a, b):
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)


def auto_frequency(epochs, decisions=10):
    """Returns the epochs per cycle giving about `decisions` decisions over `epochs` epochs.

    Args:
        epochs: the length of the fit.
        decisions: how many decisions to aim for (the paper: about 10).

    Returns:
        `max(1, epochs // decisions)`.

    Example:

    ```python
    from keras_autolr.runtime.arc.callback import auto_frequency

    print(auto_frequency(30), auto_frequency(5))  # 3 1
    ```
    """
    return max(1, int(epochs) // int(decisions))


class ARC(LearningRateCallback):
    """Raises, keeps or lowers the learning rate every few epochs, as a trained controller decides.

    Every `frequency` epochs (a *cycle*), ARC shows its controller the last
    three cycles of training (every batch's training loss, every epoch's
    validation loss, each cycle's LR) and multiplies the LR by 1.618 (raise),
    1 (keep) or 0.618 (lower), whichever the controller finds most likely to
    help (Autonomous Learning Rate Control, Wu et al.). It needs no tuning and
    works with or without validation data.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr import ARC

    keras.utils.set_random_seed(0)
    x = np.random.rand(256, 8).astype("float32")
    y = x @ np.random.rand(8, 1).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    history = model.fit(x, y, validation_split=0.25, epochs=3, batch_size=32, verbose=0,
                        callbacks=[ARC(frequency=1, verbose=1)])
    print(history.history["arc_decision"])   # -1 (no decision), 0 raise, 1 keep, 2 lower
    print([round(v, 6) for v in history.history["learning_rate"]])  # the LR each epoch used
    ```

    Args:
        controller: path of a controller saved in `.keras` format, a
            `keras.Model` mapping (None, 300, 3) to (None, 3), or `None` for
            the controller shipped with keras_autolr
            (`saved_controllers/arc.keras`).
        frequency: epochs per cycle (an int >= 1), or `"auto"` (default) for
            about 10 decisions over the run, as the paper's section 5
            recommends: `max(1, epochs // 10)`. The paper's CIFAR-10 setting
            is 3 (30 epochs).
        use_validation: `False` hides the validation loss from the controller
            (its column is zeroed, as for a fit without validation data);
            useful when validation loss is much noisier than training loss
            (e.g. early BatchNorm statistics on short epochs).
        verbose: 1 prints each decision.

    Raises:
        ValueError: `frequency` is neither `"auto"` nor a positive int.
        ControllerError: `controller` is of the wrong type or shape (a file
            is checked when training begins).

    Logs written every epoch (for `History`, `CSVLogger`, `TensorBoard`):
    `learning_rate` (the LR used in that epoch), `arc_decision` (-1 when no
    decision was made at the end of that epoch, else 0 raise / 1 keep / 2
    lower) and `arc_p_raise`, `arc_p_keep`, `arc_p_lower` (NaN when no
    decision). `self.decisions` lists every decision with the LR before and
    after.

    Behaviour worth knowing:
        * Per-batch losses are recovered from Keras's running epoch mean by
          differencing (`logs["loss"]` after batch k is the mean of batches
          0..k); Keras weights that mean by batch size, so the value for a
          smaller last batch is approximate. With `steps_per_execution > 1`
          one value is recorded per execution.
        * The batch hook only stores that value, so ARC is `async_safe`: on
          backends where Keras dispatches batch callbacks on a worker thread
          (JAX), it does not make each step wait for the host. Values are
          keyed by batch index and put in order at the end of the epoch
          (Keras has run every batch hook by then). A batch that begins but
          never ends (the empty last step Keras tries on a dataset of unknown
          size) is simply absent.
        * A decision is made at the end of a cycle's last epoch and applied
          at the start of the next epoch (or when the fit ends, e.g. stopped
          early by `EarlyStopping`), so every epoch-end log (`History`,
          `CSVLogger`, `TensorBoard`'s `epoch_learning_rate`, in any callback
          order) shows the LR that epoch used. `self.decisions` lists the
          decisions applied, with the LR before and after.
        * ARC should be the only callback changing the LR: it warns once
          per fit, naming the callback to remove, when another one is in the
          fit (`ReduceLROnPlateau`, `LearningRateScheduler`, another
          keras_autolr LR callback), or when it finds the LR changed between
          its own writes (any other code setting it).
        * If the LR is 0 (a schedule that reached 0, e.g. `CosineDecay` with
          `alpha=0`), ARC cannot scale it: it warns once and makes no
          decision while the LR is 0.
        * The shipped (or any path-given) controller is loaded and its
          forward pass compiled once per process and shared by every ARC
          instance.
        * A non-finite training or validation loss in an epoch makes ARC
          lower the LR (x0.618) for the next epoch without asking the
          controller; non-finite values are kept out of the window, and ARC
          never writes a non-finite LR.
        * If the run is too short for a single decision, ARC warns and keeps
          the LR.
        * State resets at the start of every `fit`.
    """

    # The batch hook only stores a scalar under a lock (see _epoch_losses).
    async_safe = True

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
        self._batch_lock = threading.Lock()
        self._means = {}

    def __getstate__(self):
        # Locks cannot be copied (KerasTuner deep-copies callbacks); the
        # predictor is a cache that is rebuilt on demand.
        state = self.__dict__.copy()
        state.pop("_batch_lock", None)
        state["_predictor"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._batch_lock = threading.Lock()

    # -- controller ----------------------------------------------------------

    def _get_predictor(self):
        if self._predictor is None:
            if isinstance(self.controller, keras.Model):
                self._predictor = controller_lib.Predictor(self.controller)
            else:
                path = self.controller
                if path is None:
                    path = controller_lib.default_controller_path()
                self._predictor = _predictor_for_path(path)
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
        self._pending = None  # (choice, epoch, probs, reason), applied at the next epoch begin
        self._warned_zero = False
        self._warned_other = False
        self._lr_left = None  # the LR as ARC last left it (after its own reads and writes)
        self._check_first_batch = False
        others = [c for c in (_fit_callbacks(self) or []) if _changes_lr(c)]
        if others:
            self._warn_other(", ".join(sorted({type(c).__name__ for c in others})))

    def _new_cycle(self):
        self._train, self._val, self._has_val = [], [], False
        self._cycle_lr = None
        self._bad = False

    def on_epoch_begin(self, epoch, logs=None):
        self._check_lr(epoch)
        if self._pending is not None:
            self._apply(*self._pending)
            self._pending = None
        with self._batch_lock:
            self._means = {}
        if self._cycle_lr is None:
            self._cycle_lr = self.get_lr()
        self._lr_left = self.get_lr()
        self._check_first_batch = True

    def on_train_batch_begin(self, batch, logs=None):
        # Main thread, before the epoch's first step: nothing has trained
        # since on_epoch_begin, so a different LR was set by someone else.
        if self._check_first_batch:
            self._check_first_batch = False
            self._check_lr(self._epochs_seen)

    def on_train_batch_end(self, batch, logs=None):
        # May run on a worker thread (async dispatch), in any order.
        value = logs.get("loss") if logs else None
        if value is not None:
            with self._batch_lock:
                self._means[int(batch)] = float(value)

    def on_train_end(self, logs=None):
        # A decision logged at the last epoch (a non-finite loss, a fit stopped
        # early) is applied now, after every epoch-end log was written.
        if self._pending is not None:
            self._apply(*self._pending)
            self._pending = None

    def _check_lr(self, epoch):
        """Warns (once) if the LR is not what ARC left: another callback set it."""
        lr = self.get_lr()
        if self._lr_left is not None and not _same_lr(lr, self._lr_left) and not self._warned_other:
            self._warn_other(None, f"ARC left {self._lr_left:.3g}, found {lr:.3g} at epoch {epoch + 1}")
        self._lr_left = lr

    def _warn_other(self, names, seen=None):
        self._warned_other = True
        if names:
            what = f"{names} also changes the learning rate in this fit"
            fix = f"Remove {names} from `callbacks`"
        else:
            what = f"the learning rate changed between ARC's own writes ({seen}): another callback changes it too"
            fix = ("Remove the other learning-rate callback (e.g. LearningRateScheduler, "
                   "ReduceLROnPlateau, a custom one setting optimizer.learning_rate)")
        warnings.warn(
            f"ARC: {what}. The changes compound (ARC scales whatever LR it finds) and the "
            f"other callback's logs['learning_rate'] can overwrite ARC's. {fix}, or remove "
            "ARC: ARC alone raises and lowers the LR (it lowers it when training stalls).",
            stacklevel=3,
        )

    def _epoch_losses(self):
        """This epoch's per-batch losses, from the running means of the ended batches."""
        # Keras's CallbackList flushes async batch hooks before on_epoch_end,
        # so every batch that ended is in `_means`; nothing needs waiting for.
        with self._batch_lock:
            means = sorted(self._means.items())
        losses, p, prev = [], -1, 0.0
        for k, mean in means:
            losses.append(((k + 1) * mean - (p + 1) * prev) / (k - p))
            p, prev = k, mean
        return losses

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # logs the LR this epoch used
        logs = logs if logs is not None else {}
        self._epochs_seen += 1
        for value in self._epoch_losses():
            if math.isfinite(value):
                self._train.append(value)
            else:
                self._bad = True
        val = logs.get("val_loss")
        if val is not None:
            val = float(val)
            if math.isfinite(val):
                self._val.append(val)
                self._has_val = True
            else:
                self._bad = True
        decision, probs = NO_DECISION, (math.nan,) * 3
        lr = self.get_lr()
        self._lr_left = lr
        last = self._total_epochs is not None and self._epochs_seen >= self._total_epochs
        if self._bad:
            if self._scalable(lr, epoch):
                decision = LOWER
                self._pending = (LOWER, epoch, probs, "non-finite loss")
            # Start a fresh cycle at the lowered LR; keep earlier finite cycles.
            self._new_cycle()
        elif self._epochs_seen % self._freq == 0:
            self._cycles.append((self._train, self._val if self._has_val else None, self._cycle_lr))
            self._cycles = self._cycles[-CYCLES:]
            self._new_cycle()
            if not last and self._scalable(lr, epoch):
                decision, probs = self._decide(epoch)
        logs["arc_decision"] = decision
        logs["arc_p_raise"], logs["arc_p_keep"], logs["arc_p_lower"] = (float(p) for p in probs)

    # -- decisions -----------------------------------------------------------

    def _scalable(self, lr, epoch):
        """Whether ARC can scale `lr`; warns once per fit when it cannot (LR 0)."""
        if math.isfinite(lr) and lr > 0:
            return True
        if not self._warned_zero:
            self._warned_zero = True
            warnings.warn(
                f"ARC: the learning rate is {lr:g} at the end of epoch {epoch + 1} (the "
                "optimizer's schedule reached 0, e.g. CosineDecay with alpha=0); ARC cannot "
                "scale it, so it makes no decision while it stays there. Use a schedule "
                "that stays positive (alpha > 0) or a float learning rate.",
                stacklevel=3,
            )
        return False

    def window(self):
        """The controller input for the cycles seen so far, or None."""
        # A cycle that ran at LR 0 (a warm-up from 0) has no LR ratio to show.
        cycles = [c for c in self._cycles if len(c[0]) > 0 and c[2] is not None and c[2] > 0]
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
        self._pending = (choice, epoch, probs, None)
        return choice, probs

    def _apply(self, choice, epoch, probs, reason=None):
        """Applies a decision made at the end of `epoch`; records it only if applied."""
        old = self.get_lr()
        new = old * FACTORS[choice]
        if not (math.isfinite(new) and new > 0):
            return False  # never write a non-finite or zero LR (or record it as done)
        if choice != KEEP:
            self.set_lr(new)
        self.decisions.append(
            {"epoch": epoch, "decision": CLASS_NAMES[choice], "lr_before": old, "lr_after": new,
             "probabilities": [float(p) for p in probs], "reason": reason}
        )
        if self.verbose:
            why = f" ({reason})" if reason else (
                " (p raise {:.2f}, keep {:.2f}, lower {:.2f})".format(*probs)
            )
            msg = (f"\nEpoch {epoch + 1}: ARC {CLASS_NAMES[choice]}s the learning rate "
                   f"{old:.3g} -> {new:.3g}{why}.")
            # As Keras's callbacks print: stdout, or absl logging when interactive logging is off.
            if keras.config.is_interactive_logging_enabled():
                print(msg, flush=True)
            else:
                absl_logging.info(msg)
        return True

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
