import keras
import numpy as np
import pytest

from keras_autolr.runtime.mlrsnet.hypergradient import HypergradientDescent, hd_update

pytestmark = pytest.mark.jax


def test_sgd_rule_is_lr_plus_beta_dot_of_consecutive_gradients():
    rng = np.random.default_rng(0)
    g_prev, g = rng.normal(size=5).astype("float32"), rng.normal(size=5).astype("float32")
    lr, beta = 0.1, 0.01
    w_prev = rng.normal(size=5).astype("float32")
    w = w_prev - lr * g_prev  # an SGD step
    new = hd_update(lr, [g], [w], [w_prev], 1.0, beta, 1e-8)
    assert float(keras.ops.convert_to_numpy(new)) == pytest.approx(lr + beta * float(g @ g_prev), rel=1e-4)
    # first step: no previous direction, LR unchanged
    assert float(keras.ops.convert_to_numpy(hd_update(lr, [g], [w], [w_prev], 0.0, beta, 1e-8))) == pytest.approx(lr)
    # floored
    assert float(keras.ops.convert_to_numpy(hd_update(lr, [g], [w], [w_prev], 1.0, 1e6, 1e-8))) >= 1e-8


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_callback_adapts_lr_and_trains(opt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = x @ np.array([[1.0], [-1.0], [2.0], [0.5]], "float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(0.01) if opt == "sgd" else keras.optimizers.Adam(0.01)
    model.compile(optimizer, "mse")
    cb = HypergradientDescent(beta=1e-3 if opt == "sgd" else 1e-4, record_every=1)
    hist = model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[cb])
    lrs = np.array(cb.lr_history)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert np.all(np.isfinite(lrs)) and np.all(lrs > 0)
    if opt == "sgd":  # consecutive gradients agree early on a quadratic: LR grows
        assert lrs[-1] > lrs[0]


def test_beta_must_be_positive():
    with pytest.raises(ValueError, match="beta"):
        HypergradientDescent(beta=0)
