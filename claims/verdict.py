"""The verdict of one cell: a sequential test on the failure rate of its examples.

A claim is a statement "with high probability over initialization and data": one example (a
hypothesis-drawn recipe with its own init seed) fails the claim's pass rule with probability p, and
the claim allows p <= delta. A cell decides between

    H0: p <= delta          (the claim holds in this cell)
    H1: p >= delta_1        (it fails),      delta_1 = max(3 delta, delta + 0.2) unless the claim says

with error probabilities alpha = P(fails | H0) and beta = P(holds | H1) (0.05 each unless the claim
declares others). Between delta and delta_1 lies the indifference region, where either answer is
acceptable. The test is Wald's sequential probability ratio test (SPRT), as statistical model checkers
use it (PRISM, UPPAAL-SMC, Plasma; Younes & Simmons): after each conclusive example the log-likelihood
ratio of H1 against H0 moves by

    log(delta_1 / delta)                  for a failing example,
    log((1 - delta_1) / (1 - delta))      for a passing one (negative),

and the cell stops as soon as it reaches log((1 - beta) / alpha) (``fails``: H1 accepted) or
log(beta / (1 - alpha)) (``holds``: H0 accepted). Examples whose own outcome is inconclusive (e.g. a
sample-complexity curve with too few finite points) do not move the ratio. The test is truncated at the
cell's example budget: a cell that has not decided by then is ``inconclusive`` with the reason
"budget". It also stops, ``inconclusive`` with the reason "futility", when its first n_0 examples were
all inconclusive on their own, n_0 = ceil(log(beta / (1 - alpha)) / log((1 - delta_1) / (1 - delta))) the
fewest passing examples that accept H0: such a cell cannot decide before drawing at least that many more.
With delta = 0.1, alpha = beta = 0.05: 12 passing examples in a row accept H0 (n_0 = 12), 3 failing
ones in a row accept H1; a single failure costs about 4.4 more passing examples.

Conclusive share. The SPRT bounds the failure rate among the *conclusive* examples; where being
inconclusive goes with doing badly (n_eps not reached, a network not fitted, a horizon too short) that
rate says little when many examples were inconclusive. So H0 is accepted only while at most a share
s_max = 1/3 of the examples drawn so far were inconclusive (``TestPlan.inconclusive_share``; None for a
claim that documents, ``Claim.inconclusive_unrelated``, that its inconclusive examples do not go with
failing). A cell that reaches H0's boundary with a larger share keeps sampling: it ends ``holds`` at the
first conclusive example at which the ratio is at or below H0's boundary (with the Clopper-Pearson
check) and the share is at most s_max, and ``inconclusive`` with the reason "mostly inconclusive" when
the budget ends first or the share can no longer fall to s_max within it (inconclusive > s_max budget).
From that point on the cell cannot end ``fails``, so the rule only moves mass from ``holds`` to
``inconclusive``: every other path ends as it did without it, so neither alpha nor beta can grow (both
measured in ``tests/test_verdict.py``).

Wald's bounds give error rates alpha' <= alpha / (1 - beta) and beta' <= beta / (1 - alpha), and
truncation and the futility stop only move mass to ``inconclusive`` (neither turns one verdict into the
other); the operating characteristic is measured by simulation in ``tests/test_verdict.py`` and
``python -m benchmarks verdict``. Every ``holds`` is also checked to
have a one-sided (1 - alpha) Clopper-Pearson upper bound on p of at most delta_1 (for the default
parameters the SPRT's acceptance boundary implies it); the bounds are stored in each record.

Other verdicts: ``skipped`` (the memory guard or the profile ruled the cell out), ``error`` (evaluating
an example raised). :data:`RULE` is this rule in one paragraph, rendered by the report.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from typing import Iterable

from scipy.stats import beta as _beta

from claims.schema import VERDICTS

__all__ = [
    "VERDICTS",
    "RULE",
    "INCONCLUSIVE_SHARE",
    "TestPlan",
    "Decision",
    "SequentialTest",
    "clopper_pearson",
    "default_delta_1",
    "sequential_verdict",
    "operating_characteristic",
]

RULE = (
    "Each cell runs Wald's sequential probability ratio test of H0 'the failure rate p of one example "
    "is at most delta' against H1 'p is at least delta_1' (delta_1 = max(3 delta, delta + 0.2) unless "
    "the claim declares another), with error probabilities alpha = P(fails | H0) and "
    "beta = P(holds | H1), 0.05 each unless the claim declares others. Examples are drawn one at a "
    "time; each failing example adds log(delta_1/delta) to the log-likelihood ratio and each passing "
    "one adds log((1-delta_1)/(1-delta)); the cell stops at log((1-beta)/alpha) with 'fails' (H1 "
    "accepted) or at log(beta/(1-alpha)) with 'holds' (H0 accepted), and every 'holds' also has a "
    "one-sided (1-alpha) Clopper-Pearson upper bound on p of at most delta_1. Examples that are "
    "inconclusive on their own do not count. A cell that has not decided within its example budget is "
    "'inconclusive' (reason: budget), and so is a cell whose first n_0 examples were all inconclusive, "
    "n_0 the fewest passing examples that accept H0 (reason: futility; 12 at delta = 0.1). H0 is "
    "accepted only while at most a third of the examples drawn were inconclusive (unless the claim "
    "documents that its inconclusive examples do not go with failing): a cell that reaches H0's boundary "
    "with a larger share keeps sampling, can then no longer end 'fails', and ends 'holds' once the share "
    "is at most a third with the ratio still at H0's boundary, or 'inconclusive' (reason: mostly "
    "inconclusive) when the budget ends first; this only moves cells from 'holds' to 'inconclusive'. "
    "A 'holds' therefore certifies that the failure rate among the conclusive examples is at most delta "
    "(at the test's error rates) and that at most a third of the examples drawn were inconclusive; every "
    "cell reports its inconclusive rate with a two-sided 95% Clopper-Pearson interval. 'skipped' means "
    "the memory guard or the profile ruled the cell out, 'error' that evaluating an example raised."
)

#: the largest share of inconclusive examples with which a cell may accept H0 (see the module docstring)
INCONCLUSIVE_SHARE = 1.0 / 3.0


def default_delta_1(delta: float) -> float:
    """The SPEC's default alternative: delta_1 = max(3 delta, delta + 0.2)."""
    return max(3.0 * delta, delta + 0.2)


def _check_prob(name: str, value: object, low: float, high: float, *, closed_low: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number in {'[' if closed_low else '('}{low}, {high}), got {value!r}")
    ok_low = value >= low if closed_low else value > low
    if not (ok_low and value < high):
        raise ValueError(f"{name} must lie in {'[' if closed_low else '('}{low}, {high}), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class TestPlan:
    """The hypotheses, error rates and example budget of one cell's sequential test.

    delta: H0 is p <= delta; delta_1: H1 is p >= delta_1 (> delta); alpha, beta: the error
    probabilities P(fails | H0) and P(holds | H1); budget: at most this many examples are drawn;
    inconclusive_share: H0 is accepted only while at most this share of the examples drawn were
    inconclusive (None: no bound; see the module docstring).
    """

    __test__ = False  # not a pytest test class despite its name

    delta: float
    delta_1: float
    alpha: float = 0.05
    beta: float = 0.05
    budget: int = 40
    inconclusive_share: float | None = INCONCLUSIVE_SHARE

    def __post_init__(self) -> None:
        _check_prob("delta", self.delta, 0.0, 1.0)
        _check_prob("delta_1", self.delta_1, 0.0, 1.0, closed_low=False)
        if not self.delta_1 > self.delta:
            raise ValueError(f"delta_1 must be > delta, got delta={self.delta}, delta_1={self.delta_1}")
        _check_prob("alpha", self.alpha, 0.0, 0.5, closed_low=False)
        _check_prob("beta", self.beta, 0.0, 0.5, closed_low=False)
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1:
            raise ValueError(f"budget must be an integer >= 1, got {self.budget!r}")
        share = self.inconclusive_share
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))
                                  or not 0.0 < share <= 1.0):
            raise ValueError(f"inconclusive_share must be None or a number in (0, 1], got {share!r}")

    @classmethod
    def of(cls, delta: float, delta_1: float | None = None, alpha: float = 0.05, beta: float = 0.05,
           budget: int = 40, inconclusive_share: float | None = INCONCLUSIVE_SHARE) -> "TestPlan":
        """A plan with the SPEC's default delta_1 when ``delta_1`` is None."""
        return cls(delta, default_delta_1(delta) if delta_1 is None else delta_1, alpha, beta, budget,
                   inconclusive_share)

    @property
    def upper(self) -> float:
        """log((1 - beta) / alpha): reaching it accepts H1 (``fails``)."""
        return math.log((1.0 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        """log(beta / (1 - alpha)): reaching it accepts H0 (``holds``)."""
        return math.log(self.beta / (1.0 - self.alpha))

    @property
    def step_fail(self) -> float:
        """The log-likelihood-ratio step of a failing example (+inf when delta = 0)."""
        return math.inf if self.delta == 0.0 else math.log(self.delta_1 / self.delta)

    @property
    def step_pass(self) -> float:
        """The step of a passing example (negative)."""
        return math.log((1.0 - self.delta_1) / (1.0 - self.delta))

    def min_examples_to_hold(self) -> int:
        """Passing examples in a row that accept H0."""
        return math.ceil(self.lower / self.step_pass - 1e-12)

    @property
    def futility(self) -> int:
        """n_0 = :meth:`min_examples_to_hold`: a cell whose first n_0 examples were all inconclusive
        on their own stops (``inconclusive``, reason "futility")."""
        return self.min_examples_to_hold()

    def min_examples_to_fail(self) -> int:
        """Failing examples in a row that accept H1."""
        return 1 if math.isinf(self.step_fail) else math.ceil(self.upper / self.step_fail - 1e-12)

    def share_ok(self, inconclusive: int, examples: int) -> bool:
        """At most ``inconclusive_share`` of ``examples`` were inconclusive (always True without a bound)."""
        return self.inconclusive_share is None or inconclusive <= self.inconclusive_share * examples + 1e-9

    def to_dict(self) -> dict:
        return {"test": "SPRT", "delta": self.delta, "delta_1": self.delta_1, "alpha": self.alpha,
                "beta": self.beta, "budget": self.budget, "futility": self.futility,
                "inconclusive_share": self.inconclusive_share}


@dataclass(frozen=True)
class Decision:
    """The state of a sequential test: ``verdict`` is None while it has not decided."""

    verdict: str | None  # "holds" | "fails" | "inconclusive" | None (still sampling)
    reason: str
    examples: int  # examples seen, inconclusive ones included
    failures: int
    inconclusive: int
    llr: float


def clopper_pearson(failures: int, k: int, alpha: float = 0.05) -> tuple[float, float]:
    """One-sided (1 - alpha) Clopper-Pearson bounds (lo, hi) on a binomial failure rate.

    lo is the lower bound (0 when failures == 0), hi the upper bound (1 when failures == k); with
    k == 0 nothing is known and the result is (0, 1).
    """
    for name, value in (("failures", failures), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if failures > k:
        raise ValueError(f"failures must be <= k, got failures={failures}, k={k}")
    _check_prob("alpha", alpha, 0.0, 1.0, closed_low=False)
    if k == 0:
        return 0.0, 1.0
    lo = 0.0 if failures == 0 else float(_beta.ppf(alpha, failures, k - failures + 1))
    hi = 1.0 if failures == k else float(_beta.ppf(1.0 - alpha, failures + 1, k - failures))
    return lo, hi


@functools.lru_cache(maxsize=4096)
def _cp_upper_cached(failures: int, k: int, alpha: float) -> float:
    return clopper_pearson(failures, k, alpha)[1]


class SequentialTest:
    """Wald's SPRT for one cell: feed example outcomes with :meth:`add` until :attr:`decision` has a
    verdict (see the module docstring)."""

    __test__ = False

    def __init__(self, plan: TestPlan) -> None:
        self.plan = plan
        self.examples = 0
        self.failures = 0
        self.inconclusive = 0
        self.llr = 0.0
        self.pending = False  # H0's boundary was reached with too many inconclusive examples
        self._verdict: str | None = None
        self._reason = "sampling"

    @property
    def decided(self) -> bool:
        return self._verdict is not None

    @property
    def decision(self) -> Decision:
        return Decision(self._verdict, self._reason, self.examples, self.failures, self.inconclusive, self.llr)

    def add(self, ok: bool | None) -> Decision:
        """Record one example: ok True (passes), False (fails), None (inconclusive on its own)."""
        if self.decided:
            raise RuntimeError("the test has already decided; no more examples are needed")
        if ok is not None and not isinstance(ok, bool):
            raise ValueError(f"ok must be True, False or None, got {ok!r}")
        plan = self.plan
        self.examples += 1
        if ok is None:
            self.inconclusive += 1
        elif ok:
            self.llr += plan.step_pass
        else:
            self.failures += 1
            self.llr += plan.step_fail
        k = self.examples - self.inconclusive
        at_h0 = ok is not None and self.llr <= plan.lower and self._cp_upper(k) <= plan.delta_1
        share_ok = plan.share_ok(self.inconclusive, self.examples)
        if at_h0 and not share_ok:
            self.pending = True
        if ok is not None and not self.pending and self.llr >= plan.upper:
            self._verdict, self._reason = "fails", (
                f"H1 accepted (p >= {plan.delta_1:g}): {self.failures} of {k} examples failed")
        elif at_h0 and share_ok:
            self._verdict, self._reason = "holds", (
                f"H0 accepted (p <= {plan.delta:g}): {self.failures} of {k} examples failed"
                + (f", {self.inconclusive} of {self.examples} inconclusive" if self.inconclusive else ""))
        elif self.pending and (self.examples >= plan.budget
                               or not plan.share_ok(self.inconclusive, plan.budget)):
            self._verdict, self._reason = "inconclusive", (
                f"mostly inconclusive: H0's boundary was reached, but {self.inconclusive} of {self.examples} "
                f"examples were inconclusive (more than {plan.inconclusive_share:.3g}) and the share cannot "
                f"fall to {plan.inconclusive_share:.3g} within the budget of {plan.budget}; {self.failures} of "
                f"{k} conclusive examples failed")
        elif self.examples >= plan.budget:
            what = "every example was inconclusive" if k == 0 else "no decision"
            self._verdict, self._reason = "inconclusive", (
                f"budget: {self.examples} examples drawn, {what} ({self.failures} of {k} failed)")
        elif k == 0 and self.examples >= plan.futility:
            self._verdict, self._reason = "inconclusive", (
                f"futility: the first {self.examples} examples were all inconclusive on their own "
                f"(as many as the fewest passing examples that accept H0)")
        return self.decision

    def _cp_upper(self, k: int) -> float:
        return _cp_upper_cached(self.failures, k, self.plan.alpha)


def sequential_verdict(outcomes: Iterable[bool | None], plan: TestPlan) -> Decision:
    """Run the test over ``outcomes`` in order, stopping at the first decision (later outcomes are not
    read). When the outcomes end before a decision or the budget, the verdict is None."""
    test = SequentialTest(plan)
    for ok in outcomes:
        test.add(ok)
        if test.decided:
            break
    return test.decision


def operating_characteristic(plan: TestPlan, p: float, runs: int, seed: int = 0,
                             inconclusive: float = 0.0) -> dict[str, float]:
    """Simulate the test on Bernoulli(p) failure streams: the fraction of runs ending in each verdict,
    the mean number of examples, and the Monte Carlo standard error of a rate (sqrt(r(1-r)/runs) at
    r = 0.05). With ``inconclusive`` = q > 0 each example is inconclusive with probability q and
    otherwise fails with probability p (independently of failing)."""
    _check_prob("p", p, 0.0, 1.0 + 1e-12)
    _check_prob("inconclusive", inconclusive, 0.0, 1.0)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be an integer >= 1, got {runs!r}")
    rng = random.Random(seed)
    counts = {"holds": 0, "fails": 0, "inconclusive": 0}
    examples = 0
    for _ in range(runs):
        test = SequentialTest(plan)
        while not test.decided:
            test.add(None if inconclusive and rng.random() < inconclusive else not (rng.random() < p))
        counts[test.decision.verdict] += 1
        examples += test.examples
    out: dict[str, float] = {v: c / runs for v, c in counts.items()}
    out["mean_examples"] = examples / runs
    out["mc_se_at_0.05"] = math.sqrt(0.05 * 0.95 / runs)
    return out
