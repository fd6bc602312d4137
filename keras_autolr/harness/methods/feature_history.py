"""Registers `"fh_lr_search"`: the LR chosen on the clock by the feature-history proxy.

Feature histories are a hyperparameter-search tool (thesis: prune trials by an
early estimate of their final accuracy), so on the leaderboard they choose the
LR of one run, on the clock, as an LR range test does: before the run, each
candidate peak LR (`lrs`, default four decades 1e-4 ... 1e-1) trains the
model from the same initial state for the first `probe_epochs` of the run's
own schedule (Adam, cosine decay over the whole budget) while a
`FeatureHistory` records the penultimate embeddings of a fixed part of the
training rows; `ProxyAccuracy` ensembles the probe epochs' linear
classifiers into an estimate of the final accuracy on a held-out 20% of the
training rows (never the validation set the leaderboard scores on). The
model and optimizer are then restored bit for bit and trained for the whole
budget from the candidate with the highest estimate (on a tie, or when
every probe diverged, the smallest candidate). Every probe epoch,
recording pass and estimate is the method's cost (`Setup.cost`, counted in
the leaderboard's time to target; it also keeps `chosen_lr` and each
candidate's estimate, `None` where a probe diverged). Classification only: the proxy is an
accuracy.

Options: `lrs` (the candidate peak LRs), `probe_epochs` (default: 15% of the
budget, at least 1), `holdout` (fraction of training rows the proxy is
scored on, default 0.2), `train_samples` (training rows recorded per epoch,
default at most 2,048), `alpha` (the cosine's final LR fraction, default 0).

Example:

```python
from keras_autolr.harness import methods

setup = methods.make_setup("fh_lr_search", initial_lr=1e-3, epochs=20, steps_per_epoch=10)
print(setup.search["probe_epochs"], setup.search["lrs"])  # 3 [0.0001, 0.001, 0.01, 0.1]
```
"""

import math
import tempfile
import time

import keras
import numpy as np

from keras_autolr.harness import methods
from keras_autolr.harness.methods.tuning_free import _options, _ShuffledBatches, _total_steps, _with_model
from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime import snapshot as snapshot_lib
from keras_autolr.runtime.feature_history import FeatureHistory, ProxyAccuracy
from keras_autolr.runtime.lr_callback import LearningRateLogger

__all__ = []  # registers the method; nothing to import from here

CANDIDATE_LRS = (1e-4, 1e-3, 1e-2, 1e-1)


def _holdout_split(x, y, fraction, seed):
    """Training rows split, seeded, into the probes' fit rows and the proxy's held-out rows."""
    n = len(x)
    n_hold = int(round(n * fraction))
    if not 0 < n_hold < n:
        raise ValueError(f"holdout={fraction} leaves no rows on one side of {n} training rows.")
    order = np.random.default_rng((seed, 8191)).permutation(n)
    fit, hold = order[n_hold:], order[:n_hold]
    return (x[fit], y[fit]), (x[hold], y[hold])


def _probe(model, data, hold, lr, epochs, batch_size, seed, train_samples, folder):
    """Trains `epochs` from the current state at peak LR `lr`; returns the proxy's estimate (-inf: it failed)."""
    lr_lib.set_learning_rate(model.optimizer, lr)  # scales the cosine to start there
    recorder = FeatureHistory(f"{folder}/lr{lr:g}.h5", data, hold, train_samples=train_samples, seed=seed,
                              overwrite=True)
    proxy = ProxyAccuracy(recorder, k=epochs, every=epochs, seed=seed)
    try:
        hist = model.fit(_ShuffledBatches(*data, batch_size, seed), epochs=epochs, verbose=0,
                         callbacks=[keras.callbacks.TerminateOnNaN(), recorder, proxy])
    except FloatingPointError:
        # Divergence in the last probe epoch: Keras still ends that epoch, and the proxy's
        # linear probe on the diverged embeddings fails. That candidate diverged too.
        if recorder.store is not None:
            recorder.store.close()  # on_train_end did not run
        return -math.inf
    losses = hist.history.get("loss", [])
    if len(losses) < epochs or not all(math.isfinite(v) for v in losses) or not proxy.results:
        return -math.inf  # diverged (TerminateOnNaN stopped it): never the choice
    estimate = float(proxy.results[-1].accuracy)
    return estimate if math.isfinite(estimate) else -math.inf


@methods.register("fh_lr_search")
def fh_lr_search(ctx):
    opts = _options(ctx, ("lrs", "probe_epochs", "holdout", "train_samples", "alpha"))
    lrs = [float(v) for v in opts.get("lrs", CANDIDATE_LRS)]
    if not lrs or min(lrs) <= 0:
        raise ValueError(f"lrs must be positive peak LRs, got {lrs}.")
    probe_epochs = int(opts.get("probe_epochs", max(1, round(0.15 * ctx.epochs))))
    if not 1 <= probe_epochs <= ctx.epochs:
        raise ValueError(f"probe_epochs must be in 1..{ctx.epochs} (the budget), got {probe_epochs}.")
    holdout = float(opts.get("holdout", 0.2))
    schedule = keras.optimizers.schedules.CosineDecay(lrs[0], _total_steps(ctx), alpha=float(opts.get("alpha", 0.0)))
    search = {"lrs": lrs, "probe_epochs": probe_epochs, "estimates": {}, "chosen": None}

    def prepare(model, x, y, batch_size, seed):
        labels = np.asarray(y)
        if not np.issubdtype(labels.dtype, np.integer) or labels.ndim > 2 or labels.size != len(labels):
            raise ValueError("fh_lr_search needs integer class labels, one per example: its proxy is an "
                             "accuracy (feature-history linear probes).")
        t0, c0 = time.perf_counter(), time.process_time()
        model.optimizer.build(model.trainable_variables)
        lr_lib.prepare(model.optimizer)  # the LR multiplier exists before the snapshot, so it is restored too
        start = snapshot_lib.snapshot(model)
        data, hold = _holdout_split(x, y, holdout, seed)
        samples = opts.get("train_samples", min(len(data[0]), 2048))
        with tempfile.TemporaryDirectory(prefix="fh_lr_search_") as folder:
            for lr in lrs:
                snapshot_lib.restore(model, start)
                search["estimates"][lr] = _probe(model, data, hold, lr, probe_epochs, batch_size, seed, samples,
                                                 folder)
        # Ties (all probes diverged, or equal estimates) go to the smallest LR, whatever the order of `lrs`.
        chosen = max(lrs, key=lambda v: (search["estimates"][v], -v))
        search["chosen"] = chosen
        snapshot_lib.restore(model, start)
        lr_lib.set_learning_rate(model.optimizer, chosen)
        steps = len(lrs) * probe_epochs * -(-len(data[0]) // int(batch_size))
        # The leaderboard adds seconds / cpu_seconds / steps to the run's clock; the rest is the record's.
        setup.cost.update(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0, steps=steps,
                          chosen_lr=chosen, estimates={f"{v:g}": (e if math.isfinite(e) else None)
                                                       for v, e in search["estimates"].items()})
        return _ShuffledBatches(x, y, batch_size, seed)

    wrap_model, train_data = _with_model(prepare)
    setup = methods.Setup(methods.make_optimizer(ctx.optimizer, schedule), [LearningRateLogger()],
                          wrap_model=wrap_model, train_data=train_data)
    setup.search = search  # the candidates' estimates and the chosen LR, after the run
    return setup
