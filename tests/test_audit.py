"""The suite's self-audit (claims/audit.py): seeded faults apply to the current rnn_core, a scratch copy
really is what the judged run imports, a fault is caught and the clean code raises no alarm."""

import json
import subprocess
import sys

import pytest

from claims.audit import FAULTS, Fault, FaultStale, apply_fault, run_audit


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
def test_every_fault_applies_to_the_current_core(fault, tmp_path):
    scratch = apply_fault(fault, tmp_path)
    changed = [(file, new) for file, _, new, _ in fault.edits]
    for file, new in changed:
        assert new in (scratch / "rnn_core" / file).read_text()


def test_a_stale_fault_stops_the_audit(tmp_path):
    stale = Fault("stale", "test", "text that is not in rnn_core", (("model.py", "no such text", "x", 1),))
    with pytest.raises(FaultStale, match="0 occurrence"):
        apply_fault(stale, tmp_path)


@pytest.mark.slow
def test_the_scratch_copy_is_what_a_subprocess_imports(tmp_path):
    fault = next(f for f in FAULTS if f.id == "init-b-var")
    scratch = apply_fault(fault, tmp_path)
    code = ("import rnn_core, torch; p = rnn_core.init_params(4096, 2, seed=0); "
            "print(rnn_core.__file__); print(float(p.B.std()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=scratch, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(scratch), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert out[0].startswith(str(scratch))
    assert float(out[1]) == pytest.approx(2.0, rel=0.05)  # B ~ N(0, 4): std 2 (5%: 4096 draws give ~1.1%)


@pytest.mark.slow
def test_a_fault_is_caught_and_the_clean_code_raises_no_alarm(tmp_path, monkeypatch):
    lines = []
    monkeypatch.chdir(tmp_path.parent)  # OUT relative to the caller's folder (the runs start elsewhere)
    # NTK-ID alone catches the NTK without its cross-time terms (the full kill matrix is measured by
    # `rnnclaims audit`, docs/MEASUREMENTS.md); its smoke cells take seconds
    result = run_audit("smoke", tmp_path.name, faults="ntk-no-cross-time", claims="NTK-ID", clean_runs=1,
                       echo=lines.append, timeout=600)
    data = json.loads((tmp_path / "audit.json").read_text())
    assert data["matrix"] == {"ntk-no-cross-time": {"NTK-ID": "caught"}} and data["score"] == 1.0
    assert data["clean"][0]["false_alarms"] == [] and result.ok
    assert all(ch["claim"] == "NTK-ID" for ch in data["faults"][0]["changes"])
    assert (tmp_path / "index.html").exists() and "ntk-no-cross-time" in (tmp_path / "index.html").read_text()


def test_every_fault_edits_one_place():
    # rnn_core has one pass: a mistake in the recursion is one edit that every consumer of the pass sees
    assert [f.id for f in FAULTS if len(f.edits) != 1 or f.edits[0][3] != 1] == []
