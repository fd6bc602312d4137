"""keras_autolr: automatic learning rates for Keras 3.

The public API is the names in `__all__`, all from the runtime layer
(`keras_autolr.runtime`): four published methods, each something you add to
`model.fit`, and the pieces they share.

* `ARC`: an autonomous LR controller (raise / keep / lower every few epochs).
* `MLRSNetScheduler`: a meta-learned LSTM (`MLRSNet`) sets the LR of every
  batch inside the compiled train step; `HypergradientDescent` is its
  paper's baseline.
* `MCVModel`: batch-level cross-validation inside `train_step`
  (`MCVScheduler`, `MCVStopping`, `PairedBatches`).
* `FeatureHistory`: penultimate-layer embeddings recorded each epoch;
  `ProxyAccuracy` turns them into an early estimate of final accuracy.
* `Prodigy`, `DAdaptAdam`, `DoG`, `ReferenceScheduleFreeAdamW`: the
  tuning-free optimizers users compare us with (checked against optax), and
  `find_lr`, an LR range test (also `keras_autolr.optimizers.<Name>`).
* `get_learning_rate` / `set_learning_rate` / `scale_learning_rate`: the one
  place that reads and writes an optimizer's LR; `LearningRateCallback` is
  the base class of our callbacks.

The other layers are imported on their own: `keras_autolr.harness` (tasks,
data sets, the method registry, runner, metrics), `keras_autolr.pipelines`
(the offline jobs that built the shipped controllers) and `keras_autolr.cli`.

Importing `keras_autolr` registers every Keras-serializable class of the
package, so `keras.models.load_model` restores saved `MCVModel`s, scaled LR
schedules, MLR-SNet nets and our optimizers in a fresh process.

Example:

```python
import keras
import numpy as np
import keras_autolr

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
history = model.fit(x, y, epochs=2, verbose=0, callbacks=[keras_autolr.LearningRateLogger()])
assert history.history["learning_rate"] == [keras_autolr.get_learning_rate(model.optimizer)] * 2
```
"""

import os as _os
import sys as _sys


def _import_runtime():
    """Imports the runtime (registering every serializable class) and binds the public names here."""
    from keras_autolr.runtime.arc import ARC, build_window, load_controller
    from keras_autolr.runtime.feature_history import FeatureHistory, ProxyAccuracy, estimate_file
    from keras_autolr.runtime.instep import InStepScheduler
    from keras_autolr.runtime.lr import (
        LearningRateError,
        ScaledSchedule,
        get_learning_rate,
        scale_learning_rate,
        set_learning_rate,
    )
    from keras_autolr.runtime.lr_callback import LearningRateCallback, LearningRateLogger
    from keras_autolr.runtime.mcv import MCVModel, MCVScheduler, MCVStopping, PairedBatches
    from keras_autolr.runtime.mlrsnet import HypergradientDescent, MLRSNet, MLRSNetScheduler, load_net
    from keras_autolr.runtime import optimizers  # also `keras_autolr.optimizers.Prodigy`
    from keras_autolr.runtime import mlrsnet  # also `keras_autolr.mlrsnet.load_official`, `.net_outputs`
    from keras_autolr.runtime.lr_finder import LRFinder, LRFinderResult, find_lr
    from keras_autolr.runtime.optimizers import (
        DAdaptAdam,
        DoG,
        EvalWeights,
        Prodigy,
        ReferenceScheduleFreeAdamW,
        ScheduleFreeAdamW,
        ScheduleFreeEval,
    )
    globals().update({k: v for k, v in locals().items()})


def _started_as_cli():
    """True in the `keras-autolr` command's process, which imports the runtime only when a command runs."""
    argv0 = _sys.argv[0] if _sys.argv else ""
    # `python -m keras_autolr[.cli]`: argv[0] is "-m" while Python imports the package.
    orig = getattr(_sys, "orig_argv", ())
    return _os.path.basename(argv0) == "keras-autolr" or (
        argv0 == "-m" and ("keras_autolr" in orig or "keras_autolr.cli" in orig))


def __getattr__(name):  # only reached before `_import_runtime` ran (the CLI, before a command)
    if not name.startswith("_") and "ARC" not in globals():
        _import_runtime()
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module 'keras_autolr' has no attribute {name!r}")


# Eager imports: they register the serializable classes (see above). The CLI
# defers them (and TensorFlow's start-up) so that `keras-autolr --help` is instant.
if not _started_as_cli():
    _import_runtime()

__version__ = "0.2.0"

__all__ = [
    # the four methods
    "ARC",
    "MLRSNetScheduler",
    "MLRSNet",
    "HypergradientDescent",
    "MCVModel",
    "MCVScheduler",
    "MCVStopping",
    "PairedBatches",
    "FeatureHistory",
    "ProxyAccuracy",
    "estimate_file",
    # loading the shipped controllers
    "load_controller",
    "load_net",
    "build_window",
    # tuning-free optimizers and the LR range test
    "Prodigy",
    "DAdaptAdam",
    "DoG",
    "ReferenceScheduleFreeAdamW",
    "EvalWeights",
    "ScheduleFreeEval",
    "ScheduleFreeAdamW",
    "find_lr",
    "LRFinder",
    "LRFinderResult",
    # the learning rate
    "get_learning_rate",
    "set_learning_rate",
    "scale_learning_rate",
    "LearningRateError",
    "ScaledSchedule",
    "LearningRateCallback",
    "LearningRateLogger",
    "InStepScheduler",
]
