"""`MCVModel`: a Keras model whose `train_step` does micro cross-validation.

Each incoming batch is split in two halves taken from the training data (the
batches are reshuffled every epoch by `fit(shuffle=True)`): the first half
(*batch 1*) gives the gradient, the second (*batch 2*) validates candidate
updates. One gradient serves every candidate LR (thesis Table 4.1: one backward).

What a step tries and how it decides is the model's strategy
(`keras_autolr.runtime.mcv.strategies`: `Discard`, `Voting`, `Method1`,
`Method2`, `Method3`); the TF and JAX train steps run it. Trial updates are
exact: all weights, optimizer slots (momentum, Adam moments, iteration count,
LR) and non-trainable state (BatchNorm statistics, dropout seeds) are restored
bit for bit. On TensorFlow a trial is apply-then-restore from `tf.identity`
snapshots inside the compiled step; on JAX it is pure
(`optimizer.stateless_apply` + `stateless_call`) and the candidates run in one
`jax.vmap`. Either way all candidates run inside one compiled step: no host
round trips.

Example:

```python
import keras, numpy as np
from keras_autolr.runtime.mcv import MCVModel, Method3

inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
model = MCVModel(inner, method=Method3(factors=[2.0, 1.0, 0.5]))
model.compile(keras.optimizers.SGD(0.01),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(np.random.rand(128, 8), np.random.randint(0, 3, 128), batch_size=32,
          epochs=2, verbose=0)
```
"""

import keras
import numpy as np
from keras import ops

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime.mcv import candidates as cand_lib
from keras_autolr.runtime.mcv import strategies
from keras_autolr.runtime.mcv.callbacks import MCVScheduler, MCVStopping
from keras_autolr.runtime.mcv.strategies import METHODS, MCVError  # noqa: F401  (re-exported)

__all__ = ["MCVModel"]


def _split(tree_, n_first, second_from):
    first = keras.tree.map_structure(lambda t: None if t is None else t[:n_first], tree_)
    second = keras.tree.map_structure(lambda t: None if t is None else t[second_from:], tree_)
    return first, second


def _batch_size(x):
    leaves = [t for t in keras.tree.flatten(x) if t is not None]
    if not leaves:
        raise MCVError("MCV needs input data in each batch.")
    return leaves[0].shape[0], leaves[0]


@keras.saving.register_keras_serializable(package="keras_autolr")
class MCVModel(keras.Model):
    """Wraps a Keras model so that every training step does micro cross-validation.

    Each batch is split into a training half (the gradient) and a validation
    half that scores candidate updates; the strategy `method` decides what is
    tried and which LR or update is kept (thesis chapter 3):

    * `Discard()` (Alg. 3): apply the step at the current LR; undo it if the
      validation-batch loss went up.
    * `Voting(candidates, decay)` (Alg. 4-6): each step votes for the candidate
      LR (from a fixed list) that lowers the validation-batch loss most; an EMA
      of votes picks the LR actually applied. A step where no candidate lowers
      the loss is discarded.
    * `Method1()`, `Method2(alpha)`, `Method3()` (Alg. 7-8): the LR is
      constant during an epoch; every step records the validation loss (method
      2: also the training loss, weighted by `alpha`) of each candidate
      `[5, 2, 4/3, 1, 3/4, 1/2, 1/5] x lr`; at the end of the epoch
      `MCVScheduler` picks the new LR from the averages.

    `fit` adds an `MCVScheduler` (the epoch decisions), `TerminateOnNaN` and an
    `MCVStopping` without patience when they are missing. Keep the wrapped
    model (`model.model`) for inference and saving the trained network; the
    `MCVModel` itself also saves and loads (`keras.models.load_model`).

    Args:
        model: any Keras model (functional, sequential, subclassed).
        method: a strategy (`Discard()`, `Voting(...)`, `Method1(...)`,
            `Method2(...)`, `Method3(...)` from
            `keras_autolr.runtime.mcv.strategies`), or its name, one of
            "discard", "voting", "method1", "method2", "method3".
        score_training: run the scoring forwards in training mode (BatchNorm
            uses batch statistics). Scoring in inference mode drove the LR of a
            BN model to 1e-29 in one probe; keep True unless you know better.
        **kwargs: with a method name, that method's arguments: `alpha`
            (method2); `factors`, `initial_candidates`, `min_lr`, `max_lr`
            (methods 1-3); `voting_candidates`, `vote_decay`,
            `discard_on_no_improvement` (voting). A keyword the chosen method
            does not take raises `TypeError`. Other keywords go to
            `keras.Model` (`name`, ...).

    Raises:
        MCVError: an unknown method name, a bad argument value, or a `model`
            that is not a `keras.Model`.
        TypeError: a method keyword that does not apply to the chosen method.

    Example:

    ```python
    import keras, numpy as np
    from keras_autolr.runtime.mcv import MCVModel, Method2

    inner = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3)])
    model = MCVModel(inner, method=Method2(alpha=0.5))   # or method="method2", alpha=0.5
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.rand(256, 8), np.random.randint(0, 3, 256)
    hist = model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    hist.history["learning_rate"], hist.history["mcv_val_batch_loss"]
    inner.save("trained.keras")   # the wrapped model is the one to keep
    ```
    """

    def __init__(self, model, method="method2", score_training=True, **kwargs):
        sugar = {k: kwargs.pop(k) for k in list(kwargs) if k in strategies.SUGAR_KEYS}
        super().__init__(**kwargs)
        if not isinstance(model, keras.Model):
            raise MCVError(f"MCVModel wraps a keras.Model, got {type(model).__name__}.")
        self.strategy = strategies.get(method, **sugar)
        self.model = model
        self.score_training = bool(score_training)
        k = self.strategy.num_slots
        # MCV's own state: updated in the compiled step, never rolled back.
        mk = lambda name, shape, value: self.add_weight(  # noqa: E731
            shape=shape, initializer=keras.initializers.Constant(value),
            trainable=False, dtype="float32", name=name,
            aggregation="only_first_replica",
        )
        self._cand_lrs = mk("mcv_candidate_lrs", (k,), 0.0)
        self._cand_mask = mk("mcv_candidate_mask", (k,), 0.0)
        self._sum_val = mk("mcv_sum_val_loss", (k,), 0.0)
        self._sum_train = mk("mcv_sum_train_loss", (k,), 0.0)
        self._history = mk("mcv_vote_history", (k,), 1.0 / k)
        self._sum_current = mk("mcv_sum_current_loss", (), 0.0)
        self._n_steps = mk("mcv_steps", (), 0.0)
        self._n_discards = mk("mcv_discards", (), 0.0)
        self._n_forward = mk("mcv_forward", (), 0.0)
        self._n_backward = mk("mcv_backward", (), 0.0)
        self._n_opt_steps = mk("mcv_opt_steps", (), 0.0)
        self._mcv = {
            "cand_lrs": self._cand_lrs, "cand_mask": self._cand_mask,
            "sum_val": self._sum_val, "sum_train": self._sum_train,
            "history": self._history, "sum_current": self._sum_current,
            "n_steps": self._n_steps, "n_discards": self._n_discards,
            "n_forward": self._n_forward, "n_backward": self._n_backward,
            "n_opt_steps": self._n_opt_steps,
        }
        self._candidates_ready = False
        if model.built:
            # Built now, as a built Functional model is: callbacks that need a
            # built model before the first step (BackupAndRestore on TF, which
            # otherwise builds during tracing) work without a manual build.
            self.build()

    @property
    def method(self):
        """The strategy's name ("discard", "voting", "method1", "method2", "method3")."""
        return self.strategy.name

    @property
    def num_slots(self):
        """Candidate slots of the compiled step (the strategy's)."""
        return self.strategy.num_slots

    # -- Keras plumbing -------------------------------------------------------

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def build(self, input_shape=None):
        # The MCV state variables exist since __init__; only the inner model may need building.
        if not self.model.built and input_shape is not None:
            self.model.build(input_shape)
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(
            model=keras.saving.serialize_keras_object(self.model),
            method=keras.saving.serialize_keras_object(self.strategy),
            score_training=self.score_training,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        method = config.get("method", "method2")
        if isinstance(method, str):
            # A config from before strategies held every method's keywords.
            legacy = {k: config.pop(k) for k in strategies.SUGAR_KEYS if k in config}
            config.update(strategies.applicable(method, legacy))
        else:
            config["method"] = keras.saving.deserialize_keras_object(method)
        return cls(**config)

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit` with MCV's callbacks added when missing.

        Adds an `MCVScheduler` (the epoch decisions), `TerminateOnNaN` and an
        `MCVStopping` without patience, so a non-finite loss always stops
        training and restores the best epoch's weights (pass your own
        `MCVStopping(patience=...)` for the thesis's patience rule). A
        `keras.callbacks.BackupAndRestore` is moved behind every MCV callback,
        so that its backup holds the epoch's decision and stopping state.
        """
        callbacks = list(callbacks or [])
        if not any(isinstance(c, MCVScheduler) for c in callbacks):
            callbacks.insert(0, MCVScheduler())
        if not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks):
            callbacks.append(keras.callbacks.TerminateOnNaN())
        if not any(isinstance(c, MCVStopping) for c in callbacks):
            callbacks.append(MCVStopping(patience=2**31 - 1))
        # BackupAndRestore must save after the epoch's decision (new LR and candidates) and
        # stopping state, and restore after the scheduler's on_train_begin: move it behind them.
        last = max(i for i, c in enumerate(callbacks) if isinstance(c, (MCVScheduler, MCVStopping)))
        early = [c for c in callbacks[:last] if isinstance(c, keras.callbacks.BackupAndRestore)]
        if early:
            callbacks = [c for c in callbacks if not any(c is e for e in early)]
            last = max(i for i, c in enumerate(callbacks) if isinstance(c, (MCVScheduler, MCVStopping)))
            callbacks[last + 1:last + 1] = early
        return super().fit(*args, callbacks=callbacks, **kwargs)

    # -- candidates (host side, once per epoch) --------------------------------

    def mcv_state(self):
        """Host copy of the MCV accumulators (for callbacks and tests)."""
        g = lambda v: np.array(keras.ops.convert_to_numpy(v.value))  # noqa: E731
        return {
            "candidate_lrs": g(self._cand_lrs), "mask": g(self._cand_mask),
            "sum_val": g(self._sum_val), "sum_train": g(self._sum_train),
            "history": g(self._history), "sum_current": float(g(self._sum_current)),
            "steps": float(g(self._n_steps)), "discards": float(g(self._n_discards)),
            "forward": float(g(self._n_forward)), "backward": float(g(self._n_backward)),
            "opt_steps": float(g(self._n_opt_steps)),
        }

    def set_candidates(self, values):
        """Writes a new candidate list (validated, padded) and resets sums."""
        padded, mask = cand_lib.pad_candidates(values, self.num_slots)
        self._cand_lrs.assign(padded.astype("float32"))
        self._cand_mask.assign(mask.astype("float32"))
        self._candidates_ready = True

    def reset_mcv_sums(self):
        """Zeroes the epoch's accumulators (the vote history is kept)."""
        for v in (self._sum_val, self._sum_train):
            v.assign(np.zeros(self.num_slots, "float32"))
        for v in (self._sum_current, self._n_steps, self._n_discards,
                  self._n_forward, self._n_backward, self._n_opt_steps):
            v.assign(0.0)

    def candidates_around(self, lr):
        """The strategy's candidate list when the LR is `lr`."""
        return self.strategy.candidates_around(lr)

    # -- shared pieces --------------------------------------------------------

    def _check_trainable(self):
        if getattr(self, "_compile_loss", None) is None:
            raise MCVError(
                "MCV recomputes the loss on the validation half of each batch, so the "
                "model must be compiled with `loss=`."
            )
        lr_lib.base_optimizer(self.optimizer)  # several optimizers -> clear error

    def _split_data(self, data):
        """`(batch_1, batch_2, single)`: the training and validation halves of a batch.

        A batch of one example (the remainder of 33 examples at batch size 32)
        cannot be split: `single` is then True, batch 1 is that example and
        batch 2 repeats it only so that shapes stay valid; the train steps
        then skip the MCV trials and take a plain step at the current LR,
        leaving the MCV accumulators untouched. `single` is a Python bool when
        the batch size is static (JAX, TF with a known shape), else a boolean
        tensor (TF with an unknown batch dimension).
        """
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        n, first = _batch_size(x)
        if n is None:  # TF graph with an unknown batch dimension
            import tensorflow as tf

            n = tf.shape(first)[0]
            n_second = tf.maximum(n // 2, 1)
        else:
            n_second = max(n // 2, 1)
        single = n < 2
        h, start = n - n // 2, n - n_second  # start == h unless single
        (x1, x2), (y1, y2), (s1, s2) = (_split(t, h, start) for t in (x, y, sw))
        return (x1, y1, s1), (x2, y2, s2), single

    def _mcv_update(self, st, cur, val_losses=None, train_losses=None, discarded=False,
                    history=None, counts=(0, 0, 0)):
        """New values of the MCV state (pure; `st` maps names to current values).

        Non-finite candidate losses are summed as they are (an inf/NaN average
        then never wins in `rules.select_method*`, and all-NaN stops training).
        """
        new = dict(st)
        mask = st["cand_mask"]
        if val_losses is not None:
            new["sum_val"] = st["sum_val"] + ops.where(mask > 0, val_losses, ops.zeros_like(val_losses))
        if train_losses is not None:
            new["sum_train"] = st["sum_train"] + ops.where(mask > 0, train_losses, ops.zeros_like(train_losses))
        if history is not None:
            new["history"] = history
        new["sum_current"] = st["sum_current"] + cur
        forward, backward, steps = counts
        new["n_steps"] = st["n_steps"] + 1.0
        new["n_discards"] = st["n_discards"] + ops.cast(discarded, "float32")
        new["n_forward"] = st["n_forward"] + float(forward)
        new["n_backward"] = st["n_backward"] + float(backward)
        new["n_opt_steps"] = st["n_opt_steps"] + float(steps)
        return new

    @staticmethod
    def _mcv_logs(st):
        """Running epoch means, so the epoch's last step logs the epoch value."""
        steps = ops.maximum(st["n_steps"], 1.0)
        return {
            "mcv_val_batch_loss": st["sum_current"] / steps,
            "mcv_discard_rate": st["n_discards"] / steps,
        }

    def _check_step_ready(self):
        if not self._candidates_ready:
            raise MCVError(
                "The MCV candidate list is not set. Train with MCVModel.fit (which "
                "adds MCVScheduler) or pass keras_autolr.runtime.mcv.MCVScheduler() in "
                "callbacks."
            )

    # -- train step dispatch ---------------------------------------------------

    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            from keras_autolr.runtime.mcv import _tf_step

            return _tf_step.train_step(self, *args)
        if backend == "jax":
            from keras_autolr.runtime.mcv import _jax_step

            return _jax_step.train_step(self, *args)
        raise MCVError(
            f"MCVModel supports the TensorFlow and JAX backends, not {backend!r}."
        )
