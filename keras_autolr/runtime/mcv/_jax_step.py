"""MCV train step on the JAX backend: trials are pure functions.

A trial is `optimizer.stateless_apply` on the current state followed by a
`stateless_call` on the validation half; nothing is written, so nothing needs
restoring, and every candidate is evaluated in one `jax.vmap` (set
`MCVModel.vectorize = False` to fall back to an unrolled loop inside the same
jitted step). The candidate LR enters the optimizer state through
`keras_autolr.runtime.lr.stateless_learning_rate`.

The step runs the model's strategy (`strategies.Strategy`), as the TF step
does: `trials` trials (scored on the training half too when `scores_train`),
`step_decision` for the applied step's LR and undo, `reject_applied` when the
strategy `scores_applied`.

Shapes are static under `jax.jit`, so a batch of one example
(`MCVModel._split_data`'s `single`) is known while tracing: it takes a plain
step at the current LR and leaves the MCV state alone.
"""

import jax
import jax.numpy as jnp

from keras_autolr.runtime import lr as lr_lib


def _select(flag, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(flag, u, v), a, b)


def train_step(model, state, data):
    model._check_trainable()
    model._check_step_ready()
    tv, ntv, ov, mv = state
    opt = model.optimizer
    (x1, y1, s1), (x2, y2, s2), single = model._split_data(data)
    forward = backward = steps = 0

    grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)
    (_, aux), grads = grad_fn(tv, ntv, mv, x1, y1, s1, training=True, optimizer_variables=ov)
    unscaled1, y_pred1, ntv1, mv1 = aux
    forward, backward = forward + 1, backward + 1

    refs = model.non_trainable_variables
    index = {k: next(i for i, r in enumerate(refs) if r is v) for k, v in model._mcv.items()}
    st = {k: ntv1[i] for k, i in index.items()}
    if single:
        # One example: nothing to validate on; a plain step at the current LR.
        new_tv, new_ov = opt.stateless_apply(ov, grads, tv)
        return _finish(model, st, new_tv, ntv1, new_ov, mv1, unscaled1, x1, y1, y_pred1, s1)
    score_training = model.score_training

    def loss_at(weights, x, y, sw):
        # Scoring never updates state: BN statistics and seeds stay at ntv1.
        _, (unscaled, _, _, _) = model.compute_loss_and_updates(
            weights, ntv1, mv1, x, y, sw, training=score_training, optimizer_variables=ov
        )
        return unscaled

    cur = loss_at(tv, x2, y2, s2)
    forward += 1
    method = model.strategy

    # Trials: pure, so nothing to restore; one vmap over the candidate slots.
    val_losses = train_losses = None
    if method.trials:
        two = method.scores_train

        def trial(lr):
            tv_k, _ = opt.stateless_apply(lr_lib.stateless_learning_rate(opt, ov, lr), grads, tv)
            v = loss_at(tv_k, x2, y2, s2)
            t = loss_at(tv_k, x1, y1, s1) if two else jnp.zeros_like(v)
            return v, t

        if getattr(model, "vectorize", True):
            val_losses, train_losses = jax.vmap(trial)(st["cand_lrs"])
        else:
            pairs = [trial(st["cand_lrs"][k]) for k in range(method.trials)]
            val_losses = jnp.stack([p[0] for p in pairs])
            train_losses = jnp.stack([p[1] for p in pairs])
        train_losses = train_losses if two else None
        forward += method.trials * (2 if two else 1)
        steps += method.trials
    decision = method.step_decision(cur, val_losses, st["cand_lrs"], st["cand_mask"], st["history"])

    # The applied step (at the decided LR, else the epoch's LR).
    ov_step = ov if decision.lr is None else lr_lib.stateless_learning_rate(opt, ov, decision.lr)
    new_tv, new_ov = opt.stateless_apply(ov_step, grads, tv)
    steps += 1
    reject = decision.reject
    if method.scores_applied:
        reject = method.reject_applied(cur, loss_at(new_tv, x2, y2, s2))
        forward += 1
    if reject is not None:
        # A discarded step undoes the update but keeps the decided LR.
        new_tv, new_ov = _select(reject, (tv, ov_step), (new_tv, new_ov))
    new_st = model._mcv_update(st, cur, val_losses=val_losses, train_losses=train_losses,
                               discarded=False if reject is None else reject,
                               history=decision.history, counts=(forward, backward, steps))

    ntv_out = list(ntv1)
    for k, i in index.items():
        ntv_out[i] = jnp.asarray(new_st[k], ntv1[i].dtype).reshape(ntv1[i].shape)
    return _finish(model, new_st, new_tv, ntv_out, new_ov, mv1, unscaled1, x1, y1, y_pred1, s1)


def _finish(model, st, tv, ntv, ov, mv, unscaled, x1, y1, y_pred1, s1):
    logs, mv_out = model._update_metrics_variables(mv, unscaled, x1, y1, y_pred1, s1)
    logs = dict(logs)
    logs.update(model._mcv_logs(st))
    return logs, (list(tv), list(ntv), list(ov), mv_out)
