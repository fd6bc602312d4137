"""keras_autolr: automatic learning rates for Keras 3.

Four published methods, each a callback or train step you add to `model.fit`:

* `ARC`: an autonomous LR controller (raise / keep / lower every few epochs).
* `MLRSNetScheduler`: a meta-learned LSTM (`MLRSNet`) that sets the LR of
  every batch inside the compiled train step.
* `MCVModel`: batch-level cross-validation inside `train_step`
  (`MCVScheduler`, `MCVStopping`).
* `FeatureHistory`: penultimate-layer embeddings recorded each epoch;
  `ProxyAccuracy` turns them into an early estimate of final accuracy for
  hyperparameter search.

Plus the baselines they are measured against (`keras_autolr.harness.methods`), the one
module that reads and writes learning rates (`keras_autolr.runtime.lr`), data sets,
tasks, metrics and the experiment runner.
"""

import importlib

from keras_autolr.runtime.lr_callback import LearningRateCallback, LearningRateLogger
from keras_autolr.runtime.lr import (
    LearningRateError,
    get_learning_rate,
    scale_learning_rate,
    set_learning_rate,
)

__version__ = "0.1.0"

# Method classes are imported on first use: each pulls in its own pieces.
_LAZY = {
    "ARC": "keras_autolr.runtime.arc",
    "MLRSNet": "keras_autolr.runtime.mlrsnet",
    "FeatureHistory": "keras_autolr.runtime.feature_history",
    "MLRSNetScheduler": "keras_autolr.runtime.mlrsnet",
    "ProxyAccuracy": "keras_autolr.runtime.feature_history",
    "MCVModel": "keras_autolr.runtime.mcv",
    "MCVScheduler": "keras_autolr.runtime.mcv",
    "MCVStopping": "keras_autolr.runtime.mcv",
    "mcv": "keras_autolr.runtime.mcv",
    "arc": "keras_autolr.runtime.arc",
    "mlrsnet": "keras_autolr.runtime.mlrsnet",
    "feature_history": "keras_autolr.runtime.feature_history",
    "datasets": "keras_autolr.harness.datasets",
    "tasks": "keras_autolr.harness.tasks",
    "methods": "keras_autolr.harness.methods",
    "metrics": "keras_autolr.harness.metrics",
    "experiment": "keras_autolr.harness.runner",
    "lr": "keras_autolr.runtime.lr",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.endswith(name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_autolr' has no attribute {name!r}")


__all__ = [
    "ARC", "MLRSNet", "MLRSNetScheduler", "FeatureHistory", "ProxyAccuracy",
    "MCVModel", "MCVScheduler", "MCVStopping",
    "LearningRateCallback", "LearningRateLogger", "LearningRateError",
    "get_learning_rate", "set_learning_rate", "scale_learning_rate",
]
