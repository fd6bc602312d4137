import argparse

from keras_autolr.cli import mcv as cli


def _parser():
    p = argparse.ArgumentParser()
    cli.add_parser(p.add_subparsers(dest="command"))
    return p


def test_cost_command_prints_table_4_1(capsys):
    a = _parser().parse_args(["mcv", "cost", "--method", "method2"])
    a.func(a)
    out = capsys.readouterr().out
    assert "forward  16" in out and "step  8" in out


def test_run_and_reproduce_parse():
    a = _parser().parse_args(["mcv", "run", "--task", "digits_cnn", "--method", "method3"]) \
        if "digits_cnn" in __import__("keras_autolr.harness.tasks", fromlist=["names"]).names() else None
    if a is not None:
        assert a.method == "method3" and a.func is cli._run
    b = _parser().parse_args(["mcv", "reproduce", "--smoke", "--out", "/tmp/x"])
    assert b.smoke and b.func is cli._reproduce
