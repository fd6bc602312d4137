"""The pipeline that produced ARC's shipped controller (paper sections 3.2 to 3.4).

In order, each step resumable and each a `keras-autolr arc` subcommand:

1. `generate`: train the zoo's tasks in chains of cycles with three LR
   branches per decision, storing the raw series in HDF5 (`arc generate`);
   `generate_vmap` is its v2 engine (`arc generate --engine vmap`, JAX):
   groups of chains on the realistic-epoch v2 zoo (`harness.zoo_v2`) in one
   compiled program, same output layout;
2. `labels`: turn chains into (window, label) samples with the paper's
   ground-truth correction;
3. `train`: train and evaluate a controller on them (`arc train`,
   `arc evaluate`);
4. `select`: pick the controller to ship by ARC runs on a proxy task
   (`arc select`).

The controller network and its input window are runtime code
(`keras_autolr.runtime.arc`); the task zoo is `keras_autolr.harness.zoo`.
"""

__all__ = []
