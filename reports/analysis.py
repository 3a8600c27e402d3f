"""Analysis of stored claim records: loading, verdict counts, threshold widths, exponent fits, sentences.

Everything here is plain Python + numpy on the JSON records of ``docs/ARCHITECTURE.md`` ("Records");
nothing imports torch or the claims engine, so the report can be rebuilt from a results folder alone.

Definitions used by the report (and documented on the page):

* **Threshold width** ``m*(L)``: within one regime (or pooled over regimes), the smallest width ``m`` on
  the grid such that the claim *holds* at ``m`` and at every larger evaluated width at the same ``L``.
  Non-control cells only. Cells that were ``skipped`` (memory guard, profile) are not evaluated and are
  ignored; ``fails``, ``inconclusive`` and ``error`` all break the run of holding widths. Where several
  cells share one ``(regime, L, m)`` (other parameters such as ``n`` or ``omega``), the point holds only
  if all of them hold. *Pooled* over regimes, a point ``(L, m)`` holds only if it holds in every regime
  that evaluated it. ``m*(L)`` is ``None`` ("not reached") when the largest evaluated width does not hold.
* **Exponent**: least-squares fit of ``log m*(L) = a log L + b`` over the lengths with a finite
  ``m*(L)`` (at least two distinct lengths, otherwise "not enough points"); the fit quality is the
  coefficient of determination R^2 (only meaningful with three or more points) and the RMS residual in
  natural-log units. Lengths where ``m*`` was not reached are censored and left out of the fit.
* **Control status**: "yes" when at least one control cell was evaluated and none of them holds (a control
  must fail, or stay inconclusive where the SPEC says so); "no" when any control cell holds; "n/a" when
  the claim has no evaluated control cells.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

VERDICTS = ("holds", "fails", "inconclusive", "skipped", "error")

#: The catalogue order of SPEC section 4; unknown claims follow alphabetically.
CLAIM_ORDER = ("FWD", "BWD", "GRAD", "NTK-CONV", "NTK-PD", "NTK-PD-M", "PERT", "LAZY", "GEN-ADD",
               "GEN-KRR", "CPLX-ADD", "CPLX-NVAR", "RAND-LABEL")

#: Fallback titles and "operationalizes" texts (SPEC section 4) when the claims registry is not importable.
FALLBACK_META = {
    "FWD": ("Forward stability", "forward stability at init"),
    "BWD": ("Backward stability", "backward stability at init"),
    "GRAD": ("Gradient norm", "gradient norm at init"),
    "NTK-CONV": ("Empirical NTK converges", "empirical NTK tends to H_inf"),
    "NTK-PD": ("NTK positive definite", "NTK matrix positive definite (the central lemma)"),
    "NTK-PD-M": ("Finite-width NTK positive definite", "positive definiteness survives finite width"),
    "PERT": ("Perturbation bounds", "near-initialization bounds"),
    "LAZY": ("Lazy training", "training stays near init, converges linearly"),
    "GEN-ADD": ("Generalization, additive targets", "the generalization theorem, additive targets"),
    "GEN-KRR": ("RNN equals NTK regression", "trained RNN equals NTK regression"),
    "CPLX-ADD": ("Sample complexity, additive", "samples almost-polynomial in L, additive class"),
    "CPLX-NVAR": ("Sample complexity, N-variable", "N-variable, l_0-local targets"),
    "RAND-LABEL": ("Concept vs random labels", "complexity separates concepts from noise"),
}

# Axes that are not shown as grid axes of the phase diagram.
_NON_GRID = {"regime", "control"}


# ----------------------------------------------------------------------------------------------------
# Loading


@dataclass
class ResultSet:
    """All records of one results folder plus its run metadata."""

    root: pathlib.Path
    records: list[dict]
    run: dict | None
    problems: list[str] = field(default_factory=list)

    def by_claim(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for r in self.records:
            out[r["claim"]].append(r)
        return {c: out[c] for c in order_claims(out)}


def resolve_results_dir(path: str | pathlib.Path) -> pathlib.Path:
    """Accept either the results folder itself or a run's OUT folder holding ``results/``."""
    p = pathlib.Path(path)
    if (p / "results").is_dir() and not (p / "_run.json").exists():
        return p / "results"
    return p


def _num(x: Any) -> float:
    """A float from a record value; None / garbage -> NaN."""
    if isinstance(x, bool):
        return float(x)
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def load_results(path: str | pathlib.Path) -> ResultSet:
    """Read ``<CLAIM>/<cell_key>.json`` records and ``_run.json`` tolerantly.

    Unreadable files are listed in ``problems`` instead of raising; missing fields get defaults;
    NaN may be stored as ``null`` (read back as NaN where a number is expected).
    """
    root = resolve_results_dir(path)
    problems: list[str] = []
    records: list[dict] = []
    if not root.is_dir():
        problems.append(f"results folder {root} does not exist")
        return ResultSet(root, records, None, problems)
    for f in sorted(root.glob("*/*.json")):
        if f.name.startswith("_") or f.name.startswith("."):
            continue
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{f.relative_to(root)}: unreadable ({exc.__class__.__name__})")
            continue
        if not isinstance(rec, dict):
            problems.append(f"{f.relative_to(root)}: not a JSON object")
            continue
        records.append(normalize_record(rec, f, root))
    run = None
    run_file = root / "_run.json"
    if run_file.exists():
        try:
            run = json.loads(run_file.read_text(encoding="utf-8"))
            if not isinstance(run, dict):
                run, _ = None, problems.append("_run.json: not a JSON object")
        except (OSError, ValueError) as exc:
            problems.append(f"_run.json: unreadable ({exc.__class__.__name__})")
    return ResultSet(root, records, run, problems)


def normalize_record(rec: dict, f: pathlib.Path | None = None, root: pathlib.Path | None = None) -> dict:
    """Fill defaults so that the rest of the report can index records without guards."""
    r = dict(rec)
    r["_raw"] = rec
    if not r.get("claim"):
        r["claim"] = f.parent.name if f is not None else "UNKNOWN"
    r["claim"] = str(r["claim"])
    params = r.get("params") if isinstance(r.get("params"), dict) else {}
    r["params"] = params
    r["control"] = bool(r.get("control", params.get("control", False)))
    v = r.get("verdict")
    r["verdict"] = v if v in VERDICTS else "error"
    if not r.get("cell_key"):
        r["cell_key"] = f.stem if f is not None else _fallback_key(params)
    r["margin"] = _num(r.get("margin"))
    for key in ("examples", "failures", "inconclusive"):
        val = _num(r.get(key))
        r[key] = int(val) if math.isfinite(val) else 0
    ci = r.get("failure_rate_ci")
    r["failure_rate_ci"] = [_num(c) for c in ci][:2] if isinstance(ci, (list, tuple)) and len(ci) >= 2 else None
    for key in ("measured", "declared_constants", "measured_constants", "seeds", "versions"):
        if not isinstance(r.get(key), dict):
            r[key] = {}
    if not isinstance(r.get("series"), list):
        r["series"] = []
    r["series"] = [row for row in r["series"] if isinstance(row, dict)]
    for key, default in (("message", ""), ("failing_recipe", None), ("shrunk", None), ("duration_s", None)):
        r.setdefault(key, default)
    if f is not None and root is not None:
        r["_relpath"] = f.relative_to(root).as_posix()
    return r


def _fallback_key(params: dict) -> str:
    return "__".join(f"{k}={params[k]}" for k in sorted(params)) or "default"


def order_claims(ids: Iterable[str]) -> list[str]:
    ids = set(ids)
    known = [c for c in CLAIM_ORDER if c in ids]
    return known + sorted(ids - set(known))


def measured_value(rec: dict, key: str, stat: str = "mean") -> float:
    """A measured scalar: aggregated dicts ({"mean", "max", "min"}) or plain numbers."""
    v = rec.get("measured", {}).get(key)
    if isinstance(v, dict):
        if stat in v:
            return _num(v[stat])
        for alt in ("mean", "max", "min", "value"):
            if alt in v:
                return _num(v[alt])
        return math.nan
    return _num(v)


# ----------------------------------------------------------------------------------------------------
# Counts and control status


def verdict_counts(records: Iterable[dict]) -> dict[str, int]:
    c = Counter(r["verdict"] for r in records)
    return {v: c.get(v, 0) for v in VERDICTS}


def control_status(records: Iterable[dict]) -> str:
    """'yes' / 'no' / 'n/a' as defined in the module docstring."""
    ctrl = [r for r in records if r["control"] and r["verdict"] not in ("skipped", "error")]
    if not ctrl:
        return "n/a"
    return "no" if any(r["verdict"] == "holds" for r in ctrl) else "yes"


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


def _sort_key(x):
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
    for L in sorted(points, key=_sort_key):
        widths, holds, verdicts = [], [], []
        for m in sorted(points[L], key=_sort_key):
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


@dataclass
class PowerFit:
    n_points: int
    a: float = math.nan  # exponent
    b: float = math.nan  # log-intercept (natural log)
    r2: float = math.nan
    rms_log: float = math.nan
    note: str = ""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.a)

    def describe(self) -> str:
        if not self.ok:
            return self.note or "not enough points"
        q = f"R² = {self.r2:.3f}" if math.isfinite(self.r2) else "R² undefined"
        if self.n_points == 2:
            q = "exact through 2 points"
        return f"a = {self.a:.2f} ({q}; RMS log residual {self.rms_log:.2f}; {self.n_points} points)"


def fit_power_law(xs: Iterable, ys: Iterable) -> PowerFit:
    """Least squares ``log y = a log x + b`` over the finite, positive points (needs 2 distinct x)."""
    pts = [(float(x), float(y)) for x, y in zip(xs, ys)
           if x is not None and y is not None and math.isfinite(_num(x)) and math.isfinite(_num(y))
           and float(x) > 0 and float(y) > 0]
    n = len(pts)
    if len({x for x, _ in pts}) < 2:
        return PowerFit(n, note=f"not enough points ({n} finite; need at least 2 distinct)")
    lx = np.log([x for x, _ in pts])
    ly = np.log([y for _, y in pts])
    a, b = np.polyfit(lx, ly, 1)
    resid = ly - (a * lx + b)
    ss_res = float(np.sum(resid ** 2))
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 and n >= 3 else math.nan
    return PowerFit(n, float(a) + 0.0, float(b), r2, math.sqrt(ss_res / n))


def fit_threshold_exponent(th: dict[Any, Threshold]) -> PowerFit:
    Ls = [L for L, t in th.items() if t.m_star is not None and isinstance(L, (int, float))]
    return fit_power_law(Ls, [th[L].m_star for L in Ls])


@dataclass
class GrowthFits:
    """CPLX fits of log n_eps against L: power law (a log L + b) and exponential (a' L + b')."""

    n_points: int
    power: tuple[float, float] | None = None
    exp: tuple[float, float] | None = None
    rss_power: float = math.nan
    rss_exp: float = math.nan


def fit_growth(Ls: Iterable, n_eps: Iterable) -> GrowthFits:
    pts = [(float(L), float(n)) for L, n in zip(Ls, n_eps)
           if math.isfinite(_num(L)) and math.isfinite(_num(n)) and float(L) > 0 and float(n) > 0]
    if len({L for L, _ in pts}) < 2:
        return GrowthFits(len(pts))
    L = np.array([p[0] for p in pts])
    ly = np.log([p[1] for p in pts])
    pa = np.polyfit(np.log(L), ly, 1)
    pe = np.polyfit(L, ly, 1)
    rp = float(np.sum((ly - np.polyval(pa, np.log(L))) ** 2))
    re = float(np.sum((ly - np.polyval(pe, L)) ** 2))
    return GrowthFits(len(pts), (float(pa[0]), float(pa[1])), (float(pe[0]), float(pe[1])), rp, re)


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


def claim_sentence(records: list[dict]) -> str:
    """One data-generated sentence describing where a claim holds (see module docstring for m*)."""
    main = [r for r in records if not r["control"]]
    if not main and not records:
        return "no records."
    parts: list[str] = []
    counts = verdict_counts(main)
    parts.append(_counts_phrase(counts) if main else "no non-control cells")
    regimes = regimes_of(records)
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
            smallest = all(pooled[L].widths and pooled[L].widths[0] == ms for L in group)
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
        for ms, group in sorted(below_groups.items(), key=lambda kv: _sort_key(kv[0])):
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
            descr = []
            for r in sorted(bad, key=lambda r: r["cell_key"])[:4]:
                p = {k: v for k, v in r["params"].items() if k not in _NON_GRID}
                ptxt = ", ".join(f"{k} = {_fmt(v)}" for k, v in sorted(p.items()))
                reg = r["params"].get("regime")
                descr.append(f"{r['verdict']} at {ptxt or 'its only cell'}" + (f" ({reg})" if reg else ""))
            more = f"; {len(bad) - 4} more" if len(bad) > 4 else ""
            parts.append("not holding: " + "; ".join(descr) + more)
    cs = control_status(records)
    ctrl = [r for r in records if r["control"]]
    if cs == "yes":
        kinds = ", ".join(f"{n} {v}" for v, n in verdict_counts(ctrl).items() if n)
        parts.append(f"negative control fails as required ({len(ctrl)} control cell{'s' if len(ctrl) != 1 else ''}: "
                     f"{kinds}; none holds)")
    elif cs == "no":
        nh = sum(r["verdict"] == "holds" for r in ctrl)
        parts.append(f"negative control does NOT fail: {nh} of {len(ctrl)} control cells hold (claim is broken)")
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
    """Small multiples: one panel per regime (and one per regime for control cells)."""
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
        rows = sorted({r["params"].get(row) for r in rs}, key=_sort_key) if row else [None]
        cols = sorted({r["params"].get(col) for r in rs}, key=_sort_key) if col else [None]
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
    counts: dict[str, int]
    control_counts: dict[str, int]
    control_status: str
    width_axis: bool
    thresholds: dict[Any, Threshold]  # pooled
    thresholds_by_regime: dict[str, dict[Any, Threshold]]
    fit: PowerFit | None
    fits_by_regime: dict[str, PowerFit]
    regime_status: dict[str, str]
    sentence: str


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
        counts=verdict_counts(main),
        control_counts=verdict_counts(ctrl),
        control_status=control_status(records),
        width_axis=width,
        thresholds=th,
        thresholds_by_regime=th_r,
        fit=fit_threshold_exponent(th) if width else None,
        fits_by_regime={g: fit_threshold_exponent(t) for g, t in th_r.items()},
        regime_status={g: regime_status(records, g) for g in regs},
        sentence=claim_sentence(records),
    )
