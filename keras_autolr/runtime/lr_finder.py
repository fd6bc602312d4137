"""Learning-rate range test (Smith 2017; fastai's `lr_find`) that leaves the model untouched.

`find_lr` trains on one batch per step while the learning rate grows
exponentially from `min_lr` to `max_lr`, records the loss, stops early once
the smoothed loss exceeds `diverge_factor` times its best value, and then puts
back the model's weights, the optimizer's state (iterations, slots, learning
rate or schedule) and the metrics exactly as they were. The suggestions follow
fastai's definitions, computed on the smoothed curve without its first 10%
and last 5 points (when enough remain), as fastai does.

The LR is set through `keras_autolr.runtime.lr.set_learning_rate`, so any
Keras optimizer works: with a float LR the LR itself is swept; with a
`LearningRateSchedule` the schedule's multiplier is (the LR at the current
step takes the swept value); for optimizers that estimate their own step size
(`keras_autolr.runtime.optimizers.Prodigy`, ...) the base multiplier is swept.

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.lr_finder import find_lr

rng = np.random.default_rng(0)
x = rng.normal(size=(512, 4)).astype("float32")
y = x @ rng.normal(size=(4, 1)).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.optimizer.build(model.trainable_variables)
result = find_lr(model, x, y, batch_size=8, steps=50, min_lr=1e-5, max_lr=10.0)
print(result.suggestion, result.suggestions)
```

`LRFinder(x, y)` is the same test as a callback: it runs at `on_train_begin`
of `fit` and starts training at the suggested LR.
"""

import dataclasses
import math
import warnings
from typing import Optional

import keras
import numpy as np

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime import snapshot as snapshot_lib

__all__ = ["LRFinderError", "LRFinderResult", "find_lr", "steepest", "valley", "min_over_10", "LRFinder"]


class LRFinderError(ValueError):
    """Raised when a learning-rate range test cannot run on the given model or data."""


def steepest(lrs, losses):
    """The LR where the loss falls fastest per log-LR step (fastai's `steep`).

    Args:
        lrs: increasing learning rates.
        losses: the (smoothed) loss at each LR.

    Returns:
        `lrs[argmin(diff(losses) / diff(log(lrs)))]`.

    Example:

    ```python
    from keras_autolr.runtime.lr_finder import steepest

    print(steepest([1e-3, 1e-2, 1e-1, 1.0], [1.0, 0.9, 0.4, 2.0]))  # 0.01
    ```
    """
    lrs, losses = np.asarray(lrs, "float64"), np.asarray(losses, "float64")
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(slopes))])


def valley(lrs, losses):
    """The LR about 2/3 down the longest descending run of the loss (fastai's `valley`).

    Args:
        lrs: increasing learning rates.
        losses: the (smoothed) loss at each LR.

    Returns:
        the LR fastai's `valley` picks.

    Example:

    ```python
    from keras_autolr.runtime.lr_finder import valley

    print(valley([1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0], [1.0, 0.9, 0.7, 0.4, 0.3, 5.0]))
    ```
    """
    losses = list(np.asarray(losses, "float64"))
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n  # length of the longest decreasing subsequence ending at i
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


def min_over_10(lrs, losses):
    """A tenth of the LR at the lowest loss (fastai's `minimum`).

    Args:
        lrs: learning rates.
        losses: the (smoothed) loss at each LR.

    Returns:
        `lrs[argmin(losses)] / 10`.

    Example:

    ```python
    from keras_autolr.runtime.lr_finder import min_over_10

    print(min_over_10([1e-3, 1e-2, 1e-1], [1.0, 0.5, 3.0]))  # 0.001
    ```
    """
    return float(np.asarray(lrs, "float64")[int(np.argmin(losses))]) / 10


@dataclasses.dataclass
class LRFinderResult:
    """The curve of a range test and the learning rates suggested from it.

    Attributes: `lrs` (the LR, or multiplier, of each step), `losses` (the
    bias-corrected exponentially smoothed loss), `raw_losses` (each batch's
    loss), `suggestion` (= `suggestions["steepest"]`, or None), `suggestions`
    (`steepest`, `valley`, `min_over_10`; None when the loss never decreased),
    `diverged` (stopped early), `message` (why there is no suggestion, if so).

    Args:
        lrs: the swept learning rates.
        losses: the smoothed losses.
        raw_losses: the per-batch losses.
        suggestions: dict name -> LR or None.
        diverged: whether the sweep stopped on divergence.
        message: explanation when there is no suggestion.

    Example:

    ```python
    from keras_autolr.runtime.lr_finder import LRFinderResult

    r = LRFinderResult([1e-3, 1e-2], [1.0, 0.5], [1.0, 0.4], {"steepest": 1e-3})
    print(r.suggestion)
    ```
    """

    lrs: list
    losses: list
    raw_losses: list
    suggestions: dict
    diverged: bool = False
    message: Optional[str] = None

    @property
    def suggestion(self):
        """The steepest-descent LR of the smoothed curve, or None."""
        return self.suggestions.get("steepest")

    def plot(self, path=None):
        """Plots the smoothed loss against the LR (log scale), marking the suggestions.

        Args:
            path: where to save the figure (PNG etc.); if None it is only returned.

        Returns:
            the matplotlib `Axes`.

        Example:

        ```python
        from keras_autolr.runtime.lr_finder import LRFinderResult

        r = LRFinderResult([1e-3, 1e-2, 1e-1], [1.0, 0.5, 2.0], [1.0, 0.4, 2.5],
                           {"steepest": 1e-3, "valley": 1e-2, "min_over_10": 1e-3})
        r.plot("lr_find.png")
        ```
        """
        import matplotlib  # an optional dependency (the "plots" extra)

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.raw_losses, color="0.8", lw=1, label="loss")
        ax.plot(self.lrs, self.losses, lw=2, label="smoothed loss")
        for (name, lr), marker in zip(self.suggestions.items(), "o^s"):
            if lr is not None:
                i = int(np.argmin(np.abs(np.log(self.lrs) - math.log(lr))))
                ax.plot([lr], [self.losses[i]], marker, label=f"{name}: {lr:.2e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.legend()
        if path is not None:
            fig.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(fig)
        return ax


def _batches(x, y, batch_size):
    """Yields `(x, y, sample_weight)` batches from arrays, a tf.data.Dataset or an iterable."""
    if isinstance(x, np.ndarray) or (hasattr(x, "shape") and not hasattr(x, "element_spec")):
        n = len(x)
        for start in range(0, n - batch_size + 1, batch_size):  # full batches only
            yield x[start:start + batch_size], None if y is None else y[start:start + batch_size], None
        return
    if y is not None:
        raise LRFinderError("Pass `y` only with array inputs; a dataset yields (x, y) itself.")
    # tf.data yields TF tensors, which the JAX backend cannot train on: take numpy.
    source = x.as_numpy_iterator() if hasattr(x, "as_numpy_iterator") else x
    for batch in source:
        batch = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
        yield (batch + (None, None))[:3]


def _smooth(raw, beta):
    avg, out = 0.0, []
    for i, value in enumerate(raw):
        avg = beta * avg + (1 - beta) * value
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def _suggest(lrs, losses, requested_steps):
    # fastai drops the first 10% of the requested steps and the last 5 points.
    lo, hi = requested_steps // 10, len(lrs) - 5
    if hi - lo < 3:
        lo, hi = 0, len(lrs)
    lrs, losses = lrs[lo:hi], losses[lo:hi]
    if len(losses) < 2 or min(losses[1:]) >= losses[0]:
        return None
    return {"steepest": steepest(lrs, losses), "valley": valley(lrs, losses),
            "min_over_10": min_over_10(lrs, losses)}


class _Snapshot:
    """Every variable of the model, its optimizer and its metrics, and the LR object."""

    def __init__(self, model, opt):
        self.opt = opt
        self.raw_lr = opt._learning_rate
        self.n_opt_vars = len(opt.variables)
        self.variables = list(model.variables) + list(opt.variables) + list(model.metrics_variables)
        self.values = snapshot_lib.variable_values(self.variables)

    def restore(self, model):
        opt = self.opt
        # A multiplier variable set_learning_rate installed during the sweep is removed again.
        for extra in list(opt.variables)[self.n_opt_vars:]:
            opt._untrack_variable(extra)
        opt._learning_rate = self.raw_lr
        snapshot_lib.assign_values(self.variables, self.values, "model, optimizer and metric variables")
        # The compiled step may hold the sweep's LR object: recompile on next use.
        model.train_function = None


def find_lr(model, x, y=None, *, batch_size=32, min_lr=1e-7, max_lr=10.0, steps=100, smoothing=0.98,
            diverge_factor=4.0):
    """Runs an exponential learning-rate range test and restores the model afterwards.

    One batch per step (in order, no shuffling; arrays are cut into full
    batches of `batch_size`); step `i` of `n` trains at
    `min_lr * (max_lr / min_lr) ** (i / (n - 1))`. If the data has fewer
    batches than `steps`, the sweep is shorter: it still spans
    `min_lr..max_lr`, over as many steps as there are batches (at least 5).
    The sweep stops early when the smoothed loss exceeds `diverge_factor`
    times its lowest value or a loss is NaN/inf (that batch is not recorded).

    Args:
        model: a compiled Keras model whose optimizer is built
            (`model.optimizer.build(model.trainable_variables)`).
        x: input array, or a `tf.data.Dataset` / iterable of `(x, y)` batches.
        y: target array (arrays only).
        batch_size: batch size for arrays.
        min_lr: first learning rate.
        max_lr: last learning rate.
        steps: number of steps (batches) of the sweep.
        smoothing: beta of the exponential moving average of the loss.
        diverge_factor: stop when the smoothed loss exceeds this times its best.

    Returns:
        an `LRFinderResult`. If the loss never decreased, its `suggestion` is
        None and `message` says why (a warning is also issued).

    Raises:
        LRFinderError: the model is not compiled, not built, its optimizer is
            not built, the arguments are invalid, or there are fewer than 5 batches.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.lr_finder import find_lr

    x = np.random.default_rng(0).normal(size=(256, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    model.optimizer.build(model.trainable_variables)
    result = find_lr(model, x, x.sum(axis=1), batch_size=8, steps=30, max_lr=1.0)
    model.compile(optimizer=keras.optimizers.SGD(result.suggestion or 1e-2), loss="mse")
    ```
    """
    if not (0 < min_lr < max_lr) or not math.isfinite(max_lr):
        raise LRFinderError(f"Need 0 < min_lr < max_lr (finite), got min_lr={min_lr}, max_lr={max_lr}.")
    if int(steps) < 5:
        raise LRFinderError(f"steps must be at least 5, got {steps}.")
    if not 0 <= smoothing < 1:
        raise LRFinderError(f"smoothing must be in [0, 1), got {smoothing}.")
    if not diverge_factor > 1:
        raise LRFinderError(f"diverge_factor must be > 1, got {diverge_factor}.")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        raise LRFinderError("Compile the model (model.compile(optimizer=..., loss=...)) before find_lr.")
    if not model.built:
        raise LRFinderError("Build the model first (give it an Input, or call model.build(input_shape)).")
    opt = lr_lib.base_optimizer(model.optimizer)
    if not opt.built:
        raise LRFinderError(
            "The optimizer is not built, so its state could not be restored after the sweep. "
            "Call `model.optimizer.build(model.trainable_variables)` first.")
    steps = int(steps)
    batches = []
    for batch in _batches(x, y, int(batch_size)):
        batches.append(batch)
        if len(batches) == steps:
            break
    if len(batches) < 5:
        raise LRFinderError(f"The data gives {len(batches)} batch(es); the sweep needs at least 5. "
                            "Use a smaller batch_size or more data.")
    n = len(batches)
    sweep = [min_lr * (max_lr / min_lr) ** (i / (n - 1)) for i in range(n)]
    snapshot = _Snapshot(model, opt)
    lrs, raw = [], []
    diverged = False
    try:
        lr_lib.prepare(opt)  # install a schedule's multiplier before the step is compiled
        model.train_function = None
        best, avg = math.inf, 0.0
        for i, (lr, (xb, yb, sw)) in enumerate(zip(sweep, batches)):
            lr_lib.set_learning_rate(opt, lr)
            logs = model.train_on_batch(xb, yb, sample_weight=sw, return_dict=True)
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                diverged = True
                break
            lrs.append(lr)
            raw.append(loss)
            avg = smoothing * avg + (1 - smoothing) * loss
            smoothed = avg / (1 - smoothing ** (i + 1))  # the same formula as _smooth
            best = min(best, smoothed)
            if smoothed > diverge_factor * best:
                diverged = True
                break
    finally:
        snapshot.restore(model)
    losses = _smooth(raw, smoothing)
    suggestions = _suggest(lrs, losses, steps) if lrs else None
    message = None
    if suggestions is None:
        message = ("The smoothed loss never fell below its first value over "
                   f"{len(lrs)} step(s) from {min_lr:g} to {lrs[-1] if lrs else min_lr:g}: no LR "
                   "to suggest. Lower min_lr, check the data and loss, or run more steps.")
        warnings.warn(message, stacklevel=2)
        suggestions = {"steepest": None, "valley": None, "min_over_10": None}
    return LRFinderResult(lrs, losses, raw, suggestions, diverged, message)


PICKS = ("steepest", "valley", "min_over_10")


class LRFinder(keras.callbacks.Callback):
    """Callback: runs `find_lr` when `fit` begins and starts training at the suggested LR.

    At `on_train_begin` the range test runs on the data given here (not on
    `fit`'s), the model and optimizer are restored exactly (so training starts
    from the pre-sweep weights and state), and the LR is set with
    `keras_autolr.runtime.lr.set_learning_rate` to `result.suggestions[pick]`:
    a float LR becomes that value, a `LearningRateSchedule` is scaled so that
    its value at the current step is that value (its shape is kept), an
    optimizer that estimates its own step size gets that base multiplier. The
    result is kept in `self.result`. When there is no suggestion (the loss
    never fell) it warns and leaves the LR unchanged. The sweep's own steps
    do not count in `optimizer.iterations`. It sweeps at every `fit` call
    except one that resumes from a `keras.callbacks.BackupAndRestore` backup
    written after its sweep: the result is saved with the optimizer's
    keras_autolr state (`keras_autolr.runtime.lr.add_host_state`) and comes
    back with the backup, as does the LR. List `BackupAndRestore` before
    `LRFinder`: listed after it, the backup is read only after the sweep,
    which is then redone (and warned about), though training continues the same.

    Args:
        x: sweep inputs (an array), or a `tf.data.Dataset` / iterable of
            `(x, y)` batches.
        y: sweep targets (arrays only).
        pick: which suggestion to use: `"steepest"`, `"valley"` or `"min_over_10"`.
        **find_lr_kwargs: passed to `find_lr` (`batch_size`, `min_lr`,
            `max_lr`, `steps`, `smoothing`, `diverge_factor`).

    Raises:
        LRFinderError: `pick` is not one of the three, or `find_lr` cannot run.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.lr_finder import LRFinder

    x = np.random.default_rng(0).normal(size=(256, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    finder = LRFinder(x, y, batch_size=8, steps=30, max_lr=1.0)
    model.fit(x, y, epochs=1, batch_size=32, callbacks=[finder], verbose=0)
    print(finder.result.suggestion)
    ```
    """

    def __init__(self, x, y=None, *, pick="steepest", **find_lr_kwargs):
        super().__init__()
        if pick not in PICKS:
            raise LRFinderError(f"pick must be one of {PICKS}, got {pick!r}.")
        self.x, self.y, self.pick, self.find_lr_kwargs = x, y, pick, find_lr_kwargs
        self.result = None
        self.sweeps = 0  # range tests run by this callback (a resumed fit runs none)

    _STATE = "lr_finder"

    def set_model(self, model):
        super().set_model(model)
        # Here, before any on_train_begin, so that the optimizer reads our state from a
        # backup that a BackupAndRestore listed before us loads.
        if getattr(model, "optimizer", None) is not None:
            lr_lib.add_host_state(model.optimizer, self._STATE, self._host_state)

    def _host_state(self):
        return {"result": None if self.result is None else dataclasses.asdict(self.result)}

    def _restored(self):
        state = lr_lib.take_host_state(self.model.optimizer, self._STATE)
        if state is None or state["result"] is None:
            return None
        return LRFinderResult(**state["result"])

    def on_train_begin(self, logs=None):
        model = self.model
        self._first_epoch = True
        restored = self._restored()  # a BackupAndRestore listed before us has loaded its backup
        if restored is not None:
            self.result = restored  # the backup holds the LR it set, and the weights
            return
        opt = lr_lib.base_optimizer(model.optimizer)
        if not opt.built:
            opt.build(model.trainable_variables)
        self.result = find_lr(model, self.x, self.y, **self.find_lr_kwargs)
        self.sweeps += 1
        lr = self.result.suggestions.get(self.pick)
        if lr is None:
            warnings.warn(f"LRFinder: no {self.pick!r} suggestion ({self.result.message}); "
                          f"the learning rate is left unchanged at {lr_lib.get_learning_rate(opt):g}.",
                          stacklevel=2)
        else:
            lr_lib.set_learning_rate(opt, lr)
        # find_lr dropped the compiled step, which `fit` built before this hook and calls next.
        model.make_train_function(force=True)

    def on_epoch_begin(self, epoch, logs=None):
        if not self._first_epoch:
            return
        self._first_epoch = False
        restored = self._restored()  # loaded by a BackupAndRestore listed after us
        if restored is not None:
            self.result = restored
            warnings.warn("LRFinder swept although this fit resumes from a BackupAndRestore backup "
                          "(which holds the sweep's result and LR): list BackupAndRestore before "
                          "LRFinder to skip the sweep on resume.", stacklevel=2)
