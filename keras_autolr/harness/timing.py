"""Side-by-side overhead measurement: plain `fit` vs `fit` with a component.

Benchmarks print ratios, never assert them (tests never time). Each variant
is a zero-argument function returning `(model, fit_kwargs)`: a freshly built
and compiled model and the keyword arguments of its `fit` (data, callbacks,
epochs). For every repeat, variants run in alternating order (ABBA...), each
first fits `warmup_epochs` (tracing and compilation, excluded) and then is
timed over `fit(**fit_kwargs)`. The report gives per-variant median seconds
and the median of per-repeat ratios to the first (baseline) variant, which is
robust to this CPU's drifting speed.

Peak memory: `peak_memory=True` reruns each variant in its own subprocess and
reads the kernel's peak resident set size (VmHWM), so variants do not inherit
each other's peaks. The variants must then be importable as `module:function`.

Example:

```python
report = compare({"plain": make_plain, "with ARC": make_arc}, repeats=5)
print(format_report(report))
```
"""

import importlib
import json
import statistics
import subprocess
import sys
import time

__all__ = ["compare", "format_report", "peak_rss_mb"]


def peak_rss_mb():
    """This process's peak resident set size in MiB (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _timed_fit(make, warmup_epochs):
    model, kwargs = make()
    warm = dict(kwargs, epochs=warmup_epochs, verbose=0)
    model.fit(**warm)
    t0 = time.perf_counter()
    model.fit(**dict(kwargs, verbose=0))
    return time.perf_counter() - t0


def compare(variants, repeats=5, warmup_epochs=1, peak_memory=False):
    """Times each variant `repeats` times, interleaved; the first is the baseline.

    Args:
        variants: ordered dict name -> make() or "module:function" string.
        repeats: timed repeats per variant.
        warmup_epochs: epochs fitted (untimed) before each timed fit.
        peak_memory: also measure each variant's peak RSS in a subprocess.

    Returns:
        dict with per-variant `times`, `median_s`, `ratio` (median of
        per-repeat ratios to the baseline) and optionally `peak_rss_mb`.
    """
    makes = {k: _resolve(v) for k, v in variants.items()}
    names = list(makes)
    times = {k: [] for k in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for k in order:
            times[k].append(_timed_fit(makes[k], warmup_epochs))
    base = names[0]
    report = {"repeats": repeats, "baseline": base, "variants": {}}
    for k in names:
        ratios = [t / b for t, b in zip(times[k], times[base])]
        report["variants"][k] = {
            "times": times[k],
            "median_s": statistics.median(times[k]),
            "ratio": statistics.median(ratios),
        }
    if peak_memory:
        for k, spec in variants.items():
            if not isinstance(spec, str):
                raise ValueError("peak_memory=True needs variants given as 'module:function' strings.")
            report["variants"][k]["peak_rss_mb"] = _subprocess_peak(spec, warmup_epochs)
        b = report["variants"][base]["peak_rss_mb"]
        for k in names:
            report["variants"][k]["memory_ratio"] = report["variants"][k]["peak_rss_mb"] / b
    return report


def _resolve(spec):
    if callable(spec):
        return spec
    module, _, fn = spec.partition(":")
    return getattr(importlib.import_module(module), fn)


def _subprocess_peak(spec, warmup_epochs):
    code = (
        "import json, sys; from keras_autolr import benchmark as b; "
        f"b._timed_fit(b._resolve({spec!r}), {warmup_epochs}); print(json.dumps(b.peak_rss_mb()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def format_report(report, title=None):
    lines = [title] if title else []
    lines.append(f"{'variant':28s} {'median s':>9s} {'ratio':>7s}" +
                 (f" {'peak MiB':>9s} {'mem ratio':>9s}" if "peak_rss_mb" in next(iter(report["variants"].values())) else ""))
    for k, v in report["variants"].items():
        line = f"{k:28s} {v['median_s']:9.3f} {v['ratio']:7.3f}"
        if "peak_rss_mb" in v:
            line += f" {v['peak_rss_mb']:9.1f} {v['memory_ratio']:9.3f}"
        lines.append(line)
    lines.append(f"(median of {report['repeats']} interleaved repeats; ratio = median of per-repeat "
                 f"time / '{report['baseline']}' time; warm-up excluded)")
    return "\n".join(lines)
