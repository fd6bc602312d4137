"""`keras-autolr mlrsnet ...`: meta-train an MLR-SNet from the command line.

Purpose: rebuild the shipped nets with one command (the exact commands are in
`saved_controllers/mlrsnet.md`). Runs are resumable: rerunning the same
command with the same `--checkpoint-dir` continues from the last epoch.

Example:

```
keras-autolr mlrsnet meta-train --task image --data cifar10 --n-train 10000 \\
    --epochs 30 --t-val 20 --checkpoint-dir runs/mlrsnet_image \\
    --out saved_controllers/mlrsnet_image.keras
```
"""

import argparse
import pathlib

__all__ = ["add_parser", "main"]


def add_parser(subparsers):
    """Adds the `mlrsnet` command group to the `keras-autolr` CLI."""
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
    m.add_argument("--t-val", type=int, default=None, help="steps between theta updates (default 20 image, 50 text)")
    m.add_argument("--val-size", type=int, default=1000)
    m.add_argument("--width", type=int, default=32, help="image CNN width")
    m.add_argument("--units", type=int, default=128, help="text LSTM units")
    m.add_argument("--seq-len", type=int, default=35)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--checkpoint-dir", default=None, help="checkpoints + resume snapshot")
    m.add_argument("--out", required=True, help="where to save the final net (.keras)")
    m.set_defaults(func=_meta_train_cmd)
    return p


def _meta_train_cmd(args):
    import os

    if getattr(args, "data_dir", None):
        os.environ["KERAS_AUTOLR_DATA"] = args.data_dir
    from keras_autolr.harness import recipes
    from keras_autolr.pipelines.mlrsnet.meta_train import meta_train

    if args.task == "image":
        x, y, xt, yt, C = recipes.image_data(args.data or "cifar10", n_train=args.n_train, n_test=2000, seed=args.seed)
        model = recipes.small_cnn(x.shape[1:], C, width=args.width, seed=args.seed)  # BN momentum 0.99
        kwargs = dict(num_classes=C, batch_size=args.batch_size or 128, t_val=args.t_val or 20,
                      momentum=0.0, weight_decay=5e-4)
    else:
        x, y, xt, yt, V = recipes.text_data(args.data or "ptb", n_tokens=args.n_tokens,
                                            n_test_tokens=20000, seq_len=args.seq_len)
        model = recipes.small_lm(V, units=args.units, seq_len=args.seq_len, seed=args.seed)
        kwargs = dict(vocab_size=V, batch_size=args.batch_size or 32, t_val=args.t_val or 50,
                      momentum=0.0, weight_decay=5e-6, clipnorm=0.25)
    net, history = meta_train(
        model, x, y, mode=args.task, epochs=args.epochs, val_size=args.val_size, seed=args.seed,
        checkpoint_dir=args.checkpoint_dir, x_test=xt, y_test=yt, **kwargs,
    )
    net.meta = dict(net.meta, command=" ".join(os.sys.argv), data=args.data or ("cifar10" if args.task == "image" else "ptb"))
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    net.save(out)
    print(f"saved {out}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="keras-autolr")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
