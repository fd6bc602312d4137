"""The leaderboard: every LR method on many workloads, scored AlgoPerf-style.

A *workload* is a registered task (`harness.tasks`) at a fixed size and epoch
budget with a frozen *target* (the validation metric a tuned AdamW +
warmup-cosine reaches: `calibrate_targets`). An *entry* is a registered method
(`harness.methods`) as the leaderboard runs it: from its defaults, nothing
tuned per workload (AlgoPerf's self-tuning ruleset), optionally from an
initial LR 10x too small or too large (`lr_variants`).

Each (workload, entry, seed) cell is one run whose record (one JSON file)
holds `workload`, `method`, `seed`, `reached_target`, `steps_to_target`,
`seconds_to_target`, `best_metric`, `final_metric`, `diverged` and the
per-epoch curves. Seconds count training only (validation passes are
excluded, as AlgoPerf excludes evaluation time) but include everything the
method spends inside `fit` (MCV's trial passes, ARC's queries) and any cost
its setup reports before `fit` (an LR finder's sweep: `Setup.cost_seconds`).
`aggregate` turns records into per-method benchmark scores
(`harness.profiles`), a per-workload table and plots.

`run_cells` runs cells resumably (finished cells are skipped), locally or as
Ray tasks (`backend="ray"`); `shard(cells, i, k)` splits a grid for any
cluster scheduler, whose outputs `aggregate` reads from one folder.

Example:

```python
from keras_autolr.harness import leaderboard

cells = leaderboard.grid(["digits_mlp_lb"], ["adam", "dog"], seeds=[0], bad_lrs=False, smoke=True)
records = leaderboard.run_cells(cells, "lb", targets={"digits_mlp_lb": 0.2}, progress=False)
summary = leaderboard.aggregate(records)
assert set(summary["scores"]) == {"adam", "dog"}
```
"""

import dataclasses
import json
import math
import pathlib
import time

import keras
import numpy as np

from keras_autolr.harness import methods as methods_lib
from keras_autolr.harness import metrics as metrics_lib
from keras_autolr.harness import profiles
from keras_autolr.harness import runner
from keras_autolr.harness.methods.tuning_free import ALGOPERF_NADAMW
from keras_autolr.runtime import io as io_lib

__all__ = [
    "Workload",
    "Entry",
    "WORKLOADS",
    "ENTRIES",
    "register_workload",
    "workload_names",
    "entry_names",
    "lr_variants",
    "Cell",
    "grid",
    "shard",
    "run_cells",
    "load_records",
    "complete_workloads",
    "aggregate",
    "markdown_report",
    "TrainingClock",
    "rescore",
    "estimate_seconds",
]


@dataclasses.dataclass(frozen=True)
class Workload:
    """One leaderboard workload: a registered task at a fixed size and budget.

    Args:
        name: the workload's name (also its key in the targets file).
        task: a task name in `harness.tasks`.
        size: the task size to run ("small"; "smoke" is used by `--smoke`).
        epochs: the epoch budget (the step budget is epochs x steps per epoch).
        kind: a short description shown in tables.

    Example:

    ```python
    from keras_autolr.harness.leaderboard import Workload

    w = Workload("digits", task="digits_cnn", epochs=10, kind="8x8 images, CNN")
    assert w.size == "small"
    ```
    """

    name: str
    task: str
    epochs: int
    size: str = "small"
    kind: str = ""


@dataclasses.dataclass(frozen=True)
class Entry:
    """A method as the leaderboard runs it: a registry name with fixed defaults.

    Args:
        name: the leaderboard's name for it (e.g. "arc" or "arc@lr/10").
        method: a method name in `harness.methods`.
        initial_lr: the initial LR it starts from (its documented default).
        optimizer: an optimizer name, or None for the task's own.
        options: method options.
        takes_lr: whether the initial LR matters (the method is then also run
            from 10x too small and 10x too large by `lr_variants`).

    Example:

    ```python
    from keras_autolr.harness.leaderboard import Entry

    e = Entry("adam", method="constant", initial_lr=1e-3, optimizer="adam")
    assert e.takes_lr
    ```
    """

    name: str
    method: str
    initial_lr: float
    optimizer: str = None
    options: dict = dataclasses.field(default_factory=dict)
    takes_lr: bool = True

    def __hash__(self):
        return hash((self.name, self.method, self.initial_lr, self.optimizer,
                     json.dumps(self.options, sort_keys=True), self.takes_lr))


# Workloads: registered tasks (suite "leaderboard" of harness.tasks) at the budgets below.
WORKLOADS = {}


def register_workload(workload):
    """Adds a workload (a registered task at a budget) to the leaderboard.

    Register the task first (`harness.tasks.register_task`), then the
    workload; `keras-autolr leaderboard --workloads NAME` or `grid([NAME])`
    then ranks every method on it. Its target goes in the targets file.

    Args:
        workload: a `Workload`.

    Returns:
        The workload.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.harness import leaderboard, tasks

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32"); y = (x.sum(axis=1) > 0).astype("int32")
    tasks.register_task("my_task", data=(x, y, x[:64], y[:64]), build=lambda: keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(2, activation="softmax")]), epochs=3, batch_size=32)
    leaderboard.register_workload(leaderboard.Workload("my_task", task="my_task", epochs=3))
    records = leaderboard.run_cells(leaderboard.grid(["my_task"], ["adam", "prodigy"], seeds=[0], bad_lrs=False),
                                    "lb_mine", targets={"my_task": 0.6}, progress=False)
    print(leaderboard.markdown_report(leaderboard.aggregate(records)))
    ```
    """
    if not isinstance(workload, Workload):
        raise TypeError(f"register_workload takes a Workload, got {type(workload).__name__}.")
    WORKLOADS[workload.name] = workload
    return workload


def _workload(*args, **kwargs):
    return register_workload(Workload(*args, **kwargs))


_workload("digits_mlp_lb", task="digits_mlp_lb", epochs=60, kind="8x8 digits, MLP")
_workload("mnist1d_cnn_lb", task="mnist1d_cnn", epochs=30, kind="MNIST-1D, 1-D CNN")
_workload("mnist1d_gru_lb", task="mnist1d_gru_lb", epochs=15, kind="MNIST-1D as a sequence, GRU")
_workload("fashion_cnn_bn_lb", task="fashion_cnn_bn_lb", epochs=8, kind="Fashion-MNIST, CNN + BatchNorm")
_workload("cifar10_resnet9_lb", task="cifar10_resnet9_lb", epochs=8, kind="CIFAR-10 subset, ResNet-9")
_workload("cifar10_mixer_lb", task="cifar10_mixer_lb", epochs=8, kind="CIFAR-10 subset, MLP-Mixer")
_workload("ptb_lstm_lb", task="ptb_lstm_lb", epochs=6, kind="PTB words, LSTM LM (perplexity)")
_workload("shakespeare_gru_lb", task="shakespeare_gru_lb", epochs=6, kind="Tiny Shakespeare chars, GRU LM")
_workload("shakespeare_transformer_lb", task="shakespeare_transformer_lb", epochs=6,
          kind="Tiny Shakespeare chars, tiny transformer")
_workload("diabetes_mlp_lb", task="diabetes_mlp_lb", epochs=100, kind="tabular regression, MLP (MSE)")
_workload("sine_cnn_lb", task="sine_cnn_lb", epochs=50, kind="1-D signal regression, CNN (MSE)")
_workload("blobs_segmentation_lb", task="blobs_segmentation_lb", epochs=30, kind="segmentation, FCN (pixel accuracy)")
_workload("digits_autoencoder_lb", task="digits_autoencoder_lb", epochs=60, kind="8x8 digits, autoencoder (MSE)")


# Entries: every registered method from its defaults (AlgoPerf's self-tuning ruleset).
ENTRIES = {}


def _entry(*args, **kwargs):
    e = Entry(*args, **kwargs)
    ENTRIES[e.name] = e
    return e


_entry("adam", "constant", 1e-3, optimizer="adam")
# The AlgoPerf baselines from their calibrated peak LR (no per-workload tuning).
_entry("adamw_warmup_cosine", "adamw_warmup_cosine", ALGOPERF_NADAMW["learning_rate"])
_entry("nadamw_warmup_cosine", "nadamw_warmup_cosine", ALGOPERF_NADAMW["learning_rate"])
_entry("sgd_momentum_cosine", "sgd_momentum_cosine", 0.1)
_entry("plateau", "plateau", 1e-3, optimizer="adam")
_entry("schedule_free_keras", "schedule_free", 1e-3)
_entry("schedule_free_ref", "schedule_free_ref", 2.5e-3)
_entry("prodigy", "prodigy", 1.0, takes_lr=False)
_entry("dadapt_adam", "dadapt_adam", 1.0, takes_lr=False)
_entry("dog", "dog", 1.0, takes_lr=False)
_entry("lr_finder+cosine", "lr_finder+cosine", 1e-3, optimizer="adam", takes_lr=False)
_entry("hypergradient", "hypergradient", 1e-3, optimizer="adam")
_entry("arc", "arc", 1e-3, optimizer="adam")
_entry("mlrsnet", "mlrsnet", 0.1, optimizer="sgd", takes_lr=False)
# The authors' nets (1 -> 100 -> 200) under the official meta-test protocol.
_entry("mlrsnet_official", "mlrsnet_official", 0.1, optimizer="sgd_official", takes_lr=False)
_entry("mcv_method3", "mcv:method3", 1e-3, optimizer="adam", options={"pairing": "paired"})
_entry("mcv_method2", "mcv:method2", 1e-3, optimizer="adam", options={"pairing": "paired", "alpha": 0.3})
# Feature histories choose the LR on the clock (classification workloads; the others report an error).
_entry("fh_lr_search", "fh_lr_search", 1e-3, optimizer="adam", takes_lr=False)


def workload_names():
    """Names of the built-in leaderboard workloads.

    Returns:
        A list of names, in registration order.

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    assert "digits_mlp_lb" in leaderboard.workload_names()
    ```
    """
    return list(WORKLOADS)


def entry_names(available_only=True):
    """Names of the leaderboard entries (methods from their defaults).

    Args:
        available_only: leave out entries whose method is not registered
            (e.g. an optional extra is missing).

    Returns:
        A list of names.

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    assert "adam" in leaderboard.entry_names()
    ```
    """
    known = set(methods_lib.names())
    # "mcv:method3" is a variant of the registered "mcv".
    return [n for n, e in ENTRIES.items() if not available_only or e.method.split(":")[0] in known]


def lr_variants(entry):
    """The entry itself plus, when its LR matters, the same from 10x too small and too large.

    Args:
        entry: an `Entry`.

    Returns:
        A list of entries named `name`, `name@lr/10`, `name@lrx10`.

    Example:

    ```python
    from keras_autolr.harness.leaderboard import ENTRIES, lr_variants

    names = [e.name for e in lr_variants(ENTRIES["arc"])]
    assert names == ["arc", "arc@lr/10", "arc@lrx10"]
    ```
    """
    if not entry.takes_lr:
        return [entry]
    return [entry,
            dataclasses.replace(entry, name=f"{entry.name}@lr/10", initial_lr=entry.initial_lr / 10),
            dataclasses.replace(entry, name=f"{entry.name}@lrx10", initial_lr=entry.initial_lr * 10)]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One leaderboard run: a workload, an entry, a seed.

    Args:
        workload: a `Workload`.
        entry: an `Entry`.
        seed: the run's seed.
        smoke: run at the task's "smoke" size for 2 epochs (CI).

    Example:

    ```python
    from keras_autolr.harness.leaderboard import ENTRIES, WORKLOADS, Cell

    c = Cell(WORKLOADS["digits_mlp_lb"], ENTRIES["adam"], seed=0)
    assert c.key == "digits_mlp_lb__adam__s0"
    ```
    """

    workload: Workload
    entry: Entry
    seed: int
    smoke: bool = False

    @property
    def key(self):
        safe = self.entry.name.replace("/", "_div_").replace("+", "_plus_")
        return f"{self.workload.name}__{safe}__s{self.seed}"


def grid(workloads=None, entries=None, seeds=(0, 1, 2), *, bad_lrs=True, smoke=False):
    """All cells of a leaderboard run.

    Args:
        workloads: workload names (default: all).
        entries: entry names (default: all available).
        seeds: seeds.
        bad_lrs: add the 10x-too-small and 10x-too-large variants of entries
            whose initial LR matters.
        smoke: the CI size.

    Returns:
        A list of `Cell`s, workload-major.

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    cells = leaderboard.grid(["digits_mlp_lb"], ["adam", "prodigy"], seeds=[0, 1])
    assert len(cells) == (3 + 1) * 2   # adam with its two bad LRs, prodigy alone
    ```
    """
    workloads = list(workloads or workload_names())
    entries = list(entries or entry_names())
    for name in workloads:
        if name not in WORKLOADS:
            raise KeyError(f"Unknown workload {name!r}; choose from {workload_names()}.")
    for name in entries:
        if name not in ENTRIES:
            raise KeyError(f"Unknown leaderboard entry {name!r}; choose from {list(ENTRIES)}.")
    cells = []
    for w in workloads:
        for e in entries:
            for variant in (lr_variants(ENTRIES[e]) if bad_lrs else [ENTRIES[e]]):
                cells.extend(Cell(WORKLOADS[w], variant, int(s), smoke) for s in seeds)
    return cells


def shard(cells, index, count):
    """The `index`-th of `count` interleaved shards of a cell list (0-based).

    Args:
        cells: the full grid.
        index: this shard, 0 <= index < count.
        count: the number of shards.

    Returns:
        Every `count`-th cell starting at `index` (interleaved, so slow
        workloads spread over shards).

    Example:

    ```python
    from keras_autolr.harness.leaderboard import shard

    assert shard(list(range(7)), 1, 3) == [1, 4]
    ```
    """
    if not (0 <= index < count):
        raise ValueError(f"shard index must be in [0, {count}), got {index}.")
    return list(cells)[index::count]


class TrainingClock(keras.callbacks.Callback):
    """Cumulative training seconds at the end of every epoch, validation excluded: wall and CPU.

    `seconds` is wall time (`perf_counter`); `cpu_seconds` is the process's CPU
    time of all threads (`process_time`). A one-thread run's CPU time hardly
    changes when other jobs share the machine, while its wall time can double,
    so the leaderboard ranks on CPU seconds and reports wall seconds beside them.

    Args:
        offset: wall seconds to add to every reading (work done before `fit`).
        cpu_offset: CPU seconds to add to every reading.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.harness.leaderboard import TrainingClock

    x = np.zeros((32, 2), "float32"); y = np.zeros((32, 1), "float32")
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile("sgd", "mse")
    clock = TrainingClock()
    m.fit(x, y, epochs=2, validation_data=(x, y), verbose=0, callbacks=[clock])
    assert len(clock.seconds) == 2 and clock.seconds[1] >= clock.seconds[0] > 0
    assert len(clock.cpu_seconds) == 2 and clock.cpu_seconds[1] >= clock.cpu_seconds[0] > 0
    ```
    """

    def __init__(self, offset=0.0, cpu_offset=0.0):
        super().__init__()
        self.offset = float(offset)
        self.cpu_offset = float(cpu_offset)
        self.seconds = []
        self.cpu_seconds = []

    @staticmethod
    def _now():
        return np.array([time.perf_counter(), time.process_time()])

    def on_train_begin(self, logs=None):
        self._start = self._now()
        self._excluded = np.zeros(2)
        self._test_start = None

    def on_test_begin(self, logs=None):
        self._test_start = self._now()

    def on_test_end(self, logs=None):
        if self._test_start is not None:
            self._excluded += self._now() - self._test_start
            self._test_start = None

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu = self._now() - self._start - self._excluded
        self.seconds.append(self.offset + float(wall))
        self.cpu_seconds.append(self.cpu_offset + float(cpu))


def _fields(record, clock, workload_name, entry_name, target):
    """The leaderboard's fields of a runner record."""
    mode = record["mode"]
    curve = record["history"].get("val_" + record["metric"], [])
    # What the method spent before fit (an LR finder's sweep) counts too.
    cost = record.get("setup_cost") or {}
    steps = [s + int(cost.get("steps", 0)) for s in record["steps"]]
    seconds = [s + float(cost.get("seconds", 0.0)) for s in clock.seconds]
    cpu = [s + float(cost.get("cpu_seconds", 0.0)) for s in clock.cpu_seconds]
    n = min(len(curve), len(steps), len(seconds), len(cpu))
    values = [v if v is not None else math.nan for v in curve[:n]]
    best = metrics_lib.best_score(values, mode) if values else math.nan
    best = None if math.isnan(best) else best
    reached = {}
    if target is not None:
        reached["steps"] = profiles.time_to_target(values, steps[:n], target, mode)
        reached["seconds"] = profiles.time_to_target(values, seconds[:n], target, mode)
        reached["cpu"] = profiles.time_to_target(values, cpu[:n], target, mode)
    ok = target is not None and math.isfinite(reached["steps"])
    return {
        "workload": workload_name, "method": entry_name, "target": target,
        "reached_target": bool(ok),
        "steps_to_target": int(reached["steps"]) if ok else None,
        "seconds_to_target": float(reached["seconds"]) if ok else None,
        "cpu_seconds_to_target": float(reached["cpu"]) if ok else None,
        "best_metric": best, "final_metric": values[-1] if values and math.isfinite(values[-1]) else None,
        "diverged": bool(record["diverged"]),
        "curve": {"steps": steps[:n], "seconds": seconds[:n], "cpu_seconds": cpu[:n], "metric": curve[:n],
                  "lr": record["lr"][:n]},
        "train_seconds": seconds[-1] if seconds else None, "train_cpu_seconds": cpu[-1] if cpu else None,
        "setup_cost": cost,
    }


def rescore(record, target):
    """A record's time to target recomputed from its curve for `target`.

    Records keep their per-epoch curve, so runs made before the targets were
    frozen (or under other targets) are scored against the current ones.

    Args:
        record: a leaderboard record (`run_cells`).
        target: the workload's target, or None.

    Returns:
        A new record with `target`, `reached_target`, `steps_to_target` and
        `seconds_to_target` for this target (a record without a curve, e.g.
        one that failed, is returned with `target` updated only).

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    rec = {"mode": "max", "curve": {"steps": [10, 20], "seconds": [1.0, 2.0], "metric": [0.5, 0.9]}}
    assert leaderboard.rescore(rec, 0.8)["steps_to_target"] == 20
    assert not leaderboard.rescore(rec, 0.95)["reached_target"]
    ```
    """
    out = dict(record, target=target)
    curve = record.get("curve")
    if not curve:
        return out
    values = [v if v is not None else math.nan for v in curve["metric"]]
    steps, secs = curve["steps"], curve["seconds"]
    t_steps = profiles.time_to_target(values, steps, target, record["mode"]) if target is not None else math.inf
    ok = math.isfinite(t_steps)
    at = lambda times: float(profiles.time_to_target(values, times, target, record["mode"])) if ok else None  # noqa: E731
    out.update(reached_target=bool(ok), steps_to_target=int(t_steps) if ok else None, seconds_to_target=at(secs))
    if "cpu_seconds" in curve:  # records from before CPU time was measured have wall seconds only
        out["cpu_seconds_to_target"] = at(curve["cpu_seconds"])
    return out


def estimate_seconds(cells, measured):
    """The expected seconds of running `cells`, from runs already measured.

    Each cell costs the median wall seconds of the measured runs of its
    workload and entry, each scaled by its training's CPU / wall ratio where
    the record has both (what the run takes on a free core). Otherwise it costs the workload's base (the median of
    its calibration runs, else of all its runs; a workload never measured
    gets the median base) times the entry's median ratio to the base on the
    workloads where it was measured (1 when it never was).

    Args:
        cells: the cells to estimate.
        measured: records with `workload`, `method` and `wall_s` (finished
            leaderboard or calibration runs).

    Returns:
        `(seconds, unmeasured_workloads)`: the total, and the workloads with
        no measured run (costed at the median of all runs).

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    cells = leaderboard.grid(["digits_mlp_lb"], ["adam"], seeds=[0, 1], bad_lrs=False)
    recs = [{"workload": "digits_mlp_lb", "method": "calibration@lr=0.001", "wall_s": 10.0}]
    assert leaderboard.estimate_seconds(cells, recs) == (20.0, [])
    ```
    """
    walls = {}
    for r in measured:
        if r.get("wall_s"):
            walls.setdefault((r["workload"], r["method"]), []).append(_free_core_seconds(r))
    if not walls:
        raise ValueError("estimate_seconds needs at least one measured run (calibrate first).")
    # A workload's base cost: its calibration runs (one method on every
    # workload) where measured, else all its runs.
    per_w, calib = {}, {}
    for (w, m), v in walls.items():
        per_w.setdefault(w, []).extend(v)
        if m.startswith("calibration@"):
            calib.setdefault(w, []).extend(v)
    base = {w: float(np.median(calib.get(w, v))) for w, v in per_w.items()}
    overall = float(np.median(list(base.values())))
    ratios = {}
    for (w, m), v in walls.items():
        ratios.setdefault(m, []).append(float(np.median(v)) / base[w])
    total, missing = 0.0, set()
    for c in cells:
        w, m = c.workload.name, c.entry.name
        if (w, m) in walls:
            total += float(np.median(walls[(w, m)]))
            continue
        if w not in base:
            missing.add(w)
        total += base.get(w, overall) * (float(np.median(ratios[m])) if m in ratios else 1.0)
    return total, sorted(missing)


def _free_core_seconds(record):
    """A run's wall seconds as on a free core: scaled by its training's CPU / wall ratio where measured.

    A one-thread run that shared its core with other jobs took longer in wall
    time than it will alone; its CPU time did not grow (a ratio above 1, more
    than one busy thread, is left as measured).
    """
    wall = float(record["wall_s"])
    cpu, train = record.get("train_cpu_seconds"), record.get("train_seconds")
    if cpu and train and train > 0:
        return wall * min(1.0, float(cpu) / float(train))
    return wall


def _run_cell(cell, out_dir, target):
    """Runs (or loads) one cell; returns its record. Importable by Ray workers.

    A method that raises on a workload (e.g. an LR finder on too few batches)
    gets a record with its `error` and no time to target, so one failure
    neither stops the grid nor goes unreported; delete the file to retry.
    """
    w, e = cell.workload, cell.entry
    path = pathlib.Path(out_dir) / "runs" / f"{cell.key}.json"
    clock = TrainingClock()
    try:
        record, _ = runner.run_cached(
            path, w.task, e.method, e.initial_lr, cell.seed, label=e.name,
            annotate=lambda rec: _fields(rec, clock, w.name, e.name, target),
            size="smoke" if cell.smoke else w.size, epochs=2 if cell.smoke else w.epochs,
            optimizer=e.optimizer, options=dict(e.options), extra_callbacks=[clock],
        )
    except runner.RunRecordError:
        raise  # the file holds another run (or is damaged): never write over it
    except (ValueError, RuntimeError, KeyError, ArithmeticError) as err:
        record = {"workload": w.name, "method": e.name, "seed": cell.seed, "target": target,
                  "reached_target": False, "steps_to_target": None, "seconds_to_target": None,
                  "cpu_seconds_to_target": None,
                  "best_metric": None, "final_metric": None, "diverged": False,
                  "error": f"{type(err).__name__}: {err}", "wall_s": None}
        io_lib.atomic_write_json(path, record)
    return record


def run_cells(cells, out_dir, targets, *, backend="local", progress=True, num_cpus=None):
    """Runs every cell not already finished under `out_dir`; returns all their records.

    Args:
        cells: from `grid` (or `shard`).
        out_dir: the results folder; each run is `out_dir/runs/<cell key>.json`,
            written atomically, so an interrupted run resumes.
        targets: `{workload name: target}`; a workload without a target is
            run but never "reaches" (calibrate it first).
        backend: "local" (one run after another in this process) or "ray"
            (one Ray task per cell on the cluster `ray.init` connects to).
        progress: show a tqdm progress bar.
        num_cpus: for `backend="ray"` without a running cluster, the CPUs of
            the local one it starts.

    Returns:
        The list of records, in cell order.

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    cells = leaderboard.grid(["digits_mlp_lb"], ["adam"], seeds=[0], bad_lrs=False, smoke=True)
    first = leaderboard.run_cells(cells, "lb", targets={}, progress=False)
    again = leaderboard.run_cells(cells, "lb", targets={}, progress=False)   # loaded, not rerun
    assert first[0]["wall_s"] == again[0]["wall_s"] and not first[0]["reached_target"]
    ```
    """
    cells = list(cells)
    if backend == "local":
        bar = _progress(len(cells), progress)
        records = []
        for cell in cells:
            bar.set_postfix_str(cell.key, refresh=False)
            records.append(_run_cell(cell, out_dir, targets.get(cell.workload.name)))
            bar.update(1)
        bar.close()
        return records
    if backend == "ray":
        import ray  # the optional extra `ray`

        if not ray.is_initialized():
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=1)(_run_cell)
        futures = [remote.remote(c, str(pathlib.Path(out_dir).resolve()), targets.get(c.workload.name))
                   for c in cells]
        bar = _progress(len(cells), progress)
        done = {}
        pending = list(futures)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for f in ready:
                done[f] = ray.get(f)
                bar.update(1)
        bar.close()
        return [done[f] for f in futures]
    raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}.")


def _progress(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="run", desc="leaderboard")


def load_records(out_dir):
    """Every leaderboard record under `out_dir/runs/` (merges shards written there).

    Args:
        out_dir: a results folder (or several shards' folders copied into one).

    Returns:
        A list of records.

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    assert leaderboard.load_records("no_such_folder") == []
    ```
    """
    folder = pathlib.Path(out_dir) / "runs"
    records = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        rec = json.loads(p.read_text())
        if "workload" in rec:
            records.append(rec)
    return records


def complete_workloads(records, cells):
    """The workloads of `cells` whose every run has a record, in `cells`' order.

    A performance profile compares methods on the same workloads: a workload
    still running would count its missing runs as "never reached the target",
    so a report made while a grid fills ranks on the complete workloads only.

    Args:
        records: leaderboard records (`load_records`).
        cells: the grid the records belong to (`grid`).

    Returns:
        A list of workload names.

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    cells = leaderboard.grid(["digits_mlp_lb"], ["adam"], seeds=[0, 1], bad_lrs=False)
    recs = [{"workload": "digits_mlp_lb", "method": "adam", "seed": 0}]
    assert leaderboard.complete_workloads(recs, cells) == []
    recs.append({"workload": "digits_mlp_lb", "method": "adam", "seed": 1})
    assert leaderboard.complete_workloads(recs, cells) == ["digits_mlp_lb"]
    ```
    """
    have = {(r["workload"], r["method"], int(r["seed"])) for r in records}
    order, missing = [], set()
    for c in cells:
        if c.workload.name not in order:
            order.append(c.workload.name)
        if (c.workload.name, c.entry.name, int(c.seed)) not in have:
            missing.add(c.workload.name)
    return [w for w in order if w not in missing]


def aggregate(records, max_tau=profiles.MAX_TAU):
    """Benchmark scores, per-workload results and profiles from leaderboard records.

    Args:
        records: leaderboard records (`run_cells`, `load_records`).
        max_tau: the profile's largest ratio (AlgoPerf: 4).

    Returns:
        A dict with `scores` (`{method: score}`, the headline: on CPU seconds
        to target when every record measured them, else on wall seconds;
        `score_basis` says which), `scores_cpu` (None unless every record has
        CPU seconds), `scores_wall`, `scores_steps` (the same on steps),
        `profile` (`{"taus": [...], method: [...]}`, of the headline),
        `mean_rank` (`{method: rank}`: the rank by mean best metric averaged
        over workloads, `profiles.mean_ranks`, a method without a best metric
        from most of its seeds on a workload ranking last there; None when no
        record says its metric's `mode`),
        `workload_ranks` (`{workload: {method: rank}}`, the same rank on each
        workload alone; None without modes),
        `workloads` (`{workload: {method: {...}}}` with the median CPU, wall
        seconds and steps to target, the fraction of seeds that reached it,
        the mean best metric and the divergences) and `methods`.

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    recs = [{"workload": "w", "method": m, "seed": 0, "seconds_to_target": s, "steps_to_target": s,
             "reached_target": True, "best_metric": 0.9, "final_metric": 0.9, "diverged": False}
            for m, s in (("a", 1.0), ("b", 2.0))]
    out = leaderboard.aggregate(recs)
    assert out["scores"]["a"] == 1.0 and out["scores"]["a"] > out["scores"]["b"]
    ```
    """
    if not records:
        raise ValueError("No leaderboard records to aggregate.")
    seconds = profiles.method_times(records, "seconds_to_target")
    steps = profiles.method_times(records, "steps_to_target")
    # CPU seconds only where every run measured them: a mix would compare two clocks. A failed
    # run (`error`) measured no time on either clock, so it does not decide which one.
    has_cpu = all("cpu_seconds_to_target" in r for r in records if not r.get("error"))
    cpu = profiles.method_times(records, "cpu_seconds_to_target") if has_cpu else None
    headline = cpu if has_cpu else seconds
    # The plotted profile on the tau grid the score integrates over (AlgoPerf: 100 points).
    taus = [float(t) for t in np.linspace(1.0, max_tau, 100)]
    rho = profiles.performance_profile(headline, taus)
    per = {}
    for r in records:
        cell = per.setdefault(r["workload"], {}).setdefault(r["method"], {"runs": []})
        cell["runs"].append(r)
    table = {}
    for w, ms in per.items():
        table[w] = {}
        for m, cell in ms.items():
            runs = cell["runs"]
            bests = [r["best_metric"] for r in runs if r.get("best_metric") is not None]
            table[w][m] = {
                "cpu_seconds_to_target": _finite_or_none(cpu[m].get(w)) if has_cpu else None,
                "seconds_to_target": _finite_or_none(seconds[m].get(w)),
                "steps_to_target": _finite_or_none(steps[m].get(w)),
                "reached": sum(bool(r["reached_target"]) for r in runs) / len(runs),
                "best_metric": float(np.mean(bests)) if bests else None,
                "metric_seeds": len(bests),
                "diverged": sum(bool(r["diverged"]) for r in runs),
                "errors": sorted({r["error"] for r in runs if r.get("error")}),
                "seeds": len(runs),
            }
    wall_scores = profiles.benchmark_scores(seconds, max_tau=max_tau)
    cpu_scores = profiles.benchmark_scores(cpu, max_tau=max_tau) if has_cpu else None
    # The second measure, for the methods the score cannot separate: workloads whose
    # records say their metric's direction.
    modes = {r["workload"]: r["mode"] for r in records if r.get("mode") in ("max", "min")}
    # A method ranks on its mean best metric where most of its seeds produced one (as a time
    # counts only when most seeds reached the target); elsewhere it shares the last place.
    best = {m: {w: table[w][m]["best_metric"] if 2 * table[w][m]["metric_seeds"] > table[w][m]["seeds"] else None
                for w in table if m in table[w]} for m in seconds}
    return {
        "scores": cpu_scores if has_cpu else wall_scores,
        "score_basis": "cpu_seconds" if has_cpu else "seconds",
        "scores_cpu": cpu_scores,
        "scores_wall": wall_scores,
        "scores_steps": profiles.benchmark_scores(steps, max_tau=max_tau),
        "profile": {"taus": taus, **rho},
        "mean_rank": profiles.mean_ranks(best, modes) if modes else None,
        "workload_ranks": {w: profiles.mean_ranks(best, {w: mode}) for w, mode in sorted(modes.items())} or None,
        "workloads": table,
        "methods": sorted(seconds),
    }


def _comparison_table(summary, order):
    """Markdown lines of the paper methods and the alternatives, ranked per workload (empty without ranks)."""
    ranks = summary.get("workload_ranks")
    focus = set(PAPER_METHODS) | set(ALTERNATIVES)
    rows = [m for m in order if m.split("@")[0] in focus]
    if not ranks or not rows:
        return []
    names = list(summary["workloads"])  # the columns of the other tables; "-" where a rank is missing
    n, n_w = len(order), len(names)
    time_key = "cpu_seconds_to_target" if summary.get("score_basis") == "cpu_seconds" else "seconds_to_target"
    lines = ["", f"The papers' methods ({', '.join(PAPER_METHODS)}) beside what a user would pick instead "
             f"({', '.join(ALTERNATIVES)}): overall rank of {n}, then the rank by best metric on each workload "
             f"(1 = best of {n}, ties share the mean rank; * = reached the target in the median over seeds; "
             "- = not run there, or no metric direction):", "",
             "| method | rank | score | reached | mean rank | " + " | ".join(names) + " |",
             "|---|" + "---|" * (4 + len(names))]
    for m in rows:
        cells = []
        for w in names:
            c = summary["workloads"][w].get(m)
            if c is None or m not in ranks.get(w, {}):
                cells.append("-")
                continue
            cells.append(f"{ranks[w][m]:g}" + ("*" if c[time_key] is not None else ""))
        reached = sum(1 for w in summary["workloads"].values() if m in w and w[m][time_key] is not None)
        lines.append(f"| {m} | {order.index(m) + 1} | {summary['scores'][m]:.3f} | {reached}/{n_w} | "
                     f"{summary['mean_rank'][m]:.1f} | " + " | ".join(cells) + " |")
    return lines


def _finite_or_none(v):
    return None if v is None or not math.isfinite(v) else float(v)


# The report's second table: the four papers' methods beside what a user would pick instead.
PAPER_METHODS = ("arc", "mlrsnet", "mlrsnet_official", "mcv_method3", "mcv_method2", "fh_lr_search")
ALTERNATIVES = ("prodigy", "schedule_free_ref", "schedule_free_keras", "nadamw_warmup_cosine")


def markdown_report(summary, digits=3, note=None):
    """The leaderboard as markdown: scores, the paper methods beside the alternatives, time to target.

    Methods are ordered by score, then (where the summary has it) by mean
    rank by best metric, which separates the many methods that reach no
    target. The second table (where the summary has per-workload ranks)
    puts the entries of `PAPER_METHODS` and `ALTERNATIVES`, bad-LR variants
    included, side by side with their rank by best metric on each workload:
    where each one works and where it fails.

    Args:
        summary: from `aggregate`.
        digits: significant digits of metrics.
        note: a line put first (e.g. which workloads a partial report covers).

    Returns:
        A markdown string.

    Example:

    ```python
    from keras_autolr.harness import leaderboard

    recs = [{"workload": "w", "method": "a", "seed": 0, "seconds_to_target": 1.0, "steps_to_target": 10,
             "reached_target": True, "best_metric": 0.9, "final_metric": 0.9, "diverged": False}]
    assert "| a |" in leaderboard.markdown_report(leaderboard.aggregate(recs))
    ```
    """
    lines = [note, ""] if note else []
    cpu = summary.get("score_basis") == "cpu_seconds"
    time_key = "cpu_seconds_to_target" if cpu else "seconds_to_target"
    ranks = summary.get("mean_rank")
    head = "| rank | method | score (CPU seconds) | score (wall seconds) |" if cpu else "| rank | method | score (seconds) |"
    head += " score (steps) | workloads reached |" + (" mean rank by best metric |" if ranks else "")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    order = sorted(summary["scores"], key=lambda m: (-summary["scores"][m], ranks[m] if ranks else 0.0))
    n_w = len(summary["workloads"])
    for i, m in enumerate(order, 1):
        reached = sum(1 for w in summary["workloads"].values() if m in w and w[m][time_key] is not None)
        wall = f" {summary['scores_wall'][m]:.3f} |" if cpu else ""
        rank = f" {ranks[m]:.1f} |" if ranks else ""
        lines.append(f"| {i} | {m} | {summary['scores'][m]:.3f} |{wall} {summary['scores_steps'][m]:.3f} | "
                     f"{reached}/{n_w} |{rank}")
    lines += _comparison_table(summary, order)
    what = "CPU seconds" if cpu else "seconds"
    lines += ["", f"Median {what} to target per workload (fraction of seeds that reached it; mean best "
              "metric); one row per method, in rank order:", ""]
    names = list(summary["workloads"])
    lines += ["| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for m in order:
        cells = []
        for w in names:
            c = summary["workloads"][w].get(m)
            if c is None:
                cells.append("-")
                continue
            t = "—" if c[time_key] is None else f"{c[time_key]:.1f}s"
            best = "" if c["best_metric"] is None else f"; {c['best_metric']:.{digits}g}"
            cells.append(f"{t} ({c['reached']:.2g}{best})")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
