"""The suite's straight-line fits, in one place (torch-free: the report uses them too).

- :func:`loglog_slope`: least squares ``log y = a log x + b`` (scipy.stats.linregress) with the standard
  error of ``a``; a power law ``y ~ x^a`` (NTK-CONV's error in m, PERT's statistics in omega, the
  report's threshold widths m*(L) ~ L^a).
- :func:`power_vs_exponential`: ``log y`` against ``log x`` (power law) and against ``x`` (exponential),
  both residual sums, and which fits better (CPLX-ADD / CPLX-NVAR's n_eps(L)).

A fit never raises on too few points: it returns NaNs and says why in ``note``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

__all__ = ["LineFit", "GrowthFit", "loglog_slope", "power_vs_exponential", "fmt_pm"]

# Residual sums that differ by rounding only count as a tie (relative 1e-12 of the larger, absolute
# 1e-20: an exact fit of log y leaves ~1e-30, not 0).
RSS_TIE = 1e-12
RSS_FLOOR = 1e-20


@dataclass(frozen=True)
class LineFit:
    """``log y = slope * t + intercept`` with t = log x (or x for the exponential fit).

    stderr: standard error of the slope (NaN with two points: an exact line has no error estimate);
    rss: residual sum of squares in log y; r2: coefficient of determination (NaN below 3 points)."""

    slope: float
    intercept: float
    stderr: float
    rss: float
    r2: float
    n: int
    note: str = ""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.slope)

    def describe(self, name: str = "a") -> str:
        """"a = 1.90 ± 0.30 (5 points)", or the reason there is no fit."""
        if not self.ok:
            return self.note or "not enough points"
        return f"{fmt_pm(self.slope, self.stderr, name)} ({self.n} points)"


def fmt_pm(value: float, stderr: float, name: str = "a") -> str:
    """``"a = 1.9 ± 0.3"`` (two significant digits of the error), or ``"a = 1.90"`` without an error."""
    if not math.isfinite(value):
        return f"{name} = n/a"
    if not math.isfinite(stderr) or stderr <= 0:
        return f"{name} = {value:.2f}"
    digits = max(0, 1 - int(math.floor(math.log10(stderr))))
    return f"{name} = {value:.{digits}f} ± {stderr:.{digits}f}"


def _nan_fit(n: int, note: str) -> LineFit:
    nan = math.nan
    return LineFit(nan, nan, nan, nan, nan, n, note)


def _line(t: np.ndarray, y: np.ndarray) -> LineFit:
    n = int(t.size)
    if n < 2 or np.unique(t).size < 2:
        return _nan_fit(n, f"not enough points ({n} finite; need 2 distinct)")
    if n == 2:
        slope = float((y[1] - y[0]) / (t[1] - t[0]))
        return LineFit(slope, float(y[0] - slope * t[0]), math.nan, 0.0, math.nan, 2)
    from scipy.stats import linregress

    res = linregress(t, y)
    resid = y - (res.slope * t + res.intercept)
    rss = float(np.sum(resid ** 2))
    # points exactly on a line: the slope's standard error is 0 (scipy gives NaN when y is constant)
    stderr = 0.0 if rss <= RSS_FLOOR else float(res.stderr)
    r2 = float(res.rvalue ** 2) if math.isfinite(res.rvalue) else 1.0
    return LineFit(float(res.slope), float(res.intercept), stderr, rss, r2, n)


def _finite_positive(xs: Iterable[Any], ys: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    pts = []
    for x, y in zip(xs, ys):
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError):
            continue
        if math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0:
            pts.append((fx, fy))
    pts.sort()
    return np.array([p[0] for p in pts], dtype=np.float64), np.array([p[1] for p in pts], dtype=np.float64)


def loglog_slope(xs: Iterable[Any], ys: Iterable[Any]) -> LineFit:
    """Fit ``log y = a log x + b`` over the points with finite x, y > 0 (others are left out)."""
    x, y = _finite_positive(xs, ys)
    return _line(np.log(x), np.log(y)) if x.size else _nan_fit(0, "no finite positive points")


@dataclass(frozen=True)
class GrowthFit:
    """log y against log x (``power``) and against x (``exponential``) over the same points."""

    power: LineFit
    exponential: LineFit
    xs: tuple[float, ...]
    ys: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.xs)

    @property
    def power_fits_better(self) -> bool | None:
        """True when the power law's residual sum is at most the exponential's (ties count as power);
        None without both fits."""
        rp, re = self.power.rss, self.exponential.rss
        if not (math.isfinite(rp) and math.isfinite(re)):
            return None
        return rp <= re + RSS_TIE * max(rp, re) + RSS_FLOOR


def power_vs_exponential(xs: Iterable[Any], ys: Iterable[Any]) -> GrowthFit:
    """Both fits of ``log y`` (see the module docstring) over the points with finite x, y > 0."""
    x, y = _finite_positive(xs, ys)
    if not x.size:
        empty = _nan_fit(0, "no finite positive points")
        return GrowthFit(empty, empty, (), ())
    ly = np.log(y)
    return GrowthFit(_line(np.log(x), ly), _line(x, ly), tuple(x.tolist()), tuple(y.tolist()))

