"""ARC overhead: `fit` with ARC vs plain `fit`, and one controller query.

Prints the median wall time of `fit` on MNIST-1D (conv1d net, ~0.2 s epochs)
without ARC, with `ARC(frequency=F)` for each F in `--frequencies` (3 is the
paper's CIFAR-10 setting; 1, a decision after every short epoch, is ARC's
worst case), and with a no-op callback that only has a per-batch hook; the
median of per-repeat ratios; the time spent inside ARC's own hooks (robust to
CPU noise); the median latency of one controller query (window + compiled
forward pass); and the one-time cost of the first ARC in a process (loading
the controller and compiling its forward pass, shared by later fits).
Warm-up runs are excluded; fits alternate so CPU speed drift hits all alike.

Usage:
    python benchmarks/arc_overhead.py [--repeats 5] [--epochs 30] [--frequencies 3 1]
    # epochs of a few seconds, as in real training (the paper's setting is frequency 3):
    python benchmarks/arc_overhead.py --task fashion_mnist_cnn --epochs 15 --frequencies 3
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.harness import tasks, timing  # noqa: E402
from keras_autolr.runtime.arc import ARC, build_controller, load_controller  # noqa: E402
from keras_autolr.runtime.arc.controller import Predictor, default_controller_path  # noqa: E402
from keras_autolr.runtime.arc.preprocessing import build_window  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--task", default="mnist1d_cnn", help="a keras_autolr.harness.tasks name, trained at size 'small'")
    p.add_argument("--epochs", type=int, default=30, help="0: the task's own epoch count")
    p.add_argument("--frequencies", type=int, nargs="+", default=[3, 1])
    p.add_argument("--controller", default=None)
    args = p.parse_args()
    path = args.controller or default_controller_path()
    if not os.path.exists(path):
        path = os.path.join(tempfile.mkdtemp(), "random.keras")
        build_controller(seed=0).save(path)
    args.controller = path
    ctrl = load_controller(path)
    task = tasks.get(args.task)
    data = task.data("small", seed=0)
    x, y, xv, yv = data.x_train, data.y_train, data.x_val, data.y_val
    epochs = args.epochs or task.epochs_at("small")

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

        def on_train_batch_begin(self, batch, logs=None):
            self._timed("on_train_batch_begin", batch, logs)

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
        m = task.build_model("small", data.num_classes)
        m.compile(keras.optimizers.Adam(1e-3), task.loss)
        cbs = [] if kind == "plain" else [BatchHook()] if kind == "hook" else [TimedARC(args.controller, frequency=kind)]
        t0, c0 = time.perf_counter(), time.process_time()
        m.fit(x, y, batch_size=128, epochs=epochs, validation_data=(xv, yv), callbacks=cbs, verbose=0)
        # CPU time of all threads: a second view, less sensitive to other processes than wall time.
        return time.perf_counter() - t0, time.process_time() - c0

    kinds = ["plain", "hook"] + list(args.frequencies)
    t0 = time.perf_counter()
    ARC(args.controller)._get_predictor()(np.zeros((300, 3), "float32"))
    first_use = time.perf_counter() - t0
    # One warm-up fit of each kind, then rounds of one fit per kind (same order), CPU time too.
    report = timing.interleave({k: (lambda k=k: fit(k)) for k in kinds}, repeats=args.repeats, warmup=1,
                               alternate=False)
    del hook_seconds[: len(args.frequencies)]  # the warm-up fits'
    v = report["variants"]
    mp = v["plain"]["median_s"]

    rng = np.random.default_rng(0)
    cycles = [rng.uniform(1, 2, 29 * 3) for _ in range(3)]
    vals = [rng.uniform(1, 2, 3) for _ in range(3)]
    pred = Predictor(ctrl)
    # The first (warm-up) call compiles.
    query = timing.interleave({"query": lambda: pred(build_window(cycles, vals, [1e-3, 1e-3, 1e-3]))},
                              repeats=50, warmup=1)["variants"]["query"]
    print(f"backend {keras.backend.backend()}, controller {path if os.path.exists(path) else 'random (none shipped)'}")
    print(f"fit {args.task} (small), {epochs} epochs x {tasks.steps_per_epoch(len(x), 128)} steps, median of {args.repeats} (ratio: median of per-repeat ratios):")
    print(f"  plain fit                      {mp:.3f} s")
    print(f"  no-op per-batch hook           {v['hook']['median_s']:.3f} s   ratio {v['hook']['ratio']:.4f}x")
    n = len(args.frequencies)
    for i, f in enumerate(args.frequencies):
        decisions = (epochs - 1) // f
        hooks = statistics.median(hook_seconds[i::n])
        print(f"  fit with ARC(frequency={f})     {v[f]['median_s']:.3f} s   ratio {v[f]['ratio']:.4f}x   "
              f"({decisions} decisions; inside ARC's hooks {hooks:.3f} s = {100 * hooks / mp:.2f}% of plain fit, "
              f"{1000 * hooks / max(decisions, 1):.1f} ms per decision incl. per-batch recording)")
    print("CPU time (process_time, all threads), median of per-repeat ratios to plain fit:")
    for k in kinds[1:]:
        label = "no-op per-batch hook" if k == "hook" else f"fit with ARC(frequency={k})"
        print(f"  {label:<30} {v[k]['median_cpu_s']:.3f} s   ratio {v[k]['cpu_ratio']:.4f}x")
    print(f"controller query (window + forward), median of 50: {1000 * query['median_s']:.2f} ms")
    print(f"one-time cost of the first ARC in this process (load + compile, shared by later fits): {first_use:.3f} s")


if __name__ == "__main__":
    main()
