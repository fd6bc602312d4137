"""Where the shipped artifacts (pretrained controllers and nets) are found.

The one lookup for every shipped file (`saved_controllers/arc.keras`, the
MLR-SNet nets). The folder is resolved at every call, so setting
`KERAS_AUTOLR_CONTROLLERS` after import takes effect:

1. `KERAS_AUTOLR_CONTROLLERS`, when set (e.g. for a wheel install);
2. the repository's top-level `saved_controllers/` (the README installs the
   package in editable mode, so that folder sits beside the package).

Example:

```python
from keras_autolr.runtime import artifacts
path = artifacts.artifact_path("arc.keras")
assert path.name == "arc.keras" and path.exists()
```
"""

import os
import pathlib

__all__ = ["ENV", "artifacts_dir", "artifact_path"]

ENV = "KERAS_AUTOLR_CONTROLLERS"


def artifacts_dir():
    """Returns the folder holding the shipped artifacts (read from the environment now).

    Returns:
        A `pathlib.Path`; it may not exist.

    Example:

    ```python
    from keras_autolr.runtime.artifacts import artifacts_dir

    folder = artifacts_dir()  # $KERAS_AUTOLR_CONTROLLERS, else the repository's saved_controllers/
    print(sorted(p.name for p in folder.glob("*.keras")))  # ['arc.keras', 'mlrsnet_image.keras', ...]
    ```
    """
    if os.environ.get(ENV):
        return pathlib.Path(os.environ[ENV])
    return pathlib.Path(__file__).resolve().parents[2] / "saved_controllers"


def artifact_path(filename, *, hint=None):
    """Returns the path of the shipped file `filename`, which must exist.

    Args:
        filename: file name inside `artifacts_dir()`, e.g. `"arc.keras"`.
        hint: an extra sentence for the error, e.g. how to rebuild the file.

    Returns:
        The existing `pathlib.Path`.

    Raises:
        FileNotFoundError: saying where it looked and what to do.

    Example:

    ```python
    from keras_autolr.runtime.artifacts import artifact_path

    print(artifact_path("mlrsnet_image.keras").name)  # mlrsnet_image.keras
    try:
        artifact_path("missing.keras", hint="Rebuild it with `keras-autolr ...`.")
    except FileNotFoundError as e:
        print(e)
    ```
    """
    path = artifacts_dir() / filename
    if not path.exists():
        raise FileNotFoundError(
            f"Shipped file {filename!r} not found in {path.parent}. Install keras-autolr "
            f"from a clone with `pip install -e .`, or set {ENV} to the folder holding it, "
            "or pass a path / keras.Model explicitly." + (f" {hint}" if hint else "")
        )
    return path
