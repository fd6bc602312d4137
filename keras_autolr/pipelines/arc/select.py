"""Picks the ARC controller to ship among candidates, by a proxy task (the reference's last step).

Held-out weighted accuracy (Eq. 1) chooses the best epoch of one training run,
but it scores single decisions, not what a controller does to a whole run. The
reference therefore trained several candidates and kept the one that trained
a proxy task best (WRN-28 on SVHN at initial LRs 0.1 / 1e-3 / 1e-5, five runs
each). Here the default proxy is `fashion_mnist_resnet9` (the shape of our
CIFAR-10 evaluation on another data set) at Adam 1e-2 / 1e-3 / 1e-4: one LR
too high, one good, one too low, so a candidate has to both lower and raise.

The rule is pure (`proxy_scores`, `choose`): a candidate's score is the mean
over initial LRs of its mean best validation metric over seeds; the highest
wins (lowest for a "min" metric), and a tie (within float32 round-off) keeps
the earlier candidate, so list the incumbent first. `select_controller` runs
the proxy (resumable: one JSON record per run) and writes `selection.json` and
`selection.md`.

Example (command line; `select_controller` below runs one in miniature):

```
keras-autolr arc select --candidates saved_controllers/arc.keras runs/c1.keras --out runs/arc_select
```
"""

import json
import pathlib

import numpy as np

from keras_autolr.harness import runner
from keras_autolr.harness import tasks as tasks_lib

__all__ = ["PROXY_TASK", "PROXY_LRS", "proxy_scores", "choose", "select_controller", "selection_table"]

PROXY_TASK = "fashion_mnist_resnet9"
PROXY_LRS = (1e-2, 1e-3, 1e-4)


def proxy_scores(records):
    """Scores each label: mean best metric per initial LR over seeds, and their mean.

    Args:
        records: run records with a `"label"` (candidate or baseline name),
            `"initial_lr"`, `"best"`; a diverged run (`best` None) counts as the
            worst possible score, so it can never help a candidate.

    Returns:
        `{label: {"per_lr": {"1e-3": mean, ...}, "std_per_lr": {...}, "score": mean,
        "runs": n, "mode": "max" | "min"}}`, initial LRs keyed as `f"{lr:g}"`.

    Raises:
        ValueError: no records.

    Example:

    ```python
    from keras_autolr.pipelines.arc.select import proxy_scores

    records = [{"label": "arc", "initial_lr": lr, "best": best}
               for lr, best in [(1e-2, 0.80), (1e-2, 0.84), (1e-3, 0.90), (1e-3, None)]]
    scores = proxy_scores(records)
    print(scores["arc"]["per_lr"])  # {'0.01': 0.82, '0.001': -inf}: a diverged run sinks its LR
    ```
    """
    if not records:
        raise ValueError("No proxy runs to score; run the proxy first.")
    mode = records[0].get("mode", "max")
    worst = -np.inf if mode == "max" else np.inf
    by = {}
    for r in records:
        best = r["best"] if r["best"] is not None else worst
        by.setdefault(r["label"], {}).setdefault(float(r["initial_lr"]), []).append(best)
    out = {}
    for label, per in by.items():
        items = sorted(per.items(), reverse=True)
        # String keys ("0.001") so the report survives a JSON round trip unchanged.
        means = {f"{lr:g}": float(np.mean(v)) for lr, v in items}
        out[label] = {
            "per_lr": means,
            "std_per_lr": {f"{lr:g}": float(np.std(v)) if np.all(np.isfinite(v)) else float("nan")
                           for lr, v in items},
            "score": float(np.mean(list(means.values()))),
            "runs": int(sum(len(v) for v in per.values())),
            "mode": mode,
        }
    return out


def choose(scores, candidates, tol=1e-6):
    """The candidate (a label in `scores`) with the best score; ties keep the earlier one.

    Scores closer than `tol` are a tie: metrics arrive as float32 (an accuracy
    of 0.886 is 0.88599998...), so equal results can differ in the last bits.

    Args:
        scores: `proxy_scores` output.
        candidates: labels to choose among, incumbent first.
        tol: the largest score difference that is still a tie.

    Raises:
        ValueError: a candidate has no score.

    Example:

    ```python
    from keras_autolr.pipelines.arc.select import choose

    scores = {"arc": {"score": 0.886, "mode": "max"}, "c1": {"score": 0.88599998, "mode": "max"},
              "c2": {"score": 0.87, "mode": "max"}}
    print(choose(scores, ["arc", "c1", "c2"]))  # arc: c1 only ties it
    ```
    """
    missing = [c for c in candidates if c not in scores]
    if missing:
        raise ValueError(f"No proxy score for candidates {missing}.")
    sign = 1.0 if scores[candidates[0]]["mode"] == "max" else -1.0
    best = candidates[0]
    for c in candidates[1:]:
        if sign * (scores[c]["score"] - scores[best]["score"]) > tol:
            best = c
    return best


def _label(path):
    return pathlib.Path(path).name.removesuffix(".keras")


def select_controller(candidates, out_dir, *, task=PROXY_TASK, initial_lrs=PROXY_LRS, seeds=(0, 1),
                      size="small", frequency=3, optimizer="adam", baselines=(), log=print):
    """Runs ARC with each candidate controller on the proxy task and picks one.

    Args:
        candidates: `.keras` controller paths, incumbent first (file names
            must differ: they label the runs).
        out_dir: where run records (`runs/<label>/*.json`, resumable) and the
            report go.
        task: proxy task name (must not be an evaluation task).
        initial_lrs, seeds, size, optimizer: the proxy grid.
        frequency: ARC's epochs per decision.
        baselines: method names (e.g. "constant") run on the same grid for
            reference; they are reported but never chosen.

    Returns:
        The report dict (also written to `out_dir/selection.json`).

    Raises:
        ValueError: two candidates share a file name.
        FileNotFoundError: a candidate file does not exist.

    Example:

    ```python
    from keras_autolr.pipelines.arc.select import select_controller
    from keras_autolr.runtime.arc import default_controller_path

    # The shipped controller alone, on a tiny stand-in proxy (digits, 2 epochs).
    report = select_controller([default_controller_path()], "arc_select", task="digits_cnn",
                               initial_lrs=(1e-3,), seeds=(0,), size="smoke", frequency=1,
                               log=lambda s: None)
    print(report["chosen"], report["scores"]["arc"]["per_lr"])  # arc {'0.001': ...}
    ```
    """
    labels = [_label(c) for c in candidates]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Candidate file names must differ (they label the runs): {labels}.")
    for c in candidates:
        if not pathlib.Path(c).is_file():
            raise FileNotFoundError(f"Candidate controller {c} does not exist.")
    task_obj = tasks_lib.get(task)
    out_dir = pathlib.Path(out_dir)
    jobs = [(lab, "arc", {"controller": str(c), "frequency": frequency})
            for lab, c in zip(labels, candidates)]
    jobs += [(b, b, None) for b in baselines]
    records = runner.run_grid(task_obj, jobs, initial_lrs, seeds, out_dir, size=size,
                              optimizer=optimizer, log=log)
    scores = proxy_scores(records)
    chosen = choose(scores, labels)
    report = {
        "task": task_obj.name, "size": size, "optimizer": optimizer, "initial_lrs": list(initial_lrs),
        "seeds": list(seeds), "frequency": frequency,
        "candidates": dict(zip(labels, map(str, candidates))),
        "baselines": list(baselines), "scores": scores, "chosen": chosen,
        "chosen_path": str(candidates[labels.index(chosen)]),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "selection.json").write_text(json.dumps(report, indent=1))
    (out_dir / "selection.md").write_text(selection_table(report))
    return report


def selection_table(report):
    """Returns the Markdown table of a selection report (candidates first, then baselines).

    Args:
        report: the dict `select_controller` returns (or its `selection.json`).

    Example:

    ```python
    from keras_autolr.pipelines.arc.select import choose, proxy_scores, selection_table

    records = [{"label": label, "initial_lr": 1e-3, "best": best}
               for label, best in [("arc", 0.91), ("c1", 0.89), ("constant", 0.90)]]
    scores = proxy_scores(records)
    report = {"task": "toy", "size": "smoke", "optimizer": "adam", "seeds": [0], "frequency": 3,
              "initial_lrs": [1e-3], "candidates": {"arc": "arc.keras", "c1": "c1.keras"},
              "baselines": ["constant"], "scores": scores, "chosen": choose(scores, ["arc", "c1"])}
    print(selection_table(report))
    ```
    """
    lrs = [f"{float(x):g}" for x in report["initial_lrs"]]
    head = "| controller | " + " | ".join(f"LR {lr}" for lr in lrs) + " | score |"
    rows = [f"# ARC controller selection on `{report['task']}` ({report['size']}, {report['optimizer']}, "
            f"seeds {report['seeds']}, ARC every {report['frequency']} epochs)", "",
            "Best validation metric, mean ± std over seeds; score = mean over initial LRs.", "",
            head, "|" + "---|" * (len(lrs) + 2)]
    order = list(report["candidates"]) + list(report["baselines"])
    for label in order:
        s = report["scores"][label]
        name = f"**{label}** (chosen)" if label == report["chosen"] else (
            label if label in report["candidates"] else f"{label} (baseline)")
        cells = [f"{s['per_lr'][lr]:.4f} ± {s['std_per_lr'][lr]:.4f}" for lr in lrs]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {s['score']:.4f} |")
    return "\n".join(rows) + "\n"
