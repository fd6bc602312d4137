import math
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_callback import LearningRateCallback, LearningRateLogger
from tests.conftest import tiny_model, tiny_regression

# Backend-neutral: CI runs this module on TensorFlow and on JAX.
pytestmark = pytest.mark.jax


def test_float_lr_get_set_scale():
    opt = keras.optimizers.SGD(0.1)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.1)
    lr_lib.set_learning_rate(opt, 0.02)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.02)
    assert lr_lib.scale_learning_rate(opt, 0.5) == pytest.approx(0.01)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.01)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 0.0, "abc"])
def test_rejects_non_finite_and_non_positive(bad):
    opt = keras.optimizers.Adam(1e-3)
    with pytest.raises(lr_lib.LearningRateError):
        lr_lib.set_learning_rate(opt, bad)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(1e-3)  # untouched


def test_schedule_is_scaled_not_replaced():
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    opt = keras.optimizers.SGD(sched)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.1)
    lr_lib.set_learning_rate(opt, 0.3)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.3)
    assert isinstance(opt._learning_rate, lr_lib.ScaledSchedule)
    # The schedule keeps its shape: 10 steps later it has halved.
    opt._iterations.assign(10)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.15)
    # The multiplier is optimizer state.
    assert any("lr_multiplier" in v.path for v in opt.variables)


def test_loss_scale_optimizer_unwrapped():
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
    lr_lib.set_learning_rate(opt, 5e-4)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(5e-4)
    assert lr_lib.get_learning_rate(opt.inner_optimizer) == pytest.approx(5e-4)


def test_unsupported_optimizers_say_what_to_do():
    with pytest.raises(lr_lib.LearningRateError, match="compile"):
        lr_lib.get_learning_rate(None)
    with pytest.raises(lr_lib.LearningRateError, match="Keras 3 optimizers"):
        lr_lib.get_learning_rate(object())
    opt = keras.optimizers.SGD(lambda: 0.1)
    with pytest.raises(lr_lib.LearningRateError, match="LearningRateSchedule"):
        lr_lib.set_learning_rate(opt, 0.2)


def test_scaled_schedule_config_round_trip():
    sched = keras.optimizers.schedules.CosineDecay(0.1, 100)
    wrapped = lr_lib.ScaledSchedule(sched, 2.0)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(wrapped))
    assert isinstance(restored, lr_lib.ScaledSchedule)
    assert float(restored(0)) == pytest.approx(0.2)


class _SetAtEpoch(LearningRateCallback):
    """Sets the LR at the start of epoch 1; the compiled step must see it."""

    def __init__(self, value):
        super().__init__()
        self.value = value
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.set_lr(self.value)

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(self.get_lr())


@pytest.mark.parametrize("kind", ["float", "schedule"])
def test_controller_changes_lr_inside_compiled_fit(kind):
    x, y = tiny_regression()
    model = tiny_model()
    lr0 = 0.01 if kind == "float" else keras.optimizers.schedules.CosineDecay(0.01, 1000, alpha=0.5)
    model.compile(optimizer=keras.optimizers.SGD(lr0), loss="mse")
    cb = _SetAtEpoch(1e-6)
    w_before = None

    class Snap(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            nonlocal w_before
            if epoch == 2:
                w_before = [np.array(v) for v in self.model.trainable_weights]

    hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb, Snap()])
    assert hist.history["learning_rate"][0] == pytest.approx(0.01, rel=0.05)
    assert hist.history["learning_rate"][1] == pytest.approx(1e-6, rel=0.05)
    # With LR 1e-6 the third epoch barely moves the weights: the graph used the new LR.
    delta = max(float(np.abs(np.array(v) - w).max()) for v, w in zip(model.trainable_weights, w_before))
    assert delta < 1e-4


def test_logger_puts_lr_in_history_for_schedules():
    x, y = tiny_regression()
    model = tiny_model()
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5, staircase=True)
    model.compile(optimizer=keras.optimizers.SGD(sched), loss="mse")
    hist = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[LearningRateLogger()])
    assert hist.history["learning_rate"] == pytest.approx([0.05, 0.025])
    # Reading alone must not wrap the schedule.
    assert not isinstance(model.optimizer._learning_rate, lr_lib.ScaledSchedule)


@pytest.mark.slow
def test_mirrored_strategy_two_cpus():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute is TensorFlow's")
    code = textwrap.dedent(
        """
        import os
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, numpy as np
        from keras_autolr.runtime import lr as lr_lib
        from keras_autolr.runtime.lr_callback import LearningRateCallback
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        class Half(LearningRateCallback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    self.set_lr(self.get_lr() / 2)
        for lr0 in (0.01, keras.optimizers.schedules.ExponentialDecay(0.01, 1000, 0.9)):
            with strategy.scope():
                m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
                m.compile(optimizer=keras.optimizers.SGD(lr0), loss="mse")
            x = np.random.rand(64, 4).astype("float32"); y = x.sum(1, keepdims=True)
            h = m.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[Half()])
            lrs = h.history["learning_rate"]
            assert abs(lrs[1] / lrs[0] - 0.5) < 0.01, lrs
        print("OK")
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.slow
def test_jax_backend_controller_and_schedule():
    # In the TF run, proves the JAX path in a subprocess; the JAX run covers it directly.
    if keras.backend.backend() == "jax":
        pytest.skip("this whole module runs on JAX in the JAX pass")
    pytest.importorskip("jax")
    code = textwrap.dedent(
        """
        import os
        os.environ["KERAS_BACKEND"] = "jax"
        import keras, numpy as np
        from keras_autolr.runtime.lr_callback import LearningRateCallback
        class Set(LearningRateCallback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    self.set_lr(1e-7)
                if epoch == 2:
                    self.w = [np.array(v) for v in self.model.trainable_weights]
        for lr0 in (0.01, keras.optimizers.schedules.CosineDecay(0.01, 1000, alpha=0.5)):
            m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            m.compile(optimizer=keras.optimizers.SGD(lr0), loss="mse")
            x = np.random.rand(64, 4).astype("float32"); y = x.sum(1, keepdims=True)
            cb = Set()
            h = m.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
            lrs = h.history["learning_rate"]
            assert abs(lrs[1] - 1e-7) < 1e-8 and abs(lrs[2] - 1e-7) < 1e-8, lrs
            # The jitted step used the new LR: the last epoch barely moved the weights.
            delta = max(float(np.abs(np.array(v) - w).max()) for v, w in zip(m.trainable_weights, cb.w))
            assert delta < 1e-4, delta
        print("OK")
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "OK" in out.stdout, out.stderr[-3000:]


def test_controller_under_loss_scale_optimizer_and_mixed_precision():
    x, y = tiny_regression()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny_model()
        sched = keras.optimizers.schedules.ExponentialDecay(0.01, 1000, 0.9)
        opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(sched))
        model.compile(optimizer=opt, loss="mse")
        cb = _SetAtEpoch(1e-3)
        hist = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    finally:
        keras.config.set_dtype_policy("float32")
    assert hist.history["learning_rate"][1] == pytest.approx(1e-3, rel=0.01)
    assert isinstance(opt.inner_optimizer._learning_rate, lr_lib.ScaledSchedule)


@pytest.mark.jax
def test_stateless_learning_rate_sets_the_lr_in_values_only():
    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    opt.build([keras.Variable(np.zeros(3, "float32"))])
    values = [v.value for v in opt.variables]
    new = lr_lib.stateless_learning_rate(opt, values, 0.5)
    assert len(new) == len(values)
    changed = [i for i, (a, b) in enumerate(zip(values, new)) if not np.array_equal(np.asarray(a), np.asarray(b))]
    assert len(changed) == 1 and float(np.asarray(new[changed[0]])) == pytest.approx(0.5)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.1)  # nothing was written


@pytest.mark.parametrize("value", [1e-320, 1e-39, 1e39])
@pytest.mark.parametrize("kind", ["float", "schedule"])
def test_set_refuses_values_float32_cannot_hold(value, kind):
    lr0 = 0.1 if kind == "float" else keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    opt = keras.optimizers.SGD(lr0)
    with pytest.raises(lr_lib.LearningRateError, match="float32, which represents positive values from"):
        lr_lib.set_learning_rate(opt, value)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(0.1)  # untouched, not 0 or inf


def test_scale_refuses_an_lr_that_overflows_float32():
    opt = keras.optimizers.Adam(1e-3)
    with pytest.raises(lr_lib.LearningRateError, match="would become inf"):
        lr_lib.scale_learning_rate(opt, 1e300)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(1e-3)


def test_set_refuses_a_schedule_multiplier_that_overflows_float32():
    # 1.0 is a fine LR, but 1.0 / 1e-30 does not fit in the float32 multiplier.
    opt = keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(1e-30, 10, 0.5))
    with pytest.raises(lr_lib.LearningRateError, match="multiplier"):
        lr_lib.set_learning_rate(opt, 1e10)
    assert lr_lib.get_learning_rate(opt) == pytest.approx(1e-30)


def test_state_variables_are_saved_by_name_outside_the_optimizers_own_entry(tmp_path):
    # A plain optimizer of the same kind loads the weights file: it sees only Keras's variables.
    x, y = tiny_regression()
    model = tiny_model()
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    model.compile(optimizer=keras.optimizers.SGD(sched, momentum=0.9), loss="mse")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    lr_lib.scale_learning_rate(model.optimizer, 0.25)
    state = lr_lib.add_state_variable(model.optimizer, "extra", shape=(2,))
    state.assign([1.0, 2.0])
    model.save_weights(tmp_path / "w.weights.h5")
    plain = tiny_model()
    plain.compile(optimizer=keras.optimizers.SGD(sched, momentum=0.9), loss="mse")
    plain.optimizer.build(plain.trainable_variables)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when it skips the optimizer's variables
        plain.load_weights(tmp_path / "w.weights.h5")
    assert int(plain.optimizer.iterations) == 4
    # A prepared optimizer takes the named values back, even for a variable created later.
    again = tiny_model()
    again.compile(optimizer=keras.optimizers.SGD(sched, momentum=0.9), loss="mse")
    again.optimizer.build(again.trainable_variables)
    lr_lib.attach_state(again.optimizer)
    again.load_weights(tmp_path / "w.weights.h5")
    late = lr_lib.add_state_variable(again.optimizer, "extra", shape=(2,))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(late), [1.0, 2.0])
    assert lr_lib.prepare(again.optimizer) == lr_lib.get_learning_rate(model.optimizer)


@pytest.mark.jax
def test_scale_learning_rate_scales_the_base_multiplier_of_self_tuning_optimizers():
    import numpy as np

    from keras_autolr.runtime.optimizers import Prodigy

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    opt = Prodigy()
    model.compile(optimizer=opt, loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    before = lr_lib.get_learning_rate(opt)
    after = lr_lib.scale_learning_rate(opt, 0.5)
    # d is unchanged by scaling; d * lr halves.
    assert after == pytest.approx(before * 0.5, rel=1e-6)


@pytest.mark.jax
def test_setting_a_schedule_under_a_jax_distribution_warns_unless_prepared():
    """Under a JAX keras.distribution, the multiplier added mid-fit would break the compiled step: say so."""
    if keras.backend.backend() != "jax":
        pytest.skip("keras.distribution's compiled-step shardings are JAX's")
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
    try:
        decay = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
        late = keras.optimizers.SGD(decay)
        late.build([keras.Variable(np.zeros(2, "float32"))])
        with pytest.warns(UserWarning, match="lr.prepare"):
            lr_lib.set_learning_rate(late, 0.05)
        early = keras.optimizers.SGD(decay)
        early.build([keras.Variable(np.zeros(2, "float32"))])
        lr_lib.prepare(early)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lr_lib.set_learning_rate(early, 0.05)  # the multiplier exists: nothing is added
    finally:
        keras.distribution.set_distribution(previous)
