"""Shared pieces of the feature-history reproductions (data, search space).

Configurations are small CNNs/MLPs trained with SGD-momentum or Adam and a
learning rate decaying linearly to zero at the end of the budget (thesis
A.2), sized for a 2-core CPU.
"""

import math

import keras
import numpy as np

from keras_autolr.harness import datasets

SIZES = {
    # dataset: (n_train, n_val, n_test)
    "smoke": {"fashion_mnist": (1000, 500, 500), "cifar10": (1000, 500, 500)},
    "full": {"fashion_mnist": (2000, 1000, 2000), "cifar10": (2000, 1000, 2000)},
}


def load_data(name, size, seed=0):
    n_train, n_val, n_test = SIZES[size][name]
    kwargs = {"n_train": n_train, "seed": seed}
    if name == "cifar10":
        kwargs.update(n_val=n_val, n_test=n_test)
    split = datasets.load(name, **kwargs)
    rng = np.random.default_rng(seed)
    xv, yv = split.x_val, split.y_val
    xt, yt = split.x_test, split.y_test
    if len(xv) > n_val:
        i = rng.choice(len(xv), n_val, replace=False)
        xv, yv = xv[i], yv[i]
    if len(xt) > n_test:
        i = rng.choice(len(xt), n_test, replace=False)
        xt, yt = xt[i], yt[i]
    return split.x_train, split.y_train, xv, yv, xt, yt


def sample_config(rng, dataset):
    """One configuration: architecture and optimisation hyperparameters."""
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


def build_model(config, input_shape, num_classes=10):
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


def compile_model(model, config, epochs, n_train):
    steps = epochs * math.ceil(n_train / config["batch_size"])
    # Linear decay to 0 at the end of the budget (thesis A.2).
    schedule = keras.optimizers.schedules.PolynomialDecay(
        config["learning_rate"], decay_steps=steps, end_learning_rate=0.0,
        power=1.0)
    if config["optimizer"] == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=0.9)
    else:
        opt = keras.optimizers.Adam(schedule)
    model.compile(opt, "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
