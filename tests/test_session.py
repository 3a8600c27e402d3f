"""One run's results folder (claims/lifecycle.py through its front ends, claims/session.py and the pytest
plugin): resume, conflicts, invalid and foreign records, the output lock, pruning of the run's own stale
records only, and ``_run.json`` counting what is on disk.
Each test guards one way a folder could lose or mix records."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from claims.store import load_results, record_path
from claims.session import FolderBusy, ResultsFolder, RunConflict, run_profile
from tests.toy_claims import TOY

ROOT = Path(__file__).resolve().parents[1]
TOY_ENV = {"RNNCLAIMS_REGISTRY": "tests.toy_claims:TOY", "PYTHONPATH": str(ROOT)}


def _run(out, claims="TOY-HOLDS", profile="smoke", **kw):
    return run_profile(profile, out, registry=TOY, claims=claims, report=False, device="cpu", warn=kw.pop("warn", lambda _: None), **kw)


def test_resume_skips_finished_cells_and_fresh_reruns_them(tmp_path):
    first = _run(tmp_path)
    assert first.ran == 5 and first.resumed == 0 and first.meta["complete"]
    again = _run(tmp_path)
    assert again.ran == 0 and again.resumed == 5
    assert [s["cells_run"] for s in again.meta["sittings"]] == [5, 0]  # the run's history is kept
    fresh = _run(tmp_path, resume=False)
    assert fresh.ran == 5 and fresh.resumed == 0


@pytest.mark.slow
def test_another_profile_in_the_folder_is_refused_and_kept(tmp_path):
    # a smoke run into a quick output must not delete the quick records without a word
    _run(tmp_path, profile="quick")
    before = sorted(p.name for p in (tmp_path / "results" / "TOY-HOLDS").glob("*.json"))
    with pytest.raises(RunConflict) as exc:
        _run(tmp_path, profile="smoke")
    text = str(exc.value)
    assert "profile 'quick'" in text and "profile 'smoke'" in text and "--fresh" in text and "--out" in text
    assert sorted(p.name for p in (tmp_path / "results" / "TOY-HOLDS").glob("*.json")) == before
    # --fresh is the user asking to start over
    fresh = _run(tmp_path, profile="smoke", resume=False)
    assert {r["profile"] for r in load_results(tmp_path).records} == {"smoke"} and fresh.ran == 5


def test_another_seed_is_refused(tmp_path):
    _run(tmp_path, seed=0)
    with pytest.raises(RunConflict, match="seed 0"):
        _run(tmp_path, seed=7)


@pytest.mark.slow
def test_pytest_claims_follows_the_same_folder_rules(tmp_path):
    """``pytest claims --claims-seed 5`` into a folder of seed-0 records is refused and changes nothing
    (not one record rewritten, no mixed seeds); ``--claims-fresh`` starts over; ``rnnclaims run`` then refuses the pytest
    session's folder the same way."""
    _run(tmp_path, seed=0)
    res = tmp_path / "results"
    before = {p: p.read_bytes() for p in res.rglob("*.json")}
    cmd = [sys.executable, "-m", "pytest", "claims/test_claims.py", "-q", "-p", "no:cacheprovider", "-n", "0",
           "-k", "TOY-HOLDS", "--claims-out", str(tmp_path), "--claims-seed", "5"]
    env = {**os.environ, **TOY_ENV, "RNNCLAIMS_TOY_SLEEP": "0"}
    refused = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = refused.stdout + refused.stderr
    assert refused.returncode == int(pytest.ExitCode.USAGE_ERROR), output[-2000:]
    assert "seed 0" in output and "seed 5" in output and "--claims-fresh" in output, output[-2000:]
    assert {p: p.read_bytes() for p in res.rglob("*.json")} == before  # not one record rewritten

    fresh = subprocess.run([*cmd, "--claims-fresh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, (fresh.stdout + fresh.stderr)[-2000:]
    loaded = load_results(tmp_path)
    assert len(loaded.records) == 5 and {r["seed"] for r in loaded.records} == {5}
    assert loaded.run["source"] == "pytest claims" and loaded.run["seed"] == 5 and loaded.run["complete"]
    assert len(loaded.run["sittings"]) == 1  # the seed-0 run's history is not this run's
    with pytest.raises(RunConflict, match="seed 5"):
        _run(tmp_path, seed=0)


def test_pruning_touches_only_the_runs_own_claims(tmp_path):
    _run(tmp_path, claims="TOY-HOLDS,TOY-FAILS")
    # a record of a cell no longer in TOY-HOLDS' grid (same profile and commit): stale, pruned
    stale = json.loads(record_path(tmp_path / "results", "TOY-HOLDS", "L=2__m=64").read_text())
    stale["cell"] = {"m": 999, "L": 2}
    stale["params"] = dict(stale["cell"])
    stale["cell_key"] = "L=2__m=999"
    (tmp_path / "results" / "TOY-HOLDS" / "L=2__m=999.json").write_text(json.dumps(stale))
    lines = []
    _run(tmp_path, claims="TOY-HOLDS", warn=lines.append)
    assert not (tmp_path / "results" / "TOY-HOLDS" / "L=2__m=999.json").exists()
    assert any("removed stale record" in line for line in lines)
    assert (tmp_path / "results" / "TOY-FAILS" / "L=2__m=64.json").exists()  # not this run's claim


def test_invalid_and_foreign_records_are_named_not_counted_and_not_lost(tmp_path):
    # schema 99 must not count as holds, nor an unknown claim get a section, nor a bogus verdict be
    # "finished", nor a copy of an FWD-like record under another claim count twice
    _run(tmp_path)
    res = tmp_path / "results"
    good = json.loads(record_path(res, "TOY-HOLDS", "L=2__m=64").read_text())
    bad_schema = dict(good, schema=99)
    record_path(res, "TOY-HOLDS", "L=2__m=64").write_text(json.dumps(bad_schema))
    bogus = json.loads(record_path(res, "TOY-HOLDS", "L=4__m=64").read_text())
    record_path(res, "TOY-HOLDS", "L=4__m=64").write_text(json.dumps(dict(bogus, verdict="totally-bogus")))
    (res / "TOY-FAILS").mkdir()
    shutil.copy(record_path(res, "TOY-HOLDS", "L=2__m=256"), res / "TOY-FAILS" / "L=2__m=256.json")
    (res / "NOT-A-CLAIM").mkdir()
    (res / "NOT-A-CLAIM" / "x.json").write_text(json.dumps(dict(good, claim="NOT-A-CLAIM", cell_key="x")))
    lines = []
    summary = _run(tmp_path, warn=lines.append)
    text = "\n".join(lines)
    assert "schema 99" in text and "totally-bogus" in text and "stored at TOY-FAILS/" in text
    assert "unknown claim id 'NOT-A-CLAIM'" in text
    assert summary.ran == 2 and summary.resumed == 3  # the two unusable records of this claim are rerun
    # set aside, not deleted; the foreign files are left where they are
    assert (res / "TOY-HOLDS" / "L=2__m=64.json.invalid").exists()
    assert (res / "TOY-FAILS" / "L=2__m=256.json").exists() and (res / "NOT-A-CLAIM" / "x.json").exists()
    assert summary.meta["cells_on_disk"] == 5 and sum(summary.meta["verdicts"].values()) == 5


def _hold_lock(path: Path) -> subprocess.Popen:
    code = ("import sys, time; from claims.session import ResultsFolder; f = ResultsFolder(sys.argv[1]); "
            "f.acquire('rnnclaims run'); print('locked', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.slow
def test_a_second_run_into_the_same_folder_exits_naming_the_holder(tmp_path):
    # two runs into one folder must not compute every cell twice
    holder = _hold_lock(tmp_path)
    try:
        with pytest.raises(FolderBusy) as exc:
            _run(tmp_path)
        assert f"PID {holder.pid}" in str(exc.value) and "started" in str(exc.value)
        assert not (tmp_path / "results" / "TOY-HOLDS").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is free (flock), the next run takes it over
    assert _run(tmp_path).ran == 5


def test_start_up_clean_up_spares_another_live_writers_temp_file(tmp_path):
    # one run's start-up clean-up must not delete the other's in-flight temp file
    (tmp_path / "results" / "TOY-HOLDS").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        theirs = tmp_path / "results" / "TOY-HOLDS" / f".tmp-{sleeper.pid}-L=2__m=64.json.abc"
        theirs.write_text("in flight")
        _run(tmp_path)
        assert theirs.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_run_meta_counts_exactly_the_records_on_disk(tmp_path):
    summary = _run(tmp_path, claims="TOY-HOLDS,TOY-FAILS,TOY-RAISES,TOY-MEMORY")
    meta = json.loads((tmp_path / "results" / "_run.json").read_text())
    loaded = load_results(tmp_path)
    assert meta["cells_on_disk"] == len(loaded.records) == summary.total
    assert meta["verdicts"] == {"holds": 4, "fails": 2, "inconclusive": 0, "skipped": 1, "error": 1}
    assert meta["claims"] == ["TOY-HOLDS", "TOY-FAILS", "TOY-RAISES", "TOY-MEMORY"]
    assert meta["complete"] is True and meta["interrupted"] is False
    assert meta["executor"]["kind"] == "serial" and meta["workers"][0]["pid"] == os.getpid()


def test_a_failed_record_write_is_the_error_reported(tmp_path, monkeypatch):
    # the record write error must not be masked by the later failure to write _run.json
    from claims import store
    from claims.store import WriteError

    real = store.atomic_write_bytes
    calls = {"n": 0}

    def full_disk(path, data):
        calls["n"] += 1
        if calls["n"] >= 3:  # two records fit, then the disk is full (for _run.json too)
            raise WriteError(28, f"cannot write {path}: No space left on device")
        return real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", full_disk)
    with pytest.raises(WriteError, match=r"TOY-HOLDS/.*\.json: No space left"):
        _run(tmp_path)
    monkeypatch.setattr(store, "atomic_write_bytes", real)
    assert len(load_results(tmp_path).records) == 2  # what was written is kept
    assert _run(tmp_path).resumed == 2


def test_the_lock_is_released_after_a_run(tmp_path):
    _run(tmp_path)
    folder = ResultsFolder(tmp_path)
    folder.acquire("test")
    folder.release()
