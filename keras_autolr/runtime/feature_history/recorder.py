"""`FeatureHistory`: records per-epoch embeddings and classifier weights.

Each epoch it runs the model's feature extractor (by default the input of the
final Dense classifier) on the validation set and on a fixed subsample of the
training set, and stores both, their labels and the classifier's kernel and
bias in a crash-safe HDF5 history (see `store.py`). The proxy estimate
(`estimate.py`, `ProxyAccuracy`) reads it back.

Example: `FeatureHistory` below.
"""

import collections
import copy
import hashlib
import itertools
import json
import math
import os
import shutil
import warnings

import keras
import numpy as np

from keras_autolr.runtime.feature_history.store import HistoryLockedError
from keras_autolr.runtime.feature_history.store import HistoryMismatchError
from keras_autolr.runtime.feature_history.store import HistoryStore
from keras_autolr.runtime.feature_history.store import epoch_dir

__all__ = ["FeatureHistory", "ClassifierNotFoundError", "find_classifier", "model_fingerprint",
           "build_feature_extractor", "split_like_keras", "copy_path"]

# Layers without weights that may sit between the classifier and the output.
_PASS_THROUGH = ("Activation", "Softmax", "Dropout", "ReLU", "Identity",
                 "GaussianNoise", "GaussianDropout", "AlphaDropout",
                 "SpatialDropout1D", "ActivityRegularization")


class ClassifierNotFoundError(ValueError):
    """No final Dense classifier could be identified in the model."""


def _labels(y):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1).astype(np.int32)
    return y.reshape(-1).astype(np.int32)


def split_like_keras(data, validation_split):
    """Splits `(x, y)` as `model.fit(x, y, validation_split=...)` does: the last fraction, unshuffled.

    Keras takes the validation rows from the end of the arrays, before any
    shuffling: `split_at = floor(n * (1 - validation_split))`.

    Args:
        data: `(x, y)` arrays, as given to `fit`.
        validation_split: the fraction given to `fit`, in (0, 1).

    Returns:
        `((x_train, y_train), (x_val, y_val))`.

    Raises:
        ValueError: the fraction is outside (0, 1) or leaves one side empty.

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.feature_history.recorder import split_like_keras

    (xt, yt), (xv, yv) = split_like_keras((np.arange(10), np.arange(10)), 0.25)
    print(xt, xv)  # [0 1 2 3 4 5 6 7] [8 9]
    ```
    """
    x, y = data
    if not 0 < float(validation_split) < 1:
        raise ValueError(
            f"validation_split must be in (0, 1), got {validation_split}.")
    n = len(x)
    split_at = int(math.floor(n * (1.0 - float(validation_split))))
    if split_at in (0, n):
        raise ValueError(
            f"{n} rows cannot be split with validation_split={validation_split}: "
            "one side would be empty.")
    return (x[:split_at], y[:split_at]), (x[split_at:], y[split_at:])


def copy_path(template, index):
    """The history path of copy number `index` of a recorder writing `template`.

    Args:
        template: the recorder's `filepath`.
        index: the copy's number.

    Example:

    ```python
    from keras_autolr.runtime.feature_history.recorder import copy_path

    print(copy_path("runs/run.h5", 3))  # runs/run.003.h5
    ```
    """
    root, ext = os.path.splitext(os.fspath(template))
    return f"{root}.{int(index):03d}{ext}"


def find_classifier(model):
    """Returns the final Dense layer of a Functional/Sequential model.

    Layers without weights after it (softmax, dropout, ...) are skipped.

    Args:
        model: a built Functional or Sequential model.

    Raises:
        ClassifierNotFoundError: the model does not end in a Dense layer.

    Example:

    ```python
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="embed"),
                              keras.layers.Dense(3, activation="softmax")])
    from keras_autolr.runtime.feature_history.recorder import find_classifier

    print(find_classifier(model).units)  # 3
    ```
    """
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            break
        if not layer.weights and type(layer).__name__ in _PASS_THROUGH:
            continue
        kernel = getattr(layer, "kernel", None)
        if isinstance(layer, keras.layers.Dense) and kernel is not None and (
                len(kernel.shape) == 2):
            return layer
        break
    raise ClassifierNotFoundError(
        f"Model {model.name!r} does not end in a Dense classifier (last "
        f"layers: {[type(l).__name__ for l in model.layers[-3:]]}). Pass "
        "layer='<name of the embedding layer>' to FeatureHistory to choose "
        "the layer to record.")


def model_fingerprint(model, layer=None):
    """A hash of the architecture (layer types and weight shapes, not values).

    Auto-generated layer names (`dense_3`) change between Python sessions, so
    they are left out; a user-chosen `layer` name is included.

    Args:
        model: a Keras model.
        layer: the recorded layer's name, if chosen.

    Returns:
        16 hex digits.

    Example:

    ```python
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="embed"),
                              keras.layers.Dense(3, activation="softmax")])
    from keras_autolr.runtime.feature_history.recorder import model_fingerprint

    print(model_fingerprint(model) == model_fingerprint(keras.models.clone_model(model)))  # True
    ```
    """
    spec = {
        "class": type(model).__name__,
        "inputs": [list(getattr(t, "shape", ())) for t in
                   (getattr(model, "inputs", None) or [])],
        "layers": [[type(l).__name__, [list(w.shape) for w in l.weights]]
                   for l in model.layers],
        "layer": layer,
    }
    blob = json.dumps(spec, default=str, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def build_feature_extractor(model, layer=None):
    """Returns `(extractor, classifier_or_None, layer_name)`.

    Args:
        model: a built Functional or Sequential Keras model.
        layer: name of the layer whose output is recorded; default the input
            of the final Dense classifier.

    Raises:
        ClassifierNotFoundError: the model is not built, or has no final
            Dense classifier and no `layer` was named.

    Example:

    ```python
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="embed"),
                              keras.layers.Dense(3, activation="softmax")])
    import numpy as np
    from keras_autolr.runtime.feature_history.recorder import build_feature_extractor

    extractor, classifier, name = build_feature_extractor(model)
    print(extractor.predict(np.zeros((2, 4)), verbose=0).shape, classifier.units)  # (2, 8) 3
    ```
    """
    if not getattr(model, "built", False) or not getattr(model, "inputs",
                                                          None):
        raise ClassifierNotFoundError(
            f"FeatureHistory needs a built Functional or Sequential model; "
            f"{type(model).__name__} {model.name!r} has no symbolic inputs. "
            "Build it (e.g. keras.Input first) or wrap the feature part in a "
            "Functional model and pass layer='<name>'.")
    try:
        classifier = find_classifier(model)
    except ClassifierNotFoundError:
        if layer is None:
            raise
        classifier = None
    if layer is None:
        features = classifier.input
        name = f"input of {classifier.name}"
    else:
        try:
            target = model.get_layer(layer)
        except ValueError as e:
            names = [l.name for l in model.layers]
            raise ValueError(
                f"layer={layer!r} is not in model {model.name!r}; layers are "
                f"{names}.") from e
        features = target.output
        name = layer
    extractor = keras.Model(model.inputs, features,
                            name=f"{model.name}_features")
    dim = int(np.prod([d for d in features.shape[1:]]))
    if classifier is not None and int(classifier.kernel.shape[0]) != dim:
        # A named layer that does not feed the classifier: the estimate then
        # starts its linear classifiers from zeros.
        classifier = None
    return extractor, classifier, name


def _classifier_accuracy(record):
    z = record["val_embeddings"] @ record["kernel"]
    if record.get("bias") is not None:
        z = z + record["bias"]
    return float(np.mean(z.argmax(axis=1) == record["val_labels"]))


class FeatureHistory(keras.callbacks.Callback):
    """Records the feature history of a classifier, one HDF5 entry per epoch.

    Each epoch stores the validation embeddings, the embeddings of a fixed
    random subsample of the training set with its labels, and the final
    classifier's kernel and bias. A killed run leaves a history holding
    every completed epoch.

    Epoch numbers in the file:

    * The first `fit()` of a callback stores Keras's epoch numbers. On a path
      that already holds a history (of the same architecture) it appends,
      rewriting epochs >= its `initial_epoch`: a run resumed from a
      checkpoint replaces the abandoned run's later epochs.
    * A later `fit()` of the same callback continues the file and never
      deletes a recorded epoch: its first epoch is stored as the store's last
      recorded epoch + 1, or as Keras's `initial_epoch` if that is later
      (`fit(epochs=2)` after 3 epochs stores epochs 3 and 4;
      `fit(initial_epoch=3, epochs=5)` does too). `epoch_offset` is the
      shift from Keras's numbers.

    One process writes a history at a time: `on_train_begin` takes the
    store's inter-process lock and raises `HistoryLockedError` (a
    `RuntimeError`) if another process is writing the same path;
    `on_train_end` releases it.

    Handed to a search engine: KerasTuner deep-copies the callbacks of each
    trial (and each execution). A copy writes its own history,
    `copy_path(filepath, n)` (`run.000.h5`, `run.001.h5`, ...: the first
    number that no copy of this recorder has taken and, unless `overwrite`,
    that holds no history on disk), so trials of different architectures
    never meet in one file; `trial_paths` lists them in the order the trials
    started (shared by the recorder and all its copies) and
    `delete_trial_histories()` removes them.

    The validation set must be the one `fit` validates on, or the proxy and
    Keras's `val_accuracy` describe different data: pass the `validation_data`
    given to `fit`, or, when `fit` gets `validation_split`, the same
    `validation_split` here together with the full `(x, y)` given to `fit`
    (the recorder then splits it as Keras does: `split_like_keras`). If the
    recorded classifier's accuracy on the recorder's validation set differs
    from the `val_accuracy` Keras logs, a warning says so.

    Args:
        filepath: index file of the history (e.g. `"run.h5"`); epoch files go
            to `filepath + ".epochs/"`.
        train_data: `(x, y)` numpy arrays of the training set (with
            `validation_split`: the arrays given to `fit`, validation rows
            included).
        validation_data: `(x, y)` numpy arrays of the validation set, the
            ones given to `fit(validation_data=...)`.
        layer: name of the layer to record; default the input of the final
            Dense classifier.
        train_samples: number of training rows recorded each epoch (the same
            rows every epoch), a float in (0, 1] for a fraction, or None
            (default) for all of them, as the thesis does (A.3: 40,000 and
            8,000 rows). Each epoch stores rows x embedding width x 4 bytes
            (2 with `dtype="float16"`) on disk, and `keep_in_memory` epochs
            of it in RAM; a subsample of a few thousand rows is enough for
            the proxy when that is too much.
        dtype: `"float32"` or `"float16"` for stored embeddings.
        chunk_rows: HDF5 chunk height of embedding arrays.
        compression: `None` or an h5py filter (`"gzip"`, `"lzf"`).
        batch_size: batch size of the extra forward passes.
        every: record epochs `e` with `(e + 1) % every == 0` (a
            `ProxyAccuracy` due at another epoch records that one too).
        on_error: what a write error (disk full, permission) does:
            `"continue"` warns and keeps training, `"stop"` warns and stops
            training. Earlier epochs are never touched.
        log_val_metrics: if True and `logs` has no `val_accuracy` (fit got
            no `validation_data`), write `val_accuracy` computed from the
            recorded embeddings and classifier, saving Keras's own
            validation pass.
        overwrite: start a new history even if one exists at `filepath`.
        keep_in_memory: number of recent epochs kept in RAM for
            `ProxyAccuracy` (avoids re-reading the file).
        seed: seed of the training subsample.
        validation_split: the `validation_split` given to `fit`, instead of
            `validation_data`.
        file_per_copy: a deep copy (a search engine's trial) writes its own
            history (see above). False: copies write `filepath` too (for
            engines that make one recorder, with its own path, per trial).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_autolr.runtime.feature_history import FeatureHistory

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 4)).astype("float32"), rng.integers(0, 3, 96)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    recorder = FeatureHistory("run.h5", (x[:64], y[:64]), (x[64:], y[64:]))
    model.fit(x[:64], y[:64], epochs=3, verbose=0, callbacks=[recorder])
    print(recorder.store.epochs(), recorder.store.read_epoch(2)["val_embeddings"].shape)  # [0, 1, 2] (32, 8)
    ```
    """

    def __init__(self, filepath, train_data, validation_data=None, layer=None,
                 train_samples=None, dtype="float32", chunk_rows=1024,
                 compression=None, batch_size=1024, every=1,
                 on_error="continue", log_val_metrics=False, overwrite=False,
                 keep_in_memory=10, seed=0, validation_split=None,
                 file_per_copy=True):
        super().__init__()
        if (validation_data is None) == (validation_split is None):
            raise ValueError(
                "FeatureHistory needs the validation set fit validates on: "
                "validation_data=(x_val, y_val), the arrays given to "
                "fit(validation_data=...), or validation_split=<the fraction "
                "given to fit(validation_split=...)> with train_data=(x, y) as "
                "given to fit" + ("" if validation_data is None else ", not both") + ".")
        if validation_split is not None:
            if not (isinstance(train_data, (tuple, list)) and len(train_data) == 2):
                raise TypeError("train_data must be a tuple (x, y) of numpy arrays.")
            train_data, validation_data = split_like_keras(train_data, validation_split)
        if on_error not in ("continue", "stop"):
            raise ValueError(
                f"on_error must be 'continue' or 'stop', got {on_error!r}.")
        if dtype not in ("float32", "float16"):
            raise ValueError(
                f"dtype must be 'float32' or 'float16', got {dtype!r}.")
        for name, data in (("train_data", train_data),
                           ("validation_data", validation_data)):
            if not (isinstance(data, (tuple, list)) and len(data) == 2):
                raise TypeError(
                    f"{name} must be a tuple (x, y) of numpy arrays, got "
                    f"{type(data).__name__}. Convert a tf.data pipeline "
                    "with numpy first (a subsample is enough).")
            if len(data[0]) != len(data[1]):
                raise ValueError(f"{name}: x has {len(data[0])} rows, y has "
                                 f"{len(data[1])}.")
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        self.filepath = str(filepath)
        self.train_data = train_data
        self.validation_data = validation_data
        self.layer = layer
        self.train_samples = train_samples
        self.dtype = dtype
        self.chunk_rows = int(chunk_rows)
        self.compression = compression
        self.batch_size = int(batch_size)
        self.every = int(every)
        self.on_error = on_error
        self.log_val_metrics = bool(log_val_metrics)
        self.overwrite = bool(overwrite)
        self.keep_in_memory = int(keep_in_memory)
        self.seed = int(seed)
        self.validation_split = validation_split
        self.file_per_copy = bool(file_per_copy)
        self.trial_paths = []
        self._template = self.filepath
        self._needs_own_file = False
        self._warned_val_mismatch = False
        self.store = None
        self.failed_epochs = []
        self.recent = collections.deque(maxlen=max(1, self.keep_in_memory))
        self.last_recorded_epoch = None
        self.epoch_offset = 0
        self._fits = 0

    def __deepcopy__(self, memo):
        # Search engines deep-copy callbacks per trial; the (read-only) data
        # arrays are shared instead of copied. The copy opens its own store
        # (a store holds this process's lock on the file).
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        # trial_paths is shared so that the original lists every copy's file.
        shared = ("train_data", "validation_data", "_x_all", "trial_paths")
        for key, value in self.__dict__.items():
            if key == "store":
                new.__dict__[key] = None
            else:
                new.__dict__[key] = value if key in shared else copy.deepcopy(value, memo)
        if self.file_per_copy:
            new._needs_own_file = True
            new._fits = 0
        return new

    def _open_own_file(self, fingerprint, metadata, **store_kwargs):
        """Opens the first free `copy_path(template, n)` (see the class docstring)."""
        metadata = dict(metadata, copy_of=self._template)
        for n in itertools.count():
            path = copy_path(self._template, n)
            if path in self.trial_paths:
                continue
            if not self.overwrite and (os.path.exists(path) or os.path.isdir(epoch_dir(path))):
                continue
            try:
                store = HistoryStore(path, fingerprint=fingerprint, metadata=dict(metadata, copy=n),
                                     overwrite=self.overwrite, **store_kwargs)
            except (HistoryLockedError, HistoryMismatchError):
                continue  # another process took it meanwhile
            if store.epochs() and not self.overwrite:
                store.close()  # written by another process meanwhile
                continue
            self.filepath = path
            self.trial_paths.append(path)
            return store

    def delete_trial_histories(self):
        """Deletes the histories the copies of this recorder wrote (`trial_paths`); returns their paths.

        Call it once the search no longer needs them (the proxy estimates
        already logged keep their values).
        """
        deleted = []
        while self.trial_paths:
            path = self.trial_paths.pop(0)
            shutil.rmtree(epoch_dir(path), ignore_errors=True)
            for name in (path, os.path.abspath(path) + ".lock"):
                if os.path.exists(name):
                    os.remove(name)
            deleted.append(path)
        return deleted

    # -- setup -------------------------------------------------------------
    def _subsample(self, n):
        count = self.train_samples
        if count is None:
            return np.arange(n)
        if isinstance(count, float):
            if not 0 < count <= 1:
                raise ValueError(
                    f"train_samples as a fraction must be in (0, 1], got "
                    f"{count}.")
            count = int(round(count * n))
        count = int(min(max(int(count), 1), n))
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(n, size=count, replace=False))

    def on_train_begin(self, logs=None):
        self.extractor, self.classifier, self.layer_name = (
            build_feature_extractor(self.model, self.layer))
        fingerprint = model_fingerprint(self.model, self.layer)
        metadata = {
            "model_name": self.model.name,
            "layer": self.layer_name,
            "dtype": self.dtype,
            "fingerprint": fingerprint,
            "keras_version": keras.__version__,
            "backend": keras.backend.backend(),
            "classifier": self.classifier.name if self.classifier else "",
        }
        if self.store is not None:
            self.store.close()  # left open by a fit that raised
            self.store = None
        store_kwargs = dict(dtype=self.dtype, chunk_rows=self.chunk_rows,
                            compression=self.compression)
        if self._needs_own_file:
            self.store = self._open_own_file(fingerprint, metadata, **store_kwargs)
            self._needs_own_file = False
        else:
            # Raises HistoryLockedError (another process writes the file) or
            # HistoryMismatchError (a file from another model).
            self.store = HistoryStore(
                self.filepath, fingerprint=fingerprint, metadata=metadata,
                overwrite=self.overwrite, **store_kwargs)
        # A second fit() on the same callback continues the same file.
        self.overwrite = False
        self._fits += 1
        x_tr, y_tr = self.train_data
        x_val, y_val = self.validation_data
        idx = self._subsample(len(x_tr))
        self._n_train = len(idx)
        self._y_train = _labels(np.asarray(y_tr)[idx])
        self._y_val = _labels(y_val)
        # One fused forward pass over [train subsample; validation].
        self._x_all = np.concatenate(
            [np.asarray(x_tr)[idx], np.asarray(x_val)], axis=0)
        self._first_epoch_seen = False
        self.recent.clear()

    def on_epoch_begin(self, epoch, logs=None):
        if not self._first_epoch_seen:
            self._first_epoch_seen = True
            if self._fits == 1:
                # Resuming at `initial_epoch`: later epochs of an abandoned
                # run are stale.
                self.epoch_offset = 0
                self.store.drop_epochs_from(epoch)
                # The kept epochs are the estimate's recent past, as in an uninterrupted run.
                for kept in self.store.epochs()[-self.recent.maxlen:]:
                    self.recent.append({"epoch": int(kept), **self.store.read_epoch(kept)})
            else:
                recorded = self.store.epochs()
                self.epoch_offset = max(0, (recorded[-1] + 1 if recorded else 0) - epoch)

    def on_train_end(self, logs=None):
        if self.store is not None:
            self.store.close()  # another process may write the file now

    # -- per epoch ---------------------------------------------------------
    def _embed(self):
        parts = []
        for start in range(0, len(self._x_all), self.batch_size):
            out = self.extractor.predict_on_batch(
                self._x_all[start:start + self.batch_size])
            parts.append(keras.ops.convert_to_numpy(out))
        h = np.concatenate(parts, axis=0)
        return h.reshape(len(h), -1)

    def record(self, epoch, logs=None):
        """Records Keras's `epoch` of this fit now (idempotent); returns the in-memory record.

        It is stored as epoch `epoch + epoch_offset` (see the class docstring).
        """
        epoch = int(epoch) + self.epoch_offset
        if self.last_recorded_epoch == epoch and self.recent:
            return self.recent[-1]
        h = self._embed()
        record = {
            "epoch": int(epoch),
            "train_embeddings": h[:self._n_train],
            "train_labels": self._y_train,
            "val_embeddings": h[self._n_train:],
            "val_labels": self._y_val,
        }
        if self.classifier is not None:
            record["kernel"] = keras.ops.convert_to_numpy(
                self.classifier.kernel).astype(np.float32)
            record["bias"] = (keras.ops.convert_to_numpy(
                self.classifier.bias).astype(np.float32)
                if self.classifier.bias is not None else None)
        attrs = {}
        for key, value in (logs or {}).items():
            if isinstance(value, (int, float, np.floating, np.integer)):
                attrs[f"logs/{key}"] = float(value)
        try:
            self.store.write_epoch(epoch, {k: v for k, v in record.items()
                                           if k != "epoch"}, attrs=attrs)
        except (OSError, RuntimeError, ValueError) as e:
            self.failed_epochs.append(int(epoch))
            action = ("stopping training" if self.on_error == "stop"
                      else "training continues")
            warnings.warn(
                f"FeatureHistory could not write epoch {epoch} to "
                f"{self.filepath!r} ({type(e).__name__}: {e}); {action}. "
                f"Earlier epochs are intact.", stacklevel=2)
            if self.on_error == "stop":
                self.model.stop_training = True
        # The estimate may still use the epoch from memory.
        self.recent.append(record)
        self.last_recorded_epoch = epoch
        return record

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + self.epoch_offset + 1) % self.every:
            return
        record = self.record(epoch, logs)
        if "kernel" not in record or logs is None:
            return
        own = _classifier_accuracy(record)
        if "val_accuracy" in logs and np.shape(record["kernel"])[-1] > 1:
            self._check_same_validation_set(float(logs["val_accuracy"]), own)
        elif self.log_val_metrics:
            logs["val_accuracy"] = own

    def _check_same_validation_set(self, keras_accuracy, own):
        # Same weights, same rows: the two agree up to rounding at argmax ties.
        tolerance = 0.01 + 2.0 / max(len(self._y_val), 1)
        if self._warned_val_mismatch or abs(keras_accuracy - own) <= tolerance:
            return
        self._warned_val_mismatch = True
        warnings.warn(
            f"Keras's val_accuracy ({keras_accuracy:.4f}) differs from the recorded classifier's "
            f"accuracy on FeatureHistory's validation set ({own:.4f}): the proxy is estimated on "
            "other data than fit validates on. Give FeatureHistory the validation_data passed to "
            "fit, or, with fit(validation_split=v), FeatureHistory(path, (x, y), "
            "validation_split=v) with the same x, y.", stacklevel=2)

    def get_config(self):
        return {
            "filepath": self._template, "layer": self.layer,
            "train_samples": self.train_samples, "dtype": self.dtype,
            "chunk_rows": self.chunk_rows, "compression": self.compression,
            "batch_size": self.batch_size, "every": self.every,
            "on_error": self.on_error,
            "log_val_metrics": self.log_val_metrics,
            "overwrite": self.overwrite,
            "keep_in_memory": self.keep_in_memory, "seed": self.seed,
            "validation_split": self.validation_split,
            "file_per_copy": self.file_per_copy,
        }
