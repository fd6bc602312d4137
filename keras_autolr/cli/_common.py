"""What every `keras-autolr` command shares: argument types, user errors, a quiet TensorFlow start.

Nothing here imports TensorFlow or Keras: `--help`, `--version` and argument
errors stay instant.
"""

import argparse
import contextlib
import os
import re
import sys
import tempfile

__all__ = ["CommandError", "positive_int", "quiet_tf_startup", "LOG_LEVEL_VAR", "DEFAULT_LOG_LEVEL"]

LOG_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
# TensorFlow's C++ logging off unless the user sets the variable (0 shows everything).
DEFAULT_LOG_LEVEL = "3"

# absl / glog lines: "I0000 00:00:1796153051.428888   10394 port.cc:153] ..." and the older
# "2025-09-17 14:44:05.157831: I external/.../cudart_stub.cc:32] ...".
_LOG_LINE = re.compile(r"^(?:([IWEF])\d{4} [\d:.]+\s+\d+ |[\d-]+ [\d:.]+: ([IWEF]) )\S+:\d+\]")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


class CommandError(Exception):
    """A user error a command reports in one line (exit status 2): what is wrong and what to do."""


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _keep(line, level, previous_dropped):
    if line.startswith("WARNING: All log messages before absl::InitializeLog()"):
        return level < 1
    m = _LOG_LINE.match(line)
    if m:
        return _SEVERITY[m.group(1) or m.group(2)] >= level
    # cpu_feature_guard's message goes on over a second line.
    if previous_dropped and line.startswith("To enable the following instructions:"):
        return False
    return True


@contextlib.contextmanager
def quiet_tf_startup():
    """Imports inside this block print none of TensorFlow's start-up C++ log lines.

    TensorFlow 2.19+ writes its oneDNN / CUDA / CPU-feature banners before
    absl logging is set up, so `TF_CPP_MIN_LOG_LEVEL` does not hide them
    (tensorflow/tensorflow#100442). This sets the variable (unless the user
    did), sends file descriptor 2 to a temporary file while the block runs,
    then writes back every line below that level's cut (Python warnings,
    tracebacks and other output untouched).
    """
    os.environ.setdefault(LOG_LEVEL_VAR, DEFAULT_LOG_LEVEL)
    try:
        level = int(os.environ[LOG_LEVEL_VAR])
    except ValueError:
        level = int(DEFAULT_LOG_LEVEL)
    if level <= 0:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            dropped = False
            for line in tmp.read().decode(errors="replace").splitlines(keepends=True):
                keep = _keep(line, level, dropped)
                dropped = not keep
                if keep:
                    sys.stderr.write(line)
            sys.stderr.flush()
