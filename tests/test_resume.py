"""Guarantee B (issue 15): a resumed run equals the uninterrupted one, for every method added to `fit`.

Two ways to continue a run, each checked against training straight through:

* `keras.callbacks.BackupAndRestore`: a fit crashes at epoch `CRASH` (a
  callback raises in `on_epoch_begin`), then a new model, optimizer and
  fresh callbacks fit again with the same backup directory. The resumed
  epochs' logs (loss, val_loss, the LR, the method's own logged decisions),
  the method's own log (`decisions`, `lr_history`, ...) and, at the end,
  every weight and optimizer variable equal the uninterrupted run's, bit for
  bit (CPU, TensorFlow and JAX, without `enable_op_determinism`: the tiny
  MLPs here are deterministic; a GPU's non-deterministic kernels would call
  for a tolerance).
* `model.save` + `keras.models.load_model` after `CRASH` epochs, then
  `fit(initial_epoch=CRASH)` with fresh callbacks. Always: the result equals
  continuing the in-memory model with fresh callbacks (the file loses
  nothing). Where the method's state is the optimizer's or the model's (the
  tuning-free optimizers, a scaled schedule, MCV's candidates, a feature
  history's file) it also equals training straight through. A callback's own
  state (ARC's window, MLR-SNet's LSTM state and stage, HD's previous
  weights, LRFinder's sweep, MCVScheduler's decision log) is not in a
  `.keras` file: `load_model` rebuilds no callbacks, and a new fit starts
  that state afresh, as the docs say (ARC: "a new fit starts a new window";
  `lr.py`: "comes back on a BackupAndRestore resume, not with load_model").

Results (`-m "slow or not slow"`; TensorFlow and JAX):

| method                               | BackupAndRestore | save / load_model        |
|--------------------------------------|------------------|--------------------------|
| ARC (frequency 2)                    | equal            | = a new fit (new window) |
| MLR-SNet "image" on SGD (3 nets)     | equal            | = a new fit (fresh LSTM) |
| MLR-SNet "official"                  | equal            | = a new fit (fresh LSTM) |
| HypergradientDescent                 | equal            | = a new fit              |
| MCVModel method3 + MCVScheduler      | equal            | equal (log restarts)     |
| FeatureHistory + ProxyAccuracy       | equal (file too) | equal (file too)         |
| Prodigy                              | equal            | equal                    |
| DAdaptAdam                           | equal            | equal                    |
| DoG                                  | equal            | equal                    |
| ReferenceScheduleFreeAdamW + Eval    | equal            | equal                    |
| scaled schedule (scale_learning_rate)| equal            | equal                    |
| LRFinder                             | equal (no sweep) | = a new fit (new sweep)  |

The fresh-process reload is checked for one method (the scaled schedule) in
`test_load_model_in_a_fresh_process_continues_straight_through`; the other
reload guarantees (every optimizer slot, `iterations`, the LR) are
`tests/runtime/test_saving.py`'s. Per-method corner cases (callback order,
ARC's frequency change, MCVStopping, LRFinder's order warning) stay in
`tests/runtime/{arc,mcv}/test_backup.py` and `tests/runtime/test_lr_finder.py`.
"""

import dataclasses
import os
import pickle
import subprocess
import sys
from typing import Callable

import keras
import numpy as np
import pytest

import keras_autolr
from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.arc import build_controller
from keras_autolr.runtime.feature_history.store import HistoryStore
from keras_autolr.runtime.mcv import MCVModel, MCVScheduler, Method3
from keras_autolr.runtime.mlrsnet import MLRSNetScheduler
from tests.runtime.arc.test_backup import _data
from tests.runtime.mcv.test_backup import _CrashAt
from tests.runtime.test_saving import _Halve

pytestmark = pytest.mark.slow  # each case fits 3-4 times

EPOCHS = 6
CRASH = 4  # MLR-SNet swaps nets at epochs 2 and 4: the resumed fit starts with a swap
BATCH = 16
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _split():
    x, y = _data()
    return (x[:64], y[:64]), (x[64:], y[64:])  # 4 batches of 16; 24 validation rows


def _mlp(optimizer, wrap=None):
    keras.utils.set_random_seed(11)
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, name="classifier")])
    model = wrap(inner) if wrap else inner
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _decay():
    return keras.optimizers.schedules.ExponentialDecay(3e-2, decay_steps=5, decay_rate=0.8)


_CONTROLLER = []


def _arc():
    if not _CONTROLLER:
        _CONTROLLER.append(build_controller(seed=1))
    return [keras_autolr.ARC(_CONTROLLER[0], frequency=2)]


def _feature_history(path):
    (x, y), val = _split()
    recorder = keras_autolr.FeatureHistory(str(path / "history.h5"), (x, y), validation_data=val,
                                           train_samples=32)
    return [recorder, keras_autolr.ProxyAccuracy(recorder, k=3, fit=False)]


def _schedule_free_eval(path):
    return [keras_autolr.ScheduleFreeEval()]


@dataclasses.dataclass
class Case:
    model: Callable[[], keras.Model]  # a compiled model, as a user's script builds it
    callbacks: Callable = lambda path: []  # the method's fresh callbacks (given tmp_path)
    log: Callable = lambda cbs: None  # the method's own log, whole-run (None: nothing to compare)
    resumed_log: Callable = None  # how the log of the resumed fit relates to the full one
    continues: bool = False  # save/load then continuing equals training straight through


def _per_batch(cbs):
    return [cbs[0].lr_history, cbs[0].gamma_history] if hasattr(cbs[0], "gamma_history") else [cbs[0].lr_history]


def _tail_batches(full, crash=CRASH):
    steps = 4  # batches per epoch
    return [h[crash * steps:] if i == 0 else h[crash:] for i, h in enumerate(full)]


CASES = {
    "arc": Case(lambda: _mlp(keras.optimizers.Adam(3e-2)), lambda p: _arc(),
                log=lambda cbs: cbs[0].decisions,
                # decisions made before the crash and applied after it are the resumed fit's too
                resumed_log=lambda full: [d for d in full if d["epoch"] >= CRASH - 1]),
    "mlrsnet_image": Case(lambda: _mlp(keras.optimizers.SGD(0.05)),
                          lambda p: [MLRSNetScheduler("image", record_every=1)],
                          log=_per_batch, resumed_log=_tail_batches),
    "mlrsnet_official": Case(lambda: _mlp(keras.optimizers.SGD(0.1, weight_decay=5e-4)),
                             lambda p: [MLRSNetScheduler("official", record_every=1)],
                             log=_per_batch, resumed_log=_tail_batches),
    "hypergradient": Case(lambda: _mlp(keras.optimizers.SGD(0.05)),
                          lambda p: [keras_autolr.HypergradientDescent(beta=1e-3, record_every=1)],
                          log=_per_batch, resumed_log=lambda full: [full[0][CRASH * 4:]]),
    # The decision log comes back whole with the backup (MCVScheduler's host state).
    "mcv": Case(lambda: _mlp(keras.optimizers.SGD(0.05, momentum=0.9),
                             wrap=lambda m: MCVModel(m, method=Method3(factors=[2.0, 1.0, 0.5]))),
                lambda p: [MCVScheduler()], log=lambda cbs: cbs[0].decisions, resumed_log=lambda full: full,
                continues=True),
    "feature_history": Case(lambda: _mlp(keras.optimizers.Adam(1e-2)), _feature_history, continues=True),
    "prodigy": Case(lambda: _mlp(keras_autolr.Prodigy()), continues=True),
    "dadapt_adam": Case(lambda: _mlp(keras_autolr.DAdaptAdam()), continues=True),
    "dog": Case(lambda: _mlp(keras_autolr.DoG()), continues=True),
    "schedule_free": Case(lambda: _mlp(keras_autolr.ReferenceScheduleFreeAdamW(1e-2, warmup_steps=4)),
                          _schedule_free_eval, continues=True),
    "scaled_schedule": Case(lambda: _mlp(keras.optimizers.Adam(_decay())), lambda p: [_Halve()],
                            continues=True),
    "lr_finder": Case(lambda: _mlp(keras.optimizers.SGD(0.05)),
                      lambda p: [keras_autolr.LRFinder(*_split()[0], batch_size=8, steps=20,
                                                       min_lr=1e-4, max_lr=10.0)],
                      log=lambda cbs: (cbs[0].result, cbs[0].sweeps), resumed_log=lambda full: (full[0], 0)),
}


def _fit(case, path, model, extra=(), initial_epoch=0, epochs=EPOCHS):
    """Fits `model` with fresh method callbacks; BackupAndRestore (in `extra`) is listed first."""
    train, val = _split()
    callbacks = case.callbacks(path)
    hist = model.fit(*train, validation_data=val, batch_size=BATCH, epochs=epochs, initial_epoch=initial_epoch,
                     shuffle=False, verbose=0,
                     callbacks=list(extra) + callbacks + [keras_autolr.LearningRateLogger()])
    return hist, callbacks


def _logged(hist):
    """The epoch logs, less ProxyAccuracy's cost (a time ratio)."""
    return {k: v for k, v in hist.history.items() if "cost" not in k}


def _state(model, ours=True):
    """Weights, the optimizer's Keras variables in Keras's order, then (`ours`) keras_autolr's by name.

    keras_autolr's variables sit in `optimizer.variables` where they were
    created (before or after a restored optimizer was built), so they are
    compared by their saved names.
    """
    weights = getattr(model, "model", model).weights
    opt = lr_lib.base_optimizer(model.optimizer)
    added = getattr(opt, lr_lib.STATE_ATTR, None)
    added = dict(added.by_key) if added is not None else {}
    native = [v for v in opt.variables if id(v) not in {id(a) for a in added.values()}]
    names = sorted(added) if ours else []
    mcv = model.mcv_state() if hasattr(model, "mcv_state") else {}
    values = [v.value for v in weights + native] + [added[k].value for k in names]
    values = [np.array(keras.ops.convert_to_numpy(v)) for v in values]
    return values + [np.array(mcv[k]) for k in sorted(mcv)], names


def _assert_same_state(got, want):
    (values, names), (ref_values, ref_names) = got, want
    assert names == ref_names
    assert len(values) == len(ref_values)
    for i, (a, b) in enumerate(zip(values, ref_values)):
        np.testing.assert_array_equal(a, b, err_msg=f"variable {i}")


def _assert_same_file(path, ref_path):
    store, ref = HistoryStore(path), HistoryStore(ref_path)
    assert store.epochs() == ref.epochs() == list(range(EPOCHS))
    for epoch in ref.epochs():
        got, want = store.read_epoch(epoch), ref.read_epoch(epoch)
        assert sorted(got) == sorted(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"epoch {epoch} {key}")


def _dirs(tmp_path, *names):
    out = []
    for name in names:
        (tmp_path / name).mkdir()
        out.append(tmp_path / name)
    return out


# Backend-neutral; CI reruns a representative subset on JAX (one per mechanism: callback
# variables, host state, optimizer slots, a wrapped model, an HDF5 side file).
ON_JAX_BACKUP = {"arc", "mlrsnet_image", "mcv", "prodigy", "schedule_free", "feature_history", "lr_finder"}
ON_JAX_SAVE = {"arc", "mcv", "prodigy"}


def _params(names):
    return [pytest.param(n, marks=[pytest.mark.jax] if n in names else []) for n in CASES]


@pytest.mark.parametrize("name", _params(ON_JAX_BACKUP))
def test_backup_and_restore_resume_equals_the_uninterrupted_run(tmp_path, name):
    case = CASES[name]
    ref_dir, run_dir = _dirs(tmp_path, "reference", "run")
    reference = case.model()
    ref_hist, ref_cbs = _fit(case, ref_dir, reference)

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit(case, run_dir, case.model(), [backup, _CrashAt(CRASH)])
    resumed = case.model()  # a new process would build everything again
    hist, cbs = _fit(case, run_dir, resumed, [keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])

    assert hist.epoch == list(range(CRASH, EPOCHS))
    assert "learning_rate" in hist.history
    assert sorted(hist.history) == sorted(ref_hist.history)
    for key, values in _logged(hist).items():
        assert values == ref_hist.history[key][CRASH:], key
    if case.resumed_log is not None:
        assert case.log(cbs) == case.resumed_log(case.log(ref_cbs))
    assert lr_lib.get_learning_rate(resumed.optimizer) == lr_lib.get_learning_rate(reference.optimizer)
    _assert_same_state(_state(resumed), _state(reference))
    if name == "feature_history":  # the file continues: epochs 0-3 from the crashed fit, 4-5 appended
        _assert_same_file(run_dir / "history.h5", ref_dir / "history.h5")


def _split_fit(case, path, reload):
    """CRASH epochs, then (optionally through model.save + load_model) the rest with fresh callbacks."""
    model = case.model()
    _fit(case, path, model, epochs=CRASH)
    if reload:
        model.save(path / "model.keras")
        model = keras.models.load_model(path / "model.keras")
    hist, cbs = _fit(case, path, model, initial_epoch=CRASH)
    return model, hist, cbs


@pytest.mark.parametrize("name", _params(ON_JAX_SAVE))
def test_save_and_load_model_then_continuing_loses_nothing(tmp_path, name):
    case = CASES[name]
    memory_dir, reload_dir = _dirs(tmp_path, "memory", "reload")
    in_memory, memory_hist, memory_cbs = _split_fit(case, memory_dir, reload=False)
    reloaded, hist, cbs = _split_fit(case, reload_dir, reload=True)

    assert _logged(hist) == _logged(memory_hist)
    assert case.log(cbs) == case.log(memory_cbs)
    # Keras's variables only: a fresh callback in memory adds its variables beside the first one's.
    _assert_same_state(_state(reloaded, ours=False), _state(in_memory, ours=False))
    if name == "feature_history":
        _assert_same_file(reload_dir / "history.h5", memory_dir / "history.h5")

    if case.continues:  # else the callback's own state starts afresh (see the module docstring)
        straight_dir, = _dirs(tmp_path, "straight")
        straight = case.model()
        straight_hist, _ = _fit(case, straight_dir, straight)
        assert _logged(hist) == {k: v[CRASH:] for k, v in _logged(straight_hist).items()}
        _assert_same_state(_state(reloaded), _state(straight))


def test_load_model_in_a_fresh_process_continues_straight_through(tmp_path):
    """A scaled schedule saved after CRASH epochs, continued in a new process, ends as the straight run."""
    case = CASES["scaled_schedule"]
    straight = case.model()
    _fit(case, tmp_path, straight)
    with open(tmp_path / "straight.pkl", "wb") as f:
        pickle.dump(_state(straight)[0], f)
    model = case.model()
    _fit(case, tmp_path, model, epochs=CRASH)
    model.save(tmp_path / "model.keras")
    code = f"""
import pickle, keras, keras_autolr, numpy as np
from tests.test_resume import CASES, CRASH, _fit, _state
model = keras.models.load_model({str(tmp_path / 'model.keras')!r})
_fit(CASES["scaled_schedule"], None, model, initial_epoch=CRASH)
want = pickle.load(open({str(tmp_path / 'straight.pkl')!r}, "rb"))
got = _state(model)[0]
assert len(got) == len(want)
for a, b in zip(got, want):
    np.testing.assert_array_equal(a, b)
print("ok", len(got))
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.startswith("ok"), out.stdout
