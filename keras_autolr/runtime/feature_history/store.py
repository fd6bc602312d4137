"""Crash-safe HDF5 storage for feature histories.

A history lives at `path` (an HDF5 *index* file) plus a sibling folder
`path + ".epochs/"` holding one HDF5 file per completed epoch. Every epoch
file is written under a temporary name and moved into place with
`os.replace` (atomic on POSIX and Windows), and the index is rewritten the
same way afterwards. A process killed at any instant therefore leaves:

* an index that opens and lists only epochs whose files are complete, and
* at worst a stray `*.tmp` file (an epoch's in the epoch folder, the index's
  next to it, `.run.h5.*.tmp`), ignored by readers and removed by the next
  writer of that history.

One process writes a history at a time: a writer holds an inter-process lock
(`filelock`, on `path + ".lock"`) from the moment it opens until `close()`, and
a second writer is refused with `HistoryLockedError` (readers need no lock).
The operating system releases the lock of a killed process.

An index that cannot be read (or is missing while epoch files exist) is
rebuilt from the epoch files when the history is opened (readers rebuild in
memory, writers on disk), with a warning naming every epoch file that was
skipped because it is unreadable or from another model;
`HistoryStore.rebuild_index()` does the same on request.

The index also holds HDF5 external links (`/epochs/00007`) to the epoch files,
so `h5py.File(path)["epochs/00007/val_embeddings"]` works in any HDF5 tool.

This module knows nothing about Keras: the `FeatureHistory` callback
produces the arrays, `keras_autolr.runtime.feature_history.estimate` consumes them.

Example:

```python
import numpy as np
from keras_autolr.runtime.feature_history import HistoryStore

h, y = np.ones((4, 2), "float32"), np.arange(4) % 2
store = HistoryStore("run.h5", fingerprint="abc", metadata={"layer": "fc"})
store.write_epoch(0, {"val_embeddings": h, "val_labels": y,
                      "train_embeddings": h, "train_labels": y,
                      "kernel": np.zeros((2, 2)), "bias": np.zeros(2)})
print(store.epochs(), store.read_epoch(0)["kernel"].shape)  # [0] (2, 2)
```
"""

import json
import os
import re
import time
import warnings
import weakref

import h5py
import numpy as np

from keras_autolr.runtime import io as io_lib
from keras_autolr.runtime.io import atomic_path

__all__ = ["HistoryStore", "HistoryMismatchError", "HistoryLockedError", "open_history", "epoch_dir",
           "FORMAT", "VERSION", "EMBEDDING_KEYS", "EXACT_KEYS"]

FORMAT = "keras_autolr.runtime.feature_history"
VERSION = 1
# Arrays holding embeddings; stored chunked and optionally as float16.
EMBEDDING_KEYS = ("val_embeddings", "train_embeddings")
# Arrays always kept as written (labels, classifier weights).
EXACT_KEYS = ("val_labels", "train_labels", "kernel", "bias")


class HistoryMismatchError(ValueError):
    """The file on disk was recorded from a different model."""


class HistoryLockedError(io_lib.OutputLockedError, RuntimeError):
    """Another process is writing the same feature history."""


class _UnreadableIndex(Exception):
    pass


# The writer holding each lock file in this process: a new writer takes over
# from a store left open here (a fit that raised) instead of locking itself out.
_WRITERS = weakref.WeakValueDictionary()
_EPOCH_FILE = re.compile(r"^epoch_(\d{5,})\.h5$")


def epoch_dir(path):
    """The folder of a history's epoch files: `path + ".epochs"`.

    Args:
        path: the history's index file.

    Example:

    ```python
    from keras_autolr.runtime.feature_history.store import epoch_dir

    print(epoch_dir("run.h5"))  # run.h5.epochs
    ```
    """
    return os.fspath(path) + ".epochs"


def _epoch_name(epoch):
    return f"epoch_{int(epoch):05d}.h5"


def _check_epoch_file(file_path, epoch):
    """(fingerprint, metadata, dtype) of a complete epoch file; raises on any damage."""
    with h5py.File(file_path, "r") as f:
        attrs = dict(f.attrs)
        if attrs.get("format") != FORMAT:
            raise ValueError(f"format attribute {attrs.get('format')!r}")
        if int(attrs.get("epoch", -1)) != epoch:
            raise ValueError(f"it says epoch {attrs.get('epoch')}")
        for key in f.keys():
            f[key][()]  # reads every chunk: a damaged one raises
    return (attrs.get("fingerprint"), json.loads(attrs.get("metadata_json", "{}")),
            attrs.get("dtype"))


def _write_atomic(final_path, fill):
    """Calls `fill(h5file)` on a temporary HDF5 file, then renames it into place."""
    with atomic_path(final_path) as tmp:  # a ".<name>.<random>.tmp" name, as _clean_temporaries expects
        with h5py.File(tmp, "w") as f:
            fill(f)


class HistoryStore:
    """Reads and appends epochs of a feature history.

    Args:
        path: the index file (for example `"run.h5"`). Created if missing.
        fingerprint: a string identifying the model architecture. Opening an
            existing history whose fingerprint differs raises
            `HistoryMismatchError` (pass `overwrite=True` or a new path).
            `None` opens read-only without checking.
        metadata: dict of JSON-serialisable values stored as index attributes
            (model name, layer, dtype, ...).
        dtype: `"float32"` or `"float16"` for embeddings.
        chunk_rows: rows per HDF5 chunk of each embedding array.
        compression: `None` or an h5py compression filter such as `"gzip"`.
        overwrite: delete an existing history at `path` first.

    A writer (a `fingerprint` given) holds the history's inter-process lock
    until `close()` (or until it is garbage-collected or its process ends).

    Attributes:
        skipped: `{epoch file: reason}` of the files the last index rebuild
            left out (empty when the index was readable).

    Raises:
        HistoryLockedError: another process is writing this history.
        HistoryMismatchError: the history was recorded from another model.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history import HistoryStore

    store = HistoryStore("h.h5", fingerprint="m1", dtype="float16")
    for e in range(3):
        store.write_epoch(e, {"val_embeddings": np.full((5, 4), e), "val_labels": np.zeros(5)})
    store.drop_epochs_from(2)  # a resumed run rewrites epoch 2
    store.close()  # releases the lock: another process may write now
    print(HistoryStore("h.h5").epochs())  # [0, 1]: reopened read-only
    ```
    """

    def __init__(self, path, fingerprint=None, metadata=None, dtype="float32",
                 chunk_rows=1024, compression=None, overwrite=False):
        self.path = os.fspath(path)
        self.dir = epoch_dir(self.path)
        if dtype not in ("float32", "float16"):
            raise ValueError(
                f"dtype must be 'float32' or 'float16', got {dtype!r}.")
        if int(chunk_rows) < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}.")
        self.dtype = dtype
        self.chunk_rows = int(chunk_rows)
        self.compression = compression
        self.metadata = dict(metadata or {})
        self.fingerprint = fingerprint
        self.skipped = {}
        self._epochs = []
        self._lock = None
        self._closed_because = None
        self._writer = fingerprint is not None
        if self._writer:
            self._acquire_lock()
        try:
            self._open(overwrite)
        except BaseException:
            self.close()
            raise

    def _open(self, overwrite):
        if overwrite:
            self.delete()
        if self._writer:
            # Only the lock holder tidies up: a temporary file may belong to
            # a writer that is still running.
            self._clean_temporaries()
        if os.path.exists(self.path):
            try:
                self._load_index()
            except _UnreadableIndex as e:
                self._recover(f"its index could not be read ({e})")
        elif self._epoch_files():
            self._recover("its index is missing")
        elif self.fingerprint is None:
            raise FileNotFoundError(
                f"No feature history at {self.path!r}. Record one with "
                "keras_autolr.runtime.feature_history.FeatureHistory first.")

    # -- the writer's lock ---------------------------------------------------
    def _acquire_lock(self):
        lock_path = os.path.abspath(self.path) + ".lock"
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        stale = _WRITERS.get(lock_path)
        if stale is not None:
            stale.close(because="another HistoryStore in this process took over "
                        f"{self.path!r}; open a new HistoryStore to write it")
        lock = io_lib.acquire_lock(
            lock_path, f"the feature history {self.path!r}", error=HistoryLockedError,
            advice="Wait for that run to finish, or record this run to another path "
                   "(e.g. FeatureHistory('run2.h5', ...)).")
        self._lock = lock
        _WRITERS[lock_path] = self

    def close(self, because=None):
        """Releases the writer's lock; later writes raise. Reading still works.

        Args:
            because: what later writes say (default: "it was closed").

        Example:

        ```python
        import numpy as np
        from keras_autolr.runtime.feature_history import HistoryStore

        store = HistoryStore("c.h5", fingerprint="m")
        store.write_epoch(0, {"val_labels": np.arange(3)})
        store.close()
        print(HistoryStore("c.h5", fingerprint="m").epochs())  # [0]: a new writer may open it
        ```
        """
        if self._lock is not None:
            self._lock.release(force=True)
            self._lock = None
            self._closed_because = because or "it was closed"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_writable(self):
        if not self._writer:
            raise ValueError("This HistoryStore was opened read-only.")
        if self._lock is None:
            raise ValueError(f"This HistoryStore can no longer write {self.path!r}: "
                             f"{self._closed_because}.")

    # -- reading -----------------------------------------------------------
    def _load_index(self):
        try:
            with h5py.File(self.path, "r") as f:
                attrs = dict(f.attrs)
                epochs = [int(e) for e in f["epoch_list"][()]] if (
                    "epoch_list" in f) else []
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise _UnreadableIndex(f"{type(e).__name__}: {e}") from e
        if attrs.get("format") != FORMAT:
            raise HistoryMismatchError(
                f"{self.path!r} is not a keras_autolr feature history "
                f"(format attribute {attrs.get('format')!r}).")
        stored = attrs.get("fingerprint")
        if self.fingerprint is not None and stored != self.fingerprint:
            raise HistoryMismatchError(
                f"{self.path!r} was recorded from a different model "
                f"(fingerprint {stored} != {self.fingerprint}, model "
                f"{attrs.get('model_name')!r}). Use a new path or "
                "overwrite=True.")
        self.fingerprint = stored
        meta = json.loads(attrs.get("metadata_json", "{}"))
        meta.update(self.metadata)
        self.metadata = meta
        self.dtype = attrs.get("dtype", self.dtype)
        # Trust only epochs whose files exist (the index is written last,
        # but a user may have deleted files by hand).
        self._epochs = [e for e in epochs if os.path.exists(self._file(e))]

    def _file(self, epoch):
        return os.path.join(self.dir, _epoch_name(epoch))

    def _clean_temporaries(self):
        io_lib.remove_temporaries(self.dir)
        # The index's own, next to it.
        io_lib.remove_temporaries(os.path.dirname(os.path.abspath(self.path)), os.path.basename(self.path))

    def _epoch_files(self):
        """{epoch: file} of the epoch folder's files, whatever the index says."""
        if not os.path.isdir(self.dir):
            return {}
        found = {}
        for name in os.listdir(self.dir):
            match = _EPOCH_FILE.match(name)
            if match:
                found[int(match.group(1))] = os.path.join(self.dir, name)
        return dict(sorted(found.items()))

    def _scan(self):
        """Epochs whose files are intact and of this model, and `{file: reason}` of the rest."""
        good, skipped, newest = {}, {}, None
        for epoch, file_path in self._epoch_files().items():
            try:
                good[epoch] = _check_epoch_file(file_path, epoch)
            except Exception as e:  # h5py raises OSError, KeyError, RuntimeError, ...
                skipped[file_path] = f"unreadable ({type(e).__name__}: {e})"
        fingerprints = {info[0] for info in good.values()}
        wanted = self.fingerprint
        if wanted is None and good:
            wanted = good[max(good)][0]  # a reader trusts the newest epoch's model
        elif wanted is not None and good and wanted not in fingerprints:
            raise HistoryMismatchError(
                f"{self.path!r} was recorded from a different model (its epoch files have "
                f"fingerprints {sorted(map(str, fingerprints))}, not {wanted}). Use a new path "
                "or overwrite=True.")
        for epoch in list(good):
            if good[epoch][0] != wanted:
                skipped[self._file(epoch)] = (
                    f"recorded from a different model (fingerprint {good[epoch][0]})")
                del good[epoch]
            else:
                newest = good[epoch]
        return sorted(good), newest, wanted, dict(sorted(skipped.items()))

    def _recover(self, why):
        epochs, newest, fingerprint, skipped = self._scan()
        if not epochs and not self._writer:
            raise OSError(
                f"The feature history {self.path!r} cannot be opened: {why} and none of the "
                f"{len(skipped)} epoch files in {self.dir!r} is intact ({skipped}).")
        self._adopt(epochs, newest, fingerprint, skipped)
        where = "on disk" if self._writer else "in memory (opened read-only)"
        if self._writer:
            self._write_index()
        lost = "".join(f"\n  {name}: {reason}" for name, reason in skipped.items())
        warnings.warn(
            f"Feature history {self.path!r}: {why}; rebuilt it {where} from the epoch files: "
            f"epochs {epochs}." + (f" Skipped {len(skipped)} epoch file(s):{lost}" if skipped else ""),
            stacklevel=4)

    def _adopt(self, epochs, newest, fingerprint, skipped):
        self._epochs = list(epochs)
        self.skipped = skipped
        self.fingerprint = fingerprint if self.fingerprint is None else self.fingerprint
        if newest is not None:
            meta = dict(newest[1])
            meta.update(self.metadata)
            self.metadata = meta
            self.dtype = newest[2] or self.dtype

    def rebuild_index(self):
        """Rewrites the index from the epoch files, checking each one.

        Every dataset of every `epoch_*.h5` file is read; files that fail, or
        that were recorded from another model, are left out (not deleted) and
        reported.

        Returns:
            `{epoch file: reason}` of the files left out (also in `skipped`).

        Raises:
            ValueError: the store was opened read-only.

        Example:

        ```python
        import numpy as np
        from keras_autolr.runtime.feature_history import HistoryStore

        store = HistoryStore("b.h5", fingerprint="m")
        for e in range(2):
            store.write_epoch(e, {"val_labels": np.arange(3)})
        print(store.rebuild_index(), store.epochs())  # {} [0, 1]
        ```
        """
        self._check_writable()
        self._adopt(*self._scan())
        self._write_index()
        return dict(self.skipped)

    def epochs(self):
        """Sorted list of completed epochs (0-based, as Keras numbers them)."""
        return list(self._epochs)

    def __len__(self):
        return len(self._epochs)

    def read_epoch(self, epoch, keys=None):
        """Returns a dict of numpy arrays for one epoch (embeddings as float32)."""
        if epoch not in self._epochs:
            raise KeyError(
                f"Epoch {epoch} is not in {self.path!r}; recorded epochs: "
                f"{self._epochs}.")
        out = {}
        with h5py.File(self._file(epoch), "r") as f:
            for key in keys or f.keys():
                if key in f:
                    out[key] = np.asarray(f[key][()])
        for key in EMBEDDING_KEYS:
            if key in out:
                out[key] = out[key].astype(np.float32)
        return out

    def epoch_attrs(self, epoch):
        with h5py.File(self._file(epoch), "r") as f:
            return dict(f.attrs)

    # -- writing -----------------------------------------------------------
    def write_epoch(self, epoch, arrays, attrs=None):
        """Writes one epoch atomically, replacing it if it already exists.

        Args:
            epoch: int, 0-based epoch index.
            arrays: dict with any of `val_embeddings`, `val_labels`,
                `train_embeddings`, `train_labels`, `kernel`, `bias`.
            attrs: extra per-epoch attributes (JSON-serialisable scalars).
        """
        self._check_writable()
        epoch = int(epoch)
        os.makedirs(self.dir, exist_ok=True)
        attrs = dict(attrs or {})

        def fill(f):
            f.attrs["format"] = FORMAT
            f.attrs["epoch"] = epoch
            f.attrs["fingerprint"] = self.fingerprint
            f.attrs["dtype"] = self.dtype
            # Lets rebuild_index restore the index's metadata from the epochs.
            f.attrs["metadata_json"] = json.dumps(self.metadata, default=str)
            f.attrs["time"] = time.time()
            for k, v in attrs.items():
                f.attrs[k] = v
            for key, value in arrays.items():
                if value is None:
                    continue
                value = np.asarray(value)
                if key in EMBEDDING_KEYS:
                    value = value.reshape(len(value), -1).astype(self.dtype)
                    rows = max(1, min(self.chunk_rows, len(value)))
                    f.create_dataset(
                        key, data=value,
                        chunks=(rows, value.shape[1]) if value.size else None,
                        compression=self.compression)
                else:
                    f.create_dataset(key, data=value)

        _write_atomic(self._file(epoch), fill)
        if epoch not in self._epochs:
            self._epochs = sorted(self._epochs + [epoch])
        self._write_index()

    def drop_epochs_from(self, first_epoch):
        """Forgets epochs >= `first_epoch` (a resumed run rewrites them)."""
        self._check_writable()
        keep = [e for e in self._epochs if e < first_epoch]
        if keep == self._epochs:
            return
        dropped = [e for e in self._epochs if e >= first_epoch]
        self._epochs = keep
        self._write_index()  # index first: never list a file we delete
        for e in dropped:
            try:
                os.remove(self._file(e))
            except OSError:
                pass

    def _write_index(self):
        def fill(f):
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["fingerprint"] = self.fingerprint
            f.attrs["dtype"] = self.dtype
            f.attrs["metadata_json"] = json.dumps(self.metadata, default=str)
            for k, v in self.metadata.items():
                if isinstance(v, (str, int, float, bool)):
                    f.attrs[k] = v
            f.create_dataset("epoch_list",
                             data=np.asarray(self._epochs, dtype=np.int64))
            group = f.create_group("epochs")
            rel = os.path.basename(self.dir)
            for e in self._epochs:
                group[f"{e:05d}"] = h5py.ExternalLink(
                    os.path.join(rel, _epoch_name(e)), "/")

        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        _write_atomic(self.path, fill)

    def delete(self):
        """Removes the index and all epoch files."""
        if os.path.isdir(self.dir):
            for name in os.listdir(self.dir):
                os.remove(os.path.join(self.dir, name))
            os.rmdir(self.dir)
        if os.path.exists(self.path):
            os.remove(self.path)

    def nbytes_per_epoch(self):
        """Mean size on disk of one epoch file, in bytes."""
        if not self._epochs:
            return 0
        sizes = [os.path.getsize(self._file(e)) for e in self._epochs]
        return float(np.mean(sizes))


def open_history(path):
    """Opens an existing history read-only (no fingerprint check).

    Args:
        path: the history's index file.

    Raises:
        FileNotFoundError: no history at `path`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history.store import HistoryStore, open_history

    HistoryStore("r.h5", fingerprint="m").write_epoch(0, {"val_labels": np.arange(3)})
    print(open_history("r.h5").read_epoch(0)["val_labels"])  # [0 1 2]
    ```
    """
    return HistoryStore(path)
