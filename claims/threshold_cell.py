"""Evaluate one threshold cell: the threshold width m*(L) of a claim at each length, and its growth law.

A claim whose pass probability depends on the width m states "for m >= m*(L) the per-example failure
rate p(m) is at most delta". A threshold cell of such a claim fixes the regime (and, for a control, the
broken setting) and holds, instead of one width, a range of widths and a list of lengths::

    {"kind": "threshold", "regime": "unit", "lengths": [2, 4, 8], "asserted_lengths": [2, 4, 8],
     "m_min": 16, "m_max": 4096, "budget": 48, "exponent_bound": 3.0}

For each length L, :func:`claims.thresholds.search_threshold` draws examples at adaptively chosen integer
widths m in [m_min, m_max] (each example is one recipe of the claim's strategy, evaluated by the claim in
the concrete cell ``{"m": m, "L": L, "regime": ...}``), estimates m*(L) with a 95% interval and certifies
it with the claim's sequential test (``"above"``: the test at m_max ended ``fails``; ``"below"``: the test
at m_min ended ``holds``). Over the lengths, :func:`claims.fits.growth_law` fits m*(L) as a power law
a log L + b against an exponential, censored lengths entering as bounds.

Verdict over the asserted lengths (all lengths when the cell names none):

- ``fails``: at some asserted length no width in range works (``"above"``, certified by the sequential
  test at m_max), or the growth exponent's 95% interval lies wholly above ``exponent_bound``;
- ``holds``: at every asserted length m* is found or below the range, and the exponent's interval lies
  below ``exponent_bound`` (a cell of one length, or whose every length sits at the floor, has no growth);
- the growth law of the verdict is fitted over the asserted lengths (``growth_asserted`` in the record
  when they are fewer than the cell's lengths, whose fit over every length is ``growth``); a cell that
  asserts one length of several asserts no growth;
- ``inconclusive`` otherwise, with the reason.

The record is the grid record of :func:`claims.cell.base_record` plus ``kind``, ``thresholds`` (one dict
per length) and ``growth``; the layout is in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import math
import time
from typing import Any

from claims.base import Claim, Context
from claims.sampling import cell_seed, draw_recipes
from claims.schema import json_safe

__all__ = ["KIND", "THRESHOLD_KEYS", "is_threshold_cell", "concrete_cell", "threshold_cell", "cells_from_settings",
           "per_cell", "estimated_cost", "estimated_memory", "evaluate_threshold_cell", "threshold_verdict"]

KIND = "threshold"

#: the keys of a threshold cell that the concrete (m, L) cell does not carry
THRESHOLD_KEYS: tuple[str, ...] = ("kind", "lengths", "asserted_lengths", "m_min", "m_max", "budget",
                                   "exponent_bound")


def is_threshold_cell(cell: dict) -> bool:
    return cell.get("kind") == KIND


def threshold_cell(regime: str, lengths, m_min: int, m_max: int, budget: int, exponent_bound: float, *,
                   asserted_lengths=(), extra: dict | None = None) -> dict:
    """A threshold cell (see the module docstring); ``extra`` adds keys such as a control's."""
    lengths = sorted(int(L) for L in lengths)
    if not lengths or lengths[0] < 1:
        raise ValueError(f"lengths must be a non-empty list of integers >= 1, got {lengths!r}")
    if not (isinstance(m_min, int) and isinstance(m_max, int) and 1 <= m_min < m_max):
        raise ValueError(f"m_min, m_max must be integers with 1 <= m_min < m_max, got {m_min!r}, {m_max!r}")
    if not (isinstance(budget, int) and budget >= 1):
        raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
    if not (math.isfinite(exponent_bound) and exponent_bound > 0):
        raise ValueError(f"exponent_bound must be a finite number > 0, got {exponent_bound!r}")
    asserted = sorted(int(L) for L in asserted_lengths)
    if not set(asserted) <= set(lengths):
        raise ValueError(f"asserted_lengths must be a subset of lengths {lengths}, got {asserted}")
    cell = dict(extra or {})
    cell.update({"kind": KIND, "regime": regime, "lengths": lengths, "asserted_lengths": asserted,
                 "m_min": m_min, "m_max": m_max, "budget": budget, "exponent_bound": float(exponent_bound)})
    return cell


def concrete_cell(cell: dict, L: int, m: int) -> dict:
    """The grid cell of one example of a threshold cell: its regime (and control keys) at (m, L)."""
    out = {k: v for k, v in cell.items() if k not in THRESHOLD_KEYS}
    out.update({"m": int(m), "L": int(L)})
    return out


def estimated_cost(claim_cost, cell: dict, profile: Any) -> float:
    """Seconds of a threshold cell by the claim's per-example cost model ``claim_cost(cell, profile)``:
    per length, ``budget`` search examples at the geometric middle of the width range and one sequential
    test of 12 examples seven eighths of the way up it (in log m), where certificates usually land (the
    fit to the quick profile's threshold cells, docs/MEASUREMENTS.md)."""
    m_min, m_max = cell["m_min"], cell["m_max"]
    mid = int(round(math.sqrt(m_min * m_max)))
    upper = int(round(m_min ** 0.125 * m_max ** 0.875))
    return sum(cell["budget"] * claim_cost(concrete_cell(cell, L, mid), profile)
               + 12 * claim_cost(concrete_cell(cell, L, upper), profile) for L in cell["lengths"])


def estimated_memory(claim_memory, cell: dict, profile: Any) -> int:
    """Peak bytes of one example of the cell: the claim's estimate at m_max and the longest length."""
    return int(claim_memory(concrete_cell(cell, max(cell["lengths"]), cell["m_max"]), profile))


def cells_from_settings(settings: dict, regimes, exponent_bound: float, *, extra: dict | None = None) -> list[dict]:
    """One threshold cell per regime from a claim's per-profile threshold settings ``{"lengths",
    "asserted", "m_min", "m_max", "budget"}`` and, optionally, ``"regimes"`` (a subset of ``regimes``, the
    profile's, to run)."""
    return [threshold_cell(regime, settings["lengths"], settings["m_min"], settings["m_max"], settings["budget"],
                           exponent_bound, asserted_lengths=settings["asserted"], extra=extra)
            for regime in regimes if regime in settings.get("regimes", regimes)]


def per_cell(example_strategy, example_memory, example_cost) -> tuple:
    """The claim's ``(strategy, memory_bytes, cost)`` for cells of any kind, from its per-example functions
    of a concrete (m, L) cell. A threshold cell draws its recipes as its longest length at m_max (recipes
    do not depend on the width), needs the memory of that example, and costs :func:`estimated_cost`."""

    def strategy(cell: dict, profile: Any):
        if is_threshold_cell(cell):
            cell = concrete_cell(cell, max(cell["lengths"]), cell["m_max"])
        return example_strategy(cell, profile)

    def memory_bytes(cell: dict, profile: Any) -> int:
        return estimated_memory(example_memory, cell, profile) if is_threshold_cell(cell) \
            else example_memory(cell, profile)

    def cost(cell: dict, profile: Any) -> float:
        return estimated_cost(example_cost, cell, profile) if is_threshold_cell(cell) else example_cost(cell, profile)

    return strategy, memory_bytes, cost


def _growth_points(thresholds: list[dict], m_min: int, m_max: int) -> tuple[list, list, list]:
    """(L, low, high) per length for the growth fit: found -> its interval, below -> (None, m_min),
    above -> (m_max, None); inconclusive and non-monotone lengths carry no information on m* and are
    left out."""
    xs, lows, highs = [], [], []
    for t in thresholds:
        if t["status"] == "found":
            lo, hi = t["interval"]
        elif t["status"] == "below":
            lo, hi = None, m_min
        elif t["status"] == "above":
            lo, hi = m_max, None
        else:
            continue
        xs.append(t["L"])
        lows.append(lo)
        highs.append(hi)
    return xs, lows, highs


def threshold_verdict(thresholds: list[dict], growth: dict, asserted: list[int]) -> tuple[str, str]:
    """``(verdict, reason)`` of a threshold cell from its per-length results and growth fit (the rule of
    the module docstring)."""
    checked = [t for t in thresholds if not asserted or t["L"] in asserted]
    growth_asserted = len(checked) >= 2
    above = [t["L"] for t in checked if t["status"] == "above"]
    bound = growth.get("bound")
    ci = growth.get("exponent_ci")
    if above:
        return "fails", (f"no width up to m_max works at L = {', '.join(map(str, above))} "
                         f"(the sequential test at m_max ended fails)")
    if growth_asserted and ci is not None and bound is not None and ci[0] is not None and ci[0] > bound:
        return "fails", f"m*(L) grows faster than L^{bound:g}: exponent interval [{ci[0]:.2g}, {ci[1]:.2g}]"
    open_ = [f"L = {t['L']} ({t['status']})" for t in checked if t["status"] not in ("found", "below")]
    if open_:
        return "inconclusive", "threshold not certified at " + ", ".join(open_)
    if not growth_asserted:
        return "holds", f"m* certified inside the width range at L = {', '.join(str(t['L']) for t in checked)}"
    if not [t for t in checked if t["status"] == "found"]:
        return "holds", "m* <= m_min at every asserted length (no growth to fit)"
    if ci is None or ci[1] is None:
        return "inconclusive", f"no exponent interval for m*(L): {growth.get('note') or 'too few points'}"
    if ci[1] > bound:
        return "inconclusive", (f"exponent interval [{ci[0]:.2g}, {ci[1]:.2g}] is not below the bound {bound:g}")
    lengths = ", ".join(str(t["L"]) for t in checked)
    return "holds", (f"m* certified inside the width range at L = {lengths}; m*(L) ~ L^a with a in "
                     f"[{ci[0]:.2g}, {ci[1]:.2g}] <= {bound:g}")


def evaluate_threshold_cell(claim: Claim, cell: dict, profile: Any, record: dict, ctx: Context,
                            seed: int) -> dict:
    """Fill ``record`` (a :func:`claims.cell.base_record`) for a threshold cell and return it.

    Exceptions propagate (the caller turns them into verdict ``error``)."""
    from claims.cell import inconclusive_rate
    from claims.fits import growth_law
    from claims.registry import recipe_to_dict
    from claims.thresholds import SearchPlan, search_threshold

    record["kind"] = KIND
    test_plan = claim.plan(profile)
    m_min, m_max = int(cell["m_min"]), int(cell["m_max"])
    results: list[dict] = []
    outcomes_seen = {"examples": 0, "failures": 0, "inconclusive": 0}
    failing: dict | None = None
    for L in cell["lengths"]:
        t0 = time.perf_counter()
        draw_seed = cell_seed(claim.id, {**cell, "L": L}, seed)
        strategy = claim.strategy(concrete_cell(cell, L, m_max), profile)
        recipes = iter(draw_recipes(strategy, int(cell["budget"]) + 4 * test_plan.budget, draw_seed))

        def sample(m: int, L: int = L) -> bool | None:
            nonlocal failing
            try:
                recipe = next(recipes)
            except StopIteration:
                raise RuntimeError(f"the strategy ran out of recipes at L = {L}") from None
            concrete = concrete_cell(cell, L, m)
            try:
                outcome = claim.evaluate(concrete, recipe, ctx)
            except Exception:
                record["error_recipe"] = json_safe(recipe_to_dict(recipe))
                raise
            outcomes_seen["examples"] += 1
            if outcome.ok is None:
                outcomes_seen["inconclusive"] += 1
            elif outcome.ok is False:
                outcomes_seen["failures"] += 1
                if failing is None or m > failing["cell"]["m"]:  # the failure at the largest width
                    failing = {"cell": concrete, "recipe": json_safe(recipe_to_dict(recipe)),
                               "outcome": {"ok": False, "margin": outcome.margin, "reason": outcome.reason}}
            return outcome.ok

        plan = SearchPlan(m_min=m_min, m_max=m_max, delta=test_plan.delta, budget=int(cell["budget"]),
                          cost=lambda m, L=L: max(claim.cost(concrete_cell(cell, L, m), profile), 1e-9),
                          test_plan=test_plan)
        result = search_threshold(sample, plan, seed=draw_seed)
        entry = {"L": int(L), **result.to_dict(), "cost_s": time.perf_counter() - t0}
        results.append(json_safe(entry))

    bound = float(cell["exponent_bound"])
    asserted = list(cell.get("asserted_lengths") or [])

    def fit(rows: list[dict]) -> dict:
        return json_safe(growth_law(*_growth_points(rows, m_min, m_max)).to_dict(bound))

    growth = fit(results)
    checked = [t for t in results if t["L"] in asserted]
    if len(asserted) >= 2 and len(checked) < len(results):
        record["growth_asserted"] = fit(checked)
    verdict, reason = threshold_verdict(results, record.get("growth_asserted", growth), asserted)
    record.update(
        verdict=verdict,
        reason=reason,
        thresholds=results,
        growth=growth,
        examples=outcomes_seen["examples"],
        failures=outcomes_seen["failures"],
        inconclusive=outcomes_seen["inconclusive"],
        **inconclusive_rate(outcomes_seen["inconclusive"], outcomes_seen["examples"]),
        series=[{"L": t["L"], "m": p["m"], "examples": p["examples"], "failures": p["failures"]}
                for t in results for p in t.get("probes", [])],
    )
    if failing is not None:
        record["failing_recipe"] = failing["recipe"]
        record["failing_outcome"] = failing["outcome"]
        record["failing_cell"] = failing["cell"]
    return record
