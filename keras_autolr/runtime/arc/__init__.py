"""ARC, the Autonomous Learning Rate Controller (Wu et al.), for Keras 3.

* `ARC`, `auto_frequency`: the callback (`model.fit(..., callbacks=[ARC()])`)
  and its default decision frequency (`callback.py`).
* `build_controller`, `load_controller`, `default_controller_path`,
  `ControllerError`: the controller network (`controller.py`).
* `build_window`: the controller's (300, 3) input (`preprocessing.py`).

The offline pipeline that produced the shipped controller (chain generation,
labels, training, selection) is not part of the runtime: it lives in
`keras_autolr.pipelines.arc` (command line: `keras-autolr arc generate /
train / evaluate / select`), and the task zoo it trains on in
`keras_autolr.harness.zoo`.
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
