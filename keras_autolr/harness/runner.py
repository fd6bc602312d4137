"""Runs and compares learning-rate methods: one run, a resumable grid, tables, plots.

A run is one `fit` of one task with one method, initial LR and seed. Its record
(per-epoch metrics, LR, step counts, best score, wall time, whether it
diverged) is a JSON file named after the run, written atomically, so a grid
that is stopped and restarted skips finished runs.

Tables follow ARC's Tables 3-5: per initial LR, mean ± std over seeds of the
best validation metric and of the convergence step, the threshold being the
worst best score among all runs at that initial LR (`metrics.convergence_step`).

Example:

```python
records = run_grid("mnist1d_cnn", ["constant", "cosine_restarts"], [1e-3],
                   seeds=[0, 1], out_dir="runs/demo", size="smoke")
print(markdown_table(records))
```
"""

import json
import math
import os
import pathlib
import sys
import tempfile
import time

import keras
import numpy as np

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.harness import methods as methods_lib
from keras_autolr.harness import metrics as metrics_lib
from keras_autolr.harness import tasks as tasks_lib

__all__ = ["run_one", "run_grid", "run_id", "load_records", "summarize", "markdown_table", "plot_curves"]


class _StepLogger(keras.callbacks.Callback):
    """Records the LR and the optimizer step at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.steps, self.lrs = [], []

    def on_epoch_end(self, epoch, logs=None):
        opt = lr_lib.base_optimizer(self.model.optimizer)
        self.steps.append(int(keras.ops.convert_to_numpy(opt.iterations)))
        self.lrs.append(float((logs or {}).get("learning_rate", lr_lib.get_learning_rate(opt))))


def run_id(task, method, initial_lr, seed, optimizer, tag=""):
    return f"{task}__{method}{tag}__{optimizer}__lr{initial_lr:g}__s{seed}"


def _json_safe(v):
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_one(task, method, initial_lr, seed=0, *, size="small", epochs=None, optimizer=None,
            options=None, verbose=0, data=None, extra_callbacks=()):
    """Trains `task` once with `method` and returns the run record (a dict).

    Args:
        task: a task name or `tasks.Task`.
        method: a method name from `methods.names()`.
        initial_lr: initial learning rate.
        seed: seeds Keras, numpy and the data subset.
        size: "smoke", "small" or "full".
        epochs: overrides the task's epochs at this size.
        optimizer: overrides the task's optimizer.
        options: method options (e.g. `{"frequency": 3}` for ARC); an
            `"optimizer"` entry overrides the optimizer for this method.
        data: a `tasks.TaskData` to reuse across runs.
    """
    task = tasks_lib.get(task) if isinstance(task, str) else task
    options = dict(options or {})
    # A method may need its own optimizer (MLR-SNet sets the LR of plain SGD).
    optimizer = options.pop("optimizer", None) or optimizer or task.optimizer
    epochs = int(epochs or task.epochs[size])
    keras.utils.set_random_seed(seed)
    data = data or task.data(size, seed=0)
    batch = task.batch_size[size]
    spe = tasks_lib.steps_per_epoch(len(data.x_train), batch)
    setup = methods_lib.make_setup(method, initial_lr=initial_lr, epochs=epochs,
                                   steps_per_epoch=spe, optimizer=optimizer, **options)
    model = task.build_model(size, data.num_classes)
    if setup.wrap_model is not None:
        model = setup.wrap_model(model)
    model.compile(optimizer=setup.optimizer, loss=task.loss, metrics=task.metrics())
    steps = _StepLogger()
    t0 = time.perf_counter()
    if setup.train_data is not None:
        train = {"x": setup.train_data(data.x_train, data.y_train, batch, seed)}
    else:
        train = {"x": data.x_train, "y": data.y_train, "batch_size": batch, "shuffle": True}
    hist = model.fit(**train, epochs=epochs, validation_data=(data.x_val, data.y_val),
                     callbacks=[*setup.callbacks, *extra_callbacks, steps], verbose=verbose)
    wall = time.perf_counter() - t0
    h = {k: [_json_safe(float(x)) for x in v] for k, v in hist.history.items()}
    key = "val_" + task.metric
    curve = h.get(key, [])
    test = model.evaluate(data.x_test, data.y_test, batch_size=batch, verbose=0, return_dict=True)
    # Non-finite losses are stored as None; an early stop (e.g. MCVStopping) is not a divergence.
    diverged = any(v is None for v in h.get("loss", []))
    return {
        "task": task.name, "method": method, "initial_lr": initial_lr, "seed": seed,
        "optimizer": optimizer, "size": size, "epochs": epochs, "steps_per_epoch": spe,
        "options": options, "history": h, "steps": steps.steps, "lr": steps.lrs,
        "metric": task.metric, "mode": task.mode,
        "best": _json_safe(metrics_lib.best_score(curve, task.mode)) if curve else None,
        "test": {k: _json_safe(float(v)) for k, v in test.items()},
        "wall_s": wall, "diverged": bool(diverged), "epochs_run": len(h.get("loss", [])),
        "backend": keras.backend.backend(),
    }


def _atomic_write_json(path, obj):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def run_cached(path, task, method, initial_lr, seed=0, *, label=None, **kwargs):
    """`run_one`, resumable: the record at `path` if a finished run left one there.

    Otherwise runs, adds `label` to the record when given, and writes it
    atomically to `path`. Returns `(record, ran)`, `ran` False when loaded.
    """
    path = pathlib.Path(path)
    if path.exists():
        return json.loads(path.read_text()), False
    rec = run_one(task, method, initial_lr, seed, **kwargs)
    if label is not None:
        rec["label"] = label
    _atomic_write_json(path, rec)
    return rec, True


def load_records(out_dir):
    """All run records under `out_dir/runs`, sorted by run id."""
    return [json.loads(p.read_text()) for p in sorted(pathlib.Path(out_dir, "runs").glob("*.json"))]


def run_grid(task, methods, initial_lrs, seeds, out_dir, *, size="small", epochs=None,
             optimizer=None, options=None, verbose=0, log=print):
    """Runs every method x initial LR x seed once, skipping finished runs.

    Args:
        methods: method names, or labelled jobs `(label, method, options)`:
            a job's runs go under `runs/<label>/`, its records carry the
            label, and its options replace `options[method]` (so one method
            can run in several variants, e.g. ARC with several controllers).
        options: per-method options, `{method: {...}}`.
        log: progress printer (one line per run).

    Returns:
        The list of all run records of this grid.
    """
    task_obj = tasks_lib.get(task) if isinstance(task, str) else task
    optimizer = optimizer or task_obj.optimizer
    options = options or {}
    jobs = [m if isinstance(m, tuple) else (None, m, options.get(m)) for m in methods]
    data = None
    records = []
    total = len(jobs) * len(initial_lrs) * len(seeds)
    done = 0
    for lr0 in initial_lrs:
        for seed in seeds:
            for label, method, m_options in jobs:
                done += 1
                m_opt = (m_options or {}).get("optimizer", optimizer)
                path = pathlib.Path(out_dir, "runs", label or "",
                                    run_id(task_obj.name, method, lr0, seed, m_opt) + ".json")
                name = f"{label}/{path.stem}" if label else path.stem
                if path.exists():
                    records.append(json.loads(path.read_text()))
                    log(f"[{done}/{total}] {name}: done before, skipped")
                    continue
                data = data or task_obj.data(size, seed=0)
                rec, _ = run_cached(path, task_obj, method, lr0, seed, label=label, size=size, epochs=epochs,
                                    optimizer=optimizer, options=m_options, verbose=verbose, data=data)
                records.append(rec)
                log(f"[{done}/{total}] {name}: best val_{rec['metric']}={rec['best']} "
                    f"wall={rec['wall_s']:.1f}s{' DIVERGED' if rec['diverged'] else ''}")
                sys.stdout.flush()
    return records


def summarize(records):
    """Per (initial LR, method): best metric and convergence step over seeds.

    Returns a list of dict rows with `best`, `converge` (lists over seeds),
    `threshold` and text cells.
    """
    rows = []
    by_lr = {}
    for r in records:
        by_lr.setdefault(r["initial_lr"], []).append(r)
    for lr0 in sorted(by_lr, reverse=True):
        group = by_lr[lr0]
        mode = group[0]["mode"]
        key = "val_" + group[0]["metric"]
        runs = [(r["steps"][: len(r["history"].get(key, []))],
                 [math.nan if v is None else v for v in r["history"].get(key, [])]) for r in group]
        try:
            threshold, conv = metrics_lib.convergence_steps(runs, mode)
        except ValueError:
            threshold, conv = math.nan, [None] * len(group)
        by_method = {}
        for r, c in zip(group, conv):
            by_method.setdefault(r["method"], {"best": [], "converge": [], "test": [], "wall": []})
            m = by_method[r["method"]]
            m["best"].append(r["best"])
            m["converge"].append(c)
            m["test"].append(r["test"].get(r["metric"]))
            m["wall"].append(r["wall_s"])
        for method, m in by_method.items():
            rows.append({"initial_lr": lr0, "method": method, "threshold": threshold, **m})
    return rows


def markdown_table(records, digits=4):
    """ARC-style table: rows = methods, column pairs = initial LRs."""
    rows = summarize(records)
    if not rows:
        return "(no runs)"
    lrs = sorted({r["initial_lr"] for r in rows}, reverse=True)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    metric = records[0]["metric"]
    head = "| method | " + " | ".join(f"LR {lr:g}: best val {metric} | LR {lr:g}: converge step" for lr in lrs) + " |"
    sep = "|---|" + "---|---|" * len(lrs)
    lines = [head, sep]
    cell = {(r["initial_lr"], r["method"]): r for r in rows}
    for m in methods:
        parts = []
        for lr in lrs:
            r = cell.get((lr, m))
            if r is None:
                parts += ["", ""]
                continue
            parts.append(metrics_lib.format_mean_std(r["best"], digits))
            conv = metrics_lib.format_mean_std(r["converge"], 0)
            parts.append(conv)
        lines.append(f"| {m} | " + " | ".join(parts) + " |")
    thresholds = ", ".join(f"LR {r['initial_lr']:g}: {r['threshold']:.4f}" for r in
                           {r["initial_lr"]: r for r in rows}.values())
    lines.append("")
    lines.append(f"Convergence thresholds (worst per-run best at each initial LR): {thresholds}. "
                 "A count like (3/5) means only 3 of 5 runs reached it.")
    return "\n".join(lines)


def pyplot():
    """`matplotlib.pyplot` on the headless Agg backend, or None (with a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping plot (pip install 'keras-autolr[plots]').")
        return None
    return plt


def plot_curves(records, path, title=None):
    """ARC Figure 3 style: LR (top) and validation metric (bottom) per method, one column per initial LR.

    Needs matplotlib (`pip install keras-autolr[plots]`); returns None without it.
    """
    plt = pyplot()
    if plt is None:
        return None
    lrs = sorted({r["initial_lr"] for r in records}, reverse=True)
    fig, axes = plt.subplots(2, len(lrs), figsize=(4.5 * len(lrs), 6), squeeze=False, sharex="col")
    for j, lr0 in enumerate(lrs):
        seen = set()
        for r in records:
            if r["initial_lr"] != lr0 or r["method"] in seen:
                continue  # first seed of each method, as in the paper's figure
            seen.add(r["method"])
            key = "val_" + r["metric"]
            axes[0, j].plot(r["steps"], r["lr"], label=r["method"])
            vals = r["history"].get(key, [])
            axes[1, j].plot(r["steps"][: len(vals)], [np.nan if v is None else v for v in vals], label=r["method"])
        axes[0, j].set_yscale("log")
        axes[0, j].set_title(f"initial LR {lr0:g}")
        axes[1, j].set_xlabel("step")
    axes[0, 0].set_ylabel("learning rate")
    axes[1, 0].set_ylabel("val " + records[0]["metric"])
    axes[1, -1].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
