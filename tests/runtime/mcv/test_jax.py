"""Runs the backend-neutral MCV tests again on the JAX backend.

CI can equally run `KERAS_BACKEND=jax pytest tests/mcv/test_exact.py tests/mcv/test_model.py`.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="already on JAX")
def test_mcv_suite_on_jax_backend():
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(HERE.parents[2]))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         str(HERE / "test_exact.py"), str(HERE / "test_model.py")],
        env=env, capture_output=True, text=True, timeout=900, cwd=str(HERE.parents[2]),
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
