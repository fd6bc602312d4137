"""MLR-SNet paper Fig. 4(a) analog: baselines on the exact meta-training setup.

The meta-training run that produced the shipped image net
(`reproductions/mlrsnet_meta_train.py`, small size) trains a small BN CNN
(width 32) on 9,000 CIFAR-10 images (10,000 minus the 1,000 carved off as
the meta-validation set), SGD with weight decay 5e-4, batch 128, 40 epochs,
and records the test accuracy (2,000 test images) after every epoch. This
script trains the same model on the same 9,000 images with the same test set
and budget under the paper's baselines: SGD with a fixed LR, exponential
decay, MultiStep, SGDR (cosine restarts), Adam and hypergradient descent
(HD), and plots their test-accuracy curves next to the meta-training curve.

The baselines use one standard LR each (SGD 0.1, Adam 1e-3, HD from 0.1),
not a per-method grid: the paper tunes them; a grid is behind `--lrs`.

Sizes: `--smoke` (CI: 600 images, 500 test images, width 8, 2 epochs), default "small"
(the shipped net's meta-training setup), `--full` (50k images, 200 epochs;
GPU).

Example:

    python reproductions/mlrsnet_meta_baselines.py --smoke --out /tmp/mlrsnet_meta_baselines
    python reproductions/mlrsnet_meta_baselines.py --seeds 0
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

from keras_autolr.harness import methods, metrics, models, recipes, reports, runner, tasks  # noqa: E402
from keras_autolr.harness.methods import mlrsnet as _register_methods  # noqa: E402,F401  ("hypergradient")
from keras_autolr.pipelines.mlrsnet.meta_train import carve_validation  # noqa: E402

OUT = ROOT / "reproductions" / "results" / "mlrsnet_meta_baselines"
META = ROOT / "reproductions" / "results" / "mlrsnet_meta_train" / "image_history.json"
LOGITS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
SIZES = {  # n_train (before carving), val carved, width, epochs
    "smoke": (600, 100, 8, 2),
    "small": (10000, 1000, 32, 40),
    "full": (None, 1000, 32, 200),
}
# (label, method, optimizer, LR): the paper's image baselines.
VARIANTS = [
    ("fixed", "constant", "sgd_wd", 0.1),
    ("exponential", "exponential", "sgd_wd", 0.1),
    ("multistep", "multistep", "sgd_wd", 0.1),
    ("sgdr", "cosine_restarts", "sgd_wd", 0.1),
    ("adam", "constant", "adam_wd", 1e-3),
    ("hd", "hypergradient", "sgd_wd", 0.1),
]

methods.register_optimizer("sgd_wd", lambda lr: keras.optimizers.SGD(lr, weight_decay=5e-4))
methods.register_optimizer("adam_wd", lambda lr: keras.optimizers.Adam(lr, weight_decay=5e-4))


def make_task(size, seed=0):
    n_train, n_val, width, epochs = SIZES[size]

    def load(_size, _seed):
        # Exactly the meta-training data: same subset, same carved validation set.
        x, y, xt, yt, c = recipes.image_data("cifar10", n_train=n_train, n_test=500 if size == "smoke" else 2000,
                                             seed=seed)
        x_tr, y_tr, _, _ = carve_validation(x, y, n_val, c, seed=seed)
        return tasks.TaskData(x_tr, y_tr, xt, yt, xt, yt, c)

    return tasks.Task(
        name="mlrsnet_meta_image", load=load,
        # BN momentum 0.99, as meta-trained
        build=lambda _size, k, _seed: models.small_bn_cnn((32, 32, 3), k, width=width),
        loss=LOGITS, metric="accuracy", mode="max", batch_size=128, epochs=epochs,
    ), epochs


def summary(rows, metas):
    lines = ["| method | best test accuracy | final test accuracy | wall s | seeds |", "|---|---|---|---|---|"]
    by = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
    for label in sorted(by):
        rs = by[label]
        curves = [r["history"].get("val_accuracy", []) for r in rs]
        best = [max(c) for c in curves if c]
        final = [c[-1] for c in curves if c]
        lines.append(f"| {label} | {metrics.format_mean_std(best)} | {metrics.format_mean_std(final)} | "
                     f"{np.median([r['wall_s'] for r in rs]):.0f} | {len(rs)} |")
    if metas:
        accs = [[h["test_accuracy"] for h in m["history"]] for m in metas]
        secs = np.median([sum(h.get("seconds", 0) for h in m["history"]) for m in metas])
        lines.append(f"| **MLR-SNet (meta-training run)** | {metrics.format_mean_std([max(a) for a in accs])} | "
                     f"{metrics.format_mean_std([a[-1] for a in accs])} | {secs:.0f} | {len(metas)} |")
    return "\n".join(lines) + "\n"


def plot(rows, meta, path):
    plt = reports.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
    for r in rows:
        if r["seed"] != min(x["seed"] for x in rows):
            continue
        h = r["history"]
        ep = np.arange(1, len(h["val_accuracy"]) + 1)
        ax[0].plot(ep, h["val_accuracy"], label=r["label"])
        if "learning_rate" in h:
            ax[1].plot(ep, h["learning_rate"], label=r["label"])
    if meta:
        ep = [h["epoch"] for h in meta["history"]]
        ax[0].plot(ep, [h["test_accuracy"] for h in meta["history"]], "k", lw=2, label="MLR-SNet")
        ax[1].plot(ep, [h["lr_mean"] for h in meta["history"]], "k", lw=2, label="MLR-SNet")
    ax[0].set_ylabel("test accuracy")
    ax[1].set_ylabel("LR (end of epoch; MLR-SNet: epoch mean)")
    ax[1].set_yscale("log")
    for a in ax:
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--smoke", action="store_true")
    g.add_argument("--full", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--methods", nargs="+", default=None, help="labels to run (default: all)")
    p.add_argument("--lrs", type=float, nargs="+", default=None, help="override the SGD LR (a grid)")
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    size = "smoke" if a.smoke else "full" if a.full else "small"
    out = pathlib.Path(a.out)
    metas = []
    if size == "small":
        # seed 0: the shipped net's run; other seeds: histories copied next to the results
        paths = [META] + sorted(out.glob("meta_history_s*.json"))
        metas = [json.loads(m.read_text()) for m in paths if m.exists()]
    rows = []
    for seed in a.seeds:
        # Each seed has its own subset and carved validation set, as `meta-train --seed` does.
        task, epochs = make_task(size, seed)
        data = task.data(size)
        for label, method, opt, lr0 in VARIANTS:
            if a.methods and label not in a.methods:
                continue
            for lr in (a.lrs if a.lrs and opt == "sgd_wd" else [lr0]):
                name = label if lr == lr0 else f"{label}_lr{lr:g}"
                rec, ran = runner.run_cached(out / "runs" / f"{name}__s{seed}.json", task, method, lr, seed,
                                             label=name, size=size, epochs=epochs, optimizer=opt, data=data)
                if ran:
                    print(f"{name} s{seed}: best test acc {max(rec['history']['val_accuracy']):.4f} "
                          f"wall {rec['wall_s']:.0f}s", flush=True)
                rows.append(rec)
    # every finished run in the folder, not only this invocation's seeds
    rows = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))] or rows
    text = summary(rows, metas)
    (out / "summary.md").write_text(text)
    plot(rows, metas[0] if metas else None, out / "test_accuracy.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
