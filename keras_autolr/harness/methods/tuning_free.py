"""Registers tuning-free optimizers, AlgoPerf-style baselines and LR-finder methods.

| name | what |
|---|---|
| `prodigy` | `keras_autolr.runtime.optimizers.Prodigy` |
| `dadapt_adam` | `keras_autolr.runtime.optimizers.DAdaptAdam` |
| `dog` | `keras_autolr.runtime.optimizers.DoG` |
| `schedule_free_ref` | `ReferenceScheduleFreeAdamW` (optax's schedule-free AdamW) at `initial_lr`, validated at x (`ScheduleFreeEval`) |
| `adamw_warmup_cosine` | `keras.optimizers.AdamW`, AlgoPerf baseline hyperparameters, linear warmup + cosine to 0 |
| `nadamw_warmup_cosine` | `keras.optimizers.Nadam` with the same hyperparameters and schedule |
| `sgd_momentum_cosine` | SGD, momentum 0.9, cosine decay from `initial_lr` to 0 over the run |
| `lr_finder+cosine` | `find_lr` before training, then cosine decay from its suggestion |
| `lr_finder+constant` | `find_lr` before training, then its suggestion as a constant LR |

Prodigy, D-Adaptation and DoG ignore `initial_lr` (they estimate the step
size); their option `learning_rate` is the multiplier (default 1.0) and
`schedule="cosine"` decays it to 0 over the run (default `"constant"`);
`weight_decay` is passed on. They ignore `optimizer`.

AlgoPerf baselines: the hyperparameters are those of the AlgoPerf self-tuning
prize-qualification NAdamW baseline (mlcommons/algorithmic-efficiency,
`reference_algorithms/prize_qualification_baselines/self_tuning/*_nadamw_full_budget.py`,
`HPARAMS`): `beta_1 = 1 - 0.06733926164`, `beta_2 = 0.9955159689799007`,
`weight_decay = 0.08121616522670176` (decoupled, times the LR, as Keras
applies it), `epsilon = 1e-8`, warmup over `warmup_factor = 0.02` of the
run then cosine decay to 0. Their peak LR is 0.0017486387539278373
(`ALGOPERF_NADAMW["learning_rate"]`); here the peak is `initial_lr`, so pass
that value to reproduce it. Keras's `Nadam` uses Dozat's momentum schedule,
not AlgoPerf's NAdamW (which is Adam with a Nesterov-style first moment);
`adamw_warmup_cosine` applies the same hyperparameters to AdamW. Options:
`warmup_factor`, `beta_1`, `beta_2`, `weight_decay`.

LR-finder methods: the setup's `train_data` runs `find_lr` (options
`min_lr`, `max_lr`, `steps`, `pick` = "steepest" (default), "valley" or
"min_over_10") on the shuffled training data with the compiled model, which
it gets from `wrap_model` (returned unchanged), sets the LR to the
suggestion (or keeps `initial_lr` when there is none), and then feeds `fit` a
per-epoch shuffled `keras.utils.PyDataset` of the data. Options of
`lr_finder+cosine`: `alpha` (final LR fraction, default 0).

Example:

```python
import keras
import numpy as np
from keras_autolr.harness import methods

x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
y = x.sum(axis=1, keepdims=True)
setup = methods.make_setup("prodigy", initial_lr=1.0, epochs=2, steps_per_epoch=8)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer=setup.optimizer, loss="mse")
model.fit(x, y, batch_size=32, epochs=2, callbacks=setup.callbacks, verbose=0)
```
"""

import time

import keras
import numpy as np

from keras_autolr.harness import methods
from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.lr_callback import LearningRateLogger
from keras_autolr.runtime.lr_finder import find_lr
from keras_autolr.runtime.optimizers import DAdaptAdam, DoG, Prodigy, ReferenceScheduleFreeAdamW
from keras_autolr.runtime.optimizers.schedule_free_ref import ScheduleFreeEval

__all__ = ["ALGOPERF_NADAMW", "NAMES"]

# AlgoPerf self-tuning prize-qualification NAdamW baseline, HPARAMS (see the module docstring).
ALGOPERF_NADAMW = {
    "learning_rate": 0.0017486387539278373,
    "one_minus_beta1": 0.06733926164,
    "beta2": 0.9955159689799007,
    "weight_decay": 0.08121616522670176,
    "warmup_factor": 0.02,
}

NAMES = ["prodigy", "dadapt_adam", "dog", "schedule_free_ref", "adamw_warmup_cosine",
         "nadamw_warmup_cosine", "sgd_momentum_cosine", "lr_finder+cosine", "lr_finder+constant"]


def _options(ctx, known):
    unknown = sorted(set(ctx.options) - set(known))
    if unknown:
        raise ValueError(f"Unknown options {unknown}; known: {sorted(known)}.")
    return ctx.options


def _total_steps(ctx):
    return max(1, ctx.epochs * ctx.steps_per_epoch)


def _tuning_free(cls):
    def setup(ctx):
        opts = _options(ctx, ("learning_rate", "schedule", "weight_decay"))
        base = float(opts.get("learning_rate", 1.0))
        schedule = opts.get("schedule", "constant")
        if schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}.")
        lr = base if schedule == "constant" else keras.optimizers.schedules.CosineDecay(base, _total_steps(ctx))
        return methods.Setup(cls(learning_rate=lr, weight_decay=opts.get("weight_decay")), [LearningRateLogger()])
    return setup


def _schedule_free_ref(ctx):
    opts = _options(ctx, ("warmup_steps", "weight_decay"))
    opt = ReferenceScheduleFreeAdamW(ctx.initial_lr, warmup_steps=opts.get("warmup_steps"),
                                     weight_decay=opts.get("weight_decay"))
    # Validation at x, the point the authors evaluate (no zoo model has BatchNorm, so no bn_data).
    return methods.Setup(opt, [LearningRateLogger(), ScheduleFreeEval()])


def _warmup_cosine(ctx, peak, warmup_factor, alpha=0.0):
    total = _total_steps(ctx)
    warmup = int(warmup_factor * total)
    return keras.optimizers.schedules.CosineDecay(0.0 if warmup else peak, decay_steps=max(1, total - warmup),
                                                  alpha=alpha, warmup_target=peak if warmup else None,
                                                  warmup_steps=warmup)


def _algoperf(cls):
    def setup(ctx):
        opts = _options(ctx, ("warmup_factor", "beta_1", "beta_2", "weight_decay"))
        hp = ALGOPERF_NADAMW
        sched = _warmup_cosine(ctx, ctx.initial_lr, float(opts.get("warmup_factor", hp["warmup_factor"])))
        opt = cls(learning_rate=sched, beta_1=float(opts.get("beta_1", 1 - hp["one_minus_beta1"])),
                  beta_2=float(opts.get("beta_2", hp["beta2"])), epsilon=1e-8,
                  weight_decay=float(opts.get("weight_decay", hp["weight_decay"])))
        return methods.Setup(opt, [LearningRateLogger()])
    return setup


def _sgd_momentum_cosine(ctx):
    opts = _options(ctx, ("momentum", "warmup_factor", "alpha"))
    sched = _warmup_cosine(ctx, ctx.initial_lr, float(opts.get("warmup_factor", 0.0)),
                           alpha=float(opts.get("alpha", 0.0)))
    return methods.Setup(keras.optimizers.SGD(sched, momentum=float(opts.get("momentum", 0.9))),
                         [LearningRateLogger()])


class _ShuffledBatches(keras.utils.PyDataset):
    """`(x, y)` in batches, reshuffled every epoch from `seed` (what `fit(shuffle=True)` does)."""

    def __init__(self, x, y, batch_size, seed):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed, self.epoch = x, y, int(batch_size), int(seed), 0
        self.order = np.random.default_rng((self.seed, 0)).permutation(len(x))

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.x[idx], self.y[idx]

    def on_epoch_end(self):
        self.epoch += 1
        self.order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x))


def _with_model(prepare):
    """`wrap_model` / `train_data` hooks for a method that works on the model before `fit`.

    `prepare(model, x, y, batch_size, seed)` gets the compiled model the run
    will fit (the runner calls `wrap_model` before compiling and
    `train_data` after) and returns what `fit` trains on.
    """
    box = {}

    def wrap_model(model):
        box["model"] = model
        return model

    def train_data(x, y, batch_size, seed):
        return prepare(box["model"], x, y, batch_size, seed)

    return wrap_model, train_data


def _lr_finder(kind):
    def setup(ctx):
        opts = _options(ctx, ("min_lr", "max_lr", "steps", "pick", "alpha"))
        pick = opts.get("pick", "steepest")
        if pick not in ("steepest", "valley", "min_over_10"):
            raise ValueError(f"pick must be 'steepest', 'valley' or 'min_over_10', got {pick!r}.")
        if kind == "cosine":
            lr = keras.optimizers.schedules.CosineDecay(ctx.initial_lr, _total_steps(ctx),
                                                        alpha=float(opts.get("alpha", 0.0)))
        else:
            lr = ctx.initial_lr
        box = {}

        def prepare(model, x, y, batch_size, seed):
            model.optimizer.build(model.trainable_variables)
            perm = np.random.default_rng(seed).permutation(len(x))
            t0, c0 = time.perf_counter(), time.process_time()
            result = find_lr(model, x[perm], y[perm], batch_size=batch_size,
                             min_lr=float(opts.get("min_lr", 1e-7)), max_lr=float(opts.get("max_lr", 10.0)),
                             steps=int(opts.get("steps", 100)))
            chosen = result.suggestions.get(pick)
            if chosen is not None:
                lr_lib.set_learning_rate(model.optimizer, chosen)  # a schedule is scaled to start there
            box["result"] = result
            # The sweep is this method's cost outside fit (the leaderboard counts it).
            box["setup"].cost.update(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
                                     steps=len(result.raw_losses))
            return _ShuffledBatches(x, y, batch_size, seed)

        wrap_model, train_data = _with_model(prepare)
        s = methods.Setup(methods.make_optimizer(ctx.optimizer, lr), [LearningRateLogger()],
                          wrap_model=wrap_model, train_data=train_data)
        s.finder = box  # the LRFinderResult lands in s.finder["result"]
        box["setup"] = s
        return s
    return setup


methods.register("prodigy", _tuning_free(Prodigy))
methods.register("dadapt_adam", _tuning_free(DAdaptAdam))
methods.register("dog", _tuning_free(DoG))
methods.register("schedule_free_ref", _schedule_free_ref)
methods.register("adamw_warmup_cosine", _algoperf(keras.optimizers.AdamW))
methods.register("nadamw_warmup_cosine", _algoperf(keras.optimizers.Nadam))
methods.register("sgd_momentum_cosine", _sgd_momentum_cosine)
methods.register("lr_finder+cosine", _lr_finder("cosine"))
methods.register("lr_finder+constant", _lr_finder("constant"))
