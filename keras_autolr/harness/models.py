"""Every model the project trains, as public factories returning uncompiled `keras.Model`s.

One place for the architectures of the evaluation tasks (`tasks`), the ARC
data-generation zoo, the MLR-SNet recipes, the MCV thesis study and the
feature-history configurations, so scripts, the CLI and the pipelines build
the very same nets:

* evaluation tasks: `conv1d_net` (MNIST-1D), `small_cnn`, `resnet9`
  (cifar10-fast), `lstm_lm` (word/char language model); `plain_cnn` (the
  MCV step-time benchmark's net);
* MLR-SNet: `small_bn_cnn` (conv-BN-ReLU x3), `small_lm` (LSTM LM);
* MCV (the thesis's Table 4.2 / 4.5 nets): `thesis_cnn`, `svhn_cnn`, `vgg11`,
  `resnet18`, each with a `width` multiplier (`MCV_ARCHS` maps names to them);
* ARC zoo: `zoo_model(name, seed)`, the small nets ARC's training data is
  generated on, their initializers seeded by `seed` (`ZOO_MODELS` lists them);
* feature history: `feature_history_config(rng, dataset)` draws a random
  configuration, `feature_history_net(config, input_shape)` builds it.

Models are built fresh on every call; seeding is the caller's
(`keras.utils.set_random_seed`), except the zoo's explicitly seeded
initializers.

Example:

```python
from keras_autolr.harness import models

model = models.conv1d_net((40, 1), 10, width=8)
assert model.output_shape == (None, 10)
```
"""

import keras

__all__ = [
    "conv1d_net",
    "small_cnn",
    "resnet9",
    "lstm_lm",
    "plain_cnn",
    "small_bn_cnn",
    "small_lm",
    "thesis_cnn",
    "svhn_cnn",
    "vgg11",
    "resnet18",
    "MCV_ARCHS",
    "zoo_model",
    "ZOO_MODELS",
    "feature_history_config",
    "feature_history_net",
    "mlp_mixer",
    "char_transformer",
    "dense_autoencoder",
]


# -- evaluation tasks ---------------------------------------------------------


def conv1d_net(input_shape, num_classes, width=32):
    """The MNIST-1D reference CNN shape: three Conv1D layers, ~25k params at width 32.

    Args:
        input_shape: e.g. `(40, 1)`.
        num_classes: softmax outputs.
        width: filters per Conv1D layer.

    Example:

    ```python
    from keras_autolr.harness import models

    assert models.conv1d_net((40, 1), 10, width=8).output_shape == (None, 10)
    ```
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for _ in range(3):
        x = keras.layers.Conv1D(width, 5, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="conv1d_net")


def small_cnn(input_shape, num_classes, width=32):
    """Two 3x3 conv layers, global pooling and a softmax head (the small image tasks' net).

    Args:
        input_shape: e.g. `(28, 28, 1)`.
        num_classes: softmax outputs.
        width: filters of the first conv (the second has twice as many).

    Example:

    ```python
    from keras_autolr.harness import models

    assert models.small_cnn((8, 8, 1), 10, width=4).output_shape == (None, 10)
    ```
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(64, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def resnet9(input_shape, num_classes, width=64, bn_momentum=0.99):
    """cifar10-fast's ResNet-9 (Page, 2018) with a width knob; width=64 is the original.

    cifar10-fast itself uses PyTorch's BatchNorm momentum 0.1, i.e. Keras
    `bn_momentum=0.9`; Keras's default 0.99 lags for several epochs when an
    epoch has few steps (CPU-sized subsets), which misleads LR controllers.

    Args:
        input_shape: e.g. `(32, 32, 3)`.
        num_classes: softmax outputs.
        width: filters of the first conv (64 in the original).
        bn_momentum: Keras BatchNormalization momentum.

    Example:

    ```python
    from keras_autolr.harness import models

    model = models.resnet9((32, 32, 3), 10, width=4, bn_momentum=0.9)
    assert model.name == "resnet9_w4" and model.output_shape == (None, 10)
    ```
    """

    def conv_bn(x, c):
        x = keras.layers.Conv2D(c, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=bn_momentum)(x)
        return keras.layers.ReLU()(x)

    def residual(x, c):
        y = conv_bn(conv_bn(x, c), c)
        return keras.layers.Add()([x, y])

    inputs = keras.Input(input_shape)
    x = conv_bn(inputs, width)
    x = keras.layers.MaxPooling2D(2)(conv_bn(x, 2 * width))
    x = residual(x, 2 * width)
    x = keras.layers.MaxPooling2D(2)(conv_bn(x, 4 * width))
    x = keras.layers.MaxPooling2D(2)(conv_bn(x, 8 * width))
    x = residual(x, 8 * width)
    x = keras.layers.GlobalMaxPooling2D(name="features")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"resnet9_w{width}")


def lstm_lm(vocab, embed, units, dropout=0.5, cell="lstm"):
    """Word/char language model: Embedding -> LSTM (or GRU) -> dropout -> Dense logits.

    Args:
        vocab: vocabulary size (inputs and logits).
        embed: embedding width.
        units: recurrent units.
        dropout: dropout rate after the recurrent layer.
        cell: "lstm" or "gru".

    Example:

    ```python
    from keras_autolr.harness import models

    model = models.lstm_lm(50, 8, 16, cell="gru")
    assert model.output_shape == (None, None, 50)
    ```
    """
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab, embed)(inputs)
    rnn = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    x = rnn(units, return_sequences=True)(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(vocab, name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"{cell}_lm")


def plain_cnn(input_shape, num_classes=10, width=16):
    """Three conv-pool blocks (width, 2x, 4x), a dense layer of 8x width and logits (the MCV step-time benchmark's net).

    Args:
        input_shape: e.g. `(32, 32, 3)` (three 2x2 pools).
        num_classes: logits.
        width: filters of the first conv.

    Example:

    ```python
    from keras_autolr.harness import models

    assert models.plain_cnn((32, 32, 3), 10, width=4).output_shape == (None, 10)
    ```
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for c in (width, 2 * width, 4 * width):
        x = keras.layers.Conv2D(c, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8 * width, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


# -- MLR-SNet ----------------------------------------------------------------


def small_bn_cnn(input_shape, num_classes, width=32, seed=None, bn_momentum=0.99):
    """MLR-SNet's small CNN: conv-BN-ReLU x3 (pooling after the first two), global pooling, dense logits.

    About 60k parameters at width 32. `bn_momentum` 0.99 (Keras's default)
    was used for the shipped image net; short runs (a few hundred steps) need
    0.9 so the moving statistics used at evaluation catch up.

    Args:
        input_shape: e.g. `(32, 32, 3)`.
        num_classes: logits.
        width: filters of the first block (the others have twice as many).
        seed: if given, `keras.utils.set_random_seed(seed)` first.
        bn_momentum: Keras BatchNormalization momentum.

    Example:

    ```python
    from keras_autolr.harness import models

    model = models.small_bn_cnn((28, 28, 1), 10, width=4, seed=0)
    assert model.name == "small_cnn" and model.output_shape == (None, 10)
    ```
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
    # Named "small_cnn" as when the shipped nets were meta-trained.
    return keras.Model(inputs, outputs, name="small_cnn")


def small_lm(vocab, embed=64, units=128, seq_len=35, layers=1, dropout=0.0, seed=None):
    """MLR-SNet's word/char LSTM language model producing per-token logits.

    Args:
        vocab: vocabulary size.
        embed: embedding width.
        units: LSTM units per layer.
        seq_len: input sequence length.
        layers: stacked LSTM layers.
        dropout: dropout before each LSTM and before the logits (0: none).
        seed: if given, `keras.utils.set_random_seed(seed)` first.

    Example:

    ```python
    from keras_autolr.harness import models

    model = models.small_lm(30, embed=8, units=16, seq_len=10, seed=0)
    assert model.output_shape == (None, 10, 30)
    ```
    """
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


# -- MCV thesis nets -----------------------------------------------------------


def _scaled(width):
    return lambda c: max(4, int(round(c * width)))


def thesis_cnn(input_shape, num_classes, width=1.0):
    """The MCV thesis's small CNN: 3x3 convs 48,48,96,96,192,192 (pool after each pair), FC 512, 256, logits.

    Args:
        input_shape: e.g. `(32, 32, 3)`.
        num_classes: logits.
        width: multiplier of every layer's width (at least 4 units each).

    Example:

    ```python
    from keras_autolr.harness import models

    model = models.thesis_cnn((32, 32, 3), 10, width=0.125)
    assert model.name == "thesis_cnn" and model.output_shape == (None, 10)
    ```
    """
    w = _scaled(width)
    inputs = keras.Input(input_shape)
    x = inputs
    for c in (48, 96, 192):
        x = keras.layers.Conv2D(w(c), 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(w(c), 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(w(512), activation="relu")(x)
    x = keras.layers.Dense(w(256), activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="thesis_cnn")


def svhn_cnn(input_shape, num_classes, width=1.0):
    """The MCV thesis's SVHN CNN: 3x3 convs 32, 32, 64, 64 (pool after each pair), FC 512, logits.

    Args:
        input_shape: e.g. `(32, 32, 3)`.
        num_classes: logits.
        width: multiplier of every layer's width (at least 4 units each).

    Example:

    ```python
    from keras_autolr.harness import models

    assert models.svhn_cnn((32, 32, 3), 10, width=0.125).output_shape == (None, 10)
    ```
    """
    w = _scaled(width)
    inputs = keras.Input(input_shape)
    x = inputs
    for c in (32, 64):
        x = keras.layers.Conv2D(w(c), 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(w(c), 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dense(w(512), activation="relu")(keras.layers.Flatten()(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="svhn_cnn")


def vgg11(input_shape, num_classes, width=1.0):
    """VGG-11 (8 convs, 5 max-pools, two dropout FC 512 layers, logits) with a width multiplier.

    Args:
        input_shape: e.g. `(32, 32, 3)` (five 2x2 pools: at least 32x32).
        num_classes: logits.
        width: multiplier of every layer's width (at least 4 units each).

    Example:

    ```python
    from keras_autolr.harness import models

    assert models.vgg11((32, 32, 3), 10, width=0.0625).output_shape == (None, 10)
    ```
    """
    w = _scaled(width)
    inputs = keras.Input(input_shape)
    x = inputs
    for c in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        x = keras.layers.MaxPooling2D(2)(x) if c == "M" else keras.layers.Conv2D(
            w(c), 3, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    for _ in range(2):
        x = keras.layers.Dropout(0.5)(keras.layers.Dense(w(512), activation="relu")(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="vgg11")


def resnet18(input_shape, num_classes, width=1.0):
    """ResNet-18 for 32x32 inputs (3x3 stem, 4 stages of 2 basic blocks, logits) with a width multiplier.

    Args:
        input_shape: e.g. `(32, 32, 3)`.
        num_classes: logits.
        width: multiplier of every layer's width (at least 4 units each).

    Example:

    ```python
    from keras_autolr.harness import models

    assert models.resnet18((16, 16, 3), 10, width=0.0625).output_shape == (None, 10)
    ```
    """
    w = _scaled(width)
    L = keras.layers

    def block(x, c, stride):
        y = L.Conv2D(c, 3, stride, padding="same", use_bias=False)(x)
        y = L.ReLU()(L.BatchNormalization()(y))
        y = L.BatchNormalization()(L.Conv2D(c, 3, padding="same", use_bias=False)(y))
        if stride != 1 or x.shape[-1] != c:
            x = L.BatchNormalization()(L.Conv2D(c, 1, stride, use_bias=False)(x))
        return L.ReLU()(L.Add()([x, y]))

    inputs = keras.Input(input_shape)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(w(64), 3, padding="same", use_bias=False)(inputs)))
    for c, s in ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)):
        x = block(x, w(c), s)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(num_classes)(x), name="resnet18")


MCV_ARCHS = {"cnn": thesis_cnn, "svhn_cnn": svhn_cnn, "vgg11": vgg11, "resnet18": resnet18}


# -- ARC data-generation zoo ---------------------------------------------------
# Every layer's kernel initializer is seeded by the chain's seed, so a chain's
# network is the same on every machine (the generated data depends on it).


def _glorot(seed):
    return keras.initializers.GlorotUniform(seed=seed)


def _mnist1d_conv(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((40, 1)),
        keras.layers.Conv1D(16, 5, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.MaxPooling1D(2),
        keras.layers.Conv1D(32, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _mnist1d_gru(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((40, 1)),
        keras.layers.GRU(32, kernel_initializer=k),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _digits_cnn(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _digits_mlp(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="tanh", kernel_initializer=k),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _fashion_cnn(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((14, 14, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, kernel_initializer=k),
    ])


def _char_gru(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((32,), dtype="int32"),
        keras.layers.Embedding(65, 16, embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)),
        keras.layers.GRU(64, return_sequences=True, kernel_initializer=k),
        keras.layers.Dense(65, kernel_initializer=k),
    ])


def _diabetes_mlp(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((10,)),
        keras.layers.Dense(32, activation="relu", kernel_initializer=k),
        keras.layers.Dense(32, activation="relu", kernel_initializer=k),
        keras.layers.Dense(1, kernel_initializer=k),
    ])


def _segmenter(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=k),
        keras.layers.Conv2D(1, 1, kernel_initializer=k),
    ])


def _sine_conv(seed):
    k = _glorot(seed)
    return keras.Sequential([
        keras.Input((64, 1)),
        keras.layers.Conv1D(16, 7, strides=2, activation="relu", kernel_initializer=k),
        keras.layers.Conv1D(16, 5, strides=2, activation="relu", kernel_initializer=k),
        keras.layers.Flatten(),
        keras.layers.Dense(1, kernel_initializer=k),
    ])


ZOO_MODELS = {
    "mnist1d_conv": _mnist1d_conv,
    "mnist1d_gru": _mnist1d_gru,
    "digits_cnn": _digits_cnn,
    "digits_mlp": _digits_mlp,
    "fashion_cnn": _fashion_cnn,
    "char_gru": _char_gru,
    "diabetes_mlp": _diabetes_mlp,
    "segmenter": _segmenter,
    "sine_conv": _sine_conv,
}


def zoo_model(name, seed=0):
    """One of the ARC zoo's small nets (`ZOO_MODELS`), initializers seeded by `seed`.

    The zoo nets output logits (classifiers, the segmenter) or a value
    (regressors); the same `name` and `seed` give the same weights everywhere.

    Args:
        name: a key of `ZOO_MODELS` ("mnist1d_conv", "mnist1d_gru",
            "digits_cnn", "digits_mlp", "fashion_cnn", "char_gru",
            "diabetes_mlp", "segmenter", "sine_conv").
        seed: seed of every kernel initializer.

    Raises:
        KeyError: unknown name, listing the known ones.

    Example:

    ```python
    import numpy as np
    from keras_autolr.harness import models

    a, b = models.zoo_model("digits_mlp", seed=3), models.zoo_model("digits_mlp", seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    assert a.output_shape == (None, 10)
    ```
    """
    if name not in ZOO_MODELS:
        raise KeyError(f"Unknown ARC zoo model {name!r}; choose one of {sorted(ZOO_MODELS)}.")
    return ZOO_MODELS[name](seed)


# -- feature-history configurations -------------------------------------------


def feature_history_config(rng, dataset):
    """Draws one random feature-history configuration: architecture and optimisation hyperparameters.

    CIFAR-10 always gets a CNN; other data sets an MLP or a CNN. SGD LRs are
    log-uniform in [1e-3, 0.5], Adam's in [1e-4, 0.02].

    Args:
        rng: a `numpy.random.Generator` (the draw order is fixed, so a seed
            reproduces a whole study's configurations).
        dataset: the data set name ("cifar10", "fashion_mnist", ...).

    Returns:
        dict with `arch` ("mlp" | "cnn"), `width`, `depth`, `dropout`,
        `optimizer` ("sgd" | "adam"), `learning_rate`, `batch_size`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.harness import models

    config = models.feature_history_config(np.random.default_rng(1), "cifar10")
    assert config["arch"] == "cnn" and config["optimizer"] in ("sgd", "adam")
    ```
    """
    arch = "cnn" if dataset == "cifar10" else str(rng.choice(["mlp", "cnn"]))
    optimizer = str(rng.choice(["sgd", "adam"]))
    if optimizer == "sgd":
        lr = float(10 ** rng.uniform(-3.0, -0.3))
    else:
        lr = float(10 ** rng.uniform(-4.0, -1.7))
    return {
        "arch": arch,
        "width": int(rng.choice([8, 16])) if arch == "cnn" else int(
            rng.choice([32, 64, 128, 256])),
        "depth": int(rng.choice([1, 2] if arch == "cnn" else [1, 2, 3])),
        "dropout": float(rng.choice([0.0, 0.25])),
        "optimizer": optimizer,
        "learning_rate": lr,
        "batch_size": int(rng.choice([64, 128])),
    }


def feature_history_net(config, input_shape, num_classes=10):
    """Builds a `feature_history_config` configuration: an MLP or a CNN with a softmax "classifier".

    Args:
        config: a dict from `feature_history_config` (uses `arch`, `width`,
            `depth`, `dropout`).
        input_shape: e.g. `(28, 28, 1)`.
        num_classes: softmax outputs.

    Example:

    ```python
    from keras_autolr.harness import models

    config = {"arch": "mlp", "width": 16, "depth": 2, "dropout": 0.25}
    assert models.feature_history_net(config, (8, 8, 1)).output_shape == (None, 10)
    ```
    """
    inp = keras.Input(input_shape)
    x = inp
    if config["arch"] == "mlp":
        x = keras.layers.Flatten()(x)
        for _ in range(config["depth"]):
            x = keras.layers.Dense(config["width"], activation="relu")(x)
            if config["dropout"]:
                x = keras.layers.Dropout(config["dropout"])(x)
    else:
        w = config["width"]
        for i in range(config["depth"]):
            x = keras.layers.Conv2D(w * 2 ** i, 3, padding="same",
                                    activation="relu")(x)
            x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(64, activation="relu")(x)
        if config["dropout"]:
            x = keras.layers.Dropout(config["dropout"])(x)
    out = keras.layers.Dense(num_classes, activation="softmax",
                             name="classifier")(x)
    return keras.Model(inp, out)


def mlp_mixer(input_shape, num_classes, patch=4, dim=64, tokens_mlp=64, channels_mlp=128, depth=2):
    """A small MLP-Mixer (Tolstikhin et al. 2021): patches, token- and channel-mixing MLPs.

    Args:
        input_shape: (height, width, channels); both sides divisible by `patch`.
        num_classes: output classes (softmax).
        patch: patch side.
        dim: hidden width of each patch embedding.
        tokens_mlp, channels_mlp: hidden widths of the two mixing MLPs.
        depth: number of mixer blocks.

    Example:

    ```python
    from keras_autolr.harness import models

    m = models.mlp_mixer((32, 32, 3), 10, depth=1)
    assert m.output_shape == (None, 10)
    ```
    """
    h, w, _ = input_shape
    n = (h // patch) * (w // patch)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(dim, patch, strides=patch)(inputs)
    x = keras.layers.Reshape((n, dim))(x)
    for _ in range(depth):
        y = keras.layers.LayerNormalization()(x)
        y = keras.layers.Permute((2, 1))(y)
        y = keras.layers.Dense(tokens_mlp, activation="gelu")(y)
        y = keras.layers.Dense(n)(y)
        x = keras.layers.Add()([x, keras.layers.Permute((2, 1))(y)])
        y = keras.layers.LayerNormalization()(x)
        y = keras.layers.Dense(channels_mlp, activation="gelu")(y)
        x = keras.layers.Add()([x, keras.layers.Dense(dim)(y)])
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.GlobalAveragePooling1D(name="features")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="mlp_mixer")


class _PositionEmbedding(keras.layers.Layer):
    """Adds a learned position embedding to a (batch, length, dim) sequence."""

    def __init__(self, length, dim, **kwargs):
        super().__init__(**kwargs)
        self.length, self.dim = length, dim

    def build(self, input_shape):
        self.positions = self.add_weight(shape=(self.length, self.dim), initializer="glorot_uniform",
                                         name="positions")

    def call(self, x):
        return x + self.positions[None, : keras.ops.shape(x)[1]]

    def get_config(self):
        return {**super().get_config(), "length": self.length, "dim": self.dim}


def char_transformer(vocab, seq_len, dim=64, heads=2, depth=2, mlp=128):
    """A tiny causal transformer language model: per-token logits over `vocab`.

    Args:
        vocab: vocabulary size.
        seq_len: sequence length (the position table's size).
        dim: model width.
        heads: attention heads.
        depth: transformer blocks (pre-LayerNorm).
        mlp: hidden width of each block's MLP.

    Example:

    ```python
    from keras_autolr.harness import models

    m = models.char_transformer(65, 32, dim=16, depth=1)
    assert m.output_shape == (None, 32, 65)
    ```
    """
    inputs = keras.Input((seq_len,), dtype="int32")
    x = keras.layers.Embedding(vocab, dim)(inputs)
    x = _PositionEmbedding(seq_len, dim)(x)
    for _ in range(depth):
        y = keras.layers.LayerNormalization()(x)
        y = keras.layers.MultiHeadAttention(heads, dim // heads)(y, y, use_causal_mask=True)
        x = keras.layers.Add()([x, y])
        y = keras.layers.LayerNormalization()(x)
        y = keras.layers.Dense(mlp, activation="gelu")(y)
        x = keras.layers.Add()([x, keras.layers.Dense(dim)(y)])
    x = keras.layers.LayerNormalization()(x)
    outputs = keras.layers.Dense(vocab, name="classifier")(x)
    return keras.Model(inputs, outputs, name="char_transformer")


def dense_autoencoder(input_dim, code=8, hidden=32):
    """A dense autoencoder: input -> hidden -> code -> hidden -> input (linear output).

    Args:
        input_dim: features per example (flattened).
        code: bottleneck width.
        hidden: width of the encoder's and decoder's hidden layer.

    Example:

    ```python
    from keras_autolr.harness import models

    m = models.dense_autoencoder(64, code=4)
    assert m.output_shape == (None, 64)
    ```
    """
    inputs = keras.Input((input_dim,))
    x = keras.layers.Dense(hidden, activation="relu")(inputs)
    x = keras.layers.Dense(code, activation="relu", name="features")(x)
    x = keras.layers.Dense(hidden, activation="relu")(x)
    outputs = keras.layers.Dense(input_dim)(x)
    return keras.Model(inputs, outputs, name="dense_autoencoder")
