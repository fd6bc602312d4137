"""MLR-SNet overhead: meta-test `fit` vs constant-LR `fit`, and meta-training cost.

Purpose: check the target "meta-test fit <= 1.05x the wall time of a
constant-LR fit" and report what meta-training costs.

1. Meta-test: the same model, data and SGD, fitted (a) with a constant LR,
   (b) with `MLRSNetScheduler` (per-batch LR predicted inside the step),
   (c) with `HypergradientDescent` for reference. Interleaved repeats,
   warm-up excluded, median of per-repeat ratios (`keras_autolr.harness.timing`).
2. Meta-training: seconds per epoch of `meta_train` with t_val = 10 and 35
   against `meta_train` with no meta step after the first (t_val huge, the
   same hand-written loop) and against a plain Keras `fit` epoch.

Run: `python benchmarks/mlrsnet_overhead.py [--repeats 5] [--n 4000] [--backend jax]`
(the backend is set in a fresh process).
"""

import argparse
import os
import sys

p = argparse.ArgumentParser()
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--n", type=int, default=4000)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--backend", default=None)
p.add_argument("--skip-meta", action="store_true")
args = p.parse_args()
if args.backend:
    os.environ["KERAS_BACKEND"] = args.backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.harness import timing  # noqa: E402
from keras_autolr.runtime.mlrsnet import HypergradientDescent, MLRSNet, MLRSNetScheduler  # noqa: E402
from keras_autolr.harness import recipes  # noqa: E402

rng = np.random.default_rng(0)
X = rng.normal(size=(args.n, 28, 28, 1)).astype("float32")
Y = rng.integers(0, 10, size=args.n).astype("int32")
NET = MLRSNet(seed=0)
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _model():
    keras.utils.set_random_seed(0)
    m = recipes.small_cnn((28, 28, 1), 10, width=16)
    m.compile(keras.optimizers.SGD(0.1), LOSS)
    return m


def make(callbacks):
    def f():
        return _model(), dict(x=X, y=Y, batch_size=128, epochs=args.epochs, callbacks=callbacks())
    return f


variants = {
    "constant LR (SGD)": make(lambda: []),
    "MLR-SNet (in-step)": make(lambda: [MLRSNetScheduler(NET, num_classes=10)]),
    "HD (in-step)": make(lambda: [HypergradientDescent(1e-3)]),
}
report = timing.compare(variants, repeats=args.repeats, warmup_epochs=1)
print(timing.format_report(report, title=f"meta-test fit, backend {keras.backend.backend()}, "
                                             f"{args.n} images 28x28, small CNN, batch 128, {args.epochs} epochs"))

if not args.skip_meta and keras.backend.backend() == "tensorflow":
    from keras_autolr.pipelines.mlrsnet.meta_train import meta_train

    def meta_epoch_seconds(t_val):
        keras.utils.set_random_seed(0)
        m = recipes.small_cnn((28, 28, 1), 10, width=16)
        _, hist = meta_train(m, X, Y, num_classes=10, val_size=500, t_val=t_val, epochs=3, batch_size=128,
                             gamma=0.3, log=lambda *_: None,
                             # global step count: t_val 1e9 = one meta step (step 0); no augmentation, like fit
                             meta_schedule="global", augment=False)
        # Epoch 1 includes tracing; meta_train times its own epochs (wall only).
        return float(np.median([h["seconds"] for h in hist[1:]])), float("nan")

    def fit_epoch_seconds():
        m = _model()
        xs, ys = X[: args.n - 500], Y[: args.n - 500]
        m.fit(xs, ys, batch_size=128, epochs=1, verbose=0)  # tracing
        timer = timing.EpochTimer()
        m.fit(xs, ys, batch_size=128, epochs=2, verbose=0, callbacks=[timer])
        return float(np.mean(timer.wall)), float(np.mean(timer.cpu))

    meta = timing.interleave({"fit": fit_epoch_seconds, "loop": lambda: meta_epoch_seconds(10 ** 9),
                              "t35": lambda: meta_epoch_seconds(35), "t10": lambda: meta_epoch_seconds(10)},
                             repeats=max(1, args.repeats // 2), warmup=0, alternate=False)
    fit_s, loop_s, m35, m10 = (meta["variants"][k]["median_s"] for k in ("fit", "loop", "t35", "t10"))
    spe = (args.n - 500) // 128
    print(f"\nmeta-training, {args.n - 500} train images, {spe} steps/epoch (median of {meta['repeats']}):")
    print(f"  keras fit epoch (constant LR)          {fit_s:7.3f} s  1.00x")
    print(f"  meta_train loop, no meta steps         {loop_s:7.3f} s  {loop_s / fit_s:.2f}x")
    print(f"  meta_train t_val=35 (~{spe / 35:.1f} meta/epoch)  {m35:7.3f} s  {m35 / fit_s:.2f}x")
    print(f"  meta_train t_val=10 (~{spe / 10:.1f} meta/epoch)  {m10:7.3f} s  {m10 / fit_s:.2f}x")
