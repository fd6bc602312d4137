"""`python -m keras_autolr`: the `keras-autolr` command (`keras_autolr.cli.main`)."""

import sys

from keras_autolr.cli import main

sys.exit(main())
