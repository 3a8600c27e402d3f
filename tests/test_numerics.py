"""rnn_core.numerics.guarded_ratio: the suite's one guarded division, on every input kind."""

import math

import numpy as np
import pytest
import torch

from rnn_core.numerics import guarded_ratio

NUM = [2.0, 0.0, 3.0, -3.0, 0.0]
DEN = [4.0, 0.0, 0.0, 0.0, 5.0]


def _values(kind, zero_by_zero):
    if kind == "float":
        return [guarded_ratio(a, b, zero_by_zero=zero_by_zero) for a, b in zip(NUM, DEN)]
    if kind == "numpy":
        out = guarded_ratio(np.array(NUM), np.array(DEN), zero_by_zero=zero_by_zero)
        assert out.dtype == np.float64
        return list(out)
    out = guarded_ratio(torch.tensor(NUM, dtype=torch.float64), torch.tensor(DEN, dtype=torch.float64),
                        zero_by_zero=zero_by_zero)
    assert out.dtype == torch.float64
    return out.tolist()


def _same(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert (math.isnan(g) and math.isnan(e)) or g == e, (got, expected)


@pytest.mark.parametrize("kind", ["float", "numpy", "torch"])
@pytest.mark.parametrize("zero_by_zero", [math.nan, 0.0])
def test_degenerate_cases_are_the_stated_ones(kind, zero_by_zero):
    # x / 0 is a genuine blow-up (signed inf); 0 / 0 is the caller's stated value
    _same(_values(kind, zero_by_zero), [0.5, zero_by_zero, math.inf, -math.inf, 0.0])


def test_tensor_keeps_float32_and_broadcasts_a_scalar_denominator():
    out = guarded_ratio(torch.tensor([1.0, 0.0], dtype=torch.float32), 0.0, zero_by_zero=0.0)
    assert out.dtype == torch.float32
    assert out.tolist() == [math.inf, 0.0]


def test_integer_tensors_divide_as_floats():
    out = guarded_ratio(torch.tensor([1, 0]), torch.tensor([2, 0]), zero_by_zero=math.nan)
    assert out.dtype.is_floating_point
    _same(out.tolist(), [0.5, math.nan])


def test_integer_tensor_over_a_python_float_is_not_truncated():
    out = guarded_ratio(torch.tensor([1, 3]), 0.5, zero_by_zero=math.nan)
    assert out.tolist() == [2.0, 6.0]
