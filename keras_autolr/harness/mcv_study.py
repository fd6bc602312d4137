"""The MCV thesis study (Tables 4.2 and 4.5 analog): MCV methods vs a grid-search baseline.

Baseline (Table 4.2): SGD-momentum (0.9) and Adam at LR {0.1, 0.01, 0.001,
0.0001}, constant LR, early stopping on a held-out validation split (best
epoch restored). MCV (Table 4.5): discard, lr-voting, Method 1, Method 2
(alpha 0.1/0.3/0.5), Method 3 with `MCVModel`, stopping by `MCVStopping` on
the validation-batch loss; MCV never sees the held-out split (its validation
batches come from the training data, as in the thesis).

Every run goes through `harness.runner.run_cached` (method "constant" with
an `EarlyStopping`, or "mcv"), one JSON record per run in `out`, so a study
resumes where it stopped; `study_row` turns a record into a table row
(records written by earlier versions of the script, already rows, are read
as they are). Reported per run: epochs (best epoch, 1-based), epochs run,
test loss, test accuracy, the thesis's theoretical cost (epochs run x steps
x [(#fwd+#bwd), #step], Table 4.1) and wall time; the baseline's grid total
sums all its runs, as the thesis does.

Used by `reproductions/mcv_cifar10.py` and `keras-autolr mcv reproduce`.

Example:

```python
from keras_autolr.harness import mcv_study

config = mcv_study.StudyConfig.smoke(dataset="digits", only=("discard",), mcv_optimizers=("adam",), epochs=1)
rows, text = mcv_study.run_study(config, "runs/mcv_study", log=lambda line: None)
assert rows[0]["kind"] == "mcv" and "MCV discard (adam)" in text
```
"""

import dataclasses
import math
import pathlib

import keras

from keras_autolr.harness import datasets, models, runner, tasks
from keras_autolr.runtime import io as io_lib
from keras_autolr.runtime.mcv import MCVStopping, THESIS_LR_LIST
from keras_autolr.runtime.mcv import cost as cost_lib

__all__ = ["GRID", "MCV_RUNS", "DISCARD_LR", "StudyConfig", "thesis_task", "study_row", "results_table",
           "run_study"]

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
# Discard trains at the thesis's best grid LR of each optimizer.
DISCARD_LR = {"sgd_momentum": 0.01, "adam": 0.001}


@dataclasses.dataclass
class StudyConfig:
    """The study's sizes and choices (the defaults are the committed CPU-sized run's, but 20 epochs).

    Args:
        dataset: a `harness.datasets` name ("cifar10"; "svhn_cropped_tfds"
            needs tensorflow-datasets).
        arch: a key of `harness.models.MCV_ARCHS` ("cnn", "svhn_cnn", "vgg11", "resnet18").
        n_train, n_val, n_test: CIFAR-10 subset sizes (other data sets: whole splits).
        width: multiplier of the thesis widths.
        epochs: maximum epochs.
        patience: early-stopping patience (baseline and MCV).
        batch: baseline batch; MCV gets twice as much (half validates)
            unless `pairing="paired"`.
        optimizers: the baseline grid's optimizers.
        mcv_optimizers: the MCV runs' optimizers.
        only: run groups to keep ("baseline", "discard", "voting", "method1",
            "method2", "method3"); empty: all.
        seed: the run seed.
        pairing: "half" (split each 2x batch) or "paired" (train on every
            batch, validate on another random one: `PairedBatches`).

    Example:

    ```python
    from keras_autolr.harness import mcv_study

    assert mcv_study.StudyConfig().n_train == 4000
    assert mcv_study.StudyConfig.smoke().epochs == 2
    ```
    """

    dataset: str = "cifar10"
    arch: str = "cnn"
    n_train: int = 4000
    n_val: int = 1000
    n_test: int = 2000
    width: float = 1 / 3
    epochs: int = 20
    patience: int = 3
    batch: int = 64
    optimizers: tuple = ("sgd_momentum", "adam")
    mcv_optimizers: tuple = ("sgd_momentum",)
    only: tuple = ()
    seed: int = 0
    pairing: str = "half"

    @classmethod
    def smoke(cls, **changes):
        """The CI size (under two minutes): 256 training images, width x0.125, 2 epochs, SGD only.

        Args:
            **changes: fields to set on top.

        Example:

        ```python
        from keras_autolr.harness import mcv_study

        assert mcv_study.StudyConfig.smoke(seed=1).n_train == 256
        ```
        """
        base = dict(n_train=256, n_val=128, n_test=256, width=0.125, epochs=2, patience=1,
                    optimizers=("sgd_momentum",))
        return cls(**{**base, **changes})


def thesis_task(config):
    """The study's `tasks.Task`: its data cut and thesis net, logits cross-entropy, test batch 512.

    Args:
        config: a `StudyConfig`.

    Example:

    ```python
    from keras_autolr.harness import mcv_study

    task = mcv_study.thesis_task(mcv_study.StudyConfig.smoke(dataset="digits"))
    data = task.data()
    assert task.build_model(num_classes=10).name == "thesis_cnn" and data.x_train.ndim == 4
    ```
    """
    kwargs = ({"n_train": config.n_train, "n_val": config.n_val, "n_test": config.n_test}
              if config.dataset == "cifar10" else {})

    def load(size, seed):
        s = datasets.load(config.dataset, seed=seed, **kwargs)
        x_train, x_val, x_test = (x if x.ndim == 4 else x[..., None] for x in (s.x_train, s.x_val, s.x_test))
        return tasks.TaskData(x_train, s.y_train, x_val, s.y_val, x_test, s.y_test, s.num_classes)

    shape = {}

    def build(size, num_classes, seed):
        if "input" not in shape:
            shape["input"] = load(size, 0).x_train.shape[1:]
        return models.MCV_ARCHS[config.arch](shape["input"], num_classes, config.width)

    return tasks.Task(
        name=f"mcv_{config.dataset}_{config.arch}", load=load, build=build,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        batch_size=config.batch, epochs=config.epochs, eval_batch_size=512,
        description="MCV thesis study (Tables 4.2 / 4.5 analog)",
    )


def _finite(v):
    return v is not None and math.isfinite(v)


def _nan(v):
    return float(v) if _finite(v) else float("nan")


def study_row(record, name, options=None):
    """A study table row from a run record (`runner.run_one`); a row is returned unchanged.

    Args:
        record: a baseline ("constant") or "mcv" run record, annotated by
            `run_study` (MCV: `mcv_best_epoch`, `mcv_stop_reason`,
            `mcv_num_slots`).
        name: the run's file stem.
        options: the MCV method's options shown in the table (e.g. `{"alpha": 0.5}`).

    Returns:
        dict with `kind` ("baseline" | "mcv"), `optimizer`, `lr` or `method`,
        `epochs` (best, 1-based), `epochs_run`, `test_loss`, `test_acc`,
        `wall_s`, `cost_fwd_bwd`, `cost_step` and per-epoch curves.

    Example:

    ```python
    from keras_autolr.harness import mcv_study

    rec = {"method": "constant", "optimizer": "adam", "initial_lr": 0.01, "steps_per_epoch": 10,
           "history": {"loss": [2.0, 1.5, 1.4], "val_loss": [1.9, 1.6, 1.7]},
           "test": {"loss": 1.6, "accuracy": 0.4}, "wall_s": 3.0}
    row = mcv_study.study_row(rec, "baseline_adam_0.01")
    assert row["epochs"] == 2 and row["epochs_run"] == 3 and row["cost_step"] == 30
    ```
    """
    if "kind" in record:
        return record
    h = record["history"]
    steps = record["steps_per_epoch"]
    run = len(h["loss"])
    if record["method"] == "constant":
        val = h["val_loss"]
        best = None
        if any(_finite(v) for v in val):
            best = min(range(len(val)), key=lambda i: val[i] if _finite(val[i]) else math.inf)
        # A run TerminateOnNaN stopped (non-finite last loss) is reported as diverged.
        ok = best is not None and _finite(h["loss"][-1])
        fb, st = cost_lib.run_cost("baseline", 1, run, steps)
        return {
            "kind": "baseline", "optimizer": record["optimizer"], "lr": record["initial_lr"],
            "epochs": None if best is None else best + 1, "epochs_run": run,
            "test_loss": _nan(record["test"]["loss"]) if ok else float("nan"),
            "test_acc": _nan(record["test"]["accuracy"]) if ok else float("nan"),
            "wall_s": record["wall_s"], "cost_fwd_bwd": fb, "cost_step": st, "val_loss": val, "name": name,
        }
    opts = record["options"]
    method = opts["method"]
    fb, st = cost_lib.run_cost(method, record["mcv_num_slots"], run, steps)
    best = record["mcv_best_epoch"]
    return {
        "kind": "mcv", "optimizer": record["optimizer"], "method": method, **(options or {}),
        "pairing": opts.get("pairing", "half"),
        "epochs": None if best is None else best + 1, "epochs_run": run,
        "stop_reason": record["mcv_stop_reason"], "test_loss": _nan(record["test"]["loss"]),
        "test_acc": _nan(record["test"]["accuracy"]), "wall_s": record["wall_s"],
        "cost_fwd_bwd": fb, "cost_step": st, "lr_per_epoch": h.get("learning_rate"),
        "discard_rate": h.get("mcv_discard_rate"), "val_batch_loss": h.get("mcv_val_batch_loss"),
        "measured_ops_per_step": [h["mcv_forward"][-1], h["mcv_backward"][-1], h["mcv_opt_steps"][-1]],
        "name": name,
    }


def _label(r):
    if r["kind"] == "baseline":
        return f"Baseline {r['optimizer']} lr={r['lr']:g}"
    extra = f", alpha={r['alpha']}" if "alpha" in r else ""
    if r.get("pairing") == "paired":
        extra += ", paired batches"
    return f"MCV {r['method']}{extra} ({r['optimizer']})"


def _fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def results_table(rows):
    """The study's markdown table: one line per run, then one grid-search total per baseline optimizer.

    Args:
        rows: `study_row` rows.

    Example:

    ```python
    from keras_autolr.harness import mcv_study

    row = {"kind": "baseline", "optimizer": "adam", "lr": 0.01, "epochs": 2, "epochs_run": 3,
           "test_loss": 1.6, "test_acc": 0.4, "wall_s": 3.0, "cost_fwd_bwd": 60, "cost_step": 30}
    table = mcv_study.results_table([row])
    assert "| Baseline adam lr=0.01 | 2 | 3 | 1.600 | 40.00 | (60, 30) | 3 |" in table
    ```
    """
    lines = ["| Run | Epochs (best) | Epochs run | Test loss | Test acc | Theoretical cost (fwd+bwd, step) | Wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {_label(r)} | {_fmt(r['epochs'], 'd')} | {r['epochs_run']} | {_fmt(r['test_loss'], '.3f')} | "
                     f"{_fmt(100 * r['test_acc'] if r['test_acc'] == r['test_acc'] else None, '.2f')} | "
                     f"({r['cost_fwd_bwd']:.0f}, {r['cost_step']:.0f}) | {r['wall_s']:.0f} |")
    for opt in sorted({r["optimizer"] for r in rows if r["kind"] == "baseline"}):
        grid = [r for r in rows if r["kind"] == "baseline" and r["optimizer"] == opt]
        if grid:
            best = max(grid, key=lambda r: r["test_acc"] if r["test_acc"] == r["test_acc"] else -1)
            lines.append(f"| **Grid search {opt}** (best lr={best['lr']:g}; cost and time summed over {len(grid)} runs) | "
                         f"{_fmt(best['epochs'], 'd')} | {sum(r['epochs_run'] for r in grid)} | {_fmt(best['test_loss'], '.3f')} | "
                         f"{_fmt(100 * best['test_acc'], '.2f')} | ({sum(r['cost_fwd_bwd'] for r in grid):.0f}, "
                         f"{sum(r['cost_step'] for r in grid):.0f}) | {sum(r['wall_s'] for r in grid):.0f} |")
    return "\n".join(lines)


def _mcv_job(config, task, data, opt, method, opts, path, name):
    kw = dict(opts)
    if method in ("method1", "method2", "method3"):
        kw["initial_candidates"] = THESIS_LR_LIST  # Algorithm 8: epoch 1 at min(list)
    paired = config.pairing == "paired"
    stop = MCVStopping(patience=config.patience)
    rec, ran = runner.run_cached(
        path, task, "mcv", DISCARD_LR[opt] if method == "discard" else 0.01, config.seed,
        options={"method": method, "pairing": config.pairing, **kw}, optimizer=opt, epochs=config.epochs,
        data=data, validation=False, extra_callbacks=[stop], batch_size=config.batch if paired else 2 * config.batch,
        annotate=lambda r: {"mcv_best_epoch": stop.best_epoch, "mcv_stop_reason": stop.reason,
                            "mcv_num_slots": stop.model.num_slots})
    return study_row(rec, name, opts), ran


def _baseline_job(config, task, data, opt, lr, path, name):
    stop = keras.callbacks.EarlyStopping("val_loss", patience=config.patience, restore_best_weights=True)
    rec, ran = runner.run_cached(path, task, "constant", lr, config.seed, optimizer=opt, epochs=config.epochs,
                                 data=data, extra_callbacks=[stop])
    return study_row(rec, name), ran


def run_study(config, out, log=print):
    """Runs (or resumes) the study into `out` and writes `results.md`; returns `(rows, text)`.

    Args:
        config: a `StudyConfig`.
        out: output folder: one `<run name>.json` per run, `results.md`.
        log: progress printer (one line per new run, then the table).

    Returns:
        The table rows (MCV runs, then the baseline grid) and the text of `results.md`.

    Example:

    ```python
    from keras_autolr.harness import mcv_study

    config = mcv_study.StudyConfig.smoke(dataset="digits", only=("method3",), epochs=1)
    rows, text = mcv_study.run_study(config, "runs/mcv_method3", log=lambda line: None)
    assert rows[0]["method"] == "method3" and "MCV method3 (sgd_momentum)" in text
    ```
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task = thesis_task(config)
    data = task.data()
    suffix = "_paired" if config.pairing == "paired" else ""
    jobs = []
    for opt in config.mcv_optimizers:
        for method, opts in MCV_RUNS:
            name = f"mcv_{opt}_{method}" + "".join(f"_{k}{v}" for k, v in opts.items()) + suffix
            jobs.append((method, name, lambda p, n, o=opt, m=method, k=opts: _mcv_job(config, task, data, o, m, k, p, n)))
    for opt in config.optimizers:
        for lr in GRID:
            jobs.append(("baseline", f"baseline_{opt}_{lr:g}",
                         lambda p, n, o=opt, l=lr: _baseline_job(config, task, data, o, l, p, n)))
    rows = []
    for group, name, job in jobs:
        if config.only and group not in config.only:
            continue
        r, ran = job(out / f"{name}.json", name)
        rows.append(r)
        if ran:
            log(f"{_label(r)}: epochs {r['epochs']}/{r['epochs_run']} test acc {r['test_acc']:.4f} "
                f"loss {r['test_loss']:.3f} wall {r['wall_s']:.0f}s")
    batches = (f"paired batches of {config.batch} (every batch trains, each validated on another random one)"
               if config.pairing == "paired" else f"batch {2 * config.batch} (half trains, half validates)")
    header = (f"CIFAR-10 subset: {len(data.x_train)} train / {len(data.x_val)} held-out val (baseline "
              f"early stopping only) / {len(data.x_test)} test; arch {config.arch} width x{config.width:.3g}; "
              f"max {config.epochs} epochs, patience {config.patience}; baseline batch {config.batch}, MCV "
              f"{batches}; seed {config.seed}.\n\n")
    text = header + results_table(rows) + "\n"
    io_lib.atomic_write_text(out / "results.md", text)
    log(text.rstrip("\n"))
    return rows, text
