"""CPLX-NVAR: N-variable, l_0-local targets (SPEC section 4).

Operationalizes the paper's second result (Wang, Shen, Hu, Cao, NeurIPS 2021): targets
y = f(beta^T [X_{l_1}; ...; X_{l_N}]) (beta a unit vector in R^{N d}; with f = z^2 they have the cross
terms (beta_i^T X_{l_i})(beta_j^T X_{l_j}) and are NOT additive) are learnable with samples
almost-polynomial in L when N or the span l_0 = l_N - l_1 is small.

Two kinds of cell (cell parameter ``kind``):

* ``curve``: n_eps(L) over the profile's L grid for fixed (N, l_0, anchor), with the CPLX-ADD estimator
  and rule (>= 4 finite lengths; power law a log L + b fits log n_eps at least as well as a' L + b';
  a <= 2 deg(f) + 2; fewer points: inconclusive). The positions are l_N = L - k: anchor ``late`` keeps
  the lag k = 0 (the variables end at the output); anchor ``early`` puts l_1 = 1 (lag k = L - 1 - l_0, the
  longest memory). The SPEC expects this rule to hold when N <= 2 or l_0 <= 1.
* ``growth``: at one fixed L, n_eps for every (N, l_0) of a table (one kernel and one Cholesky factor per
  n shared by all targets). Holds iff n_eps does not decrease along N at fixed l_0 nor along l_0 at fixed
  N, up to one grid step (n_cross(bigger) >= n_cross(smaller) / 2: the grid's resolution; not reached
  counts as +inf), and the largest (N, l_0) needs more samples than the smallest (end-to-end
  growth, n_cross(largest) > n_cross(smallest)). margin = the worst ratio n_cross(smaller) / (2 n_cross(bigger)) over the comparisons (<= 1).

Negative control: a ``curve`` cell with large N and l_0 and f = z^3: the rule fails or is inconclusive.

Findings (kernel regression with the W-only H_inf; see the records): with the ``late`` anchor the table
DEcreases in l_0 and in N (a single z^2 variable at the last step is the hardest target: the W-only NTK
sees X_L only through the ReLU gate Kdot_L, and with beta a unit vector in R^{N d} more variables / a
longer span move weight away from the last step). With the ``early`` anchor n_eps is nearly flat over
(N, l_0) at L = 6. So the SPEC's "n_eps grows with N and with l_0 at fixed L" is tested as stated and
reported; it is not built in.

Series rows: {"N", "l0", "L", "lag", "n_eps"} (n_eps None when not reached), plus "n_cross".
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from claims.base import Claim, Context, Outcome
from claims.catalogue._sample_complexity import (
    DEFAULT_THRESHOLD,
    MIN_POINTS,
    geometric_grid,
    kernel_memory_bytes,
    n_eps_curve,
    n_eps_table,
)
from claims.catalogue.cplx_add import exponent_bound, outcome_from_curve
from claims.registry import register
from claims.strategies import SEEDS, recipes
from rnn_core.data import Recipe, make_inputs, test_seed
from rnn_core.targets import TargetSpec, make_target

__all__ = ["CLAIM", "SETTINGS", "nvar_spec", "growth_rule", "GROWTH_TABLE"]

SETTINGS: dict[str, dict] = {
    "smoke": dict(lengths=(2, 3, 4, 6, 8), n_min=4, n_max=256, n_test=500, growth_L=4),
    "quick": dict(lengths=(2, 3, 4, 6, 8, 12, 16), n_min=4, n_max=1024, n_test=1000, growth_L=6),
    "standard": dict(lengths=(2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64), n_min=8, n_max=4096, n_test=2000, growth_L=8),
    "full": dict(
        lengths=(2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128), n_min=8, n_max=16384, n_test=2000, growth_L=16
    ),
}
D = 2  # input dimension of every cell: N d stays small enough for CPU budgets

# (N, l_0) table of the growth cells; entries need l_0 + 1 <= L (filtered per L)
GROWTH_TABLE: tuple[tuple[int, int], ...] = ((1, 0), (2, 1), (2, 2), (2, 4), (3, 2), (3, 4), (4, 4), (4, 6))

# curve cells: (N, l_0, anchor, f, regimes) per profile
CURVES: dict[str, tuple] = {
    "smoke": ((2, 1, "early", "z2", ("unit",)),),
    "quick": (
        (2, 1, "early", "z2", ("normalized", "unit", "unnormalized")),
        (2, 1, "late", "z2", ("unit",)),
    ),
    "standard": (
        (2, 1, "early", "z2", ("normalized", "unit", "unnormalized")),
        (2, 1, "late", "z2", ("normalized", "unit", "unnormalized")),
        (2, 3, "late", "z2", ("unit",)),
        (3, 2, "late", "z2", ("unit",)),
    ),
}
CURVES["full"] = CURVES["standard"]
GROWTH: dict[str, tuple] = {
    "smoke": (("early", ("unit",)),),
    "quick": (("early", ("unit",)), ("late", ("unit",))),
    "standard": (("early", ("normalized", "unit", "unnormalized")), ("late", ("normalized", "unit", "unnormalized"))),
}
GROWTH["full"] = GROWTH["standard"]
# control: large N and l_0, f = z^3 (a curve cell)
CONTROL = {"N": 4, "l0": 6, "anchor": "late", "f": "z3"}


def settings(profile) -> dict:
    return SETTINGS[profile.name] if profile.name in SETTINGS else SETTINGS["quick"]


def _lag(anchor: str, l0: int, L: int) -> int:
    if anchor == "late":
        return 0
    if anchor == "early":
        return L - 1 - l0
    raise ValueError(f"anchor must be 'late' or 'early', got {anchor!r}")


def nvar_spec(N: int, l0: int, anchor: str, f: str, seed: int, L: int) -> TargetSpec:
    """The N-variable target at length L: span l_0, lag 0 (late) or L - 1 - l_0 (early)."""
    return TargetSpec(family="nvar", f=f, N=N, span=l0, lag=_lag(anchor, l0, L), seed=seed)


CONTROL_LENGTHS = (7, 8, 10, 12)  # l_0 = 6 needs L >= 7; four lengths, the least the rule can use


def curve_lengths(cell: dict, profile) -> tuple[int, ...]:
    if cell.get("control"):
        return CONTROL_LENGTHS
    return tuple(L for L in settings(profile)["lengths"] if L >= cell["l0"] + 1)


def _cells(profile) -> list[dict]:
    out = []
    name = profile.name if profile.name in CURVES else "quick"
    for N, l0, anchor, f, regimes in CURVES[name]:
        for regime in regimes:
            if regime in profile.regimes:
                out.append({"kind": "curve", "regime": regime, "N": N, "l0": l0, "anchor": anchor, "f": f, "d": D})
    for anchor, regimes in GROWTH[name]:
        for regime in regimes:
            if regime in profile.regimes:
                out.append(
                    {"kind": "growth", "regime": regime, "anchor": anchor, "f": "z2", "d": D, "L": settings(profile)["growth_L"]}
                )
    if "unit" in profile.regimes:
        out.append({"kind": "curve", "regime": "unit", **CONTROL, "d": D, "control": True})
    return out


def _table(L: int) -> list[tuple[int, int]]:
    return [(N, l0) for N, l0 in GROWTH_TABLE if l0 + 1 <= L]


def _strategy(cell: dict, profile):
    s = settings(profile)
    if cell["kind"] == "curve":
        L = curve_lengths(cell, profile)[-1]
        make = lambda seed: nvar_spec(cell["N"], cell["l0"], cell["anchor"], cell["f"], seed, L)  # noqa: E731
    else:
        L = cell["L"]
        N, l0 = _table(L)[-1]
        make = lambda seed: nvar_spec(N, l0, cell["anchor"], cell["f"], seed, L)  # noqa: E731
    # only seeds are free (d, directions fix cost and difficulty; init_seed is unused at infinite width)
    return recipes(
        n=s["n_max"], L=L, d=cell["d"], regime=cell["regime"], directions="sphere",
        target=SEEDS.map(make), separation_floor=0.0, init_seed=0, vocab=8,
    )


def growth_rule(table: dict[tuple[int, int], float | None]) -> tuple[bool, float, list[tuple]]:
    """(ok, margin, comparisons) for {(N, l0): n_cross or None}. See the module docstring.

    comparisons: (smaller (N, l0), bigger (N, l0), ratio n(smaller) / (2 n(bigger))) for neighbours along
    N at fixed l0 and along l0 at fixed N; ratio <= 1 passes. Not reached counts as +inf.
    """
    val = {k: (math.inf if v is None else float(v)) for k, v in table.items()}
    keys = sorted(val)
    comps = []
    for (N, l0) in keys:
        nxt_l0 = [k for k in keys if k[0] == N and k[1] > l0]
        nxt_N = [k for k in keys if k[1] == l0 and k[0] > N]
        for group in (nxt_l0, nxt_N):
            if group:
                big = min(group)
                small_v, big_v = val[(N, l0)], val[big]
                if math.isinf(big_v):
                    r = 0.0
                elif math.isinf(small_v):
                    r = math.inf
                else:
                    r = small_v / (2.0 * big_v)
                comps.append(((N, l0), big, r))
    lo, hi = val[keys[0]], val[keys[-1]]
    # end to end: the largest (N, l0) needs more samples than the smallest (ratio < 1; inf/inf counts as no growth)
    end_ratio = (lo / hi) if math.isfinite(hi) else (0.0 if math.isfinite(lo) else 1.0)
    worst = max([c[2] for c in comps] + [end_ratio])
    ok = all(c[2] <= 1.0 for c in comps) and end_ratio < 1.0
    return ok, worst, comps


def _evaluate(cell: dict, recipe: Recipe, ctx: Context) -> Outcome:
    s = settings(ctx.profile)
    grid = geometric_grid(s["n_min"], s["n_max"], 2.0)
    seed = recipe.target.seed
    if cell["kind"] == "curve":
        Ls = curve_lengths(cell, ctx.profile)
        make = lambda L: nvar_spec(cell["N"], cell["l0"], cell["anchor"], cell["f"], seed, L)  # noqa: E731
        curve = n_eps_curve(recipe, Ls, grid, target_at=make, n_test=s["n_test"], device=ctx.device)
        extra = lambda L: {"N": cell["N"], "l0": cell["l0"], "lag": _lag(cell["anchor"], cell["l0"], L)}  # noqa: E731
        outcome, _ = outcome_from_curve(curve, exponent_bound(cell["f"]), extra_rows=extra)
        return outcome
    # growth: one length, every (N, l0) of the table on the same inputs
    L = cell["L"]
    common = dict(regime=recipe.regime, directions=recipe.directions, vocab=recipe.vocab)
    Xtr = make_inputs(grid[-1], L, recipe.d, seed=recipe.data_seed, **common)
    Xte = make_inputs(s["n_test"], L, recipe.d, seed=test_seed(recipe.data_seed), **common)
    if ctx.device is not None:
        Xtr, Xte = Xtr.to(ctx.device), Xte.to(ctx.device)
    labels = {}
    for N, l0 in _table(L):
        t = make_target(nvar_spec(N, l0, cell["anchor"], cell["f"], seed, L), L, recipe.d)
        labels[f"{N},{l0}"] = (t(Xtr), t(Xte))
    res = n_eps_table(Xtr, Xte, {L: labels}, grid)
    table = {}
    series = []
    for N, l0 in _table(L):
        ne = res[f"{N},{l0}"][L]
        table[(N, l0)] = ne.n_cross
        series.append({"N": N, "l0": l0, "L": L, "lag": _lag(cell["anchor"], l0, L), "n_eps": ne.n_eps, "n_cross": ne.n_cross})
    ok, margin, comps = growth_rule(table)
    finite = [v for v in table.values() if v is not None]
    measured = {
        "finite_points": len(finite),
        "violations": sum(1 for c in comps if c[2] > 1.0),
        "comparisons": len(comps),
        "n_eps_smallest": table[min(table)] if table[min(table)] is not None else math.nan,
        "n_eps_largest": table[max(table)] if table[max(table)] is not None else math.nan,
    }
    return Outcome(ok=ok, margin=min(margin, 1e9), measured=measured, series=series)


def _memory(cell: dict, profile) -> int:
    s = settings(profile)
    return kernel_memory_bytes(s["n_max"], s["n_test"])


CLAIM = register(
    Claim(
        id="CPLX-NVAR",
        title="N-variable, l_0-local targets: samples almost-polynomial in L for small N or l_0",
        operationalizes=(
            "the paper's N-variable result: f(beta^T [X_{l_1}; ...; X_{l_N}]) is learnable with samples "
            "almost-polynomial in L when N or l_0 = max(l_i) - min(l_i) is small"
        ),
        statement=(
            "curve cells: n_eps(L) of H_inf kernel regression fits a power law in L at least as well as an "
            "exponential, exponent <= 2 deg(f) + 2 (expected for N <= 2 or l_0 <= 1); growth cells: at fixed L, "
            "n_eps does not decrease in N nor in l_0 (one grid step of slack) and grows end to end"
        ),
        pass_rule=(
            "curve: the CPLX-ADD rule (>= 4 finite lengths, rss_power <= rss_exp, a <= 2 deg f + 2; else "
            "inconclusive). growth: every neighbour comparison n(smaller) <= 2 n(bigger) and n(largest) > "
            "n(smallest); margin = worst n(smaller)/(2 n(bigger))"
        ),
        negative_control="N = 4, l_0 = 6, f = z^3 (lag 0): the curve rule fails or is inconclusive",
        expected=(
            "curve cells with N <= 2 or l_0 <= 1 hold where the profile reaches 4 lengths; on CPU budgets many "
            "are inconclusive. The growth statement is a finding either way (see the module docstring)"
        ),
        axes=("kind", "regime", "N", "l0", "anchor", "L"),
        declared={"exponent_over_bound": 1.0, "eps": DEFAULT_THRESHOLD, "min_points": float(MIN_POINTS)},
        cells=_cells,
        strategy=_strategy,
        evaluate=_evaluate,
        delta=0.1,
        must_hold=lambda cell, profile: False,
        memory_bytes=_memory,
    )
)
