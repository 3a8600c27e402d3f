"""Tidy export (claims.export, ``rnnclaims export RESULTS --format csv|parquet --out DIR``).

Round trip: for every record and every top-level field whose value is a scalar (str, int, float, bool,
None), the cells table has a column of that name holding the same value in that record's row. Parquet
keeps values exactly; CSV cannot tell an empty string from a missing value, so there (and only there)
"" and None/NaN count as the same.
"""

from __future__ import annotations

import io
import json
import math
import sys

import pytest

pd = pytest.importorskip("pandas")

from claims.export import (  # noqa: E402
    GROWTH_COLUMNS,
    THRESHOLD_COLUMNS,
    THRESHOLD_STATUSES,
    cells_rows,
    export,
    growth_rows,
    load_frame,
    series_rows,
    threshold_rows,
)
from claims.store import load_results  # noqa: E402
from claims.session import run_profile  # noqa: E402

SPEC = "tests.toy_claims:TOY,tests.toy_claims_extra:PARAMS"
SCALARS = (str, int, float, bool, type(None))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNCLAIMS_TOY_SLEEP", "0")
        summary = run_profile("smoke", root / "run", registry=SPEC, device="cpu", report=False)
    verdicts = {r["verdict"] for r in summary.records}
    assert {"holds", "fails", "error", "skipped"} <= verdicts  # every kind of record is exported
    return root / "run", load_results(root / "run").records


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _same(expected, got, *, csv: bool) -> bool:
    if hasattr(got, "item"):  # numpy scalar
        got = got.item()
    if _missing(expected) or (csv and expected == ""):
        return _missing(got) or (csv and got == "")
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(got, (bool, int)) and bool(got) == expected and isinstance(expected, bool)
    if isinstance(expected, (int, float)):
        return isinstance(got, (int, float)) and not _missing(got) and float(got) == float(expected)
    return got == expected


def _by_cell(frame):
    return {(row["claim"], row["cell_key"]): row for row in frame.to_dict("records")}


def _check_round_trip(frame, records, *, csv: bool):
    rows = _by_cell(frame)
    assert len(frame) == len(records) == len(rows)  # one row per cell
    problems = []
    for r in records:
        row = rows[(r["claim"], r["cell_key"])]
        for name, value in r.items():
            if not isinstance(value, SCALARS):
                continue
            if name not in row:
                problems.append(f"{r['claim']}/{r['cell_key']}: no column {name!r}")
            elif not _same(value, row[name], csv=csv):
                problems.append(f"{r['claim']}/{r['cell_key']}: {name} = {value!r}, table has {row[name]!r}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_export_round_trips_every_scalar_field(results, tmp_path, fmt):
    from claims.cli import main

    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    folder, records = results
    out, err = io.StringIO(), io.StringIO()
    code = main(["export", str(folder), "--format", fmt, "--out", str(tmp_path / "t")], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert out.getvalue().splitlines() == [f"wrote {tmp_path / 't' / f'{name}.{fmt}'}"
                                           for name in ("cells", "series", "thresholds", "growth")]
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    for name, columns in (("thresholds", THRESHOLD_COLUMNS), ("growth", GROWTH_COLUMNS)):
        empty = read(tmp_path / "t" / f"{name}.{fmt}")  # no threshold cells in the toy run: a header only
        assert list(empty.columns) == list(columns) and len(empty) == 0
    cells = read(tmp_path / "t" / f"cells.{fmt}")
    _check_round_trip(cells, records, csv=fmt == "csv")
    series = read(tmp_path / "t" / f"series.{fmt}")
    assert len(series) == sum(len(r.get("series") or []) for r in records)


def test_load_frame_round_trips_exactly(results):
    folder, records = results
    _check_round_trip(load_frame(folder), records, csv=False)
    _check_round_trip(load_frame(folder / "results"), records, csv=False)  # OUT or OUT/results


def test_params_are_columns_and_taken_names_are_prefixed(results):
    folder, records = results
    rows = _by_cell(load_frame(folder))
    for r in records:
        row = rows[(r["claim"], r["cell_key"])]
        for name, value in r["params"].items():
            column = f"param_{name}" if name in r and isinstance(r[name], SCALARS) else name
            assert column in row, (r["claim"], name)
            assert _same(value, row[column], csv=False) or row[column] == json.dumps(value, sort_keys=True)
    row = rows[("TOY-PARAMS", "m=4__note=a__b_c__profile=p1__seed=7")]
    assert (row["param_seed"], row["seed"]) == (7, 0)  # the cell's parameter beside the run seed
    assert (row["param_profile"], row["profile"]) == ("p1", "smoke")
    assert row["note"] == "a, b\nc" and row["m"] == 4
    slow = [row for key, row in rows.items() if key[0] == "TOY-SLOW"]
    assert slow and all({"m", "L", "r"} <= set(row) for row in slow)
    # nested fields as documented
    holds = next(row for key, row in rows.items() if key[0] == "TOY-HOLDS" and not row["control"])
    rec = next(r for r in records if (r["claim"], r["cell_key"]) == (holds["claim"], holds["cell_key"]))
    assert (holds["ci_lo"], holds["ci_hi"]) == tuple(rec["failure_rate_ci"])
    assert holds["measured_x_mean"] == pytest.approx(rec["measured"]["x"]["mean"])
    assert holds["test_delta"] == rec["test"]["delta"] and holds["test_budget"] == rec["test"]["budget"]
    assert holds["declared_c"] == 1.0 and holds["constant_c"] == pytest.approx(rec["measured_constants"]["c"])
    assert holds["worker_pid"] == rec["worker"]["pid"]


def test_series_rows_one_per_point(results):
    folder, records = results
    frame = load_frame(folder, "series")
    expected = [(r["claim"], r["cell_key"], point) for r in records for point in (r.get("series") or [])]
    assert len(frame) == len(expected) > 0
    rows = frame.to_dict("records")
    for row, (claim, key, point) in zip(rows, expected):
        assert (row["claim"], row["cell_key"]) == (claim, key)
        for name, value in point.items():
            column = f"series_{name}" if name in ("claim", "cell_key", "control", "verdict") or \
                name in next(r for r in records if r["claim"] == claim and r["cell_key"] == key)["params"] else name
            assert _same(value, row[column], csv=False), (claim, name, value, row[column])
    params = next(row for row in rows if row["claim"] == "TOY-PARAMS")
    assert (params["series_claim"], params["series_m"], params["m"]) == ("from-series", 1, 4)
    assert {"example", "verdict", "control"} <= set(params)


def test_rows_without_pandas(results):
    folder, records = results
    cells = cells_rows(records)
    assert len(cells) == len(records)
    assert len(series_rows(records)) == sum(len(r.get("series") or []) for r in records)


def test_missing_pandas_is_one_line(results, tmp_path, monkeypatch):
    from claims.cli import main

    folder, _ = results
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    out, err = io.StringIO(), io.StringIO()
    code = main(["export", str(folder), "--out", str(tmp_path / "t")], stdout=out, stderr=err)
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnclaims: error: ") and "pandas" in lines[0]
    assert "pip install" in lines[0]
    assert not (tmp_path / "t" / "cells.csv").exists()
    with pytest.raises(ImportError, match="pandas"):
        load_frame(folder)


def test_missing_pyarrow_is_one_line(results, tmp_path, monkeypatch):
    from claims.cli import main

    folder, _ = results
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out, err = io.StringIO(), io.StringIO()
    code = main(["export", str(folder), "--format", "parquet", "--out", str(tmp_path / "t")], stdout=out, stderr=err)
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "pyarrow" in lines[0] and "parquet" in lines[0]
    assert not (tmp_path / "t" / "cells.parquet").exists()


def test_bad_format_and_empty_folder(results, tmp_path):
    from claims.cli import main

    folder, _ = results
    out, err = io.StringIO(), io.StringIO()
    assert main(["export", str(folder), "--format", "xlsx", "--out", str(tmp_path / "t")], stdout=out, stderr=err) == 2
    assert "--format" in err.getvalue() and len(err.getvalue().splitlines()) == 1
    (tmp_path / "empty" / "results").mkdir(parents=True)
    with pytest.raises(ValueError, match="no valid records"):
        export(tmp_path / "empty", tmp_path / "t")
    with pytest.raises(ValueError, match="table must be"):
        load_frame(folder, "rows")


try:
    from tests.fixtures_records import synthetic_thresholds, write_results
except ImportError:  # tests/ not a package on sys.path
    from fixtures_records import synthetic_thresholds, write_results


@pytest.fixture(scope="module")
def threshold_results(tmp_path_factory):
    recs = synthetic_thresholds()
    return write_results(tmp_path_factory.mktemp("thr") / "results", recs), recs


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_thresholds_table_one_row_per_cell_and_length(threshold_results, tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    folder, recs = threshold_results
    export(folder, tmp_path / "t", fmt=fmt)
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    table = read(tmp_path / "t" / f"thresholds.{fmt}")
    assert list(table.columns) == list(THRESHOLD_COLUMNS)
    expected = [(r["cell_key"], t["L"]) for r in recs for t in r["thresholds"]]
    assert sorted(zip(table["cell_key"], table["L"])) == sorted(expected) and len(table) == 14
    assert set(table["status"]) == set(THRESHOLD_STATUSES)
    rows = {(row["cell_key"], row["L"]): row for row in table.to_dict("records")}
    unit = next(r for r in recs if r["params"]["regime"] == "unit" and r["claim"] == "FWD" and not r["control"])
    found = rows[(unit["cell_key"], 8)]
    assert (found["status"], found["m_star"], found["lo"], found["hi"]) == ("found", 380.0, 320.0, 452.0)
    assert found["ratio"] == pytest.approx(452 / 320)
    assert (found["certificate_m"], found["certificate_verdict"], found["certificate_examples"],
            found["certificate_failures"]) == (452, "holds", 12, 0)
    assert (found["examples"], found["n_probes"], found["expect"], found["regime"]) == (40, 4, "holds", "unit")
    assert (found["m_min"], found["m_max"]) == (16, 2048)
    assert bool(found["asserted"]) and not bool(rows[(unit["cell_key"], 16)]["asserted"])  # asserts 2, 4, 8
    assert json.loads(found["probes"])[0] == {"m": 256, "examples": 6, "failures": 4, "inconclusive": 0}
    below = rows[(unit["cell_key"], 2)]
    assert below["status"] == "below" and _missing(below["lo"]) and below["hi"] == 16 and _missing(below["m_star"])
    norm = next(r for r in recs if r["params"]["regime"] == "normalized")
    above = rows[(norm["cell_key"], 16)]
    assert above["status"] == "above" and above["lo"] == 2048 and _missing(above["hi"]) and _missing(above["ratio"])
    assert above["certificate_verdict"] == "fails"
    bwd = next(r for r in recs if r["claim"] == "BWD")
    nonmono = rows[(bwd["cell_key"], 4)]
    assert nonmono["status"] == "non-monotone" and nonmono["monotone_p"] == 0.004 and _missing(nonmono["lo"])
    cells = read(tmp_path / "t" / f"cells.{fmt}")
    assert len(cells) == len(recs) and set(cells["kind"]) == {"threshold"}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_growth_table_one_row_per_cell(threshold_results, tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    folder, recs = threshold_results
    export(folder, tmp_path / "t", fmt=fmt)
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    table = read(tmp_path / "t" / f"growth.{fmt}")
    assert list(table.columns) == list(GROWTH_COLUMNS) and len(table) == len(recs) == 4
    rows = {row["cell_key"]: row for row in table.to_dict("records")}
    unit = next(r for r in recs if r["params"]["regime"] == "unit" and r["claim"] == "FWD" and not r["control"])
    g = rows[unit["cell_key"]]
    assert (g["law"], g["exponent"], g["exponent_lo"], g["exponent_hi"], g["evidence_ratio"], g["bound"],
            g["points"], g["censored"]) == ("power", 2.0, 1.7, 2.3, 5.1, 3.0, 4, 1)
    assert not bool(g["asserted"])  # it asserts L = 2, 4, 8 of 2, 4, 8, 16: not the growth law
    norm = rows[next(r for r in recs if r["params"]["regime"] == "normalized")["cell_key"]]
    assert norm["exponent_lo"] == 1.5 and _missing(norm["exponent_hi"])  # an open end stays open
    bwd = rows[next(r for r in recs if r["claim"] == "BWD")["cell_key"]]
    assert (bwd["law"], bwd["rate"], bwd["rate_lo"], bwd["rate_hi"]) == ("exponential", 1.34, 0.7, 2.0)
    ctrl = rows[next(r for r in recs if r["control"])["cell_key"]]
    assert _missing(ctrl["law"]) and _missing(ctrl["exponent"]) and bool(ctrl["control"]) and "no fit" in ctrl["note"]
    frame = load_frame(folder, "growth")
    assert len(frame) == 4 and list(frame.columns) == list(GROWTH_COLUMNS)


def test_threshold_rows_skip_other_records_and_bad_entries():
    recs = synthetic_thresholds()
    plain = dict(recs[0], kind=None)  # not a threshold cell
    broken = dict(recs[1], thresholds=["not an entry", *recs[1]["thresholds"][:1]], growth="garbage")
    rows = threshold_rows([plain, broken])
    assert len(rows) == 1 and rows[0]["L"] == 2 and rows[0]["status"] == "found"
    (g,) = growth_rows([plain, broken])
    assert g["law"] is None and g["note"] == "no growth fit stored"
