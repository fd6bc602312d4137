"""Run by test_distribution.py in a fresh process: every runtime method on two devices.

`python tests/_distribution_worker.py tensorflow|jax WORKDIR METHOD...` (a
method is a `run_<method>` function below)
configures two devices before the backend starts (TF: two logical CPUs and
`tf.distribute.MirroredStrategy`; JAX: `XLA_FLAGS` host devices and
`keras.distribution.DataParallel`), then runs each method once on one device
and once distributed, and prints one JSON line per method:
`{"method", "ok", "error", "detail"}` (`ok` false with the traceback's last
line in `error` when a check failed).
"""

import contextlib
import json
import math
import os
import sys
import traceback

BACKEND, WORKDIR = sys.argv[1], sys.argv[2]
os.environ["KERAS_BACKEND"] = BACKEND
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if BACKEND == "jax":
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
else:
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_autolr  # noqa: E402
from keras_autolr.runtime.arc.controller import FACTORS  # noqa: E402

if BACKEND == "jax":
    DEVICES = keras.distribution.list_devices()
    assert len(DEVICES) == 2, DEVICES
    _DIST = keras.distribution.DataParallel(devices=DEVICES)
    REPLICAS = len(DEVICES)

    def build_scope(distributed):
        return _DIST.scope() if distributed else contextlib.nullcontext()

    fit_scope = build_scope  # JAX shards the batches of a fit run in the distribution's scope
else:
    _STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    REPLICAS = _STRATEGY.num_replicas_in_sync
    assert REPLICAS == 2, REPLICAS

    def build_scope(distributed):
        return _STRATEGY.scope() if distributed else contextlib.nullcontext()

    def fit_scope(distributed):  # the usual user code: only build and compile in the scope
        return contextlib.nullcontext()


EPOCHS, BATCH = 3, 16


def data(classes=None, n=64, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    if classes:
        return x, (np.abs(x[:, 0] * 3).astype("int64") % classes)
    return x, (x @ rng.normal(size=(d, 1))).astype("float32")


def build(distributed, optimizer, loss="mse", outputs=1, activation=None, wrap=None, metrics=None):
    keras.utils.set_random_seed(0)
    with build_scope(distributed):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(outputs, activation=activation, name="head")])
        inner = model
        if wrap is not None:
            model = wrap(model)
        model.compile(optimizer=optimizer() if callable(optimizer) else optimizer, loss=loss, metrics=metrics)
    return model, inner


def fit(model, distributed, x, y, **kw):
    kw.setdefault("epochs", EPOCHS)
    kw.setdefault("batch_size", BATCH)
    with fit_scope(distributed):
        hist = model.fit(x, y, verbose=0, **kw)
    for key, values in hist.history.items():
        if key.startswith("arc_p_"):  # NaN by design at epochs without a decision
            continue
        assert all(math.isfinite(v) for v in values), (key, values)
    return hist.history


def weights(model):
    return [np.asarray(w) for w in model.weights]


def close(a, b, rtol=1e-4, atol=1e-6, what="values"):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert np.allclose(a, b, rtol=rtol, atol=atol), (what, a.tolist()[:8], b.tolist()[:8])


def close_weights(a, b, rtol=1e-4, atol=1e-5):
    for i, (u, v) in enumerate(zip(a, b)):
        close(u, v, rtol, atol, f"weight {i}")


# -- one function per method: returns what the single and distributed runs must share --


def run_arc(distributed):
    x, y = data()
    model, _ = build(distributed, lambda: keras.optimizers.Adam(1e-3))
    arc = keras_autolr.ARC(frequency=1)
    h = fit(model, distributed, x, y, epochs=4, validation_data=(x[:16], y[:16]), callbacks=[arc])
    lrs, decisions = h["learning_rate"], [int(d) for d in h["arc_decision"]]
    assert arc.decisions and all(d in (0, 1, 2) for d in decisions[:-1]), decisions
    for e in range(len(lrs) - 1):  # each decision scaled the next epoch's LR by its factor
        close(lrs[e + 1] / lrs[e], FACTORS[decisions[e]], 1e-5, 0, "ARC factor")
    return {"lrs": lrs, "decisions": decisions, "weights": weights(model)}


def _instep(distributed, scheduler, optimizer, classes):
    x, y = data(classes)
    kw = dict(loss="sparse_categorical_crossentropy", outputs=classes, activation="softmax") if classes else {}
    model, _ = build(distributed, optimizer, **kw)
    h = fit(model, distributed, x, y, callbacks=[scheduler])
    lrs = scheduler.lr_history
    assert len(lrs) == EPOCHS * len(x) // BATCH, len(lrs)
    assert len(set(lrs)) > 1, lrs  # the rule moved the LR
    close(h["learning_rate"][-1], keras_autolr.get_learning_rate(model.optimizer), 1e-6, 0, "last LR")
    return {"lrs": lrs, "weights": weights(model)}


def run_mlrsnet(distributed):
    return _instep(distributed, keras_autolr.MLRSNetScheduler("image", record_every=1),
                   lambda: keras.optimizers.SGD(0.1), classes=4)


def run_mlrsnet_clipped(distributed):
    # Clipping acts on the whole batch's gradient, as on one device (not on each replica's share).
    return _instep(distributed, keras_autolr.MLRSNetScheduler("image", record_every=1),
                   lambda: keras.optimizers.SGD(0.1, global_clipnorm=1e-2), classes=4)


def run_hypergradient(distributed):
    return _instep(distributed, keras_autolr.HypergradientDescent(beta=1e-3, record_every=1),
                   lambda: keras.optimizers.SGD(0.05), classes=None)


def per_replica_halves(n, batch=BATCH, replicas=2):
    """An order of n examples whose per-replica batch halves are one device's halves.

    MCV splits each batch into a training and a validation half. Under
    MirroredStrategy each replica splits its own share, so replica r must get
    the r-th slices of the single device's halves for the two runs to agree.
    """
    q, half = batch // (2 * replicas), batch // 2
    one = [i for r in range(replicas) for i in (*range(r * q, (r + 1) * q), *range(half + r * q, half + (r + 1) * q))]
    return np.concatenate([np.asarray(one) + start for start in range(0, n, batch)])


def run_mcv(distributed):
    x, y = data()
    if distributed and BACKEND == "tensorflow":  # JAX splits the global (sharded) batch
        order = per_replica_halves(len(x), replicas=REPLICAS)
        x, y = x[order], y[order]
    model, inner = build(distributed, lambda: keras.optimizers.SGD(0.05),
                         wrap=lambda m: keras_autolr.MCVModel(m, method="method1", factors=[2.0, 1.0, 0.5]))
    sched, stop = keras_autolr.MCVScheduler(), keras_autolr.MCVStopping(patience=5)
    h = fit(model, distributed, x, y, shuffle=False, callbacks=[sched, stop])
    assert len(sched.decisions) == EPOCHS, sched.decisions
    for e in range(EPOCHS - 1):  # the LR each epoch used is the previous decision's
        close(h["learning_rate"][e + 1], sched.decisions[e]["next_lr"], 1e-6, 0, "MCV next LR")
    return {"lrs": h["learning_rate"], "next": [d["next_lr"] for d in sched.decisions],
            "weights": weights(inner)}


def run_feature_history(distributed):
    x, y = data(classes=3)
    model, _ = build(distributed, "adam", loss="sparse_categorical_crossentropy", outputs=3,
                     activation="softmax", metrics=["accuracy"])
    path = os.path.join(WORKDIR, f"fh_{BACKEND}_{int(distributed)}.h5")
    rec = keras_autolr.FeatureHistory(path, (x[:48], y[:48]), (x[48:], y[48:]), overwrite=True)
    fit(model, distributed, x[:48], y[:48], validation_data=(x[48:], y[48:]), callbacks=[rec])
    from keras_autolr.runtime.feature_history import HistoryStore

    store = HistoryStore(path)
    assert store.epochs() == list(range(EPOCHS)), store.epochs()
    last = store.read_epoch(EPOCHS - 1)
    close(last["kernel"], np.asarray(model.get_layer("head").kernel), 1e-6, 0, "recorded kernel")
    return {"val_embeddings": [store.read_epoch(e)["val_embeddings"] for e in range(EPOCHS)],
            "weights": weights(model)}


def _optimizer(make):
    def run(distributed):
        x, y = data()
        model, _ = build(distributed, make)
        fit(model, distributed, x, y)
        return {"lr": keras_autolr.get_learning_rate(model.optimizer), "weights": weights(model)}
    return run


run_prodigy = _optimizer(lambda: keras_autolr.Prodigy())
run_dadapt = _optimizer(lambda: keras_autolr.DAdaptAdam())
run_dog = _optimizer(lambda: keras_autolr.DoG())
run_schedule_free = _optimizer(lambda: keras_autolr.ScheduleFreeAdamW(1e-2, warmup_steps=4))


def run_schedule_free_ref(distributed):
    x, y = data()
    model, _ = build(distributed, lambda: keras_autolr.ReferenceScheduleFreeAdamW(1e-2, warmup_steps=4))
    fit(model, distributed, x, y, callbacks=[keras_autolr.ScheduleFreeEval()])
    with keras_autolr.EvalWeights(model):
        eval_w = weights(model)
    return {"weights": weights(model), "eval": eval_w}


def run_lr_finder(distributed):
    x = data(n=256)[0]
    y = x.sum(axis=1, keepdims=True)  # an easy target: the sweep's loss falls clearly before it blows up
    model, _ = build(distributed, lambda: keras.optimizers.SGD())
    finder = keras_autolr.LRFinder(x, y, batch_size=BATCH, steps=30, min_lr=1e-4, max_lr=10.0)
    fit(model, distributed, x, y, epochs=1, callbacks=[finder])
    sug = finder.result.suggestion
    assert sug is not None and math.isfinite(sug), finder.result
    close(keras_autolr.get_learning_rate(model.optimizer), sug, 1e-6, 0, "LR = suggestion")
    return {"suggestion": sug, "losses": finder.result.losses, "weights": weights(model)}


class _Steer(keras_autolr.LearningRateCallback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            keras_autolr.scale_learning_rate(self.model.optimizer, 0.5)
        elif epoch == 2:
            keras_autolr.set_learning_rate(self.model.optimizer, 0.01)


def run_set_learning_rate(distributed):
    x, y = data()
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5, staircase=True)
    model, _ = build(distributed, lambda: keras.optimizers.SGD(decay))
    h = fit(model, distributed, x, y, callbacks=[_Steer()])
    # epoch 0: 0.1 then 0.05 after 4 steps (the log reads the end of the epoch);
    # epoch 1 scales the schedule by 0.5; epoch 2 sets 0.01 and keeps decaying.
    close(h["learning_rate"], [0.05, 0.0125, 0.005], 1e-5, 0, "steered LR")
    return {"lrs": h["learning_rate"], "weights": weights(model)}


def run_set_learning_rate_recompiled(distributed):
    # A second fit after `compile` (a new optimizer, a new train function): our variables are
    # added to the new optimizer after Keras built the new step, which must follow them.
    x, y = data()
    model, _ = build(distributed, lambda: keras.optimizers.SGD(0.1))
    fit(model, distributed, x, y, epochs=1)
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5, staircase=True)
    with build_scope(distributed):
        model.compile(optimizer=keras.optimizers.SGD(decay), loss="mse")
    h = fit(model, distributed, x, y, callbacks=[_Steer()])
    close(h["learning_rate"], [0.05, 0.0125, 0.005], 1e-5, 0, "steered LR after recompile")
    return {"lrs": h["learning_rate"], "weights": weights(model)}


# TF multi-replica: these keep all-parameter state that Keras's per-replica
# update cannot sum; they refuse when built, with a message naming the way out.
TF_REFUSED = ("prodigy", "dadapt", "dog", "schedule_free_ref")
# Single vs distributed tolerance: these optimizers' global sums (norms, dot
# products) are float32 sums taken in another order.
RTOL = {"prodigy": 1e-3, "dadapt": 1e-3, "dog": 1e-3}


def compare(method, one, two):
    rtol = RTOL.get(method, 1e-4)
    for key, a in one.items():
        b = two[key]
        if key == "weights" or key == "eval" or key == "val_embeddings":
            close_weights(a, b, rtol, 1e-4)
        elif key == "decisions":
            assert a == b, (a, b)
        else:
            close(a, b, rtol, 1e-7, key)


def check(method):
    runner = globals()[f"run_{method}"]
    one = runner(False)
    if BACKEND == "tensorflow" and method in TF_REFUSED:
        try:
            runner(True)
        except NotImplementedError as err:
            msg = str(err)
            assert "tf.distribute" in msg and "JAX" in msg, msg
            return {"refused": msg}
        raise AssertionError(f"{method} trained under MirroredStrategy instead of refusing")
    two = runner(True)
    compare(method, one, two)
    return {k: v for k, v in two.items() if k in ("lrs", "decisions", "suggestion", "next")}


def main():
    for method in sys.argv[3:]:
        line = {"method": method, "backend": BACKEND, "replicas": REPLICAS}
        try:
            line.update(ok=True, detail=check(method))
        except Exception as err:  # report, go on with the next method
            tb = traceback.format_exc()
            line.update(ok=False, error=f"{type(err).__name__}: {err}"[:2000], traceback=tb[-4000:])
        keras.backend.clear_session()
        print("RESULT " + json.dumps(line, default=float), flush=True)


if __name__ == "__main__":
    main()
