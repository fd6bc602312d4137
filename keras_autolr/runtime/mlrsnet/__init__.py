"""MLR-SNet (Shu et al.): a meta-learned LSTM that predicts the LR of every batch.

* `MLRSNet`, `load_net`, `cell_step`: the meta-learner (`net.py`);
* `MLRSNetScheduler`: plug-and-play per-batch LR inside the train step;
* meta-training (a one-step lookahead on validation batches) is an offline job:
  `keras_autolr.pipelines.mlrsnet.meta_train`;
* `HypergradientDescent`: the HD baseline of the paper (Baydin et al.).
"""

from keras_autolr.runtime.mlrsnet.gamma import EmptyDataError, compute_gamma, gamma_from_loss
from keras_autolr.runtime.mlrsnet.net import MLRSNet, MLRSNetFileError, ModeMismatchError, cell_step, load_net
from keras_autolr.runtime.mlrsnet.scheduler import MLRSNetScheduler, shipped_net_path
from keras_autolr.runtime.mlrsnet.hypergradient import HypergradientDescent
from keras_autolr.runtime.instep import InStepScheduler

__all__ = [
    "MLRSNet", "MLRSNetScheduler", "HypergradientDescent", "InStepScheduler", "load_net", "cell_step",
    "compute_gamma", "gamma_from_loss", "shipped_net_path", "EmptyDataError", "MLRSNetFileError",
    "ModeMismatchError",
]
