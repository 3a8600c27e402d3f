"""The record store: strict JSON, atomic writes, concurrent writers, loading."""

import concurrent.futures as cf
import json
import math
import multiprocessing
import os

import numpy as np
import pytest

from claims import store
from claims.store import atomic_write_json, load_results, record_path, write_record, write_run_meta


def _record(claim="FWD", key="L=2__m=64", **extra):
    return {"claim": claim, "cell_key": key, "verdict": "holds", "margin": 0.5, **extra}


def test_nan_inf_numpy_become_strict_json(tmp_path):
    rec = _record(margin=math.nan, measured={"a": np.float64(1.5), "b": math.inf, "c": np.arange(2)},
                  ci=(0.0, -math.inf))
    path = write_record(tmp_path, rec)
    assert path == record_path(tmp_path, "FWD", "L=2__m=64") == tmp_path / "FWD" / "L=2__m=64.json"
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert data["margin"] is None and data["measured"] == {"a": 1.5, "b": None, "c": [0, 1]}
    assert data["ci"] == [0.0, None]


def test_unsafe_names_rejected(tmp_path):
    with pytest.raises(ValueError, match="cell_key"):
        write_record(tmp_path, _record(key="../escape"))
    with pytest.raises(ValueError, match="claim"):
        write_record(tmp_path, {"cell_key": "x"})


def test_crash_mid_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = write_record(tmp_path, _record(margin=0.25))
    before = path.read_text()

    def exploding_replace(src, dst):
        raise OSError("disk pulled out")

    monkeypatch.setattr(store.os, "replace", exploding_replace)
    with pytest.raises(OSError, match="disk pulled"):
        write_record(tmp_path, _record(margin=0.75))
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # temp file cleaned up


def test_crash_during_serialization_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "x.json", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_loader_ignores_temp_files_and_lists_invalid(tmp_path):
    write_record(tmp_path, _record())
    write_record(tmp_path, _record(claim="BWD"))
    (tmp_path / "FWD" / ".tmp-L=4.json.abc").write_text('{"claim": "FW')
    (tmp_path / "FWD" / "torn.json").write_text('{"claim": "FW')
    write_run_meta(tmp_path, {"profile": "smoke"})
    loaded = load_results(tmp_path)
    assert [r["claim"] for r in loaded.records] == ["BWD", "FWD"]
    assert loaded.run == {"profile": "smoke"}
    assert [p.name for p in loaded.invalid] == ["torn.json"]
    assert store.remove_stale_temps(tmp_path) == 1
    # the run's output directory works too
    assert len(load_results(tmp_path.parent / tmp_path.name).records) == 2


def test_load_results_accepts_out_dir(tmp_path):
    write_record(tmp_path / "results", _record())
    records, run, invalid = load_results(tmp_path)
    assert len(records) == 1 and run == {} and invalid == []
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing")


def _writer(args):
    results_dir, worker, n = args
    for i in range(n):
        # distinct cells, plus every worker hammering one shared cell with a large payload
        write_record(results_dir, _record(key=f"w{worker}_c{i}", worker=worker))
        write_record(results_dir, _record(key="shared", worker=worker, i=i, payload=list(range(5000))))
    return worker


def test_concurrent_writers_from_a_process_pool(tmp_path):
    ctx = multiprocessing.get_context("fork")  # cheap start; the writers use no threads
    with cf.ProcessPoolExecutor(max_workers=3, mp_context=ctx) as pool:
        assert sorted(pool.map(_writer, [(str(tmp_path), w, 15) for w in range(3)])) == [0, 1, 2]
    loaded = load_results(tmp_path)
    assert loaded.invalid == []
    assert len(loaded.records) == 3 * 15 + 1
    shared = json.loads((tmp_path / "FWD" / "shared.json").read_text())
    assert shared["payload"] == list(range(5000))
    assert not [p for p in os.listdir(tmp_path / "FWD") if p.startswith(".tmp")]
