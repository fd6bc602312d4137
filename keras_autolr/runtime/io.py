"""Atomic file writes: a file is either its old self or completely new, never half written.

Purpose: runs, caches and checkpoints are written while jobs may be killed at
any instant (pre-emption, out of memory, Ctrl-C). Every writer here fills a
temporary file in the destination's folder (`tempfile.mkstemp`, so the rename
never crosses file systems), flushes and `os.fsync`s it, then moves it onto
the destination with `os.replace` (atomic on POSIX and Windows). On any error
the temporary file is removed and the old file, if any, is left as it was; a
full disk is reported with the destination's path. Temporary names end in
`.tmp`, so a folder can be tidied of leftovers from a killed process.

Writers that extend one output over a long run (a record being computed, a
meta-training folder, a chains file) hold `exclusive_lock` on it, so a second
process aiming at the same output stops at once with a clear error instead of
silently interleaving its writes.

Example:

```python
from keras_autolr.runtime import io

io.atomic_write_json("run.json", {"loss": 0.25})
io.atomic_write_text("notes.txt", "done\\n")
io.atomic_save_npz("arrays.npz", x=[1.0, 2.0])
with io.exclusive_lock("arrays.npz.lock", "arrays.npz"):
    pass  # a second process here would get an OutputLockedError
```
"""

import contextlib
import errno
import json
import os
import re
import tempfile

import filelock
import numpy as np

__all__ = ["atomic_path", "remove_temporaries", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_save_npz",
           "exclusive_lock", "acquire_lock", "OutputLockedError", "is_disk_full"]

# Read once: a new file gets the mode a plain open() would give it (mkstemp's is 0600).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(error):
    """Whether `error` says the disk (or the user's quota) is full: ENOSPC or EDQUOT.

    Args:
        error: any exception.

    Example:

    ```python
    import errno
    from keras_autolr.runtime import io

    assert io.is_disk_full(OSError(errno.ENOSPC, "full")) and not io.is_disk_full(ValueError())
    ```
    """
    return isinstance(error, OSError) and error.errno in _DISK_FULL


def _fsync_dir(folder):
    # Makes the rename itself durable on POSIX; directories cannot be opened on Windows.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yields a temporary path next to `path`, moved onto `path` when the block succeeds.

    For writers that want a file name rather than a file object (h5py,
    `keras.Model.save`). The block's file is fsynced before the move; if the
    block raises, the temporary file is removed and `path` is untouched.

    Args:
        path: the destination (str or path-like). Its folder is created.
        suffix: end of the temporary name; it should end in ".tmp" so that
            leftovers are recognisable (".tmp.npz" for writers that add
            ".npz" themselves).

    Returns:
        A context manager yielding the temporary path (str).

    Raises:
        OSError: the write failed; on a full disk the message names `path`.

    Example:

    ```python
    from keras_autolr.runtime.io import atomic_path

    with atomic_path("table.csv") as tmp:
        with open(tmp, "w") as f:
            f.write("lr,loss\\n0.1,0.5\\n")
    print(open("table.csv").read())
    ```
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    os.close(fd)
    try:
        os.chmod(tmp, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o666 & ~_UMASK)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        _remove_quietly(tmp)
        if is_disk_full(e):
            raise OSError(e.errno, f"No space left to write {path!r}; free some disk space or "
                          "write to another folder", path) from e
        raise
    _fsync_dir(folder)


def remove_temporaries(folder, name=None):
    """Removes what `atomic_path` leaves when its process is killed: `.<name>.<8 random>.tmp` files.

    Call it only while holding the output's lock: a live writer's temporary
    file has the same shape.

    Args:
        folder: the folder to clean (a missing one is fine).
        name: only the temporaries of this file name (for example
            `"run.h5"`); `None`: those of every file in `folder`.

    Example:

    ```python
    import os
    from keras_autolr.runtime.io import remove_temporaries

    open(".out.h5.abcd1234.tmp", "w").close()
    open(".out.h5.bak.abcd1234.tmp", "w").close()  # another file's: kept
    remove_temporaries(".", "out.h5")
    print(os.path.exists(".out.h5.abcd1234.tmp"), os.path.exists(".out.h5.bak.abcd1234.tmp"))  # False True
    ```
    """
    if not os.path.isdir(folder):
        return
    # mkstemp's random part: 8 characters of [a-z0-9_] (tempfile._RandomNameSequence).
    pattern = re.compile(rf"\.{re.escape(name) if name is not None else '.+'}\.[a-z0-9_]{{8}}\.tmp")
    for entry in os.listdir(folder):
        if pattern.fullmatch(entry):
            _remove_quietly(os.path.join(folder, entry))


def _write(path, data, mode):
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            f.write(data)


def atomic_write_bytes(path, data):
    """Writes `data` (bytes) to `path` atomically.

    Args:
        path: the destination; its folder is created.
        data: the bytes to write.

    Raises:
        OSError: the write failed (`path` keeps its old content).

    Example:

    ```python
    from keras_autolr.runtime.io import atomic_write_bytes

    atomic_write_bytes("blob.bin", b"\\x00\\x01")
    assert open("blob.bin", "rb").read() == b"\\x00\\x01"
    ```
    """
    _write(path, bytes(data), "wb")


def atomic_write_text(path, text, encoding="utf-8"):
    """Writes `text` to `path` atomically.

    Args:
        path: the destination; its folder is created.
        text: the string to write.
        encoding: text encoding.

    Raises:
        OSError: the write failed (`path` keeps its old content).

    Example:

    ```python
    from keras_autolr.runtime.io import atomic_write_text

    atomic_write_text("log.txt", "epoch 1\\n")
    assert open("log.txt").read() == "epoch 1\\n"
    ```
    """
    _write(path, str(text).encode(encoding), "wb")


def atomic_write_json(path, obj, indent=1):
    """Writes `obj` as JSON to `path` atomically.

    The object is serialised before the file is touched, so an object that
    JSON cannot encode leaves no file behind.

    Args:
        path: the destination; its folder is created.
        obj: a JSON-serialisable object.
        indent: passed to `json.dumps` (None: one line).

    Raises:
        TypeError: `obj` is not JSON-serialisable.
        OSError: the write failed (`path` keeps its old content).

    Example:

    ```python
    import json
    from keras_autolr.runtime.io import atomic_write_json

    atomic_write_json("record.json", {"lr": 0.1, "loss": [0.9, 0.5]})
    assert json.load(open("record.json"))["lr"] == 0.1
    ```
    """
    atomic_write_text(path, json.dumps(obj, indent=indent))


def atomic_save_npz(path, **arrays):
    """Saves `arrays` to `path` as an uncompressed `.npz` atomically (like `np.savez`).

    Unlike `np.savez`, no ".npz" is appended: the file is written at `path`
    exactly.

    Args:
        path: the destination; its folder is created.
        **arrays: the arrays, by name (what `np.load(path)[name]` returns).

    Raises:
        OSError: the write failed (`path` keeps its old content).

    Example:

    ```python
    import numpy as np
    from keras_autolr.runtime.io import atomic_save_npz

    atomic_save_npz("cache.npz", x=np.arange(3), y=np.ones(2))
    assert np.load("cache.npz")["x"].tolist() == [0, 1, 2]
    ```
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


class OutputLockedError(TimeoutError):
    """Another process holds the lock on an output this process wants to write."""


@contextlib.contextmanager
def exclusive_lock(lock_path, what):
    """Holds the lock file `lock_path` for the block; raises at once if another process holds it.

    A real OS lock (`filelock`): it is released when the block ends and also
    when the holding process dies, even by SIGKILL, so a crashed run never
    blocks its resume. The lock file itself stays (removing it would race).

    Args:
        lock_path: the lock file; its folder is created.
        what: the output it protects, for the error message.

    Returns:
        A context manager (yields nothing).

    Raises:
        OutputLockedError: another process holds the lock (a `TimeoutError`,
            so an `OSError`, not a `ValueError`: code that records a run's
            failures must not mistake it for one).

    Example:

    ```python
    from keras_autolr.runtime.io import exclusive_lock, atomic_write_text

    with exclusive_lock("out.txt.lock", "out.txt"):
        atomic_write_text("out.txt", "mine\\n")
    ```
    """
    lock = acquire_lock(lock_path, repr(os.fspath(what)))
    try:
        yield
    finally:
        lock.release()


def acquire_lock(lock_path, what, *, error=OutputLockedError,
                 advice="Wait for it to finish, or write to another path."):
    """Takes the lock file `lock_path` now and returns it held; raises at once if another process holds it.

    The one place a lock is acquired: `exclusive_lock` holds it for a block,
    writers that live longer than a block (`HistoryStore`) keep it until they
    close and then call `release()`.

    Args:
        lock_path: the lock file; its folder is created.
        what: the output it protects, as the error message names it.
        error: the exception class raised when the lock is taken.
        advice: what the error tells the user to do.

    Returns:
        The held `filelock.FileLock`.

    Raises:
        error: another process holds the lock.

    Example:

    ```python
    from keras_autolr.runtime.io import acquire_lock

    lock = acquire_lock("out.txt.lock", "out.txt")
    print(lock.is_locked)  # True
    lock.release()
    ```
    """
    lock_path = os.fspath(lock_path)
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    lock = filelock.FileLock(lock_path, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise error(
            f"Another process is writing {what} (it holds {lock_path!r}). {advice} The lock is "
            "released when that process ends, even if it is killed.") from None
    return lock
