"""The `keras-autolr` command.

Subcommands: `demo` (the main job), `run` (a resumable grid of method x
initial LR x seed on a task), `datasets` (what is available offline), and one
group per method package (`arc`, `mcv`, `mlrsnet`, `fh`) when installed.

Parsing imports neither TensorFlow nor Keras: `--help`, `--version` and
argument errors answer at once. A command imports them when it runs, with
TensorFlow's C++ start-up logging off (set `TF_CPP_MIN_LOG_LEVEL=0` to see
it). User errors (bad arguments, unknown names, missing or unreadable files)
exit with status 2 and one line on stderr.

Example: `keras-autolr demo --epochs 5`
"""

import argparse
import importlib
import os
import sys

from keras_autolr.cli._common import CommandError, positive_int, quiet_tf_startup

__all__ = ["build_parser", "main", "parse_options"]

_GROUPS = ["keras_autolr.cli.arc", "keras_autolr.cli.mcv", "keras_autolr.cli.mlrsnet",
           "keras_autolr.cli.feature_history", "keras_autolr.cli.leaderboard", "keras_autolr.cli.find_lr"]


def parse_options(items, methods):
    """Parses `--option METHOD:KEY=VALUE` items into `{method: {key: value}}`.

    `METHOD` may carry a variant (`mcv:method3:pairing=paired`). Values
    become int or float when they read as numbers. Which keys a method takes
    is checked when the command runs (the method registry imports Keras).

    Args:
        items: the `--option` strings (or None).
        methods: the methods of the command (`--methods`); an option must name one.

    Returns:
        The options per method.

    Raises:
        CommandError: an item is not `METHOD:KEY=VALUE`, or names a method
            that is not in `methods`.

    Example:

    ```python
    from keras_autolr.cli import parse_options

    assert parse_options(["arc:frequency=3", "arc:verbose=1"], ["arc"]) == {"arc": {"frequency": 3, "verbose": 1}}
    ```
    """
    opts = {}
    for item in items or []:
        left, eq, v = item.partition("=")
        method, colon, k = left.rpartition(":")
        if not (colon and eq and method and k):
            raise CommandError(f"--option takes METHOD:KEY=VALUE (e.g. arc:frequency=3), got {item!r}.")
        if method not in methods:
            raise CommandError(f"--option {item!r} is for {method!r}, which is not in --methods "
                               f"({' '.join(methods)}).")
        try:
            v = float(v) if "." in v or "e" in v.lower() else int(v)
        except ValueError:
            pass
        opts.setdefault(method, {})[k] = v
    return opts


def _check_options(options):
    """Sets up each method once with its options, so that a bad one fails before any training."""
    from keras_autolr.harness import methods

    for method, opts in options.items():
        try:
            methods.make_setup(method, initial_lr=1e-3, epochs=2, steps_per_epoch=2, **opts)
        except (TypeError, ValueError, OSError) as e:  # the message names the valid options
            raise CommandError(f"--option for {method}: {e}") from None


def _run_grid(a):
    from keras_autolr.harness import reports, runner, tasks
    from keras_autolr.runtime import io as io_lib

    opts = parse_options(a.option, a.methods)
    tasks.get(a.task)  # an unknown task: the KeyError lists the known ones
    _check_options(opts)
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
    import keras_autolr
    from keras_autolr.cli import demo

    parser = argparse.ArgumentParser(prog="keras-autolr", description="Automatic learning rates for Keras.")
    parser.add_argument("--version", action="version", version=f"keras-autolr {keras_autolr.__version__}")
    parser.add_argument("--data-dir", default=None, help="offline data folder (else $KERAS_AUTOLR_DATA)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub)

    # Task and method names are checked when the command runs (the registries import Keras).
    p = sub.add_parser("run", help="resumable grid: methods x initial LRs x seeds on a task")
    p.add_argument("--task", required=True, help="a registered task, e.g. mnist1d_cnn (a wrong name lists them)")
    p.add_argument("--methods", nargs="+", required=True,
                   help="method names, e.g. constant arc mlrsnet mcv:method3 (a wrong name lists them)")
    p.add_argument("--lrs", nargs="+", type=float, required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--size", default="small", choices=["smoke", "small", "full"])
    p.add_argument("--epochs", type=positive_int, default=None)
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
    parser = build_parser()
    args = parser.parse_args(argv)  # --help, --version and usage errors exit here, before TensorFlow
    if args.data_dir:
        os.environ["KERAS_AUTOLR_DATA"] = args.data_dir
    try:
        with quiet_tf_startup():
            import keras_autolr

            keras_autolr._import_runtime()  # what `import keras_autolr` does outside the CLI
        args.func(args)
    except CommandError as e:
        return _user_error(e)
    except KeyError as e:  # unknown method / task names carry their own message
        return _user_error(e.args[0] if e.args else e)
    except Exception as e:
        from keras_autolr.harness.datasets import DatasetUnavailable
        from keras_autolr.runtime.lr import LearningRateError

        if isinstance(e, (DatasetUnavailable, LearningRateError, ValueError)):
            return _user_error(e)
        raise
    return 0


def _user_error(message):
    # One line: the message says what is wrong and what to do.
    print(f"keras-autolr: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
