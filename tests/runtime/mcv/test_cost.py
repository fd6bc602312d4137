import pytest

from keras_autolr.runtime.mcv import cost


@pytest.mark.parametrize(
    "method,expected",
    [("baseline", (1, 1, 1)), ("voting", (9, 1, 8)), ("method1", (9, 1, 8)),
     ("method2", (16, 1, 8)), ("method3", (9, 1, 8)), ("discard", (3, 1, 1))],
)
def test_table_4_1_for_seven_candidates(method, expected):
    assert tuple(cost.step_cost(method, 7)) == expected


def test_cost_scales_with_candidate_count():
    assert tuple(cost.step_cost("method2", 4)) == (10, 1, 5)


def test_run_cost_is_thesis_formula():
    # epochs x steps x [(#fwd + #bwd), #step]
    assert cost.run_cost("method1", 7, epochs=2, steps_per_epoch=10) == (200.0, 160.0)


def test_ratios():
    assert cost.table_ratio("method2") == pytest.approx(17 / 2)
    # half-batch passes: (16 + 2) / 2 / 3
    assert cost.weighted_ratio("method2") == pytest.approx(3.0)
    assert cost.weighted_ratio("baseline", split=False) == pytest.approx(1.0)


def test_unknown_method_and_bad_count():
    with pytest.raises(ValueError, match="Unknown MCV method"):
        cost.step_cost("method4")
    with pytest.raises(ValueError):
        cost.step_cost("method1", 0)
