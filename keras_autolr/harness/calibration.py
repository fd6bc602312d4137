"""Leaderboard targets: what a tuned AdamW + warmup-cosine reaches, frozen once.

AlgoPerf sets each workload's target from tuned baselines; so does this
module. For every workload, AdamW with the AlgoPerf baseline hyperparameters
and linear warmup + cosine decay (`harness.methods`'s `adamw_warmup_cosine`)
runs at every peak LR of a 7-point grid (`CALIBRATION_LRS`, half-decade
steps from 1e-4 to 1e-1) with 3 seeds, at the workload's own size and budget.
The best validation value of each run is taken; the LR whose median over
seeds is best is the tuned LR, and that median is the target. The targets
file holds `{"targets": {workload: value}}` plus the tuned LRs, the per-LR
medians and the command that produced them.

Calibration cells are leaderboard cells (`harness.leaderboard.Cell`) of one
entry per LR, so they run resumably through `run_cells` (locally, sharded
or on Ray) into `<out>/calibration/`.

`budget_fraction` runs the calibration at a fraction of each workload's
budget (its schedule decaying over that shorter run) into
`<out>/calibration_budget<f>/`, for AlgoPerf's budget ratio: its
documentation (v0.6.0) says the v0.5 `max_runtime` was set 1/3 longer than
the target-setting runs' runtime and that self-tuning submissions get 1.5x
`max_runtime`, so on that reading a self-tuning method has twice the
target-setters' time (the runtimes were re-set after v0.5). Targets from
`budget_fraction=0.5`, with the methods at the full budget, are that ratio.
Epochs are rounded by Python's `round` (halves to even: 15 x 0.5 -> 8).

Example:

```python
from keras_autolr.harness import calibration, leaderboard

cells = calibration.cells(["digits_mlp_lb"], lrs=[1e-3, 1e-2], seeds=[0], smoke=True)
records = leaderboard.run_cells(cells, "calib", targets={}, progress=False)
result = calibration.targets_from_records(records)
assert result["digits_mlp_lb"]["lr"] in (1e-3, 1e-2) and result["digits_mlp_lb"]["seeds"] == 1
```
"""

import math
import statistics

__all__ = ["CALIBRATION_LRS", "CALIBRATION_METHOD", "ALGOPERF_BUDGET_FRACTION", "entry", "cells", "calibrate",
           "folder_name", "targets_from_records", "targets_document"]

# Half-decade steps around AlgoPerf's NAdamW peak LR (1.75e-3).
CALIBRATION_LRS = tuple(float(f"{10 ** (e / 2):.3g}") for e in range(-8, -1))
CALIBRATION_METHOD = "adamw_warmup_cosine"
# AlgoPerf's documentation (v0.6.0): the v0.5 max_runtime was 4/3 of the target-setting runtime,
# and self-tuning gets 1.5x max_runtime; 4/3 x 1.5 = 2 (the runtimes were re-set after v0.5).
ALGOPERF_BUDGET_FRACTION = 0.5


def entry(lr):
    """The leaderboard entry of one calibration LR.

    Args:
        lr: the peak LR.

    Returns:
        A `leaderboard.Entry` named `calibration@lr=<lr>`.

    Example:

    ```python
    from keras_autolr.harness import calibration

    assert calibration.entry(1e-3).name == "calibration@lr=0.001"
    ```
    """
    from keras_autolr.harness.leaderboard import Entry

    return Entry(f"calibration@lr={lr:g}", CALIBRATION_METHOD, float(lr), takes_lr=False)


def _check_fraction(budget_fraction):
    if not 0 < budget_fraction <= 1:
        raise ValueError(f"budget_fraction is a fraction of each workload's budget, in (0, 1]; got {budget_fraction}.")


def _at_budget(workload, budget_fraction):
    """`workload` with its epoch budget scaled (at least one epoch).

    Python's `round` rounds half to even: at 0.5 the MNIST-1D GRU's 15 epochs
    give 8 (a fraction of 0.533), the committed calibration's; the others are even.
    """
    import dataclasses

    if budget_fraction == 1:
        return workload
    return dataclasses.replace(workload, epochs=max(1, round(workload.epochs * budget_fraction)))


def folder_name(budget_fraction=1.0):
    """The calibration runs' folder under the leaderboard's results: "calibration" at the full budget.

    Args:
        budget_fraction: the fraction of each workload's budget the runs get.

    Returns:
        "calibration", or "calibration_budget<f>" (e.g. "calibration_budget0.5").

    Example:

    ```python
    from keras_autolr.harness import calibration

    assert calibration.folder_name(0.5) == "calibration_budget0.5"
    ```
    """
    _check_fraction(budget_fraction)
    return "calibration" if budget_fraction == 1 else f"calibration_budget{budget_fraction:g}"


def cells(workloads=None, lrs=CALIBRATION_LRS, seeds=(0, 1, 2), smoke=False, budget_fraction=1.0):
    """Every calibration run: each workload x each LR x each seed.

    Args:
        workloads: workload names (default: all leaderboard workloads).
        lrs: the LR grid.
        seeds: seeds.
        smoke: the CI size.
        budget_fraction: the fraction of each workload's epoch budget the runs
            get (rounded, at least 1 epoch; the smoke size keeps its 2 epochs).

    Returns:
        A list of `leaderboard.Cell`s, workload-major.

    Example:

    ```python
    from keras_autolr.harness import calibration

    assert len(calibration.cells(["digits_mlp_lb"])) == 7 * 3
    assert calibration.cells(["digits_mlp_lb"], budget_fraction=0.5)[0].workload.epochs == 30  # of 60
    ```
    """
    from keras_autolr.harness import leaderboard

    _check_fraction(budget_fraction)
    names = list(workloads or leaderboard.workload_names())
    for name in names:
        if name not in leaderboard.WORKLOADS:
            raise KeyError(f"Unknown workload {name!r}; choose from {leaderboard.workload_names()}.")
    return [leaderboard.Cell(_at_budget(leaderboard.WORKLOADS[w], budget_fraction), entry(lr), int(s), smoke)
            for w in names for lr in lrs for s in seeds]


def calibrate(workloads, out_dir, *, lrs=CALIBRATION_LRS, seeds=(0, 1, 2), backend="local", progress=True,
              smoke=False, budget_fraction=1.0):
    """Runs the calibration of `workloads` (resumably) and returns their targets.

    The runs go to `out_dir/calibration/runs/` (`folder_name(budget_fraction)`
    in general); a rerun skips finished ones.

    Args:
        workloads: workload names (registered with `leaderboard.register_workload`).
        out_dir: the leaderboard's results folder.
        lrs: the LR grid.
        seeds: seeds.
        backend: "local" or "ray" (`leaderboard.run_cells`).
        progress: show a progress bar.
        smoke: the CI size.
        budget_fraction: the fraction of each workload's budget the runs get.

    Returns:
        `{workload: target}`, ready for `leaderboard.run_cells(..., targets=...)`.

    Example:

    ```python
    from keras_autolr.harness import calibration

    targets = calibration.calibrate(["digits_mlp_lb"], "lb", lrs=[1e-3, 1e-2], seeds=[0], progress=False,
                                    smoke=True)
    assert set(targets) == {"digits_mlp_lb"}
    ```
    """
    import pathlib

    from keras_autolr.harness import leaderboard

    records = leaderboard.run_cells(cells(workloads, lrs, seeds, smoke, budget_fraction),
                                    pathlib.Path(out_dir) / folder_name(budget_fraction), {}, backend=backend,
                                    progress=progress)
    return {w: c["target"] for w, c in targets_from_records(records).items()}


def targets_from_records(records):
    """The tuned LR and target of every workload in calibration records.

    A diverged run or one without a finite best value counts as the worst
    value, so an LR at which any seed diverges is never chosen over one at
    which none does (the median is taken over all seeds).

    Args:
        records: leaderboard records of calibration cells (`run_cells`).

    Returns:
        `{workload: {"target", "lr", "mode", "seeds", "at_edge", "per_lr": {lr: median best}}}`;
        `at_edge` says the tuned LR is the grid's smallest or largest (the
        grid may not bracket the optimum).

    Example:

    ```python
    from keras_autolr.harness import calibration

    recs = [{"workload": "w", "method": f"calibration@lr={lr:g}", "seed": s, "mode": "max",
             "best_metric": b + s / 100, "diverged": False}
            for lr, b in ((1e-3, 0.8), (1e-2, 0.9)) for s in range(3)]
    out = calibration.targets_from_records(recs)["w"]
    assert out["lr"] == 1e-2 and abs(out["target"] - 0.91) < 1e-9
    ```
    """
    by = {}
    for r in records:
        if not str(r.get("method", "")).startswith("calibration@lr="):
            continue
        lr = float(r["method"].split("=", 1)[1])
        mode = r.get("mode", "max")
        worst = -math.inf if mode == "max" else math.inf
        b = r.get("best_metric")
        value = b if (b is not None and math.isfinite(b) and not r.get("diverged")) else worst
        w = by.setdefault(r["workload"], {"mode": mode, "lrs": {}})
        w["lrs"].setdefault(lr, []).append(value)
    out = {}
    for w, d in by.items():
        sign = 1.0 if d["mode"] == "max" else -1.0
        medians = {lr: statistics.median(v) for lr, v in sorted(d["lrs"].items())}
        lr = max(medians, key=lambda k: sign * medians[k])
        if not math.isfinite(medians[lr]):
            raise ValueError(f"Every calibration LR diverged on {w!r}: it has no target; "
                             "check the workload (data, model, budget).")
        out[w] = {"target": float(medians[lr]), "lr": lr, "mode": d["mode"],
                  "seeds": len(d["lrs"][lr]), "at_edge": lr in (min(medians), max(medians)),
                  "per_lr": {f"{k:g}": (v if math.isfinite(v) else None) for k, v in medians.items()}}
    return out


def targets_document(calibrated, command, lrs=CALIBRATION_LRS, previous=None, budget_fraction=1.0):
    """The targets file's content: targets plus how they were obtained.

    Args:
        calibrated: from `targets_from_records`.
        command: the command line that ran the calibration.
        lrs: the LR grid it used.
        previous: an earlier targets document whose other workloads are kept
            (calibrating some workloads leaves the rest as they were).
        budget_fraction: the fraction of each workload's budget the
            calibration runs had (said in `protocol`).

    Returns:
        A JSON-ready dict with `targets` (what `keras-autolr leaderboard`
        reads), `tuned_lr`, `per_lr`, `protocol` and `command`.

    Example:

    ```python
    from keras_autolr.harness import calibration

    doc = calibration.targets_document({"w": {"target": 0.9, "lr": 1e-3, "mode": "max", "seeds": 3,
                                              "per_lr": {"0.001": 0.9}}}, "keras-autolr leaderboard --calibrate")
    assert doc["targets"] == {"w": 0.9} and doc["tuned_lr"] == {"w": 1e-3}
    ```
    """
    fields = {"targets": "target", "tuned_lr": "lr", "mode": "mode", "seeds": "seeds", "per_lr": "per_lr"}
    doc = {}
    for field, key in fields.items():
        merged = dict((previous or {}).get(field, {}))
        merged.update({w: c[key] for w, c in calibrated.items()})
        doc[field] = dict(sorted(merged.items()))
    # A set, sorted: rerunning a finished calibration (a resumed run script) leaves the file as it was.
    commands = sorted(set((previous or {}).get("commands", [])) | {command})
    budget = "budget" if budget_fraction == 1 else (
        f"budget x {budget_fraction:g} (epochs rounded; AlgoPerf's ratio of the target-setting runtime to a "
        "self-tuning method's)")
    return {
        **doc,
        "protocol": (f"{CALIBRATION_METHOD} (AlgoPerf NAdamW-baseline hyperparameters, warmup 2% then cosine "
                     f"to 0) at peak LRs {list(lrs)}, each workload at its leaderboard size and {budget}; "
                     "target = median over seeds of the best validation value, at the LR whose median "
                     "is best."),
        "commands": commands,
    }

