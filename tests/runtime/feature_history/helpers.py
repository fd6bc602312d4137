"""Shared helpers for feature_history tests."""


def make_mlp(width=32, name=None):
    import keras
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(width, activation="relu", name="embed"),
        keras.layers.Dense(10, activation="softmax", name="classifier"),
    ], name=name)
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
