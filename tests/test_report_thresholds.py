"""The report of threshold cells (record["kind"] == "threshold"): the overview's m*(L) matrix and growth-law
table, the per-claim threshold searches, m*(L) figure and the phase diagram drawn from the probes, on
synthetic records with every status (found, above, below, inconclusive, non-monotone) and known answers."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pytest

from reports import analysis as an
from reports import figures
from reports.build import build_report

try:
    from tests.fixtures_records import (make_record, run_meta, synthetic_quick, synthetic_thresholds,
                                        threshold_records, write_results)
except ImportError:  # tests/ not a package on sys.path
    from fixtures_records import (make_record, run_meta, synthetic_quick, synthetic_thresholds, threshold_records,
                                  write_results)

# the known answers of synthetic_thresholds: (claim, row label) -> {L: matrix entry}
LABELS = {
    ("FWD", "normalized"): {2: "40 [34, 47]", 4: "110 [93, 131]", 8: "≈ 700 [400, 1300]", 16: "> 2048"},
    ("FWD", "unit"): {2: "≤ 16", 4: "95 [80, 113]", 8: "380 [320, 452]", 16: "1500 [1260, 1780]"},
    ("FWD", "unit · w_var=4 · control"): {2: "30 [25, 36]", 4: "> 2048", 8: "> 2048"},
    ("BWD", "unit"): {2: "60 [51, 71]", 4: "non-monotone", 8: "900 [760, 1070]"},
}
STATUSES = {
    ("FWD", "normalized"): {2: "found", 4: "found", 8: "inconclusive", 16: "above"},
    ("FWD", "unit"): {2: "below", 4: "found", 8: "found", 16: "found"},
    ("FWD", "unit · w_var=4 · control"): {2: "found", 4: "above", 8: "above"},
    ("BWD", "unit"): {2: "found", 4: "non-monotone", 8: "found"},
}


def _norm(recs):
    return [an.normalize_record(r) for r in recs]


def _by_claim(recs):
    return an.records_by_claim(_norm(recs))


def test_matrix_entries_statuses_order_and_asserted_marks():
    Ls, rows = an.threshold_matrix(_by_claim(synthetic_thresholds()))
    assert Ls == [2, 4, 8, 16]
    assert [(r.claim, r.label) for r in rows] == list(LABELS)  # claim order, then regime, controls last
    for r in rows:
        assert {L: e.label for L, e in r.entries.items()} == LABELS[(r.claim, r.label)]
        assert {L: e.status for L, e in r.entries.items()} == STATUSES[(r.claim, r.label)]
    assert [r.asserted for r in rows] == [False, True, False, False]
    # the cell that must hold asserts L = 2, 4, 8, not 16
    assert [L for r in rows for L, e in r.entries.items() if e.asserted] == [2, 4, 8]
    assert [r.control for r in rows] == [False, False, True, False]
    unit = rows[1].entries[8]
    assert (unit.lo, unit.hi, unit.ratio) == (320.0, 452.0, pytest.approx(452 / 320))
    assert unit.certificate == {"m": 452.0, "verdict": "holds", "examples": 12, "failures": 0}
    assert "certificate: sequential test at m = 452 holds (0 of 12 examples failed)" in unit.title
    assert "monotonicity check p = 0.004" in rows[3].entries[4].title


def test_growth_rows_interval_bound_and_evidence():
    rows = {(g.claim, g.label): g for g in an.growth_table(_by_claim(synthetic_thresholds()))}
    unit, norm = rows[("FWD", "unit")], rows[("FWD", "normalized")]
    ctrl, bwd = rows[("FWD", "unit · w_var=4 · control")], rows[("BWD", "unit")]
    assert (unit.exponent_text, unit.evidence_text, unit.below_bound) == ("2.00 [1.70, 2.30]", "5.1 (power)", True)
    assert (norm.exponent_text, norm.below_bound) == ("2.40 [1.50, ∞]", False)  # an open interval is not below
    assert (ctrl.exponent_text, ctrl.evidence_text, ctrl.below_bound, ctrl.law) == ("—", "—", None, None)
    assert (bwd.law, bwd.evidence_text, bwd.rate_text, bwd.below_bound) == (
        "exponential", "0.4 (exponential)", "1.34 [0.7, 2]", False)  # 5.8 > 3
    assert (unit.points, unit.censored, unit.bound) == (4, 1, 3.0)
    # a tie (the fit names no law) is read as such, not by which side of 1 the ratio rounds to
    tie = next(r for r in synthetic_thresholds() if r["claim"] == "BWD")
    tie["growth"].update(law=None, evidence_ratio=1.000000000013, exponent_ci=[None, None], rate_ci=[None, None])
    (g,) = an.growth_table(_by_claim([tie]))
    assert (g.evidence_text, g.exponent_text, g.rate_text, g.below_bound) == (
        "1 (neither)", "3.90 (no interval)", "1.34 (no interval)", None)
    assert not unit.asserted  # L = 16 is not asserted, so neither is the growth law
    rec = next(r for r in synthetic_thresholds() if r["expect"] == "holds")
    rec["cell"]["asserted_lengths"] = []  # naming no length asserts every length, and the growth
    rec = make_record(rec["claim"], rec["cell"], "holds", expect="holds") | {
        k: rec[k] for k in ("kind", "thresholds", "growth")}
    (g,) = an.growth_table(_by_claim([rec]))
    assert g.asserted and all(e.asserted for e in an.threshold_entries(_norm([rec])))


def test_probe_reading_and_panels():
    assert an.probe_class({"m": 8, "examples": 12, "failures": 0}, 0.1, 0.3) == "holds"
    assert an.probe_class({"m": 8, "examples": 10, "failures": 1}, 0.1, 0.3) == "holds"  # rate = delta
    assert an.probe_class({"m": 8, "examples": 10, "failures": 2}, 0.1, 0.3) == "inconclusive"
    assert an.probe_class({"m": 8, "examples": 10, "failures": 3}, 0.1, 0.3) == "fails"
    assert an.probe_class({"m": 8, "examples": 10, "failures": 2, "inconclusive": 5}, 0.1, 0.3) == "fails"  # 2 of 5
    assert an.probe_class({"m": 8, "examples": 4, "failures": 0, "inconclusive": 4}, 0.1, 0.3) == "inconclusive"
    fwd = [r for r in _norm(synthetic_thresholds()) if r["claim"] == "FWD"]
    panels = {p.title: p for p in an.probe_panels(fwd)}
    assert list(panels) == ["normalized", "unit", "unit · w_var=4 · control"]
    unit = panels["unit"]
    assert unit.bins[0] == (16.0, 32.0) and unit.bins[-1] == (2048.0, 4096.0)
    rows = {row["L"]: row for row in unit.rows}
    col = {lo: i for i, (lo, _) in enumerate(unit.bins)}
    assert [q["m"] for q in rows[16]["cells"][col[1024.0]]] == [1024, 1448, 1780]  # sorted by width
    assert [q["cls"] for q in rows[16]["cells"][col[1024.0]]] == ["fails", "inconclusive", "holds"]
    assert [q["m"] for q in rows[16]["cells"][col[2048.0]]] == [2048]
    assert [i for i, on in enumerate(rows[16]["marked"]) if on] == [col[1024.0]]  # [1260, 1780]
    assert [i for i, on in enumerate(rows[2]["marked"]) if on] == [col[16.0]]  # below: m* <= 16
    above = {row["L"]: row for row in panels["normalized"].rows}[16]
    assert [i for i, on in enumerate(above["marked"]) if on] == [col[2048.0]]  # above: m* > 2048
    # the grid's panels leave threshold cells out
    assert an.phase_panels(fwd) == []


def test_summary_sentence_and_regimes_read_the_threshold_cells_and_the_grid_reads_the_rest():
    recs = _norm(synthetic_thresholds())
    fwd = [r for r in recs if r["claim"] == "FWD"]
    s = an.summarize_claim("FWD", fwd)
    assert not s.width_axis and s.thresholds == {} and s.fit is None  # no grid read off threshold cells
    assert len(s.threshold_entries) == 11 and len(s.growth) == 3 and len(s.probe_panels) == 3
    assert s.regime_status == {"normalized": "m* located at 2 of 4 lengths (1 inconclusive, 1 above)",
                               "unit": "m* located at every L"}
    text = s.sentence
    assert ("unit: m* ≤ 16 at L = 2; 95 [80, 113] at L = 4; 380 [320, 452] at L = 8; 1500 [1260, 1780] at L = 16; "
            "m* ~ L^a with a = 2.00 [1.70, 2.30], power law preferred (evidence ratio 5.1), below the declared "
            "bound 3") in text
    assert "normalized: m* 40 [34, 47] at L = 2; 110 [93, 131] at L = 4; > 2048 at L = 16 (inconclusive at L = 8)" in text
    assert "not holding" not in text and "negative control fails as required" in text
    bwd = an.summarize_claim("BWD", [r for r in recs if r["claim"] == "BWD"])
    assert "(non-monotone at L = 4)" in bwd.sentence
    # beside grid cells of fixed (m, L), the grid's reading is what it is without the threshold cells
    grid = _norm(threshold_records("FWD", (2, 4), (64, 256, 1024), ("unit",), {2: 64, 4: 256}))
    mixed = an.summarize_claim("FWD", grid + fwd)
    alone = an.summarize_claim("FWD", grid)
    assert {L: t.m_star for L, t in mixed.thresholds.items()} == {L: t.m_star for L, t in alone.thresholds.items()} \
        == {2: 64, 4: 256}
    assert "holds for m >= 64 (every width) at L = 2 in regime unit;" in mixed.sentence
    assert "unit: m* ≤ 16 at L = 2" in mixed.sentence


def test_law_curve_is_the_stored_slope_through_the_found_points():
    Ls = np.array([2.0, 3.0, 8.0, 20.0])
    found = [an.ThresholdEntry("X", "unit", L, "found", 5.0 * L ** 2, None, None, 16, 2048, {}, 0, None, None, [], {})
             for L in (2, 4, 8)]
    np.testing.assert_allclose(figures.law_curve("power", 2.0, found, Ls), 5.0 * Ls ** 2, rtol=1e-12)
    expo = [an.ThresholdEntry("X", "unit", L, "found", 3.0 * math.exp(0.5 * L), None, None, 16, 2048, {}, 0, None,
                              None, [], {}) for L in (2, 4, 8)]
    np.testing.assert_allclose(figures.law_curve("exponential", 0.5, expo, Ls), 3.0 * np.exp(0.5 * Ls), rtol=1e-12)
    assert figures.law_curve(None, 2.0, found, Ls) is None and figures.law_curve("power", None, found, Ls) is None
    assert figures.law_curve("power", 2.0, [], Ls) is None


def test_threshold_figure_draws_censored_lengths_as_arrows(monkeypatch):
    import matplotlib.lines as mlines

    drawn = []
    real = figures.to_svg
    monkeypatch.setattr(figures, "to_svg", lambda fig: (drawn.append(fig), real(fig))[1])
    fwd = [r for r in _norm(synthetic_thresholds()) if r["claim"] == "FWD"]
    fig = figures.threshold_figure("FWD", fwd, "quick")
    (ax,) = drawn[0].get_axes()
    markers = [line.get_marker() for line in ax.get_lines()]
    # up from m_max: normalized L = 16, the control's L = 4 and 8; down from m_min: unit L = 2
    assert markers.count(mlines.CARETUPBASE) == 3 and markers.count(mlines.CARETDOWNBASE) == 1
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "unit: power a = 2.00 [1.70, 2.30]" in fig.caption and "normalized: power a = 2.40 [1.50, ∞]" in fig.caption
    with pytest.raises(figures.Missing, match="no threshold cells"):
        figures.threshold_figure("FWD", _norm(threshold_records("FWD", (2,), (64,), ("unit",), {2: 64})), "quick")
    figs, notes = figures.claim_figures("FWD", fwd, "quick")
    assert [f.key for f in figs] == ["threshold"] and notes == []  # no margin grid to draw


def _matrix_cells(text: str) -> dict:
    """(cell_key, L) -> (status class, text, asserted mark) of the overview matrix."""
    start = text.index('id="threshold-matrix"')
    body = text[start:text.index("</table>", start)]
    out = {}
    for row in re.findall(r'<tr class="matrix-row"(.*?)</tr>', body, flags=re.S):
        key = re.search(r'data-cell="([^"]+)"', row).group(1)
        for status, L, inner in re.findall(r'<td class="ts ts-([a-z-]+)[^"]*" data-status="[^"]+" data-L="([^"]+)"'
                                           r'[^>]*>(.*?)</td>', row, flags=re.S):
            label = html.unescape(re.sub(r"<span class=\"sr\">.*?</span>|<sup.*?</sup>", "", inner))
            out[(key, int(L))] = (status, label, '<sup class="amark"' in inner)
    return out


def test_report_opens_with_the_matrix_then_the_growth_table(tmp_path):
    recs = synthetic_thresholds() + [r for r in synthetic_quick() if r["claim"] in ("NTK-PD", "GEN-KRR")]
    root = write_results(tmp_path / "results", recs, run_meta(records=recs))
    text = build_report(root, tmp_path / "site").read_text(encoding="utf-8")
    overview = text.index('<section id="overview">')
    assert overview < text.index('id="threshold-matrix"') < text.index('id="growth-table"') \
        < text.index('<p class="summary">') < text.index('id="overview-table"')
    cells = _matrix_cells(text)
    thr = [r for r in recs if r.get("kind") == "threshold"]
    rows = {(r["claim"], an.cell_label(an.normalize_record(r))): r for r in thr}
    assert len(cells) == sum(len(r["thresholds"]) for r in thr) == 14
    for (claim, label), by_L in LABELS.items():
        rec = rows[(claim, label)]
        for L, want in by_L.items():
            status, got, marked = cells[(rec["cell_key"], L)]
            assert (status, got) == (STATUSES[(claim, label)][L], want)
            assert marked == (rec["expect"] == "holds" and L in (2, 4, 8))  # its asserted lengths
    growth = re.findall(r'<tr class="growth-row".*?</tr>', text, flags=re.S)
    assert len(growth) == 4
    assert any("2.00 [1.70, 2.30]" in g and "5.1 (power)" in g and "✓ yes" in g for g in growth)
    assert any("2.40 [1.50, ∞]" in html.unescape(g) for g in growth)
    # per claim: the searches, the m*(L) figure first, the probes' phase diagram
    fwd = text[text.index('<section class="claim" id="claim-FWD"'):]
    fwd = fwd[:fwd.index("</section>")]
    assert fwd.count('<tr class="threshold-entry"') == 11 and fwd.count('class="panel probe-panel"') == 3
    assert re.findall(r'data-fig="([^"]+)"', fwd)[0] == "FWD/threshold"
    assert "m=1448 · 2/10" in html.unescape(fwd)
    # claims without threshold cells keep their grid and the old reading
    assert 'id="claim-GEN-KRR"' in text and "threshold search: see the matrix above" not in \
        text[text.index('<tr class="claim-row" data-claim="GEN-KRR"'):]
    assert re.search(r"https?://", re.sub(r'xmlns[^ >]*|http://www\.w3\.org[^"]*', "", text)) is None


def test_reproduce_command_of_a_threshold_cell_names_its_failing_concrete_cell(tmp_path):
    from reports.build import reproduce_command

    rec = next(r for r in synthetic_thresholds() if r["control"])
    rec["failing_recipe"] = {"n": 4, "L": 4}
    rec["failing_cell"] = {"m": 2048, "L": 4, "regime": "unit", "w_var": 4.0, "control": True}
    cmd = reproduce_command(rec)
    assert '--cell \'{"L":4,"control":true,"m":2048,"regime":"unit","w_var":4.0}\'' in cmd
    del rec["failing_cell"]
    assert '"kind":"threshold"' in reproduce_command(rec)  # a grid cell's own parameters otherwise


def test_no_matrix_without_threshold_cells(tmp_path):
    recs = [r for r in synthetic_quick() if r["claim"] in ("FWD", "NTK-PD")]
    text = build_report(write_results(tmp_path / "results", recs), tmp_path / "site").read_text(encoding="utf-8")
    assert 'id="threshold-matrix"' not in text and 'id="growth-table"' not in text
    assert 'class="panel probe-panel"' not in text and 'class="threshold-entry"' not in text


def test_threshold_cell_that_must_hold_and_fails_is_a_disagreement_in_the_matrix(tmp_path):
    recs = synthetic_thresholds()
    unit = next(r for r in recs if r["expect"] == "holds")
    bad = make_record(unit["claim"], unit["cell"], "fails", expect="holds")
    bad.update(kind="threshold", thresholds=unit["thresholds"], growth=unit["growth"])
    recs = [bad if r is unit else r for r in recs]
    text = build_report(write_results(tmp_path / "results", recs), tmp_path / "site").read_text(encoding="utf-8")
    row = re.search(r'<tr class="matrix-row"[^>]*data-expect="holds">(.*?)</tr>', text, flags=re.S).group(1)
    assert "✗ disagreement: must hold, fails" in row
    assert "✗ 1 disagreement" in text


def test_markdown_tables_for_notes(tmp_path):
    import subprocess
    import sys

    by = _by_claim(synthetic_thresholds())
    md = an.matrix_markdown(by).splitlines()
    assert md[0] == "| claim | cell | verdict | L = 2 | L = 4 | L = 8 | L = 16 |"
    assert "| FWD | unit | holds | ≤ 16 (A) | 95 [80, 113] (A) | 380 [320, 452] (A) | 1500 [1260, 1780] |" in md
    assert "| FWD | normalized | inconclusive | 40 [34, 47] | 110 [93, 131] | ≈ 700 [400, 1300] (inconclusive) " \
           "| > 2048 |" in md
    assert "| BWD | unit | inconclusive | 60 [51, 71] | non-monotone | 900 [760, 1070] | — |" in md
    growth = an.growth_markdown(by).splitlines()
    assert len(growth) == 2 + 4
    assert "| FWD | unit | power | 2.00 [1.70, 2.30] | — | 5.1 (power) | 3 | yes | 4 / 1 |  |" in growth
    resolution = an.resolution_markdown(by).splitlines()
    # located: found or certified censored lengths (FWD normalized's L = 8 is inconclusive); the interval
    # factors hi / lo over the found lengths only; examples and seconds summed over every length
    assert resolution[2:] == ["| FWD | normalized | 3 / 4 | 1.40 | 1.41 | 88 | 12 |",
                              "| FWD | unit | 4 / 4 | 1.41 | 1.41 | 132 | 12 |",
                              "| BWD | unit | 2 / 3 | 1.40 | 1.41 | 66 | 9 |"]
    assert an.matrix_markdown(_by_claim(synthetic_quick())) == "" == an.growth_markdown(_by_claim(synthetic_quick()))
    assert an.resolution_markdown(_by_claim(synthetic_quick())) == ""
    folder = write_results(tmp_path / "results", synthetic_thresholds())
    out = subprocess.run([sys.executable, "-m", "reports.analysis", str(folder)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == an.matrix_markdown(by) + "\n" + an.growth_markdown(by) + "\n" + an.resolution_markdown(by)
    empty = write_results(tmp_path / "plain", [r for r in synthetic_quick() if r["claim"] == "NTK-PD"])
    out = subprocess.run([sys.executable, "-m", "reports.analysis", str(empty)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("no threshold cells in ")
    out = subprocess.run([sys.executable, "-m", "reports.analysis"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.strip().startswith("usage: python -m reports.analysis RESULTS")
