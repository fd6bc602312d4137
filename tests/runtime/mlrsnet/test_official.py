"""The authors' MLR-SNet files: read without PyTorch, run by either official cell, bit-close to numpy."""

import io
import pathlib
import pickle
import pickletools
import struct
import zipfile

import keras
import numpy as np
import pytest

import keras_autolr
from keras_autolr.runtime.artifacts import artifacts_dir
from keras_autolr.runtime.mlrsnet import MLRSNetFileError, load_net, load_official, net_outputs
from keras_autolr.runtime.mlrsnet.official import OFFICIAL_KEYS, read_state_dict, write_state_dict

pytestmark = pytest.mark.jax  # backend-neutral: CI runs these on JAX too

OFFICIAL = pathlib.Path(__file__).resolve().parents[3].parent / "shared" / "mlrsnet_official"
FILES = {n: OFFICIAL / f"mlr_snet_{n}.pth" for n in (1, 100, 200)}
needs_official = pytest.mark.skipif(not OFFICIAL.is_dir(), reason=f"official MLR-SNet files not in {OFFICIAL}")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def official_forward(sd, losses, cell):
    """numpy transcription of the official code's forward, on the PyTorch state dict itself.

    meta-test/model/network.py (LSTMCell): chunks (in, forget, in_transform, out), sigmoid(forget);
    meta-train/image-classification/module.py (MLRSNetCell): (in, forget, out, in_transform),
    sigmoid(forget - 1). nn.Linear: y = x W^T + b. float64 throughout.
    """
    w = {k: v.astype("float64") for k, v in sd.items()}

    def mlp(v, name):
        hidden = np.maximum(v @ w[f"layer1.{name}.0.weight"].T + w[f"layer1.{name}.0.bias"], 0.0)
        return hidden @ w[f"layer1.{name}.2.weight"].T + w[f"layer1.{name}.2.bias"]

    hx, cx = np.zeros((1, 50)), np.zeros((1, 50))
    out = []
    for loss in losses:
        gates = np.split(mlp(np.array([[loss]]), "fc_i2h") + mlp(hx, "fc_h2h"), 4, axis=1)
        if cell == "meta_test":
            in_gate, forget_gate = _sigmoid(gates[0]), _sigmoid(gates[1])
            in_transform, out_gate = np.tanh(gates[2]), _sigmoid(gates[3])
        else:
            in_gate, forget_gate = _sigmoid(gates[0]), _sigmoid(gates[1] - 1)
            out_gate, in_transform = _sigmoid(gates[2]), np.tanh(gates[3])
        cx = forget_gate * cx + in_gate * in_transform
        hx = out_gate * np.tanh(cx)
        out.append(_sigmoid(hx @ w["layer3.weight"].T + w["layer3.bias"])[0, 0])
    return np.array(out)


def _losses(n=80):
    # A training run's batch losses: decaying from ln(10), noisy, a few spikes, down to ~0.02.
    rng = np.random.default_rng(0)
    t = np.arange(n)
    loss = 2.3026 * np.exp(-t / 15.0) + 0.02 + 0.05 * rng.random(n)
    loss[[i for i in (10, 40) if i < n]] *= 3.0
    return loss.astype("float32")


@needs_official
@pytest.mark.parametrize("which", [1, 100, 200])
@pytest.mark.parametrize("cell", ["meta_test", "meta_train"])
def test_net_outputs_match_the_official_cells(which, cell):
    sd = read_state_dict(FILES[which])
    losses = _losses()
    expected = official_forward(sd, losses.astype("float64"), cell)
    got = net_outputs(load_official(FILES[which], cell=cell), losses)
    diff = float(np.max(np.abs(got - expected)))
    print(f"mlr_snet_{which} {cell}: max |ours - official numpy| = {diff:.3g}")
    assert diff < 1e-6


@needs_official
def test_the_two_cells_give_different_outputs():
    losses = _losses(20)
    a = net_outputs(load_official(FILES[100], cell="meta_test"), losses)
    b = net_outputs(load_official(FILES[100], cell="meta_train"), losses)
    assert np.max(np.abs(a - b)) > 0.05  # the same weights, other gate order and forget bias


@needs_official
def test_state_dict_layout_and_the_public_alias():
    sd = read_state_dict(FILES[1])
    assert list(sd) == list(OFFICIAL_KEYS)
    assert {k: v.shape for k, v in sd.items()} == OFFICIAL_KEYS
    assert all(v.dtype == np.float32 for v in sd.values())
    net = keras_autolr.mlrsnet.load_official(FILES[1])
    assert net.cell.name == "meta_test" and net.mode == "image" and net.count_params() == 11776
    np.testing.assert_array_equal(net.get_weights()[2], sd["layer1.fc_i2h.2.weight"].T)
    assert keras_autolr.mlrsnet.net_outputs is net_outputs


@needs_official
@pytest.mark.parametrize("which", [1, 100, 200])
def test_shipped_keras_files_are_the_converted_official_nets(which):
    shipped = load_net(artifacts_dir() / f"mlrsnet_official_{which}.keras")
    ref = load_official(FILES[which])
    assert shipped.cell.name == "meta_test"
    for a, b in zip(shipped.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_shipped_official_nets_load_with_their_cell_and_source():
    for which in (1, 100, 200):
        net = load_net(artifacts_dir() / f"mlrsnet_official_{which}.keras")
        assert net.cell.name == "meta_test" and net.mode == "image"
        assert "xjtushujun/MLR-SNet" in net.meta["source"] and "MIT" in net.meta["source"]


def _pickles(data):
    """(start, end) of each pickle at the head of a legacy file."""
    spans, f = [], io.BytesIO(data)
    for _ in range(5):
        start = f.tell()
        for op, _, pos in pickletools.genops(f):
            if op.name == "STOP":
                break
        spans.append((start, pos + 1))
        f.seek(pos + 1)
    return spans


@needs_official
def test_zip_format_reads_the_same(tmp_path):
    """The PyTorch >= 1.6 zip layout, repacked from the official legacy file."""
    data = FILES[200].read_bytes()
    spans = _pickles(data)
    keys = pickle.loads(data[slice(*spans[4])])  # a plain list of strings
    pos, members = spans[4][1], {}
    for key in keys:
        (numel,) = struct.unpack("<q", data[pos:pos + 8])
        members[key] = data[pos + 8:pos + 8 + 4 * numel]
        pos += 8 + 4 * numel
    assert pos == len(data)
    path = tmp_path / "zip_format.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data[slice(*spans[3])])
        for key, raw in members.items():
            z.writestr(f"archive/data/{key}", raw)
    a, b = read_state_dict(FILES[200]), read_state_dict(path)
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_written_state_dict_reads_back_and_loads(tmp_path):
    rng = np.random.default_rng(1)
    sd = {k: rng.normal(scale=0.3, size=s).astype("float32") for k, s in OFFICIAL_KEYS.items()}
    write_state_dict(sd, tmp_path / "fake.pth")
    back = read_state_dict(tmp_path / "fake.pth")
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])
    losses = _losses(12)
    for cell in ("meta_test", "meta_train"):
        got = net_outputs(load_official(tmp_path / "fake.pth", cell=cell), losses)
        np.testing.assert_allclose(got, official_forward(sd, losses.astype("float64"), cell), atol=1e-6)


def test_writer_keeps_dtypes_shapes_and_scalars(tmp_path):
    sd = {"s": np.float64(3.0), "i": np.arange(6, dtype="int64").reshape(2, 3).T, "e": np.zeros((0, 2), "float32")}
    write_state_dict(sd, tmp_path / "m.pth")
    back = read_state_dict(tmp_path / "m.pth")
    for k, v in sd.items():
        assert back[k].dtype == np.asarray(v).dtype and back[k].shape == np.shape(v)
        np.testing.assert_array_equal(back[k], v)


def _legacy_headers():
    buf = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    return buf.getvalue()


def test_corrupt_or_unknown_files_give_clear_errors(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.pth"
    write_state_dict({k: rng.normal(size=s).astype("float32") for k, s in OFFICIAL_KEYS.items()}, good)
    cases = {
        "truncated.pth": good.read_bytes()[:30000],
        "noise.pth": rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "empty.pth": b"",
        # a pickle that would call os.system if it were unpickled naively
        "evil.pth": _legacy_headers() + b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    expectations = {"truncated.pth": "truncated", "noise.pth": "not", "empty.pth": "not",
                    "evil.pth": "os.system"}
    for name, match in expectations.items():
        with pytest.raises(MLRSNetFileError, match=match) as info:
            load_official(tmp_path / name)
        assert "Download it again" in str(info.value), name  # says what to do
    keras_file = tmp_path / "net.keras"
    keras_autolr.MLRSNet(seed=0).save(keras_file)
    with pytest.raises(MLRSNetFileError, match="without one data.pkl"):
        load_official(keras_file)
    write_state_dict({"w": np.zeros(3, "float32")}, tmp_path / "other.pth")
    with pytest.raises(MLRSNetFileError, match="not an official MLR-SNet"):
        load_official(tmp_path / "other.pth")
    with pytest.raises(MLRSNetFileError, match="No file at"):
        load_official(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="Unknown MLR-SNet cell"):
        load_official(good, cell="paper")


def test_loaded_net_round_trips_through_keras_with_its_cell(tmp_path):
    rng = np.random.default_rng(2)
    write_state_dict({k: rng.normal(scale=0.3, size=s).astype("float32") for k, s in OFFICIAL_KEYS.items()},
                     tmp_path / "fake.pth")
    net = load_official(tmp_path / "fake.pth", cell="meta_train")
    net.save(tmp_path / "fake.keras")
    again = load_net(tmp_path / "fake.keras")
    assert again.cell.name == "meta_train" and again.get_config() == net.get_config()
    losses = _losses(8)
    np.testing.assert_array_equal(net_outputs(again, losses), net_outputs(net, losses))
    assert keras.ops.convert_to_numpy(again.params[0]).shape == (1, 25)
