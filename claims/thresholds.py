"""Threshold widths: the smallest width m* from which one example's failure rate stays <= delta.

A width-dependent claim fails one example (a recipe with its own init seed) at width m with probability
p(m), falling in m. The threshold is m* with p(m*) = delta. It is estimated from examples drawn one at
a time at adaptively chosen integer widths (a psi-method / QUEST+ search: Kontsevich & Tyler 1999,
Watson 2017), then certified by the suite's sequential test (:mod:`claims.verdict`).

Model. With t = log2 m and t* = log2 m*,

    p(m) = lam + (1 - 2 lam) sigmoid(logit(delta') + beta (t* - t)),   delta' = (delta - lam) / (1 - 2 lam),

so p(m*) = delta exactly, beta > 0 is the slope in natural log-odds per octave, and the lapse
lam = min(0.01, delta / 4) keeps p in [lam, 1 - lam]: one stray failure far above m* (or one pass far
below it) moves the posterior by a bounded amount instead of excluding every slope that cannot
explain it (measured in ``python -m benchmarks.thresholds``: on a step from p = 0.85 to p = 0.02 the
interval covers m* in 70 of 100 runs without the lapse and in 185 of 200 with it; on logistic curves
it makes no measurable difference). The prior is uniform in t* over [log2 m_min - 1, log2 m_max + 1] (a grid of
1/32 octave) and log-uniform in beta over [0.5, 30] (20 points); the posterior is that grid times the
Bernoulli likelihood of every conclusive example (an inconclusive example is counted but carries no
likelihood).

Design. The next width is the integer width, among 8 per octave in [m_min, m_max], that maximizes the
expected information about t* per unit cost, I(Y; t*) / cost(m): I = h(P(fail)) - E_t*[h(P(fail | t*))]
with h the binary entropy (the expected entropy reduction of the posterior marginal of t*), cost(m) the
caller's (default m^2). Only widths inside the current credible interval of m*, widened by 1/8 octave
(:meth:`ThresholdSearch.window`), are candidates: the model is a local description near m*, and a
search free to pick the cheapest informative width draws most examples where p is near 1 and reads
m* off the slope fitted there. On p = (m0/m)^2 (not logistic) that left the true m* outside the
interval in 35 of 40 runs; with the window the examples land where the model says p is near delta,
and its failures correct the model there (38 of 40 covered). The adaptive phase stops
when the equal-tailed credible interval of m* (``confidence``, 95%) spans at most a factor
``resolution`` (2^(1/4)), or when the posterior puts at least (1 + confidence) / 2 of its mass below
log2 m_min or above log2 m_max, or after ``budget`` examples.

Certification, with fresh examples and the SPRT of ``test_plan`` (H0 p <= delta against H1 p >= delta_1):
the interval's upper end hi (rounded up, clipped to [m_min, m_max]) must end ``holds`` for status
``found``; m_min must end ``holds`` for ``below`` (m* <= m_min); m_max must end ``fails`` for ``above``
(m* > m_max). Censoring is never read off the posterior alone. A certifying test that ends ``fails``
below m_max contradicts the fitted model: its examples join the posterior, the search goes on from the
updated interval (certifying above the refuted width), and after two refuted widths certifies at
m_max. The reported interval and estimate are the posterior's at the certifying round (before the
certificate's own examples), with hi clipped to the certified width; when the certificate holds at
m_max against a posterior lying above m_max, the lower end is the posterior's with the certificate's
examples. A certificate ending ``inconclusive`` below m_max certifies nothing and counts as refuted
(its width sits near m*, where p is close to delta; the search goes on above it); at m_max it gives
status ``inconclusive``, interval and estimate kept. Examples: at most ``budget`` in the adaptive phase (certificates' examples count toward it)
plus ``test_plan.budget`` per certificate, at most MAX_REFUTED + 1 certificates (one more at m_max
with ``check_top``).

Monotonicity. The model is fitted only to a falling failure rate. With n_i conclusive examples and f_i
failures at the probed widths m_1 < m_2 < ..., the likelihood-ratio statistic of the saturated
binomial model against the decreasing isotonic fit (weighted by n_i),

    G = 2 sum_i [f_i log(f_i / (n_i q_i)) + (n_i - f_i) log((n_i - f_i) / (n_i (1 - q_i)))],

has its p-value from a parametric bootstrap under the isotonic fit q (the boundary of the null closest
to the data), drawn sequentially (Besag & Clifford 1991: stop after 20 exceedances, at most 9999
draws). The bootstrap treats the per-width counts n_i as fixed, although the adaptive design chose
them. p < 0.001 gives status ``non-monotone`` with no estimate: the check runs once per (claim, regime,
L), 60-100 times in an asserted smoke or quick run and hundreds in standard, so at 0.01 one monotone
search in a run was flagged (quick, BWD unit, L = 8); the measured false-flag share on monotone curves
is in docs/MEASUREMENTS.md. Only probed widths
are checked: a rise above the largest probed width is invisible to it, which is what ``check_top``
(a sequential test at m_max after ``found`` or ``below``) is for, at the price of at least
``test_plan.futility`` examples at the most expensive width.

Why our own implementation and not the ``questplus`` package: it brings xarray (and pandas) into a
suite that otherwise needs only numpy and scipy, it has no notion of per-width cost, censoring or
certification, and its generic parameter grids make each step slower than the 1-D information
computation here; the whole method is a few vectorized lines on the (t*, beta) grid.

Measured in ``python -m benchmarks.thresholds`` (table in docs/MEASUREMENTS.md) against a fixed
factor-2 grid with one SPRT per width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import isotonic_regression
from scipy.special import expit, logit, xlogy

from claims.verdict import SequentialTest, TestPlan

__all__ = [
    "SearchPlan",
    "ThresholdSearch",
    "ThresholdResult",
    "STATUSES",
    "search_threshold",
    "monotone_pvalue",
    "failure_model",
    "candidate_widths",
]

STATUSES = ("found", "above", "below", "inconclusive", "non-monotone")
MONOTONE_ALPHA = 0.001  # flag level of the monotonicity check (see the module docstring)
T_STEP = 1.0 / 32.0  # t* grid spacing, octaves
BETAS = np.geomspace(0.5, 30.0, 20)  # slope grid, natural log-odds per octave
PER_OCTAVE = 8  # candidate widths per octave
WINDOW = 1.0 / 8.0  # octaves: candidates lie within the credible interval widened by this
MAX_REFUTED = 2  # refuted certificates before certifying at m_max


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def failure_model(t: np.ndarray, t_star: np.ndarray, beta: np.ndarray, delta: float, lapse: float) -> np.ndarray:
    """p(m) of the module docstring at t = log2 m (broadcast over the arrays)."""
    d = (delta - lapse) / (1.0 - 2.0 * lapse)
    return lapse + (1.0 - 2.0 * lapse) * expit(logit(d) + beta * (t_star - t))


@dataclass(frozen=True)
class SearchPlan:
    """What one threshold search may do.

    m_min, m_max: the integer width range (1 <= m_min < m_max); delta: the claim's allowed failure rate
    (0 < delta < 1); budget: examples of the adaptive phase (>= 1; certification adds at most
    ``test_plan.budget`` per certificate, at most MAX_REFUTED + 1 certificates); resolution: stop when
    the interval spans at most this factor (> 1); confidence: of the interval (0.5 < c < 1); cost:
    cost(m) > 0 of one example at width m (default m^2); test_plan: the certifying sequential test
    (default ``TestPlan.of(delta)``; its delta must equal ``delta``); lapse: the model's lapse rate
    (default min(0.01, delta / 4), in [0, delta / 2]); check_top: after ``found`` or ``below``, also
    run the sequential test at m_max and report ``non-monotone`` when it ends ``fails`` (the only check
    that sees a rise above the probed widths; it costs at least ``test_plan.futility`` examples at m_max).
    """

    m_min: int
    m_max: int
    delta: float
    budget: int
    resolution: float = 2.0 ** 0.25
    confidence: float = 0.95
    cost: Callable[[int], float] | None = None
    test_plan: TestPlan | None = None
    lapse: float | None = None
    check_top: bool = False

    def __post_init__(self) -> None:
        if not _is_int(self.m_min) or self.m_min < 1:
            raise ValueError(f"m_min must be an integer >= 1, got {self.m_min!r}")
        if not _is_int(self.m_max) or self.m_max <= self.m_min:
            raise ValueError(f"m_max must be an integer > m_min = {self.m_min}, got {self.m_max!r}")
        if (isinstance(self.delta, bool) or not isinstance(self.delta, (int, float))
                or not 0.0 < self.delta < 1.0):
            raise ValueError(f"delta must be a number in (0, 1), got {self.delta!r}")
        if not _is_int(self.budget) or self.budget < 1:
            raise ValueError(f"budget must be an integer >= 1, got {self.budget!r}")
        if (isinstance(self.resolution, bool) or not isinstance(self.resolution, (int, float))
                or not 1.0 < self.resolution < math.inf):
            raise ValueError(f"resolution must be a finite number > 1, got {self.resolution!r}")
        if (isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float))
                or not 0.5 < self.confidence < 1.0):
            raise ValueError(f"confidence must be a number in (0.5, 1), got {self.confidence!r}")
        if self.cost is not None and not callable(self.cost):
            raise ValueError(f"cost must be a callable m -> cost > 0 or None, got {self.cost!r}")
        if self.test_plan is None:
            object.__setattr__(self, "test_plan", TestPlan.of(float(self.delta)))
        elif not isinstance(self.test_plan, TestPlan):
            raise ValueError(f"test_plan must be a claims.verdict.TestPlan or None, got {self.test_plan!r}")
        elif self.test_plan.delta != self.delta:
            raise ValueError(f"test_plan.delta must equal delta = {self.delta}, got {self.test_plan.delta}")
        if self.lapse is None:
            object.__setattr__(self, "lapse", min(0.01, self.delta / 4.0))
        elif (isinstance(self.lapse, bool) or not isinstance(self.lapse, (int, float))
              or not 0.0 <= self.lapse <= self.delta / 2.0):
            raise ValueError(f"lapse must be a number in [0, delta / 2 = {self.delta / 2}], got {self.lapse!r}")
        if not isinstance(self.check_top, bool):
            raise ValueError(f"check_top must be True or False, got {self.check_top!r}")

    def cost_of(self, m: int) -> float:
        """cost(m), checked to be a finite positive number."""
        c = float(m) ** 2 if self.cost is None else self.cost(int(m))
        if isinstance(c, bool) or not isinstance(c, (int, float, np.floating)) or not 0.0 < c < math.inf:
            raise ValueError(f"cost(m) must return a finite number > 0, got {c!r} at m = {m}")
        return float(c)


def candidate_widths(m_min: int, m_max: int, per_octave: int = PER_OCTAVE) -> np.ndarray:
    """The integer widths the search may choose: ``per_octave`` per octave in [m_min, m_max], rounded,
    unique, both ends included."""
    octaves = math.log2(m_max / m_min)
    k = max(1, math.ceil(octaves * per_octave))
    return np.unique(np.clip(np.rint(m_min * 2.0 ** (np.arange(k + 1) * octaves / k)), m_min, m_max).astype(np.int64))


def _h(p: np.ndarray) -> np.ndarray:
    """Binary entropy in nats."""
    return -(xlogy(p, p) + xlogy(1.0 - p, 1.0 - p))


class ThresholdSearch:
    """The adaptive phase: the posterior over (t*, beta), the next width, the interval.

    ``next_width()`` returns the width to draw at next, or None once the phase has stopped
    (:attr:`stop_reason` says why); ``add(m, ok)`` records one example (ok True passes, False fails,
    None inconclusive: counted, no likelihood); ``interval()`` is the credible interval of m*,
    ``estimate()`` its posterior median, both in widths and possibly outside [m_min, m_max] (the prior
    reaches one octave beyond each end).
    """

    def __init__(self, plan: SearchPlan) -> None:
        if not isinstance(plan, SearchPlan):
            raise ValueError(f"plan must be a SearchPlan, got {plan!r}")
        self.plan = plan
        self.t_min, self.t_max = math.log2(plan.m_min), math.log2(plan.m_max)
        n_t = int(round((self.t_max - self.t_min + 2.0) / T_STEP)) + 1
        self.t_grid = np.linspace(self.t_min - 1.0, self.t_max + 1.0, n_t)
        self._dt = self.t_grid[1] - self.t_grid[0]
        self.post = np.full((n_t, BETAS.size), 1.0 / (n_t * BETAS.size))  # over (t*, beta)
        self.widths = candidate_widths(plan.m_min, plan.m_max)
        self._index = {int(m): i for i, m in enumerate(self.widths)}
        self._table = self._likelihood(self.widths)  # (C, T, B): P(fail | m_c, t*_t, beta_b)
        self._cost = np.array([plan.cost_of(int(m)) for m in self.widths])
        self.counts: dict[int, list[int]] = {}  # m -> [examples, failures, inconclusive]
        self.examples = 0

    def _likelihood(self, widths: np.ndarray) -> np.ndarray:
        t = np.log2(np.asarray(widths, dtype=np.float64))[:, None, None]
        return failure_model(t, self.t_grid[None, :, None], BETAS[None, None, :], self.plan.delta, self.plan.lapse)

    def add(self, m: int, ok: bool | None) -> None:
        """Record one example drawn at width m."""
        if not _is_int(m) or not self.plan.m_min <= m <= self.plan.m_max:
            raise ValueError(f"m must be an integer in [{self.plan.m_min}, {self.plan.m_max}], got {m!r}")
        if ok is not None and not isinstance(ok, (bool, np.bool_)):
            raise ValueError(f"ok must be True, False or None, got {ok!r}")
        m = int(m)
        c = self.counts.setdefault(m, [0, 0, 0])
        c[0] += 1
        self.examples += 1
        if ok is None:
            c[2] += 1
            return
        i = self._index.get(m)
        p = self._table[i] if i is not None else self._likelihood(np.array([m]))[0]  # (T, B)
        if ok:
            self.post *= 1.0 - p
        else:
            c[1] += 1
            self.post *= p
        self.post /= self.post.sum()

    def marginal(self) -> np.ndarray:
        """The posterior of t* on :attr:`t_grid`."""
        return self.post.sum(axis=1)

    def cdf(self, t: float) -> float:
        """P(t* <= t), each grid point's mass spread uniformly over its cell."""
        q = self.marginal()
        edges = np.concatenate([[self.t_grid[0] - self._dt / 2], self.t_grid + self._dt / 2])
        return float(np.interp(t, edges, np.concatenate([[0.0], np.cumsum(q)])))

    def _quantile(self, u: float) -> float:
        q = self.marginal()
        edges = np.concatenate([[self.t_grid[0] - self._dt / 2], self.t_grid + self._dt / 2])
        cum = np.concatenate([[0.0], np.cumsum(q)])
        keep = np.concatenate([[True], np.diff(cum) > 0])  # strictly increasing for the inverse
        return float(np.interp(u, cum[keep], edges[keep]))

    def interval(self) -> tuple[float, float]:
        """The equal-tailed credible interval (lo, hi) of m* at the plan's confidence."""
        a = (1.0 - self.plan.confidence) / 2.0
        return 2.0 ** self._quantile(a), 2.0 ** self._quantile(1.0 - a)

    def estimate(self) -> float:
        """The posterior median of m*."""
        return 2.0 ** self._quantile(0.5)

    def mass_below(self) -> float:
        """P(m* <= m_min)."""
        return self.cdf(self.t_min)

    def mass_above(self) -> float:
        """P(m* > m_max)."""
        return 1.0 - self.cdf(self.t_max)

    @property
    def stop_reason(self) -> str | None:
        """Why the adaptive phase is over ("budget", "below", "above", "resolution"), None while it runs."""
        plan = self.plan
        if self.examples >= plan.budget:
            return "budget"
        tail = (1.0 + plan.confidence) / 2.0
        if self.mass_below() >= tail:
            return "below"
        if self.mass_above() >= tail:
            return "above"
        lo, hi = self.interval()
        if hi / lo <= plan.resolution:
            return "resolution"
        return None

    def information(self, which: np.ndarray | None = None) -> np.ndarray:
        """I(Y; t*) in nats of one example at each of :attr:`widths` (or at ``widths[which]``) under
        the current posterior."""
        table = self._table if which is None else self._table[which]
        q = self.marginal()
        joint = np.einsum("ctb,tb->ct", table, self.post)  # P(fail, t*) per candidate
        p_t = joint / np.where(q > 0, q, 1.0)
        p = joint.sum(axis=1)
        return np.maximum(_h(p) - (q * _h(np.clip(p_t, 0.0, 1.0))).sum(axis=1), 0.0)

    def window(self) -> np.ndarray:
        """Indices of the candidate widths inside the credible interval widened by WINDOW octaves (the
        nearest candidates when none lies inside)."""
        lo, hi = (math.log2(x) for x in self.interval())
        t_c = np.log2(self.widths)
        inside = np.flatnonzero((t_c >= lo - WINDOW) & (t_c <= hi + WINDOW))
        if inside.size == 0:
            gap = np.abs(t_c - (lo + hi) / 2.0)
            inside = np.flatnonzero(gap <= gap.min() + 1.0 / PER_OCTAVE + 1e-9)
        return inside

    def next_width(self) -> int | None:
        """The width in :meth:`window` maximizing information per unit cost, or None once the phase
        has stopped."""
        if self.stop_reason is not None:
            return None
        which = self.window()
        return int(self.widths[which[int(np.argmax(self.information(which) / self._cost[which]))]])

    def probes(self) -> list[dict]:
        """Every width drawn at, ascending: {"m", "examples", "failures", "inconclusive"}."""
        return [{"m": m, "examples": c[0], "failures": c[1], "inconclusive": c[2]}
                for m, c in sorted(self.counts.items())]


def _g_statistic(f: np.ndarray, n: np.ndarray, q: np.ndarray) -> float:
    phat = f / n
    return float(2.0 * (xlogy(f, phat) - xlogy(f, q) + xlogy(n - f, 1.0 - phat) - xlogy(n - f, 1.0 - q)).sum())


def _decreasing_fit(f: np.ndarray, n: np.ndarray) -> np.ndarray:
    return isotonic_regression(f / n, weights=n, increasing=False).x


def monotone_pvalue(probes: list[dict], *, seed: int = 0, draws: int = 9999, exceed: int = 20) -> float:
    """p-value of "the failure rate does not increase with m" from per-width counts (see the module
    docstring); 1.0 when fewer than two widths have conclusive examples or the data are already
    non-increasing. ``probes``: dicts with "m", "examples", "failures", "inconclusive"."""
    rows = sorted((p["m"], p["examples"] - p["inconclusive"], p["failures"]) for p in probes)
    rows = [r for r in rows if r[1] > 0]
    if len(rows) < 2:
        return 1.0
    n = np.array([r[1] for r in rows], dtype=np.float64)
    f = np.array([r[2] for r in rows], dtype=np.float64)
    q = _decreasing_fit(f, n)
    g = _g_statistic(f, n, q)
    if g <= 1e-9:
        return 1.0
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(1, draws + 1):
        fs = rng.binomial(n.astype(np.int64), q).astype(np.float64)
        if _g_statistic(fs, n, _decreasing_fit(fs, n)) >= g - 1e-9:
            hits += 1
            if hits >= exceed:
                return hits / k
    return (hits + 1) / (draws + 1)


@dataclass(frozen=True)
class ThresholdResult:
    """One threshold search's outcome; :meth:`to_dict` is the record's per-L entry without "L" and
    "cost_s". ``reason`` says in words how the status was reached (not part of the record entry)."""

    status: str
    m_star: float | None
    interval: tuple[float | None, float | None] | None
    certificate: dict | None
    examples: int
    probes: tuple[dict, ...]
    monotone_p: float
    reason: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "m_star": self.m_star,
            "interval": None if self.interval is None else list(self.interval),
            "certificate": None if self.certificate is None else dict(self.certificate),
            "examples": self.examples,
            "monotone_p": self.monotone_p,
            "probes": [dict(p) for p in self.probes],
        }


def _draw(sample: Callable[[int], bool | None], m: int) -> bool | None:
    ok = sample(m)
    if ok is not None and not isinstance(ok, (bool, np.bool_)):
        raise ValueError(f"sample(m) must return True, False or None, got {ok!r} at m = {m}")
    return None if ok is None else bool(ok)


def _certify(sample: Callable[[int], bool | None], search: ThresholdSearch, m: int) -> dict:
    test = SequentialTest(search.plan.test_plan)
    while not test.decided:
        ok = _draw(sample, m)
        test.add(ok)
        search.add(m, ok)
    d = test.decision
    return {"m": m, "verdict": d.verdict, "examples": d.examples, "failures": d.failures}


def search_threshold(sample: Callable[[int], bool | None], plan: SearchPlan, *, seed: int = 0) -> ThresholdResult:
    """The whole procedure of the module docstring: adaptive phase, certification, monotonicity check.

    ``sample(m)`` draws ONE fresh example at width m and returns True (passes), False (fails) or None
    (inconclusive on its own); ``seed`` seeds the monotonicity bootstrap.
    """
    search = ThresholdSearch(plan)
    refuted: list[int] = []  # widths below m_max whose certificate did not hold (ended fails or inconclusive)
    while True:
        while (m := search.next_width()) is not None:
            search.add(m, _draw(sample, m))
        p_mono = monotone_pvalue(search.probes(), seed=seed)
        if p_mono < MONOTONE_ALPHA:
            return _result(search, "non-monotone", None, None, None, p_mono,
                           f"the failure rate does not fall with m (monotonicity p = {p_mono:.3g})")
        tail = (1.0 + plan.confidence) / 2.0
        lo, hi = search.interval()  # the interval this round certifies
        m_star = search.estimate()
        if len(refuted) >= MAX_REFUTED or search.mass_above() >= tail:
            target = plan.m_max
        elif search.mass_below() >= tail:
            target = plan.m_min
        else:
            target = min(plan.m_max, max(plan.m_min, math.ceil(hi - 1e-9)))
        if refuted and target <= refuted[-1]:
            target = min(plan.m_max, max(target, math.ceil(refuted[-1] * plan.resolution)))
        cert = _certify(sample, search, target)
        verdict = cert["verdict"]
        if verdict == "fails" and target == plan.m_max:
            return _final(search, "above", None, (float(plan.m_max), None), cert, seed,
                          f"the sequential test at m_max = {plan.m_max} ended fails")
        if verdict == "fails" or (verdict == "inconclusive" and target < plan.m_max):
            refuted.append(target)
            continue
        if verdict == "inconclusive":
            return _final(search, "inconclusive", m_star, (lo, hi), cert, seed,
                          f"the sequential test at m = {target} ended inconclusive")
        if target == plan.m_min:
            return _final(search, "below", None, (None, float(plan.m_min)), cert, seed,
                          f"the sequential test at m_min = {plan.m_min} ended holds", sample)
        hi = min(hi, float(target))
        if lo >= hi:  # the certificate contradicts the posterior: its examples decide the lower end
            lo, m_star = min(search.interval()[0], hi), search.estimate()
        m_star = min(max(m_star, lo), hi)
        return _final(search, "found", m_star, (lo, hi), cert, seed,
                      f"the sequential test at m = {target} ended holds"
                      + (f" after refuting m = {', '.join(map(str, refuted))}" if refuted else ""), sample)


def _final(search: ThresholdSearch, status: str, m_star, interval, cert, seed: int, reason: str,
           sample: Callable[[int], bool | None] | None = None) -> ThresholdResult:
    plan = search.plan
    if sample is not None and plan.check_top and status in ("found", "below") and cert["m"] < plan.m_max:
        top = _certify(sample, search, plan.m_max)
        if top["verdict"] == "fails":
            return _result(search, "non-monotone", None, None, cert, monotone_pvalue(search.probes(), seed=seed),
                           f"{reason}, but the sequential test at m_max = {plan.m_max} ended fails")
    p_mono = monotone_pvalue(search.probes(), seed=seed)
    if p_mono < MONOTONE_ALPHA:
        return _result(search, "non-monotone", None, None, cert, p_mono,
                       f"the failure rate does not fall with m (monotonicity p = {p_mono:.3g}); " + reason)
    return _result(search, status, m_star, interval, cert, p_mono, reason)


def _result(search, status, m_star, interval, cert, p_mono, reason) -> ThresholdResult:
    return ThresholdResult(status, None if m_star is None else float(m_star),
                           None if interval is None else tuple(interval), cert, search.examples,
                           tuple(search.probes()), float(p_mono), reason)
