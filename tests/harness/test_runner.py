import json

import keras
import pytest

from keras_autolr.harness import reports, runner


@pytest.mark.slow
def test_grid_runs_labelled_jobs_in_their_own_folders(tmp_path):
    # One method in two variants (as ARC selection runs several controllers).
    jobs = [("fast", "exponential", {"gamma": 0.5}), ("slow", "exponential", {"gamma": 0.99})]
    recs = runner.run_grid("digits_cnn", jobs, [1e-2], [0], tmp_path, size="smoke", log=lambda _: None)
    assert [r["label"] for r in recs] == ["fast", "slow"]
    assert [p.parent.name for p in sorted((tmp_path / "runs").rglob("*.json"))] == ["fast", "slow"]
    lrs = [r["lr"][-1] for r in recs]
    assert lrs[0] < lrs[1]


@pytest.mark.slow
def test_grid_is_resumable_and_tabulated(tmp_path):
    log = []
    recs = runner.run_grid("digits_cnn", ["constant", "exponential"], [1e-2], [0], tmp_path,
                               size="smoke", log=log.append)
    assert len(recs) == 2 and all(r["best"] is not None for r in recs)
    files = sorted((tmp_path / "runs").glob("*.json"))
    assert len(files) == 2
    rec = json.loads(files[0].read_text())
    assert len(rec["history"]["val_accuracy"]) == rec["epochs"] == 2
    assert rec["steps"] == [rec["steps_per_epoch"], 2 * rec["steps_per_epoch"]]
    # A second call runs nothing new.
    log.clear()
    again = runner.run_grid("digits_cnn", ["constant", "exponential"], [1e-2], [0], tmp_path,
                                size="smoke", log=log.append)
    assert all("skipped" in line for line in log) and len(again) == 2
    table = reports.markdown_table(again)
    assert "| constant |" in table and "converge step" in table
    rows = reports.summarize(again)
    best = max(r["best"][0] for r in rows)
    assert any(r["converge"][0] is not None for r in rows)
    assert rows[0]["threshold"] <= best
    if pytest.importorskip("matplotlib"):
        assert reports.plot_curves(again, tmp_path / "c.png").exists()
    # Run ids do not say the size or the length: a grid of another size in the same folder is refused.
    with pytest.raises(ValueError, match=r"is a run at size 'smoke', 2 epochs; this grid runs size 'small'.*--out"):
        runner.run_grid("digits_cnn", ["constant"], [1e-2], [0], tmp_path, size="small", log=log.append)
    with pytest.raises(ValueError, match=r"this grid runs size 'smoke', 5 epochs"):
        runner.run_grid("digits_cnn", ["constant"], [1e-2], [0], tmp_path, size="smoke", epochs=5, log=log.append)


@pytest.mark.slow
def test_run_cached_runs_once_then_loads(tmp_path):
    path = tmp_path / "runs" / "a.json"
    rec, ran = runner.run_cached(path, "digits_cnn", "constant", 1e-2, 0, label="fixed", size="smoke")
    assert ran and rec["label"] == "fixed" and json.loads(path.read_text()) == json.loads(json.dumps(rec))
    again, ran = runner.run_cached(path, "digits_cnn", "constant", 1e-2, 0, label="fixed", size="smoke",
                                   annotate=lambda r: pytest.fail("annotate runs only for new records"))
    assert not ran and again["wall_s"] == rec["wall_s"]


@pytest.mark.slow
def test_run_cached_annotates_new_records_before_writing(tmp_path):
    stop = keras.callbacks.EarlyStopping("val_loss", patience=1)
    rec, ran = runner.run_cached(tmp_path / "b.json", "digits_cnn", "constant", 1e-2, size="smoke", epochs=2,
                                 extra_callbacks=[stop], annotate=lambda r: {"stopped_epoch": stop.stopped_epoch,
                                                                             "epochs_seen": len(r["history"]["loss"])})
    saved = json.loads((tmp_path / "b.json").read_text())
    assert ran and saved["epochs_seen"] == rec["epochs_run"] and "stopped_epoch" in saved


@pytest.mark.slow
def test_per_method_optimizer_override(tmp_path):
    recs = runner.run_grid("digits_cnn", ["constant"], [1e-2], [0], tmp_path, size="smoke",
                               optimizer="adam", options={"constant": {"optimizer": "sgd"}}, log=lambda *_: None)
    assert recs[0]["optimizer"] == "sgd"
    assert "__sgd__" in next((tmp_path / "runs").glob("*.json")).name


@pytest.mark.slow
def test_run_one_without_validation_and_with_another_batch_size():
    rec = runner.run_one("digits_cnn", "constant", 1e-2, size="smoke", epochs=1, validation=False, batch_size=100)
    # 300 training digits at smoke size: 3 steps of 100 instead of 5 of the task's 64.
    assert rec["steps_per_epoch"] == 3 and rec["steps"] == [3]
    assert "val_loss" not in rec["history"] and rec["best"] is None and "accuracy" in rec["test"]


def test_summary_thresholds_and_table_from_records():
    def rec(method, seed, curve):
        return {"initial_lr": 1e-3, "method": method, "seed": seed, "metric": "accuracy", "mode": "max",
                "history": {"val_accuracy": curve}, "steps": [10, 20, 30], "best": max(curve),
                "test": {"accuracy": curve[-1]}, "wall_s": 1.0, "lr": [1e-3] * 3}

    records = [rec("a", 0, [0.5, 0.7, 0.8]), rec("a", 1, [0.6, 0.9, 0.9]), rec("b", 0, [0.6, 0.6, 0.7])]
    rows = reports.summarize(records)
    assert rows[0]["threshold"] == 0.7 and [r["converge"] for r in rows] == [[20, 20], [30]]
    table = reports.markdown_table(records)
    assert "| a | 0.8500 ± 0.0707 | 20 ± 0 |" in table and "LR 0.001: 0.7000" in table
