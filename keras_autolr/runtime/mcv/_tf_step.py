"""MCV train step on the TensorFlow backend (compiled with the rest of `fit`).

`optimizer.stateless_apply` is not available on TensorFlow, so a trial update
is apply-then-restore: every variable that an update or a scoring forward can
touch is snapshotted with `tf.identity` (under TF, `variable.value` is the
variable itself, not a copy) and assigned back after each trial. The candidate
loop is a Python loop unrolled at trace time: one compiled graph, no host round
trips. Under `tf.distribute`, losses are all-reduced so that every replica takes
the same decision, and restores happen in cross-replica context.

The step runs the model's strategy (`strategies.Strategy`): `trials` trial
updates, scored on the training half too when `scores_train`; its
`step_decision` gives the LR to apply and whether to undo the step;
`scores_applied` strategies (discard) score the applied step and decide with
`reject_applied`.

A batch of one example (`MCVModel._split_data`'s `single`) takes a plain step
at the current LR and leaves the MCV state alone. With a static batch size
this is decided while tracing; with an unknown one (`tf.data` without
`drop_remainder`) the step runs as usual on a repeated example and its
decision, undo and state updates are masked out with `tf.where`.
"""

import tensorflow as tf

from keras_autolr.runtime import lr as lr_lib


def _replica_ctx():
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def _global(loss):
    """Mean loss over replicas (Keras scales each replica's loss by 1/N)."""
    ctx = _replica_ctx()
    return loss if ctx is None else ctx.all_reduce("SUM", loss)


def _snapshot(variables):
    # In-graph tensors, not `keras_autolr.runtime.snapshot`'s host numpy copies:
    # this runs inside the compiled step (and per replica under tf.distribute),
    # where a host round trip per trial would break the one-graph design.
    return [tf.identity(tf.convert_to_tensor(v.value)) for v in variables]


def _restore(variables, values, where=None):
    """Assigns `values` back (where `where` is True, if given)."""
    def assign_all(vs, vals):
        for v, s in zip(vs, vals):
            v.assign(s if where is None else tf.where(where, s, tf.convert_to_tensor(v.value)))

    ctx = _replica_ctx()
    if ctx is None:
        assign_all(variables, values)
        return

    # Mirrored variables without an aggregation refuse replica-context writes;
    # all replicas hold identical values here, so write once from cross-replica
    # context.
    def merge_fn(strategy, vals):
        for v, s in zip(variables, vals):
            tv = v.value
            val = strategy.experimental_local_results(s)[0]
            if where is not None:
                w = strategy.experimental_local_results(where)[0]
                val = tf.where(w, val, tf.convert_to_tensor(strategy.experimental_local_results(tv)[0]))
            strategy.extended.update(tv, lambda var, x: var.assign(x), args=(val,), group=False)

    ctx.merge_call(merge_fn, args=(values,))


def _loss(model, x, y, sw, training):
    y_pred = model(x, training=training) if model._call_has_training_arg else model(x)
    loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw, training=True)
    return loss, y_pred


def train_step(model, data):
    model._check_trainable()
    model._check_step_ready()
    opt = model.optimizer
    (x1, y1, s1), (x2, y2, s2), single = model._split_data(data)
    forward = backward = steps = 0

    # 1. Gradient of the training half (the one backward pass of the step).
    with tf.GradientTape() as tape:
        loss1, y_pred1 = _loss(model, x1, y1, s1, training=True)
        scaled = opt.scale_loss(loss1)
    trainable = model.trainable_variables
    grads = tape.gradient(scaled, trainable)
    forward, backward = forward + 1, backward + 1
    model._loss_tracker.update_state(
        loss1 * ctx_replicas(), sample_weight=tf.shape(tf.nest.flatten(x1)[0])[0]
    )

    mcv_ids = {id(v) for v in model._mcv.values()}
    non_trainable = [v for v in model.non_trainable_variables if id(v) not in mcv_ids]
    opt_vars = list(opt.variables)
    state_vars = list(trainable) + non_trainable + opt_vars
    snap = _snapshot(state_vars)
    snap_nt = snap[len(trainable):len(trainable) + len(non_trainable)]

    st = {k: tf.convert_to_tensor(v.value) for k, v in model._mcv.items()}
    if single is True:
        # One example: nothing to validate on; a plain step at the current LR.
        opt.apply(grads, trainable)
        return _logs(model, x1, y1, s1, y_pred1, st)
    masked = single is not False  # a tensor: the batch size is known only at run time
    method = model.strategy  # the MCV algorithm (not a tf.distribute strategy)
    score_training = model.score_training
    # Trainable weights and optimizer state: what an applied step changes.
    step_vars = list(trainable) + opt_vars
    snap_step = snap[:len(trainable)] + snap[len(trainable) + len(non_trainable):]

    # 2. Pre-update validation-batch loss.
    cur = _global(_loss(model, x2, y2, s2, training=score_training)[0])
    forward += 1
    _restore(non_trainable, snap_nt)

    # 3. Trials: one per candidate slot, each fully rolled back.
    val_losses = train_losses = None
    if method.trials:
        val_losses, train_losses = [], []
        for k in range(method.trials):
            lr_lib.assign_learning_rate(opt, st["cand_lrs"][k])
            opt.apply(grads, trainable)
            steps += 1
            val_losses.append(_global(_loss(model, x2, y2, s2, training=score_training)[0]))
            forward += 1
            if method.scores_train:
                train_losses.append(_global(_loss(model, x1, y1, s1, training=score_training)[0]))
                forward += 1
            _restore(state_vars, snap)
        val_losses = tf.stack(val_losses)
        train_losses = tf.stack(train_losses) if train_losses else None
    decision = method.step_decision(cur, val_losses, st["cand_lrs"], st["cand_mask"], st["history"])
    lr = decision.lr
    if masked and lr is not None:
        lr = tf.where(single, tf.identity(lr_lib.learning_rate_tensor(opt)), lr)

    # 4. The applied step (at the decided LR, else the epoch's LR restored above).
    if lr is not None:
        lr_lib.assign_learning_rate(opt, lr)
    opt.apply(grads, trainable)
    steps += 1
    reject = decision.reject
    if method.scores_applied:
        new = _global(_loss(model, x2, y2, s2, training=score_training)[0])
        forward += 1
        reject = method.reject_applied(cur, new)
        _restore(non_trainable, snap_nt)
    if masked and reject is not None:
        reject = tf.logical_and(reject, tf.logical_not(single))
    if reject is not None:
        _restore(step_vars, snap_step, where=reject)
        if lr is not None:
            # A discarded step undoes the update but keeps the decided LR.
            lr_lib.assign_learning_rate(opt, lr)
    new_st = model._mcv_update(st, cur, val_losses=val_losses, train_losses=train_losses,
                               discarded=False if reject is None else reject,
                               history=decision.history, counts=(forward, backward, steps))
    if masked:
        new_st = {k: tf.where(single, st[k], tf.cast(v, st[k].dtype)) for k, v in new_st.items()}

    for k, v in model._mcv.items():
        if new_st[k] is not st[k]:
            v.assign(new_st[k])
    return _logs(model, x1, y1, s1, y_pred1, new_st)


def _logs(model, x1, y1, s1, y_pred1, st):
    logs = dict(model.compute_metrics(x1, y1, y_pred1, sample_weight=s1))
    logs.update(model._mcv_logs(st))
    return logs


def ctx_replicas():
    """Undo Keras's 1/N distribution scaling for the loss tracker."""
    return float(tf.distribute.get_strategy().num_replicas_in_sync)
