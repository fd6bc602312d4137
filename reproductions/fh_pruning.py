"""Random search with vs without proxy-based pruning at equal compute (a live-training analog of thesis Tables 4.1 / 4.3).

Three KerasTuner random searches over the same MLP space on scikit-learn's
digits (harness `datasets.load("digits")`: 1,257 training, 180 validation,
360 test images), each given the same budget of training epochs:

* `plain`: `keras_tuner.RandomSearch` on `val_accuracy`, `--trials` trials
  of `--epochs` epochs each (the budget is `trials * epochs`);
* `prune_latest`: `PruningRandomSearch` on `val_accuracy` (the median
  stopping rule on the latest validation accuracy), as many trials as the
  budget allows;
* `prune_proxy`: `ProxyPruningRandomSearch` on `val_proxy_accuracy` (the
  feature-history estimate, K=`--proxy-k`, default 200-step fits), same
  budget.

Pruned trials free epochs for more trials; the last trial is cut when the
budget runs out. The search's chosen configuration (best objective) is then
retrained for the full `--epochs` with a fixed seed and scored on the test
set ("final accuracy"; not charged to the search). Compute spent is reported
as training epochs, trials, pruned trials, the proxy's own cost (its wall
time in epochs of training, `val_proxy_cost_epochs`) and wall seconds.
`--charge-proxy` also charges the proxy's cost to the budget.

    python reproductions/fh_pruning.py --smoke
    python reproductions/fh_pruning.py --seeds 5
"""

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.harness import datasets, metrics  # noqa: E402
from keras_autolr.runtime.feature_history import ClassifierFit, search  # noqa: E402

VARIANTS = ("plain", "prune_latest", "prune_proxy")


def build_model(hp):
    """The search space: depth, width, Adam's LR (wide, so that many trials are bad)."""
    x = inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(x)
    for i in range(hp.Int("depth", 1, 3)):
        x = keras.layers.Dense(hp.Choice("width", [8, 16, 32, 64, 128]), activation="relu", name=f"hidden{i}")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-5, 3e-1, sampling="log")),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Budget:
    """Tuner mixin: stops the search when `budget` epochs (plus, if charged, the proxy's cost) are spent."""

    def __init__(self, *args, budget, charge_proxy, **kwargs):
        super().__init__(*args, **kwargs)
        self.budget, self.charge_proxy = float(budget), bool(charge_proxy)
        self.epochs_spent, self.proxy_cost_epochs = 0, 0.0

    def on_epoch_end(self, trial, model, epoch, logs=None):
        super().on_epoch_end(trial, model, epoch, logs=logs)
        self.epochs_spent += 1
        self.proxy_cost_epochs += float((logs or {}).get("val_proxy_cost_epochs", 0.0))
        if self.spent() >= self.budget:
            model.stop_training = True  # the last trial is cut at the budget

    def spent(self):
        return self.epochs_spent + (self.proxy_cost_epochs if self.charge_proxy else 0.0)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.spent() >= self.budget:
            self.oracle.max_trials = len(self.oracle.trials)  # the oracle then ends the search


class PlainSearch(Budget, kt.RandomSearch):
    pass


class PruneLatest(Budget, search.PruningRandomSearch):
    pass


class PruneProxy(Budget, search.ProxyPruningRandomSearch):
    pass


def run_search(variant, seed, data, a, tmp):
    xt, yt, xv, yv = data[:4]
    budget = a.trials * a.epochs
    common = dict(max_trials=a.trials if variant == "plain" else a.max_trials, seed=seed, directory=tmp,
                  project_name=f"{variant}_{seed}", overwrite=True, budget=budget, charge_proxy=a.charge_proxy)
    prune = dict(prune_warmup=a.warmup, prune_min_trials=a.min_trials, prune_percentile=50.0)
    if variant == "plain":
        tuner = PlainSearch(build_model, objective="val_accuracy", **common)
    elif variant == "prune_latest":
        tuner = PruneLatest(build_model, objective="val_accuracy", **prune, **common)
    else:
        tuner = PruneProxy(build_model, proxy_k=a.proxy_k, feature_dtype="float32",
                           proxy_fit=ClassifierFit(steps=a.fit_steps), **prune, **common)
    tuner.search_space_summary = lambda *args, **kwargs: None
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    tuner.search(xt, yt, epochs=a.epochs, batch_size=a.batch_size, validation_data=(xv, yv), verbose=0)
    wall = time.perf_counter() - start
    trials = list(tuner.oracle.trials.values())
    best = tuner.oracle.get_best_trials(1)[0]
    return tuner, {
        "variant": variant, "seed": seed, "trials": len(trials),
        "pruned": len(getattr(tuner.oracle, "pruned", {})),
        "epochs_spent": tuner.epochs_spent, "budget_epochs": budget,
        "proxy_cost_epochs": tuner.proxy_cost_epochs, "search_seconds": wall,
        "chosen": best.hyperparameters.values, "chosen_score": float(best.score),
    }


def final_accuracy(hp_values, data, a):
    """Test accuracy of a configuration retrained for the full budget (seed 0)."""
    xt, yt, xv, yv, xs, ys = data
    hp = kt.HyperParameters()
    for name, value in hp_values.items():
        hp.Fixed(name, value)
    keras.utils.set_random_seed(0)
    model = build_model(hp)
    model.fit(xt, yt, epochs=a.epochs, batch_size=a.batch_size, verbose=0)
    return float(model.evaluate(xs, ys, verbose=0)[1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--trials", type=int, default=10, help="trials of the plain search (sets the budget)")
    p.add_argument("--max-trials", type=int, default=100, help="cap of the pruned searches")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=2, help="epochs never pruned")
    p.add_argument("--min-trials", type=int, default=3, help="finished trials needed before pruning")
    p.add_argument("--proxy-k", type=int, default=3)
    p.add_argument("--fit-steps", type=int, default=200, help="SGD steps of each proxy classifier")
    p.add_argument("--charge-proxy", action="store_true", help="charge the proxy's cost to the budget")
    p.add_argument("--out", default="reproductions/results/fh_pruning")
    a = p.parse_args(argv)
    if a.smoke:
        a.seeds, a.trials, a.epochs, a.warmup, a.min_trials, a.proxy_k = 1, 3, 3, 1, 1, 2
        a.fit_steps = 20  # CI checks the path, not the estimate's quality
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    split = datasets.load("digits")
    data = (split.x_train, split.y_train, split.x_val, split.y_val, split.x_test, split.y_test)
    tmp = tempfile.mkdtemp()
    runs = []
    try:
        for seed in range(a.seeds):
            for variant in VARIANTS:
                tuner, run = run_search(variant, seed, data, a, tmp)
                run["final_test_accuracy"] = final_accuracy(run["chosen"], data, a)
                runs.append(run)
                print(json.dumps(run), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = {}
    for variant in VARIANTS:
        rs = [r for r in runs if r["variant"] == variant]
        rows[variant] = {
            "final_test_accuracy": dict(zip(("mean", "std", "n"), metrics.mean_std(
                [r["final_test_accuracy"] for r in rs]))),
            **{key: float(np.mean([r[key] for r in rs])) for key in
               ("trials", "pruned", "epochs_spent", "proxy_cost_epochs", "search_seconds")},
        }
    summary = {
        "command": "python " + " ".join([sys.argv[0]] + (sys.argv[1:] if argv is None else list(argv))),
        "settings": vars(a), "dataset": "digits", "summary": rows, "runs": runs,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    lines = ["| variant | final test acc of chosen (mean, std) | trials | pruned | epochs trained | "
             "proxy cost (epochs) | search s |", "|---|---|---|---|---|---|---|"]
    for variant, r in rows.items():
        acc = r["final_test_accuracy"]
        lines.append(f"| {variant} | {acc['mean']:.4f}, {acc['std']:.4f} | {r['trials']:.1f} | {r['pruned']:.1f} | "
                     f"{r['epochs_spent']:.1f} | {r['proxy_cost_epochs']:.1f} | {r['search_seconds']:.0f} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


if __name__ == "__main__":
    main()
