"""claims/fits.py: the one log-log slope (with its standard error), power law against exponential,
and the guarded ratio with its stated 0/0 rule."""

import math

import numpy as np
import pytest
import torch

from claims.fits import fmt_pm, loglog_slope, power_vs_exponential


def test_slope_of_an_exact_power_law_and_its_error():
    m = [64, 256, 1024, 4096]
    fit = loglog_slope(m, [2.0 * x ** -0.5 for x in m])
    assert fit.slope == pytest.approx(-0.5, abs=1e-12) and fit.stderr == 0.0 and fit.n == 4
    flat = loglog_slope([1, 2, 4], [3, 3, 3])
    assert flat.slope == 0.0 and flat.stderr == 0.0  # scipy alone gives NaN here
    rng = np.random.default_rng(0)
    noisy = loglog_slope(m, [x ** -0.5 * math.exp(0.1 * rng.standard_normal()) for x in m])
    assert 0 < noisy.stderr < 0.2 and abs(noisy.slope + 0.5) < 3 * noisy.stderr + 0.05


def test_points_that_cannot_be_fitted_are_left_out_or_named():
    fit = loglog_slope([1, 2, 4, 8], [1.0, math.nan, 0.0, 8.0])  # NaN and 0 cannot enter log y
    assert fit.n == 2 and fit.slope == pytest.approx(1.0) and math.isnan(fit.stderr)
    none = loglog_slope([1], [1])
    assert not none.ok and "not enough points" in none.note and "not enough points" in none.describe()


def test_power_law_against_exponential():
    L = [2, 4, 8, 16]
    power = power_vs_exponential(L, [x ** 2 for x in L])
    assert power.power.slope == pytest.approx(2.0) and power.power_fits_better is True
    expo = power_vs_exponential(L, [2.0 ** (x + 4) for x in L])
    assert expo.exponential.slope == pytest.approx(math.log(2)) and expo.power_fits_better is False
    assert power_vs_exponential([2], [4]).power_fits_better is None


def test_fmt_pm():
    assert fmt_pm(1.9234, 0.31) == "a = 1.92 ± 0.31"
    assert fmt_pm(1.9234, 0.031, "slope") == "slope = 1.923 ± 0.031"
    assert fmt_pm(1.9, math.nan) == "a = 1.90"
    assert fmt_pm(math.nan, 0.1) == "a = n/a"
