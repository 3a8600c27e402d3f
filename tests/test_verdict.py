"""The verdict rule and its Clopper-Pearson bounds, including the edge cases."""

import math

import pytest
from scipy.stats import binom

from claims.verdict import RULE, clopper_pearson, decide_verdict


def test_bounds_no_data():
    assert clopper_pearson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_bounds_none_fail_and_all_fail(k):
    lo, hi = clopper_pearson(0, k)
    assert lo == 0.0 and math.isclose(hi, 1 - 0.05 ** (1 / k), rel_tol=1e-9)
    lo, hi = clopper_pearson(k, k)
    assert hi == 1.0 and math.isclose(lo, 0.05 ** (1 / k), rel_tol=1e-9)


@pytest.mark.parametrize("f,k", [(1, 5), (2, 5), (3, 10), (7, 20)])
def test_bounds_are_one_sided_95(f, k):
    lo, hi = clopper_pearson(f, k)
    assert 0 < lo < f / k < hi < 1
    assert math.isclose(binom.sf(f - 1, k, lo), 0.05, rel_tol=1e-6)  # P(X >= f | lo) = alpha
    assert math.isclose(binom.cdf(f, k, hi), 0.05, rel_tol=1e-6)  # P(X <= f | hi) = alpha


def test_k1():
    assert clopper_pearson(0, 1) == pytest.approx((0.0, 0.95))
    assert clopper_pearson(1, 1) == pytest.approx((0.05, 1.0))
    assert decide_verdict(0, 1, 0.1) == "inconclusive"  # hi = 0.95 > 0.5
    assert decide_verdict(1, 1, 0.1) == "inconclusive"  # lo = 0.05 <= delta
    assert decide_verdict(1, 1, 0.01) == "fails"


@pytest.mark.parametrize(
    "f,k,delta,expected",
    [
        (0, 5, 0.1, "holds"),  # hi = 0.451
        (0, 4, 0.1, "inconclusive"),  # hi = 0.527 > 0.5
        (1, 5, 0.1, "inconclusive"),
        (2, 5, 0.1, "inconclusive"),
        (3, 5, 0.1, "fails"),  # lo = 0.189
        (5, 5, 0.1, "fails"),
        (1, 20, 0.1, "holds"),  # 0.05 <= delta, hi = 0.216
        (3, 20, 0.1, "inconclusive"),  # 0.15 > delta
        (0, 0, 0.1, "inconclusive"),
    ],
)
def test_rule(f, k, delta, expected):
    assert decide_verdict(f, k, delta) == expected


def test_error_and_skipped_take_precedence():
    assert decide_verdict(0, 5, 0.1, errors=1) == "error"
    assert decide_verdict(0, 0, 0.1, skipped=True) == "skipped"


@pytest.mark.parametrize("args", [(-1, 5), (6, 5), (1.5, 5), (0, -2), (True, 5)])
def test_bad_counts(args):
    with pytest.raises(ValueError, match="failures|k"):
        clopper_pearson(*args)


@pytest.mark.parametrize("delta", [-0.1, 1.0, float("nan")])
def test_bad_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        decide_verdict(0, 5, delta)


def test_rule_text_states_thresholds():
    assert "lo > delta" in RULE and "hi <= 0.5" in RULE
