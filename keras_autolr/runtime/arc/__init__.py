"""ARC, the Autonomous Learning Rate Controller (Wu et al.), for Keras 3.

* `ARC`: the callback (`model.fit(..., callbacks=[ARC()])`).
* `build_controller`, `load_controller`: the controller network.
* `preprocessing`, `generate`, `labels`, `train`, `zoo`: the pipeline that
  produced the shipped controller (`keras-autolr arc generate / train / evaluate`).
"""

from keras_autolr.runtime.arc.callback import ARC, auto_frequency
from keras_autolr.runtime.arc.controller import (
    ControllerError,
    build_controller,
    default_controller_path,
    load_controller,
)
from keras_autolr.runtime.arc.preprocessing import build_window

__all__ = [
    "ARC",
    "auto_frequency",
    "ControllerError",
    "build_controller",
    "default_controller_path",
    "load_controller",
    "build_window",
]
