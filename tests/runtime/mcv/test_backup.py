"""`MCVModel` with `keras.callbacks.BackupAndRestore`: an interrupted fit resumes where it stopped.

Backend-neutral (marked `jax`: CI runs it with KERAS_BACKEND=jax too).

What BackupAndRestore carries over is the model's weights file: the inner
model, the optimizer (slots, iterations, the LR) and MCV's own state
variables (candidate list, vote history, the epoch's sums). The callbacks'
Python state is not in it: `MCVScheduler.decisions` holds only the resumed
fit's epochs, and `MCVStopping` starts its patience count, best value and
best weights afresh at the resumed epoch.
"""

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.mcv import MCVModel, MCVScheduler, Method3, Voting

pytestmark = pytest.mark.jax

EPOCHS = 5


class _Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("simulated crash at epoch 2")


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
        _fit(crashed, [keras.callbacks.BackupAndRestore(str(tmp_path / "backup")), _Crash()],
             scheduler_last)
    resumed = _model(method)  # a new process would build everything again
    hist, scheduler = _fit(resumed, [keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))],
                           scheduler_last)

    assert hist.epoch == [2, 3, 4]
    assert [d["epoch"] for d in scheduler.decisions] == [2, 3, 4]  # decisions 0-1 are not restored
    # The LR (and its candidate list, vote history) continue: the resumed epochs decide as the
    # uninterrupted run did.
    assert hist.history["learning_rate"] == ref_hist.history["learning_rate"][2:]
    assert [d["lrs"] for d in scheduler.decisions] == [d["lrs"] for d in ref_scheduler.decisions[2:]]
    assert lr_lib.get_learning_rate(resumed.optimizer) == lr_lib.get_learning_rate(reference.optimizer)
    # Bit for bit on CPU, TF and JAX, without enable_op_determinism (measured); a GPU's
    # non-deterministic kernels would call for a tolerance here.
    weights, opt, mcv = _state(resumed)
    ref_weights, ref_opt, ref_mcv = _state(reference)
    for a, b in zip(weights + opt, ref_weights + ref_opt):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mcv["candidate_lrs"], ref_mcv["candidate_lrs"])
    np.testing.assert_array_equal(mcv["history"], ref_mcv["history"])
