"""The five MCV algorithms (thesis chapter 3) as strategy objects.

A strategy says what one MCV train step tries and how it decides; the TF and
JAX train steps (`_tf_step`, `_jax_step`) run whichever strategy `MCVModel`
holds, and `MCVScheduler` asks it for the epoch decision. Each strategy states:

* its trials per step: `trials` candidate updates, each scored by
  `1 + scores_train` forwards, plus one forward after the applied step when
  `scores_applied` (thesis Table 4.1, via `cost.trial_cost`: `step_cost()`);
* its per-step rule, `step_decision` (and `reject_applied` for `Discard`), and
  its epoch rule, `select` (methods 1-3), both delegating to the pure
  functions of `rules`;
* its candidate lists (`first_candidates`, `candidates_around`).

| strategy | thesis | trials | decides |
|---|---|---|---|
| `Discard()` | Alg. 3 | 0 | per step: undo an update that raised the validation loss |
| `Voting(candidates, decay)` | Alg. 4-6 | n | per step: EMA of votes picks the LR |
| `Method1(factors, ...)` | Alg. 7-8 | n | per epoch: lowest validation loss |
| `Method2(alpha, factors, ...)` | Alg. 7-8 | n (2 forwards each) | per epoch: `(1-a)*val + a*train` |
| `Method3(factors, ...)` | Alg. 7-8 | n | per epoch: largest LR that lowers the loss |

Strategies are Keras-serializable (`get_config`), so an `MCVModel` holding one
saves and loads with `model.save` / `keras.models.load_model`.

Example:

```python
from keras_autolr.runtime.mcv.strategies import Method2, get

s = Method2(alpha=0.3)
s.step_cost()                      # StepCost(forward=16, backward=1, step=8)
get("method2", alpha=0.3) == s     # the string form builds the same strategy
```
"""

import collections

import keras
import numpy as np
from keras import ops

from keras_autolr.runtime.mcv import candidates as cand_lib
from keras_autolr.runtime.mcv import cost as cost_lib
from keras_autolr.runtime.mcv import rules

__all__ = [
    "MCVError", "StepDecision", "Strategy", "Discard", "Voting", "EpochSearch",
    "Method1", "Method2", "Method3", "METHODS", "SUGAR_KEYS", "get", "applicable",
]


class MCVError(ValueError):
    """Raised when a model, batch or strategy cannot be trained with MCV."""


StepDecision = collections.namedtuple("StepDecision", ["lr", "history", "reject"])
StepDecision.__doc__ = """What a strategy decided for the step it is in (backend tensors or None).

Fields: `lr`, the LR to apply the step at (None: the epoch's LR); `history`,
the new vote history (None: unchanged); `reject`, a boolean tensor that undoes
the applied step where True (None: never undone).

Example:

```python
from keras_autolr.runtime.mcv.strategies import StepDecision

StepDecision(lr=None, history=None, reject=None)  # methods 1-3: plain step
```
"""


class Strategy:
    """Base of the MCV algorithms: trials per step and the decision rules.

    Subclasses set the class attributes `name`, `scores_train`,
    `scores_applied` and `epoch_rule`, define `trials` and `num_slots`, and
    override the rules they use. The defaults describe a step that tries
    nothing and never rejects.

    Example:

    ```python
    from keras_autolr.runtime.mcv.strategies import Method3, Strategy

    s = Method3()
    isinstance(s, Strategy), s.trials, s.epoch_rule   # (True, 7, True)
    ```
    """

    #: The method's name in `MCVModel(method="...")` and the harness registry.
    name = None
    #: Each trial is also scored on the training half (method 2).
    scores_train = False
    #: The applied step is scored on the validation half (discard).
    scores_applied = False
    #: The LR is chosen once per epoch by `select` (methods 1-3).
    epoch_rule = False

    @property
    def trials(self):
        """Trial updates per step (one per candidate slot; 0: none)."""
        return 0

    @property
    def num_slots(self):
        """Candidate slots the compiled step holds (fixed shape)."""
        return 1

    def step_cost(self):
        """Table 4.1 `StepCost` of one step of this strategy."""
        return cost_lib.trial_cost(self.trials, 1 + int(self.scores_train), self.scores_applied)

    def candidates_around(self, lr):
        """The candidate list the step tries when the LR is `lr`."""
        return np.asarray([float(lr)])

    def first_candidates(self, lr):
        """The candidate list of the first epoch, for a compiled LR `lr`."""
        return self.candidates_around(lr)

    def first_epoch_lr(self, first):
        """The LR of the first epoch given its candidates `first` (None: keep the compiled LR)."""
        return None

    def step_decision(self, current, val_losses, cand_lrs, mask, history):
        """The step's `StepDecision` from the trials' validation losses (keras.ops)."""
        return StepDecision(None, None, None)

    def reject_applied(self, current, applied_loss):
        """For `scores_applied` strategies: True where the applied step is undone."""
        raise NotImplementedError(f"{type(self).__name__} does not score the applied step.")

    def select(self, avg_val, avg_current, avg_train, lrs):
        """For `epoch_rule` strategies: index of the next epoch's LR in `lrs`, or
        None when every candidate diverged."""
        raise NotImplementedError(f"{type(self).__name__} has no epoch rule.")

    def clip(self, lr):
        """`lr` within the strategy's bounds (no bounds by default)."""
        return float(lr)

    # -- serialization ----------------------------------------------------------

    def get_config(self):
        """The constructor arguments (JSON types)."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Rebuilds a strategy from `get_config()`."""
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="keras_autolr")
class Discard(Strategy):
    """Algorithm 3: apply the step at the current LR; undo it if the validation-batch loss rose.

    No trials: the step is applied once and scored on the validation half
    (`rules.discard_step`); a rise or a non-finite loss restores the weights
    and optimizer state.

    Example:

    ```python
    import keras, numpy as np
    from keras_autolr.runtime.mcv import MCVModel
    from keras_autolr.runtime.mcv.strategies import Discard

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = MCVModel(inner, method=Discard())
    model.compile(keras.optimizers.SGD(0.1), "mse")
    hist = model.fit(np.random.rand(64, 4), np.random.rand(64, 2), batch_size=16, verbose=0)
    hist.history["mcv_discard_rate"]
    ```
    """

    name = "discard"
    scores_applied = True

    def reject_applied(self, current, applied_loss):
        """True where the applied step raised the validation loss (`rules.discard_step`).

        Args:
            current: the validation-half loss before the step.
            applied_loss: the validation-half loss after it.

        Example:

        ```python
        from keras_autolr.runtime.mcv.strategies import Discard

        bool(Discard().reject_applied(1.0, 1.5))   # True
        ```
        """
        return rules.discard_step(current, applied_loss)


@keras.saving.register_keras_serializable(package="keras_autolr")
class Voting(Strategy):
    """Algorithms 4-6 (MCV-lr-voting): each step votes for the best LR of a fixed list.

    Every step tries each candidate, votes for the one that lowers the
    validation-batch loss most (`rules.best_candidate`), updates an EMA of
    votes (`rules.update_votes`) and applies the step at the candidate with the
    most votes (`rules.top_candidate`).

    Args:
        candidates: the fixed LR list (default the thesis's
            `[0.1, 0.01, 0.001, 0.0001]`).
        decay: EMA coefficient, the weight of the newest vote, in (0, 1].
        discard_on_no_improvement: undo a step when no candidate lowers the
            validation-batch loss (the thesis's "zero LR" vote); the voted LR
            is kept.

    Example:

    ```python
    from keras_autolr.runtime.mcv.strategies import Voting

    s = Voting(candidates=[0.1, 0.01], decay=0.2)
    s.trials, s.step_cost()   # (2, StepCost(forward=4, backward=1, step=3))
    ```
    """

    name = "voting"

    def __init__(self, candidates=cand_lib.THESIS_LR_LIST, decay=0.1, discard_on_no_improvement=True):
        if not 0.0 < float(decay) <= 1.0:
            raise MCVError(f"Voting's decay must be in (0, 1], got {decay}.")
        self.candidates = tuple(float(v) for v in cand_lib.validate_candidates(candidates))
        self.decay = float(decay)
        self.discard_on_no_improvement = bool(discard_on_no_improvement)

    @property
    def trials(self):
        return len(self.candidates)

    @property
    def num_slots(self):
        return len(self.candidates)

    def candidates_around(self, lr):
        """The fixed list, whatever the LR (see the class docstring)."""
        return np.asarray(self.candidates)

    def step_decision(self, current, val_losses, cand_lrs, mask, history):
        """Vote, update the history, apply at the top candidate (see the class docstring).

        Args:
            current: validation-half loss before the step.
            val_losses: each slot's validation-half loss after its trial.
            cand_lrs, mask: the slots' LRs and real-slot mask.
            history: the vote history before this step.

        Example:

        ```python
        import numpy as np
        from keras_autolr.runtime.mcv.strategies import Voting

        d = Voting([0.1, 0.01]).step_decision(1.0, np.array([0.9, 0.8], "float32"),
                                              np.array([0.1, 0.01], "float32"),
                                              np.ones(2, "float32"), np.full(2, 0.5, "float32"))
        float(d.lr)   # 0.01: slot 1 lowered the loss most and now leads the votes
        ```
        """
        best = rules.best_candidate(current, val_losses, mask)
        new_history = rules.update_votes(history, best, self.decay)
        top = rules.top_candidate(new_history, mask)
        reject = ops.logical_and(self.discard_on_no_improvement, ops.less(best, 0))
        return StepDecision(ops.take(cand_lrs, top), new_history, reject)

    def get_config(self):
        return {"candidates": list(self.candidates), "decay": self.decay,
                "discard_on_no_improvement": self.discard_on_no_improvement}


class EpochSearch(Strategy):
    """Shared base of methods 1-3 (Algorithms 7-8): an LR per epoch from averaged trials.

    The LR is constant during an epoch; every step tries each candidate
    `factors x lr` (clipped to `[min_lr, max_lr]`) and the step's accumulators
    average the candidates' losses; at the end of the epoch `select` (the
    subclass's rule) picks the next LR.

    Args:
        factors: multipliers of the current LR (thesis `[5, 2, 4/3, 1, 3/4, 1/2, 1/5]`).
        initial_candidates: LRs tried in the first epoch (the thesis used
            `[0.1, 0.01, 0.001, 0.0001]`, training epoch 1 at the smallest);
            None: `factors x` the compiled optimizer's LR.
        min_lr, max_lr: bounds on every candidate (multiplicative rules need them).

    Example:

    ```python
    from keras_autolr.runtime.mcv.strategies import EpochSearch, Method1

    issubclass(Method1, EpochSearch), Method1(factors=[2, 1, 0.5]).candidates_around(0.1)
    ```
    """

    epoch_rule = True

    def __init__(self, factors=cand_lib.FACTORS, initial_candidates=None, min_lr=1e-8, max_lr=10.0):
        self.factors = tuple(float(f) for f in cand_lib.validate_candidates(factors, "candidate factors"))
        self.initial_candidates = (
            None if initial_candidates is None
            else tuple(float(v) for v in cand_lib.validate_candidates(initial_candidates))
        )
        cand_lib.candidate_list(1.0, self.factors, min_lr, max_lr)  # validates the bounds
        self.min_lr, self.max_lr = float(min_lr), float(max_lr)

    @property
    def trials(self):
        return self.num_slots

    @property
    def num_slots(self):
        return max(len(self.factors), len(self.initial_candidates or ()))

    def candidates_around(self, lr):
        """`factors x lr`, clipped to `[min_lr, max_lr]` (`candidates.candidate_list`)."""
        return cand_lib.candidate_list(lr, self.factors, self.min_lr, self.max_lr)

    def first_candidates(self, lr):
        """`initial_candidates` when given, else the candidates around `lr`."""
        if self.initial_candidates is not None:
            return np.asarray(self.initial_candidates)
        return self.candidates_around(lr)

    def first_epoch_lr(self, first):
        """Algorithm 8: with `initial_candidates`, epoch 1 trains at the smallest."""
        return None if self.initial_candidates is None else float(np.min(first))

    def clip(self, lr):
        """`lr` clipped to `[min_lr, max_lr]`."""
        return float(np.clip(lr, self.min_lr, self.max_lr))

    def get_config(self):
        return {"factors": list(self.factors),
                "initial_candidates": None if self.initial_candidates is None else list(self.initial_candidates),
                "min_lr": self.min_lr, "max_lr": self.max_lr}


@keras.saving.register_keras_serializable(package="keras_autolr")
class Method1(EpochSearch):
    """Method 1: the next epoch's LR is the candidate with the lowest average validation loss.

    Args:
        factors, initial_candidates, min_lr, max_lr: the candidates, as in
            `EpochSearch`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.mcv.strategies import Method1

    Method1().select(np.array([0.9, 0.7, 0.8]), 1.0, None, np.array([0.2, 0.1, 0.05]))  # 1
    ```
    """

    name = "method1"

    def select(self, avg_val, avg_current, avg_train, lrs):
        """`rules.select_method1` on the epoch's averages (see the class docstring)."""
        return rules.select_method1(avg_val)


@keras.saving.register_keras_serializable(package="keras_autolr")
class Method2(EpochSearch):
    """Method 2: the lowest average of `(1 - alpha) * val + alpha * train` loss.

    Each trial is scored on the validation half and on the training half (two
    forwards per trial, Table 4.1's `2n + 2`).

    Args:
        alpha: weight of the training loss, in [0, 1]. The thesis used 0.1,
            0.3 and 0.5 and found 0.5 best.
        factors, initial_candidates, min_lr, max_lr: the candidates, as in
            `EpochSearch`.

    Example:

    ```python
    import keras, numpy as np
    from keras_autolr.runtime.mcv import MCVModel
    from keras_autolr.runtime.mcv.strategies import Method2

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = MCVModel(inner, method=Method2(alpha=0.3, factors=[2.0, 1.0, 0.5]))
    model.compile(keras.optimizers.SGD(0.05), "mse")
    hist = model.fit(np.random.rand(64, 4), np.random.rand(64, 2), batch_size=16, epochs=2, verbose=0)
    hist.history["learning_rate"]
    ```
    """

    name = "method2"
    scores_train = True

    def __init__(self, alpha=0.5, factors=cand_lib.FACTORS, initial_candidates=None, min_lr=1e-8, max_lr=10.0):
        if not 0.0 <= float(alpha) <= 1.0:
            raise MCVError(f"Method2's alpha must be in [0, 1], got {alpha}.")
        super().__init__(factors, initial_candidates, min_lr, max_lr)
        self.alpha = float(alpha)

    def select(self, avg_val, avg_current, avg_train, lrs):
        """`rules.select_method2` on the epoch's averages (see the class docstring)."""
        return rules.select_method2(avg_val, avg_train, self.alpha)

    def get_config(self):
        return {"alpha": self.alpha, **super().get_config()}


@keras.saving.register_keras_serializable(package="keras_autolr")
class Method3(EpochSearch):
    """Method 3: the largest LR whose average validation loss beats the pre-update loss.

    Falls back to Method 1's pick when no candidate beats it
    (`rules.select_method3`).

    Args:
        factors, initial_candidates, min_lr, max_lr: the candidates, as in
            `EpochSearch`.

    Example:

    ```python
    import keras, numpy as np
    from keras_autolr.runtime.mcv import MCVModel, THESIS_LR_LIST
    from keras_autolr.runtime.mcv.strategies import Method3

    # Algorithm 8: epoch 1 tries the thesis list and trains at its smallest LR.
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model = MCVModel(inner, method=Method3(factors=[2.0, 1.0, 0.5], initial_candidates=THESIS_LR_LIST))
    model.compile(keras.optimizers.SGD(0.05), "mse")
    hist = model.fit(np.random.rand(64, 4), np.random.rand(64, 2), batch_size=16, epochs=2, verbose=0)
    hist.history["learning_rate"]   # [0.0001, <the epoch-1 pick>]
    ```
    """

    name = "method3"

    def select(self, avg_val, avg_current, avg_train, lrs):
        """`rules.select_method3` on the epoch's averages (see the class docstring)."""
        return rules.select_method3(avg_val, avg_current, lrs)


_CLASSES = (Discard, Voting, Method1, Method2, Method3)
_BY_NAME = {c.name: c for c in _CLASSES}
METHODS = tuple(_BY_NAME)

_EPOCH = ("method1", "method2", "method3")
# The string form's keywords (MCVModel, the harness): -> (methods taking it, the strategy's argument).
_SUGAR = {
    "alpha": (("method2",), "alpha"),
    "factors": (_EPOCH, "factors"),
    "initial_candidates": (_EPOCH, "initial_candidates"),
    "min_lr": (_EPOCH, "min_lr"),
    "max_lr": (_EPOCH, "max_lr"),
    "voting_candidates": (("voting",), "candidates"),
    "vote_decay": (("voting",), "decay"),
    "discard_on_no_improvement": (("voting",), "discard_on_no_improvement"),
}
SUGAR_KEYS = tuple(_SUGAR)


def get(method, **kwargs):
    """The strategy for `method`: a `Strategy` as is, or a name plus its keywords.

    The string form takes `MCVModel`'s keywords: `alpha` (method2);
    `factors`, `initial_candidates`, `min_lr`, `max_lr` (methods 1-3);
    `voting_candidates`, `vote_decay`, `discard_on_no_improvement` (voting).

    Args:
        method: a `Strategy`, or one of `METHODS`.
        **kwargs: the string form's keywords (none with a `Strategy`).

    Returns:
        A `Strategy`.

    Raises:
        MCVError: an unknown name.
        TypeError: a keyword the chosen method does not take, or any keyword
            with a `Strategy` (pass it to the strategy instead).

    Example:

    ```python
    from keras_autolr.runtime.mcv.strategies import Method2, get

    assert get("method2", alpha=0.3) == Method2(alpha=0.3)
    try:
        get("method3", alpha=0.3)
    except TypeError as e:
        print(e)   # alpha applies to method2 only ...
    ```
    """
    if isinstance(method, Strategy):
        if kwargs:
            key = sorted(kwargs)[0]
            arg = _SUGAR[key][1] if key in _SUGAR else key
            raise TypeError(
                f"{sorted(kwargs)}: the MCV method is given as a strategy object, so its "
                f"arguments go to it, e.g. {type(method).__name__}({arg}=...), not to MCVModel.")
        return method
    if method not in _BY_NAME:
        raise MCVError(f"Unknown MCV method {method!r}; choose one of {METHODS} or pass a "
                       "keras_autolr.runtime.mcv.strategies.Strategy.")
    unknown = sorted(k for k in kwargs if k not in _SUGAR)
    if unknown:
        raise TypeError(f"Unknown MCV keyword(s) {unknown}; known: {sorted(_SUGAR)}.")
    args = {}
    for key, value in kwargs.items():
        takers, arg = _SUGAR[key]
        if method not in takers:
            raise TypeError(
                f"{key} applies to {' / '.join(takers)} only, not to {method!r}; "
                f"drop it or choose one of those methods (e.g. "
                f"{_BY_NAME[takers[0]].__name__}({arg}=...)).")
        args[arg] = value
    return _BY_NAME[method](**args)


def applicable(method, kwargs):
    """The entries of `kwargs` that the string form of `method` takes.

    For configs written before strategies existed, which held every keyword.

    Args:
        method: one of `METHODS`.
        kwargs: a dict of the string form's keywords.

    Example:

    ```python
    from keras_autolr.runtime.mcv.strategies import applicable

    applicable("method3", {"alpha": 0.5, "min_lr": 1e-6})   # {'min_lr': 1e-06}
    ```
    """
    return {k: v for k, v in kwargs.items() if k in _SUGAR and method in _SUGAR[k][0]}
