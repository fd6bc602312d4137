"""ARC's v2 data generator: many chains trained at once in one compiled JAX program (JAX backend).

The chains are v1's (`keras_autolr.pipelines.arc.generate`, paper section
3.2): main cycles of `n` epochs at LR `r`, three branches at 1.618r / r /
0.618r from each main cycle's checkpoint, the worst branch dropped, training
going on from the checkpoint with one of the other two. What changes is how
they are run and what they train:

* a *group* of `K` chains shares a task (`keras_autolr.harness.zoo_v2`:
  epochs of 50+ batches, residual CNN, transformer LM, regression), an
  optimizer family (Adam, AdamW, SGD with momentum, RMSprop) and a cycle
  length; each chain has its own initialisation, initial LR, batch orders
  and continuous optimizer hyperparameters (betas, weight decay, rho);
* one epoch of all `K` main cycles is one XLA program: `model.stateless_call`
  and the Keras optimizer's `stateless_apply` under `jax.vmap` over the
  chains' (trainable, non-trainable, optimizer variables, hyperparameters,
  batch order), `jax.lax.scan` over the epoch's batches, the validation loss
  at the end. A decision's branches are `3K` more members of the same
  program (one more compilation): the checkpoint is the main cycle's final
  state, repeated three times, each copy with its own LR;
* initial LRs are drawn around the task's good LR: a fraction
  (`poor_fraction`) 10-100x too small, the rest log-uniform in 0.1-10x.

The output is v1's HDF5 layout (one group per chain, the same datasets and
attributes, plus `engine="vmap"` and the chain's draws as extra attributes),
so `labels.build_dataset` and `keras-autolr arc train` read it unchanged.
Chain `c` belongs to group `c // group_size`; shard `i/k` runs the groups
with `group % k == i` (a group is the unit of work); finished chains are
marked `complete`, and a restart reruns only a group's missing chains
(chains are independent, so a smaller group trains them the same way).

Example (command line; the JAX backend is required):

```
KERAS_BACKEND=jax keras-autolr arc generate --engine vmap --out data/arc_v2_0.h5 --chains 1200 --shard 0/2
```
"""

import math
import time

import keras
import numpy as np

from keras_autolr.harness import tasks as tasks_lib
from keras_autolr.harness import zoo_v2
from keras_autolr.pipelines.arc.chains_file import ChainsWriter
from keras_autolr.pipelines.arc.generate import parse_shard
from keras_autolr.runtime.arc.controller import FACTORS

__all__ = ["FAMILIES", "draw_group", "draw_chain", "branch_lrs", "run_group", "generate"]

FAMILIES = ("adam", "adamw", "sgd_momentum", "rmsprop")
MAIN_CYCLES = 10
# SGD's momentum is read by a Python `if` in Keras's update step, so it cannot
# be a traced per-chain value: it is drawn per group from these (one compile each).
_SGD_MOMENTA = (0.8, 0.9, 0.95)


def draw_group(group, base_seed=0, tasks=None, max_cycle_epochs=10):
    """What a group of chains shares: task, optimizer family, cycle length, static hyperparameters.

    Args:
        group: the group's number.
        base_seed: seed shared by all chains of a data set.
        tasks: v2 zoo task names or `zoo_v2.TaskV2`s; group `g` trains `tasks[g % len(tasks)]`.
        max_cycle_epochs: the cycle length `n` is drawn from 1..max_cycle_epochs.

    Returns:
        A dict with `task` (a `TaskV2`), `family`, `n` and `static` (the
        hyperparameters fixed for the whole compiled program).

    Example:

    ```python
    from keras_autolr.pipelines.arc.generate_vmap import draw_group

    g = draw_group(0, tasks=["friedman_mlp"])
    print(g["task"].name, g["family"], g["n"], g["static"])
    ```
    """
    tasks = list(tasks or zoo_v2.names())
    rng = np.random.default_rng([base_seed, group, 71])
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    n = int(rng.integers(1, max_cycle_epochs + 1))
    static = {"momentum": float(_SGD_MOMENTA[int(rng.integers(len(_SGD_MOMENTA)))])} if family == "sgd_momentum" else {}
    task = tasks[group % len(tasks)]
    return {"task": zoo_v2.get_task(task) if isinstance(task, str) else task, "family": family, "n": n,
            "static": static}


def draw_chain(chain_id, task, family, base_seed=0, poor_fraction=0.35):
    """One chain's own draws: initial LR (and its regime), traced hyperparameters, init seed.

    With probability `poor_fraction` the initial LR is 10-100x below the
    task's good LR (regime `"poor"`), otherwise log-uniform in 0.1-10x of it
    (regime `"wide"`).

    Args:
        chain_id: the chain's number.
        task: its `zoo_v2.TaskV2`.
        family: its optimizer family (`FAMILIES`).
        base_seed: seed shared by all chains of a data set.
        poor_fraction: the fraction of chains that start 10-100x too low.

    Returns:
        A dict with `chain_id`, `lr`, `regime`, `hparams` (per-chain
        optimizer attributes) and `seed` (model initialisation).

    Example:

    ```python
    from keras_autolr.harness import zoo_v2
    from keras_autolr.pipelines.arc.generate_vmap import draw_chain

    c = draw_chain(5, zoo_v2.get_task("friedman_mlp"), "adamw")
    print(c["regime"], c["lr"], sorted(c["hparams"]))  # ... ['beta_1', 'beta_2', 'weight_decay']
    ```
    """
    rng = np.random.default_rng([base_seed, chain_id])
    good = task.good_lr(family)
    if rng.random() < poor_fraction:
        regime, lr = "poor", good * 10.0 ** -rng.uniform(1.0, 2.0)
    else:
        regime, lr = "wide", good * 10.0 ** rng.uniform(-1.0, 1.0)
    hp = {}
    if family in ("adam", "adamw"):
        hp["beta_1"] = float(rng.uniform(0.85, 0.95))
        hp["beta_2"] = float(1.0 - 10.0 ** rng.uniform(-3.0, -2.0))  # 0.99 .. 0.999
    if family == "adamw":
        hp["weight_decay"] = float(10.0 ** rng.uniform(-4.0, -1.0))
    if family == "rmsprop":
        hp["rho"] = float(rng.uniform(0.85, 0.95))
    return {"chain_id": int(chain_id), "lr": float(lr), "regime": regime, "hparams": hp,
            "seed": int(rng.integers(2**31))}


def branch_lrs(lrs):
    """The branches' LRs for main-cycle LRs `lrs`: rows (1.618r, r, 0.618r), one per chain.

    Args:
        lrs: the chains' main-cycle LRs, shape (K,).

    Example:

    ```python
    from keras_autolr.pipelines.arc.generate_vmap import branch_lrs

    print(branch_lrs([1e-3]))  # [[0.001618 0.001    0.000618]]
    ```
    """
    return np.asarray(lrs, "float64")[:, None] * np.asarray(FACTORS, "float64")[None, :]


def _make_optimizer(family, static):
    if family == "adam":
        return keras.optimizers.Adam(1.0)
    if family == "adamw":
        return keras.optimizers.AdamW(1.0)
    if family == "sgd_momentum":
        return keras.optimizers.SGD(1.0, momentum=static["momentum"])
    if family == "rmsprop":
        return keras.optimizers.RMSprop(1.0)
    raise ValueError(f"Unknown optimizer family {family!r}; choose one of {FAMILIES}.")


class _Trainer:
    """K members of one (task, family, static hyperparameters): init, set LRs, train one epoch."""

    def __init__(self, task, family, static):
        import jax

        if keras.backend.backend() != "jax":
            raise RuntimeError("The vmap ARC generator needs the JAX backend: run it with KERAS_BACKEND=jax "
                               "(or use the v1 engine, `keras-autolr arc generate` without --engine vmap).")
        self.task, self.family = task, family
        self.model = task.build(seed=0)
        self.optimizer = _make_optimizer(family, static)
        self.optimizer.build(self.model.trainable_variables)
        self.lr_index = [v.path for v in self.optimizer.variables].index(self.optimizer._learning_rate.path)
        loss = tasks_lib.make_loss(task.loss)
        # A loss function ("mse") gives per-example values; `compile` averages them, as does this.
        self.loss_fn = lambda y, pred: keras.ops.mean(loss(y, pred))
        x, y, xv, yv = task.data()
        self.data = tuple(jax.numpy.asarray(a) for a in (x, y, xv, yv))
        self.n_train = len(x)
        self.epoch = jax.jit(jax.vmap(self._member_epoch, in_axes=(0, 0, 0, None)))

    def _apply(self, ov, grads, tv, hp):
        # Keras optimizers read their hyperparameters as attributes when the
        # update is traced; setting them to this member's traced values makes
        # them per-chain inputs of the one compiled program.
        saved = {k: getattr(self.optimizer, k) for k in hp}
        try:
            for k, v in hp.items():
                setattr(self.optimizer, k, v)
            return self.optimizer.stateless_apply(ov, grads, tv)
        finally:
            for k, v in saved.items():
                setattr(self.optimizer, k, v)

    def _member_epoch(self, state, hp, idx, data):
        import jax

        x, y, xv, yv = data

        def step(carry, ix):
            tv, ntv, ov = carry

            def loss_of(tv):
                pred, new_ntv = self.model.stateless_call(tv, ntv, x[ix], training=True)
                return self.loss_fn(y[ix], pred), new_ntv

            (loss, ntv), grads = jax.value_and_grad(loss_of, has_aux=True)(tv)
            tv, ov = self._apply(ov, grads, tv, hp)
            return (tv, ntv, ov), loss

        state, losses = jax.lax.scan(step, state, idx)
        pred, _ = self.model.stateless_call(state[0], state[1], xv, training=False)
        return state, losses, self.loss_fn(yv, pred)

    def init(self, seeds, hparams):
        """Stacked fresh states (one model built per seed) and stacked per-member hyperparameters."""
        import jax.numpy as jnp

        tvs, ntvs = [], []
        for s in seeds:
            m = self.task.build(seed=int(s))
            tvs.append([v.value for v in m.trainable_variables])
            ntvs.append([v.value for v in m.non_trainable_variables])
        stack = lambda rows: [jnp.stack(col) for col in zip(*rows)]  # noqa: E731
        ov = [jnp.stack([v.value] * len(seeds)) for v in self.optimizer.variables]
        hp = {k: jnp.asarray([h[k] for h in hparams], "float32") for k in (hparams[0] if hparams else {})}
        return (stack(tvs), stack(ntvs) if ntvs[0] else [], ov), hp

    def with_lr(self, state, lrs):
        import jax.numpy as jnp

        ov = list(state[2])
        ov[self.lr_index] = jnp.asarray(lrs, ov[self.lr_index].dtype)
        return state[0], state[1], ov

    def orders(self, rngs):
        """One epoch's batch order per member: a fresh permutation, cut into batches."""
        t = self.task
        use = t.steps_per_epoch * t.batch_size
        return np.stack([r.permutation(self.n_train)[:use].reshape(t.steps_per_epoch, t.batch_size) for r in rngs])

    def train(self, state, hp, epochs, rngs):
        """`epochs` epochs; returns (state, train losses (M, epochs*steps), val losses (M, epochs))."""
        tr, va = [], []
        for _ in range(epochs):
            state, losses, val = self.epoch(state, hp, self.orders(rngs).astype("int32"), self.data)
            tr.append(np.asarray(losses, "float32"))
            va.append(np.asarray(val, "float32"))
        return state, np.concatenate(tr, axis=1), np.stack(va, axis=1)


_TRAINERS = {}


def _trainer(task, family, static):
    key = (task, family, tuple(sorted(static.items())))
    if key not in _TRAINERS:
        _TRAINERS[key] = _Trainer(task, family, static)
    return _TRAINERS[key]


def _repeat(tree, times):
    import jax

    return jax.tree_util.tree_map(lambda a: a.repeat(times, axis=0), tree)


def run_group(group, chains, base_seed=0, cycles=MAIN_CYCLES):
    """Runs a group's chains together; returns one v1-layout record per chain.

    A chain stops (fewer cycles) at its first main cycle with a non-finite
    loss; a branch with a non-finite loss scores `inf`.

    Args:
        group: `draw_group`'s dict (task, family, n, static).
        chains: `draw_chain` dicts of the group's chains.
        base_seed: seed shared by all chains of a data set (batch orders).
        cycles: main cycles per chain (the paper: 10).

    Returns:
        A list of dicts as `generate.run_chain` returns them, each with an
        `attrs` dict of the chain's draws.

    Example:

    ```python
    import os, subprocess, sys

    code = '''
    import dataclasses
    from keras_autolr.harness import zoo_v2
    from keras_autolr.pipelines.arc.generate_vmap import draw_chain, run_group
    task = dataclasses.replace(zoo_v2.get_task("friedman_mlp"), steps_per_epoch=3)
    group = {"task": task, "family": "adam", "n": 1, "static": {}}
    recs = run_group(group, [draw_chain(c, task, "adam") for c in range(2)], cycles=2)
    print([r["train_loss"].shape for r in recs])  # [(2, 3), (2, 3)]
    '''
    env = dict(os.environ, KERAS_BACKEND="jax")  # the engine needs JAX
    subprocess.run([sys.executable, "-c", code.replace("\\n    ", "\\n")], env=env, check=True)
    ```
    """
    task, family, n = group["task"], group["family"], group["n"]
    trainer = _trainer(task, family, group["static"])
    k_chains = len(chains)
    state, hp = trainer.init([c["seed"] for c in chains], [c["hparams"] for c in chains])
    hp3 = {key: v.repeat(3) for key, v in hp.items()}
    r = np.asarray([c["lr"] for c in chains], "float64")
    picks = [np.random.default_rng([base_seed, c["chain_id"], 7]) for c in chains]
    alive = np.ones(k_chains, bool)
    rec = [{"train": [], "val": [], "lr": [], "branch_val": [], "chosen": []} for _ in chains]
    for k in range(cycles):
        rngs = [np.random.default_rng([base_seed, c["chain_id"], k, 99]) for c in chains]
        state, tr, va = trainer.train(trainer.with_lr(state, r), hp, n, rngs)
        ok = np.isfinite(tr).all(axis=1) & np.isfinite(va).all(axis=1)
        alive &= ok
        for i in np.flatnonzero(alive):
            rec[i]["train"].append(tr[i])
            rec[i]["val"].append(va[i])
            rec[i]["lr"].append(r[i])
        if k == cycles - 1 or not alive.any():
            break
        lrs = branch_lrs(r)  # (K, 3); members are chain-major: chain i's branches are 3i..3i+2
        rngs = [np.random.default_rng([base_seed, c["chain_id"], k, j]) for c in chains for j in range(3)]
        _, btr, bva = trainer.train(trainer.with_lr(_repeat(state, 3), lrs.reshape(-1)), hp3, n, rngs)
        finite = np.isfinite(btr).all(axis=1) & np.isfinite(bva).all(axis=1)
        losses = np.where(finite, bva[:, -1], np.inf).astype("float64").reshape(k_chains, 3)
        for i in np.flatnonzero(alive):
            worst = int(np.argmax(losses[i]))
            keep = [j for j in range(3) if j != worst]
            pick = int(keep[picks[i].integers(2)])
            rec[i]["branch_val"].append(losses[i])
            rec[i]["chosen"].append(pick)
            r[i] = lrs[i, pick]
    out = []
    for c, x in zip(chains, rec):
        m = len(x["train"])
        steps = n * task.steps_per_epoch
        attrs = {"engine": "vmap", "lr_regime": c["regime"], "initial_lr": c["lr"],
                 "good_lr": task.good_lr(family), "batch_size": task.batch_size, "seed": c["seed"],
                 **{f"opt_{key}": v for key, v in {**group["static"], **c["hparams"]}.items()}}
        out.append({
            "task": task.name, "optimizer": family, "n": n, "steps_per_epoch": task.steps_per_epoch,
            "train_loss": np.asarray(x["train"], "float32").reshape(m, steps),
            "val_loss": np.asarray(x["val"], "float32").reshape(m, n),
            "lr": np.asarray(x["lr"], "float64"),
            "branch_val": np.asarray(x["branch_val"], "float64").reshape(-1, 3),
            "chosen": np.asarray(x["chosen"], "int8"),
            "attrs": attrs,
        })
    return out


def generate(out, chains, shard="0/1", tasks=None, base_seed=0, log=print, time_limit=None, group_size=16,
             max_cycle_epochs=10, poor_fraction=0.35, cycles=MAIN_CYCLES):
    """Generates chains `0..chains-1` of this shard's groups into `out`, skipping finished ones.

    Args:
        out: the HDF5 file to create or extend (v1's layout).
        chains: the number of chains over all shards.
        shard: `"i/k"`: run the groups with `group % k == i`.
        tasks: v2 zoo task names or `TaskV2`s (default: the whole v2 zoo).
        base_seed: seed shared by all chains of a data set.
        log: progress printer (one line per group).
        time_limit: seconds after which no new group is started.
        group_size: chains per group (`K`; keep one value per data set).
        max_cycle_epochs: cycle lengths are drawn from 1..max_cycle_epochs.
        poor_fraction: the fraction of chains starting 10-100x below the good LR.
        cycles: main cycles per chain (the paper: 10).

    Returns:
        The number of samples (decisions) in the file.

    Raises:
        RuntimeError: Keras is not on the JAX backend.
        ValueError: `out` exists but is not a readable HDF5 file.
        keras_autolr.runtime.io.OutputLockedError: another process is writing `out`.
        OSError: (ENOSPC) the disk is full; the finished chains are kept and a
            rerun goes on.

    Example:

    ```python
    import os, subprocess, sys

    code = '''
    import dataclasses
    from keras_autolr.harness import zoo_v2
    from keras_autolr.pipelines.arc.generate_vmap import generate
    task = dataclasses.replace(zoo_v2.get_task("friedman_mlp"), steps_per_epoch=3)
    print(generate("arc_v2.h5", chains=2, tasks=[task], group_size=2, max_cycle_epochs=1, cycles=3))  # 4
    '''
    env = dict(os.environ, KERAS_BACKEND="jax")  # the engine needs JAX
    subprocess.run([sys.executable, "-c", code.replace("\\n    ", "\\n")], env=env, check=True)
    ```
    """
    i, k = parse_shard(shard)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}.")
    start = time.time()
    with ChainsWriter(out) as w:
        for g in range(math.ceil(chains / group_size)):
            ids = [c for c in range(g * group_size, min(chains, (g + 1) * group_size)) if c not in w]
            if g % k != i or not ids:
                continue
            if time_limit and time.time() - start > time_limit:
                log(f"time limit reached after {time.time() - start:.0f}s")
                break
            t0 = time.time()
            spec = draw_group(g, base_seed, tasks, max_cycle_epochs)
            members = [draw_chain(c, spec["task"], spec["family"], base_seed, poor_fraction) for c in ids]
            recs = run_group(spec, members, base_seed, cycles)
            for c, rec in zip(ids, recs):
                rec["attrs"].update(group=g, group_size=group_size)
                w.write(c, rec, base_seed)
            log(f"group {g} {spec['task'].name} {spec['family']} n={spec['n']} chains={len(ids)} "
                f"samples={sum(len(r['chosen']) for r in recs)} {time.time() - t0:.1f}s")
        return w.samples()

