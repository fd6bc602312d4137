"""Tables and plots of run records (`harness.runner`): ARC-style tables, LR and metric curves.

Tables follow ARC's Tables 3-5: per initial LR, mean ± std over seeds of the
best validation metric and of the convergence step, the threshold being the
worst best score among all runs at that initial LR (`metrics.convergence_steps`).
Plots need matplotlib (`pip install keras-autolr[plots]`) and are skipped
with a note without it.

Example:

```python
from keras_autolr.harness import reports, runner

records = runner.run_grid("digits_cnn", ["constant", "exponential"], [1e-2], seeds=[0],
                          out_dir="runs/report", size="smoke", epochs=2, log=lambda line: None)
table = reports.markdown_table(records)
assert "| constant |" in table and "converge step" in table
```
"""

import math
import pathlib

import numpy as np

from keras_autolr.harness import metrics as metrics_lib

__all__ = ["summarize", "markdown_table", "pyplot", "plot_curves"]


def summarize(records):
    """Per (initial LR, method): best metric and convergence step over seeds.

    Args:
        records: run records (`runner.run_one`), any mix of initial LRs,
            methods and seeds of one task.

    Returns:
        A list of dict rows, initial LRs from high to low: `initial_lr`,
        `method`, `threshold`, and lists over seeds `best`, `converge`
        (None where a run never reached the threshold), `test`, `wall`.

    Example:

    ```python
    from keras_autolr.harness import reports

    def rec(method, curve):
        return {"initial_lr": 1e-3, "method": method, "metric": "accuracy", "mode": "max",
                "history": {"val_accuracy": curve}, "steps": [10, 20, 30], "best": max(curve),
                "test": {"accuracy": curve[-1]}, "wall_s": 1.0}

    rows = reports.summarize([rec("a", [0.5, 0.7, 0.8]), rec("b", [0.6, 0.6, 0.7])])
    assert rows[0]["threshold"] == 0.7
    assert [r["converge"] for r in rows] == [[20], [30]]
    ```
    """
    rows = []
    by_lr = {}
    for r in records:
        by_lr.setdefault(r["initial_lr"], []).append(r)
    for lr0 in sorted(by_lr, reverse=True):
        group = by_lr[lr0]
        mode = group[0]["mode"]
        key = "val_" + group[0]["metric"]
        runs = [(r["steps"][: len(r["history"].get(key, []))],
                 [math.nan if v is None else v for v in r["history"].get(key, [])]) for r in group]
        try:
            threshold, conv = metrics_lib.convergence_steps(runs, mode)
        except ValueError:
            threshold, conv = math.nan, [None] * len(group)
        by_method = {}
        for r, c in zip(group, conv):
            by_method.setdefault(r["method"], {"best": [], "converge": [], "test": [], "wall": []})
            m = by_method[r["method"]]
            m["best"].append(r["best"])
            m["converge"].append(c)
            m["test"].append(r["test"].get(r["metric"]))
            m["wall"].append(r["wall_s"])
        for method, m in by_method.items():
            rows.append({"initial_lr": lr0, "method": method, "threshold": threshold, **m})
    return rows


def markdown_table(records, digits=4):
    """ARC-style markdown table: rows = methods, column pairs = initial LRs (best metric, convergence step).

    Args:
        records: run records of one task.
        digits: decimals of the best-metric cells.

    Returns:
        The table and a line stating the convergence thresholds, or "(no runs)".

    Example:

    ```python
    from keras_autolr.harness import reports

    rec = {"initial_lr": 0.1, "method": "constant", "metric": "loss", "mode": "min",
           "history": {"val_loss": [2.0, 1.0]}, "steps": [5, 10], "best": 1.0,
           "test": {"loss": 1.1}, "wall_s": 0.5}
    table = reports.markdown_table([rec])
    assert table.splitlines()[2].startswith("| constant | 1.0000")
    ```
    """
    rows = summarize(records)
    if not rows:
        return "(no runs)"
    lrs = sorted({r["initial_lr"] for r in rows}, reverse=True)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    metric = records[0]["metric"]
    head = "| method | " + " | ".join(f"LR {lr:g}: best val {metric} | LR {lr:g}: converge step" for lr in lrs) + " |"
    sep = "|---|" + "---|---|" * len(lrs)
    lines = [head, sep]
    cell = {(r["initial_lr"], r["method"]): r for r in rows}
    for m in methods:
        parts = []
        for lr in lrs:
            r = cell.get((lr, m))
            if r is None:
                parts += ["", ""]
                continue
            parts.append(metrics_lib.format_mean_std(r["best"], digits))
            conv = metrics_lib.format_mean_std(r["converge"], 0)
            parts.append(conv)
        lines.append(f"| {m} | " + " | ".join(parts) + " |")
    thresholds = ", ".join(f"LR {r['initial_lr']:g}: {r['threshold']:.4f}" for r in
                           {r["initial_lr"]: r for r in rows}.values())
    lines.append("")
    lines.append(f"Convergence thresholds (worst per-run best at each initial LR): {thresholds}. "
                 "A count like (3/5) means only 3 of 5 runs reached it.")
    return "\n".join(lines)


def pyplot():
    """`matplotlib.pyplot` on the headless Agg backend, or None (with a note) without matplotlib.

    Example:

    ```python
    from keras_autolr.harness import reports

    plt = reports.pyplot()
    assert plt is None or hasattr(plt, "subplots")
    ```
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping plot (pip install 'keras-autolr[plots]').")
        return None
    return plt


def plot_curves(records, path, title=None):
    """ARC Figure 3 style: LR (top) and validation metric (bottom) per method, one column per initial LR.

    The first seed of each method is drawn, as in the paper's figure.

    Args:
        records: run records of one task.
        path: image file to write (folders are created).
        title: figure title.

    Returns:
        `path`, or None without matplotlib.

    Example:

    ```python
    from keras_autolr.harness import reports

    rec = {"initial_lr": 0.1, "method": "constant", "metric": "loss", "mode": "min",
           "history": {"val_loss": [2.0, 1.0]}, "steps": [5, 10], "lr": [0.1, 0.1]}
    out = reports.plot_curves([rec], "plots/curves.png", title="demo")
    assert out is None or out == "plots/curves.png"
    ```
    """
    plt = pyplot()
    if plt is None:
        return None
    lrs = sorted({r["initial_lr"] for r in records}, reverse=True)
    fig, axes = plt.subplots(2, len(lrs), figsize=(4.5 * len(lrs), 6), squeeze=False, sharex="col")
    for j, lr0 in enumerate(lrs):
        seen = set()
        for r in records:
            if r["initial_lr"] != lr0 or r["method"] in seen:
                continue  # first seed of each method, as in the paper's figure
            seen.add(r["method"])
            key = "val_" + r["metric"]
            axes[0, j].plot(r["steps"], r["lr"], label=r["method"])
            vals = r["history"].get(key, [])
            axes[1, j].plot(r["steps"][: len(vals)], [np.nan if v is None else v for v in vals], label=r["method"])
        axes[0, j].set_yscale("log")
        axes[0, j].set_title(f"initial LR {lr0:g}")
        axes[1, j].set_xlabel("step")
    axes[0, 0].set_ylabel("learning rate")
    axes[1, 0].set_ylabel("val " + records[0]["metric"])
    axes[1, -1].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
