"""Proxy estimate of final accuracy from a feature history (thesis Alg. 1).

For each of the last K recorded epochs a linear classifier, initialised from
that epoch's classifier weights, is fitted on the epoch's training
embeddings; the ensemble's mean softmax on the validation embeddings gives
the proxy accuracy. Defaults are the thesis's appendix A.1: K=10, SGD with
momentum 0.9, weight decay 5e-4, LR 0.05 decaying linearly to 0, batch 1024,
5 epochs. The core is plain numpy (a 10-class linear model on a few thousand
rows takes milliseconds), so it runs the same under every Keras backend.

Examples: `estimate_file` and `estimate_from_epochs` below; `ProxyAccuracy`
(`proxy.py`) runs the estimate during `fit`.
"""

import contextlib
import dataclasses
import functools
import math
import warnings

import numpy as np

from keras_autolr.runtime.feature_history.store import HistoryStore

__all__ = ["THESIS_FIT", "ProxyEstimate", "fit_linear_classifier", "estimate_from_epochs", "load_epochs",
           "estimate_file"]

THESIS_FIT = dict(epochs=5, batch_size=1024, learning_rate=0.05, momentum=0.9,
                  weight_decay=5e-4)


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
                          num_classes=None, epochs=5, batch_size=1024,
                          learning_rate=0.05, momentum=0.9,
                          weight_decay=5e-4, seed=0):
    """Fits softmax regression with SGD + momentum and linear LR decay.

    PyTorch-style SGD (`v = mu*v + g + wd*w; w -= lr*v`), weight decay on
    kernel and bias, LR decaying linearly from `learning_rate` to 0 over all
    steps (thesis A.1).

    Args:
        features: (N, D) float array.
        labels: (N,) int labels or (N, C) one-hot.
        kernel, bias: initial weights, shapes (D, C) and (C,). Zeros if None.
        num_classes: needed only when `kernel` is None.
        epochs, batch_size, learning_rate, momentum, weight_decay: the SGD
            settings (defaults: thesis A.1).
        seed: seed of the batch order.

    Returns:
        (kernel, bias) as float64 numpy arrays.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history import fit_linear_classifier

    rng = np.random.default_rng(0)
    h = rng.normal(size=(200, 5))
    y = (h[:, 0] > 0).astype(int)
    w, b = fit_linear_classifier(h, y, num_classes=2, epochs=20, batch_size=32)
    print(np.mean((h @ w + b).argmax(1) == y))  # ~1.0: a linearly separable task
    ```
    """
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
    if n == 0 or epochs <= 0:
        return w, b
    rng = np.random.default_rng(seed)
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    vw = np.zeros_like(w)
    vb = np.zeros_like(b)
    onehot = np.eye(w.shape[1])[y]
    with np.errstate(over="ignore", invalid="ignore"), (
            _single_threaded_blas()):
        w, b = _sgd(h, onehot, w, b, vw, vb, rng, epochs, steps_per_epoch,
                    total, batch_size, learning_rate, momentum, weight_decay)
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise FloatingPointError(
            "The linear classifier diverged (non-finite weights). The "
            "embeddings are probably very large: lower learning_rate.")
    return w, b


def _sgd(h, onehot, w, b, vw, vb, rng, epochs, steps_per_epoch, total,
         batch_size, learning_rate, momentum, weight_decay):
    n = len(h)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(steps_per_epoch):
            idx = order[s * batch_size:(s + 1) * batch_size]
            hb = h[idx]
            p = _softmax(hb @ w + b) - onehot[idx]
            gw = hb.T @ p / len(idx) + weight_decay * w
            gb = p.mean(axis=0) + weight_decay * b
            lr = learning_rate * (1.0 - step / total)
            vw = momentum * vw + gw
            vb = momentum * vb + gb
            w = w - lr * vw
            b = b - lr * vb
            step += 1
    return w, b


@dataclasses.dataclass
class ProxyEstimate:
    """Result of one proxy estimate.

    Args:
        accuracy, epochs, k, partial, member_accuracies, original_accuracies:
            the fields below (the estimate fills them).

    Attributes:
        accuracy: ensemble accuracy on the validation embeddings.
        epochs: recorded epochs used (oldest first).
        k: window size asked for.
        partial: True when fewer than `k` epochs existed.
        member_accuracies: accuracy of each fitted classifier alone.
        original_accuracies: accuracy of each epoch's own classifier
            (equals the model's validation accuracy at that epoch); NaN
            where no classifier weights were recorded.

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

    @property
    def latest_accuracy(self):
        """The model's own validation accuracy at the last epoch used."""
        return self.original_accuracies[-1] if self.original_accuracies else (
            float("nan"))


def estimate_from_epochs(records, k=10, fit=True, seed=0, warn=True,
                         **fit_kwargs):
    """Ensemble estimate from a list of per-epoch dicts (oldest first).

    Each dict holds `val_embeddings`, `val_labels`, `train_embeddings`,
    `train_labels` and optionally `kernel`, `bias`; the dict's `"epoch"`
    entry (if any) is reported back. Only the last `k` are used.

    Args:
        records: list of per-epoch dicts, oldest first.
        k: window size (thesis: 10).
        fit: fit each classifier on the training embeddings (thesis); False
            ensembles the recorded classifiers as they are.
        seed: seed of the classifier fits.
        warn: warn when fewer than `k` epochs exist (the estimate is partial).
        **fit_kwargs: overrides of `THESIS_FIT` for `fit_linear_classifier`.

    Returns:
        A `ProxyEstimate`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history import estimate_from_epochs

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    h = rng.normal(size=(100, 3)) + y[:, None]  # class-dependent embeddings
    epoch = {"train_embeddings": h, "train_labels": y, "val_embeddings": h, "val_labels": y}
    print(estimate_from_epochs([epoch, epoch], k=2).accuracy)  # ~0.76
    ```
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    if not records:
        raise ValueError(
            "No recorded epochs: train with FeatureHistory for at least one "
            "epoch before estimating.")
    with _single_threaded_blas():
        return _estimate(records, k, fit, seed, warn, fit_kwargs)


def _estimate(records, k, fit, seed, warn, fit_kwargs):
    window = list(records)[-k:]
    partial = len(window) < k
    if partial and warn:
        warnings.warn(
            f"Only {len(window)} recorded epoch(s), fewer than k={k}: the "
            "proxy estimate uses what exists (flagged partial).",
            stacklevel=3)
    opts = dict(THESIS_FIT)
    opts.update(fit_kwargs)
    y_val = _as_labels(window[-1]["val_labels"])
    probs = None
    members, originals, used = [], [], []
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
        if fit:
            num_classes = None if w0 is not None else int(
                max(_as_labels(rec["train_labels"]).max(), y_val.max()) + 1)
            w, b = fit_linear_classifier(
                rec["train_embeddings"], rec["train_labels"], w0, b0,
                num_classes=num_classes, seed=seed + i, **opts)
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
                         original_accuracies=originals)


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


def estimate_file(path, k=10, upto_epoch=None, fit=True, seed=0, warn=True,
                  **fit_kwargs):
    """Proxy estimate from a finished (or partial) HDF5 feature history.

    Args:
        path: index file written by `FeatureHistory`.
        k: number of most recent epochs to ensemble.
        upto_epoch: use only epochs <= this one (to ask "what would the
            estimate have been at epoch e"). None: all.
        fit, seed, warn, **fit_kwargs: as for `estimate_from_epochs`.

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
    return estimate_from_epochs(records, k=k, fit=fit, seed=seed, warn=warn,
                                **fit_kwargs)
