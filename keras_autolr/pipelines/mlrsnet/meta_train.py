"""Meta-training of MLR-SNet: learn theta so the predicted LRs lower validation loss.

Purpose: the training stage of MLR-SNet (Algorithm 1 of the paper, with the
official code's choices). While a model trains on its task with SGD and the
LR of every batch predicted by the net, theta is updated on chosen steps (see
`meta_update_steps`):

1. on the current training batch, loss L and gradient g at weights w;
2. the LR a = gamma * p(L; theta, h, c) and the one-step lookahead
   w_hat = w - a * (g + wd * w), wd the model's SGD weight decay (the
   official `MetaSGD` step; `lookahead_weight_decay=False` drops the wd term,
   as every run before issue 18.3 did; momentum, if any, is left out of
   the lookahead: the reference meta-trains with momentum 0);
3. the validation loss of w_hat on one batch of a validation split carved out
   of the training data; its gradient reaches theta only through a
   (first order: g and w are constants), i.e.
   dL_val/dtheta = dL_val/da * da/dtheta;
4. Adam(1e-3, weight decay 1e-4) on theta (Keras's decoupled weight decay;
   the reference's PyTorch Adam adds it to the gradient);
5. the model's step then uses the freshly updated net's LR.

The reference's details (`xjtushujun/MLR-SNet`,
`meta-train/image-classification/meta_train.py` and `module.py`), the
defaults here since issue 18.3:

* the LSTM cell of the official meta-training code (`cell="meta_train"`:
  chunks in, forget, out, transform and `sigmoid(forget - 1)`); the nets
  shipped before were meta-trained with `"meta_test"` and keep working (a
  net records its cell);
* the meta updates count batches within each epoch: image mode updates on
  batch i (0-based) of every epoch with `(i + 1) % t_val == 0` (t_val 300 at
  ~390 batches per CIFAR-10 epoch: once per epoch, at batch 299), text mode
  with `i % t_val == 0` (`language-modeling/meta_train.py`: at the first
  batch of each epoch, then every t_val); `t_val="epoch"` is exactly one
  meta update per epoch at any data size (image: the last batch, text: the
  first), the reference's rate on subsets where 300 batches exceed an epoch
  (`meta_schedule="global"`: a global step counter from step 0, before 18.3);
* random crop (zero padding of 4, pixels of the input as given) and
  horizontal flip of every training and meta-validation batch
  (`augment="auto"`: on for image mode with (H, W, C) inputs; the
  reference's `transform_train` on CIFAR, applied to both loaders).

One official detail is not followed: on a meta step the official net is
called twice (lookahead, then model step), so its LSTM state advances two
steps there; here it advances once per batch.

The LSTM state persists across all steps and epochs (truncated
back-propagation of one step). Checkpoints of the net are written at the
chosen epochs (the reference keeps epochs 1, E/2 and E for the
early/middle/late swap of the meta-test), and a resume snapshot at the end of
every epoch, so an interrupted run continues where it stopped, exactly as
the uninterrupted run would (the snapshot carries the data-order stream and
the meta-validation position too); the snapshot records the options above,
and a resume with other options stops with a message.

Runs on TensorFlow (`tf.GradientTape` in `tf.function`s) and on JAX (pure
`stateless_call` / `stateless_apply` steps under `jax.jit`, the fast path on
a GPU); the two share everything else: data order, augmentation, gamma,
checkpoints, resume snapshots and history. The meta-test
(`MLRSNetScheduler`) runs on both.

Example (command line, a run with the reference's details; `meta_train`
below runs one in miniature):

```
keras-autolr mlrsnet meta-train --task image --data cifar10 --n-train 10000 \\
    --epochs 30 --t-val epoch --checkpoint-dir runs/mlrsnet_image --out mlrsnet_image.keras
```
"""

import contextlib
import json
import math
import pathlib
import time
import zipfile

import keras
import numpy as np
from keras import ops

from keras_autolr.runtime import io as io_lib
from keras_autolr.runtime import lr as lr_lib
from keras_autolr.runtime import snapshot as snapshot_lib
from keras_autolr.runtime.mlrsnet import gamma as gamma_lib
from keras_autolr.runtime.mlrsnet.gamma import EmptyDataError
from keras_autolr.runtime.mlrsnet.net import MLRSNet, cell_step, check_mode, get_cell

__all__ = ["carve_validation", "meta_train", "checkpoint_epochs", "meta_update_steps", "augment_images",
           "LEGACY_OPTIONS"]

# The meta-training details of every run before issue 18.3 (the shipped `mlrsnet_image*` / `mlrsnet_text*`
# nets): what a resume snapshot without an "options" record was written with.
LEGACY_OPTIONS = {"cell": "meta_test", "augment": False, "lookahead_weight_decay": False, "meta_schedule": "global"}
META_SCHEDULES = ("reference", "global")


def carve_validation(x, y, val_size, num_classes=None, seed=0):
    """Splits (x, y) into train and a held-out validation part of `val_size`.

    Balanced per class when `y` is a 1-D label vector and `num_classes` is
    given (the reference: 100 images per CIFAR-10 class); random otherwise.

    Args:
        x, y: the training data (numpy).
        val_size: the number of validation examples, 1 to `len(x) - 1`.
        num_classes: classes, for a balanced split (`None`: random).
        seed: seeds the draw.

    Returns:
        `(x_train, y_train, x_val, y_val)`.

    Raises:
        EmptyDataError: `x` is empty.
        ValueError: `val_size` is out of range.

    Example:

    ```python
    import numpy as np
    from keras_autolr.pipelines.mlrsnet.meta_train import carve_validation

    x, y = np.arange(40.0).reshape(20, 2), np.repeat([0, 1], 10)
    xt, yt, xv, yv = carve_validation(x, y, val_size=6, num_classes=2)
    print(len(xt), np.bincount(yv))  # 14 [3 3]
    ```
    """
    n = len(x)
    if n == 0:
        raise EmptyDataError("The training data is empty: nothing to meta-train on.")
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be between 1 and {n - 1} (the training set size - 1), got {val_size}.")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    if num_classes and y.ndim == 1:
        per = val_size // num_classes
        idx = []
        for k in range(num_classes):
            members = np.flatnonzero(y == k)
            idx.extend(rng.permutation(members)[:per])
        idx = np.array(idx, dtype=int)
        if len(idx) < val_size:
            rest = np.setdiff1d(np.arange(n), idx)
            idx = np.concatenate([idx, rng.permutation(rest)[: val_size - len(idx)]])
    else:
        idx = rng.permutation(n)[:val_size]
    mask = np.zeros(n, bool)
    mask[idx] = True
    return x[~mask], y[~mask], x[mask], y[mask]


def checkpoint_epochs(epochs):
    """Returns the reference's early / middle / late checkpoint epochs: 1, E/2, E.

    Args:
        epochs: the length of the meta-training run.

    Example:

    ```python
    from keras_autolr.pipelines.mlrsnet.meta_train import checkpoint_epochs

    print(checkpoint_epochs(30), checkpoint_epochs(1))  # [1, 15, 30] [1]
    ```
    """
    return sorted({1, max(1, epochs // 2), epochs})


def meta_update_steps(steps_per_epoch, t_val, *, epoch=0, mode="image", meta_schedule="reference"):
    """The batches (0-based, within epoch `epoch`) on which `meta_train` updates theta.

    "reference" counts batches within each epoch as the official code does:
    image mode updates on batch i when `(i + 1) % t_val == 0` (t_val 300 at
    390 batches per epoch: batch 299 only), text mode when `i % t_val == 0`
    (batch 0, t_val, ...). "global" (every run before issue 18.3) counts
    from the run's first step: global step `epoch * steps_per_epoch + i`
    with `step % t_val == 0`. `t_val="epoch"` means t_val = steps_per_epoch:
    one update per epoch whatever the data size.

    Args:
        steps_per_epoch: batches per epoch.
        t_val: batches between meta updates (an int >= 1) or "epoch".
        epoch: the 0-based epoch (only "global" depends on it).
        mode: "image" or "text" (the reference's two loops differ).
        meta_schedule: "reference" or "global".

    Returns:
        A sorted list of batch indices in `range(steps_per_epoch)`.

    Raises:
        ValueError: a bad `t_val`, `mode` or `meta_schedule`.

    Example:

    ```python
    from keras_autolr.pipelines.mlrsnet.meta_train import meta_update_steps

    print(meta_update_steps(390, 300), meta_update_steps(7, 3, mode="text"))  # [299] [0, 3, 6]
    print(meta_update_steps(148, "epoch"), meta_update_steps(5, 2, epoch=1, meta_schedule="global"))  # [147] [1, 3]
    ```
    """
    steps, t = int(steps_per_epoch), _resolve_t_val(t_val, steps_per_epoch)
    if meta_schedule not in META_SCHEDULES:
        raise ValueError(f"meta_schedule must be one of {META_SCHEDULES}, got {meta_schedule!r}.")
    if mode not in ("image", "text"):
        raise ValueError(f"mode must be 'image' or 'text', got {mode!r}.")
    if meta_schedule == "global":
        return [i for i in range(steps) if (epoch * steps + i) % t == 0]
    phase = 1 if mode == "image" else 0
    return [i for i in range(steps) if (i + phase) % t == 0]


def _resolve_t_val(t_val, steps_per_epoch):
    if t_val == "epoch":
        return max(1, int(steps_per_epoch))
    if isinstance(t_val, str) or int(t_val) != t_val or int(t_val) < 1:
        raise ValueError(f"t_val must be a whole number of batches >= 1 or 'epoch', got {t_val!r}.")
    return int(t_val)


def augment_images(x, rng, pad=4, flip=True):
    """Random crop (zero padding of `pad`) and random horizontal flip of an image batch, in numpy.

    The reference's CIFAR `transform_train` (`RandomCrop(32, padding=4)`,
    `RandomHorizontalFlip()`), per example. The padding is 0 in the input's
    own units (for standardised inputs, the mean colour; the reference pads
    black before normalising). Deterministic given `rng`'s state.

    Args:
        x: images, shape (B, H, W, C).
        rng: a `numpy.random.Generator`.
        pad: pixels of zero padding on each side before the crop (0: no crop).
        flip: flip each image left-right with probability 1/2.

    Returns:
        An array of `x`'s shape and dtype.

    Raises:
        ValueError: `x` is not 4-D.

    Example:

    ```python
    import numpy as np
    from keras_autolr.pipelines.mlrsnet.meta_train import augment_images

    x = np.arange(2 * 8 * 8 * 3, dtype="float32").reshape(2, 8, 8, 3)
    a = augment_images(x, np.random.default_rng(0))
    b = augment_images(x, np.random.default_rng(0))
    print(a.shape, np.array_equal(a, b))  # (2, 8, 8, 3) True
    ```
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"augment_images takes image batches of shape (B, H, W, C), got shape {x.shape}.")
    b, hgt, wid, _ = x.shape
    # Draws in a fixed order (offsets, then flips) whatever the options, so a seed means one thing.
    oy, ox = rng.integers(0, 2 * pad + 1, size=(2, b))
    flips = rng.random(b) < 0.5
    if pad:
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        rows = (oy[:, None] + np.arange(hgt))[:, :, None]
        cols = (ox[:, None] + np.arange(wid))[:, None, :]
        x = padded[np.arange(b)[:, None, None], rows, cols]
    if flip:
        x = np.where(flips[:, None, None, None], x[:, :, ::-1], x)
    return x


def meta_train(model, x, y, *, loss=None, net=None, mode="image", num_classes=None, vocab_size=None,
               val_size=1000, t_val=300, epochs=10, batch_size=128, momentum=0.0, weight_decay=5e-4,
               clipnorm=None, meta_lr=1e-3, meta_weight_decay=1e-4, gamma="auto", gamma_samples=5000,
               checkpoint_dir=None, checkpoints=None, seed=0, x_test=None, y_test=None, log=print, cell=None,
               augment="auto", lookahead_weight_decay=True, meta_schedule="reference"):
    """Meta-trains an MLR-SNet while training `model` on (x, y).

    Args:
        model: an uncompiled (or compiled) Keras model producing logits.
        x, y: training data (numpy); the validation split is carved from it.
        loss: a Keras loss (default sparse categorical cross-entropy from logits).
        net: an `MLRSNet` to continue from (default a fresh one of `mode`).
        mode: "image" or "text".
        num_classes: classes (image; gamma rule and balanced validation split).
        vocab_size: vocabulary size (text; net input is loss / log(vocab)).
        val_size: validation examples carved from (x, y).
        t_val: batches between theta updates, or "epoch" (one per epoch);
            which batches: `meta_update_steps`. The reference's 300 at
            batch 128 on CIFAR-10 is one update per epoch; on a subset with
            fewer than t_val batches per epoch "reference" would never
            update theta (an error), so pass "epoch" there.
        epochs, batch_size: the model's training run.
        momentum, weight_decay, clipnorm: the model's SGD.
        meta_lr, meta_weight_decay: Adam on theta.
        gamma: "auto" (image: reference rule on the initial loss of up to
            `gamma_samples` training examples; text: 40) or a float.
        checkpoint_dir: where net checkpoints, the resume snapshot and
            `history.json` go (None: no files, no resume). Every file is
            written atomically; the run holds `checkpoint_dir/.lock`.
        checkpoints: epochs at which to save the net (default 1, E/2, E).
        x_test, y_test: optional data evaluated each epoch (reported only).
        log: called with one line of text per epoch.
        cell: the net's LSTM cell, "meta_train" (the official meta-training
            cell; default for a fresh net) or "meta_test" (the cell of the
            nets shipped before issue 18.3). None with `net`: the net's own
            cell; a different one is an error.
        augment: "auto" (random crop + flip for image mode with (H, W, C)
            inputs, none otherwise), True or False (`augment_images`, on
            every training and meta-validation batch, seeded by `seed` and
            the epoch).
        lookahead_weight_decay: include the model's `weight_decay` in the
            lookahead, w_hat = w - a * (g + wd * w) (the reference, the
            default; False: w - a * g, the runs before issue 18.3).
        meta_schedule: "reference" (batches counted within each epoch, the
            official code) or "global" (from the run's first step, before
            issue 18.3); see `meta_update_steps`.

    Returns:
        (net, history) where history is a list of per-epoch dicts
        (`meta_updates`: the theta updates of that epoch).

    Raises:
        NotImplementedError: the backend is neither TensorFlow nor JAX.
        EmptyDataError: `x` is empty.
        ValueError: text mode without `vocab_size`, a bad `val_size`,
            `t_val`, `cell` or `augment`, a schedule that never updates
            theta, an unreadable resume snapshot, or one written with other
            options (the message says what to do).
        keras_autolr.runtime.io.OutputLockedError: another process is
            meta-training into `checkpoint_dir`.

    Example:

    ```python
    import pathlib

    import keras
    import numpy as np
    from keras_autolr.pipelines.mlrsnet.meta_train import meta_train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])  # logits
    net, history = meta_train(model, x, y, num_classes=2, val_size=32, t_val=2, epochs=2,
                              batch_size=16, checkpoint_dir="mlrsnet_run", log=lambda s: None)
    print(len(history), sorted(p.name for p in pathlib.Path("mlrsnet_run").iterdir()))
    # 2 ['.lock', 'history.json', 'mlrsnet_epoch001.keras', 'mlrsnet_epoch002.keras', 'resume.npz']
    ```
    """
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise NotImplementedError(
            f"meta_train runs on the TensorFlow and JAX backends, not {backend!r}; "
            "the trained net then works on any backend."
        )
    if len(x) == 0:
        raise EmptyDataError("The training data is empty: nothing to meta-train on.")
    if net is None:
        net = MLRSNet(mode=mode, seed=seed, cell=cell or "meta_train")
    elif cell is not None and get_cell(cell).name != net.cell.name:
        raise ValueError(f"net runs the {net.cell.name!r} cell but cell={get_cell(cell).name!r}; pass cell=None "
                         "to continue with the net's own cell, or no net to start a fresh one with this cell.")
    check_mode(net, mode)
    if mode == "text" and not vocab_size:
        raise ValueError("Text meta-training needs vocab_size (the net's input is loss / log(vocab)).")
    norm = math.log(vocab_size) if mode == "text" else 1.0
    loss_fn = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    xt, yt, xv, yv = carve_validation(x, y, val_size, num_classes if mode == "image" else None, seed)
    steps = max(1, len(xt) // batch_size)
    augment = _resolve_augment(augment, mode, xt)
    first_epoch = meta_update_steps(steps, t_val, mode=mode, meta_schedule=meta_schedule)  # also checks them
    if meta_schedule == "reference" and not first_epoch:
        raise ValueError(
            f"t_val={t_val} exceeds the {steps} batches per epoch: with meta_schedule='reference' (batches counted "
            "within each epoch, as the official code) theta would never be updated. Pass t_val='epoch' (one "
            f"update per epoch) or a t_val <= {steps}.")
    options = {"cell": net.cell.name, "augment": augment, "lookahead_weight_decay": bool(lookahead_weight_decay),
               "meta_schedule": meta_schedule, "t_val": t_val}
    wd_lookahead = float(weight_decay or 0.0) if lookahead_weight_decay else 0.0
    keras.utils.set_random_seed(seed)

    model_opt = keras.optimizers.SGD(1.0, momentum=momentum, weight_decay=weight_decay or None)
    meta_opt = keras.optimizers.Adam(meta_lr, weight_decay=meta_weight_decay or None)
    model.compile(optimizer=model_opt, loss=loss_fn)
    if not model.built:
        model.build((None,) + tuple(xt.shape[1:]))
    params = net.params
    model_opt.build(model.trainable_variables)
    meta_opt.build(params)
    h = keras.Variable(np.zeros((1, net.hidden), "float32"), trainable=False, name="h")
    c = keras.Variable(np.zeros((1, net.hidden), "float32"), trainable=False, name="c")

    # gamma: the reference's rule on the initial training loss.
    if gamma == "auto":
        if mode == "text":
            gamma = gamma_lib.TEXT_GAMMA
        else:
            n = min(len(xt), gamma_samples)
            l0 = gamma_lib.initial_loss(model, xt[:n], yt[:n], batch_size=256)
            gamma = gamma_lib.gamma_from_loss(l0, num_classes)
    gamma = float(gamma)

    ckdir = pathlib.Path(checkpoint_dir) if checkpoint_dir else None
    keep = set(checkpoints or checkpoint_epochs(epochs))
    if ckdir is not None:
        ckdir.mkdir(parents=True, exist_ok=True)
    # Two runs on one folder would overwrite each other's snapshots: the second stops at once.
    with io_lib.exclusive_lock(ckdir / ".lock", ckdir) if ckdir is not None else contextlib.nullcontext():
        history, start, rng, vpos = [], 0, np.random.default_rng(seed), 0
        state_vars = [h, c] + list(model.variables) + list(model_opt.variables) + list(params) + list(meta_opt.variables)
        if ckdir is not None:  # a killed run's temporary files (`io.atomic_path` names), ours under the lock
            for leftover in [*ckdir.glob(".*.tmp"), *ckdir.glob(".*.tmp.keras")]:
                leftover.unlink(missing_ok=True)
        meta = _load_resume(ckdir, state_vars) if ckdir is not None else None
        if meta is not None:
            _check_options(meta.get("options", LEGACY_OPTIONS), options, ckdir)
            history, start, gamma = meta["history"], meta["epoch"], meta["gamma"]
            if "order_rng" in meta:  # the data order and meta-validation position go on as uninterrupted
                rng.bit_generator.state = meta["order_rng"]
                vpos = int(meta["val_position"])
            else:  # a snapshot from before they were saved: a fresh stream
                rng = np.random.default_rng(seed + 7919 * start)
            log(f"resumed at epoch {start}")

        # Built after a resume, which restores gamma.
        make_steps = _tf_steps if backend == "tensorflow" else _jax_steps
        train_step, meta_step, to_state, from_state = make_steps(
            model, loss_fn, model_opt, meta_opt, params, h, c, gamma, norm, clipnorm, net.cell, wd_lookahead)
        for epoch in range(start, epochs):
            to_state()  # variables -> the steps' state (JAX; a no-op on TF)
            t0 = time.time()
            order = rng.permutation(len(xt))
            # Its own stream per epoch, from the seed and the epoch only.
            aug_rng = np.random.default_rng((seed, 183, epoch)) if augment else None
            meta_at = set(meta_update_steps(steps, t_val, epoch=epoch, mode=mode, meta_schedule=meta_schedule))
            losses, lrs, vals = [], [], []
            for s in range(steps):
                idx = order[s * batch_size:(s + 1) * batch_size]
                xb, yb = xt[idx], yt[idx]
                if augment:
                    xb = augment_images(xb, aug_rng)
                if s in meta_at:
                    vidx = np.arange(vpos, vpos + batch_size) % len(xv)
                    vpos = (vpos + batch_size) % len(xv)
                    xvb = augment_images(xv[vidx], aug_rng) if augment else xv[vidx]
                    lb, a, lv = meta_step(xb, yb, xvb, yv[vidx])
                    vals.append(float(lv))
                else:
                    lb, a = train_step(xb, yb)
                losses.append(float(lb))
                lrs.append(float(a))
            rec = {
                "epoch": epoch + 1, "loss": float(np.nanmean(losses)), "lr_mean": float(np.mean(lrs)),
                "lr_first": lrs[0], "lr_last": lrs[-1], "lr_trace": lrs[:: max(1, steps // 10)],
                "meta_val_loss": float(np.mean(vals)) if vals else None, "meta_updates": len(vals),
                "seconds": time.time() - t0,
            }
            from_state()  # the steps' state -> variables, for evaluation and snapshots
            if x_test is not None:
                ev = model.evaluate(x_test, y_test, batch_size=256, verbose=0, return_dict=True)
                rec["test_loss"] = ev["loss"]
                if mode == "text":
                    rec["test_perplexity"] = float(np.exp(ev["loss"]))
                else:
                    probs = model.predict(x_test, batch_size=256, verbose=0)
                    rec["test_accuracy"] = float(np.mean(np.argmax(probs, -1) == np.asarray(y_test)))
            history.append(rec)
            log(json.dumps({k: v for k, v in rec.items() if k != "lr_trace"}))
            net.meta = {"gamma": gamma, "epochs_meta_trained": epoch + 1, "t_val": t_val, "mode": mode, **options}
            if ckdir is not None:
                if (epoch + 1) in keep:
                    with io_lib.atomic_path(ckdir / f"mlrsnet_epoch{epoch + 1:03d}.keras", suffix=".tmp.keras") as tmp:
                        net.save(tmp)  # Keras wants the ".keras" ending
                meta = {"epoch": epoch + 1, "gamma": gamma, "history": history, "options": options,
                        "order_rng": rng.bit_generator.state, "val_position": vpos}
                # The snapshot carries its own epoch and history: one atomic file, so a kill between two
                # writes cannot pair the weights of one epoch with the history of another.
                io_lib.atomic_save_npz(ckdir / "resume.npz", meta=np.array(json.dumps(meta)),
                                       **{f"a{i}": a for i, a in enumerate(snapshot_lib.variable_values(state_vars))})
                io_lib.atomic_write_json(ckdir / "history.json", meta, indent=None)  # a readable copy
        return net, history


def _resolve_augment(augment, mode, x):
    if augment == "auto":
        return mode == "image" and x.ndim == 4
    if augment not in (True, False):
        raise ValueError(f"augment must be 'auto', True or False, got {augment!r}.")
    if augment and x.ndim != 4:
        raise ValueError(f"augment=True needs image inputs of shape (N, H, W, C), got {x.shape}; pass augment=False.")
    return bool(augment)


def _check_options(saved, options, ckdir):
    """Raises unless a resume snapshot was written with `options` (a run must not change its details midway)."""
    # A key the snapshot did not record (t_val before it was recorded) cannot be checked.
    diff = {k: (saved[k], v) for k, v in options.items() if k in saved and saved[k] != v}
    if diff:
        said = ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in diff.items())
        raise ValueError(
            f"The resume snapshot in {str(ckdir)!r} was meta-trained with {said}. Resume with the snapshot's options, "
            "or pass another checkpoint_dir (or delete its resume.npz) to start a run with the new ones.")


def _load_resume(ckdir, state_vars):
    """Assigns `ckdir`'s resume snapshot to `state_vars`; returns its meta dict (None: no snapshot)."""
    snap = ckdir / "resume.npz"
    if not snap.exists():
        return None
    try:
        with np.load(snap) as data:
            arrays = {k: data[k] for k in data.files}
        # Older snapshots kept the epoch and history only in history.json.
        meta = arrays.pop("meta", None)
        meta = json.loads(str(meta)) if meta is not None else json.loads((ckdir / "history.json").read_text())
        missing = {"history", "epoch", "gamma"} - set(meta)
        if missing:
            raise KeyError(f"no {sorted(missing)}")
    except (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"The meta-training resume snapshot {str(snap)!r} is unreadable ({type(err).__name__}: {err}). "
            f"Delete {snap.name!r} to restart from epoch 0 (the net checkpoints there stay), or pass another "
            "checkpoint_dir.") from err
    # Every array of the file, so a file from another run fails clearly.
    snapshot_lib.assign_values(state_vars, [arrays[f"a{i}"] for i in range(len(arrays))], "meta-training variables")
    return meta


def _tf_steps(model, loss_fn, model_opt, meta_opt, params, h, c, gamma, norm, clipnorm, cell, wd):
    """(train_step, meta_step, to_state, from_state) as `tf.function`s on the variables."""
    import tensorflow as tf

    tw = model.trainable_variables
    ntw = model.non_trainable_variables

    def clip(grads):
        if clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, clipnorm)
        return grads

    def forward_loss(xb, yb):
        y_pred = model(xb, training=True)
        return loss_fn(yb, y_pred) + (ops.sum(model.losses) if model.losses else 0.0)

    def _predict(lb):
        p, h2, c2 = cell_step([v.value for v in params], lb / norm, h.value, c.value, cell)
        return gamma * ops.reshape(p, ()), h2, c2

    def model_step(lb, grads):
        a, h2, c2 = _predict(lb)
        lr_lib.assign_learning_rate(model_opt, a)
        model_opt.apply(grads, tw)
        h.assign(h2)
        c.assign(c2)
        return a

    @tf.function(jit_compile=False)
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            lb = forward_loss(xb, yb)
        grads = clip(tape.gradient(lb, tw))
        return lb, model_step(lb, grads)

    @tf.function(jit_compile=False)
    def meta_step(xb, yb, xvb, yvb):
        with tf.GradientTape() as tape:
            lb = forward_loss(xb, yb)
        grads = clip(tape.gradient(lb, tw))
        lb = tf.stop_gradient(lb)
        with tf.GradientTape() as meta_tape:
            a, _, _ = _predict(lb)
            # The official MetaSGD step: coupled weight decay, which for momentum 0 is Keras's SGD step too.
            w_hat = [w - a * tf.stop_gradient(g + wd * w) for w, g in zip(tw, grads)]
            yv_pred, _ = model.stateless_call(w_hat, [v.value for v in ntw], xvb, training=True)
            lv = loss_fn(yvb, yv_pred)
        dtheta = meta_tape.gradient(lv, params)
        meta_opt.apply(dtheta, params)
        return lb, model_step(lb, grads), lv

    def noop():
        return None

    return (lambda xb, yb: train_step(tf.constant(xb), tf.constant(yb)),
            lambda xb, yb, xv, yv: meta_step(tf.constant(xb), tf.constant(yb), tf.constant(xv), tf.constant(yv)),
            noop, noop)


def _jax_steps(model, loss_fn, model_opt, meta_opt, params, h, c, gamma, norm, clipnorm, cell, wd):
    """The same steps as pure functions of an explicit state, under `jax.jit`.

    The state (model weights, BN statistics and seeds, both optimizers,
    theta, the LSTM state) lives in a dict between steps and is copied from and
    back to the Keras variables once per epoch.
    """
    import jax
    import jax.numpy as jnp

    groups = {
        "tv": model.trainable_variables, "ntv": model.non_trainable_variables,
        "ov": model_opt.variables, "theta": list(params), "mv": meta_opt.variables, "hc": [h, c],
    }
    state = {}

    def to_state():
        state.update({k: [v.value for v in vs] for k, vs in groups.items()})

    def from_state():
        for k, vs in groups.items():
            for v, val in zip(vs, state[k]):
                v.assign(val)

    def clip(grads):
        if not clipnorm:
            return grads
        norm_ = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in grads))
        scale = jnp.minimum(1.0, clipnorm / jnp.maximum(norm_, 1e-12))
        return [g * scale for g in grads]

    def forward_loss(tv, ntv, xb, yb):
        y_pred, ntv2, losses = model.stateless_call(tv, ntv, xb, training=True, return_losses=True)
        total = loss_fn(yb, y_pred) + (sum(losses) if losses else 0.0)
        return total, ntv2

    def predict(theta, lb, hc):
        p, h2, c2 = cell_step(theta, lb / norm, hc[0], hc[1], cell)
        return gamma * jnp.reshape(p, ()), [h2, c2]

    def model_step(st, lb, grads, ntv2):
        a, hc = predict(st["theta"], lb, st["hc"])
        tv, ov = model_opt.stateless_apply(lr_lib.stateless_learning_rate(model_opt, st["ov"], a), grads, st["tv"])
        return dict(st, tv=tv, ov=ov, ntv=ntv2, hc=hc), a

    def grads_of(st, xb, yb):
        (lb, ntv2), grads = jax.value_and_grad(forward_loss, has_aux=True)(st["tv"], st["ntv"], xb, yb)
        return lb, clip(grads), ntv2

    @jax.jit
    def train_step(st, xb, yb):
        lb, grads, ntv2 = grads_of(st, xb, yb)
        st, a = model_step(st, lb, grads, ntv2)
        return st, lb, a

    @jax.jit
    def meta_step(st, xb, yb, xvb, yvb):
        lb, grads, ntv2 = grads_of(st, xb, yb)
        lb = jax.lax.stop_gradient(lb)
        grads_c = [jax.lax.stop_gradient(g) for g in grads]  # w and g constants: first order in theta

        def val_loss(theta):
            a, _ = predict(theta, lb, st["hc"])
            w_hat = [w - a * (g + wd * w) for w, g in zip(st["tv"], grads_c)]
            yv_pred, _ = model.stateless_call(w_hat, st["ntv"], xvb, training=True)
            return loss_fn(yvb, yv_pred)

        lv, dtheta = jax.value_and_grad(val_loss)(st["theta"])
        theta, mv = meta_opt.stateless_apply(st["mv"], dtheta, st["theta"])
        st, a = model_step(dict(st, theta=theta, mv=mv), lb, grads, ntv2)
        return st, lb, a, lv

    def run_train(xb, yb):
        new, lb, a = train_step(state, jnp.asarray(xb), jnp.asarray(yb))
        state.update(new)
        return lb, a

    def run_meta(xb, yb, xv, yv):
        new, lb, a, lv = meta_step(state, jnp.asarray(xb), jnp.asarray(yb), jnp.asarray(xv), jnp.asarray(yv))
        state.update(new)
        return lb, a, lv

    return run_train, run_meta, to_state, from_state
