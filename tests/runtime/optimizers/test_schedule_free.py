import keras
import numpy as np
import pytest

from keras_autolr.runtime.optimizers.schedule_free import ScheduleFreeAdamW
from tests.conftest import tiny_model, tiny_regression


@pytest.mark.jax
def test_first_step_inside_fit_is_a_signed_adam_step():
    # Step 1 of schedule-free Adam from z0 = x0 = w0 gives w1 = w0 - lr * g / (|g| + eps):
    # every weight with a gradient moves by ~lr. Keras's own optimizer, on the
    # TensorFlow backend, instead collapses the weights towards zero.
    x, y = tiny_regression(n=64)
    model = tiny_model()
    model.compile(optimizer=ScheduleFreeAdamW(1e-2), loss="mse")
    w0 = [np.array(v) for v in model.trainable_weights]
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    moved = np.concatenate([np.abs(np.array(v) - w).ravel() for v, w in zip(model.trainable_weights, w0)])
    moved = moved[moved > 1e-7]  # dead-ReLU weights get no gradient
    assert moved.size > 0
    np.testing.assert_allclose(moved, 1e-2, rtol=1e-3)


@pytest.mark.jax
def test_learns_and_round_trips():
    x, y = tiny_regression(n=256)
    model = tiny_model()
    model.compile(optimizer=ScheduleFreeAdamW(3e-3), loss="mse")
    h = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < 0.9 * h.history["loss"][0]
    cfg = keras.saving.serialize_keras_object(model.optimizer)
    assert isinstance(keras.saving.deserialize_keras_object(cfg), ScheduleFreeAdamW)
