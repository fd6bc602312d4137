"""Registers "mlrsnet" (and "hypergradient", the paper's HD baseline) in `keras_autolr.harness.methods`.

Purpose: let the demo, reproductions and benchmarks build MLR-SNet runs by
name. With SGD the net sets the LR itself ("absolute" scale), so
`initial_lr` is unused: nothing to tune. With Adam (or any non-SGD optimizer)
the first LR is `initial_lr` and the net shapes the schedule ("relative").

Options (`make_setup("mlrsnet", ..., **options)`): `net` ("image", "text",
"official", a path or an `MLRSNet`), `task`, `gamma`, `num_classes`,
`vocab_size`, `scale`, `checkpoints` + `swap_at`, `record_every`,
`cross_modal`. For "hypergradient": `beta` (default 1e-3 for SGD, 1e-7
otherwise), `record_every`.

"mlrsnet_official" is the official meta-test protocol
(`keras_autolr.runtime.mlrsnet.OfficialProtocol`): the authors' nets by
default (`net="official"`, swapped 1 -> 100 -> 200 at epochs N//3 and
N//3*2), gamma = abs(rule) from an evaluation pass over the training set
before training and at each swap (its `train_data` hook hands the training
set to the protocol and feeds `fit` shuffled batches of it), and the
optimizer "sgd_official" (a built-in name of `make_optimizer`: SGD, momentum 0, weight decay
5e-4) whatever `optimizer` the run names: pass `optimizer="sgd_official"` so
the run's record says so. Its options are those of "mlrsnet" (`net` may be
another net; `swap_at` does not apply).

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

import math

import keras
import numpy as np

from keras_autolr.harness.methods import Setup, make_optimizer, register
from keras_autolr.runtime.mlrsnet.hypergradient import HypergradientDescent
from keras_autolr.runtime.mlrsnet.protocol import OfficialProtocol
from keras_autolr.runtime.mlrsnet.scheduler import MLRSNetScheduler

__all__ = []

_KEYS = ("task", "gamma", "num_classes", "vocab_size", "scale", "checkpoints", "swap_at", "min_lr", "record_every", "cross_modal")

# The official meta-test's optimizer (meta-test/meta_test.py). With momentum 0,
# Keras's decoupled weight decay w -= lr * wd * w is PyTorch's coupled g + wd * w.


@register("mlrsnet")
def mlrsnet_setup(ctx):
    opts = dict(ctx.options)
    kwargs = {k: opts[k] for k in _KEYS if k in opts}
    cb = MLRSNetScheduler(opts.get("net", "image"), **kwargs)
    return Setup(make_optimizer(ctx.optimizer, ctx.initial_lr), [cb])


class _ShuffledBatches(keras.utils.PyDataset):
    """(x, y) in batches, reshuffled every epoch (what `fit(shuffle=True)` does)."""

    def __init__(self, x, y, batch_size, seed):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i):
        idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.x[idx], self.y[idx]

    def on_epoch_end(self):
        self._order = self._rng.permutation(len(self.x))


@register("mlrsnet_official")
def mlrsnet_official_setup(ctx):
    opts = dict(ctx.options)
    kwargs = {k: opts[k] for k in _KEYS if k in opts and k != "swap_at"}
    protocol = OfficialProtocol()
    cb = MLRSNetScheduler(opts.get("net", "official"), protocol=protocol, **kwargs)

    def train_data(x, y, batch_size, seed):
        # The protocol's gamma needs the whole training set (an evaluation pass).
        protocol.x, protocol.y, protocol.batch_size = x, y, int(batch_size)
        return _ShuffledBatches(x, y, batch_size, seed)

    return Setup(make_optimizer("sgd_official", ctx.initial_lr), [cb], train_data=train_data)


@register("hypergradient")
def hypergradient_setup(ctx):
    beta = ctx.options.get("beta", 1e-3 if ctx.optimizer.startswith("sgd") else 1e-7)
    cb = HypergradientDescent(beta=beta, record_every=ctx.options.get("record_every", 0))
    return Setup(make_optimizer(ctx.optimizer, ctx.initial_lr), [cb])
