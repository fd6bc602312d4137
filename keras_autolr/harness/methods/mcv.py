"""Registers MCV in `keras_autolr.harness.methods`: "mcv" and "mcv:<method>".

Options (via `make_setup(..., **options)` or `--option mcv:KEY=VALUE`):
`method` ("method2" default; "discard", "voting", "method1", "method3"), `alpha`
(method 2, default 0.5), `patience` (adds `MCVStopping`; default none, so a
grid runs its full epochs), `initial_candidates` (e.g. the thesis's
`[0.1, 0.01, 0.001, 0.0001]`), `min_lr`, `max_lr`, `vote_decay`, `pairing`.

The setup's `wrap_model` wraps the task's model in `MCVModel`. With
`pairing="half"` (default) MCV splits each batch into a training and a
validation half, so a run with batch size B takes optimizer steps on B/2
examples. With `pairing="paired"` the setup's `train_data` feeds `fit` a
`PairedBatches` (the thesis's pairing): every batch of B trains once per
epoch, validated on B other random training examples.

Example:

```python
setup = keras_autolr.harness.methods.make_setup("mcv:method3", initial_lr=0.01, epochs=20,
                                        steps_per_epoch=100, optimizer="sgd_momentum")
model = setup.wrap_model(model)
model.compile(optimizer=setup.optimizer, loss="sparse_categorical_crossentropy")
model.fit(x, y, batch_size=256, epochs=20, callbacks=setup.callbacks)
```
"""

import functools

from keras_autolr.harness import methods
from keras_autolr.runtime.mcv.callbacks import MCVScheduler, MCVStopping
from keras_autolr.runtime.mcv.data import PairedBatches
from keras_autolr.runtime.mcv.model import METHODS, MCVModel

_MODEL_KEYS = ("alpha", "factors", "initial_candidates", "voting_candidates", "vote_decay",
               "min_lr", "max_lr", "score_training", "discard_on_no_improvement")


def _setup(ctx, method=None):
    opts = dict(ctx.options)
    method = method or opts.pop("method", "method2")
    opts.pop("method", None)
    if method not in METHODS:
        raise ValueError(f"Unknown MCV method {method!r}; choose one of {METHODS}.")
    model_kw = {k: opts.pop(k) for k in list(opts) if k in _MODEL_KEYS}
    patience = opts.pop("patience", None)
    pairing = opts.pop("pairing", "half")
    if pairing not in ("half", "paired"):
        raise ValueError(f"MCV pairing must be 'half' or 'paired', got {pairing!r}.")
    verbose = int(opts.pop("verbose", 0))
    if opts:
        raise ValueError(f"Unknown MCV options {sorted(opts)}; known: "
                         f"{sorted(_MODEL_KEYS + ('method', 'patience', 'verbose', 'pairing'))}.")
    callbacks = [MCVScheduler(verbose=verbose)]
    if patience is not None:
        callbacks.append(MCVStopping(patience=int(patience)))
    return methods.Setup(
        optimizer=methods.make_optimizer(ctx.optimizer, ctx.initial_lr),
        callbacks=callbacks,
        wrap_model=functools.partial(MCVModel, method=method, **model_kw),
        train_data=_paired if pairing == "paired" else None,
    )


def _paired(x, y, batch_size, seed):
    return PairedBatches(x, y, batch_size=batch_size, seed=seed)


methods.register("mcv", _setup)
for _m in METHODS:
    methods.register(f"mcv:{_m}", functools.partial(_setup, method=_m))
