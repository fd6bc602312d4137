"""Shared command line for grid reproductions (method x initial LR x seed).

Every script built on `grid_main` takes `--smoke` (seconds, run by CI: one
seed, the middle initial LR), `--size small` (the CPU-sized default) or
`--size full` (the paper's sizes, for a GPU; e.g. `KERAS_BACKEND=jax`),
`--seeds`, `--methods`, `--lrs`, `--epochs` and `--out`. Runs are resumable
(finished runs are skipped); each run's JSON, `table.md` (papers' format) and
`curves.png` land in `--out`, together with `COMMAND` (the exact command line
that produced them).
"""

import argparse
import os
import pathlib
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def grid_main(description, task, methods, initial_lrs, seeds, default_out, options=None,
              optimizer=None, argv=None, title=None):
    from keras_autolr.harness import reports, runner
    from keras_autolr.runtime import io as io_lib

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--smoke", action="store_true", help="tiny size for CI (overrides --size)")
    ap.add_argument("--size", default="small", choices=["smoke", "small", "full"])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    ap.add_argument("--methods", nargs="+", default=list(methods))
    ap.add_argument("--lrs", type=float, nargs="+", default=None, help="default: the task's (smoke: the middle one)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--out", default=str(default_out))
    a = ap.parse_args(argv)
    size = "smoke" if a.smoke else a.size
    seeds = a.seeds[:1] if a.smoke else a.seeds
    # A smoke proves every method runs end to end: one LR is enough (as in arc_cifar10.py).
    lrs = a.lrs or ([list(initial_lrs)[len(initial_lrs) // 2]] if a.smoke else list(initial_lrs))
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    io_lib.atomic_write_text(out / "COMMAND", " ".join(shlex.quote(x) for x in [sys.executable.split("/")[-1], *sys.argv]) + "\n")
    print(f"{description}: {task}, size {size}, methods {a.methods}, LRs {lrs}, seeds {seeds} -> {out}")
    records = runner.run_grid(task, a.methods, lrs, seeds, out, size=size, epochs=a.epochs,
                              optimizer=optimizer, options=options)
    table = reports.markdown_table(records)
    header = f"# {title or description}\n\nTask `{task}`, size `{size}`, seeds {seeds}.\n\n"
    io_lib.atomic_write_text(out / "table.md", header + table + "\n")
    reports.plot_curves(records, out / "curves.png", title=title or description)
    print(table)
    return records


ARC_PAPER_METHODS = ("arc", "constant", "cosine_restarts", "exponential")


def write_arc_tables(records, out, heading, plot_title):
    """ARC Tables 3 / 5: the paper's four methods (their own convergence threshold), then all.

    The paper compares ARC with BLR, CCD and ED only, and the convergence
    threshold (worst best score at each LR) is taken over those; the second
    table adds ReduceLROnPlateau and ScheduleFreeAdamW with their own threshold.
    """
    from keras_autolr.harness import reports
    from keras_autolr.runtime import io as io_lib

    paper = [r for r in records if r["method"] in ARC_PAPER_METHODS]
    table = reports.markdown_table(paper) if paper else "(no runs)"
    out = pathlib.Path(out)
    io_lib.atomic_write_text(
        out / "table.md",
        f"# {heading}\n\n"
        f"## Paper methods (ARC, BLR=constant, CCD=cosine_restarts, ED=exponential)\n\n{table}\n\n"
        f"## All methods\n\n{reports.markdown_table(records)}\n")
    reports.plot_curves(records, out / "curves.png", title=plot_title)
    print(table)
