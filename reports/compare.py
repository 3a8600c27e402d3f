"""Diff of two result sets (e.g. CPU vs GPU, or two commits), cell by cell.

``compare_results(a_dir, b_dir)`` matches records by ``(claim, cell_key)`` and returns a list of
:class:`Change`, ordered: verdict flips first (by claim in catalogue order, then cell key), then cells
present in only one of the runs, then margin changes, largest first. The size of a margin change is
``|log(margin_b / margin_a)|`` when both margins are positive and finite (margins are ratios
measured / bound, so a factor is the natural unit), else ``|margin_b - margin_a|``; a margin that
becomes or stops being NaN counts as an infinite change. Cells with identical verdict and margin are not
listed.
"""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass

from .analysis import CLAIM_ORDER, load_results

__all__ = ["Change", "compare_results", "compare_record_sets"]


@dataclass(frozen=True)
class Change:
    kind: str  # "verdict" | "only_a" | "only_b" | "margin"
    claim: str
    cell_key: str
    params: dict
    control: bool
    verdict_a: str | None
    verdict_b: str | None
    margin_a: float
    margin_b: float
    size: float  # ordering key within the kind (see module docstring)

    @property
    def flipped(self) -> bool:
        return self.kind == "verdict"

    def describe(self) -> str:
        if self.kind == "verdict":
            return f"{self.verdict_a} → {self.verdict_b}"
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


def _claim_rank(c: str) -> tuple:
    return (CLAIM_ORDER.index(c), c) if c in CLAIM_ORDER else (len(CLAIM_ORDER), c)


def compare_record_sets(recs_a: list[dict], recs_b: list[dict]) -> list[Change]:
    a = {(r["claim"], r["cell_key"]): r for r in recs_a}
    b = {(r["claim"], r["cell_key"]): r for r in recs_b}
    flips, only, margins = [], [], []
    for key in sorted(set(a) | set(b), key=lambda k: (_claim_rank(k[0]), k[1])):
        ra, rb = a.get(key), b.get(key)
        ref = ra or rb
        ma = ra["margin"] if ra else math.nan
        mb = rb["margin"] if rb else math.nan
        common = dict(claim=key[0], cell_key=key[1], params=ref["params"], control=ref["control"],
                      verdict_a=ra["verdict"] if ra else None, verdict_b=rb["verdict"] if rb else None,
                      margin_a=ma, margin_b=mb)
        if ra is None or rb is None:
            only.append(Change(kind="only_b" if ra is None else "only_a", size=0.0, **common))
        elif ra["verdict"] != rb["verdict"]:
            flips.append(Change(kind="verdict", size=_margin_change(ma, mb), **common))
        else:
            size = _margin_change(ma, mb)
            if size > 0:
                margins.append(Change(kind="margin", size=size, **common))
    margins.sort(key=lambda c: -c.size)  # stable: ties keep catalogue order
    return flips + only + margins


def compare_results(a_dir: str | pathlib.Path, b_dir: str | pathlib.Path) -> list[Change]:
    """Changes from run A to run B: verdict flips first, then one-sided cells, then largest margin changes."""
    return compare_record_sets(load_results(a_dir).records, load_results(b_dir).records)
