import argparse
import json
import shutil

import pytest

from keras_autolr.cli import arc as cli
from keras_autolr.runtime.arc import default_controller_path
from keras_autolr.pipelines.arc import select


def _rec(label, lr, best, mode="max"):
    return {"label": label, "initial_lr": lr, "best": best, "mode": mode}


def test_proxy_scores_average_seeds_then_lrs():
    recs = [_rec("a", 1e-2, 0.5), _rec("a", 1e-2, 0.7), _rec("a", 1e-4, 0.2),
            _rec("b", 1e-2, 0.4), _rec("b", 1e-4, 0.4)]
    s = select.proxy_scores(recs)
    assert s["a"]["per_lr"] == pytest.approx({"0.01": 0.6, "0.0001": 0.2})
    assert s["a"]["std_per_lr"]["0.01"] == pytest.approx(0.1)
    assert s["a"]["score"] == pytest.approx(0.4) and s["a"]["runs"] == 3
    assert s["b"]["score"] == pytest.approx(0.4)
    # Keys survive JSON unchanged, so a reloaded report reads the same way.
    assert json.loads(json.dumps(s)) == s


def test_diverged_run_counts_as_worst():
    s = select.proxy_scores([_rec("a", 1e-2, None), _rec("a", 1e-3, 0.9), _rec("b", 1e-2, 0.1),
                             _rec("b", 1e-3, 0.1)])
    assert s["a"]["score"] == float("-inf")
    assert select.choose(s, ["a", "b"]) == "b"


def test_choose_best_and_tie_keeps_incumbent():
    s = select.proxy_scores([_rec("old", 1e-3, 0.5), _rec("new", 1e-3, 0.5), _rec("better", 1e-3, 0.6)])
    assert select.choose(s, ["old", "new"]) == "old"
    assert select.choose(s, ["new", "old"]) == "new"
    assert select.choose(s, ["old", "new", "better"]) == "better"


def test_float32_roundoff_is_a_tie():
    # 0.886 + 0.8655 + 0.829 and 0.8855 + 0.8665 + 0.8295 as float32 accuracies: equal results.
    s = {"old": {"score": 0.8605000078678131, "mode": "max"}, "new": {"score": 0.8604999979337057, "mode": "max"},
         "up": {"score": 0.8605000178678131, "mode": "max"}}
    assert select.choose(s, ["new", "old"]) == "new"
    assert select.choose(s, ["old", "up"]) == "old"
    assert select.choose(s, ["old", "new", "up"]) == "old"


def test_choose_lowest_for_min_metric():
    s = select.proxy_scores([_rec("a", 1.0, 120.0, "min"), _rec("b", 1.0, 110.0, "min")])
    assert select.choose(s, ["a", "b"]) == "b"


def test_choose_and_scores_refuse_missing_input():
    with pytest.raises(ValueError, match="run the proxy first"):
        select.proxy_scores([])
    s = select.proxy_scores([_rec("a", 1e-3, 0.5)])
    with pytest.raises(ValueError, match=r"No proxy score for candidates \['b'\]"):
        select.choose(s, ["a", "b"])


def test_select_refuses_duplicate_labels_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="must differ"):
        select.select_controller([tmp_path / "x" / "c.keras", tmp_path / "y" / "c.keras"], tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        select.select_controller([tmp_path / "nope.keras"], tmp_path)


def test_cli_parses_select():
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="cmd"))
    a = parser.parse_args(["arc", "select", "--candidates", "a.keras", "b.keras", "--out", "o",
                           "--lrs", "0.01", "0.001", "--baselines", "constant"])
    assert a.func is cli._select and a.candidates == ["a.keras", "b.keras"]
    # The task default is resolved when the command runs (the parser imports no TensorFlow).
    assert a.lrs == [0.01, 0.001] and a.task is None and a.seeds == 2


@pytest.mark.slow
def test_select_runs_proxy_resumably(tmp_path, capsys):
    # Two copies of the shipped controller: identical runs, so the incumbent (first) is kept.
    a, b = tmp_path / "incumbent.keras", tmp_path / "other.keras"
    shutil.copyfile(default_controller_path(), a)
    shutil.copyfile(default_controller_path(), b)
    out = tmp_path / "sel"
    lines = []
    # A small stand-in proxy (the default ResNet-9 adds time, not paths).
    report = select.select_controller([a, b], out, task="digits_cnn", size="smoke", initial_lrs=(1e-3,), seeds=(0,),
                                      frequency=1, baselines=("constant",), log=lines.append)
    assert report["chosen"] == "incumbent" and report["chosen_path"] == str(a)
    s = report["scores"]
    assert s["incumbent"]["score"] == pytest.approx(s["other"]["score"])
    assert set(s) == {"incumbent", "other", "constant"} and s["constant"]["runs"] == 1
    assert json.loads((out / "selection.json").read_text())["chosen"] == "incumbent"
    assert "**incumbent** (chosen)" in (out / "selection.md").read_text()
    # Resumed: every run is read back from its record, none re-run.
    lines.clear()
    again = select.select_controller([a, b], out, task="digits_cnn", size="smoke", initial_lrs=(1e-3,), seeds=(0,),
                                     frequency=1, baselines=("constant",), log=lines.append)
    assert all(line.endswith("done before, skipped") for line in lines) and len(lines) == 3
    assert again["scores"] == report["scores"]
