"""The one registry of named training tasks: data, model builder and how to score it.

A `Task` bundles a data set, a model builder (from `harness.models`), a loss
and the metric it is scored by, at three sizes: `smoke` (seconds, for CI),
`small` (minutes on a 2-core CPU) and `full` (the papers' sizes, for a GPU).
The demo, the `keras-autolr run` command, the reproductions, the benchmarks
and ARC's data generation all take their tasks from here.

Tasks live in *suites*, each its own namespace of names:

* `"eval"` (the default): the evaluation tasks the runner trains
  (`runner.run_one`), including the exact tasks of the reproductions
  (`cifar10_resnet9_arc`, `ptb_lstm_arc`, `mlrsnet_*`);
* `"arc_zoo"`: the small tasks ARC's training data is generated on (paper
  section 3.2, Table 1), disjoint from the evaluation tasks. Their names are
  written into the generated HDF5 files, so they stay as they were, and two
  of them (`digits_cnn`, `shakespeare_gru`) share a name with an evaluation
  task of a different size and model: pick one with `suite=`. A zoo task has
  a fixed epoch length (`steps_per_epoch` random batches of `batch_size`),
  an initial-LR range (`lr_range`, times `sgd_scale` for plain SGD), and
  fixed data (its loader ignores size and seed).

Your own task is a few lines (`register_task`); it then runs through the
runner, the CLI's `run` command and every method like the built-in ones.

Example:

```python
from keras_autolr.harness import tasks

task = tasks.get("digits_cnn")
model = task.build_model("smoke", num_classes=10)
assert "digits_cnn" in tasks.names() and "digits_cnn" in tasks.names(suite="arc_zoo")
assert tasks.get("digits_cnn", suite="arc_zoo").steps_per_epoch == 8
```
"""

import dataclasses
import functools
import math
from typing import Callable, Optional

import keras
import numpy as np

from keras_autolr.harness import datasets, models

__all__ = [
    "Task",
    "TaskData",
    "Perplexity",
    "SIZES",
    "SUITES",
    "REGISTRY",
    "register",
    "register_task",
    "zoo_task",
    "get",
    "names",
    "make_loss",
    "steps_per_epoch",
]

SIZES = ("smoke", "small", "full")
SUITES = ("eval", "arc_zoo")
# suite -> name -> Task. `harness.zoo.TASKS` is the live "arc_zoo" entry.
REGISTRY = {suite: {} for suite in SUITES}


@keras.saving.register_keras_serializable(package="keras_autolr")
class Perplexity(keras.metrics.Mean):
    """exp(mean sparse categorical cross-entropy) of a language model.

    Args:
        name: metric name in the logs.
        from_logits: whether predictions are logits (the LM tasks' are).

    Example:

    ```python
    import numpy as np
    from keras_autolr.harness import tasks

    m = tasks.Perplexity()
    m.update_state(np.zeros((2, 3), "int32"), np.zeros((2, 3, 5), "float32"))
    assert abs(float(m.result()) - 5.0) < 1e-4  # uniform over 5 tokens
    ```
    """

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
    """A task's arrays: training, validation (model selection) and test splits.

    Args:
        x_train, y_train: training inputs and targets.
        x_val, y_val: validation split (`fit`'s `validation_data`).
        x_test, y_test: test split (scored once after training).
        num_classes: classes (or vocabulary size); None for regression.

    Example:

    ```python
    import numpy as np
    from keras_autolr.harness import tasks

    x, y = np.zeros((8, 2), "float32"), np.zeros(8, "int32")
    data = tasks.TaskData(x, y, x, y, x, y, num_classes=2)
    assert data.num_classes == 2
    ```
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: Optional[int] = None


def _at(value, size):
    """A per-size field's value: an int holds at every size, a dict maps size -> value."""
    return value[size] if isinstance(value, dict) else value


@dataclasses.dataclass
class Task:
    """One training problem: data, model builder, loss and scored metric.

    Args:
        name: registry name (unique within its `suite`).
        load: `load(size, seed) -> TaskData`.
        build: `build(size, num_classes, seed, **model_options) -> keras.Model`
            (uncompiled; `seed` is the run's seed, for builders that seed their
            initializers; others ignore it).
        loss: a Keras loss (name or object), or one of the zoo's names
            "sparse_categorical_crossentropy_logits" / "binary_crossentropy_logits"
            (see `make_loss`).
        metric: the scored metric's name in `logs`, without `val_` ("loss" works).
        mode: "max" (accuracy) or "min" (loss, perplexity).
        batch_size, epochs: an int (every size) or a dict per size.
        optimizer: default optimizer name (`harness.methods.make_optimizer`).
        initial_lrs: the paper-style poor/good initial LRs.
        metrics_factory: `() -> list` of Keras metrics to compile with
            (default `["accuracy"]` when `metric == "accuracy"`, else none).
        eval_batch_size: batch size of the final test evaluation (default:
            the training batch size).
        model_options: keyword arguments passed on to `build` (see
            `with_model_options`).
        suite: the registry namespace ("eval" or "arc_zoo", or your own).
        description: one line for listings and model cards.
        lr_range: (min, max) initial LR drawn log-uniform by ARC's generator
            for adaptive optimizers; `sgd_scale` multiplies it for SGD.
        steps_per_epoch: fixed epoch length in random batches (ARC's
            generator); None means one pass over the training data (the
            runner always trains full passes).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.harness import tasks

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, 64)
    task = tasks.Task(
        name="doc_xor", load=lambda size, seed: tasks.TaskData(x, y, x, y, x, y, 2),
        build=lambda size, k, seed: keras.Sequential([keras.Input((4,)), keras.layers.Dense(k, activation="softmax")]),
        batch_size={"smoke": 16, "small": 32, "full": 64}, epochs=2)
    assert task.batch_size_at("smoke") == 16 and task.epochs_at("full") == 2
    assert task.build_model("smoke", num_classes=2).output_shape == (None, 2)
    ```
    """

    name: str
    load: Callable
    build: Callable
    loss: object = "sparse_categorical_crossentropy"
    metric: str = "accuracy"
    mode: str = "max"
    batch_size: object = 32
    epochs: object = 10
    optimizer: str = "adam"
    initial_lrs: tuple = (1e-2, 1e-3, 1e-4)
    metrics_factory: Optional[Callable] = None
    eval_batch_size: Optional[int] = None
    model_options: dict = dataclasses.field(default_factory=dict)
    suite: str = "eval"
    description: str = ""
    lr_range: Optional[tuple] = None
    sgd_scale: float = 100.0
    steps_per_epoch: Optional[int] = None

    def __post_init__(self):
        if self.mode not in ("max", "min"):
            raise ValueError(f"Task {self.name!r}: mode must be 'max' or 'min', got {self.mode!r}.")

    def data(self, size="small", seed=0):
        """The task's `TaskData` at `size`; `seed` picks subsets where the loader draws any.

        Args:
            size: "smoke", "small" or "full".
            seed: data seed (the runner uses 0, so every run sees the same data).

        Example:

        ```python
        from keras_autolr.harness import tasks

        data = tasks.get("sine_regression", suite="arc_zoo").data()
        assert data.x_train.shape == (2400, 64, 1) and data.num_classes is None
        ```
        """
        _check_size(size)
        return self.load(size, seed)

    def build_model(self, size="small", num_classes=None, seed=None):
        """A fresh, uncompiled model of this task at `size`.

        Args:
            size: "smoke", "small" or "full".
            num_classes: output classes (from `TaskData.num_classes`).
            seed: the run's seed (zoo builders seed their initializers with it).

        Example:

        ```python
        from keras_autolr.harness import tasks

        model = tasks.get("mnist1d_cnn").build_model("smoke", num_classes=10)
        assert model.output_shape == (None, 10)
        ```
        """
        _check_size(size)
        return self.build(size, num_classes, seed, **self.model_options)

    def metrics(self):
        """The Keras metrics to compile with (fresh objects each call).

        Example:

        ```python
        from keras_autolr.harness import tasks

        assert tasks.get("digits_cnn").metrics() == ["accuracy"]
        assert type(tasks.get("ptb_lstm").metrics()[0]).__name__ == "Perplexity"
        ```
        """
        if self.metrics_factory is not None:
            return self.metrics_factory()
        return ["accuracy"] if self.metric == "accuracy" else []

    def batch_size_at(self, size):
        """The training batch size at `size`.

        Args:
            size: "smoke", "small" or "full".

        Example:

        ```python
        from keras_autolr.harness import tasks

        assert tasks.get("mnist1d_cnn").batch_size_at("smoke") == 64
        ```
        """
        _check_size(size)
        return int(_at(self.batch_size, size))

    def epochs_at(self, size):
        """The number of epochs at `size`.

        Args:
            size: "smoke", "small" or "full".

        Example:

        ```python
        from keras_autolr.harness import tasks

        assert tasks.get("mnist1d_cnn").epochs_at("small") == 20
        ```
        """
        _check_size(size)
        return int(_at(self.epochs, size))

    def with_model_options(self, **options):
        """A copy of this task whose builder gets `options` (e.g. another BatchNorm momentum).

        Args:
            **options: keyword arguments of the task's `build`, merged over
                the current `model_options`.

        Example:

        ```python
        from keras_autolr.harness import tasks

        task = tasks.get("cifar10_resnet9_arc").with_model_options(bn_momentum=0.99)
        bn = [l for l in task.build_model("smoke", 10).layers if "batch_norm" in l.name]
        assert bn[0].momentum == 0.99 and task.name == "cifar10_resnet9_arc"
        ```
        """
        return dataclasses.replace(self, model_options={**self.model_options, **options})


def _check_size(size):
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}.")


# -- registry -----------------------------------------------------------------


def register(task):
    """Adds `task` to the registry under its `suite` and `name` (replacing one of that name).

    Args:
        task: a `Task`.

    Returns:
        The task, so a module can write `TASK = register(Task(...))`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.harness import tasks

    x, y = np.ones((16, 3), "float32"), np.zeros(16, "int32")
    task = tasks.register(tasks.Task(
        "doc_ones", load=lambda size, seed: tasks.TaskData(x, y, x, y, x, y, 2),
        build=lambda size, k, seed: keras.Sequential([keras.Input((3,)), keras.layers.Dense(k)])))
    assert tasks.get("doc_ones") is task
    ```
    """
    if not isinstance(task, Task):
        raise TypeError(f"register() takes a tasks.Task, got {type(task).__name__}; "
                        "use register_task(name, build=..., data=...) for plain functions and arrays.")
    REGISTRY.setdefault(task.suite, {})[task.name] = task
    return task


def _as_task_data(data, num_classes):
    if isinstance(data, TaskData):
        return data
    arrays = tuple(data)
    if len(arrays) == 4:  # no test split: score the validation split
        arrays = arrays + arrays[2:]
    if len(arrays) != 6:
        raise ValueError("data must be a TaskData or (x_train, y_train, x_val, y_val[, x_test, y_test]); "
                         f"got {len(arrays)} arrays.")
    return TaskData(*arrays, num_classes=num_classes)


def register_task(name, *, build, data, loss="sparse_categorical_crossentropy", metric="accuracy",
                  mode="max", batch_size=32, epochs=5, optimizer="adam", initial_lrs=(1e-2, 1e-3, 1e-4),
                  metrics=None, num_classes=None, suite="eval", description=""):
    """Registers your own task from a model function and arrays, in one call.

    Args:
        name: the task's name (`runner.run_one(name, ...)`, `keras-autolr run --task name`).
        build: zero-argument function returning a fresh uncompiled `keras.Model`
            (the runner seeds Keras before calling it).
        data: `(x_train, y_train, x_val, y_val[, x_test, y_test])` arrays, a
            `TaskData`, or a zero-argument function returning either (called
            when a run needs the data). Without a test split the validation
            split is scored.
        loss: Keras loss name or object.
        metric: scored metric in `logs`, without `val_` (e.g. "accuracy", "loss").
        mode: "max" or "min" (how `metric` improves).
        batch_size, epochs: an int, or a dict per size ("smoke", "small", "full").
        optimizer: default optimizer name (e.g. "adam", "sgd").
        initial_lrs: default initial LRs of grids on this task.
        metrics: Keras metrics to compile with (a list, or a function making
            one); default `["accuracy"]` when `metric == "accuracy"`.
        num_classes: recorded in the `TaskData` (informative only).
        suite: registry namespace.
        description: one line for listings.

    Returns:
        The registered `Task`.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.harness import runner, tasks

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    tasks.register_task(
        "my_task",
        build=lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")]),
        data=(x[:64], y[:64], x[64:], y[64:]), batch_size=16, epochs=2)
    record = runner.run_one("my_task", "constant", 1e-2, seed=0, size="smoke")
    assert record["epochs_run"] == 2 and 0.0 <= record["best"] <= 1.0
    ```
    """
    if not callable(build):
        raise TypeError(f"build must be a function returning a keras.Model, got {type(build).__name__}.")
    if metrics is None or callable(metrics):
        factory = metrics
    else:
        factory = lambda: list(metrics)  # noqa: E731

    @functools.lru_cache(maxsize=1)
    def arrays():
        return _as_task_data(data() if callable(data) else data, num_classes)

    return register(Task(
        name=name, load=lambda size, seed: arrays(), build=lambda size, k, seed: build(),
        loss=loss, metric=metric, mode=mode, batch_size=batch_size, epochs=epochs, optimizer=optimizer,
        initial_lrs=tuple(initial_lrs), metrics_factory=factory, suite=suite, description=description,
    ))


def names(suite="eval"):
    """The sorted task names of `suite`.

    Args:
        suite: "eval" (the runner's tasks) or "arc_zoo" (ARC's data generation, in registration order).

    Example:

    ```python
    from keras_autolr.harness import tasks

    assert "mnist1d_cnn" in tasks.names()
    assert len(tasks.names(suite="arc_zoo")) >= 8
    ```
    """
    found = REGISTRY.get(suite, {})
    return list(found) if suite == "arc_zoo" else sorted(found)


def get(name, suite="eval"):
    """The task called `name` in `suite`; raises KeyError listing the known ones.

    Args:
        name: a task name (a `Task` is returned as it is).
        suite: the registry namespace.

    Example:

    ```python
    from keras_autolr.harness import tasks

    assert tasks.get("ptb_lstm").metric == "perplexity"
    ```
    """
    if isinstance(name, Task):
        return name
    found = REGISTRY.get(suite, {})
    if name not in found:
        raise KeyError(f"Unknown task {name!r} in suite {suite!r}; choose one of {names(suite)}.")
    return found[name]


def make_loss(loss):
    """A Keras loss for a task's `loss`: the zoo's "_logits" names become loss objects.

    "sparse_categorical_crossentropy_logits" and "binary_crossentropy_logits"
    are the from-logits losses; other names go through `keras.losses.get`;
    loss objects pass through.

    Args:
        loss: a loss name or object.

    Example:

    ```python
    import keras
    from keras_autolr.harness import tasks

    loss = tasks.make_loss("sparse_categorical_crossentropy_logits")
    assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
    ```
    """
    if loss == "sparse_categorical_crossentropy_logits":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if loss == "binary_crossentropy_logits":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.get(loss) if isinstance(loss, str) else loss


def steps_per_epoch(n, batch_size):
    """Batches in one pass over `n` examples (the last one may be partial).

    Args:
        n: number of training examples.
        batch_size: batch size.

    Example:

    ```python
    from keras_autolr.harness import tasks

    assert tasks.steps_per_epoch(1000, 128) == 8
    ```
    """
    return max(1, math.ceil(n / batch_size))


# -- evaluation tasks -----------------------------------------------------------


def _sizes(smoke, small, full):
    return {"smoke": smoke, "small": small, "full": full}


def _from_split(split):
    return TaskData(split.x_train, split.y_train, split.x_val, split.y_val,
                    split.x_test, split.y_test, split.num_classes)


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


def _lm_metrics():
    return [Perplexity()]


_LOGITS_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
# How the language models are scored: perplexity of logits, lower is better.
_LM_SCORING = dict(loss=_LOGITS_CE, metric="perplexity", mode="min", metrics_factory=_lm_metrics)


def _resnet9(input_shape, widths):
    def build(size, k, seed, bn_momentum=0.99):
        return models.resnet9(input_shape, k, width=widths[size], bn_momentum=bn_momentum)

    return build


def _small_cnn(input_shape, widths):
    return lambda size, k, seed: models.small_cnn(input_shape, k, width=widths[size])


def _small_bn_cnn(input_shape, widths, bn_momentum):
    return lambda size, k, seed: models.small_bn_cnn(input_shape, k, width=widths[size], bn_momentum=bn_momentum)


def _lstm_lm(shapes, **kwargs):
    return lambda size, k, seed: models.lstm_lm(k, *shapes[size], **kwargs)


register(Task(
    name="mnist1d_cnn",
    load=_image_loader("mnist1d", _sizes(600, None, None)),
    build=lambda size, k, seed: models.conv1d_net((40, 1), k, width=_sizes(8, 32, 32)[size]),
    batch_size=_sizes(64, 128, 128), epochs=_sizes(2, 20, 60),
    description="MNIST-1D, the reference conv1d net",
))

register(Task(
    name="digits_cnn",
    load=_image_loader("digits", _sizes(300, None, None)),
    build=_small_cnn((8, 8, 1), _sizes(8, 16, 32)),
    batch_size=64, epochs=_sizes(2, 20, 40),
    description="sklearn digits (8x8), small CNN",
))

register(Task(
    name="fashion_mnist_cnn",
    load=_image_loader("fashion_mnist", _sizes(1000, 10000, None)),
    build=_small_cnn((28, 28, 1), _sizes(8, 16, 32)),
    batch_size=128, epochs=_sizes(2, 15, 30),
    description="Fashion-MNIST, small CNN",
))

# The ARC controller's selection proxy (`keras-autolr arc select`): the shape of
# the CIFAR-10 evaluation (ResNet-9, BatchNorm momentum 0.9, Adam, 15 epochs)
# on another data set, as the reference picked among candidates on SVHN.
register(Task(
    name="fashion_mnist_resnet9",
    load=_image_loader("fashion_mnist", _sizes(512, 3000, None),
                       n_val=_sizes(256, 1000, 5000), n_test=_sizes(256, 1000, None)),
    build=_resnet9((28, 28, 1), _sizes(4, 8, 64)), model_options={"bn_momentum": 0.9},
    batch_size=128, epochs=_sizes(2, 15, 30),
    description="Fashion-MNIST, ResNet-9 (ARC controller selection proxy)",
))

register(Task(
    name="cifar10_resnet9",
    load=_image_loader("cifar10", _sizes(512, 10000, None),
                       n_test=_sizes(512, 2000, None), n_val=_sizes(256, 2000, 5000)),
    build=_resnet9((32, 32, 3), _sizes(4, 12, 64)),
    batch_size=128, epochs=_sizes(2, 15, 30),
    description="CIFAR-10, ResNet-9 (Keras BatchNorm momentum)",
))

register(Task(
    name="ptb_lstm",
    load=_lm_loader("ptb", _sizes(20, 20, 20), _sizes(256, 8000, None)),
    build=_lstm_lm(_sizes((16, 32), (100, 200), (300, 600))),
    batch_size=_sizes(64, 128, 128), epochs=_sizes(2, 12, 98),
    optimizer="sgd", initial_lrs=(1.0, 0.1, 0.01), **_LM_SCORING,
    description="PTB word-level LSTM language model",
))

register(Task(
    name="shakespeare_gru",
    load=_lm_loader("tiny_shakespeare", _sizes(50, 100, 100), _sizes(128, 4000, None)),
    build=_lstm_lm(_sizes((8, 32), (32, 128), (64, 512)), dropout=0.2, cell="gru"),
    batch_size=64, epochs=_sizes(2, 10, 30), **_LM_SCORING,
    description="Tiny Shakespeare character-level GRU language model",
))

# -- the reproductions' tasks (reproductions/*.py) ------------------------------

# ARC Table 3 analog (reproductions/arc_cifar10.py): a 3,000-image subset, width-8
# ResNet-9, BatchNorm momentum 0.9 (cifar10-fast's; `with_model_options` for others).
register(Task(
    name="cifar10_resnet9_arc",
    load=_image_loader("cifar10", _sizes(512, 3000, None),
                       n_test=_sizes(256, 1000, None), n_val=_sizes(256, 1000, 5000)),
    build=_resnet9((32, 32, 3), _sizes(4, 8, 64)), model_options={"bn_momentum": 0.9},
    batch_size=128, epochs=_sizes(2, 15, 30),
    description="ARC Table 3 analog: CIFAR-10 subset, ResNet-9",
))

# ARC Table 5 analog (reproductions/arc_ptb.py).
register(Task(
    name="ptb_lstm_arc",
    load=_lm_loader("ptb", _sizes(20, 20, 20), _sizes(256, 1000, None)),
    build=_lstm_lm(_sizes((16, 32), (32, 64), (300, 600))),
    batch_size=_sizes(64, 128, 128), epochs=_sizes(2, 10, 98),
    optimizer="sgd", initial_lrs=(1.0, 0.1, 0.01), **_LM_SCORING,
    description="ARC Table 5 analog: PTB word LSTM",
))

# MLR-SNet transfer (reproductions/mlrsnet_transfer.py): logits, BatchNorm momentum 0.9.
register(Task(
    name="mlrsnet_fashion",
    load=_image_loader("fashion_mnist", _sizes(512, 4000, None)),
    build=_small_bn_cnn((28, 28, 1), _sizes(4, 16, 32), bn_momentum=0.9),
    loss=_LOGITS_CE, batch_size=128, epochs=_sizes(2, 8, 30),
    description="MLR-SNet transfer: Fashion-MNIST, small BN CNN",
))

register(Task(
    name="mlrsnet_cifar_budget",
    load=_image_loader("cifar10", _sizes(512, 3000, None),
                       n_test=_sizes(256, 2000, None), n_val=_sizes(256, 1000, 5000)),
    build=_small_bn_cnn((32, 32, 3), _sizes(4, 16, 32), bn_momentum=0.9),
    loss=_LOGITS_CE, batch_size=128, epochs=_sizes(2, 10, 100),
    description="MLR-SNet transfer: CIFAR-10 at another budget and width",
))

register(Task(
    name="mlrsnet_shakespeare",
    load=_lm_loader("tiny_shakespeare", _sizes(50, 50, 100), _sizes(64, 1000, None)),
    build=_lstm_lm(_sizes((8, 16), (16, 64), (64, 512)), dropout=0.0, cell="gru"),
    batch_size=_sizes(32, 32, 64), epochs=_sizes(1, 5, 30), optimizer="sgd", **_LM_SCORING,
    description="MLR-SNet transfer: Tiny Shakespeare character GRU",
))

register(Task(
    name="mlrsnet_ptb",
    load=_lm_loader("ptb", _sizes(20, 35, 35), _sizes(64, 1500, None)),
    build=_lstm_lm(_sizes((8, 16), (64, 128), (512, 512)), dropout=0.0),
    batch_size=32, epochs=_sizes(1, 5, 40), optimizer="sgd", **_LM_SCORING,
    description="MLR-SNet transfer: PTB word LSTM",
))


# -- the ARC zoo ------------------------------------------------------------------


def zoo_task(name, kind, data, build, loss, lr_range, sgd_scale=100.0, batch_size=64, steps_per_epoch=8):
    """An ARC-zoo `Task` from a zero-argument data function and a `build(seed)` function.

    The zoo's task shape (also `harness.zoo.Task`): fixed data, an epoch of
    `steps_per_epoch` random batches, an initial-LR range; scored by the
    validation loss. Not registered: pass it to `register` (it has
    `suite="arc_zoo"`).

    Args:
        name: task name (written into generated data).
        kind: one line shown in the model card.
        data: `() -> (x_train, y_train, x_val, y_val)` arrays (cache it).
        build: `(seed) -> keras.Model` (uncompiled, initializers seeded).
        loss: loss name (see `make_loss`).
        lr_range: (min, max) initial LR for Adam / RMSprop, drawn log-uniform.
        sgd_scale: multiplier of `lr_range` for SGD.
        batch_size, steps_per_epoch: size of one epoch.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.harness import tasks

    x = np.ones((32, 2), "float32")
    task = tasks.zoo_task("doc_zoo", "test", lambda: (x, x[:, :1], x, x[:, :1]),
                          lambda seed: keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
                          "mse", (1e-3, 1e-2), batch_size=8, steps_per_epoch=2)
    assert task.suite == "arc_zoo" and task.data().x_test.shape == (32, 2)
    ```
    """
    return Task(
        name=name, load=lambda size, seed: _as_task_data(data(), None),
        build=lambda size, k, seed: build(seed), loss=loss, metric="loss", mode="min",
        batch_size=batch_size, epochs=10, optimizer="adam", suite="arc_zoo", description=kind,
        lr_range=tuple(lr_range), sgd_scale=sgd_scale, steps_per_epoch=steps_per_epoch,
    )


_ZOO_VAL = 512


def _zoo_split(x, y, n_train, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    tr, va = idx[:n_train], idx[n_train : n_train + _ZOO_VAL]
    return x[tr], y[tr], x[va], y[va]


@functools.lru_cache(maxsize=None)
def _zoo_mnist1d():
    s = datasets.load("mnist1d")
    x = np.concatenate([s.x_train, s.x_val]).astype("float32")
    y = np.concatenate([s.y_train, s.y_val]).astype("int32")
    return _zoo_split(x.reshape(len(x), 40, 1), y, 3000)


@functools.lru_cache(maxsize=None)
def _zoo_digits():
    s = datasets.load("digits")
    x = np.concatenate([s.x_train, s.x_val]).astype("float32").reshape(-1, 8, 8, 1)
    y = np.concatenate([s.y_train, s.y_val]).astype("int32")
    return _zoo_split(x, y, 1000)


@functools.lru_cache(maxsize=None)
def _zoo_fashion():
    s = datasets.load("fashion_mnist", n_train=6000)
    x = s.x_train.astype("float32").reshape(-1, 28, 28, 1)
    # 14x14 average-pooled: four times cheaper, still a real image task.
    x = x.reshape(-1, 14, 2, 14, 2, 1).mean(axis=(2, 4))
    return _zoo_split(x, s.y_train.astype("int32"), 5000)


@functools.lru_cache(maxsize=None)
def _zoo_shakespeare():
    s = datasets.load("tiny_shakespeare")
    x, y = datasets.lm_sequences(s.x_train, 32, max_sequences=6000)
    return _zoo_split(x, y, 5000)


@functools.lru_cache(maxsize=None)
def _zoo_diabetes():
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    y = ((y - y.mean()) / y.std()).astype("float32").reshape(-1, 1)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    # 442 rows: 342 train / 100 validation.
    return x[idx[:342]], y[idx[:342]], x[idx[342:]], y[idx[342:]]


@functools.lru_cache(maxsize=None)
def _zoo_blobs():
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
    return _zoo_split(images.astype("float32"), masks, 1900)


@functools.lru_cache(maxsize=None)
def _zoo_noisy_sines():
    """Synthetic regression: predict the frequency of a noisy sine (1-D conv)."""
    rng = np.random.default_rng(1)
    n = 3000
    t = np.linspace(0, 1, 64, dtype="float32")
    f = rng.uniform(1, 8, (n, 1)).astype("float32")
    ph = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * f * t + ph) + rng.normal(0, 0.3, (n, 64))
    y = (f - 4.5) / 2.0
    return _zoo_split(x.astype("float32")[..., None], y.astype("float32"), 2400)


def _zoo_net(name):
    return functools.partial(models.zoo_model, name)


_CE = "sparse_categorical_crossentropy_logits"

for _t in [
    zoo_task("mnist1d_conv", "1-D signal classification, CNN", _zoo_mnist1d, _zoo_net("mnist1d_conv"), _CE, (1e-4, 3e-2)),
    zoo_task("mnist1d_gru", "sequence classification, GRU", _zoo_mnist1d, _zoo_net("mnist1d_gru"), _CE, (1e-4, 3e-2)),
    zoo_task("digits_cnn", "8x8 image classification, CNN", _zoo_digits, _zoo_net("digits_cnn"), _CE, (1e-4, 3e-2)),
    zoo_task("digits_mlp", "8x8 image classification, MLP", _zoo_digits, _zoo_net("digits_mlp"), _CE, (1e-4, 3e-2)),
    zoo_task("fashion_cnn", "14x14 image classification, CNN + BatchNorm", _zoo_fashion, _zoo_net("fashion_cnn"),
             _CE, (1e-4, 3e-2)),
    zoo_task("shakespeare_gru", "character language model, GRU", _zoo_shakespeare, _zoo_net("char_gru"), _CE,
             (1e-4, 1e-2), sgd_scale=300.0),
    zoo_task("diabetes_mlp", "tabular regression, MLP (MSE)", _zoo_diabetes, _zoo_net("diabetes_mlp"), "mse",
             (1e-4, 1e-2), sgd_scale=10.0, batch_size=32),
    zoo_task("blobs_segmentation", "synthetic segmentation, fully convolutional", _zoo_blobs, _zoo_net("segmenter"),
             "binary_crossentropy_logits", (1e-4, 3e-2)),
    zoo_task("sine_regression", "synthetic 1-D regression, CNN (MSE)", _zoo_noisy_sines, _zoo_net("sine_conv"), "mse",
             (1e-4, 1e-2), sgd_scale=10.0),
]:
    register(_t)
del _t


# -- the leaderboard's workloads (harness.leaderboard) ---------------------------
#
# Sized so one run takes about 20-120 s on one core of a 2-core CPU at size
# "small". No held-out test split is needed (the leaderboard scores validation,
# as AlgoPerf does); for the synthetic and tabular sets the test split is a copy
# of the validation split. Four of these share data (not models or budgets) with
# the ARC zoo the shipped ARC controller was trained on: digits, MNIST-1D,
# diabetes, sines and blobs; the leaderboard's README section says so.


def _arrays_loader(arrays, num_classes, smoke_n=None):
    """A loader over a zero-argument `(x, y, xv, yv)` function; smoke keeps `smoke_n` rows."""
    def load(size, seed):
        x, y, xv, yv = arrays()
        if len(xv) == 0 or len(x) == 0:
            raise ValueError(f"{arrays.__name__} gave an empty training or validation split; "
                             "a leaderboard workload needs both.")
        if size == "smoke" and smoke_n:
            x, y, xv, yv = x[:smoke_n], y[:smoke_n], xv[: smoke_n // 2], yv[: smoke_n // 2]
        return TaskData(x, y, xv, yv, xv, yv, num_classes)

    return load


def _autoencoder_arrays():
    s = datasets.load("digits")
    x = s.x_train.reshape(-1, 64).astype("float32")
    xv = np.concatenate([s.x_val, s.x_test]).reshape(-1, 64).astype("float32")
    return x, x, xv, xv


def _pixel_accuracy():
    return [keras.metrics.BinaryAccuracy(threshold=0.0, name="pixel_accuracy")]


_LB = dict(suite="eval")

register(Task(
    name="digits_mlp_lb", load=_arrays_loader(_zoo_digits, 10, 256),
    build=lambda size, k, seed: models.zoo_model("digits_mlp", seed), loss=_LOGITS_CE,
    batch_size=32, epochs=_sizes(2, 60, 120), description="leaderboard: 8x8 digits, MLP", **_LB,
))

register(Task(
    name="mnist1d_gru_lb", load=_arrays_loader(_zoo_mnist1d, 10, 256),
    build=lambda size, k, seed: models.zoo_model("mnist1d_gru", seed), loss=_LOGITS_CE,
    batch_size=64, epochs=_sizes(2, 15, 40), description="leaderboard: MNIST-1D as a sequence, GRU", **_LB,
))

register(Task(
    name="fashion_cnn_bn_lb",
    load=_image_loader("fashion_mnist", _sizes(512, 6000, None), n_val=_sizes(256, 2000, 5000),
                       n_test=_sizes(256, 2000, None)),
    build=_small_bn_cnn((28, 28, 1), _sizes(4, 16, 32), bn_momentum=0.9), loss=_LOGITS_CE,
    batch_size=128, epochs=_sizes(2, 8, 30), description="leaderboard: Fashion-MNIST, CNN + BatchNorm", **_LB,
))

register(Task(
    name="cifar10_resnet9_lb",
    load=_image_loader("cifar10", _sizes(512, 4000, None), n_val=_sizes(256, 1000, 5000),
                       n_test=_sizes(256, 1000, None)),
    build=_resnet9((32, 32, 3), _sizes(4, 8, 64)), model_options={"bn_momentum": 0.9},
    batch_size=128, epochs=_sizes(2, 8, 30), description="leaderboard: CIFAR-10 subset, ResNet-9", **_LB,
))

register(Task(
    name="cifar10_mixer_lb",
    load=_image_loader("cifar10", _sizes(512, 4000, None), n_val=_sizes(256, 1000, 5000),
                       n_test=_sizes(256, 1000, None)),
    build=lambda size, k, seed: models.mlp_mixer((32, 32, 3), k, depth=_sizes(1, 2, 4)[size]),
    batch_size=128, epochs=_sizes(2, 8, 30), description="leaderboard: CIFAR-10 subset, MLP-Mixer", **_LB,
))

register(Task(
    name="ptb_lstm_lb", load=_lm_loader("ptb", _sizes(20, 20, 35), _sizes(128, 2000, None)),
    build=_lstm_lm(_sizes((16, 32), (64, 128), (300, 600)), dropout=0.2),
    batch_size=64, epochs=_sizes(2, 6, 40), optimizer="adam",
    description="leaderboard: PTB words, LSTM LM", **_LM_SCORING, **_LB,
))

register(Task(
    name="shakespeare_gru_lb", load=_lm_loader("tiny_shakespeare", _sizes(32, 64, 100), _sizes(128, 2000, None)),
    build=_lstm_lm(_sizes((8, 32), (32, 128), (64, 512)), dropout=0.1, cell="gru"),
    batch_size=64, epochs=_sizes(2, 6, 30), description="leaderboard: Tiny Shakespeare chars, GRU LM",
    **_LM_SCORING, **_LB,
))

register(Task(
    name="shakespeare_transformer_lb",
    load=_lm_loader("tiny_shakespeare", _sizes(32, 64, 128), _sizes(128, 2000, None)),
    build=lambda size, k, seed: models.char_transformer(
        k, _sizes(32, 64, 128)[size], dim=_sizes(16, 64, 128)[size], depth=_sizes(1, 2, 4)[size]),
    batch_size=64, epochs=_sizes(2, 6, 30), description="leaderboard: Tiny Shakespeare chars, tiny transformer",
    **_LM_SCORING, **_LB,
))

register(Task(
    name="diabetes_mlp_lb", load=_arrays_loader(_zoo_diabetes, None, 200),
    build=lambda size, k, seed: models.zoo_model("diabetes_mlp", seed), loss="mse", metric="loss", mode="min",
    batch_size=32, epochs=_sizes(2, 100, 200), description="leaderboard: tabular regression, MLP (MSE)", **_LB,
))

register(Task(
    name="sine_cnn_lb", load=_arrays_loader(_zoo_noisy_sines, None, 256),
    build=lambda size, k, seed: models.zoo_model("sine_conv", seed), loss="mse", metric="loss", mode="min",
    batch_size=64, epochs=_sizes(2, 50, 100), description="leaderboard: 1-D signal regression, CNN (MSE)", **_LB,
))

register(Task(
    name="blobs_segmentation_lb", load=_arrays_loader(_zoo_blobs, None, 256),
    build=lambda size, k, seed: models.zoo_model("segmenter", seed), loss="binary_crossentropy_logits",
    metric="pixel_accuracy", metrics_factory=_pixel_accuracy, batch_size=64, epochs=_sizes(2, 30, 60),
    description="leaderboard: segmentation, fully convolutional (pixel accuracy)", **_LB,
))

register(Task(
    name="digits_autoencoder_lb", load=_arrays_loader(_autoencoder_arrays, None, 256),
    build=lambda size, k, seed: models.dense_autoencoder(64, code=8), loss="mse", metric="loss", mode="min",
    batch_size=64, epochs=_sizes(2, 60, 120), description="leaderboard: 8x8 digits, dense autoencoder (MSE)", **_LB,
))
