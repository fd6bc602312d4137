"""ARC overhead: `fit` with ARC vs plain `fit`, and one controller query.

Prints the median wall time of `fit` on MNIST-1D (conv1d net) without and
with `ARC(frequency=1)`, and with a no-op callback that only reads the
per-batch loss (the part of the overhead that any per-batch callback pays) (a decision after every epoch, ARC's worst case), the
ratio, and the median latency of one controller query (window building +
compiled forward pass). Warm-up runs are excluded; fits alternate so CPU
speed drift hits both alike.

Usage:
    python benchmarks/arc_overhead.py [--repeats 5] [--epochs 10] [--controller PATH]
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr import datasets, tasks  # noqa: E402
from keras_autolr.arc import ARC, build_controller, load_controller  # noqa: E402
from keras_autolr.arc.controller import Predictor, default_controller_path  # noqa: E402
from keras_autolr.arc.preprocessing import build_window  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--controller", default=None)
    args = p.parse_args()
    path = args.controller or default_controller_path()
    ctrl = load_controller(path) if os.path.exists(path) else build_controller(seed=0)
    s = datasets.load("mnist1d")
    x, y, xv, yv = s.x_train, s.y_train, s.x_val, s.y_val

    hook_seconds = []

    class TimedARC(ARC):
        """ARC that adds up the time spent in its own hooks (robust to CPU noise)."""

        def _timed(self, name, *a, **k):
            t0 = time.perf_counter()
            getattr(super(), name)(*a, **k)
            self.seconds = getattr(self, "seconds", 0.0) + time.perf_counter() - t0

        def on_train_begin(self, logs=None):
            self.seconds = 0.0
            self._timed("on_train_begin", logs)

        def on_epoch_begin(self, epoch, logs=None):
            self._timed("on_epoch_begin", epoch, logs)

        def on_train_batch_end(self, batch, logs=None):
            self._timed("on_train_batch_end", batch, logs)

        def on_epoch_end(self, epoch, logs=None):
            self._timed("on_epoch_end", epoch, logs)

        def on_train_end(self, logs=None):
            hook_seconds.append(self.seconds)

    class BatchHook(keras.callbacks.Callback):
        """Reads logs["loss"] every batch and does nothing else: Keras's own cost."""

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])

    def fit(kind):
        keras.utils.set_random_seed(0)
        m = tasks.conv1d_net((40, 1), 10)
        m.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        cbs = {"plain": [], "arc": [TimedARC(ctrl, frequency=1)], "hook": [BatchHook()]}[kind]
        t0 = time.perf_counter()
        m.fit(x, y, batch_size=128, epochs=args.epochs, validation_data=(xv, yv), callbacks=cbs, verbose=0)
        return time.perf_counter() - t0

    fit("plain"), fit("arc"), fit("hook")  # warm-up
    plain, arc, hook = [], [], []
    for _ in range(args.repeats):
        plain.append(fit("plain"))
        arc.append(fit("arc"))
        hook.append(fit("hook"))
    mp, ma, mh = statistics.median(plain), statistics.median(arc), statistics.median(hook)

    rng = np.random.default_rng(0)
    cycles = [rng.uniform(1, 2, 29 * 3) for _ in range(3)]
    vals = [rng.uniform(1, 2, 3) for _ in range(3)]
    pred = Predictor(ctrl)
    pred(build_window(cycles, vals, [1e-3, 1e-3, 1e-3]))  # warm-up (compiles)
    lat = []
    for _ in range(50):
        t0 = time.perf_counter()
        pred(build_window(cycles, vals, [1e-3, 1e-3, 1e-3]))
        lat.append(time.perf_counter() - t0)
    print(f"backend {keras.backend.backend()}, controller {path if os.path.exists(path) else 'random (none shipped)'}")
    print(f"fit, {args.epochs} epochs x {len(x) // 128 + 1} steps, median of {args.repeats}:")
    print(f"  plain fit      {mp:.3f} s")
    print(f"  fit with ARC   {ma:.3f} s   (frequency=1: {args.epochs - 1} decisions)")
    print(f"  ratio          {ma / mp:.4f}x")
    hooks = statistics.median(hook_seconds[1:])
    print(f"  time inside ARC's hooks: {hooks:.3f} s per fit = {100 * hooks / mp:.2f}% of the plain fit "
          f"({1000 * hooks / max(args.epochs - 1, 1):.1f} ms per decision incl. per-batch recording)")
    print(f"  no-op per-batch hook alone (reads logs['loss']): {mh:.3f} s, ratio {mh / mp:.4f}x")
    print(f"controller query (window + forward), median of 50: {1000 * statistics.median(lat):.2f} ms")


if __name__ == "__main__":
    main()
