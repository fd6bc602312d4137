"""ARC's controller network: build it, load it, and query it fast.

The architecture is the paper's (Figure 2), with the layer sizes of the
reference implementation: Conv1D(32, 5) -> MaxPool(2) -> Conv1D(64, 5) ->
MaxPool(2) -> LSTM(64) -> LSTM(64) -> Dense(32) -> Dense(3, softmax), 79,043
parameters. Input: a (300, 3) window (see `preprocessing.build_window`).
Output classes: 0 raise the LR (x1.618), 1 keep it, 2 lower it (x0.618).

Example:

```python
from keras_autolr.runtime.arc.controller import Predictor, build_controller, load_controller
from keras_autolr.runtime.arc.preprocessing import build_window

print(build_controller().count_params())  # 79043
ctrl = load_controller()                  # the shipped saved_controllers/arc.keras
window = build_window([[2.3, 2.1, 2.0]], [[2.05]], [1e-3])
probs = Predictor(ctrl)(window)           # numpy (3,): p(raise), p(keep), p(lower)
print(round(float(probs.sum()), 4))       # 1.0
```
"""

import os

import keras
import numpy as np

from keras_autolr.runtime.arc.preprocessing import CYCLES, WINDOW, build_window

__all__ = [
    "RAISE",
    "KEEP",
    "LOWER",
    "FACTORS",
    "CLASS_NAMES",
    "ControllerError",
    "arc_loss",
    "build_controller",
    "load_controller",
    "check_controller",
    "default_controller_path",
    "Predictor",
]

RAISE, KEEP, LOWER = 0, 1, 2
FACTORS = (1.618, 1.0, 0.618)
CLASS_NAMES = ("raise", "keep", "lower")
INPUT_SHAPE = (WINDOW, 3)


class ControllerError(ValueError):
    """Raised for a controller file or model ARC cannot use.

    The message says what is wrong (missing file, unreadable file, wrong
    input/output shape, outputs that are not probabilities) and how to get a
    usable controller.
    """


@keras.saving.register_keras_serializable(package="keras_autolr")
def arc_loss(y_true, y_pred):
    """0.5 x categorical cross-entropy + 0.5 x binary cross-entropy of raise vs lower.

    The second term (reference implementation) sharpens the direction of a
    change: it penalises putting raise-probability on a lower label and vice
    versa more than the 3-way term alone does.

    Args:
        y_true: one-hot labels, shape (batch, 3), columns (raise, keep, lower).
        y_pred: predicted probabilities, shape (batch, 3).

    Returns:
        The per-sample loss, shape (batch,).

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.arc.controller import arc_loss

    y_true = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], "float32")
    y_pred = np.array([[0.8, 0.1, 0.1], [0.6, 0.2, 0.2]], "float32")
    print(np.asarray(arc_loss(y_true, y_pred)).round(3))  # [0.194 1.436]: raise on a lower label costs most
    ```

    It is the loss `keras_autolr.pipelines.arc.train` compiles the controller
    with: `model.compile(keras.optimizers.Adam(1e-4), loss=arc_loss)`.
    """
    ops = keras.ops
    y_true = ops.cast(y_true, y_pred.dtype)
    cce = keras.losses.categorical_crossentropy(y_true, y_pred)
    pair_true = ops.stack([y_true[:, RAISE], y_true[:, LOWER]], axis=-1)
    pair_pred = ops.stack([y_pred[:, RAISE], y_pred[:, LOWER]], axis=-1)
    bce = keras.losses.binary_crossentropy(pair_true, pair_pred)
    return 0.5 * cce + 0.5 * bce


def build_controller(seed=None):
    """Returns an uncompiled controller with the paper's architecture.

    Args:
        seed: seed of the Glorot-uniform kernel initialisers (`None`: random).

    Returns:
        A `keras.Sequential` named `"arc_controller"`, (None, 300, 3) to
        (None, 3) softmax probabilities (raise, keep, lower).

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.arc.controller import build_controller

    model = build_controller(seed=0)
    print(model.count_params())  # 79043
    probs = model.predict(np.zeros((2, 300, 3), "float32"), verbose=0)
    print(probs.shape)           # (2, 3)
    ```
    """
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            keras.layers.Conv1D(32, 5, activation="relu", kernel_initializer=init),
            keras.layers.MaxPooling1D(2),
            keras.layers.Conv1D(64, 5, activation="relu", kernel_initializer=init),
            keras.layers.MaxPooling1D(2),
            keras.layers.LSTM(64, return_sequences=True, kernel_initializer=init),
            keras.layers.LSTM(64, kernel_initializer=init),
            keras.layers.Dense(32, activation="relu", kernel_initializer=init),
            keras.layers.Dense(3, activation="softmax", kernel_initializer=init),
        ],
        name="arc_controller",
    )


def default_controller_path():
    """Returns the path of the shipped controller `saved_controllers/arc.keras`.

    Looked up (in order) in the env variable `KERAS_AUTOLR_ARC_CONTROLLER`,
    inside the installed package (`keras_autolr/runtime/arc/arc.keras`,
    package data), and in the shipped-controllers folder
    (`keras_autolr.runtime.artifacts.artifacts_dir`: `KERAS_AUTOLR_CONTROLLERS`
    or the repository's `saved_controllers/`). When none exists, the last
    candidate is returned and `load_controller` reports it missing.

    Returns:
        A path string.

    Example:

    ```python
    import os
    from keras_autolr.runtime.arc.controller import default_controller_path

    path = default_controller_path()
    print(os.path.basename(path), os.path.exists(path))  # arc.keras True
    ```
    """
    from keras_autolr.runtime.artifacts import artifacts_dir

    env = os.environ.get("KERAS_AUTOLR_ARC_CONTROLLER")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        os.path.join(here, "arc.keras"),
        os.path.join(artifacts_dir(), "arc.keras"),
    ]
    for path in candidates:
        if os.path.exists(path):
            return os.path.normpath(path)
    return os.path.normpath(candidates[-1])


def _probe_window():
    # A plausible window: three cycles of a decaying loss at a constant LR.
    t = np.linspace(0.0, 1.0, 20)
    losses = [2.0 * np.exp(-(t + k)) + 0.1 for k in range(CYCLES)]
    return build_window(losses, [[c[-1] + 0.05] for c in losses], [1e-3] * CYCLES)


def _check_probabilities(model, source):
    try:
        out = model.predict_on_batch(_probe_window()[None])
    except Exception as e:  # any failure on a valid window makes the model unusable
        raise ControllerError(
            f"{source} failed on a (1, 300, 3) probe window ({type(e).__name__}: {e})."
        ) from e
    p = np.asarray(out, dtype=np.float64).reshape(-1)
    if not (np.all(np.isfinite(p)) and np.all(p >= 0) and abs(p.sum() - 1.0) <= 1e-3):
        raise ControllerError(
            f"{source} does not output probabilities: on a probe window it gave "
            f"{np.round(p, 4).tolist()} (sum {p.sum():.4g}). ARC needs 3 non-negative "
            "probabilities (raise, keep, lower) that sum to 1: end the model with "
            "keras.layers.Dense(3, activation='softmax'), as build_controller() does."
        )


def check_controller(model, source="the controller"):
    """Raises `ControllerError` unless `model` maps (None, 300, 3) windows to probabilities.

    Checks the shapes, then runs the model once on a probe window: its output
    must be non-negative and sum to 1 (within 1e-3), as a softmax's does.

    Args:
        model: the candidate controller.
        source: how to name it in the error message.

    Returns:
        `model`, unchanged.

    Raises:
        ControllerError: `model` is not a `keras.Model`, has no defined
            shapes, has the wrong input or output shape, or its output on
            the probe window is not a probability distribution.

    Example:

    ```python
    import keras
    from keras_autolr.runtime.arc.controller import ControllerError, build_controller, check_controller

    check_controller(build_controller())  # fine
    wrong = keras.Sequential([keras.Input((300, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    try:
        check_controller(wrong, "my model")
    except ControllerError as e:
        print(e)  # my model maps (None, 300, 3) to (None, 2); ARC needs ...
    logits = keras.Sequential([keras.Input((300, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
    try:
        check_controller(logits, "my model")
    except ControllerError as e:
        print(e)  # my model does not output probabilities: ... end the model with a softmax
    ```
    """
    if not isinstance(model, keras.Model):
        raise ControllerError(
            f"{source} must be a keras.Model or a path to a .keras file, got "
            f"{type(model).__name__}."
        )
    try:
        in_shape = tuple(model.input_shape)
        out_shape = tuple(model.output_shape)
    except (AttributeError, ValueError):
        raise ControllerError(
            f"{source} has no defined input/output shape; build it on inputs of "
            "shape (None, 300, 3)."
        ) from None
    if in_shape[1:] != INPUT_SHAPE or out_shape[1:] != (3,):
        raise ControllerError(
            f"{source} maps {in_shape} to {out_shape}; ARC needs a model from "
            "(None, 300, 3) windows to (None, 3) probabilities (raise, keep, "
            "lower). Build one with keras_autolr.runtime.arc.build_controller()."
        )
    _check_probabilities(model, source)
    return model


def load_controller(path=None):
    """Loads a controller saved in the native `.keras` format and checks it.

    Args:
        path: file path; `None` loads the shipped controller
            (`default_controller_path()`).

    Returns:
        The uncompiled `keras.Model`.

    Raises:
        ControllerError: the file is missing, not a readable `.keras` file, or
            holds a model of the wrong shape or one whose output is not a
            probability distribution (see `check_controller`).

    Example:

    ```python
    from keras_autolr.runtime.arc.controller import build_controller, load_controller

    build_controller(seed=0).save("my_controller.keras")
    ctrl = load_controller("my_controller.keras")
    print(ctrl.output_shape)  # (None, 3)
    shipped = load_controller()
    ```
    """
    path = os.fspath(path) if path is not None else default_controller_path()
    if not os.path.exists(path):
        raise ControllerError(
            f"ARC controller file {path!r} does not exist. Pass the path of a "
            "controller saved with `keras-autolr arc train`, or leave it unset "
            "to use the shipped saved_controllers/arc.keras (set "
            "KERAS_AUTOLR_ARC_CONTROLLER to point at it if the package was "
            "installed without it)."
        )
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # zip, h5 and config errors all mean "unusable file"
        raise ControllerError(
            f"Could not load the ARC controller from {path!r} ({type(e).__name__}: "
            f"{e}). The file is corrupt or not a Keras 3 `.keras` model; retrain "
            "it with `keras-autolr arc train` or use the shipped controller."
        ) from e
    return check_controller(model, f"The controller in {path!r}")


class Predictor:
    """Queries a controller on one window without eager per-call overhead.

    Uses `predict_on_batch`, which compiles the forward pass once
    (about 1 ms per query on CPU instead of ~40 ms eagerly). Calling it on a
    (300, 3) window returns the float64 probabilities (raise, keep, lower).

    Args:
        model: a controller, checked with `check_controller`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.arc.controller import CLASS_NAMES, Predictor, build_controller

    predict = Predictor(build_controller(seed=0))
    probs = predict(np.zeros((300, 3), "float32"))
    print(probs.shape, CLASS_NAMES[int(np.argmax(probs))])
    ```
    """

    def __init__(self, model):
        self.model = check_controller(model)

    def __call__(self, window):
        x = np.asarray(window, dtype=np.float32).reshape((1,) + INPUT_SHAPE)
        return np.asarray(self.model.predict_on_batch(x), dtype=np.float64)[0]
