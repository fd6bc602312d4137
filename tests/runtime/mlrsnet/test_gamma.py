import math

import keras
import numpy as np
import pytest

from keras_autolr.runtime.mlrsnet.gamma import (
    GAMMA_FLOOR, EmptyDataError, compute_gamma, gamma_from_loss, gamma_rule, initial_loss,
)


def test_reference_values_at_initialisation():
    # reference-facts: about 0.67 for CIFAR-10, 1.04 for CIFAR-100 (L0 = ln C)
    assert gamma_from_loss(math.log(10), 10) == pytest.approx(0.67, abs=0.01)
    assert gamma_from_loss(math.log(100), 100) == pytest.approx(1.04, abs=0.01)


def test_in_graph_rule_matches_python():
    for loss, C in [(2.3, 10), (0.9, 2), (4.6, 100)]:
        got = float(keras.ops.convert_to_numpy(gamma_rule(loss, C)))
        assert got == pytest.approx(gamma_from_loss(loss, C), rel=1e-5)


def test_small_loss_is_floored():
    # ln(L0 * C) <= 0 would give a non-positive gamma.
    assert gamma_from_loss(0.05, 10) == GAMMA_FLOOR
    assert float(keras.ops.convert_to_numpy(gamma_rule(0.05, 10))) == pytest.approx(GAMMA_FLOOR)


@pytest.mark.parametrize("loss", [float("nan"), float("inf"), 0.0, -1.0])
def test_bad_loss_raises(loss):
    with pytest.raises(ValueError, match="finite positive"):
        gamma_from_loss(loss, 10)


def test_bad_class_count_raises():
    with pytest.raises(ValueError, match="num_classes"):
        gamma_from_loss(2.3, 1)


def _model():
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    m.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def test_empty_data_raises_clear_error():
    m = _model()
    with pytest.raises(EmptyDataError, match="empty"):
        initial_loss(m, np.zeros((0, 3), "float32"), np.zeros((0,), "int32"))
    with pytest.raises(EmptyDataError):
        compute_gamma(m, np.zeros((0, 3), "float32"), np.zeros((0,), "int32"), num_classes=4)


def test_compute_gamma_uses_full_data_loss():
    m = _model()
    x = np.random.default_rng(0).normal(size=(100, 3)).astype("float32")
    y = np.arange(100) % 4
    l0 = float(m.evaluate(x, y, verbose=0))
    assert compute_gamma(m, x, y, num_classes=4) == pytest.approx(gamma_from_loss(l0, 4), rel=1e-5)
