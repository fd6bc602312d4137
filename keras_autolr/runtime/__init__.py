"""The runtime layer: what users import into training code.

Callbacks, models and optimizers of the four methods (`arc`, `mlrsnet`,
`mcv`, `feature_history`), the tuning-free `optimizers` and `lr_finder`,
and the shared pieces: `lr` (the one owner of the learning rate),
`lr_callback`, `instep`, `artifacts`, `io`, `snapshot`. It imports nothing
from the harness, pipelines or CLI (import-linter contracts in
pyproject.toml). The public names are re-exported by `keras_autolr`.
"""

__all__ = []
