"""`keras-autolr mcv ...`: MCV from the command line.

Commands:

* `keras-autolr mcv run --task mnist1d_cnn --method method2 --alpha 0.5 --lr 0.01`
  trains one task with MCV and prints the per-epoch decisions and test score;
* `keras-autolr mcv cost --method method2 --candidates 7` prints Table 4.1's
  per-step operation counts;
* `keras-autolr mcv reproduce [--smoke]` runs the thesis Tables 4.2 / 4.5
  analog on CIFAR-10 (`keras_autolr.harness.mcv_study`, the same study as
  `reproductions/mcv_cifar10.py`, at its default size).
"""

from keras_autolr.cli._common import CommandError, positive_int

__all__ = ["add_parser"]


def _check_method(method, known):
    if method is not None and method not in known:
        raise CommandError(f"Unknown MCV method {method!r}; choose one of {', '.join(known)}.")


def _run(a):
    from keras_autolr.harness import runner, tasks
    from keras_autolr.runtime.mcv.model import METHODS

    _check_method(a.method, METHODS)
    tasks.get(a.task)  # an unknown task: the KeyError lists the known ones
    options = {"method": a.method}
    if a.alpha is not None:  # method 2's argument only; the other methods refuse it
        options["alpha"] = a.alpha
    if a.patience:
        options["patience"] = a.patience
    rec = runner.run_one(a.task, "mcv", a.lr, seed=a.seed, size=a.size, epochs=a.epochs,
                         optimizer=a.optimizer, options=options, verbose=a.verbose)
    h = rec["history"]
    for e, lr in enumerate(h.get("learning_rate", [])):
        print(f"epoch {e + 1}: lr {lr:.4g}  val-batch loss {h['mcv_val_batch_loss'][e]:.4f}  "
              f"discard rate {h['mcv_discard_rate'][e]:.2%}")
    print("test:", rec["test"], f"wall {rec['wall_s']:.1f}s")


def _cost(a):
    from keras_autolr.runtime.mcv import cost as cost_lib

    _check_method(a.method, cost_lib.METHODS)
    for m in ([a.method] if a.method else cost_lib.METHODS):
        c = cost_lib.step_cost(m, a.candidates)
        print(f"{m:9s} forward {c.forward:3d}  backward {c.backward}  step {c.step:2d}  "
              f"table ratio {cost_lib.table_ratio(m, a.candidates):.1f}  "
              f"size-weighted ratio {cost_lib.weighted_ratio(m, a.candidates, split=m != 'baseline'):.2f}")


def _reproduce(a):
    from keras_autolr.harness import mcv_study

    config = mcv_study.StudyConfig.smoke() if a.smoke else mcv_study.StudyConfig()
    mcv_study.run_study(config, a.out, log=lambda line: print(line, flush=True))


def add_parser(subparsers):
    """Adds the `mcv` command group (`run`, `cost`, `reproduce`) to an argparse `subparsers` object.

    Args:
        subparsers: what `argparse.ArgumentParser.add_subparsers()` returned.

    Example:

    ```python
    import argparse
    from keras_autolr.cli import mcv

    parser = argparse.ArgumentParser()
    mcv.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mcv", "cost", "--method", "method2"])
    args.func(args)  # prints Table 4.1's operation counts
    ```
    """
    # Task and method names are checked when the command runs (their registries import Keras).
    p = subparsers.add_parser("mcv", help="micro cross-validation LR search (thesis methods)")
    sub = p.add_subparsers(dest="mcv_command", required=True)

    r = sub.add_parser("run", help="train one task with an MCV method")
    r.add_argument("--task", required=True, help="a registered task, e.g. mnist1d_cnn")
    r.add_argument("--method", default="method2", help="discard, voting, method1, method2 or method3")
    r.add_argument("--alpha", type=float, default=None, help="method2's weight of the training loss (default 0.5)")
    r.add_argument("--lr", type=float, default=0.01, help="initial LR")
    r.add_argument("--optimizer", default=None)
    r.add_argument("--epochs", type=positive_int, default=None)
    r.add_argument("--patience", type=int, default=None)
    r.add_argument("--size", default="small", choices=["smoke", "small", "full"])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--verbose", type=int, default=0)
    r.set_defaults(func=_run)

    c = sub.add_parser("cost", help="thesis Table 4.1 operation counts per step")
    c.add_argument("--method", default=None, help="baseline, discard, voting, method1, method2 or method3 (default: all)")
    c.add_argument("--candidates", type=int, default=7)
    c.set_defaults(func=_cost)

    q = sub.add_parser("reproduce", help="thesis Tables 4.2/4.5 analog on CIFAR-10")
    q.add_argument("--smoke", action="store_true")
    q.add_argument("--out", default="reproductions/results/mcv_cifar10")
    q.set_defaults(func=_reproduce)
