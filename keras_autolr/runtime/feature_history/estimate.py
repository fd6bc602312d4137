"""Proxy estimate of final accuracy from a feature history (thesis Alg. 1).

For each of the last K recorded epochs a linear classifier, initialised from
that epoch's classifier weights, is fitted on the epoch's training
embeddings; the ensemble's mean softmax on the validation embeddings gives
the proxy accuracy. The optimizer is the thesis's appendix A.1: K=10, SGD
with momentum 0.9, weight decay 5e-4, LR 0.05 decaying linearly to 0, batch
1024. Its length is a `ClassifierFit`: by default 200 SGD steps, enough for
these small convex fits to converge whatever the number of recorded rows.
The thesis sized it as 5 epochs of its 40,000 (A.3.1) or 8,000 (A.3.2)
training features, i.e. 40-200 steps; `THESIS_FIT` is that setting, which on
a few thousand recorded rows is only a handful of steps and barely moves the
classifiers. The core is plain numpy, so it runs the same under every Keras
backend.

Examples: `estimate_file` and `estimate_from_epochs` below; `ProxyAccuracy`
(`proxy.py`) runs the estimate during `fit`.
"""

import contextlib
import dataclasses
import functools
import math
import time
import warnings

import numpy as np

from keras_autolr.runtime.feature_history.store import HistoryStore

__all__ = ["ClassifierFit", "DEFAULT_FIT", "THESIS_FIT", "ProxyEstimate", "fit_linear_classifier",
           "estimate_from_epochs", "load_epochs", "estimate_file"]


@dataclasses.dataclass(frozen=True)
class ClassifierFit:
    """How long and how each proxy linear classifier is fitted (SGD + momentum, linear LR decay).

    The length is given either in optimizer `steps` (the default, 200: the
    same amount of optimization however many rows were recorded) or in
    `epochs` over the recorded training rows (the thesis's sizing: see
    `THESIS_FIT`), never both. An epoch is `ceil(rows / batch_size)` steps,
    its last batch possibly smaller; a step budget runs whole passes over
    freshly shuffled rows until it is spent.

    Args:
        steps: number of SGD steps (default 200 when `epochs` is None).
        epochs: number of passes over the recorded training rows instead.
        batch_size: rows per step (thesis: 1024).
        learning_rate: initial LR, decaying linearly to 0 over all steps
            (thesis: 0.05).
        momentum: PyTorch-style momentum (thesis: 0.9).
        weight_decay: L2 on kernel and bias (thesis: 5e-4).

    Raises:
        ValueError: both or no positive `steps` / `epochs`.

    Example:

    ```python
    from keras_autolr.runtime.feature_history import ClassifierFit
    from keras_autolr.runtime.feature_history.estimate import THESIS_FIT

    print(ClassifierFit().total_steps(2000), THESIS_FIT.total_steps(2000))  # 200 10
    print(ClassifierFit().passes(2000))  # 100.0: 2 steps (1,024 + 976 rows) per pass over 2,000 rows
    ```
    """
    steps: int = None
    epochs: int = None
    batch_size: int = 1024
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def __post_init__(self):
        if self.steps is None and self.epochs is None:
            object.__setattr__(self, "steps", 200)
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(
                f"Give the fit's length as steps or as epochs, not both (got steps={self.steps}, "
                f"epochs={self.epochs}).")
        length = self.steps if self.steps is not None else self.epochs
        if int(length) < 0 or int(self.batch_size) < 1:
            raise ValueError(f"steps/epochs must be >= 0 and batch_size >= 1, got {self}.")

    def total_steps(self, rows):
        """Number of SGD steps this fit takes on `rows` recorded training rows."""
        if rows <= 0:
            return 0
        if self.steps is not None:
            return int(self.steps)
        return int(self.epochs) * math.ceil(rows / int(self.batch_size))

    def passes(self, rows):
        """Passes over `rows` recorded rows this fit makes (the thesis's "epochs" of A.1)."""
        if rows <= 0:
            return 0.0
        if self.epochs is not None:
            return float(self.epochs)
        full, rest = divmod(self.total_steps(rows), math.ceil(rows / int(self.batch_size)))
        return float(full + min(rest * int(self.batch_size), rows) / rows)


# The default: 200 steps at the thesis's batch size and optimizer.
DEFAULT_FIT = ClassifierFit()
# The thesis's sizing (A.1: 5 epochs at batch 1024, on all 40,000 or 8,000
# training features in A.3.1 / A.3.2, hence 40-200 steps there).
THESIS_FIT = ClassifierFit(epochs=5, batch_size=1024)


def _as_fit(fit):
    if fit is True or fit is None:
        return DEFAULT_FIT
    if isinstance(fit, ClassifierFit):
        return fit
    raise TypeError(
        f"fit must be True, False or a ClassifierFit, got {fit!r} (e.g. "
        "fit=ClassifierFit(steps=500) or fit=THESIS_FIT).")


@functools.lru_cache(maxsize=1)
def _blas_controller():
    # Built once: each ThreadpoolController scans the loaded libraries, which
    # took half of a K=10 estimate's time when done per classifier.
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _single_threaded_blas():
    """Runs the tiny matmuls on one BLAS thread.

    On a loaded 2-core machine OpenBLAS's worker threads spin against the
    training process: one K=10 estimate measured 20 s with them and 0.09 s
    without. threadpoolctl ships with scikit-learn; without it, nothing
    changes.
    """
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _as_labels(y):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1).astype(np.int64)  # one-hot
    return y.reshape(-1).astype(np.int64)


def fit_linear_classifier(features, labels, kernel=None, bias=None,
                          num_classes=None, fit=None, seed=0):
    """Fits softmax regression with SGD + momentum and linear LR decay.

    PyTorch-style SGD (`v = mu*v + g + wd*w; w -= lr*v`), weight decay on
    kernel and bias, LR decaying linearly from `fit.learning_rate` to 0 over
    all `fit.total_steps(len(features))` steps (thesis A.1).

    Args:
        features: (N, D) float array.
        labels: (N,) int labels or (N, C) one-hot.
        kernel, bias: initial weights, shapes (D, C) and (C,). Zeros if None.
        num_classes: needed only when `kernel` is None.
        fit: a `ClassifierFit` (None: `DEFAULT_FIT`, 200 steps).
        seed: seed of the batch order.

    Returns:
        (kernel, bias) as float64 numpy arrays.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history import ClassifierFit, fit_linear_classifier

    rng = np.random.default_rng(0)
    h = rng.normal(size=(200, 5))
    y = (h[:, 0] > 0).astype(int)
    w, b = fit_linear_classifier(h, y, num_classes=2, fit=ClassifierFit(steps=100, batch_size=32))
    print(np.mean((h @ w + b).argmax(1) == y))  # ~1.0: a linearly separable task
    ```
    """
    fit = _as_fit(fit)
    h = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = _as_labels(labels)
    n, d = h.shape
    if kernel is None:
        c = int(num_classes or (y.max() + 1))
        w = np.zeros((d, c))
        b = np.zeros(c)
    else:
        w = np.array(kernel, dtype=np.float64)
        b = np.zeros(w.shape[1]) if bias is None else np.array(
            bias, dtype=np.float64)
        if w.shape[0] != d:
            raise ValueError(
                f"kernel has {w.shape[0]} input rows but features have {d} "
                "columns: the recorded layer does not feed the classifier.")
    total = fit.total_steps(n)
    if total == 0:
        return w, b
    rng = np.random.default_rng(seed)
    onehot = np.eye(w.shape[1])[y]
    with np.errstate(over="ignore", invalid="ignore"), (
            _single_threaded_blas()):
        w, b = _sgd(h, onehot, w, b, rng, total, fit)
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise FloatingPointError(
            "The linear classifier diverged (non-finite weights). The "
            "embeddings are probably very large: lower learning_rate.")
    return w, b


def _sgd(h, onehot, w, b, rng, total, fit):
    n = len(h)
    batch_size = int(fit.batch_size)
    steps_per_pass = math.ceil(n / batch_size)
    vw = np.zeros_like(w)
    vb = np.zeros_like(b)
    step = 0
    while step < total:
        # Whole shuffled passes, as epochs are; a step budget may end one early.
        order = rng.permutation(n)
        for s in range(min(steps_per_pass, total - step)):
            idx = order[s * batch_size:(s + 1) * batch_size]
            hb = h[idx]
            p = _softmax(hb @ w + b) - onehot[idx]
            gw = hb.T @ p / len(idx) + fit.weight_decay * w
            gb = p.mean(axis=0) + fit.weight_decay * b
            lr = fit.learning_rate * (1.0 - step / total)
            vw = fit.momentum * vw + gw
            vb = fit.momentum * vb + gb
            w = w - lr * vw
            b = b - lr * vb
            step += 1
    return w, b


@dataclasses.dataclass
class ProxyEstimate:
    """Result of one proxy estimate.

    Args:
        accuracy, epochs, k, partial, member_accuracies, original_accuracies,
            fit_steps, fit_passes, seconds, cost_epochs: the fields below
            (the estimate fills them).

    Attributes:
        accuracy: ensemble accuracy on the validation embeddings.
        epochs: recorded epochs used (oldest first).
        k: window size asked for.
        partial: True when fewer than `k` epochs existed.
        member_accuracies: accuracy of each fitted classifier alone.
        original_accuracies: accuracy of each epoch's own classifier
            (equals the model's validation accuracy at that epoch); NaN
            where no classifier weights were recorded.
        fit_steps: SGD steps of all the members' fits together.
        fit_passes: passes over the recorded training rows of all the
            members' fits together: the estimate's cost in epochs of the
            linear fits (thesis: 5 per member, 50 for K=10).
        seconds: wall time of the estimate.
        cost_epochs: the estimate's wall time in epochs of the network's
            own training (the thesis's "0.5 epoch time"); filled by
            `ProxyAccuracy`, which times the epochs, None elsewhere.

    Example:

    ```python
    from keras_autolr.runtime.feature_history import ProxyEstimate

    r = ProxyEstimate(accuracy=0.8, epochs=[8, 9], k=2, partial=False,
                      member_accuracies=[0.78, 0.79], original_accuracies=[0.75, 0.77])
    print(r.accuracy - r.latest_accuracy)  # what the ensemble adds over the last epoch
    ```
    """
    accuracy: float
    epochs: list
    k: int
    partial: bool
    member_accuracies: list
    original_accuracies: list
    fit_steps: int = 0
    fit_passes: float = 0.0
    seconds: float = float("nan")
    cost_epochs: float = None

    @property
    def latest_accuracy(self):
        """The model's own validation accuracy at the last epoch used."""
        return self.original_accuracies[-1] if self.original_accuracies else (
            float("nan"))


def estimate_from_epochs(records, k=10, fit=True, seed=0, warn=True):
    """Ensemble estimate from a list of per-epoch dicts (oldest first).

    Each dict holds `val_embeddings`, `val_labels`, `train_embeddings`,
    `train_labels` and optionally `kernel`, `bias`; the dict's `"epoch"`
    entry (if any) is reported back. Only the last `k` are used.

    Args:
        records: list of per-epoch dicts, oldest first.
        k: window size (thesis: 10).
        fit: how to fit each classifier on the training embeddings: a
            `ClassifierFit` (`THESIS_FIT` for the thesis's 5 epochs at batch
            1024), True for `DEFAULT_FIT` (200 steps), or False to ensemble
            the recorded classifiers as they are.
        seed: seed of the classifier fits.
        warn: warn when fewer than `k` epochs exist (the estimate is partial).

    Returns:
        A `ProxyEstimate` (with its cost: `fit_steps`, `fit_passes`, `seconds`).

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history import estimate_from_epochs
    from keras_autolr.runtime.feature_history.estimate import THESIS_FIT

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    h = rng.normal(size=(100, 3)) + y[:, None]  # class-dependent embeddings
    epoch = {"train_embeddings": h, "train_labels": y, "val_embeddings": h, "val_labels": y}
    r = estimate_from_epochs([epoch, epoch], k=2)
    print(r.accuracy, r.fit_steps, estimate_from_epochs([epoch], k=1, fit=THESIS_FIT).fit_steps)  # ~0.83 400 5
    ```
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    if not records:
        raise ValueError(
            "No recorded epochs: train with FeatureHistory for at least one "
            "epoch before estimating.")
    opts = None if fit is False else _as_fit(fit)
    start = time.perf_counter()
    with _single_threaded_blas():
        result = _estimate(records, k, opts, seed, warn)
    result.seconds = time.perf_counter() - start
    return result


def _estimate(records, k, fit, seed, warn):
    window = list(records)[-k:]
    partial = len(window) < k
    if partial and warn:
        warnings.warn(
            f"Only {len(window)} recorded epoch(s), fewer than k={k}: the "
            "proxy estimate uses what exists (flagged partial).",
            stacklevel=3)
    y_val = _as_labels(window[-1]["val_labels"])
    probs = None
    members, originals, used = [], [], []
    steps, passes = 0, 0.0
    for i, rec in enumerate(window):
        h_val = np.asarray(rec["val_embeddings"], dtype=np.float64)
        h_val = h_val.reshape(len(h_val), -1)
        w0, b0 = rec.get("kernel"), rec.get("bias")
        if w0 is not None:
            z0 = h_val @ np.asarray(w0, np.float64) + (
                0 if b0 is None else np.asarray(b0, np.float64))
            originals.append(float(np.mean(z0.argmax(1) == y_val)))
        else:
            originals.append(float("nan"))
        if fit is not None:
            num_classes = None if w0 is not None else int(
                max(_as_labels(rec["train_labels"]).max(), y_val.max()) + 1)
            w, b = fit_linear_classifier(
                rec["train_embeddings"], rec["train_labels"], w0, b0,
                num_classes=num_classes, fit=fit, seed=seed + i)
            rows = len(rec["train_labels"])
            steps += fit.total_steps(rows)
            passes += fit.passes(rows)
        elif w0 is not None:
            w, b = np.asarray(w0, np.float64), np.asarray(
                b0 if b0 is not None else 0.0, np.float64)
        else:
            raise ValueError("fit=False needs recorded classifier weights.")
        p = _softmax(h_val @ w + b)
        members.append(float(np.mean(p.argmax(1) == y_val)))
        probs = p if probs is None else probs + p
        used.append(int(rec.get("epoch", i)))
    accuracy = float(np.mean(probs.argmax(1) == y_val))
    return ProxyEstimate(accuracy=accuracy, epochs=used, k=int(k),
                         partial=partial, member_accuracies=members,
                         original_accuracies=originals, fit_steps=int(steps),
                         fit_passes=float(passes))


def load_epochs(path, upto_epoch=None, k=10):
    """Reads the last `k` recorded epochs (<= `upto_epoch`) from a history.

    Args:
        path: index file written by `FeatureHistory`.
        upto_epoch: newest epoch to read (None: the last recorded).
        k: number of epochs.

    Returns:
        A list of per-epoch dicts of arrays (with their `"epoch"`), oldest
        first, as `estimate_from_epochs` takes them.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.feature_history import FeatureHistory

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 4)).astype("float32"), rng.integers(0, 3, 96)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    recorder = FeatureHistory("run.h5", (x[:64], y[:64]), (x[64:], y[64:]))
    model.fit(x[:64], y[:64], epochs=3, verbose=0, callbacks=[recorder])
    from keras_autolr.runtime.feature_history.estimate import load_epochs

    print([r["epoch"] for r in load_epochs("run.h5", upto_epoch=1)])  # [0, 1]
    ```
    """
    store = HistoryStore(path)
    epochs = [e for e in store.epochs()
              if upto_epoch is None or e <= upto_epoch][-k:]
    records = []
    for e in epochs:
        rec = store.read_epoch(e)
        rec["epoch"] = e
        records.append(rec)
    return records


def estimate_file(path, k=10, upto_epoch=None, fit=True, seed=0, warn=True):
    """Proxy estimate from a finished (or partial) HDF5 feature history.

    Args:
        path: index file written by `FeatureHistory`.
        k: number of most recent epochs to ensemble.
        upto_epoch: use only epochs <= this one (to ask "what would the
            estimate have been at epoch e"). None: all.
        fit, seed, warn: as for `estimate_from_epochs` (`fit`: a
            `ClassifierFit`, True for the default 200 steps, False for none).

    Returns:
        A `ProxyEstimate`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.feature_history import FeatureHistory

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 4)).astype("float32"), rng.integers(0, 3, 96)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    recorder = FeatureHistory("run.h5", (x[:64], y[:64]), (x[64:], y[64:]))
    model.fit(x[:64], y[:64], epochs=3, verbose=0, callbacks=[recorder])
    from keras_autolr.runtime.feature_history import estimate_file

    print(estimate_file("run.h5", k=2).accuracy)  # the ensemble of epochs 1 and 2
    ```
    """
    records = load_epochs(path, upto_epoch=upto_epoch, k=k)
    if not records:
        raise ValueError(
            f"{path!r} holds no epochs <= {upto_epoch}: nothing to estimate.")
    return estimate_from_epochs(records, k=k, fit=fit, seed=seed, warn=warn)
