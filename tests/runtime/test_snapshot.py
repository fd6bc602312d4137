"""`runtime.snapshot`: host checkpoints of model + optimizer restore bit for bit. Backend-neutral."""

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.snapshot import (Snapshot, SnapshotError, assign_values, restore, snapshot,
                                           variable_values)

pytestmark = pytest.mark.jax


def _model(width=8):
    # BatchNorm (non-trainable statistics) and Dropout (seed state): every kind of model variable.
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(width), keras.layers.BatchNormalization(),
                             keras.layers.Activation("relu"), keras.layers.Dropout(0.3), keras.layers.Dense(1)])


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(1e-2),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "rmsprop_schedule": lambda: keras.optimizers.RMSprop(
        keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=2, decay_rate=0.5)),
}


def _batches(n, seed):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32"))
            for _ in range(n)]


def _state(model):
    return variable_values(model.variables) + variable_values(model.optimizer.variables)


def _assert_same(a, b):
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.dtype == v.dtype and np.array_equal(u, v), f"value {i} differs"


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_restore_replays_training_bit_for_bit(opt):
    model = _model()
    model.compile(OPTIMIZERS[opt](), "mse")
    if opt == "rmsprop_schedule":
        lr_lib.prepare(model.optimizer)  # installs the LR multiplier variable
    for x, y in _batches(2, 0):
        model.train_on_batch(x, y)
    lr_lib.set_learning_rate(model.optimizer, 3e-3)
    snap = snapshot(model)
    at_snap = _state(model)
    _assert_same(at_snap, snap.model_values + snap.optimizer_values)

    first = [float(model.train_on_batch(x, y)) for x, y in _batches(3, 1)]
    after_first = _state(model)
    lr_lib.set_learning_rate(model.optimizer, 0.5)  # also moved: must come back
    restore(model, snap)
    _assert_same(at_snap, _state(model))
    assert lr_lib.get_learning_rate(model.optimizer) == pytest.approx(3e-3)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2

    second = [float(model.train_on_batch(x, y)) for x, y in _batches(3, 1)]
    assert first == second  # same dropout masks, BN statistics, slots: same losses
    _assert_same(after_first, _state(model))


def test_snapshot_is_a_copy():
    model = _model()
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.optimizer.build(model.trainable_variables)
    snap = snapshot(model)
    kept = [a.copy() for a in snap.model_values]
    x, y = _batches(1, 0)[0]
    model.train_on_batch(x, y)
    _assert_same(kept, snap.model_values)
    assert isinstance(snap, Snapshot)


def test_mismatched_model_or_optimizer_is_refused_untouched():
    a, b = _model(8), _model(6)
    for m in (a, b):
        m.compile(keras.optimizers.Adam(1e-2), "mse")
        m.optimizer.build(m.trainable_variables)
    before = _state(b)
    with pytest.raises(SnapshotError, match=r"shape \(4, 6\), the snapshot \(4, 8\)"):
        restore(b, snapshot(a))
    _assert_same(before, _state(b))  # nothing written
    # Optimizer built after the snapshot: the slots are missing from it.
    c = _model(8)
    c.compile(keras.optimizers.Adam(1e-2), "mse")
    early = snapshot(c)
    c.optimizer.build(c.trainable_variables)
    with pytest.raises(SnapshotError, match="optimizer.build"):
        restore(c, early)


def test_variable_values_round_trip():
    v, w = keras.Variable([1.0, 2.0]), keras.Variable(3, dtype="int32")
    values = variable_values([v, w])
    v.assign([0.0, 0.0])
    w.assign(7)
    assign_values([v, w], values)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), [1.0, 2.0])
    assert int(keras.ops.convert_to_numpy(w)) == 3
    with pytest.raises(SnapshotError, match="holds 2 variables but there are 1"):
        assign_values([v], values)
