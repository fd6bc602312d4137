"""`fh_lr_search`: candidates probed from one state, the best proxy estimate chosen, the state restored."""

import math

import keras
import numpy as np
import pytest

from keras_autolr.harness import methods
from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime import snapshot as snapshot_lib


def _data(n=160, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64") + (x[:, 2] > 0.8)
    return x, y


def _compiled(setup):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model = setup.wrap_model(model)
    model.compile(setup.optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)
    return model


@pytest.mark.jax
def test_probes_choose_the_best_estimate_and_leave_the_start_state_untouched():
    setup = methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=10, steps_per_epoch=8, optimizer="sgd",
                               lrs=[1e-4, 0.3], probe_epochs=2)
    model = _compiled(setup)
    start = snapshot_lib.snapshot(model)
    x, y = _data()
    batches = setup.train_data(x, y, 16, 0)
    est = setup.search["estimates"]
    assert list(est) == [1e-4, 0.3]
    chosen = setup.search["chosen"]
    assert chosen == max(est, key=est.get)  # the first of equal estimates on a tie
    assert all(0 <= v <= 1 for v in est.values())
    # Weights, BN-free state and optimizer slots exactly as before the probes; the LR is the choice.
    after = snapshot_lib.snapshot(model)
    for a, b in zip(start.model_values, after.model_values):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations) == 0
    assert lr_lib.get_learning_rate(model.optimizer) == pytest.approx(chosen, rel=1e-6)
    # The probes' cost: 2 candidates x 2 epochs x 8 batches of the 128 fit rows (20% held out).
    assert setup.cost["steps"] == 2 * 2 * 8 and setup.cost["cpu_seconds"] > 0
    assert setup.cost["chosen_lr"] == chosen and setup.cost["estimates"]["0.3"] == est[0.3]
    assert len(batches) == 10  # the full fit trains on every row


@pytest.mark.jax
def test_the_final_fit_is_a_cosine_from_the_chosen_lr():
    setup = methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=4, steps_per_epoch=10,
                               lrs=[1e-3, 1e-2], probe_epochs=1)
    model = _compiled(setup)
    x, y = _data()
    model.fit(setup.train_data(x, y, 16, 0), epochs=4, verbose=0, callbacks=setup.callbacks)
    chosen = setup.search["chosen"]
    lrs = model.history.history["learning_rate"]
    cosine = keras.optimizers.schedules.CosineDecay(chosen, 40)
    assert lrs == pytest.approx([float(cosine(10 * e)) for e in range(1, 5)], rel=1e-5, abs=1e-9)


def test_refuses_regression_targets_and_bad_options():
    setup = methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=4, steps_per_epoch=10)
    _compiled(setup)
    x, _ = _data()
    with pytest.raises(ValueError, match="integer class labels"):
        setup.train_data(x, x[:, 0], 16, 0)
    with pytest.raises(ValueError, match="probe_epochs"):
        methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=4, steps_per_epoch=10, probe_epochs=5)
    with pytest.raises(ValueError, match="Unknown options"):
        methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=4, steps_per_epoch=10, k=3)


def test_a_diverging_candidate_is_never_chosen():
    """TensorFlow: SGD at LR 1e6 overflows to NaN, TerminateOnNaN stops the probe, its estimate is -inf."""
    setup = methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=10, steps_per_epoch=8, optimizer="sgd",
                               lrs=[1e6, 1e-4], probe_epochs=2)
    _compiled(setup)
    x, y = _data()
    setup.train_data(x, y, 16, 0)
    assert setup.search["estimates"][1e6] == -math.inf and setup.search["chosen"] == 1e-4
    assert setup.cost["estimates"]["1e+06"] is None


def test_ties_go_to_the_smallest_lr_whatever_the_order_of_the_candidates():
    """TensorFlow: both candidates diverge (-inf each); the smaller is chosen though it is listed last."""
    setup = methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=10, steps_per_epoch=8, optimizer="sgd",
                               lrs=[1e7, 1e6], probe_epochs=1)
    _compiled(setup)
    x, y = _data()
    setup.train_data(x, y, 16, 0)
    assert setup.search["estimates"] == {1e7: -math.inf, 1e6: -math.inf}
    assert setup.search["chosen"] == 1e6 and setup.cost["chosen_lr"] == 1e6


@pytest.mark.jax
def test_probes_leave_batchnorm_dropout_and_optimizer_state_as_they_found_it():
    """BatchNorm statistics, the dropout seed state and every optimizer slot are back bit for bit."""
    setup = methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=6, steps_per_epoch=10,
                               lrs=[1e-3, 1e-2], probe_epochs=1)
    keras.utils.set_random_seed(0)
    model = setup.wrap_model(keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16), keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.Dropout(0.3), keras.layers.Dense(3, activation="softmax")]))
    model.compile(setup.optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)
    lr_lib.prepare(model.optimizer)  # as train_data does, so both snapshots have the multiplier
    start = snapshot_lib.snapshot(model)
    x, y = _data()
    setup.train_data(x, y, 16, 0)
    after = snapshot_lib.snapshot(model)
    names = [v.path for v in model.variables]
    assert any("moving_mean" in n for n in names) and any("seed_generator" in n for n in names)
    for name, a, b in zip(names, start.model_values, after.model_values):
        np.testing.assert_array_equal(a, b, err_msg=name)
    opt_names = [v.path for v in model.optimizer.variables]
    assert len(opt_names) == len(start.optimizer_values) == len(after.optimizer_values)
    for name, a, b in zip(opt_names, start.optimizer_values, after.optimizer_values):
        if "lr_multiplier" not in name:  # the one that moves: it now starts the cosine at the chosen LR
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert lr_lib.get_learning_rate(model.optimizer) == pytest.approx(setup.search["chosen"], rel=1e-6)
