"""Feature-history estimate vs latest accuracy at a resolvable scale (issue 17.2; thesis Figs 4.3, 4.4).

The study of `fh_estimation.py`, sized so that its differences can be told
apart from noise:

* data sets: Fashion-MNIST (Debian's `dataset-fashion-mnist`), CIFAR-10
  (`../shared/data`) and MNIST-1D (the `mnist1d` package's own generator,
  asked for 17,000 sequences: `fh_common.mnist1d_splits`). MNIST-1D is the
  third set because it is the only other offline one that can honestly
  supply 5,000 validation and 10,000 test examples (scikit-learn's digits
  has 1,797 images in all) and, being 1-D, it is a different kind of input.
  Its nets are the MLP half of the configuration space (the space's CNNs are
  2-D): CNN draws are redrawn (`draw_config`).
* every split: 2,000 training, 5,000 validation, 10,000 test examples
  (`fh_common.SIZES["v2"]`); the training set is modest for the CPU.
* 50 random configurations per data set (`models.feature_history_config`,
  the sampler seeds of `fh_estimation.py`, so its 20 configurations are the
  first 20 here), each trained to a budget of 40 and of 200 epochs (two
  studies; the LR decays linearly to 0 at the end of each budget), each
  twice (repeats 0 and 1: seeds 1000 + index and 2000 + index).
* the target of a configuration: the mean final test accuracy of its repeats.
* repeat 0 records a `FeatureHistory` (penultimate embeddings of a fixed
  1,024-row training subsample and of the 5,000 validation images, every
  epoch). At 10 / 25 / 50% of the budget (epochs 4 / 10 / 20 of 40, 20 / 50 /
  100 of 200) the latest validation accuracy and the K=10 proxy estimate
  (`ClassifierFit` of 200 steps) are read; repeat 1 only trains and tests.

Statistics per (data set, budget, fraction), over configurations
(`budget_stats`): MAE of latest and of proxy against the target, Kendall's
tau of each against the target, and 90% paired-bootstrap intervals (2,000
resamples of configurations) of proxy minus latest for both (MAE: below 0 =
proxy better; tau: above 0 = proxy better). The noise ceiling `tau_ceiling`
is Kendall's tau between repeat 0's final validation accuracy (the latest
accuracy at 100% of the budget, on the 5,000 validation images) and the
target: what the fully trained run's own held-out score gets of the
ranking. Estimates from a fraction of the budget are not expected to exceed
it; a gap between it and 1 is noise (seeds, finite validation and test sets)
that no predictor can remove. `summary.md` also reports the seed agreement,
tau between the two repeats' final test accuracies.

`summary.json` has the issue's shape, one entry per study named
`DATASET@EPOCHS` (e.g. `fashion_mnist@40`, `fashion_mnist@200`):
`{"datasets": {"fashion_mnist@40": {"configs": N, "budgets": {"10": {...},
"25": {...}, "50": {...}}}}}`, each budget holding `mae_latest`, `mae_proxy`,
`mae_diff_ci`, `tau_latest`, `tau_proxy`, `tau_diff_ci`, `tau_ceiling`. Only
configurations whose repeats have all finished count.

Resumable: one JSON per (data set, budget, configuration, repeat) under
--out/runs, written atomically; finished ones are skipped. Before training,
the full study's CPU time is estimated (from finished runs where there are
some, else from a 2-epoch probe of a few configurations) and printed.

    python reproductions/fh_estimation_v2.py --smoke --out /tmp/fh_v2_smoke
    python reproductions/fh_estimation_v2.py --estimate-only
    bash reproductions/fh_estimation_v2.sh          # the whole study, in the background
    python reproductions/fh_estimation_v2.py --summarize
"""

import argparse
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import fh_common  # noqa: E402
from fh_estimation import budget_epoch  # noqa: E402
from keras_autolr.harness import metrics, models, runner, timing  # noqa: E402
from keras_autolr.runtime import io as io_lib  # noqa: E402
from keras_autolr.runtime.feature_history import FeatureHistory  # noqa: E402
from keras_autolr.runtime.feature_history import estimate as est  # noqa: E402

DATASETS = ("fashion_mnist", "cifar10", "mnist1d")
BUDGETS = (40, 200)
FRACTIONS = {"10": 0.10, "25": 0.25, "50": 0.50}
# The sampler seeds of fh_estimation.py (its configurations come first here).
SAMPLER_SEEDS = {"fashion_mnist": 1, "cifar10": 2}
OUT = "reproductions/results/fh_estimation_v2"
# The committed study's feature histories (deleted after each run) and logs: git-ignored.
WORK = "reproductions/work/fh_estimation_v2"
THESIS = {
    "fig_4_3": "Figure 4.3 shows that our method can acquire significantly more accurate estimates for "
               "true performance of NAS-Bench-201 architectures, compared to both baselines.",
    "fig_4_4": "Figure 4.4 shows that the performance produced by our method is not only closer to the "
               "true performance for each individual architecture, but also keeps better relative ranking "
               "for distinguishing different architectures.",
    "setup": "100 architectures from NAS-Bench-201, each trained for 200 epochs (batch 256, SGD momentum "
             "0.9, LR 0.1 linear decay) on 40,000 CIFAR-10 images with 10,000 for validation; "
             "the experiment is repeated 3 times (thesis A.3.1).",
}


def draw_config(rng, dataset):
    """The next configuration of `dataset`'s study; MNIST-1D redraws CNNs (the space's CNNs are 2-D)."""
    while True:
        config = models.feature_history_config(rng, dataset)
        if dataset != "mnist1d" or config["arch"] == "mlp":
            return config


def study_configs(dataset, n):
    """The first `n` configurations of `dataset` (the same list at every budget)."""
    rng = np.random.default_rng(SAMPLER_SEEDS.get(dataset, 3))
    return [draw_config(rng, dataset) for _ in range(n)]


def study_name(dataset, epochs):
    """The name of a (data set, budget) study in summary.json, e.g. `cifar10@200`."""
    return f"{dataset}@{epochs}"


def run_path(out, dataset, epochs, index, repeat):
    return pathlib.Path(out) / "runs" / f"{study_name(dataset, epochs)}_c{index:03d}_r{repeat}.json"


def fraction_epochs(epochs):
    """{fraction key: 0-based epoch} of the estimates at a budget, plus "100" (the final epoch)."""
    at = {k: budget_epoch(f, epochs) - 1 for k, f in FRACTIONS.items()}
    at["100"] = epochs - 1
    return at


def run_config(out, dataset, index, repeat, config, data, epochs, *, fit, train_samples, scratch=None):
    """Trains one repeat of one configuration for `epochs` and writes its JSON (skipped if it exists).

    Repeat 0 records a FeatureHistory and keeps the latest validation
    accuracy and the K=10 proxy at `fraction_epochs(epochs)`; other repeats
    train without validation and keep only the final test accuracy. The
    history goes to `scratch` (default `out/h5`) and is deleted afterwards.
    """
    xt, yt, xv, yv, _, _ = data
    path = run_path(out, dataset, epochs, index, repeat)
    timer = timing.EpochTimer()
    callbacks = [timer]
    h5 = pathlib.Path(scratch or pathlib.Path(out) / "h5") / f"{path.stem}.h5"
    if repeat == 0:
        recorder = FeatureHistory(h5, (xt, yt), (xv, yv), train_samples=train_samples, dtype="float16",
                                  overwrite=True, log_val_metrics=True)
        callbacks = [recorder, timer]  # the timer's epoch includes the recording
    cpu0 = time.process_time()

    def annotate(rec):
        extra = {"dataset": dataset, "index": index, "repeat": repeat, "config": config,
                 "final_test_accuracy": rec["test"]["accuracy"], "train_samples": train_samples,
                 "epoch_cpu_s": timer.cpu, "epoch_wall_s": timer.wall}
        if repeat == 0:
            latest = rec["history"]["val_accuracy"]
            at = fraction_epochs(epochs)
            extra["latest"] = {k: latest[e] for k, e in at.items()}
            extra["proxy"] = {}
            t0 = time.process_time()
            for k, e in at.items():
                extra["proxy"][k] = est.estimate_file(h5, k=10, upto_epoch=e, warn=False, fit=fit).accuracy
            extra["estimate_cpu_s"] = time.process_time() - t0
            extra["final_val_accuracy"] = latest[-1]
        extra["cpu_s"] = time.process_time() - cpu0
        return extra

    record, ran = runner.run_cached(
        path, fh_common.config_task(config, data), "linear_decay", config["learning_rate"],
        1000 * (repeat + 1) + index, optimizer=fh_common.OPTIMIZERS[config["optimizer"]], epochs=epochs,
        validation=False, extra_callbacks=callbacks, annotate=annotate)
    if ran and repeat == 0:
        recorder.store.delete()  # the numbers are kept; the embeddings are big
    return record


def _finite(x):
    return None if x is None or not math.isfinite(x) else float(x)


def budget_stats(latest, proxy, target, final_val, n_boot=2000, level=0.90, seed=0):
    """The issue's numbers at one fraction of one study, over configurations.

    Args:
        latest, proxy: each configuration's latest validation accuracy and
            proxy estimate at that fraction (repeat 0).
        target: each configuration's mean final test accuracy over repeats.
        final_val: each configuration's final validation accuracy (repeat 0).
        n_boot, level, seed: the paired bootstrap (configurations resampled).

    Returns:
        dict with `mae_latest`, `mae_proxy`, `mae_diff_ci` ([low, high] of
        MAE(proxy) - MAE(latest)), `tau_latest`, `tau_proxy`, `tau_diff_ci`
        (of tau(proxy) - tau(latest)) and `tau_ceiling` (tau(final_val,
        target)); NaN (too few or constant values) is None, and so are the
        intervals of fewer than 2 configurations.
    """
    latest, proxy, target, final_val = (np.asarray(v, float) for v in (latest, proxy, target, final_val))
    mae = fh_common.mean_absolute_error
    mlo = mhi = tlo = thi = math.nan
    if len(target) >= 2:
        _, mlo, mhi = metrics.paired_bootstrap(mae, proxy, latest, target, n_boot=n_boot, level=level,
                                               seed=seed)
        _, tlo, thi = metrics.paired_bootstrap(metrics.kendall_tau, proxy, latest, target, n_boot=n_boot,
                                               level=level, seed=seed)
    return {
        "mae_latest": _finite(mae(latest, target)), "mae_proxy": _finite(mae(proxy, target)),
        "mae_diff_ci": [_finite(mlo), _finite(mhi)],
        "tau_latest": _finite(metrics.kendall_tau(latest, target)),
        "tau_proxy": _finite(metrics.kendall_tau(proxy, target)),
        "tau_diff_ci": [_finite(tlo), _finite(thi)],
        "tau_ceiling": _finite(metrics.kendall_tau(final_val, target)),
    }


def complete_configs(records, repeats):
    """{study name: [(repeat-0 record, target), ...]} of the configurations whose `repeats` all finished."""
    by = {}
    for r in records:
        by.setdefault((study_name(r["dataset"], r["epochs"]), r["index"]), {})[r["repeat"]] = r
    out = {}
    for (name, _), reps in sorted(by.items()):
        if all(i in reps for i in range(repeats)):
            target = float(np.mean([reps[i]["final_test_accuracy"] for i in range(repeats)]))
            out.setdefault(name, []).append((reps[0], target, [reps[i]["final_test_accuracy"]
                                                               for i in range(repeats)]))
    return out


def summarize(records, repeats=2, n_boot=2000):
    """summary.json's dict (the issue's shape) and the extra numbers summary.md reports."""
    summary, extra = {"datasets": {}}, {}
    for name, rows in complete_configs(records, repeats).items():
        target = [t for _, t, _ in rows]
        final_val = [r["final_val_accuracy"] for r, _, _ in rows]
        budgets = {k: budget_stats([r["latest"][k] for r, _, _ in rows], [r["proxy"][k] for r, _, _ in rows],
                                   target, final_val, n_boot=n_boot) for k in FRACTIONS}
        summary["datasets"][name] = {"configs": len(rows), "budgets": budgets}
        tests = np.array([t for _, _, t in rows])
        extra[name] = {
            "epochs": rows[0][0]["epochs"],
            "tau_seed": _finite(metrics.kendall_tau(tests[:, 0], tests[:, 1])) if repeats > 1 else None,
            "mae_ceiling": _finite(fh_common.mean_absolute_error(final_val, target)),
            "target_range": [float(np.min(target)), float(np.max(target))],
            "cpu_hours": sum(r.get("cpu_s", 0.0) for r in records
                             if study_name(r["dataset"], r["epochs"]) == name) / 3600,
        }
    return summary, extra


def _f(x, digits=3, sign=False):
    return "n/a" if x is None else f"{x:{'+' if sign else ''}.{digits}f}"


def markdown(summary, extra):
    """summary.md: the table, the ceilings, and the comparison with thesis Figs 4.3 / 4.4."""
    lines = ["| study | configs | budget | MAE latest | MAE proxy | MAE proxy - latest, 90% CI "
             "| tau latest | tau proxy | tau proxy - latest, 90% CI | tau ceiling |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in summary["datasets"].items():
        for k, b in s["budgets"].items():
            lines.append(
                f"| {name} | {s['configs']} | {k}% | {_f(b['mae_latest'], 4)} | {_f(b['mae_proxy'], 4)} | "
                f"[{_f(b['mae_diff_ci'][0], 4, True)}, {_f(b['mae_diff_ci'][1], 4, True)}] | "
                f"{_f(b['tau_latest'])} | {_f(b['tau_proxy'])} | "
                f"[{_f(b['tau_diff_ci'][0], 3, True)}, {_f(b['tau_diff_ci'][1], 3, True)}] | "
                f"{_f(b['tau_ceiling'])} |")
    lines += ["", "Noise: `tau ceiling` = tau(repeat 0's final validation accuracy, target); `tau seed` = "
              "tau between the two repeats' final test accuracies; `MAE ceiling` = MAE(final validation, "
              "target).", "", "| study | epochs | tau seed | MAE ceiling | target range | CPU hours |",
              "|---|---|---|---|---|---|"]
    for name, e in extra.items():
        lines.append(f"| {name} | {e['epochs']} | {_f(e['tau_seed'])} | {_f(e['mae_ceiling'], 4)} | "
                     f"{e['target_range'][0]:.3f}-{e['target_range'][1]:.3f} | {e['cpu_hours']:.2f} |")
    return "\n".join(lines + ["", comparison(summary)])


def _verdict(lo, hi, better_below):
    if lo is None or hi is None:
        return "undetermined"
    if (hi < 0) if better_below else (lo > 0):
        return "proxy better (interval clear of 0)"
    if (lo > 0) if better_below else (hi < 0):
        return "latest better (interval clear of 0)"
    return "no clear difference (interval includes 0)"


def comparison(summary):
    """The comparison paragraph with thesis Figs 4.3 / 4.4, filled from `summary` (to be edited by hand)."""
    out = ["## Compared with the thesis (Figs 4.3, 4.4)", "",
           f"The thesis's setting: {THESIS['setup']} Its text gives no numbers for either figure (they are "
           "plots); its claims are:", "", f"> {THESIS['fig_4_3']}", ">", f"> {THESIS['fig_4_4']}", "",
           "That is, the proxy beats the latest (\"Original\") accuracy on both error and ranking at every "
           "budget below 100%. Here (90% paired-bootstrap intervals over configurations):", ""]
    for name, s in summary["datasets"].items():
        for k, b in s["budgets"].items():
            out.append(f"* {name}, {k}%: MAE {_verdict(*b['mae_diff_ci'], True)}; "
                       f"tau {_verdict(*b['tau_diff_ci'], False)} (ceiling {_f(b['tau_ceiling'])}).")
    out += ["", "TODO (by hand, once the study is complete): whether the claim reproduces per data set "
            "and budget, how far below the ceiling each predictor ranks, and what differs from the "
            "thesis's setting (small MLPs/CNNs on 2,000 training examples vs NAS-Bench-201 cells on "
            "40,000)."]
    return "\n".join(out)


def write_summary(out, repeats, n_boot):
    """Rebuilds summary.json and summary.md from the finished runs in `out`; returns the markdown."""
    records = [json.loads(p.read_text()) for p in sorted((pathlib.Path(out) / "runs").glob("*.json"))]
    summary, extra = summarize(records, repeats, n_boot)
    text = markdown(summary, extra)
    io_lib.atomic_write_json(pathlib.Path(out) / "summary.json", summary)
    io_lib.atomic_write_text(pathlib.Path(out) / "summary.md",
                             "# Feature-history estimation study v2 (issue 17.2)\n\n" + text + "\n")
    return text


def jobs(datasets, budgets, n_configs, repeats):
    """Every (budget, configuration, data set, repeat) of the study, in the order they run.

    The short budget first, then configuration by configuration across the
    data sets, so a partial study has every data set's first configurations.
    """
    return [(b, i, d, r) for b in budgets for i in range(n_configs) for d in datasets for r in range(repeats)]


def _size(config):
    # Rough cost order within an architecture (a CNN's channels double per block).
    return config["width"] * (2 ** config["depth"] if config["arch"] == "cnn" else config["depth"])


def estimate_cpu_hours(pending, configs, data, fit, train_samples, out, probe_epochs=2):
    """CPU hours of the `pending` jobs: from finished runs' CPU per epoch, else a short probe.

    Costs are per (data set, architecture), CNNs costing several times MLPs:
    the CPU seconds per epoch (recording included), per run (set-up,
    compilation, testing) and per estimate come from the finished repeat-0
    runs in `out` when there are at least 2 of that group, else from a
    `probe_epochs`-epoch run (in a temporary folder; its first epoch, which
    compiles, left out) of the group's median-sized configuration. Every
    repeat is costed like repeat 0 (which also records and estimates), so
    this errs high. Returns `(hours, {dataset: hours})`.
    """
    done = [json.loads(p.read_text()) for p in (pathlib.Path(out) / "runs").glob("*_r0.json")]
    rates = {}
    for d, arch in sorted({(j[2], configs[j[2]][j[1]]["arch"]) for j in pending}):
        measured = [r for r in done if r["dataset"] == d and r["config"]["arch"] == arch and "epoch_cpu_s" in r]
        if len(measured) < 2:
            group = sorted((i for i, c in enumerate(configs[d]) if c["arch"] == arch),
                           key=lambda i: _size(configs[d][i]))
            i = group[len(group) // 2]
            with tempfile.TemporaryDirectory() as tmp:
                measured = [run_config(tmp, d, i, 0, configs[d][i], data[d], probe_epochs, fit=fit,
                                       train_samples=train_samples)]
        per_epoch = np.mean([np.mean(r["epoch_cpu_s"][1:] or r["epoch_cpu_s"]) for r in measured])
        per_run = np.mean([r["cpu_s"] - sum(r["epoch_cpu_s"]) - r["estimate_cpu_s"] for r in measured])
        # An estimate fits one classifier per epoch of its window: scale to a full window of K=10.
        per_estimate = np.mean([r["estimate_cpu_s"] * 10 / sum(min(10, e + 1) for e in
                                                               fraction_epochs(r["epochs"]).values())
                                for r in measured])
        rates[d, arch] = (per_epoch, per_run, per_estimate)
    by = {}
    for b, i, d, r in pending:
        per_epoch, per_run, per_estimate = rates[d, configs[d][i]["arch"]]
        by[d] = by.get(d, 0.0) + (b * per_epoch + per_run + (4 * per_estimate if r == 0 else 0.0)) / 3600
    return sum(by.values()), by


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="3 configurations, 2 epochs, small sets (< 90 s); starts afresh unless --out is given")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="epochs of each study")
    p.add_argument("--configs", type=int, default=50)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--train-samples", type=int, default=1024, help="training rows recorded per epoch")
    p.add_argument("--fit-steps", type=int, default=200, help="SGD steps of each proxy classifier")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--shard", default="0/1", help="i/k: run every k-th job from the i-th (0-based)")
    p.add_argument("--threads", type=int, default=None, help="compute threads (the .sh uses 1)")
    p.add_argument("--summary-every", type=int, default=10, help="rewrite the summary every N new runs")
    p.add_argument("--estimate-only", action="store_true", help="print the CPU-time estimate and stop")
    p.add_argument("--summarize", action="store_true", help="only rebuild the summary from finished runs")
    p.add_argument("--out", default=None)
    p.add_argument("--scratch", default=None,
                   help=f"folder of the feature histories while they train (default {WORK}/h5 for the "
                        "committed study, else OUT/h5)")
    a = p.parse_args(argv)
    if a.threads:
        fh_common.limit_threads(a.threads)
    size = "v2"
    if a.smoke:
        size, a.configs, a.budgets, a.train_samples, a.fit_steps, a.n_boot = "v2_smoke", 3, [2], 128, 20, 200
    out = pathlib.Path(a.out or (OUT + ("_smoke" if a.smoke else "")))
    if a.smoke and a.out is None and out.exists():
        shutil.rmtree(out)  # the default smoke folder starts afresh; an explicit --out resumes
    scratch = a.scratch or (pathlib.Path(WORK) / "h5" if out == pathlib.Path(OUT) else out / "h5")
    if a.repeats < 2:
        p.error("--repeats must be >= 2 (the target is a mean over repeats; the ceiling compares them)")
    shard_i, shard_k = (int(x) for x in a.shard.split("/"))
    if not 0 <= shard_i < shard_k:
        p.error(f"--shard i/k needs 0 <= i < k, got {a.shard}")
    if a.summarize:
        print(write_summary(out, a.repeats, a.n_boot))
        return out
    fit = est.ClassifierFit(steps=a.fit_steps)
    configs = {d: study_configs(d, a.configs) for d in a.datasets}
    data = {d: fh_common.load_data(d, size) for d in a.datasets}
    todo = [j for j in jobs(a.datasets, a.budgets, a.configs, a.repeats)[shard_i::shard_k]
            if not run_path(out, j[2], j[0], j[1], j[3]).exists()]
    hours, by = estimate_cpu_hours(todo, configs, data, fit, a.train_samples, out)
    print(f"{len(todo)} runs to go in shard {a.shard}: about {hours:.2f} CPU hours "
          f"({', '.join(f'{d} {h:.2f}' for d, h in by.items())}); at --threads 1, about as many hours of "
          "one core.", flush=True)
    if a.estimate_only:
        return None
    for n, (b, i, d, r) in enumerate(todo, 1):
        rec = run_config(out, d, i, r, configs[d][i], data[d], b, fit=fit, train_samples=a.train_samples,
                         scratch=scratch)
        c = configs[d][i]
        line = (f"[{n}/{len(todo)}] {study_name(d, b)} c{i:03d} r{r} {c['arch']} w{c['width']} d{c['depth']} "
                f"{c['optimizer']} lr={c['learning_rate']:.3g}: test {rec['final_test_accuracy']:.3f}")
        if r == 0:
            line += f", latest@25% {rec['latest']['25']:.3f}, proxy@25% {rec['proxy']['25']:.3f}"
        print(line + f" ({rec['cpu_s']:.0f} CPU s)", flush=True)
        if n % a.summary_every == 0:
            write_summary(out, a.repeats, a.n_boot)
    print(write_summary(out, a.repeats, a.n_boot))
    return out


if __name__ == "__main__":
    main()
