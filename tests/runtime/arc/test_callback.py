import math
import warnings

import keras
import numpy as np
import pytest

from keras_autolr.runtime.arc import ARC, ControllerError, auto_frequency, build_controller
from keras_autolr.runtime.arc.controller import KEEP, LOWER, RAISE
from keras_autolr.runtime.arc.preprocessing import resize_linear


class Fixed(keras.layers.Layer):
    """A controller layer that always outputs the same probabilities."""

    def __init__(self, probs, **kw):
        super().__init__(**kw)
        self.probs = list(probs)

    def call(self, x):
        p = keras.ops.convert_to_tensor(np.asarray(self.probs, "float32"))
        return keras.ops.zeros_like(x[:, 0, :1]) + p


def fixed_controller(probs):
    inp = keras.Input((300, 3))
    return keras.Model(inp, Fixed(probs)(inp))


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x.sum(1, keepdims=True) > 0).astype("float32")
    return x, y


def _model(lr=1e-2):
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    m.compile(keras.optimizers.SGD(lr), "binary_crossentropy")
    return m


@pytest.mark.jax
def test_raise_every_frequency_epochs_and_logs():
    x, y = _data()
    m = _model(1e-2)
    cb = ARC(fixed_controller([0.7, 0.2, 0.1]), frequency=2)
    h = m.fit(x, y, batch_size=16, epochs=7, validation_split=0.25, callbacks=[cb], verbose=0)
    # Decisions at the ends of epochs 2, 4, 6 (not after the last epoch).
    assert h.history["arc_decision"] == [-1, RAISE, -1, RAISE, -1, RAISE, -1]
    lrs = h.history["learning_rate"]
    np.testing.assert_allclose(lrs, [1e-2, 1e-2, 1.618e-2, 1.618e-2] + [1e-2 * 1.618**2] * 2 + [1e-2 * 1.618**3], rtol=1e-5)
    assert h.history["arc_p_raise"][1] == pytest.approx(0.7)
    assert math.isnan(h.history["arc_p_raise"][0])
    assert [d["decision"] for d in cb.decisions] == ["raise"] * 3


@pytest.mark.jax
def test_batch_losses_are_recovered_from_running_mean():
    x, y = _data(64)
    m = _model(0.5)

    cb = ARC(fixed_controller([0.0, 1.0, 0.0]), frequency=1)
    means = []

    class Means(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            means.append(float(logs["loss"]))

    m.fit(x, y, batch_size=16, epochs=2, shuffle=False, callbacks=[cb, Means()], verbose=0)
    # 4 batches per epoch: the last epoch's recorded losses must average to Keras's means.
    train = cb._last_epoch_losses
    assert len(train) == 4
    for k in range(4):
        assert np.mean(train[: k + 1]) == pytest.approx(means[4 + k], rel=1e-5)
    # A finished cycle is kept as the window's 100 points of it.
    np.testing.assert_array_equal(cb._cycles[1][0], resize_linear(train, 100).astype("float32"))


@pytest.mark.jax
def test_works_without_validation_and_resets_each_fit():
    x, y = _data()
    m = _model()
    cb = ARC(fixed_controller([0.1, 0.2, 0.7]), frequency=1)
    m.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert len(cb.decisions) == 2
    assert cb.window()[:, 1].tolist() == [0.0] * 300  # no val column
    m.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert len(cb.decisions) == 1  # state was reset
    assert len(cb._cycles) == 2


def test_auto_frequency():
    assert auto_frequency(30) == 3
    assert auto_frequency(98) == 9
    assert auto_frequency(5) == 1
    x, y = _data()
    cb = ARC(fixed_controller([0.0, 1.0, 0.0]))
    h = _model().fit(x, y, epochs=20, verbose=0, callbacks=[cb])
    assert [i for i, d in enumerate(h.history["arc_decision"]) if d >= 0] == [1, 3, 5, 7, 9, 11, 13, 15, 17]
    # 15 epochs: every 2 (7 decisions), not every epoch (14, issue 19).
    h = _model().fit(x, y, epochs=15, verbose=0, callbacks=[ARC(fixed_controller([0.0, 1.0, 0.0]))])
    assert [i for i, d in enumerate(h.history["arc_decision"]) if d >= 0] == [1, 3, 5, 7, 9, 11, 13]


def test_too_few_epochs_warns_and_keeps_lr():
    x, y = _data()
    m = _model(1e-2)
    with pytest.warns(UserWarning, match="no decision"):
        h = m.fit(x, y, epochs=3, verbose=0, callbacks=[ARC(fixed_controller([1.0, 0.0, 0.0]), frequency=3)])
    assert h.history["learning_rate"] == pytest.approx([1e-2] * 3)


@pytest.mark.filterwarnings("ignore:ARC decides")
@pytest.mark.jax
def test_nonfinite_loss_lowers_lr_and_never_writes_nan():
    x, y = _data()
    x_bad = x.copy()
    x_bad[:16] = np.nan  # first batch of every epoch is NaN
    m = _model(1e-2)
    cb = ARC(fixed_controller([1.0, 0.0, 0.0]), frequency=5)
    h = m.fit(x_bad, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[cb])
    assert h.history["arc_decision"] == [LOWER, LOWER, LOWER]
    assert all(math.isfinite(v) and v > 0 for v in h.history["learning_rate"])
    assert h.history["learning_rate"][-1] == pytest.approx(1e-2 * 0.618**2)


def test_config_round_trip(tmp_path):
    path = tmp_path / "c.keras"
    build_controller(seed=0).save(path)
    cb = ARC(str(path), frequency=4, verbose=1)
    cb2 = ARC.from_config(cb.get_config())
    assert cb2.get_config() == cb.get_config() == {
        "controller": str(path), "frequency": 4, "use_validation": True, "verbose": 1}
    assert ARC.from_config(ARC(use_validation=False).get_config()).use_validation is False


def test_use_validation_false_hides_val_column():
    x, y = _data()
    cb = ARC(fixed_controller([0.0, 1.0, 0.0]), frequency=1, use_validation=False)
    _model().fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[cb])
    assert (cb.window()[:, 1] == 0).all() and cb._cycles[0][1]  # val recorded, not shown


def test_bad_arguments():
    with pytest.raises(ValueError, match="frequency"):
        ARC(frequency=0)
    with pytest.raises(ValueError, match="frequency"):
        ARC(frequency="often")
    with pytest.raises(ControllerError):
        ARC(controller=42)
    x, y = _data()
    with pytest.raises(ControllerError, match="does not exist"):
        _model().fit(x, y, epochs=2, verbose=0, callbacks=[ARC("/nonexistent/arc.keras")])


def test_schedule_optimizer_is_controlled():
    x, y = _data()
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    sched = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=1000, decay_rate=0.9)
    m.compile(keras.optimizers.Adam(sched), "binary_crossentropy")
    h = m.fit(x, y, epochs=3, verbose=0, callbacks=[ARC(fixed_controller([0.0, 0.0, 1.0]), frequency=1)])
    assert h.history["learning_rate"][2] == pytest.approx(h.history["learning_rate"][0] * 0.618**2, rel=1e-2)


@pytest.mark.slow
def test_shipped_controller_runs_by_default():
    import os
    from keras_autolr.runtime.arc import default_controller_path

    if not os.path.exists(default_controller_path()):
        pytest.skip("shipped controller not present")
    x, y = _data()
    h = _model().fit(x, y, epochs=4, validation_split=0.25, verbose=0, callbacks=[ARC(frequency=1)])
    assert set(h.history["arc_decision"][:3]) <= {0, 1, 2}


@pytest.mark.jax
def test_batch_recording_is_async_safe_and_matches_sync_recording():
    import threading

    threads = set()

    class Spy(ARC):
        def on_train_batch_end(self, batch, logs=None):
            threads.add(threading.current_thread() is threading.main_thread())
            super().on_train_batch_end(batch, logs)

    class Sync(keras.callbacks.Callback):
        # A batch hook that is not async_safe forces Keras to call hooks in order.
        def on_train_batch_end(self, batch, logs=None):
            pass

    x, y = _data(96)
    runs = []
    for extra in ([], [Sync()]):
        keras.utils.set_random_seed(0)
        cb = Spy(fixed_controller([0.0, 1.0, 0.0]), frequency=1)
        _model(0.5).fit(x, y, batch_size=16, epochs=2, shuffle=False, callbacks=[cb] + extra, verbose=0)
        runs.append(cb._last_epoch_losses)
    assert len(runs[0]) == 6
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)
    if keras.backend.backend() == "jax":
        assert False in threads  # Keras dispatched ARC's batch hook off the main thread
    else:
        assert threads == {True}  # TensorFlow is not thread-safe: Keras calls it inline


def test_deepcopy_and_shared_predictor(tmp_path):
    import copy

    path = tmp_path / "c.keras"
    build_controller(seed=0).save(path)
    a, b = ARC(str(path), frequency=1), ARC(str(path), frequency=1)
    assert a._get_predictor() is b._get_predictor()  # loaded and compiled once per process
    c = copy.deepcopy(a)  # KerasTuner deep-copies callbacks
    assert c._predictor is None and c.get_config() == a.get_config()
    x, y = _data()
    h = _model().fit(x, y, epochs=2, verbose=0, callbacks=[c])
    assert len(h.history["arc_decision"]) == 2
    path.write_bytes(b"not a zip")  # a changed file is reloaded, not served stale
    with pytest.raises(ControllerError):
        ARC(str(path))._get_predictor()


# -- issue 15: behaviour found by trying to break ARC -------------------------


@pytest.mark.jax
def test_unknown_cardinality_dataset_does_not_stall_epoch_end():
    """Keras begins a last, empty step on a dataset of unknown size and never ends it."""
    import time

    tf = pytest.importorskip("tensorflow")
    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True).batch(16)
    assert int(ds.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY)
    cb = ARC(fixed_controller([0.0, 1.0, 0.0]), frequency=1)
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _model().fit(ds, epochs=2, verbose=0, callbacks=[cb])
    assert time.monotonic() - start < 30  # was 2 x 120 s, waiting on the empty step
    assert not [w for w in caught if str(w.message).startswith("ARC")]
    # Every real batch's loss but the last (Keras does not know this dataset's batch
    # sizes, so the last cannot be recovered exactly), and not the empty step's.
    assert len(cb._last_epoch_losses) == 3 and len(cb._cycles) == 2


def test_schedule_reaching_zero_skips_decisions_with_one_warning():
    x, y = _data()  # 4 batches of 16 per epoch
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    # Positive at the end of epoch 1 (step 4), 0 from step 6 on.
    sched = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=6, alpha=0.0)
    m.compile(keras.optimizers.SGD(sched), "binary_crossentropy")
    cb = ARC(fixed_controller([1.0, 0.0, 0.0]), frequency=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = m.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0, callbacks=[cb])
    zero = [w for w in caught if "reached 0" in str(w.message)]
    assert len(zero) == 1 and "cannot scale" in str(zero[0].message)
    assert h.history["arc_decision"] == [RAISE, -1, -1, -1, -1]
    # Only decisions it applied are recorded.
    assert [d["decision"] for d in cb.decisions] == ["raise"]
    assert cb.decisions[0]["lr_after"] == pytest.approx(cb.decisions[0]["lr_before"] * 1.618)


class _LRSpy(keras.callbacks.Callback):
    """Listed after ARC: the LR used by each epoch's steps, and what epoch end reports."""

    def __init__(self):
        super().__init__()
        self.used, self.logged, self.optimizer_at_end = [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.used.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def on_epoch_end(self, epoch, logs=None):
        self.logged.append(logs["learning_rate"])
        # What keras.callbacks.TensorBoard logs as epoch_learning_rate.
        self.optimizer_at_end.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


@pytest.mark.jax
def test_epoch_end_reports_the_lr_the_epoch_used_whatever_the_callback_order():
    x, y = _data()
    spy = _LRSpy()
    h = _model(1e-2).fit(x, y, batch_size=16, epochs=4, verbose=0,
                         callbacks=[ARC(fixed_controller([1.0, 0.0, 0.0]), frequency=1), spy])
    np.testing.assert_allclose(spy.used, [1e-2 * 1.618**k for k in range(4)], rtol=1e-5)
    np.testing.assert_allclose(spy.logged, spy.used, rtol=1e-6)
    np.testing.assert_allclose(spy.optimizer_at_end, spy.used, rtol=1e-6)
    np.testing.assert_allclose(h.history["learning_rate"], spy.used, rtol=1e-6)


def test_tensorboard_epoch_learning_rate_is_the_lr_used(tmp_path):
    tf = pytest.importorskip("tensorflow")
    x, y = _data()
    spy = _LRSpy()
    board = keras.callbacks.TensorBoard(str(tmp_path))
    _model(1e-2).fit(x, y, batch_size=16, epochs=3, verbose=0,
                     callbacks=[ARC(fixed_controller([1.0, 0.0, 0.0]), frequency=1), board, spy])
    logged = {}
    for path in (tmp_path / "train").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                if v.tag == "epoch_learning_rate":
                    logged[event.step] = float(tf.make_ndarray(v.tensor))
    np.testing.assert_allclose([logged[e] for e in range(3)], spy.used, rtol=1e-6)


class _Halver(keras.callbacks.Callback):
    """A user callback that also changes the LR (not one ARC knows by name)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= 1:
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self.model.optimizer.learning_rate = lr / 2


@pytest.mark.parametrize("order", ["reduce_first", "arc_first"])
def test_another_lr_controller_in_the_fit_is_named_in_a_warning(order):
    x, y = _data()
    arc = ARC(fixed_controller([0.0, 1.0, 0.0]), frequency=1)
    plateau = keras.callbacks.ReduceLROnPlateau("loss", patience=0, min_delta=10.0)
    callbacks = [plateau, arc] if order == "reduce_first" else [arc, plateau]
    with pytest.warns(UserWarning, match="ReduceLROnPlateau") as caught:
        _model().fit(x, y, epochs=3, verbose=0, callbacks=callbacks)
    messages = [str(w.message) for w in caught if "ReduceLROnPlateau" in str(w.message)]
    assert len(messages) == 1 and "Remove" in messages[0]


@pytest.mark.parametrize("order", ["other_first", "arc_first"])
def test_lr_changed_between_arc_writes_warns_once(order):
    x, y = _data()
    arc = ARC(fixed_controller([0.0, 1.0, 0.0]), frequency=1)
    callbacks = [_Halver(), arc] if order == "other_first" else [arc, _Halver()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _model().fit(x, y, epochs=4, verbose=0, callbacks=callbacks)
    changed = [str(w.message) for w in caught if "changed" in str(w.message)]
    assert len(changed) == 1, changed
    assert "another callback" in changed[0] and "Remove" in changed[0]


def test_lr_logger_and_arc_alone_do_not_warn():
    from keras_autolr.runtime.lr_callback import LearningRateLogger

    x, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _model().fit(x, y, epochs=3, verbose=0,
                     callbacks=[ARC(fixed_controller([1.0, 0.0, 0.0]), frequency=1), LearningRateLogger()])
    assert not [w for w in caught if str(w.message).startswith("ARC")]
