"""Trains and evaluates an ARC controller (paper section 3.4).

Recipe: corrected samples from `labels.build_dataset`, split 70/30 (by chain,
so overlapping windows of one training run never straddle the split), Adam
1e-4, batch 128, up to 300 epochs, loss 0.5 CCE + 0.5 BCE(raise vs lower),
best epoch chosen by the weighted accuracy of the paper's Eq. 1 on the 30%.
Each epoch the validation-loss column of a random half of the training
windows is zeroed, so the controller also works for runs without validation
data.

Note: as in the paper, the held-out 30% both selects the best epoch and
reports it, so the reported weighted accuracy is slightly optimistic.

Example (command line; `train_controller` below runs one in miniature):

```
keras-autolr arc train --data data/arc.h5 --out saved_controllers/arc.keras --report arc_report.json
```
"""

import json
import time

import keras
import numpy as np

from keras_autolr.pipelines.arc import labels
from keras_autolr.runtime.arc.controller import CLASS_NAMES, arc_loss, build_controller, load_controller
from keras_autolr.harness.metrics import weighted_accuracy

__all__ = ["split_by_chain", "zero_val_column", "confusion_matrix", "evaluate", "train_controller"]


def split_by_chain(chains, train_fraction=0.7, seed=0):
    """Returns the boolean mask of training samples: those of a random 70% of the chains.

    Args:
        chains: the chain id of every sample.
        train_fraction: the fraction of chains (rounded) put in training.
        seed: seeds the draw of chains.

    Example:

    ```python
    import numpy as np
    from keras_autolr.pipelines.arc.train import split_by_chain

    chains = np.repeat(np.arange(10), 3)  # 10 chains, 3 samples each
    mask = split_by_chain(chains)
    print(mask.sum(), len(set(chains[mask]) & set(chains[~mask])))  # 21 0
    ```
    """
    ids = np.unique(chains)
    rng = np.random.default_rng(seed)
    rng.shuffle(ids)
    train_ids = set(ids[: int(round(train_fraction * len(ids)))].tolist())
    return np.array([c in train_ids for c in chains])


def zero_val_column(x, fraction, rng):
    """Returns a copy of `x` with the validation column zeroed in `fraction` of the windows.

    Args:
        x: windows, shape (N, 300, 3).
        fraction: the probability that a window's column 1 is zeroed.
        rng: a `numpy.random.Generator`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.pipelines.arc.train import zero_val_column

    x = np.ones((4, 300, 3), "float32")
    out = zero_val_column(x, 1.0, np.random.default_rng(0))
    print(out[:, :, 1].max(), x[:, :, 1].max())  # 0.0 1.0: the input is untouched
    ```
    """
    x = x.copy()
    x[rng.random(len(x)) < fraction, :, 1] = 0.0
    return x


def confusion_matrix(y_true, y_pred):
    """Returns the 3x3 counts, rows = predicted, columns = actual (paper Table 2 layout).

    Args:
        y_true: actual labels (0 raise, 1 keep, 2 lower).
        y_pred: predicted labels.

    Example:

    ```python
    from keras_autolr.pipelines.arc.train import confusion_matrix

    print(confusion_matrix(y_true=[0, 1, 2, 2], y_pred=[0, 1, 1, 2]))
    # [[1 0 0]
    #  [0 1 1]
    #  [0 0 1]]
    ```
    """
    try:
        from sklearn.metrics import confusion_matrix as sk_confusion_matrix
    except ImportError as e:
        raise ImportError("ARC's confusion matrix uses scikit-learn: pip install 'keras-autolr[data]'.") from e
    # scikit-learn's rows are actual labels: transpose to the paper's layout.
    return sk_confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=[0, 1, 2]).T.astype(np.int64)


def evaluate(model, x, y):
    """Returns the confusion matrix, weighted accuracy (Eq. 1) and plain accuracy of `model` on (x, y).

    Args:
        model: a controller.
        x: windows, shape (N, 300, 3).
        y: labels, shape (N,).

    Returns:
        A dict with `confusion` (a nested list), `weighted_accuracy`,
        `accuracy` and `n`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.pipelines.arc.train import evaluate
    from keras_autolr.runtime.arc import build_controller

    x = np.random.default_rng(0).normal(size=(6, 300, 3)).astype("float32")
    res = evaluate(build_controller(seed=0), x, np.array([0, 1, 2, 0, 1, 2]))
    print(res["n"], sorted(res))  # 6 ['accuracy', 'confusion', 'n', 'weighted_accuracy']
    ```
    """
    pred = np.argmax(model.predict(x, batch_size=512, verbose=0), axis=-1)
    cm = confusion_matrix(y, pred)
    return {
        "confusion": cm.tolist(),
        "weighted_accuracy": weighted_accuracy(cm),
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "n": int(len(y)),
    }


def train_controller(data, out, epochs=300, batch_size=128, learning_rate=1e-4,
                     zero_val_fraction=0.5, balanced=True, seed=0, log=print, report_path=None):
    """Trains a controller on an HDF5 file of chains; saves the best to `out`.

    `balanced=True` weights classes inversely to their frequency (a departure
    from the paper, whose data we cannot match in size: with few samples the
    rare "lower" class is otherwise never predicted).

    Args:
        data: an HDF5 file of chains (`keras_autolr.pipelines.arc.generate`).
        out: the `.keras` file for the best controller (saved uncompiled).
        epochs, batch_size, learning_rate: the training run (Adam).
        zero_val_fraction: the share of training windows whose validation
            column is zeroed each epoch.
        balanced: weight classes inversely to their frequency.
        seed: seeds the split, the initialisation and the zeroing.
        log: progress printer.
        report_path: also write the report there as JSON.

    Returns:
        A report dict (sample counts, label balance, held-out metrics with
        and without the validation column, per-epoch `history`).

    Example:

    ```python
    import h5py
    import numpy as np
    from keras_autolr.pipelines.arc.train import train_controller

    rng = np.random.default_rng(1)
    with h5py.File("toy_chains.h5", "w") as f:  # 4 toy chains in generate's layout
        for c in range(4):
            chain = f.create_group(f"chain_{c:06d}")
            loss = np.sort(rng.random((4, 6)))[:, ::-1] + 1.0  # 4 cycles, 1 epoch x 6 batches
            chain.update(train_loss=loss, val_loss=loss[:, -1:], lr=[1e-3] * 4,
                         branch_val=rng.random((3, 3)), chosen=rng.integers(0, 3, 3))
            chain.attrs.update(chain_id=c, task="toy", optimizer="sgd", n=1, complete=True)
    report = train_controller("toy_chains.h5", "toy_arc.keras", epochs=1, log=lambda s: None)
    print(report["samples"], report["heldout"]["confusion"])
    ```
    """
    x, y, meta = labels.build_dataset(data)
    mask = split_by_chain(meta["chain"], seed=seed)
    xtr, ytr, xte, yte = x[mask], y[mask], x[~mask], y[~mask]
    keras.utils.set_random_seed(seed)
    model = build_controller(seed=seed)
    model.compile(keras.optimizers.Adam(learning_rate), loss=arc_loss)
    ytr_1h = keras.utils.to_categorical(ytr, 3)
    counts = np.bincount(ytr, minlength=3).astype(float)
    class_weight = ({i: float(len(ytr) / (3 * max(c, 1))) for i, c in enumerate(counts)}
                    if balanced else None)
    rng = np.random.default_rng(seed)
    best, best_epoch, history = -np.inf, -1, []
    t0 = time.time()
    for epoch in range(epochs):
        h = model.fit(zero_val_column(xtr, zero_val_fraction, rng), ytr_1h,
                      batch_size=batch_size, epochs=1, shuffle=True, verbose=0,
                      class_weight=class_weight)
        res = evaluate(model, xte, yte)
        history.append({"epoch": epoch + 1, "loss": float(h.history["loss"][0]),
                        "heldout_weighted_accuracy": res["weighted_accuracy"]})
        if res["weighted_accuracy"] > best:
            best, best_epoch = res["weighted_accuracy"], epoch + 1
            model.save(out)
        if (epoch + 1) % 10 == 0 or epoch == 0:
            log(f"epoch {epoch + 1}: loss {history[-1]['loss']:.4f} held-out w_acc "
                f"{res['weighted_accuracy']:.4f} (best {best:.4f} @ {best_epoch}) {time.time() - t0:.0f}s")
    best_model = load_controller(out)
    best_model.save(out)  # re-saved uncompiled: no optimizer state in the shipped file
    report = {
        "data": str(data),
        "samples": int(len(y)),
        "chains": int(len(np.unique(meta["chain"]))),
        "train_samples": int(mask.sum()),
        "heldout_samples": int((~mask).sum()),
        "label_counts": {n: int((y == i).sum()) for i, n in enumerate(CLASS_NAMES)},
        "raw_label_counts": {n: int((meta["raw_label"] == i).sum()) for i, n in enumerate(CLASS_NAMES)},
        "task_counts": {t: int((meta["task"] == t).sum()) for t in sorted(set(meta["task"].tolist()))},
        "optimizer_counts": {o: int((meta["optimizer"] == o).sum()) for o in sorted(set(meta["optimizer"].tolist()))},
        "epochs": epochs,
        "class_weight": class_weight,
        "best_epoch": best_epoch,
        "heldout": evaluate(best_model, xte, yte),
        "heldout_no_val": evaluate(best_model, zero_val_column(xte, 1.0, rng), yte),
        "always_keep_weighted_accuracy": weighted_accuracy(confusion_matrix(yte, np.full_like(yte, 1))),
        "train_seconds": round(time.time() - t0, 1),
        "history": history,
    }
    if report_path:
        with open(report_path, "w") as f:
            json.dump(report, f, indent=1)
    return report
