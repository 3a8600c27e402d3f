"""The verdict of one cell from its examples, and the confidence bounds it rests on.

Rule (ARCHITECTURE.md, "Verdict rule"). A cell runs K' examples; F of them fail the pass rule and I are
inconclusive for that example (excluded), so K = K' - I. With the one-sided 95% Clopper-Pearson bounds
[lo, hi] on the failure rate p (lo: P(Bin(K, lo) >= F) = 0.05; hi: P(Bin(K, hi) <= F) = 0.05):

- ``error``        when evaluating any example raised;
- ``skipped``      when the memory guard or the profile rules the cell out;
- ``inconclusive`` when every example was inconclusive (K = 0);
- ``fails``        if lo > delta (confidently fails more often than the claim allows);
- ``holds``        if F / K <= delta and hi <= 0.5 (at 95% confidence most draws satisfy it, and the
                   observed failure rate is within delta);
- ``inconclusive`` otherwise.

delta is the claim's allowed failure probability per example. With delta = 0.1 this means: 0 failures
in 5 examples hold (hi = 0.451), 0 in 4 are inconclusive (hi = 0.527), 3 or more failures in 5 fail
(lo = 0.189 > 0.1), 1 or 2 failures in 5 are inconclusive.
"""

from __future__ import annotations

import math

from scipy.stats import beta as _beta

__all__ = ["VERDICTS", "RULE", "clopper_pearson", "decide_verdict"]

VERDICTS: tuple[str, ...] = ("holds", "fails", "inconclusive", "skipped", "error")

RULE = (
    "K examples (inconclusive ones excluded), F failures, [lo, hi] the one-sided 95% Clopper-Pearson "
    "bounds on the failure rate: fails if lo > delta; holds if F/K <= delta and hi <= 0.5; "
    "inconclusive otherwise or when every example was inconclusive; skipped when the memory guard or "
    "the profile rules the cell out; error when evaluation raised."
)


def _check_counts(failures: int, k: int) -> None:
    for name, value in (("failures", failures), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if failures > k:
        raise ValueError(f"failures must be <= k, got failures={failures}, k={k}")


def clopper_pearson(failures: int, k: int, alpha: float = 0.05) -> tuple[float, float]:
    """One-sided (1 - alpha) Clopper-Pearson bounds (lo, hi) on a binomial failure rate.

    lo is the lower bound (0 when failures == 0), hi the upper bound (1 when failures == k). Each is a
    one-sided bound at level alpha; with k == 0 nothing is known and the result is (0, 1).
    """
    _check_counts(failures, k)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if k == 0:
        return 0.0, 1.0
    lo = 0.0 if failures == 0 else float(_beta.ppf(alpha, failures, k - failures + 1))
    hi = 1.0 if failures == k else float(_beta.ppf(1.0 - alpha, failures + 1, k - failures))
    return lo, hi


def decide_verdict(
    failures: int,
    k: int,
    delta: float,
    *,
    errors: int = 0,
    skipped: bool = False,
    alpha: float = 0.05,
) -> str:
    """The cell's verdict under the module's rule.

    failures: examples that failed the pass rule; k: conclusive examples (inconclusive ones excluded);
    delta: the claim's allowed failure probability per example; errors: examples whose evaluation
    raised; skipped: the cell was ruled out before running.
    """
    _check_counts(failures, k)
    if not (isinstance(delta, (int, float)) and 0.0 <= delta < 1.0 and math.isfinite(delta)):
        raise ValueError(f"delta must lie in [0, 1), got {delta!r}")
    if errors:
        return "error"
    if skipped:
        return "skipped"
    if k == 0:
        return "inconclusive"
    lo, hi = clopper_pearson(failures, k, alpha)
    if lo > delta:
        return "fails"
    if failures / k <= delta and hi <= 0.5:
        return "holds"
    return "inconclusive"
