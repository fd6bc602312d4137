"""`keras-autolr find-lr`: an LR range test on a registered task.

Builds the task's model with its default optimizer, runs
`keras_autolr.find_lr` on its training data, prints the suggestions and
writes the plot (smoothed loss against LR, suggestions marked).

Example:

```python
from keras_autolr.cli import find_lr

args = find_lr.build_parser().parse_args(["--task", "digits_cnn", "--size", "smoke", "--steps", "20", "--batch-size", "16"])
result = find_lr.run(args)
assert len(result.lrs) <= 20
```
"""

import argparse

__all__ = ["add_parser", "build_parser", "run"]


def _fill(parser):
    parser.add_argument("--task", required=True, help="a task of keras_autolr.harness.tasks")
    parser.add_argument("--size", default="small", choices=["smoke", "small", "full"])
    parser.add_argument("--optimizer", default=None, help="optimizer name (default: the task's)")
    parser.add_argument("--min-lr", type=float, default=1e-7)
    parser.add_argument("--max-lr", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the task's")
    parser.add_argument("--plot", default="lr_finder.png", help="where to write the plot ('' for none)")
    parser.set_defaults(func=run)
    return parser


def add_parser(subparsers):
    """Adds the `find-lr` command to an argparse `subparsers` object.

    Args:
        subparsers: from `ArgumentParser.add_subparsers()`.

    Returns:
        The command's parser.

    Example:

    ```python
    import argparse
    from keras_autolr.cli import find_lr

    sub = argparse.ArgumentParser(prog="keras-autolr").add_subparsers(dest="command")
    assert find_lr.add_parser(sub).parse_args(["--task", "digits_cnn"]).steps == 100
    ```
    """
    return _fill(subparsers.add_parser("find-lr", help="LR range test on a task: suggestions and a plot"))


def build_parser():
    """The parser of `keras-autolr find-lr` on its own.

    Example:

    ```python
    from keras_autolr.cli.find_lr import build_parser

    assert build_parser().parse_args(["--task", "digits_cnn", "--plot", ""]).plot == ""
    ```
    """
    return _fill(argparse.ArgumentParser(prog="keras-autolr find-lr"))


def run(args):
    """Runs the range test described by parsed `args`; prints and plots; returns the result.

    Args:
        args: from `build_parser().parse_args(...)`.

    Returns:
        The `LRFinderResult`.

    Example:

    ```python
    from keras_autolr.cli import find_lr

    result = find_lr.run(find_lr.build_parser().parse_args(
        ["--task", "digits_cnn", "--size", "smoke", "--steps", "10", "--batch-size", "16", "--plot", ""]))
    assert result.lrs[0] == 1e-7
    ```
    """
    import keras

    from keras_autolr.harness import methods, tasks
    from keras_autolr.runtime.lr_finder import find_lr

    task = tasks.get(args.task)
    data = task.data(args.size)
    model = task.build_model(args.size, data.num_classes, seed=0)
    optimizer = methods.make_optimizer(args.optimizer or task.optimizer, 1e-3)
    model.compile(optimizer=optimizer, loss=tasks.make_loss(task.loss))
    optimizer.build(model.trainable_variables)
    keras.utils.set_random_seed(0)
    result = find_lr(model, data.x_train, data.y_train, batch_size=args.batch_size or task.batch_size_at(args.size),
                     min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps)
    if result.suggestion is None:
        print(f"No suggestion: {result.message}")
    else:
        print(f"suggested LR: {result.suggestion:.3g} (steepest); "
              + ", ".join(f"{k} {v:.3g}" for k, v in result.suggestions.items() if v is not None))
    if args.plot:
        result.plot(args.plot)
        print(f"plot: {args.plot}")
    return result
