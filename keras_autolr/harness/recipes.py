"""Small, CPU-sized tasks used to meta-train and evaluate MLR-SNet.

Purpose: one place for the models and data cuts of the scaled-down runs
(the shipped nets, the reproductions, the benchmark), so the commands in the
model card rebuild exactly what was shipped.

* `small_cnn(input_shape, num_classes)`: 3 conv blocks with BatchNorm and
  global average pooling (about 60k parameters), the image task's model;
* `small_lm(vocab, embed, units)`: Embedding -> LSTM -> Dense, the text
  task's model (the reference uses a 2-layer 512/512 tied LSTM: full size
  behind `--full` in the scripts);
* `image_data(name, n_train, seed)` / `text_data(name, n_tokens, seq_len)`:
  numpy arrays from `keras_autolr.harness.datasets`.
"""

import keras
import numpy as np

from keras_autolr.harness import datasets

__all__ = ["small_cnn", "small_lm", "image_data", "text_data"]


def small_cnn(input_shape, num_classes, width=32, seed=None, bn_momentum=0.99):
    """A small CNN (conv-BN-ReLU x3, global pooling, dense logits).

    `bn_momentum` 0.99 (Keras's default) was used for the shipped image net;
    short runs (a few hundred steps) need 0.9 so the moving statistics used
    at evaluation catch up.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = inputs
    for i, f in enumerate((width, 2 * width, 2 * width)):
        x = keras.layers.Conv2D(f, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=bn_momentum)(x)
        x = keras.layers.ReLU()(x)
        if i < 2:
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def small_lm(vocab, embed=64, units=128, seq_len=35, layers=1, dropout=0.0, seed=None):
    """A word/char LSTM language model producing per-token logits."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input((seq_len,), dtype="int32")
    x = keras.layers.Embedding(vocab, embed)(inputs)
    for _ in range(layers):
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
        x = keras.layers.LSTM(units, return_sequences=True)(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(vocab)(x)
    return keras.Model(inputs, outputs, name="small_lm")


def image_data(name, n_train=None, n_test=None, seed=0):
    """(x_train, y_train, x_test, y_test, num_classes) of an image set."""
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
    """(x_train, y_train, x_test, y_test, vocab) LM sequences of a text set."""
    split = datasets.load(name)
    train = split.x_train[:n_tokens] if n_tokens else split.x_train
    test = split.x_test[:n_test_tokens] if n_test_tokens else split.x_test
    x, y = datasets.lm_sequences(train, seq_len)
    xt, yt = datasets.lm_sequences(test, seq_len)
    return x, y, xt, yt, split.num_classes
