"""Search with and without the proxy (thesis Tables 4.1 / 4.3 analog).

KerasTuner's own `RandomSearch` and `Hyperband` oracles choose among the
configurations trained by `fh_estimation.py`, used as a tabular benchmark
(as NAS-Bench-201 is in the thesis): a trial "trained for b epochs" reads
either the latest validation accuracy after b epochs (plain search) or the
feature-history proxy after b epochs (search + proxy) from the recorded
curves. The chosen configuration is scored by its recorded final test
accuracy. Each setting runs over many seeds; both variants of a setting see
the same seeds.

    python reproductions/fh_search.py --smoke
    python reproductions/fh_search.py --seeds 30

Needs keras-tuner.
"""

import argparse
import json
import logging
import os
import pathlib
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.harness import metrics  # noqa: E402


class _Table:
    """Run `trial` from the recorded curves instead of training."""

    def __init__(self, *args, table, key, budget=None, **kwargs):
        self.table, self.key, self.budget = table, key, budget
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        i = hp.Choice("config", list(range(len(self.table))))
        epochs = hp.values.get("tuner/epochs", self.budget)
        curve = self.table[i][self.key]
        return float(curve[min(int(epochs), len(curve)) - 1])


class TableRandomSearch(_Table, kt.RandomSearch):
    pass


class TableHyperband(_Table, kt.Hyperband):
    pass


def run_search(table, tuner, key, seed, budget, max_trials, factor, tmp,
               hb_max_epochs=None):
    # Declared up front: Hyperband samples from the known space only.
    space = kt.HyperParameters()
    space.Choice("config", list(range(len(table))))
    common = dict(objective=kt.Objective("score", "max"), seed=seed,
                  hyperparameters=space,
                  directory=tmp, project_name=f"{tuner}_{key}_{seed}",
                  overwrite=True, table=table, key=key)
    if tuner == "random":
        t = TableRandomSearch(max_trials=max_trials, budget=budget, **common)
    else:
        t = TableHyperband(max_epochs=hb_max_epochs or len(table[0][key]),
                           factor=factor,
                           hyperband_iterations=1, **common)
    t.search_space_summary = lambda *a, **k: None
    t.search(verbose=0)
    best = t.oracle.get_best_trials(1)[0]
    i = best.hyperparameters.values["config"]
    epochs_spent = 0
    for tr in t.oracle.trials.values():
        v = tr.hyperparameters.values
        epochs_spent += v.get("tuner/epochs", budget) - v.get(
            "tuner/initial_epoch", 0)
    return {"chosen": int(i),
            "final_test_accuracy": table[i]["final_test_accuracy"],
            "trials": len(t.oracle.trials), "epochs_spent": epochs_spent}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--runs", default=None,
                   help="folder of fh_estimation.py per-config JSON files")
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--max-trials", type=int, default=6)
    p.add_argument("--budget-fraction", type=float, default=0.3)
    p.add_argument("--factor", type=int, default=2,
                   help="Hyperband's eta (thesis A.3.2: 2)")
    p.add_argument("--hb-max-fraction", type=float, default=0.5,
                   help="Hyperband's largest budget as a fraction of the "
                        "full training budget (thesis: 128 of 200 epochs)")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if a.smoke:
        a.seeds, a.max_trials = 2, 3
    runs = pathlib.Path(a.runs or (
        "reproductions/results/fh_estimation_smoke/runs" if a.smoke
        else "reproductions/results/fh_estimation/runs"))
    out = pathlib.Path(a.out or f"reproductions/results/fh_search"
                       f"{'_smoke' if a.smoke else ''}")
    out.mkdir(parents=True, exist_ok=True)
    if a.smoke and not a.runs and not any(runs.glob("*.json")):
        # A clean clone has no smoke runs yet: make them (seconds) next to --out.
        import fh_estimation

        # One data set: the search runs the same code per data set (fh_estimation's smoke covers both).
        fh_estimation.main(["--smoke", "--datasets", "fashion_mnist", "--out", str(out / "estimation")])
        runs = out / "estimation" / "runs"
    records = [json.loads(f.read_text()) for f in sorted(runs.glob("*.json"))]
    if not records:
        raise SystemExit(f"No runs in {runs}: run fh_estimation.py first.")
    rows, raw = [], []
    tmp = tempfile.mkdtemp()
    for dataset in sorted({r["dataset"] for r in records}):
        table = [r for r in records if r["dataset"] == dataset]
        epochs = table[0]["epochs"]
        budget = max(1, round(a.budget_fraction * epochs))
        hb_max = max(1, round(a.hb_max_fraction * epochs))
        oracle_best = max(r["final_test_accuracy"] for r in table)
        for tuner in ("random", "hyperband"):
            for key, label in (("latest_val_accuracy", "plain"),
                               ("proxy_accuracy", "+ proxy")):
                results = [run_search(table, tuner, key, s, budget,
                                      a.max_trials, a.factor, tmp, hb_max)
                           for s in range(a.seeds)]
                accs = [r["final_test_accuracy"] for r in results]
                raw.append({"dataset": dataset, "tuner": tuner, "key": key,
                            "results": results})
                rows.append({
                    "dataset": dataset, "tuner": tuner, "variant": label,
                    "n_configs": len(table), "seeds": a.seeds,
                    "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                    "regret": float(oracle_best - np.mean(accs)),
                    "epochs_spent": float(np.mean(
                        [r["epochs_spent"] for r in results])),
                    "budget_epochs": budget if tuner == "random" else hb_max,
                    "full_epochs": epochs,
                })
                print(json.dumps(rows[-1]), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| data set | search | variant | configs | seeds | final test "
             "acc of chosen (mean +- std) | regret vs best config | epochs "
             "spent |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        search = (f"RandomSearch ({a.max_trials} trials x "
                  f"{r['budget_epochs']}/{r['full_epochs']} ep)"
                  if r["tuner"] == "random" else
                  f"Hyperband (max {r['budget_epochs']}/{r['full_epochs']} "
                  f"ep, factor {a.factor})")
        lines.append(
            f"| {r['dataset']} | {search} | {r['variant']} | "
            f"{r['n_configs']} | {r['seeds']} | {r['mean']:.4f} +- "
            f"{r['std']:.4f} | {r['regret']:.4f} | {r['epochs_spent']:.1f} |")
    table_md = "\n".join(lines)
    print(table_md)
    (out / "summary.md").write_text(table_md + "\n")
    (out / "summary.json").write_text(json.dumps(
        {"rows": rows, "raw": raw}, indent=1))
    return rows


if __name__ == "__main__":
    main()
