"""`keras-autolr fh ...`: feature-history commands.

Example (command line; `run.h5` is a history written by
`keras_autolr.runtime.feature_history.FeatureHistory`):

```
keras-autolr fh estimate run.h5 --k 10 [--upto-epoch 5]
keras-autolr fh info run.h5
keras-autolr fh demo --dataset mnist1d --epochs 12
```
"""

import contextlib
import json

from keras_autolr.cli._common import CommandError, positive_int

__all__ = ["add_parser"]


@contextlib.contextmanager
def _readable(path):
    """A missing or unreadable history file becomes a one-line user error."""
    try:
        yield
    except FileNotFoundError as e:  # the store's message says how to record one
        raise CommandError(str(e)) from None
    except (OSError, KeyError) as e:  # a corrupt or foreign file
        reason = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise CommandError(
            f"Cannot read {path!r} as a feature history: {reason} Pass the .h5 file that a "
            "keras_autolr FeatureHistory callback wrote, or record the history again.") from None


def _estimate(a):
    from keras_autolr.runtime.feature_history import estimate
    with _readable(a.path):
        r = estimate.estimate_file(a.path, k=a.k, upto_epoch=a.upto_epoch, warn=False)
    out = {"proxy_accuracy": r.accuracy, "epochs": r.epochs,
           "partial": r.partial, "latest_accuracy": r.latest_accuracy,
           "member_accuracies": r.member_accuracies,
           # The estimate's cost: SGD steps and passes over the recorded rows.
           "fit_steps": r.fit_steps, "fit_epochs": r.fit_passes, "seconds": r.seconds}
    print(json.dumps(out, indent=1))
    return out


def _info(a):
    from keras_autolr.runtime.feature_history.store import HistoryStore
    with _readable(a.path):
        s = HistoryStore(a.path)
        out = {"epochs": s.epochs(), "metadata": s.metadata,
               "bytes_per_epoch": s.nbytes_per_epoch()}
    print(json.dumps(out, indent=1, default=str))
    return out


def _demo(a):
    from keras_autolr.cli.feature_history_demo import demo_section
    return demo_section(dataset=a.dataset, epochs=a.epochs, k=a.k)


def add_parser(subparsers):
    """Adds the `fh` command group (`estimate`, `info`, `demo`) to an argparse `subparsers` object.

    Args:
        subparsers: what `ArgumentParser.add_subparsers()` returned.

    Returns:
        The `fh` parser, whose subcommands' `func` runs them.

    Example:

    ```python
    import argparse
    from keras_autolr.cli.feature_history import add_parser

    fh = add_parser(argparse.ArgumentParser(prog="keras-autolr").add_subparsers(dest="command"))
    args = fh.parse_args(["estimate", "run.h5", "--upto-epoch", "5"])
    print(args.fh_command, args.path, args.k, args.upto_epoch)  # estimate run.h5 10 5
    ```
    """
    p = subparsers.add_parser(
        "fh", help="feature histories: early estimate of final accuracy")
    sub = p.add_subparsers(dest="fh_command", required=True)
    e = sub.add_parser("estimate", help="proxy estimate from an HDF5 history")
    e.add_argument("path")
    e.add_argument("--k", type=positive_int, default=10)
    e.add_argument("--upto-epoch", type=int, default=None)
    e.set_defaults(func=_estimate)
    i = sub.add_parser("info", help="epochs and metadata of a history")
    i.add_argument("path")
    i.set_defaults(func=_info)
    d = sub.add_parser("demo", help="early estimate vs final accuracy")
    d.add_argument("--dataset", default="mnist1d")
    d.add_argument("--epochs", type=int, default=12)
    d.add_argument("--k", type=int, default=10)
    d.set_defaults(func=_demo)
    return p
