"""Keras ports vs optax: 100 compiled steps of a small MLP, parameters equal to rtol 1e-5.

Both sides start from the same weights and receive the identical gradient
sequence: optax's run computes, with JAX, the gradient of a fixed loss (a
different minibatch each step) at its current parameters and records it; the
Keras optimizer is then fed those gradients through its compiled `apply` (a
`tf.function` on TensorFlow, `jax.jit` of `stateless_apply` on JAX).

Why not let each side take gradients at its own parameters: that loop is
chaotic for Prodigy and D-Adaptation (d grows 10^5-fold in 100 steps), and
optax alone, eager vs jitted, then ends 4e-4 (Prodigy) and 9e-4 (D-Adapt)
apart in relative terms, above the 1e-5 asked for here. Marked `jax`, so it
runs on both backends, each compared to optax in the same process.
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import optax.contrib
import pytest

from keras_autolr.runtime.optimizers.dadapt import DAdaptAdam
from keras_autolr.runtime.optimizers.dog import DoG
from keras_autolr.runtime.optimizers.prodigy import Prodigy
from keras_autolr.runtime.optimizers.schedule_free_ref import ReferenceScheduleFreeAdamW

STEPS = 100
RTOL = 1e-5

_rng = np.random.default_rng(0)
X = _rng.normal(size=(512, 4)).astype("float32")
Y = np.tanh(X @ _rng.normal(size=(4, 1))).astype("float32")


def init_params():
    rng = np.random.default_rng(1)
    return [rng.normal(size=(4, 16)).astype("float32") * 0.5, np.zeros(16, "float32"),
            rng.normal(size=(16, 1)).astype("float32") * 0.25, np.full(1, 0.1, "float32")]


def _loss(params, x, y):
    w1, b1, w2, b2 = params
    h = jnp.tanh(x @ w1 + b1)
    return jnp.mean((h @ w2 + b2 - y) ** 2)


_grad = jax.jit(jax.grad(_loss))


def grad_at(params, step):
    i = (step * 32) % len(X)
    return [np.asarray(g) for g in _grad([jnp.asarray(p) for p in params], X[i:i + 32], Y[i:i + 32])]


def optax_run(tx, steps=STEPS):
    """Runs optax; returns the final parameters, the state and the gradients it was fed."""
    params = [jnp.asarray(p) for p in init_params()]
    state = tx.init(params)
    update = jax.jit(tx.update)
    fed = []
    for t in range(steps):
        g = grad_at([np.asarray(p) for p in params], t)
        fed.append(g)
        updates, state = update([jnp.asarray(x) for x in g], state, params)
        params = optax.apply_updates(params, updates)
    return [np.asarray(p) for p in params], state, fed


def compiled_apply(opt, variables):
    """`opt.apply(grads, variables)` compiled the way `fit` compiles it on this backend."""
    opt.build(variables)
    if keras.backend.backend() == "jax":
        step = jax.jit(opt.stateless_apply)

        def run(grads):
            new_vars, new_opt = step([v.value for v in opt.variables], grads, [v.value for v in variables])
            for v, value in zip(variables, new_vars):
                v.assign(value)
            for v, value in zip(opt.variables, new_opt):
                v.assign(value)
        return run
    import tensorflow as tf

    return tf.function(lambda grads: opt.apply(grads, variables))


def keras_run(opt, grads_seq):
    variables = [keras.Variable(p) for p in init_params()]
    run = compiled_apply(opt, variables)
    for g in grads_seq:
        run([keras.ops.convert_to_tensor(x) for x in g])
    return [np.asarray(v) for v in variables], opt


def max_rel_err(a, b):
    """Largest |a - b| / |b| over the elements with |b| > 1e-3 (smaller ones are judged by atol)."""
    out = 0.0
    for x, y in zip(a, b):
        big = np.abs(y) > 1e-3
        if big.any():
            out = max(out, float(np.max(np.abs(x[big] - y[big]) / np.abs(y[big]))))
    return out


CASES = {
    "prodigy": (lambda: Prodigy(), lambda: optax.contrib.prodigy()),
    "prodigy_wd": (lambda: Prodigy(weight_decay=0.01), lambda: optax.contrib.prodigy(weight_decay=0.01)),
    "prodigy_safeguard": (lambda: Prodigy(safeguard_warmup=True, learning_rate=0.5),
                          lambda: optax.contrib.prodigy(safeguard_warmup=True, learning_rate=0.5)),
    "dadapt": (lambda: DAdaptAdam(), lambda: optax.contrib.dadapt_adamw()),
    "dadapt_wd": (lambda: DAdaptAdam(weight_decay=0.01), lambda: optax.contrib.dadapt_adamw(weight_decay=0.01)),
    "dog": (lambda: DoG(), lambda: optax.contrib.dog()),
    "dog_wd": (lambda: DoG(weight_decay=0.01), lambda: optax.contrib.dog(weight_decay=0.01)),
    "dog_distance": (lambda: DoG(init_step="distance", init_step_value=1e-3),
                     lambda: optax.contrib.dog(init_step=("distance", 1e-3))),
    "dog_lr": (lambda: DoG(init_step="learning_rate", init_step_value=1e-3),
               lambda: optax.contrib.dog(init_step=("learning_rate", 1e-3))),
    "sf": (lambda: ReferenceScheduleFreeAdamW(), lambda: optax.contrib.schedule_free_adamw()),
    "sf_wd": (lambda: ReferenceScheduleFreeAdamW(weight_decay=0.01),
              lambda: optax.contrib.schedule_free_adamw(weight_decay=0.01)),
    "sf_warmup": (lambda: ReferenceScheduleFreeAdamW(1e-2, warmup_steps=20),
                  lambda: optax.contrib.schedule_free_adamw(1e-2, warmup_steps=20)),
}


@pytest.mark.jax
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_optax_for_100_compiled_steps(case):
    make_keras, make_optax = CASES[case]
    ref, _, fed = optax_run(make_optax())
    got, _ = keras_run(make_keras(), fed)
    moved = max_rel_err(ref, init_params())
    assert moved > 1e-2, f"{case}: optax barely moved the parameters ({moved}); the test would be vacuous"
    err = max_rel_err(got, ref)
    abs_err = max(float(np.max(np.abs(g - r))) for g, r in zip(got, ref))
    print(f"{keras.backend.backend()} {case}: max relative error {err:.2e}, max abs error {abs_err:.2e}")
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=RTOL, atol=1e-6)


def _state_scalar(state, name):
    for s in jax.tree_util.tree_leaves(state, is_leaf=lambda x: hasattr(x, name)):
        if hasattr(s, name):
            return float(getattr(s, name))
    raise KeyError(name)


@pytest.mark.jax
@pytest.mark.parametrize("case,field", [("prodigy", "estim_lr"), ("dadapt", "estim_lr")])
def test_step_size_estimate_matches_optax(case, field):
    make_keras, make_optax = CASES[case]
    _, state, fed = optax_run(make_optax())
    _, opt = keras_run(make_keras(), fed)
    d = _state_scalar(state, field)
    assert d > 10 * 1e-6  # it grew from initial_d
    np.testing.assert_allclose(float(opt.effective_learning_rate), d * 1.0, rtol=RTOL)
