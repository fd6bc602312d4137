"""The vmapped ARC generator: K chains at once train exactly as K separate Keras runs would."""

import keras
import numpy as np
import pytest

from keras_autolr.harness import zoo_v2
from keras_autolr.pipelines.arc import generate_vmap as gv
from keras_autolr.pipelines.arc import labels
from keras_autolr.runtime.arc.controller import FACTORS

on_jax = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the vmap engine needs KERAS_BACKEND=jax")
pytestmark = pytest.mark.jax

_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(96, 5)).astype("float32")
_Y = (_X @ _RNG.normal(size=(5, 1)) + 0.1 * _RNG.normal(size=(96, 1))).astype("float32")


def _data():
    return _X[:64], _Y[:64], _X[64:], _Y[64:]


def _build(seed, norm=False):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((5,)), keras.layers.Dense(8, activation="relu")]
    layers += [keras.layers.BatchNormalization()] if norm else []
    return keras.Sequential(layers + [keras.layers.Dense(1)])


TINY = zoo_v2.TaskV2("tiny_reg", "test", _data, _build, "mse", 1e-2, 1e-2, batch_size=8, steps_per_epoch=4)
TINY_BN = zoo_v2.TaskV2("tiny_reg_bn", "test", _data, lambda seed: _build(seed, norm=True), "mse", 1e-2, 1e-2,
                        batch_size=8, steps_per_epoch=4)


def _keras_optimizer(family, lr, hp, static):
    if family == "adam":
        return keras.optimizers.Adam(lr, **hp)
    if family == "adamw":
        return keras.optimizers.AdamW(lr, **hp)
    if family == "sgd_momentum":
        return keras.optimizers.SGD(lr, momentum=static["momentum"])
    return keras.optimizers.RMSprop(lr, **hp)


@on_jax
@pytest.mark.slow
@pytest.mark.parametrize("task,family", [(TINY, "adamw"), (TINY_BN, "sgd_momentum"), (TINY, "adam"),
                                         (TINY_BN, "rmsprop")])
def test_vmapped_chains_equal_separate_keras_runs(task, family):
    # Two chains, two epochs at their own LR, init, hyperparameters and batch
    # order, vs the same configs trained one by one with `train_on_batch`.
    static = {"momentum": 0.9} if family == "sgd_momentum" else {}
    chains = [gv.draw_chain(c, task, family, base_seed=1) for c in (3, 4)]
    assert chains[0]["lr"] != chains[1]["lr"]
    trainer = gv._Trainer(task, family, static)
    state, hp = trainer.init([c["seed"] for c in chains], [c["hparams"] for c in chains])
    rngs = [np.random.default_rng([1, c["chain_id"]]) for c in chains]
    state, train, val = trainer.train(trainer.with_lr(state, [c["lr"] for c in chains]), hp, 2, rngs)
    x, y, xv, yv = task.data()
    for i, c in enumerate(chains):
        model = task.build(seed=c["seed"])
        model.compile(_keras_optimizer(family, c["lr"], c["hparams"], static), "mse")
        rng = np.random.default_rng([1, c["chain_id"]])
        want_train, want_val = [], []
        for _ in range(2):
            order = rng.permutation(len(x))[: task.steps_per_epoch * task.batch_size].reshape(task.steps_per_epoch, -1)
            want_train += [float(model.train_on_batch(x[b], y[b])) for b in order]
            want_val.append(float(model.test_on_batch(xv, yv)))
        np.testing.assert_allclose(train[i], want_train, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(val[i], want_val, rtol=2e-5, atol=1e-6)
        for got, want in zip(state[0], model.trainable_variables):
            np.testing.assert_allclose(np.asarray(got[i]), np.asarray(want), rtol=2e-5, atol=1e-6)
        for got, want in zip(state[1], model.non_trainable_variables):  # BatchNorm statistics
            np.testing.assert_allclose(np.asarray(got[i]), np.asarray(want), rtol=2e-5, atol=1e-6)


@on_jax
@pytest.mark.slow
def test_branches_run_at_exactly_the_three_factors(monkeypatch):
    group = {"task": TINY, "family": "adam", "n": 1, "static": {}}
    chains = [gv.draw_chain(c, TINY, "adam") for c in range(2)]
    trainer = gv._trainer(TINY, "adam", {})
    seen = []
    real = trainer.with_lr

    def spy(state, lrs):
        seen.append(np.asarray(lrs, "float64"))
        out = real(state, lrs)
        seen.append(np.asarray(out[2][trainer.lr_index]))
        return out

    monkeypatch.setattr(trainer, "with_lr", spy)
    recs = gv.run_group(group, chains, cycles=2)
    r = np.array([c["lr"] for c in chains])
    np.testing.assert_array_equal(seen[0], r)
    want = np.stack([1.618 * r, r, 0.618 * r], axis=1).reshape(-1)  # chain-major members
    np.testing.assert_array_equal(seen[2], want)
    np.testing.assert_array_equal(seen[3], want.astype("float32"))  # what the program trains with
    for i, rec in enumerate(recs):
        assert rec["lr"][1] == r[i] * FACTORS[rec["chosen"][0]]
        assert rec["chosen"][0] != int(np.argmax(rec["branch_val"][0]))  # the worst branch is dropped


def test_branch_lrs_are_the_controller_factors():
    r = np.array([2.0, 1e-3])
    np.testing.assert_array_equal(gv.branch_lrs(r), [[1.618 * r[0], r[0], 0.618 * r[0]],
                                                     [1.618 * r[1], r[1], 0.618 * r[1]]])


def test_poor_initial_lrs_are_10_to_100x_below_the_good_lr():
    draws = [gv.draw_chain(c, TINY, "adam", poor_fraction=0.4) for c in range(400)]
    poor = np.array([d["lr"] for d in draws if d["regime"] == "poor"])
    wide = np.array([d["lr"] for d in draws if d["regime"] == "wide"])
    assert 0.3 < len(poor) / 400 < 0.5
    assert np.all((poor >= TINY.adaptive_lr / 100) & (poor <= TINY.adaptive_lr / 10))
    assert np.all((wide >= TINY.adaptive_lr / 10) & (wide <= TINY.adaptive_lr * 10))
    assert gv.draw_chain(7, TINY, "adam") == gv.draw_chain(7, TINY, "adam")  # reproducible


@on_jax
@pytest.mark.slow
def test_output_is_v1_layout_and_feeds_labels(tmp_path):
    out = str(tmp_path / "v2.h5")
    n = gv.generate(out, chains=3, tasks=[TINY], group_size=2, max_cycle_epochs=2, cycles=4, log=lambda s: None)
    x, y, meta = labels.build_dataset(out)
    assert n >= len(y) > 0 and x.shape[1:] == (300, 3) and set(y) <= {0, 1, 2}
    assert set(meta["task"]) == {"tiny_reg"} and set(meta["chain"]) <= {0, 1, 2}
    import h5py

    with h5py.File(out, "r") as f:
        assert sorted(f) == ["chain_000000", "chain_000001", "chain_000002"]
        g = f["chain_000000"]
        assert {"train_loss", "val_loss", "lr", "branch_val", "chosen"} <= set(g)
        for key in ("task", "optimizer", "n", "steps_per_epoch", "chain_id", "base_seed", "complete"):
            assert key in g.attrs
        assert g.attrs["engine"] == "vmap" and g.attrs["group"] == 0
        assert g["train_loss"].shape[1] == g.attrs["n"] * 4


@on_jax
@pytest.mark.slow
def test_resume_reruns_only_missing_chains(tmp_path):
    import h5py

    out = str(tmp_path / "v2.h5")
    kw = dict(tasks=[TINY], group_size=2, max_cycle_epochs=1, cycles=3)
    gv.generate(out, chains=4, **kw, log=lambda s: None)
    with h5py.File(out, "r") as f:
        before = {name: f[name]["train_loss"][()] for name in f}
    with h5py.File(out, "a") as f:
        f["chain_000003"].attrs["complete"] = False  # as a crash mid-write leaves it
    lines = []
    gv.generate(out, chains=4, **kw, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("group 1 ") and "chains=1 " in lines[0]
    with h5py.File(out, "r") as f:
        for name, train in before.items():
            np.testing.assert_allclose(f[name]["train_loss"][()], train, rtol=1e-5)
    lines.clear()
    gv.generate(out, chains=4, **kw, log=lines.append)
    assert lines == []  # all complete: nothing runs


def test_shards_split_groups():
    assert [g for g in range(6) if g % 2 == gv.parse_shard("1/2")[0]] == [1, 3, 5]
    specs = [gv.draw_group(g, tasks=["friedman_mlp", "mnist1d_mlp"]) for g in range(4)]
    assert [s["task"].name for s in specs] == ["friedman_mlp", "mnist1d_mlp"] * 2
    assert all(1 <= s["n"] <= 10 and s["family"] in gv.FAMILIES for s in specs)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="checks the error off JAX")
def test_other_backends_get_an_error_that_says_what_to_do():
    with pytest.raises(RuntimeError, match="KERAS_BACKEND=jax"):
        gv._Trainer(TINY, "adam", {})
