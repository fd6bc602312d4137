"""reproductions/arc_v2.py: the protocol's decision rule, its measures and the reserved test groups."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "reproductions"))
import arc_v2  # noqa: E402


def _board(v1=None, v2=None, runs=39):
    base = {"runs": runs, "reached": 10, "score_steps": 0.3, "mean_rank": 1.5}
    return {"v1": {**base, **(v1 or {})}, "v2": {**base, **(v2 or {})}, "workloads": {}}


def _failed(decision):
    return [k.split()[0] for k, c in decision["checks"].items() if not c["passed"]]


def test_all_four_checks_pass_ships_v2_as_default():
    d = arc_v2.decide({"v1": 0.70, "v2": 0.72}, _board(v2={"reached": 11, "score_steps": 0.35, "mean_rank": 1.3},
                                                       v1={"mean_rank": 1.7}), expected_runs=39)
    assert d["verdict"] == "ship_default" and _failed(d) == [] and d["missing"] == []
    assert d["checks"]["2 targets reached T: v2 >= v1"] == {"v1": 10, "v2": 11, "passed": True}


def test_ties_keep_v1_on_heldout_and_rank_but_not_on_targets_and_score():
    # Equal T and S (v2 "at least as good") pass; equal H and R (v2 must beat v1) fail.
    d = arc_v2.decide({"v1": 0.7, "v2": 0.7}, _board(), expected_runs=39)
    assert d["verdict"] == "ship_non_default" and _failed(d) == ["1", "4"]
    # A score short by round-off only is still a tie.
    d = arc_v2.decide({"v1": 0.7, "v2": 0.71}, _board(v1={"mean_rank": 1.6, "score_steps": 0.3 + 1e-12},
                                                      v2={"mean_rank": 1.4}), expected_runs=39)
    assert d["verdict"] == "ship_default"


@pytest.mark.parametrize("v2, failed", [
    ({"reached": 9}, ["2"]),          # one target fewer
    ({"score_steps": 0.29}, ["3"]),   # slower to the same targets
    ({"mean_rank": 1.8}, ["4"]),      # worse best metric on more workloads
])
def test_any_failed_check_keeps_v1_as_default(v2, failed):
    d = arc_v2.decide({"v1": 0.70, "v2": 0.75}, _board(v1={"mean_rank": 1.7}, v2={"mean_rank": 1.3, **v2}),
                      expected_runs=39)
    assert d["verdict"] == "ship_non_default" and _failed(d) == failed


def test_missing_inputs_give_no_verdict():
    d = arc_v2.decide({"v1": 0.7, "v2": None}, _board(v2={"runs": 38}), expected_runs=39)
    assert d["verdict"] == "incomplete" and d["checks"] == {}
    assert d["missing"] == ["held-out score of v2", "v2: 38 of 39 leaderboard runs"]
    d = arc_v2.decide({"v1": 0.7, "v2": 0.8}, _board(v1={"mean_rank": None}), expected_runs=39)
    assert d["missing"] == ["v1: mean_rank"]


def test_heldout_score_is_the_mean_over_sets_and_needs_both():
    assert arc_v2.heldout_score({"A": 0.6, "B": 0.8}) == pytest.approx(0.7)
    assert arc_v2.heldout_score({"A": 0.6, "B": None}) is None
    assert arc_v2.heldout_score({"A": 0.6, "B": float("nan")}) is None


def _rec(workload, seed, mode, best, steps):
    return {"workload": workload, "method": "arc@lr/10", "seed": seed, "mode": mode, "best_metric": best,
            "final_metric": best, "diverged": False, "reached_target": steps is not None,
            "steps_to_target": steps, "seconds_to_target": None if steps is None else steps / 10,
            "cpu_seconds_to_target": None if steps is None else steps / 10}


def test_board_measures_compare_the_two_controllers_head_to_head():
    # acc (max): v1 reaches in 10 steps, v2 in 20; v2 has the better best accuracy.
    # mse (min): neither reaches; v1 has the lower error. loss (min): equal.
    v1 = [_rec("acc", 0, "max", 0.90, 10), _rec("mse", 0, "min", 0.10, None), _rec("loss", 0, "min", 1.0, None)]
    v2 = [_rec("acc", 0, "max", 0.95, 20), _rec("mse", 0, "min", 0.20, None), _rec("loss", 0, "min", 1.0, None)]
    m = arc_v2.board_measures(v1, v2)
    assert (m["v1"]["runs"], m["v1"]["reached"], m["v2"]["reached"]) == (3, 1, 1)
    # Ranks: acc v2 1 / v1 2, mse v1 1 / v2 2, loss 1.5 each: a tie overall.
    assert m["v1"]["mean_rank"] == m["v2"]["mean_rank"] == pytest.approx(1.5)
    # v1 is fastest on the only workload either reaches: v2 takes twice its steps.
    assert m["v1"]["score_steps"] > m["v2"]["score_steps"] > 0
    assert m["workloads"]["acc"]["v2"] == {"reached": 1.0, "best_metric": pytest.approx(0.95)}
    d = arc_v2.decide({"v1": 0.7, "v2": 0.8}, m, expected_runs=3)
    assert d["verdict"] == "ship_non_default" and _failed(d) == ["3", "4"]


def test_board_measures_without_records_leave_the_scores_missing():
    m = arc_v2.board_measures([_rec("acc", 0, "max", 0.9, 10)], [])
    assert m["v2"]["runs"] == 0 and m["v1"]["score_steps"] is None
    assert arc_v2.decide({"v1": 0.7, "v2": 0.8}, m, expected_runs=1)["verdict"] == "incomplete"


def test_reserve_groups_takes_whole_groups_from_every_task_reproducibly():
    groups = list(range(40))
    tasks = ["a"] * 20 + ["b"] * 12 + ["c"] * 8
    reserved = arc_v2.reserve_groups(groups, tasks)
    assert reserved == arc_v2.reserve_groups(groups, tasks)  # seeded
    by_task = {t: sum(1 for g, tt in zip(groups, tasks) if tt == t and g in reserved) for t in "abc"}
    assert by_task == {"a": 3, "b": 2, "c": 1}  # round(0.15 x 20 / 12 / 8)
    # A task with a single group still gives one; chains of a group share its fate.
    assert arc_v2.reserve_groups([0, 0, 1, 1], ["x", "x", "y", "y"]) == {0, 1}
