import os
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import pytest

from keras_autolr.runtime import io as io_lib
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


def test_writer_removes_its_stray_index_temporaries_only(tmp_path):
    """A writer killed inside the index write leaves `.h.h5.*.tmp` next to the index."""
    path = tmp_path / "h.h5"
    store = HistoryStore(path, fingerprint="a")
    store.write_epoch(0, _arrays(0))
    store.close()
    # The names `runtime.io.atomic_path` gives the index's and an epoch's temporary files.
    stray_index = tempfile.mkstemp(dir=tmp_path, prefix=".h.h5.", suffix=".tmp")[1]
    stray_epoch = tempfile.mkstemp(dir=store.dir, prefix=".epoch_00001.h5.", suffix=".tmp")[1]
    foreign = tempfile.mkstemp(dir=tmp_path, prefix=".other.h5.", suffix=".tmp")[1]
    HistoryStore(path)  # a reader tidies nothing
    assert os.path.exists(stray_index) and os.path.exists(stray_epoch)
    HistoryStore(path, fingerprint="a").close()
    assert not os.path.exists(stray_index) and not os.path.exists(stray_epoch)
    assert os.path.exists(foreign)  # another file's temporary is not ours to delete


def _corrupt(file_path, keep_bytes=0):
    with open(file_path, "r+b") as f:
        f.truncate(keep_bytes)
        f.write(b"\x00not hdf5\x00" * 8)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_unreadable_index_is_rebuilt_from_epoch_files(tmp_path, damage):
    path = tmp_path / "h.h5"
    store = HistoryStore(path, fingerprint="fp", metadata={"model_name": "m", "layer": "fc"})
    for e in range(4):
        store.write_epoch(e, _arrays(e))
    store.close()
    _corrupt(store._file(2), keep_bytes=100)  # this epoch's own file is broken too
    if damage == "corrupt":
        _corrupt(path)
    else:
        os.remove(path)
    # A reader rebuilds in memory, saying which epoch it skipped and why.
    with pytest.warns(UserWarning, match=r"(?s)rebuilt.*epoch_00002\.h5"):
        reader = HistoryStore(path)
    assert reader.epochs() == [0, 1, 3]
    assert list(reader.skipped) == [store._file(2)]
    assert reader.metadata["model_name"] == "m" and reader.fingerprint == "fp"
    np.testing.assert_array_equal(reader.read_epoch(3)["bias"], _arrays(3)["bias"])
    if damage == "corrupt":
        with pytest.raises(OSError):
            h5py.File(path, "r")  # the reader wrote nothing
    # A writer rebuilds the index on disk and appends.
    with pytest.warns(UserWarning, match="epoch_00002"):
        writer = HistoryStore(path, fingerprint="fp")
    writer.write_epoch(4, _arrays(4))
    writer.close()
    with h5py.File(path, "r") as f:
        assert list(f["epoch_list"][()]) == [0, 1, 3, 4]
    assert HistoryStore(path).metadata["layer"] == "fc"


def test_rebuild_index_skips_other_models_and_reports(tmp_path):
    path = tmp_path / "h.h5"
    store = HistoryStore(path, fingerprint="fp")
    for e in range(3):
        store.write_epoch(e, _arrays(e))
    store.close()
    other = HistoryStore(tmp_path / "o.h5", fingerprint="other")
    other.write_epoch(1, _arrays(9))
    other.close()
    os.replace(other._file(1), store._file(1))  # an epoch file of another model
    writer = HistoryStore(path, fingerprint="fp")
    assert writer.epochs() == [0, 1, 2]  # the index was readable: nothing rebuilt
    skipped = writer.rebuild_index()
    assert writer.epochs() == [0, 2] and HistoryStore(path).epochs() == [0, 2]
    assert list(skipped) == [store._file(1)] and "different model" in skipped[store._file(1)]
    writer.close()
    with pytest.raises(ValueError, match="read-only"):
        HistoryStore(path).rebuild_index()


def test_second_writer_in_another_process_is_refused(tmp_path):
    """Two processes writing one history: the second gets a clear error, the first's epochs survive."""
    path = tmp_path / "h.h5"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), store_lib.__file__],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(store_lib.HistoryLockedError, match="Another process is writing") as info:
            HistoryStore(path, fingerprint="fp")
        assert "another path" in str(info.value)
        # One family with every other locked output, so one `except OutputLockedError` catches all.
        assert isinstance(info.value, io_lib.OutputLockedError)
        HistoryStore(path)  # readers need no lock
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
    writer = HistoryStore(path, fingerprint="fp")  # the lock went with the process
    assert writer.epochs() == [0, 1]
    writer.close()


_HOLDER = r"""
import importlib.util, sys, numpy as np
spec = importlib.util.spec_from_file_location("fh_store", sys.argv[2])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
store = mod.HistoryStore(sys.argv[1], fingerprint="fp")
store.write_epoch(0, {"val_labels": np.arange(3)})
print("ready", flush=True)
sys.stdin.readline()
store.write_epoch(1, {"val_labels": np.arange(3)})
"""


def test_new_writer_in_the_same_process_takes_over(tmp_path):
    """A store left open (a fit that raised) does not lock its own process out."""
    path = tmp_path / "h.h5"
    stale = HistoryStore(path, fingerprint="fp")
    stale.write_epoch(0, _arrays(0))
    fresh = HistoryStore(path, fingerprint="fp")
    fresh.write_epoch(1, _arrays(1))
    with pytest.raises(ValueError, match="took over"):
        stale.write_epoch(2, _arrays(2))
    assert HistoryStore(path).epochs() == [0, 1]
    fresh.close()
