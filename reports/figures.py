"""The report's matplotlib figures, rendered to inline SVG strings.

A figure function has the signature ``fn(claim_id, records, profile) -> Figure`` (title, SVG, caption):
``records`` are the claim's records as :func:`reports.analysis.normalize_record` gives them (the stored
JSON with ``margin`` a float, NaN for null, and ``params``, ``measured``, ``series`` always present), and
``profile`` is the profile's name. It raises :class:`Missing` with a short reason when the records lack
the keys it needs; the report turns that into a note on the page.

Which figures a claim gets: the functions in its ``Claim.figures`` (callables, or ``"module:function"``
strings resolved here, so that running a claim never imports plotting code), then the generic
:func:`margin_figure`. A claim without figures (or a report built where the claims registry cannot be
imported) gets the generic figures only. Conventions for ``measured`` keys and ``series`` rows are those
of ``docs/ARCHITECTURE.md`` ("Series conventions"). Colours: Okabe-Ito (colour-blind safe), and markers /
line styles also differ, so no information is carried by colour alone.
"""

from __future__ import annotations

import importlib
import io
import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402

from claims.fits import fmt_pm, loglog_slope  # noqa: E402

from .analysis import (  # noqa: E402
    _num,
    _sort_key,
    cell_label,
    growth_table,
    has_width_axis,
    is_threshold,
    measured_value,
    threshold_entries,
)

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", ":", "-."]

_STYLE = {
    "svg.fonttype": "none",  # text stays text: smaller files, selectable labels
    "svg.hashsalt": "rnnclaims",  # deterministic ids
    "font.size": 9,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
}


class Missing(Exception):
    """The records lack what a figure needs; the message says what."""


@dataclass
class Figure:
    key: str
    title: str
    svg: str
    caption: str


_counter = itertools.count()


def to_svg(fig) -> str:
    """An inline-able SVG string: no XML prolog / DOCTYPE / metadata / namespace URLs; ids made unique."""
    for ax in fig.get_axes():
        _plain_log_ticks(ax)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    s = buf.getvalue()
    s = s[s.index("<svg"):]
    s = re.sub(r"<metadata>.*?</metadata>", "", s, flags=re.S)
    s = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", s)
    s = re.sub(r'\s+xml:space="[^"]*"', "", s)
    prefix = f"f{next(_counter)}_"
    ids = set(re.findall(r'id="([^"]+)"', s))
    if ids:
        pat = re.compile(r'(id="|#)(' + "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)) + r')(?=["\)])')
        s = pat.sub(lambda m: m.group(1) + prefix + m.group(2), s)
    s = s.replace("<svg ", '<svg role="img" ', 1)
    return s


def _plain_log_ticks(ax) -> None:
    """Plain-text tick labels on log axes (matplotlib's default mathtext labels are slow to lay out)."""
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_major_formatter(mticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
            axis.set_minor_formatter(mticker.NullFormatter())


def _new(ncols=1, w=5.2, h=3.6, **kw):
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, ncols, figsize=(w * ncols if ncols > 1 else w, h), squeeze=False, **kw)
    return fig, list(axes[0])


def _style(i: int) -> dict:
    return dict(color=OKABE_ITO[i % len(OKABE_ITO)], marker=MARKERS[i % len(MARKERS)])


def _finite(xs, ys):
    pts = [(float(x), float(y)) for x, y in zip(xs, ys)
           if math.isfinite(_num(x)) and math.isfinite(_num(y))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _main(records):
    return [r for r in records if not r["control"] and r["verdict"] not in ("skipped", "error")]


def _rows(records, keys, main_only=True):
    """Series rows with every key present (finite or None where noted), carrying the cell's params."""
    out = []
    for r in (_main(records) if main_only else records):
        for row in r["series"]:
            if all(k in row or k in r["params"] for k in keys):
                merged = dict(r["params"])
                merged.update(row)
                merged["_control"] = r["control"]
                out.append(merged)
    return out


def _rc(fn):
    def wrapped(*a, **k):
        with plt.rc_context(_STYLE):
            return fn(*a, **k)
    wrapped.__name__ = fn.__name__
    return wrapped


# ----------------------------------------------------------------------------------------------------
# Generic


@_rc
def margin_figure(claim: str, records: list[dict], profile: str) -> Figure:
    """Worst margin against m (or the claim's main axis) per (L, regime); the pass line at margin 1.
    Threshold cells are drawn by :func:`threshold_figure` instead."""
    main = [r for r in _main(records) if math.isfinite(r["margin"]) and not is_threshold(r)]
    if not main:
        raise Missing("no finite margins in non-control cells")
    if has_width_axis(main):
        xkey = "m"
    else:
        cand = [k for k in ("n", "N", "omega", "L") if any(k in r["params"] for r in main)]
        xkey = cand[0] if cand else None
    groups = defaultdict(list)
    for r in main:
        p = r["params"]
        gkey = (p.get("L") if xkey != "L" else None, p.get("regime"))
        x = p.get(xkey) if xkey else None
        groups[gkey].append((x, r["margin"]))
    regimes = sorted({g[1] for g in groups if g[1] is not None} | ({None} if any(g[1] is None for g in groups) else set()), key=str)
    Ls = sorted({g[0] for g in groups if g[0] is not None}, key=_sort_key)
    fig, (ax,) = _new(w=6.0, h=3.8)
    for (L, reg), pts in sorted(groups.items(), key=lambda kv: (_sort_key(kv[0][0]) if kv[0][0] is not None else (0, 0), str(kv[0][1]))):
        if xkey is None:
            xs = list(range(len(pts)))
            ys = [p[1] for p in pts]
        else:
            agg = defaultdict(list)
            for x, y in pts:
                agg[x].append(y)
            xs = sorted((x for x in agg if _num(x) == _num(x)), key=_sort_key)
            ys = [max(agg[x]) for x in xs]
        ci = Ls.index(L) if L in Ls else 0
        ls = LINESTYLES[regimes.index(reg) % len(LINESTYLES)] if reg in regimes else "-"
        label = ", ".join(s for s in ((f"L={L}" if L is not None else ""), (str(reg) if reg else "")) if s)
        ax.plot(xs, ys, linestyle=ls, label=label or None, **_style(ci))
    ax.axhline(1.0, color="#000000", lw=1, ls="--")
    ax.text(0.01, 1.0, " pass line: margin = 1", transform=ax.get_yaxis_transform(), va="bottom", fontsize=8)
    if xkey in ("m", "n", "omega"):
        ax.set_xscale("log", base=2 if xkey != "omega" else 10)
    if all(r["margin"] > 0 for r in main):
        ax.set_yscale("log")
    ax.set_xlabel({"m": "width m", "n": "samples n", "N": "variables N", "omega": "perturbation ω",
                   "L": "length L", None: "cell index"}[xkey])
    ax.set_ylabel("worst margin (measured / bound)")
    if len(groups) <= 16 and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=2 if len(groups) > 6 else 1)
    return Figure("margin", f"{claim}: margin against {xkey or 'cell'}", to_svg(fig),
                  f"Worst margin over examples (measured / bound; at most 1 passes) against "
                  f"{xkey or 'the cell index'}, one line per length L (colour and marker) and regime "
                  f"(line style), non-control cells. Profile: {profile}.")


def law_curve(law: str | None, slope: float | None, found: list, Ls) -> np.ndarray | None:
    """m*(L) of a growth law at the lengths ``Ls``: c L^slope ("power") or c e^(slope L) ("exponential"),
    with log c the mean of log m* - slope log L (or - slope L) over the ``found`` entries (the line of that
    slope through their geometric mean); None without a law, a slope or a found entry."""
    if law not in ("power", "exponential") or slope is None or not found:
        return None
    L = np.array([float(e.L) for e in found])
    y = np.log([float(e.m_star) for e in found])
    t, T = (np.log(L), np.log(np.asarray(Ls, dtype=float))) if law == "power" else (L, np.asarray(Ls, dtype=float))
    c = float(np.mean(y - slope * t))
    return np.exp(c + slope * T)


@_rc
def threshold_figure(claim: str, records: list[dict], profile: str) -> Figure:
    """m*(L) of the claim's threshold cells on log-log axes: found lengths as the posterior median with
    its 95% interval as error bars, censored lengths as arrows from the bound (up from m_max: m* > m_max;
    down from m_min: m* <= m_min), inconclusive ones hollow with the interval so far, non-monotone ones
    as crosses at the bottom (never fitted). The stored growth law is drawn through the found points:
    slope a (power) or rate r (exponential) from the record's fit, the prefactor the geometric mean of
    m* / L^a (or m* / e^(r L)) over the found lengths; dotted, the declared bound L^bound the same way."""
    cells = sorted((r for r in records if is_threshold(r) and r["verdict"] not in ("skipped", "error")),
                   key=lambda r: (r["control"], cell_label(r)))
    if not cells:
        raise Missing("no threshold cells")
    growth = {g.record["cell_key"]: g for g in growth_table({claim: cells})}
    fig, (ax,) = _new(w=6.4, h=4.2)
    allL, ally = [], []
    laws = []
    for i, r in enumerate(cells):
        entries = [e for e in threshold_entries([r]) if math.isfinite(_num(e.L)) and _num(e.L) > 0]
        st = _style(i)
        label = cell_label(r)
        first = True

        def lab():
            nonlocal first
            out, first = (label if first else None), False
            return out

        found = [e for e in entries if e.status == "found" and e.m_star is not None]
        if found:
            L = [float(e.L) for e in found]
            y = [e.m_star for e in found]
            err = [[max(m - (e.lo if e.lo is not None else m), 0.0) for m, e in zip(y, found)],
                   [max((e.hi if e.hi is not None else m) - m, 0.0) for m, e in zip(y, found)]]
            ax.errorbar(L, y, yerr=err, ls="none", capsize=3, label=lab(), **st)
            allL += L
            ally += [e.lo or e.m_star for e in found] + [e.hi or e.m_star for e in found]
        for e in entries:
            L = float(e.L)
            if e.status == "above":
                b = e.lo if e.lo is not None else e.m_max
                if b:
                    ax.errorbar([L], [b], yerr=[[0.0], [b * 0.6]], lolims=[True], ls="none", capsize=0,
                                mfc="white", label=lab(), **st)
                    allL.append(L)
                    ally += [b, b * 1.6]
            elif e.status == "below":
                b = e.hi if e.hi is not None else e.m_min
                if b:
                    ax.errorbar([L], [b], yerr=[[b * 0.4], [0.0]], uplims=[True], ls="none", capsize=0,
                                mfc="white", label=lab(), **st)
                    allL.append(L)
                    ally += [b, b * 0.6]
            elif e.status == "inconclusive" and (e.m_star is not None or e.lo or e.hi):
                c = e.m_star if e.m_star is not None else math.sqrt((e.lo or e.hi) * (e.hi or e.lo))
                err = [[max(c - (e.lo or c), 0.0)], [max((e.hi or c) - c, 0.0)]]
                ax.errorbar([L], [c], yerr=err, ls="none", capsize=3, mfc="white", alpha=0.8, label=lab(), **st)
                allL.append(L)
                ally += [c, e.lo or c, e.hi or c]
        g = growth.get(r["cell_key"])
        if g is None or not found:
            continue
        Ls = np.geomspace(min(float(e.L) for e in entries), max(float(e.L) for e in entries), 40)
        curve = law_curve(g.law, g.exponent if g.law == "power" else g.rate, found, Ls)
        if curve is not None:
            ax.plot(Ls, curve, color=st["color"], lw=1.2, ls="-" if g.law == "power" else "--")
            laws.append(f"{label}: power a = {g.exponent_text}" if g.law == "power"
                        else f"{label}: exponential r = {g.rate_text}")
        bound = law_curve("power", g.bound, found, Ls) if not r["control"] else None
        if bound is not None:
            ax.plot(Ls, bound, color=st["color"], lw=0.8, ls=":")
    nonmono = [(float(e.L), cell_label(e.record)) for r in cells for e in threshold_entries([r])
               if e.status == "non-monotone" and math.isfinite(_num(e.L)) and _num(e.L) > 0]
    if not allL and not nonmono:
        plt.close(fig)
        raise Missing("no threshold cell located m* or a bound at any length")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    if nonmono:
        bottom = min(ally) / 2 if ally else 1.0
        ax.plot([L for L, _ in nonmono], [bottom] * len(nonmono), ls="none", marker="x", color="#000000",
                label="non-monotone (not fitted)")
    ax.set_xlabel("length L")
    ax.set_ylabel("threshold width m*(L)")
    ax.legend(fontsize=7, ncol=2 if len(cells) > 4 else 1)
    return Figure("threshold", f"{claim}: threshold width m*(L)", to_svg(fig),
                  "Threshold width m*(L) on log-log axes, one colour and marker per threshold cell: the posterior "
                  "median with its 95% interval (filled, error bars); arrows from a bound for censored lengths "
                  "(up from m_max: no width in range works, certified by the sequential test ending fails; down "
                  "from m_min: the smallest width already holds); hollow: inconclusive, the interval so far; "
                  "crosses at the bottom: the failure rate does not fall with m (non-monotone, not fitted). "
                  "Lines: the stored growth law (solid power, dashed exponential; slope or rate from the "
                  "censored fit, placed through the found points' geometric mean), dotted: the declared "
                  f"exponent bound. {'; '.join(laws) or 'No growth law stored'}. Profile: {profile}.")


# ----------------------------------------------------------------------------------------------------
# Claim-specific


@_rc
def ntk_conv_figure(claim, records, profile) -> Figure:
    pts = defaultdict(list)  # L -> [(m, error)]
    for r in _main(records):
        p = r["params"]
        if "m" in p and "L" in p:
            e = measured_value(r, "error", "mean")
            if math.isfinite(e):
                pts[p["L"]].append((float(p["m"]), e))
    for row in _rows(records, ("m", "error", "L")):
        if math.isfinite(_num(row["error"])):
            pts[row["L"]].append((float(row["m"]), float(row["error"])))
    pts = {L: v for L, v in pts.items() if v}
    if not pts:
        raise Missing("no 'error' measurements with m and L")
    fig, (ax,) = _new(w=6.0, h=4.0)
    slopes = []
    allm = []
    for i, L in enumerate(sorted(pts, key=_sort_key)):
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
        ax.plot(ms, es, label=lab, **_style(i))
    if allm:
        m0, m1 = min(allm), max(allm)
        g = np.geomspace(m0, max(m1, m0 * 2), 20)
        ref = np.median([v[0][1] for v in pts.values()]) * (g / m0) ** -0.5
        ax.plot(g, ref, color="#777777", ls=":", label="m^-1/2 guide")
    ax.axhline(0.1, color="#000000", ls="--", lw=1, label="pass bound 0.1")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width m")
    ax.set_ylabel("max|H_m − H_inf| / max diag H_inf")
    ax.legend(fontsize=7)
    return Figure("ntk_conv", "NTK error against width", to_svg(fig),
                  "Relative NTK error against width m on log-log axes, one line per length L, with the fitted "
                  f"log-log slope per L ({'; '.join(slopes) or 'no fit'}); pass rule: slope <= -0.35 and "
                  f"error <= 0.1; dotted: an m^-1/2 guide. Mean over examples. Profile: {profile}.")


def ntk_pd_lambda_figure(claim, records, profile) -> Figure:
    """NTK-PD: lambda_min(H_inf) against L per regime (measured key ``lambda_min``)."""
    return _lambda_figure(claim, records, profile, infinite_only=True)


def ntk_pd_m_lambda_figure(claim, records, profile) -> Figure:
    """NTK-PD-M: lambda_min(H_m(W_0)) per width and lambda_min(H_inf) against L (``lambda_min_m``,
    ``lambda_min_inf``)."""
    return _lambda_figure(claim, records, profile, infinite_only=False)


@_rc
def _lambda_figure(claim, records, profile, infinite_only: bool) -> Figure:
    keys = ["lambda_min"] if infinite_only else ["lambda_min_m", "lambda_min_inf"]
    data = defaultdict(list)  # (key, regime, m) -> [(L, value)]
    for r in _main(records):
        p = r["params"]
        if "L" not in p:
            continue
        for k in keys:
            v = measured_value(r, k, "min")
            if math.isfinite(v) and v > 0:
                data[(k, p.get("regime", ""), p.get("m"))].append((float(p["L"]), v))
    if not data:
        raise Missing(f"no {' / '.join(keys)} measurements with L")
    fig, (ax,) = _new(w=6.0, h=4.0)
    regimes = sorted({k[1] for k in data}, key=str)
    widths = sorted({k[2] for k in data if k[2] is not None}, key=_sort_key)
    for (k, reg, m), pts in sorted(data.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), _sort_key(kv[0][2] or 0))):
        agg = defaultdict(list)
        for L, v in pts:
            agg[L].append(v)
        Ls = sorted(agg)
        i = regimes.index(reg)
        ls = "-" if k in ("lambda_min", "lambda_min_m") else "--"
        lab = ("λ_min(H_inf)" if k != "lambda_min_m" else "λ_min(H_m)") + f", {reg}" + (f", m={m}" if m is not None and k == "lambda_min_m" else "")
        st = _style(i)
        if m is not None and k == "lambda_min_m" and widths:
            st["marker"] = MARKERS[widths.index(m) % len(MARKERS)]
        if k == "lambda_min_inf" and m is not None and widths and m != widths[-1]:
            continue  # H_inf does not depend on m: draw it once per regime
        ax.plot(Ls, [min(agg[L]) for L in Ls], linestyle=ls, label=lab, **st)
    ax.set_yscale("log")
    ax.set_xlabel("length L")
    ax.set_ylabel("smallest eigenvalue λ_min")
    ax.legend(fontsize=7, ncol=2 if len(data) > 6 else 1)
    what = ("λ_min(H_inf) of the infinite-width NTK" if infinite_only
            else "λ_min(H_m(W_0)) of the empirical NTK (solid, marker = width) and λ_min(H_inf) (dashed)")
    return Figure("lambda", "Smallest NTK eigenvalue against L", to_svg(fig),
                  f"{what} against length L per regime (colour), smallest over examples. Profile: {profile}.")


_PERT_STATS = [("r_h", 1.0, "r_h = max_l ‖h'−h‖/‖h‖"), ("flips", 2 / 3, "sign flips / m"),
               ("r_g", 1 / 3, "r_g = ‖∇f'−∇f‖/‖∇f‖"), ("first_order", 1 / 3, "first-order error")]


@_rc
def pert_figure(claim, records, profile) -> Figure:
    rows = [r for r in _rows(records, ("omega", "stat", "value")) if math.isfinite(_num(r["value"]))]
    if not rows:
        raise Missing("no series rows with omega, stat, value")
    stats = [s for s in _PERT_STATS if any(r["stat"] == s[0] for r in rows)]
    stats += [(s, None, s) for s in sorted({r["stat"] for r in rows} - {s[0] for s in _PERT_STATS})]
    fig, axes = _new(ncols=len(stats), w=3.6, h=3.4)
    Ls = sorted({r.get("L") for r in rows if r.get("L") is not None}, key=_sort_key) or [None]
    dirs = sorted({str(r.get("direction", "")) for r in rows})
    for ax, (stat, slope, label) in zip(axes, stats):
        rs = [r for r in rows if r["stat"] == stat]
        for (L, d), grp in _group(rs, lambda r: (r.get("L"), str(r.get("direction", "")))):
            agg = defaultdict(list)
            for r in grp:
                agg[float(r["omega"])].append(float(r["value"]))
            om = sorted(agg)
            i = Ls.index(L) if L in Ls else 0
            st = _style(i)
            st["marker"] = MARKERS[dirs.index(d) % len(MARKERS)]
            ax.plot(om, [max(agg[o]) for o in om], ls="none" if len(om) < 2 else "-", alpha=0.85,
                    label=f"L={L}, {d}" if L is not None else d, **st)
        bnd = defaultdict(list)
        for r in rs:
            if math.isfinite(_num(r.get("bound"))):
                bnd[float(r["omega"])].append(float(r["bound"]))
        if bnd:
            om = sorted(bnd)
            ax.plot(om, [max(bnd[o]) for o in om], color="#000000", ls="--", lw=1, label="declared bound")
        pos = [float(r["value"]) for r in rs if float(r["value"]) > 0]
        omegas = sorted({float(r["omega"]) for r in rs if float(r["omega"]) > 0})
        if slope is not None and pos and len(omegas) >= 2:
            g = np.array([omegas[0], omegas[-1]])
            y0 = float(np.median(pos))
            ax.plot(g, y0 * (g / math.sqrt(g[0] * g[1])) ** slope, color="#777777", ls=":",
                    label=f"slope {'1' if slope == 1 else '2/3' if abs(slope - 2 / 3) < 1e-9 else '1/3'}")
        ax.set_xscale("log")
        if pos:
            ax.set_yscale("log")
        ax.set_xlabel("perturbation ω = ‖Δ‖₂")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("measured value")
    return Figure("pert", "Perturbation quantities against ω", to_svg(fig),
                  "Near-initialization quantities against the spectral norm ω of the perturbation (log-log), "
                  "colour = length L, marker = direction (random / adversarial), worst over examples; dashed: "
                  "the declared bound 4 (ωL)^p, judged only where ωL < 1 (larger ω are recorded as probes); dotted: "
                  "reference slopes 1, 2/3, 1/3. Profile: " + profile + ".")


def _group(rows, key):
    g = defaultdict(list)
    for r in rows:
        g[key(r)].append(r)
    return sorted(g.items(), key=lambda kv: tuple(str(x) for x in kv[0]))


@_rc
def lazy_figure(claim, records, profile) -> Figure:
    curves = []
    for r in _main(records):
        ex = defaultdict(list)
        for row in r["series"]:
            if "t" in row and "loss" in row:
                ex[row.get("example", 0)].append(row)
        if ex:
            first = sorted(ex)[0]
            curves.append((r, sorted(ex[first], key=lambda row: _num(row["t"]))))
    if not curves:
        raise Missing("no series rows with t and loss")
    # keep the widest cell per (L, regime) so the plot stays readable
    best = {}
    for r, rows in curves:
        k = (r["params"].get("L"), r["params"].get("regime"))
        if k not in best or _num(r["params"].get("m", 0)) > _num(best[k][0]["params"].get("m", 0)):
            best[k] = (r, rows)
    fig, (ax,) = _new(w=6.0, h=4.0)
    for i, (k, (r, rows)) in enumerate(sorted(best.items(), key=lambda kv: tuple(str(x) for x in kv[0]))[:8]):
        t, loss = _finite([row["t"] for row in rows], [row["loss"] for row in rows])
        col = OKABE_ITO[i % len(OKABE_ITO)]
        lab = ", ".join(f"{a}={r['params'][a]}" for a in ("L", "m", "regime") if a in r["params"])
        ax.plot(t, loss, color=col, label=lab)
        tp, pred = _finite([row["t"] for row in rows], [row.get("predicted") for row in rows])
        if pred:
            ax.plot(tp, pred, color=col, ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("GD step t")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7)
    return Figure("lazy", "Training curves against the predicted linear rate", to_svg(fig),
                  "Full-batch GD training loss against step t (solid) and the predicted linear rate "
                  "(1 − η m λ_min(H_inf)/2)^t loss_0 (dashed, same colour), first example of the widest "
                  f"cell per (L, regime), at most 8 curves. Profile: {profile}.")


@_rc
def gen_add_figure(claim, records, profile) -> Figure:
    rows = _rows(records, ("n", "test_loss", "B"))
    if not rows:
        rows = []
        for r in _main(records):
            if "n" in r["params"]:
                rows.append({"n": r["params"]["n"], "L": r["params"].get("L"),
                             "test_loss": measured_value(r, "test_loss"),
                             "train_loss": measured_value(r, "train_loss"), "B": measured_value(r, "B")})
    rows = [r for r in rows if math.isfinite(_num(r.get("n")))]
    if not rows:
        raise Missing("no n with test_loss and B (series or params)")
    fig, (ax,) = _new(w=6.0, h=4.0)
    Ls = sorted({r.get("L") for r in rows}, key=lambda x: _sort_key(x) if x is not None else (0, 0))
    for i, L in enumerate(Ls):
        rs = [r for r in rows if r.get("L") == L]
        for key, ls in (("test_loss", "-"), ("train_loss", ":"), ("B", "--")):
            agg = defaultdict(list)
            for r in rs:
                if math.isfinite(_num(r.get(key))):
                    agg[float(r["n"])].append(float(r[key]))
            if agg:
                ns = sorted(agg)
                ax.plot(ns, [float(np.mean(agg[n])) for n in ns], ls=ls,
                        label=f"{key}" + (f", L={L}" if L is not None else ""), **_style(i))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.axhspan(1.0, max(hi, 2.0), color="#BBBBBB", alpha=0.35, hatch="//", label="vacuous (B ≥ 1)")
    ax.set_ylim(lo, max(hi, 2.0))
    ax.set_xlabel("training samples n")
    ax.set_ylabel("loss min(1, |u − y|) / bound B")
    ax.legend(fontsize=7, ncol=2)
    return Figure("gen_add", "Test loss and bound B against n", to_svg(fig),
                  "Test loss (solid), training loss (dotted) and the generalization bound B (dashed) against "
                  "the number of training samples n, mean over examples, one colour per L; the shaded band "
                  f"B ≥ 1 is where the bound is vacuous. Profile: {profile}.")


@_rc
def cplx_add_figure(claim, records, profile) -> Figure:
    cells = [r for r in _main(records) if any("L" in row and "n_eps" in row for row in r["series"])]
    if not cells:
        raise Missing("no series rows with L and n_eps")
    fig, axes = _new(ncols=3, w=3.3, h=3.4)
    key_ax, axes = axes[2], axes[:2]
    # One curve per cell (target, regime): pooling cells would fit one line through first-step targets
    # (exponential in L) and last-step targets (polynomial) at once, which describes neither.
    curves = []
    for r in sorted(cells, key=lambda r: r["cell_key"]):
        by_L: dict[float, list[float]] = {}
        unreached: set[float] = set()
        for row in r["series"]:
            L, n = _num(row.get("L")), _num(row.get("n_eps"))
            if not math.isfinite(L):
                continue
            if math.isfinite(n) and n > 0:
                by_L.setdefault(L, []).append(n)
            else:
                unreached.add(L)
        Ls = sorted(by_L)
        geo = [math.exp(sum(math.log(v) for v in by_L[L]) / len(by_L[L])) for L in Ls]
        curves.append((r, Ls, geo, sorted(L for L in unreached if L not in by_L)))
    top = 2 * max((g for _, _, geo, _ in curves for g in geo), default=1.0)
    for i, (r, Ls, geo, late) in enumerate(curves):
        p = r["params"]
        a = measured_value(r, "exponent")
        label = (f"{p.get('target', '?')}, {p.get('regime', '?')}, f={p.get('f', '?')}: {r['verdict']}"
                 + (f", a={a:.2f}" if math.isfinite(_num(a)) else ""))
        for ax in axes:
            # Okabe-Ito has 8 colours: later curves repeat them, dashed.
            ax.plot(Ls, geo, lw=1, ms=4, ls="-" if i < len(OKABE_ITO) else "--", **_style(i), label=label)
            if late:
                ax.plot(late, [top] * len(late), ls="none", marker="^", ms=4, color=_style(i)["color"])
    for ax, scale in zip(axes, ("log-log", "semi-log")):
        ax.set_yscale("log", base=2)
        if scale == "log-log":
            ax.set_xscale("log", base=2)
        ax.set_xlabel("length L")
        ax.set_title(scale, fontsize=9)
    axes[0].set_ylabel("samples n_eps to MSE ≤ 0.25 Var(y)")
    key_ax.axis("off")
    key_ax.legend(*axes[0].get_legend_handles_labels(), fontsize=6, loc="center left", frameon=False)
    return Figure("cplx_add", "n_eps against L", to_svg(fig),
                  "Sample complexity n_eps against L, one curve per cell (target position, regime, f): the "
                  "geometric mean over examples of the grid value n_eps, with the cell's verdict and fitted "
                  "power-law exponent a. A power law is a straight line on the log-log axes (left), an "
                  "exponential a straight line on the semi-log axes (right); triangles (in the curve's colour) "
                  f"mark lengths where n_eps was not reached by n_max. Profile: {profile}.")


@_rc
def cplx_nvar_figure(claim, records, profile) -> Figure:
    rows = _rows(records, ("N", "l0", "n_eps"))
    if not rows:
        raise Missing("no series rows with N, l0 and n_eps")
    Lmax = max((r.get("L") for r in rows if _num(r.get("L")) == _num(r.get("L"))), default=None,
               key=lambda x: _num(x))
    if Lmax is not None:
        rows = [r for r in rows if r.get("L") == Lmax]
    Ns = sorted({r["N"] for r in rows}, key=_sort_key)
    l0s = sorted({r["l0"] for r in rows}, key=_sort_key)
    M = np.full((len(Ns), len(l0s)), np.nan)
    reached = np.zeros_like(M, dtype=bool)
    seen = np.zeros_like(M, dtype=bool)
    for i, N in enumerate(Ns):
        for j, l0 in enumerate(l0s):
            vals = [_num(r["n_eps"]) for r in rows if r["N"] == N and r["l0"] == l0]
            seen[i, j] = bool(vals)
            fin = [v for v in vals if math.isfinite(v) and v > 0]
            if fin:
                M[i, j] = math.log2(float(np.median(fin)))
                reached[i, j] = True
    fig, (ax,) = _new(w=5.0, h=3.8)
    im = ax.imshow(np.ma.masked_invalid(M), cmap="viridis", origin="lower", aspect="auto")
    for i in range(len(Ns)):
        for j in range(len(l0s)):
            txt = f"{2 ** M[i, j]:.0f}" if reached[i, j] else ("n.r." if seen[i, j] else "—")
            ax.text(j, i, txt, ha="center", va="center", fontsize=8,
                    color="white" if reached[i, j] and M[i, j] < np.nanmean(M) else "black")
    ax.set_xticks(range(len(l0s)), [str(x) for x in l0s])
    ax.set_yticks(range(len(Ns)), [str(x) for x in Ns])
    ax.set_xlabel("span l_0")
    ax.set_ylabel("variables N")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="log2 n_eps")
    return Figure("cplx_nvar", "n_eps growth table over (N, l_0)", to_svg(fig),
                  f"Median n_eps over examples for each (N, l_0) at the largest length L = {Lmax} (text in each "
                  "cell; colour log2 n_eps, viridis); n.r. = n_eps not reached on the n grid. "
                  f"Profile: {profile}.")


@_rc
def rand_label_figure(claim, records, profile) -> Figure:
    rows = [r for r in _rows(records, ("n", "ratio")) if math.isfinite(_num(r["ratio"]))]
    if not rows:
        raise Missing("no series rows with n and ratio")
    fig, (ax,) = _new(w=6.0, h=4.0)
    Ls = sorted({r.get("L") for r in rows}, key=lambda x: _sort_key(x) if x is not None else (0, 0))
    for i, L in enumerate(Ls):
        agg = defaultdict(list)
        for r in rows:
            if r.get("L") == L:
                agg[float(r["n"])].append(float(r["ratio"]))
        ns = sorted(agg)
        ax.plot(ns, [float(np.median(agg[n])) for n in ns], label=f"L={L}", **_style(i))
    ax.axhline(0.5, color="#000000", ls="--", lw=1, label="pass bound 0.5")
    ax.axhline(1.0, color="#777777", ls=":", lw=1, label="ratio 1 (no separation)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("samples n")
    ax.set_ylabel("C(concept) / C(random labels)")
    ax.legend(fontsize=7)
    return Figure("rand_label", "Complexity ratio against n", to_svg(fig),
                  "Ratio of the data-dependent complexity y^T H_inf^-1 y tr H_inf / n^2 of the concept to that of "
                  f"random labels against n, median over examples, one line per L. Profile: {profile}.")


def forward_layers_figure(claim, records, profile) -> Figure:
    """FWD: ||h_l||^2 / q_l across layers against the bounds 1/2 and 2 (series rows ``l``, ``ratio``)."""
    return _layer_ratio_figure(claim, records, profile, (0.5, 2.0, "‖h_l‖² / q_l"))


def backward_layers_figure(claim, records, profile) -> Figure:
    """BWD: ||delta_l||^2 / m across layers against the bounds 1/4 and 1 (series rows ``l``, ``ratio``)."""
    return _layer_ratio_figure(claim, records, profile, (0.25, 1.0, "‖δ_l‖² / m"))


@_rc
def _layer_ratio_figure(claim, records, profile, bounds: tuple) -> Figure:
    rows = [r for r in _rows(records, ("l", "ratio")) if math.isfinite(_num(r["ratio"]))]
    if not rows:
        raise Missing("no series rows with l and ratio")
    fig, (ax,) = _new(w=6.0, h=3.8)
    keys = sorted({(r.get("L"), r.get("m")) for r in rows}, key=lambda k: tuple(_num(x) for x in k))
    Ls = sorted({k[0] for k in keys}, key=lambda x: _num(x))
    ms = sorted({k[1] for k in keys}, key=lambda x: _num(x))
    for L, m in keys:
        if m != ms[-1] and m != ms[0]:
            continue  # smallest and largest widths only
        agg = defaultdict(list)
        for r in rows:
            if r.get("L") == L and r.get("m") == m:
                agg[float(r["l"])].append(float(r["ratio"]))
        ls_ = sorted(agg)
        st = _style(Ls.index(L))
        ax.plot(ls_, [min(agg[x]) for x in ls_], ls="-" if m == ms[-1] else ":", label=f"L={L}, m={m} (min)", **st)
        ax.plot(ls_, [max(agg[x]) for x in ls_], ls="-" if m == ms[-1] else ":", alpha=0.5, **st)
    ax.axhline(bounds[0], color="#000000", ls="--", lw=1, label="declared bounds")
    ax.axhline(bounds[1], color="#000000", ls="--", lw=1)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("layer l")
    ax.set_ylabel(bounds[2])
    ax.legend(fontsize=6, ncol=2)
    return Figure("layers", f"{bounds[2]} across layers", to_svg(fig),
                  f"Range (min and max over examples and inputs) of {bounds[2]} across layers l, for the smallest "
                  f"(dotted) and largest (solid) width, one colour per L; dashed: the declared bounds "
                  f"{bounds[0]:g} and {bounds[1]:g}. Profile: {profile}.")


# --------------------------------------------------------------------------------------------------
# Which figures a claim gets


#: The generic figures every claim gets after its own (the phase diagram is a table, not a figure); a
#: claim with threshold cells gets :func:`threshold_figure` first.
GENERIC: tuple[Callable, ...] = (margin_figure,)

class FigureSpecError(ValueError):
    """A ``Claim.figures`` entry that is neither a callable nor an importable "module:function"."""


def resolve_figure(spec: Any) -> Callable:
    """A figure function from a ``Claim.figures`` entry: a callable as it is, or a "module:function"
    string imported now. Raises :class:`FigureSpecError` naming the entry."""
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise FigureSpecError(f"figure {spec!r} is neither a callable nor a 'module:function' string")
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FigureSpecError(f"figure {spec!r} is not of the form 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise FigureSpecError(f"figure {spec!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise FigureSpecError(f"figure {spec!r}: {module_name} has no {attr!r}")
    if not callable(fn):
        raise FigureSpecError(f"figure {spec!r}: {module_name}.{attr} is not callable")
    return fn


def figure_specs(claim_id: str, claim: Any | None) -> tuple[Any, ...]:
    """The claim's own figure entries (``claim.figures``); () without a Claim (the registry could not be
    imported, or does not know the id): the report then draws the generic figures only."""
    if claim is None:
        return ()
    return tuple(getattr(claim, "figures", ()) or ())


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or str(fn)


def claim_figures(claim: str, records: list[dict], profile: str, claim_obj: Any | None = None
                  ) -> tuple[list[Figure], list[str]]:
    """The figures of one claim (m*(L) of its threshold cells first, then its own, then the generic ones
    for its other cells), plus notes for figures omitted
    (missing keys, an unresolvable entry, or a plotting error: a broken figure never stops the report)."""
    figs, notes = [], []
    fns: list[Callable] = []
    for spec in figure_specs(claim, claim_obj):
        try:
            fns.append(resolve_figure(spec))
        except FigureSpecError as exc:
            notes.append(f"figure omitted: {exc}.")
    first = [threshold_figure] if any(is_threshold(r) for r in records) else []
    # a claim of threshold cells only has no margin grid
    generic = list(GENERIC) if any(not is_threshold(r) for r in records) else []
    for fn in [*first, *fns, *generic]:
        label = _name(fn).replace("_figure", "")
        try:
            fig = fn(claim, records, profile)
            if not isinstance(fig, Figure):
                raise TypeError(f"returned {type(fig).__name__}, not reports.figures.Figure")
            figs.append(fig)
        except Missing as exc:
            notes.append(f"{label} figure omitted: {exc}.")
        except Exception as exc:  # a malformed record must not take the whole report down
            plt.close("all")
            notes.append(f"{label} figure omitted: {exc.__class__.__name__}: {exc}.")
    return figs, notes
