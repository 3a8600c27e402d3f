"""claims/schema.py (the record format, its validation) and claims/store.py (the one loader, the one
atomic writer, temp-file clean-up)."""

import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from claims import schema, store
from claims.schema import SCHEMA, cell_key, count_verdicts, disagreements, validate_record
from claims.store import (
    WriteError,
    atomic_write_json,
    load_results,
    record_path,
    remove_stale_temps,
    write_record,
    write_run_meta,
)


def make_record(claim="FWD", cell=None, **extra):
    """A minimal valid schema-2 record."""
    cell = dict(cell or {"m": 64, "L": 2})
    rec = {"schema": SCHEMA, "claim": claim, "cell": cell, "cell_key": cell_key(cell),
           "params": {k: v for k, v in cell.items() if k != "control"}, "control": bool(cell.get("control")),
           "expect": "fails" if cell.get("control") else "holds", "verdict": "holds", "examples": 12,
           "failures": 0, "profile": "smoke", "margin": 0.5}
    rec.update(extra)
    return rec


def test_torch_free():
    code = ("import sys, claims.schema, claims.store, claims.fits, claims.merge; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_schema_has_types_and_validation_and_the_store_has_the_io():
    import inspect

    text = inspect.getsource(schema)
    for io in ("open(", "os.replace", "tempfile", "fcntl", "mkdir"):
        assert io not in text, f"claims/schema.py does I/O ({io})"
    assert schema.load_results is store.load_results and schema.WriteError is store.WriteError  # old imports
    with pytest.raises(AttributeError):
        schema.CATALOGUE_ORDER  # noqa: B018  (the order is the registry's)
    # fields of other cell kinds are kept, not refused
    rec = make_record(kind="threshold", thresholds=[{"m": 64, "failures": 0}], growth={"law": "power"},
                      search=None, inconclusive_rate_ci=[0.0, 0.2])
    assert validate_record(rec) is None


def test_nan_inf_numpy_become_strict_json(tmp_path):
    rec = make_record(margin=math.nan, measured={"a": np.float64(1.5), "b": math.inf, "c": np.arange(2)},
                      ci=(0.0, -math.inf))
    path = write_record(tmp_path, rec)
    assert path == record_path(tmp_path, "FWD", "L=2__m=64") == tmp_path / "FWD" / "L=2__m=64.json"
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert data["margin"] is None and data["measured"] == {"a": 1.5, "b": None, "c": [0, 1]}
    assert data["ci"] == [0.0, None]


def test_records_are_world_readable_like_other_output(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_record(tmp_path, make_record())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_unsafe_names_rejected(tmp_path):
    with pytest.raises(ValueError, match="cell_key"):
        write_record(tmp_path, make_record(cell_key="../escape"))
    with pytest.raises(ValueError, match="claim"):
        write_record(tmp_path, {"cell_key": "x"})


def test_crash_mid_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = write_record(tmp_path, make_record(margin=0.25))
    before = path.read_text()

    def exploding_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", exploding_replace)
    with pytest.raises(WriteError, match=str(path)):  # the error names the path
        write_record(tmp_path, make_record(margin=0.75))
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # temp file cleaned up


def test_unwritable_folder_is_a_write_error_naming_it(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "file-not-dir" / "x.json"
        (tmp_path / "file-not-dir").write_text("a file where a folder should be")
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "x.json"
    with pytest.raises(WriteError, match="file-not-dir|ro"):
        atomic_write_json(target, {"a": 1})


def test_crash_during_serialization_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "x.json", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mutate, reason", [
    (lambda r: r.update(schema=99), "schema 99"),
    (lambda r: r.update(schema=1), "older rnn-claims"),
    (lambda r: r.update(verdict="totally-bogus"), "verdict 'totally-bogus'"),
    (lambda r: r.update(cell_key="L=9__m=1"), "does not match its cell"),
    (lambda r: r.update(params={"m": 1}), "params"),
    (lambda r: r.update(examples=-1), "examples"),
    (lambda r: r.update(expect="maybe"), "expect"),
    (lambda r: r.pop("profile"), "no profile"),
    (lambda r: r.update(claim="NOPE"), "unknown claim id 'NOPE'"),
])
def test_invalid_records_are_named_with_the_reason(mutate, reason):
    rec = make_record()
    mutate(rec)
    assert reason in validate_record(rec, known_claims=["FWD", "BWD"])


def test_a_record_in_the_wrong_place_is_invalid(tmp_path):
    rec = make_record()
    path = tmp_path / "NTK-PD" / f"{rec['cell_key']}.json"
    path.parent.mkdir()
    path.write_text(json.dumps(rec))
    why = validate_record(rec, path)
    assert "stored at NTK-PD/" in why and "FWD/" in why


def test_loader_validates_ignores_temp_files_and_names_invalid(tmp_path):
    write_record(tmp_path, make_record())
    write_record(tmp_path, make_record(claim="BWD"))
    (tmp_path / "FWD" / f".tmp-{os.getpid()}-L=4.json.abc").write_text('{"claim": "FW')
    (tmp_path / "FWD" / "torn.json").write_text('{"claim": "FW')
    foreign = make_record(claim="FWD")
    (tmp_path / "NTK-PD").mkdir()
    (tmp_path / "NTK-PD" / f"{foreign['cell_key']}.json").write_text(json.dumps(foreign))
    bogus = make_record(claim="BWD", cell={"m": 256, "L": 2}, verdict="totally-bogus")
    write_record(tmp_path, bogus)
    write_run_meta(tmp_path, {"schema": SCHEMA, "profile": "smoke", "claims": ["FWD", "BWD"]})
    loaded = load_results(tmp_path, known_claims=["FWD", "BWD", "NTK-PD"])
    assert [(r["claim"], r["cell_key"]) for r in loaded.records] == [("FWD", "L=2__m=64"), ("BWD", "L=2__m=64")]
    assert loaded.run["profile"] == "smoke"
    reasons = {p.name: why for p, why in loaded.invalid}
    assert set(reasons) == {"torn.json", "L=2__m=64.json", "L=2__m=256.json"}
    assert "unreadable" in reasons["torn.json"] and "bogus" in reasons["L=2__m=256.json"]
    # the run's output folder works too
    assert len(load_results(tmp_path.parent / tmp_path.name).records) == 2


def test_run_meta_of_another_schema_is_named(tmp_path):
    write_record(tmp_path, make_record())
    write_run_meta(tmp_path, {"schema": 1, "profile": "smoke"})
    loaded = load_results(tmp_path)
    assert loaded.run == {} and [p.name for p, _ in loaded.invalid] == ["_run.json"]


def test_stale_temp_clean_up_touches_only_dead_writers(tmp_path):
    (tmp_path / "FWD").mkdir()
    mine = tmp_path / "FWD" / f".tmp-{os.getpid()}-a.json.x"
    mine.write_text("in flight")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    theirs = tmp_path / "FWD" / f".tmp-{int(dead.stdout)}-b.json.y"
    theirs.write_text("left by a crash")
    assert remove_stale_temps(tmp_path) == 1
    assert mine.exists() and not theirs.exists()


def test_counting_and_disagreements():
    recs = [make_record(verdict="holds"), make_record(verdict="inconclusive"),
            make_record(cell={"m": 64, "L": 4, "control": True}, verdict="inconclusive"),
            make_record(cell={"m": 64, "L": 8, "control": True}, verdict="fails"),
            make_record(expect=None, verdict="fails"), make_record(verdict="skipped")]
    assert count_verdicts(recs) == {"holds": 1, "fails": 2, "inconclusive": 2, "skipped": 1, "error": 0}
    bad = disagreements(recs)
    assert [r["verdict"] for r in bad] == ["inconclusive", "inconclusive"]


def test_cell_key_is_stable_and_file_name_safe():
    assert cell_key({"m": 64, "L": 2, "regime": "unit"}) == "L=2__m=64__regime=unit"
    assert cell_key({"omega": 1e-3, "pos": (1, 2), "x": "a/b"}) == "omega=0.001__pos=1-2__x=a_b"
    assert cell_key({}) == "default"


def _writer(args):
    results_dir, worker, n = args
    for i in range(n):
        write_record(results_dir, make_record(cell={"m": worker, "L": i}, worker=worker))
        write_record(results_dir, make_record(cell={"m": 0, "L": 0}, worker=worker, i=i, payload=list(range(5000))))
    return worker


def test_concurrent_writers_from_a_process_pool(tmp_path):
    ctx = multiprocessing.get_context("fork")  # cheap start; the writers use no threads
    with cf.ProcessPoolExecutor(max_workers=3, mp_context=ctx) as pool:
        assert sorted(pool.map(_writer, [(str(tmp_path), w + 1, 15) for w in range(3)])) == [1, 2, 3]
    loaded = load_results(tmp_path)
    assert loaded.invalid == []
    assert len(loaded.records) == 3 * 15 + 1
    shared = json.loads((tmp_path / "FWD" / "L=0__m=0.json").read_text())
    assert shared["payload"] == list(range(5000))
    assert not [p for p in os.listdir(tmp_path / "FWD") if p.startswith(".tmp")]
