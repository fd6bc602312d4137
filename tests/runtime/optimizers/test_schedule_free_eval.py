"""`ScheduleFreeEval`: validation and wrapped checkpoints inside `fit` see x; training goes on from y exactly."""

import keras
import numpy as np
import pytest

from keras_autolr.runtime.optimizers.schedule_free_ref import (EvalWeights, ReferenceScheduleFreeAdamW,
                                                               ScheduleFreeEval)
from tests.conftest import tiny_model, tiny_regression

pytestmark = pytest.mark.jax

B1 = 0.9


def _bn_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="pre_bn"),
                             keras.layers.BatchNormalization(momentum=0.9, name="bn"),
                             keras.layers.Activation("relu"), keras.layers.Dropout(0.2), keras.layers.Dense(1)])


def _compiled(make_model, seed=0):
    keras.utils.set_random_seed(seed)
    model = make_model()
    model.compile(optimizer=ReferenceScheduleFreeAdamW(1e-2, warmup_steps=3), loss="mse")
    return model


def _state(model):
    return [np.array(v) for v in list(model.variables) + list(model.optimizer.variables)]


class _Spy(keras.callbacks.Callback):
    """Records, at each validation, y and x by optax's formula (before the swap) or what the model holds."""

    def __init__(self, before_swap):
        super().__init__()
        self.before_swap, self.seen = before_swap, []

    def on_test_begin(self, logs=None):
        if self.before_swap:
            opt = self.model.optimizer
            ys = [np.array(v) for v in opt._trainable_variables]
            zs = [np.array(opt._z[opt._get_variable_index(v)]) for v in opt._trainable_variables]
            self.seen.append({"x_optax": [(y - (1 - B1) * z) / B1 for y, z in zip(ys, zs)],
                              "x": [np.array(x) for x in opt.eval_weights()]})

    def on_test_batch_begin(self, batch, logs=None):
        if not self.before_swap and batch == 0:
            self.seen.append({v.path: np.array(v) for v in self.model.variables})


def test_validation_inside_fit_is_at_x():
    x, y = tiny_regression(n=128)
    model = _compiled(tiny_model)
    pre, post = _Spy(True), _Spy(False)
    hist = model.fit(x, y, epochs=2, batch_size=16, shuffle=False, validation_data=(x[:64], y[:64]),
                     callbacks=[pre, ScheduleFreeEval(), post], verbose=0)
    for before, during in zip(pre.seen, post.seen):
        held = [during[v.path] for v in model.optimizer._trainable_variables]
        for h, xe, xo in zip(held, before["x"], before["x_optax"]):
            np.testing.assert_array_equal(h, xe)
            np.testing.assert_allclose(h, xo, rtol=1e-6, atol=1e-7)
    # The last val_loss is evaluate at x after fit (the model holds y again).
    at_y = model.evaluate(x[:64], y[:64], verbose=0)
    with EvalWeights(model):
        at_x = model.evaluate(x[:64], y[:64], verbose=0)
    assert hist.history["val_loss"][-1] == pytest.approx(at_x, rel=1e-6)
    assert abs(at_x - at_y) > 1e-4 * at_y  # x and y differ: the check means something


def test_training_continues_from_y_bit_exactly_with_batch_norm_and_dropout():
    x, y = tiny_regression(n=128)
    plain, evaluated = _compiled(_bn_model), _compiled(_bn_model)
    evaluated.set_weights(plain.get_weights())
    plain.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    evaluated.fit(x, y, epochs=3, batch_size=16, shuffle=False, validation_data=(x[:32], y[:32]), verbose=0,
                  callbacks=[ScheduleFreeEval(bn_data=x, bn_batches=4, batch_size=16)])
    a, b = _state(plain), _state(evaluated)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_batch_norm_statistics_during_validation_are_recomputed_at_x():
    x, y = tiny_regression(n=128)
    model = _compiled(_bn_model)
    pre, post = _Spy(True), _Spy(False)
    bn_x = x[:64]
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, validation_data=(x[:32], y[:32]), verbose=0,
              callbacks=[pre, ScheduleFreeEval(bn_data=bn_x, bn_batches=3, batch_size=16), post])
    bn = model.get_layer("bn")
    moving_at_y = np.array(bn.moving_mean)
    for before, during in zip(pre.seen, post.seen):
        paths = [v.path for v in model.optimizer._trainable_variables]
        xs = dict(zip(paths, before["x"]))
        kernel, bias = xs[model.get_layer("pre_bn").kernel.path], xs[model.get_layer("pre_bn").bias.path]
        h = [bn_x[i:i + 16] @ kernel + bias for i in (0, 16, 32)]  # 3 batches: the 4th is not used
        mean = np.mean([hb.mean(axis=0) for hb in h], axis=0)
        var = np.mean([hb.var(axis=0) for hb in h], axis=0)
        np.testing.assert_allclose(during[bn.moving_mean.path], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(during[bn.moving_variance.path], var, rtol=1e-5, atol=1e-6)
        assert bn.momentum == 0.9
    assert not np.allclose(moving_at_y, post.seen[-1][bn.moving_mean.path], rtol=1e-3)


def test_wrapped_checkpoint_saves_x(tmp_path):
    x, y = tiny_regression(n=64)
    model = _compiled(tiny_model)
    path = str(tmp_path / "x.weights.h5")
    checkpoint = keras.callbacks.ModelCheckpoint(path, save_weights_only=True)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[ScheduleFreeEval(callbacks=[checkpoint])])
    y_after = [np.array(v) for v in model.trainable_variables]
    x_expected = [np.array(v) for v in model.optimizer.eval_weights(model.trainable_variables)]
    saved = tiny_model()
    saved.load_weights(path)
    for s, xe, ya in zip(saved.trainable_variables, x_expected, y_after):
        np.testing.assert_array_equal(np.array(s), xe)
        assert not np.array_equal(xe, ya)
    for v, ya in zip(model.trainable_variables, y_after):  # the model holds y after fit
        np.testing.assert_array_equal(np.array(v), ya)


def test_batch_norm_without_bn_data_warns_and_wrong_optimizer_raises():
    x, y = tiny_regression(n=64)
    model = _compiled(_bn_model)
    with pytest.warns(UserWarning, match="bn_data"):
        model.fit(x, y, epochs=1, batch_size=16, validation_data=(x, y), verbose=0, callbacks=[ScheduleFreeEval()])
    other = tiny_model()
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="ReferenceScheduleFreeAdamW"):
        other.fit(x, y, epochs=1, verbose=0, callbacks=[ScheduleFreeEval()])


def test_harness_schedule_free_ref_validates_at_x():
    from keras_autolr.harness import methods
    from keras_autolr.harness.methods import tuning_free  # noqa: F401 (registers the names)

    setup = methods.make_setup("schedule_free_ref", initial_lr=0.01, epochs=2, steps_per_epoch=4)
    assert any(isinstance(cb, ScheduleFreeEval) for cb in setup.callbacks)
