"""Shared pieces of the feature-history reproductions: data cuts, the task of a configuration, its LR schedule.

Configurations (`keras_autolr.harness.models.feature_history_config` /
`feature_history_net`) are small CNNs/MLPs trained with SGD-momentum or Adam
and a learning rate decaying linearly to zero at the end of the budget
(thesis A.2, the `linear_decay` method registered here), sized for a 2-core
CPU. Each configuration trains through the harness runner as its own task.
"""

import keras
import numpy as np

from keras_autolr.harness import datasets, methods, models, tasks

SIZES = {
    # dataset: (n_train, n_val, n_test)
    "smoke": {"fashion_mnist": (1000, 500, 500), "cifar10": (1000, 500, 500)},
    "full": {"fashion_mnist": (2000, 1000, 2000), "cifar10": (2000, 1000, 2000)},
}
# A configuration's optimizer -> the harness optimizer name.
OPTIMIZERS = {"sgd": "sgd_momentum", "adam": "adam"}


def load_data(name, size, seed=0):
    n_train, n_val, n_test = SIZES[size][name]
    kwargs = {"n_train": n_train, "seed": seed}
    if name == "cifar10":
        kwargs.update(n_val=n_val, n_test=n_test)
    split = datasets.load(name, **kwargs)
    rng = np.random.default_rng(seed)
    xv, yv = split.x_val, split.y_val
    xt, yt = split.x_test, split.y_test
    if len(xv) > n_val:
        i = rng.choice(len(xv), n_val, replace=False)
        xv, yv = xv[i], yv[i]
    if len(xt) > n_test:
        i = rng.choice(len(xt), n_test, replace=False)
        xt, yt = xt[i], yt[i]
    return split.x_train, split.y_train, xv, yv, xt, yt


@methods.register("linear_decay")
def _linear_decay(ctx):
    # Linear decay to 0 at the end of the budget (thesis A.2).
    schedule = keras.optimizers.schedules.PolynomialDecay(
        ctx.initial_lr, decay_steps=ctx.epochs * ctx.steps_per_epoch, end_learning_rate=0.0, power=1.0)
    return methods.Setup(methods.make_optimizer(ctx.optimizer, schedule), [])


def config_task(config, data):
    """The task of one configuration: its net on `data` (a `load_data` tuple), its batch size, test batch 1024."""
    xt, yt, xv, yv, xs, ys = data
    return tasks.Task(
        name="fh_config", load=lambda size, seed: tasks.TaskData(xt, yt, xv, yv, xs, ys, 10),
        build=lambda size, k, seed: models.feature_history_net(config, xt.shape[1:]),
        batch_size=config["batch_size"], eval_batch_size=1024,
    )
