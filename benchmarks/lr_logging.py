"""Overhead of keras_autolr's LR interface in `fit`: plain vs LearningRateLogger vs a
controller that sets the LR every epoch on a scheduled optimizer (multiplier installed).

    python -m benchmarks.lr_logging [--repeats 5] [--memory]   (from the repository root)
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from keras_autolr.harness import tasks, timing  # noqa: E402
from keras_autolr.runtime.lr_callback import LearningRateCallback, LearningRateLogger  # noqa: E402

_DATA = None


def _data():
    global _DATA
    if _DATA is None:
        _DATA = tasks.get("mnist1d_cnn").data("small")
    return _DATA


class _Nudge(LearningRateCallback):
    def on_epoch_begin(self, epoch, logs=None):
        self.set_lr(self.get_lr() * 0.99)


def _make(callbacks, schedule=False):
    d = _data()
    keras.utils.set_random_seed(0)
    model = tasks.get("mnist1d_cnn").build_model("small")
    lr = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.9) if schedule else 1e-3
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    return model, dict(x=d.x_train, y=d.y_train, batch_size=128, epochs=3, callbacks=callbacks)


def plain():
    return _make([])


def plain_schedule():
    return _make([], schedule=True)


def logger():
    return _make([LearningRateLogger()])


def controller_on_schedule():
    return _make([_Nudge()], schedule=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--memory", action="store_true")
    a = ap.parse_args()
    mod = "benchmarks.lr_logging"  # run from the repository root
    variants = {"plain fit": f"{mod}:plain", "LearningRateLogger": f"{mod}:logger",
                "plain fit, schedule": f"{mod}:plain_schedule",
                "controller on schedule": f"{mod}:controller_on_schedule"}
    rep = timing.compare(variants if a.memory else {k: globals()[v.split(':')[1]] for k, v in variants.items()},
                            repeats=a.repeats, peak_memory=a.memory)
    print(timing.format_report(rep, "LR interface overhead, MNIST-1D Conv1D, 3 epochs per fit"))
