"""The rnnclaims command line, in-process (main) and as a real subprocess (python -m claims)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claims.cli import main
from claims.store import load_results

ROOT = Path(__file__).resolve().parents[1]
TOY_ENV = {"RNNCLAIMS_REGISTRY": "tests.toy_claims:TOY", "PYTHONPATH": str(ROOT)}


def _cli(*argv, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "claims", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **TOY_ENV, **(env or {})}, timeout=120, **kw)


@pytest.fixture
def toy_env(monkeypatch):
    for key, value in TOY_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "--profile", "huge"], "unknown profile 'huge'; allowed: smoke, quick, standard, full"),
        (["run", "--profile", "smoke", "--device", "tpu"], "device"),
        (["run", "--profile", "smoke", "--workers", "0"], "--workers must be an integer >= 1"),
        (["run", "--profile", "smoke", "--workers", "two"], "--workers must be an integer >= 1"),
        (["run", "--profile", "smoke", "--claims", "TOY-HOLDS,NOPE"], "unknown claim id 'NOPE'; known ids: TOY-HOLDS"),
        (["reproduce", "NOPE", "--recipe", "{}"], "unknown claim id 'NOPE'"),
        (["reproduce", "TOY-OBJ", "--recipe", "{\"x\": 1, \"seed\": 0}"], "cell is required"),
        (["report", "/no/such/dir", "--out", "x"], "RESULTS_DIR"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, needle, toy_env, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnclaims: error: ") and needle in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_subprocess_bad_input_has_no_traceback():
    proc = _cli("run", "--profile", "smoke", "--claims", "NOPE")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown claim id 'NOPE'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_list(toy_env, capsys):
    assert main(["list", "--json", "--profile", "smoke"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows][:2] == ["TOY-HOLDS", "TOY-FAILS"] and rows[0]["cells"] == 5
    assert main(["list"]) == 0
    assert "TOY-RAISES" in capsys.readouterr().out


def test_run_reproduce_and_report(tmp_path, toy_env, capsys):
    out = tmp_path / "run"
    code = main(["run", "--profile", "smoke", "--out", str(out), "--device", "cpu",
                 "--claims", "TOY-HOLDS,TOY-OBJ,TOY-RAISES", "--no-report"])
    captured = capsys.readouterr()
    assert code == 1  # the TOY-RAISES cell ends in error
    assert "TOY-HOLDS" in captured.out and "cell(s) ended in error" in captured.out
    assert "[7/7]" in captured.err
    assert len(load_results(out).records) == 7
    record = out / "results" / "TOY-OBJ" / "L=2__m=4.json"
    assert main(["reproduce", "TOY-OBJ", "--recipe", str(record), "--device", "cpu"]) == 1  # the example fails
    assert "FAILS" in capsys.readouterr().out
    assert main(["reproduce", "TOY-OBJ", "--recipe", '{"x": 3, "seed": 0}', "--cell", '{"m": 4, "L": 2}']) == 0


def test_sigint_keeps_finished_cells_and_rerun_resumes(tmp_path, toy_env, monkeypatch, capsys):
    out = tmp_path / "run"
    args = ["run", "--profile", "smoke", "--out", str(out), "--claims", "TOY-SLOW", "--device", "cpu", "--no-report"]
    proc = subprocess.Popen([sys.executable, "-m", "claims", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **TOY_ENV, "RNNCLAIMS_TOY_SLEEP": "0.2"})
    results = out / "results" / "TOY-SLOW"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(results.glob("*.json"))) < 2:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted by signal 2" in stdout
    loaded = load_results(out)
    finished = len(loaded.records)
    assert 2 <= finished < 12 and loaded.invalid == []
    assert all(r["verdict"] == "holds" for r in loaded.records)
    assert loaded.run["interrupted"] is True

    monkeypatch.setenv("RNNCLAIMS_TOY_SLEEP", "0")
    assert main(args) == 0  # the same command again, in-process to save a start-up
    assert f"({12 - finished} run, {finished} resumed)" in capsys.readouterr().out
    assert len(load_results(out).records) == 12
