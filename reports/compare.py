"""Diff of two result sets (e.g. CPU vs GPU, or two commits), cell by cell.

``compare_results(a, b)`` (each a results folder or a :class:`claims.merge.ResultView`) matches records
by ``(claim, cell_key)`` and returns a list of :class:`Change`, ordered: verdict flips first (by claim in
report order: run A's claim list, else run B's, else the catalogue's; then cell key), then cells
present in only one of the runs, then margin changes, largest first. The size of a margin change is
``|log(margin_b / margin_a)|`` when both margins are positive and finite (margins are ratios
measured / bound, so a factor is the natural unit), else ``|margin_b - margin_a|``; a margin that
becomes or stops being NaN counts as an infinite change. Cells with identical verdict and margin are not
listed.

Threshold cells (``record["kind"] == "threshold"``) are also compared length by length: a length whose
status changed (found / above / below / inconclusive / non-monotone), that only one run searched, or
whose m* was found in both runs with disjoint 95% intervals is a change of m*(L); its size is
``|log(m*_b / m*_a)|`` (infinite for a status change or a one-sided length). A cell with such changes
and the same verdict is listed as kind "threshold", after the one-sided cells and before the margin
changes, largest first; a verdict flip carries its m*(L) changes in its description too.
"""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass
from typing import Any

from claims.merge import ResultView, merged_view

from .analysis import sort_key, claim_order, is_threshold, normalize_record, threshold_entries

__all__ = ["Change", "compare_results", "compare_record_sets", "compare_views", "as_view"]


@dataclass(frozen=True)
class Change:
    kind: str  # "verdict" | "only_a" | "only_b" | "threshold" | "margin"
    claim: str
    cell_key: str
    params: dict
    control: bool
    verdict_a: str | None
    verdict_b: str | None
    margin_a: float
    margin_b: float
    size: float  # ordering key within the kind (see module docstring)
    expect: str | None = None  # what the suite expects of the cell (run B's record, else A's)
    detail: str = ""  # a threshold cell's m*(L) changes, "L = 8: 380 [320, 452] → 900 [760, 1070]; ..."

    @property
    def flipped(self) -> bool:
        return self.kind == "verdict"

    def describe(self) -> str:
        if self.kind == "verdict":
            return f"{self.verdict_a} → {self.verdict_b}" + (f"; m*(L): {self.detail}" if self.detail else "")
        if self.kind == "threshold":
            return f"m*(L): {self.detail}"
        if self.kind == "only_a":
            return f"only in A ({self.verdict_a})"
        if self.kind == "only_b":
            return f"only in B ({self.verdict_b})"
        return f"margin {_f(self.margin_a)} → {_f(self.margin_b)}"


def _f(x: float) -> str:
    return "NaN" if not math.isfinite(x) else f"{x:.3g}"


def _margin_change(a: float, b: float) -> float:
    fa, fb = math.isfinite(a), math.isfinite(b)
    if not fa and not fb:
        return 0.0
    if fa != fb:
        return math.inf
    if a > 0 and b > 0:
        return abs(math.log(b / a))
    return abs(b - a)


def threshold_changes(ra: dict, rb: dict) -> tuple[float, str]:
    """(size, description) of the m*(L) changes between two records of one threshold cell (see the
    module docstring); (0, "") when there are none."""
    ea = {e.L: e for e in threshold_entries([ra])} if is_threshold(ra) else {}
    eb = {e.L: e for e in threshold_entries([rb])} if is_threshold(rb) else {}
    size, parts = 0.0, []
    for L in sorted(set(ea) | set(eb), key=sort_key):
        a, b = ea.get(L), eb.get(L)
        if a is None or b is None:
            size = math.inf
            parts.append(f"L = {L}: only in {'A' if b is None else 'B'} ({(a or b).label})")
            continue
        if a.status != b.status:
            size = math.inf
        elif a.status == "found" and None not in (a.lo, a.hi, b.lo, b.hi, a.m_star, b.m_star) \
                and (b.lo > a.hi or a.lo > b.hi) and a.m_star > 0 and b.m_star > 0:
            size = max(size, abs(math.log(b.m_star / a.m_star)))
        else:
            continue
        parts.append(f"L = {L}: {a.label} → {b.label}")
    return size, "; ".join(parts)


def compare_record_sets(recs_a: list[dict], recs_b: list[dict], run: dict | None = None) -> list[Change]:
    """Changes between two lists of records (stored or normalized); ``run`` orders the claims."""
    a = {(r["claim"], r["cell_key"]): r for r in recs_a}
    b = {(r["claim"], r["cell_key"]): r for r in recs_b}
    rank = {c: i for i, c in enumerate(claim_order({k[0] for k in set(a) | set(b)}, run))}
    flips, only, moved, margins = [], [], [], []
    for key in sorted(set(a) | set(b), key=lambda k: (rank[k[0]], k[1])):
        ra, rb = a.get(key), b.get(key)
        ref = rb or ra
        ma = _margin(ra)
        mb = _margin(rb)
        common = dict(claim=key[0], cell_key=key[1], params=ref.get("params") or {},
                      control=bool(ref.get("control")), expect=ref.get("expect"),
                      verdict_a=ra["verdict"] if ra else None, verdict_b=rb["verdict"] if rb else None,
                      margin_a=ma, margin_b=mb)
        if ra is None or rb is None:
            only.append(Change(kind="only_b" if ra is None else "only_a", size=0.0, **common))
            continue
        t_size, detail = threshold_changes(ra, rb)
        if ra["verdict"] != rb["verdict"]:
            flips.append(Change(kind="verdict", size=_margin_change(ma, mb), detail=detail, **common))
        elif detail:
            moved.append(Change(kind="threshold", size=t_size, detail=detail, **common))
        else:
            size = _margin_change(ma, mb)
            if size > 0:
                margins.append(Change(kind="margin", size=size, **common))
    margins.sort(key=lambda c: -c.size)  # stable: ties keep catalogue order
    moved.sort(key=lambda c: -c.size)
    return flips + only + moved + margins


def _margin(r: dict | None) -> float:
    if r is None:
        return math.nan
    try:
        return float(r.get("margin"))
    except (TypeError, ValueError):
        return math.nan


def as_view(source: str | pathlib.Path | ResultView, registry: Any = None) -> ResultView:
    """A results folder read by the one loader (:func:`claims.merge.merged_view`), or the view itself."""
    if isinstance(source, ResultView):
        return source
    return merged_view([source], registry=registry)


def compare_views(a: ResultView, b: ResultView) -> list[Change]:
    """Changes from view A to view B (invalid files of either are not compared: they are not records)."""
    return compare_record_sets([normalize_record(r) for r in a.records], [normalize_record(r) for r in b.records],
                               a.run or b.run)


def compare_results(a: str | pathlib.Path | ResultView, b: str | pathlib.Path | ResultView) -> list[Change]:
    """Changes from run A to run B: verdict flips first, then one-sided cells, then largest margin changes."""
    return compare_views(as_view(a), as_view(b))
