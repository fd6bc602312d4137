import numpy as np

from keras_autolr.pipelines.arc import labels
from keras_autolr.runtime.arc.controller import KEEP, LOWER, RAISE


def test_paper_example_order_kept():
    # Section 3.3: l+, l1, l- = 0.113, 0.112, 0.111; re-run of "lower" gives 0.109.
    assert labels.corrected_label([0.113, 0.112, 0.111], LOWER, 0.109) == LOWER


def test_paper_example_order_changed_becomes_keep():
    assert labels.corrected_label([0.113, 0.112, 0.111], LOWER, 0.115) == KEEP


def test_order_change_among_non_winners_also_counts():
    # Winner stays raise, but keep/lower swap places: the full order changed.
    assert labels.corrected_label([0.10, 0.20, 0.30], KEEP, 0.35) == KEEP
    assert labels.corrected_label([0.10, 0.20, 0.30], KEEP, 0.25) == RAISE


def test_diverged_branches():
    assert labels.raw_label([np.inf, 0.5, 0.6]) == KEEP
    assert labels.raw_label([np.inf, np.inf, np.inf]) is None
    # The re-run diverging where the first run did not means noise: keep.
    assert labels.corrected_label([0.3, 0.5, 0.6], RAISE, np.nan) == KEEP


def test_chain_samples_windows_and_labels():
    steps, n, cycles = 4, 2, 4
    rng = np.random.default_rng(0)
    train = rng.uniform(1, 2, (cycles, n * steps))
    val = rng.uniform(1, 2, (cycles, n))
    lr = np.array([1.0, 1.618, 1.618, 1.0])
    branch = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.3, 0.1, 0.2]])
    chosen = np.array([0, 1, 2])
    val[1, -1] = 0.05  # re-run of raise: order kept -> raise
    val[2, -1] = 0.25  # re-run of keep: 0.3, 0.25, 0.1 keeps the order -> lower
    val[3, -1] = 0.5   # re-run of lower: order changes -> keep
    out = list(labels.chain_samples(train, val, lr, branch, chosen))
    assert [k for k, *_ in out] == [0, 1, 2]
    assert [fixed for *_, fixed in out] == [RAISE, LOWER, KEEP]
    assert [raw for _, _, raw, _ in out] == [RAISE, LOWER, KEEP]
    # Decision 2 sees main cycles 0..2; LR column divided by the oldest LR.
    np.testing.assert_allclose(out[2][1][:, 2], np.repeat([1.0, 1.618, 1.618], 100), rtol=1e-6)
    # Decision 0 sees one cycle, left-padded.
    np.testing.assert_array_equal(out[0][1][:200, 0], 0.0)


def test_unchecked_last_decision_is_dropped():
    train = np.ones((2, 4))
    val = np.ones((2, 1))
    out = list(labels.chain_samples(train, val, [1.0, 1.0], np.array([[0.1, 0.2, 0.3]] * 2), np.array([0, 0])))
    assert len(out) == 1
