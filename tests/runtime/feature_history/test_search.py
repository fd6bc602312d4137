import pathlib
import json
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_autolr.runtime.feature_history import HistoryStore
from keras_autolr.runtime.feature_history import estimate_file
from keras_autolr.runtime.feature_history import search
from tests.runtime.feature_history.helpers import make_mlp

REPO = str(pathlib.Path(__file__).resolve().parents[3])
EXAMPLES = os.path.join(REPO, "examples")


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    env.update(extra)
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _FakeTrial:
    def __init__(self, prune_at):
        self.prune_at = prune_at
        self.reports = []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) >= self.prune_at


def test_optuna_pruning_callback_reports_and_prunes():
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("optuna_integration")
    trial = _FakeTrial(prune_at=2)
    cb = search.pruning_callback(trial, every=2)  # as ProxyAccuracy(every=2)
    assert isinstance(cb, keras.callbacks.Callback)
    cb.on_epoch_end(0, {"loss": 1.0})  # no proxy this epoch: no report
    cb.on_epoch_end(1, {"val_proxy_accuracy": 0.5})
    assert trial.reports == [(1, 0.5)]
    cb.on_epoch_end(2, {"val_proxy_accuracy": 0.9})  # off the interval: not looked at
    assert trial.reports == [(1, 0.5)]
    with pytest.raises(optuna.TrialPruned, match="epoch 3"):
        cb.on_epoch_end(3, {"val_proxy_accuracy": 0.4})


def test_proxy_callbacks_end_with_optunas_pruning_callback(tmp_path, digits):
    pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")
    xt, yt, xv, yv = digits
    cbs = search.proxy_callbacks(str(tmp_path / "h.h5"), (xt, yt), (xv, yv), trial=_FakeTrial(9), every=3)
    assert [type(c).__name__ for c in cbs] == ["FeatureHistory", "ProxyAccuracy", "KerasPruningCallback"]
    assert isinstance(cbs[-1], integration.KerasPruningCallback) and cbs[-1]._interval == cbs[1].every == 3


def test_create_study_is_tpe_with_hyperband_pruner(tmp_path):
    optuna = pytest.importorskip("optuna")
    study = search.create_study(storage=str(tmp_path / "s.journal"),
                                study_name="s", max_epochs=9, seed=0)
    assert isinstance(study.sampler, optuna.samplers.TPESampler)
    assert isinstance(study.pruner, optuna.pruners.HyperbandPruner)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = search.create_study(storage=str(tmp_path / "s.journal"),
                                study_name="s", max_epochs=9)
    assert len(again.trials) == 2  # shared through the journal file


def test_search_needs_validation_data():
    with pytest.raises(ValueError, match="validation_data"):
        search._fit_data((np.zeros(3), np.zeros(3)), {})


@pytest.mark.slow
def test_proxy_random_search_scores_with_proxy(tmp_path, digits):
    kt = pytest.importorskip("keras_tuner")
    xt, yt, xv, yv = digits

    def build(hp):
        return make_mlp(width=hp.Choice("width", [8, 32]))

    tuner = search.ProxyRandomSearch(build, max_trials=2, seed=0,
                                     directory=str(tmp_path),
                                     project_name="rs", proxy_k=3,
                                     train_samples=256,
                                     feature_dtype="float32")
    assert tuner.oracle.objective.name == "val_proxy_accuracy"
    tuner.search(xt, yt, epochs=3, validation_data=(xv, yv), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    for trial in trials:
        path = tuner.history_path(trial.trial_id)
        assert HistoryStore(path).epochs() == [0, 1, 2]
        # The proxy recomputed from the file at each epoch; KerasTuner's
        # score is the objective's best epoch value.
        proxies = [estimate_file(path, k=3, upto_epoch=e, warn=False).accuracy
                   for e in range(3)]
        assert trial.score == pytest.approx(max(proxies), abs=1e-6)
        assert trial.metrics.get_best_value("val_proxy_accuracy") == (
            pytest.approx(max(proxies), abs=1e-6))
    assert isinstance(tuner, kt.RandomSearch)


@pytest.mark.slow
def test_hyperband_promotion_continues_parent_history(tmp_path):
    pytest.importorskip("keras_tuner")
    out = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "fh_kerastuner.py"),
         "--tuner", "hyperband", "--max-epochs", "3",
         "--directory", str(tmp_path)], env=_env(), capture_output=True,
        text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    project = tmp_path / "search"
    promoted = 0
    for trial_dir in project.glob("trial_*"):
        values = json.loads((trial_dir / "trial.json").read_text())[
            "hyperparameters"]["values"]
        store = HistoryStore(trial_dir / "features.h5")
        # Every trial's history covers epochs 0 .. tuner/epochs - 1,
        # including the epochs its Hyperband parent trained.
        assert store.epochs() == list(range(values["tuner/epochs"]))
        promoted += bool(values.get("tuner/trial_id"))
    assert promoted >= 1


@pytest.mark.slow
def test_kerastuner_distributed_chief_and_worker(tmp_path):
    pytest.importorskip("keras_tuner")
    pytest.importorskip("grpc")
    port = str(_free_port())
    cmd = [sys.executable, os.path.join(EXAMPLES, "fh_kerastuner.py"),
           "--max-trials", "2", "--max-epochs", "2",
           "--directory", str(tmp_path)]
    dist = dict(KERASTUNER_ORACLE_IP="127.0.0.1",
                KERASTUNER_ORACLE_PORT=port)
    chief = subprocess.Popen(cmd, env=_env(KERASTUNER_TUNER_ID="chief",
                                           **dist),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        worker = subprocess.run(
            cmd, env=_env(KERASTUNER_TUNER_ID="tuner0", **dist),
            capture_output=True, text=True, timeout=600)
        assert worker.returncode == 0, worker.stderr[-3000:]
        out, err = chief.communicate(timeout=120)
    finally:
        if chief.poll() is None:
            chief.kill()
    assert chief.returncode == 0, err[-3000:]
    assert "TRIALS 2" in out
    best = json.loads(out.split("BEST", 1)[1].splitlines()[0])
    assert 0.0 <= best["score"] <= 1.0
    # The worker trained and recorded the trials.
    histories = list(tmp_path.glob("search/trial_*/features.h5"))
    assert len(histories) == 2
    for h in histories:
        assert HistoryStore(h).epochs() == [0, 1]


@pytest.mark.slow
def test_optuna_two_workers_share_a_journal(tmp_path):
    pytest.importorskip("optuna")
    journal = str(tmp_path / "study.journal")
    cmd = [sys.executable, os.path.join(EXAMPLES, "fh_optuna.py"),
           "--storage", journal, "--n-trials", "2", "--max-epochs", "3"]
    procs = [subprocess.Popen(cmd + ["--seed", str(s)], env=_env(),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for s in (0, 1)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    study = search.create_study(study_name="fh_proxy", storage=journal)
    assert len(study.trials) == 4
    for t in study.trials:
        if t.state.name == "COMPLETE":
            assert t.value == pytest.approx(
                t.intermediate_values[max(t.intermediate_values)])


@pytest.mark.slow
def test_plain_kerastuner_with_one_recorder_writes_a_file_per_trial(tmp_path, digits):
    kt = pytest.importorskip("keras_tuner")
    from keras_autolr.runtime.feature_history import FeatureHistory, ProxyAccuracy

    xt, yt, xv, yv = digits

    def build(hp):  # the two trials differ in architecture
        return make_mlp(width=hp.Choice("width", [4, 16]))

    recorder = FeatureHistory(str(tmp_path / "fh" / "run.h5"), (xt, yt), (xv, yv), train_samples=256)
    tuner = kt.RandomSearch(build, objective=search.proxy_objective(), max_trials=2, seed=0,
                            directory=str(tmp_path), project_name="plain")
    tuner._configure_tensorboard_dir = lambda *a, **k: None  # KerasTuner imports tensorboard otherwise
    tuner.search(xt, yt, epochs=2, validation_data=(xv, yv), verbose=0,
                 callbacks=[recorder, ProxyAccuracy(recorder, k=2)])
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    assert [t.status for t in trials] == ["COMPLETED"] * 2
    paths = list(recorder.trial_paths)
    assert paths == [str(tmp_path / "fh" / "run.000.h5"), str(tmp_path / "fh" / "run.001.h5")]
    stores = [HistoryStore(p) for p in paths]
    assert stores[0].fingerprint != stores[1].fingerprint
    for trial, path, store in zip(trials, paths, stores):
        assert store.epochs() == [0, 1]
        assert store.read_epoch(1)["val_embeddings"].shape[1] == trial.hyperparameters.values["width"]
        best = max(estimate_file(path, k=2, upto_epoch=e, warn=False).accuracy for e in (0, 1))
        assert trial.score == pytest.approx(best, abs=1e-6)
    assert not os.path.exists(tmp_path / "fh" / "run.h5")  # the original itself never trained
    assert recorder.delete_trial_histories() == paths
    assert recorder.trial_paths == [] and sorted(os.listdir(tmp_path / "fh")) == []


@pytest.mark.slow
def test_copies_of_a_recorder_take_the_next_free_file(tmp_path):
    import copy

    from keras_autolr.runtime.feature_history import FeatureHistory

    x, y = np.random.default_rng(0).normal(size=(40, 64)).astype("float32"), np.arange(40) % 10
    HistoryStore(tmp_path / "run.000.h5", fingerprint="old").write_epoch(0, {"val_labels": y})
    recorder = FeatureHistory(tmp_path / "run.h5", (x, y), (x, y))
    for width in (4, 8):
        make_mlp(width=width).fit(x, y, epochs=1, verbose=0, callbacks=[copy.deepcopy(recorder)])
    # run.000.h5 holds an older history: kept, skipped.
    assert [os.path.basename(p) for p in recorder.trial_paths] == ["run.001.h5", "run.002.h5"]
    assert HistoryStore(tmp_path / "run.000.h5").fingerprint == "old"
    same = FeatureHistory(tmp_path / "same.h5", (x, y), (x, y), file_per_copy=False)
    make_mlp().fit(x, y, epochs=1, verbose=0, callbacks=[copy.deepcopy(same)])
    assert same.trial_paths == [] and HistoryStore(tmp_path / "same.h5").epochs() == [0]


@pytest.mark.jax
def test_fit_data_follows_fits_validation_split():
    x, y = np.arange(10), np.arange(10)
    train, val, split = search._fit_data((x, y), {"validation_split": 0.2})
    assert val is None and split == 0.2 and train[0] is x
    # validation_data wins, as in Keras.
    assert search._fit_data((x, y), {"validation_split": 0.2, "validation_data": (x, y)})[2] is None


@pytest.mark.jax
def test_should_prune_is_the_percentile_rule():
    assert search.should_prune(0.5, [0.6, 0.7, 0.8])
    assert not search.should_prune(0.7, [0.6, 0.7, 0.8])  # at the median: kept
    assert not search.should_prune(0.1, [0.6, 0.7], min_trials=3)  # too few trials yet
    assert not search.should_prune(0.75, [0.6, 0.7, 0.8, 0.9], percentile=75)  # keeps the top 75%
    assert search.should_prune(0.65, [0.6, 0.7, 0.8, 0.9], percentile=75)
    assert search.should_prune(2.0, [1.0, 1.5, 1.8], direction="min")
    assert not search.should_prune(0.5, [float("nan"), None, 0.6, 0.7, 0.8], min_trials=4)


def test_pruning_oracle_stops_a_lagging_trial_after_warmup(tmp_path):
    kt = pytest.importorskip("keras_tuner")
    hp = kt.HyperParameters()
    hp.Float("lr", 1e-4, 1.0)
    tuner = search.PruningRandomSearch(lambda hp: None, objective=kt.Objective("score", "max"), max_trials=5,
                                       hyperparameters=hp, directory=str(tmp_path), prune_warmup=1,
                                       prune_min_trials=2, seed=0)
    oracle = tuner.oracle
    for curve in ([0.5, 0.6, 0.7], [0.6, 0.7, 0.8]):  # two finished trials
        trial = oracle.create_trial("t")
        for step, v in enumerate(curve):
            assert oracle.update_trial(trial.trial_id, {"score": v}, step=step).status == "RUNNING"
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    lagging = oracle.create_trial("t")
    # Below the median at step 0, but step 0 is warm-up.
    assert oracle.update_trial(lagging.trial_id, {"score": 0.1}, step=0).status == "RUNNING"
    assert oracle.update_trial(lagging.trial_id, {"score": 0.2}, step=1).status == "STOPPED"
    assert oracle.pruned == {lagging.trial_id: 1}
    lagging.status = "COMPLETED"  # the tuner ends a stopped trial as completed
    oracle.end_trial(lagging)
    good = oracle.create_trial("t")
    oracle.update_trial(good.trial_id, {"score": 0.6}, step=0)
    assert oracle.update_trial(good.trial_id, {"score": 0.7}, step=1).status == "RUNNING"
    good.status = "COMPLETED"
    oracle.end_trial(good)
    # Step-1 reference: 0.6, 0.7, 0.7 (median 0.7); the pruned trial's 0.2 does not count.
    late = oracle.create_trial("t")
    assert oracle.update_trial(late.trial_id, {"score": 0.65}, step=1).status == "STOPPED"
    assert oracle.get_state()["pruned"] == {lagging.trial_id: 1, late.trial_id: 1}


@pytest.mark.slow
def test_proxy_pruning_tuner_stops_the_lagging_architecture(tmp_path, digits):
    kt = pytest.importorskip("keras_tuner")
    xt, yt, xv, yv = digits

    class Oracle(search.PruningOracleMixin, kt.oracles.GridSearchOracle):
        pass

    class ProxyPruningGrid(search.ProxyTunerMixin, search.PruningTunerMixin, kt.Tuner):
        pass

    def build(hp):  # grid order: the wide net first, then the 2-unit one
        return make_mlp(width=hp.Choice("width", [32, 2]))

    oracle = Oracle(objective=search.proxy_objective(), max_trials=2, prune_warmup=1, prune_min_trials=1)
    tuner = ProxyPruningGrid(oracle, build, directory=str(tmp_path), project_name="p", proxy_k=2,
                             train_samples=400, feature_dtype="float32")
    tuner.search(xt, yt, epochs=4, validation_split=0.25, verbose=0)
    wide, narrow = sorted(oracle.trials.values(), key=lambda t: t.trial_id)
    assert narrow.hyperparameters.values["width"] == 2
    assert oracle.pruned == {narrow.trial_id: 1} and tuner.stopped_trials == [narrow.trial_id]
    assert HistoryStore(tuner.history_path(wide.trial_id)).epochs() == [0, 1, 2, 3]
    assert HistoryStore(tuner.history_path(narrow.trial_id)).epochs() == [0, 1]  # stopped after epoch 1
    steps = [o.step for o in narrow.metrics.get_history("val_proxy_accuracy")]
    assert steps == [0, 1] and narrow.status == "COMPLETED"
    assert oracle.get_best_trials(1)[0].trial_id == wide.trial_id
    # validation_split: the recorder validated on the rows Keras did.
    split_at = int(np.floor(len(xt) * 0.75))
    np.testing.assert_array_equal(HistoryStore(tuner.history_path(wide.trial_id)).read_epoch(0)["val_labels"],
                                  yt[split_at:])


@pytest.mark.slow
def test_optuna_study_prunes_on_the_proxy(tmp_path, digits):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("optuna_integration")
    xt, yt, xv, yv = digits
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1))
    study.enqueue_trial({"width": 32})
    study.enqueue_trial({"width": 2})

    def objective(trial):
        model = make_mlp(width=trial.suggest_categorical("width", [2, 32]))
        callbacks = search.proxy_callbacks(str(tmp_path / f"t{trial.number}.h5"), (xt, yt), (xv, yv),
                                           trial=trial, k=2, train_samples=400)
        h = model.fit(xt, yt, epochs=4, batch_size=128, validation_data=(xv, yv), verbose=0, callbacks=callbacks)
        return h.history["val_proxy_accuracy"][-1]

    study.optimize(objective, n_trials=2)
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.COMPLETE and sorted(first.intermediate_values) == [0, 1, 2, 3]
    assert second.state == optuna.trial.TrialState.PRUNED
    assert sorted(second.intermediate_values) == [0, 1]  # pruned at epoch 1, the first after warm-up
    proxies = [estimate_file(str(tmp_path / "t1.h5"), k=2, upto_epoch=e, warn=False).accuracy for e in (0, 1)]
    assert [second.intermediate_values[e] for e in (0, 1)] == pytest.approx(proxies, abs=1e-9)
