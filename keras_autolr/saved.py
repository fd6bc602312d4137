"""Where the shipped, pretrained controllers are found.

They live in the repository's top-level `saved_controllers/` (the README
installs the package in editable mode, so that folder is beside the package).
`KERAS_AUTOLR_CONTROLLERS` points elsewhere, e.g. for a wheel install.
"""

import os
import pathlib

ENV = "KERAS_AUTOLR_CONTROLLERS"


def controllers_dir():
    if os.environ.get(ENV):
        return pathlib.Path(os.environ[ENV])
    return pathlib.Path(__file__).resolve().parent.parent / "saved_controllers"


def controller_path(filename):
    """Path of a shipped controller file; FileNotFoundError says where it looked."""
    path = controllers_dir() / filename
    if not path.exists():
        raise FileNotFoundError(
            f"Shipped controller {filename!r} not found in {path.parent}. Install keras-autolr "
            f"from a clone with `pip install -e .`, or set {ENV} to the folder holding it, "
            "or pass a controller path / keras.Model explicitly."
        )
    return path
