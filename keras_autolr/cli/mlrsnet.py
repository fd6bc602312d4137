"""`keras-autolr mlrsnet ...`: meta-train an MLR-SNet, or convert the authors' nets.

Purpose: rebuild the shipped nets with one command (the exact commands are in
`saved_controllers/mlrsnet.md`). `--details reference` (the default) meta-trains
with the official code's details (meta-training LSTM cell, weight decay in the
lookahead, crop + flip augmentation of images, theta updated on batches
counted within each epoch); `--details shipped` with those of the shipped
`mlrsnet_image*` / `mlrsnet_text*` nets. Meta-training runs are resumable:
rerunning the same command with the same `--checkpoint-dir` continues from
the last epoch (with other details it stops with a message).
`import-official` converts one of the authors' PyTorch files (`mlr_snet 1.pth`,
...) to a Keras `.keras` net without PyTorch.

Example:

```
keras-autolr mlrsnet meta-train --task image --data cifar10 --n-train 10000 \\
    --epochs 30 --t-val epoch --checkpoint-dir runs/mlrsnet_image \\
    --out runs/mlrsnet_image.keras
keras-autolr mlrsnet import-official "mlr_snet 1.pth" saved_controllers/mlrsnet_official_1.keras
```
"""

import argparse
import pathlib

from keras_autolr.cli._common import positive_int

__all__ = ["add_parser", "main"]


def add_parser(subparsers):
    """Adds the `mlrsnet` command group to the `keras-autolr` CLI.

    `meta-train` builds a recipe
    (`keras_autolr.harness.recipes.meta_training`; `--details`, `--cell`,
    `--augment`, `--t-val N|epoch` choose the meta-training details), runs
    `keras_autolr.pipelines.mlrsnet.meta_train.meta_train` and saves the net;
    `import-official SRC DST [--cell meta_test|meta_train]` converts an
    official `.pth` file (`keras_autolr.runtime.mlrsnet.load_official`).

    Args:
        subparsers: what `ArgumentParser.add_subparsers()` returned.

    Returns:
        The `mlrsnet` parser.

    Example:

    ```python
    from keras_autolr.cli import build_parser  # the whole CLI: it calls add_parser

    args = build_parser().parse_args(["mlrsnet", "meta-train", "--task", "text", "--out", "text.keras"])
    print(args.mlrsnet_command, args.task, args.epochs)  # meta-train text 30
    ```
    """
    p = subparsers.add_parser("mlrsnet", help="MLR-SNet: meta-learned per-batch LR schedules")
    sub = p.add_subparsers(dest="mlrsnet_command", required=True)
    m = sub.add_parser("meta-train", help="meta-train an MLR-SNet on an image or text task")
    m.add_argument("--task", choices=("image", "text"), default="image")
    m.add_argument("--data", default=None, help="data set (default cifar10 / ptb)")
    m.add_argument("--data-dir", default=argparse.SUPPRESS,
                   help="offline data folder (default $KERAS_AUTOLR_DATA or ../shared/data)")
    m.add_argument("--n-train", type=int, default=None, help="image: training subset size")
    m.add_argument("--n-tokens", type=int, default=None, help="text: training tokens used")
    m.add_argument("--epochs", type=int, default=30)
    m.add_argument("--batch-size", type=int, default=None, help="default 128 image, 32 text")
    m.add_argument("--t-val", type=_t_val, default=None,
                   help="batches between theta updates, or 'epoch' (one per epoch; the default for images with "
                        "--details reference; text 50)")
    m.add_argument("--details", choices=("reference", "shipped"), default="reference",
                   help="meta-training details: the official code's (default) or the shipped nets'")
    m.add_argument("--cell", choices=("meta_train", "meta_test"), default=None,
                   help="LSTM cell of the new net (default: the details', meta_train for reference)")
    m.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop + flip of image batches (default: on for images with --details reference)")
    m.add_argument("--val-size", type=int, default=1000)
    m.add_argument("--width", type=int, default=32, help="image CNN width")
    m.add_argument("--units", type=int, default=128, help="text LSTM units")
    m.add_argument("--seq-len", type=int, default=35)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--checkpoint-dir", default=None, help="checkpoints + resume snapshot")
    m.add_argument("--out", required=True, help="where to save the final net (.keras)")
    m.set_defaults(func=_meta_train_cmd)
    o = sub.add_parser("import-official", help="convert one of the authors' .pth nets to a .keras net")
    o.add_argument("src", help="an official file, e.g. 'mlr_snet 1.pth' (github.com/xjtushujun/MLR-SNet, meta-test/)")
    o.add_argument("dst", help="where to save the Keras net (.keras)")
    o.add_argument("--cell", choices=("meta_test", "meta_train"), default="meta_test",
                   help="LSTM cell that runs the weights (default meta_test: the official meta-test's)")
    o.set_defaults(func=_import_official_cmd)
    return p


def _meta_train_cmd(args):
    import os

    if getattr(args, "data_dir", None):
        os.environ["KERAS_AUTOLR_DATA"] = args.data_dir
    from keras_autolr.harness import recipes
    from keras_autolr.pipelines.mlrsnet.meta_train import meta_train

    setup = recipes.meta_training(
        args.task, data=args.data, n_train=args.n_train, n_tokens=args.n_tokens, epochs=args.epochs,
        batch_size=args.batch_size, t_val=args.t_val, val_size=args.val_size, width=args.width,
        units=args.units, seq_len=args.seq_len, seed=args.seed, details=args.details, cell=args.cell,
        augment=args.augment)
    net, history = meta_train(**setup, checkpoint_dir=args.checkpoint_dir)
    net.meta = dict(net.meta, command=" ".join(os.sys.argv), data=args.data or recipes.DEFAULT_DATA[args.task])
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    net.save(out)
    print(f"saved {out}")
    return 0


def _t_val(text):
    return text if text == "epoch" else positive_int(text)


def _import_official_cmd(args):
    # Errors are ValueErrors (MLRSNetFileError is one): `keras-autolr` prints them and exits with 2.
    from keras_autolr.runtime.mlrsnet import load_official

    dst = pathlib.Path(args.dst)
    if dst.suffix != ".keras":
        raise ValueError(f"{dst} must end in .keras (the net is saved as a Keras v3 archive).")
    net = load_official(args.src, cell=args.cell)
    net.meta = dict(net.meta, command=f"keras-autolr mlrsnet import-official {pathlib.Path(args.src).name} "
                                      f"{dst.name} --cell {args.cell}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    net.save(dst)
    print(f"saved {dst} (cell {args.cell})")
    return 0


def main(argv=None):
    """Runs `keras-autolr mlrsnet ...` on its own (argv like `sys.argv[1:]`).

    Args:
        argv: the arguments, starting with `"mlrsnet"` (None: `sys.argv[1:]`).

    Returns:
        0 on success.

    Example:

    ```python
    from keras_autolr.cli.mlrsnet import main

    # A seconds-long meta-training on the built-in digits set (the real runs: saved_controllers/mlrsnet.md).
    main(["mlrsnet", "meta-train", "--data", "digits", "--n-train", "256", "--val-size", "64",
          "--epochs", "1", "--batch-size", "32", "--t-val", "2", "--width", "4", "--out", "digits.keras"])
    ```
    """
    parser = argparse.ArgumentParser(prog="keras-autolr")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
