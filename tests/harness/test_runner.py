import json

import pytest

from keras_autolr.harness import runner as experiment, tasks


@pytest.mark.slow
def test_grid_runs_labelled_jobs_in_their_own_folders(tmp_path):
    # One method in two variants (as ARC selection runs several controllers).
    jobs = [("fast", "exponential", {"gamma": 0.5}), ("slow", "exponential", {"gamma": 0.99})]
    recs = experiment.run_grid("digits_cnn", jobs, [1e-2], [0], tmp_path, size="smoke", log=lambda _: None)
    assert [r["label"] for r in recs] == ["fast", "slow"]
    assert [p.parent.name for p in sorted((tmp_path / "runs").rglob("*.json"))] == ["fast", "slow"]
    lrs = [r["lr"][-1] for r in recs]
    assert lrs[0] < lrs[1]


@pytest.mark.slow
def test_grid_is_resumable_and_tabulated(tmp_path):
    log = []
    recs = experiment.run_grid("digits_cnn", ["constant", "exponential"], [1e-2], [0], tmp_path,
                               size="smoke", log=log.append)
    assert len(recs) == 2 and all(r["best"] is not None for r in recs)
    files = sorted((tmp_path / "runs").glob("*.json"))
    assert len(files) == 2
    rec = json.loads(files[0].read_text())
    assert len(rec["history"]["val_accuracy"]) == rec["epochs"] == 2
    assert rec["steps"] == [rec["steps_per_epoch"], 2 * rec["steps_per_epoch"]]
    # A second call runs nothing new.
    log.clear()
    again = experiment.run_grid("digits_cnn", ["constant", "exponential"], [1e-2], [0], tmp_path,
                                size="smoke", log=log.append)
    assert all("skipped" in line for line in log) and len(again) == 2
    table = experiment.markdown_table(again)
    assert "| constant |" in table and "converge step" in table
    rows = experiment.summarize(again)
    best = max(r["best"][0] for r in rows)
    assert any(r["converge"][0] is not None for r in rows)
    assert rows[0]["threshold"] <= best
    if pytest.importorskip("matplotlib"):
        assert experiment.plot_curves(again, tmp_path / "c.png").exists()


@pytest.mark.slow
def test_run_cached_runs_once_then_loads(tmp_path):
    path = tmp_path / "runs" / "a.json"
    rec, ran = experiment.run_cached(path, "digits_cnn", "constant", 1e-2, 0, label="fixed", size="smoke")
    assert ran and rec["label"] == "fixed" and json.loads(path.read_text()) == json.loads(json.dumps(rec))
    again, ran = experiment.run_cached(path, "digits_cnn", "constant", 1e-2, 0, label="fixed", size="smoke")
    assert not ran and again["wall_s"] == rec["wall_s"]


def test_perplexity_metric():
    import numpy as np

    m = tasks.Perplexity()
    logits = np.zeros((2, 3, 5), dtype="float32")  # uniform over 5 tokens
    m.update_state(np.zeros((2, 3), dtype="int32"), logits)
    assert float(m.result()) == pytest.approx(5.0, rel=1e-5)


def test_unknown_task():
    with pytest.raises(KeyError, match="choose one of"):
        tasks.get("nope")
    with pytest.raises(ValueError, match="size"):
        tasks.get("digits_cnn").data("huge")


@pytest.mark.slow
def test_per_method_optimizer_override(tmp_path):
    recs = experiment.run_grid("digits_cnn", ["constant"], [1e-2], [0], tmp_path, size="smoke",
                               optimizer="adam", options={"constant": {"optimizer": "sgd"}}, log=lambda *_: None)
    assert recs[0]["optimizer"] == "sgd"
    assert "__sgd__" in next((tmp_path / "runs").glob("*.json")).name
