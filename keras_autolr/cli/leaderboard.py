"""`keras-autolr leaderboard`: every LR method on every workload, AlgoPerf-style.

Runs the grid of `harness.leaderboard` (resumable: finished runs are
skipped), then writes `scores.json`, `leaderboard.md` and the performance
profile plot into `--out`. `--shard i/k` runs every k-th cell from the i-th
(0-based) for any cluster scheduler; `--merge` only aggregates what the
shards wrote into one folder. `--backend ray` runs cells as Ray tasks.

Targets come from `--targets` (a JSON file `{"targets": {workload: value}}`;
default `<out>/targets.json`); `--smoke` runs at the seconds-long CI size with
targets at the smoke size's reach. `--calibrate` runs the calibration grid
instead (`harness.calibration`: tuned AdamW + warmup-cosine, 7 LRs x 3 seeds)
into `<out>/calibration/` and, once it is complete, writes the targets file
with the command that produced it. Records keep their curves, so they are
scored against the current targets whenever the reports are written.
`--target-budget 0.5` does both at AlgoPerf's budget ratio: the calibration
runs at half of each workload's budget (into `<out>/calibration_budget0.5/`,
targets `<out>/targets_budget0.5.json`), and the grid's records (always at
the full budget) are scored against those targets into
`leaderboard_budget0.5.md`, `scores_budget0.5.json` and their plots.
A run or merge of another grid than the default one (narrowed by
`--workloads`, `--methods`, `--no-bad-lrs`, another `--seeds`) ranks only
its own cells, so its reports are suffixed `_subset`
(`leaderboard_subset.md`, ...): they never replace the whole grid's.
Reports scored against a `--targets` file other than the folder's own are
suffixed `_targets-<its stem>`. `--out` defaults to
`reproductions/results/leaderboard`, and with `--smoke`
to `leaderboard-smoke`: smoke and full-size runs share file names, so a
folder holding runs of the other size is refused. Before running, the expected time of the grid is printed, estimated from the
runs already measured in `--out`. `--threads N` caps the threads of each run
(`--threads 1` with `--shard i/2` in two processes uses one core each).

Example:

```python
from keras_autolr.cli import leaderboard

parser = leaderboard.build_parser()
args = parser.parse_args(["--workloads", "digits_mlp_lb", "--methods", "adam", "--smoke"])
assert args.smoke and args.workloads == ["digits_mlp_lb"]
```
"""

import argparse
import json
import os
import pathlib

__all__ = ["add_parser", "build_parser", "run", "SMOKE_TARGETS", "SMOKE_WORKLOADS"]

# Smoke targets: values a 2-epoch run at the smoke size can reach, so CI
# exercises the whole time-to-target path (not measurements).
SMOKE_TARGETS = {"digits_mlp_lb": 0.2, "mnist1d_cnn_lb": 0.15, "diabetes_mlp_lb": 2.0}
SMOKE_WORKLOADS = ["digits_mlp_lb", "diabetes_mlp_lb"]


def _shard(text):
    i, _, k = text.partition("/")
    try:
        i, k = int(i), int(k)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/k (e.g. 0/4), got {text!r}") from None
    if not (k >= 1 and 0 <= i < k):
        raise argparse.ArgumentTypeError(f"--shard i/k needs 0 <= i < k, got {text!r}")
    return i, k


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--target-budget takes a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"--target-budget takes a number in (0, 1], got {text!r}")
    return value


def _suffix(budget):
    """The file-name suffix of results scored against the targets of `budget` ("" at the full budget)."""
    return "" if budget == 1 else f"_budget{budget:g}"


def _fill(parser):
    parser.add_argument("--workloads", nargs="+", default=None, help="workload names (default: all)")
    parser.add_argument("--methods", nargs="+", default=None, help="leaderboard entries (default: all)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 3; 1 with --smoke)")
    parser.add_argument("--no-bad-lrs", action="store_true", help="skip the 10x-too-small / -large variants")
    parser.add_argument("--smoke", action="store_true",
                        help="the CI size: every method on two workloads at seconds per run, 1 seed, no bad-LR variants")
    parser.add_argument("--shard", type=_shard, default=None, help="i/k: run the i-th of k shards")
    parser.add_argument("--merge", action="store_true", help="only aggregate the records in --out")
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument("--targets", default=None, help="targets JSON (default: <out>/targets.json)")
    parser.add_argument("--calibrate", action="store_true",
                        help="run the target calibration (tuned AdamW + warmup-cosine) and write the targets file")
    parser.add_argument("--target-budget", type=_fraction, default=1.0, metavar="F",
                        help="targets from the calibration at F x each workload's budget (0.5: AlgoPerf's ratio "
                             "of target-setting to self-tuning runtime); --calibrate runs it, the grid and "
                             "--merge score against it (files suffixed _budget<F>); default 1")
    parser.add_argument("--threads", type=int, default=None, help="threads per run (default: the backend's)")
    parser.add_argument("--out", default=None,
                        help=f"results folder (default {DEFAULT_OUT}; with --smoke, {SMOKE_OUT}: smoke runs never "
                             "mix with the committed full-size ones)")
    parser.set_defaults(func=run)
    return parser


def add_parser(subparsers):
    """Adds the `leaderboard` command to an argparse `subparsers` object.

    Args:
        subparsers: from `ArgumentParser.add_subparsers()`.

    Returns:
        The command's parser.

    Example:

    ```python
    import argparse
    from keras_autolr.cli import leaderboard

    sub = argparse.ArgumentParser(prog="keras-autolr").add_subparsers(dest="command")
    p = leaderboard.add_parser(sub)
    assert p.parse_args(["--shard", "1/4"]).shard == (1, 4)
    ```
    """
    return _fill(subparsers.add_parser("leaderboard", help="rank every LR method on many workloads (AlgoPerf-style)"))


def build_parser():
    """The parser of `keras-autolr leaderboard` on its own.

    Example:

    ```python
    from keras_autolr.cli.leaderboard import build_parser

    assert build_parser().parse_args(["--seeds", "2"]).seeds == 2
    ```
    """
    return _fill(argparse.ArgumentParser(prog="keras-autolr leaderboard"))


DEFAULT_OUT = "reproductions/results/leaderboard"
SMOKE_OUT = "leaderboard-smoke"


def _out(args):
    return pathlib.Path(args.out or (SMOKE_OUT if args.smoke else DEFAULT_OUT))


def _check_sizes(records, smoke, folder):
    """Refuses a folder whose records are of the other size: smoke and full-size runs share file names."""
    other = [r for r in records if (r.get("size") == "smoke") != bool(smoke)]
    if other:
        kind = "full-size" if smoke else "smoke-size"
        raise SystemExit(f"{folder} holds {len(other)} {kind} leaderboard runs (e.g. {other[0].get('workload')}, "
                         f"{other[0].get('method')}); {'--smoke' if smoke else 'a full-size run'} must not mix with "
                         "them: pass another --out.")


def _targets(path, smoke):
    if smoke:
        return dict(SMOKE_TARGETS)
    path = pathlib.Path(path)
    if not path.exists():
        print(f"No targets file at {path}: runs are recorded, nothing counts as reaching a target "
              "until the targets are calibrated.")
        return {}
    return json.loads(path.read_text())["targets"]


def run(args):
    """Runs (or merges) the leaderboard described by parsed `args`; writes the reports.

    Args:
        args: from `build_parser().parse_args(...)`.

    Returns:
        The summary dict of `harness.leaderboard.aggregate`, or None when no
        record exists yet.

    Example:

    ```python
    from keras_autolr.cli import leaderboard

    args = leaderboard.build_parser().parse_args(
        ["--workloads", "digits_mlp_lb", "--methods", "adam", "--seeds", "1", "--no-bad-lrs",
         "--smoke", "--out", "lb"])
    summary = leaderboard.run(args)
    assert summary["scores"] == {"adam": 1.0}
    ```
    """
    from keras_autolr.harness import leaderboard, reports
    from keras_autolr.runtime import io as io_lib

    out = _out(args)
    if args.threads:
        _limit_threads(args.threads)
    if args.calibrate:
        return _calibrate(args, out)
    workloads = args.workloads or (SMOKE_WORKLOADS if args.smoke else None)
    seeds = args.seeds or (1 if args.smoke else 3)
    cells = leaderboard.grid(workloads, args.methods, seeds=range(seeds),
                             bad_lrs=not (args.no_bad_lrs or args.smoke), smoke=args.smoke)
    targets_path = args.targets or out / f"targets{_suffix(args.target_budget)}.json"
    # A narrowed grid ranks its own cells only: its reports must not replace the whole grid's.
    default_grid = leaderboard.grid(SMOKE_WORKLOADS if args.smoke else None, seeds=range(1 if args.smoke else 3),
                                    bad_lrs=not args.smoke, smoke=args.smoke)
    narrowed = {c.key for c in cells} != {c.key for c in default_grid}
    sfx = _suffix(args.target_budget) + ("_subset" if narrowed else "")
    # Other targets than the folder's own score the records differently: their reports are named after them.
    own_targets = pathlib.Path(targets_path).resolve() == (out / f"targets{_suffix(args.target_budget)}.json").resolve()
    if not own_targets:
        sfx += f"_targets-{pathlib.Path(targets_path).stem}"
    loaded = leaderboard.load_records(out)
    _check_sizes(loaded, args.smoke, out)
    if not args.merge:
        todo = leaderboard.shard(cells, *args.shard) if args.shard else cells
        print(f"{len(todo)} runs ({'smoke size' if args.smoke else 'full size'}) into {out}")
        _print_estimate(leaderboard, todo, out)
        leaderboard.run_cells(todo, out, _targets(targets_path, args.smoke), backend=args.backend, progress=True)
    targets = _targets(targets_path, args.smoke)
    if not args.merge:  # the runs just made are records too
        loaded = leaderboard.load_records(out)
    records = [leaderboard.rescore(r, targets.get(r["workload"])) for r in loaded]
    # Complete against the whole grid (not a shard's part): other shards fill the same folder.
    complete = leaderboard.complete_workloads(records, cells)
    # A workload without a target would count as unsolved by every method: left out, and said.
    untargeted = [w for w in complete if w not in targets]
    complete = [w for w in complete if w in targets]
    everyone = list(dict.fromkeys(c.workload.name for c in cells))
    pending = [w for w in everyone if w not in complete and w not in untargeted]
    # The grid's runs only: a record of another method or seed (an earlier grid) is not ranked.
    keys = {(c.workload.name, c.entry.name, int(c.seed)) for c in cells}
    records = [r for r in records if r["workload"] in complete and (r["workload"], r["method"], int(r["seed"])) in keys]
    if not records:
        missing = f" ({', '.join(untargeted)} complete but without a target in {targets_path})" if untargeted else ""
        print(f"No workload of the grid is complete in {out / 'runs'} yet{missing}: no report written. (A merge "
              "describes the grid with the run's own --workloads / --methods / --seeds / --no-bad-lrs.)")
        return None
    note = None
    if pending or untargeted:
        note = (f"**Partial leaderboard: {len(complete)} of {len(everyone)} workloads complete** "
                f"({', '.join(complete)})")
        if pending:
            note += f"; {', '.join(pending)} still running, left out until every run of theirs exists"
        if untargeted:
            note += f"; {', '.join(untargeted)} left out: no target in {targets_path}"
        note += "."
    summary = leaderboard.aggregate(records)
    io_lib.atomic_write_json(out / f"scores{sfx}.json", {"scores": summary["scores"],
                                                   "score_basis": summary["score_basis"],
                                                   "scores_cpu": summary["scores_cpu"],
                                                   "scores_wall": summary["scores_wall"],
                                                   "scores_steps": summary["scores_steps"],
                                                   "mean_rank": summary["mean_rank"],
                                                   "workload_ranks": summary["workload_ranks"],
                                                   "complete_workloads": complete,
                                                   "pending_workloads": pending,
                                                   "untargeted_workloads": untargeted,
                                                   "targets": "smoke" if args.smoke else str(targets_path),
                                                   "workloads": summary["workloads"]})
    if args.target_budget != 1 and not args.smoke:  # (the smoke size has fixed targets)
        budget = (f"Targets: the calibration at {args.target_budget:g}x each workload's budget "
                  f"(`{targets_path}`), every method at the full budget.")
        note = budget if note is None else f"{note}\n\n{budget}"
    text = leaderboard.markdown_report(summary, note=note)
    io_lib.atomic_write_text(out / f"leaderboard{sfx}.md", text + "\n")
    print(text)
    _plot_profiles(summary, out / f"profiles{sfx}.png", reports)
    _plot_time_to_target(summary, out / f"time_to_target{sfx}.png", reports)
    if not sfx:  # the LR curves do not depend on the targets (and a subset's would replace the grid's)
        _plot_lr_curves(records, out / "lr_curves.png", reports)
    return summary


def _limit_threads(n):
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)


def _print_estimate(leaderboard, cells, out):
    """The expected time of `cells`, from the runs (and calibration runs) measured in `out`."""
    pending = [c for c in cells if not (out / "runs" / f"{c.key}.json").exists()]
    measured = leaderboard.load_records(out) + leaderboard.load_records(out / "calibration")
    if not pending or not measured:
        if pending:
            print("No measured runs yet: no time estimate (calibrate first).")
        return
    seconds, missing = leaderboard.estimate_seconds(pending, measured)
    note = f"; no measured run of {', '.join(missing)} (costed at the median run)" if missing else ""
    print(f"{len(pending)} runs to go, estimated {seconds / 3600:.1f} h of one process{note}.")


def _calibrate(args, out):
    """Runs the calibration cells; writes the targets file once every workload is complete."""
    import shlex
    import sys

    from keras_autolr.harness import calibration, leaderboard
    from keras_autolr.runtime import io as io_lib

    folder = out / calibration.folder_name(args.target_budget)
    seeds = range(args.seeds or (1 if args.smoke else 3))
    cells = calibration.cells(args.workloads or (SMOKE_WORKLOADS if args.smoke else None),
                              seeds=seeds, smoke=args.smoke, budget_fraction=args.target_budget)
    _check_sizes(leaderboard.load_records(folder), args.smoke, folder)
    if not args.merge:
        run_cells = leaderboard.shard(cells, *args.shard) if args.shard else cells
        print(f"{len(run_cells)} calibration runs into {folder}")
        _print_estimate(leaderboard, run_cells, folder)
        leaderboard.run_cells(run_cells, folder, {}, backend=args.backend, progress=True)
    have = {(r["workload"], r["method"], r["seed"]) for r in leaderboard.load_records(folder)}
    missing = [c.key for c in cells if (c.workload.name, c.entry.name, c.seed) not in have]
    if missing:
        print(f"Calibration incomplete: {len(missing)} of {len(cells)} runs missing (e.g. {missing[0]}); "
              "no targets written. Rerun the same command (or merge the shards) to finish.")
        return None
    wanted = {c.workload.name for c in cells}
    calibrated = {w: v for w, v in calibration.targets_from_records(leaderboard.load_records(folder)).items()
                  if w in wanted}
    command = "keras-autolr " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["leaderboard"] \
        else "keras-autolr leaderboard --calibrate"
    path = pathlib.Path(args.targets or out / f"targets{_suffix(args.target_budget)}.json")
    previous = json.loads(path.read_text()) if path.exists() else None
    io_lib.atomic_write_json(path, calibration.targets_document(calibrated, command, previous=previous,
                                                                budget_fraction=args.target_budget))
    print(f"Targets written to {path}:")
    for w, c in sorted(calibrated.items()):
        edge = "; at the grid's edge" if c["at_edge"] else ""
        print(f"  {w}: {c['target']:.4g} ({c['mode']}, tuned peak LR {c['lr']:g}, {c['seeds']} seeds{edge})")
    return calibrated


def _panels(plt, n, row_height, cols=3):
    """A grid of `n` panels, `cols` per row."""
    rows = (n + cols - 1) // cols
    return plt.subplots(rows, cols, figsize=(4.2 * cols, row_height * rows), squeeze=False)


def _save_panels(plt, fig, axes, n, path):
    """Hides the unused panels, saves the figure and closes it."""
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=120)
    plt.close(fig)


def _plot_time_to_target(summary, path, reports):
    """One panel per workload: each method's median (CPU) seconds to target (missing bar: not reached)."""
    plt = reports.pyplot()
    if plt is None or not summary["workloads"]:
        return
    names = sorted(summary["workloads"])
    methods = sorted(summary["scores"], key=lambda m: -summary["scores"][m])
    cpu = summary["score_basis"] == "cpu_seconds"
    key, label = ("cpu_seconds_to_target", "CPU seconds to target") if cpu else ("seconds_to_target", "seconds to target")
    fig, axes = _panels(plt, len(names), 0.12 * len(methods) + 1.5)
    for ax, w in zip(axes.flat, names):
        times = [summary["workloads"][w].get(m, {}).get(key) for m in methods]
        ax.barh(range(len(methods)), [t or 0.0 for t in times], color="tab:blue")
        ax.set_yticks(range(len(methods)), methods, fontsize=5)
        ax.invert_yaxis()
        ax.set_title(w, fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
        ax.set_xlabel(label, fontsize=6)
    _save_panels(plt, fig, axes, len(names), path)


def _plot_lr_curves(records, path, reports):
    """The LR of every epoch, seed 0, one panel per workload (log scale)."""
    plt = reports.pyplot()
    runs = [r for r in records if r.get("seed") == 0 and r.get("curve") and r["curve"].get("lr")]
    if plt is None or not runs:
        return
    names = sorted({r["workload"] for r in runs})
    fig, axes = _panels(plt, len(names), 3.0)
    for ax, w in zip(axes.flat, names):
        for r in (r for r in runs if r["workload"] == w and "@" not in r["method"]):
            lrs = [v if v and v > 0 else None for v in r["curve"]["lr"]]
            ax.plot(range(1, len(lrs) + 1), lrs, label=r["method"], lw=0.8)
        ax.set_yscale("log")
        ax.set_title(w, fontsize=8)
        ax.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=4, ncol=2)
    _save_panels(plt, fig, axes, len(names), path)


def _plot_profiles(summary, path, reports):
    plt = reports.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    taus = summary["profile"]["taus"]
    for m in summary["methods"]:
        ax.step(taus, summary["profile"][m], where="post", label=m)
    ax.set_xlabel("tau (time to target / fastest method's)")
    ax.set_ylabel("fraction of workloads")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=120)
    plt.close(fig)
