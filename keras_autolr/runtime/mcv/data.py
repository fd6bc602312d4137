"""`PairedBatches`: the thesis's batch pairing for MCV, as a Keras `PyDataset`.

By default `MCVModel` splits each incoming batch into a training half and a
validation half, so with `batch_size=2m` every example is used for either
training or validation in a given epoch, and an epoch has N / 2m steps.

The thesis's algorithms (Alg. 3-8) instead train on *every* mini-batch of m
examples once per epoch and validate each step on "another random mini-batch"
of m examples from the training set. `PairedBatches` yields exactly that:
item i is the epoch's i-th shuffled mini-batch followed by m examples drawn at
random (without replacement) from the rest of the training set, concatenated,
so `MCVModel`'s split hands the train step (batch_1, batch_2). An epoch then
has ceil(N / m) steps, each validated on a fresh random batch; validation
examples are trained on in their own steps of the same epoch.

Order and partners are a pure function of `(seed, epoch, index)`, so a rerun
with the same seed sees the same batches, whatever the number of workers.

Example:

```python
import keras, numpy as np
from keras_autolr.runtime.mcv import MCVModel, PairedBatches

x, y = np.random.rand(512, 8).astype("float32"), np.random.randint(0, 3, 512)
inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
model = MCVModel(inner, method="method3")
model.compile(keras.optimizers.SGD(0.01),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(PairedBatches(x, y, batch_size=64, seed=0), epochs=3, verbose=0)
```

Args:
    x: a numpy array, or a list/tuple/dict of arrays with the same first dimension.
    y: labels (same structure rules), or None.
    sample_weight: optional per-example weights.
    batch_size: m, the size of the training batch and of its validation batch.
    shuffle: reshuffle the training order every epoch (the thesis does).
    seed: seeds the order and the validation draws.
    **kwargs: `keras.utils.PyDataset` options (`workers`, `use_multiprocessing`,
        `max_queue_size`).
"""

import math

import keras
import numpy as np

from keras_autolr.runtime.mcv.model import MCVError

__all__ = ["PairedBatches"]


def _length(tree_, what):
    leaves = [np.asarray(t) for t in keras.tree.flatten(tree_) if t is not None]
    lengths = {len(t) for t in leaves}
    if len(lengths) > 1:
        raise MCVError(f"PairedBatches: the arrays in {what} have different lengths {sorted(lengths)}.")
    return lengths.pop() if lengths else None


def _take(tree_, idx):
    return keras.tree.map_structure(lambda t: None if t is None else np.asarray(t)[idx], tree_)


class PairedBatches(keras.utils.PyDataset):
    __doc__ = __doc__

    def __init__(self, x, y=None, sample_weight=None, batch_size=32, shuffle=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise MCVError(f"batch_size must be a positive integer, got {batch_size!r}.")
        n = _length(x, "x")
        if n is None:
            raise MCVError("PairedBatches needs input data x.")
        for other, what in ((y, "y"), (sample_weight, "sample_weight")):
            m = _length(other, what) if other is not None else None
            if m is not None and m != n:
                raise MCVError(f"PairedBatches: x has {n} examples but {what} has {m}.")
        if n < 2 * batch_size:
            raise MCVError(
                f"PairedBatches needs at least 2 x batch_size examples ({2 * batch_size}) so each "
                f"training batch has a disjoint validation batch; got {n}. Use a smaller batch_size."
            )
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.n, self.batch_size, self.shuffle = int(n), int(batch_size), bool(shuffle)
        self.seed = 0 if seed is None else int(seed)
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self):
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng((self.seed, self.epoch)).permutation(self.n)

    def __len__(self):
        return math.ceil(self.n / self.batch_size)

    def indices(self, i):
        """(training indices, validation indices) of item `i` in this epoch."""
        if not 0 <= i < len(self):
            raise IndexError(f"PairedBatches has {len(self)} batches, asked for {i}.")
        lo, hi = i * self.batch_size, min((i + 1) * self.batch_size, self.n)
        k = hi - lo
        rng = np.random.default_rng((self.seed, self.epoch, i, 1))
        # k positions of the epoch order outside [lo, hi): draw in the
        # complement's numbering, then skip over the training block.
        pos = rng.choice(self.n - k, size=k, replace=False)
        pos = np.where(pos < lo, pos, pos + k)
        return self._order[lo:hi], self._order[pos]

    def __getitem__(self, i):
        train, val = self.indices(i)
        idx = np.concatenate([train, val])
        x = _take(self.x, idx)
        if self.y is None:
            return (x,)
        y = _take(self.y, idx)
        if self.sample_weight is None:
            return x, y
        return x, y, _take(self.sample_weight, idx)

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._make_order()
