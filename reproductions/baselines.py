"""Every baseline schedule on one task: the comparison all method tables share.

    python reproductions/baselines.py --task mnist1d_cnn [--smoke] [--size full] [--seeds 0 1 2]
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from common import grid_main  # noqa: E402

from keras_autolr.harness import methods, tasks  # noqa: E402

if __name__ == "__main__":
    task = "mnist1d_cnn"
    if "--task" in sys.argv:
        i = sys.argv.index("--task")
        task = sys.argv[i + 1]
        del sys.argv[i : i + 2]
    t = tasks.get(task)
    grid_main("Baseline LR schedules", task, methods.BASELINES, t.initial_lrs, [0, 1, 2],
              pathlib.Path(__file__).parent / "results" / f"baselines_{task}")
