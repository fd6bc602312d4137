"""The task zoo ARC's training data is generated on (paper section 3.2, Table 1).

Every task runs offline and is deliberately small: an "epoch" is a fixed,
short number of steps (`steps_per_epoch` batches of `batch_size`) so one CPU
core produces hundreds of labelled samples an hour. The zoo is disjoint from
the evaluation tasks (CIFAR-10 and PTB). Larger variants (`large=True`, CLI
`--large`: 4x the steps per epoch at twice the batch size, i.e. 8x the data
per epoch, closer to real epochs) are meant for GPU users.

Each task gives its initial-LR range for adaptive optimizers (Adam, RMSprop);
SGD draws from the same range times `sgd_scale`, since plain SGD needs larger
steps to move at all.

Example:

```python
task = get_task("digits_cnn")
data = task.data()                      # (x_train, y_train, x_val, y_val)
model = task.build(seed=0)
model.compile(optimizer="adam", loss=task.loss)
```
"""

import dataclasses
import functools
from typing import Callable

import keras
import numpy as np

__all__ = ["Task", "TASKS", "names", "get_task"]


@dataclasses.dataclass(frozen=True)
class Task:
    """One data-generation task.

    Attributes:
        name: registry key.
        kind: what it is (shown in the model card).
        data: `() -> (x_train, y_train, x_val, y_val)` numpy arrays (cached).
        build: `(seed) -> keras.Model` (uncompiled).
        loss: Keras loss name.
        lr_range: (min, max) initial LR for Adam / RMSprop, drawn log-uniform.
        sgd_scale: multiplier of `lr_range` for SGD.
        batch_size, steps_per_epoch: size of one epoch.
    """

    name: str
    kind: str
    data: Callable
    build: Callable
    loss: str
    lr_range: tuple
    sgd_scale: float = 100.0
    batch_size: int = 64
    steps_per_epoch: int = 8


VAL_SIZE = 512


def _split(x, y, n_train, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    tr, va = idx[:n_train], idx[n_train : n_train + VAL_SIZE]
    return x[tr], y[tr], x[va], y[va]


@functools.lru_cache(maxsize=None)
def _mnist1d():
    from keras_autolr.harness import datasets

    s = datasets.load("mnist1d")
    x = np.concatenate([s.x_train, s.x_val]).astype("float32")
    y = np.concatenate([s.y_train, s.y_val]).astype("int32")
    return _split(x.reshape(len(x), 40, 1), y, 3000)


@functools.lru_cache(maxsize=None)
def _digits():
    from keras_autolr.harness import datasets

    s = datasets.load("digits")
    x = np.concatenate([s.x_train, s.x_val]).astype("float32").reshape(-1, 8, 8, 1)
    y = np.concatenate([s.y_train, s.y_val]).astype("int32")
    return _split(x, y, 1000)


@functools.lru_cache(maxsize=None)
def _fashion():
    from keras_autolr.harness import datasets

    s = datasets.load("fashion_mnist", n_train=6000)
    x = s.x_train.astype("float32").reshape(-1, 28, 28, 1)
    # 14x14 average-pooled: four times cheaper, still a real image task.
    x = x.reshape(-1, 14, 2, 14, 2, 1).mean(axis=(2, 4))
    return _split(x, s.y_train.astype("int32"), 5000)


@functools.lru_cache(maxsize=None)
def _shakespeare():
    from keras_autolr.harness import datasets

    s = datasets.load("tiny_shakespeare")
    x, y = datasets.lm_sequences(s.x_train, 32, max_sequences=6000)
    return _split(x, y, 5000)


@functools.lru_cache(maxsize=None)
def _diabetes():
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    y = ((y - y.mean()) / y.std()).astype("float32").reshape(-1, 1)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    # 442 rows: 342 train / 100 validation.
    return x[idx[:342]], y[idx[:342]], x[idx[342:]], y[idx[342:]]


@functools.lru_cache(maxsize=None)
def _blobs():
    """Synthetic segmentation: masks of random discs on noisy 16x16 images."""
    rng = np.random.default_rng(0)
    n = 2500
    yy, xx = np.mgrid[:16, :16]
    masks = np.zeros((n, 16, 16, 1), "float32")
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.uniform(2, 14), rng.uniform(2, 14), rng.uniform(1.5, 4)
            masks[i, ..., 0] = np.maximum(masks[i, ..., 0], ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r))
    images = masks * rng.uniform(0.3, 1.0, (n, 1, 1, 1)) + rng.normal(0, 0.35, masks.shape)
    return _split(images.astype("float32"), masks, 1900)


@functools.lru_cache(maxsize=None)
def _noisy_sines():
    """Synthetic regression: predict the frequency of a noisy sine (1-D conv)."""
    rng = np.random.default_rng(1)
    n = 3000
    t = np.linspace(0, 1, 64, dtype="float32")
    f = rng.uniform(1, 8, (n, 1)).astype("float32")
    ph = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * f * t + ph) + rng.normal(0, 0.3, (n, 64))
    y = (f - 4.5) / 2.0
    return _split(x.astype("float32")[..., None], y.astype("float32"), 2400)


def _seed(seed):
    return keras.initializers.GlorotUniform(seed=seed)


def _mnist1d_conv(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((40, 1)),
        keras.layers.Conv1D(16, 5, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.MaxPooling1D(2),
        keras.layers.Conv1D(32, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _mnist1d_gru(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((40, 1)),
        keras.layers.GRU(32, kernel_initializer=k),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _digits_cnn(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _digits_mlp(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="tanh", kernel_initializer=k),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _fashion_cnn(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((14, 14, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _char_gru(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((32,), dtype="int32"),
        keras.layers.Embedding(65, 16, embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)),
        keras.layers.GRU(64, return_sequences=True, kernel_initializer=k),
        keras.layers.Dense(65, kernel_initializer=k),
    ])


def _diabetes_mlp(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((10,)),
        keras.layers.Dense(32, activation="relu", kernel_initializer=k),
        keras.layers.Dense(32, activation="relu", kernel_initializer=k),
        keras.layers.Dense(1, kernel_initializer=k),
    ])


def _segmenter(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.Conv2D(1, 1, kernel_initializer=k),
    ])


def _sine_conv(seed):
    k = _seed(seed)
    return keras.Sequential([
        keras.Input((64, 1)),
        keras.layers.Conv1D(16, 7, strides=2, activation="relu", kernel_initializer=k),
        keras.layers.Conv1D(16, 5, strides=2, activation="relu", kernel_initializer=k),
        keras.layers.Flatten(),
        keras.layers.Dense(1, kernel_initializer=k),
    ])


_CE = "sparse_categorical_crossentropy_logits"

TASKS = {
    t.name: t
    for t in [
        Task("mnist1d_conv", "1-D signal classification, CNN", _mnist1d, _mnist1d_conv, _CE, (1e-4, 3e-2)),
        Task("mnist1d_gru", "sequence classification, GRU", _mnist1d, _mnist1d_gru, _CE, (1e-4, 3e-2)),
        Task("digits_cnn", "8x8 image classification, CNN", _digits, _digits_cnn, _CE, (1e-4, 3e-2)),
        Task("digits_mlp", "8x8 image classification, MLP", _digits, _digits_mlp, _CE, (1e-4, 3e-2)),
        Task("fashion_cnn", "14x14 image classification, CNN + BatchNorm", _fashion, _fashion_cnn, _CE, (1e-4, 3e-2)),
        Task("shakespeare_gru", "character language model, GRU", _shakespeare, _char_gru, _CE, (1e-4, 1e-2), sgd_scale=300.0),
        Task("diabetes_mlp", "tabular regression, MLP (MSE)", _diabetes, _diabetes_mlp, "mse", (1e-4, 1e-2), sgd_scale=10.0, batch_size=32),
        Task("blobs_segmentation", "synthetic segmentation, fully convolutional", _blobs, _segmenter, "binary_crossentropy_logits", (1e-4, 3e-2)),
        Task("sine_regression", "synthetic 1-D regression, CNN (MSE)", _noisy_sines, _sine_conv, "mse", (1e-4, 1e-2), sgd_scale=10.0),
    ]
}


def names():
    return list(TASKS)


def get_task(name, large=False):
    """The zoo task `name`; `large=True` gives its 8x-data-per-epoch variant."""
    if name not in TASKS:
        raise KeyError(f"Unknown ARC zoo task {name!r}; choose one of {names()}.")
    task = TASKS[name]
    if large:
        task = dataclasses.replace(task, batch_size=2 * task.batch_size, steps_per_epoch=4 * task.steps_per_epoch)
    return task


def make_loss(name):
    """Keras loss object for a task's loss name."""
    if name == _CE:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if name == "binary_crossentropy_logits":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.get(name)
