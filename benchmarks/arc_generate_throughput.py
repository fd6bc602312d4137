"""ARC data generation throughput: v1 (`generate.py`, one chain at a time) vs v2 (`generate_vmap.py`).

Each engine runs in its own single-threaded process (XLA and TF intra-op
threads 1) for `--budget` seconds of chains, rounds interleaved so CPU-speed
drift hits both alike. Both use the same cycle length `--n` (the rate in
samples per second scales as 1/n, so a fixed n keeps the ratio fair) and
the paper's 10 main cycles. v1 cycles through its zoo (TF backend, as the
CLI runs it); v2 cycles through `--v2-configs` (task:family pairs of the v2
zoo, groups of `--group-size` chains, JAX backend). v2's one-time
compilation per (task, family, group size) is timed separately and left
out of the budget: a real run compiles each once and then trains for hours.

Printed per engine: samples/s (usable samples after the ground-truth
correction's checkability filter, and raw decisions), trained examples/s
(main and branch batches times batch size) and samples per 1000 trained
batches; then the ratios v2/v1. v2's epochs are 50-125 batches against
v1's 8, and its models are larger, so samples/s understates the work done.

Usage:
    python benchmarks/arc_generate_throughput.py --budget 90 --rounds 1 --n 2
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_V2 = "mnist1d_mlp:adam,friedman_mlp:sgd_momentum,shakespeare_transformer:rmsprop"


def _usable(rec):
    from keras_autolr.pipelines.arc import labels

    args = [rec[k] for k in ("train_loss", "val_loss", "lr", "branch_val", "chosen")]
    return sum(1 for _ in labels.chain_samples(*args))


def _batches(rec):
    per_cycle = rec["n"] * rec["steps_per_epoch"]
    return per_cycle * (len(rec["lr"]) + 3 * len(rec["chosen"]))


def _worker_v1(args):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from keras_autolr.harness import zoo
    from keras_autolr.pipelines.arc.generate import run_chain

    names = zoo.names()
    tot = dict(chains=0, samples=0, decisions=0, batches=0, examples=0)
    start, c = time.time(), args.round * 1000
    while time.time() - start < args.budget:
        task = zoo.get_task(names[c % len(names)])
        rec = run_chain(task, c, base_seed=0, n=args.n)
        tot["chains"] += 1
        tot["samples"] += _usable(rec)
        tot["decisions"] += len(rec["chosen"])
        tot["batches"] += _batches(rec)
        tot["examples"] += _batches(rec) * task.batch_size
        c += 1
    tot["seconds"] = time.time() - start
    return tot


def _worker_v2(args):
    from keras_autolr.harness import zoo_v2
    from keras_autolr.pipelines.arc import generate_vmap as gv

    configs = [tuple(p.split(":")) for p in args.v2_configs.split(",")]

    def spec(name, family, n):
        static = {"momentum": 0.9} if family == "sgd_momentum" else {}
        return {"task": zoo_v2.get_task(name), "family": family, "n": n, "static": static}

    t0 = time.time()
    for name, family in configs:  # compile each program once (main K and branches 3K members)
        s = spec(name, family, 1)
        gv.run_group(s, [gv.draw_chain(c, s["task"], family) for c in range(args.group_size)], cycles=2)
    compile_s = time.time() - t0
    tot = dict(chains=0, samples=0, decisions=0, batches=0, examples=0, groups=0)
    start, g = time.time(), args.round * 1000
    while time.time() - start < args.budget:
        name, family = configs[g % len(configs)]
        s = spec(name, family, args.n)
        ids = range(g * args.group_size, (g + 1) * args.group_size)
        for rec in gv.run_group(s, [gv.draw_chain(c, s["task"], family) for c in ids]):
            tot["chains"] += 1
            tot["samples"] += _usable(rec)
            tot["decisions"] += len(rec["chosen"])
            tot["batches"] += _batches(rec)
            tot["examples"] += _batches(rec) * s["task"].batch_size
        tot["groups"] += 1
        g += 1
    tot["seconds"] = time.time() - start
    tot["compile_seconds"] = compile_s
    return tot


def _run(engine, args, r):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS="--xla_cpu_multi_thread_eigen=false "
               "intra_op_parallelism_threads=1", OMP_NUM_THREADS="1",
               KERAS_BACKEND="tensorflow" if engine == "v1" else "jax", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, "--worker", engine, "--budget", str(args.budget), "--n", str(args.n),
           "--round", str(r), "--group-size", str(args.group_size), "--v2-configs", args.v2_configs]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _line(name, t):
    s = t["seconds"]
    extra = f", compile {t['compile_seconds']:.0f} s (once, excluded)" if "compile_seconds" in t else ""
    return (f"  {name}: {t['chains']} chains in {s:.0f} s{extra}\n"
            f"      samples/s {t['samples'] / s:.3f} (decisions/s {t['decisions'] / s:.3f}), "
            f"trained examples/s {t['examples'] / s:,.0f}, batches/s {t['batches'] / s:.1f}, "
            f"samples per 1000 batches {1000 * t['samples'] / t['batches']:.2f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=90.0, help="seconds of chains per engine per round")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--n", type=int, default=2, help="epochs per cycle, both engines")
    p.add_argument("--group-size", type=int, default=8, help="v2 chains per compiled group")
    p.add_argument("--v2-configs", default=DEFAULT_V2, help="comma-separated task:family pairs of the v2 zoo")
    p.add_argument("--worker", choices=["v1", "v2"], help=argparse.SUPPRESS)
    p.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps((_worker_v1 if args.worker == "v1" else _worker_v2)(args)))
        return
    print(f"ARC generation throughput, one thread per engine, budget {args.budget:.0f} s x {args.rounds} "
          f"round(s), n={args.n} epochs per cycle, 10 main cycles; v2 groups of {args.group_size}: {args.v2_configs}")
    totals = {"v1": [], "v2": []}
    for r in range(args.rounds):
        for engine in ("v1", "v2"):
            totals[engine].append(_run(engine, args, r))
    agg = {}
    for engine, runs in totals.items():
        agg[engine] = {k: sum(t.get(k, 0) for t in runs) for k in runs[0]}
        print(_line(engine, agg[engine]))
    v1, v2 = agg["v1"], agg["v2"]
    rate = lambda t, k: t[k] / t["seconds"]  # noqa: E731
    print(f"  ratio v2/v1: samples/s {rate(v2, 'samples') / rate(v1, 'samples'):.2f}x, "
          f"trained examples/s {rate(v2, 'examples') / rate(v1, 'examples'):.2f}x")


if __name__ == "__main__":
    main()
