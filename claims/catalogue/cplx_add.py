"""CPLX-ADD: samples almost-polynomial in L for additive targets (SPEC section 4).

Operationalizes the paper's headline for additive concepts (Wang, Shen, Hu, Cao, NeurIPS 2021, main
theorem with the concept-class corollaries): the number of samples needed to learn
y = sum_{l in S} f(beta_l^T X_l) grows (almost) polynomially in the length L, without the small-norm
condition ||X_l|| <= eps.

Measured quantity (one example = one whole L grid). For each L of the profile's grid,

    n_eps(L) = min { n on a geometric grid (ratio 2) : MSE_test(f_n) <= 0.25 Var_test(y) }

with f_n the ridge-less kernel regression with H_inf on the first n training sequences (the infinite-width
limit of the W-trained RNN, see GEN-KRR); see ``_sample_complexity`` for the estimator. All lengths use
prefixes of one draw (the steps are i.i.d.), so the curve shares its random numbers across L.

Pass rule. With at least 4 lengths reaching n_eps (n_eps <= n_max of the profile): least squares in
log n_eps of the power law a log L + b and of the exponential a' L + b'; the example holds iff
rss_power <= rss_exp and a <= 2 deg(f) + 2 (operational constant). Fewer than 4 finite points:
inconclusive, never a pass. margin = max(min(rss_power / rss_exp, growth / 2), a / (2 deg f + 2))
(<= 1 passes), growth = max / min n_eps over the lengths.

Two refinements of the SPEC's rule (corrections, with the evidence in the report):
* the fits use n_cross, the crossing of the test-error curve with 0.25, interpolated in (log n, log MSE)
  between the two grid points around it (``NEps.n_cross``), not the grid value n_eps itself: with a grid
  of ratio 2, log2 n_eps is an integer, and over four lengths in [2, 6] that quantization alone decided
  the rss comparison (smoke, unit, f = z on the last step: verdicts flipped between seeds with curves
  that differed by one grid step). Series rows keep the grid value n_eps (SPEC) beside n_cross.
* a curve whose n_eps varies by at most one grid step over the lengths (max / min <= 2) holds the shape
  part: it shows no resolvable growth (a degree-0 polynomial), and comparing two fits of noise would
  decide the verdict by chance (measured: unnormalized, f = z on the last step, n_eps 64..128 flat in
  L = 2..8, flipping between the two fits across seeds).
The rule CAN fail: a curve with log n_eps linear in L (exponential sample complexity) has rss_exp = 0 <
rss_power (tests/test_sample_complexity.py: synthetic exponential curves fail, polynomial ones hold).

Targets (cell parameter ``target``; f and d are cell parameters too, directions "sphere"):
* ``last``: f(beta^T X_L), the shortest memory (lag 0);
* ``all``: sum_{l=1}^{L} f(beta_l^T X_l) (the betas of the first positions are the same at every L);
* ``first``: f(beta^T X_{l*}), the longest memory: l* = 1, except in the ``normalized`` regime where
  X_1 = e_d is the same for every sequence (the target would be constant), so l* = 2, the earliest
  informative step.
Control (``control``: True): random labels y ~ N(0, 1), independent of x: n_eps is never reached, so
the example is inconclusive and the cell never holds.

Cells are over (regime, target, f, d), not (m, L): one cell covers the whole L grid, and the claim is
about the infinite-width kernel (no width).

Findings (recorded in the records, stated here so a reader is not surprised). The SPEC's running example
(f = z^2 on X_1, d = 4, unit) was re-measured: n_eps = 64, 128, 256, 1024 at L = 2, 3, 4, 6, i.e.
log2 n_eps = L + 4 exactly: the exponential fits (rss 0) and the rule fails. The longest-memory targets
("first") come out exponential in L on every grid we could run; the shortest-memory ones ("last") and
"all" with f = z^2 come out polynomial. The W-only NTK sees the last step only through the ReLU gate
Kdot_L (H_inf = sum_l P_l K_{l-1} has no K_L term), which is why "last" is not free either.
"""

from __future__ import annotations

from typing import Callable

from hypothesis import strategies as st

from claims.base import Claim, Context, Outcome
from claims.catalogue._sample_complexity import (
    DEFAULT_THRESHOLD,
    FLAT_GROWTH,
    MIN_POINTS,
    complexity_rule,
    doubling_ratios,
    geometric_grid,
    kernel_memory_bytes,
    n_eps_curve,
)
from claims.registry import register
from claims.strategies import SEEDS, recipes
from rnn_core.data import Recipe
from rnn_core.targets import F_DEGREE, TargetSpec

__all__ = ["CLAIM", "SETTINGS", "target_at", "exponent_bound", "evaluate_curve", "outcome_from_curve"]

# Per-profile grids. lengths: the L grid (targets may cap it with their own L_max, see TARGETS);
# n grid: geometric from n_min with ratio 2 up to n_max; n_test fresh test points (independent seed).
SETTINGS: dict[str, dict] = {
    # smoke: L up to 12 (n_max 512) for the short-memory cell: over L in [2, 8] its power-law fit held in
    # only 5 of 6 seeds (one grid step of noise decides a short comparison); up to L = 12 it held 6 of 6
    # with rss_power / rss_exp <= 0.25.
    "smoke": dict(lengths=(2, 3, 4, 6, 8, 12), n_min=4, n_max=512, n_test=500),
    "quick": dict(lengths=(2, 3, 4, 6, 8, 12, 16), n_min=4, n_max=1024, n_test=1000),
    "standard": dict(lengths=(2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64), n_min=8, n_max=4096, n_test=2000),
    "full": dict(
        lengths=(2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256), n_min=8, n_max=16384, n_test=2000
    ),
}

# Positive cells per profile: (target kind, f, d, L_max cap, regimes where the CI asserts "holds").
# must_hold marks the cells the CI expects to hold within the profile's budget (measured: "last" with
# f = z, d = 2 in the unit regime reaches n_eps at every length of the smoke / quick grids and fits a
# power law in 5 of 5 examples; in the normalized regime the same cell was inconclusive, 2 of 5 fitting
# the exponential better, so it is a finding there, not a CI assertion).
TARGETS: dict[str, tuple[tuple, ...]] = {
    "smoke": (("last", "z", 2, 12, ("unit",)), ("first", "z", 2, 6, ())),
    "quick": (
        ("last", "z", 2, 16, ("unit",)),
        ("all", "z2", 2, 8, ()),
        ("first", "z", 2, 8, ()),
    ),
    "standard": (
        ("last", "z", 2, 64, ()),
        ("last", "z2", 4, 64, ()),
        ("all", "z", 4, 64, ()),
        ("all", "z2", 2, 64, ()),
        ("first", "z", 2, 64, ()),
        ("first", "z2", 4, 64, ()),
    ),
}
TARGETS["full"] = TARGETS["standard"]
# Control cells (random labels): regimes and d per profile; the L grid is the first four lengths.
CONTROL_REGIMES: dict[str, tuple[str, ...]] = {
    "smoke": ("unit",),
    "quick": ("unit",),
    "standard": ("normalized", "unit", "unnormalized"),
    "full": ("normalized", "unit", "unnormalized"),
}
CONTROL_D = 2


def settings(profile) -> dict:
    return SETTINGS[profile.name] if profile.name in SETTINGS else SETTINGS["quick"]


def _first_position(regime: str) -> int:
    # normalized regime: X_1 = e_d for every sequence, so a target on X_1 is constant (no variance)
    return 2 if regime == "normalized" else 1


def target_at(kind: str, f: str | None, seed: int, regime: str) -> Callable[[int], TargetSpec]:
    """L -> the TargetSpec of target ``kind`` at length L (see the module docstring)."""
    if kind == "random":
        return lambda L: TargetSpec(family="random", seed=seed)
    if kind == "last":
        return lambda L: TargetSpec(family="additive", f=f, positions=(L,), seed=seed)
    if kind == "all":
        return lambda L: TargetSpec(family="additive", f=f, positions=tuple(range(1, L + 1)), seed=seed)
    if kind == "first":
        p = _first_position(regime)
        return lambda L: TargetSpec(family="additive", f=f, positions=(p,), seed=seed)
    raise ValueError(f"target kind must be one of 'last', 'all', 'first', 'random', got {kind!r}")


def exponent_bound(f: str | None) -> float | None:
    """2 deg(f) + 2 (operational); None for f without a polynomial degree (sin, cos) or random labels."""
    deg = F_DEGREE.get(f) if f is not None else None
    return None if deg is None else 2.0 * deg + 2.0


def lengths_for(cell: dict, profile) -> tuple[int, ...]:
    s = settings(profile)
    Ls = tuple(L for L in s["lengths"] if L <= cell.get("L_max", max(s["lengths"])))
    if cell.get("control"):
        Ls = Ls[:MIN_POINTS]
    if len(Ls) < MIN_POINTS:
        raise ValueError(f"cell {cell}: the L grid {Ls} has fewer than {MIN_POINTS} lengths")
    # "first" in the normalized regime needs L >= 2 (position 2)
    return tuple(L for L in Ls if L >= 2)


def _cells(profile) -> list[dict]:
    out = []
    for regime in profile.regimes:
        for kind, f, d, L_max, _ in TARGETS.get(profile.name, TARGETS["quick"]):
            out.append({"regime": regime, "target": kind, "f": f, "d": d, "L_max": L_max})
    for regime in CONTROL_REGIMES.get(profile.name, ("unit",)):
        if regime in profile.regimes:
            out.append({"regime": regime, "target": "random", "f": None, "d": CONTROL_D, "control": True})
    return out


def _must_hold(cell: dict, profile) -> bool:
    if cell.get("control"):
        return False
    for kind, f, d, L_max, must in TARGETS.get(profile.name, ()):
        if (kind, f, d, L_max) == (cell["target"], cell["f"], cell["d"], cell.get("L_max")):
            return cell["regime"] in must
    return False


def _strategy(cell: dict, profile):
    s = settings(profile)
    Ls = lengths_for(cell, profile)
    make = lambda seed: target_at(cell["target"], cell["f"], seed, cell["regime"])(Ls[-1])  # noqa: E731
    # Only the seeds are free: d and directions fix the cost and the difficulty of the cell, and the
    # network's init seed plays no part in an infinite-width claim (pinned so shrinking skips it).
    return recipes(
        n=s["n_max"],
        L=Ls[-1],
        d=cell["d"],
        regime=cell["regime"],
        directions="sphere",
        target=SEEDS.map(make),
        separation_floor=0.0,
        init_seed=0,
        vocab=8,
    )


def evaluate_curve(cell: dict, recipe: Recipe, lengths, profile, device=None) -> dict:
    """{L: NEps} for the cell's target on ``recipe`` over ``lengths`` (the profile's n grid)."""
    s = settings(profile)
    grid = geometric_grid(s["n_min"], s["n_max"], 2.0)
    make = target_at(cell["target"], cell["f"], recipe.target.seed, cell["regime"])
    return n_eps_curve(recipe, lengths, grid, target_at=make, n_test=s["n_test"], device=device)


def outcome_from_curve(
    curve: dict, bound: float | None, extra_rows: Callable[[int], dict] | None = None
) -> tuple[Outcome, str]:
    """Apply the CPLX-ADD rule to {L: NEps}: (Outcome, reason in words). Shared with CPLX-NVAR."""
    Ls = sorted(curve)
    vals = [curve[L].n_eps for L in Ls]
    cross = [curve[L].n_cross for L in Ls]
    # the fits use the interpolated crossings (n_cross): see NEps.n_cross for why
    ok, fit, reason = complexity_rule(Ls, cross, bound)
    ratios = doubling_ratios(Ls, vals)
    if ok is None:
        margin = float("nan")
    else:
        floor = 1e-20  # an exact fit leaves rounding (~1e-30), not 0
        if fit.rss_exp > floor:
            shape = min(fit.rss_power / fit.rss_exp, 1e9)
        else:  # exponential fits exactly: the power law is worse unless it fits exactly too (a tie)
            shape = 1.0 if fit.rss_power <= floor else 1e9
        # the shape part passes when either the power law fits at least as well or the curve is flat
        # (max/min n_eps <= FLAT_GROWTH), so its margin is the smaller of the two ratios
        shape = min(shape, (max(fit.n_eps) / min(fit.n_eps)) / FLAT_GROWTH)
        margin = max(shape, fit.exponent / bound) if bound is not None else shape
    n_max = curve[Ls[0]].n_max
    measured = {
        "finite_points": fit.finite_points,
        "exponent": fit.exponent,
        "rate": fit.rate,
        "rss_power": fit.rss_power,
        "rss_exp": fit.rss_exp,
        "n_max": n_max,
        "largest_L_reached": max((L for L in Ls if curve[L].reached), default=float("nan")),
        "doubling_ratio_max": max(ratios.values(), default=float("nan")),
        "doubling_ratio_min": min(ratios.values(), default=float("nan")),
    }
    series = []
    for L in Ls:
        row = {"L": L, "n_eps": curve[L].n_eps, "n_cross": curve[L].n_cross}
        if extra_rows is not None:
            row.update(extra_rows(L))
        series.append(row)
    constants = {}
    if fit.finite_points >= MIN_POINTS and bound is not None:
        # the smallest c with a <= c (2 deg f + 2): declared c = 1
        constants["exponent_over_bound"] = fit.exponent / bound
    return Outcome(ok=ok, margin=margin, measured=measured, series=series, constants=constants), reason


def _evaluate(cell: dict, recipe: Recipe, ctx: Context) -> Outcome:
    Ls = lengths_for(cell, ctx.profile)
    curve = evaluate_curve(cell, recipe, Ls, ctx.profile, device=ctx.device)
    outcome, _reason = outcome_from_curve(curve, exponent_bound(cell["f"]))
    return outcome


def _memory(cell: dict, profile) -> int:
    s = settings(profile)
    return kernel_memory_bytes(s["n_max"], s["n_test"])


CLAIM = register(
    Claim(
        id="CPLX-ADD",
        title="Samples almost-polynomial in L for additive targets",
        operationalizes=(
            "the generalization theorem's sample complexity for additive concepts sum_l f(beta_l^T X_l): "
            "samples needed grow almost-polynomially in L without the small-norm condition"
        ),
        statement=(
            "n_eps(L) = smallest n on a geometric grid (ratio 2) with H_inf kernel-regression test MSE <= "
            "0.25 Var(y) grows like a power of L: log n_eps is fitted at least as well by a log L + b as by "
            "a' L + b' (residual sum of squares), with a <= 2 deg(f) + 2"
        ),
        pass_rule=(
            ">= 4 lengths with finite n_eps (<= n_max), rss_power <= rss_exp and exponent a <= 2 deg(f) + 2; "
            "fewer finite lengths: inconclusive (never a pass). margin = max(rss_power/rss_exp, a/(2 deg f + 2))"
        ),
        negative_control="random labels y ~ N(0, 1): n_eps is never reached, so the cell is inconclusive",
        expected=(
            "holds for short-memory additive targets (f on the last step) on every profile; targets on the "
            "first step (longest memory) measure exponential in L (a finding, not a CI failure)"
        ),
        axes=("regime", "target", "f", "d"),
        declared={"exponent_over_bound": 1.0, "eps": DEFAULT_THRESHOLD, "min_points": float(MIN_POINTS)},
        cells=_cells,
        strategy=_strategy,
        evaluate=_evaluate,
        delta=0.1,
        must_hold=_must_hold,
        memory_bytes=_memory,
    )
)
