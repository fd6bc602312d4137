"""The data cuts and models of MLR-SNet's CPU-sized runs (the shipped nets' meta-training).

Purpose: one name for what the commands in `saved_controllers/mlrsnet.md`
build, so they rebuild exactly what was shipped. The models are
`harness.models.small_bn_cnn` / `small_lm` (re-exported here under their
recipe names); the data cuts are numpy arrays from `harness.datasets`:

* `small_cnn(input_shape, num_classes)`: 3 conv blocks with BatchNorm and
  global average pooling (about 60k parameters), the image task's model;
* `small_lm(vocab, embed, units)`: Embedding -> LSTM -> Dense, the text
  task's model (the reference uses a 2-layer 512/512 tied LSTM: full size
  behind `--full` in the scripts);
* `image_data(name, n_train, seed)` / `text_data(name, n_tokens, seq_len)`;
* `meta_training(task, ...)`: all of the above put together, the keyword
  arguments of `keras_autolr.pipelines.mlrsnet.meta_train.meta_train` for
  one run (what `keras-autolr mlrsnet meta-train` and
  `reproductions/mlrsnet_meta_train.py` both run).

Example:

```python
from keras_autolr.harness import recipes

model = recipes.small_cnn((28, 28, 1), 10, width=4, seed=0)
assert model.output_shape == (None, 10)
```
"""

import numpy as np

from keras_autolr.harness import datasets, models

__all__ = ["small_cnn", "small_lm", "image_data", "text_data", "meta_training", "DEFAULT_DATA", "META_DETAILS"]

# The data set each meta-training mode uses unless told otherwise.
DEFAULT_DATA = {"image": "cifar10", "text": "ptb"}

# `meta_train` keyword arguments of each set of meta-training details (issue 18.3): "reference" is the official
# code's (meta_train's own defaults), "shipped" what the shipped mlrsnet_image* / mlrsnet_text* nets were
# meta-trained with (= meta_train.LEGACY_OPTIONS; a test keeps the two equal).
META_DETAILS = {
    "reference": {},
    "shipped": {"cell": "meta_test", "augment": False, "lookahead_weight_decay": False, "meta_schedule": "global"},
}
# Default t_val per (details, task). Reference image: "epoch", one theta update per epoch, the official rate
# (t_val 300 at ~390 batches per CIFAR-10 epoch), since at CPU sizes an epoch has fewer than 300 batches (20k
# images: 148); reference text: 50 (the official 300 at ~830 PTB batches is ~3 per epoch; our 100k-token subset
# has ~58 batches, so 50 gives 2). "shipped": the defaults before issue 18.3.
_T_VAL = {("reference", "image"): "epoch", ("reference", "text"): 50, ("shipped", "image"): 20, ("shipped", "text"): 50}

# The recipe names of the shipped nets' models (one definition, in harness.models).
small_cnn = models.small_bn_cnn
small_lm = models.small_lm


def image_data(name, n_train=None, n_test=None, seed=0):
    """(x_train, y_train, x_test, y_test, num_classes) of an image set, as MLR-SNet meta-trains on it.

    Args:
        name: a `harness.datasets` image set ("cifar10", "fashion_mnist", ...).
        n_train: first `n_train` of the loader's random training subset (None: all).
        n_test: random test subset of this size (None: all).
        seed: subset seed.

    Example:

    ```python
    from keras_autolr.harness import recipes

    x, y, xt, yt, classes = recipes.image_data("digits", n_train=200, n_test=50)
    assert x.shape == (200, 8, 8, 1) and len(xt) == 50 and classes == 10
    ```
    """
    kwargs = {"seed": seed}
    if n_train:
        kwargs["n_train"] = n_train
    split = datasets.load(name, **kwargs)
    x, y = split.x_train, split.y_train
    if n_train and len(x) > n_train:
        x, y = x[:n_train], y[:n_train]
    xt, yt = split.x_test, split.y_test
    if n_test and len(xt) > n_test:
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(xt))[:n_test]
        xt, yt = xt[idx], yt[idx]
    if x.ndim == 3:
        x, xt = x[..., None], xt[..., None]
    return x.astype("float32"), np.asarray(y, "int32"), xt.astype("float32"), np.asarray(yt, "int32"), split.num_classes


def text_data(name, n_tokens=None, n_test_tokens=None, seq_len=35):
    """(x_train, y_train, x_test, y_test, vocab) language-model sequences of a text set.

    Args:
        name: "ptb" or "tiny_shakespeare".
        n_tokens: first `n_tokens` training tokens (None: all).
        n_test_tokens: first test tokens (None: all).
        seq_len: sequence length (targets are the inputs shifted by one).

    Example:

    ```python
    from keras_autolr.harness import recipes

    x, y, xt, yt, vocab = recipes.text_data("tiny_shakespeare", n_tokens=2001, n_test_tokens=501, seq_len=50)
    assert x.shape == (40, 50) and (x[0, 1:] == y[0, :-1]).all() and vocab == 65
    ```
    """
    split = datasets.load(name)
    train = split.x_train[:n_tokens] if n_tokens else split.x_train
    test = split.x_test[:n_test_tokens] if n_test_tokens else split.x_test
    x, y = datasets.lm_sequences(train, seq_len)
    xt, yt = datasets.lm_sequences(test, seq_len)
    return x, y, xt, yt, split.num_classes


def meta_training(task="image", *, data=None, n_train=None, n_tokens=None, epochs=30, batch_size=None,
                  t_val=None, val_size=1000, width=32, units=128, seq_len=35, seed=0, details="reference",
                  cell=None, augment=None):
    """The keyword arguments of `meta_train` for one MLR-SNet meta-training run (model, data, settings).

    Image: `small_cnn` (BatchNorm momentum 0.99, as the shipped net) on
    `image_data` (2,000 test images), SGD without momentum, weight decay
    5e-4. Text: `small_lm` on `text_data` (20,000 test tokens), weight decay
    5e-6, gradient norm clipped at 0.25. The model is built (seeded) here.
    `details` picks the meta-training details (`META_DETAILS`): "reference"
    (the official code's: meta-training cell, weight decay in the lookahead,
    crop + flip augmentation of images, theta updated once per epoch) or
    "shipped" (what the shipped nets were meta-trained with).

    Args:
        task: "image" or "text".
        data: data set name (default `DEFAULT_DATA[task]`).
        n_train: image training subset (None: all).
        n_tokens: text training tokens (None: all).
        epochs: meta-training epochs.
        batch_size: default 128 image, 32 text.
        t_val: batches between meta updates, or "epoch" (default: "epoch"
            image, 50 text with "reference" details; 20 image, 50 text with
            "shipped").
        val_size: examples carved off the training data for the meta updates.
        width: image CNN width.
        units: text LSTM units.
        seq_len: text sequence length.
        seed: data subset, model and meta-training seed.
        details: "reference" or "shipped" (`META_DETAILS`).
        cell: overrides the details' LSTM cell ("meta_train" / "meta_test").
        augment: overrides the details' augmentation (True / False).

    Returns:
        dict for `meta_train(**kwargs, checkpoint_dir=...)`: `model`, `x`,
        `y`, `x_test`, `y_test`, `mode`, `epochs`, `val_size`, `seed`,
        `batch_size`, `t_val`, `momentum`, `weight_decay`, and `num_classes`
        (image) or `vocab_size` and `clipnorm` (text), plus the details'
        keys (`cell`, `augment`, `lookahead_weight_decay`, `meta_schedule`)
        that differ from `meta_train`'s defaults.

    Example:

    ```python
    from keras_autolr.harness import recipes

    kw = recipes.meta_training("image", data="digits", n_train=300, epochs=1, width=4)
    assert kw["model"].output_shape == (None, 10) and kw["batch_size"] == 128 and kw["t_val"] == "epoch"
    old = recipes.meta_training("image", data="digits", n_train=300, width=4, details="shipped")
    assert old["cell"] == "meta_test" and old["t_val"] == 20
    ```
    """
    if task not in DEFAULT_DATA:
        raise ValueError(f"task must be 'image' or 'text', got {task!r}.")
    if details not in META_DETAILS:
        raise ValueError(f"details must be one of {sorted(META_DETAILS)}, got {details!r}.")
    t_val = t_val or _T_VAL[(details, task)]
    data = data or DEFAULT_DATA[task]
    if task == "image":
        x, y, xt, yt, classes = image_data(data, n_train=n_train, n_test=2000, seed=seed)
        model = small_cnn(x.shape[1:], classes, width=width, seed=seed)  # BN momentum 0.99
        kwargs = dict(num_classes=classes, batch_size=batch_size or 128, t_val=t_val,
                      momentum=0.0, weight_decay=5e-4)
    else:
        x, y, xt, yt, vocab = text_data(data, n_tokens=n_tokens, n_test_tokens=20000, seq_len=seq_len)
        model = small_lm(vocab, units=units, seq_len=seq_len, seed=seed)
        kwargs = dict(vocab_size=vocab, batch_size=batch_size or 32, t_val=t_val,
                      momentum=0.0, weight_decay=5e-6, clipnorm=0.25)
    kwargs.update(META_DETAILS[details])
    if cell is not None:
        kwargs["cell"] = cell
    if augment is not None:
        kwargs["augment"] = bool(augment)
    return dict(model=model, x=x, y=y, x_test=xt, y_test=yt, mode=task, epochs=epochs, val_size=val_size,
                seed=seed, **kwargs)
