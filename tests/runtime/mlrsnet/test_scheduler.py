import math

import keras
import numpy as np
import pytest

from keras_autolr.runtime.mlrsnet import MLRSNet, MLRSNetScheduler, ModeMismatchError, MLRSNetFileError
from keras_autolr.runtime.mlrsnet.scheduler import scheduler_update
from tests.runtime.mlrsnet.test_net import numpy_step

pytestmark = pytest.mark.jax  # backend-neutral: CI runs these on JAX too


def _linear(w0):
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    m.set_weights([np.asarray(w0, "float32").reshape(3, 1)])
    return m


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")
    return x, y


def test_lr_of_step_t_comes_from_step_t_loss_no_lag(tmp_path):
    """One full-batch SGD step: w1 = w0 - gamma * p(L(w0)) * g(w0)."""
    net = MLRSNet(seed=2)
    x, y = _data()
    w0 = np.array([0.3, 0.1, -0.2], "float32")
    model = _linear(w0)
    # compiled LR 5.0: a one-step lag would apply it instead of the net's LR
    model.compile(keras.optimizers.SGD(5.0), "mse")
    r = x @ w0[:, None] - y
    loss0 = float(np.mean(r**2))
    grad0 = (2 * x.T @ r / len(x)).reshape(-1)
    p, _, _ = numpy_step(net.get_weights(), np.float32(loss0), np.zeros((1, 50)), np.zeros((1, 50)))
    expected_lr = 0.5 * float(p[0])
    cb = MLRSNetScheduler(net, gamma=0.5, record_every=1)
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0, callbacks=[cb])
    w1 = model.get_weights()[0].reshape(-1)
    np.testing.assert_allclose(w1, w0 - expected_lr * grad0, rtol=1e-4, atol=1e-6)
    assert cb.lr_history[0] == pytest.approx(expected_lr, rel=1e-5)


def test_state_persists_across_epochs_and_fits():
    net = MLRSNet(seed=0)
    x, y = _data()
    model = _linear([0, 0, 0])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    cb = MLRSNetScheduler(net, gamma=0.2)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[cb])
    h1 = keras.ops.convert_to_numpy(cb._vars[0]).copy()
    assert np.abs(h1).sum() > 0
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[cb])
    h2 = keras.ops.convert_to_numpy(cb._vars[0])
    assert not np.allclose(h1, h2)
    # the compiled step is reused by the next fit, and can be removed
    assert "train_step" in model.__dict__
    cb.uninstall()
    assert "train_step" not in model.__dict__
    cb.reset_state()
    assert np.abs(keras.ops.convert_to_numpy(cb._vars[0])).sum() == 0


@pytest.mark.parametrize("opt", ["sgd", "sgd_momentum", "adam"])
def test_trains_with_common_optimizers(opt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    optimizer = {"sgd": keras.optimizers.SGD(0.1), "sgd_momentum": keras.optimizers.SGD(0.1, momentum=0.9),
                 "adam": keras.optimizers.Adam(1e-2)}[opt]
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLRSNetScheduler(MLRSNet(seed=0), record_every=1)
    hist = model.fit(x, y, batch_size=32, epochs=4, verbose=0, callbacks=[cb])
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    lrs = np.array(cb.lr_history)
    assert np.all(np.isfinite(lrs)) and np.all(lrs > 0)
    assert len(hist.history["learning_rate"]) == 4
    if opt == "adam":  # relative scale: the first LR is the compiled one
        assert lrs[0] == pytest.approx(1e-2, rel=1e-4)
    else:  # absolute: gamma * p with gamma from the first loss (C = 2)
        assert lrs[0] < 1.0


def test_schedule_optimizer_is_controlled_through_multiplier():
    x, y = _data(64)
    model = _linear([0, 0, 0])
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    model.compile(keras.optimizers.SGD(sched), "mse")
    cb = MLRSNetScheduler(MLRSNet(seed=1), gamma=0.05, record_every=1)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb])
    lrs = np.array(cb.lr_history)
    assert np.all(lrs > 0) and np.all(lrs < 0.05)


def test_non_finite_loss_keeps_lr_finite_and_skips_step():
    x, y = _data(32)
    x[8:16] = np.nan  # second batch of 8 gives a NaN loss
    w0 = np.array([0.3, 0.1, -0.2], "float32")
    model = _linear(w0)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    cb = MLRSNetScheduler(MLRSNet(seed=0), gamma=0.1, record_every=1)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[cb])
    lrs = np.array(cb.lr_history)
    assert np.all(np.isfinite(lrs)) and np.all(lrs > 0)
    assert lrs[1] == pytest.approx(lrs[0])  # the NaN step keeps the previous LR
    assert np.all(np.isfinite(model.get_weights()[0]))


def test_controller_update_pure_nan_path():
    net = MLRSNet(seed=0)
    h, c = net.initial_state()
    nan = keras.ops.convert_to_tensor(float("nan"))
    lr, h2, c2, g, k, finite = scheduler_update(
        net.params, nan, h, c, keras.ops.convert_to_tensor(0.0), keras.ops.convert_to_tensor(0.0), 0.3,
        norm=1.0, num_classes=10, relative=False, min_lr=1e-8,
    )
    assert float(keras.ops.convert_to_numpy(lr)) == pytest.approx(0.3)
    assert not bool(keras.ops.convert_to_numpy(finite))
    assert np.all(keras.ops.convert_to_numpy(h2) == 0)


def _biased_net(bias):
    net = MLRSNet(seed=0)
    w = net.get_weights()
    w[-1] = np.array([bias], "float32")
    net.set_weights(w)
    return net


def test_checkpoint_swap_at_thirds():
    x, y = _data(32)
    model = _linear([0, 0, 0])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    nets = [_biased_net(b) for b in (6.0, 0.0, -6.0)]  # p ~ 1, 0.5, 0
    cb = MLRSNetScheduler(checkpoints=nets, gamma=0.01)
    hist = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[cb])
    lrs = hist.history["learning_rate"]
    assert lrs[0] > 0.009 and 0.002 < lrs[1] < 0.008 and lrs[2] < 0.001
    assert cb._active == 2


def test_gamma_recomputed_at_swap_from_training_loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLRSNetScheduler(checkpoints=[MLRSNet(seed=i) for i in range(3)])
    hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[cb])
    from keras_autolr.runtime.mlrsnet.gamma import gamma_from_loss
    assert cb.gamma_history[1] == pytest.approx(gamma_from_loss(hist.history["loss"][0], 3), rel=1e-5)


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(ModeMismatchError, match="'text' mode but the task is 'image'"):
        MLRSNetScheduler(MLRSNet(mode="text"), task="image")
    with pytest.raises(ModeMismatchError, match="mix modes"):
        MLRSNetScheduler(checkpoints=[MLRSNet(mode="text"), MLRSNet(mode="image")])
    with pytest.raises(ValueError, match="gamma"):
        MLRSNetScheduler(MLRSNet(), gamma=-1.0)
    with pytest.raises(ValueError, match="swap_at"):
        MLRSNetScheduler(checkpoints=[MLRSNet(), MLRSNet()], swap_at=(0.3, 0.6))
    path = tmp_path / "model.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
    with pytest.raises(MLRSNetFileError):
        MLRSNetScheduler(str(path))


def test_image_auto_gamma_needs_class_count():
    x, y = _data(16)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.build((None, 3))
    cb = MLRSNetScheduler(MLRSNet())
    model.outputs  # width 1: no class count
    with pytest.raises(ValueError, match="num_classes"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])


def _text_lm(V, T, seed, optimizer):
    """A tiny compiled next-token model and random (x, y) of 32 sequences."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, size=(32, T)).astype("int32")
    y = rng.integers(0, V, size=(32, T)).astype("int32")
    model = keras.Sequential([keras.Input((T,), dtype="int32"), keras.layers.Embedding(V, 4), keras.layers.Dense(V)])
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, x, y


def test_text_net_normalises_by_log_vocab():
    model, x, y = _text_lm(20, 5, 0, keras.optimizers.SGD(1.0))
    net = MLRSNet(mode="text", seed=0)
    cb = MLRSNetScheduler(net, task="text", gamma=2.0, record_every=1)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False, callbacks=[cb])
    # first LR = gamma * p(L0 / log V), L0 ~ log V at init -> input ~ 1
    p, _, _ = numpy_step(net.get_weights(), np.float32(1.0), np.zeros((1, net.hidden)), np.zeros((1, net.hidden)))
    assert cb.lr_history[0] == pytest.approx(2.0 * float(p[0]), rel=0.05)


def test_cross_modal_image_net_on_text_task_uses_text_conventions():
    """The paper's Fig. 1(f) transfer: an image net on a text task gets loss / log(V) and gamma 40."""
    V = 20
    model, x, y = _text_lm(V, 5, 1, keras.optimizers.SGD(1.0, global_clipnorm=0.25))
    net = MLRSNet(mode="image", seed=0)
    with pytest.raises(ModeMismatchError):
        MLRSNetScheduler(net, task="text")  # crossing modes must be asked for
    with pytest.raises(ValueError, match="cross_modal=True needs task"):
        MLRSNetScheduler(net, cross_modal=True)
    cb = MLRSNetScheduler(net, task="text", cross_modal=True, record_every=1)
    hist = model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False, callbacks=[cb])
    assert cb.mode == "text" and cb.net_mode == "image" and cb.gamma == 40.0
    assert cb.get_config()["cross_modal"] is True
    # first LR = 40 * p(L0 / log V) with L0 ~ log V at init (one step moved it little)
    p, _, _ = numpy_step(net.get_weights(), np.float32(math.log(V) / math.log(V)), np.zeros((1, net.hidden)),
                         np.zeros((1, net.hidden)))
    assert cb.lr_history[0] == pytest.approx(40.0 * float(p[0]), rel=0.05)
    assert np.isfinite(hist.history["loss"][0])


def test_shipped_image_net_uses_reference_checkpoint_swap():
    from keras_autolr.runtime.artifacts import artifacts_dir

    SAVED = artifacts_dir()

    if not (SAVED / "mlrsnet_image.keras").exists():
        pytest.skip("shipped image net not built")
    cb = MLRSNetScheduler("image")
    assert cb.mode == "image"
    expected = 3 if (SAVED / "mlrsnet_image_early.keras").exists() else 1
    assert len(cb.nets) == expected
    with pytest.raises(ModeMismatchError):
        MLRSNetScheduler("image", task="text")


# -- issue 15: behaviour found by trying to break MLR-SNet --------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"min_lr": float("nan")}, "min_lr"), ({"min_lr": float("inf")}, "min_lr"),
    ({"min_lr": 0.0}, "min_lr"), ({"min_lr": -1e-3}, "min_lr"), ({"min_lr": "small"}, "min_lr"),
    ({"record_every": -1}, "record_every"), ({"record_every": 1.5}, "record_every"),
    ({"num_classes": 1}, "num_classes"), ({"vocab_size": 1.5}, "vocab_size"),
    ({"gamma": float("inf")}, "gamma"), ({"gamma": True}, "gamma"),
])
def test_constructor_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLRSNetScheduler(MLRSNet(), **kwargs)


@pytest.mark.parametrize("swap_at", [(0.6, 0.3), (float("nan"), 0.5), (0.0, 0.5), (0.5, 1.0)])
def test_swap_at_must_be_increasing_fractions(swap_at):
    with pytest.raises(ValueError, match="swap_at"):
        MLRSNetScheduler(checkpoints=[MLRSNet(), MLRSNet(), MLRSNet()], swap_at=swap_at)


def _weights(scheduler):
    return [[np.asarray(w) for w in n.get_weights()] for n in scheduler.nets]


@pytest.mark.parametrize("kind", ["image", "text"])
def test_config_round_trips_for_shipped_nets(kind):
    from keras_autolr.runtime.artifacts import artifacts_dir

    if not (artifacts_dir() / f"mlrsnet_{kind}.keras").exists():
        pytest.skip(f"shipped {kind} net not built")
    s = MLRSNetScheduler(kind, gamma=0.5 if kind == "image" else "auto", min_lr=1e-6, record_every=3)
    s2 = MLRSNetScheduler.from_config(s.get_config())
    assert s2.get_config() == s.get_config()
    assert (s2.net_mode, s2.mode, s2.gamma, s2.min_lr, s2.record_every) == (kind, kind, s.gamma, 1e-6, 3)
    for a, b in zip(_weights(s), _weights(s2), strict=True):
        for wa, wb in zip(a, b):
            np.testing.assert_array_equal(wa, wb)


def test_config_round_trips_for_nets_given_as_paths(tmp_path):
    paths = []
    for i, name in enumerate(("early", "late")):
        paths.append(str(tmp_path / f"text_{name}.keras"))
        MLRSNet(mode="text", seed=i).save(paths[-1])
    s = MLRSNetScheduler(paths[0], task="text", vocab_size=50, scale="absolute")
    s2 = MLRSNetScheduler.from_config(s.get_config())
    assert s2.get_config() == s.get_config() and s2.net_mode == "text" and s2.vocab_size == 50
    swap = MLRSNetScheduler(checkpoints=paths, swap_at=(0.5,), task="text")
    swap2 = MLRSNetScheduler.from_config(swap.get_config())
    assert swap2.get_config() == swap.get_config() and len(swap2.nets) == 2
    np.testing.assert_array_equal(swap2.nets[1].get_weights()[0], swap.nets[1].get_weights()[0])


def test_config_of_an_in_memory_net_keeps_its_mode():
    s = MLRSNetScheduler(MLRSNet(mode="text", seed=0), vocab_size=30)
    config = s.get_config()
    assert config["net"] == "text"  # the shipped net of that mode (a Model has no path)
    s2 = MLRSNetScheduler.from_config(config)
    assert s2.net_mode == "text" and s2.vocab_size == 30


def _classifier(num_classes=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.integers(0, num_classes, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(num_classes)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, x, y


def test_text_net_on_a_classifier_warns():
    model, x, y = _classifier(3)
    with pytest.warns(UserWarning, match="text net.*one prediction per example"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[MLRSNetScheduler(MLRSNet(mode="text"))])


def test_text_net_with_task_text_does_not_warn():
    import warnings

    model, x, y = _classifier(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0,
                  callbacks=[MLRSNetScheduler(MLRSNet(mode="text"), task="text", gamma=0.1)])
    assert not [w for w in caught if "MLRSNetScheduler" in str(w.message)]


def test_image_net_on_a_language_model_warns():
    model, x, y = _text_lm(20, 5, 0, keras.optimizers.SGD(0.1))
    with pytest.warns(UserWarning, match="image net.*language model"):
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[MLRSNetScheduler(MLRSNet(mode="image"))])


def test_class_count_for_a_text_net_or_vocab_for_an_image_net_is_refused():
    with pytest.raises(ModeMismatchError, match="num_classes"):
        MLRSNetScheduler(MLRSNet(mode="text"), num_classes=3)
    with pytest.raises(ModeMismatchError, match="vocab_size"):
        MLRSNetScheduler(MLRSNet(mode="image"), vocab_size=50)
    # Crossing modes on purpose follows the task's conventions.
    MLRSNetScheduler(MLRSNet(mode="image"), task="text", cross_modal=True, vocab_size=50)
