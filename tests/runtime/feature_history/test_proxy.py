import keras
import numpy as np
import pytest

from keras_autolr.runtime.feature_history import FeatureHistory
from keras_autolr.runtime.feature_history import ProxyAccuracy
from keras_autolr.runtime.feature_history import estimate_from_epochs
from tests.runtime.feature_history.helpers import make_mlp


class _Seen(keras.callbacks.Callback):
    """Records what later callbacks (a tuner, a pruner) find in logs."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def on_epoch_end(self, epoch, logs=None):
        self.seen[epoch] = dict(logs or {})


def test_writes_logs_every_k_and_flags_partial(tmp_path, digits):
    xt, yt, xv, yv = digits
    keras.utils.set_random_seed(0)
    model = make_mlp()
    rec = FeatureHistory(tmp_path / "r.h5", (xt, yt), (xv, yv),
                         train_samples=400)
    proxy = ProxyAccuracy(rec, k=3, every=2)
    seen = _Seen()
    model.fit(xt, yt, epochs=5, batch_size=128, validation_data=(xv, yv),
              callbacks=[rec, proxy, seen], verbose=0)
    # Epochs 1 and 3 (every 2) and the last one (4).
    with_proxy = [e for e, logs in seen.seen.items()
                  if "val_proxy_accuracy" in logs]
    assert with_proxy == [1, 3, 4]
    assert seen.seen[1]["val_proxy_members"] == 2  # partial: 2 < k=3
    assert seen.seen[4]["val_proxy_members"] == 3
    assert proxy.results[0].partial and not proxy.results[-1].partial
    # Same number as the pure core on the recorder's last 3 epochs.
    again = estimate_from_epochs(list(rec.recent)[-3:], k=3, warn=False)
    assert seen.seen[4]["val_proxy_accuracy"] == pytest.approx(
        again.accuracy)


def test_order_in_callback_list_does_not_matter(tmp_path, digits):
    xt, yt, xv, yv = digits
    results = []
    for name, order in (("a", "rec_first"), ("b", "proxy_first")):
        keras.utils.set_random_seed(0)
        model = make_mlp()
        rec = FeatureHistory(tmp_path / f"{name}.h5", (xt, yt), (xv, yv),
                             train_samples=400)
        proxy = ProxyAccuracy(rec, k=2)
        cbs = [rec, proxy] if order == "rec_first" else [proxy, rec]
        h = model.fit(xt, yt, epochs=2, batch_size=128, callbacks=cbs,
                      verbose=0, shuffle=False)
        results.append(h.history["val_proxy_accuracy"])
        assert rec.store.epochs() == [0, 1]
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)


def test_bad_arguments(tmp_path, digits):
    xt, yt, xv, yv = digits
    rec = FeatureHistory(tmp_path / "r.h5", (xt, yt), (xv, yv),
                         keep_in_memory=2)
    with pytest.raises(ValueError, match="k and every"):
        ProxyAccuracy(rec, k=0)
    ProxyAccuracy(rec, k=10)
    assert rec.recent.maxlen == 10  # the recorder keeps enough epochs
