"""MLR-SNet meta-training curves (paper Fig. 1(d) / 4(a) style), CPU-sized.

Runs (or, with `--from-dir`, only re-plots) the meta-training that produced
the shipped nets, with the same settings as `keras-autolr mlrsnet meta-train`
(both take them from `keras_autolr.harness.recipes.meta_training`), and
writes the curves of test metric and predicted LR per epoch plus the history
JSON:

* image: small CNN (BN) on a CIFAR-10 subset, SGD (momentum 0, wd 5e-4),
  batch 128, theta updated every `t_val` steps on a validation batch carved
  from the training data;
* text: 1-layer LSTM LM on a PTB subset, SGD (wd 5e-6, clip 0.25), batch 32.

Sizes: `--smoke` (CI: 1 epoch of 1,000 images / 20k tokens), default "small"
(the shipped nets' exact commands, with the details they were meta-trained
with: `recipes.META_DETAILS["shipped"]`), `--full` (the reference's sizes: 50k
images, 200 epochs, t_val 300; a GPU job), `--cpu-reference` (image only:
the re-meta-training of issue 18.3 in `saved_controllers/mlrsnet.md`, the
reference's data, budget, schedule and details with the small CNN, about 3 h
on one free CPU core). Every size but "small" uses the reference's details.

Example:

    python reproductions/mlrsnet_meta_train.py --smoke
    python reproductions/mlrsnet_meta_train.py --cpu-reference --task image
    python reproductions/mlrsnet_meta_train.py --task image --from-dir runs/mlrsnet_image
"""

import argparse
import json
import os
import pathlib
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "reproductions" / "results" / "mlrsnet_meta_train"

# `recipes.meta_training` keyword arguments per (task, size); "small" are the shipped nets' commands
# (saved_controllers/mlrsnet.md), with their details.
PRESETS = {
    ("image", "smoke"): dict(n_train=1200, val_size=200, epochs=1, t_val=5, width=8),
    ("image", "small"): dict(n_train=10000, epochs=40, t_val=35, seed=0, details="shipped"),
    ("image", "full"): dict(epochs=200, t_val=300, val_size=1000),
    # Issue 18.3: all 50k CIFAR-10 images (1,000 held out, 100 per class), 200 epochs, theta on batch 299 of
    # each 382-batch epoch: the official run but for the model (small CNN, width 32, not ResNet-18).
    ("image", "cpu_reference"): dict(epochs=200, t_val=300, val_size=1000, width=32, seed=0, details="reference"),
    ("text", "smoke"): dict(n_tokens=20000, val_size=50, epochs=1, t_val=5, units=32),
    ("text", "small"): dict(n_tokens=100000, epochs=15, t_val=20, seed=0, details="shipped"),
    ("text", "full"): dict(epochs=150, t_val=100, units=512),
}


def plot(task, history, path):
    from keras_autolr.harness import reports

    plt = reports.pyplot()
    if plt is None:
        return
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot(ep, [h["lr_mean"] for h in history], marker=".")
    ax[0].set_ylabel("predicted LR (epoch mean)")
    ax[0].set_yscale("log")
    key = "test_accuracy" if task == "image" else "test_perplexity"
    ax[1].plot(ep, [h.get(key) for h in history], marker=".")
    ax[1].set_ylabel(key.replace("_", " "))
    for a in ax:
        a.set_xlabel("epoch")
    fig.suptitle(f"MLR-SNet meta-training ({task})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--smoke", action="store_true")
    g.add_argument("--full", action="store_true")
    g.add_argument("--cpu-reference", action="store_true", help="image: issue 18.3's re-meta-training (hours)")
    p.add_argument("--task", choices=("image", "text"), default="image")
    p.add_argument("--from-dir", default=None, help="plot an existing checkpoint dir instead of training")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    size = "smoke" if a.smoke else ("full" if a.full else ("cpu_reference" if a.cpu_reference else "small"))
    if (a.task, size) not in PRESETS:
        p.error(f"no {size} preset for --task {a.task}")
    out = pathlib.Path(a.out) if a.out else OUT / (size if size != "small" else "")
    out.mkdir(parents=True, exist_ok=True)
    ck = pathlib.Path(a.from_dir) if a.from_dir else out / f"work_{a.task}"
    if not a.from_dir:
        from keras_autolr.harness import recipes
        from keras_autolr.pipelines.mlrsnet.meta_train import meta_train

        net, _ = meta_train(**recipes.meta_training(a.task, **PRESETS[(a.task, size)]), checkpoint_dir=str(ck))
        net.meta = dict(net.meta, command=" ".join(sys.argv), data=recipes.DEFAULT_DATA[a.task])
        net.save(out / f"mlrsnet_{a.task}.keras")
        print(f"saved {out / f'mlrsnet_{a.task}.keras'}")
    history = json.loads((ck / "history.json").read_text())
    shutil.copy(ck / "history.json", out / f"{a.task}_history.json")
    plot(a.task, history["history"], out / f"{a.task}_meta_train.png")
    last = history["history"][-1]
    print(json.dumps({k: v for k, v in last.items() if k != "lr_trace"}))


if __name__ == "__main__":
    main()
