"""The MCV algorithms as strategy objects: costs, rules, the string form, saving. Backend-neutral."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_autolr.runtime.mcv import MCVError, MCVModel, cost, strategies
from keras_autolr.runtime.mcv.strategies import Discard, EpochSearch, Method1, Method2, Method3, Voting

pytestmark = pytest.mark.jax

FACTORS = (2.0, 1.0, 0.5)
ALL = [Discard(), Voting(), Voting(candidates=[0.3, 0.1]), Method1(), Method1(factors=FACTORS),
       Method2(alpha=0.3), Method3(initial_candidates=[0.1, 0.01, 0.001, 0.0001, 1e-5, 1e-6, 1e-7, 1e-8])]
N = lambda t: np.asarray(ops.convert_to_numpy(t))  # noqa: E731


def _inner():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(3)])


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, np.argmax(x[:, :3], axis=1).astype("int32")


def _compile(model):
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_step_cost_is_table_4_1(s):
    n = s.num_slots
    assert s.step_cost() == cost.step_cost(s.name, n)
    assert s.trials == (0 if s.name == "discard" else n)


def test_string_form_builds_the_strategy():
    assert strategies.get("method2", alpha=0.3, factors=FACTORS) == Method2(alpha=0.3, factors=FACTORS)
    assert strategies.get("voting", voting_candidates=[0.1], vote_decay=0.5) == Voting([0.1], decay=0.5)
    assert strategies.get("discard") == Discard() and strategies.get(Method3()) == Method3()
    assert MCVModel(_inner(), method="method3", min_lr=1e-5).strategy == Method3(min_lr=1e-5)
    assert MCVModel(_inner()).strategy == Method2()  # the default
    assert strategies.METHODS == ("discard", "voting", "method1", "method2", "method3")


def test_keyword_of_another_method_is_refused():
    with pytest.raises(TypeError, match="alpha applies to method2 only, not to 'method3'"):
        MCVModel(_inner(), method="method3", alpha=0.3)
    with pytest.raises(TypeError, match="vote_decay applies to voting only"):
        MCVModel(_inner(), method="method1", vote_decay=0.2)
    with pytest.raises(TypeError, match="factors applies to method1 / method2 / method3 only"):
        MCVModel(_inner(), method="discard", factors=FACTORS)
    with pytest.raises(TypeError, match=r"Method2\(alpha=\.\.\.\)"):
        MCVModel(_inner(), method=Method2(), alpha=0.3)
    with pytest.raises(MCVError, match="Unknown MCV method"):
        strategies.get("method4")
    with pytest.raises(MCVError, match="decay"):
        Voting(decay=0.0)


def test_epoch_rules_delegate_to_rules():
    val, train, lrs = np.array([0.40, 0.45]), np.array([0.60, 0.20]), np.array([0.2, 0.1])
    assert Method1().select(val, 1.0, train, lrs) == 0
    assert Method2(alpha=0.0).select(val, 1.0, train, lrs) == 0
    assert Method2(alpha=0.5).select(val, 1.0, train, lrs) == 1
    # Method 3: the largest LR that beats the current loss (slot 1's 0.3 here).
    assert Method3().select(np.array([0.9, 0.95]), 1.0, None, np.array([0.1, 0.3])) == 1
    assert Method3().select(np.array([np.nan, np.nan]), 1.0, None, lrs) is None
    assert not Discard().epoch_rule and not Voting().epoch_rule
    assert all(isinstance(c(), EpochSearch) for c in (Method1, Method2, Method3))


def test_candidate_lists():
    np.testing.assert_allclose(Method1(factors=FACTORS, max_lr=0.15).candidates_around(0.1), [0.15, 0.1, 0.05])
    m3 = Method3(factors=FACTORS, initial_candidates=[0.1, 0.01])
    np.testing.assert_array_equal(m3.first_candidates(0.5), [0.1, 0.01])
    assert m3.first_epoch_lr(m3.first_candidates(0.5)) == 0.01  # Algorithm 8
    assert Method3(factors=FACTORS).first_epoch_lr([0.2, 0.1]) is None
    np.testing.assert_array_equal(Voting([0.3, 0.1]).first_candidates(0.5), [0.3, 0.1])
    np.testing.assert_array_equal(Discard().first_candidates(0.5), [0.5])


def test_step_rules():
    mask, lrs, hist = np.ones(2, "float32"), np.array([0.1, 0.01], "float32"), np.full(2, 0.5, "float32")
    d = Voting([0.1, 0.01]).step_decision(1.0, np.array([0.9, 0.8], "float32"), lrs, mask, hist)
    assert float(N(d.lr)) == pytest.approx(0.01) and not bool(N(d.reject))
    np.testing.assert_allclose(N(d.history), [0.45, 0.55], rtol=1e-6)
    worse = np.array([1.2, 1.1], "float32")
    assert bool(N(Voting([0.1, 0.01]).step_decision(1.0, worse, lrs, mask, hist).reject))
    keep = Voting([0.1, 0.01], discard_on_no_improvement=False)
    assert not bool(N(keep.step_decision(1.0, worse, lrs, mask, hist).reject))
    assert Method2().step_decision(1.0, worse, lrs, mask, hist) == (None, None, None)
    assert bool(N(Discard().reject_applied(1.0, 1.5))) and not bool(N(Discard().reject_applied(1.0, 0.5)))


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_strategy_serializes(s):
    config = keras.saving.serialize_keras_object(s)
    assert config["registered_name"].startswith("keras_autolr>")
    assert keras.saving.deserialize_keras_object(config) == s


def test_model_save_and_load_keep_the_strategy(tmp_path):
    x, y = _data()
    model = _compile(MCVModel(_inner(), method=Voting(candidates=[0.1, 0.01], decay=0.3)))
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / "mcv.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, MCVModel) and loaded.strategy == Voting(candidates=[0.1, 0.01], decay=0.3)
    for a, b in zip(model.model.get_weights(), loaded.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_config_from_before_strategies_loads():
    """Configs written by the string-only MCVModel held every method's keywords."""
    config = MCVModel(_inner(), method=Method3(factors=FACTORS)).get_config()
    config.update(method="method3", alpha=0.5, factors=list(FACTORS), initial_candidates=None,
                  voting_candidates=[0.1, 0.01], vote_decay=0.1, min_lr=1e-6, max_lr=10.0,
                  discard_on_no_improvement=True)
    assert MCVModel.from_config(config).strategy == Method3(factors=FACTORS, min_lr=1e-6)


def test_string_and_strategy_forms_train_bit_identically():
    x, y = _data()
    weights = []
    for method, kw in (("method2", {"alpha": 0.3}), (Method2(alpha=0.3), {})):
        keras.utils.set_random_seed(5)
        model = _compile(MCVModel(_inner(), method=method, **kw))
        hist = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        weights.append((model.model.get_weights(), hist.history["mcv_next_lr"]))
    (w1, lr1), (w2, lr2) = weights
    assert lr1 == lr2
    for a, b in zip(w1, w2):
        assert np.array_equal(a, b)


def test_no_import_cycle_between_model_callbacks_and_strategies():
    """The model imports the callbacks (to add them in fit) and the strategies; neither imports it back."""
    grimp = pytest.importorskip("grimp")  # import-linter's import graph
    graph = grimp.build_graph("keras_autolr")
    model = "keras_autolr.runtime.mcv.model"
    assert graph.find_shortest_chain(importer=model, imported="keras_autolr.runtime.mcv.callbacks")
    for module in ("callbacks", "strategies", "rules", "cost", "candidates"):
        importer = f"keras_autolr.runtime.mcv.{module}"
        assert graph.find_shortest_chain(importer=importer, imported=model) is None, importer
