"""Step time of the tuning-free optimizers vs Adam, side by side, in one run.

Every optimizer trains its own copy of the same MLP on the same batches; one
`fit` epoch of each is timed per round, rounds interleaved ABBA (this machine's
speed drifts), after one warm-up epoch each (tracing and compilation excluded).
Reported: per-step median seconds and the median of per-round ratios to Adam
(`keras_autolr.harness.timing.interleave`). The tuning-free optimizers do a few
more whole-parameter passes per step than Adam (global reductions, the
non-finite check, Prodigy's extra slots), so their ratio is above 1 when the
optimizer step is a large share of the step (small models, big layers).

Usage:

    python benchmarks/optimizer_step_time.py                    # TensorFlow, CPU
    KERAS_BACKEND=jax python benchmarks/optimizer_step_time.py --rounds 7 --width 512
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.harness import timing  # noqa: E402
from keras_autolr.runtime.optimizers import (  # noqa: E402
    DAdaptAdam, DoG, Prodigy, ReferenceScheduleFreeAdamW, ScheduleFreeAdamW)

OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(1e-3),
    "prodigy": lambda: Prodigy(),
    "dadapt_adam": lambda: DAdaptAdam(),
    "dog": lambda: DoG(),
    "schedule_free_ref": lambda: ReferenceScheduleFreeAdamW(1e-3),
    "schedule_free (keras)": lambda: ScheduleFreeAdamW(1e-3),
}


def _model(width, depth, d_in):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((d_in,))] + [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    return keras.Sequential(layers + [keras.layers.Dense(1)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=50, help="steps per timed epoch")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch * args.steps, 32)).astype("float32")
    y = x[:, :1] * 2.0
    models = {}
    for name, make in OPTIMIZERS.items():
        m = _model(args.width, args.depth, x.shape[1])
        m.compile(optimizer=make(), loss="mse")
        models[name] = m

    def epoch(m):
        timer = timing.EpochTimer()
        m.fit(x, y, batch_size=args.batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
        return timer.wall[0] / args.steps, timer.cpu[0] / args.steps

    report = timing.interleave({k: (lambda m=m: epoch(m)) for k, m in models.items()},
                               repeats=args.rounds, warmup=1)
    n_params = models["adam"].count_params()
    print(timing.format_report(
        report, title=f"{keras.backend.backend()}: seconds per step, MLP {args.depth}x{args.width} "
                      f"({n_params} parameters), batch {args.batch}, {args.steps} steps per epoch"))
    return report


if __name__ == "__main__":
    main()
