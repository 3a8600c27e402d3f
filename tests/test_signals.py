"""Interrupts with real subprocesses and real signals: SIGINT / SIGTERM with
two workers stop everything within seconds and keep every finished record; kill -9 of the parent
leaves no orphan worker; an interrupted ``pytest claims`` session deletes nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claims.schema import load_results

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "RNNCLAIMS_REGISTRY": "tests.toy_claims:TOY", "PYTHONPATH": str(ROOT),
       "RNNCLAIMS_TOY_SLEEP": "0.05"}
RUN = [sys.executable, "-m", "claims", "run", "--profile", "smoke", "--claims", "TOY-SLOW", "--device", "cpu",
       "--no-report"]


def _children(pid: int) -> set[int]:
    """Live descendants of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry)] = int(fields[1])
            except OSError:
                continue
    out, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - out
        out |= frontier
    return out


def _alive(pids) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(pid)
        except OSError:
            pass
    return alive


def _start(out: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen([*RUN, "--out", str(out), *extra], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_records(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    folder = out / "results" / "TOY-SLOW"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(list(folder.glob("*.json"))) < n:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_with_two_workers_stops_everything_promptly(tmp_path, sig, code):
    proc = _start(tmp_path, "--workers", "2")
    _wait_records(tmp_path, 2, proc)
    workers = _children(proc.pid)
    assert workers, "the pool has worker processes"
    t0 = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == code, stderr
    assert took < 5.0, f"exit took {took:.1f} s"
    assert "Traceback" not in stderr and f"interrupted by signal {int(sig)}" in stdout
    deadline = time.monotonic() + 5
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(workers), "worker processes outlived the run"
    on_disk = sorted(p.name for p in (tmp_path / "results" / "TOY-SLOW").glob("*.json"))
    time.sleep(1.0)  # nothing is written after the exit
    assert sorted(p.name for p in (tmp_path / "results" / "TOY-SLOW").glob("*.json")) == on_disk
    loaded = load_results(tmp_path)
    assert loaded.invalid == [] and loaded.run["interrupted"] is True and loaded.run["signal"] == int(sig)
    assert loaded.run["cells_on_disk"] == len(loaded.records) == len(on_disk)
    assert not list((tmp_path / "results").rglob(".tmp-*"))


def test_a_second_sigint_kills_at_once(tmp_path):
    proc = _start(tmp_path, "--workers", "2")
    _wait_records(tmp_path, 1, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode in (130, -signal.SIGINT)
    assert load_results(tmp_path).invalid == []


def test_kill_9_of_the_parent_leaves_no_orphan(tmp_path):
    proc = _start(tmp_path, "--workers", "2")
    _wait_records(tmp_path, 1, proc)
    workers = _children(proc.pid)
    assert workers
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 5  # the workers poll their parent every 0.5 s
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(workers), f"orphans: {_alive(workers)}"
    assert load_results(tmp_path).invalid == []


def test_kill_9_with_one_worker_resumes_to_the_records_of_a_clean_run(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _start(killed)
    _wait_records(killed, 3, proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert load_results(killed).invalid == []
    for out in (killed, clean):
        done = subprocess.run([*RUN, "--out", str(out)], cwd=ROOT, env={**ENV, "RNNCLAIMS_TOY_SLEEP": "0"},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def essence(out):
        return {(r["claim"], r["cell_key"]): (r["verdict"], r["examples"], r["recipes"]) for r in load_results(out).records}

    assert essence(killed) == essence(clean)


def test_an_interrupted_pytest_session_deletes_nothing(tmp_path):
    # an interrupted `pytest claims` session must not delete the previous complete results
    out = tmp_path / "pt"
    base = [sys.executable, "-m", "pytest", "claims/test_claims.py", "-q", "-p", "no:cacheprovider",
            "--claims-out", str(out)]
    env = {**ENV, "RNNCLAIMS_TOY_SLEEP": "0"}
    done = subprocess.run([*base, "-n", "0", "-k", "TOY-HOLDS or TOY-SLOW"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    complete = {p.relative_to(out) for p in (out / "results").rglob("*.json")}
    assert len(complete) == 1 + 5 + 12  # _run.json, TOY-HOLDS, TOY-SLOW
    meta = json.loads((out / "results" / "_run.json").read_text())
    assert meta["complete"] is True and meta["source"] == "pytest claims"

    env["RNNCLAIMS_TOY_SLEEP"] = "0.3"
    # SIGINT back to its default in the child: a parent started in the background by a non-interactive
    # shell ignores SIGINT, children inherit that, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen([*base, "-n", "2", "-k", "TOY-SLOW"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    before = (out / "results" / "_run.json").stat().st_mtime
    # wait until the session writes its first record (a signal before any record leaves the folder, and its
    # _run.json, untouched)
    deadline = time.monotonic() + 240
    wrote = False
    while time.monotonic() < deadline and not wrote:
        wrote = max(p.stat().st_mtime for p in (out / "results" / "TOY-SLOW").glob("*.json")) > before
        if not wrote:
            assert proc.poll() is None, proc.communicate()[0][-2000:]
            time.sleep(0.05)
    assert wrote, "the second session wrote no record within 240 s"
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    after = {p.relative_to(out) for p in (out / "results").rglob("*.json")}
    assert after == complete, "an interrupted session removed (or added) record files"
    meta = json.loads((out / "results" / "_run.json").read_text())
    why = {k: meta.get(k) for k in ("interrupted", "complete", "cells_run", "cells_total")}, output[-1500:]
    assert meta["interrupted"] is True and meta["complete"] is False, why


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_swallowed_while_the_executor_starts_still_stops_the_run(tmp_path, monkeypatch, sig):
    """Library code in the main thread may catch the RunInterrupted our handler raises (a SIGINT during
    a LocalCluster's start-up was once lost). Simulated here: the executor factory receives the signal and
    swallows the exception; the run must still stop before any cell, marked interrupted."""
    import claims.session as session
    from claims.executors import SerialExecutor

    def swallowing_factory(**kw):
        try:
            os.kill(os.getpid(), sig)
            time.sleep(1)  # the handler runs here and raises
        except BaseException:
            pass  # ... and the start-up code swallows it
        return SerialExecutor()

    monkeypatch.setenv("RNNCLAIMS_TOY_SLEEP", "0")
    monkeypatch.setattr(session, "make_executor", swallowing_factory)
    summary = session.run_profile("smoke", tmp_path / "out", registry="tests.toy_claims:TOY", claims=["TOY-SLOW"],
                                  device="cpu", report=False)
    assert summary.interrupted == sig
    assert summary.ran == 0
    meta = json.loads((tmp_path / "out" / "results" / "_run.json").read_text())
    assert meta["interrupted"] and meta["cells_run"] == 0
