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
