"""ARC: a Keras callback that lets a trained controller steer the learning rate.

`ARC` is the callback (its docstring has the arguments, the logs it writes and
the behaviour worth knowing); `auto_frequency` (defined in `preprocessing.py`)
is its default number of epochs between decisions. The controller network is
in `controller.py`, its input window in `preprocessing.py`.
"""

import inspect
import math
import os
import threading
import warnings

import keras
import numpy as np
from absl import logging as absl_logging  # a Keras dependency; where Keras's own messages go

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.arc import controller as controller_lib
from keras_autolr.runtime.arc.controller import CLASS_NAMES, FACTORS, KEEP, LOWER
from keras_autolr.runtime.arc.preprocessing import (
    CYCLES,
    POINTS_PER_CYCLE,
    auto_frequency,
    batch_losses,
    build_window,
    resize_linear,
)
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


def _fit_context(callback, depth=12):
    """The `CallbackList` calling `callback` and the fit's epoch iterator (each None if not found).

    Keras gives a callback no handle on its `CallbackList` or on the data; the
    list calling the hook is a caller on the stack, and `fit` (further up)
    holds the epoch iterator in its `epoch_iterator` local.
    """
    frame = inspect.currentframe()
    found, iterator = None, None
    try:
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
            if frame is None:
                break
            local = frame.f_locals
            owner = local.get("self")
            if found is None and isinstance(owner, keras.callbacks.CallbackList) and any(
                c is callback for c in owner.callbacks
            ):
                found = owner
            elif found is not None and hasattr(local.get("epoch_iterator"), "data_adapter"):
                iterator = local["epoch_iterator"]
                break
        return found, iterator
    finally:
        del frame  # frames hold references to their locals


def _batch_layout(iterator, steps):
    """(batch size, batches per pass, last batch's size) when Keras knows every batch's size, else None.

    Known for arrays (Keras slices them in batches of `batch_size`, the last
    possibly smaller) and for any data whose batches are all full; the last
    batch's position is known when the epoch is one pass over the data.
    """
    adapter = getattr(iterator, "data_adapter", None)
    try:
        size, partial = adapter.batch_size, adapter.has_partial_batch
        num_batches, last = adapter.num_batches, adapter.partial_batch_size
    except (AttributeError, NotImplementedError):
        return None
    if not isinstance(size, (int, np.integer)) or size < 1:
        return None
    if partial is False:
        return int(size), None, None
    if partial is True and last and num_batches and getattr(iterator, "steps_per_epoch", None) in (None, steps):
        return int(size), int(num_batches), int(last)
    return None


def _samples_seen(step, layout):
    """Samples seen through `step` (0-based) of an epoch laid out as `_batch_layout` says."""
    size, num_batches, last = layout
    if num_batches is None:
        return size * (step + 1)
    step = min(step, num_batches - 1)
    return size * (step + 1) - (size - last if step == num_batches - 1 else 0)


def _changes_lr(callback):
    if isinstance(callback, _KERAS_LR_CALLBACKS):
        return True
    return isinstance(callback, LearningRateCallback) and not isinstance(callback, LearningRateLogger)


def _same_lr(a, b):
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)


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
            recommends: `auto_frequency(epochs)`, the paper's `epochs // 10`
            (CIFAR-10: 30 epochs, every 3; PTB: 98 epochs, every 9) lengthened
            where that would give more than 12 decisions, so that every run of
            10 to 300 epochs gets 6 to 12 decisions (exact counts in
            `keras_autolr.runtime.arc.preprocessing.auto_frequency`).
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
        * Each batch's own loss is recovered from Keras's running epoch mean
          (`logs["loss"]` after batch k is the mean of batches 0..k, weighted
          by their numbers of samples), exactly (to float32 rounding) when
          Keras knows every batch's size: arrays with `batch_size` (the last
          batch may be smaller), or data whose batches are all full. Otherwise
          (a `tf.data.Dataset`, `PyDataset` or generator, whose last batch may
          be smaller) batches are taken to share one size and each epoch's
          last batch, the one that may not, is left out rather than recorded
          wrongly. With `steps_per_execution > 1` one value is recorded per
          execution: the sample-weighted mean of its batches.
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
        * `keras.callbacks.BackupAndRestore` resumes ARC too: its window
          (the last 3 cycles), its position in the current cycle and a
          decision made at the last saved epoch are saved with the
          optimizer's state (`keras_autolr.runtime.lr.add_host_state`: host
          values, not variables, so the compiled step never carries them),
          which the backup saves with the model, so a resumed fit makes the same
          decisions at the same epochs as an uninterrupted one. ARC moves
          itself ahead of a `BackupAndRestore` or `ModelCheckpoint` listed
          before it, so that what they save holds ARC's end of epoch (a
          checkpoint's weights loaded with `model.load_weights` before
          `fit(initial_epoch=k)` resume ARC too, when the optimizer is built
          and `keras_autolr.runtime.lr.attach_state(model.optimizer)` was
          called before the load). `self.decisions` lists only the
          resumed fit's decisions. Resume with the same `frequency` and data
          (ARC warns and starts a new window otherwise).
        * State resets at the start of every `fit`, unless the fit starts at
          the epoch where the saved state ends (a `BackupAndRestore`
          resume, or `initial_epoch` continuing the previous fit of the same
          model in memory). `keras.models.load_model` rebuilds no callbacks:
          a fit of a loaded model starts a new window.
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
        self._carried = None  # see set_model

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
        self._reset_state()
        self.decisions = []
        self._warned_zero = False
        self._warned_other = False
        self._lr_left = None  # the LR as ARC last left it (after its own reads and writes)
        self._check_first_batch = False
        self._first_epoch = True
        callback_list, iterator = _fit_context(self)
        self._layout = _batch_layout(iterator, (self.params or {}).get("steps"))
        if callback_list is not None:
            self._run_before_backup(callback_list)
        others = [c for c in (callback_list.callbacks if callback_list else []) if c is not self and _changes_lr(c)]
        if others:
            self._warn_other(", ".join(sorted({type(c).__name__ for c in others})))

    def _reset_state(self):
        self._cycles = []  # completed cycles: (100 train points or None, val losses or None, lr)
        self._new_cycle()
        self._epochs_seen = 0
        self._pending = None  # (choice, epoch, probs, reason), applied at the next epoch begin
        self._last_epoch_losses = []

    def _new_cycle(self):
        self._train, self._val, self._has_val = [], [], False
        self._cycle_lr = None
        self._bad = False

    def _run_before_backup(self, callback_list):
        """Moves ARC ahead of a BackupAndRestore or ModelCheckpoint, so that what they save holds ARC's epoch."""
        # Safe inside CallbackList.on_train_begin's loop: the moved range is behind
        # the loop's position, and every later callback keeps its index.
        items = callback_list.callbacks
        mine = next(i for i, c in enumerate(items) if c is self)
        savers = (keras.callbacks.BackupAndRestore, keras.callbacks.ModelCheckpoint)
        backup = next((i for i, c in enumerate(items[:mine]) if isinstance(c, savers)), None)
        if backup is not None:
            items.insert(backup, items.pop(mine))

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch:
            self._first_epoch = False
            if epoch > 0:
                self._restore_state(epoch)
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
        """This epoch's per-batch losses (float32 values), exact where the batch sizes are known."""
        # Keras's CallbackList flushes async batch hooks before on_epoch_end,
        # so every batch that ended is in `_means`; nothing needs waiting for.
        with self._batch_lock:
            means = sorted(self._means.items())
        if not means:
            return []
        steps = [k for k, _ in means]
        values = [m for _, m in means]
        if self._layout is not None:
            seen = [_samples_seen(k, self._layout) for k in steps]
            return batch_losses(values, seen).tolist()
        # Batch sizes unknown (a dataset, a generator): batches of one size but
        # perhaps a smaller last one; that last value cannot be exact, so it is left out.
        return batch_losses(values[:-1], [k + 1 for k in steps[:-1]]).tolist()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # logs the LR this epoch used
        logs = logs if logs is not None else {}
        self._epochs_seen += 1
        self._last_epoch_losses = self._epoch_losses()
        for value in self._last_epoch_losses:
            if math.isfinite(value):
                self._train.append(value)
            else:
                self._bad = True
        val = logs.get("val_loss")
        if val is not None:
            val = float(np.float32(val))
            if math.isfinite(val):
                self._val.append(val)
                self._has_val = True
            else:
                self._bad = True
        decision, probs = NO_DECISION, (math.nan,) * 3
        lr = self.get_lr()
        self._lr_left = lr
        last = self._total_epochs is not None and epoch + 1 >= self._total_epochs
        if self._bad:
            if self._scalable(lr, epoch):
                decision = LOWER
                self._pending = (LOWER, epoch, probs, "non-finite loss")
            # Start a fresh cycle at the lowered LR; keep earlier finite cycles.
            self._new_cycle()
        elif self._epochs_seen % self._freq == 0:
            # A finished cycle is kept as the 100 points the window shows (float32,
            # as backed up): the window is the same whether or not the fit resumed.
            train = resize_linear(self._train, POINTS_PER_CYCLE).astype(np.float32) if self._train else None
            self._cycles.append((train, self._val if self._has_val else None, self._cycle_lr))
            self._cycles = self._cycles[-CYCLES:]
            self._new_cycle()
            if not last and self._scalable(lr, epoch):
                decision, probs = self._decide(epoch)
        logs["arc_decision"] = decision
        logs["arc_p_raise"], logs["arc_p_keep"], logs["arc_p_lower"] = (float(p) for p in probs)

    # -- state carried by BackupAndRestore -----------------------------------

    _STATE = "arc"

    def set_model(self, model):
        super().set_model(model)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            return
        try:
            host = lr_lib.attach_state(optimizer).host
        except lr_lib.LearningRateError:
            return  # on_train_begin says what is wrong
        # The state the model's previous fit ended with (this ARC's or another's), for a fit
        # that continues it in memory (`initial_epoch`); a loaded backup takes precedence.
        previous = host.get(self._STATE)
        self._carried = previous() if previous is not None else None
        # From set_model, so a BackupAndRestore listed before us saves it too.
        lr_lib.add_host_state(optimizer, self._STATE, self._host_state)

    def _host_state(self):
        """ARC's window, cycle position and pending decision: what a backup saves (JSON values)."""
        if not hasattr(self, "_freq"):
            return {}  # saved before any fit: nothing to carry
        pending = None
        if self._pending is not None:
            choice, epoch, probs, reason = self._pending
            pending = [int(choice), int(epoch), [float(p) for p in probs], reason]
        return {
            "frequency": int(self._freq), "epochs_seen": int(self._epochs_seen),
            "cycles": [[None if pts is None else [float(p) for p in pts], val, lr]
                       for pts, val, lr in self._cycles],
            "train": list(self._train), "val": list(self._val), "has_val": self._has_val,
            "bad": self._bad, "cycle_lr": self._cycle_lr, "pending": pending,
        }

    def _restore_state(self, epoch):
        """Takes back the state saved at the end of epoch `epoch - 1`, if there is one."""
        state = lr_lib.take_host_state(self.model.optimizer, self._STATE) or self._carried
        self._carried = None
        if not state or state["epochs_seen"] != epoch:
            return False  # nothing saved, or not this epoch's state: start afresh
        if state["frequency"] != self._freq:
            warnings.warn(
                f"ARC: the fit resumes at epoch {epoch + 1}, but the saved ARC state was made "
                f"with frequency {state['frequency']}, not {self._freq}; ARC starts a new window "
                "here. Resume with the same `frequency` and data.",
                stacklevel=3,
            )
            return False
        # The window's points as the uninterrupted run holds them (float32, see on_epoch_end).
        self._cycles = [(None if pts is None else np.asarray(pts, np.float32), val, lr)
                        for pts, val, lr in state["cycles"]]
        self._train, self._val = list(state["train"]), list(state["val"])
        self._has_val, self._bad, self._cycle_lr = state["has_val"], state["bad"], state["cycle_lr"]
        self._epochs_seen = epoch
        pending = state["pending"]
        self._pending = None if pending is None else (pending[0], pending[1], tuple(pending[2]), pending[3])
        return True

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
        cycles = [c for c in self._cycles if c[0] is not None and c[2] is not None and c[2] > 0]
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
