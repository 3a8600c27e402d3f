"""The benchmark commands run end to end at toy sizes and reject bad arguments with one line.

Speed is not asserted here (timings belong to the benchmark's output); what is asserted is that every
table is printed, its agreement column is at rounding level, and a run file is saved.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_all_benchmarks_run_at_toy_sizes():
    proc = _run("benchmarks", "--quick", "--no-memory", "--budget-s", "5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for title in ("## empirical_ntk", "## infinite_ntk", "## full-batch GD on W"):
        assert title in out
    # Every agreement error printed (max rel. err / max rel. diff columns) is at float64 rounding level.
    errors = [float(e) for e in re.findall(r"\| (\d\.\de[-+]\d\d) \|", out)]
    assert errors and max(errors) < 1e-10, errors
    saved = re.search(r"saved (\S+\.json)", out)
    assert saved and Path(saved.group(1)).exists()


def test_bad_arguments_are_one_line_errors():
    proc = _run("benchmarks", "nope")
    assert proc.returncode == 2 and "unknown benchmark 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run("benchmarks.ntk", "--sizes", "8,4")
    assert proc.returncode == 2 and "a size is 3 integers >= 1 as n,L,m" in proc.stderr
