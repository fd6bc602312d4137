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
    # issue 18.3: the reference's details by default; the shipped nets' details, a cell, augmentation, t_val epoch
    assert (args.details, args.cell, args.augment, args.t_val) == ("reference", None, None, None)
    args = parser.parse_args(["mlrsnet", "meta-train", "--details", "shipped", "--cell", "meta_test", "--no-augment",
                              "--t-val", "epoch", "--out", "x.keras"])
    assert (args.details, args.cell, args.augment, args.t_val) == ("shipped", "meta_test", False, "epoch")
    assert parser.parse_args(["mlrsnet", "meta-train", "--t-val", "300", "--out", "x"]).t_val == 300
    for bad in (["--t-val", "0"], ["--t-val", "often"], ["--cell", "paper"], ["--details", "paper"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["mlrsnet", "meta-train", *bad, "--out", "x"])


def _fake_official(path, seed=0):
    import numpy as np
    from keras_autolr.runtime.mlrsnet.official import OFFICIAL_KEYS, write_state_dict

    rng = np.random.default_rng(seed)
    write_state_dict({k: rng.normal(scale=0.3, size=s).astype("float32") for k, s in OFFICIAL_KEYS.items()}, path)


@pytest.mark.parametrize("cell", ["meta_test", "meta_train"])
def test_import_official_converts_with_the_chosen_cell(tmp_path, cell):
    import numpy as np
    from keras_autolr.cli import main
    from keras_autolr.runtime.mlrsnet import load_net, load_official

    _fake_official(tmp_path / "mlr_snet 1.pth")
    extra = [] if cell == "meta_test" else ["--cell", cell]
    assert main(["mlrsnet", "import-official", str(tmp_path / "mlr_snet 1.pth"), str(tmp_path / "o.keras"), *extra]) == 0
    net = load_net(tmp_path / "o.keras")
    assert net.cell.name == cell and "import-official" in net.meta["command"]
    for a, b in zip(net.get_weights(), load_official(tmp_path / "mlr_snet 1.pth").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_import_official_errors_exit_2_with_what_to_do(tmp_path, capsys):
    from keras_autolr.cli import main

    (tmp_path / "bad.pth").write_bytes(b"not a pytorch file")
    assert main(["mlrsnet", "import-official", str(tmp_path / "bad.pth"), str(tmp_path / "o.keras")]) == 2
    assert "Download it again" in capsys.readouterr().err
    _fake_official(tmp_path / "good.pth")
    assert main(["mlrsnet", "import-official", str(tmp_path / "good.pth"), str(tmp_path / "o.h5")]) == 2
    assert ".keras" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["mlrsnet", "import-official", "a.pth", "b.keras", "--cell", "paper"])


@pytest.mark.slow
def test_mlrsnet_official_method_runs_the_official_protocol():
    import numpy as np
    from keras_autolr.runtime.mlrsnet import OfficialProtocol

    setup = methods.make_setup("mlrsnet_official", initial_lr=0.1, epochs=3, steps_per_epoch=4,
                               optimizer="sgd_official")
    opt = setup.optimizer
    assert isinstance(opt, keras.optimizers.SGD) and opt.momentum == 0 and opt.weight_decay == 5e-4
    assert methods.make_optimizer("sgd_official", 0.1).weight_decay == 5e-4
    cb = next(c for c in setup.callbacks if isinstance(c, MLRSNetScheduler))
    assert isinstance(cb.protocol, OfficialProtocol) and len(cb.nets) == 3 and cb.cell.name == "meta_test"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = rng.integers(0, 10, 64)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(10)])
    model.compile(setup.optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss0 = model.evaluate(x, y, batch_size=16, verbose=0)
    data = setup.train_data(x, y, 16, 0)
    assert len(data) == 4 and cb.protocol.x is x
    model.fit(data, epochs=3, callbacks=setup.callbacks, verbose=0)
    expected = abs(loss0 ** 0.5 * np.log(loss0 * 10) / 10 ** 0.25 / 4)
    assert cb.gamma_history[0] == pytest.approx(expected, rel=1e-5)  # eval pass over the whole training set
    assert cb._active == 2  # 3 epochs: the 100 net at epoch 1, the 200 net at epoch 2
