"""Crash-safe HDF5 storage for feature histories.

A history lives at `path` (an HDF5 *index* file) plus a sibling folder
`path + ".epochs/"` holding one HDF5 file per completed epoch. Every epoch
file is written under a temporary name and moved into place with
`os.replace` (atomic on POSIX and Windows), and the index is rewritten the
same way afterwards. A process killed at any instant therefore leaves:

* an index that opens and lists only epochs whose files are complete, and
* at worst a stray `*.tmp` file, ignored and removed on the next open.

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
import time

import h5py
import numpy as np

from keras_autolr.runtime.io import atomic_path

__all__ = ["HistoryStore", "HistoryMismatchError", "open_history", "epoch_dir", "FORMAT", "VERSION",
           "EMBEDDING_KEYS", "EXACT_KEYS"]

FORMAT = "keras_autolr.runtime.feature_history"
VERSION = 1
# Arrays holding embeddings; stored chunked and optionally as float16.
EMBEDDING_KEYS = ("val_embeddings", "train_embeddings")
# Arrays always kept as written (labels, classifier weights).
EXACT_KEYS = ("val_labels", "train_labels", "kernel", "bias")


class HistoryMismatchError(ValueError):
    """The file on disk was recorded from a different model."""


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


def _write_atomic(final_path, fill):
    """Calls `fill(h5file)` on a temporary HDF5 file, then renames it into place."""
    with atomic_path(final_path) as tmp:  # a "*.tmp" name, as _clean_temporaries expects
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

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history import HistoryStore

    store = HistoryStore("h.h5", fingerprint="m1", dtype="float16")
    for e in range(3):
        store.write_epoch(e, {"val_embeddings": np.full((5, 4), e), "val_labels": np.zeros(5)})
    store.drop_epochs_from(2)  # a resumed run rewrites epoch 2
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
        if overwrite:
            self.delete()
        self._epochs = []
        if os.path.exists(self.path):
            self._load_index()
        elif fingerprint is None:
            raise FileNotFoundError(
                f"No feature history at {self.path!r}. Record one with "
                "keras_autolr.runtime.feature_history.FeatureHistory first.")
        if fingerprint is not None:
            # Only a writer tidies up: a reader must not delete the
            # temporary file of a writer that is still running.
            self._clean_temporaries()

    # -- reading -----------------------------------------------------------
    def _load_index(self):
        try:
            with h5py.File(self.path, "r") as f:
                attrs = dict(f.attrs)
                epochs = [int(e) for e in f["epoch_list"][()]] if (
                    "epoch_list" in f) else []
        except OSError as e:
            raise OSError(
                f"Could not open feature history index {self.path!r}: {e}"
            ) from e
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
        if not os.path.isdir(self.dir):
            return
        for name in os.listdir(self.dir):
            if name.endswith(".tmp"):
                try:
                    os.remove(os.path.join(self.dir, name))
                except OSError:
                    pass

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
        if self.fingerprint is None:
            raise ValueError("This HistoryStore was opened read-only.")
        epoch = int(epoch)
        os.makedirs(self.dir, exist_ok=True)
        attrs = dict(attrs or {})

        def fill(f):
            f.attrs["format"] = FORMAT
            f.attrs["epoch"] = epoch
            f.attrs["fingerprint"] = self.fingerprint
            f.attrs["dtype"] = self.dtype
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
