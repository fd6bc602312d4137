"""Side-by-side timing: interleaved repeats, wall and CPU time, ratios to a baseline.

Benchmarks print ratios, never assert them (tests never time). Two levels:

* `interleave(variants, repeats)`: calls each zero-argument function
  `repeats` times, the variants interleaved (this CPU's speed drifts, so
  every variant sees the same drift), after untimed warm-up calls; records
  wall seconds (`perf_counter`) and CPU seconds of all threads
  (`process_time`, less sensitive to other jobs on a shared machine) of each
  call, or what the call measured itself when it returns `(wall_s, cpu_s)`
  (e.g. only the epochs, not the set-up). The report gives per-variant
  medians and minima and the median of per-repeat ratios to the first
  (baseline) variant.
* `EpochTimer`: a callback recording each epoch's wall and CPU seconds, for
  functions that time only the epochs of their `fit`.
* `compare(variants, repeats)`: the same for `fit` overhead. Each variant is
  a zero-argument function returning `(model, fit_kwargs)`: a freshly built
  and compiled model and the keyword arguments of its `fit`. Every repeat
  builds a fresh model, fits `warmup_epochs` (tracing and compilation,
  excluded), then times `fit(**fit_kwargs)`; variants alternate (ABBA...).

Peak memory: `compare(..., peak_memory=True)` reruns each variant in its own
subprocess and reads the kernel's peak resident set size (VmHWM), so
variants do not inherit each other's peaks. The variants must then be
importable as `module:function`.

Example:

```python
from keras_autolr.harness import timing

report = timing.interleave({"short": lambda: sum(range(1000)), "long": lambda: sum(range(100000))},
                           repeats=3)
assert report["variants"]["short"]["ratio"] == 1.0 and report["variants"]["long"]["ratio"] > 1.0
print(timing.format_report(report))
```
"""

import importlib
import json
import statistics
import subprocess
import sys
import time

import keras

__all__ = ["interleave", "EpochTimer", "compare", "format_report", "peak_rss_mb"]


def peak_rss_mb():
    """This process's peak resident set size in MiB (Linux), else None.

    Example:

    ```python
    from keras_autolr.harness import timing

    peak = timing.peak_rss_mb()
    assert peak is None or peak > 1
    ```
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _call(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    own = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if isinstance(own, tuple) and len(own) == 2:
        return float(own[0]), float(own[1])
    return wall, cpu


def _median_ratio(series, base):
    return statistics.median(t / b if b > 0 else float("nan") for t, b in zip(series, base))


def interleave(variants, repeats=5, warmup=1, alternate=True):
    """Times each variant `repeats` times, interleaved; the first is the baseline.

    Args:
        variants: ordered dict name -> zero-argument function. A function may
            return `(wall_s, cpu_s)` it measured itself (to time only part of
            its work); otherwise the whole call is timed.
        repeats: timed calls per variant.
        warmup: untimed calls of each variant first (tracing, compilation).
        alternate: reverse the order every other repeat (ABBA...), else
            always the given order (round robin).

    Returns:
        dict with `repeats`, `baseline` and per-variant `variants[name]`:
        `times` and `cpu_times` (per repeat), `median_s`, `min_s`,
        `median_cpu_s`, `ratio` (median of per-repeat wall ratios to the
        baseline), `min_ratio` (ratio of minima: the least-disturbed calls),
        `cpu_ratio` (median of per-repeat CPU ratios).

    Example:

    ```python
    from keras_autolr.harness import timing

    calls = []
    report = timing.interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               repeats=2, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a"]
    assert len(report["variants"]["b"]["cpu_times"]) == 2
    ```
    """
    names = list(variants)
    if not names:
        raise ValueError("interleave needs at least one variant.")
    for _ in range(warmup):
        for k in names:
            variants[k]()
    wall = {k: [] for k in names}
    cpu = {k: [] for k in names}
    for r in range(repeats):
        order = names[::-1] if alternate and r % 2 else names
        for k in order:
            w, c = _call(variants[k])
            wall[k].append(w)
            cpu[k].append(c)
    base = names[0]
    report = {"repeats": repeats, "baseline": base, "variants": {}}
    for k in names:
        report["variants"][k] = {
            "times": wall[k], "cpu_times": cpu[k],
            "median_s": statistics.median(wall[k]), "min_s": min(wall[k]),
            "median_cpu_s": statistics.median(cpu[k]),
            "ratio": _median_ratio(wall[k], wall[base]),
            "min_ratio": min(wall[k]) / min(wall[base]) if min(wall[base]) > 0 else float("nan"),
            "cpu_ratio": _median_ratio(cpu[k], cpu[base]),
        }
    return report


class EpochTimer(keras.callbacks.Callback):
    """Records the wall and CPU seconds of every epoch of a `fit` (set-up and teardown excluded).

    Attributes after `fit`: `wall` and `cpu`, lists of seconds per epoch.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.harness import timing

    x = np.zeros((32, 3), "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    timer = timing.EpochTimer()
    model.fit(x, x[:, :1], epochs=2, batch_size=8, verbose=0, callbacks=[timer])
    assert len(timer.wall) == len(timer.cpu) == 2 and min(timer.wall) > 0
    ```
    """

    def on_train_begin(self, logs=None):
        self.wall, self.cpu = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.wall.append(time.perf_counter() - self._t0)
        self.cpu.append(time.process_time() - self._c0)


def _timed_fit(make, warmup_epochs):
    model, kwargs = make()
    model.fit(**dict(kwargs, epochs=warmup_epochs, verbose=0))
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(**dict(kwargs, verbose=0))
    return time.perf_counter() - t0, time.process_time() - c0


def compare(variants, repeats=5, warmup_epochs=1, peak_memory=False):
    """Times `fit` of each variant `repeats` times, interleaved (ABBA); the first is the baseline.

    Args:
        variants: ordered dict name -> make() or "module:function" string;
            `make()` returns `(compiled_model, fit_kwargs)`.
        repeats: timed repeats per variant.
        warmup_epochs: epochs fitted (untimed) before each timed fit.
        peak_memory: also measure each variant's peak RSS in a subprocess.

    Returns:
        `interleave`'s report (wall and CPU time of the timed fits), plus
        per-variant `peak_rss_mb` and `memory_ratio` with `peak_memory`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.harness import timing

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")

    def make(callbacks):
        def fn():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            model.compile(optimizer="sgd", loss="mse")
            return model, dict(x=x, y=x[:, :1], batch_size=16, epochs=1, callbacks=callbacks)
        return fn

    report = timing.compare({"plain": make([]), "logged": make([keras.callbacks.History()])}, repeats=2)
    assert report["variants"]["plain"]["ratio"] == 1.0
    ```
    """
    makes = {k: _resolve(v) for k, v in variants.items()}
    report = interleave({k: (lambda m=m: _timed_fit(m, warmup_epochs)) for k, m in makes.items()},
                        repeats=repeats, warmup=0, alternate=True)
    if peak_memory:
        for k, spec in variants.items():
            if not isinstance(spec, str):
                raise ValueError("peak_memory=True needs variants given as 'module:function' strings.")
            report["variants"][k]["peak_rss_mb"] = _subprocess_peak(spec, warmup_epochs)
        b = report["variants"][report["baseline"]]["peak_rss_mb"]
        for k in makes:
            report["variants"][k]["memory_ratio"] = report["variants"][k]["peak_rss_mb"] / b
    return report


def _resolve(spec):
    if callable(spec):
        return spec
    module, _, fn = spec.partition(":")
    return getattr(importlib.import_module(module), fn)


def _subprocess_peak(spec, warmup_epochs):
    code = (
        "import json; from keras_autolr.harness import timing as t; "
        f"t._timed_fit(t._resolve({spec!r}), {warmup_epochs}); print(json.dumps(t.peak_rss_mb()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def format_report(report, title=None):
    """A fixed-width text table of an `interleave` / `compare` report.

    Args:
        report: the report dict.
        title: first line.

    Example:

    ```python
    from keras_autolr.harness import timing

    report = timing.interleave({"a": lambda: None, "b": lambda: None}, repeats=1, warmup=0)
    text = timing.format_report(report, title="demo")
    assert text.splitlines()[0] == "demo" and "cpu ratio" in text
    ```
    """
    lines = [title] if title else []
    memory = "peak_rss_mb" in next(iter(report["variants"].values()))
    lines.append(f"{'variant':28s} {'median s':>9s} {'ratio':>7s} {'cpu ratio':>9s}" +
                 (f" {'peak MiB':>9s} {'mem ratio':>9s}" if memory else ""))
    for k, v in report["variants"].items():
        line = f"{k:28s} {v['median_s']:9.3f} {v['ratio']:7.3f} {v['cpu_ratio']:9.3f}"
        if memory:
            line += f" {v['peak_rss_mb']:9.1f} {v['memory_ratio']:9.3f}"
        lines.append(line)
    lines.append(f"(median of {report['repeats']} interleaved repeats; ratio = median of per-repeat "
                 f"time / '{report['baseline']}' time, wall and CPU (process_time, all threads); "
                 "warm-up excluded)")
    return "\n".join(lines)
