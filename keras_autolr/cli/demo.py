"""The main job: every learning-rate method on one small task, side by side.

Trains the same model once per method from a deliberately poor and a good
initial LR, prints a table of best validation metric and convergence step
(ARC's definition), and saves a plot of LR and metric curves.

Default: MNIST-1D (generated offline, no files needed), Conv1D net, Adam,
initial LRs 1e-4 (poor) and 3e-3 (good), 15 epochs.

Example (command line; `run` below is the same job from Python):

```
keras-autolr demo --epochs 5
keras-autolr demo --size smoke --epochs 2 --methods constant arc --out autolr-smoke
```
"""

import pathlib
import shutil
import time

from keras_autolr.cli._common import positive_int

__all__ = ["DEFAULT_METHODS", "available_methods", "run", "add_parser"]

DEFAULT_METHODS = ["constant", "cosine_restarts", "exponential", "plateau", "schedule_free",
                   "prodigy", "lr_finder+cosine", "arc", "mlrsnet", "mcv:method3"]


def available_methods(wanted, log=print):
    """Returns the wanted methods that can be set up here; says why any other is left out.

    A method can be missing (its package is not installed) or lack an artifact
    (a shipped controller file); the demo runs the rest instead of failing.

    Args:
        wanted: method names (`keras_autolr.harness.methods.names()`, with an
            optional `:variant`, e.g. `"mcv:method3"`).
        log: printer for the reasons.

    Example:

    ```python
    from keras_autolr.cli.demo import available_methods

    print(available_methods(["constant", "arc", "no_such_method"]))
    # skipping no_such_method: not available in this installation
    # ['constant', 'arc']
    ```
    """
    from keras_autolr.harness import methods as methods_lib

    have = set(methods_lib.names())
    ok = []
    for m in wanted:
        if m.split(":")[0] not in have:
            log(f"skipping {m}: not available in this installation")
            continue
        try:
            methods_lib.make_setup(m, initial_lr=1e-3, epochs=2, steps_per_epoch=2)
        except (FileNotFoundError, OSError, ImportError) as e:
            log(f"skipping {m}: {e}")
            continue
        except Exception as e:  # e.g. a controller file that is missing or corrupt
            if "controller" not in str(e).lower():
                raise
            log(f"skipping {m}: {e}")
            continue
        ok.append(m)
    return ok


def run(task="mnist1d_cnn", methods=None, initial_lrs=(1e-4, 3e-3), seeds=(0,), epochs=15,
        size="small", out="autolr-demo", resume=False, log=print):
    """Runs the demo: trains `task` once per method, initial LR and seed, then reports.

    Writes `out/runs/` (one JSON record per run), `out/table.md` and
    `out/curves.png`, then adds the feature-history section (an early
    estimate of the final accuracy, a fixed 12-epoch MNIST-1D run) when that
    package is present.

    Args:
        task: a task name (`keras_autolr.harness.tasks.names()`).
        methods: method names (default `DEFAULT_METHODS`); those that cannot
            be set up here are skipped with a message.
        initial_lrs: the initial LRs (the default: one poor, one good).
        seeds: seeds per (method, LR).
        epochs: epochs per run.
        size: the task size, `"smoke"`, `"small"` or `"full"`.
        out: the output folder.
        resume: keep finished runs in `out` instead of starting afresh.
        log: printer.

    Returns:
        `(records, feature_history_rows)`: the run records, and the
        feature-history section's rows (None without that package).

    Example:

    ```python
    from keras_autolr.cli.demo import run

    records, _ = run(task="digits_cnn", methods=["constant"], initial_lrs=(1e-3,), epochs=2,
                     size="smoke", out="demo", log=lambda s: None)
    print(records[0]["method"], records[0]["epochs_run"])  # constant 2
    ```
    """
    from keras_autolr.harness import reports, runner

    methods = available_methods(methods or DEFAULT_METHODS, log)
    out = pathlib.Path(out)
    if out.joinpath("runs").exists() and not resume:
        shutil.rmtree(out / "runs")
    t0 = time.perf_counter()
    log(f"keras-autolr demo: task {task}, methods {', '.join(methods)}, initial LRs "
        f"{', '.join(f'{x:g}' for x in initial_lrs)}, {epochs} epochs, seeds {list(seeds)}")
    # MLR-SNet sets the LR of plain SGD itself (the initial LR does not apply), as in its paper.
    # MCV trains on every batch and validates it on another random one (the thesis's pairing),
    # which beat batch halves by 3-9 points in our CIFAR-10 analog (2 seeds).
    options = {"mlrsnet": {"optimizer": "sgd"}, "mcv:method3": {"pairing": "paired"}}
    if "mlrsnet" in methods:
        log("mlrsnet runs plain SGD with the shipped image net: its LR is the net's, whatever the initial LR.")
    records = runner.run_grid(task, methods, list(initial_lrs), list(seeds), out, size=size,
                              epochs=epochs, options=options, log=log)
    table = reports.markdown_table(records)
    log("")
    log(table)
    (out / "table.md").write_text(table + "\n")
    plot = reports.plot_curves(records, out / "curves.png", title=f"{task}: LR and validation metric")
    extra = _feature_history_section(log, size)
    log("")
    log(f"Table: {out / 'table.md'}" + (f"; plot: {plot}" if plot else "")
        + f"; runs: {out / 'runs'}; {time.perf_counter() - t0:.0f} s in all.")
    return records, extra


def _feature_history_section(log, size):
    """Early estimate vs final accuracy; at the smoke size a seconds-long version."""
    from keras_autolr.cli import feature_history_demo

    if size == "smoke":
        return feature_history_demo.demo_section(log=log, dataset="digits", epochs=2, fractions=(0.5,), k=2)
    return feature_history_demo.demo_section(log=log)


def add_parser(subparsers):
    """Adds the `demo` command to an argparse `subparsers` object.

    The parsed arguments' `func` runs `run` with them.

    Args:
        subparsers: what `ArgumentParser.add_subparsers()` returned.

    Example:

    ```python
    import argparse
    from keras_autolr.cli import demo

    parser = argparse.ArgumentParser(prog="keras-autolr")
    demo.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", "--size", "smoke", "--epochs", "2"])
    print(args.size, args.epochs, args.lrs)  # smoke 2 [0.0001, 0.003]; args.func(args) would run it
    ```
    """
    p = subparsers.add_parser("demo", help="compare every LR method on a small built-in task")
    p.add_argument("--task", default="mnist1d_cnn")
    p.add_argument("--methods", nargs="+", default=None, help=f"default: {' '.join(DEFAULT_METHODS)}")
    p.add_argument("--lrs", nargs="+", type=float, default=[1e-4, 3e-3], help="initial LRs (poor, good)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=positive_int, default=15)
    p.add_argument("--size", default="small", choices=["smoke", "small", "full"])
    p.add_argument("--out", default="autolr-demo")
    p.add_argument("--resume", action="store_true", help="keep finished runs in --out")
    p.set_defaults(func=lambda a: run(a.task, a.methods, a.lrs, a.seeds, a.epochs, a.size, a.out, a.resume))
