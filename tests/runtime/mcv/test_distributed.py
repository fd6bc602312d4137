import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


METHODS = ["method2", "voting", "discard"]


@pytest.mark.slow
def test_mirrored_strategy_two_cpus():
    """fit under tf.distribute.MirroredStrategy on two logical CPUs: finite logs,
    and every replica ends with identical weights and optimizer state (restores
    and discards are applied consistently on all replicas)."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=str(HERE.parents[2]))
    out = subprocess.run([sys.executable, str(HERE / "_distributed_check.py"), *METHODS],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for method in METHODS:
        assert f"DISTRIBUTED_OK {method}" in out.stdout
