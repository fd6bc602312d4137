import keras
import numpy as np

from keras_autolr.harness import timing as benchmark
from tests.conftest import tiny_model, tiny_regression


def _make(callbacks):
    def make():
        x, y = tiny_regression()
        m = tiny_model()
        m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        return m, dict(x=x, y=y, batch_size=16, epochs=1, callbacks=callbacks)

    return make


def test_compare_reports_ratios_against_first_variant():
    rep = benchmark.compare({"plain": _make([]), "other": _make([keras.callbacks.History()])}, repeats=2)
    assert rep["baseline"] == "plain"
    assert rep["variants"]["plain"]["ratio"] == 1.0
    assert len(rep["variants"]["other"]["times"]) == 2
    assert all(t > 0 for t in rep["variants"]["other"]["times"])
    text = benchmark.format_report(rep)
    assert "plain" in text and "ratio" in text


def test_peak_rss_is_read():
    v = benchmark.peak_rss_mb()
    assert v is None or v > 10
