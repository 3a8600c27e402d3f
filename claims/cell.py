"""Evaluate one cell: draw, evaluate, feed the sequential test until it decides or the budget ends,
shrink a failure, build the record.

1. Memory guard: ``claim.memory_bytes(cell, profile)`` against the memory available on the device; a
   cell that needs more than :data:`claims.environment.MEMORY_FRACTION` of it is ``skipped`` with the
   reason.
2. The test plan (``claim.plan(profile)``: delta, delta_1, alpha, beta, the example budget) and up to
   ``budget`` recipes drawn by :func:`claims.sampling.draw_recipes` from the cell's seed.
3. Examples are evaluated one at a time with ``claim.evaluate(cell, recipe, ctx)``; each outcome feeds
   :class:`claims.verdict.SequentialTest`, which stops the cell as soon as it decides. An exception ends
   the cell with verdict ``error``, the message and the recipe that raised.
4. A failing non-control cell is shrunk (:func:`claims.sampling.shrink`) within the profile's shrink
   budget (capped by ``claim.max_shrink``).
5. Measured values are aggregated per key (mean / min / max), the margin is the worst (largest) over
   the examples, series rows get ``"example": i``, measured constants are aggregated by max.

Nothing here writes files: the record is returned to the caller (the session writes it).
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Any

from claims.base import Claim, Context, Outcome
from claims.environment import MEMORY_FRACTION, available_memory, environment_info, now, worker_info
from claims.registry import recipe_to_dict
from claims.sampling import cell_seed, draw_recipes, recipe_json, shrink, simplicity_key
from claims.schema import SCHEMA, cell_key, json_safe, params_of
from claims.verdict import SequentialTest, clopper_pearson
from claims.threshold_cell import evaluate_threshold_cell, is_threshold_cell

__all__ = ["DTYPES", "evaluate_cell", "network_dtype", "base_record", "error_record", "inconclusive_rate"]

#: the run's dtype policy: "auto" lets each claim use the precision it declares; "float64" forces it
DTYPES: tuple[str, ...] = ("auto", "float64")


def network_dtype(claim: Claim, dtype: str) -> str:
    """The network dtype a cell of ``claim`` uses under the run's policy ``dtype``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return "float64" if dtype == "float64" else claim.precision


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float64": torch.float64, "float32": torch.float32}[name]


def base_record(claim: Claim, cell: dict, profile: Any, device: Any, *, seed: int = 0,
                dtype: str = "float64") -> dict:
    """The fields every record has, with verdict ``error`` until the cell finishes."""
    expect, not_asserted = claim.expectation(cell, profile)
    plan = claim.plan(profile)
    return {
        "schema": SCHEMA,
        "claim": claim.id,
        "title": claim.title,
        "cell_key": cell_key(cell),
        "cell": json_safe(cell),
        "params": json_safe(params_of(cell)),
        "control": bool(cell.get("control", False)),
        "expect": expect,
        "must_hold": expect == "holds",
        "not_asserted": not_asserted,
        "verdict": "error",
        "reason": "",
        "test": plan.to_dict(),
        "delta": claim.delta,
        "examples": 0,
        "failures": 0,
        "inconclusive": 0,
        "failure_rate_ci": [0.0, 1.0],
        "inconclusive_rate": None,
        "inconclusive_rate_ci": [0.0, 1.0],
        "margin": None,
        "margins": [],
        "example_ok": [],
        "measured": {},
        "declared_constants": json_safe(claim.declared),
        "measured_constants": {},
        "series": [],
        "recipes": [],
        "failing_recipe": None,
        "failing_outcome": None,
        "failing_example": None,
        "shrunk": False,
        "shrink_evaluations": 0,
        "error_recipe": None,
        "seed": int(seed),
        "seeds": {},
        "dtype": dtype,
        "profile": profile.name,
        "device": str(device),
        "worker": worker_info(device),
        **environment_info(),
        "started": now(),
        "duration_s": 0.0,
        "message": "",
    }


def error_record(claim: Claim, cell: dict, profile: Any, device: Any, message: str, *, seed: int = 0,
                 dtype: str = "float64") -> dict:
    """A finished record with verdict ``error`` and ``message`` (a worker that died, a broken grid)."""
    record = base_record(claim, cell, profile, device, seed=seed, dtype=dtype)
    record["message"] = record["reason"] = message
    return record


def inconclusive_rate(inconclusive: int, examples: int) -> dict:
    """The record's share of inconclusive examples: {"inconclusive_rate": inconclusive / examples (None
    without examples), "inconclusive_rate_ci": the two-sided 95% Clopper-Pearson interval [lo, hi]}."""
    return {"inconclusive_rate": inconclusive / examples if examples else None,
            "inconclusive_rate_ci": list(clopper_pearson(inconclusive, examples, 0.025))}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, str)


def _aggregate_measured(outcomes: list[Outcome]) -> dict[str, dict]:
    keys: list[str] = []
    for outcome in outcomes:
        keys.extend(k for k in outcome.measured if k not in keys)
    result: dict[str, dict] = {}
    for key in keys:
        values = [o.measured.get(key) for o in outcomes if key in o.measured]
        numbers = [float(v) for v in values if _is_number(v) or getattr(v, "ndim", None) == 0]
        if numbers or not values:
            finite = [v for v in numbers if math.isfinite(v)]
            result[key] = {
                "mean": sum(finite) / len(finite) if finite else math.nan,
                "min": min(finite) if finite else math.nan,
                "max": max(finite) if finite else math.nan,
                "n": len(finite),
            }
        else:
            distinct: list[Any] = []
            for v in values:
                safe = json_safe(v)
                if safe not in distinct:
                    distinct.append(safe)
            result[key] = {"values": distinct[:20]}
    return result


def _aggregate_constants(outcomes: list[Outcome]) -> dict[str, float]:
    result: dict[str, float] = {}
    for outcome in outcomes:
        for key, value in outcome.constants.items():
            value = float(value)
            old = result.get(key, math.nan)
            if math.isfinite(value):
                result[key] = value if math.isnan(old) else max(old, value)
            else:
                result.setdefault(key, math.nan)
    return result


def _seeds_of(recipe_dict: dict, prefix: str = "") -> dict[str, Any]:
    seeds: dict[str, Any] = {}
    for key, value in recipe_dict.items():
        if isinstance(value, dict):
            seeds.update(_seeds_of(value, f"{prefix}{key}."))
        elif "seed" in key.lower():
            seeds[f"{prefix}{key}"] = value
    return seeds


def _outcome_summary(outcome: Outcome | None) -> dict | None:
    if outcome is None:
        return None
    return {"ok": outcome.ok, "margin": outcome.margin, "reason": outcome.reason,
            "measured": json_safe(outcome.measured), "constants": json_safe(outcome.constants)}


def evaluate_cell(claim: Claim, cell: dict, profile: Any, *, device: Any, seed: int = 0,
                  dtype: str = "auto") -> dict:
    """Run one cell and return its record (see the module docstring).

    Errors inside the claim (strategy, evaluation, estimates) never propagate: they give verdict
    ``error`` with the message. ``device`` is a resolved torch device; ``seed`` the run seed;
    ``dtype`` the run's policy ("auto" or "float64")."""
    t0 = time.perf_counter()
    searching = cell.get("kind") == "search"
    net = "float64" if searching else network_dtype(claim, dtype)  # a search compares scores near 1
    record = base_record(claim, cell, profile, device, seed=seed, dtype=net)
    stage = "memory_bytes"
    try:
        need = int(claim.memory_bytes(cell, profile))
        have = available_memory(device)
        if have is not None and need > MEMORY_FRACTION * have:
            record["verdict"] = "skipped"
            record["message"] = record["reason"] = (
                f"memory guard: needs about {need / 2**30:.2f} GiB, {have / 2**30:.2f} GiB available on {device}")
            return record
        if searching:
            from claims.search import search_into

            stage = "search"
            return search_into(claim, cell, profile, record, device, seed)
        if is_threshold_cell(cell):
            stage = "threshold search"
            ctx = Context(device=device, profile=profile, dtype=_torch_dtype(net))
            return evaluate_threshold_cell(claim, cell, profile, record, ctx, seed)
        stage = "strategy"
        plan = claim.plan(profile)
        draw_seed = cell_seed(claim.id, cell, seed)
        strategy = claim.strategy(cell, profile)
        recipes = draw_recipes(strategy, plan.budget, draw_seed)
        if not recipes:
            raise RuntimeError("the strategy produced no recipes")
        record["seeds"] = {"draw_seed": draw_seed, "examples": []}

        ctx = Context(device=device, profile=profile, dtype=_torch_dtype(net))
        test = SequentialTest(plan)
        outcomes: list[Outcome] = []
        cache: dict[str, tuple[bool, Outcome | None]] = {}
        for i, recipe in enumerate(recipes):
            stage = f"evaluate (example {i})"
            recipe_dict = json_safe(recipe_to_dict(recipe))
            record["recipes"].append(recipe_dict)
            record["seeds"]["examples"].append(_seeds_of(recipe_dict))
            try:
                outcome = claim.evaluate(cell, recipe, ctx)
                if not isinstance(outcome, Outcome):
                    raise TypeError(f"evaluate must return claims.base.Outcome, got {type(outcome).__name__}")
            except Exception:
                record["error_recipe"] = recipe_dict
                raise
            outcomes.append(outcome)
            cache[recipe_json(recipe)] = (outcome.ok is False, outcome)
            test.add(outcome.ok)
            if test.decided:
                break
        decision = test.decision
        if decision.verdict is None:  # the strategy ran out of recipes before the budget
            decision_verdict = "inconclusive"
            reason = (f"budget: the strategy gave only {len(recipes)} distinct recipes, no decision "
                      f"({decision.failures} of {decision.examples - decision.inconclusive} failed)")
        else:
            decision_verdict, reason = decision.verdict, decision.reason

        stage = "aggregate"
        k = decision.examples - decision.inconclusive
        margins = [float(o.margin) for o in outcomes]
        finite_margins = [m for m in margins if math.isfinite(m)]
        series = [{**row, "example": i} for i, o in enumerate(outcomes) for row in o.series]
        record.update(
            verdict=decision_verdict,
            reason=reason,
            examples=decision.examples,
            failures=decision.failures,
            inconclusive=decision.inconclusive,
            failure_rate_ci=list(clopper_pearson(decision.failures, k, plan.alpha)),
            **inconclusive_rate(decision.inconclusive, decision.examples),
            margin=max(finite_margins) if finite_margins else math.nan,
            margins=margins,
            example_ok=[o.ok for o in outcomes],
            measured=_aggregate_measured(outcomes),
            measured_constants=_aggregate_constants(outcomes),
            series=series,
        )
        record["test"].update(llr=decision.llr, lower=plan.lower, upper=plan.upper)
        if decision.failures:
            first = next(i for i, o in enumerate(outcomes) if o.ok is False)
            record["failing_recipe"] = record["recipes"][first]
            record["failing_outcome"] = _outcome_summary(outcomes[first])
            record["failing_example"] = first
            budget = profile.shrink_budget if claim.max_shrink is None else min(profile.shrink_budget, claim.max_shrink)
            if not record["control"] and budget > 0:
                stage = "shrink"
                _shrink_into(record, claim, cell, ctx, strategy, draw_seed, len(recipes), budget, cache,
                             recipes[first])
        return record
    except Exception as exc:
        record["verdict"] = "error"
        record["message"] = record["reason"] = f"{stage}: {type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=-8)
        return record
    finally:
        record["duration_s"] = time.perf_counter() - t0


def _shrink_into(record: dict, claim: Claim, cell: dict, ctx: Context, strategy: Any, draw_seed: int,
                 count: int, budget: int, cache: dict, first_failing: Any) -> None:
    spent = {"n": 0}

    def fails(recipe: Any) -> bool | None:
        key = recipe_json(recipe)
        if key not in cache:
            if spent["n"] >= budget:
                return None
            spent["n"] += 1
            try:
                outcome = claim.evaluate(cell, recipe, ctx)
                cache[key] = (isinstance(outcome, Outcome) and outcome.ok is False, outcome)
            except Exception:  # an error is not the failure being shrunk
                cache[key] = (False, None)
        return cache[key][0]

    failing, _ = shrink(strategy, draw_seed, count, budget, fails)
    record["shrink_evaluations"] = spent["n"]
    best = min([first_failing, *failing], key=simplicity_key)
    if simplicity_key(best) < simplicity_key(first_failing):
        record["failing_recipe"] = json_safe(recipe_to_dict(best))
        record["failing_outcome"] = _outcome_summary(cache[recipe_json(best)][1])
        record["shrunk"] = True
