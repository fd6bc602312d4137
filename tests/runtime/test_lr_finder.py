import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_finder import LRFinderError, find_lr, min_over_10, steepest, valley
from keras_autolr.runtime.optimizers import Prodigy
from tests.conftest import tiny_model, tiny_regression


def _compiled(opt, n=512):
    x, y = tiny_regression(n=n)
    model = tiny_model()
    model.compile(optimizer=opt, loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model, x, y


def _everything(model):
    opt = model.optimizer
    return [np.array(v) for v in list(model.variables) + list(opt.variables) + list(model.metrics_variables)]


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(1e-3),
    "sgd_schedule": lambda: keras.optimizers.SGD(
        keras.optimizers.schedules.ExponentialDecay(1e-2, 10, 0.5), momentum=0.9),
    "prodigy": lambda: Prodigy(),
}


@pytest.mark.jax
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_restores_weights_and_optimizer_state_bit_exactly(name):
    model, x, y = _compiled(OPTIMIZERS[name]())
    twin, _, _ = _compiled(OPTIMIZERS[name]())  # trained identically, without the sweep
    twin.set_weights(model.get_weights())
    for m in (model, twin):
        m.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)  # non-trivial state
    opt = model.optimizer
    raw_lr, lr_before, n_vars = opt._learning_rate, lr_lib.get_learning_rate(opt), len(opt.variables)
    before = _everything(model)

    result = find_lr(model, x, y, batch_size=16, steps=30)

    assert len(result.lrs) >= 5
    after = _everything(model)
    assert len(after) == len(before) and len(opt.variables) == n_vars
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert opt._learning_rate is raw_lr
    assert lr_lib.get_learning_rate(opt) == lr_before
    # And training afterwards is exactly the training it would have been.
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    twin.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.jax
def test_sweep_is_exponential_smoothed_and_stops_on_divergence():
    model, x, y = _compiled(keras.optimizers.SGD())
    result = find_lr(model, x, y, batch_size=4, steps=100, min_lr=1e-4, max_lr=100.0)
    assert result.diverged and 5 <= len(result.lrs) < 100
    ratios = np.diff(np.log(result.lrs))
    np.testing.assert_allclose(ratios, np.log(1e6) / 99, rtol=1e-9)
    assert result.lrs[0] == pytest.approx(1e-4)
    beta, avg = 0.98, 0.0
    for i, (raw, smooth) in enumerate(zip(result.raw_losses, result.losses)):
        avg = beta * avg + (1 - beta) * raw
        assert smooth == pytest.approx(avg / (1 - beta ** (i + 1)))
    assert result.losses[-1] > 4.0 * min(result.losses)
    s = result.suggestions
    assert set(s) == {"steepest", "valley", "min_over_10"} and result.suggestion == s["steepest"]
    assert all(1e-4 <= v <= 100.0 for v in s.values())
    # A useful SGD LR for this regression is found (diverges well above 1).
    assert 1e-3 < result.suggestion < 1.0


def test_suggestion_functions_follow_fastai():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    assert steepest(lrs, [1.0, 0.95, 0.5, 0.45, 0.44, 3.0]) == 1e-3
    assert min_over_10(lrs, [1.0, 0.95, 0.5, 0.45, 0.44, 3.0]) == pytest.approx(0.1)
    # Longest decreasing run 0..4 (length 5): start 4 - 5 = -1, sections 5/3 -> idx -1 + 1 + 0 = 0.
    assert valley(lrs, [1.0, 0.95, 0.5, 0.45, 0.44, 3.0]) == 1e-4
    # Run 0, 2..5 (length 5, fastai's start = 5 - 5 = 0): idx 0 + int(5/3) + int(5/6) = 1.
    assert valley(lrs, [3.0, 3.5, 1.0, 0.9, 0.8, 0.7]) == 1e-3


@pytest.mark.jax
def test_tf_data_input():
    tf = pytest.importorskip("tensorflow")
    model, x, y = _compiled(keras.optimizers.SGD())
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    result = find_lr(model, ds, steps=20, min_lr=1e-3, max_lr=1.0)
    assert len(result.lrs) == 20 and result.suggestion is not None


@pytest.mark.jax
def test_fewer_batches_than_steps_gives_a_shorter_full_range_sweep():
    model, x, y = _compiled(keras.optimizers.SGD(), n=160)
    result = find_lr(model, x, y, batch_size=16, steps=100, max_lr=0.1)
    assert len(result.lrs) == 10
    assert result.lrs[-1] == pytest.approx(0.1)


@pytest.mark.jax
def test_loss_that_never_decreases_gives_no_suggestion_and_says_why():
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(256, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    model.optimizer.build(model.trainable_variables)
    with pytest.warns(UserWarning, match="never fell"):
        result = find_lr(model, x, y, batch_size=16, steps=16, min_lr=1e3, max_lr=1e6)
    assert result.suggestion is None and result.message and "never fell" in result.message
    assert result.suggestions == {"steepest": None, "valley": None, "min_over_10": None}


@pytest.mark.jax
def test_clear_errors():
    x, y = tiny_regression(n=64)
    model = tiny_model()
    with pytest.raises(LRFinderError, match="Compile"):
        find_lr(model, x, y)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(LRFinderError, match="optimizer.build"):
        find_lr(model, x, y)
    model.optimizer.build(model.trainable_variables)
    with pytest.raises(LRFinderError, match="at least 5"):
        find_lr(model, x, y, batch_size=32)
    with pytest.raises(LRFinderError, match="min_lr"):
        find_lr(model, x, y, min_lr=1.0, max_lr=0.1)


def test_plot_writes_a_file(tmp_path):
    pytest.importorskip("matplotlib")
    model, x, y = _compiled(keras.optimizers.SGD())
    result = find_lr(model, x, y, batch_size=16, steps=20, min_lr=1e-3, max_lr=1.0)
    path = tmp_path / "lr.png"
    result.plot(str(path))
    assert path.stat().st_size > 1000


# -- the LRFinder callback and BackupAndRestore ---------------------------------


class _CrashAt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("simulated crash at epoch 2")


def _finder_fit(x, y, extra, backup_first):
    from keras_autolr.runtime.lr_finder import LRFinder

    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    finder = LRFinder(x, y, batch_size=4, steps=60, min_lr=1e-4, max_lr=10.0)
    callbacks = extra + [finder] if backup_first else [finder] + extra
    model.fit(x, y, epochs=4, batch_size=32, shuffle=False, verbose=0, callbacks=callbacks)
    return model, finder


@pytest.mark.jax
@pytest.mark.parametrize("backup_first", [True, False])
def test_resumed_fit_keeps_the_sweep_result_and_does_not_sweep_again(tmp_path, backup_first):
    """The sweep's result and LR come back with the backup; listed after the backup, no sweep runs."""
    import warnings

    x, y = tiny_regression(n=256)
    reference, ref_finder = _finder_fit(x, y, [], backup_first)
    assert ref_finder.sweeps == 1 and ref_finder.result.suggestion is not None

    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _finder_fit(x, y, [keras.callbacks.BackupAndRestore(backup), _CrashAt()], backup_first)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed, finder = _finder_fit(x, y, [keras.callbacks.BackupAndRestore(backup)], backup_first)

    # Listed after the backup it does not sweep; listed before, it cannot know and says so.
    assert finder.sweeps == (0 if backup_first else 1)
    assert any("list BackupAndRestore before LRFinder" in str(w.message) for w in caught) == (not backup_first)
    assert finder.result == ref_finder.result
    assert lr_lib.get_learning_rate(resumed.optimizer) == lr_lib.get_learning_rate(reference.optimizer)
    assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations)
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
