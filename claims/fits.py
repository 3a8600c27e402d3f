"""The suite's straight-line fits, in one place (torch-free: the report uses them too).

- :func:`loglog_slope`: least squares ``log y = a log x + b`` (scipy.stats.linregress) with the standard
  error of ``a``; a power law ``y ~ x^a`` (NTK-CONV's error in m, PERT's statistics in omega, the
  report's threshold widths m*(L) ~ L^a).
- :func:`power_vs_exponential`: ``log y`` against ``log x`` (power law) and against ``x`` (exponential),
  both residual sums, and which fits better (CPLX-ADD / CPLX-NVAR's n_eps(L)).
- :func:`growth_law`: the same two laws fitted to points known to intervals (exact values, "y > low",
  "y <= high", [low, high]) by a censored Gaussian likelihood in log y, with profile-likelihood
  intervals for the exponent and the rate and the evidence ratio (threshold widths m*(L), n_eps(L)).

A fit never raises on too few points: it returns NaNs and says why in ``note``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

__all__ = ["LineFit", "GrowthFit", "GrowthLaw", "SCALE_FLOOR", "loglog_slope", "power_vs_exponential", "growth_law",
           "fmt_pm"]

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



# ---------------------------------------------------------------------------------------------------
# growth laws with censored points
# ---------------------------------------------------------------------------------------------------

#: floor on the residual scale s of log y in :func:`growth_law` (a spread of 5% in y). When one line
#: crosses every interval (a threshold width m* resolved to a factor 2^(1/4), i.e. 0.17 in log m*) the
#: likelihood is largest at s -> 0, and exact points on one line make it unbounded there; the floor,
#: about the standard deviation of log y rounded to such an interval (0.17 / sqrt(12) = 0.05), keeps the
#: fit and its interval finite and is reached only by data that scatter less than the measurement
#: resolves.
SCALE_FLOOR = 0.05
_TIE_LOG_EVIDENCE = 1e-9  # |log likelihood ratio| below this: the data do not prefer either law


def _log_interval_prob(zl: np.ndarray, zh: np.ndarray) -> np.ndarray:
    """log(Phi(zh) - Phi(zl)) for zl < zh (entries may be -inf / +inf), accurate in both tails."""
    from scipy.special import log_ndtr

    upper = zl > 0  # both in the upper tail: use survival functions Phi(-z)
    a = np.where(upper, -zh, zl)
    b = np.where(upper, -zl, zh)  # log(Phi(b) - Phi(a)), a < b <= ... with b the larger
    lb, la = log_ndtr(b), log_ndtr(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lb + np.log(-np.expm1(la - lb))


class _Censored:
    """The censored Gaussian log-likelihood of ``log y = slope * t + intercept + s * eps`` (interval
    regression): an exact point contributes log phi((y - mu) / s) - log s, an interval [lo, hi] (one end
    may be infinite) log(Phi((hi - mu) / s) - Phi((lo - mu) / s)); all in log y.

    It is maximized in Olsen's parameters gamma = 1 / s, delta = (slope, intercept) / s, in which every
    z = (bound - mu) / s is linear and the log-likelihood is concave (log Phi(z_h) - Phi(z_l) is jointly
    concave, the normal being log-concave), so Newton's method with a line search finds the maximum;
    the floor on s is the bound gamma <= 1 / floor. Results are reported as p = (slope, intercept,
    u = log s)."""

    _LOG_2PI = math.log(2 * math.pi)

    def __init__(self, t: np.ndarray, lo: np.ndarray, hi: np.ndarray, floor: float) -> None:
        self.t, self.lo, self.hi = t, lo, hi
        self.log_floor = math.log(floor)
        self.gamma_max = 1.0 / floor
        e = lo == hi
        self.te, self.ye = t[e], lo[e]
        self.ti, self.loi, self.hii = t[~e], lo[~e], hi[~e]
        self.fl, self.fh = np.isfinite(self.loi), np.isfinite(self.hii)

    def _design(self, a_fixed: float | None):
        """(C_e, Y_e, C_i, Hl, Hh): z = gamma * Y + C @ delta for the exact points, z_l, z_h =
        gamma * Hl (Hh) + C @ delta for the others; delta = (slope, intercept) / s, or intercept / s at a
        fixed slope (then Y, Hl, Hh are the bounds less a_fixed * t)."""
        if a_fixed is None:
            ce = np.stack([-self.te, -np.ones_like(self.te)], axis=1)
            ci = np.stack([-self.ti, -np.ones_like(self.ti)], axis=1)
            return ce, self.ye, ci, np.where(self.fl, self.loi, 0.0), np.where(self.fh, self.hii, 0.0)
        ce, ci = -np.ones((self.te.size, 1)), -np.ones((self.ti.size, 1))
        return (ce, self.ye - a_fixed * self.te, ci, np.where(self.fl, self.loi - a_fixed * self.ti, 0.0),
                np.where(self.fh, self.hii - a_fixed * self.ti, 0.0))

    def _eval(self, theta: np.ndarray, design) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(log-likelihood, gradient, Hessian in theta = (delta, gamma), dll/dz_e, dll/dz shift_i)."""
        ce, ye, ci, hl, hh = design
        delta, gamma = theta[:-1], float(theta[-1])
        k = theta.size
        grad, H = np.zeros(k), np.zeros((k, k))
        ll = 0.0
        ze = gamma * ye + ce @ delta
        if ze.size:
            ll += float(np.sum(-0.5 * ze * ze)) + ze.size * (math.log(gamma) - 0.5 * self._LOG_2PI)
            ve = np.concatenate([ce, ye[:, None]], axis=1)  # dz / dtheta
            grad += -(ze @ ve)
            grad[-1] += ze.size / gamma
            H -= ve.T @ ve
            H[-1, -1] -= ze.size / gamma ** 2
        A = np.zeros(0)
        if ci.shape[0]:
            m = ci @ delta
            zl = np.where(self.fl, gamma * hl + m, -np.inf)
            zh = np.where(self.fh, gamma * hh + m, np.inf)
            logp = _log_interval_prob(zl, zh)
            ll += float(logp.sum())
            zl0, zh0 = np.where(self.fl, zl, 0.0), np.where(self.fh, zh, 0.0)
            with np.errstate(over="ignore", invalid="ignore"):
                # phi(z) / P at each end (0 at an infinite end); P underflowing to 0 makes ll -inf, which
                # the line search rejects
                wl = np.where(self.fl, np.exp(-0.5 * zl0 * zl0 - 0.5 * self._LOG_2PI - logp), 0.0)
                wh = np.where(self.fh, np.exp(-0.5 * zh0 * zh0 - 0.5 * self._LOG_2PI - logp), 0.0)
            A = wh - wl  # dll / dm
            grad[:-1] += A @ ci
            grad[-1] += float(wh @ hh - wl @ hl)
            qhh, qll, qhl = -zh0 * wh - wh * wh, zl0 * wl - wl * wl, wh * wl
            s_dd = qhh + qll + 2 * qhl
            s_dg = qhh * hh + qll * hl + qhl * (hh + hl)
            s_gg = qhh * hh * hh + qll * hl * hl + 2 * qhl * hh * hl
            H[:-1, :-1] += ci.T @ (s_dd[:, None] * ci)
            H[:-1, -1] += s_dg @ ci
            H[-1, :-1] = H[:-1, -1]
            H[-1, -1] += float(s_gg.sum())
        return ll, grad, H, -ze, A

    def start(self) -> np.ndarray:
        """Least squares on a representative value per point (the midpoint, or the finite bound)."""
        lo, hi = self.lo, self.hi
        y = np.where(np.isfinite(lo) & np.isfinite(hi), 0.5 * (lo + hi), np.where(np.isfinite(lo), lo, hi))
        a, b = np.polyfit(self.t, y, 1) if np.unique(self.t).size >= 2 else (0.0, float(np.mean(y)))
        r = y - (a * self.t + b)
        return np.array([float(a), float(b), max(math.log(max(float(np.std(r)), 1e-300)), self.log_floor + 0.5)])

    def fit(self, x0: np.ndarray | None = None, a_fixed: float | None = None) -> tuple[float, np.ndarray]:
        """Maximum of the log-likelihood over p = (a, b, u = log s >= log floor), or over (b, u) at
        a = a_fixed (the profile): projected Newton steps in Olsen's parameters with a backtracking line
        search; returns (max, p)."""
        a0, b0, u0 = (self.start() if x0 is None else np.array(x0, dtype=float))
        if a_fixed is not None:
            b0 += (a0 - a_fixed) * float(np.mean(self.t))  # the line through the same centre
            a0 = a_fixed
        gamma = min(math.exp(-u0), self.gamma_max)
        design = self._design(a_fixed)
        theta = np.array([a0 * gamma, b0 * gamma, gamma] if a_fixed is None else [b0 * gamma, gamma])
        k = theta.size
        ll, g, H, _, _ = self._eval(theta, design)
        for _ in range(100):
            free = list(range(k))
            if theta[-1] >= self.gamma_max * (1 - 1e-12) and g[-1] >= 0:
                free.remove(k - 1)  # s at its floor, pushed further down: the bound is active
            gf = g[free]
            if float(np.max(np.abs(gf))) < 1e-8:
                break
            Hf = H[np.ix_(free, free)]
            try:
                np.linalg.cholesky(-Hf)
                step = np.linalg.solve(Hf, -gf)
            except np.linalg.LinAlgError:  # not strictly concave here (rounding): a gradient step
                step = gf / max(1.0, float(np.max(np.abs(gf))))
            d = np.zeros(k)
            d[free] = step
            t = 1.0
            if d[-1] > 0 and theta[-1] + d[-1] > self.gamma_max:  # stop at the floor of s
                t = (self.gamma_max - theta[-1]) / d[-1]
            if d[-1] < 0 and theta[-1] + t * d[-1] <= 0:  # keep gamma > 0
                t = 0.5 * theta[-1] / -d[-1]
            slope = float(gf @ step)
            while True:
                new = theta + t * d
                new[-1] = min(new[-1], self.gamma_max)
                lln, gn, Hn, _, _ = self._eval(new, design)
                if math.isfinite(lln) and lln >= ll + 1e-4 * t * slope:
                    break
                t *= 0.5
                if t < 1e-14:
                    break
            if t < 1e-14:
                break
            small = abs(lln - ll) <= 1e-13 * max(1.0, abs(ll))
            theta, ll, g, H = new, lln, gn, Hn
            if small:
                break
        gamma = float(theta[-1])
        a = theta[0] / gamma if a_fixed is None else a_fixed
        b = theta[-2] / gamma
        return ll, np.array([float(a), float(b), -math.log(gamma)])

    def slope_score(self, p: np.ndarray) -> float:
        """d loglik / d slope at p = (a, b, u) (the intercept and s held): by the envelope theorem, the
        derivative of the profile log-likelihood at a when p is the profile's optimum there."""
        a, b, u = (float(v) for v in p)
        gamma = math.exp(-u)
        design = self._design(None)
        _, _, _, dze, A = self._eval(np.array([a * gamma, b * gamma, gamma]), design)
        # z = gamma (bound - a t - b): dz/da = -gamma t, and dll/dz is -z_e (exact) or A (intervals)
        return float(-gamma * (dze @ self.te + A @ self.ti))

    def slope_variance(self, p: np.ndarray) -> float:
        """The Wald variance of the slope at the maximum p (delta method from Olsen's parameters)."""
        a, b, u = (float(v) for v in p)
        gamma = math.exp(-u)
        _, _, H, _, _ = self._eval(np.array([a * gamma, b * gamma, gamma]), self._design(None))
        jac = np.array([1.0 / gamma, 0.0, -a / gamma])  # d(delta_a / gamma) / d theta
        try:
            return float(jac @ np.linalg.solve(-H, jac))
        except np.linalg.LinAlgError:
            return math.nan


def _profile_interval(model: _Censored, ll_max: float, best: np.ndarray, cutoff: float
                      ) -> tuple[float, float]:
    """The ends of {a : max_{b, s} loglik(a, b, s) >= ll_max - cutoff / 2}. Newton's method on
    h(a) = profile(a) - (ll_max - cutoff / 2), whose derivative is d loglik / da at the profile's
    optimum (envelope theorem), safeguarded by bisection within a bracket found by stepping outwards from
    the Wald guess; an end not reached within |a - a_hat| <= 1e3 is infinite (censored points leave the
    slope unbounded on that side)."""
    a_hat = float(best[0])
    target = ll_max - 0.5 * cutoff
    var = model.slope_variance(best)
    half = math.sqrt(cutoff * var) if math.isfinite(var) and var > 0 else math.nan
    if not math.isfinite(half) or half <= 0 or half > 10.0 * (1.0 + abs(a_hat)):
        # no usable Wald guess (a flat maximum: interval points that a band of lines passes through all
        # leave the Hessian near singular): step outwards from a small bracket instead
        half = 0.1 + 0.1 * abs(a_hat)
    warm = {"x": best}

    def h(a: float) -> tuple[float, float]:
        ll, x = model.fit(warm["x"], a_fixed=a)
        warm["x"] = x
        return ll - target, model.slope_score(x)

    ends = []
    for sign in (-1.0, 1.0):
        warm["x"] = best
        inner, outer, width = a_hat, None, half
        while width <= 1e3:
            a = a_hat + sign * width
            v, dv = h(a)
            if v < 0:
                outer = a
                break
            inner, width = a, 2 * width
        if outer is None:
            ends.append(sign * math.inf)
            continue
        for _ in range(60):
            lo_, hi_ = min(inner, outer), max(inner, outer)
            nxt = a - v / dv if dv != 0 and math.isfinite(dv) else math.nan
            if not (lo_ < nxt < hi_):
                nxt = 0.5 * (inner + outer)
            a = nxt
            v, dv = h(a)
            if v >= 0:
                inner = a
            else:
                outer = a
            if abs(v) < 1e-7 or abs(outer - inner) < 1e-7:
                break
        ends.append(float(a))
    return ends[0], ends[1]


def _cutoff(n: int, confidence: float) -> float:
    """The drop 2 (loglik_max - profile) that bounds the interval: n log(1 + t^2 / (n - 2)) with t the
    two-sided ``confidence`` quantile of Student's t with n - 2 degrees of freedom. For n exact points
    this is the profile-likelihood form of the exact t interval of least squares; it tends to the chi2_1
    quantile (3.84 at 95%) as n grows (8.6 at n = 5, 5.4 at n = 9)."""
    from scipy.stats import t as student

    q = float(student.ppf(0.5 + 0.5 * confidence, n - 2))
    return n * math.log1p(q * q / (n - 2))


@dataclass(frozen=True)
class GrowthLaw:
    """Power law ``y = c x^a`` against exponential ``y = c' exp(r x)`` fitted to censored points.

    law: "power" or "exponential", whichever has the larger likelihood (None on a tie or without a
        fit); exponent, exponent_ci: a and its interval; rate, rate_ci: r (log base e) and its interval
        (an end may be +-inf where censored points leave it unbounded); evidence_ratio:
        exp(loglik_power - loglik_exponential) (> 1 favours the power law); points: points with at least
        one finite bound; censored: the one-sided ones among them; scale_power, scale_exponential: the
        fitted residual scales s of log y; note: why something is missing (empty when all is there).
    """

    law: str | None
    exponent: float
    exponent_ci: tuple[float, float] | None
    rate: float
    rate_ci: tuple[float, float] | None
    evidence_ratio: float
    points: int
    censored: int
    note: str = ""
    scale_power: float = math.nan
    scale_exponential: float = math.nan
    confidence: float = 0.95

    @property
    def ok(self) -> bool:
        return math.isfinite(self.exponent)

    def exponent_below(self, bound: float) -> bool | None:
        """True when the whole exponent interval lies below ``bound``, False when not, None without one."""
        if self.exponent_ci is None:
            return None
        return bool(self.exponent_ci[1] < bound)

    def to_dict(self, bound: float | None = None) -> dict:
        """The ``record["growth"]`` dict (NaN and infinite ends become None)."""
        def num(v: float) -> float | None:
            return float(v) if v is not None and math.isfinite(v) else None

        def ci(c: tuple[float, float] | None) -> list | None:
            return None if c is None else [num(c[0]), num(c[1])]

        return {"law": self.law, "exponent": num(self.exponent), "exponent_ci": ci(self.exponent_ci),
                "rate": num(self.rate), "rate_ci": ci(self.rate_ci), "evidence_ratio": num(self.evidence_ratio),
                "bound": num(bound) if bound is not None else None, "points": self.points,
                "censored": self.censored, "note": self.note}


def _bound(v: Any, name: str, i: int, missing: float) -> float:
    if v is None:
        return missing
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or math.isnan(v) or v < 0:
        raise ValueError(f"{name}[{i}] must be None or a number >= 0, got {v!r}")
    return float(v)


def growth_law(xs: Iterable[Any], lows: Iterable[Any], highs: Iterable[Any], *,
               confidence: float = 0.95, scale_floor: float = SCALE_FLOOR) -> GrowthLaw:
    """Fit ``log y = a log x + b`` (power law) and ``log y = r x + c`` (exponential) to points known to
    intervals, by maximum likelihood with censoring (interval regression, Tobit).

    Point i is (x_i, [lows[i], highs[i]]): lows[i] None or 0 is left-censored ("y <= high"), highs[i]
    None or inf right-censored ("y > low"), lows[i] == highs[i] exact; a point with neither bound
    carries nothing and is left out. log y_i ~ N(mu_i, s^2), mu_i = a log x_i + b (or r x_i + c); an
    exact point contributes the density, any other Phi((log hi - mu)/s) - Phi((log lo - mu)/s); the
    scale s is estimated with floor ``scale_floor``. The ``confidence`` interval of a (and of r) is a
    profile-likelihood interval {a : 2 (loglik_max - max_{b,s} loglik(a, b, s)) <= q} with
    q = n log(1 + t^2 / (n - 2)), t the Student t quantile with n - 2 degrees of freedom (n points): the
    exact t interval when every point is exact, chi2_1 (3.84) as n grows; it needs n >= 3. Both laws
    have three parameters, so evidence_ratio = exp(loglik_power - loglik_exponential).

    Never raises on data: fewer than 2 points with a two-sided bound at distinct x (every point censored,
    or censored the same way) give no fit and a note saying why. Raises ValueError, naming the parameter,
    on bad arguments (lengths differ, x <= 0 or non-finite, a negative or NaN bound, low > high).
    """
    xs, lows, highs = list(xs), list(lows), list(highs)
    if not (len(xs) == len(lows) == len(highs)):
        raise ValueError(f"xs, lows and highs must have the same length, got {len(xs)}, {len(lows)}, {len(highs)}")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must lie in [0.5, 1), got {confidence!r}")
    if isinstance(scale_floor, bool) or not isinstance(scale_floor, (int, float)) or not 0 < scale_floor < 10:
        raise ValueError(f"scale_floor must lie in (0, 10), got {scale_floor!r}")
    t_x, lo, hi = [], [], []
    left = right = dropped = 0
    for i, (x, l, h) in enumerate(zip(xs, lows, highs)):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) \
                or not math.isfinite(x) or x <= 0:
            raise ValueError(f"xs[{i}] must be a finite number > 0, got {x!r}")
        fl, fh = _bound(l, "lows", i, 0.0), _bound(h, "highs", i, math.inf)
        if fl > fh:
            raise ValueError(f"lows[{i}] must be <= highs[{i}], got {l!r} > {h!r}")
        if fh == 0.0:
            raise ValueError(f"highs[{i}] must be > 0 (log y), got {h!r}")
        if fl == 0.0 and math.isinf(fh):
            dropped += 1
            continue
        left += fl == 0.0
        right += math.isinf(fh)
        t_x.append(float(x))
        lo.append(math.log(fl) if fl > 0 else -math.inf)
        hi.append(math.log(fh) if math.isfinite(fh) else math.inf)
    n = len(t_x)
    x_arr, lo_arr, hi_arr = np.array(t_x), np.array(lo), np.array(hi)
    two_sided = np.isfinite(lo_arr) & np.isfinite(hi_arr)
    notes = [f"{dropped} point(s) without a bound left out"] if dropped else []
    nan = math.nan

    def empty(why: str) -> GrowthLaw:
        return GrowthLaw(None, nan, None, nan, None, nan, n, left + right, "; ".join([why, *notes]),
                         confidence=float(confidence))

    if n and left == n:
        return empty(f"all {n} points are left-censored (y <= bound): no fit")
    if n and right == n:
        return empty(f"all {n} points are right-censored (y > bound): no fit")
    if np.unique(x_arr[two_sided]).size < 2:
        return empty(f"{int(two_sided.sum())} point(s) with both bounds at distinct x (need 2): no fit")
    fits = {}
    for law, t in (("power", np.log(x_arr)), ("exponential", x_arr)):
        model = _Censored(t, lo_arr, hi_arr, float(scale_floor))
        ll, best = model.fit()
        ci = None
        if n >= 3:
            ci = _profile_interval(model, ll, best, _cutoff(n, float(confidence)))
        fits[law] = (ll, best, ci)
    if n < 3:
        notes.append(f"{n} points: no interval (the residual scale needs a third point)")
    log_er = fits["power"][0] - fits["exponential"][0]
    law = None if abs(log_er) < _TIE_LOG_EVIDENCE else ("power" if log_er > 0 else "exponential")
    if law is None:
        notes.append("the two laws fit equally well")
    for name, key in (("exponent", "power"), ("rate", "exponential")):
        c = fits[key][2]
        if c is not None and not (math.isfinite(c[0]) and math.isfinite(c[1])):
            notes.append(f"the censored points leave the {name}'s interval open")
    return GrowthLaw(
        law=law,
        exponent=float(fits["power"][1][0]), exponent_ci=fits["power"][2],
        rate=float(fits["exponential"][1][0]), rate_ci=fits["exponential"][2],
        evidence_ratio=math.exp(min(700.0, max(-700.0, log_er))),
        points=n, censored=left + right, note="; ".join(notes),
        scale_power=math.exp(fits["power"][1][2]), scale_exponential=math.exp(fits["exponential"][1][2]),
        confidence=float(confidence),
    )
