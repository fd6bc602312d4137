import numpy as np
import pytest

from keras_autolr.runtime.arc import preprocessing as pp


def test_resize_nearest_matches_hand_computed():
    # floor(i * 3 / 6) = 0,0,1,1,2,2
    np.testing.assert_array_equal(pp.resize_nearest([1.0, 2.0, 3.0], 6), [1, 1, 2, 2, 3, 3])
    # Downsizing picks floor(i * 4 / 2) = 0, 2
    np.testing.assert_array_equal(pp.resize_nearest([5.0, 6.0, 7.0, 8.0], 2), [5, 7])


def test_resize_linear_uses_pixel_centres():
    # Source positions (i + 0.5) * 2 / 4 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped to [0, 1].
    np.testing.assert_allclose(pp.resize_linear([0.0, 4.0], 4), [0.0, 1.0, 3.0, 4.0])
    np.testing.assert_allclose(pp.resize_linear([7.0], 3), [7.0, 7.0, 7.0])
    # Same length is the identity.
    np.testing.assert_allclose(pp.resize_linear([1.0, 5.0, 2.0], 3), [1.0, 5.0, 2.0])


def test_zscore_population_std_and_floor():
    np.testing.assert_allclose(pp.zscore([1.0, 3.0]), [-1.0, 1.0])  # mean 2, population std 1
    np.testing.assert_allclose(pp.zscore([4.0, 4.0, 4.0]), [0.0, 0.0, 0.0])  # floored std


def test_one_cycle_window_is_left_padded():
    w = pp.build_window([[3.0, 1.0]], [[2.0, 4.0]], [0.01])
    assert w.shape == (300, 3) and w.dtype == np.float32
    # Padding: train 0, val 0, lr 1.
    np.testing.assert_array_equal(w[:200], np.tile([0.0, 0.0, 1.0], (200, 1)))
    # Train: [3, 1] linearly resized to 100 points, z-scored: symmetric around 0.
    train = w[200:, 0]
    assert train[0] > 0 > train[-1]
    np.testing.assert_allclose(train, -train[::-1], atol=1e-6)
    np.testing.assert_allclose(train.mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(train.std(), 1.0, atol=1e-5)
    # Val [2, 4] z-scored to [-1, 1], nearest-resized: 50 x -1 then 50 x 1.
    np.testing.assert_array_equal(w[200:250, 1], -1.0)
    np.testing.assert_array_equal(w[250:, 1], 1.0)
    # LR divided by the oldest LR in the window.
    np.testing.assert_array_equal(w[200:, 2], 1.0)


def test_three_cycles_lr_and_val_columns():
    w = pp.build_window(
        [[1.0, 1.0], [2.0], [3.0, 3.0, 3.0]],
        [[1.0], [2.0], [3.0]],
        [0.1, 0.2, 0.05],
    )
    # Train: each cycle is constant, so the window is 100 x 1, 100 x 2, 100 x 3, z-scored.
    z = (np.array([1.0, 2.0, 3.0]) - 2.0) / np.sqrt(2.0 / 3.0)
    np.testing.assert_allclose(w[:, 0], np.repeat(z, 100), rtol=1e-6)
    np.testing.assert_allclose(w[:, 1], np.repeat(z, 100), rtol=1e-6)
    np.testing.assert_allclose(w[:, 2], np.repeat([1.0, 2.0, 0.5], 100), rtol=1e-6)


def test_only_last_three_cycles_are_used():
    a = pp.build_window([[9.0], [1.0], [2.0], [3.0]], None, [7.0, 1.0, 2.0, 3.0])
    b = pp.build_window([[1.0], [2.0], [3.0]], None, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(a, b)


def test_no_validation_gives_zero_column():
    w = pp.build_window([[2.0, 1.0], [1.0, 0.5]], None, [1e-3, 1e-3])
    np.testing.assert_array_equal(w[:, 1], 0.0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        pp.build_window([[1.0, np.nan]], None, [0.1])
    with pytest.raises(ValueError, match="one LR per cycle"):
        pp.build_window([[1.0], [2.0]], None, [0.1])
    with pytest.raises(ValueError, match="at least one cycle"):
        pp.build_window([], None, [])
    with pytest.raises(ValueError, match="empty"):
        pp.build_window([[]], None, [0.1])


def test_auto_frequency_gives_6_to_12_decisions_for_every_run_of_10_to_300_epochs():
    counts = {e: pp.num_decisions(e, pp.auto_frequency(e)) for e in range(10, 301)}
    assert all(6 <= n <= 12 for n in counts.values()), {e: n for e, n in counts.items() if not 6 <= n <= 12}
    # The docstring's exact counts.
    assert [e for e, n in counts.items() if n < 9] == [14, 15, 16, 17, 18, 27]
    assert [counts[e] for e in (14, 15, 17)] == [6, 7, 8]
    assert all(counts[e] == 9 for e in range(10, 301, 10))
    # Each is a decision at the end of a cycle, before the last epoch.
    for e in range(10, 301):
        f = pp.auto_frequency(e)
        assert counts[e] == len([k for k in range(f, e, f)])


def test_auto_frequency_keeps_the_papers_settings():
    assert pp.auto_frequency(30) == 3  # CIFAR-10: 30 epochs, every 3
    assert pp.auto_frequency(98) == 9  # PTB: 98 epochs, every 9
    assert [pp.auto_frequency(10 * n) for n in range(1, 11)] == list(range(1, 11))  # chains: 10 n epochs, every n
    assert [pp.auto_frequency(e) for e in (1, 5, 9)] == [1, 1, 1]
    assert pp.num_decisions(1, 1) == 0


def test_batch_losses_weight_by_samples():
    losses = [0.9, 0.6, 0.196]
    sizes = [32, 32, 7]
    seen = np.cumsum(sizes)
    means = np.cumsum(np.multiply(losses, sizes)) / seen
    np.testing.assert_allclose(pp.batch_losses(means, seen), losses, rtol=1e-6)
    assert pp.batch_losses(means, seen).dtype == np.float32
    assert pp.batch_losses([], []).size == 0
    with pytest.raises(ValueError, match="one count per mean"):
        pp.batch_losses([1.0, 2.0], [1])
    with pytest.raises(ValueError, match="increase"):
        pp.batch_losses([1.0, 2.0], [4, 4])
