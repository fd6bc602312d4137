"""`LRFinder`: the range test as a callback; training starts from the pre-sweep state at the suggested LR."""

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_finder import LRFinder, LRFinderError
from tests.conftest import tiny_model, tiny_regression

pytestmark = pytest.mark.jax


class _FirstStep(keras.callbacks.Callback):
    """What the model holds when the first training batch begins."""

    def on_train_batch_begin(self, batch, logs=None):
        if not hasattr(self, "weights"):
            opt = self.model.optimizer
            self.weights = [np.array(v) for v in self.model.variables]
            self.iterations = int(opt.iterations)
            self.lr = lr_lib.get_learning_rate(opt)


def _fit(opt, finder, twin_weights=None, epochs=1):
    x, y = tiny_regression(n=256)
    model = tiny_model()
    if twin_weights is not None:
        model.set_weights(twin_weights)
    model.compile(optimizer=opt, loss="mse")
    before = [np.array(v) for v in model.variables]
    spy = _FirstStep()
    model.fit(x, y, epochs=epochs, batch_size=32, shuffle=False, verbose=0,
              callbacks=[cb for cb in (finder, spy) if cb is not None])
    return model, before, spy


@pytest.mark.parametrize("pick", ["steepest", "valley", "min_over_10"])
def test_starts_from_pre_sweep_weights_at_the_picked_lr(pick):
    x, y = tiny_regression(n=256)
    finder = LRFinder(x, y, pick=pick, batch_size=4, steps=60, min_lr=1e-4, max_lr=10.0)
    model, before, spy = _fit(keras.optimizers.SGD(0.5), finder)
    assert finder.result is not None and finder.result.suggestions[pick] is not None
    assert len(finder.result.lrs) >= 5
    for a, b in zip(before, spy.weights):
        np.testing.assert_array_equal(a, b)
    assert spy.iterations == 0
    assert spy.lr == pytest.approx(finder.result.suggestions[pick], rel=1e-6)
    assert spy.lr != pytest.approx(0.5)


def test_training_equals_a_plain_fit_at_the_suggested_lr():
    x, y = tiny_regression(n=256)
    finder = LRFinder(x, y, batch_size=4, steps=60, min_lr=1e-4, max_lr=10.0)
    model, before, _ = _fit(keras.optimizers.SGD(0.5), finder)
    twin, _, _ = _fit(keras.optimizers.SGD(finder.result.suggestion), None, twin_weights=[w for w in before])
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_schedule_is_scaled_to_start_at_the_suggestion():
    x, y = tiny_regression(n=256)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=4, decay_rate=0.5)
    finder = LRFinder(x, y, batch_size=4, steps=60, min_lr=1e-4, max_lr=10.0)
    model, _, spy = _fit(keras.optimizers.SGD(schedule), finder, epochs=2)
    s = finder.result.suggestion
    assert spy.lr == pytest.approx(s, rel=1e-6)
    opt = model.optimizer
    steps = int(opt.iterations)  # 16: the schedule kept its shape from the suggestion
    assert steps == 16
    assert lr_lib.get_learning_rate(opt) == pytest.approx(s * 0.5 ** (steps / 4), rel=1e-5)


def test_no_suggestion_warns_and_leaves_the_lr_unchanged():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = rng.normal(size=(256, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    spy = _FirstStep()
    finder = LRFinder(x, y, batch_size=16, steps=16, min_lr=1e3, max_lr=1e6)
    with pytest.warns(UserWarning, match="left unchanged"):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[finder, spy])
    assert finder.result.suggestion is None
    assert spy.lr == pytest.approx(0.01)


def test_bad_pick_is_refused():
    x, y = tiny_regression(n=64)
    with pytest.raises(LRFinderError, match="pick"):
        LRFinder(x, y, pick="largest")
