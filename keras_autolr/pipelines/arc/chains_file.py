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
gets `OutputLockedError`. A fold needs room for a second copy of `path`: on
a full disk it leaves `path` and the pending chains as they were, warns while
the writer runs, and raises `OSError` (ENOSPC) when it closes.

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
import errno
import os
import shutil
import time
import warnings

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
    """`h5py.File(path, "r")`; a file HDF5 cannot open gets an error that says what to do."""
    try:
        return h5py.File(path, "r")
    except OSError as err:
        if isinstance(err, (PermissionError, FileNotFoundError)):
            raise
        if "unable to lock file" in str(err):  # HDF5's own lock: another program has it open for writing
            raise io_lib.OutputLockedError(f"Another program has {os.fspath(path)!r} open for writing ({err}); "
                                           "close it there and run again.") from err
        raise ValueError(f"{os.fspath(path)!r} is not a readable HDF5 chains file ({err}). Move it away or delete "
                         "it to generate its chains again.") from err


def _pending_files(path):
    try:
        names = os.listdir(pending_dir(path))
    except FileNotFoundError:  # none, or a writer folded them and removed the folder meanwhile
        return []
    return sorted(os.path.join(pending_dir(path), n) for n in names if n.startswith("chain_") and n.endswith(".h5"))


@contextlib.contextmanager
def _sources(path):
    """Yields `(chains, read, unfinished)`: `[(name, group), ...]` of `path` and then of its pending files, the
    pending files read, and the number of `path`'s groups left out as unfinished.

    The pending files are opened before `path`: a writer deletes a pending
    file only after renaming in a `path` that holds its chain, so a chain
    folded meanwhile is found in `path` (a plain listing of `path` first
    would miss it).
    """
    with contextlib.ExitStack() as stack:
        pending, read = [], []
        for p in _pending_files(path):
            try:
                f = stack.enter_context(h5py.File(p, "r"))
            except FileNotFoundError:  # folded meanwhile: in `path`, opened below
                continue
            except OSError as err:
                if err.errno is not None:  # too many open files, an I/O error: not a reason to drop a chain
                    raise
                continue  # not HDF5 (put there by hand, say): skipped and kept
            read.append(p)
            pending += [(n, f[n]) for n in f if f[n].attrs.get("complete", False)]
        own, unfinished = [], 0
        if os.path.exists(path):
            f = stack.enter_context(_open_readable(path))
            own = [(n, f[n]) for n in f if f[n].attrs.get("complete", False)]
            unfinished = len(f) - len(own)
        yield own + pending, read, unfinished


@contextlib.contextmanager
def iter_chains(path):
    """The complete chains of a chains file, pending ones included, in chain order.

    Args:
        path: the chains file (`keras-autolr arc generate --out`).

    Returns:
        A context manager yielding a sorted list of `(name, h5py.Group)`,
        one per chain; the groups are readable inside the block.

    Raises:
        FileNotFoundError: neither `path` nor its pending folder exists.
        ValueError: `path` exists but HDF5 cannot read it.
        keras_autolr.runtime.io.OutputLockedError: another program has
            `path` open for writing.

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
    if not os.path.exists(path) and not os.path.isdir(pending_dir(path)):
        raise FileNotFoundError(f"No chains file {os.fspath(path)!r} (nor its pending folder); check the path, or "
                                "create it with `keras-autolr arc generate --out`.")
    with _sources(path) as (found, _, _):
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
            `path` (it holds `path + ".lock"`), or another program has it
            open for writing.
        OSError: (ENOSPC, on leaving the block) no room to fold the pending
            chains; they stay pending, safe, for the next writer.

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
            self._try_fold()  # a killed writer's finished chains
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.fold()
            else:  # the block's error is the one to see; a fold that fails too only warns (chains stay pending)
                try:
                    self.fold()
                except Exception as fold_err:  # noqa: BLE001
                    warnings.warn(f"The pending chains of {self.path!r} were not folded ({fold_err}); the next "
                                  "writer folds them.", RuntimeWarning, stacklevel=2)
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
            self._try_fold()

    def __len__(self):
        return len(self._names)

    def fold(self, extra=()):
        """Moves the pending chains into `path` (the file is replaced whole, never edited).

        Args:
            extra: more `(name, h5py.Group)` chains to copy in, each unless
                `path` has a chain of its name (what `generate.merge` adds).

        Raises:
            OSError: (ENOSPC) no room for the new copy of `path`; `path` and
                the pending chains are left as they were.
        """
        try:
            with _sources(self.path) as (found, read, unfinished):
                chains = dict(found)  # a pending chain replaces a folded one of its name
                n_own = len(chains)
                for name, g in extra:
                    chains.setdefault(name, g)
                self._names = {name: len(g["chosen"]) if "chosen" in g else 0 for name, g in chains.items()}
                if not read and len(chains) == n_own and os.path.exists(self.path) and not unfinished:
                    return  # nothing to fold, no unfinished group to drop
                self._check_space(read)
                try:
                    with io_lib.atomic_path(self.path) as tmp:
                        with h5py.File(tmp, "w") as dst:
                            for name, g in sorted(chains.items()):
                                g.file.copy(g, dst, name)
                except RuntimeError as err:  # h5py reports a full disk inside a copy so, without an errno
                    if "errno = 28" not in str(err):
                        raise
                    raise self._no_space(f"({err})") from err
            for p in read:  # only now: until the rename they were the only copy
                with contextlib.suppress(FileNotFoundError):
                    os.remove(p)
            with contextlib.suppress(OSError):
                os.rmdir(pending_dir(self.path))
        finally:
            self._last_fold = time.monotonic()  # after the fold: a slow fold must not make every write fold

    def _try_fold(self):
        """`fold`, but a full disk only warns: the pending chains are durable, and the close folds again."""
        try:
            self.fold()
        except OSError as err:
            if not io_lib.is_disk_full(err):
                raise
            warnings.warn(str(err), RuntimeWarning, stacklevel=3)

    def _check_space(self, pending):
        # The new copy needs about the old file plus the pending chains; checked first because HDF5
        # fails late and with no errno.
        need = sum(os.path.getsize(p) for p in [self.path, *pending] if os.path.exists(p))
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(self.path))).free
        if need > free:
            raise self._no_space(f"(about {need / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free)")

    def _no_space(self, detail):
        return OSError(errno.ENOSPC, f"No space left to write {self.path!r} {detail}: the finished chains are safe in "
                       f"{pending_dir(self.path)!r}; free some disk space and run again (the next writer folds them "
                       "in first)", self.path)

    def _remove_leftovers(self):
        # atomic_path's temporaries of a killed writer: the fold's next to `path`, a chain's in the pending folder.
        io_lib.remove_temporaries(os.path.dirname(os.path.abspath(self.path)), os.path.basename(self.path))
        io_lib.remove_temporaries(pending_dir(self.path))
