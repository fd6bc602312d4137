import dataclasses
import hashlib

import keras
import numpy as np
import pytest

from keras_autolr.harness import runner, tasks, zoo


@pytest.fixture
def scratch_task():
    """Registers under a unique name and removes the task afterwards."""
    names = []

    def register(name, **kwargs):
        names.append(name)
        return tasks.register_task(name, **kwargs)

    yield register
    for name in names:
        tasks.REGISTRY["eval"].pop(name, None)


def _tiny_arrays(n=96):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return x, y


def _tiny_net():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(2, activation="softmax")])


def test_registered_task_runs_through_the_runner(scratch_task, tmp_path):
    x, y = _tiny_arrays()
    task = scratch_task("tiny_xor", build=_tiny_net, data=(x[:64], y[:64], x[64:80], y[64:80], x[80:], y[80:]),
                        batch_size=16, epochs=3)
    assert tasks.get("tiny_xor") is task and "tiny_xor" in tasks.names()
    rec = runner.run_one("tiny_xor", "exponential", 1e-2, seed=0, size="smoke", options={"gamma": 0.5})
    assert rec["task"] == "tiny_xor" and rec["epochs_run"] == 3 and rec["steps"] == [4, 8, 12]
    assert rec["lr"][2] == pytest.approx(rec["lr"][0] * 0.25)
    assert len(rec["history"]["val_accuracy"]) == 3 and 0.0 <= rec["test"]["accuracy"] <= 1.0
    # The same seed gives the same run.
    again = runner.run_one("tiny_xor", "exponential", 1e-2, seed=0, size="smoke", options={"gamma": 0.5})
    assert again["history"] == rec["history"]


def test_register_task_takes_a_data_function_a_loss_metric_and_no_test_split(scratch_task):
    x, y = _tiny_arrays()
    calls = []

    def data():
        calls.append(1)
        return x[:64], y[:64].astype("float32")[:, None], x[64:], y[64:].astype("float32")[:, None]

    scratch_task("tiny_regression", build=lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]),
                 data=data, loss="mse", metric="loss", mode="min", batch_size={"smoke": 32, "small": 8, "full": 8},
                 epochs=2)
    assert calls == []  # loaded when a run needs it, then cached
    rec = runner.run_one("tiny_regression", "constant", 1e-2, size="smoke")
    assert calls == [1] and rec["steps_per_epoch"] == 2 and rec["metric"] == "loss" and rec["mode"] == "min"
    assert rec["best"] == min(rec["history"]["val_loss"]) and set(rec["test"]) == {"loss"}
    task = tasks.get("tiny_regression")
    assert task.data("full").x_test.shape == (32, 4)  # validation split scored


def test_task_rejects_bad_mode_size_and_arrays():
    with pytest.raises(ValueError, match="mode"):
        tasks.Task("bad", load=None, build=None, mode="up")
    with pytest.raises(ValueError, match="size"):
        tasks.get("digits_cnn").data("huge")
    with pytest.raises(KeyError, match="choose one of"):
        tasks.get("nope")
    with pytest.raises(TypeError, match="register_task"):
        tasks.register("not a task")
    x, y = _tiny_arrays()
    bad = tasks.register_task("tiny_bad", build=_tiny_net, data=(x, y, x))
    try:
        with pytest.raises(ValueError, match="x_train, y_train"):
            bad.data()
    finally:
        tasks.REGISTRY["eval"].pop("tiny_bad")


def test_suites_are_separate_namespaces_and_the_zoo_view_is_live():
    evaluation, generation = tasks.get("digits_cnn"), tasks.get("digits_cnn", suite="arc_zoo")
    assert evaluation is not generation
    assert generation.steps_per_epoch == 8 and evaluation.steps_per_epoch is None
    assert zoo.TASKS is tasks.REGISTRY["arc_zoo"] and zoo.names() == tasks.names(suite="arc_zoo")
    assert not set(zoo.names()) & {n for n in tasks.names() if "cifar" in n or "ptb" in n}
    task = zoo.Task("tiny_zoo", "test", lambda: (np.ones((8, 2)), np.ones((8, 1)), np.ones((4, 2)), np.ones((4, 1))),
                    lambda seed: keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), "mse", (1e-3, 1e-2))
    tasks.register(task)
    try:
        assert zoo.get_task("tiny_zoo") is task and "tiny_zoo" not in tasks.names()
    finally:
        del zoo.TASKS["tiny_zoo"]


def _sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def test_zoo_data_is_bit_identical_to_the_generator_s():
    # Digests of the arrays the ARC generator trained on before the zoo joined the registry.
    d = zoo.get_task("digits_cnn").data()
    assert (d.x_train.shape, d.x_train.dtype) == ((1000, 8, 8, 1), np.float32)
    assert _sha(d.x_train) == "7c26aa9e076b2694" and _sha(d.y_train) == "8f5816ed84ebb353"
    assert _sha(zoo.get_task("sine_regression").data().x_train) == "54b2731e055b788a"
    assert _sha(zoo.get_task("blobs_segmentation").data().y_val) == "d50a52f6ad702569"


def test_zoo_models_are_seeded_by_the_chain_seed():
    task = zoo.get_task("mnist1d_conv")
    a, b, c = (task.build_model(seed=s).get_weights() for s in (3, 3, 4))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_with_model_options_copies_the_task():
    base = tasks.get("cifar10_resnet9_arc")
    other = base.with_model_options(bn_momentum=0.99)
    assert base.model_options == {"bn_momentum": 0.9} and other.model_options == {"bn_momentum": 0.99}

    def momenta(task):
        return {layer.momentum for layer in task.build_model("smoke", 10).layers
                if isinstance(layer, keras.layers.BatchNormalization)}

    assert momenta(base) == {0.9} and momenta(other) == {0.99}


def test_per_size_fields_and_metrics():
    task = tasks.get("ptb_lstm")
    assert [task.batch_size_at(s) for s in tasks.SIZES] == [64, 128, 128]
    assert tasks.get("digits_cnn").batch_size_at("full") == 64
    first, second = task.metrics(), task.metrics()
    assert isinstance(first[0], tasks.Perplexity) and first[0] is not second[0]
    assert dataclasses.replace(task, metric="loss", metrics_factory=None).metrics() == []


def test_perplexity_metric_and_serialization():
    m = tasks.Perplexity()
    m.update_state(np.zeros((2, 3), dtype="int32"), np.zeros((2, 3, 5), dtype="float32"))
    assert float(m.result()) == pytest.approx(5.0, rel=1e-5)
    back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))
    assert isinstance(back, tasks.Perplexity) and back.from_logits


def test_make_loss_resolves_the_zoo_names():
    assert isinstance(tasks.make_loss("binary_crossentropy_logits"), keras.losses.BinaryCrossentropy)
    assert tasks.make_loss("mse") is keras.losses.get("mse")
    loss = keras.losses.Huber()
    assert tasks.make_loss(loss) is loss
