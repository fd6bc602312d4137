"""MLR-SNet reproductions (paper section 4.2 and the PTB result), CPU-sized.

What it runs (each: mean ± std over seeds of the best validation metric and
the test metric, LR plots), against fixed LR, exponential, MultiStep, SGDR
(cosine restarts), Adam and hypergradient descent (HD):

* `fashion`: the shipped *image* net (meta-trained on a CIFAR-10 subset)
  transferred to Fashion-MNIST (different data set and architecture);
* `shakespeare`: the shipped *image* net transferred to character-level Tiny
  Shakespeare (a text task: the paper's cross-modality transfer);
* `cifar_budget`: the image net on CIFAR-10 with a different epoch budget and
  width than it was meta-trained with;
* `ptb`: the shipped *text* net on PTB word-level language modelling
  (perplexity), against SGD, Adam, exponential and HD.

MLR-SNet runs with plain SGD and nothing to tune (its LR comes from the net);
the baselines use one standard LR each (SGD 0.1 for images, 1.0 for text;
Adam 1e-3) — they are NOT tuned per task on this CPU budget, which the
results README states.

Sizes: `--smoke` (CI, about a minute), default "small" (what we ran and
committed), `--full` (paper-like sizes; GPU). Resumable: finished runs are
skipped. Results: `reproductions/results/mlrsnet_transfer/`.

Example:

    python reproductions/mlrsnet_transfer.py --smoke
    python reproductions/mlrsnet_transfer.py --tasks fashion ptb --seeds 0 1 2
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_autolr import experiment, metrics, tasks  # noqa: E402
from keras_autolr.mlrsnet import method as _register_methods  # noqa: E402,F401  ("mlrsnet", "hypergradient")
from keras_autolr.mlrsnet import recipes  # noqa: E402

OUT = ROOT / "reproductions" / "results" / "mlrsnet_transfer"
LOGITS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _task_defs():
    return {
        "fashion": tasks.Task(
            name="mlrsnet_fashion",
            load=tasks._image_loader("fashion_mnist", {"smoke": 512, "small": 4000, "full": None}),
            build=lambda size, k: recipes.small_cnn((28, 28, 1), k, width={"smoke": 4, "small": 16, "full": 32}[size],
                                                bn_momentum=0.9),
            loss=LOGITS, metric="accuracy", mode="max",
            batch_size={"smoke": 128, "small": 128, "full": 128},
            epochs={"smoke": 2, "small": 8, "full": 30},
        ),
        "cifar_budget": tasks.Task(
            name="mlrsnet_cifar_budget",
            load=tasks._image_loader("cifar10", {"smoke": 512, "small": 3000, "full": None},
                                     n_test={"smoke": 256, "small": 2000, "full": None},
                                     n_val={"smoke": 256, "small": 1000, "full": 5000}),
            build=lambda size, k: recipes.small_cnn((32, 32, 3), k, width={"smoke": 4, "small": 16, "full": 32}[size],
                                                bn_momentum=0.9),
            loss=LOGITS, metric="accuracy", mode="max",
            batch_size={"smoke": 128, "small": 128, "full": 128},
            epochs={"smoke": 2, "small": 10, "full": 100},
        ),
        "shakespeare": tasks.Task(
            name="mlrsnet_shakespeare",
            load=tasks._lm_loader("tiny_shakespeare", {"smoke": 50, "small": 50, "full": 100},
                                  {"smoke": 64, "small": 1000, "full": None}),
            build=lambda size, k: tasks.lstm_lm(k, *{"smoke": (8, 16), "small": (16, 64), "full": (64, 512)}[size],
                                                dropout=0.0, cell="gru"),
            loss=LOGITS, metric="perplexity", mode="min",
            batch_size={"smoke": 32, "small": 32, "full": 64},
            epochs={"smoke": 1, "small": 5, "full": 30}, optimizer="sgd", metrics_factory=tasks._lm_metrics,
        ),
        "ptb": tasks.Task(
            name="mlrsnet_ptb",
            load=tasks._lm_loader("ptb", {"smoke": 20, "small": 35, "full": 35},
                                  {"smoke": 64, "small": 1500, "full": None}),
            build=lambda size, k: tasks.lstm_lm(k, *{"smoke": (8, 16), "small": (64, 128), "full": (512, 512)}[size],
                                                dropout=0.0),
            loss=LOGITS, metric="perplexity", mode="min",
            batch_size={"smoke": 32, "small": 32, "full": 32},
            epochs={"smoke": 1, "small": 5, "full": 40}, optimizer="sgd", metrics_factory=tasks._lm_metrics,
        ),
    }


def _variants(task, num_classes, net_path):
    """(label, method, optimizer, initial LR, options) per compared method."""
    text = task in ("shakespeare", "ptb")
    sgd_lr = 1.0 if text else 0.1
    if task == "ptb":
        mlr = ("mlrsnet", "mlrsnet", "sgd", sgd_lr, {"net": net_path, "task": "text", "vocab_size": num_classes})
        return [mlr,
                ("fixed", "constant", "sgd", sgd_lr, {}),
                ("exponential", "exponential", "sgd", sgd_lr, {}),
                ("adam", "constant", "adam", 1e-3, {}),
                ("hd", "hypergradient", "sgd", sgd_lr, {"beta": 1e-3})]
    return [("mlrsnet", "mlrsnet", "sgd", sgd_lr, {"net": net_path, "num_classes": num_classes}),
            ("fixed", "constant", "sgd", sgd_lr, {}),
            ("exponential", "exponential", "sgd", sgd_lr, {}),
            ("multistep", "multistep", "sgd", sgd_lr, {}),
            ("sgdr", "cosine_restarts", "sgd", sgd_lr, {}),
            ("adam", "constant", "adam", 1e-3, {}),
            ("hd", "hypergradient", "sgd", sgd_lr, {"beta": 1e-3})]


def run_task(name, size, seeds, out, net_override=None):
    task = _task_defs()[name]
    data = task.data(size, seed=0)
    kind = "text" if name == "ptb" else "image"
    # Default: the shipped early/middle/late nets with the reference's swap.
    net_path = str(net_override) if net_override else kind
    rows = []
    for seed in seeds:
        for label, method, opt, lr0, options in _variants(name, data.num_classes, net_path):
            path = out / name / "runs" / f"{label}__s{seed}.json"
            if path.exists():
                rec = json.loads(path.read_text())
            else:
                rec = experiment.run_one(task, method, lr0, seed, size=size, optimizer=opt,
                                         options=options, data=data)
                rec["label"] = label
                experiment._atomic_write_json(path, rec)
            rows.append(rec)
            print(f"{name} {label} seed {seed}: best val_{rec['metric']}={rec['best']} "
                  f"test={rec['test']} wall={rec['wall_s']:.1f}s", flush=True)
    return rows


def summary(name, rows):
    metric = rows[0]["metric"]
    test_key = "accuracy" if metric == "accuracy" else "perplexity"
    by = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
    lines = [f"### {name}", "", f"| method | best val {metric} | test {test_key} | wall s | diverged |",
             "|---|---|---|---|---|"]
    for label, rs in by.items():
        best = [r["best"] for r in rs if r["best"] is not None]
        test = [r["test"].get(test_key) for r in rs if r["test"].get(test_key) is not None]
        fmt = lambda v: metrics.format_mean_std(v, digits=4) if v else "n/a"
        lines.append(f"| {label} | {fmt(best)} | {fmt(test)} | {np.mean([r['wall_s'] for r in rs]):.1f} | "
                     f"{sum(r['diverged'] for r in rs)}/{len(rs)} |")
    return "\n".join(lines) + f"\n\n({len(next(iter(by.values())))} seeds; mean ± std)\n"


def plot(name, rows, path):
    plt = experiment.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    seen = set()
    for r in rows:
        if r["label"] in seen:
            continue
        seen.add(r["label"])
        ax[0].plot(r["steps"], r["lr"], label=r["label"], marker=".")
        vals = r["history"].get("val_" + r["metric"], [])
        ax[1].plot(r["steps"][: len(vals)], vals, label=r["label"], marker=".")
    ax[0].set_yscale("log")
    ax[0].set_ylabel("LR (end of epoch)")
    ax[1].set_ylabel("val " + rows[0]["metric"])
    if rows[0]["metric"] == "perplexity":
        ax[1].set_yscale("log")
    for a in ax:
        a.set_xlabel("step")
    ax[1].legend(fontsize=7)
    fig.suptitle(f"MLR-SNet transfer: {name} (seed {rows[0]['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--smoke", action="store_true", help="CI size (about a minute)")
    g.add_argument("--full", action="store_true", help="paper-like sizes (GPU)")
    p.add_argument("--tasks", nargs="+", default=["fashion", "shakespeare", "cifar_budget", "ptb"])
    p.add_argument("--seeds", nargs="+", type=int, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--image-net", default=None, help="override the shipped image net (.keras)")
    p.add_argument("--text-net", default=None, help="override the shipped text net (.keras)")
    p.add_argument("--summary-only", action="store_true",
                   help="rebuild summary.md and plots from the finished runs of every task")
    a = p.parse_args(argv)
    size = "smoke" if a.smoke else ("full" if a.full else "small")
    seeds = a.seeds if a.seeds is not None else ([0] if a.smoke else [0, 1, 2])
    out = pathlib.Path(a.out) if a.out else (OUT / "smoke" if a.smoke else OUT / size)
    if a.smoke and a.tasks == p.get_default("tasks"):
        a.tasks = ["fashion", "ptb"]
    if not a.summary_only:
        for name in a.tasks:
            override = a.text_net if name == "ptb" else a.image_net
            rows = run_task(name, size, seeds, out, override)
            (out / name / "summary.md").write_text(summary(name, rows))
            plot(name, rows, out / name / "lr_and_metric.png")
    # summary.md covers every task with finished runs (several invocations).
    parts = []
    for name in _task_defs():
        runs = sorted((out / name / "runs").glob("*.json"))
        if runs:
            rows = [json.loads(r.read_text()) for r in runs]
            rows.sort(key=lambda r: (r["seed"], r["label"]))
            parts.append(summary(name, rows))
            plot(name, rows, out / name / "lr_and_metric.png")
    text = "\n".join(parts)
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
