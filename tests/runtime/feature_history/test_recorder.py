import pathlib
import os
import subprocess
import sys
import textwrap
import warnings

import h5py
import keras
import numpy as np
import pytest

from keras_autolr.runtime.feature_history import ClassifierNotFoundError
from keras_autolr.runtime.feature_history import FeatureHistory
from keras_autolr.runtime.feature_history import HistoryMismatchError
from keras_autolr.runtime.feature_history import HistoryStore
from keras_autolr.runtime.feature_history import estimate_file
from keras_autolr.runtime.feature_history import recorder as recorder_lib
from tests.runtime.feature_history.helpers import make_mlp

REPO = str(pathlib.Path(__file__).resolve().parents[3])


def _fit(model, digits, path, epochs=3, initial_epoch=0, **kwargs):
    xt, yt, xv, yv = digits
    rec = FeatureHistory(path, (xt, yt), (xv, yv), **kwargs)
    hist = model.fit(xt, yt, epochs=epochs, initial_epoch=initial_epoch,
                     batch_size=128, validation_data=(xv, yv),
                     callbacks=[rec], verbose=0)
    return rec, hist


def test_records_embeddings_labels_and_classifier(tmp_path, digits):
    keras.utils.set_random_seed(0)
    model = make_mlp(width=24, name="digits_mlp")
    rec, hist = _fit(model, digits, tmp_path / "r.h5", train_samples=300,
                     dtype="float16", chunk_rows=128)
    store = HistoryStore(tmp_path / "r.h5")
    assert store.epochs() == [0, 1, 2]
    assert store.metadata["model_name"] == "digits_mlp"
    assert store.metadata["layer"] == "input of classifier"
    assert store.metadata["dtype"] == "float16"
    e2 = store.read_epoch(2)
    assert e2["val_embeddings"].shape == (597, 24)
    assert e2["train_embeddings"].shape == (300, 24)
    np.testing.assert_array_equal(e2["val_labels"], digits[3])
    assert set(np.unique(e2["train_labels"])) <= set(range(10))
    # The stored classifier is the model's, so it reproduces Keras's own
    # validation accuracy from the stored embeddings.
    np.testing.assert_array_equal(
        e2["kernel"], model.get_layer("classifier").kernel.numpy())
    z = e2["val_embeddings"] @ e2["kernel"] + e2["bias"]
    acc = np.mean(z.argmax(1) == digits[3])
    assert acc == pytest.approx(hist.history["val_accuracy"][-1], abs=0.01)
    with h5py.File(store._file(2), "r") as f:
        assert f["val_embeddings"].chunks == (128, 24)
        assert f.attrs["logs/val_accuracy"] == pytest.approx(
            hist.history["val_accuracy"][-1])
    assert estimate_file(tmp_path / "r.h5", k=2).epochs == [1, 2]


def test_same_training_rows_every_epoch(tmp_path, digits):
    model = make_mlp()
    _fit(model, digits, tmp_path / "r.h5", epochs=2, train_samples=0.25)
    store = HistoryStore(tmp_path / "r.h5")
    a, b = store.read_epoch(0), store.read_epoch(1)
    assert len(a["train_labels"]) == 300
    np.testing.assert_array_equal(a["train_labels"], b["train_labels"])


def test_functional_with_activation_after_dense_and_named_layer(
        tmp_path, digits):
    inp = keras.Input((64,))
    h = keras.layers.Dense(16, activation="relu", name="h1")(inp)
    h = keras.layers.Dense(12, activation="relu", name="h2")(h)
    out = keras.layers.Activation("softmax")(
        keras.layers.Dense(10, name="logits")(h))
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    ext, cls, name = recorder_lib.build_feature_extractor(model)
    assert cls.name == "logits" and ext.output.shape[-1] == 12
    # A named layer that does not feed the classifier: no weights stored.
    ext, cls, name = recorder_lib.build_feature_extractor(model, layer="h1")
    assert cls is None and name == "h1"
    _fit(model, digits, tmp_path / "r.h5", epochs=1, layer="h1")
    e0 = HistoryStore(tmp_path / "r.h5").read_epoch(0)
    assert e0["val_embeddings"].shape[1] == 16 and "kernel" not in e0
    assert 0 <= estimate_file(tmp_path / "r.h5", k=1).accuracy <= 1
    with pytest.raises(ValueError, match="not in model"):
        recorder_lib.build_feature_extractor(model, layer="nope")


def test_model_without_classifier_names_layer_argument():
    inp = keras.Input((8, 8, 1))
    out = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(10, 3)(inp))
    model = keras.Model(inp, out)
    with pytest.raises(ClassifierNotFoundError, match="layer="):
        recorder_lib.build_feature_extractor(model)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(10)

        def call(self, x):
            return self.d(x)

    with pytest.raises(ClassifierNotFoundError, match="layer="):
        recorder_lib.build_feature_extractor(Sub())


def test_resume_appends_and_rewrites_abandoned_epochs(tmp_path, digits):
    keras.utils.set_random_seed(1)
    model = make_mlp()
    _fit(model, digits, tmp_path / "r.h5", epochs=4)
    before = HistoryStore(tmp_path / "r.h5").read_epoch(1)["kernel"]
    # Resume from epoch 2 (as after restoring a checkpoint of epoch 1):
    # epochs 2-3 of the first run are replaced, 0-1 kept.
    _fit(model, digits, tmp_path / "r.h5", epochs=5, initial_epoch=2)
    store = HistoryStore(tmp_path / "r.h5")
    assert store.epochs() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(store.read_epoch(1)["kernel"], before)
    np.testing.assert_array_equal(
        store.read_epoch(4)["kernel"],
        model.get_layer("classifier").kernel.numpy())


def test_history_from_other_model_is_refused(tmp_path, digits):
    _fit(make_mlp(width=32), digits, tmp_path / "r.h5", epochs=1)
    with pytest.raises(HistoryMismatchError, match="different model"):
        _fit(make_mlp(width=16), digits, tmp_path / "r.h5", epochs=1)
    # Same architecture built again (new auto names) is accepted.
    _fit(make_mlp(width=32), digits, tmp_path / "r.h5", epochs=2,
         initial_epoch=1)
    assert HistoryStore(tmp_path / "r.h5").epochs() == [0, 1]


@pytest.mark.parametrize("on_error", ["continue", "stop"])
def test_write_errors_continue_or_stop(tmp_path, digits, monkeypatch,
                                       on_error):
    model = make_mlp()
    real = HistoryStore.write_epoch

    def failing(self, epoch, arrays, attrs=None):
        if epoch == 1:
            raise PermissionError(13, "Permission denied", self.path)
        return real(self, epoch, arrays, attrs)

    monkeypatch.setattr(HistoryStore, "write_epoch", failing)
    with pytest.warns(UserWarning, match="could not write epoch 1"):
        rec, hist = _fit(model, digits, tmp_path / "r.h5", epochs=4,
                         on_error=on_error)
    monkeypatch.undo()
    assert rec.failed_epochs == [1]
    store = HistoryStore(tmp_path / "r.h5")
    if on_error == "stop":
        assert len(hist.history["loss"]) == 2
        assert store.epochs() == [0]
    else:
        assert len(hist.history["loss"]) == 4
        assert store.epochs() == [0, 2, 3]
    assert store.read_epoch(0)["val_embeddings"].shape == (597, 32)


def test_log_val_metrics_matches_keras(tmp_path, digits):
    xt, yt, xv, yv = digits
    keras.utils.set_random_seed(0)
    model = make_mlp()
    rec = FeatureHistory(tmp_path / "r.h5", (xt, yt), (xv, yv),
                         log_val_metrics=True)
    hist = model.fit(xt, yt, epochs=2, batch_size=128, callbacks=[rec],
                     verbose=0)
    assert model.evaluate(xv, yv, verbose=0)[1] == pytest.approx(
        hist.history["val_accuracy"][-1], abs=1e-6)


def test_bad_arguments(tmp_path, digits):
    xt, yt, xv, yv = digits
    with pytest.raises(ValueError, match="on_error"):
        FeatureHistory(tmp_path / "r.h5", (xt, yt), (xv, yv),
                       on_error="ignore")
    with pytest.raises(TypeError, match="tuple"):
        FeatureHistory(tmp_path / "r.h5", xt, (xv, yv))
    with pytest.raises(ValueError, match="rows"):
        FeatureHistory(tmp_path / "r.h5", (xt, yt[:5]), (xv, yv))
    cfg = FeatureHistory(tmp_path / "r.h5", (xt, yt), (xv, yv),
                         dtype="float16").get_config()
    assert cfg["dtype"] == "float16" and cfg["filepath"].endswith("r.h5")


_KILL_SCRIPT = textwrap.dedent(r"""
    import os, signal, sys
    import h5py, keras, numpy as np
    from sklearn.datasets import load_digits
    from keras_autolr.runtime.feature_history import FeatureHistory
    path, kill_epoch, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    d = load_digits()
    x, y = (d.data / 16).astype("float32"), d.target
    real = h5py.Group.create_dataset
    state = {"epoch": None}

    def create(self, name, *a, **k):
        out = real(self, name, *a, **k)
        # Die (SIGKILL: no cleanup, no flush) half-way through a write.
        if state["epoch"] == kill_epoch and name == target:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    h5py.Group.create_dataset = create

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            state["epoch"] = epoch + 1  # the recorder writes next epoch's

    model = keras.Sequential([keras.Input((64,)),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    rec = FeatureHistory(path, (x, y), (x[:300], y[:300]), train_samples=200)
    state["epoch"] = 0
    model.fit(x, y, epochs=6, verbose=0, callbacks=[rec, Spy()])
""")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["train_embeddings"])
def test_killed_mid_epoch_write_keeps_completed_epochs(tmp_path, target):
    """SIGKILL inside the write of epoch 3 (store tests kill at random too)."""
    path = tmp_path / "r.h5"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(path), "3", target],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    with h5py.File(path, "r") as f:  # opens with plain h5py
        listed = list(f["epoch_list"][()])
    assert listed == [0, 1, 2]
    store = HistoryStore(path)
    for e in store.epochs():
        assert store.read_epoch(e)["val_embeddings"].shape == (300, 16)
    assert estimate_file(path, k=10, warn=False).epochs == [0, 1, 2]


@pytest.mark.slow
def test_jax_backend_subprocess(tmp_path):
    pytest.importorskip("jax")
    script = textwrap.dedent(r"""
        import sys, keras, numpy as np
        assert keras.backend.backend() == "jax"
        from keras_autolr.runtime.feature_history import (FeatureHistory,
            ProxyAccuracy, HistoryStore)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(600, 20)).astype("float32")
        y = (x[:, 0] > 0).astype("int32") + 2 * (x[:, 1] > 0)
        model = keras.Sequential([keras.Input((20,)),
                                  keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(4)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
            from_logits=True), metrics=["accuracy"])
        rec = FeatureHistory(sys.argv[1], (x, y), (x[:200], y[:200]))
        h = model.fit(x, y, epochs=3, verbose=0,
                      callbacks=[rec, ProxyAccuracy(rec, k=2)])
        store = HistoryStore(sys.argv[1])
        assert store.epochs() == [0, 1, 2], store.epochs()
        k = store.read_epoch(2)["kernel"]
        # Weights recorded after JAX state sync: equal to the final model's.
        np.testing.assert_allclose(k, np.asarray(model.layers[-1].kernel))
        assert store.metadata["backend"] == "jax"
        print("PROXY", h.history["val_proxy_accuracy"][-1])
    """)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=REPO,
               TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script,
                           str(tmp_path / "j.h5")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proxy = float(proc.stdout.split("PROXY")[1])
    assert 0.0 <= proxy <= 1.0


def test_second_fit_on_the_same_callback_continues_the_file(tmp_path, digits):
    xt, yt, xv, yv = digits
    keras.utils.set_random_seed(0)
    model = make_mlp()
    rec = FeatureHistory(tmp_path / "r.h5", (xt, yt), (xv, yv), train_samples=100)
    proxy = _proxy(rec)
    fit = lambda **kw: model.fit(xt, yt, batch_size=256, callbacks=[rec, proxy], verbose=0, **kw)  # noqa: E731
    fit(epochs=3)
    first = {e: rec.store.read_epoch(e)["kernel"] for e in range(3)}
    fit(epochs=2)  # Keras numbers these 0, 1: stored as 3, 4
    assert HistoryStore(tmp_path / "r.h5").epochs() == [0, 1, 2, 3, 4]
    for e, kernel in first.items():
        np.testing.assert_array_equal(HistoryStore(tmp_path / "r.h5").read_epoch(e)["kernel"], kernel)
    np.testing.assert_array_equal(HistoryStore(tmp_path / "r.h5").read_epoch(4)["kernel"],
                                  model.get_layer("classifier").kernel.numpy())
    assert proxy.results[-1].epochs == [3, 4]
    fit(epochs=7, initial_epoch=5)  # Keras's own numbering already continues: kept
    assert HistoryStore(tmp_path / "r.h5").epochs() == [0, 1, 2, 3, 4, 5, 6]


def _proxy(rec):
    from keras_autolr.runtime.feature_history import ProxyAccuracy
    return ProxyAccuracy(rec, k=2, fit=False)


_HOLDER = textwrap.dedent(r"""
    import sys, numpy as np
    from keras_autolr.runtime.feature_history.store import HistoryStore
    store = HistoryStore(sys.argv[1], fingerprint=sys.argv[2])
    store.write_epoch(0, {"val_labels": np.arange(3)})
    print("ready", flush=True)
    sys.stdin.readline()
    store.write_epoch(1, {"val_labels": np.arange(3)})
""")


def test_second_process_is_refused_at_train_begin(tmp_path, digits):
    xt, yt, xv, yv = digits
    model = make_mlp()
    path = tmp_path / "r.h5"
    env = dict(os.environ, PYTHONPATH=REPO)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), recorder_lib.model_fingerprint(model)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        rec = FeatureHistory(path, (xt, yt), (xv, yv))
        with pytest.raises(RuntimeError, match="Another process is writing") as info:
            model.fit(xt, yt, epochs=1, callbacks=[rec], verbose=0)
        assert str(path) in str(info.value)
        assert model.optimizer.iterations.numpy() == 0  # refused before any training step
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.wait(timeout=120) == 0
    finally:
        holder.kill()
    assert HistoryStore(path).epochs() == [0, 1]  # the first writer's epochs are all there
    # Once the other process is done, the same callback records (continuing after epoch 1).
    model.fit(xt, yt, epochs=3, initial_epoch=2, callbacks=[rec], verbose=0)
    assert HistoryStore(path).epochs() == [0, 1, 2]


def test_train_samples_default_records_every_training_row(tmp_path, digits):
    xt, yt, xv, yv = digits
    rec = FeatureHistory(tmp_path / "r.h5", (xt, yt), (xv, yv))
    make_mlp(width=8).fit(xt, yt, epochs=1, batch_size=256, callbacks=[rec], verbose=0)
    np.testing.assert_array_equal(rec.store.read_epoch(0)["train_labels"], yt)


@pytest.mark.jax
def test_split_like_keras_takes_the_last_rows_unshuffled():
    x, y = np.arange(10), np.arange(10) * 2
    (xt, yt), (xv, yv) = recorder_lib.split_like_keras((x, y), 0.25)
    np.testing.assert_array_equal(xt, np.arange(7))  # floor(10 * 0.75) = 7 rows train
    np.testing.assert_array_equal(yv, y[7:])
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        recorder_lib.split_like_keras((x, y), 1.0)
    with pytest.raises(ValueError, match="empty"):
        recorder_lib.split_like_keras((x[:1], y[:1]), 0.5)


@pytest.mark.jax
def test_validation_split_records_the_rows_keras_validates_on(tmp_path, digits):
    xt, yt, _, _ = digits
    keras.utils.set_random_seed(0)
    model = make_mlp(width=16)
    rec = FeatureHistory(tmp_path / "r.h5", (xt, yt), validation_split=0.2)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*differs from the recorded")  # the check stays quiet
        hist = model.fit(xt, yt, epochs=2, batch_size=128, validation_split=0.2, callbacks=[rec], verbose=0)
    split_at = int(np.floor(len(xt) * 0.8))
    last = rec.store.read_epoch(1)
    np.testing.assert_array_equal(last["val_labels"], yt[split_at:])
    np.testing.assert_array_equal(last["train_labels"], yt[:split_at])  # no validation row among them
    z = last["val_embeddings"] @ last["kernel"] + last["bias"]
    assert np.mean(z.argmax(1) == yt[split_at:]) == pytest.approx(hist.history["val_accuracy"][-1], abs=1e-6)


@pytest.mark.slow
def test_other_validation_set_than_fits_is_reported(tmp_path, digits):
    xt, yt, xv, yv = digits
    keras.utils.set_random_seed(0)
    model = make_mlp(width=16)
    wrong = (xv, np.roll(yv, 1))  # labels that the classifier cannot match
    rec = FeatureHistory(tmp_path / "r.h5", (xt, yt), wrong)
    with pytest.warns(UserWarning, match="validation_split=v"):
        model.fit(xt, yt, epochs=1, batch_size=128, validation_split=0.2, callbacks=[rec], verbose=0)


@pytest.mark.jax
def test_validation_set_is_required_once():
    x, y = np.zeros((10, 4)), np.zeros(10)
    with pytest.raises(ValueError, match="validation_split=<the fraction"):
        FeatureHistory("r.h5", (x, y))
    with pytest.raises(ValueError, match="not both"):
        FeatureHistory("r.h5", (x, y), (x, y), validation_split=0.2)
