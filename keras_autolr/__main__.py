import sys

from keras_autolr.cli import main

sys.exit(main())
