import time

import numpy as np
import pytest

from keras_autolr.harness import datasets


def test_mnist1d_offline():
    s = datasets.load("mnist1d")
    assert s.x_train.shape[1:] == (40, 1) and s.num_classes == 10
    assert len(s.x_train) + len(s.x_val) == 4000 and len(s.x_test) == 1000
    assert s.x_train.dtype == np.float32


def test_digits_subset_and_seeded_split():
    a = datasets.load("digits", n_train=100, seed=1)
    b = datasets.load("digits", n_train=100, seed=1)
    assert a.x_train.shape == (100, 8, 8, 1)
    np.testing.assert_array_equal(a.y_train, b.y_train)


def test_missing_offline_set_fails_fast_and_says_how(tmp_path):
    t = time.perf_counter()
    with pytest.raises(datasets.DatasetUnavailable, match="KERAS_AUTOLR_DATA"):
        datasets.load("cifar10", data_dir=tmp_path)
    with pytest.raises(datasets.DatasetUnavailable, match="ptb"):
        datasets.load("ptb", data_dir=tmp_path)
    assert time.perf_counter() - t < 5


def test_env_var_sets_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    assert datasets.data_dir() == tmp_path


def test_text_set_from_files(tmp_path):
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_text("to be or not to be\n" * 50)
    s = datasets.load("tiny_shakespeare", data_dir=tmp_path)
    assert s.kind == "text" and s.num_classes == len(set("to be or not to be\n"))
    x, y = datasets.lm_sequences(s.x_train, 10)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="too short"):
        datasets.lm_sequences(s.x_train[:5], 10)


def test_ptb_adds_eos(tmp_path):
    import gzip

    folder = tmp_path / "ptb"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        with gzip.open(folder / f"ptb.{split}.txt.gz", "wt") as f:
            f.write(" a b c \n b c a \n")
    s = datasets.load("ptb", data_dir=tmp_path)
    assert "<eos>" in s.vocab and len(s.x_train) == 8
    assert s.x_train[3] == s.vocab.index("<eos>")


def test_unknown_name_offline_is_clear(monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(datasets, "_online", lambda *a, **k: False)
    t = time.perf_counter()
    with pytest.raises(datasets.DatasetUnavailable):
        datasets.load("svhn_cropped")
    with pytest.raises(datasets.DatasetUnavailable, match="Unknown data set"):
        datasets.load("no_such_dataset_xyz")
    assert time.perf_counter() - t < 30


@pytest.mark.slow
def test_real_offline_sets_when_present():
    root = datasets.data_dir()
    if not (root / "cifar10" / "train.npz").exists():
        pytest.skip("offline data folder not present")
    s = datasets.load("cifar10", n_train=256, n_val=128, n_test=128)
    assert s.x_train.shape == (256, 32, 32, 3) and abs(float(s.x_train.mean())) < 0.5
    assert len(np.unique(s.y_train)) == 10  # the class-grouped archive was shuffled
    p = datasets.load("ptb")
    assert p.num_classes == 10000 and len(p.x_train) == 929589
