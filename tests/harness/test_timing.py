import keras
import numpy as np
import pytest

from keras_autolr.harness import timing
from tests.conftest import tiny_model, tiny_regression


def _make(callbacks):
    def make():
        x, y = tiny_regression()
        m = tiny_model()
        m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        return m, dict(x=x, y=y, batch_size=16, epochs=1, callbacks=callbacks)

    return make


def plain_variant():
    """A `module:function` variant for the peak-memory subprocess."""
    return _make([])()


def test_compare_reports_wall_and_cpu_ratios_against_first_variant():
    rep = timing.compare({"plain": _make([]), "other": _make([keras.callbacks.History()])}, repeats=2)
    assert rep["baseline"] == "plain"
    assert rep["variants"]["plain"]["ratio"] == 1.0
    other = rep["variants"]["other"]
    assert len(other["times"]) == len(other["cpu_times"]) == 2
    assert all(t > 0 for t in other["times"]) and all(c >= 0 for c in other["cpu_times"])
    text = timing.format_report(rep)
    assert "plain" in text and "cpu ratio" in text


def test_interleave_order_warmup_and_own_measurements():
    calls = []
    own = iter([(2.0, 1.0), (6.0, 3.0), (4.0, 1.0), (4.0, 4.0)])

    def variant(name):
        def fn():
            calls.append(name)
            return next(own) if len(calls) > 2 else None  # the warm-up calls return nothing
        return fn

    rep = timing.interleave({"a": variant("a"), "b": variant("b")}, repeats=2, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a"]  # ABBA after the warm-up
    a, b = rep["variants"]["a"], rep["variants"]["b"]
    assert a["times"] == [2.0, 4.0] and b["times"] == [6.0, 4.0] and b["cpu_times"] == [3.0, 1.0]
    assert b["ratio"] == pytest.approx((3.0 + 1.0) / 2)  # median of per-repeat ratios 6/2, 4/4
    assert b["min_ratio"] == 2.0 and b["cpu_ratio"] == pytest.approx((3.0 + 0.25) / 2)
    rr = []
    timing.interleave({"a": lambda: rr.append("a"), "b": lambda: rr.append("b")}, repeats=2, warmup=0,
                      alternate=False)
    assert rr == ["a", "b", "a", "b"]
    with pytest.raises(ValueError, match="at least one"):
        timing.interleave({})


def test_epoch_timer_times_each_epoch():
    x, y = tiny_regression()
    m = tiny_model()
    m.compile(optimizer="sgd", loss="mse")
    timer = timing.EpochTimer()
    m.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[timer])
    assert len(timer.wall) == len(timer.cpu) == 3 and all(t > 0 for t in timer.wall)


def test_peak_rss_is_read():
    v = timing.peak_rss_mb()
    assert v is None or v > 10


@pytest.mark.slow
def test_peak_memory_runs_each_variant_in_a_subprocess():
    spec = "tests.harness.test_timing:plain_variant"
    rep = timing.compare({"plain": spec, "again": spec}, repeats=1, peak_memory=True)
    peak = rep["variants"]["again"]["peak_rss_mb"]
    assert peak is None or (peak > 10 and np.isfinite(rep["variants"]["again"]["memory_ratio"]))
    assert "peak MiB" in timing.format_report(rep)
