import json

import keras
import numpy as np
import pytest

from keras_autolr.runtime.mlrsnet import EmptyDataError, MLRSNet, load_net
from keras_autolr.pipelines.mlrsnet.meta_train import (
    LEGACY_OPTIONS, augment_images, carve_validation, checkpoint_epochs, meta_train, meta_update_steps)


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
    net = MLRSNet(seed=0, cell="meta_train")  # the cell a resume without `net` uses: the snapshot's options match
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
def test_resumed_meta_training_equals_the_uninterrupted_run(tmp_path):
    """Stopped after epoch 1 and resumed: same data order, meta-validation batches, theta and history."""
    x, y = _task()
    kw = dict(num_classes=3, val_size=60, t_val=2, batch_size=32, log=lambda *_: None)  # 60 % 32: vpos matters

    def run(epochs, ck):
        keras.utils.set_random_seed(1)
        return meta_train(_model(), x, y, net=MLRSNet(seed=0, cell="meta_train"), epochs=epochs, checkpoint_dir=ck,
                          **kw)

    straight, hist = run(2, tmp_path / "straight")
    run(1, tmp_path / "resumed")
    resumed, hist2 = run(2, tmp_path / "resumed")
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    for key in ("loss", "lr_mean", "lr_trace", "meta_val_loss"):
        assert hist2[1][key] == hist[1][key], key


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


# -- issue 18.3: the reference's details -------------------------------------------------------------


def _np_cell(theta, x, h, c, order, shift):
    """A numpy (float64) transcription of one MLR-SNet cell step (`order`: the gate chunks' letters)."""
    wi1, bi1, wi2, bi2, wh1, bh1, wh2, bh2, wo, bo = theta
    relu = lambda v: np.maximum(v, 0.0)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    gates = relu(x * wi1 + bi1) @ wi2 + bi2 + relu(h @ wh1 + bh1) @ wh2 + bh2
    k = dict(zip(order, np.split(gates, 4, axis=-1)))
    c = sig(k["f"] + shift) * c + sig(k["i"]) * np.tanh(k["g"])
    h = sig(k["o"]) * np.tanh(c)
    return float(sig(h @ wo + bo)[0, 0])


def _np_cell_grad(theta, x, gamma, order, shift):
    """d(gamma * p)/dtheta of one cell step from the zero state, by hand (numpy, float64)."""
    wi1, bi1, wi2, bi2, wh1, bh1, wh2, bh2, wo, bo = theta
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    u, v = x * wi1 + bi1, bh1[None]  # h = 0: the h-MLP's first layer is its bias alone
    z1, z2 = np.maximum(u, 0.0), np.maximum(v, 0.0)
    k = dict(zip(order, np.split(z1 @ wi2 + bi2 + z2 @ wh2 + bh2, 4, axis=-1)))
    si, so, tg = sig(k["i"]), sig(k["o"]), np.tanh(k["g"])
    c = si * tg  # c = 0 before: the forget gate (and its shift) drop out
    h = so * np.tanh(c)
    p = sig(h @ wo + bo)[0, 0]
    dq = gamma * p * (1 - p)
    dh = dq * wo.T
    dc = dh * so * (1 - np.tanh(c) ** 2)
    d = {"i": dc * tg * si * (1 - si), "f": 0.0 * dc, "g": dc * si * (1 - tg ** 2),
         "o": dh * np.tanh(c) * so * (1 - so)}
    dG = np.concatenate([d[ch] for ch in order], axis=-1)
    dz1 = (dG @ wi2.T) * (u > 0)
    dz2 = (dG @ wh2.T) * (v > 0)
    return [x * dz1, dz1[0], z1.T @ dG, dG[0], np.zeros_like(wh1), dz2[0], z2.T @ dG, dG[0], h.T * dq,
            np.array([dq])]


def _np_ce(w, b, x, y):
    """Mean softmax cross-entropy of the linear model x @ w + b, and its gradients."""
    z = x @ w + b
    z = z - z.max(1, keepdims=True)
    pr = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    loss = -np.mean(np.log(pr[np.arange(len(y)), y]))
    d = pr.copy()
    d[np.arange(len(y)), y] -= 1.0
    d /= len(y)
    return loss, x.T @ d, d.sum(0)


def _one_meta_step(cell, wd, lookahead_weight_decay=True):
    """One epoch of one batch, t_val 1: a single meta step from the zero LSTM state (numpy data + results)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32") + (x[:, 2] > 0.5).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    w0 = [v.copy() for v in model.get_weights()]
    net = MLRSNet(seed=1, cell=cell) if cell else None  # None: meta_train's fresh net
    theta0 = [v.astype("float64") for v in net.get_weights()] if net else None
    net, hist = meta_train(model, x, y, net=net, num_classes=3, val_size=16, t_val=1, epochs=1, batch_size=32,
                           gamma=0.5, weight_decay=wd, meta_lr=1e-2, lookahead_weight_decay=lookahead_weight_decay,
                           log=lambda *_: None)
    xt, yt, xv, yv = carve_validation(x, y, 16, num_classes=3, seed=0)
    order = np.random.default_rng(0).permutation(len(xt))  # meta_train's data order (seed 0), one batch
    return dict(x=xt[order].astype("float64"), y=yt[order], xv=xv.astype("float64"), yv=yv, w0=w0, theta0=theta0,
                net=net, hist=hist, model=model)


@pytest.mark.jax
@pytest.mark.parametrize("lookahead_weight_decay", [True, False])
def test_one_meta_step_matches_a_numpy_reference(lookahead_weight_decay):
    """Lookahead w - a (g + wd w) with the meta-training cell, dL_val/dtheta through a, Adam, then the model step."""
    wd, gamma, lr = 0.2, 0.5, 1e-2  # a large wd, so leaving it out of the lookahead shows
    r = _one_meta_step("meta_train", wd, lookahead_weight_decay)
    (w, b), (theta0, net) = [v.astype("float64") for v in r["w0"]], (r["theta0"], r["net"])
    L, gw, gb = _np_ce(w, b, r["x"], r["y"])
    zero = np.zeros((1, 50))
    cell = ("ifog", -1.0)  # the official meta-training cell
    a_of = lambda th: gamma * _np_cell(th, L, zero, zero, *cell)
    lwd = wd if lookahead_weight_decay else 0.0
    dw, db = gw + lwd * w, gb + lwd * b

    def val_loss(a):
        return _np_ce(w - a * dw, b - a * db, r["xv"], r["yv"])

    a = a_of(theta0)
    lv, gvw, gvb = val_loss(a)
    assert r["hist"][0]["meta_val_loss"] == pytest.approx(lv, rel=1e-5)
    assert r["hist"][0]["meta_updates"] == 1
    # dL_val/dtheta = dL_val/da * da/dtheta (da/dtheta by hand, checked on a few coordinates against differences).
    dlda = -(np.sum(gvw * dw) + np.sum(gvb * db))
    dadt = _np_cell_grad(theta0, L, gamma, *cell)
    pick = np.random.default_rng(0)
    for k in (1, 2, 3, 7, 8):
        i = tuple(pick.integers(0, n) for n in theta0[k].shape)
        t = theta0[k]
        old = t[i]
        t[i] = old + 1e-6
        up = a_of(theta0)
        t[i] = old - 1e-6
        down = a_of(theta0)
        t[i] = old
        assert dadt[k][i] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-9)
    dtheta = [dlda * g for g in dadt]
    # Keras Adam, first step, decoupled weight decay 1e-4: theta (1 - lr wd) - lr g / (|g| + eps / sqrt(1 - b2)).
    expected = [t * (1 - lr * 1e-4) - lr * g / (np.abs(g) + 1e-7 / np.sqrt(1 - 0.999)) for t, g in zip(theta0, dtheta)]
    assert sum(int(np.sum(np.abs(g) > 1e-5)) for g in dtheta) > 1000  # the test sees real gradients
    for got, want in zip(net.get_weights(), expected):
        np.testing.assert_allclose(got, want, atol=2e-5)
    # The model's step: the updated net's LR on Keras's SGD, w - a' (g + wd w), whatever the lookahead did.
    a_new = gamma * _np_cell([v.astype("float64") for v in net.get_weights()], L, zero, zero, *cell)
    assert r["hist"][0]["lr_first"] == pytest.approx(a_new, rel=1e-5)
    w1, b1 = r["model"].get_weights()
    np.testing.assert_allclose(w1, w - a_new * (gw + wd * w), atol=1e-6)
    np.testing.assert_allclose(b1, b - a_new * (gb + wd * b), atol=1e-6)


@pytest.mark.jax
def test_meta_training_runs_the_chosen_cell():
    """The default fresh net is the meta-training cell; its LRs are `net_outputs`' for that cell, not meta_test's."""
    from keras_autolr.runtime.mlrsnet import net_outputs

    r = _one_meta_step(None, 0.0)
    net = r["net"]
    assert net.cell.name == "meta_train" and net.meta["cell"] == "meta_train"
    w, b = r["w0"]
    L = _np_ce(w.astype("float64"), b.astype("float64"), r["x"], r["y"])[0]
    assert r["hist"][0]["lr_first"] == pytest.approx(0.5 * float(net_outputs(net, [L])[0]), rel=1e-5)
    other = MLRSNet(seed=1, cell="meta_test")
    other.set_weights(net.get_weights())
    assert abs(float(net_outputs(other, [L])[0]) - float(net_outputs(net, [L])[0])) > 1e-3  # the cells differ
    # An existing net keeps its cell; asking for another one with it is an error.
    x, y = _task(60)
    with pytest.raises(ValueError, match="cell"):
        meta_train(_model(), x, y, net=MLRSNet(cell="meta_test"), cell="meta_train", num_classes=3, val_size=12)


def test_augment_images_crops_flips_and_is_deterministic():
    x = np.random.default_rng(0).normal(size=(64, 6, 5, 2)).astype("float32")
    a, b = augment_images(x, np.random.default_rng(1)), augment_images(x, np.random.default_rng(1))
    assert a.shape == x.shape and a.dtype == x.dtype and np.array_equal(a, b)
    assert not np.array_equal(a, augment_images(x, np.random.default_rng(2)))
    padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)))
    flipped = 0
    for i in range(len(x)):  # every output is a 6x5 window of the zero-padded image, flipped or not
        wins = [(padded[i, r:r + 6, c:c + 5], f) for r in range(9) for c in range(9) for f in (0, 1)]
        hits = [f for win, f in wins if np.array_equal(a[i], win[:, ::-1] if f else win)]
        assert hits, i
        flipped += min(hits)
    assert 10 < flipped < 54  # about half flipped (binomial(64, 1/2))
    assert np.array_equal(augment_images(x, np.random.default_rng(1), pad=0, flip=False), x)
    with pytest.raises(ValueError, match="H, W, C"):
        augment_images(x[:, :, :, 0], np.random.default_rng(0))


def _images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 6, 1)).astype("float32")
    return x, (x[:, :3, :, 0].mean((1, 2)) > 0).astype("int32")


def _image_model():
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])


@pytest.mark.slow
@pytest.mark.jax
def test_image_augmentation_is_on_by_default_and_seeded():
    x, y = _images()
    kw = dict(num_classes=2, val_size=32, t_val=2, epochs=1, batch_size=16, gamma=0.5, log=lambda *_: None)
    runs = [meta_train(_image_model(), x, y, net=MLRSNet(seed=0, cell="meta_train"), augment=aug, **kw)
            for aug in ("auto", "auto", False)]
    (n1, h1), (n2, h2), (n3, h3) = runs
    assert n1.meta["augment"] is True and n3.meta["augment"] is False
    assert h1[0]["loss"] == h2[0]["loss"] and h1[0]["lr_trace"] == h2[0]["lr_trace"]  # deterministic
    assert h1[0]["loss"] != h3[0]["loss"]  # the batches were augmented
    with pytest.raises(ValueError, match="augment=True needs image inputs"):
        meta_train(_model(), *_task(60), num_classes=3, val_size=12, augment=True)


def test_meta_update_steps_follow_the_reference():
    # image: (i + 1) % t_val == 0 within each epoch (the official loop); 390 batches at t_val 300: batch 299 only
    assert meta_update_steps(390, 300) == [299] and meta_update_steps(390, 300, epoch=5) == [299]
    assert meta_update_steps(10, 3) == [2, 5, 8]
    # text: step % t_val == 0 within the epoch, from its first batch
    assert meta_update_steps(10, 3, mode="text") == [0, 3, 6, 9]
    assert meta_update_steps(148, "epoch") == [147] and meta_update_steps(58, "epoch", mode="text") == [0]
    # the pre-18.3 global counter: from the run's first step, across epochs
    assert meta_update_steps(5, 2, meta_schedule="global") == [0, 2, 4]
    assert meta_update_steps(5, 2, epoch=1, meta_schedule="global") == [1, 3]
    assert meta_update_steps(100, 300) == []
    for bad in (0, 2.5, "often"):
        with pytest.raises(ValueError, match="t_val"):
            meta_update_steps(10, bad)
    with pytest.raises(ValueError, match="meta_schedule"):
        meta_update_steps(10, 2, meta_schedule="paper")


@pytest.mark.slow
@pytest.mark.jax
def test_meta_train_updates_theta_on_the_scheduled_batches():
    x, y = _task(112)  # 80 training examples after the split: 5 batches of 16 per epoch
    kw = dict(num_classes=3, val_size=32, t_val=2, epochs=2, batch_size=16, gamma=0.5, log=lambda *_: None)
    _, ref = meta_train(_model(), x, y, **kw)
    _, old = meta_train(_model(), x, y, meta_schedule="global", **kw)
    assert [h["meta_updates"] for h in ref] == [2, 2]  # batches 1 and 3 of each epoch
    assert [h["meta_updates"] for h in old] == [3, 2]  # global steps 0, 2, 4 | 6, 8
    _, ep = meta_train(_model(), x, y, **dict(kw, t_val="epoch"))
    assert [h["meta_updates"] for h in ep] == [1, 1]
    with pytest.raises(ValueError, match="t_val='epoch'"):
        meta_train(_model(), x, y, **dict(kw, t_val=6))  # never within a 5-batch epoch


@pytest.mark.slow
@pytest.mark.jax
def test_resume_with_other_options_stops_with_a_message(tmp_path):
    x, y = _task(112)
    ck = tmp_path / "ck"
    kw = dict(num_classes=3, val_size=32, t_val=2, batch_size=16, gamma=0.5, checkpoint_dir=ck, log=lambda *_: None)
    net, _ = meta_train(_model(), x, y, epochs=1, **kw)
    assert json.loads((ck / "history.json").read_text())["options"] == {
        "cell": "meta_train", "augment": False, "lookahead_weight_decay": True, "meta_schedule": "reference",
        "t_val": 2}
    assert net.meta["meta_schedule"] == "reference"
    for change in (dict(cell="meta_test"), dict(lookahead_weight_decay=False), dict(meta_schedule="global"),
                   dict(t_val=3)):
        with pytest.raises(ValueError, match=f"{next(iter(change))}=.*Resume with the snapshot's options"):
            meta_train(_model(), x, y, epochs=2, **{**kw, **change})
    # A snapshot from before options were recorded was written with the legacy details.
    with np.load(ck / "resume.npz") as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))
    del meta["options"]
    np.savez(ck / "resume.npz", meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ValueError, match="cell='meta_test' \\(now 'meta_train'\\)"):
        meta_train(_model(), x, y, epochs=2, **kw)
    _, hist = meta_train(_model(), x, y, epochs=2, **kw, **LEGACY_OPTIONS)
    assert [h["epoch"] for h in hist] == [1, 2]


def test_recipe_details_shipped_are_the_legacy_options():
    """The recipe's "shipped" details rebuild what old snapshots were written with; "reference" is meta_train's."""
    from keras_autolr.harness import recipes

    assert recipes.META_DETAILS["shipped"] == LEGACY_OPTIONS and recipes.META_DETAILS["reference"] == {}
    kw = recipes.meta_training("image", data="digits", n_train=200, width=4, details="shipped", augment=True)
    assert {k: kw[k] for k in LEGACY_OPTIONS} == dict(LEGACY_OPTIONS, augment=True) and kw["t_val"] == 20
    ref = recipes.meta_training("text", data="tiny_shakespeare", n_tokens=3000, units=8, cell="meta_test")
    assert ref["t_val"] == 50 and ref["cell"] == "meta_test" and "meta_schedule" not in ref
    with pytest.raises(ValueError, match="details"):
        recipes.meta_training("image", data="digits", details="paper")
