"""Run by test_distributed.py in a fresh process (logical devices must be set
before TensorFlow initialises): MCV under MirroredStrategy on two CPUs."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_autolr.runtime.mcv import MCVModel, MCVStopping  # noqa: E402


def check(method, strategy):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16),
                                  keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
                                  keras.layers.Dense(2)])
        # Three factors keep the graph small; discard and voting take none.
        kw = {"factors": (2.0, 1.0, 0.5)} if method.startswith("method") else {}
        model = MCVModel(inner, method=method, **kw)
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=64, epochs=3, validation_data=(x[:64], y[:64]), verbose=0,
                     callbacks=[MCVStopping(patience=5)])
    h = hist.history
    for key in ("loss", "val_loss", "learning_rate", "mcv_val_batch_loss"):
        assert key in h and all(np.isfinite(h[key])), (key, h.get(key))
    if method != "voting":  # voting starts at the list's top LR (0.1) and may rise first
        assert h["mcv_val_batch_loss"][-1] < h["mcv_val_batch_loss"][0], h["mcv_val_batch_loss"]
    # Every replica holds the same weights and optimizer state after restores.
    for v in list(inner.weights) + list(model.optimizer.variables):
        vals = [np.asarray(t) for t in strategy.experimental_local_results(v.value)]
        assert all(np.array_equal(vals[0], t) for t in vals[1:]), v.path
    print("DISTRIBUTED_OK", method, [round(float(v), 4) for v in h["learning_rate"]], flush=True)


strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
for method in sys.argv[1:] or ["method2"]:
    check(method, strategy)
