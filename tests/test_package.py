import pytest

import keras_autolr


def test_top_level_names_resolve_to_the_method_classes():
    from keras_autolr.runtime.arc import ARC
    from keras_autolr.runtime.feature_history import FeatureHistory, ProxyAccuracy
    from keras_autolr.runtime.mcv import MCVModel, MCVStopping
    from keras_autolr.runtime.mlrsnet import MLRSNetScheduler

    assert keras_autolr.ARC is ARC
    assert keras_autolr.FeatureHistory is FeatureHistory
    assert keras_autolr.ProxyAccuracy is ProxyAccuracy
    assert keras_autolr.MCVModel is MCVModel and keras_autolr.MCVStopping is MCVStopping
    assert keras_autolr.MLRSNetScheduler is MLRSNetScheduler
    for name in keras_autolr.__all__:
        assert getattr(keras_autolr, name) is not None


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        keras_autolr.NoSuchThing


def test_every_own_method_is_registered():
    from keras_autolr.harness import methods

    names = methods.names()
    for m in ("arc", "mlrsnet", "mcv"):
        assert m in names


def test_controllers_folder_from_env(tmp_path, monkeypatch):
    import shutil

    from keras_autolr.runtime import artifacts as saved
    from keras_autolr.runtime.arc import default_controller_path

    shutil.copy(saved.artifact_path("arc.keras"), tmp_path / "arc.keras")
    monkeypatch.delenv("KERAS_AUTOLR_ARC_CONTROLLER", raising=False)
    monkeypatch.setenv(saved.ENV, str(tmp_path))
    assert default_controller_path() == str(tmp_path / "arc.keras")
    with pytest.raises(FileNotFoundError, match=saved.ENV):
        saved.artifact_path("nope.keras")


def test_public_api_is_listed_and_documented_at_the_top_level():
    import inspect

    assert len(set(keras_autolr.__all__)) == len(keras_autolr.__all__)
    for name in keras_autolr.__all__:
        obj = getattr(keras_autolr, name)
        assert inspect.getdoc(obj), name
        # The public API is the runtime layer only.
        assert obj.__module__.startswith("keras_autolr.runtime."), (name, obj.__module__)


def test_saved_mcv_model_loads_in_a_fresh_process_after_import(tmp_path):
    """`keras.models.load_model` of an MCVModel needs only `import keras_autolr`."""
    import subprocess
    import sys

    import keras
    import numpy as np

    from keras_autolr.runtime.mcv import MCVModel

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = MCVModel(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]), method="method3")
    model.compile(keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "mcv.keras"
    model.save(path)
    expected = model.predict(x, verbose=0)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", expected)
    code = (
        "import sys, numpy as np, keras, keras_autolr\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        "assert type(m).__name__ == 'MCVModel', type(m)\n"
        f"p = m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)\n"
        f"np.testing.assert_array_equal(p, np.load({str(tmp_path / 'expected.npy')!r}))\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]
