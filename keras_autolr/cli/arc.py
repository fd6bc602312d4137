"""`keras-autolr arc ...`: generate data, train, evaluate and select ARC controllers.

Each subcommand runs one step of `keras_autolr.pipelines.arc`:

```
keras-autolr arc generate --out data/arc_0.h5 --chains 360 --shard 0/2
keras-autolr arc generate --merge data/arc_0.h5 data/arc_1.h5 --out data/arc.h5
KERAS_BACKEND=jax keras-autolr arc generate --engine vmap --out data/arc_v2_0.h5 --chains 1200 --shard 0/2
keras-autolr arc train --data data/arc.h5 --out saved_controllers/arc.keras --report arc_report.json
keras-autolr arc evaluate --data data/arc.h5 --controller saved_controllers/arc.keras
keras-autolr arc select --candidates saved_controllers/arc.keras runs/c1.keras --out runs/arc_select
```
"""

import json

__all__ = ["add_parser"]


def _generate(args):
    from keras_autolr.pipelines.arc import generate

    if args.merge:
        count = generate.merge(args.merge, args.out)
        print(f"{args.out}: {count} chains")
        return 0
    v2_only = {"--max-cycle-epochs": args.max_cycle_epochs, "--poor-fraction": args.poor_fraction}
    if args.engine == "vmap":  # v2: groups of chains in one JAX program, the v2 zoo
        from keras_autolr.pipelines.arc import generate_vmap

        if args.poor_fraction is not None and not 0 <= args.poor_fraction <= 1:
            raise SystemExit(f"--poor-fraction is a fraction of chains, in [0, 1]; got {args.poor_fraction}.")
        if args.max_cycle_epochs is not None and args.max_cycle_epochs < 1:
            raise SystemExit(f"--max-cycle-epochs must be at least 1; got {args.max_cycle_epochs}.")
        # Unset flags keep generate()'s defaults (one source of truth for them).
        options = {k: v for k, v in (("max_cycle_epochs", args.max_cycle_epochs),
                                     ("poor_fraction", args.poor_fraction)) if v is not None}
        samples = generate_vmap.generate(
            args.out, args.chains, shard=args.shard, tasks=args.tasks or None, base_seed=args.seed,
            time_limit=args.time_limit, group_size=args.group_size, log=lambda s: print(s, flush=True),
            **options,
        )
        print(f"{args.out}: {samples} decisions (before correction)")
        return 0
    given = [flag for flag, value in v2_only.items() if value is not None]
    if given:
        raise SystemExit(f"{', '.join(given)}: only the v2 generator draws these; add --engine vmap "
                         "(v1 draws cycle lengths from 1..10 epochs and initial LRs from each task's range, as the paper).")
    samples = generate.generate(
        args.out, args.chains, shard=args.shard, tasks=args.tasks or None,
        base_seed=args.seed, time_limit=args.time_limit, large=args.large,
        log=lambda s: print(s, flush=True),
    )
    print(f"{args.out}: {samples} decisions (before correction)")
    return 0


def _train(args):
    from keras_autolr.pipelines.arc import train

    report = train.train_controller(
        args.data, args.out, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, zero_val_fraction=args.zero_val_fraction,
        balanced=not args.no_balance, seed=args.seed, report_path=args.report,
    )
    report.pop("history")
    print(json.dumps(report, indent=1))
    return 0


def _evaluate(args):
    import numpy as np

    from keras_autolr.pipelines.arc import labels, train
    from keras_autolr.runtime.arc import load_controller

    x, y, meta = labels.build_dataset(args.data)
    keep = np.ones(len(y), bool)
    if args.heldout_only:
        keep &= ~train.split_by_chain(meta["chain"], seed=args.seed)
    if args.min_chain:
        # Chains a controller trained on ids < min_chain never saw.
        keep &= np.asarray(meta["chain"]) >= args.min_chain
    x, y = x[keep], y[keep]
    model = load_controller(args.controller)
    res = train.evaluate(model, x, y)
    res["no_val"] = train.evaluate(model, train.zero_val_column(x, 1.0, np.random.default_rng(0)), y)
    print(json.dumps(res, indent=1))
    return 0


def _select(args):
    import shutil

    from keras_autolr.pipelines.arc import select

    report = select.select_controller(
        args.candidates, args.out, task=args.task or select.PROXY_TASK,
        initial_lrs=args.lrs or list(select.PROXY_LRS), seeds=range(args.seeds),
        size=args.size, frequency=args.frequency, optimizer=args.optimizer, baselines=args.baselines,
        log=lambda s: print(s, flush=True),
    )
    print(select.selection_table(report))
    print(f"chosen: {report['chosen']} ({report['chosen_path']})")
    if args.copy_to and report["chosen_path"] != args.copy_to:
        shutil.copyfile(report["chosen_path"], args.copy_to)
        print(f"copied to {args.copy_to}")
    return 0


def add_parser(subparsers):
    """Adds the `arc` command group to an argparse `subparsers` object.

    Subcommands: `generate` (or `--merge`), `train`, `evaluate`, `select`;
    the parsed arguments' `func` runs one.

    Args:
        subparsers: what `ArgumentParser.add_subparsers()` returned.

    Returns:
        The `arc` parser.

    Example:

    ```python
    import argparse
    from keras_autolr.cli import arc

    parser = argparse.ArgumentParser(prog="keras-autolr")
    arc.add_parser(parser.add_subparsers(dest="command"))
    # One chain of 1-epoch cycles (seed 3 draws them) on a small zoo task: seconds.
    args = parser.parse_args(["arc", "generate", "--out", "arc.h5", "--chains", "1",
                              "--tasks", "digits_mlp", "--seed", "3"])
    args.func(args)  # prints the chain, then "arc.h5: 9 decisions (before correction)"
    ```
    """
    p = subparsers.add_parser("arc", help="ARC: generate training data, train and evaluate controllers")
    sub = p.add_subparsers(dest="arc_command", required=True)

    g = sub.add_parser("generate", help="generate (or merge) training chains into HDF5 (resumable)")
    g.add_argument("--out", required=True, help="HDF5 file to write or extend")
    g.add_argument("--chains", type=int, default=360, help="number of chains over all shards")
    g.add_argument("--shard", default="0/1", help="i/k: run chains with id %% k == i")
    g.add_argument("--tasks", nargs="*", help="zoo task names (default: all)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    g.add_argument("--large", action="store_true", help="8x data per epoch (GPU users)")
    g.add_argument("--engine", choices=["v1", "vmap"], default="v1",
                   help="vmap: the v2 zoo, --group-size chains per compiled JAX program (KERAS_BACKEND=jax); "
                        "--shard then splits groups")
    g.add_argument("--group-size", type=int, default=16, help="chains per group (--engine vmap)")
    g.add_argument("--max-cycle-epochs", type=int, default=None,
                   help="cycle lengths drawn from 1..N epochs (--engine vmap; default 10)")
    g.add_argument("--poor-fraction", type=float, default=None,
                   help="fraction of chains starting 10-100x below the good LR (--engine vmap; default 0.35)")
    g.add_argument("--merge", nargs="*", help="merge these shard files into --out instead")
    g.set_defaults(func=_generate)

    t = sub.add_parser("train", help="train a controller (70/30 split, best by weighted accuracy)")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True, help=".keras file for the best controller")
    t.add_argument("--epochs", type=int, default=300)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--learning-rate", type=float, default=1e-4)
    t.add_argument("--zero-val-fraction", type=float, default=0.5)
    t.add_argument("--no-balance", action="store_true", help="no class weighting (the paper's setting)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--report", help="write the JSON report here")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="confusion matrix and weighted accuracy of a controller")
    e.add_argument("--data", required=True)
    e.add_argument("--controller", default=None, help="default: the shipped controller")
    e.add_argument("--heldout-only", action="store_true", help="only the 30%% held out by `train` with --seed")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--min-chain", type=int, default=0,
                   help="only chains with id >= this (compare controllers on chains neither saw)")
    e.set_defaults(func=_evaluate)

    s = sub.add_parser("select", help="pick among candidate controllers by ARC runs on a proxy task (resumable)")
    s.add_argument("--candidates", nargs="+", required=True, help=".keras controllers, incumbent first")
    s.add_argument("--out", required=True, help="folder for the run records and selection.json / .md")
    # Defaults filled in by _select (the pipeline imports Keras).
    s.add_argument("--task", default=None, help="proxy task (never an evaluation task; default: the pipeline's)")
    s.add_argument("--lrs", nargs="+", type=float, default=None, help="initial LRs (default: the pipeline's)")
    s.add_argument("--seeds", type=int, default=2, help="runs per initial LR")
    s.add_argument("--size", default="small", choices=["smoke", "small", "full"])
    s.add_argument("--frequency", type=int, default=3, help="ARC's epochs per decision")
    s.add_argument("--optimizer", default="adam")
    s.add_argument("--baselines", nargs="*", default=[], help="methods run on the same grid for reference")
    s.add_argument("--copy-to", help="copy the chosen controller here (e.g. saved_controllers/arc.keras)")
    s.set_defaults(func=_select)
    return p
