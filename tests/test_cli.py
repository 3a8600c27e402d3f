"""The rnnclaims command line, in-process (main) and as a real subprocess (python -m claims): one-line
errors with exit 2, exit 3 for I/O and resource failures naming the path, --strict, --seed, guards on
every recipe that enters."""

import json
import os
import subprocess
import sys
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


def _one_error_line(capsys, needle):
    """Exactly one error line on stderr (progress lines of a run may precede it), naming ``needle``."""
    captured = capsys.readouterr()
    lines = [line for line in captured.err.strip().splitlines() if line.startswith("rnnclaims:")]
    assert len(lines) == 1 and lines[0].startswith("rnnclaims: error: ") and needle in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "--profile", "huge"], "unknown profile 'huge'; allowed: smoke, quick, standard, full"),
        (["run", "--profile", "smoke", "--device", "tpu"], "device"),
        (["run", "--profile", "smoke", "--workers", "0"], "--workers must be an integer >= 1"),
        (["run", "--profile", "smoke", "--workers", "two"], "--workers must be an integer >= 1"),
        (["run", "--profile", "smoke", "--seed", "-1"], "--seed must be an integer >= 0"),
        (["run", "--profile", "smoke", "--dtype", "float16"], "dtype must be one of auto, float64"),
        (["run", "--profile", "smoke", "--shard", "4/3"], "--shard must be I/N"),
        (["run", "--profile", "smoke", "--dask-local", "2", "--workers", "2"], "choose one of"),
        (["run", "--profile", "smoke", "--claims", "TOY-HOLDS,NOPE"], "unknown claim id 'NOPE'; known ids: TOY-HOLDS"),
        (["run", "--profile", "smoke", "--registry", "nope"], "registry spec"),
        (["list", "--cost"], "--cost needs --profile"),
        (["reproduce", "NOPE", "--recipe", "{}"], "unknown claim id 'NOPE'"),
        (["reproduce", "TOY-OBJ", "--recipe", "{\"x\": 1, \"seed\": 0}"], "cell is required"),
        (["reproduce", "TOY-OBJ", "--recipe", "{\"x\": 1, \"seed\": 0}", "--cell", "{}"], "missing parameter(s) L, m"),
        (["reproduce", "TOY-OBJ", "--recipe", "{\"x\": 1, \"seed\": 0}", "--cell", "{\"m\": 4, \"L\": 2, \"q\": 1}"],
         "unknown parameter(s) q"),
        (["report", "/no/such/dir", "--out", "x"], "/no/such/dir"),
        (["export", "/no/such/dir", "--out", "x"], "/no/such/dir"),
        (["export", ".", "--format", "xlsx", "--out", "x"], "--format must be csv or parquet"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, needle, toy_env, capsys):
    assert main(argv) == 2
    _one_error_line(capsys, needle)


@pytest.mark.slow
def test_subprocess_bad_input_has_no_traceback():
    proc = _cli("run", "--profile", "smoke", "--claims", "NOPE")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown claim id 'NOPE'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_list(toy_env, capsys):
    assert main(["list", "--json", "--profile", "smoke"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows][:2] == ["TOY-HOLDS", "TOY-FAILS"] and rows[0]["cells"] == 5
    assert rows[0]["test"]["test"] == "SPRT" and rows[0]["test"]["budget"] == 20
    assert main(["list"]) == 0
    assert "TOY-RAISES" in capsys.readouterr().out
    assert main(["list", "--profile", "smoke", "--cost"]) == 0
    out = capsys.readouterr().out
    assert "total under smoke" in out and "on one core" in out


def test_run_reproduce_and_report(tmp_path, toy_env, capsys):
    out = tmp_path / "run"
    code = main(["run", "--profile", "smoke", "--out", str(out), "--device", "cpu",
                 "--claims", "TOY-HOLDS,TOY-OBJ,TOY-RAISES", "--no-report"])
    captured = capsys.readouterr()
    assert code == 1  # the TOY-RAISES cell ends in error
    assert "TOY-HOLDS" in captured.out and "cell(s) ended in error" in captured.out
    assert "7 cells (0 resumed" in captured.err
    assert len(load_results(out).records) == 7
    record = out / "results" / "TOY-OBJ" / "L=2__m=4.json"
    assert main(["reproduce", "TOY-OBJ", "--recipe", str(record), "--device", "cpu"]) == 1  # the example fails
    assert "FAILS" in capsys.readouterr().out
    assert main(["reproduce", "TOY-OBJ", "--recipe", '{"x": 3, "seed": 0}', "--cell", '{"m": 4, "L": 2}']) == 0


def test_strict_names_every_disagreeing_cell_and_exits_1(tmp_path, toy_env, capsys):
    # TOY-HOLDS asserts "holds" at the largest width; --seed draws other recipes but the claim still holds,
    # so make a must-hold cell fail: TOY-FAILS asserts everywhere (default must_hold) and fails
    out = tmp_path / "run"
    code = main(["run", "--profile", "smoke", "--out", str(out), "--claims", "TOY-HOLDS,TOY-FAILS", "--no-report",
                 "--strict"])
    captured = capsys.readouterr()
    assert code == 1
    strict = [line for line in captured.err.splitlines() if line.startswith("rnnclaims: strict:")]
    assert strict == ["rnnclaims: strict: TOY-FAILS L=2__m=64: must hold, does not: fails "
                      "(H1 accepted (p >= 0.3): 3 of 3 examples failed)"]
    assert main(["run", "--profile", "smoke", "--out", str(tmp_path / "ok"), "--claims", "TOY-HOLDS",
                 "--no-report", "--strict"]) == 0


def test_a_run_refusing_a_folder_of_another_profile_is_exit_2_and_names_both(tmp_path, toy_env, capsys):
    out = str(tmp_path / "run")
    assert main(["run", "--profile", "quick", "--out", out, "--claims", "TOY-HOLDS", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["run", "--profile", "smoke", "--out", out, "--claims", "TOY-HOLDS", "--no-report"]) == 2
    _one_error_line(capsys, "profile 'quick'")
    assert len(load_results(out).records) == 13  # the quick records (12 cells and a control) are all still there


@pytest.mark.parametrize("recipe, cell, needle", [
    ({"n": 10**9, "L": 2, "d": 4}, {"m": 64, "L": 2}, "GiB"),
    ({"n": 8, "L": 10**7, "d": 4}, {"m": 64, "L": 2}, "GiB"),
    ({"n": 8, "L": 2, "d": 4}, {"m": 10**9, "L": 2}, "GiB"),
])
def test_reproduce_refuses_examples_too_large_for_the_machine(recipe, cell, needle, toy_env, capsys):
    # refused before allocating: n = 10^9 would take 14.9 GiB, L = 10^7 6 GB, m = 10^9 8e18 bytes
    code = main(["reproduce", "TOY-HOLDS", "--recipe", json.dumps({"x": 1, "seed": 0, **recipe}),
                 "--cell", json.dumps(cell)])
    assert code == 3
    _one_error_line(capsys, needle)


@pytest.mark.parametrize("cell, needle", [
    ("{}", "missing parameter(s) L, n, regime"),
    ('{"n": 8, "L": 2, "regime": "bogus"}', "regime must be one of"),
])
def test_reproduce_rejects_cells_the_claim_does_not_have(cell, needle, capsys):
    # `reproduce NTK-PD` with cell {} or a bogus regime must be refused, not print "passes"
    recipe = json.dumps({"n": 4, "L": 2, "d": 2, "regime": "unit", "directions": "sphere",
                         "target": {"family": "random", "seed": 0}, "separation_floor": 0.0, "data_seed": 0,
                         "init_seed": 0, "vocab": 8})
    assert main(["reproduce", "NTK-PD", "--recipe", recipe, "--cell", cell]) == 2
    _one_error_line(capsys, needle)


def test_an_unwritable_output_is_exit_3_naming_the_path(tmp_path, toy_env, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--profile", "smoke", "--out", str(blocker / "out"), "--claims", "TOY-HOLDS"]) == 3
    _one_error_line(capsys, str(blocker))


def test_a_full_disk_is_exit_3_naming_the_path(tmp_path, toy_env, capsys, monkeypatch):
    # a full disk is an I/O failure (3) naming the path, not bad input (2)
    from claims import store

    real = store.atomic_write_bytes

    def full(path, data):
        if "TOY-HOLDS" in str(path) and path.name.startswith("L=4"):
            raise store.WriteError(28, f"cannot write {path}: No space left on device")
        return real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", full)
    assert main(["run", "--profile", "smoke", "--out", str(tmp_path / "o"), "--claims", "TOY-HOLDS"]) == 3
    _one_error_line(capsys, "No space left on device")


def test_a_report_that_fails_to_build_is_a_nonzero_exit(tmp_path, toy_env, capsys, monkeypatch):
    # a report that fails to build (disk full after the records) must not exit 0
    from claims import store

    real = store.atomic_write_bytes

    def full(path, data):
        if path.suffix == ".html":
            raise store.WriteError(28, f"cannot write {path}: No space left on device")
        return real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", full)
    assert main(["run", "--profile", "smoke", "--out", str(tmp_path / "o"), "--claims", "TOY-HOLDS"]) == 3
    captured = capsys.readouterr()
    assert "report not built" in captured.err and "No space left" in captured.err
    assert len(load_results(tmp_path / "o").records) == 5  # the records are kept


@pytest.mark.slow
def test_real_full_disk_on_a_tiny_tmpfs(tmp_path):
    """A real ENOSPC: a 64 KiB tmpfs (needs root and a private mount namespace: unshare)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    script = (f"mount -t tmpfs -o size=64k tmpfs {mount} && "
              f"{sys.executable} -m claims run --profile smoke --claims TOY-HOLDS,TOY-SLOW --out {mount}/out --no-report")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here (unshare: {probe.stderr.decode().strip()})")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **TOY_ENV, "RNNCLAIMS_TOY_SLEEP": "0"}, timeout=120)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("rnnclaims: error: cannot write") and "No space left on device" in lines[-1]
    assert str(mount) in lines[-1] and "Traceback" not in proc.stderr
