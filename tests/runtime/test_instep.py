import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.instep import InStepScheduler
from keras_autolr.runtime.mcv import MCVModel
from keras_autolr.runtime.mlrsnet import HypergradientDescent
from tests.conftest import tiny_model, tiny_regression

pytestmark = pytest.mark.jax  # backend-neutral: CI runs these on JAX too


class Halving(InStepScheduler):
    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.install()

    def step_update(self, loss, grads, weights):
        lr = lr_lib.learning_rate_tensor(self.model.optimizer) * 0.5
        lr_lib.assign_learning_rate(self.model.optimizer, lr)
        return lr, grads


class CustomStep(keras.Model):
    """A user's model with its own train step (it counts its calls)."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.calls = 0

    def call(self, x):
        return self.dense(x)

    def train_step(self, *args):
        self.calls += 1
        return super().train_step(*args)


def test_halves_the_lr_inside_every_step():
    x, y = tiny_regression(32)
    model = tiny_model()
    model.compile(keras.optimizers.SGD(0.08), "mse")
    cb = Halving(record_every=1)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[cb])
    # 4 steps, each halving before apply: the logged LRs are 0.04, 0.02, 0.01, 0.005
    np.testing.assert_allclose(cb.lr_history, [0.04, 0.02, 0.01, 0.005], rtol=1e-6)


def test_refuses_a_model_with_a_custom_train_step():
    x, y = tiny_regression(16)
    model = CustomStep()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    with pytest.raises(TypeError, match=r"CustomStep.*custom `train_step`.*silently replace"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Halving()])
    assert "train_step" not in model.__dict__  # left untouched
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert model.calls > 0  # its own step still runs


def test_refuses_an_mcv_model():
    x, y = tiny_regression(16)
    model = MCVModel(tiny_model(), method="method2")
    model.compile(keras.optimizers.SGD(0.01), "mse")
    with pytest.raises(TypeError, match=r"HypergradientDescent.*MCVModel"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[HypergradientDescent()])
    assert "train_step" not in model.__dict__


def test_refuses_a_train_step_patched_on_the_instance():
    model = tiny_model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.train_step = lambda data: {}  # someone else's step
    cb = Halving()
    cb.set_model(model)
    with pytest.raises(TypeError, match="custom `train_step`"):
        cb.install()


def test_a_second_scheduler_may_take_over_from_the_first():
    x, y = tiny_regression(16)
    model = tiny_model()
    model.compile(keras.optimizers.SGD(0.08), "mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[Halving()])
    second = Halving(record_every=1)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[second])
    assert second.lr_history == pytest.approx([0.02])
    assert model._instep_controller is second
