"""Threshold widths, exponent fits, sentences and the tolerant loader of reports.analysis (synthetic records)."""

from __future__ import annotations

import copy
import json
import math

import pytest

from reports import analysis as an
try:
    from tests.fixtures_records import make_record, threshold_records, write_results
except ImportError:  # tests/ not a package on sys.path
    from fixtures_records import make_record, threshold_records, write_results

LS = (2, 4, 8, 16)
MS = tuple(2 ** k for k in range(5, 13))  # 32 .. 4096


def _norm(recs):
    return [an.normalize_record(r) for r in recs]


def test_threshold_and_exponent_known_answer():
    # unit: m* = 32 L (exponent 1); normalized: m* = 8 L^2 (exponent 2)
    m_star = {}
    for L in LS:
        m_star[("unit", L)] = 32 * L
        m_star[("normalized", L)] = 8 * L * L
    recs = _norm(threshold_records("X", LS, MS, ("unit", "normalized"), m_star))
    unit = an.threshold_widths(recs, "unit")
    norm = an.threshold_widths(recs, "normalized")
    assert {L: t.m_star for L, t in unit.items()} == {2: 64, 4: 128, 8: 256, 16: 512}
    assert {L: t.m_star for L, t in norm.items()} == {2: 32, 4: 128, 8: 512, 16: 2048}
    fu, fn = an.fit_threshold_exponent(unit), an.fit_threshold_exponent(norm)
    assert fu.a == pytest.approx(1.0, abs=1e-9) and fu.r2 == pytest.approx(1.0, abs=1e-12)
    assert fn.a == pytest.approx(2.0, abs=1e-9) and fn.n_points == 4
    assert math.exp(fn.b) == pytest.approx(8.0, rel=1e-9)
    # pooled: a point holds only where both regimes hold -> the larger threshold per L
    pooled = an.threshold_widths(recs, None)
    assert {L: t.m_star for L, t in pooled.items()} == {2: 64, 4: 128, 8: 512, 16: 2048}
    s = an.summarize_claim("X", recs)
    assert s.fits_by_regime["unit"].a == pytest.approx(1.0)
    assert s.fits_by_regime["normalized"].a == pytest.approx(2.0)


def test_threshold_needs_every_larger_width():
    verdicts = {32: "holds", 64: "fails", 128: "holds", 256: "inconclusive", 512: "holds", 1024: "holds"}
    recs = _norm([make_record("X", {"m": m, "L": 4, "regime": "unit"}, v, 0.5) for m, v in verdicts.items()])
    t = an.threshold_widths(recs)[4]
    assert t.m_star == 512
    assert t.failing_below() == [64]
    # a skipped cell at the largest width is not evaluated: ignored
    recs2 = recs + _norm([make_record("X", {"m": 2048, "L": 4, "regime": "unit"}, "skipped")])
    assert an.threshold_widths(recs2)[4].m_star == 512
    # an inconclusive cell at the largest width: threshold not reached
    recs3 = recs + _norm([make_record("X", {"m": 2048, "L": 4, "regime": "unit"}, "inconclusive")])
    assert an.threshold_widths(recs3)[4].m_star is None
    # two cells at one (regime, L, m) that disagree: the point does not hold
    recs4 = recs + _norm([make_record("X", {"m": 1024, "L": 4, "regime": "unit", "n": 64}, "fails", 2.0)])
    assert an.threshold_widths(recs4)[4].m_star is None


def test_exponent_needs_two_finite_points():
    m_star = {2: 64, 4: None, 8: None}
    recs = _norm(threshold_records("X", (2, 4, 8), MS, ("unit",), m_star))
    th = an.threshold_widths(recs)
    assert th[4].m_star is None and th[8].m_star is None
    fit = an.fit_threshold_exponent(th)
    assert not fit.ok and "not enough points" in fit.describe()
    # censored lengths stay out of the fit
    recs = _norm(threshold_records("X", (2, 4, 8), MS, ("unit",), {2: 64, 4: 256, 8: None}))
    fit = an.fit_threshold_exponent(an.threshold_widths(recs))
    assert fit.ok and fit.n_points == 2 and fit.a == pytest.approx(2.0)
    assert "exact through 2 points" in fit.describe()


def test_growth_fits_prefer_power_law_on_power_data():
    Ls = [2, 3, 4, 6, 8, 12]
    g = an.fit_growth(Ls, [16 * L ** 2 for L in Ls])
    assert g.power[0] == pytest.approx(2.0) and g.rss_power < 1e-20 < g.rss_exp
    g = an.fit_growth(Ls, [5 * math.exp(0.7 * L) for L in Ls])
    assert g.exp[0] == pytest.approx(0.7) and g.rss_exp < 1e-20 < g.rss_power


def _spec_example():
    return _norm(threshold_records("NTK-CONV", (2, 4, 8, 16), (128, 512, 2048), ("normalized", "unit", "unnormalized"),
                                   {2: 512, 4: 512, 8: 512, 16: 2048}))


def test_sentence_reads_the_records():
    s = an.claim_sentence(_spec_example())
    assert "holds for m >= 512 at L <= 8 in all regimes" in s
    assert "holds for m >= 2048 at L = 16" in s
    assert "fails at every L below m = 512" not in s
    assert "fails at L <= 8 below m = 512" in s
    assert "fails at L = 16 below m = 2048" in s


@pytest.mark.parametrize("target", [
    ("unit", 16, 2048, "fails"),       # moves the threshold at L = 16 out of reach
    ("unit", 2, 128, "holds"),         # below the threshold: only the counts move
    ("normalized", 8, 512, "inconclusive"),
])
def test_flipping_one_cell_changes_the_sentence(target):
    recs = _spec_example()
    before = an.claim_sentence(recs)
    flipped = copy.deepcopy(recs)
    reg, L, m, v = target
    hit = [r for r in flipped if r["params"] == {"m": m, "L": L, "regime": reg}]
    assert len(hit) == 1 and hit[0]["verdict"] != v
    hit[0]["verdict"] = v
    after = an.claim_sentence(flipped)
    assert after != before


def test_sentence_for_claims_without_width_axis():
    recs = _norm([make_record("NTK-PD", {"L": L, "n": n, "regime": g}, "holds", 0.3)
                  for L in (2, 4) for n in (8, 32) for g in ("unit", "unnormalized")])
    s = an.claim_sentence(recs)
    assert "holds in 8 of 8 cells" in s and "every evaluated cell" in s
    recs[3]["verdict"] = "fails"
    s2 = an.claim_sentence(recs)
    assert s2 != s and "fails at" in s2 and "holds in 7 of 8" in s2


def test_control_status():
    main = [make_record("X", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5)]
    ctrl_fail = make_record("X", {"m": 4, "L": 2, "regime": "unit", "control": True}, "fails", 3.0)
    ctrl_hold = make_record("X", {"m": 8, "L": 2, "regime": "unit", "control": True}, "holds", 0.3)
    assert an.control_status(_norm(main)) == "n/a"
    assert an.control_status(_norm(main + [ctrl_fail])) == "yes"
    assert an.control_status(_norm(main + [ctrl_fail, ctrl_hold])) == "no"
    s = an.claim_sentence(_norm(main + [ctrl_fail, ctrl_hold]))
    assert "does NOT fail" in s
    counts = an.summarize_claim("X", _norm(main + [ctrl_fail, ctrl_hold]))
    assert counts.counts["holds"] == 1 and counts.control_counts == {
        "holds": 1, "fails": 1, "inconclusive": 0, "skipped": 0, "error": 0}


def test_loader_is_tolerant(tmp_path):
    recs = [make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "holds", float("nan"))]
    root = write_results(tmp_path / "results", recs)
    assert json.loads((root / "FWD" / f"{recs[0]['cell_key']}.json").read_text())["margin"] is None
    (root / "FWD" / "broken.json").write_text("{not json")
    (root / "BWD").mkdir()
    (root / "BWD" / "minimal.json").write_text(json.dumps({"verdict": "weird", "margin": "x"}))
    # the OUT folder (holding results/) is accepted as well
    rs = an.load_results(tmp_path)
    assert rs.run is None
    assert len(rs.records) == 2 and any("broken.json" in p for p in rs.problems)
    by = {r["claim"]: r for r in rs.records}
    assert math.isnan(by["FWD"]["margin"])
    assert by["BWD"]["verdict"] == "error" and by["BWD"]["cell_key"] == "minimal"
    assert by["BWD"]["params"] == {} and math.isnan(by["BWD"]["margin"])
