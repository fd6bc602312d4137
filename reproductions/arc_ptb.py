"""ARC Table 5 analog: PTB word-level LSTM language model, SGD, batch 128, sequence 20.

Compares ARC with BLR (`constant`), CCD (`cosine_restarts`), ED (`exponential`,
gamma 0.96 as in the paper), `plateau` and `schedule_free`, at initial LRs
1.0 / 0.1 / 0.01. ARC runs with frequency "auto" (about 10 decisions per run;
the paper used every 9 of 98 epochs). Metric: validation perplexity (lower is
better). ScheduleFreeAdamW ignores the SGD choice (it is its own optimizer).

Sizes:
    --smoke: 256 sequences, 16/32 LSTM, 2 epochs, LR 0.1 only (CI).
    default (CPU): 1,000 training sequences, embedding 32, LSTM 64, 10 epochs
        (ARC decides after every epoch: "auto" gives max(1, 10 // 10) = 1).
    --full: the paper's (whole corpus, 300/600 LSTM, 98 epochs, 5 seeds); GPU.

Usage:
    python reproductions/arc_ptb.py --smoke --out /tmp/arc_ptb_smoke
    python reproductions/arc_ptb.py --out reproductions/results/arc_ptb
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
LRS = [1.0, 0.1, 0.01]
# The registered task (harness.tasks): 1,000 sequences, embedding 32, LSTM 64 at "small".
TASK = tasks.get("ptb_lstm_arc")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reproductions/results/arc_ptb")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--smoke", action="store_true")
    g.add_argument("--full", action="store_true")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 1 CPU, 5 full)")
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--lrs", nargs="*", type=float, default=None, help="default: all three (smoke: the middle one)")
    p.add_argument("--controller", default=None, help="ARC controller (default: shipped)")
    args = p.parse_args(argv)
    size = "smoke" if args.smoke else "full" if args.full else "small"
    lrs = args.lrs or ([LRS[1]] if args.smoke else LRS)
    seeds = list(range(args.seeds or (5 if args.full else 1)))
    opts = {"arc": {"frequency": 1 if args.smoke else "auto", "controller": args.controller},
            "exponential": {"gamma": 0.96}}
    records = runner.run_grid(TASK, args.methods, lrs, seeds, args.out, size=size,
                              optimizer="sgd", options=opts)
    write_arc_tables(records, args.out, f"ARC Table 5 analog (PTB, size={size}, seeds={len(seeds)})",
                     f"PTB word LSTM ({size})")


if __name__ == "__main__":
    main()
