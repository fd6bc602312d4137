"""Turns generated chains into (window, label) samples with corrected labels.

Label (paper section 3.2, step 5): the branch with the lowest validation loss,
0 raise / 1 keep / 2 lower.

Ground-truth correction (paper section 3.3): the main cycle after a decision
re-runs the chosen branch from the same checkpoint (with a different batch
order), giving a second value `l*` for that branch. If putting `l*` in place
of the branch's value changes the relative order of the three losses, noise
is deciding, so the label becomes "keep". Decisions with no later main cycle
(the last one of a diverged chain) cannot be checked and are dropped.

Example:

```python
from keras_autolr.pipelines.arc.labels import corrected_label

print(corrected_label([0.113, 0.112, 0.111], chosen=2, repeat=0.109))  # 2 (order kept)
print(corrected_label([0.113, 0.112, 0.111], chosen=2, repeat=0.115))  # 1 (order changed)
```

`build_dataset("data/arc.h5")` turns a file written by
`keras_autolr.pipelines.arc.generate` into the training set.
"""

import math

import numpy as np

from keras_autolr.pipelines.arc.chains_file import iter_chains
from keras_autolr.runtime.arc.controller import KEEP
from keras_autolr.runtime.arc.preprocessing import CYCLES, build_window

__all__ = ["raw_label", "corrected_label", "chain_samples", "build_dataset"]


def raw_label(branch_losses):
    """Returns the index (0 raise, 1 keep, 2 lower) of the lowest branch validation loss, or None.

    Non-finite losses (diverged branches) never win; all non-finite gives None.

    Args:
        branch_losses: validation losses of the (raise, keep, lower) branches.

    Example:

    ```python
    from keras_autolr.pipelines.arc.labels import raw_label

    print(raw_label([0.5, 0.4, float("nan")]))  # 1
    print(raw_label([float("inf")] * 3))        # None
    ```
    """
    losses = np.asarray(branch_losses, dtype=np.float64)
    if not np.any(np.isfinite(losses)):
        return None
    return int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))


def _order(losses):
    return tuple(np.argsort(np.where(np.isfinite(losses), losses, np.inf), kind="stable"))


def corrected_label(branch_losses, chosen, repeat):
    """The label after the section 3.3 check against the repeated branch.

    Args:
        branch_losses: validation losses of the (raise, keep, lower) branches.
        chosen: index of the branch training continued with.
        repeat: validation loss of the re-run of that branch (None or
            non-finite if the re-run diverged).

    Returns:
        0, 1 or 2, or None when every branch diverged.

    Example:

    ```python
    from keras_autolr.pipelines.arc.labels import corrected_label

    losses = [0.20, 0.25, 0.30]  # raise was best
    print(corrected_label(losses, chosen=0, repeat=0.21))  # 0: the re-run keeps the order
    print(corrected_label(losses, chosen=0, repeat=0.27))  # 1: it reorders them, noise decides
    ```
    """
    label = raw_label(branch_losses)
    if label is None:
        return None
    losses = np.asarray(branch_losses, dtype=np.float64)
    if repeat is None or not math.isfinite(repeat):
        # The re-run diverged where the first run did not: noise dominates.
        return KEEP if math.isfinite(losses[chosen]) else label
    second = losses.copy()
    second[chosen] = repeat
    return label if _order(losses) == _order(second) else KEEP


def chain_samples(train_loss, val_loss, lr, branch_val, chosen):
    """Yields (k, window, raw label, corrected label) for each checkable decision of one chain.

    Decision k's window is built from main cycles k-2..k; its check uses the
    last validation loss of main cycle k + 1.

    Args:
        train_loss: per-batch training losses, one row per main cycle.
        val_loss: per-epoch validation losses, one row per main cycle.
        lr: the LR of each main cycle.
        branch_val: the (raise, keep, lower) branch losses after each cycle.
        chosen: the branch training went on with after each cycle.

    Example:

    ```python
    import numpy as np
    from keras_autolr.pipelines.arc.labels import chain_samples

    train = np.linspace(2.0, 1.0, 3 * 8).reshape(3, 8)  # 3 main cycles, 8 batches each
    val = np.array([[1.9], [1.5], [1.2]])                # 1 epoch per cycle
    samples = list(chain_samples(train, val, [1e-3, 1.618e-3, 2.6e-3],
                                 branch_val=[[1.5, 1.6, 1.7], [1.2, 1.3, 1.4]], chosen=[0, 0]))
    print([(k, w.shape, raw, fixed) for k, w, raw, fixed in samples])  # two decisions, both raise
    ```
    """
    cycles = len(lr)
    for k in range(len(chosen)):
        if k + 1 >= cycles:
            break  # no re-run to check against
        lo = max(0, k - CYCLES + 1)
        window = build_window(
            [train_loss[i] for i in range(lo, k + 1)],
            [val_loss[i] for i in range(lo, k + 1)],
            [lr[i] for i in range(lo, k + 1)],
        )
        raw = raw_label(branch_val[k])
        if raw is None:
            continue
        fixed = corrected_label(branch_val[k], int(chosen[k]), float(val_loss[k + 1][-1]))
        yield k, window, raw, fixed


def build_dataset(path):
    """Builds the training set from an HDF5 file of chains.

    Only chains marked `complete` are read.

    Args:
        path: an HDF5 file written by `keras_autolr.pipelines.arc.generate`.

    Returns:
        `(x, y, meta)`: windows (N, 300, 3) float32, corrected labels (N,)
        int, and a dict of per-sample arrays `chain`, `task`, `optimizer`,
        `n`, `raw_label`.

    Raises:
        ValueError: the file holds no usable sample.

    Example:

    ```python
    import h5py
    import numpy as np
    from keras_autolr.pipelines.arc.labels import build_dataset

    # One chain in generate's layout: 3 main cycles of 2 epochs x 4 batches.
    rng = np.random.default_rng(0)
    with h5py.File("chains.h5", "w") as f:
        g = f.create_group("chain_000000")
        g["train_loss"] = 2.0 - np.cumsum(rng.random((3, 8)), axis=1) / 10
        g["val_loss"], g["lr"] = g["train_loss"][:, 3::4], [1e-3, 1e-3, 6.18e-4]
        g["branch_val"], g["chosen"] = rng.random((2, 3)), [1, 2]
        g.attrs.update(chain_id=0, task="toy", optimizer="adam", n=2, complete=True)
    x, y, meta = build_dataset("chains.h5")
    print(x.shape, y, meta["raw_label"])  # (2, 300, 3) and the labels of the 2 decisions
    ```
    """
    xs, ys = [], []
    meta = {"chain": [], "task": [], "optimizer": [], "n": [], "raw_label": []}
    with iter_chains(path) as chains:
        for _, g in chains:
            args = [g[key][()] for key in ("train_loss", "val_loss", "lr", "branch_val", "chosen")]
            for _, window, raw, fixed in chain_samples(*args):
                xs.append(window)
                ys.append(fixed)
                meta["chain"].append(int(g.attrs["chain_id"]))
                meta["task"].append(str(g.attrs["task"]))
                meta["optimizer"].append(str(g.attrs["optimizer"]))
                meta["n"].append(int(g.attrs["n"]))
                meta["raw_label"].append(raw)
    if not xs:
        raise ValueError(f"{path} holds no usable samples; run `keras-autolr arc generate` first.")
    meta = {k: np.asarray(v) for k, v in meta.items()}
    return np.stack(xs), np.asarray(ys, dtype=np.int64), meta
