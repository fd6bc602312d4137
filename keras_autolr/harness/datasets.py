"""Ready-to-train splits of the data sets the papers and our demos use.

Offline first: every loader reads local files or builds data in-process, and
raises `DatasetUnavailable` within seconds (naming the data set and how to
provide it) instead of hanging on a download.

| name | source | x | y |
|---|---|---|---|
| `mnist1d` | `mnist1d` package, generated offline | (N, 40, 1) float32 | int labels, 10 classes |
| `digits` | scikit-learn's bundled digits | (N, 8, 8, 1) float32 in [0, 1] | 10 classes |
| `fashion_mnist` | Debian `dataset-fashion-mnist` (idx files) | (N, 28, 28, 1) float32 | 10 classes |
| `cifar10` | data folder `cifar10/{train,test}.npz` (JPEG, decoded once, cached) | (N, 32, 32, 3) float32 | 10 classes |
| `ptb` | data folder `ptb/ptb.*.txt.gz`, word level with `<eos>` | int32 token stream | None |
| `tiny_shakespeare` | data folder `tinyshakespeare/input.txt`, characters | int32 token stream | None |
| any other | `tensorflow_datasets` (needs internet or a prepared tfds dir) | as tfds | as tfds |

The data folder comes from the `data_dir` argument, else the environment
variable `KERAS_AUTOLR_DATA`, else a `shared/data` folder beside the
repository (`../shared/data`). Decoded caches go to `KERAS_AUTOLR_CACHE`
(default `~/.cache/keras_autolr`).

Example:

```python
from keras_autolr.harness import datasets

split = datasets.load("digits")
assert split.x_train.shape[1:] == (8, 8, 1) and split.num_classes == 10
```
"""

import dataclasses
import gzip
import os
import pathlib
import socket
import struct

import numpy as np

from keras_autolr.runtime import io as io_lib

__all__ = ["Split", "DatasetUnavailable", "load", "names", "data_dir", "lm_sequences"]

DATA_ENV = "KERAS_AUTOLR_DATA"
CACHE_ENV = "KERAS_AUTOLR_CACHE"


class DatasetUnavailable(RuntimeError):
    """A data set is neither on disk nor downloadable from here."""


@dataclasses.dataclass
class Split:
    """Train / validation / test arrays of one data set.

    For language-modelling sets (`kind == "text"`), `x_*` are 1-D token streams,
    `y_*` are None and `num_classes` is the vocabulary size; cut them into
    sequences with `lm_sequences`.

    Args:
        name: the data set's name.
        kind: "image", "sequence" or "text".
        x_train, y_train, x_val, y_val, x_test, y_test: the splits.
        num_classes: classes, or the vocabulary size of a text set.
        vocab: the tokens of a text set (index = token id).

    Example:

    ```python
    from keras_autolr.harness import datasets

    split = datasets.load("digits", n_train=500)
    assert split.kind == "image" and len(split.x_train) == 500
    ```
    """

    name: str
    kind: str  # "image", "sequence" or "text"
    x_train: np.ndarray
    y_train: object
    x_val: np.ndarray
    y_val: object
    x_test: np.ndarray
    y_test: object
    num_classes: int
    vocab: list = None


def data_dir(path=None):
    """Resolves the offline data folder (argument, env var, ../shared/data).

    Args:
        path: an explicit folder (returned as it is).

    Example:

    ```python
    from keras_autolr.harness import datasets

    assert str(datasets.data_dir("my_data")) == "my_data"
    ```
    """
    if path:
        return pathlib.Path(path)
    if os.environ.get(DATA_ENV):
        return pathlib.Path(os.environ[DATA_ENV])
    here = pathlib.Path(__file__).resolve().parents[2]  # the repository root
    for candidate in (here.parent / "shared" / "data", pathlib.Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return here.parent / "shared" / "data"


_resolve_data_dir = data_dir


def _cache_dir():
    d = pathlib.Path(os.environ.get(CACHE_ENV, pathlib.Path.home() / ".cache" / "keras_autolr"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _missing(name, what, how):
    return DatasetUnavailable(
        f"Data set {name!r} is not available offline: {what} not found. {how} "
        f"(set {DATA_ENV}=/path/to/data or pass data_dir=...)."
    )


def _split_off(x, y, n_val, seed):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    val, train = idx[:n_val], idx[n_val:]
    return x[train], y[train], x[val], y[val]


def _subset(x, y, n, seed):
    if n is None or n >= len(x):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[idx], y[idx]


def _mnist1d(root, n_train=None, seed=0, **_):
    try:
        import mnist1d.data as m1d
    except ImportError as e:
        raise DatasetUnavailable(
            "Data set 'mnist1d' needs the `mnist1d` package: pip install mnist1d."
        ) from e
    import contextlib
    import io

    args = m1d.get_dataset_args()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints progress
        d = m1d.make_dataset(args)
    x = d["x"].astype("float32")[..., None]
    y = d["y"].astype("int32")
    xt = d["x_test"].astype("float32")[..., None]
    yt = d["y_test"].astype("int32")
    x, y, xv, yv = _split_off(x, y, 400, seed)
    x, y = _subset(x, y, n_train, seed)
    return Split("mnist1d", "sequence", x, y, xv, yv, xt, yt, 10)


def _digits(root, n_train=None, seed=0, **_):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype("float32") / 16.0)[..., None]
    y = d.target.astype("int32")
    idx = np.random.default_rng(1234).permutation(len(x))  # fixed test split
    x, y = x[idx], y[idx]
    xt, yt, x, y = x[:360], y[:360], x[360:], y[360:]
    x, y, xv, yv = _split_off(x, y, 180, seed)
    x, y = _subset(x, y, n_train, seed)
    return Split("digits", "image", x, y, xv, yv, xt, yt, 10)


FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion_mnist(root, n_train=None, n_val=5000, n_test=None, seed=0, **_):
    folders = [root / "fashion-mnist", root / "fashion_mnist", *map(pathlib.Path, FASHION_DIRS)]
    folder = next((f for f in folders if (f / "train-images-idx3-ubyte.gz").exists()), None)
    if folder is None:
        raise _missing(
            "fashion_mnist", "train-images-idx3-ubyte.gz",
            "Install Debian's package: apt-get install dataset-fashion-mnist, or put the four "
            "idx .gz files in <data>/fashion-mnist/",
        )
    x = (_read_idx(folder / "train-images-idx3-ubyte.gz").astype("float32") / 255.0)[..., None]
    y = _read_idx(folder / "train-labels-idx1-ubyte.gz").astype("int32")
    xt = (_read_idx(folder / "t10k-images-idx3-ubyte.gz").astype("float32") / 255.0)[..., None]
    yt = _read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype("int32")
    x, y, xv, yv = _split_off(x, y, 5000, seed)
    x, y = _subset(x, y, n_train, seed)
    xv, yv = _subset(xv, yv, n_val, seed)
    xt, yt = _subset(xt, yt, n_test, seed)
    return Split("fashion_mnist", "image", x, y, xv, yv, xt, yt, 10)


def _jpeg_decoder():
    # Pillow when present (JAX-only machines have no TensorFlow), else TF.
    try:
        import io

        from PIL import Image

        return lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))
    except ImportError:
        import tensorflow as tf

        return lambda b: tf.io.decode_jpeg(b, channels=3).numpy()


def _decode_cifar(npz_path, cache_path):
    if cache_path.exists():
        with np.load(cache_path) as c:
            return c["x"], c["y"]
    with np.load(npz_path) as d:
        data, offsets, y = d["data"], d["offsets"], d["y"]
    decode = _jpeg_decoder()
    x = np.empty((len(y), 32, 32, 3), dtype=np.uint8)
    for i in range(len(y)):
        x[i] = decode(data[offsets[i] : offsets[i + 1]].tobytes())
    io_lib.atomic_save_npz(cache_path, x=x, y=y.astype("uint8"))
    return x, y


CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype="float32")
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], dtype="float32")


def _cifar10(root, n_train=None, n_val=5000, n_test=None, seed=0, **_):
    folder = root / "cifar10"
    if not (folder / "train.npz").exists():
        raise _missing(
            "cifar10", f"{folder}/train.npz",
            "Copy the offline CIFAR-10 archive there, or use tensorflow_datasets online "
            "with load('cifar10_tfds')",
        )
    x, y = _decode_cifar(folder / "train.npz", _cache_dir() / "cifar10_train.npz")
    xt, yt = _decode_cifar(folder / "test.npz", _cache_dir() / "cifar10_test.npz")
    norm = lambda a: ((a.astype("float32") / 255.0) - CIFAR_MEAN) / CIFAR_STD
    y = y.astype("int32")
    yt = yt.astype("int32")
    # The archive is grouped by class: the permutation inside _split_off mixes it.
    x, y, xv, yv = _split_off(x, y, n_val, seed)
    x, y = _subset(x, y, n_train, seed)
    xt, yt = _subset(xt, yt, n_test, seed)
    return Split("cifar10", "image", norm(x), y, norm(xv), yv, norm(xt), yt, 10)


def _ptb(root, **_):
    folder = root / "ptb"
    if not (folder / "ptb.train.txt.gz").exists():
        raise _missing("ptb", f"{folder}/ptb.train.txt.gz", "Copy the PTB files there (tfds has no PTB)")

    def words(split):
        with gzip.open(folder / f"ptb.{split}.txt.gz", "rt") as f:
            return [w for line in f for w in line.split() + ["<eos>"]]

    train, valid, test = words("train"), words("valid"), words("test")
    vocab = sorted(set(train))
    index = {w: i for i, w in enumerate(vocab)}
    enc = lambda ws: np.array([index[w] for w in ws], dtype="int32")
    return Split("ptb", "text", enc(train), None, enc(valid), None, enc(test), None, len(vocab), vocab)


def _tiny_shakespeare(root, **_):
    path = root / "tinyshakespeare" / "input.txt"
    if not path.exists():
        raise _missing("tiny_shakespeare", str(path), "Copy Tiny Shakespeare's input.txt there")
    text = path.read_text()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.array([index[c] for c in text], dtype="int32")
    n = len(ids)
    a, b = int(0.9 * n), int(0.95 * n)
    return Split("tiny_shakespeare", "text", ids[:a], None, ids[a:b], None, ids[b:], None, len(vocab), vocab)


def lm_sequences(stream, seq_len, max_sequences=None):
    """Cuts a token stream into (inputs, next-token targets) of length `seq_len`.

    Args:
        stream: 1-D token ids.
        seq_len: sequence length.
        max_sequences: keep at most this many (from the start).

    Raises:
        ValueError: the stream is too short for one sequence.

    Example:

    ```python
    import numpy as np
    from keras_autolr.harness import datasets

    x, y = datasets.lm_sequences(np.arange(11), 5)
    assert x.tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]] and y[0].tolist() == [1, 2, 3, 4, 5]
    ```
    """
    stream = np.asarray(stream)
    n = (len(stream) - 1) // seq_len
    if max_sequences is not None:
        n = min(n, max_sequences)
    if n <= 0:
        raise ValueError(f"A stream of {len(stream)} tokens is too short for seq_len={seq_len}.")
    x = stream[: n * seq_len].reshape(n, seq_len)
    y = stream[1 : n * seq_len + 1].reshape(n, seq_len)
    return x, y


_LOADERS = {
    "mnist1d": _mnist1d,
    "digits": _digits,
    "fashion_mnist": _fashion_mnist,
    "cifar10": _cifar10,
    "ptb": _ptb,
    "tiny_shakespeare": _tiny_shakespeare,
}


def names():
    """Names with an offline loader (any other name goes through tfds).

    Example:

    ```python
    from keras_autolr.harness import datasets

    assert {"mnist1d", "digits", "cifar10", "ptb"} <= set(datasets.names())
    ```
    """
    return sorted(_LOADERS)


def _online(host="storage.googleapis.com", port=443, timeout=3.0):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _tfds(name, root, seed=0, **_):
    tfds_name = name[:-5] if name.endswith("_tfds") else name
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DatasetUnavailable(f"{name!r} needs tensorflow-datasets: pip install tensorflow-datasets") from e
    try:
        builder = tfds.builder(tfds_name, data_dir=os.environ.get("TFDS_DATA_DIR"))
    except Exception as e:  # DatasetNotFoundError and friends
        raise DatasetUnavailable(
            f"Unknown data set {name!r}: offline loaders are {names()}; "
            f"tensorflow_datasets does not know it either ({type(e).__name__})."
        ) from e
    prepared = pathlib.Path(builder.data_dir).exists() and any(pathlib.Path(builder.data_dir).glob("*.tfrecord*"))
    if not prepared and not _online():
        # Offline, tfds.load retries for minutes before failing: fail fast.
        raise DatasetUnavailable(
            f"Data set {name!r} is not prepared in {builder.data_dir} and this machine is "
            "offline. Run `tfds build " + tfds_name + "` on a machine with internet and copy "
            "the folder over (set TFDS_DATA_DIR), or use an offline set: " + ", ".join(names())
        )
    builder.download_and_prepare()
    arrays = {}
    for split in ("train", "test"):
        x, y = [], []
        for ex in tfds.as_numpy(builder.as_dataset(split=split)):
            x.append(ex["image"])
            y.append(ex["label"])
        arrays[split] = (np.stack(x).astype("float32") / 255.0, np.array(y, dtype="int32"))
    x, y = arrays["train"]
    x, y, xv, yv = _split_off(x, y, max(1, len(x) // 10), seed)
    xt, yt = arrays["test"]
    return Split(tfds_name, "image", x, y, xv, yv, xt, yt, int(builder.info.features["label"].num_classes))


def load(name, data_dir=None, **kwargs):
    """Loads data set `name` as a `Split`.

    Args:
        name: one of `names()`, or a tensorflow-datasets image-classification
            name (e.g. "svhn_cropped"), which needs internet or a prepared
            `TFDS_DATA_DIR`.
        data_dir: the offline data folder (see module docstring).
        **kwargs: loader options: `n_train` (random training subset),
            `seed` (validation split and subset), `n_val`, `n_test` (CIFAR-10,
            Fashion-MNIST).

    Raises:
        DatasetUnavailable: the data is missing offline, with how to get it.

    Example:

    ```python
    from keras_autolr.harness import datasets

    split = datasets.load("digits", n_train=200, seed=1)
    assert split.x_train.shape == (200, 8, 8, 1) and split.y_val is not None
    ```
    """
    root = _resolve_data_dir(data_dir)  # the argument shadows data_dir()
    loader = _LOADERS.get(name)
    if loader is None:
        return _tfds(name, root, **kwargs)
    return loader(root, **kwargs)
