import argparse
import re

import numpy as np
import pytest

from keras_autolr.cli import arc as cli
from keras_autolr.pipelines.arc import train


def test_split_by_chain_keeps_chains_together():
    chains = np.repeat(np.arange(10), 3)
    mask = train.split_by_chain(chains, seed=1)
    assert mask.sum() == 21
    for c in range(10):
        assert len(set(mask[chains == c])) == 1


def test_zero_val_column_fraction():
    x = np.ones((2000, 300, 3), "float32")
    z = train.zero_val_column(x, 0.5, np.random.default_rng(0))
    zeroed = (z[:, :, 1] == 0).all(axis=1)
    assert 0.45 < zeroed.mean() < 0.55
    assert (z[:, :, [0, 2]] == 1).all() and (x == 1).all()


def test_confusion_matrix_layout():
    cm = train.confusion_matrix(y_true=[0, 0, 2], y_pred=[0, 1, 2])
    assert cm.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]


def test_cli_parses_commands():
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="cmd"))
    a = parser.parse_args(["arc", "generate", "--out", "x.h5", "--shard", "1/2", "--chains", "9"])
    assert a.func is cli._generate and a.shard == "1/2" and a.chains == 9
    a = parser.parse_args(["arc", "train", "--data", "x.h5", "--out", "c.keras", "--epochs", "3"])
    assert a.func is cli._train and a.epochs == 3
    a = parser.parse_args(["arc", "evaluate", "--data", "x.h5"])
    assert a.func is cli._evaluate


def test_method_registered():
    from keras_autolr.harness import methods
    from keras_autolr.runtime.arc import ARC

    setup = methods.make_setup("arc", initial_lr=1e-3, epochs=30, steps_per_epoch=10, frequency=3)
    arc = [c for c in setup.callbacks if isinstance(c, ARC)]
    assert len(arc) == 1 and arc[0].frequency == 3
    assert "arc" in methods.names()


@pytest.mark.slow
def test_train_controller_end_to_end(tmp_path, monkeypatch):
    from tests.pipelines.arc.test_generate import _tiny_task
    from keras_autolr.pipelines.arc import generate
    from keras_autolr.runtime.arc import load_controller
    from keras_autolr.harness import zoo

    monkeypatch.setitem(zoo.TASKS, "tiny", _tiny_task())
    monkeypatch.setattr(generate, "MAIN_CYCLES", 4)
    real = generate.run_chain
    monkeypatch.setattr(generate, "run_chain", lambda t, c, s=0: real(t, c, s, cycles=4, n=1))
    data = tmp_path / "d.h5"
    generate.generate(data, 6, tasks=["tiny"], log=lambda s: None)
    out = tmp_path / "c.keras"
    report = train.train_controller(data, out, epochs=2, log=lambda s: None, report_path=tmp_path / "r.json")
    assert report["samples"] == 18 and report["train_samples"] + report["heldout_samples"] == 18
    assert sum(map(sum, report["heldout"]["confusion"])) == report["heldout_samples"]
    assert 0.0 <= report["heldout"]["weighted_accuracy"] <= 1.0
    assert load_controller(out).count_params() == 79043
    # `arc evaluate` on chains the controller never saw (ids >= 3 here), as JSON.
    import argparse
    import contextlib
    import io
    import json

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["arc", "evaluate", "--data", str(data), "--controller", str(out), "--min-chain", "3"])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert args.func(args) == 0
    res = json.loads(buf.getvalue())
    assert res["n"] == 9  # 3 chains x 3 samples
    assert 0.0 <= res["weighted_accuracy"] <= 1.0 and res["no_val"]["n"] == 9


def test_cli_passes_v2_generator_options_and_refuses_them_for_v1(monkeypatch, tmp_path):
    """--max-cycle-epochs / --poor-fraction reach generate_vmap.generate; v1 and bad values stop with a message."""
    from keras_autolr.pipelines.arc import generate_vmap

    seen = {}
    monkeypatch.setattr(generate_vmap, "generate", lambda *a, **kw: seen.update(kw) or 0)
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="cmd"))
    base = ["arc", "generate", "--out", str(tmp_path / "x.h5")]
    args = parser.parse_args(base + ["--engine", "vmap", "--max-cycle-epochs", "3", "--poor-fraction", "0.5"])
    assert args.func(args) == 0
    assert seen["max_cycle_epochs"] == 3 and seen["poor_fraction"] == 0.5
    seen.clear()
    args = parser.parse_args(base + ["--engine", "vmap"])
    args.func(args)
    assert "max_cycle_epochs" not in seen and "poor_fraction" not in seen  # generate()'s defaults
    for bad, message in ((["--poor-fraction", "0.2"], "only the v2 generator"),
                         (["--engine", "vmap", "--poor-fraction", "1.5"], "in [0, 1]"),
                         (["--engine", "vmap", "--max-cycle-epochs", "0"], "at least 1")):
        args = parser.parse_args(base + bad)
        with pytest.raises(SystemExit, match=re.escape(message)):
            args.func(args)
