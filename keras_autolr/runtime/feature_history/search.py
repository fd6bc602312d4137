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
tuner = ProxyHyperband(build_model, max_epochs=9, directory="tune")
tuner.search(x, y, validation_data=(x_val, y_val))
```
"""

import os
import shutil

import keras

from keras_autolr.runtime.feature_history.proxy import ProxyAccuracy
from keras_autolr.runtime.feature_history.recorder import FeatureHistory
from keras_autolr.runtime.feature_history.store import epoch_dir

PROXY_KEY = "val_proxy_accuracy"
_EXTRA_HINT = ("pip install keras-tuner optuna "
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
    """`keras_tuner.Objective("val_proxy_accuracy", "max")`."""
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
    """Copies a feature history (index + epoch files) to a new path."""
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

    Args (keyword-only, besides the tuner's own):
        proxy_k: window of the ensemble (thesis: 10).
        proxy_every: estimate every this many epochs.
        train_samples, feature_dtype: passed to `FeatureHistory`.
        keep_histories: keep each trial's HDF5 history (default: deleted at
            the end of the trial to save disk; the promoted children of a
            Hyperband trial copy it before that).
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


def _tuner_class(name):
    kt = _keras_tuner()
    base = getattr(kt, name)
    return type(f"Proxy{name}", (ProxyTunerMixin, base), {
        "__doc__": f"`keras_tuner.{name}` driven by `val_proxy_accuracy` "
                   "(see `ProxyTunerMixin`)."})


def __getattr__(name):
    # The tuner classes exist only when keras-tuner is installed.
    if name in ("ProxyRandomSearch", "ProxyHyperband",
                "ProxyBayesianOptimization"):
        cls = _tuner_class(name[len("Proxy"):])
        globals()[name] = cls
        return cls
    raise AttributeError(name)


class OptunaPruningCallback(keras.callbacks.Callback):
    """Reports `logs[monitor]` to an Optuna trial and prunes on its advice.

    Put it after `ProxyAccuracy` in the callback list. Epochs without the
    key (the proxy runs every k epochs) report nothing.

    Args:
        trial: an `optuna.trial.Trial`.
        monitor: logs key (default `"val_proxy_accuracy"`).
    """

    def __init__(self, trial, monitor=PROXY_KEY):
        super().__init__()
        self.trial = trial
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        self.trial.report(float(value), step=int(epoch))
        if self.trial.should_prune():
            optuna = _optuna()
            raise optuna.TrialPruned(
                f"Pruned at epoch {epoch} with {self.monitor}={value:.4f}.")


def make_storage(storage):
    """`None`, an RDB URL (`"sqlite:///s.db"`) or a journal file path."""
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
        max_epochs, min_epochs, reduction_factor: Hyperband's resources.
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
    """`[FeatureHistory, ProxyAccuracy(, OptunaPruningCallback)]` for a fit."""
    recorder = FeatureHistory(filepath, train_data, validation_data,
                              **recorder_kwargs)
    callbacks = [recorder, ProxyAccuracy(recorder, k=k, every=every)]
    if trial is not None:
        callbacks.append(OptunaPruningCallback(trial))
    return callbacks
