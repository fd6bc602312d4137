"""The MLR-SNet meta-learner: an LSTM cell that maps a training loss to an LR.

Purpose: hold the meta-learned parameters theta of MLR-SNet (Shu et al.) as a
Keras model that saves and loads as `.keras`, plus the pure one-step function
`cell_step` that every other part of the package (in-graph per-batch control,
meta-training, tests) calls.

Variant followed: the official code (`xjtushujun/MLR-SNet`), not the paper
text, because its shipped checkpoints are the ones that produced the paper's
numbers:

* hidden size 50 (paper text: 40);
* every LSTM gate pre-activation is `mlp_in(x) + mlp_h(h)` where each is a
  two-layer MLP (1 -> 25 -> ReLU -> 4*50 and 50 -> 25 -> ReLU -> 4*50; the
  text net uses width 50), i.e. 11,776 parameters for the image net;
* output `p = sigmoid(Linear(50 -> 1)(h))`; the LR is `gamma * p` with gamma
  chosen outside the net (see `gamma.py`);
* the LSTM cell is a choice (`cell=`, an `LSTMCellVariant`), because the
  official code has two that read the same 200 gate values differently:
  "meta_test" (`meta-test/model/network.py`, which runs the published nets
  for the paper's transfer results: chunks in, forget, transform, out and
  `sigmoid(forget)`; our default, and the cell of every net meta-trained
  here so far) and "meta_train" (`meta-train/image-classification/module.py`,
  the cell the nets were meta-trained with: chunks in, forget, out,
  transform and `sigmoid(forget - 1)`);
* input: the mini-batch loss (image mode) or loss / log(vocab size) (text
  mode). The mode is stored in the net's config, so a text net cannot be
  used on an image task by mistake (see `check_mode`).

Example:

```python
import keras
from keras_autolr.runtime.mlrsnet import MLRSNet, load_net

net = MLRSNet(mode="image", seed=0)
h, c = net.initial_state()
p, h, c = net(keras.ops.convert_to_tensor(2.3), h, c)  # p in (0, 1)
net.save("my_net.keras")
net = load_net("my_net.keras")
```
"""

import json
import math
import pathlib
import zipfile

import keras
import numpy as np
from keras import ops

__all__ = [
    "MLRSNet", "MLRSNetFileError", "ModeMismatchError", "LSTMCellVariant", "CELLS", "get_cell",
    "cell_step", "net_outputs", "load_net", "check_mode",
]

MODES = ("image", "text")


class MLRSNetFileError(ValueError):
    """A file that should hold an MLR-SNet does not."""


class ModeMismatchError(ValueError):
    """A text net used on an image task or the other way round."""


def _vecmat(v, w):
    # (B, n) @ (n, m) as a broadcast multiply + sum: for these tiny shapes XLA
    # on CPU fuses it into one loop instead of dispatching a matmul per layer
    # (measured: the matmul form made a JAX train step ~45% slower).
    return ops.sum(ops.expand_dims(v, -1) * w, axis=-2)


class LSTMCellVariant:
    """How an LSTM cell reads its 4 * hidden gate pre-activations.

    A strategy object of `MLRSNet` (its `cell=`): the order in which the
    gate chunks hold the input gate `i`, forget gate `f`, transform `g` and
    output gate `o`, and a constant added to the forget pre-activation.
    The two cells of the official code are in `CELLS`.

    Args:
        name: the variant's name (what `MLRSNet.get_config` records).
        order: the letters "i", "f", "g", "o" in chunk order.
        forget_shift: added to the forget pre-activation before its sigmoid.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.mlrsnet.net import CELLS

    gates = np.arange(8, dtype="float32").reshape(1, 8)  # hidden 2: chunks [0 1] [2 3] [4 5] [6 7]
    i, f, g, o = CELLS["meta_train"].split(gates)
    print(np.asarray(g), np.asarray(o))  # [[6. 7.]] [[4. 5.]]: transform last in the meta-training cell
    ```
    """

    def __init__(self, name, order, forget_shift=0.0):
        if sorted(order) != ["f", "g", "i", "o"]:
            raise ValueError(f"order must hold 'i', 'f', 'g', 'o' once each, got {order!r}.")
        self.name = name
        self.order = tuple(order)
        self.forget_shift = float(forget_shift)

    def split(self, gates):
        """The pre-activations `(i, f, g, o)` of `gates`, shape (B, 4 * hidden)."""
        chunks = dict(zip(self.order, ops.split(gates, 4, axis=-1)))
        return chunks["i"], chunks["f"] + self.forget_shift, chunks["g"], chunks["o"]

    def __repr__(self):
        return f"LSTMCellVariant({self.name!r}, order={''.join(self.order)!r}, forget_shift={self.forget_shift:g})"


CELLS = {
    # meta-test/model/network.py: the cell that ran the published nets for the paper's transfer results.
    "meta_test": LSTMCellVariant("meta_test", "ifgo", 0.0),
    # meta-train/image-classification/module.py (MLRSNetCell): the cell the nets were meta-trained with.
    "meta_train": LSTMCellVariant("meta_train", "ifog", -1.0),
}


def get_cell(cell):
    """The `LSTMCellVariant` for a name in `CELLS` (a variant is returned as is).

    Args:
        cell: "meta_test", "meta_train" or an `LSTMCellVariant`.

    Raises:
        ValueError: an unknown name (the message lists the known ones).

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet.net import get_cell

    print(get_cell("meta_train").forget_shift)  # -1.0
    ```
    """
    if isinstance(cell, LSTMCellVariant):
        return cell
    if cell not in CELLS:
        raise ValueError(
            f"Unknown MLR-SNet cell {cell!r}; choose one of {sorted(CELLS)} (meta_test: the official "
            "meta-test cell, the default; meta_train: the official meta-training cell)."
        )
    return CELLS[cell]


def cell_step(params, x, h, c, cell="meta_test"):
    """One MLR-SNet step, pure `keras.ops` (works under tf.function and jit).

    Args:
        params: the net's 10 arrays in `MLRSNet.weights` order:
            in1 kernel/bias, in2 kernel/bias, h1 kernel/bias, h2 kernel/bias,
            out kernel/bias.
        x: the (already normalised) loss, a scalar or shape (B,).
        h, c: LSTM state, shape (B, hidden) (B = 1 for a controller).
        cell: the LSTM cell variant (`get_cell`): "meta_test" (default) or
            "meta_train".

    Returns:
        `(p, h, c)`: p in (0, 1) with the shape of `x` broadcast to (B,), and
        the new state.

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet import MLRSNet, cell_step

    net = MLRSNet(seed=0)
    h, c = net.initial_state()
    p, h, c = cell_step([v.value for v in net.params], 2.3, h, c)
    print(p.shape, h.shape)  # (1,) (1, 50)
    ```
    """
    wi1, bi1, wi2, bi2, wh1, bh1, wh2, bh2, wo, bo = params
    x = ops.reshape(ops.cast(x, "float32"), (-1, 1))
    gates = _vecmat(ops.relu(x * wi1 + bi1), wi2) + bi2  # x is (B, 1): x @ wi1 == x * wi1
    gates = gates + _vecmat(ops.relu(_vecmat(h, wh1) + bh1), wh2) + bh2
    i, f, g, o = get_cell(cell).split(gates)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    h = ops.sigmoid(o) * ops.tanh(c)
    p = ops.sigmoid(_vecmat(h, wo) + bo)
    return ops.reshape(p, (-1,)), h, c


def _torch_default(fan_in):
    # PyTorch's nn.Linear default (weights and biases U(-1/sqrt(fan_in), ..)),
    # which the reference relies on: an untrained net predicts p ~ 0.5.
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


@keras.saving.register_keras_serializable(package="keras_autolr")
class MLRSNet(keras.Model):
    """The MLR-SNet LSTM meta-learner (official-code variant).

    Args:
        mode: "image" (input is the batch loss) or "text" (input is
            loss / log(vocab_size)).
        hidden: LSTM hidden size (reference: 50).
        mlp_width: width of the gate MLPs (reference: 25 image, 50 text);
            None picks the reference value for `mode`.
        seed: initialisation seed.
        meta: free-form dict saved with the net (training provenance).
        cell: the LSTM cell variant, "meta_test" (default: the official
            meta-test cell) or "meta_train" (the official meta-training
            cell), or one of `CELLS`' values; saved with the net by name.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:

    ```python
    import keras
    from keras_autolr.runtime.mlrsnet import MLRSNet

    net = MLRSNet(mode="image", seed=0)
    h, c = net.initial_state()
    p, h, c = net(keras.ops.convert_to_tensor([2.3]), h, c)
    print(net.count_params(), float(p[0]))  # 11776 params; an untrained net gives p ~ 0.5
    ```
    """

    def __init__(self, mode="image", hidden=50, mlp_width=None, seed=None, meta=None, cell="meta_test", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        self.mode = mode
        self.cell = get_cell(cell)
        if CELLS.get(self.cell.name) is not self.cell:
            raise ValueError(f"cell must be one of {sorted(CELLS)} or their variants (it is saved by name), got {cell!r}.")
        self.hidden = int(hidden)
        self.mlp_width = int(mlp_width or (25 if mode == "image" else 50))
        self.seed = seed
        self.meta = dict(meta or {})
        H, W = self.hidden, self.mlp_width
        shapes = [
            ("in1", 1, W), ("in2", W, 4 * H), ("h1", H, W), ("h2", W, 4 * H), ("out", H, 1),
        ]
        gen = keras.random.SeedGenerator(seed) if seed is not None else None
        self._params = []
        for name, fan_in, fan_out in shapes:
            init = _torch_default(fan_in)
            if gen is not None:
                init = keras.initializers.RandomUniform(init.minval, init.maxval, seed=gen)
            self._params.append(self.add_weight(shape=(fan_in, fan_out), initializer=init, name=f"{name}_kernel"))
            self._params.append(self.add_weight(shape=(fan_out,), initializer=init, name=f"{name}_bias"))
        self.built = True

    @property
    def params(self):
        """The 10 weight variables in `cell_step` order."""
        return list(self._params)

    def initial_state(self, batch=1):
        z = ops.zeros((batch, self.hidden), "float32")
        return z, z

    def normalise(self, loss, vocab_size=None):
        """The net's input for a raw training loss (text: loss / log(vocab))."""
        if self.mode == "text":
            if not vocab_size or vocab_size < 2:
                raise ModeMismatchError(
                    "This is a text MLR-SNet: its input is loss / log(vocab_size). "
                    "Pass vocab_size (the number of output tokens, >= 2)."
                )
            return ops.cast(loss, "float32") / math.log(vocab_size)
        return ops.cast(loss, "float32")

    def call(self, x, h, c):
        return cell_step([v.value for v in self._params], x, h, c, self.cell)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, hidden=self.hidden, mlp_width=self.mlp_width, seed=self.seed, meta=self.meta,
                      cell=self.cell.name)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for k in ("trainable", "dtype"):
            config.pop(k, None)
        return cls(**config)


def check_mode(net, task):
    """Raises `ModeMismatchError` unless `net.mode == task`.

    Args:
        net: an `MLRSNet`.
        task: "image", "text" or None (None: no check).

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet import MLRSNet, ModeMismatchError
    from keras_autolr.runtime.mlrsnet.net import check_mode

    check_mode(MLRSNet(mode="image"), "image")  # fine
    try:
        check_mode(MLRSNet(mode="text"), "image")
    except ModeMismatchError as e:
        print(e)
    ```
    """
    if task is None:
        return
    if task not in MODES:
        raise ValueError(f"task must be one of {MODES}, got {task!r}.")
    if net.mode != task:
        raise ModeMismatchError(
            f"This MLR-SNet was meta-trained in {net.mode!r} mode but the task is {task!r}. "
            f"Use the {task} net (saved_controllers/mlrsnet_{task}.keras) or meta-train one "
            f"with `keras-autolr mlrsnet meta-train --task {task}`."
        )


def net_outputs(net, losses, vocab_size=None):
    """The net's outputs p (before gamma) for a sequence of batch losses from a zero state.

    Runs the net's own cell over `losses` in order, carrying the LSTM state,
    as the scheduler does during training.

    Args:
        net: an `MLRSNet`.
        losses: a 1-D sequence of raw batch losses.
        vocab_size: for a text net, the vocabulary size (its input is
            loss / log(vocab_size)); unused for an image net.

    Returns:
        A float32 numpy array of the same length as `losses`, values in (0, 1).

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet import MLRSNet, net_outputs

    p = net_outputs(MLRSNet(seed=0, cell="meta_train"), [2.3, 2.1, 1.9])
    print(p.shape, p.min() > 0, p.max() < 1)  # (3,) True True
    ```
    """
    xs = np.asarray(losses, dtype="float32")
    if xs.ndim != 1:
        raise ValueError(f"losses must be a 1-D sequence of batch losses, got shape {xs.shape}.")
    params = [v.value for v in net.params]
    h, c = net.initial_state()
    out = np.empty(len(xs), "float32")
    for t, loss in enumerate(xs):
        p, h, c = cell_step(params, net.normalise(float(loss), vocab_size), h, c, net.cell)
        out[t] = float(ops.convert_to_numpy(p)[0])
    return out


def load_net(path):
    """Loads an `MLRSNet` from a `.keras` file, with a clear error for anything else.

    Args:
        path: a `.keras` file written by `MLRSNet.save`, or an `MLRSNet`
            (returned as is).

    Raises:
        MLRSNetFileError: the file is missing, not a `.keras` archive, or
            holds another kind of model.

    Example:

    ```python
    from keras_autolr.runtime.mlrsnet import MLRSNet, load_net

    MLRSNet(mode="text", seed=1).save("text_net.keras")
    print(load_net("text_net.keras").mode)  # text
    ```
    """
    if isinstance(path, MLRSNet):
        return path
    p = pathlib.Path(path)
    if not p.exists():
        raise MLRSNetFileError(f"No MLR-SNet file at {p}.")
    if not zipfile.is_zipfile(p):
        raise MLRSNetFileError(
            f"{p} is not a Keras v3 `.keras` archive; an MLR-SNet is saved with "
            "`net.save('name.keras')` (legacy .h5 / SavedModel files are not supported)."
        )
    with zipfile.ZipFile(p) as z:
        try:
            config = json.loads(z.read("config.json"))
        except (KeyError, ValueError):
            raise MLRSNetFileError(f"{p} has no readable config.json: not a `.keras` model file.") from None
    name = config.get("class_name")
    if name != "MLRSNet":
        raise MLRSNetFileError(
            f"{p} holds a Keras {name!r}, not an MLR-SNet. Use a file written by "
            "`MLRSNet.save` or `keras-autolr mlrsnet meta-train` (e.g. "
            "saved_controllers/mlrsnet_image.keras)."
        )
    return keras.saving.load_model(p, custom_objects={"MLRSNet": MLRSNet}, compile=False)
