"""Runs learning-rate methods on tasks: one run, a resumable run, a resumable grid.

A run is one `fit` of one task (`harness.tasks`) with one method
(`harness.methods`), initial LR and seed. Its record (per-epoch metrics, LR,
step counts, best score, test score, wall time, whether it diverged) is a
JSON-ready dict; `run_cached` and `run_grid` write each record atomically to
a file named after the run, so a study that is stopped and restarted skips
finished runs. Tables and plots of records are in `harness.reports`.

Example:

```python
from keras_autolr.harness import reports, runner

records = runner.run_grid("digits_cnn", ["constant", "exponential"], [1e-2], seeds=[0],
                          out_dir="runs/demo", size="smoke", epochs=1, log=lambda line: None)
assert len(runner.load_records("runs/demo")) == 2
print(reports.markdown_table(records))
```
"""

import json
import math
import os
import pathlib
import sys
import time

import keras
import numpy as np

from keras_autolr.runtime import io as io_lib
from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.optimizers import EvalWeights, ReferenceScheduleFreeAdamW
from keras_autolr.harness import methods as methods_lib
from keras_autolr.harness import metrics as metrics_lib
from keras_autolr.harness import tasks as tasks_lib

__all__ = ["run_one", "run_cached", "run_grid", "run_id", "load_record", "load_records", "RunRecordError"]


class RunRecordError(ValueError):
    """A finished-run record that cannot stand for the run asked for: unreadable, or of another size or length.

    Callers that record a failed run (the leaderboard) re-raise it rather than write an error record over
    the file: the record may be a committed run of another grid.
    """


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
    """The file stem of a grid run: `task__method<tag>__optimizer__lr<lr>__s<seed>`.

    Args:
        task: task name.
        method: method name.
        initial_lr: initial learning rate.
        seed: run seed.
        optimizer: optimizer name.
        tag: appended to the method name.

    Example:

    ```python
    from keras_autolr.harness import runner

    assert runner.run_id("digits_cnn", "arc", 1e-3, 0, "adam") == "digits_cnn__arc__adam__lr0.001__s0"
    ```
    """
    return f"{task}__{method}{tag}__{optimizer}__lr{initial_lr:g}__s{seed}"


def _json_safe(v):
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_one(task, method, initial_lr, seed=0, *, size="small", epochs=None, optimizer=None,
            options=None, verbose=0, data=None, extra_callbacks=(), batch_size=None, validation=True):
    """Trains `task` once with `method` and returns the run record (a dict).

    Seeds Keras with `seed`, builds the method's setup and the task's model
    (wrapped if the method wraps it), fits, then evaluates the test split at
    the task's `eval_batch_size`. Non-finite numbers are stored as None; a
    run whose training loss became non-finite is `diverged` (an early stop,
    e.g. by `MCVStopping`, is not).

    Args:
        task: a task name (suite "eval") or a `tasks.Task`.
        method: a method name from `methods.names()`.
        initial_lr: initial learning rate.
        seed: seeds Keras (weights, shuffling); the data is the task's seed-0 cut.
        size: "smoke", "small" or "full".
        epochs: overrides the task's epochs at this size.
        optimizer: overrides the task's optimizer.
        options: method options (e.g. `{"frequency": 3}` for ARC); an
            `"optimizer"` entry overrides the optimizer for this method.
        verbose: `fit`'s verbosity.
        data: a `tasks.TaskData` to reuse across runs.
        extra_callbacks: more `fit` callbacks (after the method's).
        batch_size: overrides the task's batch size at this size.
        validation: pass the validation split to `fit` (False: the method
            must not see it, e.g. MCV, which validates on training batches).

    Returns:
        dict with `task`, `method`, `initial_lr`, `seed`, `optimizer`,
        `size`, `epochs`, `steps_per_epoch`, `options`,
        `history` (Keras's, per epoch), `steps` and `lr` (at each epoch's
        end), `metric`, `mode`, `best` (best validation score), `test`
        (test metrics), `wall_s`, `diverged`, `epochs_run`, `backend`.

    Example:

    ```python
    from keras_autolr.harness import runner

    record = runner.run_one("digits_cnn", "exponential", 1e-2, seed=0, size="smoke", epochs=2)
    assert record["epochs_run"] == 2 and record["lr"][1] < record["lr"][0]
    assert set(record["test"]) >= {"loss", "accuracy"}
    ```
    """
    task = tasks_lib.get(task)
    options = dict(options or {})
    # A method may need its own optimizer (MLR-SNet sets the LR of plain SGD).
    optimizer = options.pop("optimizer", None) or optimizer or task.optimizer
    epochs = int(epochs or task.epochs_at(size))
    keras.utils.set_random_seed(seed)
    data = data or task.data(size, seed=0)
    batch = int(batch_size or task.batch_size_at(size))
    spe = tasks_lib.steps_per_epoch(len(data.x_train), batch)
    setup = methods_lib.make_setup(method, initial_lr=initial_lr, epochs=epochs,
                                   steps_per_epoch=spe, optimizer=optimizer, **options)
    model = task.build_model(size, data.num_classes, seed=seed)
    if setup.wrap_model is not None:
        model = setup.wrap_model(model)
    model.compile(optimizer=setup.optimizer, loss=tasks_lib.make_loss(task.loss), metrics=task.metrics())
    steps = _StepLogger()
    t0 = time.perf_counter()
    if setup.train_data is not None:
        train = {"x": setup.train_data(data.x_train, data.y_train, batch, seed)}
    else:
        train = {"x": data.x_train, "y": data.y_train, "batch_size": batch, "shuffle": True}
    if validation:
        train["validation_data"] = (data.x_val, data.y_val)
    hist = model.fit(**train, epochs=epochs, callbacks=[*setup.callbacks, *extra_callbacks, steps], verbose=verbose)
    wall = time.perf_counter() - t0
    h = {k: [_json_safe(float(x)) for x in v] for k, v in hist.history.items()}
    key = "val_" + task.metric
    curve = h.get(key, [])
    def evaluate():
        return model.evaluate(data.x_test, data.y_test, batch_size=task.eval_batch_size or batch, verbose=0,
                              return_dict=True)

    if isinstance(lr_lib.base_optimizer(model.optimizer), ReferenceScheduleFreeAdamW):
        with EvalWeights(model):  # schedule-free is scored at its evaluation point x
            test = evaluate()
    else:
        test = evaluate()
    diverged = any(v is None for v in h.get("loss", []))
    return {
        "task": task.name, "method": method, "initial_lr": initial_lr, "seed": seed,
        "optimizer": optimizer, "size": size, "epochs": epochs, "steps_per_epoch": spe,
        "options": options, "history": h, "steps": steps.steps, "lr": steps.lrs,
        "metric": task.metric, "mode": task.mode,
        "best": _json_safe(metrics_lib.best_score(curve, task.mode)) if curve else None,
        "test": {k: _json_safe(float(v)) for k, v in test.items()},
        "wall_s": wall, "diverged": bool(diverged), "epochs_run": len(h.get("loss", [])),
        "setup_cost": dict(setup.cost),
        "backend": keras.backend.backend(),
    }


def run_cached(path, task, method, initial_lr, seed=0, *, label=None, annotate=None, **kwargs):
    """`run_one`, resumable: the record at `path` if a finished run left one there.

    Otherwise runs, adds `label` and the fields `annotate(record)` returns
    (e.g. state of a callback passed in `extra_callbacks`), and writes the
    record atomically to `path`.

    Args:
        path: the record's JSON file.
        task, method, initial_lr, seed: as in `run_one`.
        label: stored as `record["label"]` when given.
        annotate: `annotate(record) -> dict` merged into a new record before
            it is written (not called when the record is loaded).
        **kwargs: `run_one`'s keyword arguments.

    Returns:
        `(record, ran)`, `ran` False when the record was loaded.

    Raises:
        RunRecordError: the record at `path` is unreadable or of another size
            or length (`load_record`).
        keras_autolr.runtime.io.OutputLockedError: another process is running
            this record (it holds `path + ".lock"`, released when that process
            ends, even if killed).

    Example:

    ```python
    from keras_autolr.harness import runner

    rec, ran = runner.run_cached("runs/a.json", "digits_cnn", "constant", 1e-2, label="fixed",
                                 annotate=lambda r: {"note": "first"}, size="smoke", epochs=1)
    again, ran_again = runner.run_cached("runs/a.json", "digits_cnn", "constant", 1e-2, size="smoke")
    assert ran and not ran_again and again["label"] == "fixed" and again["note"] == "first"
    ```
    """
    path = pathlib.Path(path)

    def load():
        return load_record(path, size=kwargs.get("size", "small"), epochs=kwargs.get("epochs")), False

    if path.exists():
        return load()
    # A second process on the same record fails at once rather than running it twice (OutputLockedError is a
    # TimeoutError: callers that record a run's ValueError/RuntimeError will not write it over this record).
    with io_lib.exclusive_lock(f"{path}.lock", path):
        if path.exists():  # the other process finished between the check and the lock
            return load()
        rec = run_one(task, method, initial_lr, seed, **kwargs)
        if label is not None:
            rec["label"] = label
        if annotate is not None:
            rec.update(annotate(rec))
        io_lib.atomic_write_json(path, rec)
    return rec, True


def load_records(out_dir):
    """All run records under `out_dir/runs` (not its subfolders), sorted by file name.

    Args:
        out_dir: a `run_grid` output folder.

    Example:

    ```python
    from keras_autolr.harness import runner

    assert runner.load_records("no_such_folder") == []
    ```
    """
    return [json.loads(p.read_text()) for p in sorted(pathlib.Path(out_dir, "runs").glob("*.json"))]


def load_record(path, *, size=None, epochs=None):
    """The finished run's record at `path`, checked to be the run asked for.

    Run ids do not say the size or the length, so a record of another one
    would otherwise pass as done.

    Args:
        path: the record's JSON file.
        size: the data size the caller runs (`None`: not checked).
        epochs: the epochs the caller runs (`None`: the task's default, not checked).

    Returns:
        The record (a dict).

    Raises:
        RunRecordError: the file is unreadable (records are written atomically,
            so something else wrote or damaged it), or its run has another size
            or length; the message names the file and says what to do.

    Example:

    ```python
    import json, pathlib
    from keras_autolr.harness import runner

    pathlib.Path("r.json").write_text(json.dumps({"size": "smoke", "epochs": 2}))
    assert runner.load_record("r.json", size="smoke", epochs=2)["epochs"] == 2
    try:
        runner.load_record("r.json", size="small")
    except runner.RunRecordError as err:
        assert "--out" in str(err)
    ```
    """
    path = pathlib.Path(path)
    try:
        rec = json.loads(path.read_text())
        why = None if isinstance(rec, dict) else "not a JSON object"
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        why = str(err)
    if why is not None:
        raise RunRecordError(f"The run record {str(path)!r} is unreadable ({why}). Delete it to rerun that run.")
    if (size is not None and rec.get("size", size) != size) or (epochs is not None and rec.get("epochs", epochs) != epochs):
        raise RunRecordError(
            f"{os.fspath(path)} is a run at size {rec.get('size')!r}, {rec.get('epochs')} epochs; this grid runs "
            f"size {size!r}{'' if epochs is None else f', {epochs} epochs'} into the same folder. Pass another "
            "output folder (--out) for this size.")
    return rec


def run_grid(task, methods, initial_lrs, seeds, out_dir, *, size="small", epochs=None,
             optimizer=None, options=None, verbose=0, log=print):
    """Runs every method x initial LR x seed once, skipping finished runs.

    Records go to `out_dir/runs/<run_id>.json` (`run_cached`); the data is
    loaded once and shared by all runs.

    Args:
        task: a task name or `tasks.Task`.
        methods: method names, or labelled jobs `(label, method, options)`:
            a job's runs go under `runs/<label>/`, its records carry the
            label, and its options replace `options[method]` (so one method
            can run in several variants, e.g. ARC with several controllers).
        initial_lrs: initial learning rates.
        seeds: run seeds.
        out_dir: output folder.
        size, epochs, optimizer, verbose: as in `run_one`.
        options: per-method options, `{method: {...}}`.
        log: progress printer (one line per run).

    Returns:
        The list of all run records of this grid.

    Example:

    ```python
    from keras_autolr.harness import runner

    jobs = [("fast", "exponential", {"gamma": 0.5}), ("slow", "exponential", {"gamma": 0.99})]
    records = runner.run_grid("digits_cnn", jobs, [1e-2], [0], "runs/variants", size="smoke",
                              epochs=1, log=lambda line: None)
    assert [r["label"] for r in records] == ["fast", "slow"]
    ```
    """
    task_obj = tasks_lib.get(task)
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
                    rec = load_record(path, size=size, epochs=epochs)
                    records.append(rec)
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
