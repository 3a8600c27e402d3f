"""What a cell costs, in which order cells run, and which cells a shard takes.

Cost model. Each claim estimates the seconds of one example of a cell on one CPU core
(``claim.cost(cell, profile)``, from its flop count). A cell runs a variable number of examples
(the sequential test stops early), so its cost is that estimate times the examples a decision needs
at least: ``plan.min_examples_to_fail()`` for a control (they must fail), ``plan.min_examples_to_hold()``
otherwise. A threshold or search cell is one search, and the claim's estimate is already the whole of
it. Earlier records calibrate it: per claim, the factor sum(duration_s) / sum(estimate) over the records
at hand (:func:`calibrate`), applied to that claim's cells; without records the factor is 1.

Order. Cells are submitted most expensive first (longest-processing-time first), so that the tail of a
sweep is short; ties break by claim order and cell key, so the order is deterministic.

Shards. ``--shard I/N`` takes a deterministic 1/N of the cells, balanced by cost: cells in the order
above are assigned greedily to the shard with the least cost so far (LPT; its makespan is within 4/3 of
the optimum), ties to the lowest shard index. Every shard computes the same assignment from the same
grid.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence
from claims.threshold_cell import is_threshold_cell

__all__ = ["parse_shard", "cell_cost", "calibrate", "order_by_cost", "assign_shards"]


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` with 1 <= I <= N -> (I, N); anything else is a ``ValueError`` naming --shard."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"--shard must be I/N with integers 1 <= I <= N, got {text!r}")
    i, n = int(match.group(1)), int(match.group(2))
    if not (n >= 1 and 1 <= i <= n):
        raise ValueError(f"--shard must be I/N with integers 1 <= I <= N, got {text!r}")
    return i, n


def cell_cost(claim: Any, cell: dict, profile: Any, factor: float = 1.0) -> float:
    """Estimated seconds of one cell (see the module docstring); never negative or NaN."""
    per_example = float(claim.cost(cell, profile))
    if not math.isfinite(per_example) or per_example < 0:
        per_example = 1.0
    if is_threshold_cell(cell) or cell.get("kind") == "search":  # the claim's estimate covers the whole search
        return per_example * factor
    plan = claim.plan(profile)
    examples = plan.min_examples_to_fail() if cell.get("control") else plan.min_examples_to_hold()
    return per_example * min(examples, plan.budget) * factor


def calibrate(records: Iterable[dict], estimates: dict[tuple[str, str], float]) -> dict[str, float]:
    """Per claim, measured / estimated seconds over ``records`` whose (claim, cell_key) has an estimate
    in ``estimates`` (cells that were skipped or errored are left out)."""
    measured: dict[str, float] = {}
    predicted: dict[str, float] = {}
    for r in records:
        key = (r.get("claim"), r.get("cell_key"))
        if key not in estimates or r.get("verdict") in ("skipped", "error"):
            continue
        seconds = r.get("duration_s")
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            continue
        measured[key[0]] = measured.get(key[0], 0.0) + float(seconds)
        predicted[key[0]] = predicted.get(key[0], 0.0) + estimates[key]
    return {c: measured[c] / predicted[c] for c in measured if predicted[c] > 0 and measured[c] > 0}


def order_by_cost(items: Sequence[Any], cost_of, rank_of) -> list[Any]:
    """``items`` most expensive first; ties by ``rank_of(item)`` (a sortable key)."""
    return sorted(items, key=lambda it: (-cost_of(it), rank_of(it)))


def assign_shards(items: Sequence[Any], n: int, cost_of, rank_of) -> list[list[Any]]:
    """Split ``items`` into ``n`` shards balanced by cost (LPT, deterministic; see the module docstring)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of shards must be an integer >= 1, got {n!r}")
    shards: list[list[Any]] = [[] for _ in range(n)]
    loads = [0.0] * n
    for item in order_by_cost(items, cost_of, rank_of):
        j = min(range(n), key=lambda s: (loads[s], s))
        shards[j].append(item)
        loads[j] += cost_of(item)
    return shards
