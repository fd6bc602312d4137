"""The authors' published MLR-SNet nets, read without PyTorch.

Purpose: turn the official checkpoints `mlr_snet 1.pth`, `mlr_snet 100.pth`,
`mlr_snet 200.pth` (repository xjtushujun/MLR-SNet, folder `meta-test/`, MIT
licence; meta-trained with ResNet-18 on full CIFAR-10 for 200 epochs) into
our Keras `MLRSNet`, with numpy and the standard library only.

File formats read by `read_state_dict`:

* PyTorch's legacy serialization (before 1.6; the official files): a
  sequence of pickles (magic number, protocol version, system info, the state
  dict whose tensors name their storages by persistent id, the list of
  storage keys), then each storage as an int64 element count followed by its
  little-endian data;
* PyTorch's zip format (1.6 and later): `<name>/data.pkl` with the same
  persistent ids and one `<name>/data/<key>` member per storage.

The unpickler resolves only `collections.OrderedDict`, the tensor rebuild
functions and the `torch.*Storage` types, so a file holding anything else is
refused instead of executed.

The official state dict (hidden 50, gate MLPs 1 -> 25 -> 200 and
50 -> 25 -> 200) maps to our weights by transposing PyTorch's (out, in)
`Linear` weights. Which LSTM cell runs the weights is a choice (`cell=`):
"meta_test" (default) is the cell of the official meta-test code that
produced the paper's transfer results; "meta_train" is the cell they were
meta-trained with (see `net.CELLS`).

Example:

```python
import numpy as np
from keras_autolr.runtime.mlrsnet.official import OFFICIAL_KEYS, read_state_dict, write_state_dict

# A stand-in with the official layout (the authors' files: saved_controllers/mlrsnet.md).
rng = np.random.default_rng(0)
write_state_dict({k: rng.normal(size=s).astype("float32") for k, s in OFFICIAL_KEYS.items()}, "mlr_snet.pth")
print({k: v.shape for k, v in read_state_dict("mlr_snet.pth").items()})  # {'layer1.fc_i2h.0.weight': (25, 1), ...}
```
"""

import collections
import io
import pathlib
import pickle
import struct
import tarfile
import zipfile

import numpy as np

from keras_autolr.runtime.mlrsnet.net import MLRSNet, MLRSNetFileError, get_cell

__all__ = ["read_state_dict", "write_state_dict", "load_official", "OFFICIAL_KEYS", "OFFICIAL_SOURCE"]

OFFICIAL_SOURCE = "https://github.com/xjtushujun/MLR-SNet (meta-test/, commit 5d1eec4), MIT licence"

# name -> shape of every tensor of an official file (PyTorch Linear: (out, in)).
OFFICIAL_KEYS = {
    "layer1.fc_i2h.0.weight": (25, 1), "layer1.fc_i2h.0.bias": (25,),
    "layer1.fc_i2h.2.weight": (200, 25), "layer1.fc_i2h.2.bias": (200,),
    "layer1.fc_h2h.0.weight": (25, 50), "layer1.fc_h2h.0.bias": (25,),
    "layer1.fc_h2h.2.weight": (200, 25), "layer1.fc_h2h.2.bias": (200,),
    "layer3.weight": (1, 50), "layer3.bias": (1,),
}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": None,
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
_HOW = (
    "Expected one of the official MLR-SNet files (`mlr_snet 1.pth`, `mlr_snet 100.pth`, "
    "`mlr_snet 200.pth` from github.com/xjtushujun/MLR-SNet, folder meta-test/), saved by "
    "`torch.save(state_dict)`. Download it again (check it against the repository's file), or "
    "load it in PyTorch and re-save it with `torch.save(net.state_dict(), path)`."
)


class _Storage:
    """A storage named by the pickle; its data is filled in after unpickling."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel, self.data = key, dtype, numel, None


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def array(self):
        data = self.storage.data
        if data is None:
            raise MLRSNetFileError(f"Storage {self.storage.key!r} has no data in the file. {_HOW}")
        need = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1 if all(self.size) else 0
        if need > len(data):
            raise MLRSNetFileError(f"A tensor reaches past the end of storage {self.storage.key!r}. {_HOW}")
        base = data[self.offset:]
        strides = tuple(s * data.itemsize for s in self.stride)
        return np.lib.stride_tricks.as_strided(base, self.size, strides).copy()


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _TensorRef(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    """Resolves only what a PyTorch state dict of plain tensors needs."""

    def __init__(self, file, storages):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise MLRSNetFileError(
            f"The file refers to {module}.{name}, which a state dict of tensors does not hold; "
            f"it is not read (unpickling it could run code). {_HOW}"
        )

    def persistent_load(self, pid):
        # Legacy: ('storage', type, key, location, numel, view_metadata); zip: the first five.
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise MLRSNetFileError(f"Unknown persistent id {pid!r} in the file. {_HOW}")
        _, kind, key, _location, numel = pid[:5]
        dtype = _STORAGE_DTYPES.get(kind)
        if dtype is None:
            raise MLRSNetFileError(f"Storage type {kind!r} is not supported (float32 files are). {_HOW}")
        if key not in self._storages:
            self._storages[key] = _Storage(key, np.dtype(dtype), int(numel))
        return self._storages[key]


def _read_legacy(f, path):
    storages = {}
    # Every pickle goes through the restricted unpickler, these plain ones too.
    magic = _Unpickler(f, storages).load()
    if magic != _LEGACY_MAGIC:
        raise MLRSNetFileError(f"{path} is not a PyTorch file (wrong magic number). {_HOW}")
    version = _Unpickler(f, storages).load()
    if version != 1001:
        raise MLRSNetFileError(f"{path}: unsupported PyTorch legacy protocol version {version!r}. {_HOW}")
    sys_info = _Unpickler(f, storages).load()
    if not isinstance(sys_info, dict):
        raise MLRSNetFileError(f"{path}: no system-information record after the version. {_HOW}")
    if not sys_info.get("little_endian", True):
        raise MLRSNetFileError(f"{path} was written on a big-endian machine; not supported. {_HOW}")
    state = _Unpickler(f, storages).load()
    keys = _Unpickler(f, storages).load()
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise MLRSNetFileError(f"{path}: storage {key!r} is listed but no tensor uses it. {_HOW}")
        head = f.read(8)
        if len(head) < 8:
            raise MLRSNetFileError(f"{path} ends before the data of storage {key!r} (truncated?). {_HOW}")
        (numel,) = struct.unpack("<q", head)
        raw = f.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) < numel * storage.dtype.itemsize:
            raise MLRSNetFileError(f"{path}: the data of storage {key!r} is truncated or mis-sized. {_HOW}")
        storage.data = np.frombuffer(raw, storage.dtype)
    return state


def _read_zip(path):
    storages = {}
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        if len(pkl) != 1:
            raise MLRSNetFileError(f"{path} is a zip archive without one data.pkl: not a PyTorch file. {_HOW}")
        prefix = pkl[0][: -len("data.pkl")]
        state = _Unpickler(io.BytesIO(z.read(pkl[0])), storages).load()
        for key, storage in storages.items():
            member = f"{prefix}data/{key}"
            if member not in names:
                raise MLRSNetFileError(f"{path} has no {member} (the data of a tensor). {_HOW}")
            storage.data = np.frombuffer(z.read(member), storage.dtype)[: storage.numel]
    return state


def read_state_dict(path):
    """Reads a PyTorch state dict of tensors into numpy arrays, without PyTorch.

    Args:
        path: a `.pth` file written by `torch.save(state_dict)`, in the
            legacy (before PyTorch 1.6) or the zip format.

    Returns:
        A dict `name -> numpy array`, in the file's order.

    Raises:
        MLRSNetFileError: the file is missing, truncated, not a PyTorch
            file, or holds something other than tensors (the message says
            what to do).

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet.official import read_state_dict
    from keras_autolr.runtime.mlrsnet.net import MLRSNetFileError

    open("not_torch.pth", "wb").write(b"hello")
    try:
        read_state_dict("not_torch.pth")
    except MLRSNetFileError as e:
        print(e)  # ... not a PyTorch file ... Download it again ...
    ```
    """
    p = pathlib.Path(path)
    if not p.is_file():
        raise MLRSNetFileError(f"No file at {p}. {_HOW}")
    try:
        if zipfile.is_zipfile(p):
            state = _read_zip(p)
        elif tarfile.is_tarfile(p):
            raise MLRSNetFileError(
                f"{p} is in PyTorch's oldest (tar) format, which is not read here. {_HOW}"
            )
        else:
            with open(p, "rb") as f:
                state = _read_legacy(f, p)
    except MLRSNetFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, struct.error, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise MLRSNetFileError(f"{p} is not a readable PyTorch file ({type(e).__name__}: {e}). {_HOW}") from None
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise MLRSNetFileError(f"{p} does not hold a state dict of tensors. {_HOW}")
    return {k: v.array() for k, v in state.items()}


# Protocol-2 pickle opcodes, written by hand: the pickle must name PyTorch's
# objects (torch._utils._rebuild_tensor_v2, torch.FloatStorage), which
# pickle.Pickler cannot emit without importing torch.
def _p_global(module, name):
    return f"c{module}\n{name}\n".encode()


def _p_str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _p_int(n):
    return b"J" + struct.pack("<i", n)


def _p_tuple(*items):
    return b"(" + b"".join(items) + b"t"


_P_ORDERED_DICT = _p_global("collections", "OrderedDict") + b")R"  # OrderedDict()


def _tensor_pickle(name, key, kind, array):
    stride = [s // array.itemsize for s in array.strides]
    storage = _p_tuple(_p_str("storage"), _p_global("torch", kind), _p_str(key), _p_str("cpu"),
                       _p_int(array.size), b"N")
    args = _p_tuple(storage + b"Q", _p_int(0), _p_tuple(*map(_p_int, array.shape)),
                    _p_tuple(*map(_p_int, stride)), b"\x89", _P_ORDERED_DICT)
    return _p_str(name) + _p_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def write_state_dict(state, path):
    """Writes numpy arrays as a state dict in PyTorch's legacy format, without PyTorch.

    The layout is the one of the official files (and what
    `read_state_dict` reads): magic number, protocol 1001, system info, the
    dict of `torch._utils._rebuild_tensor_v2` tensors on "cpu" storages,
    the storage keys, then each storage's element count and little-endian
    data. Meant for tests and for handing weights to the official PyTorch
    code; `torch.load` itself is not run in this package's tests.

    Args:
        state: a dict `name -> numpy array` (float32, float64, int32, int64,
            ...).
        path: the file to write.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.mlrsnet.official import read_state_dict, write_state_dict

    write_state_dict({"w": np.arange(6, dtype="float32").reshape(2, 3)}, "w.pth")
    print(read_state_dict("w.pth")["w"])  # [[0. 1. 2.] [3. 4. 5.]]
    ```
    """
    kinds = {np.dtype(v).str: k for k, v in _STORAGE_DTYPES.items() if v is not None}
    arrays = []
    for name, value in state.items():
        a = np.asarray(value)
        a = np.ascontiguousarray(a, a.dtype.newbyteorder("<")).reshape(a.shape)  # keeps 0-d tensors 0-d
        if a.dtype.str not in kinds:
            raise ValueError(f"{name}: dtype {a.dtype} has no PyTorch storage type here.")
        arrays.append((str(name), str(len(arrays)), a))
    body = b"\x80\x02" + _P_ORDERED_DICT + b"(" + b"".join(
        _tensor_pickle(name, key, kinds[a.dtype.str], a) for name, key, a in arrays) + b"u."
    with open(path, "wb") as f:
        for header in (_LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                             "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, f, protocol=2)
        f.write(body)
        pickle.dump([key for _, key, _ in arrays], f, protocol=2)
        for _, _, a in arrays:
            f.write(struct.pack("<q", a.size))
            f.write(a.tobytes())


def _check_layout(state, path):
    missing = [k for k in OFFICIAL_KEYS if k not in state]
    extra = [k for k in state if k not in OFFICIAL_KEYS]
    if missing or extra:
        raise MLRSNetFileError(
            f"{path} is a PyTorch state dict but not an official MLR-SNet (one-layer, hidden 50): "
            f"missing {missing}, unexpected {extra}. {_HOW}"
        )
    for k, shape in OFFICIAL_KEYS.items():
        if tuple(state[k].shape) != shape:
            raise MLRSNetFileError(f"{path}: {k} has shape {tuple(state[k].shape)}, expected {shape}. {_HOW}")


def load_official(path, cell="meta_test"):
    """Loads an official MLR-SNet `.pth` file as our Keras `MLRSNet` (image mode).

    Args:
        path: one of the authors' files (`mlr_snet 1.pth`, `... 100.pth`,
            `... 200.pth`).
        cell: the LSTM cell that runs the weights: "meta_test" (default; the
            official meta-test code's cell, behind the paper's transfer
            results) or "meta_train" (the official meta-training cell: other
            gate order, `sigmoid(forget - 1)`). The same weights give
            different LRs under the two.

    Returns:
        An `MLRSNet(mode="image", hidden=50, mlp_width=25, cell=cell)` whose
        `meta` records the source file and licence.

    Raises:
        MLRSNetFileError: the file is not an official MLR-SNet state dict.
        ValueError: an unknown `cell`.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.mlrsnet import load_official, net_outputs
    from keras_autolr.runtime.mlrsnet.official import OFFICIAL_KEYS, write_state_dict

    # A stand-in with the official layout; the authors' own nets ship converted
    # (saved_controllers/mlrsnet_official_*.keras).
    rng = np.random.default_rng(0)
    write_state_dict({k: rng.normal(scale=0.3, size=s).astype("float32") for k, s in OFFICIAL_KEYS.items()},
                     "mlr_snet.pth")
    for cell in ("meta_test", "meta_train"):  # the same weights, two cells, two LR sequences
        print(cell, net_outputs(load_official("mlr_snet.pth", cell=cell), [2.3, 2.0, 1.7]))
    ```
    """
    cell = get_cell(cell).name
    state = read_state_dict(path)
    _check_layout(state, path)
    w = {k: v.astype("float32") for k, v in state.items()}
    net = MLRSNet(mode="image", hidden=50, mlp_width=25, cell=cell, meta={
        "source": OFFICIAL_SOURCE, "file": pathlib.Path(path).name, "cell": cell,
        "trained": "meta-trained by the authors with ResNet-18 on full CIFAR-10, 200 epochs",
    })
    # Our kernels are (in, out): PyTorch's (out, in) weights transposed.
    net.set_weights([
        w["layer1.fc_i2h.0.weight"].T, w["layer1.fc_i2h.0.bias"],
        w["layer1.fc_i2h.2.weight"].T, w["layer1.fc_i2h.2.bias"],
        w["layer1.fc_h2h.0.weight"].T, w["layer1.fc_h2h.0.bias"],
        w["layer1.fc_h2h.2.weight"].T, w["layer1.fc_h2h.2.bias"],
        w["layer3.weight"].T, w["layer3.bias"],
    ])
    return net
