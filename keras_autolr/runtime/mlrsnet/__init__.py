"""MLR-SNet (Shu et al.): a meta-learned LSTM that predicts the LR of every batch.

* `MLRSNet`, `load_net`, `cell_step`, `net_outputs`: the meta-learner
  (`net.py`), with the official code's two LSTM cells (`CELLS`);
* `load_official`: the authors' published nets (`mlr_snet 1/100/200.pth`),
  read without PyTorch (`official.py`);
* `MLRSNetScheduler`: plug-and-play per-batch LR inside the train step, with
  a meta-test protocol (`PackageProtocol`, `OfficialProtocol`:
  `protocol.py`);
* meta-training (a one-step lookahead on validation batches) is an offline job:
  `keras_autolr.pipelines.mlrsnet.meta_train`;
* `HypergradientDescent`: the HD baseline of the paper (Baydin et al.).

Also reachable as `keras_autolr.mlrsnet` (e.g. `keras_autolr.mlrsnet.load_official`).
"""

from keras_autolr.runtime.mlrsnet.gamma import EmptyDataError, compute_gamma, gamma_from_loss
from keras_autolr.runtime.mlrsnet.net import (
    CELLS, LSTMCellVariant, MLRSNet, MLRSNetFileError, ModeMismatchError, cell_step, load_net, net_outputs,
)
from keras_autolr.runtime.mlrsnet.official import load_official, read_state_dict
from keras_autolr.runtime.mlrsnet.protocol import OfficialProtocol, PackageProtocol
from keras_autolr.runtime.mlrsnet.scheduler import MLRSNetScheduler, shipped_net_path
from keras_autolr.runtime.mlrsnet.hypergradient import HypergradientDescent
from keras_autolr.runtime.instep import InStepScheduler

__all__ = [
    "MLRSNet", "MLRSNetScheduler", "HypergradientDescent", "InStepScheduler", "load_net", "cell_step",
    "net_outputs", "load_official", "read_state_dict", "CELLS", "LSTMCellVariant",
    "PackageProtocol", "OfficialProtocol",
    "compute_gamma", "gamma_from_loss", "shipped_net_path", "EmptyDataError", "MLRSNetFileError",
    "ModeMismatchError",
]
