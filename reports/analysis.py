"""Analysis of stored claim records for the report: per-cell readings, threshold widths (from threshold
cells, and read off grids of fixed (m, L)), growth laws and exponent fits, control status, disagreements
and the data-generated sentences.

The facts themselves live elsewhere, once: the record format, the verdicts, the claim order, verdict
counting and disagreements in :mod:`claims.schema`; reading (and merging) results folders in
:mod:`claims.schema` / :mod:`claims.merge`; the straight-line fits in :mod:`claims.fits`. This module is
torch-free (so is everything it imports), so the report can be rebuilt from a results folder alone.

Definitions used by the report (and documented on the page):

* **Expectation of a cell** (the record's ``expect``): ``"holds"`` the suite asserts the claim there;
  ``"fails"`` a negative control, which must end ``fails``; ``None`` a finding (reported, not asserted).
  A finding with ``not_asserted`` set is a cell the SPEC expects to hold but the suite does not assert,
  for the stated reason. A **disagreement** is an asserted cell whose verdict is not the expected one
  (skipped cells excepted): :func:`claims.schema.disagreements`.
* **Control status** of a claim: "yes" when at least one control cell was evaluated and every evaluated
  control cell ends ``fails``; "no" when any evaluated control cell ends otherwise (``holds``,
  ``inconclusive`` or ``error``: an inconclusive control is a control that did not work); "n/a" when no
  control cell was evaluated (none exists, or all were skipped).
* **Threshold cells** (``record["kind"] == "threshold"``, rows of :func:`claims.export.threshold_rows`):
  one threshold search per length L gives ``m*(L)``, the smallest width from which the per-example
  failure rate stays <= delta, as a posterior median with a 95% interval ``[lo, hi]`` (status
  ``found``), or censored: ``above`` (m* > m_max: the sequential test at m_max ended fails), ``below``
  (m* <= m_min: the test at m_min ended holds); ``inconclusive`` (budget spent; the interval so far);
  ``non-monotone`` (the failure rate does not fall with m: nothing is estimated). A length is
  *asserted* when the cell must hold and names it in ``asserted_lengths`` (every length when it names
  none); the growth law is asserted when every length is. The **growth law** is the record's stored fit
  of m*(L) (power law against exponential, censored lengths as bounds; :func:`claims.fits.growth_law`),
  read as stored, never refitted here. The report reads threshold cells only from these fields; the
  grid reading below is for cells of fixed (m, L).
* **Threshold width read off a grid** ``m*(L)``: within one regime (or pooled over regimes), the
  smallest width ``m`` on the grid such that the claim *holds* at ``m`` and at every larger evaluated
  width at the same ``L``. Non-control cells only. Cells that were ``skipped`` (memory guard, profile) are not evaluated and are
  ignored; ``fails``, ``inconclusive`` and ``error`` all break the run of holding widths. Where several
  cells share one ``(regime, L, m)`` (other parameters such as ``n`` or ``omega``), the point holds only
  if all of them hold. *Pooled* over regimes, a point ``(L, m)`` holds only if it holds in every regime
  that evaluated it. ``m*(L)`` is ``None`` ("not reached") when the largest evaluated width does not hold.
  When the claim holds already at the smallest evaluated width, ``m*(L)`` is *left-censored*: the true
  threshold is at most that width, written "≤ m".
* **Exponent of a grid's m*(L)**: :func:`claims.fits.loglog_slope` of ``log m*(L) = a log L + b`` over
  the lengths with a finite ``m*(L)`` that is not left-censored (at least two distinct lengths),
  reported as ``a = 1.9 ± 0.3`` with the standard error of the slope (none with exactly two points: a
  line through two points has no error estimate). Lengths where ``m*`` was not reached (right-censored) or is at the
  grid's smallest width (left-censored) are left out of the fit: a grid floor counted as a threshold
  flattens the slope.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from claims.fits import LineFit, fmt_pm, loglog_slope
from claims.export import growth_rows, threshold_rows
from claims.export import is_threshold as _is_threshold
from claims.threshold_cell import THRESHOLD_KEYS
from claims.schema import count_verdicts, disagreements, order_claims

__all__ = [
    "num",
    "normalize_record",
    "records_by_claim",
    "claim_order",
    "measured_value",
    "cell_status",
    "control_status",
    "test_plans",
    "Threshold",
    "threshold_widths",
    "fit_threshold_exponent",
    "describe_fit",
    "claim_sentence",
    "grid_axes",
    "phase_panels",
    "extra_label",
    "ClaimSummary",
    "summarize_claim",
]

# Axes that are not shown as grid axes of the phase diagram.
_NON_GRID = {"regime", "control"}


# ----------------------------------------------------------------------------------------------------
# Records as the report reads them


def num(x: Any) -> float:
    """A float from a record value; None / garbage -> NaN."""
    if isinstance(x, bool):
        return float(x)
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def normalize_record(rec: dict) -> dict:
    """The report's view of one valid record (:func:`claims.schema.validate_record`): a shallow copy with
    ``margin`` as a float (NaN for null), dict/list fields defaulted, the stored record under ``_raw`` and
    the cell's reading under ``_status`` (:func:`cell_status`)."""
    r = dict(rec)
    r["_raw"] = rec
    r["claim"] = str(r.get("claim"))
    r["params"] = r["params"] if isinstance(r.get("params"), dict) else {}
    r["control"] = bool(r.get("control", False))
    r["margin"] = num(r.get("margin"))
    for key in ("examples", "failures", "inconclusive"):
        val = num(r.get(key))
        r[key] = int(val) if math.isfinite(val) else 0
    ci = r.get("failure_rate_ci")
    r["failure_rate_ci"] = [num(c) for c in ci][:2] if isinstance(ci, (list, tuple)) and len(ci) >= 2 else None
    for key in ("measured", "declared_constants", "measured_constants", "seeds", "versions", "test", "worker"):
        if not isinstance(r.get(key), dict):
            r[key] = {}
    r["series"] = [row for row in r.get("series") or [] if isinstance(row, dict)] \
        if isinstance(r.get("series"), list) else []
    for key, default in (("message", ""), ("reason", ""), ("failing_recipe", None), ("shrunk", False),
                         ("duration_s", None), ("expect", None), ("not_asserted", None), ("dtype", None),
                         ("title", None), ("cost", None), ("seed", None)):
        r.setdefault(key, default)
    r["_status"] = cell_status(r)
    return r


def claim_order(ids: Iterable[str], run: dict | None = None) -> list[str]:
    """Claim ids in report order: the run's ``claims`` list, else the registry's (registration) order
    when the registry imports (:func:`claims.merge.known_claim_ids`); ids in neither follow, sorted."""
    order = (run or {}).get("claims")
    if not order:
        from claims.merge import known_claim_ids

        order = known_claim_ids() or ()
    return order_claims(ids, order)


def records_by_claim(records: Iterable[dict], run: dict | None = None) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        out[r["claim"]].append(r)
    return {c: out[c] for c in claim_order(out, run)}


def measured_value(rec: dict, key: str, stat: str = "mean") -> float:
    """A measured scalar: aggregated dicts ({"mean", "max", "min"}) or plain numbers."""
    v = rec.get("measured", {}).get(key)
    if isinstance(v, dict):
        if stat in v:
            return num(v[stat])
        for alt in ("mean", "max", "min", "value"):
            if alt in v:
                return num(v[alt])
        return math.nan
    return num(v)


# ----------------------------------------------------------------------------------------------------
# What a cell's verdict means given what the suite expects of it


@dataclass(frozen=True)
class CellStatus:
    """kind: "agrees" (an asserted cell or a control with the expected verdict), "disagrees" (not the
    expected verdict), "finding" (not asserted), "not_asserted" (the SPEC expects it to hold, the suite
    does not assert it), "skipped" (an asserted cell or control ruled out by the memory guard or profile).
    expectation: the words for the expectation; text: the words for the outcome; bad: shown in red."""

    kind: str
    expectation: str
    text: str
    bad: bool


def cell_status(r: dict) -> CellStatus:
    expect, verdict = r.get("expect"), r.get("verdict")
    if expect == "fails":
        expectation = "negative control: must fail"
        if verdict == "fails":
            return CellStatus("agrees", expectation, "fails as required", False)
        if verdict == "skipped":
            return CellStatus("skipped", expectation, "control not evaluated (skipped)", False)
        if verdict == "holds":
            return CellStatus("disagrees", expectation, "control HOLDS: the check cannot tell", True)
        return CellStatus("disagrees", expectation, f"control did not work ({verdict})", True)
    if expect == "holds":
        expectation = "asserted: must hold"
        if verdict == "holds":
            return CellStatus("agrees", expectation, "holds as asserted", False)
        if verdict == "skipped":
            return CellStatus("skipped", expectation, "asserted, not evaluated (skipped)", False)
        return CellStatus("disagrees", expectation, f"disagreement: must hold, {verdict}", True)
    if r.get("not_asserted"):
        return CellStatus("not_asserted", f"not asserted, because {r['not_asserted']}", verdict or "", False)
    return CellStatus("finding", "finding (not asserted)", verdict or "", False)


def control_status(records: Iterable[dict]) -> str:
    """'yes' / 'no' / 'n/a' as defined in the module docstring."""
    ctrl = [r for r in records if r["control"] and r["verdict"] != "skipped"]
    if not ctrl:
        return "n/a"
    return "yes" if all(r["verdict"] == "fails" for r in ctrl) else "no"


def test_plans(records: Iterable[dict]) -> list[dict]:
    """The distinct sequential-test parameters of the records (``test`` without the per-cell state)."""
    seen: list[dict] = []
    for r in records:
        t = {k: v for k, v in (r.get("test") or {}).items() if k not in ("llr", "lower", "upper")}
        if t and t not in seen:
            seen.append(t)
    return seen


# ----------------------------------------------------------------------------------------------------
# Threshold widths and exponent fits


@dataclass
class Threshold:
    L: Any
    m_star: int | None  # None: not reached at the largest evaluated width
    widths: list  # evaluated widths, ascending
    holds: list  # bool per width (pooled over other params / regimes as documented)
    verdicts: list  # the verdict summary per width ("holds" or the worst non-holding verdict)

    @property
    def max_width(self):
        return self.widths[-1] if self.widths else None

    @property
    def censored_below(self) -> bool:
        """True when the claim holds already at the smallest evaluated width: the true threshold is at
        most that width (left-censored), so m* is an upper bound, not a measurement."""
        return self.m_star is not None and bool(self.widths) and self.m_star == self.widths[0]

    @property
    def label(self) -> str:
        """m* as the report writes it: "1024", "≤ 256" (left-censored) or "n.r." (not reached)."""
        if self.m_star is None:
            return "n.r."
        return f"≤ {self.m_star}" if self.censored_below else str(self.m_star)

    def failing_below(self) -> list:
        """Widths below m* (or all widths when m* is not reached) with a 'fails' verdict."""
        lim = self.m_star if self.m_star is not None else math.inf
        return [w for w, v in zip(self.widths, self.verdicts) if w < lim and v == "fails"]


_SEVERITY = {"fails": 3, "error": 2, "inconclusive": 1, "holds": 0}


def _point_verdict(verdicts: list[str]) -> str:
    vs = [v for v in verdicts if v != "skipped"]
    if not vs:
        return "skipped"
    return max(vs, key=lambda v: _SEVERITY.get(v, 2))


def has_width_axis(records: Iterable[dict]) -> bool:
    return any("m" in r["params"] and "L" in r["params"] and not r["control"] for r in records)


def sort_key(x):
    return (0, float(x)) if isinstance(x, (int, float)) and not isinstance(x, bool) else (1, str(x))


def threshold_widths(records: Iterable[dict], regime: str | None = None) -> dict[Any, Threshold]:
    """m*(L) for one regime (``regime=None``: pooled over all regimes). Non-control cells with m and L."""
    points: dict[Any, dict[Any, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        p = r["params"]
        if r["control"] or "m" not in p or "L" not in p:
            continue
        if regime is not None and p.get("regime") != regime:
            continue
        points[p["L"]][p["m"]].append(r["verdict"])
    out: dict[Any, Threshold] = {}
    for L in sorted(points, key=sort_key):
        widths, holds, verdicts = [], [], []
        for m in sorted(points[L], key=sort_key):
            v = _point_verdict(points[L][m])
            if v == "skipped":
                continue
            widths.append(m)
            holds.append(v == "holds")
            verdicts.append(v)
        m_star = None
        for i in range(len(widths) - 1, -1, -1):
            if not holds[i]:
                break
            m_star = widths[i]
        out[L] = Threshold(L, m_star, widths, holds, verdicts)
    return out


def fit_threshold_exponent(th: dict[Any, Threshold]) -> LineFit:
    """m*(L) ~ L^a by :func:`claims.fits.loglog_slope` over the lengths with a finite m* that is not
    left-censored (see the module docstring)."""
    Ls = [L for L, t in th.items()
          if t.m_star is not None and not t.censored_below and isinstance(L, (int, float))]
    fit = loglog_slope(Ls, [th[L].m_star for L in Ls])
    censored = sum(1 for t in th.values() if t.censored_below)
    if not fit.ok and censored:
        fit = dataclasses.replace(fit, note=(
            f"{fit.note}; {censored} length{'s' if censored != 1 else ''} hold at the smallest width "
            "evaluated (m* at most that width, left out)"))
    return fit


def describe_fit(fit: LineFit | None) -> str:
    """"a = 1.9 ± 0.3 (4 points, R² = 0.98)"; with two points "a = 2.00 (2 points: an exact line, no
    standard error)"; without a fit the reason."""
    if fit is None:
        return "—"
    if not fit.ok:
        return fit.note or "not enough points"
    if fit.n == 2:
        return f"{fmt_pm(fit.slope, math.nan)} (2 points: an exact line, no standard error)"
    if fit.rss == 0.0 or fit.stderr == 0.0:  # every point on the line (the standard error of flat data can come back NaN)
        return f"{fmt_pm(fit.slope, math.nan)} ± 0 ({fit.n} points, all on the line)"
    if not math.isfinite(fit.stderr):
        return f"{fmt_pm(fit.slope, math.nan)} ({fit.n} points, no standard error)"
    r2 = f", R² = {fit.r2:.3f}" if math.isfinite(fit.r2) else ""
    return f"{fmt_pm(fit.slope, fit.stderr)} ({fit.n} points{r2})"


# ----------------------------------------------------------------------------------------------------
# Threshold cells: m*(L) found by a threshold search, and the growth law of m*(L)


@dataclass
class ThresholdEntry:
    """One length's threshold search of a threshold cell (a row of :func:`claims.export.threshold_rows`
    with the cell's record): status found (m* in [lo, hi] inside [m_min, m_max]), above (m* > m_max,
    certified by the sequential test at m_max ending fails), below (m* <= m_min, the test at m_min ended
    holds), inconclusive, or non-monotone (the failure rate does not fall with m; nothing is fitted)."""

    claim: str
    regime: str
    L: Any
    status: str
    m_star: float | None
    lo: float | None
    hi: float | None
    m_min: float | None
    m_max: float | None
    certificate: dict
    examples: Any
    cost_s: float | None
    monotone_p: float | None
    probes: list[dict]
    record: dict
    asserted: bool = False  # the cell must hold and asserts this length

    @property
    def control(self) -> bool:
        return bool(self.record.get("control"))

    @property
    def ratio(self) -> float | None:
        """hi / lo: the resolution of m* (a factor), for a two-sided interval."""
        return self.hi / self.lo if self.lo and self.hi else None

    @property
    def label(self) -> str:
        """"812 [690, 955]" (found), "> 2048" (above), "≤ 16" (below), "≈ 700 [400, 1300]"
        (inconclusive: the estimate and interval so far), "non-monotone"."""
        if self.status == "found" and self.m_star is not None:
            return f"{fmt_width(self.m_star)} {fmt_interval(self.lo, self.hi)}"
        if self.status == "above":
            return f"> {fmt_width(self.lo if self.lo is not None else self.m_max)}"
        if self.status == "below":
            return f"≤ {fmt_width(self.hi if self.hi is not None else self.m_min)}"
        if self.status == "non-monotone":
            return "non-monotone"
        head = f"≈ {fmt_width(self.m_star)}" if self.m_star is not None else "?"
        tail = f" {fmt_interval(self.lo, self.hi)}" if self.lo is not None or self.hi is not None else ""
        return f"{head}{tail}"

    @property
    def title(self) -> str:
        """Hover text: the status, the certificate, the examples and the monotonicity check."""
        c = self.certificate
        lines = [f"{self.claim} {self.regime} L = {_fmt(self.L)}: {self.status}, m* {self.label}"]
        if c:
            lines.append(f"certificate: sequential test at m = {_fmt(c.get('m'))} {c.get('verdict')} "
                         f"({c.get('failures')} of {c.get('examples')} examples failed)")
        ratio = self.ratio
        if ratio:
            lines.append(f"interval spans a factor {ratio:.3g}")
        lines.append(f"{self.examples} examples at {len(self.probes)} width{'s' if len(self.probes) != 1 else ''}"
                     + (f", {self.cost_s:.3g} s" if self.cost_s is not None else ""))
        if self.monotone_p is not None:
            lines.append(f"monotonicity check p = {self.monotone_p:.3g}")
        lines.append("asserted (must hold)" if self.asserted else
                     "negative control (must fail)" if self.control else "finding (not asserted)")
        return "\n".join(lines)


def fmt_width(x: Any) -> str:
    """A width as the report writes it: an integer from 10 on, three digits below."""
    v = num(x)
    if not math.isfinite(v):
        return "—" if x is None else str(x)
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.3g}"


def fmt_interval(lo: Any, hi: Any) -> str:
    """"[690, 955]"; an open end is "—"."""
    return f"[{fmt_width(lo) if lo is not None else '—'}, {fmt_width(hi) if hi is not None else '—'}]"


def is_threshold(rec: dict) -> bool:
    """A threshold cell's record (``kind`` "threshold" with a ``thresholds`` list)."""
    return _is_threshold(rec.get("_raw", rec))


def threshold_entries(records: Iterable[dict]) -> list[ThresholdEntry]:
    """Every length of every threshold cell among ``records`` (normalized records), in stored order."""
    recs = [r for r in records if is_threshold(r)]
    by_key = {(r["claim"], r["cell_key"]): r for r in recs}
    out = []
    for row in threshold_rows([r.get("_raw", r) for r in recs]):
        out.append(ThresholdEntry(
            claim=str(row["claim"]), regime=str(row["regime"] if row["regime"] is not None else "all"), L=row["L"],
            status=str(row["status"]), m_star=row["m_star"], lo=row["lo"], hi=row["hi"], m_min=row["m_min"],
            m_max=row["m_max"], certificate={k[len("certificate_"):]: row[k] for k in row
                                             if k.startswith("certificate_") and row[k] is not None},
            examples=row["examples"], cost_s=row["cost_s"], monotone_p=row["monotone_p"], probes=row["probes"],
            record=by_key[(row["claim"], row["cell_key"])], asserted=bool(row["asserted"])))
    return out


def cell_label(rec: dict) -> str:
    """A threshold cell's row label: its regime, then the parameters beyond the search's own
    (:data:`claims.threshold_cell.THRESHOLD_KEYS`), then "control" for a negative control."""
    p = rec["params"]
    rest = {k: v for k, v in p.items() if k not in (*THRESHOLD_KEYS, "regime")}
    label = str(p.get("regime", "all"))
    if rest:
        label += " · " + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(rest.items()))
    return label + (" · control" if rec["control"] else "")


@dataclass
class MatrixRow:
    """One threshold cell of the overview matrix: its entries by L."""

    claim: str
    label: str
    record: dict
    entries: dict  # L -> ThresholdEntry

    @property
    def asserted(self) -> bool:
        return self.record.get("expect") == "holds"

    @property
    def control(self) -> bool:
        return bool(self.record["control"])


def threshold_matrix(by_claim: dict[str, list[dict]]) -> tuple[list, list[MatrixRow]]:
    """(the lengths, ascending; one row per threshold cell, claims in report order, then regime, controls
    last) for the overview's m*(L) matrix."""
    rows: list[MatrixRow] = []
    Ls: set = set()
    for claim, recs in by_claim.items():
        cells = sorted((r for r in recs if is_threshold(r)), key=lambda r: (r["control"], cell_label(r)))
        for r in cells:
            entries = {e.L: e for e in threshold_entries([r])}
            Ls.update(entries)
            rows.append(MatrixRow(claim, cell_label(r), r, entries))
    return sorted(Ls, key=sort_key), rows


def _with_interval(value: float | None, ci, fmt: str) -> str:
    """"value [lo, hi]" in ``fmt`` ("—" without a value, "(no interval)" without ends, an open end ∞)."""
    if value is None:
        return "—"
    lo, hi = ci if ci is not None else (None, None)
    if lo is None and hi is None:
        return f"{value:{fmt}} (no interval)"
    return f"{value:{fmt}} [{'−∞' if lo is None else format(lo, fmt)}, {'∞' if hi is None else format(hi, fmt)}]"


@dataclass
class GrowthRow:
    """The stored growth fit of one threshold cell (a row of :func:`claims.export.growth_rows`)."""

    claim: str
    label: str
    record: dict
    law: str | None
    exponent: float | None
    exponent_ci: tuple[float | None, float | None]
    rate: float | None
    rate_ci: tuple[float | None, float | None]
    evidence_ratio: float | None
    bound: float | None
    points: Any
    censored: Any
    note: str
    asserted: bool = False  # the cell must hold and asserts every length, so the growth bound is asserted

    @property
    def below_bound(self) -> bool | None:
        """True when the exponent's whole 95% interval lies below the declared bound, False when it does
        not, None without an interval or a bound."""
        hi = self.exponent_ci[1]
        if self.bound is None or self.exponent is None:
            return None
        if hi is None:
            return False if self.exponent_ci[0] is not None else None
        return hi < self.bound

    @property
    def exponent_text(self) -> str:
        """"2.00 [1.70, 2.30]" (the 95% interval; an open end "∞")."""
        return _with_interval(self.exponent, self.exponent_ci, ".2f")

    @property
    def rate_text(self) -> str:
        return _with_interval(self.rate, self.rate_ci, ".3g")

    @property
    def evidence_text(self) -> str:
        """"5.1 (power)": the likelihood ratio power / exponential and the law the stored fit prefers
        ("neither" when it names none: a tie)."""
        er = self.evidence_ratio
        if er is None:
            return "—"
        favours = self.law or "neither"
        return f"{er:.3g} ({favours})"


def growth_table(by_claim: dict[str, list[dict]]) -> list[GrowthRow]:
    """One row per threshold cell, in the matrix's order."""
    out = []
    for _claim, recs in by_claim.items():
        cells = sorted((r for r in recs if is_threshold(r)), key=lambda r: (r["control"], cell_label(r)))
        for r, row in zip(cells, growth_rows([r.get("_raw", r) for r in cells])):
            out.append(GrowthRow(
                claim=r["claim"], label=cell_label(r), record=r, law=row["law"], exponent=row["exponent"],
                exponent_ci=(row["exponent_lo"], row["exponent_hi"]), rate=row["rate"],
                rate_ci=(row["rate_lo"], row["rate_hi"]), evidence_ratio=row["evidence_ratio"], bound=row["bound"],
                points=row["points"], censored=row["censored"], note=str(row["note"] or ""),
                asserted=bool(row["asserted"])))
    return out


def probe_class(p: dict, delta: float, delta_1: float) -> str:
    """How one probe reads (not a verdict): "holds" when its failure rate among conclusive examples is at
    most delta, "fails" when at least delta_1, "inconclusive" between them or without a conclusive
    example."""
    examples, inconclusive = num(p.get("examples")), num(p.get("inconclusive") or 0)
    conclusive = examples - inconclusive if math.isfinite(examples) and math.isfinite(inconclusive) else 0
    if conclusive <= 0:
        return "inconclusive"
    rate = num(p.get("failures")) / conclusive
    if rate <= delta:
        return "holds"
    return "fails" if rate >= delta_1 else "inconclusive"


@dataclass
class ProbePanel:
    """A threshold cell's phase diagram drawn from its probes: rows L, columns factor-2 width bins
    [2^k, 2^(k+1)); each grid cell lists the probes drawn in it (width, failures / examples), and the
    bins that meet the 95% interval of m* are outlined."""

    title: str
    record: dict
    bins: list  # (lo, hi) per column
    rows: list  # [{"L", "entry", "cells": [[probe view, ...] per bin], "marked": [bool per bin]}]


def probe_panels(records: Iterable[dict]) -> list[ProbePanel]:
    panels = []
    for r in sorted((r for r in records if is_threshold(r)), key=lambda r: (r["control"], cell_label(r))):
        entries = threshold_entries([r])
        test = r.get("test") or {}
        delta = num(test.get("delta", r.get("delta")))
        delta_1 = num(test.get("delta_1"))
        delta = delta if math.isfinite(delta) else 0.1
        delta_1 = delta_1 if math.isfinite(delta_1) else 3 * delta
        widths = [num(p.get("m")) for e in entries for p in e.probes]
        widths += [w for e in entries for w in (e.lo, e.hi) if w is not None]
        widths = [w for w in widths if math.isfinite(w) and w > 0]
        if not widths:
            panels.append(ProbePanel(cell_label(r), r, [], [{"L": e.L, "entry": e, "cells": [], "marked": []}
                                                            for e in entries]))
            continue
        k0, k1 = math.floor(math.log2(min(widths))), math.floor(math.log2(max(widths)))
        bins = [(2.0 ** k, 2.0 ** (k + 1)) for k in range(k0, k1 + 1)]
        rows = []
        for e in entries:
            cells: list[list[dict]] = [[] for _ in bins]
            for p in sorted(e.probes, key=lambda p: num(p.get("m"))):
                m = num(p.get("m"))
                if not (math.isfinite(m) and m > 0):
                    continue
                i = min(max(math.floor(math.log2(m)) - k0, 0), len(bins) - 1)
                cells[i].append({"m": p.get("m"), "examples": p.get("examples"), "failures": p.get("failures"),
                                 "inconclusive": p.get("inconclusive") or 0, "cls": probe_class(p, delta, delta_1)})
            lo = e.lo if e.lo is not None else (e.m_min if e.status == "below" else None)
            hi = e.hi if e.hi is not None else (e.m_max if e.status == "above" else None)
            marked = [lo is not None and hi is not None and b_lo <= hi and lo < b_hi for b_lo, b_hi in bins]
            rows.append({"L": e.L, "entry": e, "cells": cells, "marked": marked})
        panels.append(ProbePanel(cell_label(r), r, bins, rows))
    return panels


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def matrix_markdown(by_claim: dict[str, list[dict]]) -> str:
    """The overview's m*(L) matrix as a Markdown table: one row per threshold cell (claim, cell, verdict),
    one column per L; an entry is its label (:attr:`ThresholdEntry.label`) with its status in words where
    the label does not say it, and "(A)" on an asserted length. Empty when there are no threshold cells."""
    Ls, rows = threshold_matrix(by_claim)
    if not rows:
        return ""
    lines = ["| claim | cell | verdict | " + " | ".join(f"L = {_fmt(L)}" for L in Ls) + " |",
             "|---|---|---|" + "---|" * len(Ls)]
    for row in rows:
        cells = []
        for L in Ls:
            e = row.entries.get(L)
            if e is None:
                cells.append("—")
                continue
            text = e.label + (" (inconclusive)" if e.status == "inconclusive" else "")
            cells.append(text + (" (A)" if e.asserted else ""))
        lines.append(f"| {_md(row.claim)} | {_md(row.label)} | {_md(row.record['verdict'])} | "
                     + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def growth_markdown(by_claim: dict[str, list[dict]]) -> str:
    """The growth-law table as Markdown (the columns of the report's table); empty without threshold cells."""
    rows = growth_table(by_claim)
    if not rows:
        return ""
    lines = ["| claim | cell | law | exponent a [95%] | rate r [95%] | evidence ratio | bound | a below bound "
             "| points / censored | note |", "|---|---|---|---|---|---|---|---|---|---|"]
    for g in rows:
        below = "—" if g.below_bound is None else ("yes" if g.below_bound else "no")
        lines.append(" | ".join(["", _md(g.claim), _md(g.label + (" (A)" if g.asserted else "")), _md(g.law or "—"),
                                 _md(g.exponent_text), _md(g.rate_text), _md(g.evidence_text),
                                 "—" if g.bound is None else f"{g.bound:g}", below,
                                 f"{_fmt(g.points)} / {_fmt(g.censored)}", _md(g.note), ""]).strip())
    return "\n".join(lines) + "\n"


def resolution_markdown(by_claim: dict[str, list[dict]]) -> str:
    """What each threshold cell bought: per cell, the lengths whose m* was located (found, or censored
    and certified), the median and the largest interval factor hi / lo over the found lengths, the
    examples drawn and the seconds spent (summed over lengths). Empty without threshold cells."""
    lines = []
    for claim, records in by_claim.items():
        for r in sorted((r for r in records if is_threshold(r) and not r["control"]), key=cell_label):
            rows = threshold_rows([r])
            located = [t for t in rows if t["status"] in ("found", "above", "below")]
            factors = sorted(t["ratio"] for t in rows if t["status"] == "found" and t["ratio"])
            median = factors[len(factors) // 2] if len(factors) % 2 else (
                0.5 * (factors[len(factors) // 2 - 1] + factors[len(factors) // 2]) if factors else None)
            seconds = sum(t["cost_s"] or 0.0 for t in rows)
            lines.append(f"| {_md(claim)} | {_md(cell_label(r))} | {len(located)} / {len(rows)} | "
                         + (f"{median:.2f} | {factors[-1]:.2f}" if factors else "— | —")
                         + f" | {sum(t['examples'] or 0 for t in rows)} | {seconds:.0f} |")
    if not lines:
        return ""
    return "\n".join(["| claim | cell | located / lengths | median hi/lo | largest hi/lo | examples | seconds |",
                      "|---|---|---|---|---|---|---|", *lines]) + "\n"


def threshold_markdown(results: str) -> str:
    """The three tables for a results folder (``python -m reports.analysis OUT``), for notes and issues:
    the m*(L) matrix, the growth laws and each cell's resolution and cost."""
    from claims.schema import load_results

    loaded = load_results(results)
    by_claim = records_by_claim([normalize_record(r) for r in loaded.records], loaded.run)
    matrix = matrix_markdown(by_claim)
    if not matrix:
        return f"no threshold cells in {results}\n"
    return matrix + "\n" + growth_markdown(by_claim) + "\n" + resolution_markdown(by_claim)


def threshold_phrase(records: list[dict]) -> list[str]:
    """Sentence parts for a claim's threshold cells (non-control): per cell, m*(L) by status and the
    growth law."""
    parts = []
    growth = {(g.record["cell_key"]): g for g in growth_table({"_": records})}
    for r in sorted((r for r in records if is_threshold(r) and not r["control"]), key=cell_label):
        entries = threshold_entries([r])
        found = [f"{e.label} at L = {_fmt(e.L)}" for e in entries if e.status in ("found", "below", "above")]
        txt = f"{cell_label(r)}: m* " + ("; ".join(found) if found else "not located at any length")
        other = [f"{e.status} at L = {_fmt(e.L)}" for e in entries if e.status in ("inconclusive", "non-monotone")]
        if other:
            txt += " (" + ", ".join(other) + ")"
        g = growth.get(r["cell_key"])
        if g is not None and g.exponent is not None:
            txt += (f"; m* ~ L^a with a = {g.exponent_text}"
                    + (f", {g.law} law preferred (evidence ratio {g.evidence_ratio:.3g})"
                       if g.law and g.evidence_ratio is not None else "")
                    + (f", {'below' if g.below_bound else 'not below'} the declared bound {g.bound:g}"
                       if g.below_bound is not None else ""))
        parts.append(txt)
    return parts


# ----------------------------------------------------------------------------------------------------
# Regimes and sentences


def regimes_of(records: Iterable[dict]) -> list[str]:
    return sorted({str(r["params"].get("regime", "all")) for r in records if not r["control"]})


def regime_status(records: list[dict], regime: str) -> str:
    """How a claim fares in one regime: 'every cell', 'above m*(L) at every L', 'partly', 'never'."""
    rs = [r for r in records if not r["control"] and str(r["params"].get("regime", "all")) == regime
          and r["verdict"] != "skipped"]
    if not rs:
        return "not evaluated"
    entries = threshold_entries(rs)
    if entries:
        counts: dict[str, int] = defaultdict(int)
        for e in entries:
            counts[e.status] += 1
        located = counts["found"] + counts["below"]
        head = ("m* located at every L" if located == len(entries)
                else f"m* located at {located} of {len(entries)} lengths")
        rest = [f"{n} {s}" for s, n in counts.items() if s not in ("found", "below") and n]
        return head + (f" ({', '.join(rest)})" if rest else "")
    if all(r["verdict"] == "holds" for r in rs):
        return "every cell"
    if has_width_axis(rs):
        th = threshold_widths(rs, None)
        if th and all(t.m_star is not None for t in th.values()):
            return "above m*(L) at every L"
    return "partly" if any(r["verdict"] == "holds" for r in rs) else "never"


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _l_range(group: list, all_Ls: list) -> str:
    """'L <= 8', 'L >= 4', 'L = 4', 'L in {4, 8}'."""
    if len(group) == 1:
        return f"L = {_fmt(group[0])}"
    if len(group) == len(all_Ls):
        return "every L"
    i0 = all_Ls.index(group[0])
    contiguous = all_Ls[i0:i0 + len(group)] == group
    if contiguous and i0 == 0:
        return f"L <= {_fmt(group[-1])}"
    if contiguous and i0 + len(group) == len(all_Ls):
        return f"L >= {_fmt(group[0])}"
    return "L in {" + ", ".join(_fmt(L) for L in group) + "}"


def _counts_phrase(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = [f"holds in {counts['holds']} of {total} cells"]
    for v in ("fails", "inconclusive", "error", "skipped"):
        if counts[v]:
            parts.append(f"{counts[v]} {v if v != 'error' else 'errors'}")
    return ", ".join(parts)


def _cell_words(r: dict) -> str:
    if is_threshold(r):
        return f"the threshold cell {cell_label(r)}"
    p = {k: v for k, v in r["params"].items() if k not in _NON_GRID}
    ptxt = ", ".join(f"{k} = {_fmt(v)}" for k, v in sorted(p.items()))
    reg = r["params"].get("regime")
    return (ptxt or "its only cell") + (f" ({reg})" if reg else "")


def claim_sentence(records: list[dict]) -> str:
    """One data-generated sentence describing where a claim holds (see module docstring for m*)."""
    main = [r for r in records if not r["control"]]
    if not main and not records:
        return "no records."
    parts: list[str] = []
    counts = count_verdicts(main)
    parts.append(_counts_phrase(counts) if main else "no non-control cells")
    asserted_bad = disagreements(main)
    if asserted_bad:
        what = "; ".join(f"{r['verdict']} at {_cell_words(r)}" for r in asserted_bad[:3])
        more = f"; {len(asserted_bad) - 3} more" if len(asserted_bad) > 3 else ""
        parts.append(f"{len(asserted_bad)} asserted cell{'s' if len(asserted_bad) != 1 else ''} "
                     f"{'do' if len(asserted_bad) != 1 else 'does'} not hold ({what}{more})")
    parts += threshold_phrase(main)
    main = [r for r in main if not is_threshold(r)]  # the grid's reading below: cells of fixed (m, L)
    regimes = regimes_of([r for r in records if not is_threshold(r)])
    if main and has_width_axis(main):
        pooled = threshold_widths(main, None)
        per_regime = {g: threshold_widths(main, g) for g in regimes}
        Ls = list(pooled)
        # group consecutive lengths with the same finite threshold
        groups: list[tuple[int, list]] = []
        for L in Ls:
            ms = pooled[L].m_star
            if ms is None:
                continue
            if groups and groups[-1][0] == ms and Ls.index(groups[-1][1][-1]) == Ls.index(L) - 1:
                groups[-1][1].append(L)
            else:
                groups.append((ms, [L]))
        for ms, group in groups:
            earlier = []
            for g in regimes:
                for L in group:
                    t = per_regime[g].get(L)
                    if t is not None and t.m_star is not None and t.m_star < ms:
                        earlier.append(f"{g} from m >= {_fmt(t.m_star)} at L = {_fmt(L)}")
            where = ("in all regimes" if len(regimes) > 1
                     else f"in regime {regimes[0]}" if regimes and regimes[0] != "all" else "")
            smallest = all(pooled[L].censored_below for L in group)
            txt = f"holds for m >= {_fmt(ms)}{' (every width)' if smallest else ''} at {_l_range(group, Ls)}"
            txt += f" {where}" if where else ""
            if earlier:
                txt += " (" + "; ".join(earlier[:3]) + (f"; {len(earlier) - 3} more" if len(earlier) > 3 else "") + ")"
            parts.append(txt)
        below_groups: dict[Any, list] = defaultdict(list)  # m* -> lengths with failures below m*
        for L in Ls:
            t = pooled[L]
            if t.m_star is not None and t.failing_below():
                below_groups[t.m_star].append(L)
        for ms, group in sorted(below_groups.items(), key=lambda kv: sort_key(kv[0])):
            parts.append(f"fails at {_l_range(group, Ls)} below m = {_fmt(ms)}")
        for L in Ls:
            t = pooled[L]
            below = t.failing_below()
            if t.m_star is None:
                if not t.widths:
                    continue
                last = t.verdicts[-1]
                if below and len(below) == len(t.widths):
                    parts.append(f"fails at L = {_fmt(L)} at every width up to m = {_fmt(t.max_width)}")
                else:
                    parts.append(f"no threshold width at L = {_fmt(L)} "
                                 f"(largest width m = {_fmt(t.max_width)}: {last})")
                    if below:
                        parts.append(f"fails at L = {_fmt(L)} for m in {{{', '.join(_fmt(w) for w in below)}}}")
    elif main:
        bad = [r for r in main if r["verdict"] not in ("holds", "skipped")]
        if not bad:
            parts.append("holds in every evaluated cell" + (" in all regimes" if len(regimes) > 1 else ""))
        else:
            descr = [f"{r['verdict']} at {_cell_words(r)}" for r in sorted(bad, key=lambda r: r["cell_key"])[:4]]
            more = f"; {len(bad) - 4} more" if len(bad) > 4 else ""
            parts.append("not holding: " + "; ".join(descr) + more)
    cs = control_status(records)
    ctrl = [r for r in records if r["control"] and r["verdict"] != "skipped"]
    if cs == "yes":
        parts.append(f"negative control fails as required ({len(ctrl)} control cell{'s' if len(ctrl) != 1 else ''}, "
                     f"{'all' if len(ctrl) != 1 else 'it'} fails)")
    elif cs == "no":
        kinds = ", ".join(f"{n} {v}" for v, n in count_verdicts(ctrl).items() if n and v != "fails")
        parts.append(f"negative control does NOT work: of {len(ctrl)} evaluated control cells, {kinds} "
                     f"(a control must end fails; the claim is not shown to discriminate)")
    return "; ".join(parts) + "."


# ----------------------------------------------------------------------------------------------------
# Phase diagram layout


def grid_axes(records: list[dict]) -> tuple[str | None, str | None, list[str]]:
    """(row axis, column axis, extra axes) for a claim's phase diagram.

    Rows are L when present; columns are m when present, else the numeric parameter with the most
    distinct values (n, N, omega, ...). Remaining parameters become labels inside a grid cell.
    """
    keys: dict[str, set] = defaultdict(set)
    for r in records:
        for k, v in r["params"].items():
            if k not in _NON_GRID:
                keys[k].add(json.dumps(v, sort_keys=True))
    row = "L" if "L" in keys else None
    col = "m" if "m" in keys else None
    if col is None:
        cands = [k for k in keys if k != row and all(_is_num(json.loads(v)) for v in keys[k])]
        cands.sort(key=lambda k: (-len(keys[k]), k))
        if cands and len(keys[cands[0]]) > 1:
            col = cands[0]
    if row is None and col is not None:
        cands = [k for k in keys if k != col and all(_is_num(json.loads(v)) for v in keys[k])]
        cands.sort(key=lambda k: (-len(keys[k]), k))
        if cands and len(keys[cands[0]]) > 1:
            row = cands[0]
    extra = sorted(k for k in keys if k not in (row, col))
    return row, col, extra


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class Panel:
    title: str
    row: str | None
    col: str | None
    rows: list
    cols: list
    cells: dict  # (row, col) -> list of records
    flat: list  # records when no grid can be drawn


def phase_panels(records: list[dict]) -> list[Panel]:
    """Small multiples: one panel per regime (and one per regime for control cells). Threshold cells are
    drawn from their probes instead (:func:`probe_panels`)."""
    records = [r for r in records if not is_threshold(r)]
    row, col, _extra = grid_axes(records)
    panels = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["control"], str(r["params"].get("regime", "")))].append(r)
    for (ctrl, reg), rs in sorted(groups.items()):
        title = (f"regime {reg}" if reg else "all cells") + (" — negative control" if ctrl else "")
        if row is None and col is None:
            panels.append(Panel(title, None, None, [], [], {}, sorted(rs, key=lambda r: r["cell_key"])))
            continue
        rows = sorted({r["params"].get(row) for r in rs}, key=sort_key) if row else [None]
        cols = sorted({r["params"].get(col) for r in rs}, key=sort_key) if col else [None]
        cells: dict = defaultdict(list)
        for r in rs:
            cells[(r["params"].get(row) if row else None, r["params"].get(col) if col else None)].append(r)
        for v in cells.values():
            v.sort(key=lambda r: r["cell_key"])
        panels.append(Panel(title, row, col, rows, cols, dict(cells), []))
    return panels


def extra_label(rec: dict, row: str | None, col: str | None) -> str:
    p = {k: v for k, v in rec["params"].items() if k not in _NON_GRID and k not in (row, col)}
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(p.items()))


# ----------------------------------------------------------------------------------------------------
# Per-claim summary


@dataclass
class ClaimSummary:
    id: str
    records: list[dict]
    counts: dict[str, int]  # non-control cells per verdict
    control_counts: dict[str, int]
    control_status: str
    disagreements: list[dict]  # asserted cells and controls whose verdict is not the expected one
    asserted: int  # non-control cells the suite asserts
    not_asserted: list[dict]  # cells the SPEC expects to hold that the suite does not assert (with why)
    plans: list[dict]  # distinct sequential-test parameters
    width_axis: bool
    thresholds: dict[Any, Threshold]  # pooled
    thresholds_by_regime: dict[str, dict[Any, Threshold]]
    fit: LineFit | None
    fits_by_regime: dict[str, LineFit]
    regime_status: dict[str, str]
    sentence: str
    controls: list[dict] = field(default_factory=list)
    threshold_entries: list[ThresholdEntry] = field(default_factory=list)  # threshold cells, every length
    growth: list[GrowthRow] = field(default_factory=list)  # threshold cells' growth fits
    probe_panels: list[ProbePanel] = field(default_factory=list)  # threshold cells' phase diagrams

    @property
    def not_asserted_by_reason(self) -> list[tuple[str, list[dict]]]:
        """The not-asserted cells grouped by their reason, in first-seen order."""
        groups: dict[str, list[dict]] = {}
        for r in self.not_asserted:
            groups.setdefault(str(r["not_asserted"]), []).append(r)
        return list(groups.items())


def summarize_claim(claim_id: str, records: list[dict]) -> ClaimSummary:
    main = [r for r in records if not r["control"]]
    ctrl = [r for r in records if r["control"]]
    width = has_width_axis(main)
    regs = regimes_of(records)
    th = threshold_widths(main, None) if width else {}
    th_r = {g: threshold_widths(main, g) for g in regs} if width else {}
    return ClaimSummary(
        id=claim_id,
        records=records,
        counts=count_verdicts(main),
        control_counts=count_verdicts(ctrl),
        control_status=control_status(records),
        disagreements=disagreements(records),
        asserted=sum(r.get("expect") == "holds" for r in main),
        not_asserted=[r for r in main if r.get("not_asserted")],
        plans=test_plans(records),
        width_axis=width,
        thresholds=th,
        thresholds_by_regime=th_r,
        fit=fit_threshold_exponent(th) if width else None,
        fits_by_regime={g: fit_threshold_exponent(t) for g, t in th_r.items()},
        regime_status={g: regime_status(records, g) for g in regs},
        sentence=claim_sentence(records),
        controls=sorted(ctrl, key=lambda r: r["cell_key"]),
        threshold_entries=threshold_entries(sorted(records, key=lambda r: (r["control"], cell_label(r)))),
        growth=growth_table({claim_id: records}),
        probe_panels=probe_panels(records),
    )


if __name__ == "__main__":  # python -m reports.analysis OUT: the m*(L) matrix and growth table as Markdown
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m reports.analysis RESULTS (a results folder: OUT or OUT/results)")
    sys.stdout.write(threshold_markdown(sys.argv[1]))
