"""MCVModel inside `fit`: logs, decisions, stopping, bad input. Backend-neutral."""

import csv
import math

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.harness import methods
from keras_autolr.runtime.mcv import (CandidateError, Discard, MCVError, MCVModel, MCVScheduler,
                                     MCVStopping, Method2, Method3, THESIS_LR_LIST, Voting)

# Backend-neutral: tests/run.sh runs these again with KERAS_BACKEND=jax.
pytestmark = pytest.mark.jax

FACTORS = (2.0, 1.0, 0.5)


def _inner(d=6, classes=3):
    return keras.Sequential([keras.Input((d,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(classes)])


def _data(n=192, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (np.argmax(x[:, :3], axis=1)).astype("int32")
    return x, y


def _compile(model, lr=0.05, opt="sgd"):
    o = keras.optimizers.SGD(lr, momentum=0.9) if opt == "sgd" else keras.optimizers.Adam(lr)
    model.compile(o, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def test_fit_with_validation_and_callbacks_logs_decisions(tmp_path):
    x, y = _data()
    model = _compile(MCVModel(_inner(), method="method2", alpha=0.5))  # thesis's 7 candidates
    csv_path = tmp_path / "log.csv"
    hist = model.fit(x, y, batch_size=64, epochs=3, validation_data=_data(64, seed=1), verbose=0,
                     callbacks=[keras.callbacks.CSVLogger(str(csv_path))])
    h = hist.history
    assert len(h["val_loss"]) == 3 and all(np.isfinite(h["val_loss"]))
    # The LR of epoch e+1 is the candidate chosen at the end of epoch e.
    assert h["learning_rate"][0] == pytest.approx(0.05)
    for e in range(2):
        assert h["learning_rate"][e + 1] == pytest.approx(h["mcv_next_lr"][e], rel=1e-6)
        lrs = [h[f"mcv_cand{i}_lr"][e] for i in range(7)]
        np.testing.assert_allclose(lrs, np.array([5, 2, 4 / 3, 1, 0.75, 0.5, 0.2]) * h["learning_rate"][e], rtol=1e-6)
        score = [0.5 * h[f"mcv_cand{i}_val_loss"][e] + 0.5 * h[f"mcv_cand{i}_train_loss"][e] for i in range(7)]
        assert h["mcv_next_lr"][e] == pytest.approx(lrs[int(np.argmin(score))], rel=1e-6)
    # Counted operations per step equal Table 4.1.
    assert h["mcv_forward"] == [16.0] * 3 and h["mcv_backward"] == [1.0] * 3
    assert h["mcv_opt_steps"] == [8.0] * 3 and h["mcv_theory_forward"] == [16.0] * 3
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 3 and "mcv_discard_rate" in rows[0]


def test_method3_picks_largest_improving_lr_and_initial_candidates():
    x, y = _data()
    model = _compile(MCVModel(_inner(), method="method3", factors=FACTORS,
                              initial_candidates=THESIS_LR_LIST))
    hist = model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    h = hist.history
    # Algorithm 8: epoch 1 trains at min(list) while trying the whole list.
    assert h["learning_rate"][0] == pytest.approx(1e-4)
    assert [h[f"mcv_cand{i}_lr"][0] for i in range(3)] == pytest.approx([0.1, 0.01, 0.001])
    val = [h[f"mcv_cand{i}_val_loss"][0] for i in range(3)]
    better = [i for i in range(3) if val[i] < h["mcv_val_batch_loss"][0]]
    expected = [0.1, 0.01, 0.001][better[0]] if better else [0.1, 0.01, 0.001][int(np.argmin(val))]
    assert h["mcv_next_lr"][0] == pytest.approx(expected)


def test_voting_uses_fixed_list_and_counts_discards():
    x, y = _data()
    model = _compile(MCVModel(_inner(), method="voting"))
    hist = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    h = hist.history
    assert all(min(abs(lr - c) / c for c in THESIS_LR_LIST) < 1e-5 for lr in h["learning_rate"])
    assert all(0.0 <= r <= 1.0 for r in h["mcv_discard_rate"])
    s = model.mcv_state()
    assert s["history"].sum() == pytest.approx(1.0, abs=0.05) or s["history"].sum() < 1.0


def test_discard_rejects_harmful_steps_in_fit():
    x, y = _data()
    model = _compile(MCVModel(_inner(), method="discard"), lr=50.0)
    hist = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert hist.history["mcv_discard_rate"][0] > 0.0
    assert all(np.all(np.isfinite(w)) for w in model.model.get_weights())


def test_all_candidates_nonfinite_stops_and_restores_best_epoch():
    x, y = _data()
    inner = _inner()
    model = _compile(MCVModel(inner, method="method1", factors=FACTORS,
                              initial_candidates=[1e30, 1e25]), lr=0.01)
    start = [w.copy() for w in inner.get_weights()]
    stop = MCVStopping(patience=3)
    hist = model.fit(x, y, batch_size=64, epochs=5, verbose=0, callbacks=[stop])
    assert len(hist.history["loss"]) == 1 and stop.reason == "nonfinite"
    for a, b in zip(start, inner.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_default_fit_guards_against_divergence():
    """Without any callback, a diverging run stops and keeps the last finite weights."""
    x, y = _data()
    inner = _inner()
    model = _compile(MCVModel(inner, method="method1", factors=FACTORS,
                              initial_candidates=[1e30, 1e25]), lr=0.01)
    start = [w.copy() for w in inner.get_weights()]
    hist = model.fit(x, y, batch_size=64, epochs=4, verbose=0)
    assert len(hist.history["loss"]) == 1
    for a, b in zip(start, inner.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_stopping_patience_restores_best_weights():
    model = _inner()
    model.stop_training = False
    stop = MCVStopping(patience=2)
    stop.set_model(model)
    stop.on_train_begin()
    for e, v in enumerate([1.0, 0.5, 0.7, 0.6, 0.4]):
        model.set_weights([np.full_like(w, e) for w in model.get_weights()])  # "epoch e weights"
        stop.on_epoch_end(e, {"mcv_val_batch_loss": v})
        if model.stop_training:
            break
    assert stop.reason == "patience" and stop.best_epoch == 1 and stop.stopped_epoch == 3
    assert all(np.all(w == 1.0) for w in model.get_weights())
    with pytest.raises(KeyError, match="MCVModel"):
        stop.on_epoch_end(4, {"loss": 1.0})


def test_bad_input_errors():
    with pytest.raises(MCVError, match="Unknown MCV method"):
        MCVModel(_inner(), method="method4")
    with pytest.raises(MCVError, match="alpha"):
        MCVModel(_inner(), alpha=2.0)
    with pytest.raises(CandidateError, match="finite and positive"):
        MCVModel(_inner(), initial_candidates=[0.1, 0.0])
    with pytest.raises(CandidateError, match="finite and positive"):
        MCVModel(_inner(), factors=[2.0, math.nan])
    with pytest.raises(MCVError, match="keras.Model"):
        MCVModel(lambda x: x)
    x, y = _data(4)
    model = _compile(MCVModel(_inner(), method="method1", factors=FACTORS))
    with pytest.raises(MCVError, match="candidate list is not set"):
        model.train_on_batch(x, y)
    no_loss = MCVModel(_inner(), method="method1", factors=FACTORS)
    no_loss.compile(keras.optimizers.SGD(0.1))
    no_loss.set_candidates([0.1])
    with pytest.raises(MCVError, match="compiled with `loss=`"):
        no_loss.train_on_batch(x, y)
    with pytest.raises(TypeError, match="MCVModel"):
        plain = _compile(_inner())
        plain.fit(x, y, epochs=1, verbose=0, callbacks=[MCVScheduler()])


def test_config_round_trip_and_controller_added_once():
    model = MCVModel(_inner(), method="method2", alpha=0.3, factors=FACTORS, min_lr=1e-6)
    clone = MCVModel.from_config(model.get_config())
    assert clone.strategy == Method2(alpha=0.3, factors=FACTORS, min_lr=1e-6)
    assert (clone.method, clone.strategy.alpha, clone.strategy.factors, clone.strategy.min_lr) == (
        "method2", 0.3, FACTORS, 1e-6)
    x, y = _data()
    ctrl = MCVScheduler()
    _compile(model).fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[ctrl])
    assert len(ctrl.decisions) == 1


def test_registry_setup_wraps_model():
    setup = methods.make_setup("mcv:method3", initial_lr=0.01, epochs=2, steps_per_epoch=3,
                               optimizer="sgd_momentum", patience=4, factors=FACTORS)
    model = setup.wrap_model(_inner())
    assert isinstance(model, MCVModel) and model.method == "method3"
    assert any(isinstance(c, MCVStopping) and c.patience == 4 for c in setup.callbacks)
    assert lr_lib.get_learning_rate(setup.optimizer) == pytest.approx(0.01)
    default = methods.make_setup("mcv", initial_lr=0.01, epochs=1, steps_per_epoch=1, alpha=0.1)
    assert default.wrap_model(_inner()).strategy == Method2(alpha=0.1)
    with pytest.raises(ValueError, match="Unknown MCV options"):
        methods.make_setup("mcv", initial_lr=0.01, epochs=1, steps_per_epoch=1, bogus=1)
    assert setup.train_data is None  # default: batch halves
    with pytest.raises(ValueError, match="pairing"):
        methods.make_setup("mcv", initial_lr=0.01, epochs=1, steps_per_epoch=1, pairing="thirds")


def test_registry_paired_setup_runs_through_run_one():
    from keras_autolr.harness import runner

    setup = methods.make_setup("mcv:method3", initial_lr=0.01, epochs=1, steps_per_epoch=1, pairing="paired")
    x, y = _data()
    ds = setup.train_data(x, y, 16, 0)
    assert len(ds) == -(-len(x) // 16) and len(ds[0][0]) == 32
    rec = runner.run_one("digits_cnn", "mcv:method3", 0.01, size="smoke", epochs=1,
                         optimizer="adam", options={"pairing": "paired"})
    assert rec["epochs_run"] == 1 and rec["options"] == {"pairing": "paired"}


def test_schedule_optimizer_lr_is_controlled():
    x, y = _data()
    sched = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=10, decay_rate=0.9)
    model = MCVModel(_inner(), method="method1", factors=FACTORS)
    model.compile(keras.optimizers.SGD(sched), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    assert all(np.isfinite(hist.history["learning_rate"]))
    assert hist.history["mcv_next_lr"][0] > 0


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


_STRATEGIES = {"method3": lambda: Method3(factors=FACTORS), "voting": lambda: Voting([0.1, 0.01]),
               "discard": Discard}


@pytest.mark.jax
@pytest.mark.parametrize("method", sorted(_STRATEGIES))
def test_batch_of_one_takes_a_plain_step(method):
    """One example cannot be split into a training and a validation half: no trial, a plain step."""
    x, y = _data(4)
    keras.utils.set_random_seed(3)
    ref = _compile(_inner())
    keras.utils.set_random_seed(3)
    model = _compile(MCVModel(_inner(), method=_STRATEGIES[method]()))
    model.set_candidates(model.strategy.first_candidates(0.05))
    for i in range(2):  # two steps: momentum is involved in the second
        ref.train_on_batch(x[i:i + 1], y[i:i + 1])
        model.train_on_batch(x[i:i + 1], y[i:i + 1])
    for a, b in zip(_values(ref.trainable_variables), _values(model.model.trainable_variables)):
        np.testing.assert_array_equal(a, b)
    assert lr_lib.get_learning_rate(model.optimizer) == pytest.approx(0.05)  # no vote applied
    assert model.mcv_state()["steps"] == 0.0


@pytest.mark.jax
@pytest.mark.parametrize("data", ["numpy", "tf.data"])
def test_remainder_batch_of_one_trains_normally_in_fit(data):
    """33 examples at batch size 32: the last batch of 1 trains without MCV, every epoch."""
    if data == "tf.data" and keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data with an unknown batch dimension is the TensorFlow case")
    x, y = _data(33)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # before MCVScheduler resets the sums
            seen.append(self.model.mcv_state()["steps"])

    keras.utils.set_random_seed(5)
    model = _compile(MCVModel(_inner(), method=Method3(factors=FACTORS)))
    if data == "numpy":
        kwargs = dict(x=x, y=y, batch_size=32, shuffle=False)
    else:
        import tensorflow as tf
        kwargs = dict(x=tf.data.Dataset.from_tensor_slices((x, y)).batch(32))
    hist = model.fit(epochs=2, verbose=0, callbacks=[Spy(), MCVScheduler()], **kwargs)
    assert len(hist.history["loss"]) == 2 and seen == [1.0, 1.0]
    # Epoch 1 is the two batches stepped one by one (the second one plainly).
    keras.utils.set_random_seed(5)
    again = _compile(MCVModel(_inner(), method=Method3(factors=FACTORS)))
    again.set_candidates(again.strategy.first_candidates(0.05))
    again.train_on_batch(x[:32], y[:32])
    again.train_on_batch(x[32:], y[32:])
    keras.utils.set_random_seed(5)
    once = _compile(MCVModel(_inner(), method=Method3(factors=FACTORS)))
    once.fit(epochs=1, verbose=0, **kwargs)
    for a, b in zip(_values(again.model.trainable_variables), _values(once.model.trainable_variables)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
