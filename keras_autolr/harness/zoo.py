"""The ARC data-generation zoo (paper section 3.2, Table 1): the `"arc_zoo"` suite of `harness.tasks`.

The zoo's tasks, data and models live in the one task registry
(`harness.tasks`, models in `harness.models`); this module is the view ARC's
generator (`keras_autolr.pipelines.arc.generate`) works with. Every task
runs offline and is deliberately small: an "epoch" is a fixed, short number
of steps (`steps_per_epoch` batches of `batch_size`) so one CPU core produces
hundreds of labelled samples an hour. The zoo is disjoint from the
evaluation tasks (CIFAR-10 and PTB). Larger variants (`large=True`, CLI
`--large`: 4x the steps per epoch at twice the batch size, i.e. 8x the data
per epoch, closer to real epochs) are meant for GPU users.

Each task gives its initial-LR range for adaptive optimizers (Adam, RMSprop);
SGD draws from the same range times `sgd_scale`, since plain SGD needs larger
steps to move at all.

Example:

```python
from keras_autolr.harness import zoo

task = zoo.get_task("digits_cnn")
data = task.data()                      # TaskData: train and validation splits
model = task.build_model(seed=0)
model.compile(optimizer="adam", loss=zoo.make_loss(task.loss))
assert model.output_shape == (None, 10) and data.x_train.shape == (1000, 8, 8, 1)
```
"""

import dataclasses

from keras_autolr.harness import tasks as tasks_lib

__all__ = ["Task", "TASKS", "names", "get_task", "make_loss"]

# The live registry entry: adding a task here adds it to `tasks.names(suite="arc_zoo")`.
TASKS = tasks_lib.REGISTRY["arc_zoo"]
# The zoo's task constructor, `(name, kind, data, build, loss, lr_range, ...)`.
Task = tasks_lib.zoo_task
make_loss = tasks_lib.make_loss


def names():
    """The zoo's task names, in registration order (chain `c` trains `names()[c % n]`).

    Example:

    ```python
    from keras_autolr.harness import zoo

    assert zoo.names()[0] == "mnist1d_conv" and len(zoo.names()) >= 8
    ```
    """
    return list(TASKS)


def get_task(name, large=False):
    """The zoo task `name`; `large=True` gives its 8x-data-per-epoch variant.

    Args:
        name: a zoo task name (`names()`).
        large: twice the batch size and 4x the steps per epoch.

    Raises:
        KeyError: unknown name, listing the zoo's.

    Example:

    ```python
    from keras_autolr.harness import zoo

    small, large = zoo.get_task("digits_mlp"), zoo.get_task("digits_mlp", large=True)
    assert large.batch_size * large.steps_per_epoch == 8 * small.batch_size * small.steps_per_epoch
    ```
    """
    if name not in TASKS:
        raise KeyError(f"Unknown ARC zoo task {name!r}; choose one of {names()}.")
    task = TASKS[name]
    if large:
        task = dataclasses.replace(task, batch_size=2 * task.batch_size, steps_per_epoch=4 * task.steps_per_epoch)
    return task
