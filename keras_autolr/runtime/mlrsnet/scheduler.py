"""Plug-and-play MLR-SNet: the LR of every batch predicted inside the train step.

Purpose: use a frozen (meta-trained) MLR-SNet on a new task with one line,
`callbacks=[MLRSNetScheduler("image")]`. At each training step the compiled
step computes the batch loss and gradients, feeds that loss to the net, writes
the predicted LR with `keras_autolr.runtime.lr.assign_learning_rate`, and only then
applies the gradients: the LR of step t comes from step t's own loss, with no
host round trip and no one-step lag. The net's LSTM state lives in
non-trainable optimizer variables, so it persists across batches and epochs
(as in the reference) and is part of the compiled state on TensorFlow and JAX.

How it installs: `on_train_begin` replaces the model instance's `train_step`
with an MLR-SNet-aware copy of Keras's own (TensorFlow or JAX flavour) and
rebuilds the train function (kept for later fits; `uninstall()` restores Keras's step). Any Keras
model compiled with a float-LR or schedule optimizer works.

LR scale (`scale`):

* "absolute" (default for SGD / SGD-momentum, the paper): LR = gamma * p;
* "relative" (default for other optimizers, e.g. Adam, whose useful LR is
  orders of magnitude smaller than gamma): LR = k * gamma * p with k fixed at
  the first step so that the first LR equals the LR the optimizer was compiled
  with; the net then shapes the schedule from there.

gamma ("auto"): image nets use the reference rule from the loss (see
`gamma.py`); text nets use the paper's 40. Where the image gamma comes from
and when nets swap is the `protocol` (`protocol.py`):

* `PackageProtocol(swap_at)` (default for "image" / "text" and nets you
  pass): gamma in-graph from the first batch's loss (pass
  `gamma=compute_gamma(model, x, y, C)` for the full training set);
  `checkpoints=[early, middle, late]` swap at `swap_at` = (1/3, 2/3) of the
  epochs (rounded), gamma recomputed from the last epoch's training loss
  (floored at 1e-3);
* `OfficialProtocol(x, y)` (default for "official"): the official
  meta-test: gamma = abs(rule) from an evaluation pass over the training set
  (x, y) before training and at each swap, swaps at epochs N//3 and N//3*2.

The LSTM state is kept across epochs and swaps under both.

The authors' nets (`net="official"`): `saved_controllers/mlrsnet_official_{1,100,200}.keras`,
converted from the published `mlr_snet 1/100/200.pth` (MIT licence, see
`saved_controllers/mlrsnet.md`; `keras-autolr mlrsnet import-official`), run
by the official meta-test cell and swapped 1 -> 100 -> 200. For the
official protocol in full, pass the training data and compile with SGD,
momentum 0, weight decay 5e-4:

```
scheduler = MLRSNetScheduler("official", protocol=OfficialProtocol(x_train, y_train))
model.compile(keras.optimizers.SGD(0.1, weight_decay=5e-4), loss=...)  # the 0.1 is unused
```

Non-finite batch loss: the step's gradients are zeroed (no weight moves except
by existing momentum), the LSTM state is not advanced and the LR keeps its
previous value, so it stays finite. `keras.callbacks.TerminateOnNaN` still
stops the run if you add it.

Example:

```python
import keras
import numpy as np
from keras_autolr.runtime.mlrsnet import MLRSNetScheduler

rng = np.random.default_rng(0)
x, y = rng.normal(size=(128, 8)).astype("float32"), rng.integers(0, 4, 128)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
cb = MLRSNetScheduler("image", record_every=1)
model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[cb])
print(len(cb.lr_history), cb.lr_history[0])  # 8 per-batch LRs from the shipped net
```

Args:
    net: an `MLRSNet`, a path to a `.keras` file, or "image" / "text" for the
        nets shipped in `saved_controllers/` (these use the shipped early /
        middle / late checkpoints with the swap, as the reference's
        meta-test does: the final net alone is a "late" net that predicts the
        small LRs of the end of training), or "official" for the authors'
        three nets (image conventions, `OfficialProtocol` by default).
    task: "image" or "text"; checked against the net's mode. None trusts
        the net but warns, when training begins, if the model looks like
        the other kind of task: a text net on a model with one prediction
        per example (a classifier: the text net's gamma 40 blows it up), or
        an image net on a model of token ids with per-token outputs. Pass
        `task` (or `vocab_size` / `num_classes`) to confirm and silence it.
    cross_modal: if True, `task` may differ from the net's mode: the net is
        used with the task's conventions (input loss / log(vocab) and gamma 40
        for text; raw loss and the gamma rule for images). This is the paper's
        transfer of the CIFAR-10 net to Penn Treebank (its Fig. 1(f)); with
        gamma 40, train text models with gradient clipping as the paper does
        (`SGD(..., global_clipnorm=0.25)`): without it the first LRs (~20)
        blow up a small char-level GRU.
    gamma: "auto" or a positive float.
    num_classes: class count for the image gamma rule (None: the model's
        output width). Image conventions only: given with a text net (and
        no `cross_modal`) it raises `ModeMismatchError`.
    vocab_size: vocabulary size for text nets (None: the model's output
        width). Text conventions only: given with an image net it raises.
    scale: "auto", "absolute" or "relative" (see above).
    checkpoints: optional list of nets (or paths) to swap in during the run;
        the first one replaces `net` from the start.
    swap_at: fractions of the run at which `checkpoints[1:]` are swapped in
        (the default `PackageProtocol`'s; ignored when `protocol` is given).
    protocol: a `PackageProtocol` or `OfficialProtocol` (None: official
        for `net="official"`, else `PackageProtocol(swap_at)`).
    min_lr: floor of the predicted LR, a finite number > 0 (keeps it positive).
    record_every: if > 0, store the LR every this many batches in
        `self.lr_history` (reading it costs a host sync; 0 = only per epoch).

Raises:
    ValueError: an argument out of range (`min_lr`, `gamma` not finite and
        positive, `swap_at` not increasing fractions in (0, 1), a count
        below 2, a negative `record_every`).
    ModeMismatchError: the net's mode and `task` (or a mode-specific
        argument) disagree and `cross_modal` is not set.

`get_config()` / `MLRSNetScheduler.from_config(config)` round-trip a
scheduler whose nets are shipped ("image" / "text" / "official") or given as
paths; a net passed in memory is recorded as the shipped net of its mode (save
it with `net.save(path)` and pass the path to keep it). An `OfficialProtocol`'s
training data is not part of the config (pass it again).
"""

import math
import numbers
import os
import warnings

import keras
from keras import ops

from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime import artifacts
from keras_autolr.runtime.instep import InStepScheduler, sanitize
from keras_autolr.runtime.mlrsnet import gamma as gamma_lib
from keras_autolr.runtime.mlrsnet.net import ModeMismatchError, cell_step, check_mode, load_net
from keras_autolr.runtime.mlrsnet.protocol import OfficialProtocol, PackageProtocol, protocol_from_config

__all__ = ["MLRSNetScheduler", "shipped_net_path", "shipped_checkpoints", "scheduler_update"]

OFFICIAL_FILES = ("mlrsnet_official_1.keras", "mlrsnet_official_100.keras", "mlrsnet_official_200.keras")
_OFFICIAL_HINT = (
    "Convert the authors' files: `keras-autolr mlrsnet import-official 'mlr_snet 1.pth' "
    "saved_controllers/mlrsnet_official_1.keras` (likewise 100, 200; see saved_controllers/mlrsnet.md)."
)
SHIPPED_KINDS = ("image", "text", "official")


def shipped_net_path(kind):
    """Path of the shipped net "image", "text" or "official" in `saved_controllers/`.

    For "official" it is the last of the authors' three nets (epoch 200).

    Args:
        kind: "image", "text" or "official".

    Raises:
        FileNotFoundError: the file is not shipped (the message says how to
            meta-train one).

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet import shipped_net_path

    print(shipped_net_path("image").name)  # mlrsnet_image.keras
    ```
    """
    if kind == "official":
        return artifacts.artifact_path(OFFICIAL_FILES[-1], hint=_OFFICIAL_HINT)
    return artifacts.artifact_path(
        f"mlrsnet_{kind}.keras",
        hint=f"Or meta-train one: `keras-autolr mlrsnet meta-train --task {kind} --out mlrsnet_{kind}.keras`.",
    )


def shipped_checkpoints(kind):
    """The shipped early / middle / late nets of `kind` for the checkpoint swap.

    Falls back to the final net alone when the stage files are missing
    ("image" / "text"); "official" needs all three of the authors' nets.

    Args:
        kind: "image", "text" or "official".

    Returns:
        A list of paths (3, or 1 without the stage files).

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet.scheduler import shipped_checkpoints

    print([p.name for p in shipped_checkpoints("text")])
    ```
    """
    if kind == "official":
        return [artifacts.artifact_path(name, hint=_OFFICIAL_HINT) for name in OFFICIAL_FILES]
    late = shipped_net_path(kind)
    folder = artifacts.artifacts_dir()
    stages = [folder / f"mlrsnet_{kind}_early.keras", folder / f"mlrsnet_{kind}_middle.keras"]
    if all(p.exists() for p in stages):
        return [*stages, late]
    return [late]


def _resolve(net):
    if isinstance(net, str) and net in SHIPPED_KINDS:
        net = shipped_net_path(net)
    return load_net(net)


def scheduler_update(params, loss, h, c, gamma, k, prev_lr, *, norm, num_classes, relative, min_lr,
                     cell="meta_test", gamma_rule=None):
    """The pure per-step controller (keras.ops): loss -> (lr, h, c, gamma, k).

    `gamma <= 0` means "compute from this loss" (image rule, needs
    `num_classes`); `k <= 0` means "fix the relative factor now". Non-finite
    losses leave state, gamma, k and the LR (`prev_lr`) unchanged.

    Args:
        params: the net's 10 arrays (`MLRSNet.params` values).
        loss: the batch loss (scalar).
        h, c: LSTM state, shape (1, hidden).
        gamma: current gamma (<= 0: compute it from this loss).
        k: relative factor (<= 0: fix it now so that the LR is `prev_lr`).
        prev_lr: the LR of the previous step.
        norm: divisor of the loss (1, or log(vocab) for text nets).
        num_classes: class count for the gamma rule (None: no rule).
        relative: scale "relative" (True) or "absolute".
        min_lr: floor of the LR.
        cell: the net's LSTM cell variant (`MLRSNet.cell`).
        gamma_rule: `gamma_rule(loss, num_classes)` in keras.ops (None: the
            floored rule `gamma.gamma_rule`; a protocol's `rule`).

    Returns:
        `(lr, h, c, gamma, k, finite)`.

    Example:

    ```python
    from keras import ops
    from keras_autolr.runtime.mlrsnet import MLRSNet
    from keras_autolr.runtime.mlrsnet.scheduler import scheduler_update

    net = MLRSNet(seed=0)
    h, c = net.initial_state()
    lr, h, c, gamma, k, finite = scheduler_update(
        [v.value for v in net.params], ops.convert_to_tensor(2.3), h, c, ops.convert_to_tensor(0.5),
        ops.convert_to_tensor(1.0), 0.1, norm=1.0, num_classes=None, relative=False, min_lr=1e-8)
    print(float(lr))  # 0.5 * p, p ~ 0.5
    ```
    """
    loss = ops.cast(ops.reshape(loss, ()), "float32")
    finite = ops.isfinite(loss)
    safe = ops.where(finite, loss, ops.zeros_like(loss))
    if num_classes:
        rule = gamma_rule or gamma_lib.gamma_rule
        g = ops.where(gamma > 0, gamma, rule(safe, num_classes))
    else:
        g = gamma
    p, h2, c2 = cell_step(params, safe / norm, h, c, cell)
    raw = g * ops.reshape(p, ())
    if relative:
        k2 = ops.where(k > 0, k, ops.cast(prev_lr, "float32") / ops.maximum(raw, 1e-30))
    else:
        k2 = ops.ones_like(k)
    lr = ops.maximum(k2 * raw, min_lr)
    lr = ops.where(finite, lr, ops.cast(prev_lr, "float32"))
    return (
        lr,
        ops.where(finite, h2, h),
        ops.where(finite, c2, c),
        ops.where(finite, g, gamma),
        ops.where(finite, k2, k),
        finite,
    )


def _number(value, what, positive=True):
    """`value` as a float if it is a finite number (> 0 when `positive`), else ValueError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise ValueError(f"{what} must be a finite {'positive ' if positive else ''}number, got {value!r}.")
    return float(value)


def _count(value, what, minimum):
    """`value` if it is None or an int >= `minimum`, else ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{what} must be None or an integer >= {minimum}, got {value!r}.")
    return int(value)


def _spec(net):
    """How a net appears in the config: its path or shipped kind; a Model's mode."""
    if isinstance(net, (str, os.PathLike)):
        return os.fspath(net)
    return getattr(net, "mode", None)


def _output_rank(model):
    try:
        return len(model.outputs[0].shape)
    except Exception:
        return None


def _integer_input(model):
    try:
        return "int" in str(model.inputs[0].dtype)
    except Exception:
        return False


def _output_dim(model):
    try:
        return int(model.outputs[0].shape[-1])
    except Exception:
        pass
    try:
        return int(model.layers[-1].units)
    except Exception:
        return None


class MLRSNetScheduler(InStepScheduler):
    __doc__ = __doc__

    def __init__(self, net="image", task=None, gamma="auto", num_classes=None, vocab_size=None,
                 scale="auto", checkpoints=None, swap_at=(1 / 3, 2 / 3), min_lr=1e-8, record_every=0,
                 cross_modal=False, protocol=None):
        super().__init__()
        self.min_lr = _number(min_lr, "min_lr")
        self.record_every = _count(record_every, "record_every", 0)
        num_classes = _count(num_classes, "num_classes", 2)
        vocab_size = _count(vocab_size, "vocab_size", 2)
        swap_at = PackageProtocol(swap_at).swap_at  # validates
        self._protocol_arg = protocol
        if protocol is None:
            protocol = OfficialProtocol() if net == "official" else PackageProtocol(swap_at)
        self.protocol = protocol_from_config(protocol)
        if gamma != "auto":
            _number(gamma, "gamma ('auto' or a number)")
        # What get_config records: shipped kinds and paths round-trip.
        self._net_spec = _spec(net)
        self._checkpoint_specs = None
        if checkpoints is not None and all(isinstance(n, (str, os.PathLike)) for n in checkpoints):
            self._checkpoint_specs = [os.fspath(n) for n in checkpoints]
        elif checkpoints is not None:
            self._net_spec = _spec(checkpoints[0])
        self._gamma_arg = gamma
        self.task = task
        if checkpoints is None and isinstance(net, str) and net in SHIPPED_KINDS:
            # The reference's meta-test: early/middle/late nets swapped at 1/3, 2/3.
            checkpoints = shipped_checkpoints(net)
        self.nets = [_resolve(n) for n in (checkpoints or [net])]
        if cross_modal:
            if task not in ("image", "text"):
                raise ValueError(f"cross_modal=True needs task='image' or 'text' (the conventions to use), got {task!r}.")
        else:
            for n in self.nets:
                check_mode(n, task)
        modes = {n.mode for n in self.nets}
        if len(modes) > 1:
            raise ModeMismatchError(f"The checkpoints mix modes {sorted(modes)}; use nets of one mode.")
        self.net_mode = self.nets[0].mode
        cells = {n.cell.name for n in self.nets}
        if len(cells) > 1:
            raise ValueError(f"The checkpoints mix LSTM cells {sorted(cells)}; use nets of one cell.")
        self.cell = self.nets[0].cell
        self.cross_modal = bool(cross_modal)
        # The conventions (input normalisation, gamma) follow the task when crossing modes.
        self.mode = task if cross_modal else self.net_mode
        if self.mode == "text" and num_classes is not None:
            raise ModeMismatchError(
                "num_classes is for image conventions (the gamma rule), but this is a text net "
                "(its input is loss / log(vocab)): pass vocab_size= instead, or use the image "
                "net for a classification task."
            )
        if self.mode == "image" and vocab_size is not None:
            raise ModeMismatchError(
                "vocab_size is for text conventions, but this is an image net: pass num_classes= "
                "instead, use the text net, or pass task='text', cross_modal=True to use this "
                "net with text conventions."
            )
        if scale not in ("auto", "absolute", "relative"):
            raise ValueError(f"scale must be 'auto', 'absolute' or 'relative', got {scale!r}.")
        self.protocol.check(len(self.nets))
        self.gamma = gamma
        self.num_classes = num_classes
        self.vocab_size = vocab_size
        self.scale = scale
        self.swap_at = swap_at
        self.lr_history = []
        self.gamma_history = []
        self._state = {}  # id(optimizer) -> (h, c, gamma, k) variables
        self._active = 0
        self._last_loss = None
        self._batch_loss = None
        self._state_taken = False  # a backup's host state is taken once per fit

    # -- setup ---------------------------------------------------------------

    def _state_vars(self, opt):
        key = id(opt)
        if key not in self._state:
            H = self.nets[0].hidden
            with lr_lib._strategy_scope(opt):
                # State variables that model.save / BackupAndRestore carry (see lr.add_state_variable).
                mk = lambda name, shape: lr_lib.add_state_variable(self.model.optimizer, name, shape)
                state = (
                    mk("mlrsnet_h", (1, H)), mk("mlrsnet_c", (1, H)),
                    mk("mlrsnet_gamma", ()), mk("mlrsnet_scale", ()),
                )
                # The active net's weights are state too (not constants of the
                # compiled step), so a checkpoint swap is a plain assignment.
                theta = [mk(f"mlrsnet_theta_{i}", tuple(v.shape)) for i, v in enumerate(self.nets[0].params)]
            self._state[key] = (state, theta)
            self._load_theta(theta, self._active)
            if self.gamma != "auto":
                state[2].assign(float(self.gamma))
        return self._state[key]

    def _load_theta(self, theta, index):
        # Copy through numpy: on JAX the compiled step donates its state
        # buffers, which must not alias the net's own weights.
        for var, w in zip(theta, self.nets[index].params):
            var.assign(ops.convert_to_numpy(w))

    def _resolve_sizes(self):
        width = _output_dim(self.model)
        if self.mode == "text":
            vocab = self.vocab_size or width
            if not vocab or vocab < 2:
                raise ModeMismatchError(
                    "A text MLR-SNet needs the vocabulary size (its input is loss / log(vocab)); "
                    "pass vocab_size=."
                )
            self._norm = math.log(vocab)
            self._classes = None  # text: gamma fixed (paper's 40) unless given
            if self.gamma == "auto":
                self.gamma = gamma_lib.TEXT_GAMMA
        else:
            self._norm = 1.0
            self._classes = self.num_classes or width
            if self.gamma == "auto" and (not self._classes or self._classes < 2):
                raise ValueError(
                    "gamma='auto' for an image net needs the class count; pass num_classes= "
                    "(or gamma=)."
                )
            if self.gamma != "auto":
                self._classes = None

    def _warn_if_task_looks_different(self):
        """With `task=None`, warns when the model looks like the other mode's task."""
        if self.task is not None or self.vocab_size or self.num_classes:
            return
        rank = _output_rank(self.model)
        if self.mode == "text" and rank == 2:
            warnings.warn(
                f"MLRSNetScheduler: this is a text net (meta-trained on language modelling: "
                f"LR = {gamma_lib.TEXT_GAMMA:g} x p, input loss / log(vocab)) but the model makes "
                f"one prediction per example, like a classifier (output width "
                f"{_output_dim(self.model)} taken as the vocabulary): its LRs can be far too "
                "large. For classification use the image net (MLRSNetScheduler('image')); for "
                "a text task pass task='text' (and vocab_size=) to silence this warning.",
                stacklevel=3,
            )
        elif self.mode == "image" and rank is not None and rank >= 3 and _integer_input(self.model):
            warnings.warn(
                "MLRSNetScheduler: this is an image net but the model reads token ids and makes "
                "per-token predictions, like a language model. Use the text net "
                "(MLRSNetScheduler('text')), or pass task='text', cross_modal=True for the "
                "paper's image-to-text transfer; pass task='image' (or num_classes=) to silence "
                "this warning.",
                stacklevel=3,
            )

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._opt = lr_lib.base_optimizer(self.model.optimizer)
        self._warn_if_task_looks_different()
        self._resolve_sizes()
        self._vars, self._theta = self._state_vars(self._opt)
        self._state_taken = False
        if self.gamma != "auto" and float(ops.convert_to_numpy(self._vars[2])) <= 0:
            self._vars[2].assign(float(self.gamma))
        relative = self.scale == "relative" or (
            self.scale == "auto" and not isinstance(self._opt, keras.optimizers.SGD)
        )
        self._relative = relative
        self._epochs = self.params.get("epochs") if self.params else None
        if self._classes and float(ops.convert_to_numpy(self._vars[2])) <= 0:
            g = self.protocol.start_gamma(self.model, self._classes)
            if g is not None:
                self._vars[2].assign(g)
        self.install()

    # -- in-graph step -------------------------------------------------------

    def step_update(self, loss, grads, weights):
        """Runs the controller on the batch loss and writes LR and state.

        Called inside the compiled train step; returns (lr, grads).
        """
        prev_lr = lr_lib.learning_rate_tensor(self._opt)
        h, c, g, k = self._vars
        params = [v.value for v in self._theta]
        lr, h2, c2, g2, k2, finite = scheduler_update(
            params, loss, h.value, c.value, g.value, k.value, prev_lr,
            norm=self._norm, num_classes=self._classes, relative=self._relative, min_lr=self.min_lr,
            cell=self.cell, gamma_rule=self.protocol.rule,
        )
        h.assign(h2)
        c.assign(c2)
        g.assign(g2)
        k.assign(k2)
        lr_lib.assign_learning_rate(self._opt, lr)
        return lr, sanitize(grads, finite)

    # -- host state carried by BackupAndRestore ------------------------------

    _STATE = "mlrsnet"

    def set_model(self, model):
        super().set_model(model)
        # From set_model, so a BackupAndRestore listed before us saves it too.
        if getattr(model, "optimizer", None) is not None:
            try:
                lr_lib.add_host_state(model.optimizer, self._STATE, self._host_state)
            except lr_lib.LearningRateError:
                pass  # on_train_begin says what is wrong

    def _host_state(self):
        # The stage and the loss a swap's gamma comes from: the host reads them, the step
        # never does. A backup listed before us saves ahead of our on_epoch_end, so the
        # epoch's loss is the last batch's running mean (the value Keras logs for the epoch).
        loss = self._last_loss if self._batch_loss is None else float(ops.convert_to_numpy(self._batch_loss))
        return {"stage": self._active, "last_loss": loss}

    def _restore(self):
        """Takes back the stage and last loss of a `BackupAndRestore` backup (once per fit)."""
        self._state_taken = True
        state = lr_lib.take_host_state(self.model.optimizer, self._STATE)
        if state is None:
            return
        self._last_loss = state["last_loss"]
        stage = min(max(int(state["stage"]), 0), len(self.nets) - 1)
        if stage != self._active:  # the backup restored theta, unless it ran before theta existed
            self._active = stage
            self._load_theta(self._theta, stage)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if logs is not None and "loss" in logs:
            self._batch_loss = logs["loss"]  # converted only when a backup saves it

    # -- swaps, logging --------------------------------------------------------

    def on_epoch_begin(self, epoch, logs=None):
        if not self._state_taken:
            self._restore()
        self._batch_loss = None
        target = self.protocol.stage(epoch, self._epochs, len(self.nets))
        if target != self._active:
            self._active = target
            if self._classes:
                g = self.protocol.swap_gamma(self.model, self._classes, self._last_loss)
                if g is not None:
                    self._vars[2].assign(g)
            self._load_theta(self._theta, target)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if logs is not None:
            self._last_loss = logs.get("loss")
        self.gamma_history.append(float(ops.convert_to_numpy(self._vars[2])))

    def reset_state(self):
        """Zeroes the LSTM state (a fresh run with the same callback)."""
        for v in self._vars[:2]:
            v.assign(ops.zeros(v.shape))

    def get_config(self):
        """Config for `MLRSNetScheduler.from_config` (see the class docstring)."""
        return {
            "net": self._net_spec, "checkpoints": self._checkpoint_specs, "task": self.task,
            "gamma": self._gamma_arg, "num_classes": self.num_classes, "vocab_size": self.vocab_size,
            "scale": self.scale, "swap_at": list(self.swap_at), "min_lr": self.min_lr,
            "record_every": self.record_every, "cross_modal": self.cross_modal,
            "protocol": None if self._protocol_arg is None else self.protocol.get_config(),
        }

    @classmethod
    def from_config(cls, config):
        """Builds a scheduler from `get_config()`'s output."""
        return cls(**config)
