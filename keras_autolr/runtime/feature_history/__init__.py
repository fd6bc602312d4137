"""Feature histories: early estimates of a classifier's final accuracy.

Cao, "Efficient Model Performance Estimation via Feature Histories" (CMU
thesis, 2021). `FeatureHistory` records embeddings per epoch to HDF5,
`ProxyAccuracy` / `estimate_file` turn the last K epochs into an ensemble
estimate, and `keras_autolr.runtime.feature_history.search` plugs it into
KerasTuner and Optuna (optional extras).
"""

from keras_autolr.runtime.feature_history.estimate import THESIS_FIT
from keras_autolr.runtime.feature_history.estimate import ClassifierFit
from keras_autolr.runtime.feature_history.estimate import ProxyEstimate
from keras_autolr.runtime.feature_history.estimate import estimate_file
from keras_autolr.runtime.feature_history.estimate import estimate_from_epochs
from keras_autolr.runtime.feature_history.estimate import fit_linear_classifier
from keras_autolr.runtime.feature_history.proxy import ProxyAccuracy
from keras_autolr.runtime.feature_history.recorder import ClassifierNotFoundError
from keras_autolr.runtime.feature_history.recorder import FeatureHistory
from keras_autolr.runtime.feature_history.store import HistoryLockedError
from keras_autolr.runtime.feature_history.store import HistoryMismatchError
from keras_autolr.runtime.feature_history.store import HistoryStore

__all__ = [
    "FeatureHistory", "ProxyAccuracy", "ProxyEstimate", "ClassifierFit", "THESIS_FIT", "HistoryStore", "estimate_file", "estimate_from_epochs",
    "fit_linear_classifier", "ClassifierNotFoundError", "HistoryMismatchError",
    "HistoryLockedError",
]

