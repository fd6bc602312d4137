"""ARC records each batch's own training loss, also for a smaller last batch (issue 19).

Backend-neutral (marked `jax`: CI runs it with KERAS_BACKEND=jax too). The
losses ARC recovers from Keras's running epoch mean are checked against the
losses of the same steps taken one at a time by `train_on_batch` on a twin
model (same weights, same batches, same optimizer), which reports each batch's
loss on its own.
"""

import keras
import numpy as np
import pytest

from keras_autolr.runtime.arc import ARC
from tests.runtime.arc.test_callback import fixed_controller

pytestmark = pytest.mark.jax

BATCH = 16


def _data(n):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, :2].sum(1, keepdims=True) > 0).astype("float32")
    return x, y


def _model():
    keras.utils.set_random_seed(5)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(keras.optimizers.SGD(0.5), "binary_crossentropy")
    return m


def _true_losses(x, y, epochs):
    """Each step's loss, one `train_on_batch` at a time (metrics reset every call)."""
    twin = _model()
    out = []
    for _ in range(epochs):
        out.append([float(twin.train_on_batch(x[i:i + BATCH], y[i:i + BATCH], return_dict=True)["loss"])
                    for i in range(0, len(x), BATCH)])
    return out


class _Record(ARC):
    """ARC keeping every epoch's recorded losses."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.per_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.per_epoch.append(list(self._last_epoch_losses))


def test_partial_last_batch_is_recorded_exactly():
    x, y = _data(72)  # 4 batches of 16, then one of 8
    true = _true_losses(x, y, epochs=2)
    cb = _Record(fixed_controller([0.0, 1.0, 0.0]), frequency=1)  # always keep: same LR as the twin
    means = []

    class Means(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            means.append(float(logs["loss"]))

    _model().fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[cb, Means()])
    assert [len(e) for e in cb.per_epoch] == [5, 5]
    np.testing.assert_allclose(cb.per_epoch, true, rtol=2e-6, atol=1e-7)
    # The equal-weights differencing ARC used before records the last batch far off.
    old = 5 * means[4] - 4 * means[3]
    assert abs(old - true[0][4]) > 100 * abs(cb.per_epoch[0][4] - true[0][4]) + 1e-3


def test_steps_per_execution_records_each_executions_weighted_mean():
    x, y = _data(72)
    true = _true_losses(x, y, epochs=1)[0]
    sizes = [16, 16, 16, 16, 8]
    cb = _Record(fixed_controller([0.0, 1.0, 0.0]), frequency=1)
    m = _model()
    m.compile(keras.optimizers.SGD(0.5), "binary_crossentropy", steps_per_execution=2)
    m.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[cb])
    expected = [np.average(true[i:i + 2], weights=sizes[i:i + 2]) for i in (0, 2, 4)]
    np.testing.assert_allclose(cb.per_epoch[0], expected, rtol=2e-6, atol=1e-7)


def test_unknown_batch_sizes_leave_the_last_batch_out():
    tf = pytest.importorskip("tensorflow")
    x, y = _data(72)
    true = _true_losses(x, y, epochs=1)[0]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)  # sizes unknown to Keras
    cb = _Record(fixed_controller([0.0, 1.0, 0.0]), frequency=1)
    _model().fit(ds, epochs=2, shuffle=False, verbose=0, callbacks=[cb])
    assert len(cb.per_epoch[0]) == 4  # the last (smaller) batch cannot be recovered: left out
    np.testing.assert_allclose(cb.per_epoch[0], true[:4], rtol=2e-6, atol=1e-7)
