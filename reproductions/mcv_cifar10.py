"""Thesis Tables 4.2 and 4.5 analog: MCV methods vs a grid-search baseline on CIFAR-10.

The study itself is `keras_autolr.harness.mcv_study` (also behind
`keras-autolr mcv reproduce`): every run goes through the harness runner
(`runner.run_cached`), one JSON record per run in `--out`, resumable.

Baseline (Table 4.2): SGD-momentum (0.9) and Adam at LR {0.1, 0.01, 0.001, 0.0001},
constant LR, early stopping on a held-out validation split (best epoch restored).
MCV (Table 4.5): discard, lr-voting, Method 1, Method 2 (alpha 0.1/0.3/0.5),
Method 3 with `MCVModel`, stopping by `MCVStopping` on the validation-batch
loss; MCV never sees the held-out split (its validation batches come from the
training data, as in the thesis).

Deviations from the thesis, forced by a shared 2-core CPU (stated in the results):
a CIFAR-10 subset, the thesis CNN at reduced width (`--width`), fewer epochs and a
shorter patience, one seed, no retraining of the baseline on 100% of the data.
The thesis sizes run with `--n-train 45000 --width 1 --epochs 100 --patience 20`
(and `--arch resnet18|vgg11`, `--dataset svhn_cropped_tfds --arch svhn_cnn` when
tensorflow-datasets can download) on a GPU.

Usage:

    python reproductions/mcv_cifar10.py --smoke --out /tmp/mcv_smoke
    python reproductions/mcv_cifar10.py --out reproductions/results/mcv_cifar10
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from keras_autolr.harness import mcv_study, models  # noqa: E402


def main(argv=None):
    default = mcv_study.StudyConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny CI size (< 2 min)")
    p.add_argument("--out", default="reproductions/results/mcv_cifar10")
    p.add_argument("--dataset", default=default.dataset)
    p.add_argument("--arch", default=default.arch, choices=sorted(models.MCV_ARCHS))
    p.add_argument("--n-train", type=int, default=default.n_train)
    p.add_argument("--n-val", type=int, default=default.n_val)
    p.add_argument("--n-test", type=int, default=default.n_test)
    p.add_argument("--width", type=float, default=default.width, help="multiplier of the thesis widths")
    p.add_argument("--epochs", type=int, default=default.epochs)
    p.add_argument("--patience", type=int, default=default.patience)
    p.add_argument("--batch", type=int, default=default.batch, help="baseline batch; MCV gets 2x (half validates)")
    p.add_argument("--optimizers", default=",".join(default.optimizers))
    p.add_argument("--mcv-optimizers", default=",".join(default.mcv_optimizers))
    p.add_argument("--only", default="", help="comma list: baseline,discard,voting,method1,method2,method3")
    p.add_argument("--seed", type=int, default=default.seed)
    p.add_argument("--pairing", default=default.pairing, choices=("half", "paired"),
                   help="half: split each 2x batch (default); paired: train on every batch, validate on "
                        "another random one (keras_autolr.runtime.mcv.PairedBatches, the thesis's Algorithm 3)")
    a = p.parse_args(argv)
    config = mcv_study.StudyConfig(
        dataset=a.dataset, arch=a.arch, n_train=a.n_train, n_val=a.n_val, n_test=a.n_test, width=a.width,
        epochs=a.epochs, patience=a.patience, batch=a.batch, optimizers=tuple(a.optimizers.split(",")),
        mcv_optimizers=tuple(a.mcv_optimizers.split(",")), only=tuple(filter(None, a.only.split(","))),
        seed=a.seed, pairing=a.pairing)
    if a.smoke:
        config = mcv_study.StudyConfig.smoke(**{k: getattr(config, k) for k in (
            "dataset", "arch", "batch", "mcv_optimizers", "only", "seed", "pairing")})
    mcv_study.run_study(config, a.out, log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
