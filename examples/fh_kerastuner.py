"""KerasTuner search driven by the feature-history proxy.

Runs `ProxyRandomSearch` or `ProxyHyperband` (KerasTuner's own tuners plus
a `FeatureHistory` recorder and the `val_proxy_accuracy` objective) on a
small image set, then prints the best configuration.

    pip install keras-tuner
    python examples/fh_kerastuner.py --tuner hyperband --max-epochs 9

Distributed (KerasTuner's chief/worker mode, same command in every
process, one chief):

    KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=127.0.0.1 \
      KERASTUNER_ORACLE_PORT=8000 python examples/fh_kerastuner.py &
    KERASTUNER_TUNER_ID=tuner0 KERASTUNER_ORACLE_IP=127.0.0.1 \
      KERASTUNER_ORACLE_PORT=8000 python examples/fh_kerastuner.py
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def load(name):
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        x = (d.data / 16.0).astype("float32").reshape(-1, 8, 8, 1)
        y = d.target.astype("int32")
        order = np.random.default_rng(0).permutation(len(x))
        x, y = x[order], y[order]
        return x[:1000], y[:1000], x[1000:1400], y[1000:1400]
    from keras_autolr.harness import datasets
    s = datasets.load(name, n_train=4000)
    return s.x_train, s.y_train, s.x_val[:2000], s.y_val[:2000]


def build_model(hp):
    """Search space: width, depth, LR (Adam, LR decays in the tuner)."""
    x_in = keras.Input(build_model.input_shape)
    x = keras.layers.Flatten()(x_in)
    for i in range(hp.Int("depth", 1, 3)):
        x = keras.layers.Dense(hp.Choice("width", [16, 64, 256]),
                               activation="relu")(x)
    out = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    model = keras.Model(x_in, out)
    model.compile(keras.optimizers.Adam(
        hp.Float("learning_rate", 1e-4, 3e-1, sampling="log")),
        "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tuner", choices=["random", "hyperband"],
                   default="random")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--max-trials", type=int, default=4)
    p.add_argument("--max-epochs", type=int, default=4)
    p.add_argument("--no-proxy", action="store_true",
                   help="plain KerasTuner on val_accuracy, for comparison")
    p.add_argument("--directory", default="fh_tuner")
    p.add_argument("--project", default="search")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    import keras_tuner as kt

    from keras_autolr.runtime.feature_history import search

    xt, yt, xv, yv = load(a.dataset)
    build_model.input_shape = xt.shape[1:]
    common = dict(directory=a.directory, project_name=a.project,
                  seed=a.seed, overwrite=False)
    if a.no_proxy:
        common["objective"] = kt.Objective("val_accuracy", "max")
        cls = kt.RandomSearch if a.tuner == "random" else kt.Hyperband
    else:
        cls = (search.ProxyRandomSearch if a.tuner == "random"
               else search.ProxyHyperband)
        common.update(proxy_k=10, train_samples=512)
    if a.tuner == "random":
        tuner = cls(build_model, max_trials=a.max_trials, **common)
        fit_epochs = {"epochs": a.max_epochs}
    else:
        tuner = cls(build_model, max_epochs=a.max_epochs, factor=3,
                    hyperband_iterations=1, **common)
        fit_epochs = {}
    tuner.search(xt, yt, validation_data=(xv, yv), batch_size=64,
                 verbose=0, **fit_epochs)
    if os.environ.get("KERASTUNER_TUNER_ID", "chief") == "chief":
        best = tuner.oracle.get_best_trials(1)[0]
        print("BEST", json.dumps({"trial": best.trial_id,
                                  "score": best.score,
                                  "values": best.hyperparameters.values}))
        print("TRIALS", len(tuner.oracle.trials))
    return tuner


if __name__ == "__main__":
    main()
