import json
import math

import pytest

from keras_autolr.harness import mcv_study


def _baseline_record(loss, val_loss):
    return {"method": "constant", "optimizer": "sgd_momentum", "initial_lr": 0.1, "steps_per_epoch": 4,
            "history": {"loss": loss, "val_loss": val_loss}, "test": {"loss": 2.0, "accuracy": 0.3}, "wall_s": 1.5}


def test_baseline_row_takes_the_best_epoch_and_reports_a_diverged_run():
    row = mcv_study.study_row(_baseline_record([2.0, 1.0, 0.9], [1.5, 1.2, 1.3]), "baseline_sgd_momentum_0.1")
    assert (row["epochs"], row["epochs_run"], row["test_acc"]) == (2, 3, 0.3)
    assert (row["cost_fwd_bwd"], row["cost_step"]) == (3 * 4 * 2, 3 * 4)
    # Non-finite values are None in run records: the last loss diverged, so no test score.
    row = mcv_study.study_row(_baseline_record([2.0, None], [1.5, None]), "b")
    assert row["epochs"] == 1 and math.isnan(row["test_acc"]) and math.isnan(row["test_loss"])
    row = mcv_study.study_row(_baseline_record([None], [None]), "b")
    assert row["epochs"] is None


def test_rows_of_the_committed_format_pass_through():
    old = {"kind": "mcv", "method": "method3", "optimizer": "adam", "epochs": 3, "epochs_run": 6,
           "test_loss": 1.2, "test_acc": 0.55, "wall_s": 10.0, "cost_fwd_bwd": 100.0, "cost_step": 50.0}
    assert mcv_study.study_row(old, "mcv_adam_method3") is old
    table = mcv_study.results_table([old])
    assert "| MCV method3 (adam) | 3 | 6 | 1.200 | 55.00 | (100, 50) | 10 |" in table


@pytest.mark.slow
def test_study_runs_through_the_runner_and_resumes(tmp_path):
    config = mcv_study.StudyConfig.smoke(dataset="digits", only=("discard", "baseline"), optimizers=("adam",),
                                         mcv_optimizers=("adam",), epochs=2)
    lines = []
    rows, text = mcv_study.run_study(config, tmp_path, log=lines.append)
    assert [r["kind"] for r in rows] == ["mcv"] + ["baseline"] * 4
    assert [r["lr"] for r in rows[1:]] == list(mcv_study.GRID)
    record = json.loads((tmp_path / "mcv_adam_discard.json").read_text())
    assert record["method"] == "mcv" and record["initial_lr"] == mcv_study.DISCARD_LR["adam"]
    assert "val_loss" not in record["history"]  # MCV never sees the held-out split
    assert rows[0]["measured_ops_per_step"] and rows[0]["epochs_run"] <= 2
    assert (tmp_path / "results.md").read_text() == text and "Grid search adam" in text
    lines.clear()
    again, text_again = mcv_study.run_study(config, tmp_path, log=lines.append)
    assert len(lines) == 1 and json.loads(json.dumps(again)) == json.loads(json.dumps(rows))
