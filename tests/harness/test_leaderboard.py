import json
import math

import keras
import numpy as np
import pytest

from keras_autolr.harness import leaderboard, tasks


def test_every_workload_is_a_registered_task_and_builds():
    assert len(leaderboard.WORKLOADS) >= 12
    for w in leaderboard.WORKLOADS.values():
        task = tasks.get(w.task)
        assert w.epochs > 0 and task.mode in ("max", "min")


def test_grid_adds_bad_lr_variants_only_where_the_lr_matters():
    cells = leaderboard.grid(["digits_mlp_lb"], ["adam", "prodigy"], seeds=[0, 1, 2])
    names = sorted({c.entry.name for c in cells})
    assert names == ["adam", "adam@lr/10", "adam@lrx10", "prodigy"]
    assert len(cells) == 4 * 3
    lrs = {c.entry.name: c.entry.initial_lr for c in cells}
    assert lrs["adam@lr/10"] == pytest.approx(1e-4) and lrs["adam@lrx10"] == pytest.approx(1e-2)
    assert len({c.key for c in cells}) == len(cells)
    with pytest.raises(KeyError, match="Unknown workload"):
        leaderboard.grid(["nope"], ["adam"])
    with pytest.raises(KeyError, match="Unknown leaderboard entry"):
        leaderboard.grid(["digits_mlp_lb"], ["nope"])


def test_shards_partition_the_grid():
    cells = leaderboard.grid(None, ["adam"], seeds=[0], bad_lrs=False)
    parts = [leaderboard.shard(cells, i, 3) for i in range(3)]
    assert sorted(c.key for p in parts for c in p) == sorted(c.key for c in cells)
    with pytest.raises(ValueError):
        leaderboard.shard(cells, 3, 3)


def test_training_clock_excludes_validation():
    x = np.zeros((512, 8), "float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    clock = leaderboard.TrainingClock()
    big_val = (np.zeros((20000, 8), "float32"), np.zeros((20000, 1), "float32"))
    model.fit(x, x[:, :1], epochs=2, batch_size=512, validation_data=big_val, verbose=0, callbacks=[clock])
    assert clock.seconds[0] > 0 and clock.cpu_seconds[0] > 0
    assert (clock._excluded > 0).all()  # wall and CPU time of the validation passes


@pytest.mark.slow
def test_smoke_leaderboard_is_resumable_and_aggregates(tmp_path):
    cells = leaderboard.grid(["digits_mlp_lb"], ["adam", "dog"], seeds=[0], smoke=True)
    targets = {"digits_mlp_lb": 0.05}   # reachable at once: every run records a time
    records = leaderboard.run_cells(cells, tmp_path, targets, progress=False)
    assert len(records) == 4
    for r in records:
        for key in ("workload", "method", "seed", "reached_target", "steps_to_target", "seconds_to_target",
                    "best_metric", "final_metric", "diverged"):
            assert key in r
    reached = [r for r in records if r["reached_target"]]
    assert reached and all(r["seconds_to_target"] > 0 and r["steps_to_target"] >= 1 for r in reached)
    files = sorted((tmp_path / "runs").glob("*.json"))
    assert len(files) == 4
    stamp = [f.stat().st_mtime_ns for f in files]
    again = leaderboard.run_cells(cells, tmp_path, targets, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == stamp          # loaded, not rerun
    assert [r["wall_s"] for r in again] == [r["wall_s"] for r in records]
    summary = leaderboard.aggregate(leaderboard.load_records(tmp_path))
    assert set(summary["scores"]) == {"adam", "adam@lr/10", "adam@lrx10", "dog"}
    assert max(summary["scores"].values()) == pytest.approx(1.0)
    assert "| 1 |" in leaderboard.markdown_report(summary)
    json.dumps(summary)


@pytest.mark.slow
def test_ray_backend_runs_the_same_cells(tmp_path):
    ray = pytest.importorskip("ray")
    cells = leaderboard.grid(["digits_mlp_lb"], ["adam"], seeds=[0], bad_lrs=False, smoke=True)
    try:
        records = leaderboard.run_cells(cells, tmp_path, {"digits_mlp_lb": 0.05}, backend="ray",
                                        progress=False, num_cpus=2)
    finally:
        ray.shutdown()
    assert len(records) == 1 and records[0]["workload"] == "digits_mlp_lb"
    assert (tmp_path / "runs" / f"{cells[0].key}.json").exists()


def test_lr_finder_cost_counts_in_time_to_target():
    record = {"mode": "max", "metric": "accuracy", "history": {"val_accuracy": [0.5, 0.9]},
              "steps": [10, 20], "lr": [1e-3, 1e-3], "diverged": False,
              "setup_cost": {"seconds": 5.0, "cpu_seconds": 4.0, "steps": 30}}
    clock = leaderboard.TrainingClock()
    clock.seconds, clock.cpu_seconds = [1.0, 2.0], [0.5, 1.5]
    f = leaderboard._fields(record, clock, "w", "m", target=0.9)
    assert f["steps_to_target"] == 50 and f["seconds_to_target"] == pytest.approx(7.0)
    assert f["cpu_seconds_to_target"] == pytest.approx(5.5)
    assert f["best_metric"] == 0.9 and math.isclose(f["final_metric"], 0.9)


def test_scores_rank_on_cpu_seconds_only_when_every_record_measured_them():
    """CPU time is the headline where every run has it; a mix with wall-only records falls back to wall time."""
    from keras_autolr.harness import leaderboard

    def rec(m, wall, cpu=None):
        r = {"workload": "w", "method": m, "seed": 0, "seconds_to_target": wall, "steps_to_target": 10,
             "reached_target": True, "best_metric": 0.9, "final_metric": 0.9, "diverged": False}
        if cpu is not None:
            r["cpu_seconds_to_target"] = cpu
        return r

    # Wall time says a is faster (b ran while the machine was busy); CPU time says b is.
    both = leaderboard.aggregate([rec("a", 1.0, 2.0), rec("b", 3.0, 1.0)])
    assert both["score_basis"] == "cpu_seconds"
    assert both["scores"] == both["scores_cpu"] and both["scores"]["b"] > both["scores"]["a"]
    assert both["scores_wall"]["a"] > both["scores_wall"]["b"]
    assert "score (CPU seconds)" in leaderboard.markdown_report(both)
    mixed = leaderboard.aggregate([rec("a", 1.0, 2.0), rec("b", 3.0)])
    assert mixed["score_basis"] == "seconds" and mixed["scores_cpu"] is None
    assert mixed["scores"]["a"] > mixed["scores"]["b"]
    # A failed run (an error record, no time on either clock; older ones lack the CPU key) keeps CPU time.
    failed = {"workload": "w", "method": "c", "seed": 0, "seconds_to_target": None, "steps_to_target": None,
              "reached_target": False, "best_metric": None, "final_metric": None, "diverged": False,
              "error": "ValueError: needs class labels"}
    with_error = leaderboard.aggregate([rec("a", 1.0, 2.0), rec("b", 3.0, 1.0), failed])
    assert with_error["score_basis"] == "cpu_seconds" and with_error["scores"]["b"] > with_error["scores"]["a"]


def test_rescore_recomputes_cpu_seconds_when_the_curve_has_them():
    from keras_autolr.harness import leaderboard

    curve = {"steps": [10, 20], "seconds": [1.0, 2.0], "cpu_seconds": [0.5, 0.9], "metric": [0.5, 0.9]}
    out = leaderboard.rescore({"mode": "max", "curve": curve}, 0.8)
    assert out["seconds_to_target"] == 2.0 and out["cpu_seconds_to_target"] == 0.9
    old = leaderboard.rescore({"mode": "max", "curve": {k: v for k, v in curve.items() if k != "cpu_seconds"}}, 0.8)
    assert "cpu_seconds_to_target" not in old


def test_methods_with_equal_scores_are_ordered_by_mean_rank_of_best_metric():
    """No method reaches the target: the score ties at 0; the better best metric ranks first."""
    recs = [{"workload": w, "method": m, "seed": 0, "seconds_to_target": None, "steps_to_target": None,
             "cpu_seconds_to_target": None, "reached_target": False, "best_metric": b, "final_metric": b,
             "diverged": False, "mode": mode}
            for w, mode, values in (("acc_w", "max", {"alpha": 0.5, "beta": 0.8}),
                                    ("ppl_w", "min", {"alpha": 30.0, "beta": 20.0}))
            for m, b in values.items()]
    summary = leaderboard.aggregate(recs)
    assert summary["scores"] == {"alpha": 0.0, "beta": 0.0}
    assert summary["mean_rank"] == {"alpha": 2.0, "beta": 1.0}
    table = leaderboard.markdown_report(summary).splitlines()
    assert table[0].endswith("mean rank by best metric |")
    assert table[2].startswith("| 1 | beta |") and table[3].startswith("| 2 | alpha |")


def test_report_puts_the_paper_methods_beside_the_alternatives_with_their_rank_on_each_workload():
    # acc_w (max): prodigy 0.9 reached, arc 0.8, adam 0.7; ppl_w (min): arc 20 reached, adam 25, prodigy 30.
    values = {("acc_w", "max"): {"prodigy": (0.9, 2.0), "arc@lrx10": (0.8, None), "adam": (0.7, None)},
              ("ppl_w", "min"): {"prodigy": (30.0, None), "arc@lrx10": (20.0, 3.0), "adam": (25.0, None)}}
    recs = [{"workload": w, "method": m, "seed": 0, "seconds_to_target": t, "steps_to_target": t,
             "cpu_seconds_to_target": t, "reached_target": t is not None, "best_metric": b, "final_metric": b,
             "diverged": False, "mode": mode}
            for (w, mode), ms in values.items() for m, (b, t) in ms.items()]
    summary = leaderboard.aggregate(recs)
    assert summary["workload_ranks"] == {"acc_w": {"adam": 3.0, "arc@lrx10": 2.0, "prodigy": 1.0},
                                         "ppl_w": {"adam": 2.0, "arc@lrx10": 1.0, "prodigy": 3.0}}
    lines = leaderboard.markdown_report(summary).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| method | rank | score |"))
    assert lines[head] == "| method | rank | score | reached | mean rank | acc_w | ppl_w |"
    rows = lines[head + 2:head + 4]  # adam is neither a paper method nor an alternative: no row
    assert rows == ["| arc@lrx10 | 1 | 0.500 | 1/2 | 1.5 | 2 | 1* |", "| prodigy | 2 | 0.500 | 1/2 | 2.0 | 1* | 3 |"]
    assert lines[head + 4] == ""


def test_comparison_table_shows_tied_ranks_and_a_missing_run():
    recs = [{"workload": w, "method": m, "seed": 0, "seconds_to_target": None, "steps_to_target": None,
             "cpu_seconds_to_target": None, "reached_target": False, "best_metric": b, "final_metric": b,
             "diverged": False, "mode": "max"}
            for w, m, b in (("w1", "arc", 0.5), ("w1", "prodigy", 0.5), ("w1", "adam", 0.9), ("w2", "arc", 0.7))]
    lines = leaderboard.markdown_report(leaderboard.aggregate(recs)).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| method | rank | score |"))
    assert lines[head].endswith("| w1 | w2 |")
    rows = {line.split(" | ")[0][2:]: line for line in lines[head + 2:head + 4]}
    assert rows["arc"].endswith("| 2.5 | 1 |") and rows["prodigy"].endswith("| 2.5 | - |")  # prodigy never ran w2


@pytest.mark.parametrize("error", [ValueError("bad workload"), FloatingPointError("diverged probe")])
def test_a_method_that_raises_gets_an_error_record_and_the_grid_goes_on(tmp_path, error, monkeypatch):
    """One failing cell neither stops the grid nor goes unreported (FloatingPointError included)."""
    from keras_autolr.harness import methods

    def failing(ctx):
        raise error

    monkeypatch.setitem(methods._REGISTRY, "always_fails", failing)  # registered for this test only
    entry = leaderboard.Entry("always_fails", "always_fails", 1e-3, takes_lr=False)
    cell = leaderboard.Cell(leaderboard.WORKLOADS["digits_mlp_lb"], entry, 0, smoke=True)
    [record] = leaderboard.run_cells([cell], tmp_path, {"digits_mlp_lb": 0.5}, progress=False)
    assert record["error"] == f"{type(error).__name__}: {error}" and not record["reached_target"]


@pytest.mark.parametrize("text", ['{"size": "small", "epochs": 10, "best": 0.9}', '{"size": "smoke", "epo'])
def test_a_record_of_another_size_or_a_damaged_one_stops_the_grid_and_is_kept(tmp_path, text):
    """A folder's committed run of another size (or a torn file) is never overwritten by an error record."""
    from keras_autolr.harness import runner

    cell = leaderboard.Cell(leaderboard.WORKLOADS["digits_mlp_lb"], leaderboard.ENTRIES["adam"], 0, smoke=True)
    path = tmp_path / "runs" / f"{cell.key}.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(runner.RunRecordError, match="--out|Delete it"):
        leaderboard.run_cells([cell], tmp_path, {"digits_mlp_lb": 0.5}, progress=False)
    assert path.read_text() == text


def test_a_method_ranks_on_its_best_metric_only_where_most_seeds_produced_one():
    """Two of three seeds failing (no best metric) puts a method last there, whatever its one good seed."""
    def rec(m, seed, best):
        return {"workload": "w", "method": m, "seed": seed, "seconds_to_target": None, "steps_to_target": None,
                "reached_target": False, "best_metric": best, "final_metric": best, "diverged": False,
                "mode": "max"}

    recs = [rec("steady", s, 0.8) for s in range(3)] + [rec("lucky", 0, 0.99), rec("lucky", 1, None),
                                                        rec("lucky", 2, None)]
    summary = leaderboard.aggregate(recs)
    assert summary["workloads"]["w"]["lucky"]["best_metric"] == 0.99  # the table still shows it
    assert summary["workloads"]["w"]["lucky"]["metric_seeds"] == 1
    assert summary["mean_rank"] == {"lucky": 2.0, "steady": 1.0}
