"""The `keras-autolr` command.

Subcommands: `demo` (the main job), `run` (a resumable grid of method x
initial LR x seed on a task), `datasets` (what is available offline), and one
group per method package (`arc`, `mcv`, `mlrsnet`, `fh`) when installed.

Example: `keras-autolr demo --epochs 5`
"""

import argparse
import importlib
import os
import sys

__all__ = ["build_parser", "main"]

_GROUPS = ["keras_autolr.cli.arc", "keras_autolr.cli.mcv", "keras_autolr.cli.mlrsnet",
           "keras_autolr.cli.feature_history", "keras_autolr.cli.leaderboard", "keras_autolr.cli.find_lr"]


def _run_grid(a):
    from keras_autolr.harness import reports, runner
    from keras_autolr.runtime import io as io_lib

    opts = {}
    for item in a.option or []:
        method, _, kv = item.partition(":")
        k, _, v = kv.partition("=")
        try:
            v = float(v) if "." in v or "e" in v.lower() else int(v)
        except ValueError:
            pass
        opts.setdefault(method, {})[k] = v
    recs = runner.run_grid(a.task, a.methods, a.lrs, a.seeds, a.out, size=a.size, epochs=a.epochs,
                           optimizer=a.optimizer, options=opts)
    table = reports.markdown_table(recs)
    print(table)
    io_lib.atomic_write_text(os.path.join(a.out, "table.md"), table + "\n")
    reports.plot_curves(recs, os.path.join(a.out, "curves.png"), title=a.task)


def _datasets(a):
    from keras_autolr.harness import datasets

    for name in datasets.names():
        try:
            s = datasets.load(name, data_dir=a.data_dir)
            print(f"{name:18s} ok   train {s.x_train.shape} val {s.x_val.shape} test {s.x_test.shape}")
        except datasets.DatasetUnavailable as e:
            print(f"{name:18s} MISSING  {e}")


def build_parser():
    """The `keras-autolr` argument parser, with every installed command group.

    Example:

    ```python
    from keras_autolr.cli import build_parser

    args = build_parser().parse_args(["run", "--task", "digits_cnn", "--methods", "constant",
                                      "--lrs", "0.01", "--out", "runs/cli"])
    assert args.task == "digits_cnn" and args.lrs == [0.01]
    ```
    """
    from keras_autolr.cli import demo
    from keras_autolr.harness import methods, tasks

    parser = argparse.ArgumentParser(prog="keras-autolr", description="Automatic learning rates for Keras.")
    parser.add_argument("--data-dir", default=None, help="offline data folder (else $KERAS_AUTOLR_DATA)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub)

    p = sub.add_parser("run", help="resumable grid: methods x initial LRs x seeds on a task")
    p.add_argument("--task", required=True, choices=tasks.names())
    p.add_argument("--methods", nargs="+", required=True, help=f"from: {', '.join(methods.names())}")
    p.add_argument("--lrs", nargs="+", type=float, required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--size", default="small", choices=["smoke", "small", "full"])
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--optimizer", default=None)
    p.add_argument("--option", action="append", help="METHOD:KEY=VALUE, e.g. arc:frequency=3")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_run_grid)

    p = sub.add_parser("datasets", help="list the offline data sets and whether they load")
    p.set_defaults(func=_datasets)

    for module in _GROUPS:
        try:
            importlib.import_module(module).add_parser(sub)
        except ModuleNotFoundError as e:
            if e.name and not module.startswith(e.name):
                raise
    return parser


def main(argv=None):
    """Runs the `keras-autolr` command; returns the exit status (2 on a usage or data error).

    Args:
        argv: the arguments (default: `sys.argv[1:]`).

    Example:

    ```python
    from keras_autolr.cli import main

    assert main(["mcv", "cost", "--method", "discard"]) == 0
    assert main(["run", "--task", "digits_cnn", "--methods", "no_such_method", "--lrs", "0.01",
                 "--out", "runs/bad", "--size", "smoke"]) == 2
    ```
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["KERAS_AUTOLR_DATA"] = args.data_dir
    args.data_dir = args.data_dir
    try:
        args.func(args)
    except KeyError as e:  # unknown method / task names carry their own message
        print(f"keras-autolr: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except Exception as e:
        from keras_autolr.harness.datasets import DatasetUnavailable
        from keras_autolr.runtime.lr import LearningRateError

        if isinstance(e, (DatasetUnavailable, LearningRateError, ValueError)):
            print(f"keras-autolr: error: {e}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
