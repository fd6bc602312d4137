"""Feature-history estimate vs latest accuracy (thesis Figs 4.1, 4.3, 4.4).

Trains N random configurations per data set to their full budget with a
`FeatureHistory` recorder, then at 10/25/50% of the budget compares the
proxy-ensemble estimate (K=10, thesis A.1) and the latest validation accuracy
against the final test accuracy: mean absolute error and Kendall's tau.
Per-configuration curves (latest, proxy at every epoch) are kept for the
tabular search study (`fh_search.py --table`).

Resumable: one JSON per configuration under --out/runs.

    python reproductions/fh_estimation.py --smoke
    python reproductions/fh_estimation.py --datasets fashion_mnist
    python reproductions/fh_estimation.py --datasets cifar10
    python reproductions/fh_estimation.py --summarize
"""

import argparse
import json
import math
import os
import pathlib
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import fh_common  # noqa: E402
from keras_autolr.harness import metrics, models, runner  # noqa: E402
from keras_autolr.runtime import io as io_lib  # noqa: E402
from keras_autolr.runtime.feature_history import FeatureHistory  # noqa: E402
from keras_autolr.runtime.feature_history import estimate as est  # noqa: E402

FRACTIONS = (0.1, 0.25, 0.5, 1.0)


# The probes' fit (main() sets it from --fit-steps).
FIT = est.ClassifierFit()


def run_config(dataset, index, config, data, epochs, out, train_samples,
               estimate_epochs=None):
    """Train one configuration, estimate at `estimate_epochs` (0-based; all
    epochs when None, else null in the curves elsewhere), write its JSON."""
    xt, yt, xv, yv, xs, ys = data
    path = out / "runs" / f"{dataset}_{index:02d}.json"
    h5 = out / "h5" / f"{dataset}_{index:02d}.h5"
    recorder = FeatureHistory(h5, (xt, yt), (xv, yv),
                              train_samples=train_samples, dtype="float16",
                              overwrite=True, log_val_metrics=True)
    wanted = set(range(epochs) if estimate_epochs is None else estimate_epochs)

    def estimates(rec):
        latest = rec["history"]["val_accuracy"]
        proxy, est_s = [], []
        for e in range(epochs):
            if e not in wanted:
                proxy.append(None)
                continue
            t1 = time.perf_counter()
            r = est.estimate_file(h5, k=10, upto_epoch=e, warn=False, fit=FIT)
            est_s.append(time.perf_counter() - t1)
            proxy.append(r.accuracy)
        # Sensitivity to the window (the thesis's K=10 is 5% of its 200-epoch
        # budget; at short budgets it spans most of the run).
        proxy_k = {str(k): [est.estimate_file(h5, k=k, upto_epoch=e,
                                              warn=False, fit=FIT).accuracy
                            if e in wanted else None
                            for e in range(epochs)] for k in (1, 3)}
        return {
            "dataset": dataset, "index": index, "config": config,
            "epochs": epochs, "latest_val_accuracy": latest,
            "proxy_accuracy": proxy, "proxy_accuracy_k": proxy_k,
            "final_test_accuracy": rec["test"]["accuracy"],
            "final_val_accuracy": latest[-1], "train_seconds": rec["wall_s"],
            "epoch_seconds": rec["wall_s"] / epochs,
            # Once the window is full (K=10 epochs recorded).
            "estimate_seconds_median": float(np.median(
                [t for e, t in zip(sorted(wanted), est_s) if e >= 9] or est_s)),
            "hdf5_bytes_per_epoch": recorder.store.nbytes_per_epoch(),
            "train_samples": train_samples,
        }

    # No validation_data: the recorder logs val_accuracy from the embeddings.
    record, ran = runner.run_cached(
        path, fh_common.config_task(config, data), "linear_decay", config["learning_rate"], 1000 + index,
        optimizer=fh_common.OPTIMIZERS[config["optimizer"]], epochs=epochs, validation=False,
        extra_callbacks=[recorder], annotate=estimates)
    if ran:
        recorder.store.delete()  # the curves are kept; the embeddings are big
    return record


def budget_epoch(fraction, epochs):
    """Epochs seen at `fraction` of the budget (rounded up, at least 1)."""
    return max(1, math.ceil(round(fraction * epochs, 6)))


def summarize(records, fractions=FRACTIONS, n_boot=2000):
    rows = []
    for dataset in sorted({r["dataset"] for r in records}):
        rs = [r for r in records if r["dataset"] == dataset]
        final = np.array([r["final_test_accuracy"] for r in rs])
        for f in fractions:
            e = budget_epoch(f, rs[0]["epochs"]) - 1
            latest = np.array([r["latest_val_accuracy"][e] for r in rs])
            proxy = np.array([r["proxy_accuracy"][e] for r in rs])
            row_k = {}
            with_k = [r for r in rs if "proxy_accuracy_k" in r]
            if len(with_k) >= 3:
                fk = np.array([r["final_test_accuracy"] for r in with_k])
                for k in ("1", "3"):
                    pk = np.array([r["proxy_accuracy_k"][k][e]
                                   for r in with_k])
                    lk = np.array([r["latest_val_accuracy"][e]
                                   for r in with_k])
                    row_k[f"k{k}"] = {
                        "n_configs": len(with_k),
                        "mae_proxy": float(np.mean(np.abs(pk - fk))),
                        "tau_proxy": float(metrics.kendall_tau(pk, fk)),
                        "mae_latest": float(np.mean(np.abs(lk - fk))),
                        "tau_latest": float(metrics.kendall_tau(lk, fk))}
            ci = {}
            for k in ("10", "3", "1"):
                rk = rs if k == "10" else [r for r in rs if "proxy_accuracy_k" in r]
                if len(rk) < 3:
                    continue
                pk = np.array([(r["proxy_accuracy"] if k == "10" else r["proxy_accuracy_k"][k])[e] for r in rk])
                lk = np.array([r["latest_val_accuracy"][e] for r in rk])
                fk = np.array([r["final_test_accuracy"] for r in rk])
                ci[k] = {"mae": metrics.paired_bootstrap(fh_common.mean_absolute_error, pk, lk, fk, n_boot=n_boot),
                         "tau": metrics.paired_bootstrap(metrics.kendall_tau, pk, lk, fk, n_boot=n_boot)}
            rows.append({
                "bootstrap": ci,
                "window_variants": row_k,
                "dataset": dataset, "fraction": f, "epoch": e + 1,
                "n_configs": len(rs),
                "mae_latest": float(np.mean(np.abs(latest - final))),
                "mae_proxy": float(np.mean(np.abs(proxy - final))),
                "tau_latest": float(metrics.kendall_tau(latest, final)),
                "tau_proxy": float(metrics.kendall_tau(proxy, final)),
            })
    return rows


def markdown(rows):
    lines = ["| data set | budget | epoch | configs | MAE latest | MAE proxy "
             "| tau latest | tau proxy |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['fraction']:.0%} | {r['epoch']} | "
            f"{r['n_configs']} | {r['mae_latest']:.4f} | {r['mae_proxy']:.4f}"
            f" | {r['tau_latest']:.3f} | {r['tau_proxy']:.3f} |")
    extra = [r for r in rows if r.get("window_variants")]
    if extra:
        lines += ["", "Window sensitivity (configurations that have it):",
                  "", "| data set | budget | K | configs | MAE latest | "
                  "MAE proxy | tau latest | tau proxy |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in extra:
            for k, v in r["window_variants"].items():
                lines.append(
                    f"| {r['dataset']} | {r['fraction']:.0%} | {k[1:]} | "
                    f"{v['n_configs']} | {v['mae_latest']:.4f} | "
                    f"{v['mae_proxy']:.4f} | {v['tau_latest']:.3f} | "
                    f"{v['tau_proxy']:.3f} |")
    boot = [r for r in rows if r.get("bootstrap") and r["fraction"] < 1]
    if boot:
        lines += ["", "Proxy minus latest, with a 90% paired-bootstrap interval over "
                  "configurations (MAE: negative = proxy better; tau: positive = "
                  "proxy better):", "",
                  "| data set | budget | K | MAE difference | tau difference |",
                  "|---|---|---|---|---|"]
        for r in boot:
            for k, v in r["bootstrap"].items():
                (dm, lm, hm), (dt, lt, ht) = v["mae"], v["tau"]
                lines.append(f"| {r['dataset']} | {r['fraction']:.0%} | {k} | "
                             f"{dm:+.4f} [{lm:+.4f}, {hm:+.4f}] | "
                             f"{dt:+.3f} [{lt:+.3f}, {ht:+.3f}] |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--datasets", nargs="+",
                   default=["fashion_mnist", "cifar10"])
    p.add_argument("--configs", type=int, default=12)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-samples", type=int, default=1024)
    p.add_argument("--out", default=None)
    p.add_argument("--fit-steps", type=int, default=200, help="SGD steps of each proxy classifier")
    p.add_argument("--estimate-at", choices=("all", "budgets"), default="all",
                   help="estimate at every epoch (curves for fh_search.py "
                        "--table) or only at the budgets compared (long runs)")
    p.add_argument("--summarize", action="store_true",
                   help="only rebuild the summary from the finished runs")
    a = p.parse_args(argv)
    size = "smoke" if a.smoke else "full"
    if a.smoke:
        # 3 configurations: the fewest the bootstrap and window summaries need; 3 epochs keep
        # fh_search.py's Hyperband (half the budget) at 2 epochs.
        a.configs, a.epochs, a.train_samples = 3, 3, 256
        a.fit_steps = 20  # CI checks the path, not the estimate's quality
    global FIT
    FIT = est.ClassifierFit(steps=a.fit_steps)
    out = pathlib.Path(a.out or f"reproductions/results/fh_estimation"
                       f"{'_smoke' if a.smoke else ''}")
    if a.smoke and out.exists():
        shutil.rmtree(out)
    records = []
    if a.summarize:
        records = [json.loads(f.read_text())
                   for f in sorted((out / "runs").glob("*.json"))]
    for dataset in ([] if a.summarize else a.datasets):
        data = fh_common.load_data(dataset, size)
        rng = np.random.default_rng({"fashion_mnist": 1, "cifar10": 2}.get(
            dataset, 3))
        at = None
        if a.estimate_at == "budgets":
            at = [budget_epoch(f, a.epochs) - 1 for f in FRACTIONS]
        for i in range(a.configs):
            config = models.feature_history_config(rng, dataset)
            r = run_config(dataset, i, config, data, a.epochs, out,
                           a.train_samples, at)
            records.append(r)
            q = budget_epoch(0.25, a.epochs)
            print(f"{dataset} {i:02d} {config['arch']} w{config['width']} "
                  f"d{config['depth']} {config['optimizer']} "
                  f"lr={config['learning_rate']:.4g}: final test "
                  f"{r['final_test_accuracy']:.3f}, latest@25% "
                  f"{r['latest_val_accuracy'][q - 1]:.3f}, proxy@25% "
                  f"{r['proxy_accuracy'][q - 1]:.3f} "
                  f"({r['epoch_seconds']:.2f} s/epoch)", flush=True)
    # The smoke's 3 configurations make any interval meaningless: few resamples prove the path.
    rows = summarize(records, n_boot=100 if a.smoke else 2000)
    table = markdown(rows)
    print(table)
    io_lib.atomic_write_json(out / "summary.json", rows)
    io_lib.atomic_write_text(out / "summary.md", table + "\n")
    return rows


if __name__ == "__main__":
    main()
