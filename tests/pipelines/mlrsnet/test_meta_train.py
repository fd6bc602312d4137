import json

import keras
import numpy as np
import pytest

from keras_autolr.runtime.mlrsnet import EmptyDataError, MLRSNet, load_net
from keras_autolr.pipelines.mlrsnet.meta_train import carve_validation, checkpoint_epochs, meta_train


def test_carve_validation_is_balanced_and_disjoint():
    x = np.arange(1000)[:, None].astype("float32")
    y = np.arange(1000) % 10
    xt, yt, xv, yv = carve_validation(x, y, 100, num_classes=10, seed=0)
    assert len(xv) == 100 and len(xt) == 900
    assert np.all(np.bincount(yv, minlength=10) == 10)
    assert not set(xv[:, 0]) & set(xt[:, 0])


def test_carve_validation_errors():
    with pytest.raises(EmptyDataError):
        carve_validation(np.zeros((0, 2)), np.zeros(0), 10)
    with pytest.raises(ValueError, match="val_size"):
        carve_validation(np.zeros((10, 2)), np.zeros(10), 10)


def test_checkpoint_epochs_early_middle_late():
    assert checkpoint_epochs(200) == [1, 100, 200]
    assert checkpoint_epochs(1) == [1]


def _task(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32") + (x[:, 2] > 1).astype("int32")
    return x, y


def _model():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])


@pytest.mark.slow
@pytest.mark.jax
def test_meta_training_updates_theta_checkpoints_and_resumes(tmp_path):
    x, y = _task()
    net = MLRSNet(seed=0)
    before = [w.copy() for w in net.get_weights()]
    ck = tmp_path / "ck"
    net, hist = meta_train(_model(), x, y, net=net, num_classes=3, val_size=60, t_val=2, epochs=1,
                           batch_size=32, checkpoint_dir=ck, log=lambda *_: None)
    assert any(not np.allclose(a, b) for a, b in zip(before, net.get_weights()))
    assert len(hist) == 1 and hist[0]["meta_val_loss"] is not None
    assert np.isfinite(hist[0]["loss"]) and hist[0]["lr_mean"] > 0
    assert (ck / "mlrsnet_epoch001.keras").exists() and (ck / "resume.npz").exists()
    assert load_net(ck / "mlrsnet_epoch001.keras").meta["epochs_meta_trained"] == 1
    # Rerun with a longer budget: continues at epoch 2 from the snapshot.
    net2, hist2 = meta_train(_model(), x, y, num_classes=3, val_size=60, t_val=2, epochs=2,
                             batch_size=32, checkpoint_dir=ck, log=lambda *_: None)
    assert [h["epoch"] for h in hist2] == [1, 2]
    assert json.loads((ck / "history.json").read_text())["epoch"] == 2
    assert (ck / "mlrsnet_epoch002.keras").exists()


@pytest.mark.jax
def test_meta_training_with_dropout_bn_and_clipping_trains_the_model():
    x, y = _task(240)
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16), keras.layers.BatchNormalization(),
                              keras.layers.ReLU(), keras.layers.Dropout(0.2), keras.layers.Dense(3)])
    bn_before = inner.layers[1].moving_mean.numpy().copy()
    net, hist = meta_train(inner, x, y, num_classes=3, val_size=48, t_val=3, epochs=3, batch_size=32,
                           clipnorm=1.0, log=lambda *_: None)
    assert all(np.isfinite(h["loss"]) and h["lr_mean"] > 0 for h in hist)
    assert hist[-1]["loss"] < hist[0]["loss"]  # the model learns under the predicted LRs
    # BatchNorm statistics advanced and were written back to the Keras variables.
    assert not np.allclose(inner.layers[1].moving_mean.numpy(), bn_before)


def test_meta_gradient_is_first_order_lookahead():
    """dL_val(w - a g)/da from the tape equals a finite difference in a."""
    import tensorflow as tf

    x, y = _task(64)
    model = _model()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    tw = model.trainable_variables
    with tf.GradientTape() as tape:
        lt = loss_fn(y[:32], model(x[:32]))
    g = tape.gradient(lt, tw)

    def val_loss(a):
        w_hat = [w - a * gi for w, gi in zip(tw, g)]
        out, _ = model.stateless_call(w_hat, [], x[32:])
        return loss_fn(y[32:], out)

    a = tf.constant(0.1)
    with tf.GradientTape() as t2:
        t2.watch(a)
        lv = val_loss(a)
    d = float(t2.gradient(lv, a))
    eps = 1e-3
    fd = (float(val_loss(a + eps)) - float(val_loss(a - eps))) / (2 * eps)
    assert d == pytest.approx(fd, rel=1e-2, abs=1e-5)
    # first order: it is -<g_val(w_hat), g_train>
    with tf.GradientTape() as t3:
        w_hat = [w - 0.1 * gi for w, gi in zip(tw, g)]
        for w in w_hat:
            t3.watch(w)
        out, _ = model.stateless_call(w_hat, [], x[32:])
        lv = loss_fn(y[32:], out)
    gv = t3.gradient(lv, w_hat)
    dot = -sum(float(tf.reduce_sum(a_ * b_)) for a_, b_ in zip(gv, g))
    assert d == pytest.approx(dot, rel=1e-4, abs=1e-6)


@pytest.mark.jax
def test_meta_train_bad_inputs():
    x, y = _task(40)
    with pytest.raises(EmptyDataError):
        meta_train(_model(), x[:0], y[:0], num_classes=3)
    with pytest.raises(ValueError, match="vocab_size"):
        meta_train(_model(), x, y, mode="text", val_size=5)
    from keras_autolr.runtime.mlrsnet import ModeMismatchError
    with pytest.raises(ModeMismatchError):
        meta_train(_model(), x, y, net=MLRSNet(mode="text"), mode="image", num_classes=3, val_size=5)
