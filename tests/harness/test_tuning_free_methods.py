"""Each tuning_free registry name builds a Setup that trains the tiny model for 2 epochs."""

import keras
import numpy as np
import pytest

from keras_autolr.harness import methods
from keras_autolr.harness.methods import tuning_free
from tests.conftest import tiny_model, tiny_regression


def _train(name, **options):
    x, y = tiny_regression(n=256)
    setup = methods.make_setup(name, initial_lr=1e-2, epochs=2, steps_per_epoch=8, **options)
    model = tiny_model()
    if setup.wrap_model is not None:
        model = setup.wrap_model(model)
    model.compile(optimizer=setup.optimizer, loss="mse")
    if setup.train_data is not None:
        train = {"x": setup.train_data(x, y, 32, 0)}
    else:
        train = {"x": x, "y": y, "batch_size": 32}
    hist = model.fit(**train, epochs=2, callbacks=setup.callbacks, verbose=0)
    return setup, model, hist


@pytest.mark.jax
@pytest.mark.parametrize("name", tuning_free.NAMES)
def test_builds_and_trains_two_epochs(name):
    assert name in methods.names()
    setup, model, hist = _train(name)
    assert len(hist.history["loss"]) == 2 and np.all(np.isfinite(hist.history["loss"]))
    lrs = hist.history["learning_rate"]
    assert len(lrs) == 2 and all(np.isfinite(lrs))
    assert any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in setup.callbacks)


@pytest.mark.jax
def test_algoperf_hyperparameters_and_warmup():
    setup = methods.make_setup("nadamw_warmup_cosine", initial_lr=2e-3, epochs=10, steps_per_epoch=10)
    opt = setup.optimizer
    assert opt.beta_1 == pytest.approx(1 - 0.06733926164) and opt.beta_2 == pytest.approx(0.9955159689799007)
    assert opt.weight_decay == pytest.approx(0.08121616522670176)
    sched = opt._learning_rate
    assert float(sched(0)) == 0.0 and float(sched(2)) == pytest.approx(2e-3)  # 2% of 100 steps
    assert float(sched(100)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.jax
def test_lr_finder_constant_sets_the_suggestion():
    setup, model, hist = _train("lr_finder+constant", steps=8, min_lr=1e-4, max_lr=1.0)
    result = setup.finder["result"]
    assert result.suggestion is not None
    assert hist.history["learning_rate"][0] == pytest.approx(result.suggestion)


def test_tuning_free_ignore_initial_lr_and_reject_unknown_options():
    setup = methods.make_setup("prodigy", initial_lr=1e-3, epochs=1, steps_per_epoch=1)
    assert float(setup.optimizer.learning_rate) == 1.0
    with pytest.raises(ValueError, match="Unknown options"):
        methods.make_setup("dog", initial_lr=1e-3, epochs=1, steps_per_epoch=1, bogus=1)
