"""Registers "mlrsnet" (and "hypergradient", the paper's HD baseline) in `keras_autolr.harness.methods`.

Purpose: let the demo, reproductions and benchmarks build MLR-SNet runs by
name. With SGD the net sets the LR itself ("absolute" scale), so
`initial_lr` is unused: nothing to tune. With Adam (or any non-SGD optimizer)
the first LR is `initial_lr` and the net shapes the schedule ("relative").

Options (`make_setup("mlrsnet", ..., **options)`): `net` ("image", "text", a
path or an `MLRSNet`), `task`, `gamma`, `num_classes`, `vocab_size`, `scale`,
`checkpoints` + `swap_at`, `record_every`, `cross_modal`. For "hypergradient": `beta`
(default 1e-3 for SGD, 1e-7 otherwise), `record_every`.

Example:

```python
import keras, numpy as np
from keras_autolr.harness import methods

setup = methods.make_setup("mlrsnet", initial_lr=0.1, epochs=2, steps_per_epoch=4, optimizer="sgd")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer=setup.optimizer, loss="sparse_categorical_crossentropy")
x, y = np.random.rand(128, 4), np.random.randint(0, 3, 128)
model.fit(x, y, batch_size=32, epochs=2, callbacks=setup.callbacks, verbose=0)
```

The module registers its setups when imported and exports nothing.
"""

from keras_autolr.harness.methods import Setup, make_optimizer, register
from keras_autolr.runtime.mlrsnet.hypergradient import HypergradientDescent
from keras_autolr.runtime.mlrsnet.scheduler import MLRSNetScheduler

__all__ = []

_KEYS = ("task", "gamma", "num_classes", "vocab_size", "scale", "checkpoints", "swap_at", "min_lr", "record_every", "cross_modal")


@register("mlrsnet")
def mlrsnet_setup(ctx):
    opts = dict(ctx.options)
    kwargs = {k: opts[k] for k in _KEYS if k in opts}
    cb = MLRSNetScheduler(opts.get("net", "image"), **kwargs)
    return Setup(make_optimizer(ctx.optimizer, ctx.initial_lr), [cb])


@register("hypergradient")
def hypergradient_setup(ctx):
    beta = ctx.options.get("beta", 1e-3 if ctx.optimizer.startswith("sgd") else 1e-7)
    cb = HypergradientDescent(beta=beta, record_every=ctx.options.get("record_every", 0))
    return Setup(make_optimizer(ctx.optimizer, ctx.initial_lr), [cb])
