import json
import pathlib
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_leaderboard_smoke_command_writes_scores_table_and_plot(tmp_path):
    """`keras-autolr leaderboard --smoke`: every method on the smoke workloads, as CI runs it."""
    out = tmp_path / "lb"
    proc = subprocess.run([sys.executable, "-m", "keras_autolr", "leaderboard", "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = json.loads((out / "scores.json").read_text())
    from keras_autolr.harness import leaderboard

    assert set(scores["scores"]) == set(leaderboard.entry_names())
    assert all(0.0 <= v <= 1.0 for v in scores["scores"].values())
    # Two workloads: each has a fastest method (ratio 1), so some method scores above 0.
    assert max(scores["scores"].values()) > 0
    assert (out / "leaderboard.md").read_text().startswith("| rank |")
    for plot in ("profiles.png", "time_to_target.png", "lr_curves.png"):
        assert (out / plot).stat().st_size > 0, plot


def test_shard_argument_is_validated():
    from keras_autolr.cli.leaderboard import build_parser

    assert build_parser().parse_args(["--shard", "2/3"]).shard == (2, 3)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--shard", "3/3"])


@pytest.mark.slow
def test_calibrate_writes_targets_only_when_every_shard_is_done(tmp_path, capsys):
    """`--calibrate --shard`: the first shard leaves no targets, the last one writes them."""
    from keras_autolr.cli.leaderboard import build_parser, run
    from keras_autolr.harness import calibration

    common = ["--calibrate", "--smoke", "--workloads", "digits_mlp_lb", "--seeds", "1", "--out", str(tmp_path)]
    assert run(build_parser().parse_args(common + ["--shard", "0/2"])) is None
    assert "Calibration incomplete" in capsys.readouterr().out
    assert not (tmp_path / "targets.json").exists()
    calibrated = run(build_parser().parse_args(common + ["--shard", "1/2"]))
    doc = json.loads((tmp_path / "targets.json").read_text())
    assert doc["targets"] == {"digits_mlp_lb": calibrated["digits_mlp_lb"]["target"]}
    assert doc["tuned_lr"]["digits_mlp_lb"] in calibration.CALIBRATION_LRS
    assert len(doc["per_lr"]["digits_mlp_lb"]) == 7 and doc["commands"]
    # The leaderboard reads them back (its runs are rescored against them).
    from keras_autolr.cli.leaderboard import _targets

    assert _targets(tmp_path / "targets.json", smoke=False) == doc["targets"]


def test_merge_of_a_filling_grid_ranks_on_complete_workloads_only(tmp_path, capsys):
    """While a grid fills, the report leaves out workloads with runs missing (they would count as failures)."""
    from keras_autolr.cli.leaderboard import build_parser, run

    runs = tmp_path / "runs"
    runs.mkdir()
    curve = {"steps": [10, 20], "seconds": [1.0, 2.0], "metric": [0.5, 0.9]}
    # dog is not in this grid: its record must not be ranked.
    done = [("digits_mlp_lb", "adam"), ("digits_mlp_lb", "prodigy"), ("digits_mlp_lb", "dog"), ("sine_cnn_lb", "adam")]
    for workload, method in done:
        rec = {"workload": workload, "method": method, "seed": 0, "mode": "max", "curve": curve,
               "best_metric": 0.9, "final_metric": 0.9, "diverged": False}
        (runs / f"{workload}__{method}__s0.json").write_text(json.dumps(rec))
    (tmp_path / "targets.json").write_text(json.dumps({"targets": {"digits_mlp_lb": 0.8, "sine_cnn_lb": 0.8}}))
    args = ["--merge", "--workloads", "digits_mlp_lb", "sine_cnn_lb", "--methods", "adam", "prodigy",
            "--seeds", "1", "--no-bad-lrs", "--out", str(tmp_path)]
    summary = run(build_parser().parse_args(args))
    assert list(summary["workloads"]) == ["digits_mlp_lb"]  # sine_cnn_lb lacks prodigy's run
    assert sorted(summary["scores"]) == ["adam", "prodigy"]
    # A narrowed grid: its reports are suffixed, never the whole grid's leaderboard.md.
    assert not (tmp_path / "leaderboard.md").exists() and not (tmp_path / "scores.json").exists()
    scores = json.loads((tmp_path / "scores_subset.json").read_text())
    assert scores["complete_workloads"] == ["digits_mlp_lb"] and scores["pending_workloads"] == ["sine_cnn_lb"]
    report = (tmp_path / "leaderboard_subset.md").read_text()
    assert report.startswith("**Partial leaderboard: 1 of 2 workloads complete**") and "sine_cnn_lb still running" in report
    assert "Partial leaderboard" in capsys.readouterr().out


@pytest.mark.slow
def test_target_budget_calibrates_and_scores_into_their_own_files(tmp_path, capsys):
    """`--target-budget 0.5`: calibration runs and targets, then the grid's report, all suffixed _budget0.5."""
    from keras_autolr.cli.leaderboard import build_parser, run

    common = ["--smoke", "--workloads", "digits_mlp_lb", "--seeds", "1", "--out", str(tmp_path), "--target-budget", "0.5"]
    assert run(build_parser().parse_args(common + ["--calibrate"])) is not None
    doc = json.loads((tmp_path / "targets_budget0.5.json").read_text())
    assert "budget x 0.5" in doc["protocol"] and set(doc["targets"]) == {"digits_mlp_lb"}
    assert len(list((tmp_path / "calibration_budget0.5" / "runs").glob("*.json"))) == 7
    assert not (tmp_path / "targets.json").exists() and not (tmp_path / "calibration").exists()
    summary = run(build_parser().parse_args(common + ["--methods", "adam", "--no-bad-lrs"]))
    assert set(summary["scores"]) == {"adam"}
    # The smoke size scores against its fixed targets, and says so.
    assert json.loads((tmp_path / "scores_budget0.5_subset.json").read_text())["targets"] == "smoke"
    assert (tmp_path / "leaderboard_budget0.5_subset.md").read_text().startswith("| rank |")
    assert not (tmp_path / "leaderboard_subset.md").exists() and not (tmp_path / "lr_curves.png").exists()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--target-budget", "2"])


def test_merge_scores_committed_records_against_the_budget_targets(tmp_path, capsys):
    """A real merge (no training): the committed digits-MLP records, rescored against a looser target file."""
    import shutil

    from keras_autolr.cli.leaderboard import build_parser, run

    src = pathlib.Path(__file__).resolve().parents[2] / "reproductions" / "results" / "leaderboard" / "runs"
    files = sorted(src.glob("digits_mlp_lb__*.json"))
    if len(files) < 117:
        pytest.skip("the committed digits-MLP leaderboard records are not all here")
    (tmp_path / "runs").mkdir()
    for f in files:
        shutil.copy(f, tmp_path / "runs" / f.name)
    (tmp_path / "targets_budget0.5.json").write_text(json.dumps({"targets": {"digits_mlp_lb": 0.95}}))
    args = ["--merge", "--workloads", "digits_mlp_lb", "--out", str(tmp_path)]
    strict = run(build_parser().parse_args(args + ["--targets", str(src.parent / "targets.json")]))
    assert (tmp_path / "leaderboard_subset_targets-targets.md").exists()  # another folder's targets: its own name
    loose = run(build_parser().parse_args(args + ["--target-budget", "0.5"]))
    reached = lambda s: sum(c["reached"] > 0.5 for c in s["workloads"]["digits_mlp_lb"].values())  # noqa: E731
    assert reached(loose) > reached(strict)  # 0.95 is easier than the frozen 0.984
    text = (tmp_path / "leaderboard_budget0.5_subset.md").read_text()
    assert "Targets: the calibration at 0.5x" in text and str(tmp_path / "targets_budget0.5.json") in text
    assert json.loads((tmp_path / "scores_budget0.5_subset.json").read_text())["targets"] == str(
        tmp_path / "targets_budget0.5.json")
    assert (tmp_path / "profiles_budget0.5_subset.png").exists() and not (tmp_path / "leaderboard_subset.md").exists()
    # A complete workload without a target is left out and named, not scored as unsolved by everyone.
    (tmp_path / "targets_budget0.5.json").write_text(json.dumps({"targets": {}}))
    assert run(build_parser().parse_args(args + ["--target-budget", "0.5"])) is None
    assert "digits_mlp_lb complete but without a target" in capsys.readouterr().out


def test_smoke_runs_never_mix_with_full_size_ones(tmp_path, monkeypatch):
    """They share file names: `--smoke` has its own default folder, and a folder of the other size is refused."""
    from keras_autolr.cli.leaderboard import SMOKE_OUT, _out, build_parser, run

    assert str(_out(build_parser().parse_args(["--smoke"]))) == SMOKE_OUT
    assert str(_out(build_parser().parse_args([]))) == "reproductions/results/leaderboard"
    (tmp_path / "runs").mkdir()
    rec = {"workload": "digits_mlp_lb", "method": "adam", "seed": 0, "size": "small", "mode": "max",
           "curve": {"steps": [1], "seconds": [1.0], "metric": [0.5]}, "best_metric": 0.5, "final_metric": 0.5,
           "diverged": False}
    (tmp_path / "runs" / "digits_mlp_lb__adam__s0.json").write_text(json.dumps(rec))
    for extra in (["--merge"], ["--calibrate", "--merge"]):
        folder = tmp_path if "--calibrate" not in extra else tmp_path / "calibration"
        if "--calibrate" in extra:
            (folder / "runs").mkdir(parents=True)
            (folder / "runs" / "r.json").write_text(json.dumps(dict(rec, method="calibration@lr=0.001")))
        with pytest.raises(SystemExit, match="holds 1 full-size leaderboard runs .*pass another --out"):
            run(build_parser().parse_args(["--smoke", "--out", str(tmp_path)] + extra))


def test_the_default_grid_spelled_out_is_not_a_subset(tmp_path):
    from keras_autolr.cli.leaderboard import build_parser, run

    (tmp_path / "runs").mkdir()
    (tmp_path / "targets.json").write_text(json.dumps({"targets": {}}))
    for args in (["--seeds", "3"], ["--seeds", "3", "--methods"] + __import__(
            "keras_autolr.harness.leaderboard", fromlist=["x"]).entry_names()):
        assert run(build_parser().parse_args(["--merge", "--out", str(tmp_path)] + args)) is None  # no record yet
        assert not list(tmp_path.glob("*_subset*"))
