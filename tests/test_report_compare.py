"""reports.compare on two hand-made result sets: exactly the flipped cells, flips first, then margins;
folders and merged views alike; the page's comparison table."""

from __future__ import annotations

import copy
import html

from claims.merge import merged_view
from reports.build import build_report
from reports.compare import compare_results
try:
    from tests.fixtures_records import make_record, run_meta, write_results
except ImportError:  # tests/ not a package on sys.path
    from fixtures_records import make_record, run_meta, write_results


def _base():
    recs = []
    for claim in ("FWD", "NTK-PD"):
        for L in (2, 4):
            for m in (64, 256):
                recs.append(make_record(claim, {"m": m, "L": L, "regime": "unit"}, "holds", 0.5,
                                        expect="holds" if m == 256 else None))
    recs.append(make_record("FWD", {"m": 64, "L": 4, "regime": "unit", "control": True}, "fails", 3.0))
    return recs


def _find(recs, claim, **cell):
    hit = [r for r in recs if r["claim"] == claim and r["cell"] == cell]
    assert len(hit) == 1
    return hit[0]


def _sets(tmp_path):
    a = _base()
    b = copy.deepcopy(a)
    flips = {("FWD", _find(b, "FWD", m=64, L=4, regime="unit")["cell_key"]),
             ("NTK-PD", _find(b, "NTK-PD", m=256, L=2, regime="unit")["cell_key"]),
             ("FWD", _find(b, "FWD", m=64, L=4, regime="unit", control=True)["cell_key"])}
    _find(b, "FWD", m=64, L=4, regime="unit").update(verdict="fails", margin=1.5)
    _find(b, "NTK-PD", m=256, L=2, regime="unit").update(verdict="inconclusive")
    _find(b, "FWD", m=64, L=4, regime="unit", control=True).update(verdict="holds", margin=0.9)
    _find(b, "FWD", m=256, L=2, regime="unit")["margin"] = 0.5 * 8  # factor 8, verdict unchanged
    _find(b, "NTK-PD", m=64, L=2, regime="unit")["margin"] = 0.5 / 2  # factor 2
    _find(b, "NTK-PD", m=64, L=4, regime="unit")["margin"] = None  # becomes NaN
    gone = _find(b, "NTK-PD", m=256, L=4, regime="unit")
    b.remove(gone)
    b.append(make_record("GRAD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.7))
    ra = write_results(tmp_path / "a", a)
    rb = write_results(tmp_path / "b", b)
    return ra, rb, flips, gone


def test_compare_lists_exactly_the_flipped_cells(tmp_path):
    ra, rb, flips, gone = _sets(tmp_path)
    changes = compare_results(ra, rb)
    got = {(c.claim, c.cell_key) for c in changes if c.kind == "verdict"}
    assert got == flips
    kinds = [c.kind for c in changes]
    assert kinds[:3] == ["verdict"] * 3  # flips first
    assert kinds[3:5] == ["only_a", "only_b"] or sorted(kinds[3:5]) == ["only_a", "only_b"]
    assert {c.claim for c in changes if c.kind == "only_a"} == {"NTK-PD"}
    assert {c.cell_key for c in changes if c.kind == "only_a"} == {gone["cell_key"]}
    assert {c.claim for c in changes if c.kind == "only_b"} == {"GRAD"}
    margins = [c for c in changes if c.kind == "margin"]
    # NaN appearance (inf) > factor 8 > factor 2; unchanged cells are not listed
    assert [c.size for c in margins] == sorted((c.size for c in margins), reverse=True)
    assert len(margins) == 3
    assert margins[1].margin_b == 4.0 and margins[2].margin_b == 0.25
    flip = [c for c in changes if c.kind == "verdict" and c.claim == "NTK-PD"][0]
    assert (flip.verdict_a, flip.verdict_b) == ("holds", "inconclusive") and flip.expect == "holds"
    # a merged view compares like the folder it came from
    assert compare_results(merged_view([ra]), merged_view([rb])) == changes


def test_claims_are_ordered_by_run_a(tmp_path):
    a = [make_record(c, {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5) for c in ("FWD", "NTK-PD")]
    b = [dict(r) for r in a]
    for r in b:
        r["verdict"] = "fails"
    ra = write_results(tmp_path / "a", a, run_meta(records=a, claims=["NTK-PD", "FWD"]))
    rb = write_results(tmp_path / "b", b)
    assert [c.claim for c in compare_results(ra, rb)] == ["NTK-PD", "FWD"]
    assert [c.claim for c in compare_results(rb, ra)] == ["NTK-PD", "FWD"]  # A has none: B's
    rc = write_results(tmp_path / "c", a)
    assert [c.claim for c in compare_results(rb, rc)] == ["FWD", "NTK-PD"]  # neither: the catalogue's


def test_identical_runs_have_no_changes(tmp_path):
    ra = write_results(tmp_path / "a", _base())
    rb = write_results(tmp_path / "b", _base())
    assert compare_results(ra, rb) == []


def test_report_renders_the_comparison(tmp_path):
    ra, rb, flips, _ = _sets(tmp_path)
    page = build_report(ra, tmp_path / "out", compare_dir=rb).read_text()
    assert 'id="comparison"' in page
    rows = [html.unescape(x) for x in page.split('class="change change-verdict"')[1:]]
    assert len(rows) == len(flips)
    for claim, key in flips:
        assert any(f'data-claim="{claim}" data-cell="{key}"' in r for r in rows)
    assert "<b>3</b> verdict flips" in page
    flip = page.split('class="change change-verdict" data-claim="NTK-PD"')[1].split("</tr>")[0]
    assert "<td>asserted</td>" in flip


try:
    from tests.fixtures_records import synthetic_thresholds, threshold_entry, probe
except ImportError:  # tests/ not a package on sys.path
    from fixtures_records import synthetic_thresholds, threshold_entry, probe


def test_threshold_cells_compare_length_by_length(tmp_path):
    a = synthetic_thresholds()
    b = copy.deepcopy(a)
    unit = next(r for r in b if r["expect"] == "holds")
    # L = 8 moves to a disjoint interval; L = 4 moves inside its interval (not a change)
    unit["thresholds"][2] = threshold_entry(8, "found", 900.0, [760.0, 1070.0], probes=[probe(1070, 12, 0)])
    unit["thresholds"][1] = threshold_entry(4, "found", 100.0, [85.0, 118.0], probes=[probe(118, 12, 0)])
    norm = next(r for r in b if r["params"]["regime"] == "normalized")
    norm["thresholds"][3] = threshold_entry(16, "found", 1900.0, [1600.0, 2048.0], probes=[probe(2048, 12, 0)])
    norm["verdict"] = "holds"  # a flip carries its m*(L) changes
    changes = compare_results(write_results(tmp_path / "a", a), write_results(tmp_path / "b", b))
    assert [(c.kind, c.cell_key) for c in changes] == [("verdict", norm["cell_key"]), ("threshold", unit["cell_key"])]
    flip, moved = changes
    assert moved.describe() == "m*(L): L = 8: 380 [320, 452] → 900 [760, 1070]"
    assert abs(moved.size - __import__("math").log(900 / 380)) < 1e-12
    assert flip.describe() == "inconclusive → holds; m*(L): L = 16: > 2048 → 1900 [1600, 2048]"
    page = build_report(tmp_path / "a", tmp_path / "site", compare_dir=tmp_path / "b").read_text(encoding="utf-8")
    assert "L = 8: 380 [320, 452] → 900 [760, 1070]" in html.unescape(page)
    # the same records compare equal; a length searched in one run only is a change
    assert compare_results(tmp_path / "a", tmp_path / "a") == []
    c = copy.deepcopy(a)
    next(r for r in c if r["expect"] == "holds")["thresholds"].pop()
    (only,) = compare_results(write_results(tmp_path / "c", c), tmp_path / "a")
    assert only.kind == "threshold" and only.detail == "L = 16: only in B (1500 [1260, 1780])"
