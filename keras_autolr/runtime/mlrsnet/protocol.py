"""Meta-test protocols of `MLRSNetScheduler`: when nets swap and where gamma comes from.

Purpose: keep every choice that differs between the package's default use of
MLR-SNet and the official meta-test in one strategy object, which the
scheduler asks at three moments: before the first batch (the starting
gamma), at the start of each epoch (which net is active) and at a swap (the
new gamma). The LSTM state is carried across batches, epochs and swaps
under both (it lives in optimizer variables; the official code does the same).

* `PackageProtocol(swap_at)` (the default for "image" / "text" nets): swaps
  at `round(f * epochs)` for each fraction f; gamma from the first batch's
  loss (in-graph) and, at a swap, from the last epoch's mean training loss
  (train mode, as Keras logs it), floored at 1e-3 when L * C <= 1.
* `OfficialProtocol(x, y)` (the default for `MLRSNetScheduler("official")`):
  the official meta-test (`meta-test/meta_test.py`): swaps at epochs
  `N // 3` and `N // 3 * 2` (for k swaps, `N // (k + 1) * j`); gamma =
  `abs(sqrt(L) ln(L C) / C^(1/4) / 4)` with L from a full evaluation pass
  (`model.evaluate`, inference mode) over the training set (x, y) before
  training and again at each swap. The official code also uses SGD with
  momentum 0 and weight decay 5e-4: compile with
  `keras.optimizers.SGD(lr, weight_decay=5e-4)` (with momentum 0 Keras's
  decoupled decay is the same update as PyTorch's coupled one), or the
  harness method "mlrsnet_official".

Departures of `OfficialProtocol` from the official code, all documented:

* without `x`, gamma comes from the first batch's loss and, at a swap, from
  the last epoch's mean training loss (train mode), both with `abs()`: pass
  the training data for the official eval-pass gamma;
* a gamma of exactly 0 (L * C = 1) is kept at 1e-12, and the scheduler's
  `min_lr` (default 1e-8) floors the LR: the official LR would be 0 there;
* the compiled loss of `model.evaluate` includes any regularisation terms
  (`model.losses`); the official eval pass is the cross-entropy alone.

Example:

```python
from keras_autolr.runtime.mlrsnet.protocol import OfficialProtocol, PackageProtocol

print(OfficialProtocol().swap_epochs(200, 2))  # (66, 132): the official meta-test's epochs
print(PackageProtocol().swap_epochs(200, 2))   # (67, 133): round(200/3), round(400/3)
```
"""

import math
import numbers

from keras_autolr.runtime.mlrsnet import gamma as gamma_lib

__all__ = ["PackageProtocol", "OfficialProtocol", "protocol_from_config", "OFFICIAL_GAMMA_FLOOR"]

# Keeps an official gamma of exactly 0 (L * C = 1) distinct from "not set yet" (gamma <= 0).
OFFICIAL_GAMMA_FLOOR = 1e-12


def _check_swap_at(swap_at):
    fractions = tuple(swap_at)
    ok = all(isinstance(f, numbers.Real) and math.isfinite(f) and 0 < f < 1 for f in fractions)
    if not ok or any(b <= a for a, b in zip(fractions, fractions[1:])):
        raise ValueError(f"swap_at must be increasing fractions of the run in (0, 1), got {swap_at!r}.")
    return fractions


class _Protocol:
    """What the scheduler asks a protocol; subclasses fill in the choices."""

    name = None

    def check(self, n_nets):
        """Raises ValueError if the protocol cannot swap `n_nets` nets."""

    def stage(self, epoch, epochs, n_nets):
        """Index of the net active at `epoch` of a run of `epochs` (0 without a swap)."""
        if n_nets < 2 or not epochs:
            return 0
        return sum(1 for e in self.swap_epochs(epochs, n_nets - 1) if epoch >= e)

    def rule(self, loss, num_classes):
        """gamma from a batch loss, in-graph (used when gamma is not set before the first batch)."""
        raise NotImplementedError

    def start_gamma(self, model, num_classes):
        """gamma before the first batch, or None to take it in-graph from the first batch's loss."""
        return None

    def swap_gamma(self, model, num_classes, last_loss):
        """gamma at a swap, or None to keep the current one."""
        raise NotImplementedError


class PackageProtocol(_Protocol):
    """The package's default use of MLR-SNet nets (see the module docstring).

    Args:
        swap_at: increasing fractions of the run in (0, 1) at which the
            next net is swapped in (one per swap).

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet.protocol import PackageProtocol

    p = PackageProtocol((0.5,))
    print([p.stage(e, 10, 2) for e in range(10)])  # [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    print(round(p.swap_gamma(None, 10, 0.05), 4))  # 0.001: the rule is negative, floored
    ```
    """

    name = "package"

    def __init__(self, swap_at=(1 / 3, 2 / 3)):
        self.swap_at = _check_swap_at(swap_at)

    def check(self, n_nets):
        """Raises ValueError unless there is one `swap_at` fraction per swap."""
        if n_nets > 1 and len(self.swap_at) != n_nets - 1:
            raise ValueError(f"{n_nets} checkpoints need {n_nets - 1} swap_at fractions, got {self.swap_at}.")

    def swap_epochs(self, epochs, swaps):
        """The epochs at which swaps 1..`swaps` happen: `round(f * epochs)`."""
        return tuple(int(round(f * epochs)) for f in self.swap_at[:swaps])

    def rule(self, loss, num_classes):
        """The gamma rule in-graph, floored at `gamma.GAMMA_FLOOR`."""
        return gamma_lib.gamma_rule(loss, num_classes)

    def swap_gamma(self, model, num_classes, last_loss):
        """The floored rule on the last epoch's mean training loss (None if there is none)."""
        if last_loss is None or not math.isfinite(last_loss) or last_loss <= 0:
            return None
        return gamma_lib.gamma_from_loss(last_loss, num_classes)

    def get_config(self):
        """`{"name": "package", "swap_at": [...]}` (see `protocol_from_config`)."""
        return {"name": self.name, "swap_at": list(self.swap_at)}


class OfficialProtocol(_Protocol):
    """The official meta-test protocol of MLR-SNet (see the module docstring).

    Args:
        x: the training inputs for the eval-pass gamma (None: the documented
            fallback, gamma from training losses).
        y: the training targets (None when `x` is a dataset yielding both).
        batch_size: batch size of the evaluation pass (the official: 128).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.mlrsnet.protocol import OfficialProtocol

    x, y = np.random.default_rng(0).normal(size=(64, 4)).astype("float32"), np.arange(64) % 10
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    protocol = OfficialProtocol(x, y)
    print(protocol.start_gamma(model, 10))  # abs(rule) on the eval-pass training loss, ~0.7
    print([protocol.stage(e, 9, 3) for e in range(9)])  # [0, 0, 0, 1, 1, 1, 2, 2, 2]
    ```
    """

    name = "official"

    def __init__(self, x=None, y=None, batch_size=128):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if x is None and y is not None:
            raise ValueError("OfficialProtocol got y without x: pass the training inputs too.")
        self.x, self.y, self.batch_size = x, y, int(batch_size)

    def swap_epochs(self, epochs, swaps):
        """The official swap epochs: `epochs // (swaps + 1) * j` (N//3, N//3*2 for two)."""
        return tuple(epochs // (swaps + 1) * j for j in range(1, swaps + 1))

    def rule(self, loss, num_classes):
        """`abs()` of the gamma rule in-graph (the fallback without training data)."""
        return gamma_lib.gamma_rule(loss, num_classes, floor=OFFICIAL_GAMMA_FLOOR, absolute=True)

    def _eval_gamma(self, model, num_classes):
        loss = gamma_lib.initial_loss(model, self.x, self.y, self.batch_size)
        # evaluate leaves the compiled metrics holding its pass; the epoch's training metrics start clean.
        model.reset_metrics()
        return gamma_lib.gamma_from_loss(loss, num_classes, floor=OFFICIAL_GAMMA_FLOOR, absolute=True)

    def start_gamma(self, model, num_classes):
        """abs(rule) on an evaluation pass over the training data (None without data)."""
        return None if self.x is None else self._eval_gamma(model, num_classes)

    def swap_gamma(self, model, num_classes, last_loss):
        """abs(rule) on an evaluation pass over the training data (without data: on `last_loss`)."""
        if self.x is not None:
            return self._eval_gamma(model, num_classes)
        if last_loss is None or not math.isfinite(last_loss) or last_loss <= 0:
            return None
        return gamma_lib.gamma_from_loss(last_loss, num_classes, floor=OFFICIAL_GAMMA_FLOOR, absolute=True)

    def get_config(self):
        """`{"name": "official", "batch_size": ...}`; the training data is not part of it."""
        return {"name": self.name, "batch_size": self.batch_size}


def protocol_from_config(config):
    """Rebuilds a protocol from its `get_config()` (a protocol is returned as is).

    Args:
        config: a dict with "name" ("package" or "official"), or a protocol.

    Raises:
        ValueError: an unknown name.

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet.protocol import PackageProtocol, protocol_from_config

    p = protocol_from_config(PackageProtocol((0.25, 0.5)).get_config())
    print(p.swap_at)  # (0.25, 0.5)
    ```
    """
    if isinstance(config, _Protocol):
        return config
    config = dict(config)
    kinds = {"package": PackageProtocol, "official": OfficialProtocol}
    name = config.pop("name", None)
    if name not in kinds:
        raise ValueError(f"Unknown MLR-SNet protocol {name!r}; choose one of {sorted(kinds)}.")
    return kinds[name](**config)
