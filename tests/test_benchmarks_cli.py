"""The benchmark commands run end to end at toy sizes and reject bad arguments with one line.

Speed is not asserted here (timings belong to the benchmark's output); what is asserted is that every
table is printed (the measured peaks and each kernel's share of them included), the float64 agreement
columns are at rounding level, and the run file is saved atomically in the folder the user names.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import atomic_write_text, save_run, Table

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _tables(out: str) -> dict[str, list[list[str]]]:
    """{title: rows (cells as strings)} of the markdown tables printed by a benchmark run."""
    tables, title = {}, None
    for line in out.splitlines():
        if line.startswith("## "):
            title = line[3:]
            tables[title] = []
        elif title and line.startswith("| ") and not line.startswith("|---"):
            tables[title].append([c.strip() for c in line.strip("|").split("|")])
    return {t: rows[1:] for t, rows in tables.items()}  # drop the header row


def _table(tables, prefix):
    hits = [rows for t, rows in tables.items() if t.startswith(prefix)]
    assert len(hits) == 1, (prefix, list(tables))
    return hits[0]


@pytest.mark.slow
def test_all_benchmarks_run_at_toy_sizes(tmp_path):
    out_dir = tmp_path / "results"
    proc = _run("benchmarks", "--quick", "--no-memory", "--budget-s", "5", "--repeats", "1", "--out", str(out_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    tables = _tables(proc.stdout)
    # the peaks are measured in the run (twice), never a hard-coded figure
    peaks = _table(tables, "machine peaks")
    assert len(peaks) == 2 and all(float(r[1]) > 0 and float(r[2]) > 0 for r in peaks)
    f64 = _table(tables, "kernels, float64 network")
    kernels = {r[0] for r in f64}
    assert {"forward", "backward_deltas", "empirical_ntk"} <= kernels and any(k.startswith("train_gd") for k in kernels)
    for r in f64:
        assert r[5].endswith("%") and float(r[4]) >= 0  # GFLOP/s (0.0 at toy sizes under load) and its share
        assert float(r[9]) < 1e-10  # fast path vs reference, float64: rounding level
    assert _table(tables, "kernels, float32 network")
    assert len(_table(tables, "empirical_ntk profile")) == 4
    assert _table(tables, "infinite_ntk (bandwidth-bound")[0][3] != ""
    # the baseline tables: every agreement error printed is at float64 rounding level
    for prefix in ("empirical_ntk, float64", "infinite_ntk, float64", "full-batch GD on W"):
        errors = [float(e) for row in _table(tables, prefix) for e in re.findall(r"^(\d\.\de[-+]\d\d)$", "\n".join(row), re.M)]
        assert errors and max(errors) < 1e-10, (prefix, errors)
    # float32 vs float64: errors at float32 rounding, far from float64's and far from O(1)
    prec = _table(tables, "float32 network vs float64")
    ntk_err = [float(r[3]) for r in prec if r[3] != "n/a"]
    assert ntk_err and max(ntk_err) < 1e-4 and min(ntk_err) > 1e-12
    saved = re.search(r"saved (\S+\.json)", proc.stdout)
    path = Path(saved.group(1))
    assert saved and path.parent == out_dir and path.exists()
    payload = json.loads(path.read_text())
    titles = [t["title"] for t in payload["tables"]]
    assert any(t.startswith("machine peaks") for t in titles) and any(t.startswith("kernels") for t in titles)
    assert not list(out_dir.glob(".*.tmp"))  # no temporary file left behind
    assert not (ROOT / "benchmarks" / "results").joinpath(path.name).exists()  # nothing inside the package


def test_save_run_numbers_files_and_writes_atomically(tmp_path):
    import torch

    t = Table("toy", ["a"])
    t.rows.append([1])
    first = save_run([t], torch.device("cpu"), tmp_path / "new" / "dir")
    second = save_run([t], torch.device("cpu"), tmp_path / "new" / "dir")
    assert first.name[:4] == "0001" and second.name[:4] == "0002"
    assert json.loads(second.read_text())["tables"][0]["rows"] == [[1]]
    target = tmp_path / "x.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    with pytest.raises(FileExistsError):
        atomic_write_text(target, "other", exclusive=True)
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "x.json"]  # temporaries cleaned up


@pytest.mark.slow
def test_bad_arguments_are_one_line_errors():
    proc = _run("benchmarks", "nope")
    assert proc.returncode == 2 and "unknown benchmark 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run("benchmarks.ntk", "--sizes", "8,4")
    assert proc.returncode == 2 and "a size is 3 integers >= 1 as n,L,m" in proc.stderr
    proc = _run("benchmarks.precision", "--seeds", "0")
    assert proc.returncode == 2 and "--seeds must be an integer >= 1" in proc.stderr
