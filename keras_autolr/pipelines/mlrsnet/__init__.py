"""The pipeline that produced the shipped MLR-SNet nets: `meta_train`.

`meta_train.meta_train` learns the net's weights while a model trains
(`keras-autolr mlrsnet meta-train`; the exact commands are in
`saved_controllers/mlrsnet.md`). The net itself and the callback that uses it
are runtime code (`keras_autolr.runtime.mlrsnet`).
"""

__all__ = []
