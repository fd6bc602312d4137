"""Feature-history overhead: recording, one estimate, bytes per epoch.

Side by side (interleaved, warm-up excluded, median of repeats, through
`keras_autolr.harness.timing.compare`) on MNIST-1D with the conv1d net:

* plain `fit` with `validation_data`;
* + `FeatureHistory` recording all training rows (the default
  `train_samples=4096` covers MNIST-1D's 3,600);
* + `FeatureHistory(train_samples=512)`;
* `FeatureHistory(train_samples=512, log_val_metrics=True)` with no
  `validation_data` for Keras: the recorder's validation pass replaces
  Keras's, so only the training subsample is extra;
* the same plus `ProxyAccuracy` every epoch (K=10).

Then the median time of one K=10 estimate against the median epoch time,
and HDF5 bytes per epoch (float32 and float16).

Usage:
    python benchmarks/fh_overhead.py [--repeats 5] [--epochs 5]
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from keras_autolr.harness import datasets, models, timing  # noqa: E402
from keras_autolr.runtime.feature_history import FeatureHistory  # noqa: E402
from keras_autolr.runtime.feature_history import ProxyAccuracy  # noqa: E402
from keras_autolr.runtime.feature_history import estimate  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--json", default=None, help="write the report here")
    a = p.parse_args(argv)
    s = datasets.load("mnist1d")
    tmp = tempfile.mkdtemp()
    train, val = (s.x_train, s.y_train), (s.x_val, s.y_val)

    def make(recorder_kwargs=None, keras_val=True, proxy=False):
        def fn():
            model = models.conv1d_net(s.x_train.shape[1:], s.num_classes)
            model.compile("adam", "sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            cbs = []
            if recorder_kwargs is not None:
                rec = FeatureHistory(os.path.join(tmp, "b.h5"), train, val,
                                     overwrite=True, **recorder_kwargs)
                cbs.append(rec)
                if proxy:
                    cbs.append(ProxyAccuracy(rec, k=10))
            kw = dict(x=s.x_train, y=s.y_train, epochs=a.epochs,
                      batch_size=128, callbacks=cbs)
            if keras_val:
                kw["validation_data"] = val
            return model, kw
        return fn

    variants = {
        "plain fit (+Keras val)": make(),
        "+FeatureHistory(all rows)": make({}),
        "+FeatureHistory(512 rows)": make({"train_samples": 512}),
        "FH(512) replaces Keras val": make(
            {"train_samples": 512, "log_val_metrics": True}, keras_val=False),
        "  + ProxyAccuracy(K=10)": make(
            {"train_samples": 512, "log_val_metrics": True}, keras_val=False,
            proxy=True),
    }
    report = timing.compare(variants, repeats=a.repeats, warmup_epochs=1)
    print(timing.format_report(
        report, title=f"MNIST-1D conv1d net, {a.epochs} epochs, "
                      f"backend {keras.backend.backend()}"))
    epoch_s = report["variants"]["plain fit (+Keras val)"]["median_s"] / (
        a.epochs)

    # CPU seconds (all threads) of the same fits: on a machine shared with
    # other jobs, wall time mostly measures the neighbours; CPU time measures
    # the work each variant adds.
    print("CPU time (process_time, all threads), median of "
          f"{a.repeats} interleaved repeats:")
    cpu_report = {}
    for k, v in report["variants"].items():
        cpu_report[k] = {"median_cpu_s": v["median_cpu_s"], "ratio": v["cpu_ratio"]}
        print(f"  {k:28s} {v['median_cpu_s']:8.3f} s  {v['cpu_ratio']:6.3f}x")
    report["cpu"] = cpu_report

    # One estimate, K=10, on a 10-epoch history (default recorder).
    sizes = {}
    for dtype in ("float32", "float16"):
        path = os.path.join(tmp, f"e_{dtype}.h5")
        model = models.conv1d_net(s.x_train.shape[1:], s.num_classes)
        model.compile("adam", "sparse_categorical_crossentropy")
        rec = FeatureHistory(path, train, val, dtype=dtype, overwrite=True)
        model.fit(s.x_train, s.y_train, epochs=10, batch_size=128,
                  callbacks=[rec], verbose=0)
        sizes[dtype] = rec.store.nbytes_per_epoch()
    records = list(rec.recent)
    est_s = timing.interleave(
        {"estimate": lambda: estimate.estimate_from_epochs(records, k=10, warn=False)},
        repeats=max(3, a.repeats), warmup=0)["variants"]["estimate"]["median_s"]
    t0 = time.perf_counter()
    estimate.estimate_file(path, k=10, warn=False)
    file_s = time.perf_counter() - t0
    n_train = len(records[-1]["train_labels"])
    print(f"one estimate (K=10, {n_train} training rows, in memory): "
          f"{est_s:.3f} s = {est_s / epoch_s:.2f} epoch "
          f"(plain epoch {epoch_s:.3f} s); from the HDF5 file: "
          f"{file_s:.3f} s")
    print(f"HDF5 bytes per epoch ({n_train} train + {len(s.x_val)} val rows, "
          f"64-d features): float32 {sizes['float32']:.0f}, float16 "
          f"{sizes['float16']:.0f}")
    if a.json:
        report.update(estimate_s=est_s, estimate_file_s=file_s,
                      epoch_s=epoch_s, bytes_per_epoch=sizes)
        pathlib.Path(a.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
