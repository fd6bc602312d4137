import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from keras_autolr.runtime.feature_history import store as store_lib
from keras_autolr.runtime.feature_history.store import HistoryMismatchError
from keras_autolr.runtime.feature_history.store import HistoryStore


def _arrays(seed, n_val=50, n_train=80, dim=16, classes=4):
    rng = np.random.default_rng(seed)
    return {
        "val_embeddings": rng.normal(size=(n_val, dim)).astype("float32"),
        "val_labels": rng.integers(0, classes, n_val),
        "train_embeddings": rng.normal(size=(n_train, dim)).astype("float32"),
        "train_labels": rng.integers(0, classes, n_train),
        "kernel": rng.normal(size=(dim, classes)).astype("float32"),
        "bias": rng.normal(size=(classes,)).astype("float32"),
    }


def test_roundtrip_and_metadata(tmp_path):
    path = tmp_path / "h.h5"
    store = HistoryStore(path, fingerprint="fp1",
                         metadata={"model_name": "m", "layer": "fc"},
                         chunk_rows=32)
    written = {e: _arrays(e) for e in range(3)}
    for e, arrays in written.items():
        store.write_epoch(e, arrays, attrs={"logs/loss": 1.0 / (e + 1)})
    again = HistoryStore(path)  # read-only reopen
    assert again.epochs() == [0, 1, 2]
    assert again.metadata["model_name"] == "m"
    assert again.fingerprint == "fp1"
    for e, arrays in written.items():
        got = again.read_epoch(e)
        for key, value in arrays.items():
            np.testing.assert_array_equal(got[key], value)
        assert again.epoch_attrs(e)["logs/loss"] == pytest.approx(1 / (e + 1))
    # Any HDF5 reader sees the epochs through the index's external links,
    # with chunked embedding arrays.
    with h5py.File(path, "r") as f:
        assert f.attrs["layer"] == "fc"
        ds = f["epochs/00002/val_embeddings"]
        assert ds.chunks == (32, 16)
        np.testing.assert_array_equal(ds[()], written[2]["val_embeddings"])


def test_float16_embeddings_and_exact_weights(tmp_path):
    store = HistoryStore(tmp_path / "h.h5", fingerprint="x", dtype="float16")
    arrays = _arrays(0)
    store.write_epoch(0, arrays)
    with h5py.File(store._file(0), "r") as f:
        assert f["val_embeddings"].dtype == np.float16
        assert f["kernel"].dtype == np.float32
    got = store.read_epoch(0)
    np.testing.assert_allclose(got["val_embeddings"],
                               arrays["val_embeddings"], atol=1e-2)
    np.testing.assert_array_equal(got["kernel"], arrays["kernel"])


def test_different_model_is_refused(tmp_path):
    path = tmp_path / "h.h5"
    HistoryStore(path, fingerprint="model-a").write_epoch(0, _arrays(0))
    with pytest.raises(HistoryMismatchError, match="different model"):
        HistoryStore(path, fingerprint="model-b")
    # overwrite=True starts afresh.
    fresh = HistoryStore(path, fingerprint="model-b", overwrite=True)
    assert fresh.epochs() == []


def test_not_a_history_is_refused(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = 1
    with pytest.raises(HistoryMismatchError, match="not a keras_autolr"):
        HistoryStore(path, fingerprint="a")


def test_missing_file_read_only_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="FeatureHistory"):
        HistoryStore(tmp_path / "none.h5")


def test_drop_epochs_from_and_rewrite(tmp_path):
    store = HistoryStore(tmp_path / "h.h5", fingerprint="a")
    for e in range(5):
        store.write_epoch(e, _arrays(e))
    store.drop_epochs_from(3)
    assert HistoryStore(tmp_path / "h.h5").epochs() == [0, 1, 2]
    assert not os.path.exists(store._file(3))
    store.write_epoch(3, _arrays(99))
    np.testing.assert_array_equal(
        HistoryStore(tmp_path / "h.h5").read_epoch(3)["bias"],
        _arrays(99)["bias"])


def test_failed_write_leaves_earlier_epochs_intact(tmp_path, monkeypatch):
    path = tmp_path / "h.h5"
    store = HistoryStore(path, fingerprint="a")
    store.write_epoch(0, _arrays(0))
    real = h5py.Group.create_dataset

    def disk_full(self, name, *args, **kwargs):
        if name == "train_embeddings":
            raise OSError(28, "No space left on device")
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.write_epoch(1, _arrays(1))
    monkeypatch.undo()
    again = HistoryStore(path)
    assert again.epochs() == [0]
    np.testing.assert_array_equal(again.read_epoch(0)["kernel"],
                                  _arrays(0)["kernel"])
    assert not [n for n in os.listdir(store.dir) if n.endswith(".tmp")]


_WRITER = r"""
import importlib.util, sys, numpy as np
# Load store.py alone: importing the package would pull in TensorFlow.
spec = importlib.util.spec_from_file_location("fh_store", sys.argv[2])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
store = mod.HistoryStore(sys.argv[1], fingerprint="fp")
rng = np.random.default_rng(0)
big = {"val_embeddings": rng.normal(size=(1500, 128)).astype("float32"),
       "val_labels": np.zeros(1500, "int32"),
       "train_embeddings": rng.normal(size=(3000, 128)).astype("float32"),
       "train_labels": np.zeros(3000, "int32"),
       "kernel": np.ones((128, 10), "float32"), "bias": np.zeros(10, "float32")}
for e in range(100000):
    big["bias"][:] = e
    store.write_epoch(e, big)
    print(e, flush=True)
"""


@pytest.mark.parametrize("delay", [0.2, 0.9])
def test_killed_writer_leaves_readable_history(tmp_path, delay):
    """SIGKILL at an arbitrary moment of a tight write loop."""
    path = tmp_path / "h.h5"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path),
                             store_lib.__file__],
                            stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # at least one epoch completed
    assert first.strip() == "0"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = HistoryStore(path)
    epochs = store.epochs()
    assert epochs == list(range(len(epochs))) and epochs
    for e in epochs:
        assert store.read_epoch(e, keys=["bias"])["bias"][0] == e
    with h5py.File(path, "r") as f:
        assert len(f["epoch_list"]) == len(epochs)
    # A writer reopening cleans the stray temporary file and appends.
    writer = HistoryStore(path, fingerprint="fp")
    assert not [n for n in os.listdir(writer.dir) if n.endswith(".tmp")]
    writer.write_epoch(len(epochs), _arrays(0, dim=128, classes=10))
    assert HistoryStore(path).epochs() == list(range(len(epochs) + 1))


def test_nbytes_per_epoch(tmp_path):
    store = HistoryStore(tmp_path / "h.h5", fingerprint="a")
    store.write_epoch(0, _arrays(0))
    payload = sum(np.asarray(v).nbytes for v in _arrays(0).values())
    assert payload <= store.nbytes_per_epoch() < payload + 20000


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        HistoryStore(tmp_path / "a.h5", fingerprint="a", dtype="int8")
    with pytest.raises(ValueError, match="chunk_rows"):
        HistoryStore(tmp_path / "a.h5", fingerprint="a", chunk_rows=0)
    assert store_lib.epoch_dir("x.h5") == "x.h5.epochs"
