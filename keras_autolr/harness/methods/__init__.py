"""Registry of learning-rate methods: baselines and keras_autolr's own.

A *method* turns a `MethodContext` (optimizer name, initial LR, run length)
into a `Setup`: the optimizer to compile with, the callbacks to pass to `fit`,
and optionally a function that wraps the model (MCV changes `train_step`).
The demo, the reproduction scripts and the benchmarks all build runs through
this registry, so a new method plugs into all of them by registering once.

Baselines are thin wrappers over Keras built-ins (nothing re-implemented):

| name | paper name | Keras piece |
|---|---|---|
| `constant` | BLR | float learning rate |
| `cosine_restarts` | CCD / SGDR | `CosineDecayRestarts` |
| `exponential` | ED | `ExponentialDecay`, gamma per epoch, staircase |
| `multistep` | MultiStep | `PiecewiseConstantDecay`, x0.1 at milestones |
| `plateau` | - | `ReduceLROnPlateau` |
| `schedule_free` | - | `ScheduleFreeAdamW` (ignores `optimizer`; with the TF-backend fix of `keras_autolr.runtime.optimizers.schedule_free`) |

Non-finite losses: every setup includes `keras.callbacks.TerminateOnNaN`, so a
diverging run stops at the first NaN/inf batch loss instead of training on
garbage; the run record then says `diverged`.

Example:

```python
import keras
import numpy as np
from keras_autolr.harness import methods

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int32")
setup = methods.make_setup("cosine_restarts", initial_lr=1e-3, epochs=2, steps_per_epoch=4)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer=setup.optimizer, loss="sparse_categorical_crossentropy")
model.fit(x, y, batch_size=16, epochs=2, callbacks=setup.callbacks, verbose=0)
```
"""

import dataclasses
import importlib
from typing import Any, Callable, Optional

import keras

from keras_autolr.runtime.lr_callback import LearningRateLogger

__all__ = [
    "MethodContext",
    "Setup",
    "register",
    "names",
    "make_setup",
    "make_optimizer",
    "register_optimizer",
    "UnknownMethodError",
]


class UnknownMethodError(KeyError):
    """A method or optimizer name that is not registered (the message lists the known ones)."""

    def __str__(self):
        return self.args[0]


@dataclasses.dataclass
class MethodContext:
    """What a method needs to know about the run it is set up for.

    Args:
        initial_lr: the initial learning rate.
        epochs: the run's length in epochs.
        steps_per_epoch: optimizer steps per epoch (schedules are sized by it).
        optimizer: an optimizer name (`make_optimizer`).
        options: the method's own options.

    Example:

    ```python
    from keras_autolr.harness.methods import MethodContext

    ctx = MethodContext(1e-3, epochs=10, steps_per_epoch=50)
    assert ctx.optimizer == "adam" and ctx.options == {}
    ```
    """

    initial_lr: float
    epochs: int
    steps_per_epoch: int
    optimizer: str = "adam"
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Setup:
    """What `fit` needs for one method.

    `train_data`, when set, is `train_data(x, y, batch_size, seed)` returning
    what `fit` should train on instead of `(x, y)` with `batch_size` (e.g.
    MCV's `PairedBatches`). `cost` is the work the method spends outside
    `fit` (an LR finder's sweep), filled in by the method as it runs:
    `{"seconds": ..., "steps": ...}`; the runner stores it in the record as
    `setup_cost` and the leaderboard counts it in the time to target.

    Args:
        optimizer: the optimizer to compile with.
        callbacks: the callbacks to pass to `fit`.
        wrap_model: `wrap_model(model) -> model`, or None.
        train_data: see above, or None.
        cost: see above.

    Example:

    ```python
    import keras
    from keras_autolr.harness.methods import Setup

    s = Setup(keras.optimizers.Adam(1e-3), [])
    assert s.wrap_model is None and s.cost == {}
    ```
    """

    optimizer: Any
    callbacks: list
    wrap_model: Optional[Callable] = None
    train_data: Optional[Callable] = None
    cost: dict = dataclasses.field(default_factory=dict)


_OPTIMIZERS = {
    "adam": lambda lr: keras.optimizers.Adam(lr),
    "sgd": lambda lr: keras.optimizers.SGD(lr),
    "sgd_momentum": lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
    "rmsprop": lambda lr: keras.optimizers.RMSprop(lr),
    "adamw": lambda lr: keras.optimizers.AdamW(lr),
    # MLR-SNet's official meta-test optimizer: plain SGD with weight decay 5e-4
    # (decoupled decay at momentum 0 equals the official coupled update).
    "sgd_official": lambda lr: keras.optimizers.SGD(lr, momentum=0.0, weight_decay=5e-4),
}


def register_optimizer(name, factory):
    """Registers `factory(learning_rate) -> keras.optimizers.Optimizer` under `name`.

    Lets a reproduction compare methods on an optimizer the built-in names
    do not cover (e.g. SGD with weight decay).

    Args:
        name: the optimizer's name for `make_optimizer` and `--optimizer`.
        factory: `factory(learning_rate) -> keras.optimizers.Optimizer`.

    Returns:
        `factory`.

    Example:

    ```python
    import keras
    from keras_autolr.harness import methods

    methods.register_optimizer("sgd_wd", lambda lr: keras.optimizers.SGD(lr, weight_decay=5e-4))
    assert methods.make_optimizer("sgd_wd", 0.1).weight_decay == 5e-4
    ```
    """
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}.")
    _OPTIMIZERS[name] = factory
    return factory


def make_optimizer(name, learning_rate):
    """Builds a Keras optimizer by name with a float LR or a schedule.

    Args:
        name: "adam", "sgd", "sgd_momentum", "rmsprop", "adamw" or a name
            added with `register_optimizer`.
        learning_rate: a float or a `LearningRateSchedule`.

    Raises:
        UnknownMethodError: the name is not registered.

    Example:

    ```python
    from keras_autolr.harness import methods

    opt = methods.make_optimizer("sgd_momentum", 0.1)
    assert opt.momentum == 0.9
    ```
    """
    if name not in _OPTIMIZERS:
        raise UnknownMethodError(
            f"Unknown optimizer {name!r}; choose one of {sorted(_OPTIMIZERS)}."
        )
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = float(learning_rate)
    return _OPTIMIZERS[name](learning_rate)


_REGISTRY = {}
# Methods implemented in subpackages register themselves on import; listed
# here so `names()` and `make_setup` can find them without importing
# everything up front.
_LAZY = {
    "arc": "keras_autolr.harness.methods.arc",
    "mlrsnet": "keras_autolr.harness.methods.mlrsnet",
    "mlrsnet_official": "keras_autolr.harness.methods.mlrsnet",
    "hypergradient": "keras_autolr.harness.methods.mlrsnet",
    "mcv": "keras_autolr.harness.methods.mcv",
    "fh_lr_search": "keras_autolr.harness.methods.feature_history",
    **{name: "keras_autolr.harness.methods.tuning_free" for name in (
        "prodigy", "dadapt_adam", "dog", "schedule_free_ref", "adamw_warmup_cosine",
        "nadamw_warmup_cosine", "sgd_momentum_cosine", "lr_finder+cosine", "lr_finder+constant")},
}


def register(name, factory=None):
    """Registers `factory(ctx: MethodContext) -> Setup` under `name`.

    Usable as a decorator: `@register("my_method")`.

    Args:
        name: the method's name in grids, the demo and the CLI.
        factory: `factory(ctx) -> Setup`; omit it to use `register` as a decorator.

    Example:

    ```python
    from keras_autolr.harness import methods

    @methods.register("halved_constant")
    def _halved(ctx):
        return methods.Setup(methods.make_optimizer(ctx.optimizer, ctx.initial_lr / 2), [])

    s = methods.make_setup("halved_constant", initial_lr=1e-2, epochs=1, steps_per_epoch=1)
    assert abs(float(s.optimizer.learning_rate) - 5e-3) < 1e-9
    ```
    """

    def deco(f):
        _REGISTRY[name] = f
        return f

    return deco(factory) if factory is not None else deco


def _load(name):
    if name not in _REGISTRY and name.split(":")[0] in _LAZY:
        try:
            importlib.import_module(_LAZY[name.split(":")[0]])
        except ModuleNotFoundError as e:
            raise UnknownMethodError(f"Method {name!r} is not available: {e}") from e


def names():
    """All method names: baselines, then keras_autolr's own.

    Example:

    ```python
    from keras_autolr.harness import methods

    assert {"constant", "arc", "prodigy"} <= set(methods.names())
    ```
    """
    found = list(_REGISTRY)
    for key, module in _LAZY.items():
        if importlib.util.find_spec(module) is not None and key not in found:
            found.append(key)
    return found


def make_setup(name, *, initial_lr, epochs, steps_per_epoch, optimizer="adam", **options):
    """Builds the `Setup` of method `name` for one run.

    Every setup includes `keras.callbacks.TerminateOnNaN`.

    Args:
        name: a method name (`names()`).
        initial_lr: the initial learning rate (positive).
        epochs: the run's length in epochs.
        steps_per_epoch: optimizer steps per epoch.
        optimizer: an optimizer name.
        **options: the method's own options.

    Raises:
        UnknownMethodError: the name is not registered.

    Example:

    ```python
    from keras_autolr.harness import methods

    s = methods.make_setup("cosine_restarts", initial_lr=1e-3, epochs=7, steps_per_epoch=10)
    assert any(type(c).__name__ == "TerminateOnNaN" for c in s.callbacks)
    ```
    """
    _load(name)
    if name not in _REGISTRY:
        raise UnknownMethodError(
            f"Unknown learning-rate method {name!r}; choose one of {names()}."
        )
    if not (float(initial_lr) > 0):
        raise ValueError(f"initial_lr must be positive, got {initial_lr}.")
    ctx = MethodContext(float(initial_lr), int(epochs), int(steps_per_epoch), optimizer, options)
    setup = _REGISTRY[name](ctx)
    if not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in setup.callbacks):
        setup.callbacks.insert(0, keras.callbacks.TerminateOnNaN())
    return setup


# -- baselines ---------------------------------------------------------------


@register("constant")
def _constant(ctx):
    return Setup(make_optimizer(ctx.optimizer, ctx.initial_lr), [LearningRateLogger()])


@register("cosine_restarts")
def _cosine_restarts(ctx):
    # Defaults follow ARC's CCD: 3 cycles with t_mul=2 fill the run (T0 = E/7).
    t0 = ctx.options.get("t0_epochs") or max(1, round(ctx.epochs / 7))
    sched = keras.optimizers.schedules.CosineDecayRestarts(
        ctx.initial_lr,
        first_decay_steps=int(t0 * ctx.steps_per_epoch),
        t_mul=float(ctx.options.get("t_mul", 2.0)),
        m_mul=float(ctx.options.get("m_mul", 1.0)),
        alpha=float(ctx.options.get("alpha", 0.0)),
    )
    return Setup(make_optimizer(ctx.optimizer, sched), [LearningRateLogger()])


@register("exponential")
def _exponential(ctx):
    sched = keras.optimizers.schedules.ExponentialDecay(
        ctx.initial_lr,
        decay_steps=ctx.steps_per_epoch,
        decay_rate=float(ctx.options.get("gamma", 0.9)),
        staircase=True,
    )
    return Setup(make_optimizer(ctx.optimizer, sched), [LearningRateLogger()])


@register("multistep")
def _multistep(ctx):
    milestones = ctx.options.get("milestones") or [0.5, 0.75]
    # Fractions of the run or absolute epochs.
    epochs = [int(round(m * ctx.epochs)) if m < 1 else int(m) for m in milestones]
    factor = float(ctx.options.get("factor", 0.1))
    sched = keras.optimizers.schedules.PiecewiseConstantDecay(
        # PiecewiseConstantDecay switches *after* a boundary step: the first
        # step of epoch e has iteration e * steps_per_epoch.
        [e * ctx.steps_per_epoch - 1 for e in epochs],
        [ctx.initial_lr * factor**k for k in range(len(epochs) + 1)],
    )
    return Setup(make_optimizer(ctx.optimizer, sched), [LearningRateLogger()])


@register("plateau")
def _plateau(ctx):
    cb = keras.callbacks.ReduceLROnPlateau(
        monitor=ctx.options.get("monitor", "val_loss"),
        factor=float(ctx.options.get("factor", 0.2)),
        patience=int(ctx.options.get("patience", max(2, ctx.epochs // 10))),
        min_lr=float(ctx.options.get("min_lr", 0.0)),
    )
    return Setup(make_optimizer(ctx.optimizer, ctx.initial_lr), [cb])


@register("schedule_free")
def _schedule_free(ctx):
    from keras_autolr.runtime.optimizers.schedule_free import ScheduleFreeAdamW

    opt = ScheduleFreeAdamW(
        learning_rate=ctx.initial_lr,
        warmup_steps=int(ctx.options.get("warmup_steps", 0)),
    )
    return Setup(opt, [LearningRateLogger()])


BASELINES = ["constant", "cosine_restarts", "exponential", "multistep", "plateau", "schedule_free"]
