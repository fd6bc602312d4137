import math

import pytest

from keras_autolr.harness import calibration, leaderboard


def _rec(w, lr, seed, best, mode="max", diverged=False):
    return {"workload": w, "method": calibration.entry(lr).name, "seed": seed, "mode": mode,
            "best_metric": best, "diverged": diverged}


def test_grid_is_seven_half_decade_lrs_bracketing_algoperf():
    lrs = calibration.CALIBRATION_LRS
    assert len(lrs) == 7 and lrs[0] == 1e-4 and lrs[-1] == 0.1
    assert all(math.isclose(b / a, 10 ** 0.5, rel_tol=0.01) for a, b in zip(lrs, lrs[1:]))
    from keras_autolr.harness.methods.tuning_free import ALGOPERF_NADAMW

    assert lrs[0] < ALGOPERF_NADAMW["learning_rate"] < lrs[-1]


def test_cells_cover_every_lr_and_seed_once_with_the_tuned_baseline():
    cells = calibration.cells(["digits_mlp_lb", "sine_cnn_lb"])
    assert len(cells) == 2 * 7 * 3 and len({c.key for c in cells}) == len(cells)
    assert {c.entry.method for c in cells} == {calibration.CALIBRATION_METHOD}
    assert {c.entry.initial_lr for c in cells} == set(calibration.CALIBRATION_LRS)
    with pytest.raises(KeyError, match="Unknown workload"):
        calibration.cells(["nope"])


def test_target_is_the_median_best_at_the_lr_with_the_best_median():
    recs = [_rec("w", 1e-3, s, b) for s, b in enumerate([0.70, 0.90, 0.80])]
    recs += [_rec("w", 1e-2, s, b) for s, b in enumerate([0.99, 0.60, 0.70])]   # one lucky seed
    out = calibration.targets_from_records(recs)["w"]
    assert out["lr"] == 1e-3 and out["target"] == 0.80 and out["seeds"] == 3
    assert out["per_lr"] == {"0.001": 0.80, "0.01": 0.70} and out["at_edge"]


def test_min_mode_and_diverged_runs_count_as_worst():
    recs = [_rec("r", 1e-2, s, 0.1, "min", diverged=(s < 2)) for s in range(3)]   # diverges mostly
    recs += [_rec("r", 1e-3, s, v, "min") for s, v in enumerate([0.5, 0.4, 0.6])]
    recs += [_rec("r", 1e-4, s, None, "min") for s in range(3)]
    out = calibration.targets_from_records(recs)["r"]
    assert out["lr"] == 1e-3 and out["target"] == 0.5
    assert out["per_lr"]["0.01"] is None and out["per_lr"]["0.0001"] is None
    all_bad = [_rec("x", 1e-3, s, None) for s in range(3)]
    with pytest.raises(ValueError, match="Every calibration LR diverged"):
        calibration.targets_from_records(all_bad)


def test_document_merges_with_an_earlier_one():
    first = calibration.targets_document(calibration.targets_from_records(
        [_rec("a", 1e-3, 0, 0.5)]), "cmd a")
    second = calibration.targets_document(calibration.targets_from_records(
        [_rec("b", 1e-2, 0, 0.7)]), "cmd b", previous=first)
    assert second["targets"] == {"a": 0.5, "b": 0.7} and second["commands"] == ["cmd a", "cmd b"]
    assert second["tuned_lr"] == {"a": 1e-3, "b": 1e-2}


def test_rescore_recomputes_time_to_target_from_the_curve():
    rec = {"workload": "w", "mode": "min", "reached_target": False, "steps_to_target": None,
           "curve": {"steps": [5, 10, 15], "seconds": [1.0, 2.0, 3.0], "metric": [0.9, None, 0.3]}}
    hit = leaderboard.rescore(rec, 0.5)
    assert (hit["reached_target"], hit["steps_to_target"], hit["seconds_to_target"]) == (True, 15, 3.0)
    miss = leaderboard.rescore(rec, 0.1)
    assert not miss["reached_target"] and miss["seconds_to_target"] is None
    assert not leaderboard.rescore(rec, None)["reached_target"]
    failed = {"workload": "w", "error": "ValueError: x", "reached_target": False}
    assert leaderboard.rescore(failed, 0.5) == dict(failed, target=0.5)


def test_estimate_uses_measured_ratios_for_unmeasured_cells():
    calib = calibration.entry(1e-3).name
    recs = [{"workload": "digits_mlp_lb", "method": calib, "wall_s": 10.0},
            {"workload": "digits_mlp_lb", "method": "mcv_method3", "wall_s": 30.0},
            {"workload": "sine_cnn_lb", "method": calib, "wall_s": 4.0},
            {"workload": "sine_cnn_lb", "method": "adam", "wall_s": 5.0}]
    cells = leaderboard.grid(["sine_cnn_lb", "diabetes_mlp_lb"], ["adam", "mcv_method3"], seeds=[0], bad_lrs=False)
    seconds, missing = leaderboard.estimate_seconds(cells, recs)
    # sine: adam measured (5), MCV at its ratio to the base on digits (3) x sine's base (4);
    # diabetes, never measured: the median base (7) x 1.25 (adam) and x 3 (MCV).
    assert missing == ["diabetes_mlp_lb"]
    assert math.isclose(seconds, 5.0 + 12.0 + 7.0 * 1.25 + 7.0 * 3.0)
    with pytest.raises(ValueError, match="calibrate first"):
        leaderboard.estimate_seconds(cells, [])


def test_estimate_deflates_a_run_that_shared_its_core():
    """A record whose training took 2 wall s per CPU s costs half its wall time; one without CPU, all of it."""
    cells = leaderboard.grid(["sine_cnn_lb"], ["adam"], seeds=[0, 1], bad_lrs=False)
    shared = {"workload": "sine_cnn_lb", "method": "adam", "wall_s": 10.0, "train_seconds": 8.0,
              "train_cpu_seconds": 4.0}
    assert leaderboard.estimate_seconds(cells, [shared]) == (2 * 5.0, [])
    busy = dict(shared, train_cpu_seconds=16.0)  # two busy threads: left as measured
    assert leaderboard.estimate_seconds(cells, [busy]) == (2 * 10.0, [])
    old = {"workload": "sine_cnn_lb", "method": "adam", "wall_s": 10.0}
    assert leaderboard.estimate_seconds(cells, [old]) == (2 * 10.0, [])


def test_budget_fraction_scales_the_epochs_and_keeps_the_cells_keys():
    """AlgoPerf's ratio: target-setting runs at half the budget, in their own folder, same cell keys."""
    full = calibration.cells(["digits_mlp_lb", "sine_cnn_lb"])
    half = calibration.cells(["digits_mlp_lb", "sine_cnn_lb"], budget_fraction=calibration.ALGOPERF_BUDGET_FRACTION)
    assert [c.key for c in half] == [c.key for c in full]
    for f, h in zip(full, half):
        assert h.workload.epochs == max(1, round(f.workload.epochs / 2)) and h.workload.name == f.workload.name
    assert leaderboard.WORKLOADS["digits_mlp_lb"].epochs == full[0].workload.epochs  # the registry is untouched
    assert calibration.folder_name() == "calibration" and calibration.folder_name(0.5) == "calibration_budget0.5"
    for bad in (0, 1.5, -0.5):
        with pytest.raises(ValueError, match=r"in \(0, 1\]"):
            calibration.cells(["digits_mlp_lb"], budget_fraction=bad)
    doc = calibration.targets_document(calibration.targets_from_records([_rec("a", 1e-3, 0, 0.5)]), "cmd",
                                       budget_fraction=0.5)
    assert "budget x 0.5" in doc["protocol"]
    assert "budget x" not in calibration.targets_document({}, "cmd")["protocol"]
