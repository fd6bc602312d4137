import numpy as np
import pytest

from keras_autolr.runtime.arc import controller as ctl
import keras


def test_architecture_has_79043_parameters():
    model = ctl.build_controller(seed=0)
    assert model.count_params() == 79043
    assert model.input_shape == (None, 300, 3)
    assert model.output_shape == (None, 3)


@pytest.mark.jax
def test_save_load_round_trip_and_predictor(tmp_path):
    model = ctl.build_controller(seed=1)
    path = tmp_path / "c.keras"
    model.save(path)
    loaded = ctl.load_controller(path)
    x = np.random.default_rng(0).normal(size=(300, 3)).astype("float32")
    p = ctl.Predictor(loaded)(x)
    np.testing.assert_allclose(p, ctl.Predictor(model)(x), rtol=1e-5, atol=1e-6)
    assert p.shape == (3,) and abs(p.sum() - 1) < 1e-5


def test_missing_file_error(tmp_path):
    with pytest.raises(ctl.ControllerError, match="does not exist"):
        ctl.load_controller(tmp_path / "nope.keras")


def test_corrupt_file_error(tmp_path):
    path = tmp_path / "bad.keras"
    path.write_bytes(b"this is not a zip file")
    with pytest.raises(ctl.ControllerError, match="corrupt"):
        ctl.load_controller(path)


def test_wrong_shape_error(tmp_path):
    wrong = keras.Sequential([keras.Input((100, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
    path = tmp_path / "wrong.keras"
    wrong.save(path)
    with pytest.raises(ctl.ControllerError, match=r"\(None, 300, 3\)"):
        ctl.load_controller(path)
    with pytest.raises(ctl.ControllerError, match="keras.Model"):
        ctl.check_controller("not a model")


def test_loss_prefers_right_direction():
    y = np.array([[1.0, 0.0, 0.0]], "float32")
    right = np.array([[0.6, 0.3, 0.1]], "float32")
    wrong = np.array([[0.1, 0.3, 0.6]], "float32")
    assert float(ctl.arc_loss(y, right)[0]) < float(ctl.arc_loss(y, wrong)[0])


def test_default_path_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_AUTOLR_ARC_CONTROLLER", str(tmp_path / "x.keras"))
    assert ctl.default_controller_path() == str(tmp_path / "x.keras")


def _head(activation):
    return keras.Sequential([keras.Input((300, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation=activation)])


@pytest.mark.parametrize("activation", [None, "sigmoid", "relu"])
def test_output_that_is_not_a_distribution_is_refused(tmp_path, activation):
    from keras_autolr.runtime.arc import ARC

    model = _head(activation)
    with pytest.raises(ctl.ControllerError, match="softmax"):
        ctl.check_controller(model)
    with pytest.raises(ctl.ControllerError, match="sum to 1"):
        ARC(model)
    path = tmp_path / "logits.keras"
    model.save(path)
    with pytest.raises(ctl.ControllerError, match="probabilities"):
        ctl.load_controller(path)


def test_softmax_head_is_accepted():
    assert ctl.check_controller(_head("softmax")) is not None
