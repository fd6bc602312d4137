import errno
import json
import os
import stat

import numpy as np
import pytest

from keras_autolr.runtime import io

pytestmark = pytest.mark.jax  # no Keras at all


def _names(folder):
    return sorted(os.listdir(folder))


def test_each_writer_writes_its_content(tmp_path):
    io.atomic_write_bytes(tmp_path / "a.bin", b"\x00\xff")
    io.atomic_write_text(tmp_path / "b.txt", "héllo\n")
    io.atomic_write_json(tmp_path / "c.json", {"lr": 0.1, "xs": [1, 2]})
    io.atomic_save_npz(tmp_path / "d.npz", x=np.arange(4), y=np.eye(2, dtype="float32"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xff"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "c.json").read_text() == json.dumps({"lr": 0.1, "xs": [1, 2]}, indent=1)
    with np.load(tmp_path / "d.npz") as z:
        np.testing.assert_array_equal(z["x"], np.arange(4))
        np.testing.assert_array_equal(z["y"], np.eye(2, dtype="float32"))
    # no ".npz" appended, no temporaries left
    assert _names(tmp_path) == ["a.bin", "b.txt", "c.json", "d.npz"]


def test_creates_the_folder_and_replaces_an_old_file(tmp_path):
    path = tmp_path / "sub" / "deeper" / "r.json"
    io.atomic_write_json(path, [1])
    io.atomic_write_json(path, [2])
    assert json.loads(path.read_text()) == [2]
    assert _names(path.parent) == ["r.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    io.atomic_write_json(path, {"v": "old"})

    def broken_replace(src, dst):
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        io.atomic_write_json(path, {"v": "new"})
    assert json.loads(path.read_text()) == {"v": "old"}
    assert _names(tmp_path) == ["r.json"]


def test_an_error_while_filling_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    io.atomic_save_npz(path, x=np.zeros(2))

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise RuntimeError("killed half way")

    monkeypatch.setattr(io.np, "savez", broken_savez)
    with pytest.raises(RuntimeError, match="half way"):
        io.atomic_save_npz(path, x=np.ones(2))
    with np.load(path) as z:
        np.testing.assert_array_equal(z["x"], np.zeros(2))
    assert _names(tmp_path) == ["c.npz"]


def test_unencodable_json_touches_nothing(tmp_path):
    with pytest.raises(TypeError):
        io.atomic_write_json(tmp_path / "r.json", {"f": object()})
    assert _names(tmp_path) == []


def test_disk_full_names_the_destination(tmp_path, monkeypatch):
    path = tmp_path / "big.bin"

    def full_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full_fsync)
    with pytest.raises(OSError) as info:
        io.atomic_write_bytes(path, b"x" * 10)
    assert info.value.errno == errno.ENOSPC
    assert str(path) in str(info.value) and "free some disk space" in str(info.value)
    assert _names(tmp_path) == []


def test_atomic_path_for_name_based_writers(tmp_path):
    path = tmp_path / "t.csv"
    with io.atomic_path(path) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".tmp")
        with open(tmp, "w") as f:
            f.write("a,b\n")
        assert not path.exists()  # only visible once complete
    assert path.read_text() == "a,b\n"
    assert _names(tmp_path) == ["t.csv"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_new_files_get_the_umask_mode_and_old_files_keep_theirs(tmp_path):
    new = tmp_path / "new.txt"
    io.atomic_write_text(new, "x")  # mkstemp alone would give 0600
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~io._UMASK
    os.chmod(new, 0o640)
    io.atomic_write_text(new, "y")
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
