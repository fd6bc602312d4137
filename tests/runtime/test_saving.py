"""Nothing keras_autolr adds to an optimizer is lost by Keras's own saving.

Guarantee A: after `model.save` + `keras.models.load_model` in a fresh process
(only `import keras_autolr`) and after a `keras.callbacks.BackupAndRestore`
resume, `iterations`, every optimizer slot and the effective LR are exactly as
before, for a float LR, a schedule, a scaled schedule and a
`LossScaleOptimizer` around one, and for an MLR-SNet run.
"""

import os
import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_callback import LearningRateCallback
from keras_autolr.runtime.mlrsnet import MLRSNet, MLRSNetScheduler
from tests.conftest import tiny_model, tiny_regression

pytestmark = pytest.mark.jax  # backend-neutral: CI runs these on JAX too

KINDS = ["float", "schedule", "scaled", "loss_scale", "mlrsnet"]
# Variables keras_autolr adds; a plain reloaded optimizer has none of them.
EXTRA = ("lr_multiplier", "mlrsnet_")


class _Halve(LearningRateCallback):
    """ARC-like: moves the LR at each epoch start (so an epoch-end backup sees the final LR)."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > 0:
            self.set_lr(self.get_lr() * 0.5)


def _setup(kind):
    """Returns (optimizer, fresh keras_autolr callbacks) for one LR kind."""
    decay = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=3, decay_rate=0.5)
    if kind == "float":
        return keras.optimizers.Adam(1e-2), [_Halve()]
    if kind == "schedule":
        return keras.optimizers.Adam(decay), []
    if kind == "scaled":
        return keras.optimizers.Adam(decay), [_Halve()]
    if kind == "loss_scale":
        return keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(decay)), [_Halve()]
    return keras.optimizers.SGD(0.05), [MLRSNetScheduler(MLRSNet(seed=0), gamma=0.2)]


def _values(opt, native_only=False):
    """The optimizer's variables as numpy arrays, keyed by their role (`momentum`, ...).

    Keras's own variables come in Keras's order; keras_autolr's follow, sorted
    by name (their place in `optimizer.variables` depends on when they were
    created, e.g. before or after a restored optimizer was built). Full paths
    name the model's layers, which a new model (a restart) names anew.
    """
    native, extra = [], []
    for v in opt.variables:
        value = np.array(keras.ops.convert_to_numpy(v))
        if any(e in v.path for e in EXTRA):
            extra.append((v.name, value))
        else:
            native.append((v.name.rsplit("_", 1)[-1], value))
    return native if native_only else native + sorted(extra, key=lambda kv: kv[0])


def _lr_bits(opt):
    return np.asarray(keras.ops.convert_to_numpy(lr_lib.learning_rate_tensor(opt)), "float32").tobytes()


def _assert_same(got, want):
    assert [k for k, _ in got] == [k for k, _ in want]
    for (k, a), (_, b) in zip(got, want):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_saved_model_reloads_optimizer_state_exactly_in_a_fresh_process(tmp_path):
    x, y = tiny_regression()
    expected = {}
    for kind in KINDS:
        opt, cbs = _setup(kind)
        model = tiny_model()
        model.compile(optimizer=opt, loss="mse")
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=cbs)
        if kind == "scaled":
            lr_lib.scale_learning_rate(opt, 0.125)  # ARC's once-off move after a fit
        assert lr_lib.get_learning_rate(opt) > 0
        model.save(tmp_path / f"{kind}.keras")
        expected[kind] = (_values(opt, native_only=True), _lr_bits(opt), lr_lib.get_learning_rate(opt))
    with open(tmp_path / "expected.pkl", "wb") as f:
        pickle.dump(expected, f)
    # The models load with only `import keras_autolr`; the checking helpers come after.
    code = f"""
import pickle, warnings, keras, keras_autolr
models = {{}}
for kind in {KINDS!r}:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models[kind] = keras.models.load_model({str(tmp_path)!r} + "/" + kind + ".keras")
    skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
    assert not skipped, (kind, skipped)
from keras_autolr.runtime import lr as lr_lib
from tests.runtime.test_saving import _assert_same, _lr_bits, _values
expected = pickle.load(open({str(tmp_path / 'expected.pkl')!r}, "rb"))
for kind, m in models.items():
    values, bits, lr = expected[kind]
    _assert_same(_values(m.optimizer), values)
    assert _lr_bits(m.optimizer) == bits, kind
    assert lr_lib.get_learning_rate(m.optimizer) == lr, kind
    print("ok", kind)
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.split().count("ok") == len(KINDS), out.stdout


class _Stop(Exception):
    """Stands for a crash (or a pre-emption) in the middle of a fit."""


class _Interrupt(keras.callbacks.Callback):
    """Records the optimizer state after the epoch-end backup, then stops the fit like a crash."""

    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            self.state = (_values(self.model.optimizer), _lr_bits(self.model.optimizer))
            raise _Stop


class _Probe(keras.callbacks.Callback):
    """Records the optimizer state once every callback's on_train_begin ran, then stops."""

    def on_train_begin(self, logs=None):
        self.state = (_values(self.model.optimizer), _lr_bits(self.model.optimizer))
        raise _Stop


@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-first", "backup-first"])
@pytest.mark.parametrize("kind", KINDS)
def test_backup_and_restore_resume_restores_optimizer_state_exactly(tmp_path, kind, ours_first):
    x, y = tiny_regression()

    def run(last):
        opt, cbs = _setup(kind)
        model = tiny_model()
        model.compile(optimizer=opt, loss="mse")
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
        order = cbs + [backup] if ours_first else [backup] + cbs
        with pytest.raises(_Stop):
            model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=order + [last])
        return last.state

    before = run(_Interrupt(at_epoch=1))
    after = run(_Probe())  # a new model, optimizer and callbacks, as after a restart
    _assert_same(after[0], before[0])
    assert after[1] == before[1]
    assert dict(after[0])["iteration"] == 8  # two epochs of 4 batches: not restarted at 0
