import argparse

import keras
import pytest

from keras_autolr.harness import methods
from keras_autolr.runtime.mlrsnet import HypergradientDescent, MLRSNet, MLRSNetScheduler
from keras_autolr.cli.mlrsnet import add_parser


def test_registered_methods(tmp_path):
    path = tmp_path / "n.keras"
    MLRSNet(seed=0).save(path)
    setup = methods.make_setup("mlrsnet", initial_lr=0.1, epochs=3, steps_per_epoch=10, optimizer="sgd",
                               net=str(path), num_classes=10)
    assert any(isinstance(c, MLRSNetScheduler) for c in setup.callbacks)
    assert isinstance(setup.optimizer, keras.optimizers.SGD)
    hd = methods.make_setup("hypergradient", initial_lr=1e-3, epochs=3, steps_per_epoch=10, optimizer="adam")
    cb = next(c for c in hd.callbacks if isinstance(c, HypergradientDescent))
    assert cb.beta == 1e-7  # the paper's value for Adam


def test_cli_parser():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["mlrsnet", "meta-train", "--task", "text", "--epochs", "2", "--out", "x.keras"])
    assert args.task == "text" and args.epochs == 2 and callable(args.func)
    assert not hasattr(args, "data_dir")  # does not clobber the top-level --data-dir
    with pytest.raises(SystemExit):
        parser.parse_args(["mlrsnet", "meta-train", "--task", "audio", "--out", "x"])
