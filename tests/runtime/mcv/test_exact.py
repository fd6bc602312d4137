"""Bit-exact snapshot-and-restore: trial updates leave no trace.

Backend-neutral: tests/run.sh runs these on TensorFlow and again with
KERAS_BACKEND=jax (marker `jax`).
"""

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.mcv import MCVModel

pytestmark = pytest.mark.jax


def _mlp():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(12, activation="relu"),
                             keras.layers.Dense(3)])


def _bn_dropout():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(12),
                             keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
                             keras.layers.Dropout(0.3), keras.layers.Dense(3)])


OPTS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(1e-2),
}


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


def _data(steps=3, half=8, seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(steps):
        x = rng.normal(size=(2 * half, 6)).astype("float32")
        y = rng.integers(0, 3, size=2 * half).astype("int32")
        batches.append((x, y))
    return batches


def _pair(builder, opt):
    # Same seed => same weights *and* same dropout seed state in both models.
    keras.utils.set_random_seed(7)
    ref = builder()
    keras.utils.set_random_seed(7)
    inner = builder()
    ref.compile(OPTS[opt](), _loss())
    return ref, inner


def _assert_equal_lists(a, b, what):
    assert len(a) == len(b), what
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape and np.array_equal(u, v), f"{what}[{i}] differs: max |d| = {np.max(np.abs(u - v))}"


FACTORS = (2.0, 1.0, 0.5)  # 3 slots: a smaller graph than the default 7


def _mcv(builder, opt, method, candidates):
    keras.utils.set_random_seed(7)
    inner = builder()
    model = MCVModel(inner, method=method, factors=FACTORS)
    model.compile(OPTS[opt](), _loss())
    model.set_candidates(candidates)
    return model, inner


def _state(model, inner):
    return (_values(inner.trainable_variables), _values(inner.non_trainable_variables),
            _values(model.optimizer.variables))


# Every optimizer and model kind is covered; combinations are thinned to keep
# the compile time (one unrolled trial per candidate) of the suite low.
@pytest.mark.parametrize(
    "builder,opt,method",
    [(_mlp, "sgd_momentum", "method1"), (_mlp, "adam", "method2"),
     (_bn_dropout, "sgd_momentum", "method3"), (_bn_dropout, "adam", "method2")],
    ids=["mlp-sgdm-m1", "mlp-adam-m2", "bn_dropout-sgdm-m3", "bn_dropout-adam-m2"],
)
def test_trials_leave_no_trace(builder, opt, method):
    """Trial updates are rolled back bit for bit: two runs whose candidate LRs
    differ wildly (one set makes the weights overflow to inf/NaN during the
    trials) end in identical weights, BN statistics, dropout seeds, optimizer
    slots and iteration count (the applied step uses the epoch LR in both)."""
    sane, sane_inner = _mcv(builder, opt, method, [0.1, 0.05, 0.01])
    wild, wild_inner = _mcv(builder, opt, method, [1e30, 1e3, 1e-9])
    for x, y in _data():
        sane.train_on_batch(x, y)
        wild.train_on_batch(x, y)
    for what, a, b in zip(("weights", "non-trainable (BN stats, seeds)", "optimizer state"),
                          _state(sane, sane_inner), _state(wild, wild_inner)):
        _assert_equal_lists(a, b, what)
    assert int(keras.ops.convert_to_numpy(wild.optimizer.iterations)) == 3
    assert np.all(np.isfinite(np.concatenate([w.ravel() for w in _values(wild_inner.weights)])))
    assert not np.all(np.isfinite(wild.mcv_state()["sum_val"]))  # the wild trials did diverge


@pytest.mark.parametrize("builder,opt", [(_mlp, "sgd_momentum"), (_bn_dropout, "adam")],
                         ids=["mlp-sgdm", "bn_dropout-adam"])
def test_applied_step_equals_plain_step(builder, opt):
    """Methods 1-3 apply the plain optimizer step of the training half (to float
    round-off: the MCV graph differs from Keras's, so kernels may fuse differently)."""
    ref, inner = _pair(builder, opt)
    model = MCVModel(inner, method="method2", factors=FACTORS)
    model.compile(OPTS[opt](), _loss())
    model.set_candidates(model.candidates_around(0.01))
    for x, y in _data():
        ref.train_on_batch(x[:8], y[:8])
        model.train_on_batch(x, y)
    for a, b in zip(_values(ref.weights) + _values(ref.optimizer.variables),
                    _values(inner.weights) + _values(model.optimizer.variables)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 3


@pytest.mark.parametrize("opt", sorted(OPTS))
def test_discarded_step_restores_everything(opt):
    keras.utils.set_random_seed(3)
    inner = _mlp()
    model = MCVModel(inner, method="discard")
    o = OPTS[opt]()
    model.compile(o, _loss())
    model.set_candidates([1.0])
    (x, y), = _data(1)
    model.train_on_batch(x, y)  # builds optimizer state with one accepted-or-not step
    before_w, before_o = _values(inner.trainable_variables), _values(model.optimizer.variables)
    # An absurd LR makes the validation-batch loss explode: the step must be undone.
    lr_lib.set_learning_rate(model.optimizer, 1e4)
    before_o = _values(model.optimizer.variables)
    model.train_on_batch(x * 50, y)
    _assert_equal_lists(before_w, _values(inner.trainable_variables), "weights")
    _assert_equal_lists(before_o, _values(model.optimizer.variables), "optimizer state")
    assert model.mcv_state()["discards"] >= 1
