"""The HTML report built from synthetic schema-2 records: content, links, size, no external URLs, files
that could not be read, per-cell tests and expectations, controls, merged shards, the kill matrix,
figures brought by the claims, escaping, building without torch, and the one atomic writer."""

from __future__ import annotations

import html
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from claims.merge import merged_view
from claims.store import WriteError
from reports.build import build_report

try:
    from tests.fixtures_records import make_record, run_meta, synthetic_audit, synthetic_quick, write_results
except ImportError:  # tests/ not a package on sys.path
    from fixtures_records import make_record, run_meta, synthetic_audit, synthetic_quick, write_results

REPO = pathlib.Path(__file__).resolve().parents[1]

EXTERNAL = re.compile(r"""(?:\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*|url\(\s*["']?\s*|@import\s+["']?)"""
                      r"""(?:https?:)?//""", re.I)


def external_refs(page: str) -> list[str]:
    """Resource references to other hosts (http://, https:// or protocol-relative //) in src/href/url()."""
    return [page[m.start():m.end() + 40] for m in EXTERNAL.finditer(page)]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.rows, self.figures, self.links, self.inputs = [], [], [], [], []
        self.row_attrs, self.invalid, self.scripts = {}, [], 0
        self.tags, self.attrs = set(), set()
        self._in_invalid = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)
        cls = (a.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        if tag == "section" and "claim" in cls:
            self.sections.append(a.get("data-claim"))
        if tag == "tr" and "claim-row" in cls:
            self.rows.append(a.get("data-claim"))
            self.row_attrs[a.get("data-claim")] = a
        if tag == "tr" and "invalid-file" in cls:
            self._in_invalid = []
        if tag == "figure" and "fig" in cls:
            self.figures.append(a.get("data-fig"))
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "input" and a.get("aria-label") == "reproduce command":
            self.inputs.append(a.get("value"))

    def handle_data(self, data):
        if self._in_invalid is not None:
            self._in_invalid.append(data)

    def handle_endtag(self, tag):
        if tag == "tr" and self._in_invalid is not None:
            self.invalid.append("".join(self._in_invalid))
            self._in_invalid = None


def parse(page: pathlib.Path | str) -> _Collect:
    p = _Collect()
    p.feed(page.read_text(encoding="utf-8") if isinstance(page, pathlib.Path) else page)
    return p


def section(text: str, claim: str) -> str:
    """The HTML of one claim's section."""
    start = text.index(f'<section class="claim" id="claim-{claim}"')
    return text[start:text.index("</section>", start)]


def overview_row(text: str, claim: str) -> str:
    start = text.index(f'<tr class="claim-row" data-claim="{claim}"')
    return text[start:text.index("</tr>", start)]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    base = tmp_path_factory.mktemp("quick")
    recs = synthetic_quick()
    root = write_results(base / "run" / "results", recs, run_meta(records=recs))
    page = build_report(root, base / "site")
    return recs, root, page


def test_external_url_checker_can_fail():
    assert external_refs('<img src="https://x.org/a.png">')
    assert external_refs("<style>body{background:url( 'http://x/y.png')}</style>")
    assert external_refs('<script src="//cdn.example/x.js"></script>')
    assert not external_refs('<a href="#claim-FWD">x</a><a href="results.json">r</a>')


@pytest.mark.slow
def test_quick_report_structure(quick_report):
    recs, root, page = quick_report
    text = page.read_text(encoding="utf-8")
    claims = sorted({r["claim"] for r in recs})
    p = parse(text)
    assert sorted(p.sections) == claims
    assert p.rows == [c for c in run_meta(records=recs)["claims"]]  # the run's claim order
    # every claim has its margin figure; the built-in claims' own figures are there
    figs = set(p.figures)
    for c in claims:
        assert f"{c}/margin" in figs
    for key in ("FWD/layers", "BWD/layers", "NTK-CONV/ntk_conv", "NTK-PD/lambda", "NTK-PD-M/lambda", "PERT/pert",
                "LAZY/lazy", "GEN-ADD/gen_add", "CPLX-ADD/cplx_add", "CPLX-NVAR/cplx_nvar", "RAND-LABEL/rand_label"):
        assert key in figs
    assert text.count("<svg") == len(p.figures)
    # titles come from the records
    assert "Forward stability (synthetic)" in text and "Concept vs random labels (synthetic)" in text
    # sentence, thresholds, provenance, verdict rule, no disagreement in this run
    assert "holds for m >= 512" in html.unescape(text)
    assert "synthetic-host" in text and "0123abc" in text and 'id="verdict-rule"' in text
    assert "Profile: quick" in text
    assert "✓ no disagreements" in text and 'id="could-not-be-read"' not in text
    # exponent cells carry the standard error of the fit
    exps = [html.unescape(x) for x in re.findall(r'<td class="small exponent">(.*?)</td>', text)]
    assert any(re.fullmatch(r"a = -?\d+\.\d+ ± \d+\.\d+ \(\d+ points, R² = \d\.\d+\)", e) for e in exps), exps


def test_verdict_rule_comes_from_claims_verdict(tmp_path, monkeypatch):
    from claims import verdict

    monkeypatch.setattr(verdict, "RULE", "THE-ONE-RULE <sequential>")
    root = write_results(tmp_path / "results", [make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5)])
    text = build_report(root, tmp_path / "site").read_text()
    assert text.count("THE-ONE-RULE &lt;sequential&gt;") == 1


def test_quick_report_is_self_contained_and_small(quick_report):
    _, root, page = quick_report
    text = page.read_text(encoding="utf-8")
    assert external_refs(text) == []
    assert "http://" not in text and "https://" not in text
    size = page.stat().st_size
    assert size < 3_000_000, size
    assert not [f for f in page.parent.iterdir() if f.name.startswith(".tmp") or f.name.endswith(".tmp")]


def test_links_to_raw_records_resolve(quick_report):
    recs, root, page = quick_report
    p = parse(page)
    local = [h for h in p.links if not h.startswith("#")]
    assert "results.json" in local
    record_links = [h for h in local if h.endswith(".json") and h != "results.json"]
    assert len(set(record_links)) == len(recs)
    for h in set(local):
        assert (page.parent / h).exists(), h
    bundle = json.loads((page.parent / "results.json").read_text())
    assert len(bundle["records"]) == len(recs) and bundle["run"]["profile"] == "quick"
    assert bundle["invalid"] == [] and bundle["schema"] == 2


def test_reproduce_commands_round_trip_through_the_shell(quick_report):
    recs, _, page = quick_report
    p = parse(page)
    failing = [r for r in recs if r["verdict"] == "fails" and not r["control"]]
    assert len(p.inputs) == len(failing) > 0
    by_cell = {(r["claim"], json.dumps(r["params"], sort_keys=True)): r for r in failing}
    for cmd in p.inputs:
        argv = shlex.split(cmd)
        assert argv[:2] == ["rnnclaims", "reproduce"] and argv[3] == "--recipe" and argv[5] == "--cell"
        cell = json.loads(argv[6])
        rec = by_cell[(argv[2], json.dumps(cell, sort_keys=True))]
        assert json.loads(argv[4]) == rec["failing_recipe"]
        assert "it's quoted" in argv[4]


def test_each_cell_shows_its_test_examples_error_rates_and_why_it_stopped(tmp_path):
    recs = [make_record("FWD", {"m": 256, "L": 2, "regime": "unit"}, "holds", 0.5, expect="holds", dtype="float32"),
            make_record("FWD", {"m": 64, "L": 4, "regime": "unit"}, "inconclusive", 1.05),
            make_record("FWD", {"m": 64, "L": 8, "regime": "unit", "control": True}, "fails", 4.0)]
    text = build_report(write_results(tmp_path / "r", recs), tmp_path / "site").read_text()
    raw = section(text, "FWD")
    sec = html.unescape(raw)
    # the claim's test parameters, once, in words
    assert ("SPRT: H0 p ≤ 0.1 against H1 p ≥ 0.3, α = 0.05, β = 0.05, budget 40 examples per cell "
            "(holds after 12 passing examples in a row, fails after 3 failing ones in a row, stops inconclusive "
            "after the first 12 if all of them are inconclusive)") in sec
    rows = re.findall(r'<tr class="cell-record[^"]*" data-cell="([^"]+)">(.*?)</tr>', raw, re.S)
    assert len(rows) == 3
    by = {key: html.unescape(re.sub(r"<[^>]+>", " ", row)) for key, row in rows}
    held = by[recs[0]["cell_key"]]
    assert "asserted: must hold" in held and "SPRT δ=0.1 δ₁=0.3 α=0.05 β=0.05" in held
    assert "12 / 40" in held and "float32" in held and "H0 accepted (p <= 0.1): 0 of 12 examples failed" in held
    assert "[0, 0.22]" in held  # one-sided 95% Clopper-Pearson upper bound after 0 of 12
    inc = by[recs[1]["cell_key"]]
    assert "finding (not asserted)" in inc and "40 / 40" in inc and "budget: 40 examples drawn" in inc
    ctrl = by[recs[2]["cell_key"]]
    assert "negative control: must fail" in ctrl and "3 / 40" in ctrl
    # the phase diagram's cells carry the same on hover
    assert 'stopped: budget: 40 examples drawn' in sec


def test_not_asserted_because(tmp_path):
    why = "CPU widths stop at m = 2048; the error reaches 0.1 from m ~ 8192 (docs/SPEC_NOTES.md)"
    recs = [make_record("NTK-CONV", {"m": 2048, "L": 4, "regime": "unit"}, "fails", 2.0, not_asserted=why),
            make_record("NTK-CONV", {"L": 4, "regime": "unit", "kind": "slope"}, "holds", 0.8, expect="holds")]
    text = build_report(write_results(tmp_path / "r", recs), tmp_path / "site").read_text()
    sec = html.unescape(section(text, "NTK-CONV"))
    assert f"not asserted, because {why}" in sec
    record_row = re.search(r'<tr class="cell-record[^"]*" data-cell="L=4__m=2048__regime=unit">(.*?)</tr>',
                           section(text, "NTK-CONV"), re.S).group(1)
    assert f"<td>not asserted, because {html.escape(why)}</td>" in record_row
    rows = re.findall(r'<tr class="not-asserted">(.*?)</tr>', section(text, "NTK-CONV"), re.S)
    assert len(rows) == 1 and 'data-cell="L=4__m=2048__regime=unit"' in rows[0] and "kind=slope" not in rows[0]
    row = html.unescape(overview_row(text, "NTK-CONV"))
    assert "1 not asserted" in row
    assert parse(text).row_attrs["NTK-CONV"]["data-disagreements"] == "0"  # not asserted: no disagreement


def test_inconclusive_control_is_a_control_that_did_not_work(tmp_path):
    main = make_record("CPLX-ADD", {"regime": "unit", "f": "z2"}, "holds", 0.6, expect="holds")
    ctrl = make_record("CPLX-ADD", {"regime": "unit", "f": "random", "control": True}, "inconclusive")
    text = build_report(write_results(tmp_path / "a", [main, ctrl]), tmp_path / "oa").read_text()
    row = overview_row(text, "CPLX-ADD")
    assert '<span class="bad">✗ does not work</span>' in row and "fails as required" not in row
    assert parse(text).row_attrs["CPLX-ADD"]["data-disagreements"] == "1"
    sec = section(text, "CPLX-ADD")
    assert re.search(r'<tr class="control-cell" data-cell="[^"]+" data-status="disagrees">', sec)
    assert '<span class="bad">✗ control did not work (inconclusive)</span>' in sec
    assert "fails as required" not in html.unescape(section(text, "CPLX-ADD"))
    assert "✗ 1 disagreement" in text
    # the same control ending fails works
    ok = make_record("CPLX-ADD", {"regime": "unit", "f": "random", "control": True}, "fails", 3.0)
    good = build_report(write_results(tmp_path / "b", [main, ok]), tmp_path / "ob").read_text()
    assert '<span class="good">✓ fails as required</span>' in overview_row(good, "CPLX-ADD")
    assert parse(good).row_attrs["CPLX-ADD"]["data-disagreements"] == "0"


def test_must_hold_cell_that_does_not_hold_is_a_disagreement(tmp_path):
    recs = [make_record("FWD", {"m": 256, "L": 2, "regime": "unit"}, "fails", 2.0, expect="holds"),
            make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "fails", 2.0),  # a finding
            make_record("FWD", {"m": 256, "L": 4, "regime": "unit"}, "skipped", expect="holds")]
    text = build_report(write_results(tmp_path / "r", recs), tmp_path / "site").read_text()
    assert parse(text).row_attrs["FWD"]["data-disagreements"] == "1"
    sec = section(text, "FWD")
    dis = re.findall(r'<tr class="disagreement" data-cell="([^"]+)">', sec)
    assert dis == [recs[0]["cell_key"]]
    assert "disagreement: must hold, fails" in sec
    assert "1 asserted cell does not hold" in html.unescape(overview_row(text, "FWD"))


def test_could_not_be_read_box(tmp_path):
    good = [make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5),
            make_record("NTK-PD", {"L": 2, "n": 8, "regime": "unit"}, "holds", 0.3)]
    root = write_results(tmp_path / "results", good, run_meta(records=good))
    (root / "FWD" / "garbage.json").write_text("[1, 2")
    old = dict(make_record("FWD", {"m": 128, "L": 2, "regime": "unit"}, "holds", 0.5), schema=1)
    (root / "FWD" / f"{old['cell_key']}.json").write_text(json.dumps(old))
    bogus = dict(make_record("FWD", {"m": 256, "L": 2, "regime": "unit"}, "holds", 0.5), verdict="totally-bogus")
    (root / "FWD" / f"{bogus['cell_key']}.json").write_text(json.dumps(bogus))
    (root / "NTK-PD" / f"{good[0]['cell_key']}.json").write_text(json.dumps(good[0]))  # an FWD record under NTK-PD
    page = build_report(root, tmp_path / "site")
    text = page.read_text()
    p = parse(text)
    box = {re.sub(r"\s+", " ", row).strip() for row in p.invalid}
    assert len(box) == 4, box
    expected = {"garbage.json": "unreadable", f"{old['cell_key']}.json": "schema 1",
                f"{bogus['cell_key']}.json": "verdict 'totally-bogus'",
                f"NTK-PD/{good[0]['cell_key']}.json": "it is the record of FWD/"}
    for name, why in expected.items():
        assert any(name in row and why in row for row in box), (name, why, box)
    # never counted: one FWD and one NTK-PD cell
    assert p.sections == ["FWD", "NTK-PD"]
    assert "2 cell records" in text
    fwd = re.sub(r"<[^>]+>", " ", overview_row(text, "FWD")).split()
    assert fwd.count("1") >= 1 and "4" not in fwd
    bundle = json.loads((page.parent / "results.json").read_text())
    assert len(bundle["records"]) == 2 and len(bundle["invalid"]) == 4


def test_unknown_claim_ids_are_not_read_when_the_registry_knows_the_claims(tmp_path):
    pytest.importorskip("torch")
    recs = [make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5),
            make_record("ODD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5)]
    text = build_report(write_results(tmp_path / "r", recs), tmp_path / "site").read_text()
    assert parse(text).sections == ["FWD"]
    assert any("unknown claim id 'ODD'" in row for row in parse(text).invalid)


def test_report_survives_missing_keys(tmp_path):
    recs = [make_record(c, {"m": 64, "L": 2, "regime": "unit"}, "holds", float("nan"))
            for c in ("NTK-CONV", "PERT", "LAZY", "CPLX-ADD", "CPLX-NVAR", "GEN-ADD", "RAND-LABEL", "NTK-PD")]
    recs.append(make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "fails", 2.0))
    recs[-1]["failing_recipe"] = None
    recs[0]["series"] = [{"m": "not a number", "error": None}]
    root = write_results(tmp_path / "results", recs)  # no _run.json
    page = build_report(root, tmp_path / "site").read_text()
    assert "figure omitted" in page
    assert "No _run.json" in page
    assert "No failing recipe stored" in page
    assert sorted(parse(page).rows) == sorted({r["claim"] for r in recs})


def test_merged_two_shard_view(tmp_path):
    one = [make_record("FWD", {"m": m, "L": 2, "regime": "unit"}, "holds", 0.5, duration_s=1.0) for m in (64, 256)]
    two = [make_record("NTK-PD", {"L": L, "n": 8, "regime": "unit"}, "holds", 0.3, expect="holds") for L in (2, 4)]
    claims = ["FWD", "NTK-PD"]
    a = write_results(tmp_path / "shard1" / "results", one, run_meta(records=one, shard=[1, 2], claims=claims,
                                                                      wall_s=111.0, host="node-a"))
    b = write_results(tmp_path / "shard2" / "results", two, run_meta(records=two, shard=[2, 2], claims=claims,
                                                                      wall_s=222.0, host="node-b"))
    view = merged_view([a, b])
    page = build_report(view, tmp_path / "site")
    text = page.read_text()
    p = parse(text)
    assert p.sections == ["FWD", "NTK-PD"] and "4 cell records" in text
    shards = re.findall(r'<tr class="shard-row">(.*?)</tr>', text, re.S)
    assert len(shards) == 2
    assert str(a) in shards[0] and "1/2" in shards[0] and "111" in shards[0]
    assert str(b) in shards[1] and "2/2" in shards[1] and "222" in shards[1]
    assert "Merged from 2 folders (rnnclaims merge)" in text and "✓ the shards cover the whole run." in text
    workers = re.findall(r'<tr class="worker-row">(.*?)</tr>', text, re.S)
    assert any("node-a" in w for w in workers) and any("node-b" in w for w in workers)
    assert "pool, 2 workers" in text
    for h in {h for h in p.links if h.endswith(".json") and h != "results.json"}:
        assert (page.parent / h).is_file(), h
    for claim, shard in (("FWD", "shard1"), ("NTK-PD", "shard2")):  # each record links to its shard's file
        links = re.findall(r'<tr class="cell-record[^"]*" data-cell="[^"]+"><td><a href="([^"]+)"', section(text, claim))
        assert len(links) == 2 and all(f"{shard}/results/{claim}/" in h for h in links), links
    # shards 1/3 and 3/3 of a three-way split: the page says which one is missing
    c = write_results(tmp_path / "s3" / "results", two, run_meta(records=two, shard=[3, 3], claims=claims))
    d = write_results(tmp_path / "s1" / "results", one, run_meta(records=one, shard=[1, 3], claims=claims))
    text = build_report(merged_view([d, c]), tmp_path / "site2").read_text()
    assert "✗ the shards do not cover the run (missing: 2/3)" in text
    assert 'id="incomplete-run"' in text


def test_run_provenance_workers_executor_and_an_incomplete_run(tmp_path):
    recs = [make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5)]
    run = run_meta(records=recs, complete=False)
    run["cells_total"] = 5
    text = build_report(write_results(tmp_path / "r", recs, run), tmp_path / "site").read_text()
    assert 'id="incomplete-run"' in text and "1 cells on disk of 5" in text
    assert len(re.findall(r'<tr class="worker-row">', text)) == 2
    assert '<dd class="executor">pool, 2 workers</dd>' in text
    complete = build_report(write_results(tmp_path / "s", recs, run_meta(records=recs)), tmp_path / "o2").read_text()
    assert 'id="incomplete-run"' not in complete


@pytest.mark.slow
def test_kill_matrix_section(tmp_path):
    recs = [make_record(c, {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5) for c in ("FWD", "BWD", "NTK-PD")]
    root = write_results(tmp_path / "r", recs)
    audit = synthetic_audit()
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(audit))
    for source, out in ((audit, "site-dict"), (path, "site-path"), (str(path), "site-str")):
        text = build_report(root, tmp_path / out, audit=source).read_text()
        assert 'id="kill-matrix"' in text and 'href="#kill-matrix"' in text
        cells = re.findall(r'<td class="k k-(\w+)" data-claim="([^"]+)" data-state="(\w+)" title="([^"]*)">', text)
        assert len(cells) == 3 * 3
        states = {(c, s) for _, c, s, _ in cells}
        assert ("FWD", "caught") in states and ("NTK-PD", "error") in states
        rows = re.findall(r'<tr class="fault-row" data-fault="([^"]+)" data-caught="(\w+)">', text)
        assert rows == [("init-w-var", "yes"), ("kernel-const", "yes"), ("solver-ridge", "no")]
        # the verdict changes that caught a fault are on hover and in the fault's details
        fwd = [html.unescape(t) for cls, c, s, t in cells if c == "FWD" and s == "caught"][0]
        assert "L=2__m=256__regime=unit: expect holds → fails (H1 accepted (p >= 0.3): 3 of 3 examples failed)" in fwd
        assert len(re.findall(r'<tr class="fault-change">', text)) == 3
        assert '<b class="mutation-score">67%</b>' in text and "2 of 3 seeded faults caught" in text
        assert "invisible at this profile: the ridge moves lambda_min" in html.unescape(text)
        assert "✓ 0 false alarms" in text and len(re.findall(r'<tr class="clean-run">', text)) == 2
    text = build_report(root, tmp_path / "alarm", audit=synthetic_audit(false_alarm=True)).read_text()
    assert "✗ 1 false alarm" in text
    # no audit: no section; an audit that cannot be used: the could-not-be-read box says why
    assert 'id="kill-matrix"' not in build_report(root, tmp_path / "none").read_text()
    (tmp_path / "bad.json").write_text(json.dumps({"schema": 2, "kind": "records"}))
    text = build_report(root, tmp_path / "bad", audit=tmp_path / "bad.json").read_text()
    assert "The audit could not be read" in text
    assert any("bad.json" in row and "kind 'records' is not 'audit'" in row for row in parse(text).invalid)


@pytest.mark.slow
def test_every_string_from_records_run_and_audit_is_escaped(tmp_path):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    recs = [make_record("CPLX-ADD", {"regime": evil, "f": evil, "target": evil}, "fails", 2.0, title=evil,
                        reason=evil, expect="holds",
                        series=[{"L": L, "n_eps": 16 * L * L} for L in (2, 4, 8)],
                        measured={evil: {"mean": 1.0}}),
            make_record("CPLX-ADD", {"regime": "unit", "f": "z2"}, "holds", 0.5, not_asserted=evil),
            make_record("CPLX-ADD", {"regime": "unit", "f": "z2", "control": True}, "inconclusive", reason=evil)]
    recs[0]["failing_recipe"] = {"note": evil}
    recs[0]["worker"]["host"] = evil
    run = run_meta(records=recs, host=evil)
    run["executor"] = {"kind": "dask", "workers": 2, "address": evil}
    run["custom"] = evil
    root = write_results(tmp_path / "r", recs, run)
    (root / "CPLX-ADD" / "x.json").write_text(json.dumps({"claim": evil}))  # its reason quotes the path
    audit = synthetic_audit(("CPLX-ADD", "FWD", evil))
    audit["faults"][0]["description"] = evil
    audit["faults"][0]["changes"][0]["reason"] = evil
    audit["faults"][0]["id"] = evil
    audit["matrix"][evil] = audit["matrix"].pop("init-w-var")
    page = build_report(root, tmp_path / "site", audit=audit)
    text = page.read_text()
    p = parse(text)
    assert "img" not in p.tags and not [a for a in p.attrs if a.startswith("on")]
    assert p.scripts == 2 and "<script>alert" not in text  # the page's own two scripts, nothing from the data
    assert "&lt;script&gt;alert(&#34;x&#34;)" in text  # in the HTML: escaped by the template engine
    assert '>&lt;script&gt;alert("x")&lt;/script&gt;' in text  # in an SVG legend: escaped by matplotlib
    # the same through the comparison of two runs
    other = write_results(tmp_path / "b", recs[1:])
    text = build_report(root, tmp_path / "cmp", compare_dir=other).read_text()
    p = parse(text)
    assert 'id="comparison"' in text and "img" not in p.tags and p.scripts == 2


@pytest.mark.slow
def test_figures_come_from_the_claim(tmp_path):
    from claims.base import Claim
    from claims.catalogue._ratio import layer_figure
    from claims.registry import Registry
    from reports import figures

    def toy_figure(claim_id, records, profile):
        fig, (ax,) = figures.new_axes()
        ax.plot([1, 2], [len(records), len(records) + 1])
        return figures.Figure("toy", f"toy figure of {claim_id}", figures.to_svg(fig), f"{len(records)} records")

    def claim(cid, figs):
        return Claim(id=cid, title=f"{cid} title", operationalizes="op", statement="st", pass_rule="pr",
                     negative_control="nc", expected="ex", axes=("L",), declared={}, cells=lambda p: [],
                     strategy=lambda c, p: None, evaluate=lambda c, r, x: None, figures=figs)

    reg = Registry("tests:TOY")
    reg.register(claim("TOY-FIG", (toy_figure, "claims.catalogue.ntk_pd:figure",
                                   "reports.figures:no_such_figure", "not a spec")))
    reg.register(claim("TOY-PLAIN", ()))
    reg.register(claim("FWD", (layer_figure("||delta_l||^2 / m", 0.25, 1.0),)))  # its own figures win
    lam = {"lambda_min": {"mean": 0.1, "min": 0.1, "max": 0.1}}
    recs = [make_record("TOY-FIG", {"L": L, "n": 8, "regime": "unit"}, "holds", 0.5, measured=lam) for L in (2, 4)]
    recs += [make_record("TOY-PLAIN", {"L": L, "n": 8, "regime": "unit"}, "holds", 0.5) for L in (2, 4)]
    recs += [make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5,
                         series=[{"l": 1, "ratio": 0.5}, {"l": 2, "ratio": 0.6}])]
    text = build_report(write_results(tmp_path / "r", recs), tmp_path / "site", registry=reg).read_text()
    p = parse(text)
    assert [f for f in p.figures if f.startswith("TOY-FIG/")] == ["TOY-FIG/toy", "TOY-FIG/lambda", "TOY-FIG/margin"]
    assert [f for f in p.figures if f.startswith("TOY-PLAIN/")] == ["TOY-PLAIN/margin"]
    assert "toy figure of TOY-FIG" in text
    assert "reports.figures has no &#39;no_such_figure&#39;" in text
    assert "&#39;not a spec&#39; is not of the form &#39;module:function&#39;" in text
    assert "||delta_l||^2 / m across layers" in text  # FWD drew the figure its Claim names, not the table's
    # the title from the records (each carries its claim's), the other prose from the registry's Claim
    assert "TOY-FIG (synthetic)" in text and "TOY-FIG title" not in text
    assert "<dt>operationalizes</dt><dd>op</dd>" in section(text, "TOY-FIG")


def test_a_claims_figure_reads_the_claims_own_constants(monkeypatch):
    """NTK-CONV's figure draws its pass bound and states its slope rule from the claim module's TOL and
    SLOPE_MAX: change them and the figure follows."""
    from claims.catalogue import ntk_conv
    from reports import figures
    from reports.analysis import normalize_record

    recs = [normalize_record(make_record("NTK-CONV", {"m": m, "L": 2, "n": 4, "regime": "unit"}, "holds", 0.5,
                                         measured={"error": {"mean": 0.2 / m ** 0.5, "min": 0.0, "max": 1.0}}))
            for m in (64, 256, 1024)]
    figs, notes = figures.claim_figures("NTK-CONV", recs, "smoke", ntk_conv.CLAIM)
    fig = next(f for f in figs if f.key == "ntk_conv")  # drawn through the report's path
    assert f"slope <= {ntk_conv.SLOPE_MAX:g} and error <= {ntk_conv.TOL:g}" in fig.caption
    monkeypatch.setattr(ntk_conv, "SLOPE_MAX", -0.4)
    monkeypatch.setattr(ntk_conv, "TOL", 0.05)
    fig = ntk_conv.figure("NTK-CONV", recs, "smoke")
    assert "slope <= -0.4 and error <= 0.05" in fig.caption and "pass bound 0.05" in fig.svg


def test_the_layer_figure_draws_the_controls_with_the_claims_bounds():
    """FWD's per-layer figure draws a control cell's rows (the grid has no other per-layer rows since its
    finite-width cells became threshold searches) against the claim's bounds 1/c and c."""
    from claims.catalogue import _ratio, fwd
    from reports import figures
    from reports.analysis import normalize_record

    rows = [{"l": l, "stat": stat, "ratio": v * 2.0 ** l} for l in (1, 2, 3, 4) for stat, v in (("min", 0.4), ("max", 0.6))]
    control = normalize_record(make_record("FWD", {"m": 2048, "L": 4, "regime": "unit", "w_var": 4, "control": True},
                                           "fails", 3.0, series=rows))
    figs, notes = figures.claim_figures("FWD", [control], "smoke", fwd.CLAIM)
    layers = next(f for f in figs if f.key == "layers")
    low, high = 1.0 / _ratio.C_DECLARED, _ratio.C_DECLARED
    assert f"declared bounds {low:g} and {high:g}" in layers.caption
    assert "control W ~ N(0, 4/m), L=4, m=2048" in layers.svg


def test_every_builtin_figure_entry_resolves_and_figure_specs_reads_the_claim():
    from types import SimpleNamespace

    from claims.registry import resolve_registry
    from reports import figures

    reg = resolve_registry("claims.catalogue")
    with_figures = {c.id for c in reg.claims() if c.figures}
    # every built-in claim with a measured series draws its own figure (GRAD, NTK-ID, GEN-KRR: generic only)
    assert with_figures == {"FWD", "BWD", "NTK-CONV", "NTK-PD", "NTK-PD-M", "PERT", "LAZY", "GEN-ADD",
                            "CPLX-ADD", "CPLX-NVAR", "RAND-LABEL"}
    for claim in reg.claims():
        for spec in claim.figures:
            assert callable(figures.resolve_figure(spec)), (claim.id, spec)
    assert figures.figure_specs("FWD", SimpleNamespace(figures=())) == ()  # no table behind the Claim
    assert figures.figure_specs("FWD", SimpleNamespace(figures=("m:f",))) == ("m:f",)
    assert figures.figure_specs("FWD", None) == ()  # no registry: generic figures only


_NO_TORCH = r"""
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed (blocked by the test)")
sys.meta_path.insert(0, _NoTorch())
sys.path[:0] = [{repo!r}, {tests!r}]
from fixtures_records import make_record, run_meta, write_results
from reports.build import build_report
recs = [make_record("FWD", {{"m": 64, "L": 2, "regime": "unit"}}, "holds", 0.5,
                    series=[{{"l": 1, "ratio": 0.9}}]),
        make_record("NTK-PD", {{"L": 2, "n": 8, "regime": "unit"}}, "holds", 0.3, expect="holds",
                    measured={{"lambda_min": {{"mean": 0.1, "min": 0.1}}}})]
root = write_results({out!r} + "/results", recs, run_meta(records=recs))
page = build_report(root, {out!r} + "/site")
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
print(page)
"""


@pytest.mark.slow
def test_report_builds_without_torch(tmp_path):
    code = _NO_TORCH.format(repo=str(REPO), tests=str(REPO / "tests"), out=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = pathlib.Path(proc.stdout.strip()).read_text()
    assert "The claims registry could not be imported" in text
    p = parse(text)
    assert p.sections == ["FWD", "NTK-PD"]
    assert sorted(p.figures) == ["FWD/margin", "NTK-PD/margin"]  # generic figures only
    assert "Forward stability (synthetic)" in text  # the title from the records


def test_stale_temporary_files_are_removed_and_live_ones_kept(tmp_path):
    out = tmp_path / "site"
    out.mkdir()
    dead = out / ".tmp-999999999-index.html.abc123"  # a build killed mid-write (no such PID)
    dead.write_text("torn")
    live = out / f".tmp-{os.getppid()}-index.html.def456"  # a writer that is still running
    live.write_text("in flight")
    root = write_results(tmp_path / "r", [make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5)])
    build_report(root, out)
    assert not dead.exists() and live.exists()
    assert sorted(f.name for f in out.iterdir() if not f.name.startswith(".tmp-")) == ["index.html", "results.json"]


def test_a_failed_write_names_the_path(tmp_path):
    root = write_results(tmp_path / "r", [make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "holds", 0.5)])
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WriteError, match=re.escape(str(blocker / "site"))):
        build_report(root, blocker / "site")


def test_empty_results_folder(tmp_path):
    (tmp_path / "results").mkdir()
    page = build_report(tmp_path / "results", tmp_path / "site").read_text()
    assert "No records found" in page
