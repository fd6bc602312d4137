"""`MCVModel` with `keras.callbacks.BackupAndRestore`: an interrupted fit resumes where it stopped.

Backend-neutral (marked `jax`: CI runs it with KERAS_BACKEND=jax too).

What BackupAndRestore carries over is the model's weights file: the inner
model, the optimizer (slots, iterations, the LR), MCV's own state variables
(candidate list, vote history, the epoch's sums) and the callbacks' host
state saved with the optimizer (`lr.add_host_state`): `MCVScheduler.decisions`
of every epoch, and `MCVStopping`'s best value, best epoch, patience count and
best weights.
"""

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.mcv import MCVModel, MCVScheduler, MCVStopping, Method3, Voting

pytestmark = pytest.mark.jax

EPOCHS = 5


class _CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"simulated crash at epoch {epoch}")


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    return x, np.argmax(x[:, :3], axis=1).astype("int32")


def _model(method):
    keras.utils.set_random_seed(11)
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3)])
    strategy = Method3(factors=[2.0, 1.0, 0.5]) if method == "method3" else Voting([0.2, 0.05, 0.01])
    model = MCVModel(inner, method=strategy)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _fit(model, callbacks, scheduler_last=False):
    x, y = _data()
    scheduler = MCVScheduler()
    callbacks = callbacks + [scheduler] if scheduler_last else [scheduler] + callbacks
    hist = model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, verbose=0,
                     callbacks=callbacks)
    return hist, scheduler


def _state(model):
    weights = [np.array(keras.ops.convert_to_numpy(v.value)) for v in model.model.weights]
    opt = [np.array(keras.ops.convert_to_numpy(v.value)) for v in model.optimizer.variables]
    return weights, opt, model.mcv_state()


@pytest.mark.parametrize("method,scheduler_last", [("method3", False), ("voting", False),
                                                   ("method3", True)])
def test_interrupted_fit_resumes_to_the_same_weights_and_lr(tmp_path, method, scheduler_last):
    """`scheduler_last`: the user lists BackupAndRestore first (MCVModel.fit moves it behind)."""
    reference = _model(method)
    ref_hist, ref_scheduler = _fit(reference, [])

    # Not built by hand: MCVModel is built as soon as its inner model is.
    crashed = _model(method)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit(crashed, [keras.callbacks.BackupAndRestore(str(tmp_path / "backup")), _CrashAt(2)],
             scheduler_last)
    resumed = _model(method)  # a new process would build everything again
    hist, scheduler = _fit(resumed, [keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))],
                           scheduler_last)

    assert hist.epoch == [2, 3, 4]
    # The decision log continues: epochs 0-1 come back with the backup.
    assert scheduler.decisions == ref_scheduler.decisions
    # The LR (and its candidate list, vote history) continue: the resumed epochs decide as the
    # uninterrupted run did.
    assert hist.history["learning_rate"] == ref_hist.history["learning_rate"][2:]
    assert lr_lib.get_learning_rate(resumed.optimizer) == lr_lib.get_learning_rate(reference.optimizer)
    # Bit for bit on CPU, TF and JAX, without enable_op_determinism (measured); a GPU's
    # non-deterministic kernels would call for a tolerance here.
    weights, opt, mcv = _state(resumed)
    ref_weights, ref_opt, ref_mcv = _state(reference)
    for a, b in zip(weights + opt, ref_weights + ref_opt):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mcv["candidate_lrs"], ref_mcv["candidate_lrs"])
    np.testing.assert_array_equal(mcv["history"], ref_mcv["history"])


class _Monitor(keras.callbacks.Callback):
    """Writes a fixed per-epoch value into the logs, for a stopping rule to watch."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["fake_loss"] = self.values[epoch]


# Best at epoch 1; no improvement at 2, 3: patience 2 stops at epoch 3 and restores epoch 1.
_VALUES = [3.0, 1.0, 2.0, 2.0, 0.5, 0.4, 0.3]


def _fit_stopping(model, extra, stop_first):
    x, y = _data()
    stop = MCVStopping(patience=2, monitor="fake_loss")
    callbacks = ([stop] if stop_first else []) + extra + ([] if stop_first else [stop])
    hist = model.fit(x, y, batch_size=16, epochs=len(_VALUES), shuffle=False, verbose=0,
                     callbacks=[_Monitor(_VALUES)] + callbacks)
    return hist, stop


@pytest.mark.parametrize("crash_epoch,stop_first", [(3, False), (2, True)])
def test_stopping_rule_resumes_its_patience_and_best_weights(tmp_path, crash_epoch, stop_first):
    """Without the restored state the resumed fit would count afresh and stop at epoch 4 or later."""
    reference = _model("method3")
    ref_hist, ref_stop = _fit_stopping(reference, [], stop_first)
    assert (ref_stop.stopped_epoch, ref_stop.best_epoch, ref_stop.reason) == (3, 1, "patience")

    crashed = _model("method3")
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit_stopping(crashed, [keras.callbacks.BackupAndRestore(backup), _CrashAt(crash_epoch)], stop_first)
    resumed = _model("method3")
    hist, stop = _fit_stopping(resumed, [keras.callbacks.BackupAndRestore(backup)], stop_first)

    assert hist.epoch == list(range(crash_epoch, 4))
    assert (stop.stopped_epoch, stop.best_epoch, stop.best, stop.wait) == (
        ref_stop.stopped_epoch, ref_stop.best_epoch, ref_stop.best, ref_stop.wait)
    # The weights restored at the stop are epoch 1's, saved in the backup before the crash.
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
