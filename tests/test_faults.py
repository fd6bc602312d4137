"""Fault injection on every file writer: SIGKILL, disk full, concurrent writers, corrupt files.

Each writer must leave every completed item readable, resume after a kill,
keep its previous file on a full disk (no temporary left behind, an error
that says the disk is full), stop a second writer with a clear error and
name a damaged file with what to do. Kills land at seeded random moments of
a tight write loop; every kill test reports its counts as `kills survived`
and `items lost` (always 0) in its assertion messages.

| writer | SIGKILL | disk full | concurrent writers | corrupt file |
|---|---|---|---|---|
| `runtime.io` atomic JSON / text / npz (run records, leaderboard cells, CLI tables, dataset caches) | `test_io_writes_survive_sigkill` (3 kinds x 4 kills: 12 survived, 0 lost) | `test_io_disk_full_keeps_old_file` (real tmpfs, 3 kinds) | `test_exclusive_lock_refuses_second_process_and_frees_on_kill` | n/a: write-only helpers; their readers are below |
| feature history (`runtime/feature_history/store.py`, `recorder.py`) | `tests/runtime/feature_history/test_store.py::test_killed_writer_leaves_readable_history` (2 kills), `test_recorder.py::test_killed_mid_epoch_write_keeps_completed_epochs` (1) | `test_store.py::test_failed_write_leaves_earlier_epochs_intact` (injected ENOSPC), `test_feature_history_disk_full` (real tmpfs) | `test_store.py::test_second_writer_in_another_process_is_refused`, `test_recorder.py::test_second_process_is_refused_at_train_begin` | `test_store.py::test_unreadable_index_is_rebuilt_from_epoch_files`, `test_not_a_history_is_refused` |
| run records (`harness/runner.py` `run_cached`; the leaderboard's `_run_cell` calls it) | the record is one `runtime.io` write (row 1); a killed run leaves no record and its lock is freed (`test_exclusive_lock_...`), so the rerun runs it | `test_run_cached_disk_full` | `test_run_cached_second_process_gets_clear_error` | `test_run_cached_corrupt_record_says_delete_it` (4 kinds) |
| ARC chains (`pipelines/arc/generate.py` `generate`, `merge`) | `test_arc_generate_survives_sigkill` (20 kills survived, 0 chains lost, resume completes all 120) | `test_arc_generate_disk_full`, `test_arc_generate_disk_full_in_the_fold_keeps_the_file_and_the_pending_chain` | `test_arc_generate_second_process_gets_clear_error` (generate and merge), `test_arc_generate_extends_a_file_another_program_is_reading`, `test_arc_generate_file_another_program_writes_gets_clear_error` | `test_arc_generate_corrupt_file_says_what_to_do` (garbage, truncated) |
| MLR-SNet meta-training (`pipelines/mlrsnet/meta_train.py`: net `.keras`, `resume.npz`, `history.json`) | `test_meta_train_survives_sigkill` (3 kills survived, 0 epochs lost, resume completes 40), `test_meta_train_kill_between_snapshot_and_history` | `test_meta_train_corrupt_snapshot_and_lock_and_disk_full` | same test | same test (truncated, garbage) |

Not covered here: `pipelines/arc/select.py`, `pipelines/arc/train.py`,
`cli/demo.py` and `cli/mlrsnet.py` write with plain `write_text` /
`model.save` (not atomic); the CLI's other outputs go through `runtime.io`.

Disk-full tests mount a small tmpfs, so they need root (CI containers run as
root) and are skipped elsewhere.
"""

import contextlib
import errno
import json
import os
import signal
import shutil
import subprocess
import sys
import time
import uuid

import h5py
import numpy as np
import pytest

from keras_autolr.runtime import io as io_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")

# Loads runtime/io.py alone (numpy + filelock): importing the package would pull in TensorFlow.
_LOAD_IO = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("fault_io", {io_lib.__file__!r})
io = importlib.util.module_from_spec(spec); spec.loader.exec_module(io)
"""


def _leftovers(folder):
    return sorted(n for n in os.listdir(folder) if ".tmp" in n)


# -- helpers: a lock holder in another process, a small tmpfs --------------------------------------
@contextlib.contextmanager
def _held_elsewhere(lock_path):
    """Another process holding `io.exclusive_lock(lock_path)` for the block."""
    code = _LOAD_IO + f"""
with io.exclusive_lock({os.fspath(lock_path)!r}, "x"):
    print("held", flush=True)
    sys.stdin.read()
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _tmpfs(tmp_path):
    """`(folder, set_free)` on a tmpfs (`set_free(n)` leaves about n bytes free), or None without root."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        yield None
        return

    def set_free(n):
        used = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
        size = (used + n) // 4096 * 4096 + 4096 * (1 + len(list(os.walk(folder))))  # pages, plus inodes' own
        subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)

    try:
        yield folder, set_free
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    """`_tmpfs`, skipping the test where no tmpfs can be mounted."""
    with _tmpfs(tmp_path) as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs needs root")
        yield disk


def _assert_disk_full(err, path):
    assert err.value.errno == errno.ENOSPC
    assert "No space left" in str(err.value) and os.path.basename(os.fspath(path)) in str(err.value)


# -- runtime.io -----------------------------------------------------------------------------------
_IO_WRITER = _LOAD_IO + """
import numpy as np
kind, path = sys.argv[1], sys.argv[2]
for v in range(10**9):
    if kind == "json":
        io.atomic_write_json(path, {"v": v, "data": [v] * 200000})
    elif kind == "text":
        io.atomic_write_text(path, f"{v}\\n" * 200000)
    else:
        io.atomic_save_npz(path, v=np.full(400000, v))
    print(v, flush=True)
"""


def _read_version(kind, path):
    """The single version a file holds (a torn or mixed file fails here)."""
    if kind == "json":
        doc = json.loads(open(path).read())
        assert set(doc["data"]) == {doc["v"]} and len(doc["data"]) == 200000
        return doc["v"]
    if kind == "text":
        lines = open(path).read().splitlines()
        assert len(lines) == 200000 and len(set(lines)) == 1
        return int(lines[0])
    with np.load(path) as f:
        v = f["v"]
    assert v.shape == (400000,) and (v == v[0]).all()
    return int(v[0])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["json", "text", "npz"])
def test_io_writes_survive_sigkill(tmp_path, kind):
    rng = np.random.default_rng(15)
    path = tmp_path / f"out.{kind}"
    kills, lost = 0, 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _IO_WRITER, kind, str(path)], stdout=subprocess.PIPE, text=True)
        done = int(proc.stdout.readline())  # one version is complete
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read().split()
        proc.wait()
        done = int(rest[-1]) if rest else done
        kills += 1
        got = _read_version(kind, path)
        lost += got < done  # the newest version reported complete must be there (or a newer one)
    assert not _leftovers(tmp_path) or all(n.startswith(".out.") for n in _leftovers(tmp_path))
    assert lost == 0, f"kills survived {kills}, items lost {lost}"


def test_io_disk_full_keeps_old_file(small_disk):
    folder, set_free = small_disk
    for name, write, read in [
        ("r.json", lambda p, v: io_lib.atomic_write_json(p, {"v": v, "pad": "x" * 200000}), lambda p: json.load(open(p))["v"]),
        ("t.txt", lambda p, v: io_lib.atomic_write_text(p, f"{v}" * 200000), lambda p: open(p).read()[0]),
        ("a.npz", lambda p, v: io_lib.atomic_save_npz(p, v=np.full(50000, v)), lambda p: int(np.load(p)["v"][0])),
    ]:
        path = folder / name
        set_free(2 << 20)
        write(path, 1)
        set_free(50000)  # less than a second copy needs
        with pytest.raises(OSError) as err:
            write(path, 2)
        _assert_disk_full(err, path)
        assert "free some disk space" in str(err.value)
        assert str(read(path)) == "1" and _leftovers(folder) == []


def test_exclusive_lock_refuses_second_process_and_frees_on_kill(tmp_path):
    lock = tmp_path / "out.json.lock"
    with _held_elsewhere(lock) as holder:
        with pytest.raises(io_lib.OutputLockedError, match="Another process is writing 'out.json'"):
            with io_lib.exclusive_lock(lock, "out.json"):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with io_lib.exclusive_lock(lock, "out.json"):  # a killed holder never blocks the resume
        pass
    # Callers that turn a run's ValueError / RuntimeError / KeyError into a record (the leaderboard's
    # `_run_cell`) must let this one through rather than overwrite the other process's record.
    assert issubclass(io_lib.OutputLockedError, OSError)
    assert not issubclass(io_lib.OutputLockedError, (ValueError, RuntimeError, KeyError))


# -- feature history (kill, lock and corrupt tests live in tests/runtime/feature_history) ------------
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # h5py's close on a full disk
def test_feature_history_disk_full(small_disk):
    from keras_autolr.runtime.feature_history.store import HistoryStore

    folder, set_free = small_disk
    rng = np.random.default_rng(0)
    arrays = {"val_embeddings": rng.normal(size=(200, 64)).astype("float32"), "val_labels": np.zeros(200, "int32"),
              "train_embeddings": rng.normal(size=(400, 64)).astype("float32"), "train_labels": np.zeros(400, "int32"),
              "kernel": np.ones((64, 4), "float32"), "bias": np.zeros(4, "float32")}
    path = folder / "h.h5"
    store = HistoryStore(path, fingerprint="fp")
    store.write_epoch(0, arrays)
    set_free(20000)
    with pytest.raises(OSError, match="No space left"):
        store.write_epoch(1, arrays)
    store.close()
    assert HistoryStore(path).epochs() == [0]
    assert not [n for d, _, fs in os.walk(folder) for n in fs if n.endswith(".tmp")]


# -- run records (harness/runner.py run_cached) -------------------------------------------------------
@pytest.fixture
def fake_runs(monkeypatch):
    """`run_one` replaced by an instant fake; returns the list of its calls."""
    from keras_autolr.harness import runner

    calls = []

    def run_one(task, method, initial_lr, seed=0, **kwargs):
        calls.append((task, method))
        return {"task": task, "method": method, "pad": "x" * 100000}

    monkeypatch.setattr(runner, "run_one", run_one)
    return runner, calls


@pytest.mark.parametrize("content", [b'{"task": "digits_cnn", "hist', b"\x00\xff garbage", b"[1, 2]", b""])
def test_run_cached_corrupt_record_says_delete_it(tmp_path, fake_runs, content):
    runner, calls = fake_runs
    path = tmp_path / "runs" / "a.json"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"run record '.*a\.json' is unreadable .*Delete it to rerun"):
        runner.run_cached(path, "t", "constant", 0.1)
    assert calls == []
    path.unlink()  # what the message says to do
    assert runner.run_cached(path, "t", "constant", 0.1)[1] is True


def test_run_cached_second_process_gets_clear_error(tmp_path, fake_runs):
    runner, calls = fake_runs
    path = tmp_path / "runs" / "a.json"
    with _held_elsewhere(f"{path}.lock"):
        with pytest.raises(io_lib.OutputLockedError, match=r"Another process is writing '.*a\.json'"):
            runner.run_cached(path, "t", "constant", 0.1)
    assert calls == [] and not path.exists()
    rec, ran = runner.run_cached(path, "t", "constant", 0.1)  # once the other one is gone
    assert ran and runner.run_cached(path, "t", "constant", 0.1) == (rec, False) and len(calls) == 1


def test_run_cached_disk_full(small_disk, fake_runs):
    runner, calls = fake_runs
    folder, set_free = small_disk
    set_free(20000)
    with pytest.raises(OSError) as err:
        runner.run_cached(folder / "a.json", "t", "constant", 0.1)
    _assert_disk_full(err, "a.json")
    assert not (folder / "a.json").exists() and _leftovers(folder) == []
    set_free(1 << 20)  # after freeing space the rerun runs it
    assert runner.run_cached(folder / "a.json", "t", "constant", 0.1)[1] and len(calls) == 2


# -- ARC chains (pipelines/arc/generate.py) ------------------------------------------------------------
_CHAIN_LEN = 20000  # 160 kB a chain: the writes and folds take long enough for kills to land in them


def _fake_chain(task, chain_id, base_seed):
    v = float(chain_id)
    return {"train_loss": np.full(_CHAIN_LEN, v), "val_loss": np.full(10, v), "lr": np.full(10, v),
            "branch_val": np.full((9, 3), v), "chosen": np.full(9, chain_id % 3), "task": task.name,
            "optimizer": "adam", "n": 1, "steps_per_epoch": 8}


def _check_chains(path):
    """Ids of the complete chains of `path` (folded or pending), each checked in full.

    Every file is opened with plain h5py: any torn one raises.
    """
    from keras_autolr.pipelines.arc.chains_file import pending_dir

    files = [path] if os.path.exists(path) else []
    if os.path.isdir(pending_dir(path)):
        files += [os.path.join(pending_dir(path), n) for n in os.listdir(pending_dir(path)) if n.endswith(".h5")]
    done = set()
    for p in files:
        with h5py.File(p, "r") as f:
            for name in f:
                g = f[name]
                assert g.attrs.get("complete", False), name  # the writer never leaves a half group
                c = int(name.split("_")[1])
                assert (g["train_loss"][()] == c).all() and g["train_loss"].shape == (_CHAIN_LEN,)
                assert g["chosen"].shape == (9,)
                done.add(c)
    return sorted(done)


def _fork_and_kill(write, wait, check, kills, seed=15):
    """Forks `write()` `kills` times, SIGKILLs it after `wait(rng, pipe)`; returns (kills survived, items lost).

    `check()` (run after each kill) reads every completed item, raising on a
    torn one, and returns their number; an item lost is one fewer than the
    kill before left. Runs in the driver subprocesses below, which fork
    before any TensorFlow op ran in them.
    """
    rng = np.random.default_rng(seed)
    survived, lost, before = 0, 0, 0
    for _ in range(kills):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            write(lambda: os.write(w, b"."))
            os._exit(0)
        os.close(w)
        wait(rng, r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        done = check()
        survived += 1
        lost += max(0, before - done)
        before = done
    return survived, lost, before


def _run_driver(code, *args):
    proc = subprocess.run([sys.executable, "-c", "from tests import test_faults as t\n" + code, *map(str, args)],
                          env=ENV, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print("fault report:", {k: v for k, v in report.items() if k not in ("chains", "epochs")})  # shown by -s
    assert report["lost"] == 0 and report["kills"] == args[-1], \
        f"kills survived {report['kills']}, items lost {report['lost']}"
    return report


_ARC_KILLER = """
import json, os, sys, time
from keras_autolr.pipelines.arc import chains_file, generate as g
g.run_chain = t._fake_chain
out, chains = sys.argv[1], 120
chains_file.FOLD_SECONDS = 0  # a fold after every chain: the kills land in folds as well as in chain writes

def wait(rng, pipe):  # 2-4 chains, then a kill at a random point of the next one (its length: the last one's)
    times = [time.perf_counter() for _ in range(int(rng.integers(2, 5))) if os.read(pipe, 1)]
    time.sleep(rng.uniform(0.0, times[-1] - times[-2]))

kills, lost, left = t._fork_and_kill(lambda tick: g.generate(out, chains, tasks=["digits_mlp"], log=lambda s: tick()),
                                     wait, lambda: len(t._check_chains(out)), int(sys.argv[2]))
chains_file.FOLD_SECONDS = 300
n = g.generate(out, chains, tasks=["digits_mlp"], log=lambda s: None)  # the resume completes the rest
print(json.dumps({"kills": kills, "lost": lost, "after_kills": left, "chains": sorted(t._check_chains(out)),
                  "samples": n, "leftovers": [p for p in os.listdir(os.path.dirname(out)) if ".tmp" in p or ".pending" in p]}))
"""


@pytest.mark.slow
def test_arc_generate_survives_sigkill(tmp_path):
    report = _run_driver(_ARC_KILLER, tmp_path / "arc.h5", 20)
    assert 0 < report["after_kills"] < 120, report  # the kills landed while chains were being written
    assert report["chains"] == list(range(120)) and report["samples"] == 120 * 9 and report["leftovers"] == []


@pytest.fixture
def fake_generate(monkeypatch):
    from keras_autolr.pipelines.arc import generate as g

    monkeypatch.setattr(g, "run_chain", _fake_chain)
    return g


def test_arc_generate_second_process_gets_clear_error(tmp_path, fake_generate):
    out = tmp_path / "arc.h5"
    with _held_elsewhere(f"{out}.lock"):
        with pytest.raises(io_lib.OutputLockedError, match=r"Another process is writing '.*arc\.h5'"):
            fake_generate.generate(out, 2, tasks=["digits_mlp"], log=lambda s: None)
        with pytest.raises(io_lib.OutputLockedError):
            fake_generate.merge([], out)
    assert fake_generate.generate(out, 2, tasks=["digits_mlp"], log=lambda s: None) == 18


def test_arc_generate_extends_a_file_another_program_is_reading(tmp_path, fake_generate):
    # The file is replaced, never edited: a reader that has it open keeps an intact old version.
    out = tmp_path / "arc.h5"
    fake_generate.generate(out, 1, tasks=["digits_mlp"], log=lambda s: None)
    code = (f"import h5py, sys\nf = h5py.File({str(out)!r}, 'r')\nprint('open', flush=True)\nsys.stdin.readline()\n"
            "print(sorted(f), float(f['chain_000000/train_loss'][-1]), flush=True)")
    reader = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        assert fake_generate.generate(out, 2, tasks=["digits_mlp"], log=lambda s: None) == 18
        reader.stdin.write("go\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "['chain_000000'] 0.0"
    finally:
        reader.kill()
        reader.wait()
    assert _check_chains(out) == [0, 1]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_arc_generate_corrupt_file_says_what_to_do(tmp_path, fake_generate, damage):
    out = tmp_path / "arc.h5"
    fake_generate.generate(out, 2, tasks=["digits_mlp"], log=lambda s: None)
    data = out.read_bytes()
    out.write_bytes(b"not hdf5 " * 100 if damage == "garbage" else data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"'.*arc\.h5' is not a readable HDF5 chains file .*delete it"):
        fake_generate.generate(out, 2, tasks=["digits_mlp"], log=lambda s: None)
    out.unlink()
    assert fake_generate.generate(out, 2, tasks=["digits_mlp"], log=lambda s: None) == 18


def test_arc_generate_disk_full(small_disk, fake_generate):
    folder, set_free = small_disk
    out = folder / "arc.h5"
    set_free(8 << 20)
    fake_generate.generate(out, 1, tasks=["digits_mlp"], log=lambda s: None)
    set_free(_CHAIN_LEN * 8 // 2)  # half a chain
    with pytest.raises(OSError) as err:
        fake_generate.generate(out, 3, tasks=["digits_mlp"], log=lambda s: None)
    assert err.value.errno == errno.ENOSPC or "No space left" in str(err.value)
    assert _check_chains(out) == [0]  # the finished chain survives
    set_free(8 << 20)
    assert fake_generate.generate(out, 3, tasks=["digits_mlp"], log=lambda s: None) == 27
    assert _check_chains(out) == [0, 1, 2]


def test_arc_generate_disk_full_in_the_fold_keeps_the_file_and_the_pending_chain(small_disk, fake_generate):
    # Room for one more chain but not for the new copy of the file: the chain stays pending, safe.
    folder, set_free = small_disk
    out = folder / "arc.h5"
    set_free(8 << 20)
    fake_generate.generate(out, 6, tasks=["digits_mlp"], log=lambda s: None)
    before = out.read_bytes()
    set_free(3 * _CHAIN_LEN * 8)
    with pytest.raises(OSError) as err:
        fake_generate.generate(out, 7, tasks=["digits_mlp"], log=lambda s: None)
    _assert_disk_full(err, "arc.h5")
    assert "safe in" in str(err.value) and out.read_bytes() == before and _leftovers(folder) == []
    assert _check_chains(out) == list(range(7))  # chain 6 pending
    set_free(8 << 20)
    assert fake_generate.generate(out, 7, tasks=["digits_mlp"], log=lambda s: None) == 63
    assert not os.path.exists(f"{out}.pending") and out.read_bytes() != before


def test_arc_generate_file_another_program_writes_gets_clear_error(tmp_path, fake_generate):
    out = tmp_path / "arc.h5"
    fake_generate.generate(out, 1, tasks=["digits_mlp"], log=lambda s: None)
    code = f"import h5py, sys\nf = h5py.File({str(out)!r}, 'a')\nprint('open', flush=True)\nsys.stdin.read()"
    writer = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        with pytest.raises(io_lib.OutputLockedError, match="Another program has .* open for writing"):
            fake_generate.generate(out, 2, tasks=["digits_mlp"], log=lambda s: None)
    finally:
        writer.kill()
        writer.wait()
    assert _check_chains(out) == [0]


# -- MLR-SNet meta-training (pipelines/mlrsnet/meta_train.py) -----------------------------------------
def _meta_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def _meta_train(ckdir, epochs, log=lambda s: None):
    import keras

    from keras_autolr.pipelines.mlrsnet.meta_train import meta_train

    x, y = _meta_data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    return meta_train(model, x, y, num_classes=2, val_size=32, t_val=2, epochs=epochs, batch_size=16,
                      checkpoint_dir=ckdir, checkpoints=list(range(1, epochs + 1)), log=log)


def _check_meta_dir(ckdir):
    """The epoch of `ckdir`'s snapshot (0: none); checks every file in it is complete and consistent."""
    import zipfile

    for p in ckdir.glob("mlrsnet_epoch*.keras"):
        with zipfile.ZipFile(p) as z:
            assert z.testzip() is None
    if not (ckdir / "resume.npz").exists():
        return 0
    with np.load(ckdir / "resume.npz") as f:
        meta = json.loads(str(f["meta"]))
        assert all(f[k].size >= 0 for k in f.files)
    assert [r["epoch"] for r in meta["history"]] == list(range(1, meta["epoch"] + 1))
    assert json.loads((ckdir / "history.json").read_text())["epoch"] in (meta["epoch"] - 1, meta["epoch"])
    return meta["epoch"]


_META_KILLER = """
import json, os, pathlib, sys, time
ck = pathlib.Path(sys.argv[1])

def wait(rng, pipe):  # 1-3 epochs, then a kill inside the next epoch's writes
    for _ in range(int(rng.integers(1, 4))):
        os.read(pipe, 1)
    time.sleep(rng.uniform(0.0, 0.15))

kills, lost, left = t._fork_and_kill(lambda tick: t._meta_train(ck, 40, log=lambda s: tick()), wait,
                                     lambda: t._check_meta_dir(ck), int(sys.argv[2]))
net, history = t._meta_train(ck, 40)
print(json.dumps({"kills": kills, "lost": lost, "after_kills": left, "epochs": [h["epoch"] for h in history],
                  "leftovers": [p.name for p in ck.iterdir() if ".tmp" in p.name]}))
"""


@pytest.mark.slow
def test_meta_train_survives_sigkill(tmp_path):
    report = _run_driver(_META_KILLER, tmp_path / "ck", 3)
    assert report["after_kills"] > 0 and report["epochs"] == list(range(1, 41)) and report["leftovers"] == []


@pytest.mark.slow
def test_meta_train_kill_between_snapshot_and_history(tmp_path, monkeypatch):
    """Dies after epoch 2's snapshot, before its history.json: the resume must start at epoch 2, not 1."""
    from keras_autolr.pipelines.mlrsnet import meta_train as mt

    ck = tmp_path / "ck"
    real = mt.io_lib.atomic_write_json

    def dies_at_epoch_2(path, obj, **kwargs):
        if obj["epoch"] == 2:
            raise KeyboardInterrupt  # stands for the kill (the files are what a SIGKILL leaves)
        real(path, obj, **kwargs)

    monkeypatch.setattr(mt.io_lib, "atomic_write_json", dies_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        _meta_train(ck, 3)
    monkeypatch.undo()
    logs = []
    _, history = _meta_train(ck, 3, log=logs.append)
    assert "resumed at epoch 2" in logs and [h["epoch"] for h in history] == [1, 2, 3]


@pytest.mark.slow
def test_meta_train_corrupt_snapshot_and_lock_and_disk_full(tmp_path):
    """One meta-training folder, three faults (a trace of the steps is the slow part, so it is shared)."""
    with _tmpfs(tmp_path) as disk:
        ck = (disk[0] if disk else tmp_path) / "ck"
        if disk:
            disk[1](8 << 20)
        _meta_train(ck, 1)
        snapshot = (ck / "resume.npz").read_bytes()
        if disk:  # disk full: the next epoch's files do not fit; epoch 1's stay, no temporary is left
            disk[1](len(snapshot) // 2)
            with pytest.raises(OSError) as err:
                _meta_train(ck, 2)
            assert err.value.errno == errno.ENOSPC and "No space left" in str(err.value)
            assert _check_meta_dir(ck) == 1 and _leftovers(ck) == []
            disk[1](8 << 20)
        _meta_train_lock_and_corrupt(ck, snapshot)


def _meta_train_lock_and_corrupt(ck, snapshot):
    """A second process on the folder stops at once; a damaged snapshot names itself and what to do."""
    with _held_elsewhere(ck / ".lock"):
        with pytest.raises(io_lib.OutputLockedError, match="Another process is writing"):
            _meta_train(ck, 2)
    for damaged in (snapshot[: len(snapshot) // 2], b"garbage"):
        (ck / "resume.npz").write_bytes(damaged)
        with pytest.raises(ValueError, match=r"resume snapshot '.*resume\.npz' is unreadable .*Delete 'resume\.npz'"):
            _meta_train(ck, 2)
    (ck / "resume.npz").unlink()
    _, history = _meta_train(ck, 2)
    assert [h["epoch"] for h in history] == [1, 2] and _check_meta_dir(ck) == 2
