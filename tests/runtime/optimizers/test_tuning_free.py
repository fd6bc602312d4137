"""Prodigy, DAdaptAdam, DoG, ReferenceScheduleFreeAdamW inside `fit`: logging, bad input, saving."""

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_callback import LearningRateLogger
from keras_autolr.runtime.optimizers import DAdaptAdam, DoG, EvalWeights, Prodigy, ReferenceScheduleFreeAdamW
from tests.conftest import tiny_model, tiny_regression

MAKERS = {
    "prodigy": lambda: Prodigy(),
    "dadapt": lambda: DAdaptAdam(),
    "dog": lambda: DoG(init_step_value=1e-3),  # the default 1e-6 needs more than 32 steps to start
    "sf_ref": lambda: ReferenceScheduleFreeAdamW(1e-2, warmup_steps=5),
}


def _fit(opt, epochs=3, callbacks=()):
    x, y = tiny_regression(n=128)
    model = tiny_model()
    model.compile(optimizer=opt, loss="mse")
    hist = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=list(callbacks))
    return model, hist


@pytest.mark.jax
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_learns_in_fit_and_logs_the_effective_step_size(name):
    # d starts at 1e-6 and needs ~30 steps to reach a useful size: 6 epochs of 8 steps.
    model, hist = _fit(MAKERS[name](), epochs=6, callbacks=[LearningRateLogger()])
    loss = hist.history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    lrs = hist.history["learning_rate"]
    assert len(lrs) == 6 and all(np.isfinite(lrs))
    opt = model.optimizer
    assert lrs[-1] == pytest.approx(float(opt.effective_learning_rate))
    assert lr_lib.get_learning_rate(opt) == pytest.approx(lrs[-1])


@pytest.mark.jax
@pytest.mark.parametrize("name", ["prodigy", "dadapt"])
def test_step_size_estimate_grows_and_set_learning_rate_sets_the_multiplier(name):
    model, hist = _fit(MAKERS[name](), callbacks=[LearningRateLogger()])
    opt = model.optimizer
    d = float(opt._d.value)
    assert d > 1e-5  # grew from initial_d = 1e-6
    assert hist.history["learning_rate"][-1] == pytest.approx(d)
    lr_lib.set_learning_rate(opt, 0.5)
    assert float(opt.learning_rate) == 0.5  # the multiplier
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.5 * d)  # d * lr


@pytest.mark.jax
def test_dog_reports_lr_times_eta():
    opt = DoG(init_step="distance", init_step_value=1e-3, learning_rate=2.0)
    w = keras.Variable(np.array([1.0, -2.0], "float32"))
    assert lr_lib.get_learning_rate(opt) == 0.0  # before any step
    opt.apply([keras.ops.convert_to_tensor(np.array([0.5, -0.5], "float32"))], [w])
    eta = 1e-3 / np.sqrt(0.5 + 1e-8)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(2.0 * eta, rel=1e-6)
    np.testing.assert_allclose(np.asarray(w), [1.0 - 2 * eta * 0.5, -2.0 + 2 * eta * 0.5], rtol=1e-6)


def _state(opt, variables):
    return [np.array(v) for v in list(variables) + list(opt.variables)]


@pytest.mark.jax
@pytest.mark.parametrize("name", sorted(MAKERS))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_skips_the_step(name, bad):
    opt = MAKERS[name]()
    variables = [keras.Variable(np.array([[1.0, -2.0], [0.5, 3.0]], "float32")), keras.Variable(np.zeros(2, "float32"))]
    good = [keras.ops.convert_to_tensor(np.array([[0.1, -0.2], [0.3, 0.1]], "float32")),
            keras.ops.convert_to_tensor(np.array([0.2, -0.1], "float32"))]
    opt.apply(good, variables)
    opt.apply(good, variables)
    before = _state(opt, variables)
    poisoned = [good[0], keras.ops.convert_to_tensor(np.array([bad, 0.1], "float32"))]
    opt.apply(poisoned, variables)
    after = _state(opt, variables)
    iterations = [v.path for v in opt.variables].index(opt.iterations.path) + len(variables)
    for i, (a, b) in enumerate(zip(before, after)):
        if i != iterations:
            np.testing.assert_array_equal(a, b)
    assert int(opt.iterations) == 3  # Keras's counter still advances
    assert np.isfinite(lr_lib.get_learning_rate(opt))
    opt.apply(good, variables)  # and training goes on
    assert all(np.all(np.isfinite(np.asarray(v))) for v in variables)


@pytest.mark.jax
@pytest.mark.parametrize("name", ["prodigy", "dadapt", "dog"])
def test_all_zero_gradients_at_the_start_keep_the_estimate_finite(name):
    opt = MAKERS[name]()
    w = keras.Variable(np.array([1.0, -2.0, 0.5], "float32"))
    zero = keras.ops.zeros((3,))
    for _ in range(3):
        opt.apply([zero], [w])
    np.testing.assert_array_equal(np.asarray(w), [1.0, -2.0, 0.5])
    assert np.isfinite(lr_lib.get_learning_rate(opt))
    if name != "dog":
        assert float(opt._d.value) == pytest.approx(1e-6)
    for _ in range(20):
        opt.apply([keras.ops.convert_to_tensor(2 * np.asarray(w))], [w])  # f(w) = |w|^2
    assert np.all(np.isfinite(np.asarray(w)))
    assert np.isfinite(lr_lib.get_learning_rate(opt)) and lr_lib.get_learning_rate(opt) > 0


@pytest.mark.jax
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_config_round_trips_and_saved_model_reloads(name, tmp_path):
    opt = MAKERS[name]()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(opt))
    assert type(clone) is type(opt)
    assert clone.get_config() == opt.get_config()
    model, _ = _fit(opt, epochs=1)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is type(opt)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.jax
def test_exclude_from_weight_decay_is_honoured():
    w, b = (keras.Variable(np.ones(2, "float32"), name="w"), keras.Variable(np.ones(2, "float32"), name="bias"))
    opt = DoG(init_step="learning_rate", init_step_value=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    zero = keras.ops.zeros((2,))
    opt.apply([zero, zero], [w, b])
    np.testing.assert_allclose(np.asarray(w), 1 - 0.1 * 0.5)  # decayed: g + wd * w
    np.testing.assert_array_equal(np.asarray(b), 1.0)  # excluded


@pytest.mark.jax
def test_eval_weights_swap_in_x_and_restore_y_exactly():
    x, y = tiny_regression(n=128)
    model = tiny_model()
    model.compile(optimizer=ReferenceScheduleFreeAdamW(1e-2), loss="mse")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    opt = model.optimizer
    ys = [np.array(v) for v in model.trainable_variables]
    zs = [np.array(opt._z[opt._get_variable_index(v)]) for v in model.trainable_variables]
    with EvalWeights(model):
        for v, yi, zi in zip(model.trainable_variables, ys, zs):
            np.testing.assert_allclose(np.asarray(v), (yi - 0.1 * zi) / 0.9, rtol=1e-6, atol=1e-7)
    for v, yi in zip(model.trainable_variables, ys):
        np.testing.assert_array_equal(np.asarray(v), yi)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="IndexedSlices are TensorFlow's")
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_sparse_embedding_gradient_steps_as_its_dense_equal(name):
    # TF hands an Embedding's gradient over as IndexedSlices (the PTB leaderboard workload).
    import tensorflow as tf

    values = tf.constant(np.random.default_rng(0).normal(size=(3, 4)), "float32")
    sparse = tf.IndexedSlices(values, tf.constant([0, 2, 2]), dense_shape=tf.constant([5, 4]))
    init = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    after = []
    for grad in (sparse, tf.convert_to_tensor(sparse)):
        var = keras.Variable(init)
        opt = MAKERS[name]()
        for _ in range(3):
            opt.apply([grad], [var])
        after.append(np.asarray(var))
    assert not np.array_equal(after[0], init)
    np.testing.assert_array_equal(after[0], after[1])
