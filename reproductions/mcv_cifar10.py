"""Thesis Tables 4.2 and 4.5 analog: MCV methods vs a grid-search baseline on CIFAR-10.

Baseline (Table 4.2): SGD-momentum (0.9) and Adam at LR {0.1, 0.01, 0.001, 0.0001},
constant LR, early stopping on a held-out validation split (best epoch restored).
MCV (Table 4.5): discard, lr-voting, Method 1, Method 2 (alpha 0.1/0.3/0.5),
Method 3 with `MCVModel`, stopping by `MCVStopping` on the validation-batch
loss; MCV never sees the held-out split (its validation batches come from the
training data, as in the thesis).

Reported per run: epochs (best epoch, 1-based), epochs run, test loss, test
accuracy, the thesis's theoretical cost (epochs run x steps x [(#fwd+#bwd), #step],
Table 4.1) and wall time. The baseline's grid total sums all its runs, as the
thesis does.

Deviations from the thesis, forced by a shared 2-core CPU (stated in the results):
a CIFAR-10 subset, the thesis CNN at reduced width (`--width`), fewer epochs and a
shorter patience, one seed, no retraining of the baseline on 100% of the data.
The thesis sizes run with `--n-train 45000 --width 1 --epochs 100 --patience 20`
(and `--arch resnet18|vgg11`, `--dataset svhn_cropped_tfds --arch svhn_cnn` when
tensorflow-datasets can download) on a GPU.

Usage:

    python reproductions/mcv_cifar10.py --smoke --out /tmp/mcv_smoke
    python reproductions/mcv_cifar10.py --out reproductions/results/mcv_cifar10
"""

import argparse
import json
import math
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.harness import datasets  # noqa: E402
from keras_autolr.runtime.mcv import MCVModel, MCVStopping, PairedBatches, THESIS_LR_LIST  # noqa: E402
from keras_autolr.runtime.mcv import cost as cost_lib  # noqa: E402

GRID = (0.1, 0.01, 0.001, 0.0001)
MCV_RUNS = (
    ("discard", {}),
    ("voting", {}),
    ("method1", {}),
    ("method2", {"alpha": 0.1}),
    ("method2", {"alpha": 0.3}),
    ("method2", {"alpha": 0.5}),
    ("method3", {}),
)


def thesis_cnn(input_shape, num_classes, width=1.0):
    """Thesis small CNN: 3x3 convs 48,48,96,96,192,192 (pool after each pair), FC 512, 256."""
    w = lambda c: max(4, int(round(c * width)))  # noqa: E731
    inputs = keras.Input(input_shape)
    x = inputs
    for c in (48, 96, 192):
        x = keras.layers.Conv2D(w(c), 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(w(c), 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(w(512), activation="relu")(x)
    x = keras.layers.Dense(w(256), activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="thesis_cnn")


def svhn_cnn(input_shape, num_classes, width=1.0):
    """Thesis SVHN CNN: 3x3 convs 32, 32, 64, 64 (pool after each pair), FC 512."""
    w = lambda c: max(4, int(round(c * width)))  # noqa: E731
    inputs = keras.Input(input_shape)
    x = inputs
    for c in (32, 64):
        x = keras.layers.Conv2D(w(c), 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(w(c), 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dense(w(512), activation="relu")(keras.layers.Flatten()(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="svhn_cnn")


def vgg11(input_shape, num_classes, width=1.0):
    w = lambda c: max(4, int(round(c * width)))  # noqa: E731
    inputs = keras.Input(input_shape)
    x = inputs
    for c in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        x = keras.layers.MaxPooling2D(2)(x) if c == "M" else keras.layers.Conv2D(
            w(c), 3, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    for _ in range(2):
        x = keras.layers.Dropout(0.5)(keras.layers.Dense(w(512), activation="relu")(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="vgg11")


def resnet18(input_shape, num_classes, width=1.0):
    w = lambda c: max(4, int(round(c * width)))  # noqa: E731
    L = keras.layers

    def block(x, c, stride):
        y = L.Conv2D(c, 3, stride, padding="same", use_bias=False)(x)
        y = L.ReLU()(L.BatchNormalization()(y))
        y = L.BatchNormalization()(L.Conv2D(c, 3, padding="same", use_bias=False)(y))
        if stride != 1 or x.shape[-1] != c:
            x = L.BatchNormalization()(L.Conv2D(c, 1, stride, use_bias=False)(x))
        return L.ReLU()(L.Add()([x, y]))

    inputs = keras.Input(input_shape)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(w(64), 3, padding="same", use_bias=False)(inputs)))
    for c, s in ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)):
        x = block(x, w(c), s)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(num_classes)(x), name="resnet18")


ARCHS = {"cnn": thesis_cnn, "svhn_cnn": svhn_cnn, "vgg11": vgg11, "resnet18": resnet18}


def optimizer(name, lr):
    if name == "sgd_momentum":
        return keras.optimizers.SGD(lr, momentum=0.9)
    return keras.optimizers.Adam(lr)


def loss_fn():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def evaluate(model, data, batch):
    res = model.evaluate(data.x_test, data.y_test, batch_size=512, verbose=0, return_dict=True)
    return float(res["loss"]), float(res["accuracy"])


def run_baseline(args, data, opt_name, lr):
    keras.utils.set_random_seed(args.seed)
    model = ARCHS[args.arch](data.x_train.shape[1:], data.num_classes, args.width)
    model.compile(optimizer(opt_name, lr), loss_fn(), metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping("val_loss", patience=args.patience,
                                         restore_best_weights=True)
    nan = keras.callbacks.TerminateOnNaN()
    t = time.time()
    hist = model.fit(data.x_train, data.y_train, batch_size=args.batch, epochs=args.epochs,
                     validation_data=(data.x_val, data.y_val), callbacks=[nan, stop], verbose=0)
    wall = time.time() - t
    val = hist.history["val_loss"]
    finite = [v if math.isfinite(v) else math.inf for v in val]
    best = int(np.argmin(finite)) if any(math.isfinite(v) for v in finite) else None
    run = len(val)
    if best is not None and math.isfinite(hist.history["loss"][-1]):
        test_loss, test_acc = evaluate(model, data, args.batch)
    elif best is not None:
        # TerminateOnNaN stopped before EarlyStopping could restore: report as diverged.
        test_loss, test_acc = float("nan"), float("nan")
    else:
        test_loss, test_acc = float("nan"), float("nan")
    steps = math.ceil(len(data.x_train) / args.batch)
    fb, st = cost_lib.run_cost("baseline", 1, run, steps)
    return {
        "kind": "baseline", "optimizer": opt_name, "lr": lr, "epochs": None if best is None else best + 1,
        "epochs_run": run, "test_loss": test_loss, "test_acc": test_acc, "wall_s": wall,
        "cost_fwd_bwd": fb, "cost_step": st, "val_loss": val,
    }


def run_mcv(args, data, opt_name, method, opts):
    keras.utils.set_random_seed(args.seed)
    inner = ARCHS[args.arch](data.x_train.shape[1:], data.num_classes, args.width)
    kw = dict(opts)
    if method in ("method1", "method2", "method3"):
        kw["initial_candidates"] = THESIS_LR_LIST  # Algorithm 8: epoch 1 at min(list)
    model = MCVModel(inner, method=method, **kw)
    start_lr = args.discard_lr[opt_name] if method == "discard" else 0.01
    model.compile(optimizer(opt_name, start_lr), loss_fn(), metrics=["accuracy"])
    stop = MCVStopping(patience=args.patience)
    t = time.time()
    if args.pairing == "paired":
        # The thesis's pairing: every batch of args.batch trains, each validated on another random one.
        train = PairedBatches(data.x_train, data.y_train, batch_size=args.batch, seed=args.seed)
        hist = model.fit(train, epochs=args.epochs, callbacks=[stop], verbose=0)
    else:
        hist = model.fit(data.x_train, data.y_train, batch_size=2 * args.batch, epochs=args.epochs,
                         callbacks=[stop], verbose=0)
    wall = time.time() - t
    h = hist.history
    run = len(h["loss"])
    inner.compile(loss=loss_fn(), metrics=["accuracy"])
    test_loss, test_acc = evaluate(inner, data, args.batch)
    steps = math.ceil(len(data.x_train) / (args.batch if args.pairing == "paired" else 2 * args.batch))
    n = model.num_slots
    fb, st = cost_lib.run_cost(method, n, run, steps)
    return {
        "kind": "mcv", "optimizer": opt_name, "method": method, **opts, "pairing": args.pairing,
        "epochs": None if stop.best_epoch is None else stop.best_epoch + 1, "epochs_run": run,
        "stop_reason": stop.reason, "test_loss": test_loss, "test_acc": test_acc, "wall_s": wall,
        "cost_fwd_bwd": fb, "cost_step": st, "lr_per_epoch": h.get("learning_rate"),
        "discard_rate": h.get("mcv_discard_rate"), "val_batch_loss": h.get("mcv_val_batch_loss"),
        "measured_ops_per_step": [h["mcv_forward"][-1], h["mcv_backward"][-1], h["mcv_opt_steps"][-1]],
    }


def label(r):
    if r["kind"] == "baseline":
        return f"Baseline {r['optimizer']} lr={r['lr']:g}"
    extra = f", alpha={r['alpha']}" if "alpha" in r else ""
    if r.get("pairing") == "paired":
        extra += ", paired batches"
    return f"MCV {r['method']}{extra} ({r['optimizer']})"


def fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def table(results):
    lines = ["| Run | Epochs (best) | Epochs run | Test loss | Test acc | Theoretical cost (fwd+bwd, step) | Wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {label(r)} | {fmt(r['epochs'], 'd')} | {r['epochs_run']} | {fmt(r['test_loss'], '.3f')} | "
                     f"{fmt(100 * r['test_acc'] if r['test_acc'] == r['test_acc'] else None, '.2f')} | "
                     f"({r['cost_fwd_bwd']:.0f}, {r['cost_step']:.0f}) | {r['wall_s']:.0f} |")
    for opt in sorted({r["optimizer"] for r in results if r["kind"] == "baseline"}):
        grid = [r for r in results if r["kind"] == "baseline" and r["optimizer"] == opt]
        if grid:
            best = max(grid, key=lambda r: r["test_acc"] if r["test_acc"] == r["test_acc"] else -1)
            lines.append(f"| **Grid search {opt}** (best lr={best['lr']:g}; cost and time summed over {len(grid)} runs) | "
                         f"{fmt(best['epochs'], 'd')} | {sum(r['epochs_run'] for r in grid)} | {fmt(best['test_loss'], '.3f')} | "
                         f"{fmt(100 * best['test_acc'], '.2f')} | ({sum(r['cost_fwd_bwd'] for r in grid):.0f}, "
                         f"{sum(r['cost_step'] for r in grid):.0f}) | {sum(r['wall_s'] for r in grid):.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny CI size (< 2 min)")
    p.add_argument("--out", default="reproductions/results/mcv_cifar10")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--arch", default="cnn", choices=sorted(ARCHS))
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-val", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--width", type=float, default=1 / 3, help="multiplier of the thesis widths")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--batch", type=int, default=64, help="baseline batch; MCV gets 2x (half validates)")
    p.add_argument("--optimizers", default="sgd_momentum,adam")
    p.add_argument("--mcv-optimizers", default="sgd_momentum")
    p.add_argument("--only", default="", help="comma list: baseline,discard,voting,method1,method2,method3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairing", default="half", choices=("half", "paired"),
                   help="half: split each 2x batch (default); paired: train on every batch, validate on "
                        "another random one (keras_autolr.runtime.mcv.PairedBatches, the thesis's Algorithm 3)")
    args = p.parse_args(argv)
    if args.smoke:
        args.n_train, args.n_val, args.n_test = 256, 128, 256
        args.width, args.epochs, args.patience = 0.125, 2, 1
        args.optimizers = "sgd_momentum"
    args.discard_lr = {"sgd_momentum": 0.01, "adam": 0.001}  # thesis's best grid LRs
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = {"n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test} if args.dataset == "cifar10" else {}
    data = datasets.load(args.dataset, **kwargs)
    only = set(filter(None, args.only.split(",")))
    jobs = []
    for opt in args.mcv_optimizers.split(","):
        for method, opts in MCV_RUNS:
            name = f"mcv_{opt}_{method}" + "".join(f"_{k}{v}" for k, v in opts.items())
            name += "_paired" if args.pairing == "paired" else ""
            jobs.append((name, lambda o=opt, m=method, k=opts: run_mcv(args, data, o, m, k), method))
    for opt in args.optimizers.split(","):
        for lr in GRID:
            jobs.append((f"baseline_{opt}_{lr:g}", lambda o=opt, l=lr: run_baseline(args, data, o, l), "baseline"))
    results = []
    for name, job, group in jobs:
        if only and group not in only:
            continue
        path = out / f"{name}.json"
        if path.exists():  # resumable
            results.append(json.loads(path.read_text()))
            continue
        r = job()
        r["name"] = name
        path.write_text(json.dumps(r, indent=1))
        results.append(r)
        print(f"{label(r)}: epochs {r['epochs']}/{r['epochs_run']} test acc {r['test_acc']:.4f} "
              f"loss {r['test_loss']:.3f} wall {r['wall_s']:.0f}s", flush=True)
    md = table(results)
    header = (f"CIFAR-10 subset: {len(data.x_train)} train / {len(data.x_val)} held-out val (baseline "
              f"early stopping only) / {len(data.x_test)} test; arch {args.arch} width x{args.width:.3g}; "
              f"max {args.epochs} epochs, patience {args.patience}; baseline batch {args.batch}, MCV "
              + (f"paired batches of {args.batch} (every batch trains, each validated on another random "
                 f"one)" if args.pairing == "paired" else
                 f"batch {2 * args.batch} (half trains, half validates)") + f"; seed {args.seed}.\n\n")
    (out / "results.md").write_text(header + md + "\n")
    print(header + md)


if __name__ == "__main__":
    main()
