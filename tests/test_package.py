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
