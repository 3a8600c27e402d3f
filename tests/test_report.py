"""The HTML report built from synthetic records: content, links, size, no external URLs, robustness."""

from __future__ import annotations

import html
import json
import pathlib
import re
import shlex
from html.parser import HTMLParser

import pytest

from reports.build import build_report

try:
    from tests.fixtures_records import make_record, run_meta, synthetic_quick, write_results
except ImportError:  # tests/ not a package on sys.path
    from fixtures_records import make_record, run_meta, synthetic_quick, write_results

EXTERNAL = re.compile(r"""(?:\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*|url\(\s*["']?\s*|@import\s+["']?)"""
                      r"""(?:https?:)?//""", re.I)


def external_refs(page: str) -> list[str]:
    """Resource references to other hosts (http://, https:// or protocol-relative //) in src/href/url()."""
    return [page[m.start():m.end() + 40] for m in EXTERNAL.finditer(page)]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.rows, self.figures, self.links, self.inputs = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "section" and "claim" in cls:
            self.sections.append(a.get("data-claim"))
        if tag == "tr" and "claim-row" in cls:
            self.rows.append(a.get("data-claim"))
        if tag == "figure" and "fig" in cls:
            self.figures.append(a.get("data-fig"))
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "input" and a.get("aria-label") == "reproduce command":
            self.inputs.append(a.get("value"))


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    base = tmp_path_factory.mktemp("quick")
    recs = synthetic_quick()
    root = write_results(base / "run" / "results", recs, run_meta())
    page = build_report(root, base / "site")
    return recs, root, page


def test_external_url_checker_can_fail():
    assert external_refs('<img src="https://x.org/a.png">')
    assert external_refs("<style>body{background:url( 'http://x/y.png')}</style>")
    assert external_refs('<script src="//cdn.example/x.js"></script>')
    assert not external_refs('<a href="#claim-FWD">x</a><a href="results.json">r</a>')


def test_quick_report_structure(quick_report):
    recs, root, page = quick_report
    text = page.read_text(encoding="utf-8")
    claims = sorted({r["claim"] for r in recs})
    p = _Collect()
    p.feed(text)
    assert sorted(p.sections) == claims
    assert sorted(p.rows) == claims
    # every claim has at least its margin figure; claim-specific figures present
    figs = set(p.figures)
    for c in claims:
        assert f"{c}/margin" in figs
    for key in ("NTK-CONV/ntk_conv", "NTK-PD/lambda", "NTK-PD-M/lambda", "PERT/pert", "LAZY/lazy",
                "GEN-ADD/gen_add", "CPLX-ADD/cplx_add", "CPLX-NVAR/cplx_nvar", "RAND-LABEL/rand_label"):
        assert key in figs
    assert text.count("<svg") == len(p.figures)
    # sentence, thresholds, provenance, verdict rule
    assert "holds for m &gt;= 512" in text or "holds for m >= 512" in html.unescape(text)
    assert "cpu (synthetic)" in text and "0123abc" in text and "Verdict rule" in text
    assert "Profile: quick" in text


def test_quick_report_is_self_contained_and_small(quick_report):
    _, root, page = quick_report
    text = page.read_text(encoding="utf-8")
    assert external_refs(text) == []
    assert "http://" not in text and "https://" not in text
    size = page.stat().st_size
    assert size < 3_000_000, size
    assert not [f for f in page.parent.iterdir() if f.name.endswith(".tmp")]


def test_links_to_raw_records_resolve(quick_report):
    recs, root, page = quick_report
    p = _Collect()
    p.feed(page.read_text(encoding="utf-8"))
    local = [h for h in p.links if not h.startswith("#")]
    assert "results.json" in local
    record_links = [h for h in local if h.endswith(".json") and h != "results.json"]
    assert len(set(record_links)) == len(recs)
    for h in set(local):
        assert (page.parent / h).exists(), h
    bundle = json.loads((page.parent / "results.json").read_text())
    assert len(bundle["records"]) == len(recs) and bundle["run"]["profile"] == "quick"


def test_reproduce_commands_round_trip_through_the_shell(quick_report):
    recs, _, page = quick_report
    p = _Collect()
    p.feed(page.read_text(encoding="utf-8"))
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


def test_sentence_on_page_follows_a_flipped_cell(tmp_path):
    recs = [make_record("NTK-CONV", {"m": m, "L": L, "regime": "unit"}, "holds" if m >= 512 else "fails",
                        0.5 if m >= 512 else 2.0) for L in (2, 4) for m in (128, 512, 2048)]
    a = build_report(write_results(tmp_path / "a", recs), tmp_path / "oa").read_text()
    recs[-1]["verdict"] = "fails"  # L = 4, m = 2048
    b = build_report(write_results(tmp_path / "b", recs), tmp_path / "ob").read_text()

    def sentence(t):
        return re.search(r'<span class="sentence">(.*?)</span>', t, re.S).group(1)

    assert sentence(a) != sentence(b)
    assert "L = 4" in html.unescape(sentence(b))


def test_report_survives_missing_keys_and_bad_files(tmp_path):
    recs = [make_record(c, {"m": 64, "L": 2, "regime": "unit"}, "holds", float("nan"))
            for c in ("NTK-CONV", "PERT", "LAZY", "CPLX-ADD", "CPLX-NVAR", "GEN-ADD", "RAND-LABEL", "NTK-PD")]
    recs.append(make_record("FWD", {"m": 64, "L": 2, "regime": "unit"}, "fails", 2.0, failing_recipe=None))
    recs[-1]["failing_recipe"] = None
    root = write_results(tmp_path / "results", recs)  # no _run.json
    (root / "FWD" / "garbage.json").write_text("[1, 2")
    (root / "ODD").mkdir()
    (root / "ODD" / "x.json").write_text(json.dumps({"claim": "ODD", "verdict": "holds", "margin": 0.2,
                                                     "series": "not a list", "measured": [1]}))
    page = build_report(root, tmp_path / "site").read_text()
    assert "figure omitted" in page
    assert "garbage.json" in page  # listed as unreadable
    assert "No _run.json" in page
    assert "No failing recipe stored" in page
    p = _Collect()
    p.feed(page)
    assert sorted(p.rows) == sorted({r["claim"] for r in recs} | {"ODD"})


def test_empty_results_folder(tmp_path):
    (tmp_path / "results").mkdir()
    page = build_report(tmp_path / "results", tmp_path / "site").read_text()
    assert "No records found" in page
