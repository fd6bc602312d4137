"""Registers MCV in `keras_autolr.harness.methods`: "mcv" and "mcv:<method>".

Options (via `make_setup(..., **options)` or `--option mcv:KEY=VALUE`):
`method` ("method2" default; "discard", "voting", "method1", "method3"), the
chosen method's arguments in `MCVModel`'s string form (`alpha` for method 2,
default 0.5; `initial_candidates` (e.g. the thesis's
`[0.1, 0.01, 0.001, 0.0001]`), `factors`, `min_lr`, `max_lr` for methods 1-3;
`voting_candidates`, `vote_decay`, `discard_on_no_improvement` for voting),
`score_training`, `patience` (adds `MCVStopping`; default none, so a grid runs
its full epochs), `pairing` and `verbose`. The setup builds the strategy
(`keras_autolr.runtime.mcv.strategies.get`) when it is made, so an option the
method does not take fails there, naming the methods that take it.

The setup's `wrap_model` wraps the task's model in `MCVModel`. With
`pairing="half"` (default) MCV splits each batch into a training and a
validation half, so a run with batch size B takes optimizer steps on B/2
examples. With `pairing="paired"` the setup's `train_data` feeds `fit` a
`PairedBatches` (the thesis's pairing): every batch of B trains once per
epoch, validated on B other random training examples.

Example:

```python
import keras, numpy as np
from keras_autolr.harness import methods

setup = methods.make_setup("mcv:method3", initial_lr=0.01, epochs=2, steps_per_epoch=4,
                           optimizer="sgd_momentum", factors=[2.0, 1.0, 0.5])
model = setup.wrap_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
model.compile(optimizer=setup.optimizer,
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x, y = np.random.rand(128, 4), np.random.randint(0, 3, 128)
model.fit(x, y, batch_size=32, epochs=2, callbacks=setup.callbacks, verbose=0)
```
"""

import functools

from keras_autolr.harness import methods
from keras_autolr.runtime.mcv import strategies
from keras_autolr.runtime.mcv.callbacks import MCVScheduler, MCVStopping
from keras_autolr.runtime.mcv.data import PairedBatches
from keras_autolr.runtime.mcv.model import MCVModel

__all__ = []

_MODEL_KEYS = strategies.SUGAR_KEYS + ("score_training",)


def _setup(ctx, method=None):
    opts = dict(ctx.options)
    method = method or opts.pop("method", "method2")
    opts.pop("method", None)
    strategy_kw = {k: opts.pop(k) for k in list(opts) if k in strategies.SUGAR_KEYS}
    score_training = opts.pop("score_training", True)
    patience = opts.pop("patience", None)
    pairing = opts.pop("pairing", "half")
    if pairing not in ("half", "paired"):
        raise ValueError(f"MCV pairing must be 'half' or 'paired', got {pairing!r}.")
    verbose = int(opts.pop("verbose", 0))
    if opts:
        raise ValueError(f"Unknown MCV options {sorted(opts)}; known: "
                         f"{sorted(_MODEL_KEYS + ('method', 'patience', 'verbose', 'pairing'))}.")
    strategy = strategies.get(method, **strategy_kw)
    callbacks = [MCVScheduler(verbose=verbose)]
    if patience is not None:
        callbacks.append(MCVStopping(patience=int(patience)))
    return methods.Setup(
        optimizer=methods.make_optimizer(ctx.optimizer, ctx.initial_lr),
        callbacks=callbacks,
        wrap_model=functools.partial(MCVModel, method=strategy, score_training=score_training),
        train_data=_paired if pairing == "paired" else None,
    )


def _paired(x, y, batch_size, seed):
    return PairedBatches(x, y, batch_size=batch_size, seed=seed)


methods.register("mcv", _setup)
for _m in strategies.METHODS:
    methods.register(f"mcv:{_m}", functools.partial(_setup, method=_m))
