"""ARC's chains file: one HDF5 file, one group per chain, written so that no kill can tear it.

HDF5 is not crash-consistent: a process killed while it appends to an open
file can leave the file's metadata torn, after which the file cannot even be
listed (CI saw `RuntimeError: Link iteration failed` after a SIGKILL). So the
chains file is never opened for writing. A `ChainsWriter`

* writes each finished chain to its own small file in the *pending* folder
  `path + ".pending/"`, under a temporary name renamed into place
  (`runtime.io.atomic_path`), and
* *folds* the pending chains into `path`: it builds the new file under a
  temporary name from the complete chains of the old one plus the pending
  ones, renames it onto `path`, and only then deletes the pending files. It
  folds when it opens (what a killed writer left), at most every
  `fold_seconds` while it writes, and when it closes.

Killed at any instant, `path` is the old file or the new one, every finished
chain is in it or pending, and the next writer folds and removes the
leftovers (temporary files, chains already folded). Readers (`iter_chains`,
`labels.build_dataset`) see the pending chains too, so a killed run's finished
chains are usable before its resume. A reader that holds `path` open keeps
reading the old file (POSIX rename).

A writer holds `path + ".lock"` (`runtime.io.exclusive_lock`); a second one
gets `OutputLockedError`.

Example:

```python
import numpy as np
from keras_autolr.pipelines.arc.chains_file import ChainsWriter, iter_chains

rec = {"train_loss": np.ones(8), "val_loss": np.ones(2), "lr": [1e-3, 1e-3],
       "branch_val": np.ones((1, 3)), "chosen": [1], "task": "toy",
       "optimizer": "adam", "n": 1, "steps_per_epoch": 4}
with ChainsWriter("chains.h5") as w:
    w.write(0, rec, base_seed=0)
    print(0 in w, w.samples())  # True 1
with iter_chains("chains.h5") as chains:
    print([name for name, group in chains])  # ['chain_000000']
```
"""

import contextlib
import os
import time

import h5py

from keras_autolr.runtime import io as io_lib

__all__ = ["ChainsWriter", "iter_chains", "chain_name", "pending_dir", "FOLD_SECONDS"]

# How often a writer folds while it writes: each fold copies the whole file, so not after every
# chain (quadratic); a kill never loses the pending chains, so the cadence only bounds what a
# plain `h5py.File(path)` reader misses.
FOLD_SECONDS = 300.0

_KEYS = ("train_loss", "val_loss", "lr", "branch_val", "chosen")


def chain_name(chain_id):
    """The group name of chain `chain_id`.

    Args:
        chain_id: the chain's number.

    Example:

    ```python
    from keras_autolr.pipelines.arc.chains_file import chain_name

    print(chain_name(42))  # chain_000042
    ```
    """
    return f"chain_{int(chain_id):06d}"


def pending_dir(path):
    """The folder holding the finished chains not yet folded into the chains file `path`.

    Args:
        path: the chains file.

    Example:

    ```python
    from keras_autolr.pipelines.arc.chains_file import pending_dir

    print(pending_dir("data/arc.h5"))  # data/arc.h5.pending
    ```
    """
    return os.fspath(path) + ".pending"


def _open_readable(path):
    """`h5py.File(path, "r")`; a file HDF5 cannot read gets an error that says what to do."""
    try:
        return h5py.File(path, "r")
    except OSError as err:
        if isinstance(err, PermissionError):
            raise
        raise ValueError(f"{os.fspath(path)!r} is not a readable HDF5 chains file ({err}). Move it away or delete "
                         "it to generate its chains again.") from err


def _group_count(path):
    with _open_readable(path) as f:
        return len(f)


def _pending_files(path):
    folder = pending_dir(path)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.startswith("chain_") and n.endswith(".h5"))


@contextlib.contextmanager
def _sources(path):
    """Yields `[(name, group), ...]`: the complete chains of `path` and then its pending ones, files open."""
    with contextlib.ExitStack() as stack:
        found = []
        if os.path.exists(path):
            f = stack.enter_context(_open_readable(path))
            found += [(n, f[n]) for n in f if f[n].attrs.get("complete", False)]
        for p in _pending_files(path):
            try:
                f = stack.enter_context(h5py.File(p, "r"))
            except OSError:  # not written by atomic_path (moved in by hand, say): skip, never fail a reader
                continue
            found += [(n, f[n]) for n in f if f[n].attrs.get("complete", False)]
        yield found


@contextlib.contextmanager
def iter_chains(path):
    """The complete chains of a chains file, pending ones included, in chain order.

    Args:
        path: the chains file (`keras-autolr arc generate --out`).

    Returns:
        A context manager yielding a sorted list of `(name, h5py.Group)`,
        one per chain; the groups are readable inside the block.

    Raises:
        ValueError: `path` exists but HDF5 cannot read it.

    Example:

    ```python
    import h5py
    from keras_autolr.pipelines.arc.chains_file import iter_chains

    with h5py.File("c.h5", "w") as f:
        f.create_group("chain_000003").attrs["complete"] = True
        f.create_group("chain_000004")  # unfinished: not listed
    with iter_chains("c.h5") as chains:
        print([name for name, g in chains])  # ['chain_000003']
    ```
    """
    with _sources(path) as found:
        yield sorted(dict(found).items())  # a pending chain replaces a folded one of its name


def _fill_group(g, chain_id, rec, base_seed):
    for key in _KEYS:
        g.create_dataset(key, data=rec[key])
    for key in ("task", "optimizer", "n", "steps_per_epoch"):
        g.attrs[key] = rec[key]
    g.attrs["chain_id"] = chain_id
    g.attrs["base_seed"] = base_seed
    g.attrs.update(rec.get("attrs", {}))  # an engine's extra draws (generate_vmap)
    g.attrs["complete"] = True


class ChainsWriter:
    """Adds chains to a chains file; the one writer of `path` while open.

    Args:
        path: the chains file to create or extend.
        fold_seconds: fold pending chains into `path` at most this often
            while writing (they are always folded on close); 0 folds after
            every chain; `None`: `FOLD_SECONDS`.

    Use it as a context manager; on leaving the block the pending chains are
    folded into `path`. `chain_id in writer` says whether a chain is done,
    `len(writer)` counts the chains.

    Raises:
        ValueError: `path` exists but HDF5 cannot read it.
        keras_autolr.runtime.io.OutputLockedError: another process writes
            `path` (it holds `path + ".lock"`).

    Example:

    ```python
    import numpy as np
    from keras_autolr.pipelines.arc.chains_file import ChainsWriter

    rec = {"train_loss": np.ones(8), "val_loss": np.ones(2), "lr": [1e-3, 1e-3],
           "branch_val": np.ones((1, 3)), "chosen": [1], "task": "toy",
           "optimizer": "adam", "n": 1, "steps_per_epoch": 4}
    with ChainsWriter("w.h5", fold_seconds=0) as w:  # folds after every chain
        w.write(5, rec, base_seed=0)
    with ChainsWriter("w.h5") as w:
        print(5 in w, 6 in w, len(w))  # True False 1
    ```
    """

    def __init__(self, path, fold_seconds=None):
        self.path = os.fspath(path)
        self.fold_seconds = float(FOLD_SECONDS if fold_seconds is None else fold_seconds)
        self._stack = contextlib.ExitStack()
        self._names = {}  # chain name -> samples (decisions)
        self._last_fold = time.monotonic()

    def __enter__(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._stack.enter_context(io_lib.exclusive_lock(f"{self.path}.lock", self.path))
        try:
            self._remove_leftovers()
            self.fold()  # a killed writer's finished chains
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.fold()
        finally:
            self._stack.close()

    def __contains__(self, chain_id):
        return chain_name(chain_id) in self._names

    def samples(self):
        """The number of samples (decisions) in the file, pending chains included."""
        return sum(self._names.values())

    def write(self, chain_id, rec, base_seed):
        """Makes chain `chain_id` (a `generate.run_chain` record) durable; replaces an earlier one of that id."""
        name = chain_name(chain_id)
        final = os.path.join(pending_dir(self.path), f"{name}.h5")
        with io_lib.atomic_path(final) as tmp:
            with h5py.File(tmp, "w") as f:
                _fill_group(f.create_group(name), chain_id, rec, base_seed)
        self._names[name] = len(rec["chosen"])
        if time.monotonic() - self._last_fold >= self.fold_seconds:
            self.fold()

    def __len__(self):
        return len(self._names)

    def fold(self, extra=()):
        """Moves the pending chains into `path` (the file is replaced whole, never edited).

        Args:
            extra: more `(name, h5py.Group)` chains to copy in, each unless
                `path` has a chain of its name (what `generate.merge` adds).
        """
        self._last_fold = time.monotonic()
        pending = _pending_files(self.path)
        extra = list(extra)
        with _sources(self.path) as found:
            chains = dict(found)  # a pending chain replaces a folded one of its name
            n_own = len(chains)
            for name, g in extra:
                chains.setdefault(name, g)
            self._names = {name: len(g["chosen"]) if "chosen" in g else 0 for name, g in chains.items()}
            if not pending and len(chains) == n_own and os.path.exists(self.path) \
                    and n_own == _group_count(self.path):
                return  # nothing to fold, no unfinished group to drop
            with io_lib.atomic_path(self.path) as tmp:
                with h5py.File(tmp, "w") as dst:
                    for name, g in sorted(chains.items()):
                        g.file.copy(g, dst, name)
        for p in pending:  # only now: until the rename they were the only copy
            os.remove(p)
        with contextlib.suppress(OSError):
            os.rmdir(pending_dir(self.path))

    def _remove_leftovers(self):
        # atomic_path's temporaries of a killed writer: the fold's next to `path`, a chain's in the pending folder.
        io_lib.remove_temporaries(os.path.dirname(os.path.abspath(self.path)), f".{os.path.basename(self.path)}.")
        io_lib.remove_temporaries(pending_dir(self.path))
