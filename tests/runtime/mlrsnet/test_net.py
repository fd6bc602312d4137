import zipfile

import keras
import numpy as np
import pytest

from keras_autolr.runtime.mlrsnet.net import (
    MLRSNet, MLRSNetFileError, ModeMismatchError, cell_step, check_mode, load_net,
)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_step(params, x, h, c):
    """Independent numpy transcription of the reference LSTM cell."""
    wi1, bi1, wi2, bi2, wh1, bh1, wh2, bh2, wo, bo = params
    x = np.reshape(x, (-1, 1))
    gates = np.maximum(x @ wi1 + bi1, 0) @ wi2 + bi2 + np.maximum(h @ wh1 + bh1, 0) @ wh2 + bh2
    H = h.shape[1]
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return _sigmoid(h @ wo + bo).reshape(-1), h, c


def test_parameter_count_matches_reference_checkpoints():
    assert MLRSNet(mode="image").count_params() == 11776
    # text net: gate MLPs of width 50
    assert MLRSNet(mode="text").count_params() == (50 + 50 + 50 * 200 + 200) + (50 * 50 + 50 + 50 * 200 + 200) + 51


def test_cell_step_matches_numpy_over_several_steps():
    net = MLRSNet(seed=3)
    params = [np.asarray(v) for v in net.get_weights()]
    h = c = np.zeros((1, 50), "float32")
    hk, ck = net.initial_state()
    for loss in [2.3, 1.7, 0.4, 5.0]:
        p, h, c = numpy_step(params, np.float32(loss), h, c)
        pk, hk, ck = net(keras.ops.convert_to_tensor(loss), hk, ck)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(pk), p, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(hk), h, rtol=1e-5, atol=1e-6)
    assert 0 < float(p[0]) < 1


def test_untrained_net_predicts_near_half():
    # PyTorch-default init keeps the output layer small: p ~ sigmoid(small).
    net = MLRSNet(seed=0)
    p, _, _ = net(keras.ops.convert_to_tensor(2.3), *net.initial_state())
    assert 0.3 < float(keras.ops.convert_to_numpy(p)[0]) < 0.7


def test_batched_losses():
    net = MLRSNet(seed=0)
    p, h, c = cell_step(net.params, keras.ops.convert_to_tensor([1.0, 2.0, 3.0]), *net.initial_state(3))
    assert tuple(p.shape) == (3,) and tuple(h.shape) == (3, 50)


def test_save_load_round_trip(tmp_path):
    net = MLRSNet(mode="text", seed=1, meta={"gamma": 40.0})
    path = tmp_path / "net.keras"
    net.save(path)
    back = load_net(path)
    assert back.mode == "text" and back.meta == {"gamma": 40.0} and back.mlp_width == 50
    for a, b in zip(net.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_load_rejects_other_keras_model(tmp_path):
    path = tmp_path / "other.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
    with pytest.raises(MLRSNetFileError, match="not an MLR-SNet"):
        load_net(path)


def test_load_rejects_non_keras_files(tmp_path):
    txt = tmp_path / "net.keras"
    txt.write_text("hello")
    with pytest.raises(MLRSNetFileError, match="not a Keras v3"):
        load_net(txt)
    bad_zip = tmp_path / "empty.keras"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("x.txt", "x")
    with pytest.raises(MLRSNetFileError, match="config.json"):
        load_net(bad_zip)
    with pytest.raises(MLRSNetFileError, match="No MLR-SNet file"):
        load_net(tmp_path / "missing.keras")


def test_mode_checks():
    with pytest.raises(ValueError, match="mode"):
        MLRSNet(mode="audio")
    with pytest.raises(ModeMismatchError, match="meta-trained in 'text' mode"):
        check_mode(MLRSNet(mode="text"), "image")
    check_mode(MLRSNet(mode="image"), "image")
    with pytest.raises(ModeMismatchError, match="vocab_size"):
        MLRSNet(mode="text").normalise(3.0)
    x = MLRSNet(mode="text").normalise(np.log(100.0), vocab_size=100)
    assert float(keras.ops.convert_to_numpy(x)) == pytest.approx(1.0)


def test_cell_variant_is_saved_and_defaults_to_the_meta_test_cell(tmp_path):
    from keras_autolr.runtime.mlrsnet.net import CELLS

    assert MLRSNet().cell is CELLS["meta_test"]
    net = MLRSNet(seed=0, cell="meta_train")
    assert net.get_config()["cell"] == "meta_train"
    net.save(tmp_path / "t.keras")
    assert load_net(tmp_path / "t.keras").cell is CELLS["meta_train"]
    # nets saved before the option (the shipped image / text nets) have no "cell": the meta-test cell
    config = MLRSNet(seed=0).get_config()
    config.pop("cell")
    assert MLRSNet.from_config(config).cell.name == "meta_test"
    with pytest.raises(ValueError, match="Unknown MLR-SNet cell"):
        MLRSNet(cell="paper")


def test_cell_variants_read_the_gate_chunks_in_their_order():
    from keras_autolr.runtime.mlrsnet.net import CELLS

    gates = np.arange(8, dtype="float32").reshape(1, 8)  # hidden 2: chunks [0 1] [2 3] [4 5] [6 7]
    test = [keras.ops.convert_to_numpy(a)[0].tolist() for a in CELLS["meta_test"].split(gates)]
    train = [keras.ops.convert_to_numpy(a)[0].tolist() for a in CELLS["meta_train"].split(gates)]
    assert test == [[0, 1], [2, 3], [4, 5], [6, 7]]  # i, f, g, o
    assert train == [[0, 1], [1, 2], [6, 7], [4, 5]]  # i, f - 1, g (last), o (third)
