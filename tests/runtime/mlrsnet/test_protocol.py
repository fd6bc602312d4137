"""The meta-test protocols: gamma with abs(), the swap epochs, the eval-pass gamma, state carried."""

import math

import keras
import numpy as np
import pytest

from keras_autolr.runtime.artifacts import artifacts_dir
from keras_autolr.runtime.mlrsnet import (
    MLRSNet, MLRSNetScheduler, OfficialProtocol, PackageProtocol, load_net, net_outputs,
)
from keras_autolr.runtime.mlrsnet.gamma import gamma_from_loss, gamma_rule
from keras_autolr.runtime.mlrsnet.protocol import protocol_from_config

pytestmark = pytest.mark.jax  # backend-neutral: CI runs these on JAX too


def _official_gamma(loss, classes):
    # meta-test/meta_test.py, verbatim in numpy
    return abs((loss ** 0.5 * np.log(loss * classes) / classes ** 0.25) / 4)


@pytest.mark.parametrize("loss", [2.3026, 0.5, 0.1, 0.05, 0.01])
def test_official_gamma_is_abs_of_the_rule(loss):
    expected = _official_gamma(loss, 10)
    assert gamma_from_loss(loss, 10, floor=0.0, absolute=True) == pytest.approx(expected, rel=1e-12)
    got = float(keras.ops.convert_to_numpy(gamma_rule(keras.ops.convert_to_tensor(loss), 10, 0.0, absolute=True)))
    assert got == pytest.approx(expected, rel=1e-5)
    assert OfficialProtocol().swap_gamma(None, 10, loss) == pytest.approx(expected, rel=1e-12)


def test_package_floor_versus_official_abs_at_a_small_loss():
    # The number: loss 0.05 at the second swap, 10 classes.
    assert PackageProtocol().swap_gamma(None, 10, 0.05) == 1e-3
    assert OfficialProtocol().swap_gamma(None, 10, 0.05) == pytest.approx(0.0218, abs=1e-4)


@pytest.mark.parametrize("epochs", [1, 2, 3, 10, 30, 60, 100, 200])
def test_official_swap_epochs_are_n_div_3_and_n_div_3_times_2(epochs):
    p = OfficialProtocol()
    assert p.swap_epochs(epochs, 2) == (epochs // 3, epochs // 3 * 2)
    stages = [p.stage(e, epochs, 3) for e in range(epochs)]
    # meta_test.py: the 100 net from epoch N//3 on, the 200 net from N//3*2 on
    assert stages == [(e >= epochs // 3) + (e >= epochs // 3 * 2) for e in range(epochs)]


def test_package_swap_epochs_round_the_fractions():
    assert PackageProtocol().swap_epochs(200, 2) == (67, 133)
    assert PackageProtocol((0.5,)).stage(4, 10, 2) == 0 and PackageProtocol((0.5,)).stage(5, 10, 2) == 1
    with pytest.raises(ValueError, match="swap_at"):
        PackageProtocol((0.7, 0.2))
    with pytest.raises(ValueError, match="3 checkpoints need 2"):
        PackageProtocol((0.5,)).check(3)


def test_protocol_configs_round_trip():
    for p in (PackageProtocol((0.25, 0.75)), OfficialProtocol(batch_size=64)):
        q = protocol_from_config(p.get_config())
        assert type(q) is type(p) and q.get_config() == p.get_config()
    with pytest.raises(ValueError, match="Unknown MLR-SNet protocol"):
        protocol_from_config({"name": "paper"})
    with pytest.raises(ValueError, match="y without x"):
        OfficialProtocol(y=np.zeros(3))


def _classifier(seed=0):
    # Dropout: the train-mode loss differs from the eval-mode loss the official gamma uses.
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.5), keras.layers.Dense(4)])
    model.compile(keras.optimizers.SGD(0.1, weight_decay=5e-4),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _data(n=96):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32") + 2 * (x[:, 1] > 0).astype("int32")


class _EvalProbe(keras.callbacks.Callback):
    """Before the scheduler: the eval-mode training loss at each epoch's start."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.losses = x, y, []

    def on_train_begin(self, logs=None):
        self.losses.append(self.model.evaluate(self.x, self.y, batch_size=32, verbose=0))

    def on_epoch_begin(self, epoch, logs=None):
        if epoch:
            self.losses.append(self.model.evaluate(self.x, self.y, batch_size=32, verbose=0))
            self.model.reset_metrics()  # so that _MetricsProbe sees only the scheduler's passes


class _MetricsProbe(keras.callbacks.Callback):
    """After the scheduler: the compiled metrics start every epoch empty."""

    def __init__(self):
        super().__init__()
        self.clean = []

    def on_epoch_begin(self, epoch, logs=None):
        values = [np.asarray(keras.ops.convert_to_numpy(v)) for m in self.model.metrics for v in m.variables]
        self.clean.append(all(np.all(v == 0) for v in values))


@pytest.mark.slow
def test_official_protocol_gamma_from_eval_passes_at_start_and_swaps():
    x, y = _data()
    model = _classifier()
    nets = [MLRSNet(seed=i) for i in range(3)]
    probe, metrics = _EvalProbe(x, y), _MetricsProbe()
    cb = MLRSNetScheduler(checkpoints=nets, protocol=OfficialProtocol(x, y, batch_size=32), record_every=1)
    hist = model.fit(x, y, batch_size=32, epochs=6, verbose=0, shuffle=False, callbacks=[probe, cb, metrics])
    # swaps at 6 // 3 = 2 and 6 // 3 * 2 = 4; gamma kept in between
    assert [probe.losses[e] for e in (0, 2, 4)] != [hist.history["loss"][e] for e in (0, 2, 4)]
    expected = [_official_gamma(probe.losses[e], 4) for e in (0, 0, 2, 2, 4, 4)]
    np.testing.assert_allclose(cb.gamma_history, expected, rtol=1e-5)
    assert cb._active == 2
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(cb._theta[0]), nets[2].get_weights()[0])
    assert metrics.clean == [True] * 6  # the eval passes do not leak into the training metrics
    assert all(math.isfinite(v) for v in hist.history["loss"])


def test_official_protocol_without_data_uses_abs_of_training_losses():
    x, y = _data()
    model = _classifier()
    cb = MLRSNetScheduler(checkpoints=[MLRSNet(seed=i) for i in range(3)], protocol=OfficialProtocol())
    hist = model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[cb])
    for epoch in (1, 2):  # swaps at 1 and 2, from the previous epoch's logged training loss
        assert cb.gamma_history[epoch] == pytest.approx(_official_gamma(hist.history["loss"][epoch - 1], 4), rel=1e-5)


def test_lstm_state_is_carried_across_epochs():
    """With an LR too small to move the weights every batch loss is the same L: the LRs of 4 one-batch
    epochs are gamma * the net's outputs on [L, L, L, L] from one zero state, not a restart per epoch."""
    net = load_net(artifacts_dir() / "mlrsnet_official_100.keras")
    x, y = _data(32)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.evaluate(x, y, batch_size=32, verbose=0)
    gamma = 1e-20
    cb = MLRSNetScheduler(net, protocol=OfficialProtocol(), gamma=gamma, min_lr=1e-35, record_every=1)
    model.fit(x, y, batch_size=32, epochs=4, verbose=0, shuffle=False, callbacks=[cb])
    carried = net_outputs(net, [loss] * 4)
    assert np.ptp(carried) > 1e-3  # a restart per epoch would repeat carried[0]
    np.testing.assert_allclose(np.array(cb.lr_history) / gamma, carried, rtol=1e-5)


def test_sgd_weight_decay_with_momentum_0_is_the_coupled_official_update():
    """Keras's decoupled decay at momentum 0 is PyTorch's w - lr (g + wd w), at the net's LR."""
    net = MLRSNet(seed=3)
    x = np.random.default_rng(1).normal(size=(16, 3)).astype("float32")
    yv = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    w0 = np.array([[0.3], [0.1], [-0.2]], "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([w0])
    model.compile(keras.optimizers.SGD(5.0, momentum=0.0, weight_decay=5e-4), "mse")
    cb = MLRSNetScheduler(net, gamma=0.5, record_every=1)
    model.fit(x, yv, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[cb])
    r = x @ w0 - yv
    g = 2 * x.T @ r / len(x)
    lr = cb.lr_history[0]
    np.testing.assert_allclose(model.get_weights()[0], w0 - lr * (g + 5e-4 * w0), rtol=1e-5, atol=1e-7)


def test_official_scheduler_uses_the_shipped_official_nets_and_protocol():
    cb = MLRSNetScheduler("official")
    assert isinstance(cb.protocol, OfficialProtocol) and len(cb.nets) == 3
    assert cb.cell.name == "meta_test" and cb.mode == "image"
    for net, which in zip(cb.nets, (1, 100, 200)):
        ref = load_net(artifacts_dir() / f"mlrsnet_official_{which}.keras")
        np.testing.assert_array_equal(net.get_weights()[3], ref.get_weights()[3])
    again = MLRSNetScheduler.from_config(cb.get_config())
    assert again.get_config() == cb.get_config() and isinstance(again.protocol, OfficialProtocol)
    given = MLRSNetScheduler("official", protocol=OfficialProtocol(batch_size=64))
    assert MLRSNetScheduler.from_config(given.get_config()).protocol.batch_size == 64
    assert isinstance(MLRSNetScheduler("image").protocol, PackageProtocol)


def test_checkpoints_of_different_cells_are_refused():
    with pytest.raises(ValueError, match="mix LSTM cells"):
        MLRSNetScheduler(checkpoints=[MLRSNet(cell="meta_test"), MLRSNet(cell="meta_train")], swap_at=(0.5,))


def test_meta_train_cell_runs_in_the_train_step():
    net = MLRSNet(seed=4, cell="meta_train")
    x, y = _data(32)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.evaluate(x, y, batch_size=32, verbose=0)
    cb = MLRSNetScheduler(net, gamma=1e-20, min_lr=1e-35, record_every=1)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[cb])
    p = net_outputs(net, [loss])[0]
    assert cb.lr_history[0] / 1e-20 == pytest.approx(p, rel=1e-5)
    assert p != pytest.approx(net_outputs(MLRSNet(seed=4), [loss])[0], rel=1e-3)  # the cell matters


@pytest.mark.parametrize("protocol, stages", [
    (OfficialProtocol(), [0, 1, 2, 2]),       # 4 // 3 = 1, 4 // 3 * 2 = 2
    (PackageProtocol(), [0, 1, 1, 2]),        # round(4 / 3) = 1, round(8 / 3) = 3
])
def test_the_protocol_decides_the_swap_epochs_in_a_run(protocol, stages):
    from tests.runtime.mlrsnet.test_scheduler import _biased_net

    x, y = _data(32)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLRSNetScheduler(checkpoints=[_biased_net(b) for b in (6.0, 0.0, -6.0)], gamma=0.01, protocol=protocol)
    hist = model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[cb])
    # p ~ 1, 0.5, 0 for the three nets: the epoch's last LR says which net ran
    got = [0 if lr > 0.009 else 1 if 0.002 < lr < 0.008 else 2 for lr in hist.history["learning_rate"]]
    assert got == stages
