"""ARC with `keras.callbacks.BackupAndRestore`: a resumed fit decides as the uninterrupted one (issue 15).

Backend-neutral (marked `jax`: CI runs it with KERAS_BACKEND=jax too).

ARC keeps its window (the last 3 cycles), its place in the current cycle and
a decision not yet applied as host state of the optimizer (`lr.add_host_state`),
which the backup saves with the model; a fit resumed from the backup takes it
back at its first epoch.
The controller is a random network, so its probabilities depend on every value
of the window: equal probabilities mean equal windows.
"""

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.arc import ARC, build_controller

pytestmark = pytest.mark.jax

EPOCHS = 8
LOGGED = ("learning_rate", "arc_decision", "arc_p_raise", "arc_p_keep", "arc_p_lower", "loss", "val_loss")


class _Crash(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError(f"simulated crash at epoch {self.at}")


@pytest.fixture(scope="module")
def controller():
    return build_controller(seed=1)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(88, 6)).astype("float32")  # 5 batches of 16, then one of 8
    return x, np.argmax(x[:, :3], axis=1).astype("int32")


def _model(schedule):
    keras.utils.set_random_seed(11)
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    lr = keras.optimizers.schedules.ExponentialDecay(3e-2, 10, 0.9) if schedule else 3e-2
    m.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _fit(model, controller, callbacks, arc_first=True):
    x, y = _data()
    arc = ARC(controller, frequency=2)
    callbacks = [arc] + callbacks if arc_first else callbacks + [arc]
    hist = model.fit(x, y, batch_size=16, epochs=EPOCHS, validation_split=0.25, shuffle=False,
                     verbose=0, callbacks=callbacks)
    return hist, arc


def _values(model):
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in model.weights + model.optimizer.variables]


@pytest.mark.slow
@pytest.mark.parametrize("crash_at,arc_first,schedule", [
    (3, True, False),   # mid-cycle: the cycle's first epoch is restored
    (4, False, False),  # at a cycle end: the decision made at epoch 4's end is applied after the resume
    (5, True, True),    # a scheduled LR (ARC's multiplier)
])
def test_resumed_fit_makes_the_same_decisions_as_an_uninterrupted_one(tmp_path, controller, crash_at,
                                                                      arc_first, schedule):
    reference = _model(schedule)
    ref_hist, ref_arc = _fit(reference, controller, [])
    assert len({d for d in ref_hist.history["arc_decision"] if d >= 0}) >= 1

    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit(_model(schedule), controller, [keras.callbacks.BackupAndRestore(backup), _Crash(crash_at)], arc_first)
    resumed = _model(schedule)  # a new process would build everything again
    hist, arc = _fit(resumed, controller, [keras.callbacks.BackupAndRestore(backup)], arc_first)

    assert hist.epoch == list(range(crash_at, EPOCHS))
    for key in LOGGED:
        assert hist.history[key] == ref_hist.history[key][crash_at:], key
    # Decisions made before the crash and applied after it are the resumed fit's too.
    assert arc.decisions == [d for d in ref_arc.decisions if d["epoch"] >= crash_at - 1]
    assert lr_lib.get_learning_rate(resumed.optimizer) == lr_lib.get_learning_rate(reference.optimizer)
    np.testing.assert_array_equal(arc.window(), ref_arc.window())
    # Bit for bit on CPU, TF and JAX, without enable_op_determinism (as MCV's resume test).
    values, ref_values = _values(resumed), _values(reference)
    assert len(values) == len(ref_values)
    for value, ref_value in zip(values, ref_values):
        np.testing.assert_array_equal(value, ref_value)


def test_a_new_fit_of_the_same_model_starts_a_new_window(controller):
    x, y = _data()
    model = _model(False)
    first = ARC(controller, frequency=2)
    model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[first])
    n_vars = len(model.optimizer.variables)
    again = ARC(controller, frequency=2)
    model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[again])
    assert len(model.optimizer.variables) == n_vars  # ARC adds no optimizer variable
    assert [len(d) for d in (first.decisions, again.decisions)] == [1, 1]
    assert len(again._cycles) == 2  # its own two cycles, not the first fit's four


def test_a_fit_continuing_in_memory_at_initial_epoch_continues_the_window(controller):
    """`fit(initial_epoch=k)` right after a fit of k epochs carries ARC's window on, as a resume does."""
    x, y = _data()
    straight = _model(False)
    ref = ARC(controller, frequency=2)
    straight.fit(x, y, batch_size=16, epochs=6, shuffle=False, verbose=0, callbacks=[ref])
    model = _model(False)
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[ARC(controller, frequency=2)])
    again = ARC(controller, frequency=2)
    model.fit(x, y, batch_size=16, epochs=6, initial_epoch=3, shuffle=False, verbose=0, callbacks=[again])
    assert again.decisions == [d for d in ref.decisions if d["epoch"] >= 2]
    np.testing.assert_array_equal(again.window(), ref.window())


def test_arc_adds_no_variable_to_the_compiled_step(controller):
    """ARC's state is host state: the optimizer (so the train step's state) has only Keras's variables."""
    x, y = _data()
    model, plain = _model(False), _model(False)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[ARC(controller, frequency=2)])
    plain.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert len(model.optimizer.variables) == len(plain.optimizer.variables)
    assert not [v.name for v in model.optimizer.variables if "arc" in v.name]


@pytest.mark.slow
def test_resuming_with_another_frequency_warns_and_starts_afresh(tmp_path, controller):
    x, y = _data()
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError):
        _model(False).fit(x, y, batch_size=16, epochs=EPOCHS, verbose=0,
                          callbacks=[ARC(controller, frequency=2), keras.callbacks.BackupAndRestore(backup),
                                     _Crash(3)])
    arc = ARC(controller, frequency=1)
    with pytest.warns(UserWarning, match="frequency 2, not 1"):
        _model(False).fit(x, y, batch_size=16, epochs=EPOCHS, verbose=0,
                          callbacks=[arc, keras.callbacks.BackupAndRestore(backup)])
    assert arc.decisions[0]["epoch"] == 3  # a new window from the resumed epoch on


def test_a_model_checkpoint_listed_first_holds_arcs_end_of_epoch(tmp_path, controller):
    """ModelCheckpoint before ARC: its weights file carries ARC's state, so load_weights + initial_epoch resumes."""
    x, y = _data()
    ref = ARC(controller, frequency=2)
    _model(False).fit(x, y, batch_size=16, epochs=6, shuffle=False, verbose=0, callbacks=[ref])
    path = str(tmp_path / "ck.weights.h5")
    saver = keras.callbacks.ModelCheckpoint(path, save_weights_only=True)
    _model(False).fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                      callbacks=[saver, ARC(controller, frequency=2)])
    resumed = _model(False)
    # As for any optimizer state in a weights file: the optimizer exists before the load
    # (Keras skips an unbuilt one), and so does keras_autolr's entry on it.
    resumed.optimizer.build(resumed.trainable_variables)
    lr_lib.attach_state(resumed.optimizer)
    resumed.load_weights(path)
    again = ARC(controller, frequency=2)
    resumed.fit(x, y, batch_size=16, epochs=6, initial_epoch=3, shuffle=False, verbose=0, callbacks=[again])
    assert again.decisions == [d for d in ref.decisions if d["epoch"] >= 2]
    np.testing.assert_array_equal(again.window(), ref.window())
