"""The v2 ARC data-generation zoo: realistic epochs, larger models, one good LR per task.

v1's zoo (`harness.zoo`) trains epochs of 8 batches; these tasks train epochs
of at least 50 batches on larger training sets (residual CNN with
BatchNorm, wider MLPs, a small transformer language model, regression), as
ARC's vectorized generator (`keras_autolr.pipelines.arc.generate_vmap`)
needs. An epoch is `steps_per_epoch` batches drawn without replacement from
a fresh permutation of the training set.

Instead of a range, each task gives the LR that trains it well for adaptive
optimizers (`adaptive_lr`, Adam / AdamW / RMSprop) and for SGD with momentum
(`sgd_lr`); the generator draws initial LRs around it, with a fixed
fraction 10-100x too small (the regime where ARC must raise repeatedly).

Example:

```python
from keras_autolr.harness import zoo_v2

task = zoo_v2.get_task("friedman_mlp")
x, y, xv, yv = task.data()
model = task.build(seed=0)
assert model.output_shape == (None, 1) and task.steps_per_epoch >= 50
print(task.good_lr("adam"), task.good_lr("sgd_momentum"))  # 0.001 0.01
```
"""

import dataclasses
import functools
from typing import Callable

import keras
import numpy as np

from keras_autolr.harness import datasets

__all__ = ["TaskV2", "TASKS", "names", "get_task"]


@dataclasses.dataclass(frozen=True)
class TaskV2:
    """One v2 zoo task: fixed data, a seeded model builder, a loss and its good LRs.

    Args:
        name: the task name (written into generated chains).
        kind: one line describing the task.
        data: `() -> (x_train, y_train, x_val, y_val)` numpy arrays (cached).
        build: `(seed) -> keras.Model`, uncompiled, initializers seeded.
        loss: a loss name for `harness.tasks.make_loss`.
        adaptive_lr: an LR that trains the task well with Adam / AdamW / RMSprop.
        sgd_lr: the same for SGD with momentum.
        batch_size: examples per batch.
        steps_per_epoch: batches per epoch (at most `len(x_train) // batch_size`).

    Example:

    ```python
    import dataclasses
    from keras_autolr.harness import zoo_v2

    small = dataclasses.replace(zoo_v2.get_task("mnist1d_mlp"), steps_per_epoch=4)
    print(small.steps_per_epoch * small.batch_size)  # 256 examples per epoch
    ```
    """

    name: str
    kind: str
    data: Callable
    build: Callable
    loss: str
    adaptive_lr: float
    sgd_lr: float
    batch_size: int = 64
    steps_per_epoch: int = 50

    def good_lr(self, family):
        """The task's good LR for optimizer `family` ("sgd_momentum" or an adaptive one)."""
        return self.sgd_lr if family == "sgd_momentum" else self.adaptive_lr


def _split(x, y, n_train, n_val, seed=0):
    idx = np.random.default_rng(seed).permutation(len(x))
    tr, va = idx[:n_train], idx[n_train : n_train + n_val]
    return x[tr], y[tr], x[va], y[va]


@functools.lru_cache(maxsize=None)
def _mnist1d():
    s = datasets.load("mnist1d")
    x = np.concatenate([s.x_train, s.x_val]).astype("float32").reshape(-1, 40)
    y = np.concatenate([s.y_train, s.y_val]).astype("int32")
    return _split(x, y, 3600, 400)


@functools.lru_cache(maxsize=None)
def _fashion():
    s = datasets.load("fashion_mnist", n_train=13000)
    # 14x14 average-pooled: four times cheaper, still a real image task.
    x = s.x_train.astype("float32").reshape(-1, 14, 2, 14, 2, 1).mean(axis=(2, 4))
    return _split(x, s.y_train.astype("int32"), 12000, 1000)


@functools.lru_cache(maxsize=None)
def _friedman():
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=6000, n_features=10, noise=1.0, random_state=0)
    y = (y - y.mean()) / y.std()
    return _split(x.astype("float32"), y.astype("float32").reshape(-1, 1), 5000, 1000)


@functools.lru_cache(maxsize=None)
def _shakespeare():
    s = datasets.load("tiny_shakespeare")
    x, y = datasets.lm_sequences(s.x_train, 32, max_sequences=4500)
    return _split(x.astype("int32"), y.astype("int32"), 4000, 256)


def _mlp(inputs, widths, outputs):
    def build(seed):
        keras.utils.set_random_seed(seed)
        layers = [keras.Input((inputs,))] + [keras.layers.Dense(w, activation="relu") for w in widths]
        return keras.Sequential(layers + [keras.layers.Dense(outputs)])

    return build


def _resnet(seed, width=8):
    keras.utils.set_random_seed(seed)

    def block(h, filters, stride):
        r = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(h)
        r = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(r))
        r = keras.layers.BatchNormalization()(keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(r))
        if stride != 1 or h.shape[-1] != filters:
            h = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(h)
        return keras.layers.Activation("relu")(keras.layers.Add()([h, r]))

    inp = keras.Input((14, 14, 1))
    h = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inp)
    h = block(block(h, width, 1), 2 * width, 2)
    out = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(h))
    return keras.Model(inp, out)


def _transformer(seed, vocab=65, seq=32, dim=32, heads=2):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((seq,), dtype="int32")
    h = keras.layers.Embedding(vocab, dim)(inp)
    h = h + keras.layers.Embedding(seq, dim)(keras.ops.arange(seq))
    a = keras.layers.MultiHeadAttention(heads, dim // heads)(h, h, use_causal_mask=True)
    h = keras.layers.LayerNormalization()(h + a)
    f = keras.layers.Dense(dim)(keras.layers.Dense(2 * dim, activation="relu")(h))
    h = keras.layers.LayerNormalization()(h + f)
    return keras.Model(inp, keras.layers.Dense(vocab)(h))


_CE = "sparse_categorical_crossentropy_logits"

TASKS = {t.name: t for t in [
    TaskV2("mnist1d_mlp", "1-D signal classification, MLP 256-256", _mnist1d, _mlp(40, (256, 256), 10), _CE,
           1e-3, 3e-2, batch_size=64, steps_per_epoch=56),
    TaskV2("fashion_resnet", "14x14 image classification, residual CNN + BatchNorm", _fashion, _resnet, _CE,
           2e-3, 5e-2, batch_size=64, steps_per_epoch=100),
    TaskV2("friedman_mlp", "tabular regression (Friedman #1), MLP 128-128 (MSE)", _friedman,
           _mlp(10, (128, 128), 1), "mse", 1e-3, 1e-2, batch_size=64, steps_per_epoch=78),
    TaskV2("shakespeare_transformer", "character language model, 1-block transformer", _shakespeare, _transformer,
           _CE, 3e-3, 1e-1, batch_size=32, steps_per_epoch=125),
]}


def names():
    """The v2 zoo's task names, in order (group `g` of chains trains `names()[g % n]`).

    Example:

    ```python
    from keras_autolr.harness import zoo_v2

    assert "fashion_resnet" in zoo_v2.names()
    ```
    """
    return list(TASKS)


def get_task(name):
    """The v2 zoo task `name`.

    Args:
        name: one of `names()`.

    Raises:
        KeyError: unknown name, listing the zoo's.

    Example:

    ```python
    from keras_autolr.harness import zoo_v2

    print(zoo_v2.get_task("shakespeare_transformer").batch_size)  # 32
    ```
    """
    if name not in TASKS:
        raise KeyError(f"Unknown v2 zoo task {name!r}; choose one of {names()}.")
    return TASKS[name]
