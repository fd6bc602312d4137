"""Search engines driven by the feature-history proxy (optional extras).

KerasTuner (`pip install keras-tuner`): `ProxyRandomSearch`,
`ProxyHyperband` and `ProxyBayesianOptimization` are the library's own
tuners with one change: every trial's `fit` also runs a `FeatureHistory`
recorder and a `ProxyAccuracy` callback, and the objective defaults to
`keras_tuner.Objective("val_proxy_accuracy", "max")`. Hyperband's promoted
trials continue their parent's feature history. KerasTuner's distributed
chief/worker mode (the `KERASTUNER_*` environment variables) works
unchanged.

Optuna (`pip install optuna`): `create_study` builds a study with the
TPE sampler and the Hyperband pruner (Optuna's BOHB-like combination) on
optional shared storage (an SQLite URL or a journal file, for several
worker processes); `proxy_callbacks` returns the recorder, the proxy and a
pruning callback reporting `val_proxy_accuracy` to the trial.

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.feature_history.search import ProxyRandomSearch

rng = np.random.default_rng(0)
x, y = rng.normal(size=(96, 4)).astype("float32"), rng.integers(0, 3, 96)

def build_model(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Choice("width", [4, 8]), activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model

tuner = ProxyRandomSearch(build_model, max_trials=1, directory="tune", proxy_k=2, train_samples=64)
tuner.search(x[:64], y[:64], epochs=2, validation_data=(x[64:], y[64:]), verbose=0)
print(tuner.oracle.get_best_trials(1)[0].score)  # the trial's best val_proxy_accuracy
```
"""

import os
import shutil

import keras

from keras_autolr.runtime.feature_history.proxy import ProxyAccuracy
from keras_autolr.runtime.feature_history.recorder import FeatureHistory
from keras_autolr.runtime.feature_history.store import epoch_dir

__all__ = [
    "PROXY_KEY", "proxy_objective", "copy_history", "ProxyTunerMixin", "ProxyRandomSearch", "ProxyHyperband",
    "ProxyBayesianOptimization", "pruning_callback", "make_storage", "create_study", "proxy_callbacks",
]

PROXY_KEY = "val_proxy_accuracy"
_EXTRA_HINT = ("pip install keras-tuner optuna optuna-integration "
               "(or pip install 'keras-autolr[search]')")


def _keras_tuner():
    try:
        import keras_tuner
    except ImportError as e:
        raise ImportError(
            f"KerasTuner is an optional extra: {_EXTRA_HINT}.") from e
    return keras_tuner


def _optuna():
    try:
        import optuna
    except ImportError as e:
        raise ImportError(
            f"Optuna is an optional extra: {_EXTRA_HINT}.") from e
    return optuna


def proxy_objective():
    """`keras_tuner.Objective("val_proxy_accuracy", "max")`.

    Example:

    ```python
    from keras_autolr.runtime.feature_history.search import proxy_objective

    print(proxy_objective().name, proxy_objective().direction)  # val_proxy_accuracy max
    ```
    """
    return _keras_tuner().Objective(PROXY_KEY, "max")


def _fit_data(args, kwargs):
    x = args[0] if len(args) > 0 else kwargs.get("x")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    val = kwargs.get("validation_data")
    if x is None or y is None or val is None:
        raise ValueError(
            "A proxy-driven search needs numpy training data and "
            "validation data: tuner.search(x, y, validation_data=(x_val, "
            "y_val), ...).")
    return (x, y), tuple(val)


def copy_history(src, dst):
    """Copies a feature history (index + epoch files) to a new path.

    Args:
        src: index file of the history to copy.
        dst: index file of the copy (an existing copy is replaced).

    Returns:
        False when `src` does not exist (nothing copied), else True.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history import HistoryStore
    from keras_autolr.runtime.feature_history.search import copy_history

    HistoryStore("parent.h5", fingerprint="m").write_epoch(0, {"val_labels": np.arange(3)})
    print(copy_history("parent.h5", "child.h5"), HistoryStore("child.h5").epochs())  # True [0]
    ```
    """
    if not os.path.exists(src):
        return False
    if os.path.exists(epoch_dir(dst)):
        shutil.rmtree(epoch_dir(dst))
    if os.path.isdir(epoch_dir(src)):
        shutil.copytree(epoch_dir(src), epoch_dir(dst))
    shutil.copy2(src, dst)
    return True


class ProxyTunerMixin:
    """Adds feature-history recording and the proxy to KerasTuner trials.

    Args:
        *args, **kwargs: the tuner's own (hypermodel, max_trials, directory,
            ...); `objective` defaults to `proxy_objective()`.
        proxy_k: window of the ensemble (thesis: 10).
        proxy_every: estimate every this many epochs.
        train_samples, feature_dtype: passed to `FeatureHistory`.
        keep_histories: keep each trial's HDF5 history (default: deleted at
            the end of the trial to save disk; the promoted children of a
            Hyperband trial copy it before that).

    Example:

    ```python
    import keras_tuner
    from keras_autolr.runtime.feature_history.search import ProxyTunerMixin

    class ProxyGridSearch(ProxyTunerMixin, keras_tuner.GridSearch):
        pass  # keras_tuner.GridSearch driven by the proxy

    tuner = ProxyGridSearch(lambda hp: None, directory="grid", proxy_k=5)
    print(tuner.oracle.objective.name)  # val_proxy_accuracy
    ```
    """

    history_name = "features.h5"

    def __init__(self, *args, proxy_k=10, proxy_every=1, train_samples=4096,
                 feature_dtype="float16", keep_histories=True, **kwargs):
        kwargs.setdefault("objective", proxy_objective())
        super().__init__(*args, **kwargs)
        self.proxy_k = int(proxy_k)
        self.proxy_every = int(proxy_every)
        self.train_samples = train_samples
        self.feature_dtype = feature_dtype
        self.keep_histories = bool(keep_histories)

    def history_path(self, trial_id):
        return os.path.join(self.get_trial_dir(trial_id), self.history_name)

    def run_trial(self, trial, *args, **kwargs):
        train, val = _fit_data(args, kwargs)
        path = self.history_path(trial.trial_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        parent = trial.hyperparameters.values.get("tuner/trial_id")
        if parent:
            # Hyperband promotion: continue the parent's history.
            copy_history(self.history_path(parent), path)
        recorder = FeatureHistory(
            path, train, val, train_samples=self.train_samples,
            dtype=self.feature_dtype, overwrite=not parent)
        callbacks = list(kwargs.pop("callbacks", []) or [])
        callbacks += [recorder, ProxyAccuracy(recorder, k=self.proxy_k,
                                              every=self.proxy_every)]
        kwargs["callbacks"] = callbacks
        return super().run_trial(trial, *args, **kwargs)

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        # KerasTuner imports tensorboard for every trial on TensorFlow even
        # without a TensorBoard callback; skip it then (tensorboard is no
        # longer installed with TensorFlow).
        if any(type(c).__name__ == "TensorBoard" for c in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)


_TUNER_DOC = """`keras_tuner.{name}` driven by `val_proxy_accuracy` (see `ProxyTunerMixin`).

Args:
    *args, **kwargs: `keras_tuner.{name}`'s own arguments.
    proxy_k, proxy_every, train_samples, feature_dtype, keep_histories: see
        `ProxyTunerMixin`.

Example:

```python
from keras_autolr.runtime.feature_history import search

tuner = search.Proxy{name}(lambda hp: None, directory="t_{name}", proxy_k=5)
print(type(tuner).__mro__[2].__name__, tuner.proxy_k)  # {name} 5
```
"""


def _tuner_class(name):
    kt = _keras_tuner()
    base = getattr(kt, name)
    return type(f"Proxy{name}", (ProxyTunerMixin, base), {"__doc__": _TUNER_DOC.format(name=name)})


def __getattr__(name):
    # The tuner classes exist only when keras-tuner is installed.
    if name in ("ProxyRandomSearch", "ProxyHyperband",
                "ProxyBayesianOptimization"):
        cls = _tuner_class(name[len("Proxy"):])
        globals()[name] = cls
        return cls
    raise AttributeError(name)


def pruning_callback(trial, monitor=PROXY_KEY, every=1):
    """Optuna's own Keras pruning callback, reporting the proxy to `trial`.

    `optuna_integration.KerasPruningCallback` with `interval=every`: put it
    after `ProxyAccuracy(every=every)` in the callback list, so that each
    epoch it looks at carries the key. (With `every > 1`, ProxyAccuracy's
    extra estimate after a last epoch that is not a multiple of `every` is not
    reported; pruning a finished trial would change nothing.)

    Args:
        trial: an `optuna.trial.Trial`.
        monitor: logs key (default `"val_proxy_accuracy"`).
        every: report every this many epochs (the proxy's `every`).

    Returns:
        A `keras.callbacks.Callback` that raises `optuna.TrialPruned` when
        the study's pruner says so.

    Example:

    ```python
    import optuna
    from keras_autolr.runtime.feature_history.search import pruning_callback

    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    cb = pruning_callback(trial)
    cb.on_epoch_end(0, {"val_proxy_accuracy": 0.7})
    study.tell(trial, 0.7)
    print(study.trials[0].intermediate_values)  # {0: 0.7}
    ```
    """
    try:
        from optuna_integration import KerasPruningCallback
    except ImportError as e:
        raise ImportError(
            f"Optuna's Keras pruning callback is an optional extra: {_EXTRA_HINT}.") from e
    return KerasPruningCallback(trial, monitor, interval=int(every))


def make_storage(storage):
    """Optuna storage from `None`, an RDB URL (`"sqlite:///s.db"`) or a journal file path.

    Args:
        storage: None (in memory), a URL (passed through) or a file path
            (an Optuna journal file: works on any shared file system).

    Example:

    ```python
    from keras_autolr.runtime.feature_history.search import make_storage

    print(make_storage("sqlite:///s.db"), type(make_storage("study.journal")).__name__)
    ```
    """
    if storage is None or "://" in str(storage):
        return storage
    optuna = _optuna()
    from optuna.storages.journal import JournalFileBackend
    return optuna.storages.JournalStorage(JournalFileBackend(str(storage)))


def create_study(study_name=None, storage=None, max_epochs=27,
                 min_epochs=1, reduction_factor=3, seed=None,
                 load_if_exists=True):
    """An Optuna study with TPE sampling and Hyperband pruning.

    Args:
        storage: shared storage for several worker processes: an RDB URL
            (`"sqlite:///search.db"`) or a path to a journal file (works on
            any shared file system). `None`: in memory.
        study_name: name of the study (workers sharing a storage use one).
        max_epochs, min_epochs, reduction_factor: Hyperband's resources.
        seed: seed of the TPE sampler.
        load_if_exists: join an existing study of that name.

    Example:

    ```python
    from keras_autolr.runtime.feature_history.search import create_study

    study = create_study(storage="study.journal", study_name="demo", max_epochs=9, seed=0)
    study.optimize(lambda trial: trial.suggest_float("lr", 1e-3, 1.0, log=True), n_trials=2)
    print(len(study.trials), type(study.pruner).__name__)  # 2 HyperbandPruner
    ```
    """
    optuna = _optuna()
    return optuna.create_study(
        study_name=study_name, storage=make_storage(storage),
        direction="maximize", load_if_exists=load_if_exists,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=min_epochs, max_resource=max_epochs,
            reduction_factor=reduction_factor))


def proxy_callbacks(filepath, train_data, validation_data, trial=None, k=10,
                    every=1, **recorder_kwargs):
    """`[FeatureHistory, ProxyAccuracy(, pruning_callback)]` for a fit.

    Args:
        filepath: index file of the feature history.
        train_data: `(x, y)` numpy arrays of the training set.
        validation_data: `(x, y)` numpy arrays of the validation set.
        trial: an Optuna trial to report to and prune (None: no pruning).
        k: window of the ensemble.
        every: estimate (and report) every this many epochs.
        **recorder_kwargs: passed to `FeatureHistory`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.feature_history.search import proxy_callbacks

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 4)).astype("float32"), rng.integers(0, 3, 96)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    callbacks = proxy_callbacks("trial.h5", (x[:64], y[:64]), (x[64:], y[64:]), k=2)
    h = model.fit(x[:64], y[:64], epochs=2, verbose=0, callbacks=callbacks)
    print(h.history["val_proxy_accuracy"])
    ```
    """
    recorder = FeatureHistory(filepath, train_data, validation_data,
                              **recorder_kwargs)
    callbacks = [recorder, ProxyAccuracy(recorder, k=k, every=every)]
    if trial is not None:
        callbacks.append(pruning_callback(trial, every=every))
    return callbacks
