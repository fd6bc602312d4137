"""Small, named training tasks shared by the demo, reproductions and benchmarks.

A `Task` bundles a data set, a model builder and how to score it, at three
sizes: `smoke` (seconds, for CI), `small` (minutes on a 2-core CPU) and `full`
(the papers' sizes, for a GPU). Models are built fresh on every call.

Example:

```python
task = keras_autolr.harness.tasks.get("mnist1d_cnn")
data = task.data("small")
model = task.build_model("small")
```
"""

import dataclasses
import math
from typing import Callable

import keras
import numpy as np

from keras_autolr.harness import datasets

__all__ = ["Task", "TaskData", "Perplexity", "get", "names", "register"]


@keras.saving.register_keras_serializable(package="keras_autolr")
class Perplexity(keras.metrics.Mean):
    """exp(mean sparse categorical cross-entropy) of a language model."""

    def __init__(self, name="perplexity", from_logits=True, **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        return super().update_state(ce, sample_weight=sample_weight)

    def result(self):
        return keras.ops.exp(super().result())

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@dataclasses.dataclass
class TaskData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int


@dataclasses.dataclass
class Task:
    """One training problem.

    Args:
        name: registry name.
        load: `load(size, seed) -> TaskData`.
        build: `build(size, num_classes) -> keras.Model` (uncompiled).
        loss: Keras loss.
        metric: name of the scored metric in `logs` (without `val_`).
        mode: "max" (accuracy) or "min" (perplexity).
        batch_size, epochs: per size.
        initial_lrs: the paper-style poor/good initial LRs per optimizer.
    """

    name: str
    load: Callable
    build: Callable
    loss: object
    metric: str
    mode: str
    batch_size: dict
    epochs: dict
    optimizer: str = "adam"
    initial_lrs: tuple = (1e-2, 1e-3, 1e-4)
    metrics_factory: Callable = None

    def data(self, size="small", seed=0):
        _check_size(size)
        return self.load(size, seed)

    def build_model(self, size="small", num_classes=10):
        _check_size(size)
        return self.build(size, num_classes)

    def metrics(self):
        return self.metrics_factory() if self.metrics_factory else ["accuracy"]


SIZES = ("smoke", "small", "full")


def _check_size(size):
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}.")


def _from_split(split):
    return TaskData(split.x_train, split.y_train, split.x_val, split.y_val,
                    split.x_test, split.y_test, split.num_classes)


# -- models -------------------------------------------------------------------


def conv1d_net(input_shape, num_classes, width=32):
    """The MNIST-1D reference CNN shape: three Conv1D layers, ~25k params at width 32."""
    inputs = keras.Input(input_shape)
    x = inputs
    for _ in range(3):
        x = keras.layers.Conv1D(width, 5, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="conv1d_net")


def small_cnn(input_shape, num_classes, width=32):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(64, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def resnet9(input_shape, num_classes, width=64, bn_momentum=0.99):
    """cifar10-fast's ResNet-9 (Page, 2018) with a width knob; width=64 is the original.

    cifar10-fast itself uses PyTorch's BatchNorm momentum 0.1, i.e. Keras
    `bn_momentum=0.9`; Keras's default 0.99 lags for several epochs when an
    epoch has few steps (CPU-sized subsets), which misleads LR controllers.
    """

    def conv_bn(x, c):
        x = keras.layers.Conv2D(c, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=bn_momentum)(x)
        return keras.layers.ReLU()(x)

    def residual(x, c):
        y = conv_bn(conv_bn(x, c), c)
        return keras.layers.Add()([x, y])

    inputs = keras.Input(input_shape)
    x = conv_bn(inputs, width)
    x = keras.layers.MaxPooling2D(2)(conv_bn(x, 2 * width))
    x = residual(x, 2 * width)
    x = keras.layers.MaxPooling2D(2)(conv_bn(x, 4 * width))
    x = keras.layers.MaxPooling2D(2)(conv_bn(x, 8 * width))
    x = residual(x, 8 * width)
    x = keras.layers.GlobalMaxPooling2D(name="features")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"resnet9_w{width}")


def lstm_lm(vocab, embed, units, dropout=0.5, cell="lstm"):
    """Word/char language model: Embedding -> LSTM (or GRU) -> dropout -> Dense logits."""
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab, embed)(inputs)
    rnn = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    x = rnn(units, return_sequences=True)(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(vocab, name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"{cell}_lm")


# -- registry -----------------------------------------------------------------

_TASKS = {}


def register(task):
    _TASKS[task.name] = task
    return task


def names():
    return sorted(_TASKS)


def get(name):
    """The task called `name`; raises KeyError listing the known ones."""
    if name not in _TASKS:
        raise KeyError(f"Unknown task {name!r}; choose one of {names()}.")
    return _TASKS[name]


def _image_loader(dataset, n_train, **extra):
    def load(size, seed):
        return _from_split(datasets.load(dataset, n_train=n_train[size], seed=seed,
                                         **{k: v[size] for k, v in extra.items()}))

    return load


def _lm_loader(dataset, seq_len, n_seq):
    def load(size, seed):
        s = datasets.load(dataset)
        x, y = datasets.lm_sequences(s.x_train, seq_len[size], n_seq[size])
        # Shuffle sequences so subsets cover the corpus evenly, reproducibly.
        idx = np.random.default_rng(seed).permutation(len(x))
        x, y = x[idx], y[idx]
        nv = None if n_seq[size] is None else max(8, n_seq[size] // 8)
        xv, yv = datasets.lm_sequences(s.x_val, seq_len[size], nv)
        xt, yt = datasets.lm_sequences(s.x_test, seq_len[size], nv)
        return TaskData(x, y, xv, yv, xt, yt, s.num_classes)

    return load


register(Task(
    name="mnist1d_cnn",
    load=_image_loader("mnist1d", {"smoke": 600, "small": None, "full": None}),
    build=lambda size, k: conv1d_net((40, 1), k, width={"smoke": 8, "small": 32, "full": 32}[size]),
    loss="sparse_categorical_crossentropy", metric="accuracy", mode="max",
    batch_size={"smoke": 64, "small": 128, "full": 128},
    epochs={"smoke": 2, "small": 20, "full": 60},
))

register(Task(
    name="digits_cnn",
    load=_image_loader("digits", {"smoke": 300, "small": None, "full": None}),
    build=lambda size, k: small_cnn((8, 8, 1), k, width={"smoke": 8, "small": 16, "full": 32}[size]),
    loss="sparse_categorical_crossentropy", metric="accuracy", mode="max",
    batch_size={"smoke": 64, "small": 64, "full": 64},
    epochs={"smoke": 2, "small": 20, "full": 40},
))

register(Task(
    name="fashion_mnist_cnn",
    load=_image_loader("fashion_mnist", {"smoke": 1000, "small": 10000, "full": None}),
    build=lambda size, k: small_cnn((28, 28, 1), k, width={"smoke": 8, "small": 16, "full": 32}[size]),
    loss="sparse_categorical_crossentropy", metric="accuracy", mode="max",
    batch_size={"smoke": 128, "small": 128, "full": 128},
    epochs={"smoke": 2, "small": 15, "full": 30},
))

# The ARC controller's selection proxy (`keras-autolr arc select`): the shape of
# the CIFAR-10 evaluation (ResNet-9, BatchNorm momentum 0.9, Adam, 15 epochs)
# on another data set, as the reference picked among candidates on SVHN.
register(Task(
    name="fashion_mnist_resnet9",
    load=_image_loader("fashion_mnist", {"smoke": 512, "small": 3000, "full": None},
                       n_val={"smoke": 256, "small": 1000, "full": 5000},
                       n_test={"smoke": 256, "small": 1000, "full": None}),
    build=lambda size, k: resnet9((28, 28, 1), k, width={"smoke": 4, "small": 8, "full": 64}[size],
                                  bn_momentum=0.9),
    loss="sparse_categorical_crossentropy", metric="accuracy", mode="max",
    batch_size={"smoke": 128, "small": 128, "full": 128},
    epochs={"smoke": 2, "small": 15, "full": 30},
))

register(Task(
    name="cifar10_resnet9",
    load=_image_loader("cifar10", {"smoke": 512, "small": 10000, "full": None},
                       n_test={"smoke": 512, "small": 2000, "full": None},
                       n_val={"smoke": 256, "small": 2000, "full": 5000}),
    build=lambda size, k: resnet9((32, 32, 3), k, width={"smoke": 4, "small": 12, "full": 64}[size]),
    loss="sparse_categorical_crossentropy", metric="accuracy", mode="max",
    batch_size={"smoke": 128, "small": 128, "full": 128},
    epochs={"smoke": 2, "small": 15, "full": 30},
))


def _lm_metrics():
    return [Perplexity()]


register(Task(
    name="ptb_lstm",
    load=_lm_loader("ptb", {"smoke": 20, "small": 20, "full": 20}, {"smoke": 256, "small": 8000, "full": None}),
    build=lambda size, k: lstm_lm(k, *{"smoke": (16, 32), "small": (100, 200), "full": (300, 600)}[size]),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metric="perplexity", mode="min",
    batch_size={"smoke": 64, "small": 128, "full": 128},
    epochs={"smoke": 2, "small": 12, "full": 98},
    optimizer="sgd", initial_lrs=(1.0, 0.1, 0.01), metrics_factory=_lm_metrics,
))

register(Task(
    name="shakespeare_gru",
    load=_lm_loader("tiny_shakespeare", {"smoke": 50, "small": 100, "full": 100}, {"smoke": 128, "small": 4000, "full": None}),
    build=lambda size, k: lstm_lm(k, *{"smoke": (8, 32), "small": (32, 128), "full": (64, 512)}[size], dropout=0.2, cell="gru"),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metric="perplexity", mode="min",
    batch_size={"smoke": 64, "small": 64, "full": 64},
    epochs={"smoke": 2, "small": 10, "full": 30},
    initial_lrs=(1e-2, 1e-3, 1e-4), metrics_factory=_lm_metrics,
))


def steps_per_epoch(n, batch_size):
    return max(1, math.ceil(n / batch_size))
