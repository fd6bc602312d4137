"""Demo section: an early proxy estimate next to the final accuracy.

Trains one small model for a short budget with `FeatureHistory`, then shows,
at a few fractions of the budget, the latest validation accuracy, the
feature-history proxy (what the model is predicted to reach) and the
accuracy it finally reached.

It is the last section of `keras-autolr demo` and the whole of
`keras-autolr fh demo`.
"""

import math
import os
import tempfile

import keras
import numpy as np

from keras_autolr.runtime.feature_history import estimate as estimate_lib
from keras_autolr.runtime.feature_history.recorder import FeatureHistory

__all__ = ["demo_section"]


def _model(task_name, input_shape, num_classes):
    from keras_autolr.harness import models
    if len(input_shape) == 2:
        return models.conv1d_net(input_shape, num_classes)
    return models.small_cnn(input_shape, num_classes, width=16)


def demo_section(log=print, dataset="mnist1d", epochs=12,
                 fractions=(0.25, 0.5), k=10, learning_rate=3e-3,
                 batch_size=128, n_train=None, seed=0, workdir=None):
    """Trains one model, prints a table and returns its early-estimate rows.

    Args:
        log: function taking one string (printing by default).
        dataset: a `keras_autolr.harness.datasets` name ("mnist1d", "digits",
            "fashion_mnist", "cifar10").
        epochs: full budget; the LR decays linearly to 0 over it (Adam).
        fractions: budget fractions at which to show the estimate.
        k: ensemble window.
        n_train: optional training subset size.
        workdir: where the HDF5 history goes (a temporary folder if None).

    Returns:
        list of dicts, one per fraction plus one for 100%: `fraction`,
        `epoch`, `latest_val_accuracy`, `proxy_accuracy`, `partial`,
        `final_val_accuracy`, `final_test_accuracy`.

    Example:

    ```python
    from keras_autolr.cli.feature_history_demo import demo_section

    rows = demo_section(dataset="digits", epochs=2, fractions=(0.5,), k=2)  # prints the table
    print([(r["epoch"], r["partial"]) for r in rows])
    ```
    """
    from keras_autolr.harness import datasets
    kwargs = {"seed": seed}
    if n_train:
        kwargs["n_train"] = n_train
    split = datasets.load(dataset, **kwargs)
    keras.utils.set_random_seed(seed)
    model = _model(dataset, split.x_train.shape[1:], split.num_classes)
    steps = epochs * math.ceil(len(split.x_train) / batch_size)
    model.compile(
        keras.optimizers.Adam(keras.optimizers.schedules.PolynomialDecay(
            learning_rate, steps, end_learning_rate=0.0)),
        "sparse_categorical_crossentropy", metrics=["accuracy"])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(workdir or tmp, "demo_features.h5")
        recorder = FeatureHistory(
            path, (split.x_train, split.y_train), (split.x_val, split.y_val),
            train_samples=2048, overwrite=True, log_val_metrics=True)
        hist = model.fit(split.x_train, split.y_train, epochs=epochs,
                         batch_size=batch_size, callbacks=[recorder],
                         verbose=0)
        test_acc = float(model.evaluate(split.x_test, split.y_test,
                                        verbose=0)[1])
        val = hist.history["val_accuracy"]
        rows = []
        for f in list(fractions) + [1.0]:
            e = max(1, math.ceil(round(f * epochs, 6)))
            r = estimate_lib.estimate_file(path, k=k, upto_epoch=e - 1,
                                           warn=False)
            rows.append({
                "fraction": float(f), "epoch": e,
                "latest_val_accuracy": float(val[e - 1]),
                "proxy_accuracy": r.accuracy, "partial": r.partial,
                "final_val_accuracy": float(val[-1]),
                "final_test_accuracy": test_acc,
            })
    log("")
    log(f"Feature-history early estimate ({dataset}, {epochs} epochs, "
        f"K={k}):")
    log("| budget | epoch | latest val acc | proxy estimate | final val acc "
        "| final test acc |")
    log("|---|---|---|---|---|---|")
    for r in rows:
        flag = " (partial)" if r["partial"] else ""
        log(f"| {r['fraction']:.0%} | {r['epoch']} | "
            f"{r['latest_val_accuracy']:.4f} | {r['proxy_accuracy']:.4f}"
            f"{flag} | {r['final_val_accuracy']:.4f} | "
            f"{r['final_test_accuracy']:.4f} |")
    return rows
