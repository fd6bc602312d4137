"""Optuna search (TPE + Hyperband pruner) pruned on the proxy estimate.

Each trial trains a small model with a `FeatureHistory` recorder and
`ProxyAccuracy`; Optuna's `KerasPruningCallback` reports `val_proxy_accuracy` each
epoch so Optuna's `HyperbandPruner` stops weak trials early. Run the same
command in several processes to share one study through a journal file
(or pass an SQLite URL).

    pip install optuna optuna-integration
    python examples/fh_optuna.py --storage search.journal --n-trials 10 &
    python examples/fh_optuna.py --storage search.journal --n-trials 10
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def load_digits_split():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype("float32")
    y = d.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1000], y[:1000], x[1000:1400], y[1000:1400]


def objective_factory(data, max_epochs, workdir):
    from keras_autolr.runtime.feature_history import search
    xt, yt, xv, yv = data

    def objective(trial):
        width = trial.suggest_categorical("width", [16, 64, 256])
        depth = trial.suggest_int("depth", 1, 3)
        lr = trial.suggest_float("learning_rate", 1e-4, 3e-1, log=True)
        layers = [keras.Input(xt.shape[1:])]
        layers += [keras.layers.Dense(width, activation="relu")
                   for _ in range(depth)]
        layers += [keras.layers.Dense(10, activation="softmax")]
        model = keras.Sequential(layers)
        model.compile(keras.optimizers.Adam(lr),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        path = os.path.join(workdir, f"trial_{trial.number}_{os.getpid()}.h5")
        callbacks = search.proxy_callbacks(
            path, (xt, yt), (xv, yv), trial=trial, k=10, train_samples=512,
            dtype="float16", overwrite=True)
        try:
            hist = model.fit(xt, yt, epochs=max_epochs, batch_size=64,
                             validation_data=(xv, yv), callbacks=callbacks,
                             verbose=0)
        finally:
            callbacks[0].store.delete()
        return float(hist.history["val_proxy_accuracy"][-1])

    return objective


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storage", default=None,
                   help="journal file path or RDB URL shared by workers")
    p.add_argument("--study", default="fh_proxy")
    p.add_argument("--n-trials", type=int, default=6)
    p.add_argument("--max-epochs", type=int, default=9)
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args(argv)
    import optuna

    from keras_autolr.runtime.feature_history import search

    study = search.create_study(study_name=a.study, storage=a.storage,
                                max_epochs=a.max_epochs, seed=a.seed)
    with tempfile.TemporaryDirectory() as workdir:
        study.optimize(objective_factory(load_digits_split(), a.max_epochs,
                                         workdir), n_trials=a.n_trials)
    states = [t.state.name for t in study.trials]
    print("STATES", json.dumps(states))
    done = [t for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        print("BEST", json.dumps({"value": study.best_value,
                                  "params": study.best_params}))
    return study


if __name__ == "__main__":
    main()
