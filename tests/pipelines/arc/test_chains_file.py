"""The chains file's writer: never edited in place, every finished chain kept (SIGKILL: tests/test_faults.py)."""

import os
import tempfile

import h5py
import numpy as np
import pytest

from keras_autolr.pipelines.arc import chains_file, generate
from keras_autolr.pipelines.arc.chains_file import ChainsWriter, iter_chains, pending_dir


def _rec(v, decisions=2):
    return {"train_loss": np.full(6, float(v)), "val_loss": np.ones(3), "lr": np.ones(3),
            "branch_val": np.ones((decisions, 3)), "chosen": np.ones(decisions, int), "task": "toy",
            "optimizer": "adam", "n": 1, "steps_per_epoch": 2}


def _names(path):
    with iter_chains(path) as chains:
        return [name for name, _ in chains]


def test_chains_are_pending_until_the_fold_and_readers_see_them(tmp_path):
    out = str(tmp_path / "c.h5")
    with ChainsWriter(out) as w:
        w.write(0, _rec(0), 0)
        w.write(1, _rec(1, 3), 0)
        assert sorted(os.listdir(pending_dir(out))) == ["chain_000000.h5", "chain_000001.h5"]
        with h5py.File(out, "r") as f:
            assert list(f) == []  # created empty on opening, filled by the fold
        assert _names(out) == ["chain_000000", "chain_000001"] and w.samples() == 5 and 1 in w and 2 not in w
    assert not os.path.exists(pending_dir(out))
    with h5py.File(out, "r") as f:
        assert sorted(f) == ["chain_000000", "chain_000001"]
        assert f["chain_000001"].attrs["complete"] and (f["chain_000001/train_loss"][()] == 1).all()


def test_fold_seconds_zero_folds_after_every_chain(tmp_path):
    out = str(tmp_path / "c.h5")
    with ChainsWriter(out, fold_seconds=0) as w:
        w.write(0, _rec(0), 0)
        assert not os.path.exists(pending_dir(out))
        with h5py.File(out, "r") as f:
            assert list(f) == ["chain_000000"]


def test_a_killed_fold_leaves_duplicates_and_temporaries_that_the_next_writer_clears(tmp_path):
    out = str(tmp_path / "c.h5")
    with ChainsWriter(out) as w:
        w.write(0, _rec(0), 0)
    # What a kill after the rename but before the deletes leaves, plus a fold's and a chain's temporaries.
    with ChainsWriter(out) as w:
        w.write(1, _rec(1), 0)
        w.fold()
    with ChainsWriter(out, fold_seconds=1e9) as w:
        w.write(0, _rec(7), 0)  # chain 0 again, pending, with other values
    os.makedirs(pending_dir(out), exist_ok=True)
    fold_tmp = tempfile.mkstemp(dir=tmp_path, prefix=".c.h5.", suffix=".tmp")[1]  # atomic_path's names
    tempfile.mkstemp(dir=pending_dir(out), prefix=".chain_000002.h5.", suffix=".tmp")
    with ChainsWriter(out, fold_seconds=1e9) as w:
        w.write(0, _rec(9), 0)
        assert len(w) == 2 and not os.path.exists(fold_tmp)
        with iter_chains(out) as chains:  # the pending chain replaces the folded one of its name
            assert float(dict(chains)["chain_000000"]["train_loss"][0]) == 9.0
    assert sorted(os.listdir(tmp_path)) == ["c.h5", "c.h5.lock"]
    with h5py.File(out, "r") as f:
        assert sorted(f) == ["chain_000000", "chain_000001"] and float(f["chain_000000/train_loss"][0]) == 9.0


def test_an_old_files_unfinished_group_is_dropped_at_the_first_fold(tmp_path):
    # Files written before this writer were edited in place: a crash there left groups without `complete`.
    out = str(tmp_path / "c.h5")
    with h5py.File(out, "w") as f:
        f.create_group("chain_000000").attrs["complete"] = True
        f["chain_000000/chosen"] = [1, 1]
        f.create_group("chain_000001")
    assert _names(out) == ["chain_000000"]
    with ChainsWriter(out) as w:
        assert len(w) == 1 and w.samples() == 2 and 1 not in w
    with h5py.File(out, "r") as f:
        assert list(f) == ["chain_000000"]


def test_merge_takes_a_shards_pending_chains_and_keeps_the_targets_own(tmp_path):
    a, b, out = (str(tmp_path / n) for n in ("a.h5", "b.h5", "out.h5"))
    with ChainsWriter(a) as w:
        w.write(0, _rec(0), 0)
    with ChainsWriter(b, fold_seconds=1e9) as w:
        w.write(1, _rec(1), 0)
    os.makedirs(pending_dir(b), exist_ok=True)  # a killed shard: chain 3 only pending
    with h5py.File(os.path.join(pending_dir(b), "chain_000003.h5"), "w") as f:
        chains_file._fill_group(f.create_group("chain_000003"), 3, _rec(3), 0)
    with ChainsWriter(out) as w:
        w.write(0, _rec(5), 0)
    assert generate.merge([a, b, out], out) == 3
    with h5py.File(out, "r") as f:
        assert sorted(f) == ["chain_000000", "chain_000001", "chain_000003"]
        assert float(f["chain_000000/train_loss"][0]) == 5.0  # out's own chain 0 kept


def test_a_second_writer_is_refused(tmp_path):
    out = str(tmp_path / "c.h5")
    with ChainsWriter(out):
        with pytest.raises(chains_file.io_lib.OutputLockedError, match="Another process is writing"):
            ChainsWriter(out).__enter__()


def test_a_missing_file_is_an_error_not_an_empty_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="No chains file .*typo.h5.*arc generate --out"):
        with iter_chains(str(tmp_path / "typo.h5")):
            pass
    with pytest.raises(FileNotFoundError):  # a mistyped shard is not merged as nothing
        generate.merge([str(tmp_path / "typo.h5")], str(tmp_path / "out.h5"))


def test_a_pending_file_that_cannot_be_read_is_skipped_and_kept(tmp_path):
    out = str(tmp_path / "c.h5")
    os.makedirs(pending_dir(out))
    foreign = os.path.join(pending_dir(out), "chain_999999.h5")
    with open(foreign, "wb") as f:
        f.write(b"not hdf5")
    with ChainsWriter(out) as w:
        w.write(0, _rec(0), 0)
    assert _names(out) == ["chain_000000"] and os.path.exists(foreign)  # never deleted unread


def test_readers_open_the_pending_files_before_the_file(tmp_path, monkeypatch):
    # A writer deletes a pending file only after renaming in a file that holds its chain: a reader that
    # opens the pending files first and the file second misses no chain folded in between.
    out = str(tmp_path / "c.h5")
    with ChainsWriter(out, fold_seconds=1e9) as w:
        w.write(0, _rec(0), 0)
        opened = []
        real = h5py.File

        def recording(name, *args, **kwargs):
            opened.append(os.path.basename(os.fspath(name)))
            return real(name, *args, **kwargs)

        monkeypatch.setattr(chains_file.h5py, "File", recording)
        assert _names(out) == ["chain_000000"]
        assert opened == ["chain_000000.h5", "c.h5"]


def test_an_error_in_the_block_is_not_masked_by_a_failing_fold(tmp_path, monkeypatch):
    out = str(tmp_path / "c.h5")
    with pytest.raises(KeyError, match="the block's"), pytest.warns(RuntimeWarning, match="were not folded"):
        with ChainsWriter(out, fold_seconds=1e9) as w:
            w.write(0, _rec(0), 0)
            monkeypatch.setattr(ChainsWriter, "_check_space",
                                lambda self, pending: (_ for _ in ()).throw(OSError(28, "full")))
            raise KeyError("the block's")
    monkeypatch.undo()
    assert _names(out) == ["chain_000000"]  # pending, safe
    with ChainsWriter(out):
        pass
    assert not os.path.exists(pending_dir(out))
