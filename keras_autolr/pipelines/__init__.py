"""Offline jobs that build the artifacts keras_autolr ships.

* `keras_autolr.pipelines.arc`: ARC's controller, from chain generation to
  the choice of the shipped `saved_controllers/arc.keras`.
* `keras_autolr.pipelines.mlrsnet`: meta-training of the shipped MLR-SNet nets.

Users of the callbacks never import these: the runtime (`keras_autolr.runtime`)
loads the finished artifacts. Pipelines may import the runtime and the
experiment harness (`keras_autolr.harness`), not the command line.
"""

__all__ = []
