"""The report in a real headless Chromium: no script errors, every section and figure visible, one overview
row per claim, and a screenshot kept as a CI artifact (env RNNCLAIMS_ARTIFACTS, else a temp folder).

The page carries a small load-time script that measures every claim section, figure and overview row and
writes the result into ``<body data-checks=...>``; script errors are caught into ``<html data-errors=...>``.
``chromium --dump-dom`` reveals both; chromium's own log (``--enable-logging=stderr``) is scanned for console
errors too. The report of a real smoke run is checked the same way in tests/test_end_to_end.py.
"""

from __future__ import annotations

import html
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from reports.build import build_report

try:
    from tests.fixtures_records import (make_record, run_meta, synthetic_audit, synthetic_quick, synthetic_thresholds,
                                        write_results)
except ImportError:  # tests/ not a package on sys.path
    from fixtures_records import (make_record, run_meta, synthetic_audit, synthetic_quick, synthetic_thresholds,
                                  write_results)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    env = os.environ.get("RNNCLAIMS_CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary found (tried $RNNCLAIMS_CHROMIUM, " + ", ".join(CANDIDATES)
    + "); install it with: apt-get install -y chromium")


def _flags(profile_dir: pathlib.Path) -> list[str]:
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", "--hide-scrollbars"]


CONSOLE_ERROR = re.compile(r"CONSOLE.*(Uncaught|Error|error|Failed|Refused)|Uncaught ")


def render(page: pathlib.Path, work: pathlib.Path) -> tuple[dict, list[str], list[str]]:
    """(checks written by the page, script errors caught in the page, console error lines from chromium)."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = _flags(work / "profile-dom") + ["--window-size=1400,3000", "--virtual-time-budget=10000",
                                          "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert "</html>" in dom, f"chromium produced no DOM (rc {proc.returncode}): {proc.stderr[-2000:]}"
    m = re.search(r'data-checks="([^"]*)"', dom)
    checks = json.loads(html.unescape(m.group(1))) if m else {}
    e = re.search(r'data-errors="([^"]*)"', dom)
    page_errors = json.loads(html.unescape(e.group(1))) if e else []
    console = [line for line in proc.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    return checks, page_errors, console


def screenshot(page: pathlib.Path, work: pathlib.Path, name: str) -> pathlib.Path:
    art = pathlib.Path(os.environ.get("RNNCLAIMS_ARTIFACTS") or work)
    art.mkdir(parents=True, exist_ok=True)
    out = art / name
    cmd = _flags(work / "profile-shot") + ["--window-size=1400,3000", f"--screenshot={out}", page.as_uri()]
    subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return out


def assert_page_ok(page: pathlib.Path, claims: list[str], work: pathlib.Path, shot_name: str):
    checks, page_errors, console = render(page, work)
    assert checks, "the page's check script did not run (no data-checks in the DOM)"
    assert page_errors == [], page_errors
    assert console == [], console
    assert checks["zero"] == [], f"invisible elements: {checks['zero']}"
    assert sorted(checks["sections"]) == sorted(claims)
    assert sorted(checks["overviewRows"]) == sorted(claims)
    text = page.read_text(encoding="utf-8")
    n_figs = text.count('<figure class="fig"')
    assert len(checks["figures"]) == n_figs > 0
    if 'id="kill-table"' in text:
        w, h = checks["killMatrix"]
        assert w > 0 and h > 0, "kill matrix not visible"
    if 'id="threshold-matrix"' in text:
        w, h = checks["thresholdMatrix"]
        assert w > 0 and h > 0, "threshold matrix not visible"
        start = text.index('id="threshold-matrix"')
        assert checks["matrixEntries"] == text[start:text.index("</table>", start)].count('<td class="ts ts-') > 0
    for key, (w, h) in list(checks["sections"].items()) + list(checks["figures"].items()):
        assert w > 0 and h > 0, key
    shot = screenshot(page, work, shot_name)
    assert shot.exists() and shot.stat().st_size > 10_000, "screenshot missing or empty"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_chromium
def test_synthetic_report_in_chromium(tmp_path):
    recs = synthetic_quick() + synthetic_thresholds()  # grid cells and threshold cells (the m*(L) matrix)
    # a control that did not work, a must-hold cell that fails, a file that could not be read
    recs.append(make_record("FWD", {"m": 2048, "L": 16, "regime": "unit", "control": True}, "inconclusive"))
    recs.append(make_record("BWD", {"m": 4096, "L": 2, "regime": "unit"}, "fails", 2.0, expect="holds"))
    root = write_results(tmp_path / "results", recs, run_meta(records=recs))
    (root / "FWD" / "garbage.json").write_text("{")
    page = build_report(root, tmp_path / "site", audit=synthetic_audit())
    text = page.read_text(encoding="utf-8")
    assert 'id="could-not-be-read"' in text and 'id="kill-table"' in text and "✗ 2 disagreements" in text
    assert 'id="threshold-matrix"' in text
    assert_page_ok(page, sorted({r["claim"] for r in recs}), tmp_path / "chromium", "report-synthetic.png")


@needs_chromium
def test_checker_sees_script_errors_and_hidden_figures(tmp_path):
    recs = [r for r in synthetic_quick() if r["claim"] in ("FWD", "NTK-PD")]
    page = build_report(write_results(tmp_path / "results", recs), tmp_path / "site")
    text = page.read_text(encoding="utf-8")
    broken = text.replace("</body>", "<script>undefinedFunctionCall();</script></body>", 1)
    broken = broken.replace('<figure class="fig"', '<figure style="display:none" class="fig"', 1)
    bad = page.with_name("broken.html")
    bad.write_text(broken, encoding="utf-8")
    checks, page_errors, console = render(bad, tmp_path / "chromium")
    assert page_errors and "undefinedFunctionCall" in page_errors[0]
    assert any(z.startswith("figure ") for z in checks["zero"])
