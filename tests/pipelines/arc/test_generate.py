import dataclasses

import h5py
import keras
import numpy as np
import pytest

from keras_autolr.pipelines.arc import generate, labels
from keras_autolr.harness import zoo


def _tiny_task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], "float32"))[:, None]

    def build(seed):
        k = keras.initializers.GlorotUniform(seed=seed)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh", kernel_initializer=k),
                                 keras.layers.Dense(1, kernel_initializer=k)])

    return zoo.Task("tiny", "test", lambda: (x[:192], y[:192], x[192:], y[192:]), build, "mse",
                    (1e-3, 1e-2), batch_size=16, steps_per_epoch=3)


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "rmsprop"])
def test_restore_reproduces_training_exactly(optimizer):
    task = _tiny_task()
    runner = generate.TaskRunner(task, optimizer, 1e-2, seed=0)
    runner.train_epochs(2, np.random.default_rng(1))
    snap = generate.snapshot(runner.model)
    first, _ = runner.train_epochs(2, np.random.default_rng(2))
    after_first = [keras.ops.convert_to_numpy(v) for v in runner.model.optimizer.variables]
    generate.restore(runner.model, snap)
    # Restored optimizer state equals the snapshot (moments and iteration count).
    for v, s in zip(runner.model.optimizer.variables, snap.optimizer_values):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), s)
    second, _ = runner.train_epochs(2, np.random.default_rng(2))
    np.testing.assert_array_equal(first, second)
    for v, a in zip(runner.model.optimizer.variables, after_first):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), a)


def test_parse_shard():
    assert generate.parse_shard("1/3") == (1, 3)
    for bad in ["3/3", "x", "1-2", "-1/2"]:
        with pytest.raises(ValueError, match="shard"):
            generate.parse_shard(bad)


def test_run_chain_structure():
    rec = generate.run_chain(_tiny_task(), 0, cycles=4, n=2)
    assert rec["train_loss"].shape == (4, 6)
    assert rec["val_loss"].shape == (4, 2)
    assert rec["branch_val"].shape == (3, 3) and len(rec["chosen"]) == 3
    # The next main cycle runs at the chosen LR, and the worst branch is never chosen.
    for k in range(3):
        factor = rec["lr"][k + 1] / rec["lr"][k]
        assert factor == pytest.approx(generate.FACTORS[rec["chosen"][k]])
        assert rec["chosen"][k] != np.argmax(rec["branch_val"][k])


def test_generate_resumes_shards_and_merges(tmp_path, monkeypatch):
    task = _tiny_task()
    monkeypatch.setitem(zoo.TASKS, "tiny", task)
    monkeypatch.setattr(generate, "MAIN_CYCLES", 3)
    real = generate.run_chain
    calls = []

    def counted(t, c, base_seed=0, cycles=3, n=None):
        calls.append(c)
        return real(t, c, base_seed, cycles=3, n=1)

    monkeypatch.setattr(generate, "run_chain", counted)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    generate.generate(a, 3, shard="0/2", tasks=["tiny"], log=lambda s: None)
    assert calls == [0, 2]
    # An unfinished chain (crash mid-write) is discarded and redone on resume.
    with h5py.File(a, "a") as f:
        f["chain_000002"].attrs["complete"] = False
    generate.generate(a, 3, shard="0/2", tasks=["tiny"], log=lambda s: None)
    assert calls == [0, 2, 2]
    generate.generate(b, 3, shard="1/2", tasks=["tiny"], log=lambda s: None)
    assert calls == [0, 2, 2, 1]
    out = tmp_path / "all.h5"
    assert generate.merge([a, b], out) == 3
    x, y, meta = labels.build_dataset(out)
    assert x.shape == (6, 300, 3)  # 3 chains x 2 checkable decisions
    assert sorted(set(meta["chain"])) == [0, 1, 2]
    assert set(y) <= {0, 1, 2}


def test_zoo_has_at_least_eight_tasks_disjoint_from_evaluation():
    assert len(zoo.names()) >= 8
    assert not any("cifar" in n or "ptb" in n for n in zoo.names())
    for t in zoo.TASKS.values():
        assert 0 < t.lr_range[0] < t.lr_range[1]


def test_large_variant_has_longer_epochs():
    small, large = zoo.get_task("digits_cnn"), zoo.get_task("digits_cnn", large=True)
    assert large.steps_per_epoch * large.batch_size == 8 * small.steps_per_epoch * small.batch_size
    with pytest.raises(KeyError, match="choose one of"):
        zoo.get_task("cifar10")
