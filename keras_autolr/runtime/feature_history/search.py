"""Search engines driven by the feature-history proxy (optional extras).

KerasTuner (`pip install keras-tuner`): `ProxyRandomSearch`,
`ProxyHyperband` and `ProxyBayesianOptimization` are the library's own
tuners with one change: every trial's `fit` also runs a `FeatureHistory`
recorder and a `ProxyAccuracy` callback, and the objective defaults to
`keras_tuner.Objective("val_proxy_accuracy", "max")`. Hyperband's promoted
trials continue their parent's feature history. KerasTuner's distributed
chief/worker mode (the `KERASTUNER_*` environment variables) works
unchanged.

Pruning in KerasTuner, which has no pruning API of its own
(keras-team/keras-tuner#279): the oracle decides, the tuner runs.
`PruningTunerMixin` reports every epoch's objective to the oracle through
`oracle.update_trial` (KerasTuner's own channel, so distributed search works
too) and stops the fit when the returned trial is `STOPPED`;
`PruningOracleMixin` marks a trial `STOPPED` when its best value so far falls
below the median (a percentile) of the finished trials' values at the same
epoch. `PruningRandomSearch` combines them for any objective and
`ProxyPruningRandomSearch` prunes on `val_proxy_accuracy`.

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

import math
import numbers
import os
import shutil
import warnings

import keras
import numpy as np

from keras_autolr.runtime.feature_history.proxy import ProxyAccuracy
from keras_autolr.runtime.feature_history.recorder import FeatureHistory
from keras_autolr.runtime.feature_history.store import epoch_dir

__all__ = [
    "PROXY_KEY", "proxy_objective", "copy_history", "ProxyTunerMixin", "ProxyRandomSearch", "ProxyHyperband",
    "ProxyBayesianOptimization", "should_prune", "PruningOracleMixin", "PruningTunerMixin",
    "PruningRandomSearchOracle", "PruningRandomSearch", "ProxyPruningRandomSearch", "pruning_callback",
    "make_storage", "create_study", "proxy_callbacks",
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
    """`(train, validation_data, validation_split)` for the trial's recorder: fit's own validation set."""
    x = args[0] if len(args) > 0 else kwargs.get("x")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    val = kwargs.get("validation_data")
    split = kwargs.get("validation_split") or None
    if x is None or y is None or (val is None and split is None):
        raise ValueError(
            "A proxy-driven search needs numpy training data and "
            "validation data: tuner.search(x, y, validation_data=(x_val, "
            "y_val), ...) or tuner.search(x, y, validation_split=0.2, ...).")
    if val is not None:
        return (x, y), tuple(val), None  # Keras ignores validation_split then
    return (x, y), None, float(split)


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
            ...); `objective` defaults to `proxy_objective()` (unless the
            tuner is given a ready `oracle`).
        proxy_k: window of the ensemble (thesis: 10).
        proxy_every: estimate every this many epochs.
        train_samples, feature_dtype: passed to `FeatureHistory` (default:
            all training rows, stored as float16).
        keep_histories: keep each trial's HDF5 history (default: deleted at
            the end of the trial to save disk; the promoted children of a
            Hyperband trial copy it before that).
        proxy_fit: `ProxyAccuracy`'s `fit` (a `ClassifierFit`, True for the
            default 200 steps, False for none).

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

    def __init__(self, *args, proxy_k=10, proxy_every=1, train_samples=None,
                 feature_dtype="float16", keep_histories=True, proxy_fit=True, **kwargs):
        given_oracle = "oracle" in kwargs or (args and hasattr(args[0], "create_trial"))
        if not given_oracle:  # a tuner built on a ready oracle takes no objective
            kwargs.setdefault("objective", proxy_objective())
        super().__init__(*args, **kwargs)
        self.proxy_k = int(proxy_k)
        self.proxy_every = int(proxy_every)
        self.train_samples = train_samples
        self.feature_dtype = feature_dtype
        self.keep_histories = bool(keep_histories)
        self.proxy_fit = proxy_fit

    def history_path(self, trial_id):
        return os.path.join(self.get_trial_dir(trial_id), self.history_name)

    def run_trial(self, trial, *args, **kwargs):
        train, val, split = _fit_data(args, kwargs)
        path = self.history_path(trial.trial_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        parent = trial.hyperparameters.values.get("tuner/trial_id")
        if parent:
            # Hyperband promotion: continue the parent's history.
            copy_history(self.history_path(parent), path)
        # file_per_copy=False: KerasTuner deep-copies this trial's recorder,
        # and the copy must write this trial's path.
        recorder = FeatureHistory(
            path, train, val, validation_split=split,
            train_samples=self.train_samples, dtype=self.feature_dtype,
            overwrite=not parent, file_per_copy=False)
        callbacks = list(kwargs.pop("callbacks", []) or [])
        callbacks += [recorder, ProxyAccuracy(recorder, k=self.proxy_k,
                                              every=self.proxy_every, fit=self.proxy_fit)]
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


def should_prune(best_so_far, reference, direction="max", percentile=50.0, min_trials=3):
    """Whether a trial's best value so far is outside the top `percentile`% of the other trials' values.

    Optuna's `PercentilePruner` rule (`percentile=50`: the median stopping
    rule): `reference` holds the values other trials had at the same step.

    Args:
        best_so_far: the trial's best value up to this step.
        reference: the other trials' values at this step (NaN/None ignored).
        direction: `"max"` or `"min"`.
        percentile: the share of trials kept, in (0, 100).
        min_trials: fewer reference values than this never prune.

    Returns:
        True to stop the trial.

    Example:

    ```python
    from keras_autolr.runtime.feature_history.search import should_prune

    print(should_prune(0.5, [0.6, 0.7, 0.8]), should_prune(0.75, [0.6, 0.7, 0.8]))  # True False
    ```
    """
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}.")
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be in (0, 100), got {percentile}.")
    values = [float(v) for v in reference if v is not None and math.isfinite(float(v))]
    if len(values) < max(int(min_trials), 1) or best_so_far is None or not math.isfinite(best_so_far):
        return False
    if direction == "max":
        return best_so_far < float(np.percentile(values, 100.0 - percentile))
    return best_so_far > float(np.percentile(values, percentile))


class PruningOracleMixin:
    """Makes a KerasTuner oracle stop trials whose objective lags the finished trials' at the same epoch.

    Each `update_trial(trial_id, metrics, step)` (one per epoch from
    `PruningTunerMixin`) checks `should_prune` on the trial's best objective
    so far against the values finished, unpruned trials reported at `step`,
    and marks the trial `STOPPED` (KerasTuner's own signal for early
    stopping); the tuner then ends its fit. A stopped trial still ends
    `COMPLETED`, scored by its best value so far; `pruned` maps its id to
    the epoch it was stopped at (saved with the oracle's state).

    Args:
        *args, **kwargs: the oracle's own arguments.
        prune_percentile: share of trials kept at each epoch (50: median).
        prune_warmup: epochs (0-based step numbers below this) never pruned.
        prune_min_trials: finished trials needed at an epoch before pruning.

    Example:

    ```python
    import keras_tuner
    from keras_autolr.runtime.feature_history.search import PruningOracleMixin

    class PruningGridOracle(PruningOracleMixin, keras_tuner.oracles.GridSearchOracle):
        pass  # grid search that stops lagging trials

    oracle = PruningGridOracle(objective="val_accuracy", max_trials=4, prune_warmup=2)
    print(oracle.prune_warmup, oracle.pruned)  # 2 {}
    ```
    """

    def __init__(self, *args, prune_percentile=50.0, prune_warmup=1, prune_min_trials=3, **kwargs):
        super().__init__(*args, **kwargs)
        should_prune(0.0, [], percentile=prune_percentile)  # validates the percentile
        self.prune_percentile = float(prune_percentile)
        self.prune_warmup = int(prune_warmup)
        self.prune_min_trials = int(prune_min_trials)
        self.pruned = {}

    def _reference(self, trial_id, name, step):
        values = []
        for other in self.trials.values():
            if (other.trial_id == trial_id or other.status != "COMPLETED"
                    or other.trial_id in self.pruned or not other.metrics.exists(name)):
                continue
            values += [obs.mean() for obs in other.metrics.get_history(name) if obs.step == step]
        return values

    def update_trial(self, trial_id, metrics, step=0):
        trial = super().update_trial(trial_id, metrics, step)
        name = self.objective.name
        if (trial.status == "RUNNING" and step >= self.prune_warmup and name in metrics
                and should_prune(trial.metrics.get_best_value(name), self._reference(trial_id, name, step),
                                 self.objective.direction, self.prune_percentile, self.prune_min_trials)):
            trial.status = "STOPPED"
            self.pruned[trial_id] = int(step)
        return trial

    def get_state(self):
        state = super().get_state()
        state["pruned"] = dict(self.pruned)
        return state

    def set_state(self, state):
        super().set_state(state)
        self.pruned = dict(state.get("pruned", {}))


class PruningTunerMixin:
    """Makes a KerasTuner tuner report each epoch to its oracle and stop the trials the oracle stops.

    After every epoch whose logs carry the objective, the numeric logs go to
    `oracle.update_trial(trial_id, logs, step=epoch)`; a returned trial whose
    status is `STOPPED` ends the fit after this epoch (`stopped_trials` lists
    them). The trial's metrics are then the per-epoch series, and its score
    its best value, as without pruning. Pair it with an oracle using
    `PruningOracleMixin`.

    Args:
        *args, **kwargs: the tuner's own arguments.

    Example:

    ```python
    import keras_tuner
    from keras_autolr.runtime.feature_history.search import PruningOracleMixin, PruningTunerMixin

    class Oracle(PruningOracleMixin, keras_tuner.oracles.GridSearchOracle):
        pass

    class PruningTuner(PruningTunerMixin, keras_tuner.Tuner):
        pass

    tuner = PruningTuner(Oracle(objective="val_accuracy", max_trials=2), lambda hp: None, directory="pt")
    print(tuner.stopped_trials)  # []
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stopped_trials = []

    def on_epoch_end(self, trial, model, epoch, logs=None):
        super().on_epoch_end(trial, model, epoch, logs=logs)
        name = self.oracle.objective.name
        if not logs or name not in logs:
            return  # e.g. a ProxyAccuracy(every=n) epoch without an estimate
        metrics = {k: float(v) for k, v in logs.items() if isinstance(v, numbers.Real)}
        reported = self.oracle.update_trial(trial.trial_id, metrics, step=int(epoch))
        if getattr(reported, "status", None) == "STOPPED":
            model.stop_training = True
            if trial.trial_id not in self.stopped_trials:
                self.stopped_trials.append(trial.trial_id)

    def search(self, *args, **kwargs):
        with warnings.catch_warnings():
            # KerasTuner deprecates reporting from inside run_trial; here it is
            # the point (the final report would repeat the last epochs').
            warnings.filterwarnings("ignore", message="The use case of calling", category=DeprecationWarning)
            return super().search(*args, **kwargs)


_PRUNING_DOC = {
    "PruningRandomSearchOracle": """`keras_tuner.oracles.RandomSearchOracle` with `PruningOracleMixin`.

Args:
    *args, **kwargs: `RandomSearchOracle`'s own arguments.
    prune_percentile, prune_warmup, prune_min_trials: see `PruningOracleMixin`.

Example:

```python
from keras_autolr.runtime.feature_history import search

oracle = search.PruningRandomSearchOracle(objective="val_accuracy", max_trials=5, prune_min_trials=2)
print(oracle.prune_percentile, oracle.prune_min_trials)  # 50.0 2
```
""",
    "PruningRandomSearch": """Random search that stops trials whose objective lags the median of finished trials at the same epoch.

`keras_tuner.RandomSearch` with a `PruningRandomSearchOracle` and
`PruningTunerMixin`. Compute saved on stopped trials goes to further trials:
bound the search by `max_trials` or stop it from outside on a budget.

Args:
    hypermodel, objective, max_trials, seed, hyperparameters: as for
        `keras_tuner.RandomSearch`.
    prune_percentile, prune_warmup, prune_min_trials: see `PruningOracleMixin`.
    **kwargs: `keras_tuner.Tuner`'s own (directory, project_name, ...).

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.feature_history.search import PruningRandomSearch

rng = np.random.default_rng(0)
x, y = rng.normal(size=(96, 4)).astype("float32"), rng.integers(0, 3, 96)

def build_model(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(hp.Float("lr", 1e-4, 1.0, sampling="log")),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

tuner = PruningRandomSearch(build_model, objective="val_accuracy", max_trials=3, seed=0, directory="prs",
                            prune_warmup=0, prune_min_trials=1)
tuner.search(x[:64], y[:64], epochs=3, validation_data=(x[64:], y[64:]), verbose=0)
print(tuner.oracle.pruned)  # {trial id: epoch it was stopped at}
```
""",
    "ProxyPruningRandomSearch": """Random search on `val_proxy_accuracy` that stops trials whose proxy lags the median.

`ProxyTunerMixin` (each trial records a feature history and logs the
proxy) on `PruningRandomSearch`: the thesis's estimate used to stop trials
early, not only to rank them.

Args:
    *args, **kwargs: `PruningRandomSearch`'s arguments (objective default
        `proxy_objective()`).
    proxy_k, proxy_every, train_samples, feature_dtype, keep_histories: see
        `ProxyTunerMixin`.

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.feature_history.search import ProxyPruningRandomSearch

x = np.random.default_rng(0).normal(size=(96, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0)  # 3 classes

def build_model(hp):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(hp.Choice("width", [2, 8]), activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model

tuner = ProxyPruningRandomSearch(build_model, max_trials=2, seed=0, directory="pprs", proxy_k=2,
                                 prune_warmup=0, prune_min_trials=1)
# validation_split works too: each trial's recorder validates on Keras's split.
tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
print(tuner.oracle.objective.name, tuner.oracle.pruned)  # val_proxy_accuracy {...}
```
""",
}


def _pruning_class(name):
    kt = _keras_tuner()
    if name == "PruningRandomSearchOracle":
        return type(name, (PruningOracleMixin, kt.oracles.RandomSearchOracle),
                    {"__doc__": _PRUNING_DOC[name]})
    if name == "ProxyPruningRandomSearch":
        return type(name, (ProxyTunerMixin, __getattr__("PruningRandomSearch")),
                    {"__doc__": _PRUNING_DOC[name]})
    oracle_class = __getattr__("PruningRandomSearchOracle")

    def __init__(self, hypermodel=None, objective=None, max_trials=10, seed=None, hyperparameters=None,
                 prune_percentile=50.0, prune_warmup=1, prune_min_trials=3, tune_new_entries=True,
                 allow_new_entries=True, max_retries_per_trial=0, max_consecutive_failed_trials=3,
                 **kwargs):
        self.seed = seed
        oracle = oracle_class(
            objective=objective, max_trials=max_trials, seed=seed, hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            prune_percentile=prune_percentile, prune_warmup=prune_warmup, prune_min_trials=prune_min_trials)
        PruningTunerMixin.__init__(self, oracle, hypermodel, **kwargs)

    return type(name, (PruningTunerMixin, kt.Tuner), {"__doc__": _PRUNING_DOC[name], "__init__": __init__})


def __getattr__(name):
    # The tuner classes exist only when keras-tuner is installed.
    if name in ("ProxyRandomSearch", "ProxyHyperband",
                "ProxyBayesianOptimization"):
        cls = _tuner_class(name[len("Proxy"):])
    elif name in _PRUNING_DOC:
        cls = _pruning_class(name)
    else:
        raise AttributeError(name)
    globals()[name] = cls
    return cls


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
