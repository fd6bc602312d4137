"""ARC controller v2 after generation: merge, reserve, train, evaluate, select, compare, decide (issue 19.4).

The rule is `reproductions/arc_v2_protocol.md`, fixed before any result;
this script applies it mechanically. Given the generation shards
(`KERAS_BACKEND=jax keras-autolr arc generate --engine vmap ...`, see
`arc_v2.sh`), its stages are:

1. `merge`: the shards into one file (`generate.merge`), then the reserved
   test groups (`reserve_groups`: 15% of each task's groups) into `test.h5`
   and the rest into `train.h5`;
2. `train`: the candidates, `train_controller(train.h5, arc_v2_s{k}.keras,
   epochs=300, seed=k)`, k = 0..9 (`--shard i/k` splits them over processes);
3. `evaluate`: every candidate and v1 on the chains neither saw (set A: v1's
   zoo, `chains_500.h5` ids >= 231; set B: `test.h5`), confusion matrices
   and weighted accuracy, with and without the validation column;
4. `select`: the proxy selection among the candidates (`select_controller`,
   its defaults: the rule v1's selection used);
5. `leaderboard`: `arc@lr/10` on the 13 workloads x 3 seeds with the chosen
   controller (the `arc` method's `controller` option), beside v1's
   committed records (`--shard` splits the cells);
6. `decide`: `board_measures` + `decide` -> `decision.json` and `summary.md`.

Every stage skips work whose output exists (candidate reports, evaluated
labels, run records), so rerunning continues. `--smoke` writes two tiny
synthetic shards in the chains file's layout and a synthetic set A, trains
two 1-epoch candidates and runs the proxy and the leaderboard cells (v1's
too) at their smoke sizes, so the whole flow runs in seconds.

    python reproductions/arc_v2.py --smoke --out /tmp/arc_v2_smoke
    python reproductions/arc_v2.py --estimate-only       # the time each stage still needs
    bash reproductions/arc_v2.sh                         # generation + every stage, in the background
"""

import argparse
import json
import math
import os
import pathlib
import shlex
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.runtime import io as io_lib  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
STAGES = ("merge", "train", "evaluate", "select", "leaderboard", "decide")
CANDIDATES = 10  # the reference's final pick was among 10 (reference-facts.md)
EPOCHS = 300  # the paper's recipe
CHAINS = 1120  # 70 groups of 16: 10,080 decisions
RESERVE_FRACTION, RESERVE_SEED = 0.15, 2026
V1_MIN_CHAIN = 231  # v1 trained (and chose its epoch) on chains 0-230 only
SEEDS = (0, 1, 2)
TOL = 1e-9
# Smoke: targets a 2-epoch smoke run can reach (as `keras-autolr leaderboard --smoke`).
SMOKE_TARGETS = {"digits_mlp_lb": 0.2, "diabetes_mlp_lb": 2.0}
# Rates for --estimate-only where nothing is measured yet: the estimate of the v2
# engine (20 CPU hours per 10,000 decisions) and v1's candidates (1.06 ms per sample-epoch).
GEN_SECONDS_PER_DECISION = 20 * 3600 / 10000
TRAIN_SECONDS_PER_SAMPLE_EPOCH = 1.06e-3


# -- the pure parts: reserving test groups, the measures, the rule ---------------------------------


def reserve_groups(groups, tasks, fraction=RESERVE_FRACTION, seed=RESERVE_SEED):
    """The groups reserved for testing: in each task, a seeded draw of max(1, round(fraction x its groups)).

    `groups[i]` and `tasks[i]` describe chain i; a group's chains share a task.
    """
    by_task = {}
    for g, t in zip(groups, tasks):
        by_task.setdefault(str(t), set()).add(int(g))
    rng = np.random.default_rng(seed)
    reserved = set()
    for t in sorted(by_task):
        ids = sorted(by_task[t])
        k = max(1, int(round(fraction * len(ids))))
        reserved.update(int(g) for g in rng.choice(ids, size=min(k, len(ids)), replace=False))
    return reserved


def heldout_score(weighted_accuracies):
    """H: the mean weighted accuracy over the held-out sets (each zoo counts equally); None if one is missing."""
    values = list(weighted_accuracies.values())
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None
    return float(np.mean(values))


def board_measures(v1_records, v2_records):
    """T, S and R of each controller from its leaderboard records, compared with the other only.

    Returns `{"v1": {...}, "v2": {...}, "workloads": {...}}`: per side `runs`,
    `reached` (T), `score_steps` (S), `score_cpu` (or wall seconds when a
    record lacks CPU times), `mean_rank` (R); per workload each side's
    fraction of seeds that reached the target and mean best metric.
    """
    from keras_autolr.harness import leaderboard

    records = [dict(r, method=side) for side, recs in (("v1", v1_records), ("v2", v2_records)) for r in recs]
    out = {side: {"runs": len(recs), "reached": sum(bool(r.get("reached_target")) for r in recs),
                  "score_steps": None, "score_cpu": None, "mean_rank": None}
           for side, recs in (("v1", v1_records), ("v2", v2_records))}
    out["workloads"] = {}
    if not v1_records or not v2_records:
        return out
    summary = leaderboard.aggregate(records)
    ranks = summary["mean_rank"] or {}
    for side in ("v1", "v2"):
        out[side].update(score_steps=summary["scores_steps"][side], score_cpu=summary["scores"][side],
                         score_basis=summary["score_basis"], mean_rank=ranks.get(side))
    out["workloads"] = {w: {side: {"reached": c[side]["reached"], "best_metric": c[side]["best_metric"]}
                            for side in ("v1", "v2") if side in c}
                        for w, c in summary["workloads"].items()}
    return out


def decide(heldout, board, expected_runs, tol=TOL):
    """The protocol's verdict from the held-out scores H and the leaderboard measures T, S, R.

    Args:
        heldout: `{"v1": H, "v2": H}` (`heldout_score`; None: missing).
        board: `board_measures` output (only `runs`, `reached`, `score_steps`
            and `mean_rank` of each side are read).
        expected_runs: the leaderboard runs each side must have (39).
        tol: scores closer than this are a tie (a tie keeps v1).

    Returns:
        `{"verdict": "ship_default" | "ship_non_default" | "incomplete",
        "checks": {name: {"v1", "v2", "passed"}}, "missing": [...]}`.
    """
    v1, v2 = board["v1"], board["v2"]
    missing = [f"held-out score of {s}" for s in ("v1", "v2") if heldout.get(s) is None]
    missing += [f"{s}: {b['runs']} of {expected_runs} leaderboard runs" for s, b in (("v1", v1), ("v2", v2))
                if b["runs"] < expected_runs]
    missing += [f"{s}: {k}" for s, b in (("v1", v1), ("v2", v2)) for k in ("score_steps", "mean_rank")
                if b.get(k) is None]
    if missing:
        return {"verdict": "incomplete", "checks": {}, "missing": missing}
    checks = {
        "1 held-out H: v2 > v1": (heldout["v1"], heldout["v2"], heldout["v2"] > heldout["v1"] + tol),
        "2 targets reached T: v2 >= v1": (v1["reached"], v2["reached"], v2["reached"] >= v1["reached"]),
        "3 score on steps S: v2 >= v1": (v1["score_steps"], v2["score_steps"],
                                         v2["score_steps"] >= v1["score_steps"] - tol),
        "4 mean rank R: v2 < v1": (v1["mean_rank"], v2["mean_rank"], v2["mean_rank"] < v1["mean_rank"] - tol),
    }
    checks = {k: {"v1": a, "v2": b, "passed": bool(ok)} for k, (a, b, ok) in checks.items()}
    verdict = "ship_default" if all(c["passed"] for c in checks.values()) else "ship_non_default"
    return {"verdict": verdict, "checks": checks, "missing": []}


# -- the stages -------------------------------------------------------------------------------------


class Paths:
    """Where each stage reads and writes."""

    def __init__(self, out, data_dir, v1_chains, v1_leaderboard):
        self.out, self.data = pathlib.Path(out), pathlib.Path(data_dir)
        self.v1_chains, self.v1_board = pathlib.Path(v1_chains), pathlib.Path(v1_leaderboard)
        self.merged, self.train, self.test = (self.data / f for f in ("chains_v2.h5", "train.h5", "test.h5"))
        self.candidates, self.proxy = self.out / "candidates", self.out / "proxy"
        self.heldout, self.board = self.out / "heldout.json", self.out / "leaderboard"

    def candidate(self, seed):
        return self.candidates / f"arc_v2_s{seed}.keras"

    def shards(self):
        return sorted(self.data.glob("shard*.h5"))


def _chain_attrs(path):
    from keras_autolr.pipelines.arc.chains_file import iter_chains

    with iter_chains(path) as chains:  # pending chains too: a generation still running has some
        return {name: dict(g.attrs) for name, g in chains}


def stage_merge(p, expected_chains, log):
    """Merges the shards, then writes the reserved groups to test.h5 and the rest to train.h5."""
    from keras_autolr.pipelines.arc import generate

    if p.train.exists() and p.test.exists():
        log(f"merge: {p.train} and {p.test} exist (delete them to re-merge)")
        return
    shards = p.shards()
    if not shards and not p.merged.exists():
        raise SystemExit(f"No generation shards in {p.data} (shard*.h5): run the generation of arc_v2.sh first.")
    count = generate.merge([str(s) for s in shards], str(p.merged))
    if count < expected_chains:
        raise SystemExit(f"{p.merged} has {count} complete chains, fewer than --chains {expected_chains}: "
                         "finish the generation (rerun arc_v2.sh), or pass the smaller --chains to go on.")
    attrs = _chain_attrs(p.merged)
    names = sorted(attrs)
    # Chains written without a group (v1's engine) are their own group.
    groups = [int(attrs[n].get("group", 10**9 + int(attrs[n]["chain_id"]))) for n in names]
    reserved = reserve_groups(groups, [attrs[n]["task"] for n in names])
    for dest, keep in ((p.test, True), (p.train, False)):
        with io_lib.atomic_path(dest) as tmp, h5py.File(p.merged, "r") as src, h5py.File(tmp, "w") as dst:
            for n, g in zip(names, groups):
                if (g in reserved) == keep:
                    src.copy(src[n], dst, n)
    n_test = sum(g in reserved for g in groups)
    log(f"merge: {count} chains; {n_test} in {len(reserved)} reserved groups -> {p.test}, "
        f"{count - n_test} -> {p.train}")


def stage_train(p, seeds, epochs, log):
    """Trains the candidates whose report does not exist yet."""
    from keras_autolr.pipelines.arc import train

    for s in seeds:
        report = p.candidate(s).with_suffix(".json")
        if report.exists():
            continue
        log(f"train: candidate s{s}, {epochs} epochs")
        p.candidates.mkdir(parents=True, exist_ok=True)
        # The report is written last: a killed run leaves no report, so it is retrained.
        rep = train.train_controller(str(p.train), str(p.candidate(s)), epochs=epochs, seed=s,
                                     log=lambda line: log(f"  s{s} {line}"))
        io_lib.atomic_write_json(report, rep)


def _heldout_sets(p, v1_min_chain):
    from keras_autolr.pipelines.arc import labels

    x, y, meta = labels.build_dataset(str(p.v1_chains))
    keep = meta["chain"] >= v1_min_chain
    xb, yb, _ = labels.build_dataset(str(p.test))
    return {"A": (x[keep], y[keep]), "B": (xb, yb)}


def stage_evaluate(p, labels_paths, v1_min_chain, log):
    """Confusion matrices and weighted accuracies of every controller on sets A and B."""
    from keras_autolr.pipelines.arc import train
    from keras_autolr.runtime.arc import load_controller

    done = json.loads(p.heldout.read_text()) if p.heldout.exists() else {}
    todo = [(label, path) for label, path in labels_paths if label not in done]
    if not todo:
        return done
    sets = _heldout_sets(p, v1_min_chain)
    rng = np.random.default_rng(0)
    for label, path in todo:
        model = load_controller(str(path))
        res = {}
        for name, (x, y) in sets.items():
            res[name] = train.evaluate(model, x, y)
            res[name]["no_val"] = train.evaluate(model, train.zero_val_column(x, 1.0, rng), y)
        res["H"] = heldout_score({k: res[k]["weighted_accuracy"] for k in sets})
        done[label] = res
        io_lib.atomic_write_json(p.heldout, done)
        log(f"evaluate: {label}: A {res['A']['weighted_accuracy']:.4f}, B {res['B']['weighted_accuracy']:.4f}")
    return done


def stage_select(p, seeds, smoke, log):
    from keras_autolr.pipelines.arc import select

    kwargs = dict(task="digits_cnn", initial_lrs=(1e-3,), seeds=(0,), size="smoke", frequency=1) if smoke else {}
    return select.select_controller([str(p.candidate(s)) for s in seeds], str(p.proxy), log=log, **kwargs)


def _entries(controller):
    import dataclasses

    from keras_autolr.harness import leaderboard

    v1 = [e for e in leaderboard.lr_variants(leaderboard.ENTRIES["arc"]) if e.name == "arc@lr/10"][0]
    v2 = dataclasses.replace(v1, name="arc_v2@lr/10", options={**v1.options, "controller": str(controller)})
    return v1, v2


def _cells(entry, workloads, seeds, smoke):
    from keras_autolr.harness import leaderboard

    return [leaderboard.Cell(leaderboard.WORKLOADS[w], entry, int(s), smoke) for w in workloads for s in seeds]


def _targets(p, smoke):
    if smoke:
        return dict(SMOKE_TARGETS)
    path = p.v1_board / "targets.json"
    if not path.exists():
        raise SystemExit(f"No leaderboard targets at {path}: calibrate the leaderboard first.")
    return json.loads(path.read_text())["targets"]


def _load(folder, cells):
    out = []
    for c in cells:
        path = pathlib.Path(folder) / "runs" / f"{c.key}.json"
        if path.exists():
            out.append(json.loads(path.read_text()))
    return out


def stage_leaderboard(p, controller, workloads, seeds, shard, smoke, log):
    """Runs the v2 cells not yet recorded (and, in a smoke, v1's: its committed ones are full-size)."""
    import keras

    from keras_autolr.harness import leaderboard

    v1, v2 = _entries(controller)
    targets = _targets(p, smoke)
    if smoke:
        leaderboard.run_cells(_cells(v1, workloads, seeds, smoke), p.v1_board, targets, progress=False)
    backends = {r.get("backend") for r in _load(p.v1_board, _cells(v1, workloads, seeds, smoke))} - {None}
    if backends and backends != {keras.backend.backend()}:
        raise SystemExit(f"v1's records ran on {sorted(backends)}; run this stage with KERAS_BACKEND="
                         f"{sorted(backends)[0]} so both controllers are timed on the same backend.")
    cells = leaderboard.shard(_cells(v2, workloads, seeds, smoke), *shard)
    log(f"leaderboard: {len(cells)} cells of {v2.name} (shard {shard[0]}/{shard[1]})")
    leaderboard.run_cells(cells, p.board, targets, progress=False)


def stage_decide(p, controller, chosen, workloads, seeds, smoke, heldout, report, log):
    from keras_autolr.harness import leaderboard

    v1, v2 = _entries(controller)
    targets = _targets(p, smoke)
    rescore = lambda recs: [leaderboard.rescore(r, targets.get(r["workload"])) for r in recs]  # noqa: E731
    board = board_measures(rescore(_load(p.v1_board, _cells(v1, workloads, seeds, smoke))),
                           rescore(_load(p.board, _cells(v2, workloads, seeds, smoke))))
    h = {"v1": (heldout.get("v1") or {}).get("H"), "v2": (heldout.get(chosen) or {}).get("H")}
    decision = decide(h, board, expected_runs=len(workloads) * len(seeds))
    decision.update(chosen=chosen, chosen_path=str(controller), heldout=h, board=board,
                    protocol="reproductions/arc_v2_protocol.md", data=report.get("data"))
    io_lib.atomic_write_json(p.out / "decision.json", decision)
    io_lib.atomic_write_text(p.out / "summary.md", summary_markdown(decision, heldout, report))
    log(f"decide: {decision['verdict']}" + (f" (missing: {'; '.join(decision['missing'])})"
                                            if decision["missing"] else ""))
    return decision


def _confusion(cm):
    rows = ["| predicted \\ actual | raise | keep | lower |", "|---|---|---|---|"]
    rows += [f"| {n} | " + " | ".join(str(v) for v in row) + " |" for n, row in zip(("raise", "keep", "lower"), cm)]
    return rows


def _f(v, digits=4):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(v)
    return "-" if v is None else f"{v:.{digits}f}"


def summary_markdown(decision, heldout, report):
    """summary.md: the verdict and its four checks, then held-out, proxy and leaderboard numbers."""
    lines = ["# ARC controller v2 vs v1", "",
             f"Rule: `{decision['protocol']}` (fixed before any result). **Verdict: `{decision['verdict']}`**", ""]
    if decision["missing"]:
        lines += ["Missing: " + "; ".join(decision["missing"]), ""]
    if decision["checks"]:
        lines += ["| check | v1 | v2 | passed |", "|---|---|---|---|"]
        lines += [f"| {k} | {_f(c['v1'])} | {_f(c['v2'])} | {'yes' if c['passed'] else 'no'} |"
                  for k, c in decision["checks"].items()]
        lines.append("")
    lines += [f"v2 = proxy-chosen candidate `{decision['chosen']}` ({decision['chosen_path']}).", "",
              "## Held-out chains neither controller saw", "",
              "A: v1's zoo, chains_500.h5 ids >= 231; B: the reserved v2 groups. Weighted accuracy (Eq. 1); "
              "H = mean of A and B. Candidates other than the chosen one never enter the rule.", "",
              "| controller | WA A | WA B | H | acc A | acc B | WA A no val | WA B no val | proxy score |",
              "|---|---|---|---|---|---|---|---|---|"]
    scores = (report.get("selection") or {}).get("scores", {})
    for label, r in heldout.items():
        proxy = scores.get(label, {}).get("score", report.get("v1_proxy_score") if label == "v1" else None)
        name = f"**{label}** (chosen)" if label == decision["chosen"] else label
        lines.append(f"| {name} | {_f(r['A']['weighted_accuracy'])} | {_f(r['B']['weighted_accuracy'])} | "
                     f"{_f(r['H'])} | {_f(r['A']['accuracy'])} | {_f(r['B']['accuracy'])} | "
                     f"{_f(r['A']['no_val']['weighted_accuracy'])} | {_f(r['B']['no_val']['weighted_accuracy'])} | "
                     f"{_f(proxy)} |")
    for label in ("v1", decision["chosen"]):
        for s in ("A", "B"):
            if label in heldout:
                r = heldout[label][s]
                lines += ["", f"Confusion matrix, {label} on set {s} ({r['n']} samples):", ""]
                lines += _confusion(r["confusion"])
    board = decision["board"]
    lines += ["", "## Leaderboard from the poor initial LR (`arc@lr/10`)", "",
              "| | runs | targets reached T | score on steps S | score (CPU s) | mean rank R |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {board[s]['runs']} | {board[s]['reached']} | {_f(board[s]['score_steps'], 3)} | "
              f"{_f(board[s]['score_cpu'], 3)} | {_f(board[s]['mean_rank'], 2)} |" for s in ("v1", "v2")]
    lines += ["", "| workload | v1 reached | v1 mean best | v2 reached | v2 mean best |", "|---|---|---|---|---|"]
    for w, c in board["workloads"].items():
        cell = lambda s: (f"{c[s]['reached']:.2g} | {_f(c[s]['best_metric'])}" if s in c else "- | -")  # noqa: E731
        lines.append(f"| {w} | {cell('v1')} | {cell('v2')} |")
    data = report.get("data") or {}
    lines += ["", "## Data and candidates", ""]
    lines += [f"- {name}: {d['chains']} chains, per task {d['tasks']}"
              for name, d in data.items() if name != "candidates"]
    lines += ["", "| candidate | samples | train / own held-out | best epoch of | own held-out WA | train s |",
              "|---|---|---|---|---|---|"]
    for label, c in (data.get("candidates") or {}).items():
        lines.append(f"| {label} | - | - | - | - | - |" if c is None else
                     f"| {label} | {c['samples']} | {c['train_samples']} / {c['heldout_samples']} | "
                     f"{c['best_epoch']} of {c['epochs']} | {_f(c['own_heldout_weighted_accuracy'])} | "
                     f"{c['train_seconds']} |")
    return "\n".join(lines) + "\n"


def _data_report(p):
    out = {}
    for name, path in (("train", p.train), ("test", p.test)):
        if path.exists():
            attrs = _chain_attrs(path)
            out[name] = {"chains": len(attrs),
                         "tasks": {t: sum(a["task"] == t for a in attrs.values())
                                   for t in sorted({str(a["task"]) for a in attrs.values()})}}
    return out


# -- smoke data, the time estimate, the command line ------------------------------------------------


def write_synthetic_chains(path, chain_ids, tasks, group_size=2, cycles=4, batches=6, seed=0):
    """Chains in the generators' HDF5 layout with made-up losses (the smoke's stand-in for generation)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        for c in chain_ids:
            g = f.create_group(f"chain_{c:06d}")
            loss = np.sort(rng.random((cycles, batches)), axis=1)[:, ::-1] + np.linspace(2, 1, cycles)[:, None]
            g.update(train_loss=loss, val_loss=loss[:, -1:], lr=1e-3 * 1.618 ** rng.integers(-2, 3, cycles),
                     branch_val=rng.random((cycles - 1, 3)), chosen=rng.integers(0, 3, cycles - 1))
            g.attrs.update(chain_id=c, task=tasks[(c // group_size) % len(tasks)], optimizer="adam", n=1,
                           steps_per_epoch=batches, group=c // group_size, group_size=group_size, complete=True)


def estimate(p, candidates, epochs, chains, workloads, seeds):
    """Seconds of one process each stage still needs, from measured runs where there are some."""
    from keras_autolr.harness import leaderboard

    have = 0
    for s in p.shards():
        try:
            have += len(_chain_attrs(s))
        except (OSError, ValueError):  # another program writes it, or it is damaged: counted as none
            pass
    if p.merged.exists():
        have = max(have, len(_chain_attrs(p.merged)))
    gen = max(0, chains - have) * 9 * GEN_SECONDS_PER_DECISION
    train_samples = 0.7 * (1 - RESERVE_FRACTION) * 9 * chains
    left = [s for s in range(candidates) if not p.candidate(s).with_suffix(".json").exists()]
    trn = len(left) * epochs * train_samples * TRAIN_SECONDS_PER_SAMPLE_EPOCH
    v1_select = ROOT / "reproductions/results/arc_select/runs/arc"
    walls = [json.loads(q.read_text()).get("wall_s") or 0 for q in v1_select.glob("*.json")]
    proxy = 0.0 if (p.proxy / "selection.json").exists() else candidates * 6 * float(np.median(walls or [45.0]))
    v1, v2 = _entries("v2.keras")
    # v2's cells cost what v1's cost (same entry, same architecture): estimated from v1's records.
    pending = [c1 for c1, c2 in zip(_cells(v1, workloads, seeds, False), _cells(v2, workloads, seeds, False))
               if not (p.board / "runs" / f"{c2.key}.json").exists()]
    measured = leaderboard.load_records(p.v1_board) + leaderboard.load_records(p.v1_board / "calibration")
    board = leaderboard.estimate_seconds(pending, measured)[0] if pending and measured else 0.0
    # Evaluating a controller on the ~4,000 held-out windows: about a minute (a guess, not measured).
    return {"generate": gen, "train": trn, "evaluate": 60.0 * (candidates + 1), "select": proxy, "leaderboard": board}


def _parse_shard(text):
    i, k = (int(v) for v in text.split("/"))
    if not 0 <= i < k:
        raise SystemExit(f"--shard {text}: need 0 <= i < k.")
    return i, k


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="synthetic chains, tiny sizes (seconds; CI)")
    ap.add_argument("--out", default=None, help="results (default reproductions/results/arc_v2)")
    ap.add_argument("--data-dir", default=None, help="shard*.h5 in, merged/train/test files out "
                    "(default reproductions/work/arc_v2; smoke: <out>/work)")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--shard", default="0/1", help="i/k: this process's share of the candidates and cells")
    ap.add_argument("--chains", type=int, default=CHAINS, help="complete chains the merge must find")
    ap.add_argument("--candidates", type=int, default=CANDIDATES)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--v1-chains", default=str(ROOT / "reproductions/results/arc_controller/chains_500.h5"))
    ap.add_argument("--v1-leaderboard", default=str(ROOT / "reproductions/results/leaderboard"),
                    help="v1's committed arc@lr/10 records and targets.json")
    ap.add_argument("--threads", type=int, default=None, help="compute threads (arc_v2.sh uses 1)")
    ap.add_argument("--estimate-only", action="store_true", help="print the time each stage still needs")
    a = ap.parse_args(argv)
    from keras_autolr.harness import leaderboard
    from keras_autolr.runtime.arc import default_controller_path

    out = pathlib.Path(a.out or (pathlib.Path(tempfile.gettempdir()) / "arc_v2_smoke" if a.smoke
                                 else ROOT / "reproductions/results/arc_v2"))
    data_dir = a.data_dir or (out / "work" if a.smoke else ROOT / "reproductions/work/arc_v2")
    workloads, seeds = (list(SMOKE_TARGETS), (0,)) if a.smoke else (leaderboard.workload_names(), SEEDS)
    p = Paths(out, data_dir, out / "work/v1_chains.h5" if a.smoke else a.v1_chains,
              out / "v1_leaderboard" if a.smoke else a.v1_leaderboard)
    candidates, epochs, chains = (2, 1, 12) if a.smoke else (a.candidates, a.epochs, a.chains)
    log = lambda line: print(line, flush=True)  # noqa: E731
    if a.estimate_only:
        est = estimate(p, candidates, epochs, chains, workloads, seeds)
        for k, v in est.items():
            log(f"{k}: {v / 3600:.1f} h of one process")
        serial = est["evaluate"] + est["select"]  # one process; the other stages run on two
        log(f"total {sum(est.values()) / 3600:.1f} CPU h; on 2 processes about "
            f"{(sum(est.values()) - serial) / 7200 + serial / 3600:.1f} h of wall time")
        return 0
    if a.threads:
        import fh_common

        fh_common.limit_threads(a.threads)
    shard = _parse_shard(a.shard)
    out.mkdir(parents=True, exist_ok=True)
    if set(a.stages) == set(STAGES):  # a one-process run; arc_v2.sh's stage calls are that script's lines
        io_lib.atomic_write_text(out / "COMMAND", " ".join(shlex.quote(x) for x in ["python", *sys.argv]) + "\n")
    if a.smoke and not p.shards():
        p.data.mkdir(parents=True, exist_ok=True)
        tasks = ["friedman_mlp", "mnist1d_mlp"]
        write_synthetic_chains(p.data / "shard0.h5", range(0, chains, 2), tasks)
        write_synthetic_chains(p.data / "shard1.h5", range(1, chains, 2), tasks, seed=1)
        write_synthetic_chains(p.v1_chains, range(V1_MIN_CHAIN - 2, V1_MIN_CHAIN + 4), ["digits_mlp"], seed=2)
    all_seeds = list(range(candidates))
    report = {}
    if "merge" in a.stages:
        stage_merge(p, chains, log)
    if "train" in a.stages:
        stage_train(p, leaderboard.shard(all_seeds, *shard), epochs, log)
    trained = all(p.candidate(s).with_suffix(".json").exists() for s in all_seeds)
    heldout = json.loads(p.heldout.read_text()) if p.heldout.exists() else {}
    if not trained and set(a.stages) & {"evaluate", "select"}:
        log("evaluate / select: waiting for every candidate to be trained (stage train)")
    if "evaluate" in a.stages and trained:
        pairs = [("v1", default_controller_path())] + [(f"arc_v2_s{s}", p.candidate(s)) for s in all_seeds]
        heldout = stage_evaluate(p, pairs, V1_MIN_CHAIN, log)
    selection_path = p.proxy / "selection.json"
    if "select" in a.stages and trained and not selection_path.exists():
        stage_select(p, all_seeds, a.smoke, log)
    if selection_path.exists():
        report["selection"] = json.loads(selection_path.read_text())
    chosen = (report.get("selection") or {}).get("chosen")
    controller = p.candidate(int(chosen.rsplit("_s", 1)[1])) if chosen else None
    if "leaderboard" in a.stages and not controller:
        log("leaderboard: no candidate chosen yet (stage select)")
    if "leaderboard" in a.stages and controller:
        stage_leaderboard(p, controller, workloads, seeds, shard, a.smoke, log)
    if "decide" in a.stages:
        v1_select = ROOT / "reproductions/results/arc_select/selection.json"
        if v1_select.exists() and not a.smoke:
            report["v1_proxy_score"] = json.loads(v1_select.read_text())["scores"]["arc"]["score"]
        report["data"] = _data_report(p)
        report["data"]["candidates"] = {f"arc_v2_s{s}": _candidate_summary(p, s) for s in all_seeds}
        stage_decide(p, controller or "none", chosen, workloads, seeds, a.smoke, heldout, report, log)
    return 0


def _candidate_summary(p, seed):
    path = p.candidate(seed).with_suffix(".json")
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    return {k: r.get(k) for k in ("samples", "chains", "train_samples", "heldout_samples", "label_counts",
                                  "epochs", "best_epoch", "train_seconds")} | {
        "own_heldout_weighted_accuracy": r["heldout"]["weighted_accuracy"]}


if __name__ == "__main__":
    sys.exit(main())
