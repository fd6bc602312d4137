"""`python -m keras_autolr.cli`: the `keras-autolr` command."""

import sys

from keras_autolr.cli import main

__all__ = []

if __name__ == "__main__":
    sys.exit(main())
