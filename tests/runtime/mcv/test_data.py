import keras
import numpy as np
import pytest

from keras_autolr.runtime.mcv import MCVError, MCVModel, PairedBatches


def _xy(n=100):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n).astype("int32")


def test_every_example_trains_once_per_epoch_and_is_validated_on_another_batch():
    x, y = _xy(100)
    ds = PairedBatches(np.arange(100), np.arange(100), batch_size=16, seed=3)
    assert len(ds) == 7
    for _ in range(2):
        seen = []
        for i in range(len(ds)):
            xb, yb = ds[i]
            k = len(xb) // 2
            train, val = xb[:k], xb[k:]
            assert len(val) == len(train) and np.array_equal(xb, yb)
            assert not set(train) & set(val)  # disjoint halves
            assert len(set(val)) == len(val)  # drawn without replacement
            seen.extend(train)
        assert sorted(seen) == list(range(100))  # one pass over the data
        first = ds[0][0].copy()
        ds.on_epoch_end()
        assert not np.array_equal(ds[0][0], first)  # reshuffled


def test_deterministic_given_seed_and_structures():
    x, y = _xy(64)
    w = np.linspace(0.1, 1, 64).astype("float32")
    a = PairedBatches({"in": x}, y, sample_weight=w, batch_size=10, seed=1)
    b = PairedBatches({"in": x}, y, sample_weight=w, batch_size=10, seed=1)
    xa, ya, wa = a[6]  # last batch: 4 training + 4 validation examples
    xb, _, _ = b[6]
    assert xa["in"].shape == (8, 4) and ya.shape == (8,) and wa.shape == (8,)
    np.testing.assert_array_equal(xa["in"], xb["in"])
    assert not np.array_equal(PairedBatches(x, y, batch_size=10, seed=2)[0][0], a[0][0]["in"])


def test_bad_input():
    x, y = _xy(30)
    with pytest.raises(MCVError, match="2 x batch_size"):
        PairedBatches(x, y, batch_size=16)
    with pytest.raises(MCVError, match="has 29"):
        PairedBatches(x, y[:29], batch_size=4)
    with pytest.raises(MCVError, match="positive integer"):
        PairedBatches(x, y, batch_size=0)
    with pytest.raises(IndexError):
        PairedBatches(x, y, batch_size=4).indices(8)


@pytest.mark.jax
def test_fit_mcv_model_on_paired_batches():
    x, y = _xy(96)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = MCVModel(inner, method="method3")
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = []

    class Count(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps.append(0)

        def on_train_batch_end(self, batch, logs=None):
            steps[-1] += 1

    h = model.fit(PairedBatches(x, y, batch_size=16, seed=0), epochs=2, verbose=0, callbacks=[Count()])
    assert steps == [6, 6]  # every 16-example batch trains once per epoch
    assert len(h.history["learning_rate"]) == 2
    assert np.all(np.isfinite(h.history["loss"]))
