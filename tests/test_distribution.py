"""Where users scale: every runtime method on two devices, compared with one device.

Each backend's check runs `tests/_distribution_worker.py` in a fresh process
(two logical CPUs must be configured before TensorFlow starts, `XLA_FLAGS`
before JAX is imported). For every method the worker trains a tiny model once
on one device and once distributed (batch 16: each replica sees batches of
8), checks that the fit is finite and the method's effect is real (ARC's
decisions scale the LR by their factors, the in-step LR moves, MCV's next LR
is the one used, the feature history holds every epoch, the finder's
suggestion is the LR trained with), and that both runs agree: LR trajectories
and weights within 1e-4 relative (1e-3 for Prodigy / D-Adaptation / DoG,
whose global sums are float32 sums in another order).

Support matrix (what these tests check):

| method                                  | MirroredStrategy, 2 CPUs | JAX DataParallel, 2 devices |
|-----------------------------------------|--------------------------|-----------------------------|
| ARC                                     | yes, same decisions      | yes, same decisions         |
| MLRSNetScheduler, HypergradientDescent  | yes, same per-batch LRs  | yes, same per-batch LRs     |
| MCVModel + MCVScheduler + MCVStopping   | yes (1)                  | yes, same decisions         |
| FeatureHistory                          | yes                      | yes                         |
| Prodigy, DAdaptAdam, DoG,               | refused: clear           | yes, same weights           |
|   ReferenceScheduleFreeAdamW (+Eval)    |   NotImplementedError    |                             |
| ScheduleFreeAdamW                       | yes                      | yes                         |
| LRFinder / find_lr                      | yes, same suggestion     | yes, same suggestion        |
| set_learning_rate / scale_learning_rate | yes, on a schedule       | yes, on a schedule          |
|   (from a LearningRateCallback)         |                          |                             |

(1) Under MirroredStrategy MCV splits each replica's share of the batch into
its training and validation halves (JAX splits the global batch), so the
examples in each half differ from one device's unless the data are ordered
for it; the test orders them so and then gets the same decisions and weights.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

HERE = pathlib.Path(__file__).resolve().parent

METHODS = ("arc", "mlrsnet", "hypergradient", "mcv", "feature_history", "prodigy", "dadapt", "dog",
           "schedule_free", "schedule_free_ref", "lr_finder", "set_learning_rate", "mlrsnet_clipped",
           "set_learning_rate_recompiled")
TF_REFUSED = ("prodigy", "dadapt", "dog", "schedule_free_ref")


def _run_worker(backend, tmp_path):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(HERE.parent))
    proc = subprocess.run([sys.executable, str(HERE / "_distribution_worker.py"), backend, str(tmp_path), *METHODS],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    results = {line["method"]: line for line in lines}
    assert proc.returncode == 0 and set(results) == set(METHODS), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert all(line["replicas"] == 2 for line in lines), lines
    failed = {m: r["error"] + "\n" + r.get("traceback", "") for m, r in results.items() if not r["ok"]}
    assert not failed, "\n\n".join(f"{m}: {e}" for m, e in failed.items())
    return results


@pytest.mark.slow
def test_every_method_under_mirrored_strategy(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute is TensorFlow's; the JAX leg runs the DataParallel test")
    results = _run_worker("tensorflow", tmp_path)
    for method in METHODS:  # refused exactly where documented, with the way out in the message
        refused = results[method]["detail"].get("refused")
        assert bool(refused) == (method in TF_REFUSED), (method, refused)


@pytest.mark.slow
@pytest.mark.jax
def test_every_method_under_jax_data_parallel(tmp_path):
    if keras.backend.backend() != "jax":
        pytest.skip("runs in the JAX leg of the suite (KERAS_BACKEND=jax -m jax)")
    results = _run_worker("jax", tmp_path)
    assert not any(r["detail"].get("refused") for r in results.values()), results
