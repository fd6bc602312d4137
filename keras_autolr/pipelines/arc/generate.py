"""Generates ARC's training data (paper section 3.2, Figure 1), resumably.

One *chain* trains one zoo task with a random optimizer (Adam, SGD, RMSprop),
a random initial LR `r` from the task's range and a random cycle length `n`
in 1..10 epochs, for 10 cycles (10n epochs of main training):

1. train n epochs at LR r (the *main* cycle), checkpoint C (weights and
   optimizer state);
2. from C, train n epochs at each of 1.618r, r, 0.618r (the *branches*) and
   record each branch's final validation loss;
3. drop the worst branch, set r to one of the two others at random, reload C
   and go to 1.

Decision k's input is the main cycles k-2..k; its label is the best branch.
The next main cycle repeats the chosen branch from the same checkpoint with a
different batch order, which gives the second opinion used by the ground
truth correction (`labels.py`). The last main cycle only serves that purpose,
so a chain yields 9 samples for 37n epochs.

Only raw series are stored (HDF5, one group per chain): per-batch train loss
and per-epoch val loss of every main cycle, the LR of every cycle, and the
branches' validation losses. Preprocessing and labelling happen when the
dataset is built, so both can change without regenerating.

Resuming: chains are numbered; shard `i/k` runs the chains with
`id % k == i`; finished chains are marked `complete` and skipped on restart,
unfinished ones are discarded. A kill at any instant loses at most the chain
being run: the file is written by `chains_file.ChainsWriter`, which never
edits it in place. Shard files merge with `merge`.

Example (command line):

```
keras-autolr arc generate --out data/arc_shard0.h5 --chains 400 --shard 0/2
keras-autolr arc generate --merge data/arc_shard*.h5 --out data/arc.h5
```
"""

import contextlib
import math
import os
import time

import keras
import numpy as np

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.harness import zoo
from keras_autolr.runtime.arc.controller import FACTORS
from keras_autolr.harness.methods import make_optimizer
from keras_autolr.pipelines.arc.chains_file import ChainsWriter, iter_chains
from keras_autolr.runtime.snapshot import Snapshot, restore, snapshot  # noqa: F401  (re-exported)

__all__ = ["Snapshot", "snapshot", "restore", "TaskRunner", "run_chain", "generate", "merge", "parse_shard"]

OPTIMIZERS = ("adam", "sgd", "rmsprop")
MAIN_CYCLES = 10


class TaskRunner:
    """Trains one compiled task model epoch by epoch with a tight loop.

    `train_on_batch` returns each batch's own loss (metrics are reset per
    call), which is exactly the per-batch signal ARC records.

    Args:
        task: a zoo task (`keras_autolr.harness.zoo.get_task`).
        optimizer: `"adam"`, `"sgd"` or `"rmsprop"`.
        learning_rate: the initial LR.
        seed: seeds Keras and the model's initialisation.

    Example:

    ```python
    import numpy as np
    from keras_autolr.harness import zoo
    from keras_autolr.pipelines.arc.generate import TaskRunner

    runner = TaskRunner(zoo.get_task("digits_mlp"), "adam", 1e-3, seed=0)
    train, val = runner.train_epochs(1, np.random.default_rng(0))
    print(len(train), len(val))  # 8 1: one loss per batch, one validation loss per epoch
    ```
    """

    def __init__(self, task, optimizer, learning_rate, seed):
        self.task = task
        data = task.data()
        self.x, self.y, self.xv, self.yv = data.x_train, data.y_train, data.x_val, data.y_val
        keras.utils.set_random_seed(seed)
        self.model = task.build_model(seed=seed)
        self.model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss=zoo.make_loss(task.loss))
        # Build the optimizer so snapshots include its state from the start.
        self.model.optimizer.build(self.model.trainable_variables)

    def set_lr(self, value):
        lr_lib.set_learning_rate(self.model.optimizer, value)

    def val_loss(self):
        return float(self.model.test_on_batch(self.xv, self.yv))

    def train_epochs(self, epochs, rng):
        """Trains `epochs` epochs; returns (per-batch losses, per-epoch val losses)."""
        t = self.task
        train, val = [], []
        for _ in range(epochs):
            idx = rng.integers(0, len(self.x), size=(t.steps_per_epoch, t.batch_size))
            for b in idx:
                train.append(float(self.model.train_on_batch(self.x[b], self.y[b])))
            val.append(self.val_loss())
            if not math.isfinite(val[-1]) or not math.isfinite(train[-1]):
                break
        return train, val


def _draw(task, chain_id, base_seed):
    rng = np.random.default_rng([base_seed, chain_id])
    optimizer = OPTIMIZERS[rng.integers(len(OPTIMIZERS))]
    lo, hi = task.lr_range
    if optimizer == "sgd":
        lo, hi = lo * task.sgd_scale, hi * task.sgd_scale
    r = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    n = int(rng.integers(1, 11))
    return rng, optimizer, r, n


def run_chain(task, chain_id, base_seed=0, cycles=MAIN_CYCLES, n=None):
    """Runs one chain; returns a dict of numpy arrays and attributes.

    Stops early (fewer cycles) if the main training diverges. The optimizer,
    initial LR and cycle length are drawn from `(base_seed, chain_id)`.

    Args:
        task: a zoo task (`keras_autolr.harness.zoo.get_task`).
        chain_id: the chain's number (seeds its draws and batch orders).
        base_seed: seed shared by all chains of a data set.
        cycles: main cycles (the paper: 10).
        n: epochs per cycle; `None` uses the drawn one (1..10).

    Returns:
        A dict with `task`, `optimizer`, `n`, `steps_per_epoch` and the
        arrays `train_loss` (cycles, n * steps), `val_loss` (cycles, n),
        `lr` (cycles,), `branch_val` (cycles - 1, 3) and `chosen`
        (cycles - 1,), the branch training went on with.

    Example:

    ```python
    from keras_autolr.harness import zoo
    from keras_autolr.pipelines.arc.generate import run_chain

    rec = run_chain(zoo.get_task("digits_mlp"), chain_id=0, cycles=2, n=1)
    print(rec["optimizer"], rec["train_loss"].shape, rec["branch_val"].shape)  # rmsprop (2, 8) (1, 3)
    ```
    """
    rng, optimizer, r, n_drawn = _draw(task, chain_id, base_seed)
    n = n or n_drawn
    runner = TaskRunner(task, optimizer, r, seed=int(rng.integers(2**31)))
    main_train, main_val, lrs, branch_val, chosen = [], [], [], [], []
    state = None
    for k in range(cycles):
        if state is not None:
            restore(runner.model, state)
        runner.set_lr(r)
        tr, va = runner.train_epochs(n, np.random.default_rng([base_seed, chain_id, k, 99]))
        if len(va) < n or not all(map(math.isfinite, tr + va)):
            break
        main_train.append(tr)
        main_val.append(va)
        lrs.append(r)
        if k == cycles - 1:
            break
        state = snapshot(runner.model)
        losses = []
        for j, f in enumerate(FACTORS):
            restore(runner.model, state)
            runner.set_lr(r * f)
            _, bva = runner.train_epochs(n, np.random.default_rng([base_seed, chain_id, k, j]))
            last = bva[-1] if len(bva) == n else math.inf
            losses.append(last if math.isfinite(last) else math.inf)
        worst = int(np.argmax(losses))
        keep = [j for j in range(3) if j != worst]
        pick = int(keep[rng.integers(2)])
        branch_val.append(losses)
        chosen.append(pick)
        r = r * FACTORS[pick]
    c = len(main_train)
    return {
        "task": task.name,
        "optimizer": optimizer,
        "n": n,
        "steps_per_epoch": task.steps_per_epoch,
        "train_loss": np.asarray(main_train, "float32").reshape(c, n * task.steps_per_epoch),
        "val_loss": np.asarray(main_val, "float32").reshape(c, n),
        "lr": np.asarray(lrs, "float64"),
        # branch_val[k] and chosen[k] belong to the decision after main cycle k.
        "branch_val": np.asarray(branch_val, "float64").reshape(-1, 3),
        "chosen": np.asarray(chosen, "int8"),
    }


def parse_shard(text):
    """Parses `"i/k"` into (i, k) with 0 <= i < k.

    Args:
        text: the `--shard` value, e.g. `"0/2"`.

    Raises:
        ValueError: not of the form `i/k` with 0 <= i < k.

    Example:

    ```python
    from keras_autolr.pipelines.arc.generate import parse_shard

    print(parse_shard("1/4"))  # (1, 4): chains 1, 5, 9, ...
    ```
    """
    try:
        i, k = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like 'i/k' (e.g. 0/2), got {text!r}.") from None
    if not 0 <= i < k:
        raise ValueError(f"--shard {text}: need 0 <= i < k.")
    return i, k


def generate(out, chains, shard="0/1", tasks=None, base_seed=0, log=print, time_limit=None, large=False):
    """Generates chains `0..chains-1` of this shard into `out`, skipping finished ones.

    Chain `c` trains task `tasks[c % len(tasks)]` (its `large` variant if
    `large`; keep one setting per file). Unfinished chains left by a crash
    are deleted and rerun.

    Args:
        out: the HDF5 file to create or extend.
        chains: the number of chains over all shards.
        shard: `"i/k"`: run the chains with `id % k == i`.
        tasks: zoo task names (default: the whole zoo).
        base_seed: seed shared by all chains of a data set.
        log: progress printer (one line per chain).
        time_limit: seconds after which no new chain is started.
        large: use the tasks' 8x-data-per-epoch variants.

    Returns:
        The number of samples (decisions) in the file.

    Raises:
        ValueError: `out` exists but is not a readable HDF5 file.
        keras_autolr.runtime.io.OutputLockedError: another process is writing
            `out` (it holds `out + ".lock"`), or another program has it open
            for writing.
        OSError: (ENOSPC) the disk is full; the finished chains are kept
            (`chains_file.ChainsWriter`) and a rerun goes on.

    Example:

    ```python
    from keras_autolr.pipelines.arc.generate import generate

    # base_seed 3 draws 1-epoch cycles for chain 0, so this takes seconds.
    print(generate("arc.h5", chains=1, tasks=["digits_mlp"], base_seed=3))  # 9
    print(generate("arc.h5", chains=1, tasks=["digits_mlp"], base_seed=3))  # 9 again: chain 0 is done
    ```
    """
    i, k = parse_shard(shard)
    tasks = list(tasks or zoo.names())
    start = time.time()
    with ChainsWriter(out) as w:
        for c in range(chains):
            if c % k != i or c in w:
                continue
            if time_limit and time.time() - start > time_limit:
                log(f"time limit reached after {time.time() - start:.0f}s")
                break
            t0 = time.time()
            task = zoo.get_task(tasks[c % len(tasks)], large=large)
            rec = run_chain(task, c, base_seed)
            w.write(c, rec, base_seed)
            log(
                f"chain {c} {task.name} {rec['optimizer']} n={rec['n']} "
                f"samples={len(rec['chosen'])} {time.time() - t0:.1f}s"
            )
        return w.samples()


def merge(paths, out):
    """Copies the complete chains of several shard files into `out`.

    Args:
        paths: shard files (`out` itself is skipped if listed).
        out: the HDF5 file to create or extend; chains already in it are kept.

    Returns:
        The number of chains in `out`.

    Raises:
        ValueError: `out` exists but is not a readable HDF5 file.
        FileNotFoundError: a file of `paths` does not exist.
        keras_autolr.runtime.io.OutputLockedError: another process is writing `out`.

    Example:

    ```python
    import h5py
    from keras_autolr.pipelines.arc.generate import merge

    for i in range(2):  # two one-chain shards (real ones come from `generate`)
        with h5py.File(f"shard{i}.h5", "w") as f:
            f.create_group(f"chain_{i:06d}").attrs["complete"] = True
    print(merge(["shard0.h5", "shard1.h5"], "arc.h5"))  # 2
    ```
    """
    with ChainsWriter(out) as w, contextlib.ExitStack() as sources:
        extra = []
        for p in paths:
            if os.path.abspath(p) != os.path.abspath(out):
                extra += sources.enter_context(iter_chains(p))
        w.fold(extra)
        return len(w)
