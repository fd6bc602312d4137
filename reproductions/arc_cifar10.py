"""ARC Table 3 analog: CIFAR-10, ResNet-9 (cifar10-fast style), Adam, batch 128.

Compares ARC (every 3 epochs, as in the paper) with the paper's baselines
BLR (`constant`), CCD (`cosine_restarts`), ED (`exponential`, gamma 0.9) and
with `plateau` (ReduceLROnPlateau) and `schedule_free` (ScheduleFreeAdamW), at
initial LRs 1e-2 / 1e-3 / 1e-4. Reports best validation accuracy and
convergence step (mean ± std over seeds) and ARC Figure 3 style plots.

Sizes:
    --smoke: 512 images, width-4 net, 2 epochs, 1 seed, middle LR only (CI).
    default (CPU): 3,000-image subset, width-8 ResNet-9, 15 epochs, seeds from --seeds.
    --full: the paper's setting (45k/5k split, width 64, 30 epochs, 5 seeds); GPU.

Usage:
    python reproductions/arc_cifar10.py --smoke --out /tmp/arc_cifar10_smoke
    python reproductions/arc_cifar10.py --out reproductions/results/arc_cifar10
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from keras_autolr.harness import runner, tasks  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import write_arc_tables  # noqa: E402

METHODS = ["arc", "constant", "cosine_restarts", "exponential", "plateau", "schedule_free"]
LRS = [1e-2, 1e-3, 1e-4]
# The registered task (harness.tasks): 3,000-image subset, width-8 ResNet-9 at "small".
TASK_NAME = "cifar10_resnet9_arc"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reproductions/results/arc_cifar10")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--smoke", action="store_true")
    g.add_argument("--full", action="store_true")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 1 CPU, 5 full)")
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--lrs", nargs="*", type=float, default=None, help="default: all three (smoke: the middle one)")
    p.add_argument("--controller", default=None, help="ARC controller (default: shipped)")
    p.add_argument("--bn-momentum", type=float, default=0.9,
                   help="BatchNorm momentum (0.9 = cifar10-fast; 0.99 = Keras default)")
    p.add_argument("--no-val", action="store_true", help="ARC ignores the validation loss (use_validation=False)")
    p.add_argument("--epochs", type=int, default=None,
                   help="overrides the size's epochs (small: 15; 30 is the reference's CIFAR budget)")
    p.add_argument("--frequency", default=None,
                   help="ARC's epochs per decision, or 'auto' (about 10 decisions per run); default 3, the paper's")
    args = p.parse_args(argv)
    task = tasks.get(TASK_NAME).with_model_options(bn_momentum=args.bn_momentum)
    size = "smoke" if args.smoke else "full" if args.full else "small"
    lrs = args.lrs or ([LRS[1]] if args.smoke else LRS)
    seeds = list(range(args.seeds or (5 if args.full else 1)))
    freq = args.frequency or (1 if args.smoke else 3)
    freq = freq if freq == "auto" else int(freq)
    opts = {"arc": {"frequency": freq, "controller": args.controller,
                    "use_validation": not args.no_val},
            "exponential": {"gamma": 0.9}}
    records = runner.run_grid(task, args.methods, lrs, seeds, args.out, size=size,
                              epochs=args.epochs, optimizer="adam", options=opts)
    epochs = args.epochs or task.epochs_at(size)
    write_arc_tables(records, args.out, f"ARC Table 3 analog (CIFAR-10, size={size}, {epochs} epochs, seeds={len(seeds)}, "
        f"BatchNorm momentum {args.bn_momentum}, ARC frequency={freq}, use_validation={not args.no_val})",
                     f"CIFAR-10 ResNet-9 ({size})")


if __name__ == "__main__":
    main()
