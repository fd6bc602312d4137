"""Keras 3 optimizers: tuning-free step sizes and schedule-free AdamW.

* `Prodigy`, `DAdaptAdam`, `DoG`: ports of `optax.contrib.prodigy`,
  `dadapt_adamw` and `dog` (checked against optax), whose step size estimates
  itself; `keras_autolr.runtime.lr.get_learning_rate` reports that step size.
* `ReferenceScheduleFreeAdamW`: `optax.contrib.schedule_free_adamw` (the
  reference schedule-free AdamW), with `EvalWeights` for its evaluation point.
* `ScheduleFreeAdamW`: Keras's schedule-free AdamW with a TensorFlow fix.
"""

from keras_autolr.runtime.optimizers.dadapt import DAdaptAdam
from keras_autolr.runtime.optimizers.dog import DoG
from keras_autolr.runtime.optimizers.prodigy import Prodigy
from keras_autolr.runtime.optimizers.schedule_free import ScheduleFreeAdamW
from keras_autolr.runtime.optimizers.schedule_free_ref import EvalWeights, ReferenceScheduleFreeAdamW, ScheduleFreeEval

__all__ = ["Prodigy", "DAdaptAdam", "DoG", "ReferenceScheduleFreeAdamW", "EvalWeights", "ScheduleFreeEval", "ScheduleFreeAdamW"]
