"""MCV step time vs a plain `train_step`, next to the theoretical ratio.

For each MCV method, times `fit` epochs of `MCVModel` and of the same model
trained plainly, on the same incoming batches (batch B: the plain step trains on
B examples, MCV trains on B/2 and validates on B/2). Plain and MCV epochs
alternate (this machine's speed drifts); a warm-up epoch of each (tracing /
compilation) is excluded; the ratio of medians and the ratio of minima (the
least-disturbed epochs, robust to other jobs on a shared machine) are reported.

Theoretical ratios (see `keras_autolr.runtime.mcv.cost`):
* `table`: Table 4.1's (#forward + #backward) over the baseline's 2, i.e. as if
  every pass ran on a full batch (the thesis's accounting);
* `weighted`: passes on half batches, backward = 2 forwards, optimizer steps free.

Usage:

    python benchmarks/mcv_step_time.py                      # TensorFlow, CPU
    KERAS_BACKEND=jax python benchmarks/mcv_step_time.py    # JAX (vmap over candidates)
    KERAS_BACKEND=jax python benchmarks/mcv_step_time.py --no-vectorize
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.harness import models, timing  # noqa: E402
from keras_autolr.runtime.mcv import MCVModel  # noqa: E402
from keras_autolr.runtime.mcv import cost as cost_lib  # noqa: E402

RUNS = [("discard", {}), ("voting", {}), ("method1", {}), ("method2", {"alpha": 0.5}), ("method3", {})]


def _compile(model):
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _epoch(model, x, y, batch):
    """One epoch; its (wall, CPU) seconds per step, fit's set-up excluded."""
    timer = timing.EpochTimer()
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    steps = len(x) // batch
    return timer.wall[0] / steps, timer.cpu[0] / steps


def paired_times(plain, mcv, x, y, batch, rounds):
    """Alternates one plain epoch and one MCV epoch (the machine's speed drifts),
    after one warm-up epoch each (tracing and compilation excluded)."""
    report = timing.interleave({"plain": lambda: _epoch(plain, x, y, batch), "mcv": lambda: _epoch(mcv, x, y, batch)},
                               repeats=rounds, warmup=1, alternate=False)
    return report["variants"]["plain"], report["variants"]["mcv"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5, help="timed epochs per model (after a warm-up)")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--no-vectorize", action="store_true", help="JAX: unrolled loop instead of vmap")
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    n = a.batch * a.steps
    x = rng.normal(size=(n, a.size, a.size, 3)).astype("float32")
    y = rng.integers(0, 10, size=n).astype("int32")
    keras.utils.set_random_seed(0)
    plain_model = _compile(models.plain_cnn(x.shape[1:], 10, a.width))
    print(f"backend {keras.backend.backend()}, batch {a.batch}, CNN width {a.width}, "
          f"{a.size}x{a.size} input, {a.steps} steps per epoch, median of {a.rounds} alternating "
          f"epochs{' (JAX: unrolled loop, no vmap)' if a.no_vectorize else ''}")
    print("| method | candidates | plain step ms | MCV step ms | measured ratio (median) | ratio of minima "
          "| CPU ratio (median) | table ratio | weighted ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method, opts in RUNS:
        keras.utils.set_random_seed(0)
        model = MCVModel(models.plain_cnn(x.shape[1:], 10, a.width), method=method, **opts)
        model.vectorize = not a.no_vectorize
        plain, mcv = paired_times(plain_model, _compile(model), x, y, a.batch, a.rounds)
        k = 1 if method == "discard" else model.num_slots
        print(f"| {method}{' a=0.5' if opts else ''} | {k if method != 'discard' else '-'} | "
              f"{1000 * plain['median_s']:.2f} | {1000 * mcv['median_s']:.2f} | "
              f"{mcv['median_s'] / plain['median_s']:.2f} | {mcv['min_ratio']:.2f} | "
              f"{mcv['median_cpu_s'] / plain['median_cpu_s']:.2f} | {cost_lib.table_ratio(method, k):.1f} | "
              f"{cost_lib.weighted_ratio(method, k):.2f} |", flush=True)


if __name__ == "__main__":
    main()
