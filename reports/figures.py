"""The report's generic figures and the plotting kit claims draw their own figures with (inline SVG).

A figure function has the signature ``fn(claim_id, records, profile) -> Figure`` (title, SVG, caption):
``records`` are the claim's records as :func:`reports.analysis.normalize_record` gives them (the stored
JSON with ``margin`` a float, NaN for null, and ``params``, ``measured``, ``series`` always present), and
``profile`` is the profile's name. It raises :class:`Missing` with a short reason when the records lack
the keys it needs; the report turns that into a note on the page.

Which figures a claim gets: m*(L) of its threshold cells (:func:`threshold_figure`), the functions in
its ``Claim.figures`` (callables, or ``"module:function"`` strings resolved here), then the generic
:func:`margin_figure`. A claim's own figure lives beside the claim and reads the claim's constants; it
imports this module inside the function (so that running a claim never imports matplotlib) and draws
with the kit: :func:`new_axes`, :func:`style`, :func:`to_svg`, :func:`main_records`,
:func:`series_rows`, :func:`group_rows`, :func:`finite_points`, :func:`num`, :func:`sort_key`,
:func:`measured_value`, :class:`Figure`, :class:`Missing`. Every figure is drawn inside the report's
matplotlib style. A claim without figures (or a report built where the claims registry cannot be
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

from .analysis import (  # noqa: E402
    num,
    sort_key,
    cell_label,
    growth_table,
    has_width_axis,
    is_threshold,
    measured_value,
    threshold_entries,
)

__all__ = [
    "Figure", "Missing", "OKABE_ITO", "MARKERS", "new_axes", "style", "to_svg", "main_records", "series_rows",
    "group_rows", "finite_points", "num", "sort_key", "measured_value", "margin_figure", "threshold_figure",
    "law_curve", "resolve_figure", "figure_specs", "claim_figures", "FigureSpecError", "GENERIC",
]

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


def new_axes(ncols=1, w=5.2, h=3.6, **kw):
    """A figure of ``ncols`` axes side by side (w x h inches each) in the report's style: ``(fig, axes)``."""
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, ncols, figsize=(w * ncols if ncols > 1 else w, h), squeeze=False, **kw)
    return fig, list(axes[0])


def style(i: int) -> dict:
    """Colour and marker of the i-th curve (Okabe-Ito colours; markers differ too)."""
    return dict(color=OKABE_ITO[i % len(OKABE_ITO)], marker=MARKERS[i % len(MARKERS)])


def finite_points(xs, ys):
    """The (x, y) pairs with both finite, as two lists."""
    pts = [(float(x), float(y)) for x, y in zip(xs, ys)
           if math.isfinite(num(x)) and math.isfinite(num(y))]
    return [p[0] for p in pts], [p[1] for p in pts]


def main_records(records):
    """The records of finished non-control cells."""
    return [r for r in records if not r["control"] and r["verdict"] not in ("skipped", "error")]


def series_rows(records, keys, main_only=True):
    """Series rows with every key present (finite or None where noted), carrying the cell's params."""
    out = []
    for r in (main_records(records) if main_only else records):
        for row in r["series"]:
            if all(k in row or k in r["params"] for k in keys):
                merged = dict(r["params"])
                merged.update(row)
                merged["_control"] = r["control"]
                out.append(merged)
    return out


def group_rows(rows, key):
    """``[(key(row), rows)]`` sorted by the key's strings."""
    g = defaultdict(list)
    for r in rows:
        g[key(r)].append(r)
    return sorted(g.items(), key=lambda kv: tuple(str(x) for x in kv[0]))


# ----------------------------------------------------------------------------------------------------
# Generic


def margin_figure(claim: str, records: list[dict], profile: str) -> Figure:
    """Worst margin against m (or the claim's main axis) per (L, regime); the pass line at margin 1.
    Threshold cells are drawn by :func:`threshold_figure` instead."""
    main = [r for r in main_records(records) if math.isfinite(r["margin"]) and not is_threshold(r)]
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
    Ls = sorted({g[0] for g in groups if g[0] is not None}, key=sort_key)
    fig, (ax,) = new_axes(w=6.0, h=3.8)
    for (L, reg), pts in sorted(groups.items(), key=lambda kv: (sort_key(kv[0][0]) if kv[0][0] is not None else (0, 0), str(kv[0][1]))):
        if xkey is None:
            xs = list(range(len(pts)))
            ys = [p[1] for p in pts]
        else:
            agg = defaultdict(list)
            for x, y in pts:
                agg[x].append(y)
            xs = sorted((x for x in agg if num(x) == num(x)), key=sort_key)
            ys = [max(agg[x]) for x in xs]
        ci = Ls.index(L) if L in Ls else 0
        ls = LINESTYLES[regimes.index(reg) % len(LINESTYLES)] if reg in regimes else "-"
        label = ", ".join(s for s in ((f"L={L}" if L is not None else ""), (str(reg) if reg else "")) if s)
        ax.plot(xs, ys, linestyle=ls, label=label or None, **style(ci))
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
    fig, (ax,) = new_axes(w=6.4, h=4.2)
    allL, ally = [], []
    laws = []
    for i, r in enumerate(cells):
        entries = [e for e in threshold_entries([r]) if math.isfinite(num(e.L)) and num(e.L) > 0]
        st = style(i)
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
               if e.status == "non-monotone" and math.isfinite(num(e.L)) and num(e.L) > 0]
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
        label = f"{claim}'s" if label == "figure" else label
        try:
            with plt.rc_context(_STYLE):
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
