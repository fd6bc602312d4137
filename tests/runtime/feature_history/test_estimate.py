import numpy as np
import pytest

from keras_autolr.runtime.feature_history import estimate as est
from keras_autolr.runtime.feature_history.store import HistoryStore


def _blobs(n, seed, dim=8, classes=3, noise=1.0, centers=None):
    rng = np.random.default_rng(seed)
    if centers is None:
        centers = np.random.default_rng(123).normal(size=(classes, dim)) * 3
    y = rng.integers(0, classes, n)
    return centers[y] + noise * rng.normal(size=(n, dim)), y


def _record(epoch, noise, seed, kernel=None):
    htr, ytr = _blobs(600, seed, noise=noise)
    hv, yv = _blobs(300, 999, noise=noise)
    rec = {"epoch": epoch, "train_embeddings": htr, "train_labels": ytr,
           "val_embeddings": hv, "val_labels": yv}
    if kernel is not None:
        rec["kernel"], rec["bias"] = kernel
    return rec


def _loss(h, y, w, b):
    z = h @ w + b
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


def test_fit_reduces_loss_and_classifies_separable_data():
    h, y = _blobs(2000, 0, noise=0.5)
    w0, b0 = np.zeros((8, 3)), np.zeros(3)
    w, b = est.fit_linear_classifier(h, y, w0, b0, fit=est.THESIS_FIT)
    assert _loss(h, y, w, b) < 0.5 * _loss(h, y, w0, b0)
    hv, yv = _blobs(500, 1, noise=0.5)
    assert np.mean((hv @ w + b).argmax(1) == yv) > 0.95


def test_fit_starts_from_given_weights():
    h, y = _blobs(100, 0)
    w0 = np.random.default_rng(0).normal(size=(8, 3))
    b0 = np.ones(3)
    w, b = est.fit_linear_classifier(h, y, w0, b0, fit=est.ClassifierFit(steps=0))
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(b, b0)
    # One tiny step moves only slightly away from the initialisation.
    w1, _ = est.fit_linear_classifier(h, y, w0, b0, fit=est.ClassifierFit(epochs=1, learning_rate=1e-4))
    assert 0 < np.abs(w1 - w0).max() < 1e-2


def _hand_sgd(h, y, steps, lr0=0.05):
    """Full-batch SGD + momentum 0.9, wd 5e-4, LR decaying linearly to 0 over `steps`."""
    w, b = np.zeros((h.shape[1], 2)), np.zeros(2)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    onehot = np.eye(2)[y]
    for step in range(steps):
        lr = lr0 * (1 - step / steps)
        z = h @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = p - onehot
        vw = 0.9 * vw + h.T @ g / len(h) + 5e-4 * w
        vb = 0.9 * vb + g.mean(0) + 5e-4 * b
        w, b = w - lr * vw, b - lr * vb
    return w, b


def _two_blobs(n=10):
    return _blobs(n, 0, dim=2, classes=2, centers=np.array([[1.0, 0.0], [0.0, 1.0]]))


def test_linear_decay_matches_hand_computed_single_batch_steps():
    # Full-batch, 2 steps: lr_0 = 0.05, lr_1 = 0.025 (decay to 0 at step 2).
    h, y = _two_blobs()
    w, b = _hand_sgd(h, y, 2)
    w2, b2 = est.fit_linear_classifier(h, y, np.zeros((2, 2)), np.zeros(2),
                                       fit=est.ClassifierFit(epochs=2, batch_size=1024))
    np.testing.assert_allclose(w2, w, rtol=1e-10)
    np.testing.assert_allclose(b2, b, rtol=1e-10)


@pytest.mark.jax
def test_default_fit_takes_200_steps():
    # 10 rows < batch 1024: one full-batch step per pass, so the default is
    # exactly 200 hand-computed steps (the LR decays over 200, not 199 or 201).
    h, y = _two_blobs()
    assert est.DEFAULT_FIT.total_steps(len(h)) == 200
    w, b = est.fit_linear_classifier(h, y, np.zeros((2, 2)), np.zeros(2))
    for steps, close in ((200, True), (199, False), (201, False)):
        hw, hb = _hand_sgd(h, y, steps)
        assert np.allclose(w, hw, rtol=1e-10, atol=0) == close, steps
    np.testing.assert_allclose(b, _hand_sgd(h, y, 200)[1], rtol=1e-10)


@pytest.mark.jax
def test_step_budget_runs_whole_passes_then_a_partial_one():
    # 2,500 rows at batch 1024: 3 steps per pass; 200 steps = 66 passes + 2 steps.
    fit = est.ClassifierFit(steps=200)
    assert fit.total_steps(2500) == 200
    assert fit.passes(2500) == pytest.approx(66 + 2048 / 2500)
    assert est.THESIS_FIT.total_steps(2500) == 15 and est.THESIS_FIT.passes(2500) == 5.0
    assert est.THESIS_FIT.total_steps(40000) == 200  # the thesis's A.3.1 set: 5 x 40 steps
    assert est.THESIS_FIT.total_steps(8000) == 40  # A.3.2


@pytest.mark.jax
def test_classifier_fit_takes_steps_or_epochs_not_both():
    assert est.ClassifierFit().steps == 200 and est.ClassifierFit().epochs is None
    assert est.ClassifierFit(epochs=5).steps is None
    with pytest.raises(ValueError, match="not both"):
        est.ClassifierFit(steps=10, epochs=5)
    with pytest.raises(TypeError, match="ClassifierFit"):
        est.estimate_from_epochs([_record(0, 1.0, 0)], k=1, fit="thesis")


@pytest.mark.jax
def test_default_fit_moves_the_classifier_further_than_the_thesis_sizing():
    # 1,024 recorded rows: the thesis's 5 epochs at batch 1024 are 5 steps.
    h, y = _blobs(1024, 0, noise=2.0)
    w0 = np.random.default_rng(1).normal(size=(8, 3))
    b0 = np.zeros(3)
    wt, bt = est.fit_linear_classifier(h, y, w0, b0, fit=est.THESIS_FIT)
    wd, bd = est.fit_linear_classifier(h, y, w0, b0)
    assert np.linalg.norm(wd - w0) > 3 * np.linalg.norm(wt - w0)
    assert _loss(h, y, wd, bd) < _loss(h, y, wt, bt) < _loss(h, y, w0, b0)


@pytest.mark.jax
def test_estimate_reports_its_cost():
    recs = [_record(e, noise=2.0, seed=e) for e in range(3)]  # 600 rows each
    r = est.estimate_from_epochs(recs, k=3)
    assert r.fit_steps == 3 * 200
    assert r.fit_passes == pytest.approx(3 * est.DEFAULT_FIT.passes(600))
    assert r.seconds > 0 and r.cost_epochs is None
    t = est.estimate_from_epochs(recs, k=3, fit=est.THESIS_FIT)
    assert (t.fit_steps, t.fit_passes) == (15, 15.0)
    none = est.estimate_from_epochs([dict(rec, kernel=np.zeros((8, 3))) for rec in recs], k=3, fit=False)
    assert (none.fit_steps, none.fit_passes) == (0, 0.0)


def test_divergence_raises_clear_error():
    h, y = _blobs(100, 0)
    with pytest.raises(FloatingPointError, match="learning_rate"):
        est.fit_linear_classifier(h * 1e100, y, np.zeros((8, 3)),
                                  np.zeros(3), fit=est.ClassifierFit(learning_rate=1e200))


def test_kernel_shape_mismatch_is_explained():
    h, y = _blobs(10, 0)
    with pytest.raises(ValueError, match="does not feed the classifier"):
        est.fit_linear_classifier(h, y, np.zeros((5, 3)))


def test_ensemble_uses_last_k_and_flags_partial():
    recs = [_record(e, noise=3.0 - 0.2 * e, seed=e) for e in range(6)]
    with pytest.warns(UserWarning, match="fewer than k=10"):
        r = est.estimate_from_epochs(recs, k=10)
    assert r.partial and r.epochs == [0, 1, 2, 3, 4, 5]
    r4 = est.estimate_from_epochs(recs, k=4)
    assert not r4.partial and r4.epochs == [2, 3, 4, 5]
    assert len(r4.member_accuracies) == 4
    assert 0.0 <= r4.accuracy <= 1.0


def test_ensemble_of_identical_members_equals_member():
    rec = _record(0, noise=2.0, seed=0)
    r = est.estimate_from_epochs([rec] * 3, k=3, seed=0)
    # Same seed per position differs, so compare with a no-fit ensemble.
    w = np.random.default_rng(0).normal(size=(8, 3))
    rec_w = dict(rec, kernel=w, bias=np.zeros(3))
    single = est.estimate_from_epochs([rec_w], k=1, fit=False)
    triple = est.estimate_from_epochs([rec_w] * 3, k=3, fit=False)
    assert single.accuracy == triple.accuracy
    assert single.original_accuracies[0] == single.member_accuracies[0]
    assert 0 < r.accuracy <= 1


def test_ensemble_beats_noisy_members():
    """The thesis's premise: averaging oscillating epochs helps."""
    hv, yv = _blobs(400, 999, noise=1.5)
    rng = np.random.default_rng(0)
    centers = np.random.default_rng(123).normal(size=(3, 8)) * 3
    recs = []
    for e in range(10):
        # Each epoch's classifier: the right direction plus large noise.
        w = centers.T + rng.normal(scale=4.0, size=(8, 3))
        recs.append({"val_embeddings": hv, "val_labels": yv,
                     "train_embeddings": hv, "train_labels": yv,
                     "kernel": w, "bias": np.zeros(3)})
    r = est.estimate_from_epochs(recs, k=10, fit=False)
    assert r.accuracy > np.mean(r.member_accuracies) + 0.05


def test_estimate_file_upto_epoch(tmp_path):
    store = HistoryStore(tmp_path / "h.h5", fingerprint="x")
    for e in range(5):
        rec = _record(e, noise=2.0, seed=e,
                      kernel=(np.zeros((8, 3)), np.zeros(3)))
        store.write_epoch(e, {k: v for k, v in rec.items() if k != "epoch"})
    r = est.estimate_file(tmp_path / "h.h5", k=3, upto_epoch=3)
    assert r.epochs == [1, 2, 3] and not r.partial
    with pytest.warns(UserWarning, match="partial"):
        r2 = est.estimate_file(tmp_path / "h.h5", k=10)
    assert r2.partial and r2.epochs == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="no epochs"):
        est.estimate_file(tmp_path / "h.h5", upto_epoch=-1)


def test_no_records_error():
    with pytest.raises(ValueError, match="at least one epoch"):
        est.estimate_from_epochs([], k=10)
    with pytest.raises(ValueError, match="k must be"):
        est.estimate_from_epochs([_record(0, 1.0, 0)], k=0)


def test_estimate_runs_blas_on_one_thread_and_restores_it():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    before = blas_threads()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    with est._single_threaded_blas():
        assert blas_threads() == [1] * len(before)
        with est._single_threaded_blas():  # nested, as fit inside estimate
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
    # The library scan is done once per process, not once per classifier.
    assert est._blas_controller() is est._blas_controller()
