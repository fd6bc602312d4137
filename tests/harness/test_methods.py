import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.harness import methods
from tests.conftest import tiny_model, tiny_regression

pytestmark = pytest.mark.jax


def _lrs(setup, epochs, spe=4):
    x, y = tiny_regression(n=16 * spe)
    model = tiny_model()
    model.compile(optimizer=setup.optimizer, loss="mse")
    h = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, validation_data=(x, y), callbacks=setup.callbacks)
    return h.history["learning_rate"]


def test_names_include_all_baselines():
    assert set(methods.BASELINES) <= set(methods.names())


def test_unknown_method_and_optimizer_say_what_exists():
    with pytest.raises(methods.UnknownMethodError, match="choose one of"):
        methods.make_setup("nope", initial_lr=0.1, epochs=2, steps_per_epoch=2)
    with pytest.raises(methods.UnknownMethodError, match="sgd"):
        methods.make_optimizer("adagrad9", 0.1)
    with pytest.raises(ValueError, match="positive"):
        methods.make_setup("constant", initial_lr=0.0, epochs=2, steps_per_epoch=2)


def test_constant_and_exponential_per_epoch():
    s = methods.make_setup("constant", initial_lr=0.1, epochs=3, steps_per_epoch=4, optimizer="sgd")
    assert _lrs(s, 3) == pytest.approx([0.1] * 3)
    s = methods.make_setup("exponential", initial_lr=0.1, epochs=3, steps_per_epoch=4, optimizer="sgd", gamma=0.5)
    # logged at epoch end, i.e. the LR the next epoch starts with
    assert _lrs(s, 3) == pytest.approx([0.05, 0.025, 0.0125])


def test_multistep_and_cosine_restarts_shapes():
    s = methods.make_setup("multistep", initial_lr=0.01, epochs=4, steps_per_epoch=4, optimizer="sgd",
                           milestones=[0.5, 0.75])
    assert _lrs(s, 4) == pytest.approx([0.01, 0.001, 0.0001, 0.0001])
    s = methods.make_setup("cosine_restarts", initial_lr=0.01, epochs=7, steps_per_epoch=4, optimizer="sgd")
    lrs = _lrs(s, 7)
    # T0 = 1 epoch, t_mul 2: restarts at steps 4 and 12 (ends of epochs 1 and 3).
    assert lrs[0] == pytest.approx(0.01, abs=1e-8) and lrs[2] == pytest.approx(0.01, abs=1e-8)
    assert lrs[1] == pytest.approx(0.005, abs=1e-8)


def test_plateau_and_schedule_free_use_keras_builtins():
    s = methods.make_setup("plateau", initial_lr=0.1, epochs=3, steps_per_epoch=4)
    assert any(isinstance(c, keras.callbacks.ReduceLROnPlateau) for c in s.callbacks)
    s = methods.make_setup("schedule_free", initial_lr=0.01, epochs=3, steps_per_epoch=4)
    assert isinstance(s.optimizer, keras.optimizers.ScheduleFreeAdamW)
    assert lr_lib.get_learning_rate(s.optimizer) == pytest.approx(0.01)


def test_non_finite_loss_terminates_baseline():
    s = methods.make_setup("constant", initial_lr=1e6, epochs=5, steps_per_epoch=4, optimizer="sgd")
    assert any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in s.callbacks)
    x, y = tiny_regression()
    y = y * 1e6
    model = tiny_model()
    model.compile(optimizer=s.optimizer, loss="mse")
    h = model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=s.callbacks)
    assert len(h.history["loss"]) < 5 or not np.isfinite(h.history["loss"][-1])
    assert model.stop_training


def test_register_custom_method():
    @methods.register("test_halving")
    def _f(ctx):
        return methods.Setup(methods.make_optimizer(ctx.optimizer, ctx.initial_lr / 2), [])

    s = methods.make_setup("test_halving", initial_lr=0.2, epochs=1, steps_per_epoch=1, optimizer="sgd")
    assert lr_lib.get_learning_rate(s.optimizer) == pytest.approx(0.1)


def test_register_optimizer():
    methods.register_optimizer("sgd_wd_test", lambda lr: keras.optimizers.SGD(lr, weight_decay=5e-4))
    opt = methods.make_optimizer("sgd_wd_test", 0.1)
    assert isinstance(opt, keras.optimizers.SGD) and opt.weight_decay == pytest.approx(5e-4)
    setup = methods.make_setup("constant", initial_lr=0.1, epochs=2, steps_per_epoch=3, optimizer="sgd_wd_test")
    assert setup.optimizer.weight_decay == pytest.approx(5e-4)
    with pytest.raises(TypeError):
        methods.register_optimizer("broken", 0.1)
