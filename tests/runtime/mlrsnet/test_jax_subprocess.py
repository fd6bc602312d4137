import pathlib
"""Runs the in-step scheduler on the JAX backend in a fresh process.

The rest of tests/mlrsnet runs on whatever KERAS_BACKEND the session uses
(tests marked `jax` are also run by tests/run.sh on JAX); this test pins JAX
explicitly so a TensorFlow-only CI job still covers it.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    assert keras.backend.backend() == "jax"
    from keras_autolr.runtime.mlrsnet import MLRSNet, MLRSNetScheduler
    from tests.runtime.mlrsnet.test_net import numpy_step
    net = MLRSNet(seed=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")
    w0 = np.array([0.3, 0.1, -0.2], "float32")
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    m.set_weights([w0.reshape(3, 1)])
    m.compile(keras.optimizers.SGD(5.0), "mse")
    r = x @ w0[:, None] - y
    p, _, _ = numpy_step(net.get_weights(), np.float32(np.mean(r ** 2)), np.zeros((1, 50)), np.zeros((1, 50)))
    lr = 0.5 * float(p[0])
    m.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[MLRSNetScheduler(net, gamma=0.5)])
    expected = w0 - lr * (2 * x.T @ r / 32).reshape(-1)
    np.testing.assert_allclose(m.get_weights()[0].reshape(-1), expected, rtol=1e-4, atol=1e-6)
    # Adam + momentum SGD train and keep a finite LR
    for opt in (keras.optimizers.Adam(1e-2), keras.optimizers.SGD(0.1, momentum=0.9)):
        m2 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
        m2.compile(opt, "mse")
        cb = MLRSNetScheduler(net, gamma=0.05, record_every=1)
        h = m2.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[cb])
        assert np.all(np.isfinite(cb.lr_history)) and h.history["loss"][-1] < h.history["loss"][0]
    print("JAX_OK")
""")


@pytest.mark.slow
def test_scheduler_on_jax_backend():
    pytest.importorskip("jax")
    root = str(pathlib.Path(__file__).resolve().parents[3])
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "JAX_OK" in out.stdout
