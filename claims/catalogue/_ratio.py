"""The ratio claims FWD, BWD and GRAD: one rule over three ratios, written once.

Each states that a ratio r of a network quantity to its infinite-width limit r_inf stays within a factor
c = 2 of it at random initialization, for every input and every layer:

    r_inf / c <= r_l(x) <= c r_inf,        measured constant c_meas = max(r_max / r_inf, r_inf / r_min).

FWD: r_l = ||h_l||^2 / q_l (r_inf = 1); BWD: r_l = ||delta_l||^2 / m (r_inf = 1/2); GRAD:
r = ||grad_W f(x)||_F^2 / (m H_inf(x, x)) (r_inf = 1). Each module keeps its ratio and its prose; this
factory builds the rest: the cells, the example, the expectations, the cost and memory models.

Cells. Whether the rule holds depends on the width: the spread of r_l is a product of l random factors
of variance O(1/m), so the quantity of interest is the threshold width m*(L) from which the failure rate
of one example is at most delta. Per regime, one threshold cell (:mod:`claims.threshold_cell`) searches
m*(L) over the profile's lengths (``THRESHOLDS``) and fits its growth; the smoke and quick cells assert
that m*(L) exists inside the width range at every length up to 8 (L = 2 alone cannot see the recurrent weight:
h_1 = relu(A X_1)) and that m*(L) grows at most like L^EXPONENT_BOUND. A recurrent variance off by a
factor (1 + e) moves the limit of r_l by about (1 + e)^l, so a 20% error fails the L = 8 search at every
width. The negative controls (a broken W variance) stay grid cells at the largest width. Search cells
(:mod:`claims.catalogue._search_stability`) attack the "every input" of the statement at one fixed
initialization; they are findings.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

import torch

from claims.base import Claim, Context, Outcome, finite_or_nan
from claims.catalogue import _cost
from claims.catalogue import _init_common as common
from claims.catalogue import _search_stability
from claims.registry import register
from claims.search import evaluations, is_search_cell
from claims.threshold_cell import cells_from_settings, is_threshold_cell, per_cell

__all__ = ["C_DECLARED", "EXPONENT_BOUND", "N_SEQUENCES", "THRESHOLDS", "EXPECTED", "RatioSpec", "ratio_claim",
           "threshold_cells", "layer_figure"]

C_DECLARED = 2.0

#: the bound on the growth exponent a of m*(L) ~ L^a that smoke and quick assert (operational: the paper
#: says m >= poly(L) without a degree). The spread of log r_l is a sum of l terms of variance O(1/m),
#: which puts m* near L times a log; the measured exponents are about 1-2, and a search of smoke's size
#: pins a to about +-1.3, so the bound is 2 plus that (docs/SPEC_NOTES.md, "Threshold widths").
EXPONENT_BOUND = 4.0

#: n sequences per example (the claims are about every input, not about n)
N_SEQUENCES: dict[str, int] = {"smoke": 6, "quick": 8, "standard": 4, "full": 16}

#: the threshold search per profile: lengths, the asserted ones, the width range, search examples per length
THRESHOLDS: dict[str, dict[str, Any]] = {
    "smoke": {"lengths": (2, 3, 4, 6, 8), "asserted": (2, 3, 4, 6, 8), "m_min": 16, "m_max": 4096, "budget": 48},
    # quick stops at L = 8: L = 16 costs 40-60 s of one core per cell (the certificate at m ~ 3000-4096,
    # measured), 12 cells' worth is half of quick's 10 minutes (docs/SPEC_NOTES.md, "Threshold widths")
    "quick": {"lengths": (2, 3, 4, 6, 8), "asserted": (2, 3, 4, 6, 8), "m_min": 16, "m_max": 4096, "budget": 48},
    "standard": {"lengths": (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64), "asserted": (), "m_min": 32,
                 "m_max": 8192, "budget": 60},
    "full": {"lengths": (2, 4, 8, 16, 32, 64, 128, 256), "asserted": (), "m_min": 64, "m_max": 32768,
             "budget": 80},
}


@dataclass(frozen=True)
class RatioSpec:
    """What distinguishes one ratio claim besides its prose: its ratio and limit, its control and its cost.

    label: the ratio in words (reasons, the figure); limit: r_inf; control_w_var: the control's W variance
    times m; ratios(p, X) -> (r, extra): r the (n, L) or (n,) float64 ratio (NaN: 0/0, no information),
    extra measured values of the example; backward: the ratio needs the backward pass (the cost model);
    per_layer: r has one column per layer (series rows and the per-layer figure); search: the
    counterexample search's objective (:mod:`claims.search`)."""

    label: str
    limit: float
    control_w_var: float
    ratios: Callable[[Any, torch.Tensor], tuple[torch.Tensor, dict]]
    backward: bool
    per_layer: bool = True
    search: Callable | None = None


def _asserted_lengths() -> str:
    spans = {name: f"L = {min(s['asserted'])}..{max(s['asserted'])}" for name, s in THRESHOLDS.items() if s["asserted"]}
    if len(set(spans.values())) == 1:
        return f"{' and '.join(spans)} {next(iter(spans.values()))}"
    return ", ".join(f"{name} {span}" for name, span in spans.items())


#: the expectation of every ratio claim, from the constants above
EXPECTED = (f"the threshold width m*(L) exists inside the width range at every asserted length "
            f"({_asserted_lengths()}) and grows at most like L^{EXPONENT_BOUND:g} (must hold); the other "
            f"profiles' lengths are findings")


def threshold_cells(profile: Any) -> list[dict]:
    """One threshold cell per regime of ``profile`` (THRESHOLDS[profile.name])."""
    return cells_from_settings(THRESHOLDS[profile.name], profile.regimes, EXPONENT_BOUND)


def ratio_claim(spec: RatioSpec, **prose: str) -> Claim:
    """Build and register the claim of ``spec``; ``prose`` gives its id, title, operationalizes,
    statement, pass_rule and negative_control (see the module docstring)."""
    low, high = spec.limit / C_DECLARED, spec.limit * C_DECLARED

    def n_of(profile: Any) -> int:
        return N_SEQUENCES[getattr(profile, "name", profile)]

    def cells(profile: Any) -> list[dict]:
        searched = _search_stability.search_cells(profile, prose["id"]) if spec.search else []
        return threshold_cells(profile) + common.control_cells(profile, spec.control_w_var) + searched

    def example_strategy(cell: dict, profile: Any):
        return common.recipes_for(cell, n_of(profile))

    def evaluate(cell: dict, recipe: Any, ctx: Context) -> Outcome:
        X = common.inputs(recipe, ctx)
        p = common.network(cell, recipe, ctx)
        r, extra = spec.ratios(p, X)
        ok, margin, c_meas, r_min, r_max = common.two_sided(r, spec.limit, C_DECLARED)
        reason = "" if ok is not False else common.ratio_reason(spec.label, r_min, r_max, low, high)
        measured = {"ratio_min": r_min, "ratio_max": r_max, "c": c_meas,
                    **{k: finite_or_nan(v) for k, v in extra.items()}}
        series = common.layer_series(r) if spec.per_layer else []
        return Outcome(ok=ok, margin=margin, measured=measured, series=series, constants={"c": c_meas},
                       reason=reason)

    def must_hold(cell: dict, profile: Any) -> bool:
        return is_threshold_cell(cell) and bool(cell["asserted_lengths"])

    def example_memory(cell: dict, profile: Any) -> int:
        return common.network_memory(int(cell["m"]), n_of(profile), int(cell["L"]))

    def example_cost(cell: dict, profile: Any) -> float:
        m, L = int(cell["m"]), int(cell["L"])
        return _cost.network(m, n_of(profile), L, backward=spec.backward, draws=m * m)

    def cell_cost(cell: dict, profile: Any) -> float:
        if is_search_cell(cell):  # one network, then the score of one sequence with its gradient, many times
            m, L = int(cell["m"]), int(cell["L"])
            return evaluations(profile, cell) * _cost.network(m, 1, L, backward=True) + _cost.seconds(draws=m * m)
        return example_cost(cell, profile)

    strategy, memory_bytes, cost = per_cell(example_strategy, example_memory, cell_cost)

    return register(
        Claim(
            **prose,
            expected=EXPECTED,
            axes=("m", "L", "regime"),
            declared={"c": C_DECLARED, "exponent": EXPONENT_BOUND},
            delta=0.1,
            cells=cells,
            strategy=strategy,
            evaluate=evaluate,
            must_hold=must_hold,
            memory_bytes=memory_bytes,
            cost=cost,
            settings={name: {"n": n, "threshold": THRESHOLDS[name]} for name, n in N_SEQUENCES.items()},
            figures=(layer_figure(spec.label, low, high),) if spec.per_layer else (),
            search=spec.search,
            precision=common.RATIO_PRECISION,
            max_shrink=4,  # failing grid cells are controls or findings: a few shrink steps suffice
        )
    )


def layer_figure(label: str, low: float, high: float) -> Callable:
    """The report figure of a per-layer ratio claim: the range of ``label`` across layers l, per L at the
    smallest and largest width of the grid cells, and in the negative controls (the broken W variance
    leaving [low, high] layer by layer), against the claim's bounds [low, high]. Threshold cells keep
    their probes, not per-layer rows (their figure is m*(L))."""

    def figure(claim: str, records: list[dict], profile: str) -> Any:
        from reports import figures as kit  # matplotlib: imported when the report draws

        rows = [r for r in kit.series_rows(records, ("l", "ratio"), main_only=False) if math.isfinite(kit.num(r["ratio"]))]
        if not rows:
            raise kit.Missing("no series rows with l and ratio")
        fig, (ax,) = kit.new_axes(w=6.0, h=3.8)
        keys = sorted({(r["_control"], r.get("L"), r.get("m"), r.get("w_var")) for r in rows},
                      key=lambda k: (k[0], *(kit.num(x) for x in k[1:3])))
        Ls = sorted({k[1] for k in keys}, key=lambda x: kit.num(x))
        ms = sorted({k[2] for k in keys if not k[0]}, key=lambda x: kit.num(x))
        for control, L, m, w_var in keys:
            if not control and m != ms[-1] and m != ms[0]:
                continue  # smallest and largest widths only
            agg = defaultdict(list)
            for r in rows:
                if (r["_control"], r.get("L"), r.get("m"), r.get("w_var")) == (control, L, m, w_var):
                    agg[float(r["l"])].append(float(r["ratio"]))
            ls_ = sorted(agg)
            st = kit.style(Ls.index(L))
            line = "-." if control else ("-" if m == ms[-1] else ":")
            name = f"control W ~ N(0, {w_var:g}/m), L={L}, m={m}" if control else f"L={L}, m={m}"
            ax.plot(ls_, [min(agg[x]) for x in ls_], ls=line, label=f"{name} (min, max)", **st)
            ax.plot(ls_, [max(agg[x]) for x in ls_], ls=line, alpha=0.5, **st)
        ax.axhline(low, color="#000000", ls="--", lw=1, label="declared bounds")
        ax.axhline(high, color="#000000", ls="--", lw=1)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("layer l")
        ax.set_ylabel(label)
        ax.legend(fontsize=6, ncol=2)
        return kit.Figure("layers", f"{label} across layers", kit.to_svg(fig),
                          f"Range (min and max over examples and inputs) of {label} across layers l: grid cells at "
                          f"their smallest (dotted) and largest (solid) width, and the negative controls "
                          f"(dash-dot), one colour per L; dashed: the declared bounds {low:g} and {high:g}. "
                          f"Profile: {profile}.")

    return figure
